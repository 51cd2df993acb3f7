//! The waiting room with a movable clock: a drawn pre-queue then first-come order, admission at
//! the configured rate with nobody let in twice or skipped, a draw anyone can recompute from the
//! published seed, the same across two instances sharing Redis, and holds that need a valid
//! admission while the room is on.

use boxoffice_core::ids::{ShowId, UserId};
use boxoffice_core::waiting::{QueueState, draw};
use boxoffice_server::waiting_room::WaitingRooms;
use boxoffice_testkit::redis::RedisServer;
use boxoffice_testkit::{Engine, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const RATE: u64 = 500;

async fn position(app: &TestApp, show: &str, token: &str) -> boxoffice_testkit::Reply {
    let path = format!("/queues/{show}/position");
    app.call(Method::GET, &path, Some(token), None).await
}

async fn join(app: &TestApp, show: &str, token: &str) -> boxoffice_testkit::Reply {
    let path = format!("/queues/{show}/join");
    app.call(Method::POST, &path, Some(token), None).await
}

/// A show whose sale opens in an hour, with its room on (joining opens now).
async fn show_with_room(app: &TestApp, capacity: i64, rate: u64) -> (String, String, Value) {
    let (organizer, show) = app.show_with("org@example.com", 4, capacity, 4).await;
    let id = show["id"].as_str().unwrap().to_owned();
    let opening = app.clock.now_plus_minutes(60);
    let patched = app
        .call(
            Method::PATCH,
            &format!("/shows/{id}"),
            Some(&organizer.token),
            Some(json!({"on_sale_at": opening})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let room = app
        .call(
            Method::PUT,
            &format!("/shows/{id}/waiting-room"),
            Some(&organizer.token),
            Some(json!({"enabled": true, "admission_rate_per_minute": rate, "session_minutes": 10, "opens_at": app.clock.now_plus_minutes(0)})),
        )
        .await;
    assert_eq!(room.status, StatusCode::OK, "{}", room.body);
    (id, organizer.token, room.body)
}

async fn ranks_of(
    state: &boxoffice_server::state::AppState,
    show: &ShowId,
    people: &[UserId],
) -> Vec<(u64, QueueState)> {
    let mut ranks = Vec::new();
    for person in people {
        let standing = WaitingRooms::stand(state, show, person, false)
            .await
            .unwrap();
        // Rank from the head: admitted places have none shown, so derive from the gate.
        let rank = match standing.ahead {
            Some(ahead) => standing.admitted_through + ahead,
            None => u64::MAX,
        };
        ranks.push((rank, standing.state));
    }
    ranks
}

/// Checks the line order: the pre-queue drawn by the published seed, then first-come.
async fn check_admission_run(
    apps: &[&boxoffice_server::state::AppState],
    app: &TestApp,
    show: &str,
    early: &[UserId],
    late: &[UserId],
) {
    let show_id = ShowId::parse(show).unwrap();
    let total = (early.len() + late.len()) as u64;
    // Before anyone is in, every place is known: drawn first, then the late joiners in order.
    // Signed in afresh: the hour before opening outlived the first sign-in.
    let token = app.login("org@example.com").await.token;
    let stats = app
        .call(
            Method::GET,
            &format!("/shows/{show}/waiting-room/stats"),
            Some(&token),
            None,
        )
        .await;
    let seed: u64 = stats.body["draw_seed"]
        .as_str()
        .expect("published after opening")
        .parse()
        .unwrap();
    let mut drawn: Vec<(u64, &UserId)> =
        early.iter().map(|u| (draw(seed, u.as_str()), u)).collect();
    drawn.sort();
    let expected: Vec<&UserId> = drawn.iter().map(|(_, u)| *u).chain(late.iter()).collect();
    let everyone: Vec<UserId> = expected.iter().map(|u| (*u).clone()).collect();
    let ranks = ranks_of(apps[0], &show_id, &everyone).await;
    let got: Vec<u64> = ranks.iter().map(|(rank, _)| *rank).collect();
    let want: Vec<u64> = (0..total).collect();
    assert_eq!(
        got, want,
        "the draw is recomputed from the seed, then first come first served"
    );

    // Minute by minute, exactly the configured number more, from the head of the line.
    let mut through = 0;
    let mut minutes = 0;
    while through < total {
        app.clock.advance_minutes(1);
        minutes += 1;
        // Every instance moves the gate at the same moment: only one minute's worth is let in.
        for state in apps {
            WaitingRooms::tick(state).await;
        }
        let now = WaitingRooms::stand(apps[minutes % apps.len()], &show_id, &everyone[0], false)
            .await
            .unwrap();
        let admitted = now.admitted_through - through;
        assert_eq!(admitted, RATE.min(total - through), "minute {minutes}");
        through = now.admitted_through;
        if minutes == 3 {
            // Nobody let in twice or skipped: exactly the head of the line is in.
            let states = ranks_of(apps[1 % apps.len()], &show_id, &everyone).await;
            for (place, (_, state)) in states.iter().enumerate() {
                let expected = if (place as u64) < through {
                    QueueState::Admitted
                } else {
                    QueueState::Waiting
                };
                assert_eq!(
                    *state, expected,
                    "place {place} after {through} were let in"
                );
            }
        }
    }
    assert_eq!(minutes as u64, total.div_ceil(RATE));
}

async fn ten_thousand_joiners_are_let_in_in_order_at_the_rate(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (show, _, _) = show_with_room(&app, 50, RATE).await;
    let show_id = ShowId::parse(&show).unwrap();
    let early: Vec<UserId> = (0..2_000).map(|_| UserId::generate()).collect();
    let late: Vec<UserId> = (0..8_000).map(|_| UserId::generate()).collect();
    for person in &early {
        let standing = WaitingRooms::stand(&app.state, &show_id, person, true)
            .await
            .unwrap();
        assert_eq!(standing.state, QueueState::PreQueue);
        assert_eq!(standing.position, None, "no position before the draw");
    }
    app.clock.advance_minutes(60);
    for person in &late {
        WaitingRooms::stand(&app.state, &show_id, person, true)
            .await
            .unwrap();
    }
    // Joining again, from anywhere, keeps the place.
    let again = WaitingRooms::stand(&app.state, &show_id, &late[10], true)
        .await
        .unwrap();
    assert_eq!(again.position, Some(2_000 + 10 + 1));
    assert_eq!(again.line_length, 10_000);
    check_admission_run(&[&app.state], &app, &show, &early, &late).await;
}

async fn two_instances_sharing_redis_keep_one_line(engine: Engine) {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(engine, |config| config.redis_url = Some(url.clone())).await;
    let (show, _, _) = show_with_room(&app, 50, RATE).await;
    let show_id = ShowId::parse(&show).unwrap();
    // A second instance: same database and Redis, its own memory.
    let mut config = TestApp::test_config();
    config.redis_url = Some(url);
    let clock: std::sync::Arc<dyn boxoffice_core::Clock> = std::sync::Arc::new(app.clock.clone());
    let other = boxoffice_server::state(app.store.clone(), clock, config)
        .await
        .unwrap();
    let early: Vec<UserId> = (0..300).map(|_| UserId::generate()).collect();
    let late: Vec<UserId> = (0..1_200).map(|_| UserId::generate()).collect();
    let instances = [&app.state, &other];
    for (n, person) in early.iter().enumerate() {
        WaitingRooms::stand(instances[n % 2], &show_id, person, true)
            .await
            .unwrap();
    }
    app.clock.advance_minutes(60);
    // Late joiners arrive at both instances at once; the line keeps arrival order, one place each.
    let (first_half, second_half) = late.split_at(late.len() / 2);
    let (a, b) = tokio::join!(
        async {
            for person in first_half {
                WaitingRooms::stand(&app.state, &show_id, person, true)
                    .await
                    .unwrap();
            }
        },
        async {
            for person in second_half {
                WaitingRooms::stand(&other, &show_id, person, true)
                    .await
                    .unwrap();
            }
        }
    );
    let _ = (a, b);
    let mut arrival: Vec<(u64, UserId)> = Vec::new();
    for person in &late {
        let standing = WaitingRooms::stand(&other, &show_id, person, false)
            .await
            .unwrap();
        arrival.push((standing.ahead.unwrap(), person.clone()));
    }
    arrival.sort();
    let ranks: Vec<u64> = arrival.iter().map(|(ahead, _)| *ahead).collect();
    let want: Vec<u64> = (300..1_500).collect();
    assert_eq!(
        ranks, want,
        "every late joiner has a place of its own after the draw"
    );
    let late_in_order: Vec<UserId> = arrival.into_iter().map(|(_, u)| u).collect();
    check_admission_run(&instances, &app, &show, &early, &late_in_order).await;

    // An instance whose clock lags still believes the sale has not opened; once the gate has
    // moved, its joiners go to the back of the line, never into the draw ahead of people in.
    let mut lagging_config = TestApp::test_config();
    lagging_config.redis_url = Some(redis.url());
    let behind = boxoffice_core::ManualClock::starting_at(app.clock.now_plus_minutes(-5));
    let lagging = boxoffice_server::state(
        app.store.clone(),
        std::sync::Arc::new(behind),
        lagging_config,
    )
    .await
    .unwrap();
    let straggler = UserId::generate();
    WaitingRooms::stand(&lagging, &show_id, &straggler, true)
        .await
        .unwrap();
    let standing = WaitingRooms::stand(&other, &show_id, &straggler, false)
        .await
        .unwrap();
    assert_eq!(standing.state, QueueState::Waiting);
    assert_eq!(
        standing.admitted_through + standing.ahead.unwrap(),
        1_500,
        "last in line"
    );
}

async fn holds_need_a_valid_admission_while_the_room_is_on(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (show, _, _) = show_with_room(&app, 1, 1).await;
    let map = app.seat_map(&show).await;
    let area = map["areas"][0]["id"].clone();
    let alice = app.register("alice@example.com", "customer").await;
    let bob = app.register("bob@example.com", "customer").await;
    let one = json!({"show_id": show, "areas": [{"area_id": area, "quantity": 1}]});
    let early = join(&app, &show, &alice.token).await;
    assert_eq!(early.status, StatusCode::OK, "{}", early.body);
    assert_eq!(early.body["state"], "pre_queue");
    app.clock.advance_minutes(60);
    let alice = app.login("alice@example.com").await;
    let bob = {
        let _ = bob;
        app.login("bob@example.com").await
    };
    let joined = join(&app, &show, &bob.token).await;
    assert_eq!(
        (
            joined.body["state"].as_str(),
            joined.body["position"].as_u64()
        ),
        (Some("waiting"), Some(2))
    );
    assert_eq!(
        joined.body["estimated_wait_seconds"], 120,
        "two places at one a minute"
    );
    // Nobody is in yet: no token, no hold.
    app.call(
        Method::POST,
        "/holds",
        Some(&alice.token),
        Some(one.clone()),
    )
    .await
    .problem(403, "admission_required");
    // People waiting follow the line on the show's live channel.
    let mut viewer = crate::live::connect(&app).await;
    crate::live::send(&mut viewer, json!({"type": "subscribe", "show_id": show})).await;
    crate::live::until(&mut viewer, "snapshot", &mut Vec::new()).await;
    app.clock.advance_minutes(1);
    let admitted = position(&app, &show, &alice.token).await;
    assert_eq!(admitted.body["state"], "admitted", "{}", admitted.body);
    let token = admitted.body["admission_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let moved = crate::live::until(&mut viewer, "queue_position", &mut Vec::new()).await;
    assert_eq!(
        (
            moved["admitted_through"].as_u64(),
            moved["line_length"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let waiting = position(&app, &show, &bob.token).await;
    assert_eq!(waiting.body["position"], 1);
    assert!(waiting.body.get("admission_token").is_none());
    let with = |token: &str, who: &str| {
        app.request(Method::POST, "/holds")
            .bearer_auth(who.to_owned())
            .header("x-admission-token", token.to_owned())
            .json(&one)
    };
    // Alice's admission is hers alone.
    let stolen =
        boxoffice_testkit::Reply::from(with(&token, &bob.token).send().await.unwrap()).await;
    stolen.problem(403, "admission_required");
    let forged = boxoffice_testkit::Reply::from(
        with(&format!("{token}x"), &alice.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    forged.problem(403, "admission_required");
    let held =
        boxoffice_testkit::Reply::from(with(&token, &alice.token).send().await.unwrap()).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    app.clock.advance_minutes(1);
    let bob = app.login("bob@example.com").await;
    let next = position(&app, &show, &bob.token).await;
    assert_eq!(next.body["state"], "admitted", "{}", next.body);
    // Admissions run out with their session.
    app.clock.advance_minutes(11);
    let alice = app.login("alice@example.com").await;
    let expired = position(&app, &show, &alice.token).await;
    assert_eq!(expired.body["state"], "expired");
    let late =
        boxoffice_testkit::Reply::from(with(&token, &alice.token).send().await.unwrap()).await;
    late.problem(403, "admission_required");
    // The organizer's view counts what happened.
    let stats = app
        .call(
            Method::GET,
            &format!("/shows/{show}/waiting-room/stats"),
            Some(&app.login("org@example.com").await.token),
            None,
        )
        .await;
    assert_eq!(
        (
            stats.body["line_length"].as_u64(),
            stats.body["admitted"].as_u64()
        ),
        (Some(2), Some(2))
    );
    // With the room off, holds need no admission.
    let off = app
        .call(
            Method::PUT,
            &format!("/shows/{show}/waiting-room"),
            Some(&app.login("org@example.com").await.token),
            Some(json!({"enabled": false, "admission_rate_per_minute": 1})),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let free = app
        .call(Method::POST, "/holds", Some(&alice.token), Some(one))
        .await;
    assert_eq!(free.status, StatusCode::CREATED, "{}", free.body);
}

async fn the_line_hears_when_nothing_is_left_and_moves_when_it_returns(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    // Two seats and one standing place, all held before the room is switched on.
    let (organizer, show) = app.show_with("org@example.com", 1, 1, 4).await;
    let show = show["id"].as_str().unwrap().to_owned();
    let map = app.seat_map(&show).await;
    let seats: Vec<Value> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    let alice = app.register("alice@example.com", "customer").await;
    let carol = app.register("carol@example.com", "customer").await;
    let held = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(json!({"show_id": show, "seat_ids": seats})),
        )
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let standing =
        json!({"show_id": show, "areas": [{"area_id": map["areas"][0]["id"], "quantity": 1}]});
    let place = app
        .call(Method::POST, "/holds", Some(&carol.token), Some(standing))
        .await;
    assert_eq!(place.status, StatusCode::CREATED, "{}", place.body);
    let room = app
        .call(
            Method::PUT,
            &format!("/shows/{show}/waiting-room"),
            Some(&organizer.token),
            Some(json!({"enabled": true, "admission_rate_per_minute": 10})),
        )
        .await;
    assert_eq!(room.status, StatusCode::OK, "{}", room.body);
    let bob = app.register("bob@example.com", "customer").await;
    let joined = join(&app, &show, &bob.token).await;
    assert_eq!(joined.body["state"], "sold_out", "{}", joined.body);
    assert_eq!(joined.body["held_may_return"], true);
    app.clock.advance_minutes(1);
    let still = position(&app, &show, &bob.token).await;
    assert_eq!(
        (
            still.body["state"].as_str(),
            still.body["admitted_through"].as_u64()
        ),
        (Some("sold_out"), Some(0)),
        "nobody is let into an empty shop"
    );
    let id = place.body["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/holds/{id}"),
        Some(&carol.token),
        None,
    )
    .await;
    app.clock.advance_minutes(1);
    let bob = app.login("bob@example.com").await;
    let back = position(&app, &show, &bob.token).await;
    assert_eq!(
        back.body["state"], "admitted",
        "the place came back: {}",
        back.body
    );
}

async fn bad_room_settings_are_refused_and_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (show, organizer) = {
        let (organizer, show) = app.show_with("org@example.com", 4, 10, 4).await;
        (show["id"].as_str().unwrap().to_owned(), organizer.token)
    };
    let path = format!("/shows/{show}/waiting-room");
    let put = |body: Value| app.call(Method::PUT, &path, Some(&organizer), Some(body));

    put(json!({"enabled": true}))
        .await
        .problem(422, "validation");
    put(json!({"enabled": true, "admission_rate_per_minute": 0}))
        .await
        .problem(422, "validation");
    put(json!({"enabled": true, "admission_rate_per_minute": 5, "opens_at": app.clock.now_plus_minutes(5 * 24 * 60)}))
        .await
        .problem(422, "validation");
    put(json!({"enabled": true, "admission_rate_per_minute": 5, "surprise": 1}))
        .await
        .problem(422, "validation");
    app.call(
        Method::GET,
        &format!("/shows/{show}/waiting-room"),
        None,
        None,
    )
    .await
    .problem(404, "not_found");
    let alice = app.register("alice@example.com", "customer").await;
    join(&app, &show, &alice.token)
        .await
        .problem(404, "not_found");
}

crate::on_both_engines!(
    ten_thousand_joiners_are_let_in_in_order_at_the_rate,
    two_instances_sharing_redis_keep_one_line,
    holds_need_a_valid_admission_while_the_room_is_on,
    the_line_hears_when_nothing_is_left_and_moves_when_it_returns,
    bad_room_settings_are_refused_and_change_nothing,
);
