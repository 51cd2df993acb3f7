//! Persistence for Boxoffice: one `Store` contract and two engines, SQLite (the embedded
//! default) and PostgreSQL (for many instances). Both engines share their SQL and their
//! transaction logic (`engine.rs`); they differ only in how a write transaction begins and how
//! rows are locked. The database transaction is the only arbiter of inventory: every claim is
//! decided inside one transaction, all or nothing.

mod engine;
mod postgres;
mod rows;
mod sqlite;

use async_trait::async_trait;
use boxoffice_core::booking::Booking;
use boxoffice_core::catalog::{Event, Show};
use boxoffice_core::hold::{Hold, HoldRequest};
use boxoffice_core::ids::{BookingId, EventId, HoldId, ShowId, TicketId, UserId, VenueId};
use boxoffice_core::inventory::SeatMap;
use boxoffice_core::user::User;
use boxoffice_core::venue::Venue;
use boxoffice_core::{DomainError, Timestamp};
use serde::Serialize;
use std::sync::Arc;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An `Idempotency-Key` as the store records it, beside the effect it protects.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    pub user_id: UserId,
    pub key: String,
    /// Hash of method, path and body: the same key with another request is refused.
    pub fingerprint: String,
    /// The HTTP status the first answer had, replayed with its body.
    pub status: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedResponse {
    pub status: u16,
    pub body: String,
    pub fingerprint: String,
}

/// A command's result: done now, or done before under the same idempotency key.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    Replayed(SavedResponse),
}

impl Outcome<()> {
    /// The answer of an insert: the inserted value, unless the first answer is replayed.
    pub fn with<T>(self, value: T) -> Outcome<T> {
        match self {
            Outcome::Done(()) => Outcome::Done(value),
            Outcome::Replayed(saved) => Outcome::Replayed(saved),
        }
    }
}

impl<T> Outcome<T> {
    /// Keeps only whether it was done now or replayed.
    pub fn discard(self) -> Outcome<()> {
        match self {
            Outcome::Done(_) => Outcome::Done(()),
            Outcome::Replayed(saved) => Outcome::Replayed(saved),
        }
    }
}

#[derive(Clone, Debug)]
pub struct CreateHold {
    pub hold_id: HoldId,
    pub show_id: ShowId,
    pub user_id: UserId,
    pub request: HoldRequest,
    pub now: Timestamp,
}

/// Turns a live hold into a booking; `sign_ticket` makes each ticket's door code.
pub struct ConfirmHold<'a> {
    pub booking_id: BookingId,
    pub hold_id: HoldId,
    pub user_id: UserId,
    pub payment_reference: String,
    pub now: Timestamp,
    pub sign_ticket: &'a (dyn Fn(&TicketId) -> String + Send + Sync),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VenueSummary {
    pub id: VenueId,
    pub name: String,
    pub city: String,
    pub timezone: String,
    pub seat_count: i64,
    pub area_capacity: i64,
}

/// What an organizer sees of a show's sales.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SalesSummary {
    pub show_id: ShowId,
    pub bookings_confirmed: i64,
    pub bookings_cancelled: i64,
    pub tickets_sold: i64,
    pub revenue_minor: i64,
}

#[derive(Clone, Debug, Default)]
pub struct ShowFilter {
    pub event_id: Option<EventId>,
    pub after: Option<ShowId>,
    pub limit: i64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and health output.
    fn engine(&self) -> &'static str;
    async fn migrate(&self) -> StoreResult<()>;
    async fn ping(&self) -> StoreResult<()>;
    /// The stored value of a named secret, or `candidate` if this call is the first to store it.
    async fn secret(&self, name: &str, candidate: &str) -> StoreResult<String>;

    async fn insert_user(&self, user: &User, password_hash: &str) -> StoreResult<()>;
    async fn user(&self, id: &UserId) -> StoreResult<Option<User>>;
    /// The user and password hash for a login.
    async fn credentials(&self, email: &str) -> StoreResult<Option<(User, String)>>;
    async fn user_count(&self) -> StoreResult<i64>;

    /// The catalog inserts take an optional key like every command: `Done(())` means "inserted,
    /// answer with the value you passed"; the value is what a replay answers.
    async fn insert_venue(
        &self,
        venue: &Venue,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<()>>;
    async fn venue(&self, id: &VenueId) -> StoreResult<Option<Venue>>;
    async fn venues_of(&self, owner: &UserId) -> StoreResult<Vec<VenueSummary>>;

    async fn insert_event(
        &self,
        event: &Event,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<()>>;
    async fn event(&self, id: &EventId) -> StoreResult<Option<Event>>;
    async fn events(&self, after: Option<&EventId>, limit: i64) -> StoreResult<Vec<Event>>;

    /// Creates the show and its inventory (a row per seat, a counter per area) in one transaction.
    async fn insert_show(
        &self,
        show: &Show,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<()>>;
    async fn show(&self, id: &ShowId) -> StoreResult<Option<Show>>;
    async fn shows(&self, filter: &ShowFilter) -> StoreResult<Vec<Show>>;
    async fn seat_map(&self, show: &Show, now: Timestamp) -> StoreResult<SeatMap>;
    async fn sales(&self, show_id: &ShowId) -> StoreResult<SalesSummary>;

    /// Claims everything the request names, or nothing.
    async fn create_hold(
        &self,
        cmd: CreateHold,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<Hold>>;
    async fn hold(&self, id: &HoldId) -> StoreResult<Option<Hold>>;
    async fn release_hold(
        &self,
        id: &HoldId,
        user_id: &UserId,
        now: Timestamp,
    ) -> StoreResult<Hold>;
    /// Tidies holds past their deadline and frees their seats; correctness never waits for it.
    async fn expire_holds(&self, now: Timestamp, limit: i64) -> StoreResult<Vec<HoldId>>;

    async fn confirm_hold(
        &self,
        cmd: ConfirmHold<'_>,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<Booking>>;
    async fn booking(&self, id: &BookingId) -> StoreResult<Option<Booking>>;
    async fn bookings_of(
        &self,
        user_id: &UserId,
        after: Option<&BookingId>,
        limit: i64,
    ) -> StoreResult<Vec<Booking>>;
    async fn cancel_booking(
        &self,
        id: &BookingId,
        user_id: &UserId,
        now: Timestamp,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<Booking>>;

    async fn saved_response(
        &self,
        user_id: &UserId,
        key: &str,
    ) -> StoreResult<Option<SavedResponse>>;
}

/// Opens the store a URL names: `sqlite://PATH` (created if missing) or `postgres://…`.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}
