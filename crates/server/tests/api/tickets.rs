//! Signed tickets and the door: codes verify offline with the organizer's published key and
//! nothing else does (a byte changed, another organizer's key, a revoked ticket, the wrong
//! time); two gates scanning one ticket at once admit it exactly once; an offline scanner's
//! upload reports its conflicts.

use boxoffice_core::ticket;
use boxoffice_testkit::{Engine, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn scan(app: &TestApp, staff: &Session, code: &str, gate: &str) -> boxoffice_testkit::Reply {
    app.call(
        Method::POST,
        "/checkin",
        Some(&staff.token),
        Some(json!({ "code": code, "gate": gate })),
    )
    .await
}

async fn tickets_verify_offline_and_nothing_else_does(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("door-org@example.com", 6, 10, 6).await;
    let (_, elsewhere) = app.show_with("other-door@example.com", 2, 10, 2).await;
    let alice = app.register("alice-door@example.com", "customer").await;
    let booking = app.book_seats(&alice, &show, &["A1", "A2"]).await;
    let code = booking["tickets"][0]["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("BO1."), "{code}");

    // Offline: the published key verifies the code, and says what it is for.
    let organizer = show["organizer_id"].as_str().unwrap();
    let keys = app
        .call(
            Method::GET,
            &format!("/organizers/{organizer}/ticket-keys"),
            None,
            None,
        )
        .await;
    assert_eq!(keys.status, StatusCode::OK, "{}", keys.body);
    let public = ticket::verifying_key(keys.body[0]["public_key"].as_str().unwrap()).unwrap();
    let claims = ticket::verify(&code, &public).expect("the published key verifies the code");
    assert_eq!(claims.seat, "A1");
    assert_eq!(claims.show_id.as_str(), show["id"].as_str().unwrap());
    assert_eq!(claims.holder.as_str(), alice.user_id);
    let theirs = app
        .call(
            Method::GET,
            &format!(
                "/organizers/{}/ticket-keys",
                elsewhere["organizer_id"].as_str().unwrap()
            ),
            None,
            None,
        )
        .await;
    let their_key = ticket::verifying_key(theirs.body[0]["public_key"].as_str().unwrap()).unwrap();
    assert!(
        ticket::verify(&code, &their_key).is_err(),
        "another organizer's key"
    );

    // The holder gets the ticket with its QR code; nobody else does.
    let ticket_id = booking["tickets"][0]["id"].as_str().unwrap();
    let mine = app
        .call(
            Method::GET,
            &format!("/tickets/{ticket_id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert!(mine.body["qr_svg"].as_str().unwrap().contains("<svg"));
    let bob = app.register("bob-door@example.com", "customer").await;
    app.call(
        Method::GET,
        &format!("/tickets/{ticket_id}"),
        Some(&bob.token),
        None,
    )
    .await
    .problem(404, "not_found");

    // At the door (the doors open six hours before the show).
    app.clock.advance_minutes(20 * 60);
    let staff = app.login("door-org@example.com").await;
    let stranger = app.login("other-door@example.com").await;
    let mut changed = code.clone().into_bytes();
    let middle = changed.len() / 2;
    changed[middle] = if changed[middle] == b'x' { b'y' } else { b'x' };
    let changed = String::from_utf8(changed).unwrap();
    scan(&app, &staff, &changed, "north")
        .await
        .problem(403, "forbidden");
    scan(&app, &stranger, &code, "north")
        .await
        .problem(403, "forbidden");
    let customer_scan = scan(&app, &alice_again(&app).await, &code, "north").await;
    customer_scan.problem(403, "forbidden");
    let admitted = scan(&app, &staff, &code, "north").await;
    assert_eq!(admitted.status, StatusCode::OK, "{}", admitted.body);
    assert_eq!(admitted.body["result"], "admitted");
    assert_eq!(admitted.body["ticket"]["seat"], "A1");
    let again = scan(&app, &staff, &code, "south").await;
    let problem = again.problem(409, "already_checked_in");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("gate north at 20:00"),
        "{problem}"
    );

    // A cancelled booking's other ticket is revoked: listed for scanners, refused at the door.
    let bob_booking = app
        .book_seats(&login(&app, "bob-door@example.com").await, &show, &["B1"])
        .await;
    let bob = login(&app, "bob-door@example.com").await;
    let cancelled = app
        .call(
            Method::POST,
            &format!("/bookings/{}/cancel", bob_booking["id"].as_str().unwrap()),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let revoked = app
        .call(
            Method::GET,
            &format!("/shows/{}/revocations", show["id"].as_str().unwrap()),
            Some(&staff.token),
            None,
        )
        .await;
    assert_eq!(
        revoked.body["revoked"],
        json!([bob_booking["tickets"][0]["id"]])
    );
    let refused = scan(
        &app,
        &staff,
        bob_booking["tickets"][0]["code"].as_str().unwrap(),
        "north",
    )
    .await;
    assert!(
        refused.problem(403, "forbidden")["detail"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );

    // Once the show is long over the ticket no longer opens the door.
    app.clock.advance_minutes(24 * 60);
    let staff = app.login("door-org@example.com").await;
    let late = scan(
        &app,
        &staff,
        booking["tickets"][1]["code"].as_str().unwrap(),
        "north",
    )
    .await;
    assert!(
        late.problem(403, "forbidden")["detail"]
            .as_str()
            .unwrap()
            .contains("not valid")
    );
}

async fn login(app: &TestApp, email: &str) -> Session {
    app.login(email).await
}

async fn alice_again(app: &TestApp) -> Session {
    app.login("alice-door@example.com").await
}

/// Law 1 at the door: 100 scans of one ticket at the same moment at two gates admit it once.
async fn two_gates_admit_a_ticket_exactly_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("gates-org@example.com", 4, 10, 4).await;
    let carol = app.register("carol-gates@example.com", "customer").await;
    let booking = app.book_seats(&carol, &show, &["A1", "A2"]).await;
    app.clock.advance_minutes(23 * 60);
    let staff = app.login("gates-org@example.com").await;
    let code = booking["tickets"][0]["code"].as_str().unwrap().to_owned();
    let scans = (0..100).map(|n| {
        let (app, staff, code) = (&app, &staff, &code);
        async move { scan(app, staff, code, if n % 2 == 0 { "north" } else { "south" }).await }
    });
    let replies = futures_util::future::join_all(scans).await;
    let admitted = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let already = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT && r.body["type"] == "already_checked_in")
        .count();
    assert_eq!(
        (admitted, already),
        (1, 99),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let count = app
        .call(
            Method::GET,
            &format!("/shows/{}/checkins", show["id"].as_str().unwrap()),
            Some(&staff.token),
            None,
        )
        .await;
    assert_eq!(count.body["checked_in"], 1, "{}", count.body);

    // An offline scanner uploads what it saw: the ticket already in is a conflict, the other is
    // admitted, garbage is refused.
    let upload = app
        .call(
            Method::POST,
            "/checkin/batch",
            Some(&staff.token),
            Some(json!({ "scans": [
                { "code": code, "gate": "east-offline", "scanned_at": app.clock.now_plus_minutes(-5) },
                { "code": booking["tickets"][1]["code"], "gate": "east-offline", "scanned_at": app.clock.now_plus_minutes(-4) },
                { "code": "BO1.nope.nope", "gate": "east-offline" },
            ]})),
        )
        .await;
    assert_eq!(upload.status, StatusCode::OK, "{}", upload.body);
    let results: Vec<&str> = upload
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["already_checked_in", "admitted", "refused"]);
    assert!(
        upload.body[0]["detail"]
            .as_str()
            .unwrap()
            .contains("already used at gate")
    );
    let count = app
        .call(
            Method::GET,
            &format!("/shows/{}/checkins", show["id"].as_str().unwrap()),
            Some(&staff.token),
            None,
        )
        .await;
    assert_eq!(count.body["checked_in"], 2);
}

crate::on_both_engines!(
    tickets_verify_offline_and_nothing_else_does,
    two_gates_admit_a_ticket_exactly_once,
);
