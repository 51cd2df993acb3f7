//! What every handler can reach: the store, the clock, the password hasher, the token keys,
//! the ticket signer and the in-flight idempotency keys.

use crate::auth::{PasswordCost, Passwords, Tokens};
use crate::cache::Scope;
use crate::idempotency::InFlight;
use crate::live::{Change, Freed, Live, LiveLimits};
use crate::ratelimit::RateLimits;
use base64::Engine as _;
use boxoffice_core::Clock;
use boxoffice_core::filter::Taken;
use boxoffice_core::ids::{OrganizerId, SeatId, ShowId};
use boxoffice_store::Store;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the HTTP layer; the binary fills them from flags, environment and defaults.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub token_ttl_minutes: i64,
    /// Mark cookies `Secure`; on whenever the service is reached over TLS.
    pub cookie_secure: bool,
    pub password_cost: PasswordCost,
    /// Password hashes computed at once; more wait (bounded) in line.
    pub hashing_concurrency: usize,
    pub sweep_interval: Duration,
    /// Where customer e-mail goes (SMTP, or `.eml` files in a folder).
    pub mail: crate::mail::MailSettings,
    /// How long the simulated payment provider takes to report a later outcome.
    pub simulated_payment_delay: Duration,
    /// How often the outbox dispatcher looks for events to deliver.
    pub dispatch_interval: Duration,
    /// How long a webhook receiver may take to answer before the attempt counts as failed.
    pub webhook_timeout: Duration,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// How long a learned "taken" fact refuses holds in memory before the database is asked
    /// again. Whatever frees a seat is announced and clears the facts of its show on every
    /// instance, lapsed holds when the sweeper releases them; this window only bounds what an
    /// announcement missed, so it is as long as the sweep interval by default. (At 1 s, a
    /// sold-out hall sent every one of its seats back to the database once a second.)
    pub filter_fact_ms: i64,
    /// How long a seat announced sold is refused in memory. A sold seat comes back only through
    /// a cancellation or a show change, both announced to every instance (and made up for by
    /// the outbox dispatcher's resync when the instance that committed one stopped first), so
    /// this only bounds an announcement missed. (At the short window, a long sale's sold seats,
    /// each asked for again now and then, went back to the database: 350 refusals a second
    /// there, a minute into a sale of 20,000 seats.)
    pub filter_sold_fact_ms: i64,
    /// How old a seat map or show view served from memory may be.
    pub read_cache_ms: i64,
    /// How long a session check is reused (changes to sessions and accounts clear it at once).
    pub session_cache_ms: i64,
    /// `redis://…` to run as one of several instances; `None` for a single process.
    pub redis_url: Option<String>,
    pub live: LiveLimits,
    pub rate_limits: RateLimits,
    /// Take the client address from the last `X-Forwarded-For` hop (set behind a proxy only).
    pub trust_forwarded_for: bool,
    /// For tests of recovery: behave like a process that dies right after saving a sale,
    /// cancellation or expiry and before telling viewers (the outbox must make up for it).
    pub skip_live_after_commit: bool,
    /// Every scratch card draws this point of `[0, 1)` instead of a random one (demos, tests).
    pub fixed_scratch_draw: Option<f64>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            token_ttl_minutes: 15,
            cookie_secure: false,
            password_cost: PasswordCost::default(),
            hashing_concurrency: 2,
            sweep_interval: Duration::from_secs(5),
            dispatch_interval: Duration::from_millis(500),
            simulated_payment_delay: Duration::from_secs(3),
            mail: crate::mail::MailSettings::default(),
            webhook_timeout: Duration::from_secs(10),
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            filter_fact_ms: 5_000,
            filter_sold_fact_ms: 60_000,
            read_cache_ms: 250,
            session_cache_ms: 1_000,
            redis_url: None,
            live: LiveLimits::default(),
            rate_limits: RateLimits::default(),
            trust_forwarded_for: false,
            skip_live_after_commit: false,
            fixed_scratch_draw: None,
        }
    }
}

