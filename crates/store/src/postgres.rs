//! The scale-out engine: PostgreSQL at READ COMMITTED. Claims lock the rows they decide on in
//! one canonical order (`FOR UPDATE` in the claim's own subquery, or a statement before it), and a
//! conditional `UPDATE` is what finally says yes or no.

use crate::engine::store_engine;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Connections to PostgreSQL: four per core. More backends than that only take turns on the same
/// cores: on 2 cores (the capacity flash sale, 64 clients) 8 connections gave 510–530 granted
/// holds/s with a hold p99 of 85 ms, 16 gave 475–485 and 100 ms, 32 gave 415–425 and 210 ms, and
/// 4 gave 480 and 95 ms.
fn pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    (cores * 4).clamp(4, 64)
}

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    best_hints: std::sync::Arc<crate::engine::BestAvailableHints>,
    holds_waiting: std::sync::Arc<crate::group_commit::HoldQueue>,
    bookings_waiting: std::sync::Arc<crate::group_commit::BookingQueue>,
    releases_waiting: std::sync::Arc<crate::group_commit::ReleaseQueue>,
}

impl PgStore {
    const ENGINE: &'static str = "postgres";
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    pub async fn connect(url: &str) -> StoreResult<Self> {
        // Plans are left to PostgreSQL (`plan_cache_mode = auto`). Forcing generic plans saved
        // re-planning the customer-standing read (0.4 ms a hold) but made a new show's claims
        // scan its seats: a show on sale right after its 20,000 seats were written has the
        // statistics of before them until autovacuum looks (up to a minute), and a generic plan
        // built on those cost 15-40 ms a claim (86 granted holds a second instead of 650).
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size())
            // A ping before every checkout is one more round trip per checkout (sqlx pings again
            // when a connection is given back, which cannot be turned off); a connection that
            // died is found by its next statement instead.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            best_hints: Default::default(),
            holds_waiting: crate::group_commit::hold_queue(),
            bookings_waiting: crate::group_commit::booking_queue(),
            releases_waiting: crate::group_commit::release_queue(),
        })
    }

    async fn begin_write(&self) -> StoreResult<WriteTx<sqlx::Postgres>> {
        Ok(WriteTx {
            tx: self.pool.begin().await?,
            _gate: None,
        })
    }
}

store_engine!(
    PgStore,
    sqlx::Postgres,
    lock = " FOR UPDATE",
    key_lock = " FOR NO KEY UPDATE",
    share = " FOR SHARE",
    skip_locked = " FOR UPDATE SKIP LOCKED",
    // Each hold's items by its key, whatever the statistics say: planned as a join, a group's
    // holds were hashed against a scan of every hold item (its statistics from the sale's first
    // seconds, when the table was small), 700 scans of the whole table in 8 s of a sale. `OFFSET
    // 0` keeps the subquery from being pulled up into that join.
    items_of_each_hold =
        "LEFT JOIN LATERAL (SELECT * FROM hold_items i WHERE i.hold_id = h.id OFFSET 0) hi ON true",
    fuse_writes = true,
    refresh_statistics = true
);
