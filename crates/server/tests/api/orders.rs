//! The customer's path: hold, pay, book, cancel, with the ways it can go wrong.

use boxoffice_core::hold;
use boxoffice_testkit::{Engine, TestApp, seat_ids};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn state_of(map: &Value, label: &str) -> String {
    map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == label)
        .unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

const CARD_OK: &str = "4242424242424242";
const CARD_DECLINED: &str = "4000000000000002";

async fn hold_pay_and_cancel(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 6, 20, 6).await;
    let show_id = show["id"].as_str().unwrap();
    let listed = app
        .call(Method::GET, &format!("/shows/{show_id}"), None, None)
        .await;
    assert_eq!(listed.body["availability"][0]["free"], 12);
    let alice = app.register("alice@example.com", "customer").await;
    let map = app.seat_map(show_id).await;
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(json!({"show_id": show_id, "seat_ids": seat_ids(&map, &["A3", "A4"])})),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
    assert_eq!(
        hold.body["total"],
        json!({"amount_minor": 4000, "currency": "EUR"})
    );
    assert_eq!(state_of(&app.seat_map(show_id).await, "A3"), "held");

    let declined = app
        .call(Method::POST, "/bookings", Some(&alice.token), Some(json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": CARD_DECLINED}})))
        .await;
    declined.problem(402, "payment_declined");
    let still = app
        .call(
            Method::GET,
            &format!("/holds/{}", hold.body["id"].as_str().unwrap()),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(
        still.body["state"], "active",
        "a declined card leaves the hold intact"
    );

    let booking = app
        .call(Method::POST, "/bookings", Some(&alice.token), Some(json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": CARD_OK}})))
        .await;
    assert_eq!(booking.status, StatusCode::CREATED, "{}", booking.body);
    assert_eq!(booking.body["state"], "confirmed");
    assert_eq!(booking.body["tickets"].as_array().unwrap().len(), 2);
    let map = app.seat_map(show_id).await;
    assert_eq!(
        (state_of(&map, "A3"), state_of(&map, "A4")),
        ("sold".into(), "sold".into())
    );
    let mine = app
        .call(Method::GET, "/bookings", Some(&alice.token), None)
        .await;
    assert_eq!(mine.body["items"][0]["id"], booking.body["id"]);

    let again = app
        .call(Method::POST, "/bookings", Some(&alice.token), Some(json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": CARD_OK}})))
        .await;
    again.problem(409, "hold_already_booked");

    let path = format!("/bookings/{}/cancel", booking.body["id"].as_str().unwrap());
    let cancelled = app
        .call(Method::POST, &path, Some(&alice.token), None)
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["state"], "cancelled");
    assert_eq!(
        state_of(&app.seat_map(show_id).await, "A3"),
        "free",
        "cancelled seats are free at once"
    );
    app.call(Method::POST, &path, Some(&alice.token), None)
        .await
        .problem(409, "not_cancellable");
}

async fn expired_holds_free_their_seats_and_cannot_be_paid(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let (alice, bob) = (
        app.register("alice@example.com", "customer").await,
        app.register("bob@example.com", "customer").await,
    );
    let map = app.seat_map(show_id).await;
    let seats = seat_ids(&map, &["B1"]);
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(json!({"show_id": show_id, "seat_ids": seats})),
        )
        .await;
    app.call(
        Method::POST,
        "/holds",
        Some(&bob.token),
        Some(json!({"show_id": show_id, "seat_ids": seats})),
    )
    .await
    .problem(409, "seat_unavailable");
    app.clock.advance_minutes(10);
    assert_eq!(state_of(&app.seat_map(show_id).await, "B1"), "free");
    let expired = app
        .call(
            Method::GET,
            &format!("/holds/{}", hold.body["id"].as_str().unwrap()),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(expired.body["state"], "expired");
    app.call(Method::POST, "/bookings", Some(&alice.token), Some(json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": CARD_OK}})))
        .await
        .problem(409, "hold_expired");
    let bobs = app
        .call(
            Method::POST,
            "/holds",
            Some(&bob.token),
            Some(json!({"show_id": show_id, "seat_ids": seats})),
        )
        .await;
    assert_eq!(
        bobs.status,
        StatusCode::CREATED,
        "an expired hold blocks nobody: {}",
        bobs.body
    );
}

async fn releasing_a_hold_frees_it_for_others(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let alice = app.register("alice@example.com", "customer").await;
    let best = app
        .call(Method::POST, "/holds", Some(&alice.token), Some(json!({"show_id": show_id, "best_available": {"category": "standard", "quantity": 3}})))
        .await;
    assert_eq!(best.status, StatusCode::CREATED, "{}", best.body);
    let labels: Vec<_> = best.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        labels == ["A1", "A2", "A3"] || labels == ["A2", "A3", "A4"],
        "adjacent in the front row: {labels:?}"
    );
    let path = format!("/holds/{}", best.body["id"].as_str().unwrap());
    let released = app
        .call(Method::DELETE, &path, Some(&alice.token), None)
        .await;
    assert_eq!(released.body["state"], "released");
    let map = app.seat_map(show_id).await;
    assert!(labels.iter().all(|l| state_of(&map, l) == "free"));
}

async fn ticket_limits_are_enforced(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 50, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let area = app.seat_map(show_id).await["areas"][0]["id"].clone();
    let alice = app.register("alice@example.com", "customer").await;
    let five = json!({"show_id": show_id, "areas": [{"area_id": area, "quantity": 5}]});
    app.call(Method::POST, "/holds", Some(&alice.token), Some(five))
        .await
        .problem(422, "limit_exceeded");
    let three = json!({"show_id": show_id, "areas": [{"area_id": area, "quantity": 3}]});
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(three.clone()),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED);
    // Anti-hoarding: one live hold per customer and show.
    let one = json!({"show_id": show_id, "areas": [{"area_id": area, "quantity": 1}]});
    app.call(Method::POST, "/holds", Some(&alice.token), Some(one))
        .await
        .problem(409, "conflict");
    let paid = app
        .call(Method::POST, "/bookings", Some(&alice.token), Some(json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": CARD_OK}})))
        .await;
    assert_eq!(paid.status, StatusCode::CREATED);
    // The per-customer limit counts what she owns as well as what she holds.
    app.call(Method::POST, "/holds", Some(&alice.token), Some(three))
        .await
        .problem(422, "limit_exceeded");
    let map = app.seat_map(show_id).await;
    assert_eq!(map["areas"][0]["held"], 0, "a refused hold holds nothing");
    assert_eq!(map["areas"][0]["sold"], 3);
}

async fn holds_let_lapse_again_and_again_are_throttled(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 50, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let area = app.seat_map(show_id).await["areas"][0]["id"].clone();
    app.register("alice@example.com", "customer").await;
    app.register("bob@example.com", "customer").await;
    let one = json!({"show_id": show_id, "areas": [{"area_id": area, "quantity": 1}]});
    for _ in 0..hold::LAPSES_ALLOWED {
        // Signed in afresh each time: access tokens outlive no more than 15 minutes.
        let alice = app.login("alice@example.com").await;
        let held = app
            .call(
                Method::POST,
                "/holds",
                Some(&alice.token),
                Some(one.clone()),
            )
            .await;
        assert_eq!(held.status, StatusCode::CREATED);
        app.clock.advance_minutes(11);
    }
    let alice = app.login("alice@example.com").await;
    let refused = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(one.clone()),
        )
        .await;
    // Lapses at 10, 21 and 32 minutes; the first leaves the hour-long window in 37 minutes.
    assert_eq!(refused.headers["retry-after"], "2220");
    refused.problem(429, "throttled");
    let bob = app.login("bob@example.com").await;
    let held = app
        .call(Method::POST, "/holds", Some(&bob.token), Some(one.clone()))
        .await;
    assert_eq!(
        held.status,
        StatusCode::CREATED,
        "others are not slowed down"
    );
    app.clock.advance_minutes(37);
    let alice = app.login("alice@example.com").await;
    let held = app
        .call(Method::POST, "/holds", Some(&alice.token), Some(one))
        .await;
    assert_eq!(
        held.status,
        StatusCode::CREATED,
        "after the wait she may hold again"
    );
}

async fn idempotent_retries_answer_the_same(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let alice = app.register("alice@example.com", "customer").await;
    let body =
        json!({"show_id": show_id, "seat_ids": seat_ids(&app.seat_map(show_id).await, &["A1"])});
    let send = |key: &'static str, body: Value| {
        let request = app
            .request(Method::POST, "/holds")
            .bearer_auth(&alice.token)
            .header("idempotency-key", key)
            .json(&body);
        async move { boxoffice_testkit::Reply::from(request.send().await.unwrap()).await }
    };
    let first = send("hold-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let retry = send("hold-1", body.clone()).await;
    assert_eq!(
        (retry.status, &retry.body),
        (StatusCode::CREATED, &first.body)
    );
    assert_eq!(retry.headers.get("idempotent-replayed").unwrap(), "true");
    let other =
        json!({"show_id": show_id, "seat_ids": seat_ids(&app.seat_map(show_id).await, &["A2"])});
    send("hold-1", other)
        .await
        .problem(422, "idempotency_key_reused");
    assert_eq!(
        state_of(&app.seat_map(show_id).await, "A2"),
        "free",
        "a reused key changes nothing"
    );
    let map = app.seat_map(show_id).await;
    assert_eq!(map["availability"][0]["held"], 1);
}

async fn the_sweeper_tidies_expired_holds(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let alice = app.register("alice@example.com", "customer").await;
    let seats = seat_ids(&app.seat_map(show_id).await, &["A1", "A2"]);
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(json!({"show_id": show_id, "seat_ids": seats})),
        )
        .await;
    let hold_id = boxoffice_core::ids::HoldId::parse(hold.body["id"].as_str().unwrap()).unwrap();
    app.clock.advance_minutes(10);
    // The stored state (not the state as of now) changes only when the sweeper runs.
    let mut stored = app.store.hold(&hold_id).await.unwrap().unwrap().state;
    for _ in 0..200 {
        if stored == boxoffice_core::hold::HoldState::Expired {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        stored = app.store.hold(&hold_id).await.unwrap().unwrap().state;
    }
    assert_eq!(
        stored,
        boxoffice_core::hold::HoldState::Expired,
        "the sweeper never ran"
    );
    assert_eq!(app.seat_map(show_id).await["availability"][0]["held"], 0);
}

async fn catalog_creation_is_idempotent(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let organizer = app.register("org@example.com", "organizer").await;
    let send = |path: &'static str, key: &'static str, body: Value| {
        let request = app
            .request(Method::POST, path)
            .bearer_auth(&organizer.token)
            .header("idempotency-key", key)
            .json(&body);
        async move { boxoffice_testkit::Reply::from(request.send().await.unwrap()).await }
    };
    let layout = json!({"name": "Hall", "areas": [{"name": "Floor", "category": "standing", "capacity": 50}]});
    let first = send("/venues", "v1", layout.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let retry = send("/venues", "v1", layout).await;
    assert_eq!(
        (retry.status, &retry.body),
        (StatusCode::CREATED, &first.body)
    );
    send(
        "/venues",
        "v1",
        json!({"name": "Other", "areas": [{"name": "F", "category": "standing", "capacity": 5}]}),
    )
    .await
    .problem(422, "idempotency_key_reused");
    let venues = app
        .call(Method::GET, "/venues", Some(&organizer.token), None)
        .await;
    assert_eq!(
        venues.body.as_array().unwrap().len(),
        1,
        "one venue despite the retry"
    );
    let event = json!({"title": "Gig", "kind": "concert"});
    let (e1, e2) = (
        send("/events", "e1", event.clone()).await,
        send("/events", "e1", event).await,
    );
    assert_eq!(e1.body, e2.body);
    let show = json!({"event_id": e1.body["id"], "venue_id": first.body["id"], "starts_at": "2031-01-01T20:00:00Z",
        "currency": "EUR", "prices": {"standing": 3000}});
    let (s1, s2) = (
        send("/shows", "s1", show.clone()).await,
        send("/shows", "s1", show).await,
    );
    assert_eq!((s1.status, &s1.body), (StatusCode::CREATED, &s2.body));
    let listed = app
        .call(
            Method::GET,
            &format!("/shows?event_id={}", e1.body["id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "one show despite the retry"
    );
}

async fn the_filter_refuses_known_taken_seats_for_a_moment_only(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let (alice, bob) = (
        app.register("alice@example.com", "customer").await,
        app.register("bob@example.com", "customer").await,
    );
    let body =
        json!({"show_id": show_id, "seat_ids": seat_ids(&app.seat_map(show_id).await, &["A1"])});
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(body.clone()),
        )
        .await;
    app.call(Method::POST, "/holds", Some(&bob.token), Some(body.clone()))
        .await
        .problem(409, "seat_unavailable");
    // Freed behind this process's back (as another instance would): the filter still remembers
    // the seat as taken, but only for its short fact window.
    let hold_id = boxoffice_core::ids::HoldId::parse(hold.body["id"].as_str().unwrap()).unwrap();
    let alice_id = boxoffice_core::ids::UserId::parse(&alice.user_id).unwrap();
    app.store
        .release_hold(&hold_id, &alice_id, app.clock.now_plus_minutes(0))
        .await
        .unwrap();
    app.call(Method::POST, "/holds", Some(&bob.token), Some(body.clone()))
        .await
        .problem(409, "seat_unavailable");
    // Another seat freed here forgets that seat only: what is known of A1 stays.
    let carol = app.register("carol@example.com", "customer").await;
    let other =
        json!({"show_id": show_id, "seat_ids": seat_ids(&app.seat_map(show_id).await, &["B1"])});
    let carols = app
        .call(Method::POST, "/holds", Some(&carol.token), Some(other))
        .await;
    assert_eq!(carols.status, StatusCode::CREATED, "{}", carols.body);
    let carols = format!("/holds/{}", carols.body["id"].as_str().unwrap());
    app.call(Method::DELETE, &carols, Some(&carol.token), None)
        .await;
    app.call(Method::POST, "/holds", Some(&bob.token), Some(body.clone()))
        .await
        .problem(409, "seat_unavailable");
    let window = boxoffice_server::Config::default().filter_fact_ms;
    app.clock.advance_ms(window - 1);
    app.call(Method::POST, "/holds", Some(&bob.token), Some(body.clone()))
        .await
        .problem(409, "seat_unavailable");
    app.clock.advance_ms(2);
    let granted = app
        .call(Method::POST, "/holds", Some(&bob.token), Some(body.clone()))
        .await;
    assert_eq!(
        granted.status,
        StatusCode::CREATED,
        "the database decides once the fact lapsed: {}",
        granted.body
    );
    // Freed through this process: forgotten at once.
    let path = format!("/holds/{}", granted.body["id"].as_str().unwrap());
    app.call(
        Method::POST,
        "/holds",
        Some(&alice.token),
        Some(body.clone()),
    )
    .await
    .problem(409, "seat_unavailable");
    app.call(Method::DELETE, &path, Some(&bob.token), None)
        .await;
    assert_eq!(
        app.call(Method::POST, "/holds", Some(&alice.token), Some(body))
            .await
            .status,
        StatusCode::CREATED
    );
}

/// What this process announces taken is refused in memory, whoever chose the seats (here
/// best-available): a hold for the short fact window, a sale for the longer sale window, since a
/// sold seat comes back only through an announced cancellation. Both only bound an announcement
/// this process missed (here, another instance without Redis frees the seats).
async fn seats_announced_taken_are_refused_in_memory_a_sale_for_longer(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let (alice, bob, carol) = (
        app.register("alice@example.com", "customer").await,
        app.register("bob@example.com", "customer").await,
        app.register("carol@example.com", "customer").await,
    );
    let best =
        json!({"show_id": show_id, "best_available": {"category": "standard", "quantity": 1}});
    let picked = app
        .call(Method::POST, "/holds", Some(&alice.token), Some(best))
        .await;
    assert_eq!(picked.status, StatusCode::CREATED, "{}", picked.body);
    let seat = picked.body["items"][0]["seat_id"].clone();
    let hold_id = boxoffice_core::ids::HoldId::parse(picked.body["id"].as_str().unwrap()).unwrap();
    let alice_id = boxoffice_core::ids::UserId::parse(&alice.user_id).unwrap();
    app.store
        .release_hold(&hold_id, &alice_id, app.clock.now_plus_minutes(0))
        .await
        .unwrap();
    let ask = json!({"show_id": show_id, "seat_ids": [seat]});
    app.call(Method::POST, "/holds", Some(&bob.token), Some(ask.clone()))
        .await
        .problem(409, "seat_unavailable");
    let config = boxoffice_server::Config::default();
    app.clock.advance_ms(config.filter_fact_ms);
    let held = app
        .call(Method::POST, "/holds", Some(&bob.token), Some(ask.clone()))
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let booking = app.pay_hold(&bob, &held.body).await;
    // Cancelled on another instance, whose announcement this one does not hear.
    let other = app.sibling().await;
    other.api.cancel_booking(&bob, &booking, "card").await;
    app.clock.advance_ms(config.filter_fact_ms + 1);
    app.call(
        Method::POST,
        "/holds",
        Some(&carol.token),
        Some(ask.clone()),
    )
    .await
    .problem(409, "seat_unavailable");
    app.clock.advance_ms(config.filter_sold_fact_ms);
    let granted = app
        .call(Method::POST, "/holds", Some(&carol.token), Some(ask))
        .await;
    assert_eq!(
        granted.status,
        StatusCode::CREATED,
        "the database decides once the sale's fact lapsed: {}",
        granted.body
    );
}

/// With Redis, what another instance sells is known taken here, and what it frees is forgotten
/// seat by seat: a release elsewhere no longer wipes everything this instance knew of the show.
async fn sales_and_releases_elsewhere_reach_the_filter_through_redis(engine: Engine) {
    use boxoffice_core::filter::AvailabilityFilter;
    use boxoffice_core::hold::HoldRequest;
    use boxoffice_core::ids::{SeatId, ShowId};
    let redis = boxoffice_testkit::redis::RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(engine, |config| config.redis_url = Some(url.clone())).await;
    let other = app.sibling().await;
    let (_, sold) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = sold["id"].as_str().unwrap();
    let show = ShowId::parse(show_id).unwrap();
    let map = app.seat_map(show_id).await;
    let seat = |label: &str| SeatId::parse(seat_ids(&map, &[label])[0].as_str().unwrap()).unwrap();
    let (bob, carol) = (
        app.register("bob@example.com", "customer").await,
        app.register("carol@example.com", "customer").await,
    );
    let refused_here = |label: &str| {
        let filter: &std::sync::Mutex<AvailabilityFilter> = &app.state.filter;
        let request = HoldRequest::Seats(vec![seat(label)]);
        filter
            .lock()
            .unwrap()
            .check(&show, &request, app.clock.now_plus_minutes(0))
            .is_err()
    };
    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} never reached this instance"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // Sold on the other instance.
    let bobs = other.api.book_seats(&bob, &sold, &["A1"]).await;
    other.api.book_seats(&carol, &sold, &["A2"]).await;
    assert!(
        !refused_here("A3"),
        "nothing is known of a seat nobody took"
    );
    // Past the holds' short facts: only the sales (heard after them) can refuse the seats now.
    app.clock
        .advance_ms(boxoffice_server::Config::default().filter_fact_ms + 1);
    until("the sales", || refused_here("A1") && refused_here("A2")).await;
    other.api.cancel_booking(&bob, &bobs, "card").await;
    until("the cancellation", || !refused_here("A1")).await;
    assert!(refused_here("A2"), "a seat not freed is still known sold");
}

crate::on_both_engines!(
    the_filter_refuses_known_taken_seats_for_a_moment_only,
    seats_announced_taken_are_refused_in_memory_a_sale_for_longer,
    sales_and_releases_elsewhere_reach_the_filter_through_redis,
    catalog_creation_is_idempotent,
    the_sweeper_tidies_expired_holds,
    hold_pay_and_cancel,
    expired_holds_free_their_seats_and_cannot_be_paid,
    releasing_a_hold_frees_it_for_others,
    ticket_limits_are_enforced,
    holds_let_lapse_again_and_again_are_throttled,
    idempotent_retries_answer_the_same,
);
