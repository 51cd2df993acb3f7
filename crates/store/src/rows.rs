//! Rows as both engines return them, and their conversion into domain values. Every column is
//! TEXT, BIGINT or DOUBLE, so one row type decodes from SQLite and PostgreSQL alike.

use crate::StoreError;
use boxoffice_core::booking::{Booking, BookingState, Ticket};
use boxoffice_core::catalog::{Event, EventKind, Format, Show, ShowState};
use boxoffice_core::hold::{self, Hold, HoldItem, HoldState};
use boxoffice_core::ids::*;
use boxoffice_core::inventory::{AreaView, SeatState, SeatView};
use boxoffice_core::user::{
    AccountState, Invitation, InvitationState, MemberRole, Membership, Organizer, Role, User,
};
use boxoffice_core::venue::{Area, Seat, Section};
use boxoffice_core::{Currency, Money, Timestamp};
use std::collections::BTreeMap;

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

/// Columns of `USER_SELECT`: a user with its membership, if any.
#[derive(sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub state: String,
    pub password_hash: String,
    pub created_at: i64,
    pub organizer_id: Option<String>,
    pub member_role: Option<String>,
}

pub const USER_SELECT: &str = "SELECT u.id, u.email, u.name, u.role, u.state, u.password_hash, u.created_at, \
     m.organizer_id, m.role AS member_role FROM users u LEFT JOIN memberships m ON m.user_id = u.id";

pub fn membership(
    organizer_id: Option<String>,
    role: Option<String>,
) -> Result<Option<Membership>, StoreError> {
    match (organizer_id, role) {
        (Some(organizer_id), Some(role)) => Ok(Some(Membership {
            organizer_id: OrganizerId::from_trusted(organizer_id),
            role: MemberRole::parse(&role).ok_or_else(|| corrupt("member role", &role))?,
        })),
        _ => Ok(None),
    }
}

impl UserRow {
    pub fn into_user(self) -> Result<(User, String), StoreError> {
        let role = Role::parse(&self.role).ok_or_else(|| corrupt("role", &self.role))?;
        let user = User {
            id: UserId::from_trusted(self.id),
            email: self.email,
            name: self.name,
            role,
            state: AccountState::parse(&self.state)
                .ok_or_else(|| corrupt("account state", &self.state))?,
            organizer: membership(self.organizer_id, self.member_role)?,
            created_at: Timestamp::from_unix_ms(self.created_at),
        };
        Ok((user, self.password_hash))
    }
}

#[derive(sqlx::FromRow)]
pub struct InvitationRow {
    pub id: String,
    pub organizer_id: String,
    pub email: String,
    pub role: String,
    pub state: String,
    pub invited_by: String,
    pub created_at: i64,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = StoreError;
    fn try_from(row: InvitationRow) -> Result<Self, StoreError> {
        Ok(Invitation {
            role: MemberRole::parse(&row.role).ok_or_else(|| corrupt("member role", &row.role))?,
            state: InvitationState::parse(&row.state)
                .ok_or_else(|| corrupt("invitation state", &row.state))?,
            id: InvitationId::from_trusted(row.id),
            organizer_id: OrganizerId::from_trusted(row.organizer_id),
            email: row.email,
            invited_by: UserId::from_trusted(row.invited_by),
            created_at: Timestamp::from_unix_ms(row.created_at),
        })
    }
}

pub const INVITATION_COLUMNS: &str = "id, organizer_id, email, role, state, invited_by, created_at";

#[derive(sqlx::FromRow)]
pub struct OrganizerRow {
    pub id: String,
    pub name: String,
    pub state: String,
    pub created_at: i64,
}

