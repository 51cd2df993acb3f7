//! Waitlists with a movable clock: a customer joins only what is sold out; places that come back
//! are offered in joining order as holds with their own deadline; an offer not taken in time
//! passes to the next; a group overtaken three times holds the line; and with two instances
//! racing to run rounds, no seat is offered twice and no entry gets two offers.

use boxoffice_core::ids::ShowId;
use boxoffice_testkit::ws::PATIENCE;
use boxoffice_testkit::{Engine, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

async fn join(
    app: &TestApp,
    who: &Session,
    show_id: &str,
    body: Value,
) -> boxoffice_testkit::Reply {
    app.call(
        Method::POST,
        &format!("/shows/{show_id}/waitlist"),
        Some(&who.token),
        Some(body),
    )
    .await
}

async fn mine(app: &TestApp, who: &Session, show_id: &str) -> Value {
    let reply = app
        .call(
            Method::GET,
            &format!("/me/waitlist?show_id={show_id}"),
            Some(&who.token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply
        .body
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .expect("an entry")
}

/// The entry once it reads `state`, waiting for the background rounds.
async fn eventually(app: &TestApp, who: &Session, show_id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let entry = mine(app, who, show_id).await;
        if entry["state"] == state {
            return entry;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {state}: {entry}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The labels of the seats a hold holds.
async fn hold_labels(app: &TestApp, who: &Session, hold_id: &Value) -> Vec<String> {
    let hold = app
        .call(
            Method::GET,
            &format!("/holds/{}", hold_id.as_str().unwrap()),
            Some(&who.token),
            None,
        )
        .await;
    assert_eq!(hold.status, StatusCode::OK, "{}", hold.body);
    assert_eq!(hold.body["state"], "active");
    hold.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_owned())
        .collect()
}

async fn customers(app: &TestApp, count: usize) -> Vec<Session> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        out.push(
            app.register(&format!("waiter{i}@example.com"), "customer")
                .await,
        );
    }
    out
}

/// The organizer's view of the list.
async fn list(app: &TestApp, organizer: &Session, show_id: &str) -> Vec<Value> {
    let reply = app
        .call(
            Method::GET,
            &format!("/shows/{show_id}/waitlist"),
            Some(&organizer.token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body.as_array().unwrap().clone()
}

/// A test server whose sign-ins outlast the clock's jumps past offer deadlines.
async fn long_sessions(engine: Engine) -> TestApp {
    TestApp::spawn_with(engine, |config| config.token_ttl_minutes = 24 * 60).await
}

async fn offers_go_in_order_and_pass_on_when_not_taken_in_time(engine: Engine) {
    let app = long_sessions(engine).await;
    let (organizer, show) = app.show_with("org@example.com", 2, 1, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let buyer = app.register("buyer@example.com", "customer").await;
    let [alice, bob, carol] = <[Session; 3]>::try_from(customers(&app, 3).await).unwrap();

    let early = join(
        &app,
        &alice,
        show_id,
        json!({"quantity": 1, "category": "standard"}),
    )
    .await;
    early.problem(409, "conflict");
    let first = app.book_seats(&buyer, &show, &["A1"]).await;
    app.book_seats(&buyer, &show, &["A2"]).await;
    app.book_seats(&buyer, &show, &["B1", "B2"]).await;

    for (bad, field) in [
        (json!({"quantity": 0}), "quantity"),
        (json!({"quantity": 5}), "quantity"),
        (json!({"quantity": 1, "category": "balcony"}), "category"),
    ] {
        let refused = join(&app, &alice, show_id, bad).await;
        let problem = refused.problem(422, "validation");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let missing = join(
        &app,
        &alice,
        &ShowId::generate().to_string(),
        json!({"quantity": 1}),
    )
    .await;
    missing.problem(404, "not_found");
    assert!(
        list(&app, &organizer, show_id).await.is_empty(),
        "bad input changed nothing"
    );

    let joined = join(
        &app,
        &alice,
        show_id,
        json!({"quantity": 1, "category": "standard"}),
    )
    .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert_eq!(joined.body["place"], 1);
    assert_eq!(joined.body["state"], "waiting");
    join(&app, &alice, show_id, json!({"quantity": 1}))
        .await
        .problem(409, "conflict");
    let second = join(
        &app,
        &bob,
        show_id,
        json!({"quantity": 1, "category": "standard"}),
    )
    .await;
    assert_eq!(second.body["place"], 2);
    let third = join(
        &app,
        &carol,
        show_id,
        json!({"quantity": 2, "category": "standard", "together": true}),
    )
    .await;
    assert_eq!(third.body["place"], 3);

    // A1 comes back: the first in line is offered it, as a hold in her name.
    app.cancel_booking(&buyer, &first, "wallet").await;
    let offered = eventually(&app, &alice, show_id, "offered").await;
    assert_eq!(hold_labels(&app, &alice, &offered["hold_id"]).await, ["A1"]);
    let deadline = app
        .clock
        .now_plus_minutes(boxoffice_core::waitlist::OFFER_MINUTES);
    assert_eq!(offered["offer_expires_at"], json!(deadline));
    let someone_elses = app
        .call(
            Method::GET,
            &format!("/holds/{}", offered["hold_id"].as_str().unwrap()),
            Some(&bob.token),
            None,
        )
        .await;
    someone_elses.problem(404, "not_found");
    assert_eq!(mine(&app, &bob, show_id).await["place"], 1);
    assert_eq!(mine(&app, &carol, show_id).await["place"], 2);

    // Not taken in time: the offer lapses and A1 passes to the next.
    app.clock
        .advance_minutes(boxoffice_core::waitlist::OFFER_MINUTES + 1);
    let passed = eventually(&app, &bob, show_id, "offered").await;
    assert_eq!(hold_labels(&app, &bob, &passed["hold_id"]).await, ["A1"]);
    assert_eq!(mine(&app, &alice, show_id).await["state"], "lapsed");
    app.pay_hold(&bob, &json!({"id": passed["hold_id"]})).await;
    assert_eq!(mine(&app, &bob, show_id).await["state"], "booked");
    let states: Vec<Value> = list(&app, &organizer, show_id)
        .await
        .iter()
        .map(|e| e["state"].clone())
        .collect();
    assert_eq!(states, [json!("lapsed"), json!("booked"), json!("waiting")]);

    // Carol leaves; she can join again later (one open entry per customer and show).
    let entry = mine(&app, &carol, show_id).await;
    let left = app
        .call(
            Method::DELETE,
            &format!("/waitlist/{}", entry["id"].as_str().unwrap()),
            Some(&carol.token),
            None,
        )
        .await;
    assert_eq!(left.status, StatusCode::OK, "{}", left.body);
    assert_eq!(left.body["state"], "left");
    let again = join(
        &app,
        &carol,
        show_id,
        json!({"quantity": 1, "category": "standard"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);

    // Each offer was mailed, and so was the one that ran out.
    let folder = app.state.config.mail.folder.clone();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mails: Vec<String> = std::fs::read_dir(&folder)
            .map(|files| {
                files
                    .filter_map(|f| std::fs::read_to_string(f.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        let offers = mails
            .iter()
            .filter(|m| m.contains("Places for you"))
            .count();
        let ran_out = mails
            .iter()
            .filter(|m| m.contains("Your waitlist offer ran out"))
            .count();
        if offers == 2 && ran_out == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{offers} offer mails, {ran_out} about a lapsed offer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a round now (whatever the background has run already) and gives the organizer's list.
async fn round(app: &TestApp, organizer: &Session, show_id: &str) -> Vec<Value> {
    boxoffice_server::waitlist::serve(&app.state, &ShowId::parse(show_id).unwrap()).await;
    list(app, organizer, show_id).await
}

async fn a_group_is_not_skipped_forever_by_singles(engine: Engine) {
    let app = long_sessions(engine).await;
    let (organizer, show) = app.show_with("org@example.com", 3, 1, 4).await;
    let show_id = show["id"].as_str().unwrap();
    // Each seat a booking of its own, by buyers within the per-customer limit.
    let buyers = [
        app.register("buyer1@example.com", "customer").await,
        app.register("buyer2@example.com", "customer").await,
    ];
    let mut sold = std::collections::HashMap::new();
    for (i, label) in ["A1", "A2", "A3", "B1", "B2", "B3"].into_iter().enumerate() {
        let buyer = &buyers[i / 3];
        sold.insert(label, (buyer, app.book_seats(buyer, &show, &[label]).await));
    }
    let people = customers(&app, 5).await;
    let wants = json!({"quantity": 2, "category": "standard", "together": true});
    assert_eq!(
        join(&app, &people[0], show_id, wants).await.status,
        StatusCode::CREATED
    );
    for single in &people[1..] {
        let joined = join(
            &app,
            single,
            show_id,
            json!({"quantity": 1, "category": "standard"}),
        )
        .await;
        assert_eq!(joined.status, StatusCode::CREATED);
    }
    // Lone seats come back one by one: singles may overtake the pair, three times.
    for (label, single) in [("A1", 1), ("B3", 2), ("A3", 3)] {
        app.cancel_booking(sold[label].0, &sold[label].1, "wallet")
            .await;
        let entries = round(&app, &organizer, show_id).await;
        assert_eq!(entries[single]["state"], "offered", "{label}: {entries:?}");
        assert_eq!(entries[0]["state"], "waiting");
        assert_eq!(entries[0]["passes"], single as i64);
    }
    // Overtaken three times, the pair holds the line: B1 alone is offered to nobody.
    app.cancel_booking(sold["B1"].0, &sold["B1"].1, "wallet")
        .await;
    let entries = round(&app, &organizer, show_id).await;
    assert_eq!(entries[4]["state"], "waiting", "{entries:?}");
    assert_eq!(entries[0]["state"], "waiting");
    assert_eq!(entries[0]["passes"], 3);
    // B2 next to it comes back: the pair gets both, side by side, before the single behind.
    app.cancel_booking(sold["B2"].0, &sold["B2"].1, "wallet")
        .await;
    let entries = round(&app, &organizer, show_id).await;
    assert_eq!(entries[0]["state"], "offered", "{entries:?}");
    assert_eq!(entries[4]["state"], "waiting");
    let mut pair = hold_labels(&app, &people[0], &entries[0]["hold_id"]).await;
    pair.sort();
    assert_eq!(pair, ["B1", "B2"]);
    // No seat went to two entries.
    let mut seats = HashSet::new();
    for (i, person) in people.iter().enumerate().take(4) {
        for label in hold_labels(&app, person, &entries[i]["hold_id"]).await {
            assert!(seats.insert(label.clone()), "{label} offered twice");
        }
    }
    assert_eq!(seats.len(), 5);
}

async fn two_instances_racing_offer_each_seat_once_in_order(engine: Engine) {
    let app = long_sessions(engine).await;
    let other = app.sibling().await;
    let (organizer, show) = app.show_with("org@example.com", 4, 1, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let buyer = app.register("buyer@example.com", "customer").await;
    let front = app
        .book_seats(&buyer, &show, &["A1", "A2", "A3", "A4"])
        .await;
    let second = app.register("buyer2@example.com", "customer").await;
    app.book_seats(&second, &show, &["B1", "B2", "B3", "B4"])
        .await;
    let people = customers(&app, 12).await;
    for person in &people {
        let joined = join(
            &app,
            person,
            show_id,
            json!({"quantity": 1, "category": "standard"}),
        )
        .await;
        assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    }
    let show = ShowId::parse(show_id).unwrap();
    app.cancel_booking(&buyer, &front, "wallet").await;
    // Both instances run rounds at once, several times over.
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..4 {
        for state in [app.state.clone(), other.state.clone()] {
            let show = show.clone();
            racing.spawn(async move { boxoffice_server::waitlist::serve(&state, &show).await });
        }
    }
    while racing.join_next().await.is_some() {}
    let entries = list(&app, &organizer, show_id).await;
    let states: Vec<&str> = entries
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states[..4], ["offered"; 4], "{entries:?}");
    assert!(states[4..].iter().all(|s| *s == "waiting"), "{entries:?}");
    let mut seats = HashSet::new();
    for (person, entry) in people.iter().zip(&entries).take(4) {
        for label in hold_labels(&app, person, &entry["hold_id"]).await {
            assert!(seats.insert(label.clone()), "{label} offered twice");
        }
    }
    // Nobody pays in time: the next four are offered the same seats, once each.
    app.clock
        .advance_minutes(boxoffice_core::waitlist::OFFER_MINUTES + 1);
    let mut racing = tokio::task::JoinSet::new();
    for state in [app.state.clone(), other.state.clone()] {
        let show = show.clone();
        racing.spawn(async move {
            let _ = state.store.expire_holds(state.clock.now(), 100).await;
            boxoffice_server::waitlist::serve(&state, &show).await
        });
    }
    while racing.join_next().await.is_some() {}
    let entries = round(&app, &organizer, show_id).await;
    let states: Vec<&str> = entries
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states[..8],
        [
            "lapsed", "lapsed", "lapsed", "lapsed", "offered", "offered", "offered", "offered"
        ],
        "{entries:?}"
    );
    let mut again = HashSet::new();
    for (person, entry) in people.iter().zip(&entries).skip(4).take(4) {
        for label in hold_labels(&app, person, &entry["hold_id"]).await {
            assert!(again.insert(label.clone()), "{label} offered twice");
        }
    }
    assert_eq!(again, seats);
}

async fn capacity_added_goes_to_the_waitlist_first_and_viewers_hear_of_the_offer(engine: Engine) {
    let app = long_sessions(engine).await;
    let (organizer, show) = app.show_with("org@example.com", 2, 2, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let area_id = app.seat_map(show_id).await["areas"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let buyer = app.register("buyer@example.com", "customer").await;
    let held = app
        .call(
            Method::POST,
            "/holds",
            Some(&buyer.token),
            Some(json!({"show_id": show_id, "areas": [{"area_id": area_id, "quantity": 2}]})),
        )
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    app.pay_hold(&buyer, &held.body).await;

    let alice = app.register("alice@example.com", "customer").await;
    let joined = join(
        &app,
        &alice,
        show_id,
        json!({"quantity": 2, "category": "standing"}),
    )
    .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let mut viewer = boxoffice_testkit::ws::connect(&app.base).await;
    boxoffice_testkit::ws::send(
        &mut viewer,
        json!({"type": "subscribe", "show_id": show_id}),
    )
    .await;

    let path = format!("/shows/{show_id}/areas/{area_id}/capacity");
    for (bad, why) in [(0, "must be 1"), (1, "cannot go below 2")] {
        let refused = app
            .call(
                Method::PUT,
                &path,
                Some(&organizer.token),
                Some(json!({"capacity": bad})),
            )
            .await;
        let problem = refused.problem(422, "validation");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(why),
            "{problem}"
        );
    }
    app.call(
        Method::PUT,
        &path,
        Some(&alice.token),
        Some(json!({"capacity": 10})),
    )
    .await
    .problem(404, "not_found");
    let raised = app
        .call(
            Method::PUT,
            &path,
            Some(&organizer.token),
            Some(json!({"capacity": 4})),
        )
        .await;
    assert_eq!(raised.status, StatusCode::OK, "{}", raised.body);
    assert_eq!(raised.body["capacity"], 4);

    let offered = eventually(&app, &alice, show_id, "offered").await;
    let hold = app
        .call(
            Method::GET,
            &format!("/holds/{}", offered["hold_id"].as_str().unwrap()),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(hold.body["items"][0]["quantity"], 2);
    assert_eq!(hold.body["items"][0]["category"], "standing");
    loop {
        let message = boxoffice_testkit::ws::next_json(&mut viewer).await;
        if message["type"] == "waitlist_offered" {
            assert_eq!(message["entry_id"], offered["id"]);
            break;
        }
    }
}

crate::on_both_engines!(
    offers_go_in_order_and_pass_on_when_not_taken_in_time,
    a_group_is_not_skipped_forever_by_singles,
    two_instances_racing_offer_each_seat_once_in_order,
    capacity_added_goes_to_the_waitlist_first_and_viewers_hear_of_the_offer,
);
