//! The store conformance suite: every test runs unchanged against SQLite and PostgreSQL, and
//! each tries to break a law of DESIGN.md through the `Store` contract alone.

use boxoffice_core::booking::BookingState;
use boxoffice_core::catalog::{EventInput, ShowInput};
use boxoffice_core::hold::{self, AreaQuantity, Hold, HoldRequest, HoldState};
use boxoffice_core::ids::*;
use boxoffice_core::inventory::{SeatMap, SeatState};
use boxoffice_core::user::{AccountState, MemberRole, Organizer, Role, User};
use boxoffice_core::venue::{Venue, VenueInput};
use boxoffice_core::waiting::Room;
use boxoffice_core::{DomainError, Timestamp};
use boxoffice_store::{
    ConfirmHold, CreateHold, ExpiredHold, IdempotencyKey, Outcome, Refresh, SessionRecord,
    ShowFilter, ShowQuery, Store, StoreError,
};
use boxoffice_testkit::{Engine, TestDatabase};
use std::sync::Arc;

const HOUR_MS: i64 = 3_600_000;

struct Fixture {
    store: Arc<dyn Store>,
    _db: TestDatabase,
    organizer: User,
    tenant: Organizer,
    venue: Venue,
    show: boxoffice_core::catalog::Show,
    now: Timestamp,
}

fn user(role: Role, email: &str, now: Timestamp) -> User {
    User {
        id: UserId::generate(),
        email: email.to_owned(),
        name: email.to_owned(),
        role,
        state: AccountState::Active,
        organizer: None,
        created_at: now,
    }
}

impl Fixture {
    /// A venue with rows A and B of 5 standard seats (B5 blocked) and a standing area of 10;
    /// one show tomorrow, holds of 10 minutes, 6 tickets per order and 8 per customer.
    async fn new(engine: Engine) -> Self {
        let db = TestDatabase::fresh(engine).await;
        let store = db.store().await;
        let now = Timestamp::from_unix_ms(1_800_000_000_000);
        let tenant = Organizer {
            id: OrganizerId::generate(),
            name: "Gigs Ltd".into(),
            state: AccountState::Active,
            created_at: now,
        };
        let organizer = user(Role::Organizer, "org@example.com", now);
        store
            .insert_user(&organizer, "hash", Some(&tenant))
            .await
            .unwrap();
        let organizer = store.user(&organizer.id).await.unwrap().unwrap();
        let venue: VenueInput = serde_json::from_value(serde_json::json!({
            "name": "Hall", "city": "Berlin",
            "sections": [{"name": "Stalls", "rows": [
                {"label": "A", "count": 5, "category": "standard"},
                {"label": "B", "category": "standard", "seats": [
                    {"number": 1}, {"number": 2}, {"number": 3}, {"number": 4}, {"number": 5, "blocked": true}]}
            ]}],
            "areas": [{"name": "Floor", "category": "standing", "capacity": 10}]
        }))
        .unwrap();
        let venue = venue.into_venue(tenant.id.clone(), now).unwrap();
        store.insert_venue(&venue, None).await.unwrap();
        let event: EventInput = serde_json::from_value(
            serde_json::json!({"title": "Gig", "kind": "concert", "duration_minutes": 120}),
        )
        .unwrap();
        let event = event.into_event(tenant.id.clone(), now).unwrap();
        store.insert_event(&event, None).await.unwrap();
        let show: ShowInput = serde_json::from_value(serde_json::json!({
            "event_id": event.id, "venue_id": venue.id, "starts_at": now.plus_ms(24 * HOUR_MS),
            "currency": "EUR", "prices": {"standard": 2500, "standing": 1500},
            "hold_minutes": 10, "max_tickets_per_order": 6, "max_tickets_per_customer": 8
        }))
        .unwrap();
        let show = show.into_show(&event, &venue, now).unwrap();
        store.insert_show(&show, None).await.unwrap();
        Self {
            store,
            _db: db,
            organizer,
            tenant,
            venue,
            show,
            now,
        }
    }

    async fn customer(&self, email: &str) -> UserId {
        let customer = user(Role::Customer, email, self.now);
        self.store
            .insert_user(&customer, "hash", None)
            .await
            .unwrap();
        customer.id
    }

    /// The fixture's venue (same id) with these rows of one section instead, not yet stored.
    fn layout_with(&self, rows: serde_json::Value) -> Venue {
        let input: VenueInput = serde_json::from_value(serde_json::json!({
            "name": "Hall", "city": "Berlin",
            "sections": [{"name": "Stalls", "rows": rows}],
            "areas": [{"name": "Floor", "category": "standing", "capacity": 10}]
        }))
        .unwrap();
        let mut venue = input.into_venue(self.tenant.id.clone(), self.now).unwrap();
        venue.id = self.venue.id.clone();
        venue
    }

    fn seat(&self, label: &str) -> SeatId {
        self.venue
            .seats
            .iter()
            .find(|s| s.label == label)
            .unwrap()
            .id
            .clone()
    }

    fn area(&self) -> AreaId {
        self.venue.areas[0].id.clone()
    }

    async fn hold(
        &self,
        user: &UserId,
        request: HoldRequest,
        now: Timestamp,
    ) -> Result<Hold, StoreError> {
        let cmd = CreateHold {
            promo_code: None,
            redeem_points: 0,
            hold_id: HoldId::generate(),
            show_id: self.show.id.clone(),
            user_id: user.clone(),
            request,
            now,
        };
        match self.store.create_hold(cmd, None).await? {
            Outcome::Done(hold) => Ok(hold),
            Outcome::Replayed(_) => panic!("no key was given"),
        }
    }

    async fn seats(
        &self,
        user: &UserId,
        labels: &[&str],
        now: Timestamp,
    ) -> Result<Hold, StoreError> {
        self.hold(
            user,
            HoldRequest::Seats(labels.iter().map(|l| self.seat(l)).collect()),
            now,
        )
        .await
    }

    async fn places(
        &self,
        user: &UserId,
        quantity: i64,
        now: Timestamp,
    ) -> Result<Hold, StoreError> {
        self.hold(
            user,
            HoldRequest::Areas(vec![AreaQuantity {
                area_id: self.area(),
                quantity,
            }]),
            now,
        )
        .await
    }

    /// Cancels the booking with the refund to the card, no idempotency key.
    async fn cancel_to_card(&self, booking: &BookingId, user: &UserId, now: Timestamp) {
        self.store
            .cancel_booking(
                booking,
                user,
                now,
                boxoffice_core::ledger::RefundTo::Card,
                None,
            )
            .await
            .unwrap();
    }

    async fn confirm(
        &self,
        hold: &Hold,
        user: &UserId,
        now: Timestamp,
    ) -> Result<boxoffice_core::booking::Booking, StoreError> {
        self.confirm_drawing(hold, user, now, 0.5).await
    }

    /// `confirm`, with the scratch card's draw (a booking of three tickets or more gets a card).
    async fn confirm_drawing(
        &self,
        hold: &Hold,
        user: &UserId,
        now: Timestamp,
        scratch_draw: f64,
    ) -> Result<boxoffice_core::booking::Booking, StoreError> {
        let sign: boxoffice_store::TicketSigner =
            Arc::new(|claims| format!("signed:{}", claims.ticket_id));
        let cmd = ConfirmHold {
            scratch_draw,
            payment_id: None,
            new_payment: None,
            wallet_minor: 0,
            booking_id: BookingId::generate(),
            hold_id: hold.id.clone(),
            show_id: hold.show_id.clone(),
            user_id: user.clone(),
            payment_reference: "card ending 4242".into(),
            now,
            sign_ticket: sign,
        };
        match self.store.confirm_hold(cmd, None).await? {
            Outcome::Done(booking) => Ok(booking),
            Outcome::Replayed(_) => panic!("no key was given"),
        }
    }

    /// Nine customers, the first eight with a hold each (c0 B1, c1 B2, c2 three standing places,
    /// c3 A1+A2, c4 A4, c5 A5, c6 two standing places, c7 A3), as the lined-up group tests start.
    async fn eight_holds(&self) -> (Vec<UserId>, [Hold; 8]) {
        let mut c = Vec::new();
        for i in 0..9 {
            c.push(self.customer(&format!("c{i}@example.com")).await);
        }
        let holds = [
            self.seats(&c[0], &["B1"], self.now).await.unwrap(),
            self.seats(&c[1], &["B2"], self.now).await.unwrap(),
            self.places(&c[2], 3, self.now).await.unwrap(),
            self.seats(&c[3], &["A1", "A2"], self.now).await.unwrap(),
            self.seats(&c[4], &["A4"], self.now).await.unwrap(),
            self.seats(&c[5], &["A5"], self.now).await.unwrap(),
            self.places(&c[6], 2, self.now).await.unwrap(),
            self.seats(&c[7], &["A3"], self.now).await.unwrap(),
        ];
        (c, holds)
    }

    async fn map(&self, now: Timestamp) -> SeatMap {
        self.store.seat_map(&self.show, now).await.unwrap()
    }

    async fn state_of(&self, label: &str, now: Timestamp) -> SeatState {
        let id = self.seat(label);
        self.map(now)
            .await
            .seats
            .into_iter()
            .find(|s| s.id == id)
            .unwrap()
            .state
    }
}

