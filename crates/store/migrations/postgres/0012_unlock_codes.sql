-- Promo codes that unlock a category sold only with a code, and the categories so locked.
ALTER TABLE promo_codes DROP CONSTRAINT promo_codes_discount_kind_check;
ALTER TABLE promo_codes ADD CONSTRAINT promo_codes_discount_kind_check
    CHECK (discount_kind IN ('percent', 'amount', 'unlock'));
ALTER TABLE promo_codes DROP CONSTRAINT promo_codes_discount_value_check;
ALTER TABLE promo_codes ADD CONSTRAINT promo_codes_discount_value_check CHECK (discount_value >= 0);
-- The category an unlock code opens (and only for unlock codes).
ALTER TABLE promo_codes ADD COLUMN unlocks_category TEXT;
ALTER TABLE promo_codes ADD CONSTRAINT promo_codes_unlock_has_category
    CHECK ((discount_kind = 'unlock') = (unlocks_category IS NOT NULL));
ALTER TABLE show_prices ADD COLUMN locked BOOLEAN NOT NULL DEFAULT FALSE;
