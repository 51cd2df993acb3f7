//! Law 6: bad input gets a clear problem+json error and changes nothing.

use boxoffice_testkit::{Engine, Reply, TestApp};
use reqwest::Method;
use serde_json::json;

async fn every_kind_of_bad_request_is_a_problem_and_writes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (organizer, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let alice = app.register("alice@example.com", "customer").await;
    let before = app.seat_map(show_id).await;
    let post = |path: &str| app.request(Method::POST, path).bearer_auth(&alice.token);

    let syntax = post("/holds")
        .header("content-type", "application/json")
        .body("{\"show_id\": ")
        .send()
        .await
        .unwrap();
    Reply::from(syntax).await.problem(400, "malformed_request");
    let not_json = post("/holds")
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    Reply::from(not_json)
        .await
        .problem(415, "unsupported_media_type");
    let unknown_field = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(json!({"show_id": show_id, "seat_ids": [], "color": "red"})),
        )
        .await;
    assert!(
        unknown_field.problem(422, "validation")["detail"]
            .as_str()
            .unwrap()
            .contains("color")
    );
    let both = json!({"show_id": show_id, "seat_ids": [], "best_available": {"category": "standard", "quantity": 1}});
    app.call(Method::POST, "/holds", Some(&alice.token), Some(both))
        .await
        .problem(422, "validation");
    let dup_seat = before["seats"][0]["id"].clone();
    let duplicate = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(json!({"show_id": show_id, "seat_ids": [dup_seat, dup_seat]})),
        )
        .await;
    assert_eq!(
        duplicate.problem(422, "validation")["errors"][0]["field"],
        "seat_ids.1"
    );
    let zero = json!({"show_id": show_id, "areas": [{"area_id": before["areas"][0]["id"], "quantity": 0}]});
    app.call(Method::POST, "/holds", Some(&alice.token), Some(zero))
        .await
        .problem(422, "validation");
    let no_show =
        json!({"show_id": "shw_0000", "best_available": {"category": "standard", "quantity": 1}});
    app.call(Method::POST, "/holds", Some(&alice.token), Some(no_show))
        .await
        .problem(404, "not_found");
    let huge = "x".repeat(2 * 1024 * 1024);
    // Its own connection: the server answers 413 without reading the body, then closes it.
    let fresh = reqwest::Client::new();
    let too_big = fresh
        .post(app.url("/holds"))
        .bearer_auth(&alice.token)
        .header("content-type", "application/json")
        .body(format!("{{\"show_id\": \"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    Reply::from(too_big).await.problem(413, "payload_too_large");
    let bad_card =
        json!({"hold_id": "hld_nope", "payment": {"method": "card", "card_number": "12"}});
    app.call(
        Method::POST,
        "/bookings",
        Some(&alice.token),
        Some(bad_card),
    )
    .await
    .problem(404, "not_found");

    app.call(Method::GET, "/shows/not-an-id/seats", None, None)
        .await
        .problem(404, "not_found");
    app.call(Method::GET, "/no/such/route", None, None)
        .await
        .problem(404, "not_found");
    app.call(Method::DELETE, "/events", None, None)
        .await
        .problem(405, "method_not_allowed");
    app.call(Method::GET, "/events?limit=1000", None, None)
        .await
        .problem(422, "validation");

    let layout = json!({"name": "", "sections": [{"name": "S", "rows": [{"label": "A", "count": 0, "category": "Bad"}]}]});
    let venue = app
        .call(
            Method::POST,
            "/venues",
            Some(&organizer.token),
            Some(layout),
        )
        .await;
    let fields: Vec<_> = venue.problem(422, "validation")["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        fields.contains(&"name".to_owned())
            && fields.contains(&"sections.0.rows.0.count".to_owned()),
        "{fields:?}"
    );
    let register = app
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(json!({"email": "nope", "password": "short", "name": ""})),
        )
        .await;
    assert_eq!(
        register.problem(422, "validation")["errors"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    assert_eq!(
        app.seat_map(show_id).await["availability"],
        before["availability"],
        "nothing was held"
    );
    assert_eq!(
        app.call(Method::GET, "/venues", Some(&organizer.token), None)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn request_ids_are_echoed_or_made(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let given = app
        .request(Method::GET, "/events")
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
    let made = app.request(Method::GET, "/events").send().await.unwrap();
    assert_eq!(
        made.headers()["x-request-id"].len(),
        36,
        "a UUID is generated"
    );
}

crate::on_both_engines!(
    every_kind_of_bad_request_is_a_problem_and_writes_nothing,
    request_ids_are_echoed_or_made
);
