//! Rate limits on one instance: sign-in attempts are limited far more strictly than reads, holds
//! and bookings have their own burst guard per user, and a refusal says when to come back.

use boxoffice_server::ratelimit::Rate;
use boxoffice_testkit::{Engine, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn sign_in_attempts_are_limited_before_reads_are(engine: Engine) {
    let app = TestApp::spawn_with(engine, |config| {
        config.rate_limits.auth = Rate::parse("1/m:3").unwrap();
    })
    .await;
    let guess = json!({"email": "alice@example.com", "password": "not her password"});
    for _ in 0..3 {
        let reply = app
            .call(Method::POST, "/auth/login", None, Some(guess.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.headers["ratelimit-policy"], "3;w=180;name=\"auth\"");
    }
    let refused = app
        .call(Method::POST, "/auth/login", None, Some(guess))
        .await;
    let body = refused.problem(429, "rate_limited");
    assert_eq!(body["tier"], "auth");
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry after {retry} s");
    assert_eq!(refused.headers["ratelimit-remaining"], "0");
    let events = app.call(Method::GET, "/events", None, None).await;
    assert_eq!(events.status, StatusCode::OK, "reads are not held back");
    assert!(events.headers.contains_key("ratelimit-remaining"));
}

async fn holds_and_bookings_have_a_burst_guard_per_user(engine: Engine) {
    let app = TestApp::spawn_with(engine, |config| {
        config.rate_limits.orders = Rate::parse("1/m:2").unwrap();
    })
    .await;
    let (_, show) = app.show_with("org@example.com", 4, 50, 4).await;
    let area = app.seat_map(show["id"].as_str().unwrap()).await["areas"][0]["id"].clone();
    let one = json!({"show_id": show["id"], "areas": [{"area_id": area, "quantity": 1}]});
    let alice = app.register("alice@example.com", "customer").await;
    let bob = app.register("bob@example.com", "customer").await;
    let first = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(one.clone()),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Refused for holding twice, and still counted: the guard counts attempts.
    app.call(
        Method::POST,
        "/holds",
        Some(&alice.token),
        Some(one.clone()),
    )
    .await
    .problem(409, "conflict");
    let guarded = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(one.clone()),
        )
        .await;
    assert_eq!(guarded.problem(429, "rate_limited")["tier"], "orders");
    let held = app
        .call(Method::POST, "/holds", Some(&bob.token), Some(one))
        .await;
    assert_eq!(
        held.status,
        StatusCode::CREATED,
        "another customer has his own budget"
    );
    let id = first.body["id"].as_str().unwrap();
    let mine = app
        .call(
            Method::GET,
            &format!("/holds/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(
        mine.status,
        StatusCode::OK,
        "her other requests are not guarded"
    );
}

crate::on_both_engines!(
    sign_in_attempts_are_limited_before_reads_are,
    holds_and_bookings_have_a_burst_guard_per_user,
);
