-- Each booking keeps its number of tickets (tickets are written once, with their booking).
ALTER TABLE bookings ADD COLUMN ticket_count BIGINT NOT NULL DEFAULT 0;
UPDATE bookings SET ticket_count = (SELECT COUNT(*) FROM tickets t WHERE t.booking_id = bookings.id);

-- Tickets each customer has booked per show, kept by every booking and cancellation: a new
-- hold checks the per-customer limit from one row instead of counting the customer's tickets
-- (a regular's tickets outnumber their holds many times).
CREATE TABLE customer_tickets (
    user_id TEXT NOT NULL,
    show_id TEXT NOT NULL,
    tickets BIGINT NOT NULL CHECK (tickets >= 0),
    PRIMARY KEY (user_id, show_id)
);
INSERT INTO customer_tickets (user_id, show_id, tickets)
SELECT user_id, show_id, SUM(ticket_count) FROM bookings WHERE state = 'confirmed' GROUP BY user_id, show_id;

-- The holds a new hold's rules look at (live, and lapsed within the anti-hoarding window) by
-- customer: a regular's converted and released holds stay out of the way.
CREATE INDEX holds_live_by_user_show ON holds (user_id, show_id) WHERE state IN ('active', 'expired');