/// Each organizer's Ed25519 ticket key, made on first use and kept in the database (so every
/// instance signs with the same key and scanners need only the published public key).
#[derive(Default)]
pub struct TicketKeys {
    keys: std::sync::Mutex<std::collections::HashMap<OrganizerId, ed25519_dalek::SigningKey>>,
    /// Whose each show is: a show never changes organizer, so this is never stale.
    organizers: std::sync::Mutex<std::collections::HashMap<ShowId, OrganizerId>>,
}

/// Organizers whose keys (and shows whose organizers) are kept in memory at most; beyond it
/// the cache starts over.
const TICKET_KEYS_CACHED: usize = 10_000;

fn keep<K: std::hash::Hash + Eq, V>(map: &mut std::collections::HashMap<K, V>, key: K, value: V) {
    if map.len() >= TICKET_KEYS_CACHED {
        map.clear();
    }
    map.insert(key, value);
}

impl TicketKeys {
    /// The key that signs the tickets of the show's organizer.
    pub async fn of_show(
        &self,
        store: &dyn Store,
        show: &ShowId,
    ) -> Result<Option<ed25519_dalek::SigningKey>, boxoffice_store::StoreError> {
        let known = self
            .organizers
            .lock()
            .expect("show organizers")
            .get(show)
            .cloned();
        let organizer = match known {
            Some(organizer) => organizer,
            None => {
                let Some(found) = store.show(show).await? else {
                    return Ok(None);
                };
                keep(
                    &mut self.organizers.lock().expect("show organizers"),
                    show.clone(),
                    found.organizer_id.clone(),
                );
                found.organizer_id
            }
        };
        self.of(store, &organizer).await.map(Some)
    }

    pub async fn of(
        &self,
        store: &dyn Store,
        organizer: &OrganizerId,
    ) -> Result<ed25519_dalek::SigningKey, boxoffice_store::StoreError> {
        if let Some(key) = self.keys.lock().expect("ticket keys").get(organizer) {
            return Ok(key.clone());
        }
        let fresh = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let stored = store
            .secret(&format!("ticket_ed25519:{organizer}"), &fresh)
            .await?;
        let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                boxoffice_store::StoreError::Corrupt("a ticket key is not 32 bytes".into())
            })?;
        let key = boxoffice_core::ticket::signing_key(&bytes);
        keep(
            &mut self.keys.lock().expect("ticket keys"),
            organizer.clone(),
            key.clone(),
        );
        Ok(key)
    }
}

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub passwords: Passwords,
    pub tokens: Tokens,
    pub tickets: TicketKeys,
    pub in_flight: InFlight,
    pub reads: crate::cache::ReadCache,
    pub filter: std::sync::Mutex<boxoffice_core::filter::AvailabilityFilter>,
    pub live: Live,
    /// Outbox events already told to viewers here, to be ticked off by the next dispatch round.
    pub live_receipts: std::sync::Mutex<Vec<(boxoffice_core::outbox::EventKind, String)>>,
    /// Shows whose waitlist round runs here, and whether places came back since it began.
    pub waitlist_rounds: std::sync::Mutex<std::collections::HashMap<ShowId, bool>>,
    pub sessions: crate::auth::SessionCache,
    pub waiting: crate::waiting_room::WaitingRooms,
    pub limiter: crate::ratelimit::Limiter,
    /// The shared Redis, when instances run together.
    pub redis: Option<Arc<crate::cluster::RedisLink>>,
    /// Turns true when the server begins to shut down; live connections close on it.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Takes card payments; the simulated provider unless a real one is plugged in.
    pub payments: Arc<dyn crate::payments::PaymentProvider>,
    /// This server's own address once it listens (the simulated provider calls back to it).
    pub own_url: Arc<std::sync::OnceLock<String>>,
    pub mailer: crate::mail::Mailer,
    pub config: ServerConfig,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// A show's waitlist round in the background; its place is given up when it ends, however it
/// ends (a round that panicked must not keep the next one out).
struct WaitlistRound {
    app: AppState,
    show: ShowId,
    /// Ended as it should, its place given up already (by then maybe another round's).
    ended: bool,
}

