//! Persistence for Boxoffice: one `Store` contract and two engines, SQLite (the embedded
//! default) and PostgreSQL (for many instances). Both engines share their SQL and their
//! transaction logic (`engine.rs`); they differ only in how a write transaction begins and how
//! rows are locked. The database transaction is the only arbiter of inventory: every claim is
//! decided inside one transaction, all or nothing.

mod accounts;
mod checkin;
mod engine;
mod group_commit;
mod ledger;
mod loyalty;
mod outbox;
mod payments;
mod postgres;
mod promo;
mod rows;
mod sqlite;
mod waitlist;

use async_trait::async_trait;
use boxoffice_core::booking::Booking;
use boxoffice_core::catalog::{Event, Show};
use boxoffice_core::hold::{Hold, HoldRequest};
use boxoffice_core::ids::{BookingId, EventId, HoldId, ShowId, TicketId, UserId, VenueId};
use boxoffice_core::ids::{DeliveryId, MessageId, PaymentId, WebhookId};
use boxoffice_core::ids::{InvitationId, OrganizerId, SeatId, SessionId};
use boxoffice_core::inventory::{AreaView, CategoryAvailability, SeatMap};
use boxoffice_core::payment::PaymentState;
use boxoffice_core::user::{AccountState, Actor, Invitation, MemberRole, Organizer, User};
use boxoffice_core::venue::Venue;
use boxoffice_core::waiting::Room;
use boxoffice_core::{DomainError, Timestamp};
use serde::Serialize;
use std::sync::Arc;

pub use checkin::Admission;
pub use group_commit::{GroupCommits, GroupStats};
pub use ledger::{LedgerCheck, LedgerTransaction};
pub use outbox::{Attempt, DeliveryView, DueDelivery, Message, WebhookEndpoint};
pub use payments::Payment;
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
    /// The organizer's promo code to apply, as the customer typed it.
    pub promo_code: Option<String>,
    /// Loyalty points to spend on it (0 for none).
    pub redeem_points: i64,
    pub now: Timestamp,
}

/// Makes a ticket's code from what it vouches for (the organizer's signature).
pub type TicketSigner =
    std::sync::Arc<dyn Fn(&boxoffice_core::ticket::TicketClaims) -> String + Send + Sync>;

/// Turns a live hold into a booking; `sign_ticket` makes each ticket's door code.
#[derive(Clone)]
pub struct ConfirmHold {
    pub booking_id: BookingId,
    pub hold_id: HoldId,
    /// The hold's show, as the caller read it: bookings wait for their group in a line per show
    /// (a group decides by what the hold's own row says under its lock, not by this).
    pub show_id: ShowId,
    pub user_id: UserId,
    pub payment_reference: String,
    /// The payment intent that paid for it: marked succeeded, with the booking, in the same
    /// transaction (so a booking never exists without its payment, nor a payment twice).
    pub payment_id: Option<boxoffice_core::ids::PaymentId>,
    /// A payment that succeeded at once and is recorded (as succeeded, with the booking) in the
    /// booking's own transaction: one write instead of two.
    pub new_payment: Option<Payment>,
    /// What of the total comes from the customer's wallet (the rest was paid by card); refused
    /// whole when the wallet does not hold it at commit.
    pub wallet_minor: i64,
    pub now: Timestamp,
    /// Where in `[0, 1)` this booking's scratch card is drawn, if it earns one.
    pub scratch_draw: f64,
    /// Makes each ticket's code.
    pub sign_ticket: TicketSigner,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VenueSummary {
    pub id: VenueId,
    pub name: String,
    pub city: String,
    pub timezone: String,
    pub seat_count: i64,
    pub area_capacity: i64,
}

/// Where a venue is, without its layout: for showing times in its zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VenuePlace {
    pub name: String,
    pub city: String,
    pub timezone: String,
}

/// What an organizer sees of a show's sales.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SalesSummary {
    pub show_id: ShowId,
    pub bookings_confirmed: i64,
    pub bookings_cancelled: i64,
    pub tickets_sold: i64,
    pub revenue_minor: i64,
    /// Revenue of confirmed bookings per seat or area category.
    pub revenue_by_category: std::collections::BTreeMap<String, i64>,
    /// Confirmed bookings per hour they were made in, oldest first (the latest
    /// [`SALES_TIMELINE_HOURS`] hours that saw a booking).
    pub timeline: Vec<SalesHour>,
}

