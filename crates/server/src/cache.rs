//! The read path from memory: each show's seat map and show view, and event listings, kept
//! serialized, recomputed at most once per `ttl_ms` and at once after a change (made here, or
//! announced by another instance through the live layer). Readers of a cold or stale entry wait
//! for the one computation under way instead of each starting their own (no stampede).
//! Decisions never read this cache, only pages and clients do.

use crate::error::ApiResult;
use axum::body::Bytes;
use boxoffice_core::Timestamp;
use boxoffice_core::ids::ShowId;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// Shows cached at once; beyond it an arbitrary entry makes room.
const MAX_ENTRIES: usize = 20_000;

/// What a change invalidates: one show's views, or every listing of the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Show(ShowId),
    Catalog,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum View {
    SeatMap,
    Show,
    /// An event listing, by its query string.
    Events(String),
}

struct Entry {
    body: Bytes,
    computed_at: Timestamp,
    /// The generation of the show when computed; a change here bumps it.
    generation: u64,
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

pub struct ReadCache {
    slots: Mutex<HashMap<(Scope, View), Slot>>,
    generations: Mutex<HashMap<Scope, u64>>,
    counter: std::sync::atomic::AtomicU64,
    ttl_ms: i64,
}

impl ReadCache {
    pub fn new(ttl_ms: i64) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            generations: Mutex::new(HashMap::new()),
            counter: Default::default(),
            ttl_ms,
        }
    }

    fn generation(&self, scope: &Scope) -> u64 {
        self.generations
            .lock()
            .expect("cache lock")
            .get(scope)
            .copied()
            .unwrap_or(0)
    }

    /// Something in the scope changed: the next read recomputes.
    pub fn invalidate(&self, scope: &Scope) {
        let mut generations = self.generations.lock().expect("cache lock");
        if generations.len() >= MAX_ENTRIES && !generations.contains_key(scope) {
            generations.clear();
        }
        // Numbers from one counter are never reused, so no entry from before a change (or
        // before the map was cleared) can match a generation given after it.
        let next = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        generations.insert(scope.clone(), next);
    }

    pub async fn get<F, Fut>(
        &self,
        scope: &Scope,
        view: View,
        now: Timestamp,
        compute: F,
    ) -> ApiResult<Bytes>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<Bytes>>,
    {
        let key = (scope.clone(), view);
        let slot = {
            let mut slots = self.slots.lock().expect("cache lock");
            if slots.len() >= MAX_ENTRIES && !slots.contains_key(&key) {
                slots.clear();
            }
            slots.entry(key).or_default().clone()
        };
        let mut entry = slot.lock().await;
        let generation = self.generation(scope);
        let fresh = entry.as_ref().is_some_and(|e| {
            e.generation == generation && now.unix_ms() - e.computed_at.unix_ms() < self.ttl_ms
        });
        if !fresh {
            let body = compute().await?;
            *entry = Some(Entry {
                body,
                computed_at: now,
                generation,
            });
        }
        Ok(entry.as_ref().expect("filled above").body.clone())
    }
}

/// After a successful write, the caches it made stale, here and on every other instance:
/// every listing after a change to venues, events or shows (through the live layer), and every
/// cached session check after a change to accounts, sessions, organizers or memberships
/// (through Redis). One layer for all writes, so a new route cannot forget it, and one rather
/// than one per cache: each layer costs every request a boxed clone of the router (≈ 5 % of a
/// refused hold each).
pub async fn writes_invalidate(
    axum::extract::State(app): axum::extract::State<crate::state::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let reads = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if reads {
        return next.run(request).await;
    }
    let path = request.uri().path();
    let catalog = changes_catalog(path);
    let sessions = crate::auth::SessionWrite::of(path);
    let response = next.run(request).await;
    if catalog && response.status().is_success() {
        app.catalog_changed().await;
    }
    if sessions.is_some_and(|write| write.stales_sessions(response.status())) {
        app.accounts_changed().await;
    }
    response
}

/// Whether a write to `path` changes venues, events or shows.
fn changes_catalog(path: &str) -> bool {
    ["/api/v1/venues", "/api/v1/events", "/api/v1/shows"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cold_entry_is_computed_once_for_all_waiting_readers() {
        let cache = Arc::new(ReadCache::new(250));
        let show = ShowId::generate();
        let computed = Arc::new(AtomicUsize::new(0));
        let now = Timestamp::from_unix_ms(0);
        let readers: Vec<_> = (0..50)
            .map(|_| {
                let (cache, show, computed) = (cache.clone(), show.clone(), computed.clone());
                tokio::spawn(async move {
                    cache
                        .get(&Scope::Show(show), View::SeatMap, now, || async {
                            computed.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            Ok(Bytes::from_static(b"map"))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.await.unwrap(), Bytes::from_static(b"map"));
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn entries_expire_and_local_changes_invalidate_at_once() {
        let cache = ReadCache::new(250);
        let show = Scope::Show(ShowId::generate());
        let read = |at: i64, body: &'static [u8]| {
            cache.get(
                &show,
                View::Show,
                Timestamp::from_unix_ms(at),
                move || async move { Ok(Bytes::from_static(body)) },
            )
        };
        assert_eq!(read(0, b"v1").await.unwrap(), "v1");
        assert_eq!(read(249, b"v2").await.unwrap(), "v1", "fresh for the ttl");
        assert_eq!(read(250, b"v3").await.unwrap(), "v3", "then recomputed");
        cache.invalidate(&show);
        assert_eq!(
            read(251, b"v4").await.unwrap(),
            "v4",
            "a local change shows at once"
        );
        let listing = |at: i64, body: &'static [u8]| {
            cache.get(
                &Scope::Catalog,
                View::Events("kind=film".into()),
                Timestamp::from_unix_ms(at),
                move || async move { Ok(Bytes::from_static(body)) },
            )
        };
        assert_eq!(listing(300, b"e1").await.unwrap(), "e1");
        cache.invalidate(&show);
        assert_eq!(
            listing(301, b"e2").await.unwrap(),
            "e1",
            "a show's seats do not touch listings"
        );
        cache.invalidate(&Scope::Catalog);
        assert_eq!(listing(302, b"e3").await.unwrap(), "e3");
    }
}