fn domain(result: Result<impl std::fmt::Debug, StoreError>) -> DomainError {
    match result {
        Err(StoreError::Domain(e)) => e,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

async fn accounts_are_unique_by_email(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (found, hash) = f
        .store
        .credentials("org@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, f.organizer);
    assert_eq!(hash, "hash");
    let twin = user(Role::Customer, "org@example.com", f.now);
    assert_eq!(
        domain(f.store.insert_user(&twin, "x", None).await),
        DomainError::EmailTaken
    );
    assert_eq!(f.store.user(&twin.id).await.unwrap(), None);
}

async fn layouts_and_shows_round_trip(engine: Engine) {
    let f = Fixture::new(engine).await;
    assert_eq!(f.store.venue(&f.venue.id).await.unwrap().unwrap(), f.venue);
    assert_eq!(
        f.store.venue_place(&f.venue.id).await.unwrap(),
        Some(boxoffice_store::VenuePlace {
            name: f.venue.name.clone(),
            city: f.venue.city.clone(),
            timezone: f.venue.timezone.clone(),
        })
    );
    let mine = f.store.venues_of(&f.tenant.id).await.unwrap();
    assert_eq!(
        (mine.len(), mine[0].seat_count, mine[0].area_capacity),
        (1, 10, 10)
    );
    assert_eq!(f.store.show(&f.show.id).await.unwrap().unwrap(), f.show);
    let theirs = f.store.events(Some(&f.tenant.id), None, 10).await.unwrap();
    assert_eq!(
        theirs.iter().map(|e| &e.id).collect::<Vec<_>>(),
        vec![&f.show.event_id]
    );
    let stranger = boxoffice_core::ids::OrganizerId::generate();
    assert!(
        f.store
            .events(Some(&stranger), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.store.events(None, None, 10).await.unwrap().len(), 1);
    let listed = f
        .store
        .shows(&ShowFilter {
            event_id: Some(f.show.event_id.clone()),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(listed, vec![f.show.clone()]);
    let map = f.map(f.now).await;
    let counts: Vec<_> = map
        .availability
        .iter()
        .map(|a| (a.category.as_str(), a.total, a.free))
        .collect();
    assert_eq!(counts, [("standard", 9, 9), ("standing", 10, 10)]);
    assert_eq!(f.state_of("B5", f.now).await, SeatState::Blocked);
}

async fn holds_are_all_or_nothing(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (alice, bob) = (
        f.customer("alice@example.com").await,
        f.customer("bob@example.com").await,
    );
    let hold = f.seats(&alice, &["A1", "A2"], f.now).await.unwrap();
    assert_eq!(hold.total.amount_minor, 5000);
    let refused = domain(f.seats(&bob, &["A2", "A3"], f.now).await);
    assert_eq!(
        refused,
        DomainError::SeatUnavailable {
            seat_ids: vec![f.seat("A2").to_string()]
        }
    );
    assert_eq!(
        f.state_of("A3", f.now).await,
        SeatState::Free,
        "a refused hold claims nothing"
    );
    assert!(matches!(
        domain(f.seats(&bob, &["B5"], f.now).await),
        DomainError::SeatUnavailable { .. }
    ));
    let foreign = HoldRequest::Seats(vec![SeatId::generate()]);
    assert!(matches!(
        domain(f.hold(&bob, foreign, f.now).await),
        DomainError::Validation(_)
    ));
}

async fn an_expired_hold_blocks_nobody(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (alice, bob) = (
        f.customer("alice@example.com").await,
        f.customer("bob@example.com").await,
    );
    let hold = f.seats(&alice, &["A1"], f.now).await.unwrap();
    let just_before = hold.expires_at.plus_ms(-1);
    assert!(f.seats(&bob, &["A1"], just_before).await.is_err());
    assert_eq!(
        f.state_of("A1", hold.expires_at).await,
        SeatState::Free,
        "no sweeper has run"
    );
    let taken_over = f.seats(&bob, &["A1"], hold.expires_at).await.unwrap();
    assert_eq!(
        domain(f.confirm(&hold, &alice, just_before).await),
        DomainError::HoldExpired
    );
    f.confirm(&taken_over, &bob, hold.expires_at).await.unwrap();
    assert_eq!(f.state_of("A1", hold.expires_at).await, SeatState::Sold);
}

async fn general_admission_never_oversells(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (alice, bob) = (
        f.customer("alice@example.com").await,
        f.customer("bob@example.com").await,
    );
    let first = f.places(&alice, 6, f.now).await.unwrap();
    f.confirm(&first, &alice, f.now).await.unwrap();
    let second = f.places(&bob, 4, f.now).await.unwrap();
    let refused = domain(f.places(&alice, 1, f.now).await);
    assert_eq!(
        refused,
        DomainError::CapacityUnavailable {
            area: "Floor".into(),
            available: 0,
            requested: 1
        }
    );
    // Bob's hold lapses: its places come back without a sweeper, and his late confirm fails.
    let later = second.expires_at;
    let carol = f.customer("carol@example.com").await;
    let third = f.places(&carol, 4, later).await.unwrap();
    assert_eq!(
        domain(f.confirm(&second, &bob, later.plus_ms(-1)).await),
        DomainError::HoldExpired
    );
    f.confirm(&third, &carol, later).await.unwrap();
    let area = f.map(later).await.areas.remove(0);
    assert_eq!((area.sold, area.held, area.free), (10, 0, 0));
}

async fn bookings_confirm_and_cancel(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (alice, bob) = (
        f.customer("alice@example.com").await,
        f.customer("bob@example.com").await,
    );
    let hold = f.seats(&alice, &["A3", "A4"], f.now).await.unwrap();
    assert_eq!(
        domain(f.confirm(&hold, &bob, f.now).await),
        DomainError::NotFound("hold")
    );
    let booking = f.confirm(&hold, &alice, f.now).await.unwrap();
    assert_eq!(booking.tickets.len(), 2);
    assert!(booking.tickets[0].code.starts_with("signed:tkt_"));
    assert_eq!(
        domain(f.confirm(&hold, &alice, f.now).await),
        DomainError::HoldAlreadyBooked
    );
    assert_eq!(
        f.store.hold(&hold.id).await.unwrap().unwrap().state,
        HoldState::Converted
    );
    assert_eq!(f.state_of("A3", f.now).await, SeatState::Sold);
    assert_eq!(
        f.store.bookings_of(&alice, None, 10).await.unwrap(),
        vec![booking.clone()]
    );
    let sales = f.store.sales(&f.show.id).await.unwrap();
    assert_eq!(
        (
            sales.bookings_confirmed,
            sales.tickets_sold,
            sales.revenue_minor
        ),
        (1, 2, 5000)
    );
    let hour_ms = 3_600_000;
    assert_eq!(
        sales.timeline,
        vec![boxoffice_store::SalesHour {
            starts_at: boxoffice_core::Timestamp::from_unix_ms(f.now.unix_ms() / hour_ms * hour_ms),
            bookings: 1,
            tickets: 2,
        }]
    );

    assert_eq!(
        domain(
            f.store
                .cancel_booking(
                    &booking.id,
                    &bob,
                    f.now,
                    boxoffice_core::ledger::RefundTo::Card,
                    None
                )
                .await
        ),
        DomainError::NotFound("booking")
    );
    // The show starts in 24 hours: by default that is already the partial window.
    let policy = boxoffice_core::ledger::RefundPolicy {
        full_until_hours_before: 12,
        partial_percent: 10,
    };
    assert_eq!(
        f.store.refund_policy(&f.show.id).await.unwrap(),
        boxoffice_core::ledger::RefundPolicy::default()
    );
    f.store
        .put_refund_policy(&f.show.id, &policy)
        .await
        .unwrap();
    assert_eq!(f.store.refund_policy(&f.show.id).await.unwrap(), policy);
    let Outcome::Done(cancelled) = f
        .store
        .cancel_booking(
            &booking.id,
            &alice,
            f.now,
            boxoffice_core::ledger::RefundTo::Card,
            None,
        )
        .await
        .unwrap()
    else {
        panic!("no key was given");
    };
    assert_eq!(cancelled.state, BookingState::Cancelled);
    // Paid and refunded in full (a day or more ahead), both on the books, which balance.
    assert_eq!(cancelled.refunded_minor, Some(5000));
    let check = f.store.check_ledger().await.unwrap();
    assert_eq!((check.transactions, check.balanced), (2, true), "{check:?}");
    let organizer_account =
        boxoffice_core::ledger::Account::Organizer(f.tenant.id.clone()).id("EUR");
    let movements = f.store.ledger(Some(&organizer_account), 10).await.unwrap();
    let kept: i64 = movements
        .iter()
        .flat_map(|t| &t.entries)
        .filter(|e| e.account == organizer_account)
        .map(|e| e.amount_minor)
        .sum();
    assert_eq!(kept, 0, "the organizer keeps nothing of a full refund");
    assert_eq!(
        f.state_of("A3", f.now).await,
        SeatState::Free,
        "cancelled seats are free at once"
    );
    assert!(matches!(
        domain(
            f.store
                .cancel_booking(
                    &booking.id,
                    &alice,
                    f.now,
                    boxoffice_core::ledger::RefundTo::Card,
                    None
                )
                .await
        ),
        DomainError::NotCancellable(_)
    ));
    let after_start = f.show.starts_at;
    let hold = f.seats(&alice, &["A5"], f.now).await.unwrap();
    let late = f.confirm(&hold, &alice, f.now).await.unwrap();
    assert!(matches!(
        domain(
            f.store
                .cancel_booking(
                    &late.id,
                    &alice,
                    after_start,
                    boxoffice_core::ledger::RefundTo::Card,
                    None
                )
                .await
        ),
        DomainError::NotCancellable(_)
    ));
    assert!(matches!(
        domain(f.seats(&alice, &["A1"], after_start).await),
        DomainError::NotOnSale(_)
    ));
}

async fn ticket_limits_hold_across_orders(engine: Engine) {
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    assert!(matches!(
        domain(f.places(&alice, 7, f.now).await),
        DomainError::LimitExceeded(_)
    ));
    let first = f.places(&alice, 6, f.now).await.unwrap();
    // Anti-hoarding: a second live hold on the show is refused whatever its size.
    assert!(matches!(
        domain(f.seats(&alice, &["A1"], f.now).await),
        DomainError::Conflict(_)
    ));
    let booked = f.confirm(&first, &alice, f.now).await.unwrap();
    assert!(matches!(
        domain(f.seats(&alice, &["A1", "A2", "A3"], f.now).await),
        DomainError::LimitExceeded(_)
    ));
    let pair = f.seats(&alice, &["A1", "A2"], f.now).await.unwrap();
    f.store.release_hold(&pair.id, &alice, f.now).await.unwrap();
    // A cancelled booking's tickets no longer count; another customer's never did.
    f.cancel_to_card(&booked.id, &alice, f.now).await;
    let six = f
        .seats(&alice, &["A1", "A2", "A3", "A4", "A5", "B1"], f.now)
        .await
        .unwrap();
    f.confirm(&six, &alice, f.now).await.unwrap();
    let bob = f.customer("bob@example.com").await;
    f.places(&bob, 6, f.now).await.unwrap();
}

async fn lapsed_holds_throttle_the_next_and_released_ones_do_not(engine: Engine) {
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    let mut now = f.now;
    for _ in 0..5 {
        let hold = f.seats(&alice, &["A1"], now).await.unwrap();
        f.store.release_hold(&hold.id, &alice, now).await.unwrap();
    }
    for _ in 0..hold::LAPSES_ALLOWED {
        let hold = f.seats(&alice, &["A1"], now).await.unwrap();
        now = hold.expires_at;
    }
    // One lapse is swept, the others are merely past their deadline: both count.
    f.store.expire_holds(now, 1).await.unwrap();
    assert!(matches!(
        domain(f.seats(&alice, &["A2"], now).await),
        DomainError::Throttled { .. }
    ));
    let later = now.plus_minutes(hold::LAPSE_WINDOW_MINUTES);
    f.seats(&alice, &["A2"], later).await.unwrap();
}

async fn waiting_rooms_are_kept_and_replaced(engine: Engine) {
    let f = Fixture::new(engine).await;
    assert_eq!(f.store.waiting_room(&f.show.id).await.unwrap(), None);
    let mut room = Room {
        enabled: true,
        admission_rate_per_minute: 500,
        max_active_shoppers: None,
        session_minutes: 15,
        opens_at: f.now,
        seed: u64::MAX - 7,
    };
    f.store
        .put_waiting_room(&f.show.id, &room, f.now)
        .await
        .unwrap();
    assert_eq!(
        f.store.waiting_room(&f.show.id).await.unwrap(),
        Some(room.clone())
    );
    room.enabled = false;
    room.max_active_shoppers = Some(50);
    f.store
        .put_waiting_room(&f.show.id, &room, f.now)
        .await
        .unwrap();
    assert_eq!(
        f.store.waiting_room(&f.show.id).await.unwrap(),
        Some(room),
        "replaced, seed bit for bit"
    );
}

async fn releases_and_the_sweeper_free_seats(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (alice, bob) = (
        f.customer("alice@example.com").await,
        f.customer("bob@example.com").await,
    );
    let released = f.seats(&alice, &["A1"], f.now).await.unwrap();
    assert_eq!(
        domain(f.store.release_hold(&released.id, &bob, f.now).await),
        DomainError::NotFound("hold")
    );
    let after = f
        .store
        .release_hold(&released.id, &alice, f.now)
        .await
        .unwrap();
    assert_eq!(after.state, HoldState::Released);
    assert_eq!(f.state_of("A1", f.now).await, SeatState::Free);
    let lapsing = f.seats(&alice, &["A2"], f.now).await.unwrap();
    assert!(
        f.store
            .expire_holds(lapsing.expires_at.plus_ms(-1), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        f.store.expire_holds(lapsing.expires_at, 100).await.unwrap(),
        vec![ExpiredHold {
            id: lapsing.id.clone(),
            show_id: lapsing.show_id.clone(),
            seat_ids: vec![lapsing.items[0].seat_id.clone().unwrap()],
        }]
    );
    assert_eq!(
        f.store.hold(&lapsing.id).await.unwrap().unwrap().state,
        HoldState::Expired
    );
    assert_eq!(
        f.state_of("A2", f.now).await,
        SeatState::Free,
        "the sweeper cleared the stored state"
    );
}

async fn best_available_picks_adjacent_seats(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (alice, bob) = (
        f.customer("alice@example.com").await,
        f.customer("bob@example.com").await,
    );
    f.seats(&alice, &["A3"], f.now).await.unwrap();
    let best = HoldRequest::BestAvailable {
        category: "standard".into(),
        quantity: 3,
    };
    let hold = f.hold(&bob, best, f.now).await.unwrap();
    let labels: Vec<_> = hold.items.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(
        labels,
        ["B2", "B3", "B4"],
        "row A has no three together; B is centred on its five seats"
    );
    let too_many = HoldRequest::BestAvailable {
        category: "standard".into(),
        quantity: 6,
    };
    assert!(matches!(
        domain(f.hold(&alice, too_many, f.now).await),
        DomainError::CapacityUnavailable { .. }
    ));
}

/// Picks remember a show's layout for a while; a layout replaced (here, or by another instance
/// on the same database) is still picked from as it is now.
async fn best_available_picks_from_a_replaced_layout(engine: Engine) {
    let f = Fixture::new(engine).await;
    let elsewhere = f._db.store().await;
    let alice = f.customer("alice@example.com").await;
    let best = |quantity| HoldRequest::BestAvailable {
        category: "standard".into(),
        quantity,
    };
    let first = f.hold(&alice, best(2), f.now).await.unwrap();
    f.store
        .release_hold(&first.id, &alice, f.now)
        .await
        .unwrap();

    // Replaced by another instance: six together only in a row behind the rows this store's
    // picks read up to; they find it once their own reading of the layout falls short.
    let longer = f.layout_with(serde_json::json!([
        {"label": "A", "count": 1, "category": "standard"},
        {"label": "B", "count": 1, "category": "standard"},
        {"label": "C", "count": 6, "category": "standard"}
    ]));
    elsewhere.replace_layout(&longer, f.now).await.unwrap();
    let six = f.hold(&alice, best(6), f.now).await.unwrap();
    let labels: Vec<_> = six.items.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(labels, ["C1", "C2", "C3", "C4", "C5", "C6"]);
    f.store.release_hold(&six.id, &alice, f.now).await.unwrap();

    // Replaced here: the next pick reads the new layout, whose only six together are in its
    // last row (with the old one remembered, six scattered over the front rows would do).
    let mut rows: Vec<serde_json::Value> = ["A", "B", "C", "D", "E", "F"]
        .iter()
        .map(|label| serde_json::json!({"label": label, "count": 3, "category": "standard"}))
        .collect();
    rows.push(serde_json::json!({"label": "G", "count": 6, "category": "standard"}));
    f.store
        .replace_layout(&f.layout_with(rows.into()), f.now)
        .await
        .unwrap();
    let together = f.hold(&alice, best(6), f.now).await.unwrap();
    let labels: Vec<_> = together.items.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(labels, ["G1", "G2", "G3", "G4", "G5", "G6"]);
}

/// Near the end of a sale the front rows have no room: a pick reads only rows that have a seat
/// not sold, each row whole, so it still judges a row's blocks by the row's middle, not by the
/// middle of what is left free in it.
async fn best_available_finds_the_last_block_of_a_nearly_sold_hall(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (alice, bob) = (
        f.customer("alice@example.com").await,
        f.customer("bob@example.com").await,
    );
    // 100 rows never sold (both seats blocked), 35 rows of one free seat (no pair in any of
    // them), then a row of nine.
    let blocked = serde_json::json!({"number": 1, "category": "standard", "blocked": true});
    let mut rows: Vec<serde_json::Value> = (1..=100)
        .map(|n| {
            let mut second = blocked.clone();
            second["number"] = 2.into();
            serde_json::json!({"label": format!("B{n:03}-"), "seats": [blocked.clone(), second]})
        })
        .collect();
    rows.extend((1..=35).map(
        |n| serde_json::json!({"label": format!("R{n:02}-"), "count": 1, "category": "standard"}),
    ));
    rows.push(serde_json::json!({"label": "Z", "count": 9, "category": "standard"}));
    let venue = f.layout_with(rows.into());
    f.store.replace_layout(&venue, f.now).await.unwrap();
    let seat = |label: &str| {
        venue
            .seats
            .iter()
            .find(|s| s.label == label)
            .unwrap()
            .id
            .clone()
    };
    // Free in row Z: 4 5 and 7 8 9. Its middle is seat 5; the middle of its free seats is 6.5.
    f.hold(
        &alice,
        HoldRequest::Seats(["Z1", "Z2", "Z3", "Z6"].map(seat).to_vec()),
        f.now,
    )
    .await
    .unwrap();
    let pair = HoldRequest::BestAvailable {
        category: "standard".into(),
        quantity: 2,
    };
    let hold = f.hold(&bob, pair.clone(), f.now).await.unwrap();
    let labels: Vec<_> = hold.items.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(labels, ["Z4", "Z5"], "the pair nearest the row's middle");
    // No two together anywhere now (Z7 and Z9 are apart): the front-most single seats.
    let carol = f.customer("carol@example.com").await;
    f.hold(&carol, HoldRequest::Seats(vec![seat("Z8")]), f.now)
        .await
        .unwrap();
    let dave = f.customer("dave@example.com").await;
    let apart = f.hold(&dave, pair, f.now).await.unwrap();
    let labels: Vec<_> = apart.items.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(labels, ["R01-1", "R02-1"]);
}

/// A pick reads a bounded number of rows looking for seats together; past them it gives the
/// best single seats, and the next pick of as many goes on where it stopped.
async fn best_available_searches_a_hall_without_room_together_a_stretch_at_a_time(engine: Engine) {
    let f = Fixture::new(engine).await;
    // 130 rows of two free seats around a blocked one (room for two, never together), then a
    // row of two.
    let seat = |number: i64, blocked: bool| serde_json::json!({"number": number, "category": "standard", "blocked": blocked});
    let mut rows: Vec<serde_json::Value> = (1..=130)
        .map(|n| {
            serde_json::json!({"label": format!("P{n:03}-"), "seats": [seat(1, false), seat(2, true), seat(3, false)]})
        })
        .collect();
    rows.push(serde_json::json!({"label": "Z", "count": 2, "category": "standard"}));
    let venue = f.layout_with(rows.into());
    f.store.replace_layout(&venue, f.now).await.unwrap();
    let pair = HoldRequest::BestAvailable {
        category: "standard".into(),
        quantity: 2,
    };
    let labels =
        |hold: &Hold| -> Vec<String> { hold.items.iter().map(|i| i.label.clone()).collect() };
    let alice = f.customer("alice@example.com").await;
    let first = f.hold(&alice, pair.clone(), f.now).await.unwrap();
    assert_eq!(
        labels(&first),
        ["P001-1", "P001-3"],
        "no two together within reach: the front-most single seats"
    );
    let bob = f.customer("bob@example.com").await;
    let second = f.hold(&bob, pair, f.now).await.unwrap();
    assert_eq!(
        labels(&second),
        ["Z1", "Z2"],
        "the next pick went on to the end"
    );
}

async fn best_available_counts_a_seat_whose_hold_lapsed_as_free(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (alice, bob, carol) = (
        f.customer("alice@example.com").await,
        f.customer("bob@example.com").await,
        f.customer("carol@example.com").await,
    );
    let lapsing = f.seats(&alice, &["A3"], f.now).await.unwrap();
    let three = || HoldRequest::BestAvailable {
        category: "standard".into(),
        quantity: 3,
    };
    let labels =
        |hold: &Hold| -> Vec<String> { hold.items.iter().map(|i| i.label.clone()).collect() };
    let while_held = f
        .hold(&bob, three(), lapsing.expires_at.plus_ms(-1))
        .await
        .unwrap();
    assert_eq!(
        labels(&while_held),
        ["B2", "B3", "B4"],
        "A3 is held a moment longer"
    );
    let lapsed = f.hold(&carol, three(), lapsing.expires_at).await.unwrap();
    assert_eq!(
        labels(&lapsed),
        ["A2", "A3", "A4"],
        "once A3's hold has lapsed (not yet swept), row A has three together again"
    );
}

/// Best-available does not queue behind a claim still deciding on its best seat (a crowd all
/// wanting the front row would wait for each other, each holding a connection): it takes the
/// next best. PostgreSQL only: SQLite lets one writer in at a time, so no claim is ever open
/// beside another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_available_takes_the_next_seat_rather_than_wait_for_a_locked_one() {
    use sqlx::Connection;
    let f = Fixture::new(Engine::Postgres).await;
    let (alice, bob) = (
        f.customer("alice@example.com").await,
        f.customer("bob@example.com").await,
    );
    let one = || HoldRequest::BestAvailable {
        category: "standard".into(),
        quantity: 1,
    };
    let first = f.hold(&alice, one(), f.now).await.unwrap();
    let best = first.items[0].seat_id.clone().unwrap();
    f.store
        .release_hold(&first.id, &alice, f.now)
        .await
        .unwrap();
    let mut other = sqlx::PgConnection::connect(&f._db.url).await.unwrap();
    let mut deciding = other.begin().await.unwrap();
    sqlx::query("SELECT seat_id FROM show_seats WHERE show_id = $1 AND seat_id = $2 FOR UPDATE")
        .bind(f.show.id.to_string())
        .bind(best.to_string())
        .execute(&mut *deciding)
        .await
        .unwrap();
    let hold = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        f.hold(&bob, one(), f.now),
    )
    .await
    .expect("best-available does not wait for the locked seat")
    .unwrap();
    let taken = hold.items[0].seat_id.clone().unwrap();
    assert_ne!(
        taken, best,
        "the locked seat is left to the claim that has it"
    );
    deciding.rollback().await.unwrap();
    let label = first.items[0].label.clone();
    assert_eq!(
        f.state_of(&label, f.now).await,
        SeatState::Free,
        "the seat nobody took is still free"
    );
}

/// The counts the live layer sends every tick are the seat map's, counted without reading it:
/// sold, held and free seats, a hold past its deadline as free, a blocked seat not at all, and
/// standing places.
async fn availability_counts_what_the_seat_map_shows(engine: Engine) {
    let f = Fixture::new(engine).await;
    let (alice, bob, carol) = (
        f.customer("alice@example.com").await,
        f.customer("bob@example.com").await,
        f.customer("carol@example.com").await,
    );
    let sold = f.seats(&alice, &["A1", "A2"], f.now).await.unwrap();
    f.confirm(&sold, &alice, f.now).await.unwrap();
    f.seats(&bob, &["B1"], f.now).await.unwrap();
    let later = f.now.plus_minutes(5);
    f.seats(&alice, &["A3"], later).await.unwrap();
    f.places(&carol, 3, later).await.unwrap();
    // Bob's seat B1 lapses first; Alice's A3 and Carol's standing places are still held.
    let now = f.now.plus_minutes(12);
    let map = f.map(now).await;
    let (categories, areas) = f.store.availability(&f.show, now).await.unwrap();
    assert_eq!(categories, map.availability);
    assert_eq!(areas, map.areas);
    let standard = categories
        .iter()
        .find(|c| c.category == "standard")
        .unwrap();
    assert_eq!(
        (standard.total, standard.sold, standard.held, standard.free),
        (9, 2, 1, 6),
        "B5 is blocked, B1's hold ran out"
    );
}

async fn idempotent_commands_happen_once(engine: Engine) {
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    let key = IdempotencyKey {
        user_id: alice.clone(),
        key: "k1".into(),
        fingerprint: "fp".into(),
        status: 201,
    };
    let request = HoldRequest::Seats(vec![f.seat("A1")]);
    let cmd = |id| CreateHold {
        promo_code: None,
        redeem_points: 0,
        hold_id: id,
        show_id: f.show.id.clone(),
        user_id: alice.clone(),
        request: request.clone(),
        now: f.now,
    };
    let Outcome::Done(first) = f
        .store
        .create_hold(cmd(HoldId::generate()), Some(&key))
        .await
        .unwrap()
    else {
        panic!("first use of the key");
    };
    let Outcome::Replayed(saved) = f
        .store
        .create_hold(cmd(HoldId::generate()), Some(&key))
        .await
        .unwrap()
    else {
        panic!("second use of the key must replay");
    };
    assert_eq!(saved.status, 201);
    assert_eq!(saved.body, serde_json::to_string(&first).unwrap());
    assert_eq!(
        f.store.saved_response(&alice, "k1").await.unwrap(),
        Some(saved)
    );
    assert_eq!(f.map(f.now).await.availability[0].held, 1);
}

async fn racing_claims_sell_each_seat_once(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let mut racers = Vec::new();
    for i in 0..24 {
        let customer = f.customer(&format!("c{i}@example.com")).await;
        let f = f.clone();
        racers.push(tokio::spawn(async move {
            let labels: &[&str] = if i % 2 == 0 {
                &["A1", "A2", "A3"]
            } else {
                &["A3", "A4"]
            };
            let hold = f.seats(&customer, labels, f.now).await.ok()?;
            f.confirm(&hold, &customer, f.now).await.ok()
        }));
    }
    let mut sold = Vec::new();
    for racer in racers {
        if let Some(booking) = racer.await.unwrap() {
            sold.extend(booking.tickets.into_iter().map(|t| t.seat_id.unwrap()));
        }
    }
    let mut unique = sold.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), sold.len(), "a seat was sold twice");
    assert!(
        sold.len() == 3 || sold.len() == 2,
        "exactly one of the overlapping orders wins: {sold:?}"
    );
    let map = f.map(f.now).await;
    assert_eq!(
        map.seats
            .iter()
            .filter(|s| s.state == SeatState::Sold)
            .count(),
        sold.len()
    );
}

/// Another connection that keeps the show's transactions waiting until it is dropped: the
/// show's row locked on PostgreSQL, the database's write lock taken on SQLite.
async fn keep_the_show_busy(f: &Fixture, engine: Engine) -> Box<dyn std::any::Any + Send> {
    use sqlx::Connection;
    match engine {
        Engine::Postgres => {
            let mut busy = sqlx::PgConnection::connect(&f._db.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut busy).await.unwrap();
            sqlx::query("SELECT id FROM shows WHERE id = $1 FOR UPDATE")
                .bind(f.show.id.to_string())
                .execute(&mut busy)
                .await
                .unwrap();
            Box::new(busy)
        }
        Engine::Sqlite => {
            let mut busy = sqlx::SqliteConnection::connect(&f._db.url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut busy)
                .await
                .unwrap();
            Box::new(busy)
        }
    }
}

/// The labels of the map's seats in `state`, in the map's order.
fn labels_in(map: &SeatMap, state: SeatState) -> Vec<&str> {
    map.seats
        .iter()
        .filter(|s| s.state == state)
        .map(|s| s.label.as_str())
        .collect()
}

/// Waits until the store's groups of claims are as `done` wants them.
async fn lined_up(store: &dyn Store, done: impl Fn(boxoffice_store::GroupCommits) -> bool) {
    for _ in 0..10_000 {
        if done(store.group_stats()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("the claims never lined up: {:?}", store.group_stats());
}

/// Waits until the `i`-th claim (from 0) of a line has its place there: the first takes off as
/// a group of its own (one flight per line), every later one waits behind it.
async fn in_line(
    store: &dyn Store,
    i: usize,
    before: boxoffice_store::GroupStats,
    line: fn(boxoffice_store::GroupCommits) -> boxoffice_store::GroupStats,
) {
    if i == 0 {
        lined_up(store, |s| line(s).groups == before.groups + 1).await;
    } else {
        lined_up(store, |s| line(s).waiting == i).await;
    }
}

/// Group commit: claims arriving while their show's transactions are busy wait in line and are
/// then decided together, each as if it had run alone, in the order it arrived. Another
/// connection keeps the show busy (its row locked on PostgreSQL, the write lock on SQLite): the
/// first claim takes off and waits for it, and the rest line up one by one behind it, so
/// the order, and with it every outcome, is known.
async fn claims_lined_up_are_decided_together_as_if_alone(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let mut c = Vec::new();
    for i in 0..12 {
        c.push(f.customer(&format!("c{i}@example.com")).await);
    }
    f.seats(&c[11], &["A1"], f.now).await.unwrap();
    let before = f.store.group_stats().holds;
    let busy = keep_the_show_busy(&f, engine).await;
    let seats = |labels: &[&str]| HoldRequest::Seats(labels.iter().map(|l| f.seat(l)).collect());
    let places = |quantity| {
        HoldRequest::Areas(vec![AreaQuantity {
            area_id: f.area(),
            quantity,
        }])
    };
    let best = HoldRequest::BestAvailable {
        category: "standard".into(),
        quantity: 1,
    };
    let requests = [
        seats(&["B1"]),                               // 0: takes off, granted
        seats(&["B2"]),                               // 1: granted
        seats(&["A1", "A2"]),                         // 2: A1 is held by c11
        seats(&["A2"]),                               // 3: granted: 2 took nothing
        seats(&["A2", "A3"]),                         // 4: A2 went to 3, earlier in the group
        seats(&["A3", "A4"]),                         // 5: granted
        seats(&["B5"]),                               // 6: blocked
        best,                                         // 7: granted, around the others
        places(6),                                    // 8: granted
        places(5), // 9: does not fit beside 8 (goes alone and is refused)
        HoldRequest::Seats(vec![SeatId::generate()]), // 10: not a seat of this show
    ];
    let mut answers = Vec::new();
    for (i, request) in requests.into_iter().enumerate() {
        let (f2, customer) = (f.clone(), c[i].clone());
        answers.push(tokio::spawn(async move {
            f2.hold(&customer, request, f2.now).await
        }));
        in_line(&*f.store, i, before, |s| s.holds).await;
    }
    drop(busy);
    let mut outcomes = Vec::new();
    for answer in answers {
        outcomes.push(answer.await.unwrap());
    }
    let labels = |i: usize| -> Vec<String> {
        let hold = outcomes[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("claim {i} was refused: {e:?}"));
        hold.items.iter().map(|item| item.label.clone()).collect()
    };
    let taken = |i: usize| match &outcomes[i] {
        Err(StoreError::Domain(DomainError::SeatUnavailable { seat_ids })) => seat_ids.clone(),
        other => panic!("claim {i}: expected taken seats, got {other:?}"),
    };
    assert_eq!(labels(0), ["B1"]);
    assert_eq!(labels(1), ["B2"]);
    assert_eq!(taken(2), [f.seat("A1").to_string()]);
    assert_eq!(labels(3), ["A2"]);
    assert_eq!(taken(4), [f.seat("A2").to_string()]);
    assert_eq!(labels(5), ["A3", "A4"]);
    assert_eq!(taken(6), [f.seat("B5").to_string()]);
    let around = labels(7);
    assert!(
        ["A5", "B3", "B4"].contains(&around[0].as_str()),
        "best-available took {around:?}"
    );
    assert_eq!(outcomes[8].as_ref().unwrap().ticket_count(), 6);
    assert!(
        matches!(
            &outcomes[9],
            Err(StoreError::Domain(DomainError::CapacityUnavailable { .. }))
        ),
        "{:?}",
        outcomes[9]
    );
    assert!(
        matches!(
            &outcomes[10],
            Err(StoreError::Domain(DomainError::Validation(_)))
        ),
        "{:?}",
        outcomes[10]
    );

    let map = f.map(f.now).await;
    let held = labels_in(&map, SeatState::Held);
    assert_eq!(
        held.len(),
        7,
        "A1, A2, A3, A4, B1, B2 and best-available's seat: {held:?}"
    );
    assert_eq!((map.areas[0].held, map.areas[0].free), (6, 4));
    let after = f.store.group_stats().holds;
    assert!(
        (after.claims - before.claims) - (after.groups - before.groups) >= 8,
        "the nine claims that lined up went as one group: {before:?} → {after:?}"
    );
    assert_eq!(after.waiting, 0);
    assert_eq!(
        after.failed, before.failed,
        "no group failed and went alone"
    );
}

/// Group commit for bookings: bookings arriving while the first waits for a busy show are
/// decided together in one transaction, each exactly as alone and in arrival order: a refusal
/// writes nothing, a hold booked earlier in the group is booked for the later claim, and the
/// standing places of all of them are sold once the group is done. A booking with a share from
/// the wallet does not join a group: it goes alone.
async fn bookings_lined_up_are_decided_together_as_if_alone(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let (c, holds) = f.eight_holds().await;
    f.store
        .release_hold(&holds[5].id, &c[5], f.now)
        .await
        .unwrap();
    // (who confirms, which hold): the ninth customer tries the fifth's hold before the fifth
    // books it, the sixth books a released hold, the eighth pays after its hold ran out, and the
    // fourth confirms its hold twice.
    let bookings: [(usize, usize); 10] = [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 3),
        (8, 4),
        (5, 5),
        (6, 6),
        (7, 7),
        (3, 3),
        (4, 4),
    ];
    let before = f.store.group_stats().bookings;
    let busy = keep_the_show_busy(&f, engine).await;
    let mut answers = Vec::new();
    for (i, (who, hold)) in bookings.into_iter().enumerate() {
        let (f2, customer, hold) = (f.clone(), c[who].clone(), holds[hold].clone());
        let at = if who == 7 {
            f.now.plus_minutes(11)
        } else {
            f.now
        };
        answers.push(tokio::spawn(async move {
            f2.confirm(&hold, &customer, at).await
        }));
        in_line(&*f.store, i, before, |s| s.bookings).await;
    }
    drop(busy);
    let mut outcomes = Vec::new();
    for answer in answers {
        outcomes.push(answer.await.unwrap());
    }
    for booked in [0, 1, 2, 6, 9] {
        assert!(
            outcomes[booked].is_ok(),
            "booking {booked}: {:?}",
            outcomes[booked]
        );
    }
    assert!(
        matches!(
            &outcomes[4],
            Err(StoreError::Domain(DomainError::NotFound("hold")))
        ),
        "{:?}",
        outcomes[4]
    );
    assert!(
        matches!(
            &outcomes[5],
            Err(StoreError::Domain(DomainError::HoldExpired))
        ),
        "{:?}",
        outcomes[5]
    );
    assert!(
        matches!(
            &outcomes[7],
            Err(StoreError::Domain(DomainError::HoldExpired))
        ),
        "{:?}",
        outcomes[7]
    );
    let twice: Vec<_> = [3, 8]
        .map(|i| outcomes[i].as_ref().ok().map(|b| b.id.clone()))
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        twice.len(),
        1,
        "a hold is booked once: {:?} / {:?}",
        outcomes[3],
        outcomes[8]
    );
    for refused in [3, 8] {
        if let Err(e) = &outcomes[refused] {
            assert!(
                matches!(
                    e,
                    StoreError::Domain(DomainError::HoldAlreadyBooked | DomainError::HoldExpired)
                ),
                "{e:?}"
            );
        }
    }

    let map = f.map(f.now).await;
    let sold = labels_in(&map, SeatState::Sold);
    assert_eq!(
        sold,
        ["A1", "A2", "A4", "B1", "B2"],
        "the refused bookings sold nothing"
    );
    assert_eq!(
        (map.areas[0].sold, map.areas[0].held, map.areas[0].free),
        (5, 0, 5)
    );
    let mine = f.store.bookings_of(&c[3], None, 10).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].tickets.len(), 2);
    assert!(
        f.store
            .bookings_of(&c[8], None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let after = f.store.group_stats().bookings;
    assert!(
        (after.claims - before.claims) - (after.groups - before.groups) >= 6,
        "the bookings that lined up went together: {before:?} → {after:?}"
    );
    assert_eq!(after.waiting, 0);
    assert_eq!(
        after.failed, before.failed,
        "no group failed and went alone"
    );

    // A share from the wallet goes alone (its wallet is locked and checked there): asking for
    // more than the total is refused and leaves the hold as it was.
    let hold = f.seats(&c[5], &["A5"], f.now).await.unwrap();
    let cmd = ConfirmHold {
        scratch_draw: 0.5,
        payment_id: None,
        new_payment: None,
        wallet_minor: hold.total.amount_minor + 1,
        booking_id: BookingId::generate(),
        hold_id: hold.id.clone(),
        show_id: hold.show_id.clone(),
        user_id: c[5].clone(),
        payment_reference: "wallet".into(),
        now: f.now,
        sign_ticket: Arc::new(|claims| format!("signed:{}", claims.ticket_id)),
    };
    let refused = f.store.confirm_hold(cmd, None).await;
    assert!(
        matches!(refused, Err(StoreError::Domain(DomainError::Validation(_)))),
        "{refused:?}"
    );
    assert_eq!(f.store.group_stats().bookings.claims, after.claims);
    assert_eq!(f.state_of("A5", f.now).await, SeatState::Held);
}

/// Bookings wait for their group in a line per show: while a booking of one show waits for
/// that show (kept busy), a booking of another show takes off as a group of its own instead of
/// waiting behind it, and both are booked once the first show is free.
async fn bookings_of_two_shows_wait_in_lines_of_their_own(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let mut later = f.show.clone();
    later.id = ShowId::generate();
    later.starts_at = f.show.starts_at.plus_ms(48 * HOUR_MS);
    later.ends_at = f.show.ends_at.plus_ms(48 * HOUR_MS);
    later.off_sale_at = later.starts_at;
    f.store.insert_show(&later, None).await.unwrap();
    let alice = f.customer("alice@example.com").await;
    let bob = f.customer("bob@example.com").await;
    let first = f.seats(&alice, &["A1"], f.now).await.unwrap();
    let cmd = CreateHold {
        promo_code: None,
        redeem_points: 0,
        hold_id: HoldId::generate(),
        show_id: later.id.clone(),
        user_id: bob.clone(),
        request: HoldRequest::Seats(vec![f.seat("A1")]),
        now: f.now,
    };
    let Outcome::Done(second) = f.store.create_hold(cmd, None).await.unwrap() else {
        panic!("no key was given");
    };
    let before = f.store.group_stats().bookings;
    let busy = keep_the_show_busy(&f, engine).await;
    let booking = |hold: Hold, user: UserId| {
        let f = f.clone();
        tokio::spawn(async move { f.confirm(&hold, &user, f.now).await })
    };
    let waiting_for_the_show = booking(first, alice);
    lined_up(&*f.store, |s| s.bookings.groups == before.groups + 1).await;
    let of_the_later_show = booking(second, bob);
    lined_up(&*f.store, |s| {
        s.bookings.groups == before.groups + 2 && s.bookings.waiting == 0
    })
    .await;
    drop(busy);
    let first = waiting_for_the_show.await.unwrap().unwrap();
    let second = of_the_later_show.await.unwrap().unwrap();
    assert_eq!(
        (first.show_id, second.show_id),
        (f.show.id.clone(), later.id)
    );
    let after = f.store.group_stats().bookings;
    assert_eq!(
        (after.groups, after.failed),
        (before.groups + 2, before.failed),
        "each went as a group of its own, and none failed and went alone"
    );
}

/// Group commit for releases: releases arriving while the first waits for a busy show are
/// decided together, each as alone: a hold that is someone else's is not found, a booked one is
/// refused and stays sold, one released before is answered as it is, one whose time ran out is
/// released; every other hold's seats and standing places are free again afterwards.
async fn a_group_of_bookings_writes_every_kind_of_prize_together(engine: Engine) {
    use boxoffice_core::loyalty::Prize;
    let f = Arc::new(Fixture::new(engine).await);
    let mut c = Vec::new();
    for i in 0..4 {
        c.push(f.customer(&format!("c{i}@example.com")).await);
    }
    // The first booking takes off alone; the three behind it go as one group, each of three
    // tickets and so with a scratch card: a cashback, an add-on, then a discount code, whose
    // promo code the card points at (its row comes after the group's first card's).
    let holds = [
        f.seats(&c[0], &["B4"], f.now).await.unwrap(),
        f.seats(&c[1], &["A1", "A2", "A3"], f.now).await.unwrap(),
        f.places(&c[2], 3, f.now).await.unwrap(),
        f.seats(&c[3], &["B1", "B2", "B3"], f.now).await.unwrap(),
    ];
    let draws = [0.5, 0.1, 0.4, 0.9];
    let before = f.store.group_stats().bookings;
    let busy = keep_the_show_busy(&f, engine).await;
    let mut answers = Vec::new();
    for (i, (hold, draw)) in holds.iter().zip(draws).enumerate() {
        let (f2, customer, hold) = (f.clone(), c[i].clone(), hold.clone());
        answers.push(tokio::spawn(async move {
            f2.confirm_drawing(&hold, &customer, f2.now, draw).await
        }));
        in_line(&*f.store, i, before, |s| s.bookings).await;
    }
    drop(busy);
    for answer in answers {
        answer.await.unwrap().expect("booked");
    }
    let after = f.store.group_stats().bookings;
    assert_eq!(
        (after.groups - before.groups, after.claims - before.claims),
        (2, 4),
        "one alone, three together"
    );
    assert_eq!(after.failed, before.failed, "the group went as one");
    let mut prizes = Vec::new();
    for customer in &c[1..] {
        let cards = f.store.scratch_cards_of(customer).await.unwrap();
        assert_eq!(cards.len(), 1, "{cards:?}");
        let card = f
            .store
            .reveal_scratch_card(&cards[0].id, customer, f.now)
            .await
            .unwrap();
        prizes.push(card.prize.expect("revealed"));
    }
    assert!(
        matches!(
            prizes.as_slice(),
            [
                Prize::Cashback { .. },
                Prize::AddOn { .. },
                Prize::DiscountCode { .. }
            ]
        ),
        "{prizes:?}"
    );
}

async fn releases_lined_up_are_decided_together_as_if_alone(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let (c, holds) = f.eight_holds().await;
    f.confirm(&holds[4], &c[4], f.now).await.unwrap();
    f.store
        .release_hold(&holds[5].id, &c[5], f.now)
        .await
        .unwrap();
    // (who releases, which hold): the ninth customer tries the first's hold, the fifth
    // releases its booked hold, the sixth its released one, the eighth after its hold ran out.
    let releases: [(usize, usize); 8] = [
        (1, 1),
        (8, 0),
        (2, 2),
        (3, 3),
        (4, 4),
        (5, 5),
        (6, 6),
        (7, 7),
    ];
    let before = f.store.group_stats().releases;
    let busy = keep_the_show_busy(&f, engine).await;
    let mut answers = Vec::new();
    for (i, (who, hold)) in releases.into_iter().enumerate() {
        let (f2, customer, hold) = (f.clone(), c[who].clone(), holds[hold].id.clone());
        let at = if who == 7 {
            f.now.plus_minutes(11)
        } else {
            f.now
        };
        answers.push(tokio::spawn(async move {
            f2.store.release_hold(&hold, &customer, at).await
        }));
        in_line(&*f.store, i, before, |s| s.releases).await;
    }
    drop(busy);
    let mut outcomes = Vec::new();
    for answer in answers {
        outcomes.push(answer.await.unwrap());
    }
    let state = |i: usize| match &outcomes[i] {
        Ok(hold) => hold.state,
        Err(e) => panic!("release {i} failed: {e:?}"),
    };
    for released in [0, 2, 3, 6, 7] {
        assert_eq!(state(released), HoldState::Released, "release {released}");
    }
    assert_eq!(
        state(5),
        HoldState::Released,
        "released before, answered as it is"
    );
    assert!(
        matches!(
            &outcomes[1],
            Err(StoreError::Domain(DomainError::NotFound("hold")))
        ),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(
            &outcomes[4],
            Err(StoreError::Domain(DomainError::HoldAlreadyBooked))
        ),
        "{:?}",
        outcomes[4]
    );

    let map = f.map(f.now).await;
    assert_eq!(
        labels_in(&map, SeatState::Sold),
        ["A4"],
        "the booked seat stays sold"
    );
    assert_eq!(
        labels_in(&map, SeatState::Held),
        ["B1"],
        "only the hold another customer tried to release is still held"
    );
    assert_eq!(
        (map.areas[0].sold, map.areas[0].held, map.areas[0].free),
        (0, 0, 10),
        "both holds' standing places are back"
    );
    assert_eq!(
        f.store.active_holds(f.now).await.unwrap(),
        1,
        "c0's hold is the one left"
    );
    // What the group gave back can be taken again.
    f.seats(&c[8], &["A1", "A2"], f.now).await.unwrap();
    f.places(&c[2], 3, f.now).await.unwrap();
    let after = f.store.group_stats().releases;
    assert!(
        (after.claims - before.claims) - (after.groups - before.groups) >= 5,
        "the six releases that lined up went as one group: {before:?} → {after:?}"
    );
    assert_eq!(
        after.failed, before.failed,
        "no group failed and went alone"
    );
}

/// Groups of claims and of bookings racing on the same seats never fail (a deadlock between
/// them would roll a whole group back and send every claim in it alone, after a second's wait
/// for the deadlock to be found): customers hold pairs of seats in both orders, book them and
/// cancel, round after round; afterwards every seat is free again.
async fn racing_groups_of_holds_and_bookings_never_fail(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let labels = ["A1", "A2", "A3", "A4", "A5", "B1", "B2", "B3", "B4"];
    let mut customers = Vec::new();
    for i in 0..32 {
        customers.push(f.customer(&format!("c{i}@example.com")).await);
    }
    for round in 0..12 {
        let racers: Vec<_> = customers
            .iter()
            .enumerate()
            .map(|(i, customer)| {
                let (f, customer) = (f.clone(), customer.clone());
                let first = (i * 5 + round) % labels.len();
                let pair = [labels[first], labels[(first + 1 + i % 3) % labels.len()]];
                tokio::spawn(async move {
                    let Ok(hold) = f.seats(&customer, &pair, f.now).await else {
                        return;
                    };
                    let booking = f.confirm(&hold, &customer, f.now).await.unwrap();
                    f.cancel_to_card(&booking.id, &customer, f.now).await;
                })
            })
            .collect();
        for racer in racers {
            racer.await.unwrap();
        }
    }
    let stats = f.store.group_stats();
    assert_eq!(
        (stats.holds.failed, stats.bookings.failed),
        (0, 0),
        "{stats:?}"
    );
    let map = f.map(f.now).await;
    assert!(
        map.seats
            .iter()
            .all(|s| s.state != SeatState::Sold && s.state != SeatState::Held)
    );
}

/// A hold released and booked at the same moment (two tabs, a retried request) ends one way or
/// the other, never both: when the booking is acknowledged the release is refused and the seats
/// and places are sold; when the release wins the booking is refused and they are free again.
/// Rounds of eight customers racing at once (half on seats, half on standing places), so that
/// releases and bookings meet in groups, until the show has nothing left.
async fn a_hold_released_and_booked_at_once_ends_one_way(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let mut customers = Vec::new();
    for i in 0..8 {
        customers.push(f.customer(&format!("c{i}@example.com")).await);
    }
    let (mut booked_seats, mut booked_places, mut released) = (0, 0, 0);
    for round in 0..8 {
        let map = f.map(f.now).await;
        let mut free_seats = labels_in(&map, SeatState::Free)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        let mut free_places = map.areas[0].free;
        let mut racers = Vec::new();
        for (i, customer) in customers.iter().enumerate() {
            let hold = if i % 2 == 0 {
                let Some(label) = free_seats.pop() else {
                    continue;
                };
                f.seats(customer, &[label.as_str()], f.now).await.unwrap()
            } else {
                if free_places == 0 {
                    continue;
                }
                free_places -= 1;
                f.places(customer, 1, f.now).await.unwrap()
            };
            let (f, customer) = (f.clone(), customer.clone());
            racers.push(tokio::spawn(async move {
                let (booked, let_go) = if (i + round) % 2 == 0 {
                    tokio::join!(
                        f.confirm(&hold, &customer, f.now),
                        f.store.release_hold(&hold.id, &customer, f.now)
                    )
                } else {
                    let (let_go, booked) = tokio::join!(
                        f.store.release_hold(&hold.id, &customer, f.now),
                        f.confirm(&hold, &customer, f.now)
                    );
                    (booked, let_go)
                };
                (hold, booked, let_go)
            }));
        }
        if racers.is_empty() {
            break;
        }
        for racer in racers {
            let (hold, booked, let_go) = racer.await.unwrap();
            match (&booked, &let_go) {
                (Ok(_), Err(StoreError::Domain(DomainError::HoldAlreadyBooked))) => {
                    if hold.items[0].seat_id.is_some() {
                        booked_seats += 1;
                    } else {
                        booked_places += 1;
                    }
                }
                (Err(StoreError::Domain(_)), Ok(h)) if h.state == HoldState::Released => {
                    released += 1
                }
                _ => panic!("round {round}: booked {booked:?}, released {let_go:?}"),
            }
        }
        let map = f.map(f.now).await;
        assert_eq!(
            labels_in(&map, SeatState::Sold).len(),
            booked_seats,
            "round {round}: a seat is sold exactly when its booking was acknowledged"
        );
        assert!(
            labels_in(&map, SeatState::Held).is_empty(),
            "round {round}: nothing stays held"
        );
        let area = &map.areas[0];
        assert_eq!(
            (area.sold, area.held, area.free),
            (booked_places, 0, 10 - booked_places),
            "round {round}: places sold exactly for the acknowledged bookings"
        );
    }
    assert!(
        booked_seats as i64 + booked_places > 0 && released > 0,
        "both ways happened: {booked_seats} + {booked_places} booked, {released} released"
    );
}

/// Anti-hoarding under a race: one customer's holds on a show, sent all at once on different
/// seats (tabs, scripts), get one live hold; the others are refused and hold nothing.
async fn a_customers_racing_holds_get_one(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let alice = f.customer("alice@example.com").await;
    let labels: [&'static str; 6] = ["A1", "A2", "A3", "A4", "A5", "B1"];
    let racers: Vec<_> = labels
        .into_iter()
        .map(|label| {
            let (f, alice) = (f.clone(), alice.clone());
            tokio::spawn(async move { f.seats(&alice, &[label], f.now).await })
        })
        .collect();
    let mut granted = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => granted += 1,
            Err(e) => assert!(matches!(domain(Err::<(), _>(e)), DomainError::Conflict(_))),
        }
    }
    assert_eq!(granted, 1, "one live hold per customer and show");
    let held = f
        .map(f.now)
        .await
        .seats
        .iter()
        .filter(|s| s.state == SeatState::Held)
        .count();
    assert_eq!(held, 1, "the refused holds hold nothing");
}

async fn racing_general_admission_stays_within_capacity(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let mut racers = Vec::new();
    for i in 0..30 {
        let customer = f.customer(&format!("c{i}@example.com")).await;
        let f = f.clone();
        racers.push(tokio::spawn(async move {
            let quantity = (i % 4 + 1) as i64;
            let hold = f.places(&customer, quantity, f.now).await.ok()?;
            if i % 3 == 0 {
                f.confirm(&hold, &customer, f.now).await.ok()?;
            }
            Some(quantity)
        }));
    }
    let mut granted = 0;
    for racer in racers {
        granted += racer.await.unwrap().unwrap_or(0);
    }
    let area = f.map(f.now).await.areas.remove(0);
    assert_eq!(area.held + area.sold, granted);
    assert!((7..=10).contains(&granted), "granted {granted} of 10");
    assert!(area.free >= 0);
}

/// Law 1 for standing places with every path at once: new claims (which retire lapsed holds
/// when the area looks full), confirmations of lapsed holds, releases, a cancellation and two
/// sweepers race on one area. Nothing fails but by a rule (a deadlock or a lock timeout would be
/// a database error), and afterwards the counters hold exactly what is live: once every hold has
/// lapsed, the unsold places can all be claimed and not one more.
async fn general_admission_paths_racing_keep_the_counters(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let lapse = f.now.plus_minutes(10);
    let mut lapsing = Vec::new();
    for i in 0..5 {
        let customer = f.customer(&format!("early{i}@example.com")).await;
        let hold = f.places(&customer, 1, f.now).await.unwrap();
        lapsing.push((customer, hold));
    }
    let buyer = f.customer("buyer@example.com").await;
    let bought = f.places(&buyer, 2, f.now).await.unwrap();
    let booking = f.confirm(&bought, &buyer, f.now).await.unwrap();
    // Each racer answers with the places it left sold (the cancellation: minus two).
    let mut racers: Vec<tokio::task::JoinHandle<Result<i64, StoreError>>> = Vec::new();
    for i in 0..12 {
        let customer = f.customer(&format!("late{i}@example.com")).await;
        let f = f.clone();
        racers.push(tokio::spawn(async move {
            let quantity = (i % 2 + 1) as i64;
            let hold = f.places(&customer, quantity, lapse).await?;
            if i % 4 == 0 {
                f.store.release_hold(&hold.id, &customer, lapse).await?;
            } else if i % 4 == 1 {
                f.confirm(&hold, &customer, lapse).await?;
                return Ok(quantity);
            }
            Ok(0)
        }));
    }
    for (customer, hold) in lapsing.into_iter().take(3) {
        let f = f.clone();
        racers.push(tokio::spawn(async move {
            f.confirm(&hold, &customer, lapse).await.map(|_| 1)
        }));
    }
    for _ in 0..2 {
        let f = f.clone();
        racers.push(tokio::spawn(async move {
            f.store.expire_holds(lapse, 100).await.map(|_| 0)
        }));
    }
    {
        let (f, booking) = (f.clone(), booking.id.clone());
        let buyer = buyer.clone();
        racers.push(tokio::spawn(async move {
            f.store
                .cancel_booking(
                    &booking,
                    &buyer,
                    lapse,
                    boxoffice_core::ledger::RefundTo::Card,
                    None,
                )
                .await
                .map(|_| -2)
        }));
    }
    let mut sold = 2;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(places) => sold += places,
            Err(StoreError::Domain(_)) => {}
            Err(other) => panic!("only a rule may refuse: {other:?}"),
        }
    }
    // Every hold has lapsed by now: what is not sold can be claimed, all of it and no more.
    let after = lapse.plus_minutes(30);
    let area = f.map(after).await.areas.remove(0);
    assert_eq!((area.sold, area.held), (sold, 0));
    let mut unsold = area.capacity - area.sold;
    let mut n = 0;
    while unsold > 0 {
        let customer = f.customer(&format!("after{n}@example.com")).await;
        let quantity = unsold.min(4);
        f.places(&customer, quantity, after)
            .await
            .unwrap_or_else(|e| panic!("{quantity} of the {unsold} unsold places: {e:?}"));
        unsold -= quantity;
        n += 1;
    }
    let last = f.customer("one-too-many@example.com").await;
    assert!(matches!(
        domain(f.places(&last, 1, after).await),
        DomainError::CapacityUnavailable { available: 0, .. }
    ));
}

