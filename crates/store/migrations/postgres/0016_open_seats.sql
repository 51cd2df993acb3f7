-- Each show seat carries its seat's category and row (a layout is replaced only with its shows'
-- seats written again), so that the seats not sold (free, or held and maybe lapsed) are found
-- by row: a best-available pick reads the next rows that have an open seat, not the rows in
-- between. A hall sold seat by seat keeps a few free seats scattered over its rows, and
-- reading row after row for them read most of the hall for every pick near the end of a sale.
ALTER TABLE show_seats ADD COLUMN category TEXT;
ALTER TABLE show_seats ADD COLUMN row_rank BIGINT;
UPDATE show_seats SET
    category = (SELECT s.category FROM seats s WHERE s.id = show_seats.seat_id),
    row_rank = (SELECT s.row_rank FROM seats s WHERE s.id = show_seats.seat_id);
CREATE INDEX show_seats_open ON show_seats (show_id, category, row_rank) WHERE state IN ('free', 'held');
