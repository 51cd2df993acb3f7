//! Loyalty: points per ticket on confirmed bookings, spent as a discount on holds (never more
//! than there are, even by two holds at once), given back and taken back on cancellation; and
//! scratch cards for group bookings — drawn once (a retried confirmation draws nothing new),
//! revealed once, revoked with the booking, a cashback paid into the wallet when the show starts.

use boxoffice_testkit::ws::PATIENCE;
use boxoffice_testkit::{Engine, Reply, Session, TestApp, seat_ids};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const CARD: &str = "4242424242424242";

async fn loyalty(app: &TestApp, who: &Session) -> Value {
    let reply = app
        .call(Method::GET, "/me/loyalty", Some(&who.token), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

async fn hold(app: &TestApp, who: &Session, show: &Value, labels: &[&str], extra: Value) -> Reply {
    let show_id = show["id"].as_str().unwrap();
    let map = app.seat_map(show_id).await;
    let mut body = json!({"show_id": show_id, "seat_ids": seat_ids(&map, labels)});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    app.call(Method::POST, "/holds", Some(&who.token), Some(body))
        .await
}

fn kinds(loyalty: &Value) -> Vec<(String, i64)> {
    loyalty["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["points"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn points_are_earned_spent_once_and_taken_back(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 5, 4).await;
    let (_, other_show) = app.show_with("other-org@example.com", 4, 5, 4).await;
    let alice = app.register("alice@example.com", "customer").await;
    let first = app.book_seats(&alice, &show, &["A1", "A2"]).await;
    let points = loyalty(&app, &alice).await;
    assert_eq!(
        (points["balance"].clone(), points["available"].clone()),
        (json!(200), json!(200))
    );
    assert_eq!(kinds(&points), [("earned".to_owned(), 200)]);

    // Bad amounts change nothing.
    for bad in [json!({"redeem_points": -5}), json!({"redeem_points": 201})] {
        let refused = hold(&app, &alice, &show, &["A3"], bad).await;
        let problem = refused.problem(422, "validation");
        assert_eq!(problem["errors"][0]["field"], "redeem_points", "{problem}");
    }
    assert_eq!(loyalty(&app, &alice).await["available"], 200);

    // Two holds at once, on two shows, each spending 150 of the 200: exactly one may.
    let spend = json!({"redeem_points": 150});
    let (left, right) = tokio::join!(
        hold(&app, &alice, &show, &["A3"], spend.clone()),
        hold(&app, &alice, &other_show, &["A1"], spend.clone()),
    );
    let mut granted: Vec<&Reply> = [&left, &right]
        .into_iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(granted.len(), 1, "{} / {}", left.body, right.body);
    let refused = if left.status == StatusCode::CREATED {
        &right
    } else {
        &left
    };
    refused.problem(422, "validation");
    let spent = granted.pop().unwrap().body.clone();
    assert_eq!(spent["points_redeemed"], 150);
    assert_eq!(spent["total"]["amount_minor"], 2000 - 150);
    let points = loyalty(&app, &alice).await;
    assert_eq!(
        (points["balance"].clone(), points["available"].clone()),
        (json!(200), json!(50))
    );

    // Booked: the spending is written down and the new tickets earn.
    let booking = app.pay_hold(&alice, &spent).await;
    assert_eq!(booking["total"]["amount_minor"], 1850);
    let points = loyalty(&app, &alice).await;
    assert_eq!(points["balance"], 200 - 150 + 100);
    assert_eq!(
        kinds(&points)[..2],
        [("redeemed".to_owned(), -150), ("earned".to_owned(), 100)]
    );

    // Cancelled: what it earned is taken back, what it spent given back.
    app.cancel_booking(&alice, &booking, "wallet").await;
    let points = loyalty(&app, &alice).await;
    assert_eq!(points["balance"], 200);
    assert_eq!(
        kinds(&points)[..2],
        [("restored".to_owned(), 150), ("reversed".to_owned(), -100)]
    );

    // A released hold gives its points back at once.
    let lapsing = hold(&app, &alice, &show, &["B1"], json!({"redeem_points": 100})).await;
    assert_eq!(lapsing.status, StatusCode::CREATED, "{}", lapsing.body);
    assert_eq!(loyalty(&app, &alice).await["available"], 100);
    let id = lapsing.body["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/holds/{id}"),
        Some(&alice.token),
        None,
    )
    .await;
    assert_eq!(loyalty(&app, &alice).await["available"], 200);

    app.cancel_booking(&alice, &first, "wallet").await;
    assert_eq!(loyalty(&app, &alice).await["balance"], 0);
}

async fn cards(app: &TestApp, who: &Session) -> Vec<Value> {
    let reply = app
        .call(Method::GET, "/me/scratch-cards", Some(&who.token), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body.as_array().unwrap().clone()
}

async fn reveal(app: &TestApp, who: &Session, card: &Value) -> Reply {
    app.call(
        Method::POST,
        &format!("/scratch-cards/{}/reveal", card["id"].as_str().unwrap()),
        Some(&who.token),
        None,
    )
    .await
}

async fn scratch_cards_are_drawn_once_revealed_once_and_revoked(engine: Engine) {
    // Every draw lands on a discount code.
    let app = TestApp::spawn_with(engine, |config| config.fixed_scratch_draw = Some(0.99)).await;
    let (_, show) = app.show_with("org@example.com", 4, 5, 4).await;
    let alice = app.register("alice@example.com", "customer").await;
    let bob = app.register("bob@example.com", "customer").await;
    let held = hold(&app, &alice, &show, &["A1", "A2", "A3"], json!({})).await;
    let body =
        json!({"hold_id": held.body["id"], "payment": {"method": "card", "card_number": CARD}});
    let confirm = || {
        app.request(Method::POST, "/bookings")
            .bearer_auth(&alice.token)
            .header("idempotency-key", "group-booking-1")
            .json(&body)
            .send()
    };
    let first = Reply::from(confirm().await.unwrap()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = Reply::from(confirm().await.unwrap()).await;
    assert_eq!(
        again.body["id"], first.body["id"],
        "the retry is the same booking"
    );
    let drawn = cards(&app, &alice).await;
    assert_eq!(
        drawn.len(),
        1,
        "one card, however often the confirmation is retried"
    );
    assert_eq!(drawn[0]["state"], "hidden");
    assert!(
        drawn[0].get("prize").is_none(),
        "hidden until scratched: {}",
        drawn[0]
    );
    // Two tickets earn no card; nobody else may scratch this one.
    app.book_seats(&bob, &show, &["B1", "B2"]).await;
    assert!(cards(&app, &bob).await.is_empty());
    reveal(&app, &bob, &drawn[0])
        .await
        .problem(404, "not_found");

    let revealed = reveal(&app, &alice, &drawn[0]).await;
    assert_eq!(revealed.status, StatusCode::OK, "{}", revealed.body);
    assert_eq!(revealed.body["state"], "revealed");
    assert_eq!(revealed.body["prize"]["kind"], "discount_code");
    let code = revealed.body["prize"]["code"].as_str().unwrap().to_owned();
    let second = reveal(&app, &alice, &drawn[0]).await;
    assert_eq!(
        second.body["prize"], revealed.body["prize"],
        "never drawn again"
    );
    assert_eq!(
        cards(&app, &alice).await[0]["prize"],
        revealed.body["prize"]
    );

    // The code is real: 15 % off a later hold with the organizer.
    let with_code = hold(&app, &bob, &show, &["B3"], json!({"promo_code": code})).await;
    assert_eq!(with_code.status, StatusCode::CREATED, "{}", with_code.body);
    assert_eq!(with_code.body["discount_minor"], 300);
    let id = with_code.body["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/holds/{id}"),
        Some(&bob.token),
        None,
    )
    .await;

    // Cancelled: the card is void and so is its code.
    app.cancel_booking(&alice, &first.body, "wallet").await;
    assert_eq!(cards(&app, &alice).await[0]["state"], "revoked");
    reveal(&app, &alice, &drawn[0])
        .await
        .problem(409, "conflict");
    let void = hold(&app, &bob, &show, &["B3"], json!({"promo_code": code})).await;
    void.problem(422, "validation");
}

async fn wallet(app: &TestApp, who: &Session) -> i64 {
    let reply = app
        .call(Method::GET, "/me/wallet", Some(&who.token), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["balance_minor"].as_i64().unwrap()
}

async fn a_cashback_reaches_the_wallet_when_the_show_starts_unless_revoked(engine: Engine) {
    // Every draw lands on a cashback; sign-ins outlast the jump to the show.
    let app = TestApp::spawn_with(engine, |config| {
        config.fixed_scratch_draw = Some(0.1);
        config.token_ttl_minutes = 3 * 24 * 60;
    })
    .await;
    let admin = app.admin().await;
    let (_, show) = app.show_with("org@example.com", 4, 5, 4).await;
    let alice = app.register("alice@example.com", "customer").await;
    let bob = app.register("bob@example.com", "customer").await;
    app.book_seats(&alice, &show, &["A1", "A2", "A3"]).await;
    let cancelled = app.book_seats(&bob, &show, &["B1", "B2", "B3"]).await;
    app.cancel_booking(&bob, &cancelled, "card").await;
    let card = &cards(&app, &alice).await[0];
    let prize = reveal(&app, &alice, card).await.body["prize"].clone();
    assert_eq!(
        prize,
        json!({"kind": "cashback", "amount_minor": 600, "currency": "EUR"})
    );
    assert_eq!(
        wallet(&app, &alice).await,
        0,
        "paid when the show starts, not before"
    );

    app.clock.advance_minutes(25 * 60);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while wallet(&app, &alice).await != 600 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cashback never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cards(&app, &alice).await[0]["credited_at"].is_string());
    assert_eq!(wallet(&app, &bob).await, 0, "a revoked card pays nothing");
    assert_eq!(cards(&app, &bob).await[0]["state"], "revoked");
    // Once only, and the books balance.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(wallet(&app, &alice).await, 600);
    let check = app
        .call(Method::GET, "/admin/ledger/check", Some(&admin.token), None)
        .await;
    assert_eq!(check.body["balanced"], true, "{}", check.body);
}

crate::on_both_engines!(
    points_are_earned_spent_once_and_taken_back,
    scratch_cards_are_drawn_once_revealed_once_and_revoked,
    a_cashback_reaches_the_wallet_when_the_show_starts_unless_revoked,
);