async fn secrets_are_created_once(engine: Engine) {
    let f = Fixture::new(engine).await;
    assert_eq!(f.store.secret("jwt", "first").await.unwrap(), "first");
    assert_eq!(f.store.secret("jwt", "second").await.unwrap(), "first");
    // The first bookings of a sale all ask for the show's ticket key at once: one is kept.
    let racing: Vec<_> = (0..32)
        .map(|i| {
            let store = f.store.clone();
            tokio::spawn(async move { store.secret("tickets", &format!("candidate {i}")).await })
        })
        .collect();
    let mut kept = std::collections::BTreeSet::new();
    for answer in racing {
        kept.insert(answer.await.unwrap().unwrap());
    }
    assert_eq!(kept.len(), 1, "{kept:?}");
    let kept = kept.pop_first().unwrap();
    assert!(kept.starts_with("candidate "), "{kept}");
    assert_eq!(f.store.secret("tickets", "late").await.unwrap(), kept);
}

async fn sessions_rotate_and_die_on_reuse(engine: Engine) {
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    let session = SessionRecord {
        id: SessionId::generate(),
        user_id: alice.clone(),
        created_at: f.now,
        expires_at: f.now.plus_ms(HOUR_MS),
    };
    f.store
        .insert_session(&session, "r1", session.expires_at)
        .await
        .unwrap();
    assert!(
        f.store
            .actor(&session.id, &alice, f.now)
            .await
            .unwrap()
            .is_some()
    );
    let later = f.now.plus_ms(1);
    assert_eq!(
        f.store
            .rotate_refresh("r1", "r2", later, session.expires_at)
            .await
            .unwrap(),
        Refresh::Rotated {
            session_id: session.id.clone(),
            user_id: alice.clone()
        }
    );
    assert_eq!(
        f.store
            .rotate_refresh("nope", "x", later, session.expires_at)
            .await
            .unwrap(),
        Refresh::Invalid
    );
    assert_eq!(
        f.store
            .rotate_refresh("r1", "r3", later, session.expires_at)
            .await
            .unwrap(),
        Refresh::Reused
    );
    assert_eq!(
        f.store
            .rotate_refresh("r2", "r4", later, session.expires_at)
            .await
            .unwrap(),
        Refresh::Invalid,
        "the family is revoked"
    );
    assert_eq!(
        f.store.actor(&session.id, &alice, later).await.unwrap(),
        None
    );
    let other = SessionRecord {
        id: SessionId::generate(),
        ..session.clone()
    };
    f.store
        .insert_session(&other, "s1", other.expires_at)
        .await
        .unwrap();
    assert!(
        f.store
            .actor(&other.id, &alice, f.now.plus_ms(HOUR_MS))
            .await
            .unwrap()
            .is_none(),
        "sessions expire"
    );
    f.store
        .set_user_state(&alice, AccountState::Suspended)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .rotate_refresh("s1", "s2", f.now, other.expires_at)
            .await
            .unwrap(),
        Refresh::Invalid
    );
}

