//! Live seat maps: WebSocket and SSE viewers see holds, sales and releases as numbered changes;
//! SSE resumes from `Last-Event-ID`; bad messages get answers, not disconnections; a viewer
//! that stops reading is cut off without holding anyone else up.

use boxoffice_core::ids::{SeatId, ShowId};
use boxoffice_server::live::Change;
use boxoffice_testkit::{Engine, TestApp, seat_ids};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub(crate) use boxoffice_testkit::ws::{PATIENCE, Socket, send};

pub(crate) async fn connect(app: &TestApp) -> Socket {
    boxoffice_testkit::ws::connect(&app.base).await
}

use boxoffice_testkit::ws::next_json as next;

/// Messages until one of type `kind`, which is returned with every sequence seen on the way.
pub(crate) async fn until(socket: &mut Socket, kind: &str, seqs: &mut Vec<u64>) -> Value {
    loop {
        let message = next(socket).await;
        if let Some(seq) = message["seq"].as_u64()
            && message["type"] != "snapshot"
        {
            seqs.push(seq);
        }
        if message["type"] == kind {
            return message;
        }
    }
}

async fn viewers_see_holds_sales_and_releases_in_order(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let map = app.seat_map(show_id).await;
    let mut viewer = connect(&app).await;
    send(
        &mut viewer,
        json!({"type": "subscribe", "show_id": show_id}),
    )
    .await;
    let snapshot = next(&mut viewer).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["seq"], 0);
    assert_eq!(snapshot["seat_map"]["seats"], map["seats"]);

    let bob = app.register("bob@example.com", "customer").await;
    let pair = seat_ids(&map, &["A1", "A2"]);
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&bob.token),
            Some(json!({"show_id": show_id, "seat_ids": pair})),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED);
    let mut seqs = Vec::new();
    let held = until(&mut viewer, "seat_held", &mut seqs).await;
    assert_eq!(held["show_id"], show_id);
    assert_eq!(held["seat_ids"], json!(pair));
    let paid = app
        .call(Method::POST, "/bookings", Some(&bob.token), Some(json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}})))
        .await;
    assert_eq!(paid.status, StatusCode::CREATED);
    let sold = until(&mut viewer, "seat_sold", &mut seqs).await;
    assert_eq!(sold["seat_ids"], json!(pair));

    let carol = app.register("carol@example.com", "customer").await;
    let third = seat_ids(&map, &["A3"]);
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&carol.token),
            Some(json!({"show_id": show_id, "seat_ids": third})),
        )
        .await;
    let id = hold.body["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/holds/{id}"),
        Some(&carol.token),
        None,
    )
    .await;
    let released = until(&mut viewer, "seat_released", &mut seqs).await;
    assert_eq!(released["seat_ids"], json!(third));
    // Counts follow, coalesced: eventually the sale shows in the category's availability.
    loop {
        let counts = until(&mut viewer, "availability", &mut seqs).await;
        let standard = counts["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["category"] == "standard")
            .cloned()
            .unwrap();
        if standard["sold"] == 2 && standard["held"] == 0 {
            break;
        }
    }
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every change numbered, none missing");
}

async fn bad_messages_are_answered_and_the_connection_survives(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 2, 10, 4).await;
    let mut viewer = connect(&app).await;
    send(&mut viewer, json!({"type": "dance"})).await;
    assert_eq!(next(&mut viewer).await["type"], "error");
    send(
        &mut viewer,
        json!({"type": "subscribe", "show_id": "nonsense"}),
    )
    .await;
    let error = next(&mut viewer).await;
    assert!(error["detail"].as_str().unwrap().contains("not a show id"));
    let unknown = ShowId::generate().to_string();
    send(
        &mut viewer,
        json!({"type": "subscribe", "show_id": unknown}),
    )
    .await;
    let error = next(&mut viewer).await;
    assert_eq!(
        (error["type"].as_str(), error["show_id"].as_str()),
        (Some("error"), Some(unknown.as_str()))
    );
    assert!(error["detail"].as_str().unwrap().contains("not found"));
    send(
        &mut viewer,
        json!({"type": "subscribe", "show_id": show["id"]}),
    )
    .await;
    assert_eq!(
        next(&mut viewer).await["type"],
        "snapshot",
        "still connected"
    );
    // An unknown show's event stream is a problem, not an empty stream.
    app.call(
        Method::GET,
        &format!("/shows/{}/events", ShowId::generate()),
        None,
        None,
    )
    .await
    .problem(404, "not_found");
}

