-- Events whose mail is not yet sent, one narrow row each, deleted once sent: as for the live
-- channel (0017), ticking off `mailed_at` rewrote each booking's confirmation row, body and
-- indexes, once more after it was written. No foreign key, for the same reason as 0017; the
-- same columns, so every channel's backlog is written alike.
CREATE TABLE outbox_unmailed (
    message_id TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL
);
INSERT INTO outbox_unmailed (message_id, kind, subject)
    SELECT id, kind, subject FROM outbox WHERE mailed_at IS NULL;
DROP INDEX outbox_to_mail;
ALTER TABLE outbox DROP COLUMN mailed_at;
