-- The double-entry ledger: every movement of money is a transaction of entries summing to zero;
-- balances are sums of entries. An account row exists to be locked while its balance decides.
CREATE TABLE ledger_accounts (
    id         TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
CREATE TABLE ledger_transactions (
    id         TEXT PRIMARY KEY,
    -- `booking_paid`, `booking_refunded`, `show_cancelled_refund`.
    kind       TEXT NOT NULL,
    -- The booking it is for.
    reference  TEXT NOT NULL,
    currency   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ledger_transactions_by_reference ON ledger_transactions (reference);
CREATE TABLE ledger_entries (
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions (id),
    position       BIGINT NOT NULL,
    account_id     TEXT NOT NULL REFERENCES ledger_accounts (id),
    amount_minor   BIGINT NOT NULL,
    PRIMARY KEY (transaction_id, position)
);
CREATE INDEX ledger_entries_by_account ON ledger_entries (account_id);

-- How much of a booking its customer gets back on cancelling (defaults apply without a row).
CREATE TABLE refund_policies (
    show_id                 TEXT PRIMARY KEY REFERENCES shows (id),
    full_until_hours_before BIGINT NOT NULL,
    partial_percent         BIGINT NOT NULL CHECK (partial_percent BETWEEN 0 AND 100)
);

-- What of a booking was paid from the wallet, and what a cancellation gave back.
ALTER TABLE bookings ADD COLUMN wallet_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bookings ADD COLUMN refunded_minor BIGINT;
