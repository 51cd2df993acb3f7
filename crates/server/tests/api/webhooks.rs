//! Webhooks against a real receiver on loopback: every event arrives at least once, signed, in
//! order per booking, through the receiver's failures; a dispatcher stopped mid-delivery loses
//! nothing; a delivery can be replayed; endpoints are behind the tenant wall; with Redis every
//! event is also on the organizer's stream.

use boxoffice_core::Clock as _;
use boxoffice_server::dispatch;
use boxoffice_testkit::receiver::Receiver;
use boxoffice_testkit::{Engine, Session, TestApp, seat_ids};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The kinds these tests follow (payments have their own tests).
const KINDS: [&str; 3] = ["booking.confirmed", "booking.cancelled", "hold.expired"];

async fn register_endpoint(app: &TestApp, organizer: &Session, url: &str) -> (String, String) {
    let created = app
        .call(
            Method::POST,
            "/webhooks",
            Some(&organizer.token),
            Some(json!({ "url": url, "event_types": KINDS })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["event_types"], json!(KINDS));
    // Without a choice, an endpoint gets every kind.
    let everything = app
        .call(
            Method::POST,
            "/webhooks",
            Some(&organizer.token),
            Some(json!({ "url": format!("{url}/all") })),
        )
        .await;
    assert_eq!(
        everything.body["event_types"].as_array().map(Vec::len),
        Some(boxoffice_core::outbox::EventKind::ALL.len())
    );
    let id = everything.body["id"].as_str().unwrap();
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/webhooks/{id}"),
            Some(&organizer.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    (
        created.body["id"].as_str().unwrap().to_owned(),
        created.body["secret"].as_str().unwrap().to_owned(),
    )
}

/// The endpoint's `count` deliveries once none is pending any more.
async fn settled_deliveries(
    app: &TestApp,
    organizer: &Session,
    endpoint: &str,
    count: usize,
) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..100 {
        let reply = app
            .call(
                Method::GET,
                &format!("/webhooks/{endpoint}/deliveries"),
                Some(&organizer.token),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        last = reply.body.as_array().cloned().unwrap_or_default();
        if last.len() == count && last.iter().all(|d| d["state"] != "pending") {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("deliveries never settled: {last:?}");
}

/// Moves the server's clock on (so retries fall due) until `done` holds, or fails.
async fn until(app: &TestApp, what: &str, step_ms: i64, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        app.clock.advance_ms(step_ms);
    }
    panic!("never saw {what}");
}

async fn every_event_arrives_signed_and_in_order(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let receiver = Receiver::start(3).await;
    let (organizer, show) = app.show_with("hooks@example.com", 6, 10, 4).await;
    let (endpoint, secret) = register_endpoint(&app, &organizer, &receiver.url).await;

    // Bad endpoints are refused in words and nothing is registered.
    let refused = app
        .call(
            Method::POST,
            "/webhooks",
            Some(&organizer.token),
            Some(json!({ "url": "ftp://example.com", "event_types": ["booking.exploded"] })),
        )
        .await;
    let problem = refused.problem(422, "validation");
    assert_eq!(problem["errors"].as_array().map(Vec::len), Some(2));
    let listed = app
        .call(Method::GET, "/webhooks", Some(&organizer.token), None)
        .await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1));
    assert!(
        listed.body[0].get("secret").is_none(),
        "the secret is shown once"
    );

    // Two bookings, the first cancelled, and a hold left to expire.
    let alice = app.register("alice-hooks@example.com", "customer").await;
    let first = app.book_seats(&alice, &show, &["A1", "A2"]).await;
    let second = app.book_seats(&alice, &show, &["A3"]).await;
    let cancel = format!("/bookings/{}/cancel", first["id"].as_str().unwrap());
    let cancelled = app
        .call(Method::POST, &cancel, Some(&alice.token), None)
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let map = app.seat_map(show["id"].as_str().unwrap()).await;
    let lapsing = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(json!({ "show_id": show["id"], "seat_ids": seat_ids(&map, &["B1"]) })),
        )
        .await;
    assert_eq!(lapsing.status, StatusCode::CREATED, "{}", lapsing.body);
    app.clock.advance_minutes(11);

    let expected = |app: &TestApp| {
        let store = app.store.clone();
        let organizer = show["organizer_id"].as_str().unwrap().to_owned();
        async move {
            store
                .messages_of(
                    &boxoffice_core::ids::OrganizerId::parse(&organizer).unwrap(),
                    100,
                )
                .await
                .unwrap()
                .into_iter()
                .filter(|m| KINDS.contains(&m.kind.as_str()))
                .collect::<Vec<_>>()
        }
    };
    let mut messages = expected(&app).await;
    for _ in 0..100 {
        if messages.len() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        messages = expected(&app).await;
    }
    let kinds: Vec<&str> = messages.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "booking.confirmed",
            "booking.confirmed",
            "booking.cancelled",
            "hold.expired"
        ]
    );
    let ids: Vec<String> = messages.iter().map(|m| m.id.to_string()).collect();
    until(&app, "every event accepted by the receiver", 10_000, || {
        let accepted = receiver.accepted();
        ids.iter().all(|id| accepted.iter().any(|a| a["id"] == *id))
    })
    .await;

    // Every request is signed with the endpoint's secret, and carries the event's id and type.
    let now_s = app.clock.now().unix_ms() / 1000;
    for request in receiver.received() {
        assert!(
            dispatch::verify(
                &secret,
                request.header("boxoffice-signature"),
                &request.body,
                now_s,
                3_600
            ),
            "a bad signature on {}",
            request.body
        );
        assert!(!dispatch::verify(
            "whsec_someone_else",
            request.header("boxoffice-signature"),
            &request.body,
            now_s,
            3_600
        ));
        let body = request.json();
        assert_eq!(request.header("boxoffice-event-id"), body["id"]);
        assert_eq!(request.header("boxoffice-event-type"), body["type"]);
    }
    // The first booking's confirmation was accepted before its cancellation was even sent.
    let received = receiver.received();
    let first_id = first["id"].as_str().unwrap();
    let about_first: Vec<(String, Option<u16>)> = received
        .iter()
        .filter(|r| r.json()["data"]["booking"]["id"] == first_id)
        .map(|r| (r.json()["type"].as_str().unwrap().to_owned(), r.answered))
        .collect();
    let confirmed_ok = about_first
        .iter()
        .position(|(kind, status)| kind == "booking.confirmed" && *status == Some(200))
        .expect("the confirmation was accepted");
    let first_cancel_sent = about_first
        .iter()
        .position(|(kind, _)| kind == "booking.cancelled")
        .expect("the cancellation was sent");
    assert!(
        confirmed_ok < first_cancel_sent,
        "out of order: {about_first:?}"
    );
    assert!(
        received
            .iter()
            .any(|r| r.json()["data"]["booking"]["id"] == second["id"])
    );

    // The record shows the failed attempts and the final answer (recorded just after the
    // receiver answered, so it may trail the receiver by a moment).
    let deliveries = settled_deliveries(&app, &organizer, &endpoint, 4).await;
    assert_eq!(deliveries.len(), 4);
    assert!(
        deliveries
            .iter()
            .all(|d| d["state"] == "delivered" && d["last_status"] == 200)
    );
    let attempts: i64 = deliveries
        .iter()
        .map(|d| d["attempts"].as_i64().unwrap())
        .sum();
    assert_eq!(attempts, 4 + 3, "three failures were retried");

    // A replay sends the same event again, with the same id.
    let replayed_id = deliveries[0]["id"].as_str().unwrap();
    let message = deliveries[0]["message_id"].as_str().unwrap().to_owned();
    let replay = app
        .call(
            Method::POST,
            &format!("/webhooks/{endpoint}/deliveries/{replayed_id}/replay"),
            Some(&organizer.token),
            None,
        )
        .await;
    assert_eq!(replay.status, StatusCode::ACCEPTED, "{}", replay.body);
    until(&app, "the replayed event", 1_000, || {
        receiver
            .accepted()
            .iter()
            .filter(|a| a["id"] == message)
            .count()
            == 2
    })
    .await;

    // Another organizer, or a customer, cannot see or touch the endpoint.
    let stranger = app.register("other-org@example.com", "organizer").await;
    for (method, path) in [
        (Method::GET, format!("/webhooks/{endpoint}")),
        (Method::GET, format!("/webhooks/{endpoint}/deliveries")),
        (Method::DELETE, format!("/webhooks/{endpoint}")),
        (
            Method::POST,
            format!("/webhooks/{endpoint}/deliveries/{replayed_id}/replay"),
        ),
    ] {
        let reply = app
            .call(method.clone(), &path, Some(&stranger.token), None)
            .await;
        reply.problem(404, "not_found");
        let reply = app.call(method, &path, Some(&alice.token), None).await;
        reply.problem(403, "forbidden");
    }
    let still = app
        .call(
            Method::GET,
            &format!("/webhooks/{endpoint}"),
            Some(&organizer.token),
            None,
        )
        .await;
    assert_eq!(still.status, StatusCode::OK);
}