async fn organizers_members_and_suspension(engine: Engine) {
    let f = Fixture::new(engine).await;
    let staff = f.customer("staff@example.com").await;
    let added = f
        .store
        .add_member(&f.tenant.id, "staff@example.com", MemberRole::Staff, f.now)
        .await
        .unwrap();
    assert_eq!(
        (added.role, added.organizer.unwrap().role),
        (Role::Organizer, MemberRole::Staff)
    );
    assert!(matches!(
        domain(
            f.store
                .add_member(&f.tenant.id, "staff@example.com", MemberRole::Staff, f.now)
                .await
        ),
        DomainError::Conflict(_)
    ));
    assert!(
        matches!(
            domain(f.store.remove_member(&f.tenant.id, &f.organizer.id).await),
            DomainError::Conflict(_)
        ),
        "last owner stays"
    );
    let session = SessionRecord {
        id: SessionId::generate(),
        user_id: staff.clone(),
        created_at: f.now,
        expires_at: f.now.plus_ms(HOUR_MS),
    };
    f.store
        .insert_session(&session, "t", session.expires_at)
        .await
        .unwrap();
    assert!(
        f.store
            .actor(&session.id, &staff, f.now)
            .await
            .unwrap()
            .unwrap()
            .organizer
            .is_some()
    );
    f.store
        .set_organizer_state(&f.tenant.id, AccountState::Suspended)
        .await
        .unwrap();
    let actor = f
        .store
        .actor(&session.id, &staff, f.now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        actor.organizer, None,
        "a suspended organizer's members lose its powers"
    );
    let alice = f.customer("alice@example.com").await;
    assert!(
        matches!(
            domain(f.seats(&alice, &["A1"], f.now).await),
            DomainError::NotOnSale(_)
        ),
        "and its shows stop selling"
    );
    f.store.remove_member(&f.tenant.id, &staff).await.unwrap();
    assert_eq!(f.store.members(&f.tenant.id).await.unwrap().len(), 1);
}

