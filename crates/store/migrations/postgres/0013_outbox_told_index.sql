-- Changes told live at once are ticked off by (kind, subject) every dispatch round; during a
-- sale many events wait to be ticked off, so finding them by subject beats reading them all.
CREATE INDEX outbox_to_tick_off ON outbox (subject) WHERE announced_at IS NULL;
