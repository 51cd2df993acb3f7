-- A customer's booked tickets on a show are counted from their bookings (one row each) rather
-- than their tickets: every new hold checks the per-customer limit, and a regular's tickets
-- outnumber their bookings. Tickets are written once, with their booking, so the count holds.
ALTER TABLE bookings ADD COLUMN ticket_count BIGINT NOT NULL DEFAULT 0;
UPDATE bookings SET ticket_count = (SELECT COUNT(*) FROM tickets t WHERE t.booking_id = bookings.id);
CREATE INDEX bookings_by_user_show ON bookings (user_id, show_id, state, ticket_count);
-- The holds a new hold's rules look at (live, and lapsed within the anti-hoarding window) by
-- customer: a regular's converted and released holds stay out of the way.
CREATE INDEX holds_live_by_user_show ON holds (user_id, show_id) WHERE state IN ('active', 'expired');
