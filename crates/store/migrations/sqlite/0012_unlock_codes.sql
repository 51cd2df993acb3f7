-- no-transaction
-- Promo codes that unlock a category sold only with a code, and the categories so locked.
-- SQLite cannot change a CHECK in place, so promo_codes is rebuilt the documented way: with
-- foreign keys off (holds and scratch cards refer to it), in one transaction, checked before
-- committing.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE promo_codes_rebuilt (
    id                    TEXT PRIMARY KEY,
    organizer_id          TEXT NOT NULL REFERENCES organizers (id),
    code                  TEXT NOT NULL,
    event_id              TEXT REFERENCES events (id),
    show_id               TEXT REFERENCES shows (id),
    discount_kind         TEXT NOT NULL CHECK (discount_kind IN ('percent', 'amount', 'unlock')),
    discount_value        BIGINT NOT NULL CHECK (discount_value >= 0),
    valid_from            BIGINT,
    valid_until           BIGINT,
    max_uses              BIGINT NOT NULL CHECK (max_uses > 0),
    max_uses_per_customer BIGINT NOT NULL CHECK (max_uses_per_customer > 0),
    created_at            BIGINT NOT NULL,
    -- The category an unlock code opens (and only for unlock codes).
    unlocks_category      TEXT,
    UNIQUE (organizer_id, code),
    CHECK ((discount_kind = 'unlock') = (unlocks_category IS NOT NULL))
);
INSERT INTO promo_codes_rebuilt (id, organizer_id, code, event_id, show_id, discount_kind, discount_value,
    valid_from, valid_until, max_uses, max_uses_per_customer, created_at)
SELECT id, organizer_id, code, event_id, show_id, discount_kind, discount_value,
    valid_from, valid_until, max_uses, max_uses_per_customer, created_at FROM promo_codes;
DROP TABLE promo_codes;
ALTER TABLE promo_codes_rebuilt RENAME TO promo_codes;
ALTER TABLE show_prices ADD COLUMN locked BOOLEAN NOT NULL DEFAULT FALSE;
COMMIT;
PRAGMA foreign_keys = ON;
