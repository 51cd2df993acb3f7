-- E-mail goes out behind the outbox too: when an event's messages were sent (NULL until then).
ALTER TABLE outbox ADD COLUMN mailed_at BIGINT;
-- Events from before e-mail existed are not mailed now.
UPDATE outbox SET mailed_at = created_at;
CREATE INDEX outbox_to_mail ON outbox (seq) WHERE mailed_at IS NULL;

-- Show changes reach live viewers through the outbox as well (NULL until announced).
ALTER TABLE outbox ADD COLUMN announced_at BIGINT;
UPDATE outbox SET announced_at = created_at;
CREATE INDEX outbox_to_announce ON outbox (seq) WHERE announced_at IS NULL;