impl TryFrom<OrganizerRow> for Organizer {
    type Error = StoreError;
    fn try_from(row: OrganizerRow) -> Result<Self, StoreError> {
        Ok(Organizer {
            state: AccountState::parse(&row.state)
                .ok_or_else(|| corrupt("organizer state", &row.state))?,
            id: OrganizerId::from_trusted(row.id),
            name: row.name,
            created_at: Timestamp::from_unix_ms(row.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct VenueRow {
    pub id: String,
    pub organizer_id: String,
    pub name: String,
    pub city: String,
    pub timezone: String,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
pub struct SectionRow {
    pub id: String,
    pub name: String,
}

impl From<SectionRow> for Section {
    fn from(row: SectionRow) -> Self {
        Section {
            id: SectionId::from_trusted(row.id),
            name: row.name,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct SeatRow {
    pub id: String,
    pub section_id: String,
    pub row_label: String,
    pub row_rank: i64,
    pub number: i64,
    pub label: String,
    pub category: String,
    pub x: f64,
    pub y: f64,
    pub blocked: i64,
}

impl From<SeatRow> for Seat {
    fn from(row: SeatRow) -> Self {
        Seat {
            id: SeatId::from_trusted(row.id),
            section_id: SectionId::from_trusted(row.section_id),
            row_label: row.row_label,
            row_rank: row.row_rank,
            number: row.number,
            label: row.label,
            category: row.category,
            x: row.x,
            y: row.y,
            blocked: row.blocked != 0,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct AreaRow {
    pub id: String,
    pub name: String,
    pub category: String,
    pub capacity: i64,
}

impl From<AreaRow> for Area {
    fn from(row: AreaRow) -> Self {
        Area {
            id: AreaId::from_trusted(row.id),
            name: row.name,
            category: row.category,
            capacity: row.capacity,
        }
    }
}

pub const EVENT_COLUMNS: &str = "id, organizer_id, title, kind, description, duration_minutes, tags, age_rating, \
     image_url, language, subtitles, format, created_at";

#[derive(sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    pub organizer_id: String,
    pub title: String,
    pub kind: String,
    pub description: String,
    pub duration_minutes: Option<i64>,
    pub tags: String,
    pub age_rating: Option<String>,
    pub image_url: Option<String>,
    pub language: Option<String>,
    pub subtitles: Option<String>,
    pub format: Option<String>,
    pub created_at: i64,
}

fn format_of(raw: Option<String>) -> Result<Option<Format>, StoreError> {
    raw.map(|f| Format::parse(&f).ok_or_else(|| corrupt("format", &f)))
        .transpose()
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;
    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        Ok(Event {
            id: EventId::from_trusted(row.id),
            organizer_id: OrganizerId::from_trusted(row.organizer_id),
            title: row.title,
            kind: EventKind::parse(&row.kind).ok_or_else(|| corrupt("event kind", &row.kind))?,
            description: row.description,
            duration_minutes: row.duration_minutes,
            tags: serde_json::from_str(&row.tags).map_err(|_| corrupt("tags", &row.tags))?,
            age_rating: row.age_rating,
            image_url: row.image_url,
            language: row.language,
            subtitles: row.subtitles,
            format: format_of(row.format)?,
            created_at: Timestamp::from_unix_ms(row.created_at),
        })
    }
}

pub const SHOW_COLUMNS: &str = "id, event_id, organizer_id, venue_id, state, starts_at, ends_at, on_sale_at, \
     off_sale_at, currency, hold_minutes, max_tickets_per_order, max_tickets_per_customer, format, language, \
     created_at, cancelled_at";

#[derive(sqlx::FromRow)]
pub struct ShowRow {
    pub id: String,
    pub event_id: String,
    pub organizer_id: String,
    pub venue_id: String,
    pub state: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub on_sale_at: i64,
    pub off_sale_at: i64,
    pub format: Option<String>,
    pub language: Option<String>,
    pub cancelled_at: Option<i64>,
    pub currency: String,
    pub hold_minutes: i64,
    pub max_tickets_per_order: i64,
    pub max_tickets_per_customer: i64,
    pub created_at: i64,
}

/// One row of a show read together with its prices: the show, its organizer's state, and one
/// of its prices (none, all null, for a show without prices).
#[derive(sqlx::FromRow)]
pub struct ShowWithPriceRow {
    #[sqlx(flatten)]
    pub show: ShowRow,
    pub organizer_state: Option<String>,
    pub price_category: Option<String>,
    pub price_amount_minor: Option<i64>,
    pub price_locked: Option<bool>,
}

/// The show those rows tell with its organizer's state, its prices gathered; `None` when there
/// were no rows.
pub fn show_from_rows(
    rows: Vec<ShowWithPriceRow>,
) -> Result<Option<(Show, Option<String>)>, StoreError> {
    let mut list = PriceList::default();
    let mut first = None;
    for row in rows {
        if let (Some(category), Some(amount)) = (row.price_category, row.price_amount_minor) {
            list.add(category, amount, row.price_locked.unwrap_or(false));
        }
        first.get_or_insert((row.show, row.organizer_state));
    }
    first
        .map(|(show, organizer_state)| Ok((show.into_show(list)?, organizer_state)))
        .transpose()
}

#[derive(sqlx::FromRow)]
pub struct PriceRow {
    pub show_id: String,
    pub category: String,
    pub amount_minor: i64,
    pub locked: bool,
}

/// A show's price list: the price per category, and the categories sold only with a code.
#[derive(Clone, Debug, Default)]
pub struct PriceList {
    pub prices: BTreeMap<String, i64>,
    pub locked: std::collections::BTreeSet<String>,
}

impl PriceList {
    /// One category's price, as a `show_prices` row has it.
    pub fn add(&mut self, category: String, amount_minor: i64, locked: bool) {
        if locked {
            self.locked.insert(category.clone());
        }
        self.prices.insert(category, amount_minor);
    }
}

impl ShowRow {
    pub fn into_show(self, list: PriceList) -> Result<Show, StoreError> {
        Ok(Show {
            id: ShowId::from_trusted(self.id),
            event_id: EventId::from_trusted(self.event_id),
            organizer_id: OrganizerId::from_trusted(self.organizer_id),
            venue_id: VenueId::from_trusted(self.venue_id),
            state: ShowState::parse(&self.state)
                .ok_or_else(|| corrupt("show state", &self.state))?,
            starts_at: Timestamp::from_unix_ms(self.starts_at),
            ends_at: Timestamp::from_unix_ms(self.ends_at),
            on_sale_at: Timestamp::from_unix_ms(self.on_sale_at),
            off_sale_at: Timestamp::from_unix_ms(self.off_sale_at),
            format: format_of(self.format)?,
            language: self.language,
            cancelled_at: self.cancelled_at.map(Timestamp::from_unix_ms),
            currency: Currency::from_trusted(self.currency),
            prices: list.prices,
            locked_categories: list.locked,
            hold_minutes: self.hold_minutes,
            max_tickets_per_order: self.max_tickets_per_order,
            max_tickets_per_customer: self.max_tickets_per_customer,
            created_at: Timestamp::from_unix_ms(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct SeatMapRow {
    pub seat_id: String,
    pub section_name: String,
    pub row_label: String,
    pub number: i64,
    pub label: String,
    pub category: String,
    pub x: f64,
    pub y: f64,
    pub state: String,
    pub held_until: Option<i64>,
}

impl SeatMapRow {
    pub fn into_view(self, show: &Show, now: Timestamp) -> SeatView {
        let state = SeatState::effective(
            &self.state,
            self.held_until.map(Timestamp::from_unix_ms),
            now,
        );
        SeatView {
            price_minor: show.prices.get(&self.category).copied().unwrap_or_default(),
            id: SeatId::from_trusted(self.seat_id),
            section: self.section_name,
            row: self.row_label,
            number: self.number,
            label: self.label,
            category: self.category,
            x: self.x,
            y: self.y,
            state,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct AreaMapRow {
    pub area_id: String,
    pub name: String,
    pub category: String,
    pub capacity: i64,
    pub sold: i64,
    pub held: i64,
}

impl AreaMapRow {
    pub fn into_view(self, show: &Show) -> AreaView {
        AreaView {
            price_minor: show.prices.get(&self.category).copied().unwrap_or_default(),
            id: AreaId::from_trusted(self.area_id),
            name: self.name,
            category: self.category,
            capacity: self.capacity,
            free: (self.capacity - self.sold - self.held).max(0),
            held: self.held,
            sold: self.sold,
        }
    }
}

/// Where a customer stands on one show, for the per-customer rules of a new hold.
#[derive(Debug, Default)]
pub struct CustomerStanding {
    /// Holds still alive.
    pub active: i64,
    /// Deadlines of holds that ran out within the anti-hoarding window, oldest first.
    pub lapsed: Vec<Timestamp>,
    /// Tickets in live holds and in confirmed bookings.
    pub tickets: i64,
}

/// A hold of the customer's on the show (its state, deadline and places), or with state
/// `booked` the tickets of the customer's confirmed bookings.
#[derive(Debug)]
pub struct StandingRow {
    pub state: String,
    pub expires_at: i64,
    pub quantity: i64,
}

impl CustomerStanding {
    /// The standing at `now` from the customer's rows (read for a moment no later than `now`).
    pub fn of(rows: Vec<StandingRow>, now: Timestamp) -> Self {
        let window = now.plus_minutes(-hold::LAPSE_WINDOW_MINUTES).unix_ms();
        let mut standing = CustomerStanding::default();
        for row in rows {
            match row.state.as_str() {
                "booked" => standing.tickets += row.quantity,
                "active" if row.expires_at > now.unix_ms() => {
                    standing.active += 1;
                    standing.tickets += row.quantity;
                }
                _ if row.expires_at > window => standing
                    .lapsed
                    .push(Timestamp::from_unix_ms(row.expires_at)),
                _ => {}
            }
        }
        standing.lapsed.sort();
        standing
    }
}

#[derive(sqlx::FromRow)]
pub struct CandidateRow {
    pub id: String,
    pub row_rank: i64,
    pub number: i64,
    pub x: f64,
    /// Free at the pick's moment (held seats past their time included).
    pub free: bool,
}

#[derive(sqlx::FromRow)]
pub struct HoldRow {
    pub id: String,
    pub show_id: String,
    pub user_id: String,
    pub state: String,
    pub total_minor: i64,
    pub currency: String,
    pub discount_minor: i64,
    pub promo_code: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub points_redeemed: i64,
}

/// The columns of `HoldWithItemRow`, from holds `h` left-joined with their items `hi`.
pub const HOLD_WITH_ITEM_COLUMNS: &str = "h.id, h.show_id, h.user_id, h.state, h.total_minor, h.currency, \
    h.discount_minor, h.promo_code, h.created_at, h.expires_at, h.points_redeemed, \
    hi.seat_id, hi.area_id, hi.label, hi.category, hi.quantity, hi.unit_price_minor";

/// One row of a hold read together with its items: the hold, and one of its items (none, all
/// null, for a hold without items).
#[derive(sqlx::FromRow)]
pub struct HoldWithItemRow {
    #[sqlx(flatten)]
    pub hold: HoldRow,
    pub seat_id: Option<String>,
    pub area_id: Option<String>,
    pub label: Option<String>,
    pub category: Option<String>,
    pub quantity: Option<i64>,
    pub unit_price_minor: Option<i64>,
}

/// A row of a hold read with its items and the first of its payments still being decided.
#[derive(sqlx::FromRow)]
pub struct HoldToPayRow {
    #[sqlx(flatten)]
    pub hold: HoldWithItemRow,
    pub open_payment: Option<String>,
}

/// The hold those rows tell, items in their order; `None` when there were no rows.
pub fn hold_from_rows(rows: Vec<HoldWithItemRow>) -> Result<Option<Hold>, StoreError> {
    Ok(holds_from_rows(rows)?.into_values().next())
}

/// The holds those rows tell (each hold's rows one after another, items in their order), by id.
pub fn holds_from_rows(
    rows: Vec<HoldWithItemRow>,
) -> Result<std::collections::BTreeMap<String, Hold>, StoreError> {
    let mut holds = std::collections::BTreeMap::new();
    let mut current: Option<(HoldRow, Vec<HoldItemRow>)> = None;
    for row in rows {
        if current
            .as_ref()
            .is_some_and(|(hold, _)| hold.id != row.hold.id)
        {
            let (hold, items) = current.take().expect("a hold being read");
            holds.insert(hold.id.clone(), hold.into_hold(items)?);
        }
        let (_, items) = current.get_or_insert_with(|| (row.hold, Vec::new()));
        if let (Some(label), Some(category), Some(quantity), Some(unit_price_minor)) =
            (row.label, row.category, row.quantity, row.unit_price_minor)
        {
            items.push(HoldItemRow {
                seat_id: row.seat_id,
                area_id: row.area_id,
                label,
                category,
                quantity,
                unit_price_minor,
            });
        }
    }
    if let Some((hold, items)) = current {
        holds.insert(hold.id.clone(), hold.into_hold(items)?);
    }
    Ok(holds)
}

#[derive(sqlx::FromRow)]
pub struct HoldItemRow {
    pub seat_id: Option<String>,
    pub area_id: Option<String>,
    pub label: String,
    pub category: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
}

impl From<HoldItemRow> for HoldItem {
    fn from(row: HoldItemRow) -> Self {
        HoldItem {
            seat_id: row.seat_id.map(SeatId::from_trusted),
            area_id: row.area_id.map(AreaId::from_trusted),
            label: row.label,
            category: row.category,
            quantity: row.quantity,
            unit_price_minor: row.unit_price_minor,
        }
    }
}

impl HoldRow {
    pub fn into_hold(self, items: Vec<HoldItemRow>) -> Result<Hold, StoreError> {
        Ok(Hold {
            state: HoldState::parse(&self.state)
                .ok_or_else(|| corrupt("hold state", &self.state))?,
            id: HoldId::from_trusted(self.id),
            show_id: ShowId::from_trusted(self.show_id),
            user_id: UserId::from_trusted(self.user_id),
            items: items.into_iter().map(HoldItem::from).collect(),
            total: Money::new(self.total_minor, Currency::from_trusted(self.currency)),
            discount_minor: self.discount_minor,
            promo_code: self.promo_code,
            points_redeemed: self.points_redeemed,
            created_at: Timestamp::from_unix_ms(self.created_at),
            expires_at: Timestamp::from_unix_ms(self.expires_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct BookingRow {
    pub id: String,
    pub hold_id: String,
    pub show_id: String,
    pub user_id: String,
    pub state: String,
    pub total_minor: i64,
    pub currency: String,
    pub payment_reference: String,
    pub refund_state: Option<String>,
    pub wallet_minor: i64,
    pub refunded_minor: Option<i64>,
    pub created_at: i64,
    pub cancelled_at: Option<i64>,
}

pub const BOOKING_COLUMNS: &str = "id, hold_id, show_id, user_id, state, total_minor, currency, payment_reference, \
     refund_state, wallet_minor, refunded_minor, created_at, cancelled_at";

#[derive(sqlx::FromRow)]
pub struct TicketRow {
    pub id: String,
    pub seat_id: Option<String>,
    pub area_id: Option<String>,
    pub label: String,
    pub category: String,
    pub price_minor: i64,
    pub code: String,
}

/// A ticket read with the booking it belongs to (several bookings' tickets in one read).
#[derive(sqlx::FromRow)]
pub struct BookingTicketRow {
    pub booking_id: String,
    #[sqlx(flatten)]
    pub ticket: TicketRow,
}

impl From<TicketRow> for Ticket {
    fn from(row: TicketRow) -> Self {
        Ticket {
            id: TicketId::from_trusted(row.id),
            seat_id: row.seat_id.map(SeatId::from_trusted),
            area_id: row.area_id.map(AreaId::from_trusted),
            label: row.label,
            category: row.category,
            price_minor: row.price_minor,
            code: row.code,
        }
    }
}

impl BookingRow {
    pub fn into_booking(self, tickets: Vec<TicketRow>) -> Result<Booking, StoreError> {
        Ok(Booking {
            state: BookingState::parse(&self.state)
                .ok_or_else(|| corrupt("booking state", &self.state))?,
            id: BookingId::from_trusted(self.id),
            show_id: ShowId::from_trusted(self.show_id),
            user_id: UserId::from_trusted(self.user_id),
            hold_id: HoldId::from_trusted(self.hold_id),
            total: Money::new(self.total_minor, Currency::from_trusted(self.currency)),
            payment_reference: self.payment_reference,
            refund: self.refund_state,
            wallet_minor: self.wallet_minor,
            refunded_minor: self.refunded_minor,
            tickets: tickets.into_iter().map(Ticket::from).collect(),
            created_at: Timestamp::from_unix_ms(self.created_at),
            cancelled_at: self.cancelled_at.map(Timestamp::from_unix_ms),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct SavedRow {
    pub response_status: i64,
    pub response_body: String,
    pub fingerprint: String,
}

/// How many entries a group's list or rows take in its statement: the next power of two. Each
/// new statement text is parsed and planned anew by PostgreSQL and takes a place in the
/// connection's cache of prepared statements (pushing a hot one out): padded, a group of any
/// size makes one of a few texts.
pub fn padded_len(count: usize) -> usize {
    count.max(1).next_power_of_two()
}

/// The values, the last one repeated up to `padded_len` (an IN list does not mind repeats).
pub fn padded<T>(values: &[T]) -> impl Iterator<Item = &T> {
    let extra = padded_len(values.len()) - values.len();
    values
        .iter()
        .chain(values.last().into_iter().cycle().take(extra))
}

/// The SQL condition that a `show_seats` row (columns prefixed `prefix`, e.g. `"ss."`) can be
/// claimed at the moment bound as `now`: `SeatState::effective` is `Free` (free, or held past
/// its time; a held row always has `held_until`). Claims and best-available's pick share it,
/// so a pick never chooses a seat its claim would refuse.
pub fn free_at(prefix: &str, now: &str) -> String {
    format!("({prefix}state = 'free' OR ({prefix}state = 'held' AND {prefix}held_until <= {now}))")
}

/// `$start, $start+1, …` for an IN list of `count` values.
pub fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
