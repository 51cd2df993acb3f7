//! Payment intents with the simulated provider: every test card's outcome, the signed webhook
//! (forged, stale and replayed events refused or ignored), a processing payment keeping its
//! seats past the hold's deadline, and a success after the hold died refunded automatically.

use boxoffice_core::Clock as _;
use boxoffice_core::payment::{
    CARD_DECLINED, CARD_FAILS_LATER, CARD_SUCCEEDS, CARD_SUCCEEDS_LATER, CARD_THREE_D_SECURE,
};
use boxoffice_server::dispatch;
use boxoffice_testkit::{Engine, Reply, Session, TestApp, seat_ids};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn hold(app: &TestApp, customer: &Session, show: &Value, labels: &[&str]) -> Reply {
    let show_id = show["id"].as_str().unwrap();
    let map = app.seat_map(show_id).await;
    app.call(
        Method::POST,
        "/holds",
        Some(&customer.token),
        Some(json!({ "show_id": show_id, "seat_ids": seat_ids(&map, labels) })),
    )
    .await
}

async fn held(app: &TestApp, customer: &Session, show: &Value, labels: &[&str]) -> String {
    let reply = hold(app, customer, show, labels).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn pay(app: &TestApp, customer: &Session, hold_id: &str, card: &str, key: &str) -> Reply {
    let request = app
        .request(Method::POST, "/bookings")
        .bearer_auth(&customer.token)
        .header("idempotency-key", key)
        .json(&json!({ "hold_id": hold_id, "payment": { "method": "card", "card_number": card } }));
    Reply::from(request.send().await.unwrap()).await
}

/// Waits (in real time: the simulated provider answers after a short delay) for the payment
/// to reach `state`.
async fn until_state(app: &TestApp, customer: &Session, payment: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = app
            .call(
                Method::GET,
                &format!("/payments/{payment}"),
                Some(&customer.token),
                None,
            )
            .await
            .body;
        if last["state"] == state {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("payment {payment} never became {state}: {last}");
}

async fn state_of(app: &TestApp, show: &Value, label: &str) -> String {
    let map = app.seat_map(show["id"].as_str().unwrap()).await;
    map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == label)
        .map(|s| s["state"].as_str().unwrap().to_owned())
        .unwrap()
}

async fn every_test_card_has_its_outcome(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("pay-org@example.com", 8, 10, 8).await;
    let alice = app.register("alice-pay@example.com", "customer").await;

    // Success: booked at once, the payment succeeded with it.
    let first = held(&app, &alice, &show, &["A1"]).await;
    let booked = pay(&app, &alice, &first, CARD_SUCCEEDS, "k1").await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    let payments = app
        .store
        .payments_of_hold(&boxoffice_core::ids::HoldId::parse(&first).unwrap())
        .await
        .unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].state.as_str(), "succeeded");
    assert_eq!(
        payments[0].booking_id.as_ref().map(|b| b.to_string()),
        booked.body["id"].as_str().map(str::to_owned)
    );

    // Declined: 402 in words, the hold intact; another card then books it.
    let second = held(&app, &alice, &show, &["A2"]).await;
    let declined = pay(&app, &alice, &second, CARD_DECLINED, "k2").await;
    declined.problem(402, "payment_declined");
    assert_eq!(state_of(&app, &show, "A2").await, "held");
    let again = pay(&app, &alice, &second, CARD_SUCCEEDS, "k3").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);

    // 3-D Secure: waits for the customer, then processing, then booked by the webhook.
    let third = held(&app, &alice, &show, &["A3"]).await;
    let pending = pay(&app, &alice, &third, CARD_THREE_D_SECURE, "k4").await;
    assert_eq!(pending.status, StatusCode::ACCEPTED, "{}", pending.body);
    assert_eq!(pending.body["state"], "requires_action");
    let payment = pending.body["id"].as_str().unwrap().to_owned();
    let confirm_url = pending.body["next_action"]["confirm_url"].as_str().unwrap();
    assert_eq!(confirm_url, format!("/api/v1/payments/{payment}/confirm"));
    // Nothing is booked until the customer passes the check.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(state_of(&app, &show, "A3").await, "held");
    let confirmed = app
        .call(
            Method::POST,
            &format!("/payments/{payment}/confirm"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["state"], "processing");
    let done = until_state(&app, &alice, &payment, "succeeded").await;
    assert!(done["booking_id"].as_str().unwrap().starts_with("bk_"));
    assert_eq!(state_of(&app, &show, "A3").await, "sold");
    let twice = app
        .call(
            Method::POST,
            &format!("/payments/{payment}/confirm"),
            Some(&alice.token),
            None,
        )
        .await;
    twice.problem(409, "conflict");

    // Later success and later failure, reported by webhook.
    let fourth = held(&app, &alice, &show, &["B1"]).await;
    let later = pay(&app, &alice, &fourth, CARD_FAILS_LATER, "k5").await;
    assert_eq!(later.status, StatusCode::ACCEPTED, "{}", later.body);
    assert_eq!(later.body["state"], "processing");
    let failed = until_state(&app, &alice, later.body["id"].as_str().unwrap(), "failed").await;
    assert!(failed["booking_id"].is_null());
    assert_eq!(
        state_of(&app, &show, "B1").await,
        "held",
        "a failed payment keeps the hold"
    );
    let retried = pay(&app, &alice, &fourth, CARD_SUCCEEDS_LATER, "k6").await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
    // A retry with the same key answers with the same payment; nothing is charged again.
    let same = pay(&app, &alice, &fourth, CARD_SUCCEEDS_LATER, "k6").await;
    assert_eq!(same.body["id"], retried.body["id"]);
    // While it is being decided no second payment can start for the hold.
    let another = pay(&app, &alice, &fourth, CARD_SUCCEEDS, "k7").await;
    another.problem(409, "conflict");
    until_state(
        &app,
        &alice,
        retried.body["id"].as_str().unwrap(),
        "succeeded",
    )
    .await;
    assert_eq!(state_of(&app, &show, "B1").await, "sold");

    // Letting the seats go cancels a payment still waiting for the bank's check.
    let fifth = held(&app, &alice, &show, &["B2"]).await;
    let waiting = pay(&app, &alice, &fifth, CARD_THREE_D_SECURE, "k8").await;
    let waiting_id = waiting.body["id"].as_str().unwrap().to_owned();
    let released = app
        .call(
            Method::DELETE,
            &format!("/holds/{fifth}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    until_state(&app, &alice, &waiting_id, "cancelled").await;
    app.call(
        Method::POST,
        &format!("/payments/{waiting_id}/confirm"),
        Some(&alice.token),
        None,
    )
    .await
    .problem(409, "conflict");

    // Someone else's payment reads as missing.
    let bob = app.register("bob-pay@example.com", "customer").await;
    app.call(
        Method::GET,
        &format!("/payments/{payment}"),
        Some(&bob.token),
        None,
    )
    .await
    .problem(404, "not_found");
}

async fn a_processing_payment_keeps_its_seats_past_the_deadline(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("keep-org@example.com", 4, 10, 4).await;
    let (alice, bob) = (
        app.register("alice-keep@example.com", "customer").await,
        app.register("bob-keep@example.com", "customer").await,
    );
    let hold_id = held(&app, &alice, &show, &["A1", "A2"]).await;
    let pending = pay(&app, &alice, &hold_id, CARD_SUCCEEDS_LATER, "keep").await;
    assert_eq!(pending.status, StatusCode::ACCEPTED, "{}", pending.body);
    // The hold's ten minutes pass while the provider decides: the seats stay hers.
    app.clock.advance_minutes(11);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    hold(&app, &bob, &show, &["A1"])
        .await
        .problem(409, "seat_unavailable");
    let done = until_state(
        &app,
        &alice,
        pending.body["id"].as_str().unwrap(),
        "succeeded",
    )
    .await;
    let booking = app
        .call(
            Method::GET,
            &format!("/bookings/{}", done["booking_id"].as_str().unwrap()),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(booking.body["state"], "confirmed", "{}", booking.body);
    assert_eq!(booking.body["tickets"].as_array().map(Vec::len), Some(2));
}

async fn a_success_after_the_hold_died_is_refunded(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("late-org@example.com", 4, 10, 4).await;
    let alice = app.register("alice-late@example.com", "customer").await;
    let hold_id = held(&app, &alice, &show, &["A1"]).await;
    let pending = pay(&app, &alice, &hold_id, CARD_SUCCEEDS_LATER, "late").await;
    assert_eq!(pending.status, StatusCode::ACCEPTED, "{}", pending.body);
    // Longer than the hold may be kept for a payment: it expires and the seat is free again.
    app.clock.advance_minutes(30);
    let alice = app.login("alice-late@example.com").await;
    let refunded = until_state(
        &app,
        &alice,
        pending.body["id"].as_str().unwrap(),
        "refunded",
    )
    .await;
    assert!(refunded["booking_id"].is_null());
    assert!(
        refunded["failure_reason"]
            .as_str()
            .unwrap()
            .contains("refunded")
    );
    assert_eq!(state_of(&app, &show, "A1").await, "free");
    let bookings = app
        .call(Method::GET, "/bookings", Some(&alice.token), None)
        .await;
    assert_eq!(bookings.body["items"].as_array().map(Vec::len), Some(0));
    // The organizer heard both: the success and the refund.
    let organizer =
        boxoffice_core::ids::OrganizerId::parse(show["organizer_id"].as_str().unwrap()).unwrap();
    let kinds: Vec<String> = app
        .store
        .messages_of(&organizer, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.kind.as_str().to_owned())
        .collect();
    assert!(kinds.contains(&"payment.succeeded".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"payment.refunded".to_owned()), "{kinds:?}");
    assert!(
        !kinds.contains(&"booking.confirmed".to_owned()),
        "{kinds:?}"
    );
}

async fn provider_webhooks_must_be_signed_fresh_and_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("sig-org@example.com", 4, 10, 4).await;
    let alice = app.register("alice-sig@example.com", "customer").await;
    let hold_id = held(&app, &alice, &show, &["A1"]).await;
    let pending = pay(&app, &alice, &hold_id, CARD_THREE_D_SECURE, "sig").await;
    let payment = pending.body["id"].as_str().unwrap().to_owned();
    let reference = format!("sim_{payment}");
    let secret = app
        .store
        .secret("payment_webhook_secret", "unused")
        .await
        .unwrap();
    let body = json!({ "id": "evt_forged_1", "type": "payment.succeeded", "reference": reference })
        .to_string();
    let now_s = app.clock.now().unix_ms() / 1000;
    let send = |signature: String, body: String| {
        let request = app
            .request(Method::POST, "/payments/webhook")
            .header("content-type", "application/json")
            .header(dispatch::SIGNATURE_HEADER, signature)
            .body(body);
        async move { Reply::from(request.send().await.unwrap()).await }
    };
    // Forged, stale or unsigned: refused, and nothing is booked.
    send(dispatch::sign("whsec_guess", now_s, &body), body.clone())
        .await
        .problem(403, "forbidden");
    send(dispatch::sign(&secret, now_s - 3_600, &body), body.clone())
        .await
        .problem(403, "forbidden");
    send(String::new(), body.clone())
        .await
        .problem(403, "forbidden");
    let tampered = body.replace("succeeded", "failed");
    send(dispatch::sign(&secret, now_s, &body), tampered)
        .await
        .problem(403, "forbidden");
    assert_eq!(state_of(&app, &show, "A1").await, "held");
    // Signed and fresh: acted on once; the same event again changes nothing.
    let taken = send(dispatch::sign(&secret, now_s, &body), body.clone()).await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    assert_eq!(taken.body["replayed"], false);
    let replayed = send(dispatch::sign(&secret, now_s, &body), body.clone()).await;
    assert_eq!(replayed.body["replayed"], true);
    // A second event with another id for the same payment books nothing more either.
    let other = body.replace("evt_forged_1", "evt_forged_2");
    let again = send(dispatch::sign(&secret, now_s, &other), other).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let bookings = app
        .call(Method::GET, "/bookings", Some(&alice.token), None)
        .await;
    assert_eq!(bookings.body["items"].as_array().map(Vec::len), Some(1));
    let paid = until_state(&app, &alice, &payment, "succeeded").await;
    assert_eq!(paid["booking_id"], bookings.body["items"][0]["id"]);
}

crate::on_both_engines!(
    every_test_card_has_its_outcome,
    a_processing_payment_keeps_its_seats_past_the_deadline,
    a_success_after_the_hold_died_is_refunded,
    provider_webhooks_must_be_signed_fresh_and_once,
);
