//! The embedded engine: one SQLite file in WAL mode. Writers take turns through an in-process
//! gate and `BEGIN IMMEDIATE`, so a write transaction never has to be retried.

use crate::engine::store_engine;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One writer at a time in this process; `BEGIN IMMEDIATE` covers other processes.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    best_hints: Arc<crate::engine::BestAvailableHints>,
    holds_waiting: Arc<crate::group_commit::HoldQueue>,
    bookings_waiting: Arc<crate::group_commit::BookingQueue>,
    releases_waiting: Arc<crate::group_commit::ReleaseQueue>,
}

impl SqliteStore {
    const ENGINE: &'static str = "sqlite";
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged booking survives power loss, not only a process crash (law 2).
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
            best_hints: Default::default(),
            holds_waiting: crate::group_commit::hold_queue(),
            bookings_waiting: crate::group_commit::booking_queue(),
            releases_waiting: crate::group_commit::release_queue(),
        })
    }

    async fn begin_write(&self) -> StoreResult<WriteTx<sqlx::Sqlite>> {
        let gate = self.write_gate.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx {
            tx,
            _gate: Some(gate),
        })
    }
}

store_engine!(
    SqliteStore,
    sqlx::Sqlite,
    lock = "",
    key_lock = "",
    share = "",
    skip_locked = "",
    items_of_each_hold = "LEFT JOIN hold_items hi ON hi.hold_id = h.id",
    fuse_writes = false,
    refresh_statistics = false
);
