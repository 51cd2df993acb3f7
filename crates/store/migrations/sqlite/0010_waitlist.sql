-- Waitlists of sold-out shows: who waits for how many places, in the order they joined. An
-- offer is a hold in the customer's name (hold_id); whether it became a booking or lapsed is
-- read from the hold and written back by the next matching round.
CREATE TABLE waitlist_entries (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    show_id    TEXT NOT NULL REFERENCES shows (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    -- NULL: any category.
    category   TEXT,
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    together   BOOLEAN NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('waiting', 'offered', 'booked', 'lapsed', 'left', 'closed')),
    -- How often later entries were offered places before this one (the fairness rule).
    passes     BIGINT NOT NULL DEFAULT 0,
    hold_id    TEXT REFERENCES holds (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX waitlist_open_by_show ON waitlist_entries (show_id, position) WHERE state IN ('waiting', 'offered');
-- One open entry per customer and show.
CREATE UNIQUE INDEX waitlist_one_open_per_customer ON waitlist_entries (show_id, user_id) WHERE state IN ('waiting', 'offered');
