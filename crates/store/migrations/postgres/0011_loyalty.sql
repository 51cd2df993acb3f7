-- Loyalty points as an append-only history (the balance is its sum), points a hold spends
-- (kept aside while it is live), and the scratch cards group bookings earn.
ALTER TABLE holds ADD COLUMN points_redeemed BIGINT NOT NULL DEFAULT 0;
CREATE INDEX holds_spending_points ON holds (user_id, state) WHERE points_redeemed > 0;

CREATE TABLE loyalty_entries (
    seq        BIGSERIAL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    kind       TEXT NOT NULL CHECK (kind IN ('earned', 'redeemed', 'reversed', 'restored')),
    points     BIGINT NOT NULL,
    booking_id TEXT NOT NULL REFERENCES bookings (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX loyalty_by_user ON loyalty_entries (user_id, seq);

CREATE TABLE scratch_cards (
    id          TEXT PRIMARY KEY,
    -- One card per booking, drawn in the booking's transaction: a retried confirmation finds
    -- the booking (and its card) instead of drawing again.
    booking_id  TEXT NOT NULL UNIQUE REFERENCES bookings (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    show_id     TEXT NOT NULL REFERENCES shows (id),
    prize_kind  TEXT NOT NULL CHECK (prize_kind IN ('cashback', 'add_on', 'discount_code')),
    -- The prize as JSON (core::loyalty::Prize).
    prize       TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('hidden', 'revealed', 'revoked')),
    promo_id    TEXT REFERENCES promo_codes (id),
    drawn_at    BIGINT NOT NULL,
    revealed_at BIGINT,
    revoked_at  BIGINT,
    credited_at BIGINT
);
CREATE INDEX scratch_cards_by_user ON scratch_cards (user_id, drawn_at);
CREATE INDEX scratch_cashbacks_due ON scratch_cards (show_id) WHERE prize_kind = 'cashback' AND credited_at IS NULL AND state <> 'revoked';
