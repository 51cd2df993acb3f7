//! What every Boxoffice integration test stands on: fresh databases of either engine, the real
//! app on a random loopback port, and an API client that speaks to it as a customer would.

pub mod app;
pub mod browser;
pub mod instance;
pub mod postgres;
pub mod receiver;
pub mod redis;
pub mod smtp;
pub mod ws;

pub use app::{Api, Reply, Session, Sibling, TestApp, seat_ids};

use boxoffice_store::Store;
use std::sync::Arc;

/// A loopback port nobody listens on right now, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// The two engines every store and HTTP test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A database that lives as long as the test holds it.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn fresh(engine: Engine) -> Self {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("boxoffice.db").display());
                Self {
                    url,
                    _dir: Some(dir),
                }
            }
            Engine::Postgres => Self {
                url: postgres::fresh_database_url().await,
                _dir: None,
            },
        }
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Arc<dyn Store> {
        let store = boxoffice_store::connect(&self.url)
            .await
            .expect("open the test store");
        store.migrate().await.expect("migrate the test store");
        store
    }
}
