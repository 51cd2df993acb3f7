//! Many instances, one service: the production topology (`boxoffice serve` processes sharing
//! one PostgreSQL and one Redis) run as local processes. Clients spread over three instances
//! race for one show while one instance is killed; afterwards the database must show no seat
//! sold twice, no area over capacity, and every acknowledged booking. Rate limits hold across
//! instances, and per process while Redis is away; graceful shutdown closes live sockets.

use boxoffice_testkit::instance::Instance;
use boxoffice_testkit::redis::RedisServer;
use boxoffice_testkit::{Api, Engine, Reply, Session, TestDatabase, seat_ids};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const CARD_OK: &str = "4242424242424242";
/// A bound on waiting for what should arrive at once, so a bug fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_boxoffice"))
}

/// Limits far above what these clients send, except where a test sets its own.
fn settings(redis: Option<&RedisServer>) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        ("BOXOFFICE_RATE_IP", "100000/s:100000".into()),
        ("BOXOFFICE_RATE_AUTH", "100000/s:100000".into()),
        ("BOXOFFICE_RATE_USER", "100000/s:100000".into()),
        ("BOXOFFICE_RATE_ORDERS", "100000/s:100000".into()),
        ("BOXOFFICE_SWEEP_MS", "200".into()),
    ];
    if let Some(redis) = redis {
        settings.push(("REDIS_URL", redis.url()));
    }
    settings
}

