-- Events whose mail is not yet sent, one narrow row each, deleted once sent: as for the live
-- channel (0017), ticking off `mailed_at` rewrote each booking's confirmation row, body and
-- indexes, once more after it was written. No foreign key, for the same reason as 0017.
CREATE TABLE outbox_unmailed (
    message_id TEXT PRIMARY KEY
);
INSERT INTO outbox_unmailed (message_id) SELECT id FROM outbox WHERE mailed_at IS NULL;
DROP INDEX outbox_to_mail;
ALTER TABLE outbox DROP COLUMN mailed_at;
