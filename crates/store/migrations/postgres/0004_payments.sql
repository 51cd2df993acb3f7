-- Payment intents: one per attempt to pay for a hold, decided by the provider (at once, after
-- a customer action, or later by webhook). A booking exists only for a succeeded payment.
CREATE TABLE payments (
    id                 TEXT PRIMARY KEY,
    hold_id            TEXT NOT NULL REFERENCES holds (id),
    user_id            TEXT NOT NULL REFERENCES users (id),
    show_id            TEXT NOT NULL REFERENCES shows (id),
    -- What the card is charged; `wallet_minor` more comes from the wallet when it books.
    amount_minor       BIGINT NOT NULL CHECK (amount_minor >= 0),
    wallet_minor       BIGINT NOT NULL DEFAULT 0 CHECK (wallet_minor >= 0),
    currency           TEXT NOT NULL,
    method             TEXT NOT NULL,
    card_last4         TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('requires_action', 'processing', 'succeeded', 'failed', 'cancelled', 'refunded')),
    provider_reference TEXT NOT NULL UNIQUE,
    booking_id         TEXT REFERENCES bookings (id),
    failure_reason     TEXT,
    -- The customer's Idempotency-Key: a retry finds this payment instead of starting another.
    idempotency_key    TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX payments_by_hold ON payments (hold_id);
CREATE UNIQUE INDEX payments_by_key ON payments (user_id, idempotency_key);

-- Provider events already acted on; a replayed one is acknowledged and ignored.
CREATE TABLE provider_events (
    id          TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