/// The most hours of a sales timeline kept: three weeks of hourly figures.
pub const SALES_TIMELINE_HOURS: i64 = 500;

/// Bookings confirmed in one hour of a show's sale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SalesHour {
    pub starts_at: Timestamp,
    pub bookings: i64,
    pub tickets: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventFigures {
    pub event_id: EventId,
    pub title: String,
    pub tickets_sold: i64,
    pub revenue_minor: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DayFigures {
    /// UTC calendar day, `YYYY-MM-DD`.
    pub day: String,
    pub bookings: i64,
    pub revenue_minor: i64,
}

/// An organizer's figures over bookings made in `[from, to)`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OrganizerFigures {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Most tickets sold first, at most ten.
    pub top_events: Vec<EventFigures>,
    pub bookings_confirmed: i64,
    pub bookings_cancelled: i64,
    /// Cancelled share of all bookings made in the range, 0 to 1.
    pub cancellation_rate: f64,
    pub per_day: Vec<DayFigures>,
}

/// Orders for search results; ties are broken by id so pages never overlap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShowSort {
    #[default]
    StartsAt,
    StartsAtDesc,
    /// Cheapest category price first.
    Price,
    Title,
}

/// Discovery filters; every one given must hold.
#[derive(Clone, Debug, Default)]
pub struct ShowQuery {
    /// Matched case-insensitively against the event's title, description and tags.
    pub text: Option<String>,
    pub kind: Option<String>,
    pub event_id: Option<EventId>,
    pub venue_id: Option<VenueId>,
    pub city: Option<String>,
    pub starts_from: Option<Timestamp>,
    pub starts_before: Option<Timestamp>,
    /// Only shows with at least one place free as of `now`.
    pub available: bool,
    /// Only shows with some category priced inside this range (minor units, inclusive).
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub include_cancelled: bool,
    pub sort: ShowSort,
    pub offset: i64,
    pub limit: i64,
}

#[derive(Clone, Debug, Default)]
pub struct ShowFilter {
    pub event_id: Option<EventId>,
    pub after: Option<ShowId>,
    pub limit: i64,
}

/// A sign-in, the family its refresh tokens belong to.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What presenting a refresh token did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// The token was live: it is used up and `next` replaces it.
    Rotated {
        session_id: SessionId,
        user_id: UserId,
    },
    /// The token had been used before: its whole session is now revoked.
    Reused,
    /// Unknown, expired, or its session or account is no longer active.
    Invalid,
}

/// Accounts, tenants and sign-ins.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates the user; with `new_organizer`, also that organizer with the user as its owner.
    async fn insert_user(
        &self,
        user: &User,
        password_hash: &str,
        new_organizer: Option<&Organizer>,
    ) -> StoreResult<()>;
    async fn user(&self, id: &UserId) -> StoreResult<Option<User>>;
    /// The user and password hash for a login.
    async fn credentials(&self, email: &str) -> StoreResult<Option<(User, String)>>;
    async fn user_count(&self) -> StoreResult<i64>;
    async fn users(&self, after: Option<&UserId>, limit: i64) -> StoreResult<Vec<User>>;
    /// Suspending or deleting also revokes every session of the user.
    async fn set_user_state(&self, id: &UserId, state: AccountState) -> StoreResult<Option<User>>;

    /// Creates an organizer owned by an existing, unaffiliated, non-admin user.
    async fn insert_organizer(&self, organizer: &Organizer, owner: &UserId) -> StoreResult<()>;
    async fn organizer(&self, id: &OrganizerId) -> StoreResult<Option<Organizer>>;
    async fn organizers(
        &self,
        after: Option<&OrganizerId>,
        limit: i64,
    ) -> StoreResult<Vec<Organizer>>;
    async fn set_organizer_state(
        &self,
        id: &OrganizerId,
        state: AccountState,
    ) -> StoreResult<Option<Organizer>>;
    /// Adds the account with this email to the organizer (it becomes an organizer account).
    async fn add_member(
        &self,
        organizer: &OrganizerId,
        email: &str,
        role: MemberRole,
        now: Timestamp,
    ) -> StoreResult<User>;
    async fn members(&self, organizer: &OrganizerId) -> StoreResult<Vec<User>>;
    /// Refuses to remove the last owner.
    async fn remove_member(&self, organizer: &OrganizerId, user: &UserId) -> StoreResult<()>;

    async fn insert_invitation(&self, invitation: &Invitation) -> StoreResult<()>;
    async fn invitation(&self, id: &InvitationId) -> StoreResult<Option<Invitation>>;
    /// Pending invitations addressed to `email`, or (with `organizer`) sent by that organizer.
    async fn pending_invitations(
        &self,
        email: Option<&str>,
        organizer: Option<&OrganizerId>,
    ) -> StoreResult<Vec<Invitation>>;
    /// The invitee accepts (joining the organizer) or declines a pending invitation.
    async fn answer_invitation(
        &self,
        id: &InvitationId,
        user: &User,
        accept: bool,
        now: Timestamp,
    ) -> StoreResult<Invitation>;

    async fn insert_session(
        &self,
        session: &SessionRecord,
        refresh_hash: &str,
        refresh_expires_at: Timestamp,
    ) -> StoreResult<()>;
    async fn rotate_refresh(
        &self,
        presented_hash: &str,
        next_hash: &str,
        now: Timestamp,
        next_expires_at: Timestamp,
    ) -> StoreResult<Refresh>;
    async fn revoke_session(&self, id: &SessionId) -> StoreResult<()>;
    /// The caller as of now, if the session is live and the account active.
    async fn actor(
        &self,
        session: &SessionId,
        user: &UserId,
        now: Timestamp,
    ) -> StoreResult<Option<Actor>>;
}

