-- Admissions at the door: a ticket is admitted once; the first scan recorded wins, and later
-- ones are told where and when it was used.
CREATE TABLE checkins (
    ticket_id   TEXT PRIMARY KEY REFERENCES tickets (id),
    show_id     TEXT NOT NULL REFERENCES shows (id),
    gate        TEXT NOT NULL,
    -- When the scanner saw it (an offline scanner uploads later).
    scanned_at  BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    staff_id    TEXT NOT NULL REFERENCES users (id)
);
CREATE INDEX checkins_by_show ON checkins (show_id);