impl Drop for WaitlistRound {
    fn drop(&mut self) {
        if !self.ended {
            let mut rounds = self
                .app
                .waitlist_rounds
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            rounds.remove(&self.show);
        }
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl AppState {
    /// Something in the show changed through this process: what the read cache holds is out of
    /// date (and, if something was freed, what the filter learned), here at once and on other
    /// instances when the change reaches them; every viewer is told.
    pub async fn announce(&self, show: &ShowId, change: Change) -> bool {
        if matches!(change, Change::ShowChanged | Change::ShowCancelled) {
            self.waiting.forget(show);
        }
        self.forget(show, change.freed());
        self.seen_taken(show, change.taken());
        self.live.publish(show, change).await
    }

    /// Seats announced taken, here or by another instance: the filter refuses them in memory.
    pub fn seen_taken(&self, show: &ShowId, taken: Option<(&[SeatId], Taken)>) {
        if let Some((seat_ids, how)) = taken {
            let now = self.clock.now();
            self.filter
                .lock()
                .expect("filter lock")
                .seen_taken(show, seat_ids, how, now);
        }
    }

    /// Tells viewers at once what the outbox event `(kind, subject)` just committed did to the
    /// seat map, and ticks the event off for the live layer; an event never ticked off (this
    /// process died first, or Redis was away) is made up for by the outbox dispatcher.
    pub async fn announce_event(
        &self,
        show: &ShowId,
        change: Change,
        kind: boxoffice_core::outbox::EventKind,
        subject: &str,
    ) {
        if self.config.skip_live_after_commit {
            return;
        }
        if self.announce(show, change).await {
            self.live_receipts
                .lock()
                .expect("receipts lock")
                .push((kind, subject.to_owned()));
        }
    }

    /// Places on the show came back: its waitlist, if any, gets them first (in the background,
    /// so the answer to whoever freed them does not wait). One round of a show at a time: places
    /// that come back while a round runs send it round once more when it ends, so a flash sale's
    /// thousands of releases a second cost a few rounds, not a read of the waitlist each.
    pub fn places_came_back(&self, show: &ShowId) {
        {
            let mut rounds = self
                .waitlist_rounds
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(again) = rounds.get_mut(show) {
                *again = true;
                return;
            }
            rounds.insert(show.clone(), false);
        }
        let (app, show) = (self.clone(), show.clone());
        let round = WaitlistRound {
            app: app.clone(),
            show: show.clone(),
            ended: false,
        };
        // In the freeing request's span: what it logs carries that request's id.
        let serving = async move {
            // The whole guard moves in (not only the field written), to be dropped here.
            let mut round = round;
            loop {
                crate::waitlist::serve(&app, &show).await;
                let mut rounds = app
                    .waitlist_rounds
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                match rounds.get_mut(&show) {
                    Some(again) if *again => *again = false,
                    _ => {
                        // Under the lock: places that come back from now on start a round.
                        rounds.remove(&show);
                        round.ended = true;
                        break;
                    }
                }
            }
        };
        tokio::spawn(tracing::Instrument::in_current_span(serving));
    }

    pub fn forget_show(&self, show: &ShowId) {
        self.waiting.forget(show);
        self.forget(show, Freed::Anything);
    }

    /// The show's reads are out of date, and what the filter learned about what was freed: a
    /// release here forgets its seats only, so the filter keeps what it knows of the others.
    pub fn forget(&self, show: &ShowId, freed: Freed<'_>) {
        match freed {
            Freed::Nothing => {}
            Freed::Seats(seat_ids) => self
                .filter
                .lock()
                .expect("filter lock")
                .freed(show, seat_ids),
            Freed::Anything => self.filter.lock().expect("filter lock").forget(show),
        }
        self.reads.invalidate(&Scope::Show(show.clone()));
    }

    /// Sessions, accounts or memberships changed: no cached session check may be trusted, here
    /// at once and elsewhere as soon as the notice arrives.
    pub async fn accounts_changed(&self) {
        self.sessions.clear();
        self.live
            .publish_notice(crate::live::SESSIONS_CHANNEL)
            .await;
    }

    /// Venues, events or shows changed: listings here are stale at once, elsewhere as soon as
    /// the notice arrives.
    pub async fn catalog_changed(&self) {
        self.reads.invalidate(&Scope::Catalog);
        self.live.publish_notice(crate::live::CATALOG_CHANNEL).await;
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
