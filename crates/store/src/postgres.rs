//! The scale-out engine: PostgreSQL at READ COMMITTED. Claims lock the rows they decide on with
//! `SELECT … FOR UPDATE` in one canonical order, then update them; a conditional `UPDATE` is what
//! finally says yes or no.

use crate::engine::store_engine;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

pub struct PgStore {
    pool: PgPool,
    best_hints: crate::engine::BestAvailableHints,
}

impl PgStore {
    const ENGINE: &'static str = "postgres";
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            best_hints: Default::default(),
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
    share = " FOR SHARE",
    skip_locked = " FOR UPDATE SKIP LOCKED"
);
