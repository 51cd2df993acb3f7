-- Card refunds of cancellations are asked of the payment provider behind the outbox too (NULL
-- until done, or when there is nothing to send back to a card).
ALTER TABLE outbox ADD COLUMN card_refunded_at BIGINT;
UPDATE outbox SET card_refunded_at = created_at;
CREATE INDEX outbox_to_refund ON outbox (seq) WHERE card_refunded_at IS NULL;
