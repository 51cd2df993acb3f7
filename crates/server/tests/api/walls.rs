//! Law 5: tenants are walls. Each test tries to cross one.

use boxoffice_core::Clock;
use boxoffice_testkit::{Engine, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn organizers_cannot_use_or_read_each_others_things(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (owner, show) = app.show_with("owner@example.com", 4, 10, 4).await;
    let rival = app.register("rival@example.com", "organizer").await;
    let customer = app.register("alice@example.com", "customer").await;
    let venue_id = show["venue_id"].as_str().unwrap();
    let show_id = show["id"].as_str().unwrap();

    app.call(
        Method::GET,
        &format!("/venues/{venue_id}"),
        Some(&rival.token),
        None,
    )
    .await
    .problem(404, "not_found");
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/venues/{venue_id}"),
            Some(&owner.token),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    let rivals = app
        .call(Method::GET, "/venues", Some(&rival.token), None)
        .await;
    assert_eq!(rivals.body, json!([]));
    app.call(
        Method::GET,
        &format!("/shows/{show_id}/sales"),
        Some(&rival.token),
        None,
    )
    .await
    .problem(404, "not_found");
    app.call(
        Method::GET,
        &format!("/shows/{show_id}/sales"),
        Some(&customer.token),
        None,
    )
    .await
    .problem(404, "not_found");
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/shows/{show_id}/sales"),
            Some(&owner.token),
            None
        )
        .await
        .status,
        StatusCode::OK
    );

    // A show on someone else's event or venue.
    let steal = json!({
        "event_id": show["event_id"], "venue_id": venue_id, "starts_at": app.clock.now().plus_minutes(600),
        "currency": "EUR", "prices": {"standard": 1, "standing": 1}
    });
    app.call(
        Method::POST,
        "/shows",
        Some(&rival.token),
        Some(steal.clone()),
    )
    .await
    .problem(404, "not_found");
    let own_event = app
        .call(
            Method::POST,
            "/events",
            Some(&rival.token),
            Some(json!({"title": "Mine", "kind": "other"})),
        )
        .await;
    let on_their_venue = json!({
        "event_id": own_event.body["id"], "venue_id": venue_id, "starts_at": app.clock.now().plus_minutes(600),
        "currency": "EUR", "prices": {"standard": 1, "standing": 1}
    });
    app.call(
        Method::POST,
        "/shows",
        Some(&rival.token),
        Some(on_their_venue),
    )
    .await
    .problem(404, "not_found");
    app.call(Method::POST, "/shows", Some(&customer.token), Some(steal))
        .await
        .problem(403, "forbidden");
    app.call(
        Method::POST,
        "/venues",
        Some(&customer.token),
        Some(json!({"name": "x", "areas": [{"name": "a", "category": "a", "capacity": 1}]})),
    )
    .await
    .problem(403, "forbidden");
    let shows = app
        .call(
            Method::GET,
            &format!("/shows?event_id={}", show["event_id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(
        shows.body["items"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
}

async fn customers_see_only_their_own_holds_and_bookings(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let area = app.seat_map(show_id).await["areas"][0]["id"].clone();
    let (alice, bob) = (
        app.register("alice@example.com", "customer").await,
        app.register("bob@example.com", "customer").await,
    );
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(json!({"show_id": show_id, "areas": [{"area_id": area, "quantity": 2}]})),
        )
        .await;
    let hold_path = format!("/holds/{}", hold.body["id"].as_str().unwrap());
    app.call(Method::GET, &hold_path, Some(&bob.token), None)
        .await
        .problem(404, "not_found");
    app.call(Method::DELETE, &hold_path, Some(&bob.token), None)
        .await
        .problem(404, "not_found");
    let pay = json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}});
    app.call(
        Method::POST,
        "/bookings",
        Some(&bob.token),
        Some(pay.clone()),
    )
    .await
    .problem(404, "not_found");
    let booking = app
        .call(Method::POST, "/bookings", Some(&alice.token), Some(pay))
        .await;
    assert_eq!(booking.status, StatusCode::CREATED);
    let booking_path = format!("/bookings/{}", booking.body["id"].as_str().unwrap());
    app.call(Method::GET, &booking_path, Some(&bob.token), None)
        .await
        .problem(404, "not_found");
    app.call(
        Method::POST,
        &format!("{booking_path}/cancel"),
        Some(&bob.token),
        None,
    )
    .await
    .problem(404, "not_found");
    assert_eq!(
        app.call(Method::GET, "/bookings", Some(&bob.token), None)
            .await
            .body["items"],
        json!([])
    );
    assert_eq!(
        app.call(Method::GET, &booking_path, Some(&alice.token), None)
            .await
            .body["state"],
        "confirmed"
    );
}

crate::on_both_engines!(
    organizers_cannot_use_or_read_each_others_things,
    customers_see_only_their_own_holds_and_bookings
);
