//! The ledger side of the store, shared by both engines like `engine.rs`: posting transfers as
//! balanced entries inside the caller's transaction (refusing to take a wallet below zero),
//! wallets, the admin's view of the books and their check, and refund policies per show.

use boxoffice_core::Timestamp;
use boxoffice_core::ledger::Entry;
use serde::Serialize;

/// One posted movement of money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LedgerTransaction {
    pub id: String,
    pub kind: String,
    /// The booking it is for.
    pub reference: String,
    pub currency: String,
    pub entries: Vec<Entry>,
    pub created_at: Timestamp,
}

/// What a check of the whole ledger found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LedgerCheck {
    pub transactions: i64,
    /// Transactions whose entries do not sum to zero (must be 0).
    pub unbalanced_transactions: i64,
    /// The sum of every entry, per currency (must be 0 for each).
    pub totals_minor: std::collections::BTreeMap<String, i64>,
    /// Wallets below zero (must be 0).
    pub negative_wallets: i64,
    pub balanced: bool,
}

macro_rules! ledger_engine {
    ($store:ty, $db:ty, lock = $lock:literal) => {
        use boxoffice_core::ledger::{self, RefundPolicy, Transfer};
        use $crate::LedgerStore;
        use $crate::ledger::{LedgerCheck, LedgerTransaction};

        /// Posts `transfers` as one balanced transaction in the caller's transaction. A wallet
        /// it takes from is locked (in id order, so two posts cannot deadlock) before its balance
        /// is checked, so concurrent spends of one wallet cannot overdraw it. Other accounts are
        /// not locked: nothing bounds them, and the organizer's and the card network's accounts
        /// take part in every sale (a lock there would make all bookings wait for each other).
        async fn post(
            conn: &mut Conn,
            kind: &str,
            reference: &str,
            currency: &str,
            transfers: &[Transfer],
            now: Timestamp,
        ) -> StoreResult<()> {
            let mut writes = Writes::<$db>::new(FUSE_WRITES);
            post_into(conn, &mut writes, kind, reference, currency, transfers, now).await?;
            run_writes(conn, writes).await
        }

        /// `post`, its rows added to the caller's `writes`; a wallet it takes from is locked and
        /// checked at once (its account row is written first, so there is a row to lock).
        async fn post_into(
            conn: &mut Conn,
            writes: &mut Writes<$db>,
            kind: &str,
            reference: &str,
            currency: &str,
            transfers: &[Transfer],
            now: Timestamp,
        ) -> StoreResult<()> {
            let entries = ledger::entries(transfers, currency)?;
            if entries.is_empty() {
                return Ok(());
            }
            let accounts = accounts_of(&entries);
            let debited: Vec<(&String, i64)> = accounts
                .iter()
                .map(|account| (account, entries.iter().filter(|e| e.account == *account).map(|e| e.amount_minor).sum::<i64>()))
                .filter(|(account, change)| ledger::Account::is_wallet(account) && *change < 0)
                .collect();
            let mut known = Writes::<$db>::new(FUSE_WRITES);
            let opened = if debited.is_empty() { &mut *writes } else { &mut known };
            open_accounts_into(opened, &accounts, now);
            run_writes(conn, known).await?;
            for (account, change) in debited {
                sqlx::query(concat!("SELECT id FROM ledger_accounts WHERE id = $1", $lock))
                    .bind(account.clone())
                    .execute(&mut *conn)
                    .await?;
                if account_balance(conn, account).await? + change < 0 {
                    return Err(DomainError::PaymentDeclined("there is not enough in your wallet".into()).into());
                }
            }
            postings_into(writes, &[Posting { kind, reference, currency, entries, at: now }]);
            Ok(())
        }

        /// One balanced transaction of the ledger, as `postings_into` writes it.
        struct Posting<'a> {
            kind: &'a str,
            reference: &'a str,
            currency: &'a str,
            entries: Vec<ledger::Entry>,
            at: Timestamp,
        }

        /// The accounts the entries move, sorted, each once.
        fn accounts_of(entries: &[ledger::Entry]) -> Vec<String> {
            let mut accounts: Vec<String> = entries.iter().map(|e| e.account.clone()).collect();
            accounts.sort();
            accounts.dedup();
            accounts
        }

        /// Opens the accounts that are not open yet, as one of the caller's `writes`.
        fn open_accounts_into(writes: &mut Writes<$db>, accounts: &[String], now: Timestamp) {
            if accounts.is_empty() {
                return;
            }
            let open = Insert::into("INSERT INTO ledger_accounts (id, created_at)").then("ON CONFLICT (id) DO NOTHING");
            for account in accounts {
                writes.insert(open, |row| {
                    row.push_bind(account.clone()).push_bind(now.unix_ms());
                });
            }
        }

        /// The postings' transactions, then all their entries, as the caller's `writes` (one
        /// insert each): their accounts must be open, or opened by the same writes.
        fn postings_into(writes: &mut Writes<$db>, postings: &[Posting<'_>]) {
            let ids: Vec<String> = postings.iter().map(|_| format!("ltx_{}", uuid::Uuid::now_v7().simple())).collect();
            for (posting, id) in postings.iter().zip(&ids) {
                writes.insert("INSERT INTO ledger_transactions (id, kind, reference, currency, created_at)", |row| {
                    row.push_bind(id.clone())
                        .push_bind(posting.kind.to_owned())
                        .push_bind(posting.reference.to_owned())
                        .push_bind(posting.currency.to_owned())
                        .push_bind(posting.at.unix_ms());
                });
            }
            for (posting, id) in postings.iter().zip(&ids) {
                for (position, entry) in posting.entries.iter().enumerate() {
                    writes.insert("INSERT INTO ledger_entries (transaction_id, position, account_id, amount_minor)", |row| {
                        row.push_bind(id.clone()).push_bind(position as i64).push_bind(entry.account.clone()).push_bind(entry.amount_minor);
                    });
                }
            }
        }

        async fn account_balance(conn: &mut Conn, account: &str) -> StoreResult<i64> {
            let balance: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM ledger_entries WHERE account_id = $1",
            )
            .bind(account.to_owned())
            .fetch_one(&mut *conn)
            .await?;
            Ok(balance)
        }

        async fn load_refund_policy(conn: &mut Conn, show: &str) -> StoreResult<RefundPolicy> {
            let row: Option<(i64, i64)> = sqlx::query_as(
                "SELECT full_until_hours_before, partial_percent FROM refund_policies WHERE show_id = $1",
            )
            .bind(show.to_owned())
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row
                .map(|(full_until_hours_before, partial_percent)| RefundPolicy { full_until_hours_before, partial_percent })
                .unwrap_or_default())
        }

        async fn load_transactions(conn: &mut Conn, filter: &str, value: &str, limit: i64) -> StoreResult<Vec<LedgerTransaction>> {
            let sql = format!(
                "SELECT id, kind, reference, currency, created_at FROM ledger_transactions {filter} ORDER BY id DESC LIMIT $2"
            );
            let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(value.to_owned())
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, kind, reference, currency, created_at) in rows {
                let entries: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT account_id, amount_minor FROM ledger_entries WHERE transaction_id = $1 ORDER BY position",
                )
                .bind(id.clone())
                .fetch_all(&mut *conn)
                .await?;
                out.push(LedgerTransaction {
                    id,
                    kind,
                    reference,
                    currency,
                    entries: entries
                        .into_iter()
                        .map(|(account, amount_minor)| ledger::Entry { account, amount_minor })
                        .collect(),
                    created_at: Timestamp::from_unix_ms(created_at),
                });
            }
            Ok(out)
        }

        #[async_trait::async_trait]
        impl LedgerStore for $store {
            async fn wallet(&self, user: &UserId, currency: &str, limit: i64) -> StoreResult<(i64, Vec<LedgerTransaction>)> {
                let mut conn = self.pool.acquire().await?;
                let account = ledger::Account::Wallet(user.clone()).id(currency);
                let balance = account_balance(&mut *conn, &account).await?;
                let history = load_transactions(
                    &mut *conn,
                    "WHERE id IN (SELECT transaction_id FROM ledger_entries WHERE account_id = $1)",
                    &account,
                    limit,
                )
                .await?;
                Ok((balance, history))
            }

            async fn ledger(&self, account: Option<&str>, limit: i64) -> StoreResult<Vec<LedgerTransaction>> {
                let mut conn = self.pool.acquire().await?;
                match account {
                    Some(account) => {
                        load_transactions(
                            &mut *conn,
                            "WHERE id IN (SELECT transaction_id FROM ledger_entries WHERE account_id = $1)",
                            account,
                            limit,
                        )
                        .await
                    }
                    None => load_transactions(&mut *conn, "WHERE $1 = $1", "", limit).await,
                }
            }

            async fn check_ledger(&self) -> StoreResult<LedgerCheck> {
                let mut conn = self.pool.acquire().await?;
                let transactions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_transactions").fetch_one(&mut *conn).await?;
                let unbalanced: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT transaction_id FROM ledger_entries GROUP BY transaction_id \
                     HAVING SUM(amount_minor) <> 0) AS off",
                )
                .fetch_one(&mut *conn)
                .await?;
                let totals: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT t.currency, CAST(COALESCE(SUM(e.amount_minor), 0) AS BIGINT) FROM ledger_entries e \
                     JOIN ledger_transactions t ON t.id = e.transaction_id GROUP BY t.currency ORDER BY t.currency",
                )
                .fetch_all(&mut *conn)
                .await?;
                let negative: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT account_id FROM ledger_entries WHERE account_id LIKE 'wallet:%' \
                     GROUP BY account_id HAVING SUM(amount_minor) < 0) AS below",
                )
                .fetch_one(&mut *conn)
                .await?;
                let totals_minor: std::collections::BTreeMap<String, i64> = totals.into_iter().collect();
                Ok(LedgerCheck {
                    transactions,
                    unbalanced_transactions: unbalanced,
                    balanced: unbalanced == 0 && negative == 0 && totals_minor.values().all(|t| *t == 0),
                    totals_minor,
                    negative_wallets: negative,
                })
            }

            async fn refund_policy(&self, show: &ShowId) -> StoreResult<RefundPolicy> {
                let mut conn = self.pool.acquire().await?;
                load_refund_policy(&mut *conn, show.as_str()).await
            }

            async fn put_refund_policy(&self, show: &ShowId, policy: &RefundPolicy) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO refund_policies (show_id, full_until_hours_before, partial_percent) VALUES ($1, $2, $3) \
                     ON CONFLICT (show_id) DO UPDATE SET full_until_hours_before = excluded.full_until_hours_before, \
                     partial_percent = excluded.partial_percent",
                )
                .bind(show.to_string())
                .bind(policy.full_until_hours_before)
                .bind(policy.partial_percent)
                .execute(&mut *w.tx)
                .await?;
                w.tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use ledger_engine;
