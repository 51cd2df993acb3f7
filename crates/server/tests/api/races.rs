//! Many clients at once against the same inventory (laws 1 and 4).

use boxoffice_testkit::{Engine, Reply, Session, TestApp};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// At most this many requests in flight at once from the test, so the test process stays
/// within its file-descriptor limit while the server still sees real concurrency.
const IN_FLIGHT: usize = 200;

async fn customers(app: &Arc<TestApp>, count: usize) -> Vec<Session> {
    let gate = Arc::new(Semaphore::new(32));
    join_all((0..count).map(|i| {
        let (app, gate) = (app.clone(), gate.clone());
        async move {
            let _permit = gate.acquire().await.unwrap();
            app.register(&format!("fan{i}@example.com"), "customer")
                .await
        }
    }))
    .await
}

async fn two_hundred_clients_race_for_ten_seats(engine: Engine) {
    let app = Arc::new(TestApp::spawn(engine).await);
    let (_, show) = app.show_with("org@example.com", 5, 10, 4).await;
    let show_id = show["id"].as_str().unwrap().to_owned();
    let seats: Vec<String> = app.seat_map(&show_id).await["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seats.len(), 10);
    let fans = customers(&app, 200).await;
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let replies = join_all(fans.iter().enumerate().map(|(i, fan)| {
        let (app, gate, show_id) = (app.clone(), gate.clone(), show_id.clone());
        // Every client wants two neighbouring seats; pairs overlap, so most must lose.
        let wanted = vec![seats[i % 10].clone(), seats[(i + 1) % 10].clone()];
        async move {
            let _permit = gate.acquire().await.unwrap();
            let reply = app
                .call(
                    Method::POST,
                    "/holds",
                    Some(&fan.token),
                    Some(json!({"show_id": show_id, "seat_ids": wanted})),
                )
                .await;
            (wanted, reply)
        }
    }))
    .await;
    let mut held_by: HashMap<String, usize> = HashMap::new();
    let mut wins = 0;
    for (wanted, reply) in &replies {
        match reply.status {
            StatusCode::CREATED => {
                wins += 1;
                for seat in wanted {
                    *held_by.entry(seat.clone()).or_default() += 1;
                }
            }
            _ => {
                reply.problem(409, "seat_unavailable");
            }
        }
    }
    assert!(
        held_by.values().all(|n| *n == 1),
        "a seat was held twice: {held_by:?}"
    );
    let map = app.seat_map(&show_id).await;
    let held = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "held")
        .count();
    assert_eq!(held, 2 * wins, "every granted seat is held, nothing else");
    assert!(
        (3..=5).contains(&wins),
        "ten seats in overlapping pairs allow 3 to 5 winners, got {wins}"
    );
}

async fn a_thousand_clients_race_for_three_hundred_places(engine: Engine) {
    let app = Arc::new(TestApp::spawn(engine).await);
    let (_, show) = app.show_with("org@example.com", 1, 300, 4).await;
    let show_id = show["id"].as_str().unwrap().to_owned();
    let area = app.seat_map(&show_id).await["areas"][0]["id"].clone();
    let fans = customers(&app, 1000).await;
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let results = join_all(fans.iter().enumerate().map(|(i, fan)| {
        let (app, gate, show_id, area) = (app.clone(), gate.clone(), show_id.clone(), area.clone());
        let quantity = (i % 4 + 1) as i64;
        async move {
            let _permit = gate.acquire().await.unwrap();
            let hold = app.call(Method::POST, "/holds", Some(&fan.token), Some(json!({"show_id": show_id, "areas": [{"area_id": area, "quantity": quantity}]}))).await;
            if hold.status != StatusCode::CREATED {
                hold.problem(409, "seat_unavailable");
                return 0;
            }
            // Every third winner pays at once; the rest keep their hold.
            if i % 3 == 0 {
                let pay = json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}});
                let booking = app.call(Method::POST, "/bookings", Some(&fan.token), Some(pay)).await;
                assert_eq!(booking.status, StatusCode::CREATED, "{}", booking.body);
            }
            quantity
        }
    }))
    .await;
    let granted: i64 = results.iter().sum();
    let floor = &app.seat_map(&show_id).await["areas"][0];
    let (held, sold, free) = (
        floor["held"].as_i64().unwrap(),
        floor["sold"].as_i64().unwrap(),
        floor["free"].as_i64().unwrap(),
    );
    assert_eq!(
        held + sold,
        granted,
        "held + sold is exactly what was granted"
    );
    assert!(granted <= 300, "oversold: {granted}");
    assert!(free >= 0 && held + sold + free == 300);
    assert!(
        granted >= 297,
        "demand was far above capacity, yet only {granted} granted"
    );
}

async fn a_hundred_concurrent_retries_make_one_booking(engine: Engine) {
    let app = Arc::new(TestApp::spawn(engine).await);
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap().to_owned();
    let area = app.seat_map(&show_id).await["areas"][0]["id"].clone();
    let alice = app.register("alice@example.com", "customer").await;
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(json!({"show_id": show_id, "areas": [{"area_id": area, "quantity": 2}]})),
        )
        .await;
    let pay = json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}});
    let replies = join_all((0..100).map(|_| {
        let request = app
            .request(Method::POST, "/bookings")
            .bearer_auth(&alice.token)
            .header("idempotency-key", "pay-once")
            .json(&pay);
        async move { Reply::from(request.send().await.unwrap()).await }
    }))
    .await;
    let created: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|r| r.body == created[0].body),
        "every success is the first answer"
    );
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.problem(409, "idempotency_in_progress");
    }
    let bookings = app
        .call(Method::GET, "/bookings", Some(&alice.token), None)
        .await;
    assert_eq!(
        bookings.body["items"].as_array().unwrap().len(),
        1,
        "exactly one booking"
    );
    let late_retry = app
        .request(Method::POST, "/bookings")
        .bearer_auth(&alice.token)
        .header("idempotency-key", "pay-once")
        .json(&pay)
        .send()
        .await
        .unwrap();
    let late_retry = Reply::from(late_retry).await;
    assert_eq!(
        (late_retry.status, &late_retry.body),
        (StatusCode::CREATED, &created[0].body)
    );
    assert_eq!(app.seat_map(&show_id).await["areas"][0]["sold"], 2);
}

crate::on_both_engines!(
    two_hundred_clients_race_for_ten_seats,
    a_thousand_clients_race_for_three_hundred_places,
    a_hundred_concurrent_retries_make_one_booking,
);