async fn a_dispatcher_stopped_mid_delivery_loses_nothing(engine: Engine) {
    let mut app = TestApp::spawn(engine).await;
    let receiver = Receiver::hanging_first().await;
    let (organizer, show) = app.show_with("hang@example.com", 4, 10, 4).await;
    let (endpoint, _) = register_endpoint(&app, &organizer, &receiver.url).await;
    let alice = app.register("alice-hang@example.com", "customer").await;
    let booking = app.book_seats(&alice, &show, &["A1"]).await;
    for _ in 0..200 {
        if !receiver.received().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        receiver.received().len(),
        1,
        "the first delivery is in flight"
    );
    // The process goes away while the receiver has not answered; nothing was recorded.
    app.restart().await;
    let record = app
        .call(
            Method::GET,
            &format!("/webhooks/{endpoint}/deliveries"),
            Some(&organizer.token),
            None,
        )
        .await;
    assert_eq!(record.body[0]["state"], "pending", "{}", record.body);
    assert_eq!(record.body[0]["attempts"], 0);
    // Once its lease lapses the new dispatcher delivers it.
    until(&app, "the delivery after the restart", 5_000, || {
        receiver
            .accepted()
            .iter()
            .any(|a| a["data"]["booking"]["id"] == booking["id"])
    })
    .await;
    let record = settled_deliveries(&app, &organizer, &endpoint, 1).await;
    assert_eq!(record[0]["state"], "delivered", "{record:?}");
    assert_eq!(record[0]["attempts"], 1);
}

