-- Events not yet told to live viewers, one narrow row each, deleted once told. An event's outbox
-- row is then written once for this channel: ticking off `announced_at` rewrote the whole row,
-- body included, with a new entry in each index whose predicate it still met (a capacity sale's
-- tick-offs were 13 % of its WAL). No foreign key: the row is written by the statement that
-- writes its event, and a key check would lock the event's row again.
CREATE TABLE outbox_untold (
    message_id TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL
);
-- Changes told at once are ticked off by (kind, subject) every dispatch round.
CREATE INDEX outbox_untold_by_subject ON outbox_untold (subject);
INSERT INTO outbox_untold (message_id, kind, subject)
    SELECT id, kind, subject FROM outbox WHERE announced_at IS NULL;
DROP INDEX outbox_to_tick_off;
DROP INDEX outbox_to_announce;
ALTER TABLE outbox DROP COLUMN announced_at;