/// Connections of the store's pool, for the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

/// Where outbox events go besides webhooks; each keeps its own "sent" mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// The organizer's Redis stream.
    Stream,
    /// E-mail to the customers concerned.
    Mail,
    /// Viewers of the show, on every instance (seat changes are told at once by the instance
    /// that made them and ticked off; the dispatcher tells the rest).
    Live,
    /// The payment provider, for the card's share of a refund.
    CardRefunds,
}

impl Channel {
    /// Its name in the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Stream => "stream",
            Channel::Mail => "mail",
            Channel::Live => "live",
            Channel::CardRefunds => "card_refunds",
        }
    }

    pub const ALL: [Channel; 4] = [
        Channel::Stream,
        Channel::Mail,
        Channel::Live,
        Channel::CardRefunds,
    ];

    /// Whether the channel sends events of this kind. The others are written already sent on
    /// it (no backlog row, or their column marked), so its consumer never reads them and never
    /// rewrites their rows (every mark
    /// is a new row version with an entry in each of the outbox's indexes).
    pub fn carries(self, kind: boxoffice_core::outbox::EventKind) -> bool {
        use boxoffice_core::outbox::EventKind as K;
        match self {
            Channel::Stream => true,
            Channel::Mail => match kind {
                K::BookingConfirmed
                | K::BookingCancelled
                | K::HoldExpired
                | K::ShowChanged
                | K::PaymentRefunded
                | K::WaitlistOffered => true,
                K::ShowCancelled | K::BookingRefunded | K::PaymentSucceeded | K::PaymentFailed => {
                    false
                }
            },
            Channel::Live => match kind {
                K::ShowChanged
                | K::ShowCancelled
                | K::BookingConfirmed
                | K::BookingCancelled
                | K::HoldExpired => true,
                K::BookingRefunded
                | K::PaymentSucceeded
                | K::PaymentFailed
                | K::PaymentRefunded
                | K::WaitlistOffered => false,
            },
            Channel::CardRefunds => kind == K::BookingRefunded,
        }
    }

    /// Where the outbox keeps what the channel has still to send.
    fn backlog(self) -> Backlog {
        match self {
            Channel::Stream => Backlog::Table("outbox_unstreamed"),
            Channel::Mail => Backlog::Table("outbox_unmailed"),
            Channel::Live => Backlog::Table("outbox_untold"),
            Channel::CardRefunds => Backlog::Column("card_refunded_at"),
        }
    }
}

