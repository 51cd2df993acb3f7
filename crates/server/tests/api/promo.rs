//! Promo codes: discounts applied at hold time and shown in the totals, scoped to an
//! organizer, event or show and to a window, and their limits enforced exactly: 100 customers
//! racing for a code with 10 uses make exactly 10 bookings with it.

use boxoffice_testkit::{Engine, Session, TestApp, seat_ids};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn create_code(app: &TestApp, organizer: &Session, body: Value) -> boxoffice_testkit::Reply {
    app.call(
        Method::POST,
        "/promo-codes",
        Some(&organizer.token),
        Some(body),
    )
    .await
}

async fn hold_with(
    app: &TestApp,
    customer: &Session,
    show: &Value,
    labels: &[&str],
    code: &str,
) -> boxoffice_testkit::Reply {
    let show_id = show["id"].as_str().unwrap();
    let map = app.seat_map(show_id).await;
    app.call(
        Method::POST,
        "/holds",
        Some(&customer.token),
        Some(json!({ "show_id": show_id, "seat_ids": seat_ids(&map, labels), "promo_code": code })),
    )
    .await
}

async fn codes_discount_within_their_scope_and_window(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (organizer, show) = app.show_with("promo-org@example.com", 8, 10, 6).await;
    let (other, elsewhere) = app.show_with("promo-other@example.com", 4, 10, 4).await;

    // Bad codes are refused in words, and nothing is created.
    let bad = create_code(
        &app,
        &organizer,
        json!({"code": "x", "discount": {"percent": 150}, "max_uses": 0}),
    )
    .await;
    assert_eq!(
        bad.problem(422, "validation")["errors"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let foreign = create_code(
        &app,
        &organizer,
        json!({"code": "THEIRS", "show_id": elsewhere["id"], "discount": {"percent": 10}, "max_uses": 5}),
    )
    .await;
    foreign.problem(404, "not_found");
    let listed = app
        .call(Method::GET, "/promo-codes", Some(&organizer.token), None)
        .await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(0));

    let ten = create_code(
        &app,
        &organizer,
        json!({"code": "tenoff", "discount": {"percent": 10}, "max_uses": 5, "max_uses_per_customer": 1}),
    )
    .await;
    assert_eq!(ten.status, StatusCode::CREATED, "{}", ten.body);
    assert_eq!(ten.body["code"], "TENOFF");
    let later = app.clock.now_plus_minutes(60);
    let fixed = create_code(
        &app,
        &organizer,
        json!({"code": "FIVE-EUROS", "show_id": show["id"], "discount": {"amount": 500}, "max_uses": 5, "valid_from": later}),
    )
    .await;
    assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.body);
    create_code(
        &app,
        &organizer,
        json!({"code": "TENOFF", "discount": {"percent": 5}, "max_uses": 1}),
    )
    .await
    .problem(409, "conflict");

    // Applied at hold time, in any case: two seats at €20 less 10 %.
    let alice = app.register("alice-promo@example.com", "customer").await;
    let held = hold_with(&app, &alice, &show, &["A1", "A2"], "TenOff").await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    assert_eq!(held.body["total"]["amount_minor"], 3_600);
    assert_eq!(held.body["discount_minor"], 400);
    assert_eq!(held.body["promo_code"], "TENOFF");
    let booked = app
        .call(
            Method::POST,
            "/bookings",
            Some(&alice.token),
            Some(json!({"hold_id": held.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}})),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    assert_eq!(
        booked.body["total"]["amount_minor"], 3_600,
        "the booking charges the discounted total"
    );

    // Once per customer; not for another organizer's show; not before its window opens; an
    // unknown code is refused. None of these holds is made.
    hold_with(&app, &alice, &show, &["A3"], "TENOFF")
        .await
        .problem(409, "conflict");
    let bob = app.register("bob-promo@example.com", "customer").await;
    hold_with(&app, &bob, &elsewhere, &["A1"], "TENOFF")
        .await
        .problem(422, "validation");
    hold_with(&app, &bob, &show, &["A4"], "FIVE-EUROS")
        .await
        .problem(422, "validation");
    hold_with(&app, &bob, &show, &["A4"], "NOPE")
        .await
        .problem(422, "validation");
    let map = app.seat_map(show["id"].as_str().unwrap()).await;
    let a4 = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "A4")
        .unwrap();
    assert_eq!(a4["state"], "free", "a refused code holds nothing");
    app.clock.advance_minutes(61);
    let bob = app.login("bob-promo@example.com").await;
    let five = hold_with(&app, &bob, &show, &["A4"], "five-euros").await;
    assert_eq!(five.status, StatusCode::CREATED, "{}", five.body);
    assert_eq!(five.body["total"]["amount_minor"], 1_500);
    let _ = other;

    let organizer = app.login("promo-org@example.com").await;
    let listed = app
        .call(Method::GET, "/promo-codes", Some(&organizer.token), None)
        .await;
    let used: Vec<(String, i64)> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_owned(),
                p["used"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        used,
        [("FIVE-EUROS".to_owned(), 0), ("TENOFF".to_owned(), 1)]
    );
}