async fn schedules_are_all_or_nothing(engine: Engine) {
    let f = Fixture::new(engine).await;
    let event = f.store.event(&f.show.event_id).await.unwrap().unwrap();
    let at = |hours: i64| {
        let mut show = f.show.clone();
        show.id = ShowId::generate();
        show.starts_at = f.now.plus_ms(hours * HOUR_MS);
        show.ends_at = show.starts_at.plus_ms(event.duration_ms());
        show.off_sale_at = show.starts_at;
        show
    };
    let good = vec![at(48), at(72)];
    f.store.insert_schedule(&good, None).await.unwrap();
    let clashing = vec![at(100), at(25)];
    let Err(StoreError::Domain(DomainError::ScheduleConflict(conflicts))) =
        f.store.insert_schedule(&clashing, None).await
    else {
        panic!("the second show overlaps the fixture's show");
    };
    assert_eq!(conflicts[0].existing_show_id, Some(f.show.id.clone()));
    assert_eq!(
        f.store.show(&clashing[0].id).await.unwrap(),
        None,
        "nothing of a refused schedule is stored"
    );
    let all = f
        .store
        .shows(&ShowFilter {
            event_id: Some(event.id.clone()),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
}

async fn cancelling_a_show_races_with_claims(engine: Engine) {
    let f = Arc::new(Fixture::new(engine).await);
    let mut racers = Vec::new();
    for i in 0..16 {
        let customer = f.customer(&format!("c{i}@example.com")).await;
        let f = f.clone();
        racers.push(tokio::spawn(async move {
            let hold = f.places(&customer, 1, f.now).await.ok()?;
            f.confirm(&hold, &customer, f.now).await.ok()
        }));
    }
    let cancelled = f.store.cancel_show(&f.show.id, f.now).await.unwrap();
    let mut late_bookings = 0;
    for racer in racers {
        if racer.await.unwrap().is_some() {
            late_bookings += 1;
        }
    }
    let sales = f.store.sales(&f.show.id).await.unwrap();
    assert_eq!(sales.bookings_cancelled, cancelled);
    assert_eq!(
        sales.bookings_confirmed, 0,
        "no booking outlives the cancellation ({late_bookings} confirmed before it)"
    );
    assert!(matches!(
        domain(
            f.places(&f.customer("late@example.com").await, 1, f.now)
                .await
        ),
        DomainError::NotOnSale(_)
    ));
    assert!(matches!(
        domain(f.store.cancel_show(&f.show.id, f.now).await),
        DomainError::Conflict(_)
    ));
}

async fn search_filters_on_both_engines(engine: Engine) {
    let f = Fixture::new(engine).await;
    let query = |text: &str| ShowQuery {
        text: Some(text.into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        f.store
            .search_shows(&query("gi"), f.now)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        f.store
            .search_shows(&query("%"), f.now)
            .await
            .unwrap()
            .len(),
        0,
        "wildcards are literal"
    );
    let sold_out = ShowQuery {
        available: true,
        min_price: Some(2000),
        max_price: Some(3000),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        f.store.search_shows(&sold_out, f.now).await.unwrap().len(),
        1
    );
    let berlin = ShowQuery {
        city: Some("BERLIN".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        f.store.search_events(&berlin, f.now).await.unwrap().len(),
        1
    );
    let later = ShowQuery {
        starts_from: Some(f.show.starts_at.plus_ms(1)),
        limit: 10,
        ..Default::default()
    };
    assert!(
        f.store
            .search_shows(&later, f.now)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn general_admission_counters_follow_every_path(engine: Engine) {
    let f = Fixture::new(engine).await;
    let later = f.now.plus_ms(5 * 60_000);
    let mut people = Vec::new();
    for name in ["a", "b", "c", "d", "e", "g"] {
        people.push(f.customer(&format!("{name}@example.com")).await);
    }
    let a = f.places(&people[0], 4, f.now).await.unwrap();
    let b = f.places(&people[1], 3, f.now).await.unwrap();
    let c = f.places(&people[2], 3, f.now).await.unwrap();
    assert!(matches!(
        domain(f.places(&people[3], 1, later).await),
        DomainError::CapacityUnavailable { available: 0, .. }
    ));
    f.store
        .release_hold(&a.id, &people[0], later)
        .await
        .unwrap();
    let d = f.places(&people[3], 4, later).await.unwrap();
    let booking = f.confirm(&b, &people[1], later).await.unwrap();
    // c expires at now + 10 min; the sweeper retires it (d, made later, lives on).
    let swept = f.store.expire_holds(c.expires_at, 100).await.unwrap();
    let swept: Vec<_> = swept
        .into_iter()
        .map(|e| (e.id, e.seat_ids.len()))
        .collect();
    assert_eq!(swept, vec![(c.id.clone(), 0)], "a GA hold frees no seat");
    f.places(&people[4], 3, c.expires_at).await.unwrap();
    let area = f.map(c.expires_at).await.areas.remove(0);
    assert_eq!((area.sold, area.held, area.free), (3, 7, 0));
    assert!(f.places(&people[5], 1, c.expires_at).await.is_err());
    f.cancel_to_card(&booking.id, &people[1], c.expires_at)
        .await;
    f.places(&people[5], 3, c.expires_at).await.unwrap();
    // d lapses without a sweep: the next claim retires it and gets its places.
    let after_d = d.expires_at;
    assert_eq!(
        f.places(&people[0], 4, after_d)
            .await
            .unwrap()
            .ticket_count(),
        4
    );
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Engine::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Engine::Postgres).await })*
        }
    };
}

/// Law 2 and the outbox rule: an event exists exactly when its change does, every subscribed
/// endpoint gets one delivery, a leased delivery is tried by one dispatcher at a time (and by
/// another once the lease lapses), and a subject's deliveries go strictly in order.
async fn events_are_written_with_their_changes_and_delivered_in_order(engine: Engine) {
    use boxoffice_core::outbox::EventKind;
    use boxoffice_store::{Attempt, WebhookEndpoint};
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    let endpoint = |kinds: Vec<EventKind>| WebhookEndpoint {
        id: WebhookId::generate(),
        organizer_id: f.tenant.id.clone(),
        url: "http://127.0.0.1:9/hooks".into(),
        secret: "whsec_test".into(),
        event_types: kinds,
        created_at: f.now,
    };
    let everything = endpoint(vec![
        EventKind::BookingConfirmed,
        EventKind::BookingCancelled,
        EventKind::HoldExpired,
    ]);
    let only_expiries = endpoint(vec![EventKind::HoldExpired]);
    f.store.insert_webhook(&everything).await.unwrap();
    f.store.insert_webhook(&only_expiries).await.unwrap();
    assert_eq!(
        f.store.webhook(&everything.id).await.unwrap(),
        Some(everything.clone())
    );

    // A refused confirmation writes no event; a booking and its cancellation write one each.
    let late = f.seats(&alice, &["B1"], f.now).await.unwrap();
    let after_deadline = late.expires_at;
    assert!(f.confirm(&late, &alice, after_deadline).await.is_err());
    assert!(
        f.store
            .messages_of(&f.tenant.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let hold = f
        .seats(&alice, &["A1", "A2"], after_deadline)
        .await
        .unwrap();
    let booking = f.confirm(&hold, &alice, after_deadline).await.unwrap();
    f.cancel_to_card(&booking.id, &alice, after_deadline).await;
    let expired = f
        .store
        .expire_holds(after_deadline.plus_ms(1), 10)
        .await
        .unwrap();
    assert_eq!(expired.len(), 1, "the late hold");
    let all = f.store.messages_of(&f.tenant.id, 10).await.unwrap();
    assert!(
        all.iter().any(|m| m.kind == EventKind::BookingRefunded),
        "the refund is an event of its own"
    );
    let messages: Vec<_> = all
        .into_iter()
        .filter(|m| m.kind != EventKind::BookingRefunded)
        .collect();
    let kinds: Vec<(EventKind, &str)> = messages
        .iter()
        .map(|m| (m.kind, m.subject.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::BookingConfirmed, booking.id.as_str()),
            (EventKind::BookingCancelled, booking.id.as_str()),
            (EventKind::HoldExpired, late.id.as_str()),
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(body["id"], messages[0].id.as_str());
    assert_eq!(body["type"], "booking.confirmed");
    assert_eq!(body["data"]["booking"]["id"], booking.id.as_str());

    // Three deliveries for the endpoint that wants everything, one for the other.
    let now = after_deadline.plus_ms(10);
    assert_eq!(f.store.fan_out(now, 100).await.unwrap(), 4);
    assert_eq!(
        f.store.fan_out(now, 100).await.unwrap(),
        0,
        "fanned out once"
    );
    // The booking's second event waits for its first: claimable now are its first event (to
    // `everything`) and the expiry (to both).
    let first = f.store.claim_deliveries(now, 30_000, 10).await.unwrap();
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(first.iter().all(|d| d.kind != EventKind::BookingCancelled));
    assert!(
        f.store
            .claim_deliveries(now, 30_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    // The dispatcher dies; after the lease another one gets the same deliveries.
    let lapsed = now.plus_ms(30_000);
    let again = f.store.claim_deliveries(lapsed, 30_000, 10).await.unwrap();
    assert_eq!(
        again.iter().map(|d| &d.id).collect::<Vec<_>>(),
        first.iter().map(|d| &d.id).collect::<Vec<_>>()
    );
    let confirmed = again
        .iter()
        .find(|d| d.kind == EventKind::BookingConfirmed)
        .unwrap();
    // A failure with a retry time keeps it (and the cancellation behind it) waiting until then.
    let failed = Attempt {
        status: Some(500),
        error: None,
        duration_ms: 3,
    };
    let retry_at = lapsed.plus_ms(5_000);
    f.store
        .record_attempt(&confirmed.id, &failed, lapsed, Some(retry_at))
        .await
        .unwrap();
    let early = f
        .store
        .claim_deliveries(lapsed.plus_ms(4_000), 30_000, 10)
        .await
        .unwrap();
    assert!(
        early.is_empty(),
        "not due yet, the rest still leased: {early:?}"
    );
    let retried = f
        .store
        .claim_deliveries(retry_at.plus_ms(30_001), 30_000, 10)
        .await
        .unwrap();
    let retried = retried
        .iter()
        .find(|d| d.kind == EventKind::BookingConfirmed)
        .unwrap();
    assert_eq!(retried.attempts, 1);
    let ok = Attempt {
        status: Some(204),
        error: None,
        duration_ms: 2,
    };
    let later = retry_at.plus_ms(30_002);
    f.store
        .record_attempt(&retried.id, &ok, later, None)
        .await
        .unwrap();
    let next = f.store.claim_deliveries(later, 30_000, 10).await.unwrap();
    assert!(
        next.iter().any(|d| d.kind == EventKind::BookingCancelled),
        "{next:?}"
    );

    let record = f.store.deliveries_of(&everything.id, 10).await.unwrap();
    let delivered = record.iter().find(|d| d.id == retried.id).unwrap();
    assert_eq!(
        (
            delivered.state.as_str(),
            delivered.attempts,
            delivered.last_status
        ),
        ("delivered", 2, Some(204))
    );
    // A delivered one can be sent again; one still being tried cannot.
    f.store
        .replay_delivery(&everything.id, &retried.id, later)
        .await
        .unwrap();
    assert!(matches!(
        f.store
            .replay_delivery(&everything.id, &retried.id, later)
            .await,
        Err(StoreError::Domain(DomainError::Conflict(_)))
    ));
    assert!(matches!(
        f.store
            .replay_delivery(&only_expiries.id, &retried.id, later)
            .await,
        Err(StoreError::Domain(DomainError::NotFound(_)))
    ));
    // A deleted endpoint gets nothing more.
    f.store
        .delete_webhook(&only_expiries.id, later)
        .await
        .unwrap();
    assert_eq!(
        f.store.webhooks_of(&f.tenant.id).await.unwrap(),
        vec![everything]
    );
}

/// An endpoint receives the events of changes made after it was created: events of an
/// organizer with no endpoint are written already fanned out (nobody to deliver them to).
async fn an_endpoint_gets_the_events_after_it_was_created(engine: Engine) {
    use boxoffice_core::outbox::EventKind;
    use boxoffice_store::WebhookEndpoint;
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    let before = f.seats(&alice, &["A1"], f.now).await.unwrap();
    let early = f.confirm(&before, &alice, f.now).await.unwrap();
    assert_eq!(
        f.store.fan_out(f.now, 100).await.unwrap(),
        0,
        "no endpoint: nothing to fan out"
    );
    let endpoint = WebhookEndpoint {
        id: WebhookId::generate(),
        organizer_id: f.tenant.id.clone(),
        url: "http://127.0.0.1:9/hooks".into(),
        secret: "whsec_test".into(),
        event_types: vec![EventKind::BookingConfirmed],
        created_at: f.now,
    };
    f.store.insert_webhook(&endpoint).await.unwrap();
    let after = f.seats(&alice, &["A2"], f.now).await.unwrap();
    let late = f.confirm(&after, &alice, f.now).await.unwrap();
    assert_eq!(f.store.fan_out(f.now, 100).await.unwrap(), 1);
    let due = f.store.claim_deliveries(f.now, 30_000, 10).await.unwrap();
    let about: Vec<String> = due
        .iter()
        .map(|d| {
            let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
            assert_eq!(body["type"], "booking.confirmed");
            body["data"]["booking"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        about,
        [late.id.to_string()],
        "only the booking made after the endpoint, not {}",
        early.id
    );

    // Deleted, the endpoint is nobody again.
    f.store.delete_webhook(&endpoint.id, f.now).await.unwrap();
    f.cancel_to_card(&late.id, &alice, f.now).await;
    assert_eq!(f.store.fan_out(f.now, 100).await.unwrap(), 0);
}

async fn a_channel_is_handed_only_the_kinds_it_carries(engine: Engine) {
    use boxoffice_core::outbox::EventKind;
    use boxoffice_store::Channel;
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    let hold = f.seats(&alice, &["A1"], f.now).await.unwrap();
    let booking = f.confirm(&hold, &alice, f.now).await.unwrap();
    f.cancel_to_card(&booking.id, &alice, f.now).await;
    let written: Vec<EventKind> = f
        .store
        .messages_of(&f.tenant.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.kind)
        .collect();
    for kind in [
        EventKind::BookingConfirmed,
        EventKind::BookingCancelled,
        EventKind::BookingRefunded,
    ] {
        assert!(written.contains(&kind), "{kind:?} among {written:?}");
    }
    for channel in [
        Channel::Mail,
        Channel::Live,
        Channel::CardRefunds,
        Channel::Stream,
    ] {
        let unsent: Vec<EventKind> = f
            .store
            .unsent(channel, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.kind)
            .collect();
        let carried: Vec<EventKind> = written
            .iter()
            .copied()
            .filter(|kind| channel.carries(*kind))
            .collect();
        assert_eq!(
            unsent, carried,
            "{channel:?} gets what it carries, in order"
        );
    }
    assert_eq!(
        f.store
            .unsent(Channel::CardRefunds, 100)
            .await
            .unwrap()
            .len(),
        1,
        "only the refund reaches the card refunds"
    );
}

async fn an_event_sent_on_one_channel_waits_on_the_others(engine: Engine) {
    use boxoffice_core::outbox::EventKind;
    use boxoffice_store::Channel;
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    let mut confirmed = Vec::new();
    for seat in ["A1", "A2"] {
        let hold = f.seats(&alice, &[seat], f.now).await.unwrap();
        confirmed.push(f.confirm(&hold, &alice, f.now).await.unwrap());
    }
    let unsent = |channel| {
        let store = &f.store;
        async move {
            store
                .unsent(channel, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|m| m.kind == EventKind::BookingConfirmed)
                .map(|m| m.id)
                .collect::<Vec<_>>()
        }
    };
    // Both confirmations wait on each channel that carries them (each in a backlog table of its
    // own); each channel in turn is told the first is sent, and only that channel stops handing
    // it out.
    let channels = [Channel::Live, Channel::Mail, Channel::Stream];
    let first = unsent(Channel::Live).await;
    assert_eq!(first.len(), confirmed.len(), "{first:?}");
    // Each channel's backlog counts what it would hand out, of every kind.
    let mut waiting = Vec::new();
    for channel in Channel::ALL {
        let count = f.store.unsent_count(channel).await.unwrap();
        let handed = f.store.unsent(channel, 100).await.unwrap().len();
        assert_eq!(count, handed as i64, "{channel:?}");
        waiting.push(count);
    }
    for (i, channel) in channels.into_iter().enumerate() {
        f.store
            .mark_sent(channel, &first[..1], f.now)
            .await
            .unwrap();
        for (j, other) in channels.into_iter().enumerate() {
            let expected = if j <= i { &first[1..] } else { &first[..] };
            assert_eq!(
                &unsent(other).await,
                expected,
                "{other:?} after {channel:?} sent the first"
            );
            let at = Channel::ALL.iter().position(|c| *c == other).unwrap();
            assert_eq!(
                f.store.unsent_count(other).await.unwrap(),
                waiting[at] - i64::from(j <= i),
                "{other:?}'s backlog after {channel:?} sent the first"
            );
        }
    }
}

async fn told_events_are_ticked_off_by_kind_and_subject(engine: Engine) {
    use boxoffice_core::outbox::EventKind;
    use boxoffice_store::Channel;
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    let mut bookings = Vec::new();
    for seat in ["A1", "A2", "A3"] {
        let hold = f.seats(&alice, &[seat], f.now).await.unwrap();
        bookings.push(f.confirm(&hold, &alice, f.now).await.unwrap());
    }
    f.cancel_to_card(&bookings[0].id, &alice, f.now).await;
    let untold = || async {
        let mut untold: Vec<(EventKind, String)> = f
            .store
            .unsent(Channel::Live, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| {
                matches!(
                    m.kind,
                    EventKind::BookingConfirmed | EventKind::BookingCancelled
                )
            })
            .map(|m| (m.kind, m.subject))
            .collect();
        untold.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
        untold
    };
    assert_eq!(
        untold().await.len(),
        4,
        "three confirmations and a cancellation"
    );
    // Told: the first booking's confirmation (not its cancellation, same subject) and the
    // third's; an event that does not exist changes nothing.
    let told = [
        (EventKind::BookingConfirmed, bookings[0].id.to_string()),
        (EventKind::BookingConfirmed, bookings[2].id.to_string()),
        (EventKind::BookingCancelled, bookings[1].id.to_string()),
    ];
    f.store.mark_told(&told, f.now).await.unwrap();
    let mut expected = vec![
        (EventKind::BookingCancelled, bookings[0].id.to_string()),
        (EventKind::BookingConfirmed, bookings[1].id.to_string()),
    ];
    expected.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
    assert_eq!(untold().await, expected);
}

/// A card payment of the whole hold by its customer, in `state`.
fn card_payment(
    hold: &Hold,
    state: boxoffice_core::payment::PaymentState,
    key: Option<&str>,
    now: Timestamp,
) -> boxoffice_store::Payment {
    let id = PaymentId::generate();
    boxoffice_store::Payment {
        provider_reference: format!("ref-{id}"),
        id,
        hold_id: hold.id.clone(),
        user_id: hold.user_id.clone(),
        show_id: hold.show_id.clone(),
        amount: hold.total.clone(),
        wallet_minor: 0,
        method: "card".into(),
        card_last4: "4242".into(),
        state,
        booking_id: None,
        failure_reason: None,
        idempotency_key: key.map(str::to_owned),
        created_at: now,
        updated_at: now,
    }
}

/// Paying for a hold first reads the hold with a payment of it still being decided; letting the
/// hold go cancels a payment still waiting for the customer's bank, in the release's own
/// transaction, and leaves one the provider is deciding to run on.
async fn a_release_cancels_the_payment_waiting_for_the_bank(engine: Engine) {
    use boxoffice_core::payment::PaymentState;
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    let bob = f.customer("bob@example.com").await;
    let waiting_hold = f.seats(&alice, &["A1"], f.now).await.unwrap();
    let deciding_hold = f.seats(&bob, &["A2"], f.now).await.unwrap();
    let (_, nothing_open) = f
        .store
        .hold_to_pay(&waiting_hold.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(nothing_open, None);
    let failed = card_payment(&waiting_hold, PaymentState::Failed, None, f.now);
    f.store.insert_payment(&failed).await.unwrap();
    let waiting = card_payment(&waiting_hold, PaymentState::RequiresAction, None, f.now);
    f.store.insert_payment(&waiting).await.unwrap();
    let deciding = card_payment(&deciding_hold, PaymentState::Processing, None, f.now);
    f.store.insert_payment(&deciding).await.unwrap();
    let (read, open) = f
        .store
        .hold_to_pay(&waiting_hold.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, waiting_hold.clone().as_of(f.now));
    assert_eq!(
        open,
        Some(waiting.id.clone()),
        "a failed payment is not being decided"
    );
    assert_eq!(
        f.store.hold_to_pay(&HoldId::generate()).await.unwrap(),
        None
    );

    let later = f.now.plus_minutes(1);
    f.store
        .release_hold(&waiting_hold.id, &alice, later)
        .await
        .unwrap();
    f.store
        .release_hold(&deciding_hold.id, &bob, later)
        .await
        .unwrap();
    let cancelled = f.store.payment(&waiting.id).await.unwrap().unwrap();
    assert_eq!(cancelled.state, PaymentState::Cancelled);
    assert_eq!(
        cancelled.failure_reason.as_deref(),
        Some("the customer released the seats")
    );
    assert_eq!(cancelled.updated_at, later);
    assert_eq!(
        f.store.payment(&failed.id).await.unwrap().unwrap().state,
        PaymentState::Failed
    );
    assert_eq!(
        f.store.payment(&deciding.id).await.unwrap().unwrap().state,
        PaymentState::Processing
    );
    let (_, still) = f
        .store
        .hold_to_pay(&deciding_hold.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still, Some(deciding.id.clone()));
    let (_, none_left) = f
        .store
        .hold_to_pay(&waiting_hold.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(none_left, None);
}

/// A card booking's rows are written together (one statement on PostgreSQL): every one of them
/// lands, the payment's event comes before the booking's, and a refused booking writes none.
async fn a_card_booking_writes_everything_and_its_events_in_order(engine: Engine) {
    use boxoffice_core::outbox::EventKind;
    use boxoffice_core::payment::PaymentState;
    let f = Fixture::new(engine).await;
    let alice = f.customer("alice@example.com").await;
    let sign: boxoffice_store::TicketSigner =
        Arc::new(|claims| format!("signed:{}", claims.ticket_id));
    let confirm =
        |hold: &Hold, payment: &boxoffice_store::Payment, wallet_minor: i64| ConfirmHold {
            scratch_draw: 0.5,
            payment_id: None,
            new_payment: Some(payment.clone()),
            wallet_minor,
            booking_id: BookingId::generate(),
            hold_id: hold.id.clone(),
            show_id: hold.show_id.clone(),
            user_id: alice.clone(),
            payment_reference: "card ending 4242".into(),
            now: f.now,
            sign_ticket: sign.clone(),
        };

    // Refused (more from the wallet than the total): nothing is written.
    let hold = f.seats(&alice, &["A1", "A2"], f.now).await.unwrap();
    let payment = card_payment(&hold, PaymentState::Processing, None, f.now);
    let refused = f
        .store
        .confirm_hold(confirm(&hold, &payment, hold.total.amount_minor + 1), None)
        .await;
    assert!(matches!(domain(refused), DomainError::Validation(_)));
    assert!(
        f.store
            .messages_of(&f.tenant.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.store.payment(&payment.id).await.unwrap(), None);

    // Without a key (written with the rest) and with one (a statement of its own).
    let mut expected = Vec::new();
    let mut booked = Vec::new();
    for (labels, key) in [(["A1", "A2"], None), (["A3", "A4"], Some("key-1"))] {
        let hold = if labels[0] == "A1" {
            hold.clone()
        } else {
            f.seats(&alice, &labels, f.now).await.unwrap()
        };
        let payment = card_payment(&hold, PaymentState::Processing, key, f.now);
        let Outcome::Done(booking) = f
            .store
            .confirm_hold(confirm(&hold, &payment, 0), None)
            .await
            .unwrap()
        else {
            panic!("no key was given to the booking");
        };
        assert_eq!(booking.tickets.len(), 2);
        let stored = f
            .store
            .booking(&booking.id)
            .await
            .unwrap()
            .expect("the booking is stored");
        assert_eq!(stored.tickets.len(), 2, "its tickets are stored");
        let paid = f
            .store
            .payment(&payment.id)
            .await
            .unwrap()
            .expect("the payment is stored");
        assert_eq!(
            (paid.state, paid.booking_id.clone()),
            (PaymentState::Succeeded, Some(booking.id.clone()))
        );
        for label in labels {
            assert_eq!(f.state_of(label, f.now).await, SeatState::Sold);
        }
        expected.push((EventKind::PaymentSucceeded, payment.id.to_string()));
        expected.push((EventKind::BookingConfirmed, booking.id.to_string()));
        booked.push(booking);
    }
    // Listed with each one's own tickets, in order (the page's tickets are read at once).
    assert_eq!(f.store.bookings_of(&alice, None, 10).await.unwrap(), booked);
    let written: Vec<(EventKind, String)> = f
        .store
        .messages_of(&f.tenant.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.kind, m.subject))
        .collect();
    assert_eq!(written, expected);
}

conformance!(
    events_are_written_with_their_changes_and_delivered_in_order,
    a_card_booking_writes_everything_and_its_events_in_order,
    accounts_are_unique_by_email,
    layouts_and_shows_round_trip,
    holds_are_all_or_nothing,
    an_expired_hold_blocks_nobody,
    general_admission_never_oversells,
    bookings_confirm_and_cancel,
    ticket_limits_hold_across_orders,
    lapsed_holds_throttle_the_next_and_released_ones_do_not,
    waiting_rooms_are_kept_and_replaced,
    releases_and_the_sweeper_free_seats,
    best_available_picks_adjacent_seats,
    best_available_picks_from_a_replaced_layout,
    best_available_counts_a_seat_whose_hold_lapsed_as_free,
    best_available_finds_the_last_block_of_a_nearly_sold_hall,
    best_available_searches_a_hall_without_room_together_a_stretch_at_a_time,
    availability_counts_what_the_seat_map_shows,
    idempotent_commands_happen_once,
    racing_claims_sell_each_seat_once,
    claims_lined_up_are_decided_together_as_if_alone,
    bookings_lined_up_are_decided_together_as_if_alone,
    a_group_of_bookings_writes_every_kind_of_prize_together,
    bookings_of_two_shows_wait_in_lines_of_their_own,
    releases_lined_up_are_decided_together_as_if_alone,
    a_release_cancels_the_payment_waiting_for_the_bank,
    racing_groups_of_holds_and_bookings_never_fail,
    a_hold_released_and_booked_at_once_ends_one_way,
    a_customers_racing_holds_get_one,
    racing_general_admission_stays_within_capacity,
    general_admission_paths_racing_keep_the_counters,
    secrets_are_created_once,
    sessions_rotate_and_die_on_reuse,
    organizers_members_and_suspension,
    schedules_are_all_or_nothing,
    cancelling_a_show_races_with_claims,
    search_filters_on_both_engines,
    general_admission_counters_follow_every_path,
    told_events_are_ticked_off_by_kind_and_subject,
    an_event_sent_on_one_channel_waits_on_the_others,
    a_channel_is_handed_only_the_kinds_it_carries,
    an_endpoint_gets_the_events_after_it_was_created,
);

/// PostgreSQL only (SQLite keeps no statistics unless asked): a new venue's seats and a new
/// show's seats are in the planner's statistics as soon as they are written. A flash sale starts
/// at once, and plans made from the statistics of before (a table without those rows) read a
/// whole show per claim until autovacuum came by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_knows_a_new_shows_seats_at_once() {
    use sqlx::Connection;
    let f = Fixture::new(Engine::Postgres).await;
    let mut conn = sqlx::PgConnection::connect(&f._db.url).await.unwrap();
    for table in ["seats", "show_seats"] {
        let analyzed: Option<bool> = sqlx::query_scalar(
            "SELECT COALESCE(last_analyze, last_autoanalyze) IS NOT NULL FROM pg_stat_user_tables WHERE relname = $1",
        )
        .bind(table)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            analyzed,
            Some(true),
            "{table} was analyzed after the bulk write"
        );
        let counted: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = $1")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(
            counted >= f.venue.seats.len() as f32,
            "{table}: the statistics count {counted} rows"
        );
    }
}
