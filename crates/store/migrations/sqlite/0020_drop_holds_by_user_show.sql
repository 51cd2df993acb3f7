-- Nothing reads holds by customer, show and state any more: a customer's standing reads their
-- live holds through `holds_live_by_user_show` (0015), and points kept aside through
-- `holds_spending_points`. The index still took an entry from every hold written and from
-- every change of its state (a sale's holds, each booked or released).
DROP INDEX holds_by_user_show;
