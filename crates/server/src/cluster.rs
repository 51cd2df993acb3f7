//! The link to Redis that makes several instances one service: live changes are published
//! through it and rate limits are counted in it. Without `REDIS_URL` there is no link and every
//! part uses its in-process equivalent. When Redis stops answering, callers fall back to those
//! equivalents (never to nothing), `/readyz` reports the degradation, and the link heals by
//! itself: after a failure Redis is left alone for a short pause, then tried again.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long one Redis call may take before the caller falls back; a slow Redis must not make
/// every request slow.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, calls skip Redis for this long instead of each paying the timeout.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(500);

pub struct RedisLink {
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    healthy: AtomicBool,
    paused_until: Mutex<Option<Instant>>,
}

impl RedisLink {
    /// Parses the URL; connecting happens on first use, so an instance starts even while Redis
    /// is down (it serves on its own limits until Redis answers).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            connection: tokio::sync::Mutex::new(None),
            healthy: AtomicBool::new(false),
            paused_until: Mutex::new(None),
        })
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Whether the last call to Redis succeeded.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn paused(&self) -> bool {
        let paused = self.paused_until.lock().expect("pause lock");
        paused.is_some_and(|until| Instant::now() < until)
    }

    fn record(&self, ok: bool) {
        let was = self.healthy.swap(ok, Ordering::Relaxed);
        if was != ok {
            if ok {
                tracing::info!("redis is reachable; shared limits and fan-out resume");
            } else {
                tracing::warn!("redis is unreachable; falling back to per-process limits");
            }
            crate::metrics::redis_healthy(ok);
        }
        *self.paused_until.lock().expect("pause lock") =
            (!ok).then(|| Instant::now() + PAUSE_AFTER_FAILURE);
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let mut slot = self.connection.lock().await;
        if slot.is_none() {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(CALL_TIMEOUT)
                .set_response_timeout(CALL_TIMEOUT)
                .set_number_of_retries(1)
                .set_max_delay(200);
            match tokio::time::timeout(
                CALL_TIMEOUT * 2,
                self.client.get_connection_manager_with_config(config),
            )
            .await
            {
                Ok(Ok(connection)) => *slot = Some(connection),
                _ => return None,
            }
        }
        slot.clone()
    }

    /// Runs a script; `None` when Redis is paused, unreachable or too slow, so the caller uses
    /// its local fallback.
    pub async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> Option<T> {
        if self.paused() {
            return None;
        }
        let outcome = async {
            let mut connection = self.connection().await?;
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(*key);
            }
            for arg in args {
                invocation.arg(*arg);
            }
            tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async(&mut connection))
                .await
                .ok()?
                .map_err(|error| tracing::debug!(%error, "redis call failed"))
                .ok()
        }
        .await;
        self.settle(outcome.is_some()).await;
        outcome
    }

    /// Records the outcome of a call; after a failure the connection is dropped, so the next
    /// attempt after the pause connects afresh instead of waiting on a broken one.
    async fn settle(&self, ok: bool) {
        if !ok {
            *self.connection.lock().await = None;
        }
        self.record(ok);
    }

    /// Asks Redis whether it is there, bypassing the pause (readiness checks must see recovery).
    pub async fn ping(&self) -> bool {
        let ok = async {
            let mut connection = self.connection().await?;
            tokio::time::timeout(
                CALL_TIMEOUT,
                redis::cmd("PING").query_async::<String>(&mut connection),
            )
            .await
            .ok()?
            .ok()
        }
        .await
        .is_some();
        self.settle(ok).await;
        ok
    }
}
