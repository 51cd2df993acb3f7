-- Revoking a cancelled booking's rewards finds its loyalty entries by booking (was a full scan).
CREATE INDEX loyalty_by_booking ON loyalty_entries (booking_id);
