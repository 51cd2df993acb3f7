-- Events not yet added to the organizer's Redis stream, one narrow row each, deleted once added:
-- as for the live channel (0017) and mail (0018), ticking off `streamed_at` rewrote every
-- event's row, body and indexes once more after it was written, on every deployment with
-- Redis. Without Redis the rows wait unread, as the events waited in `outbox_to_stream` before.
CREATE TABLE outbox_unstreamed (
    message_id TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL
);
INSERT INTO outbox_unstreamed (message_id, kind, subject)
    SELECT id, kind, subject FROM outbox WHERE streamed_at IS NULL;
DROP INDEX outbox_to_stream;
ALTER TABLE outbox DROP COLUMN streamed_at;