/// Reads server-sent events from a streaming response.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp, show_id: &str, last_event_id: Option<&str>) -> Events {
        let mut request = app.request(Method::GET, &format!("/shows/{show_id}/events"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("the stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next event as (id, event type, data); keep-alive comments are skipped.
    async fn next(&mut self) -> (String, String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim_start().to_owned())
                };
                if let (Some(id), Some(event), Some(data)) =
                    (field("id:"), field("event:"), field("data:"))
                {
                    return (id, event, serde_json::from_str(&data).expect("JSON data"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("an event in time")
                .expect("the stream is readable")
                .expect("the stream is open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// Events until one of type `kind`.
    async fn until(&mut self, kind: &str) -> (String, Value) {
        loop {
            let (id, event, data) = self.next().await;
            if event == kind {
                return (id, data);
            }
        }
    }
}

async fn sse_viewers_resume_from_the_last_event_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let map = app.seat_map(show_id).await;
    let mut events = Events::open(&app, show_id, None).await;
    let (id, kind, snapshot) = events.next().await;
    assert_eq!((id.as_str(), kind.as_str()), ("0", "snapshot"));
    assert_eq!(snapshot["seat_map"]["seats"], map["seats"]);

    let bob = app.register("bob@example.com", "customer").await;
    let hold_seat =
        |labels: &[&str]| json!({"show_id": show_id, "seat_ids": seat_ids(&map, labels)});
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&bob.token),
            Some(hold_seat(&["B1"])),
        )
        .await;
    let (held_at, held) = events.until("seat_held").await;
    assert_eq!(
        held["seq"].to_string(),
        held_at,
        "the event id is the sequence"
    );
    drop(events);

    // While the viewer is away: a release and another hold.
    let id = hold.body["id"].as_str().unwrap();
    app.call(
        Method::DELETE,
        &format!("/holds/{id}"),
        Some(&bob.token),
        None,
    )
    .await;
    let carol = app.register("carol@example.com", "customer").await;
    app.call(
        Method::POST,
        "/holds",
        Some(&carol.token),
        Some(hold_seat(&["B2"])),
    )
    .await;

    let mut resumed = Events::open(&app, show_id, Some(&held_at)).await;
    let (first_id, first_kind, _) = resumed.next().await;
    assert_ne!(first_kind, "snapshot", "resumed, not restarted");
    assert_eq!(
        first_id.parse::<u64>().unwrap(),
        held_at.parse::<u64>().unwrap() + 1,
        "nothing missed"
    );
    let mut seen = vec![first_kind];
    while !seen.iter().any(|k| k == "seat_held") {
        seen.push(resumed.next().await.1);
    }
    assert!(seen.contains(&"seat_released".to_owned()), "saw {seen:?}");

    // A sequence this server never issued cannot be resumed: a fresh snapshot instead.
    let mut fresh = Events::open(&app, show_id, Some("999999")).await;
    assert_eq!(fresh.next().await.1, "snapshot");
}

/// A client whose socket takes little before the sender must wait: a phone on a bad network.
async fn connect_with_small_window(app: &TestApp) -> Socket {
    let address = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(address).await.unwrap();
    let url = format!("ws://{address}/api/v1/ws");
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    Socket::from(
        tokio_tungstenite::client_async(url, stream)
            .await
            .expect("websocket")
            .0,
    )
}

async fn a_viewer_that_stops_reading_is_cut_off_and_holds_up_no_one(engine: Engine) {
    let app = TestApp::spawn_with(engine, |config| {
        config.live.write_timeout = Duration::from_secs(1);
    })
    .await;
    let (_, show) = app.show_with("org@example.com", 2, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let show = ShowId::parse(show_id).unwrap();
    let mut stalled = connect_with_small_window(&app).await;
    send(
        &mut stalled,
        json!({"type": "subscribe", "show_id": show_id}),
    )
    .await;
    let mut reader = connect(&app).await;
    send(
        &mut reader,
        json!({"type": "subscribe", "show_id": show_id}),
    )
    .await;
    assert_eq!(next(&mut reader).await["type"], "snapshot");

    // A storm of changes, each naming many seats, far more than the stalled viewer's socket,
    // outbox and ring can hold; the reader keeps up and must see every one of them.
    const STORM: u64 = 4_000;
    let seats: Vec<SeatId> = (0..50).map(|_| SeatId::generate()).collect();
    let reading = tokio::spawn(async move {
        let (mut last, mut held) = (0, 0);
        while held < STORM {
            let message = next(&mut reader).await;
            // Coalesced availability events are numbered among the seat changes.
            let seq = message["seq"].as_u64().unwrap();
            assert_eq!(seq, last + 1, "the reader misses nothing");
            last = seq;
            if message["type"] == "seat_held" {
                held += 1;
            }
        }
        held
    });
    // Paced like a busy sale rather than a tight loop, so a reader that keeps up can.
    for _ in 0..STORM / 25 {
        for _ in 0..25 {
            let change = Change::SeatHeld {
                seat_ids: seats.clone(),
            };
            app.state.live.publish(&show, change).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(reading.await.unwrap(), STORM);

    // The stalled viewer was closed as too slow: what it can still read ends in a close frame
    // (code 1013) or a dropped connection, long before the storm's volume.
    let mut received = 0usize;
    let mut close_code = None;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(PATIENCE, stalled.next()).await {
        match message {
            Message::Text(text) => received += text.len(),
            Message::Close(frame) => {
                close_code = frame.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    let storm_bytes = STORM as usize * 50 * 40;
    assert!(
        received < storm_bytes / 2,
        "received {received} of {storm_bytes} bytes"
    );
    assert!(
        matches!(close_code, None | Some(1013)),
        "closed with {close_code:?}"
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("boxoffice_live_slow_consumers_dropped_total{transport=\"websocket\"}")
    );
}

async fn connections_beyond_the_limit_are_refused(engine: Engine) {
    let app = TestApp::spawn_with(engine, |config| config.live.max_connections = 1).await;
    let (_, show) = app.show_with("org@example.com", 2, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let first = connect(&app).await;
    app.call(Method::GET, &format!("/shows/{show_id}/events"), None, None)
        .await
        .problem(503, "too_many_connections");
    drop(first);
    // The place is freed when the first connection's task notices the close.
    let mut attempts = 0;
    loop {
        let url = format!("{}/api/v1/ws", app.base.replace("http://", "ws://"));
        if tokio_tungstenite::connect_async(url).await.is_ok() {
            break;
        }
        attempts += 1;
        assert!(attempts < 200, "the place was never freed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn heartbeats_go_out_and_silent_clients_are_closed(engine: Engine) {
    let app = TestApp::spawn_with(engine, |config| {
        config.live.heartbeat = Duration::from_millis(200);
    })
    .await;
    let mut listening = connect(&app).await;
    let pinged = loop {
        let frame = tokio::time::timeout(PATIENCE, listening.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Ping(_))) => break true,
            Some(Ok(_)) => continue,
            _ => break false,
        }
    };
    assert!(pinged, "the server pings");
    // A client that never reads never answers a ping: after two heartbeats it is closed.
    let mut silent = connect(&app).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // It reads a close frame (1001), or, if answering the queued pings races the server's
    // hang-up, a reset: either way the server ended it; only silence would fail.
    loop {
        match tokio::time::timeout(PATIENCE, silent.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1001));
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("the silent client was never closed"),
        }
    }
}

/// A viewer of the show, past its first snapshot.
async fn watching(app: &TestApp, show_id: &str) -> Socket {
    let mut viewer = connect(app).await;
    send(
        &mut viewer,
        json!({"type": "subscribe", "show_id": show_id}),
    )
    .await;
    assert_eq!(next(&mut viewer).await["type"], "snapshot");
    viewer
}

/// The state of each seat in the snapshot's seat map, by label.
fn states_of(snapshot: &Value, labels: &[&str]) -> Vec<String> {
    let seats = snapshot["seat_map"]["seats"].as_array().expect("seats");
    labels
        .iter()
        .map(|label| {
            let seat = seats
                .iter()
                .find(|s| s["label"] == *label)
                .expect("a seat of the map");
            seat["state"].as_str().expect("a state").to_owned()
        })
        .collect()
}

/// Frames until the snapshot that follows a `resync`; a `seat_sold` or `seat_released` on the
/// way would mean the change was told directly, which this test's server never does.
async fn resynced_snapshot(socket: &mut Socket) -> Value {
    let mut resynced = false;
    loop {
        let message = next(socket).await;
        match message["type"].as_str() {
            Some("resync") => resynced = true,
            Some("snapshot") if resynced => return message,
            Some("seat_sold" | "seat_released") => panic!("told directly: {message}"),
            _ => {}
        }
    }
}

/// Outbox events not yet told to viewers, polled until there are none.
async fn all_told(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let unsent = app
            .store
            .unsent(boxoffice_store::Channel::Live, 100)
            .await
            .expect("outbox");
        if unsent.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still untold: {unsent:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A process that dies between committing a sale (or a cancellation, or an expiry) and telling
/// viewers loses nothing: the outbox event was saved with the change, and the dispatcher sees it
/// was never ticked off and gives the show's viewers a fresh snapshot.
async fn changes_never_told_after_commit_reach_viewers_through_the_outbox(engine: Engine) {
    let app = TestApp::spawn_with(engine, |config| config.skip_live_after_commit = true).await;
    let (_, show) = app.show_with("org@example.com", 4, 5, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let mut viewer = watching(&app, show_id).await;

    let bob = app.register("bob@example.com", "customer").await;
    let booking = app.book_seats(&bob, &show, &["A1", "A2"]).await;
    let snapshot = resynced_snapshot(&mut viewer).await;
    assert_eq!(
        states_of(&snapshot, &["A1", "A2", "A3"]),
        ["sold", "sold", "free"]
    );

    let carol = app.register("carol@example.com", "customer").await;
    let map = app.seat_map(show_id).await;
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&carol.token),
            Some(json!({"show_id": show_id, "seat_ids": seat_ids(&map, &["A3"])})),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED);
    app.clock.advance_minutes(11);
    let snapshot = resynced_snapshot(&mut viewer).await;
    assert_eq!(states_of(&snapshot, &["A1", "A3"]), ["sold", "free"]);

    app.cancel_booking(&bob, &booking, "wallet").await;
    let snapshot = resynced_snapshot(&mut viewer).await;
    assert_eq!(states_of(&snapshot, &["A1", "A2"]), ["free", "free"]);
    all_told(&app).await;
}

/// The instance that committed a change and told viewers ticks the outbox event off, so the
/// dispatcher does not resync anyone for it.
async fn changes_told_after_commit_are_ticked_off_without_a_resync(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 2, 5, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let mut viewer = watching(&app, show_id).await;
    let bob = app.register("bob@example.com", "customer").await;
    let booking = app.book_seats(&bob, &show, &["A1"]).await;
    let mut seqs = Vec::new();
    until(&mut viewer, "seat_sold", &mut seqs).await;
    app.cancel_booking(&bob, &booking, "wallet").await;
    until(&mut viewer, "seat_released", &mut seqs).await;
    all_told(&app).await;
    // A resync, had there been one, was published before its event was marked.
    while let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout(Duration::from_millis(300), viewer.next()).await
    {
        assert!(!text.contains("\"resync\""), "a needless resync: {text}");
    }
}

crate::on_both_engines!(
    viewers_see_holds_sales_and_releases_in_order,
    bad_messages_are_answered_and_the_connection_survives,
    sse_viewers_resume_from_the_last_event_id,
    a_viewer_that_stops_reading_is_cut_off_and_holds_up_no_one,
    connections_beyond_the_limit_are_refused,
    heartbeats_go_out_and_silent_clients_are_closed,
    changes_never_told_after_commit_reach_viewers_through_the_outbox,
    changes_told_after_commit_are_ticked_off_without_a_resync,
);