/// A call that reports a transport failure instead of panicking: an instance may be dead.
async fn try_call(
    api: &Api,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Option<Reply> {
    let mut request = api.request(method, path).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Some(Reply::from(request.send().await.ok()?).await)
}

use boxoffice_testkit::ws::{Socket, next_json};

/// What one client saw: bookings acknowledged (id, tickets), bookings it cancelled, and
/// cancellations whose answer never came (the instance died: they may or may not have happened).
#[derive(Default)]
struct Seen {
    acknowledged: Vec<(String, usize)>,
    cancelled: Vec<String>,
    maybe_cancelled: Vec<String>,
}

/// One customer: holds a few seats or standing places, mostly pays, sometimes lets go, now and
/// then cancels. When its instance dies it moves to the next, as a load balancer would.
/// What every customer of the race shares.
struct Sale {
    apis: Vec<Api>,
    show_id: String,
    map: Value,
    area: Value,
    rounds: usize,
    operations: AtomicUsize,
}

async fn customer(sale: Arc<Sale>, first: usize, me: Session) -> Seen {
    let Sale {
        apis,
        show_id,
        map,
        area,
        rounds,
        operations,
    } = &*sale;
    let mut seen = Seen::default();
    let mut at = first;
    for _ in 0..*rounds {
        let api = &apis[at % apis.len()];
        let body = {
            let mut rng = rand::rng();
            if rng.random_bool(0.5) {
                let n = rng.random_range(1..=2);
                let labels: BTreeSet<String> = (0..n)
                    .map(|_| format!("A{}", rng.random_range(1..=40)))
                    .collect();
                let labels: Vec<String> = labels.into_iter().collect();
                let ids = seat_ids(map, &labels);
                json!({"show_id": show_id, "seat_ids": ids})
            } else {
                let quantity = rng.random_range(1..=2);
                json!({"show_id": show_id, "areas": [{"area_id": area, "quantity": quantity}]})
            }
        };
        operations.fetch_add(1, Ordering::Relaxed);
        // A transport failure is an unknown outcome (the instance died): the client moves on to
        // the next instance; a hold it may have made is left to expire.
        let Some(hold) = try_call(api, Method::POST, "/holds", &me.token, Some(body)).await else {
            at += 1;
            continue;
        };
        if hold.status != 201 {
            continue;
        }
        let (pay, cancel_after) = {
            let mut rng = rand::rng();
            (rng.random_bool(0.8), rng.random_bool(0.15))
        };
        let hold_id = hold.body["id"].as_str().unwrap().to_owned();
        if !pay {
            if try_call(
                api,
                Method::DELETE,
                &format!("/holds/{hold_id}"),
                &me.token,
                None,
            )
            .await
            .is_none()
            {
                at += 1;
            }
            continue;
        }
        let payment =
            json!({"hold_id": hold_id, "payment": {"method": "card", "card_number": CARD_OK}});
        let Some(booking) =
            try_call(api, Method::POST, "/bookings", &me.token, Some(payment)).await
        else {
            at += 1;
            continue;
        };
        if booking.status != 201 {
            continue;
        }
        let id = booking.body["id"].as_str().unwrap().to_owned();
        let tickets = booking.body["tickets"].as_array().unwrap().len();
        seen.acknowledged.push((id.clone(), tickets));
        if cancel_after {
            let path = format!("/bookings/{id}/cancel");
            match try_call(api, Method::POST, &path, &me.token, None).await {
                Some(reply) if reply.status == 200 => seen.cancelled.push(id),
                Some(_) => {}
                None => {
                    seen.maybe_cancelled.push(id);
                    at += 1;
                }
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_sell_one_show_without_overselling_and_survive_a_kill() {
    let db = TestDatabase::fresh(Engine::Postgres).await;
    let redis = RedisServer::start().await;
    let mut env = settings(Some(&redis));
    env.push(("BOXOFFICE_READ_CACHE_MS", "60000".into()));
    env.push(("BOXOFFICE_SESSION_CACHE_MS", "60000".into()));
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(Instance::start(binary(), &db.url, &env).await);
    }
    // Rows A and B of 40 seats and 30 standing places; at most 4 tickets a customer.
    let (organizer, show) = instances[0].show_with("org@example.com", 40, 30, 4).await;
    let show_id = show["id"].as_str().unwrap().to_owned();
    // Read (and so cached, for a minute here) on every instance before the sale.
    for instance in &instances {
        instance.seat_map(&show_id).await;
        instance.call(Method::GET, "/events", None, None).await;
    }
    // A new event on instance 1 appears in instance 3's cached listing, well within the minute.
    let added = instances[0]
        .call(
            Method::POST,
            "/events",
            Some(&organizer.token),
            Some(json!({"title": "Encore", "kind": "concert"})),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let mut listed = false;
    for _ in 0..200 {
        let events = instances[2].call(Method::GET, "/events", None, None).await;
        if events.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == added.body["id"])
        {
            listed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        listed,
        "instance 3's event listing was invalidated by instance 1's change"
    );
    let map = instances[0].seat_map(&show_id).await;
    let area = map["areas"][0]["id"].clone();

    // A viewer on instance 1 follows the show throughout.
    let mut viewer = Socket::from(
        tokio_tungstenite::connect_async(instances[0].ws_url())
            .await
            .expect("websocket")
            .0,
    );
    let subscribe = json!({"type": "subscribe", "show_id": show_id}).to_string();
    viewer.send(Message::Text(subscribe.into())).await.unwrap();
    assert_eq!(next_json(&mut viewer).await["type"], "snapshot");
    let log = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let viewing = {
        let log = log.clone();
        tokio::spawn(async move {
            loop {
                let message = next_json(&mut viewer).await;
                log.lock().unwrap().push(message);
            }
        })
    };

    let apis: Vec<Api> = instances.iter().map(|i| i.api.clone()).collect();
    let mut people = Vec::new();
    for n in 0..24 {
        people.push(
            apis[n % 3]
                .register(&format!("c{n}@example.com"), "customer")
                .await,
        );
    }
    let sale = Arc::new(Sale {
        apis: apis.clone(),
        show_id: show_id.clone(),
        map: map.clone(),
        area: area.clone(),
        rounds: 16,
        operations: AtomicUsize::new(0),
    });
    let clients: Vec<_> = people
        .into_iter()
        .enumerate()
        .map(|(n, me)| tokio::spawn(customer(sale.clone(), n, me)))
        .collect();
    // In the middle of the sale, instance 2 dies without a word.
    while sale.operations.load(Ordering::Relaxed) < 120 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    instances[1].kill();
    let mut acknowledged = Vec::new();
    let mut cancelled = Vec::new();
    let mut maybe_cancelled = Vec::new();
    for client in clients {
        let seen = client.await.unwrap();
        acknowledged.extend(seen.acknowledged);
        cancelled.extend(seen.cancelled);
        maybe_cancelled.extend(seen.maybe_cancelled);
    }
    assert!(!acknowledged.is_empty(), "the sale sold something");
    eprintln!(
        "{} operations, {} bookings acknowledged, {} cancelled",
        sale.operations.load(Ordering::Relaxed),
        acknowledged.len(),
        cancelled.len()
    );

    // Signing out on instance 1 ends the session on instance 3 too, although instance 3 had its
    // check cached (for a minute here): the notice travels through Redis.
    let leaving = apis[2].register("leaving@example.com", "customer").await;
    assert_eq!(
        apis[2]
            .call(Method::GET, "/me", Some(&leaving.token), None)
            .await
            .status,
        200
    );
    let out = apis[0]
        .call(Method::POST, "/auth/logout", Some(&leaving.token), None)
        .await;
    assert!(out.status.is_success(), "{}", out.body);
    let mut ended = false;
    for _ in 0..100 {
        if apis[2]
            .call(Method::GET, "/me", Some(&leaving.token), None)
            .await
            .status
            == 401
        {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ended,
        "instance 3 still honoured a session ended on instance 1"
    );

    // A sale on instance 3 reaches the viewer on instance 1.
    let last = apis[2].register("last@example.com", "customer").await;
    let seat = seat_ids(&map, &["B7".to_owned()]);
    let hold = apis[2]
        .call(
            Method::POST,
            "/holds",
            Some(&last.token),
            Some(json!({"show_id": show_id, "seat_ids": seat})),
        )
        .await;
    assert_eq!(hold.status, 201, "{}", hold.body);
    let pay =
        json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": CARD_OK}});
    let booking = apis[2]
        .call(Method::POST, "/bookings", Some(&last.token), Some(pay))
        .await;
    assert_eq!(booking.status, 201, "{}", booking.body);
    let saw_the_sale = || {
        log.lock()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "seat_sold" && m["seat_ids"] == json!(seat))
    };
    for _ in 0..300 {
        if saw_the_sale() || viewing.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        saw_the_sale(),
        "the viewer on instance 1 saw the sale made on instance 3"
    );
    viewing.abort();
    // Instance 1's cached seat map (kept a minute here) was invalidated by the change notice.
    let seen_on_1 = instances[0].seat_map(&show_id).await;
    let b7 = seen_on_1["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == seat[0])
        .unwrap();
    assert_eq!(b7["state"], "sold", "no stale seat map on another instance");
    let messages = log.lock().unwrap().clone();
    let seqs: Vec<u64> = messages.iter().filter_map(|m| m["seq"].as_u64()).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "one numbering across instances, nothing lost"
    );
    eprintln!(
        "the viewer on instance 1 saw {} numbered changes",
        seqs.len()
    );

    // The database is the judge.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let doubled: Vec<(String, i64)> = sqlx::query_as(
        "SELECT t.seat_id, COUNT(*) FROM tickets t JOIN bookings b ON b.id = t.booking_id \
         WHERE b.show_id = $1 AND b.state = 'confirmed' AND t.seat_id IS NOT NULL \
         GROUP BY t.seat_id HAVING COUNT(*) > 1",
    )
    .bind(&show_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(doubled.is_empty(), "seats sold twice: {doubled:?}");
    let (capacity, sold, held): (i64, i64, i64) =
        sqlx::query_as("SELECT capacity, sold, held FROM show_areas WHERE show_id = $1")
            .bind(&show_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let standing_tickets: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tickets t JOIN bookings b ON b.id = t.booking_id \
         WHERE b.show_id = $1 AND b.state = 'confirmed' AND t.area_id IS NOT NULL",
    )
    .bind(&show_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        sold + held <= capacity,
        "{sold} sold + {held} held > {capacity}"
    );
    assert_eq!(
        sold, standing_tickets,
        "the counter agrees with the tickets"
    );
    let sold_seats: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM show_seats WHERE show_id = $1 AND state = 'sold'")
            .bind(&show_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let seat_tickets: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tickets t JOIN bookings b ON b.id = t.booking_id \
         WHERE b.show_id = $1 AND b.state = 'confirmed' AND t.seat_id IS NOT NULL",
    )
    .bind(&show_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        sold_seats, seat_tickets,
        "every sold seat has exactly its ticket"
    );
    let stored: HashMap<String, (String, i64)> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT b.id, b.state, (SELECT COUNT(*) FROM tickets t WHERE t.booking_id = b.id) \
         FROM bookings b WHERE b.show_id = $1",
    )
    .bind(&show_id)
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, state, tickets)| (id, (state, tickets)))
    .collect();
    for (id, tickets) in &acknowledged {
        let (state, stored_tickets) = stored
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged booking {id} is missing"));
        assert_eq!(*stored_tickets, *tickets as i64, "booking {id}");
        if maybe_cancelled.contains(id) {
            // The cancellation's answer was lost with its instance: either outcome is honest.
            assert!(state == "confirmed" || state == "cancelled", "booking {id}");
            continue;
        }
        let expected = if cancelled.contains(id) {
            "cancelled"
        } else {
            "confirmed"
        };
        assert_eq!(state, expected, "booking {id}");
    }
}

/// Calls as a client behind the proxy at `ip` (the instances trust X-Forwarded-For here).
async fn from(
    api: &Api,
    ip: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = api.request(method, path).header("x-forwarded-for", ip);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    Reply::from(request.send().await.expect("the instance answers")).await
}

/// Sends `count` reads from `ip`, alternating over `apis`; how many were allowed. Every refusal
/// must be a proper 429.
async fn burst(apis: &[&Api], ip: &str, count: usize) -> usize {
    let mut allowed = 0;
    for n in 0..count {
        let reply = from(apis[n % apis.len()], ip, Method::GET, "/events", None, None).await;
        if reply.status == 200 {
            allowed += 1;
            assert!(reply.headers.contains_key("ratelimit-remaining"));
        } else {
            reply.problem(429, "rate_limited");
            let retry: u64 = reply.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
        }
    }
    allowed
}

async fn readiness(api: &Api) -> Value {
    let reply = api
        .http
        .get(format!("{}/readyz", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "ready while the database answers");
    reply.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_shared_across_instances_and_outlive_redis() {
    let db = TestDatabase::fresh(Engine::Postgres).await;
    let mut redis = RedisServer::start().await;
    let mut env = settings(Some(&redis));
    env.retain(|(name, _)| *name != "BOXOFFICE_RATE_IP");
    env.push(("BOXOFFICE_RATE_IP", "1/m:20".into()));
    env.push(("BOXOFFICE_TRUST_FORWARDED_FOR", "true".into()));
    let a = Instance::start(binary(), &db.url, &env).await;
    let b = Instance::start(binary(), &db.url, &env).await;
    assert_eq!(readiness(&a).await["status"], "ready");

    // One budget of 20 for 10.0.0.1, whichever instance it reaches.
    let shared = burst(&[&a, &b], "10.0.0.1", 40).await;
    assert!(
        (20..=21).contains(&shared),
        "allowed {shared} of a shared 20"
    );

    // A show and a customer, to show that sales go on without Redis.
    let (_, show) = a.show_with("org@example.com", 4, 10, 4).await;
    let customer = b.register("buyer@example.com", "customer").await;
    let area = a.seat_map(show["id"].as_str().unwrap()).await["areas"][0]["id"].clone();

    redis.stop();
    let mut degraded = readiness(&a).await;
    for _ in 0..100 {
        if degraded["redis"] == "down" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        degraded = readiness(&a).await;
    }
    assert_eq!(degraded["status"], "degraded");
    assert_eq!(
        (degraded["database"].as_str(), degraded["redis"].as_str()),
        (Some("up"), Some("down"))
    );
    // Each process now counts alone: still limited, never unlimited.
    assert_eq!(
        burst(&[&a], "10.0.0.2", 30).await,
        20,
        "instance a's own budget"
    );
    assert_eq!(
        burst(&[&b], "10.0.0.2", 30).await,
        20,
        "instance b's own budget"
    );
    let hold = from(
        &b,
        "10.0.0.9",
        Method::POST,
        "/holds",
        Some(&customer.token),
        Some(json!({"show_id": show["id"], "areas": [{"area_id": area, "quantity": 2}]})),
    )
    .await;
    assert_eq!(hold.status, 201, "{}", hold.body);
    let pay =
        json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": CARD_OK}});
    let booking = from(
        &a,
        "10.0.0.9",
        Method::POST,
        "/bookings",
        Some(&customer.token),
        Some(pay),
    )
    .await;
    assert_eq!(
        booking.status, 201,
        "sales continue without Redis: {}",
        booking.body
    );

    // Redis returns; the instances find it by themselves and share budgets again.
    redis.restart().await;
    let mut recovered = false;
    for _ in 0..200 {
        if readiness(&a).await["status"] == "ready" && readiness(&b).await["status"] == "ready" {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "readiness recovers when Redis is back");
    let shared = burst(&[&a, &b], "10.0.0.3", 40).await;
    assert!(
        (20..=21).contains(&shared),
        "allowed {shared} of a shared 20 again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_live_sockets_with_a_close_frame_and_exits_cleanly() {
    let db = TestDatabase::fresh(Engine::Sqlite).await;
    let mut instance = Instance::start(binary(), &db.url, &settings(None)).await;
    let (_, show) = instance.show_with("org@example.com", 4, 10, 4).await;
    let mut viewer = Socket::from(
        tokio_tungstenite::connect_async(instance.ws_url())
            .await
            .unwrap()
            .0,
    );
    let subscribe = json!({"type": "subscribe", "show_id": show["id"]}).to_string();
    viewer.send(Message::Text(subscribe.into())).await.unwrap();
    assert_eq!(next_json(&mut viewer).await["type"], "snapshot");
    let status = instance.terminate().await;
    assert!(status.success(), "exited with {status}");
    let mut close = None;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(PATIENCE, viewer.next()).await {
        if let Message::Close(frame) = message {
            close = frame;
            break;
        }
    }
    let close = close.expect("a close frame before the connection ended");
    assert_eq!(u16::from(close.code), 1001, "going away");
}