/// How a channel's unsent events are kept. The channels that carry most of a sale's events (every
/// booking's confirmation) keep a narrow row per unsent event, deleted when it is sent: marking a
/// column of the event instead rewrote its whole row, body included, with a new entry in each
/// index whose predicate it still met (partial indexes name the column, so it is never HOT).
#[derive(Clone, Copy)]
enum Backlog {
    /// The outbox's column that says when the event was sent (NULL until then).
    Column(&'static str),
    /// A table of the unsent events (`message_id`, `kind`, `subject`), a row each.
    Table(&'static str),
}

/// Domain events on their way out, and the webhook endpoints they go to.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Registers an endpoint (at most `MAX_WEBHOOKS_PER_ORGANIZER` per organizer).
    async fn insert_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    async fn webhooks_of(&self, organizer: &OrganizerId) -> StoreResult<Vec<WebhookEndpoint>>;
    async fn webhook(&self, id: &WebhookId) -> StoreResult<Option<WebhookEndpoint>>;
    /// Stops deliveries to it; what it already received stays on record.
    async fn delete_webhook(&self, id: &WebhookId, now: Timestamp) -> StoreResult<()>;
    /// The organizer's events, oldest first.
    async fn messages_of(&self, organizer: &OrganizerId, limit: i64) -> StoreResult<Vec<Message>>;
    /// Makes the deliveries of up to `limit` new events (one per subscribed endpoint); returns
    /// how many events it handled.
    async fn fan_out(&self, now: Timestamp, limit: i64) -> StoreResult<usize>;
    /// Events not yet sent on `channel`, oldest first.
    async fn unsent(&self, channel: Channel, limit: i64) -> StoreResult<Vec<Message>>;
    /// How many events wait for `channel`: its backlog, for the metrics (a channel that falls
    /// behind a sale shows here first).
    async fn unsent_count(&self, channel: Channel) -> StoreResult<i64>;
    /// Ticks off for the live layer the events `(kind, subject)` that were told to viewers
    /// right after their commit.
    async fn mark_told(
        &self,
        events: &[(boxoffice_core::outbox::EventKind, String)],
        now: Timestamp,
    ) -> StoreResult<()>;
    async fn mark_sent(
        &self,
        channel: Channel,
        ids: &[MessageId],
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Customers with a confirmed booking for the show (for notices about it).
    async fn booking_holders(&self, show: &ShowId, limit: i64) -> StoreResult<Vec<UserId>>;
    /// Leases up to `limit` due deliveries for `lease_ms`, each the first pending one of its
    /// endpoint and subject; a lease that lapses (its dispatcher died) frees the delivery again.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueDelivery>>;
    /// Records an attempt: delivered on a 2xx, else tried again at `retry_at`, else given up.
    async fn record_attempt(
        &self,
        id: &DeliveryId,
        attempt: &Attempt,
        now: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> StoreResult<()>;
    /// The endpoint's deliveries, newest first.
    async fn deliveries_of(
        &self,
        endpoint: &WebhookId,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryView>>;
    /// Sends a delivered or given-up delivery of `endpoint` again (`conflict` while it is still
    /// being tried, `not found` for none of this endpoint's).
    async fn replay_delivery(
        &self,
        endpoint: &WebhookId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> StoreResult<()>;
}

/// Payment intents and what keeps a paying customer's seats.
#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Records a new payment (and its outbox event when it is already decided).
    async fn insert_payment(&self, payment: &Payment) -> StoreResult<()>;
    async fn payment(&self, id: &PaymentId) -> StoreResult<Option<Payment>>;
    async fn payment_by_reference(&self, reference: &str) -> StoreResult<Option<Payment>>;
    /// The customer's payment started with this Idempotency-Key.
    async fn payment_by_key(&self, user: &UserId, key: &str) -> StoreResult<Option<Payment>>;
    /// Every payment tried for a hold, oldest first.
    async fn payments_of_hold(&self, hold: &HoldId) -> StoreResult<Vec<Payment>>;
    /// The hold and the first of its payments still being decided (requires action or
    /// processing), read by one statement: what paying for it checks first.
    async fn hold_to_pay(&self, hold: &HoldId) -> StoreResult<Option<(Hold, Option<PaymentId>)>>;
    /// Moves a payment that is in one of `from` to `to`, with its outbox event; `None` when it
    /// was not in `from` (a repeated or late outcome changes nothing).
    async fn move_payment(
        &self,
        id: &PaymentId,
        from: &[PaymentState],
        to: PaymentState,
        reason: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<Payment>>;
    /// Moves a live hold's deadline (and its seats') on to `until`, never back; a hold that has
    /// already expired at `now` stays expired.
    async fn extend_hold(&self, id: &HoldId, now: Timestamp, until: Timestamp) -> StoreResult<()>;
    /// Records a provider event as acted on; `false` if it already was.
    async fn first_provider_event(&self, event_id: &str, now: Timestamp) -> StoreResult<bool>;
    async fn provider_event_seen(&self, event_id: &str) -> StoreResult<bool>;
    /// Records that `amount_minor` of the payment went back to its card: a `payment.refunded`
    /// event (organizer webhooks, the customer's mail).
    async fn record_card_refund(
        &self,
        payment: &Payment,
        amount_minor: i64,
        booking: &BookingId,
        now: Timestamp,
    ) -> StoreResult<()>;
}

/// The books: wallets, every movement of money, and refund policies.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// The wallet's balance in `currency` and its latest movements.
    async fn wallet(
        &self,
        user: &UserId,
        currency: &str,
        limit: i64,
    ) -> StoreResult<(i64, Vec<LedgerTransaction>)>;
    /// Every transaction, or those touching `account`, newest first.
    async fn ledger(
        &self,
        account: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<LedgerTransaction>>;
    async fn check_ledger(&self) -> StoreResult<LedgerCheck>;
    /// The show's policy (the default when it has none of its own).
    async fn refund_policy(
        &self,
        show: &ShowId,
    ) -> StoreResult<boxoffice_core::ledger::RefundPolicy>;
    async fn put_refund_policy(
        &self,
        show: &ShowId,
        policy: &boxoffice_core::ledger::RefundPolicy,
    ) -> StoreResult<()>;
}

/// An organizer's promo codes.
#[async_trait]
pub trait PromoStore: Send + Sync {
    async fn insert_promo(&self, promo: &boxoffice_core::promo::Promo) -> StoreResult<()>;
    /// The organizer's codes, each with how many bookings used it.
    async fn promos_of(
        &self,
        organizer: &OrganizerId,
    ) -> StoreResult<Vec<(boxoffice_core::promo::Promo, i64)>>;
}

/// Tickets at the door.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// A ticket with its booking.
    async fn ticket(
        &self,
        id: &TicketId,
    ) -> StoreResult<Option<(boxoffice_core::booking::Ticket, Booking)>>;
    /// Admits the ticket unless it was admitted before or its booking was cancelled; decided in
    /// one conditional insert, so of any number of simultaneous scans exactly one admits.
    async fn check_in(
        &self,
        ticket: &TicketId,
        gate: &str,
        scanned_at: Timestamp,
        staff: &UserId,
        now: Timestamp,
    ) -> StoreResult<Admission>;
    /// Tickets of the show's cancelled bookings, for scanners to refuse offline.
    async fn revoked_tickets(&self, show: &ShowId, limit: i64) -> StoreResult<Vec<TicketId>>;
    async fn checked_in(&self, show: &ShowId) -> StoreResult<i64>;
}

/// Loyalty points and scratch cards.
#[async_trait]
pub trait LoyaltyStore: Send + Sync {
    async fn loyalty_of(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> StoreResult<boxoffice_core::loyalty::Loyalty>;
    /// Newest first; prizes only of revealed cards.
    async fn scratch_cards_of(
        &self,
        user: &UserId,
    ) -> StoreResult<Vec<boxoffice_core::loyalty::ScratchCard>>;
    /// Scratches the card (once; later calls show the same prize); a revoked card is refused.
    async fn reveal_scratch_card(
        &self,
        id: &boxoffice_core::ids::ScratchCardId,
        user: &UserId,
        now: Timestamp,
    ) -> StoreResult<boxoffice_core::loyalty::ScratchCard>;
    /// Pays cashback prizes of shows that have started into their winners' wallets, once each.
    async fn credit_cashbacks(&self, now: Timestamp, limit: i64) -> StoreResult<usize>;
}

/// What a matching round offered: the entry, now `offered`, and the hold made for it.
#[derive(Clone, Debug)]
pub struct WaitlistOffer {
    pub entry: boxoffice_core::waitlist::WaitlistEntry,
    pub hold: Hold,
}

/// Waitlists of sold-out shows.
#[async_trait]
pub trait WaitlistStore: Send + Sync {
    /// Puts the entry on its show's list (one open entry per customer and show).
    async fn join_waitlist(
        &self,
        entry: &boxoffice_core::waitlist::WaitlistEntry,
    ) -> StoreResult<boxoffice_core::waitlist::WaitlistEntry>;
    async fn waitlist_entry(
        &self,
        id: &boxoffice_core::ids::WaitlistEntryId,
        now: Timestamp,
    ) -> StoreResult<Option<boxoffice_core::waitlist::WaitlistEntry>>;
    /// The customer's entries (on one show, or all), oldest first.
    async fn waitlist_entries_of(
        &self,
        show: Option<&ShowId>,
        user: &UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<boxoffice_core::waitlist::WaitlistEntry>>;
    /// The show's whole list in joining order (at most 1,000 entries).
    async fn waitlist_of(
        &self,
        show: &ShowId,
        now: Timestamp,
    ) -> StoreResult<Vec<boxoffice_core::waitlist::WaitlistEntry>>;
    /// Takes a waiting entry off the list.
    async fn leave_waitlist(
        &self,
        id: &boxoffice_core::ids::WaitlistEntryId,
        user: &UserId,
        now: Timestamp,
    ) -> StoreResult<boxoffice_core::waitlist::WaitlistEntry>;
    async fn shows_with_open_waitlists(&self, limit: i64) -> StoreResult<Vec<ShowId>>;
    /// One matching round: settles past offers, then offers what is free to the first waiting
    /// entries it can serve, by the fairness rule of `core::waitlist`, as of `clock` once the
    /// round holds the show.
    async fn serve_waitlist(
        &self,
        show: &ShowId,
        clock: &dyn boxoffice_core::Clock,
    ) -> StoreResult<Vec<WaitlistOffer>>;
}

#[async_trait]
pub trait Store:
    AccountStore
    + OutboxStore
    + PaymentStore
    + LedgerStore
    + TicketStore
    + PromoStore
    + WaitlistStore
    + LoyaltyStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`, for logs and health output.
    fn engine(&self) -> &'static str;
    fn pool_stats(&self) -> PoolStats;
    /// Groups of new holds and of bookings committed together (group commit).
    fn group_stats(&self) -> GroupCommits;
    /// Holds not yet expired, released or booked.
    async fn active_holds(&self, now: Timestamp) -> StoreResult<i64>;
    async fn migrate(&self) -> StoreResult<()>;
    async fn ping(&self) -> StoreResult<()>;
    /// The stored value of a named secret, or `candidate` if this call is the first to store it.
    async fn secret(&self, name: &str, candidate: &str) -> StoreResult<String>;

    /// The catalog inserts take an optional key like every command: `Done(())` means "inserted,
    /// answer with the value you passed"; the value is what a replay answers.
    async fn insert_venue(
        &self,
        venue: &Venue,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<()>>;
    async fn venue(&self, id: &VenueId) -> StoreResult<Option<Venue>>;
    /// The venue's name, city and time zone, without reading its layout (which may hold tens of
    /// thousands of seats).
    async fn venue_place(&self, id: &VenueId) -> StoreResult<Option<VenuePlace>>;
    /// Name, city and time zone only.
    async fn update_venue_details(&self, venue: &Venue) -> StoreResult<()>;
    /// Swaps the whole layout and rebuilds the inventory of the venue's shows; refused once any
    /// show there has a booking or a live hold, since that would orphan sold or held seats.
    async fn replace_layout(&self, venue: &Venue, now: Timestamp) -> StoreResult<()>;
    /// Sets the capacity of one standing area for one show (more places, or fewer down to
    /// what is sold and held).
    async fn set_area_capacity(
        &self,
        show: &ShowId,
        area: &boxoffice_core::ids::AreaId,
        capacity: i64,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Refused while any show uses the venue.
    async fn delete_venue(&self, id: &VenueId) -> StoreResult<()>;
    async fn venues_of(&self, organizer: &OrganizerId) -> StoreResult<Vec<VenueSummary>>;

    async fn insert_event(
        &self,
        event: &Event,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<()>>;
    async fn event(&self, id: &EventId) -> StoreResult<Option<Event>>;
    async fn update_event(&self, event: &Event) -> StoreResult<()>;
    /// Refused while the event has shows.
    async fn delete_event(&self, id: &EventId) -> StoreResult<()>;
    /// Events by creation, after the cursor; only `organizer`'s when given.
    async fn events(
        &self,
        organizer: Option<&OrganizerId>,
        after: Option<&EventId>,
        limit: i64,
    ) -> StoreResult<Vec<Event>>;

    /// Creates the show and its inventory (a row per seat, a counter per area) in one transaction.
    async fn insert_show(
        &self,
        show: &Show,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<()>>;
    /// Creates every show or none; a clash with another show at the venue is a `ScheduleConflict`.
    async fn insert_schedule(
        &self,
        shows: &[Show],
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<()>>;
    /// Rewrites a scheduled show's selling terms (prices of existing categories, limits, window).
    async fn update_show(&self, show: &Show, now: Timestamp) -> StoreResult<()>;
    /// Stops all sales, releases holds and cancels bookings (marked for refund); returns how many.
    async fn cancel_show(&self, id: &ShowId, now: Timestamp) -> StoreResult<i64>;
    async fn show(&self, id: &ShowId) -> StoreResult<Option<Show>>;
    async fn shows(&self, filter: &ShowFilter) -> StoreResult<Vec<Show>>;
    /// Discovery over shows (joined with their event and venue); `limit` rows from `offset`.
    async fn search_shows(&self, query: &ShowQuery, now: Timestamp) -> StoreResult<Vec<Show>>;
    /// Events with at least one show matching `query` (the show-level filters), or all events
    /// matching the event-level ones when `query` names none; ordered by their first such show.
    async fn search_events(&self, query: &ShowQuery, now: Timestamp) -> StoreResult<Vec<Event>>;
    async fn seat_map(&self, show: &Show, now: Timestamp) -> StoreResult<SeatMap>;
    /// The seat map's per-category counts and its areas, without reading every seat's row.
    async fn availability(
        &self,
        show: &Show,
        now: Timestamp,
    ) -> StoreResult<(Vec<CategoryAvailability>, Vec<AreaView>)>;
    async fn sales(&self, show_id: &ShowId) -> StoreResult<SalesSummary>;
    async fn organizer_figures(
        &self,
        organizer: &OrganizerId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<OrganizerFigures>;

    /// Claims everything the request names, or nothing.
    async fn create_hold(
        &self,
        cmd: CreateHold,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<Hold>>;
    async fn hold(&self, id: &HoldId) -> StoreResult<Option<Hold>>;
    /// The customer lets the hold go: its seats and places are freed, and a payment of it still
    /// waiting for the customer's bank is cancelled in the same transaction. Releasing a hold
    /// that is over already answers it as it is.
    async fn release_hold(
        &self,
        id: &HoldId,
        user_id: &UserId,
        now: Timestamp,
    ) -> StoreResult<Hold>;
    /// Tidies holds past their deadline and frees their seats; correctness never waits for it.
    async fn expire_holds(&self, now: Timestamp, limit: i64) -> StoreResult<Vec<ExpiredHold>>;

    async fn confirm_hold(
        &self,
        cmd: ConfirmHold,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<Booking>>;
    async fn booking(&self, id: &BookingId) -> StoreResult<Option<Booking>>;
    async fn bookings_of(
        &self,
        user_id: &UserId,
        after: Option<&BookingId>,
        limit: i64,
    ) -> StoreResult<Vec<Booking>>;
    /// Cancels a booking and refunds it by the show's policy (the wallet's share to the wallet,
    /// the rest to `refund_to`), in one transaction.
    async fn cancel_booking(
        &self,
        id: &BookingId,
        user_id: &UserId,
        now: Timestamp,
        refund_to: boxoffice_core::ledger::RefundTo,
        idem: Option<&IdempotencyKey>,
    ) -> StoreResult<Outcome<Booking>>;

    /// The show's waiting room, if one was ever set up.
    async fn waiting_room(&self, show: &ShowId) -> StoreResult<Option<Room>>;
    /// Creates or replaces the show's waiting room settings.
    async fn put_waiting_room(&self, show: &ShowId, room: &Room, now: Timestamp)
    -> StoreResult<()>;

    async fn saved_response(
        &self,
        user_id: &UserId,
        key: &str,
    ) -> StoreResult<Option<SavedResponse>>;
}

/// A hold the sweeper retired, with what it freed, so viewers can be told.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpiredHold {
    pub id: HoldId,
    pub show_id: ShowId,
    pub seat_ids: Vec<SeatId>,
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
