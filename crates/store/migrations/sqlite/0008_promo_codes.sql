-- Promo codes: an organizer's discounts, with their scope, window and limits. A use is a hold
-- that applied the code and is still live or became a booking.
CREATE TABLE promo_codes (
    id                    TEXT PRIMARY KEY,
    organizer_id          TEXT NOT NULL REFERENCES organizers (id),
    code                  TEXT NOT NULL,
    event_id              TEXT REFERENCES events (id),
    show_id               TEXT REFERENCES shows (id),
    discount_kind         TEXT NOT NULL CHECK (discount_kind IN ('percent', 'amount')),
    discount_value        BIGINT NOT NULL CHECK (discount_value > 0),
    valid_from            BIGINT,
    valid_until           BIGINT,
    max_uses              BIGINT NOT NULL CHECK (max_uses > 0),
    max_uses_per_customer BIGINT NOT NULL CHECK (max_uses_per_customer > 0),
    created_at            BIGINT NOT NULL,
    UNIQUE (organizer_id, code)
);
ALTER TABLE holds ADD COLUMN promo_id TEXT REFERENCES promo_codes (id);
ALTER TABLE holds ADD COLUMN promo_code TEXT;
ALTER TABLE holds ADD COLUMN discount_minor BIGINT NOT NULL DEFAULT 0;
CREATE INDEX holds_by_promo ON holds (promo_id, state) WHERE promo_id IS NOT NULL;