/// 100 customers race for a code with 10 uses: exactly 10 holds get it, and exactly 10
/// bookings use it.
async fn a_code_is_never_used_more_than_it_allows(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (organizer, show) = app.show_with("race-promo@example.com", 60, 100, 2).await;
    let code = create_code(
        &app,
        &organizer,
        json!({"code": "FIRST10", "discount": {"percent": 50}, "max_uses": 10}),
    )
    .await;
    assert_eq!(code.status, StatusCode::CREATED, "{}", code.body);
    let mut customers = Vec::new();
    for n in 0..100 {
        customers.push(
            app.register(&format!("racer{n}@example.com"), "customer")
                .await,
        );
    }
    let map = app.seat_map(show["id"].as_str().unwrap()).await;
    let labels: Vec<String> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap().to_owned())
        .collect();
    let attempts = customers.iter().zip(labels.iter()).map(|(customer, label)| {
        let (app, show) = (&app, &show);
        async move {
            let held = hold_with(app, customer, show, &[label.as_str()], "FIRST10").await;
            if held.status != StatusCode::CREATED {
                return (held.status.as_u16(), None);
            }
            let booked = app
                .call(
                    Method::POST,
                    "/bookings",
                    Some(&customer.token),
                    Some(json!({"hold_id": held.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}})),
                )
                .await;
            (201, Some(booked))
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let got_it = results.iter().filter(|(status, _)| *status == 201).count();
    let used_up = results.iter().filter(|(status, _)| *status == 409).count();
    assert_eq!(
        (got_it, used_up),
        (10, 90),
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let bookings: Vec<&boxoffice_testkit::Reply> =
        results.iter().filter_map(|(_, b)| b.as_ref()).collect();
    assert!(
        bookings
            .iter()
            .all(|b| b.status == StatusCode::CREATED && b.body["total"]["amount_minor"] == 1_000)
    );
    let listed = app
        .call(Method::GET, "/promo-codes", Some(&organizer.token), None)
        .await;
    assert_eq!(listed.body[0]["used"], 10);
}

/// Places on the floor, with `code` (or none).
async fn floor_hold(
    app: &TestApp,
    customer: &Session,
    show: &Value,
    quantity: i64,
    code: Option<&str>,
) -> boxoffice_testkit::Reply {
    let show_id = show["id"].as_str().unwrap();
    let map = app.seat_map(show_id).await;
    let mut body = json!({"show_id": show_id, "areas": [{"area_id": map["areas"][0]["id"], "quantity": quantity}]});
    if let Some(code) = code {
        body["promo_code"] = json!(code);
    }
    app.call(Method::POST, "/holds", Some(&customer.token), Some(body))
        .await
}

async fn an_unlock_code_opens_a_locked_category_and_nothing_else(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (organizer, show) = app.show_with("unlock-org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let path = format!("/shows/{show_id}");
    let bad = app
        .call(
            Method::PATCH,
            &path,
            Some(&organizer.token),
            Some(json!({"locked_categories": ["balcony"]})),
        )
        .await;
    assert_eq!(
        bad.problem(422, "validation")["errors"][0]["field"],
        "locked_categories.balcony"
    );
    let locked = app
        .call(
            Method::PATCH,
            &path,
            Some(&organizer.token),
            Some(json!({"locked_categories": ["standing"]})),
        )
        .await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
    let public = app.call(Method::GET, &path, None, None).await;
    assert_eq!(public.body["locked_categories"], json!(["standing"]));

    let alice = app.register("alice@example.com", "customer").await;
    let refused = floor_hold(&app, &alice, &show, 2, None).await;
    assert_eq!(
        refused.problem(422, "validation")["errors"][0]["field"],
        "promo_code"
    );
    // A waitlist cannot hand out what only a code may buy.
    let waiting = app
        .call(
            Method::POST,
            &format!("/shows/{show_id}/waitlist"),
            Some(&alice.token),
            Some(json!({"quantity": 1, "category": "standing"})),
        )
        .await;
    waiting.problem(422, "validation");

    let nameless = create_code(
        &app,
        &organizer,
        json!({"code": "GUEST", "discount": {"unlock": ""}, "max_uses": 2}),
    )
    .await;
    nameless.problem(422, "validation");
    let code = create_code(
        &app,
        &organizer,
        json!({"code": "GUEST", "discount": {"unlock": "standing"}, "max_uses": 2}),
    )
    .await;
    assert_eq!(code.status, StatusCode::CREATED, "{}", code.body);

    let opened = floor_hold(&app, &alice, &show, 2, Some("guest")).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    assert_eq!(opened.body["discount_minor"], 0);
    assert_eq!(opened.body["total"]["amount_minor"], 2 * 1000);
    assert_eq!(opened.body["promo_code"], "GUEST");
    // Only for its category: not for the open seats.
    let bob = app.register("bob@example.com", "customer").await;
    let elsewhere = hold_with(&app, &bob, &show, &["A1"], "GUEST").await;
    assert_eq!(
        elsewhere.problem(422, "validation")["errors"][0]["field"],
        "promo_code"
    );
    let second = floor_hold(&app, &bob, &show, 1, Some("GUEST")).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    // Its uses are counted like any code's.
    let carol = app.register("carol@example.com", "customer").await;
    floor_hold(&app, &carol, &show, 1, Some("GUEST"))
        .await
        .problem(409, "conflict");
    // Seats of open categories need no code.
    let open = app.book_seats(&carol, &show, &["A1"]).await;
    assert_eq!(open["state"], "confirmed");
}

crate::on_both_engines!(
    codes_discount_within_their_scope_and_window,
    a_code_is_never_used_more_than_it_allows,
    an_unlock_code_opens_a_locked_category_and_nothing_else,
);