crate::on_both_engines!(
    every_event_arrives_signed_and_in_order,
    a_dispatcher_stopped_mid_delivery_loses_nothing,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_every_event_is_on_the_organizers_stream() {
    let redis = boxoffice_testkit::redis::RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(Engine::Sqlite, |config| {
        config.redis_url = Some(url.clone())
    })
    .await;
    let (_, show) = app.show_with("stream@example.com", 4, 10, 4).await;
    let alice = app.register("alice-stream@example.com", "customer").await;
    let booking = app.book_seats(&alice, &show, &["A2"]).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!(
        "{}{}",
        dispatch::STREAM_PREFIX,
        show["organizer_id"].as_str().unwrap()
    );
    let mut entries: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for _ in 0..100 {
        entries = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut connection)
            .await
            .unwrap();
        if !entries.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for _ in 0..100 {
        if entries.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        entries = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    let kinds: Vec<String> = entries
        .iter()
        .map(|(_, fields)| fields.iter().find(|(k, _)| k == "type").unwrap().1.clone())
        .collect();
    assert_eq!(
        kinds,
        ["payment.succeeded", "booking.confirmed"],
        "{entries:?}"
    );
    let fields: std::collections::HashMap<_, _> = entries[1].1.iter().cloned().collect();
    assert_eq!(fields["type"], "booking.confirmed");
    assert!(fields["id"].starts_with("msg_"));
    let body: Value = serde_json::from_str(&fields["body"]).unwrap();
    assert_eq!(body["data"]["booking"]["id"], booking["id"]);
    assert_eq!(body["id"], fields["id"].as_str());
}
