//! Running a season: layouts from a compact description, schedules across a clock change,
//! sale windows, cancelled shows, and the edits that must be refused.

use boxoffice_testkit::{Engine, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn cinema(app: &TestApp, owner: &Session) -> (Value, Value) {
    let venue = app
        .call(
            Method::POST,
            "/venues",
            Some(&owner.token),
            Some(json!({"name": "Kino 1", "city": "Berlin", "timezone": "Europe/Berlin", "sections": [{"name": "Saal", "generate": {
                "rows": "A-E", "seats_per_row": 10, "category": "standard", "row_categories": [{"rows": "D-E", "category": "premium"}],
                "aisles_after": [5], "blocked": ["C5"]}}]})),
        )
        .await;
    assert_eq!(venue.status, StatusCode::CREATED, "{}", venue.body);
    let film = app
        .call(
            Method::POST,
            "/events",
            Some(&owner.token),
            Some(json!({"title": "Nosferatu", "kind": "movie", "duration_minutes": 100, "format": "2D", "language": "de", "tags": ["classic"]})),
        )
        .await;
    assert_eq!(film.status, StatusCode::CREATED, "{}", film.body);
    (venue.body, film.body)
}

fn schedule(venue: &Value, from: &str, to: &str, times: &[&str]) -> Value {
    json!({"venue_id": venue["id"], "from": from, "to": to, "times": times, "currency": "EUR",
           "prices": {"standard": 900, "premium": 1200}})
}

async fn schedules_follow_local_time_across_the_clock_change(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.register("kino@example.com", "organizer").await;
    let (venue, film) = cinema(&app, &owner).await;
    assert_eq!(venue["seats"].as_array().unwrap().len(), 50);
    let path = format!("/events/{}/schedule", film["id"].as_str().unwrap());
    // Berlin leaves summer time on 2030-10-27.
    let created = app
        .call(
            Method::POST,
            &path,
            Some(&owner.token),
            Some(schedule(
                &venue,
                "2030-10-26",
                "2030-10-28",
                &["14:00", "20:30"],
            )),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let starts: Vec<_> = created
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["starts_at"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        starts,
        [
            "2030-10-26T12:00:00Z",
            "2030-10-26T18:30:00Z",
            "2030-10-27T13:00:00Z",
            "2030-10-27T19:30:00Z",
            "2030-10-28T13:00:00Z",
            "2030-10-28T19:30:00Z"
        ]
    );
    let listed = app
        .call(
            Method::GET,
            &format!("/shows?event_id={}&limit=100", film["id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 6);

    // 15:00 overlaps 14:00 (100 minutes): the whole schedule is refused and nothing is created.
    let clash = app
        .call(
            Method::POST,
            &path,
            Some(&owner.token),
            Some(schedule(&venue, "2030-10-25", "2030-10-27", &["15:00"])),
        )
        .await;
    let problem = clash.problem(409, "schedule_conflict");
    assert_eq!(
        problem["conflicts"].as_array().unwrap().len(),
        2,
        "{problem}"
    );
    let listed = app
        .call(
            Method::GET,
            &format!("/shows?event_id={}&limit=100", film["id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        6,
        "all or nothing"
    );
    let inner = app
        .call(
            Method::POST,
            &path,
            Some(&owner.token),
            Some(schedule(
                &venue,
                "2030-11-01",
                "2030-11-01",
                &["14:00", "15:00"],
            )),
        )
        .await;
    inner.problem(409, "schedule_conflict");
    let bad = app
        .call(
            Method::POST,
            &path,
            Some(&owner.token),
            Some(schedule(&venue, "2030-11-05", "2030-11-01", &["9"])),
        )
        .await;
    bad.problem(422, "validation");
}

async fn sale_windows_and_cancellation(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.register("kino@example.com", "organizer").await;
    let (venue, film) = cinema(&app, &owner).await;
    let opens = app.clock.now_plus_minutes(60);
    let show = app
        .call(
            Method::POST,
            "/shows",
            Some(&owner.token),
            Some(json!({"event_id": film["id"], "venue_id": venue["id"], "starts_at": app.clock.now_plus_minutes(24 * 60),
                "on_sale_at": opens, "currency": "EUR", "prices": {"standard": 900, "premium": 1200}, "format": "IMAX"})),
        )
        .await;
    assert_eq!(show.status, StatusCode::CREATED, "{}", show.body);
    assert_eq!(show.body["format"], "IMAX");
    let show_id = show.body["id"].as_str().unwrap();
    let early = app.register("early@example.com", "customer").await;
    let best =
        json!({"show_id": show_id, "best_available": {"category": "premium", "quantity": 2}});
    app.call(
        Method::POST,
        "/holds",
        Some(&early.token),
        Some(best.clone()),
    )
    .await
    .problem(409, "not_on_sale");
    app.clock.advance_minutes(60);
    // Access tokens last 15 minutes: sign in again after the clock moved.
    let owner = app.login("kino@example.com").await;
    let alice = app.register("alice@example.com", "customer").await;
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(best.clone()),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED, "{}", hold.body);
    let pay = json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}});
    let booking = app
        .call(Method::POST, "/bookings", Some(&alice.token), Some(pay))
        .await;
    assert_eq!(booking.status, StatusCode::CREATED);

    // The layout cannot change under a sold seat, and the venue cannot go.
    let venue_path = format!("/venues/{}", venue["id"].as_str().unwrap());
    let layout = json!({"areas": [{"name": "Floor", "category": "standard", "capacity": 10}]});
    app.call(
        Method::PUT,
        &format!("{venue_path}/layout"),
        Some(&owner.token),
        Some(layout),
    )
    .await
    .problem(409, "conflict");
    app.call(Method::DELETE, &venue_path, Some(&owner.token), None)
        .await
        .problem(409, "conflict");
    app.call(
        Method::DELETE,
        &format!("/events/{}", film["id"].as_str().unwrap()),
        Some(&owner.token),
        None,
    )
    .await
    .problem(409, "conflict");

    let repriced = app
        .call(
            Method::PATCH,
            &format!("/shows/{show_id}"),
            Some(&owner.token),
            Some(json!({"prices": {"premium": 1500}})),
        )
        .await;
    assert_eq!(
        repriced.body["prices"]["premium"], 1500,
        "{}",
        repriced.body
    );

    let cancelled = app
        .call(
            Method::DELETE,
            &format!("/shows/{show_id}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(
        (
            cancelled.body["show"]["state"].as_str(),
            cancelled.body["bookings_cancelled"].as_i64()
        ),
        (Some("cancelled"), Some(1))
    );
    let mine = app
        .call(
            Method::GET,
            &format!("/bookings/{}", booking.body["id"].as_str().unwrap()),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(
        (mine.body["state"].as_str(), mine.body["refund"].as_str()),
        (Some("cancelled"), Some("refunded"))
    );
    app.call(Method::POST, "/holds", Some(&alice.token), Some(best))
        .await
        .problem(409, "not_on_sale");
    let map = app.seat_map(show_id).await;
    assert_eq!(
        map["availability"][0]["sold"], 2,
        "a cancelled show frees nothing for sale"
    );
    app.call(
        Method::PATCH,
        &format!("/shows/{show_id}"),
        Some(&owner.token),
        Some(json!({"hold_minutes": 5})),
    )
    .await
    .problem(422, "validation");
}

async fn events_and_unused_venues_can_be_edited_and_deleted(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.register("kino@example.com", "organizer").await;
    let (venue, film) = cinema(&app, &owner).await;
    let film_path = format!("/events/{}", film["id"].as_str().unwrap());
    let patched = app
        .call(
            Method::PATCH,
            &film_path,
            Some(&owner.token),
            Some(json!({"subtitles": "en", "age_rating": "16"})),
        )
        .await;
    assert_eq!(
        (
            patched.body["subtitles"].as_str(),
            patched.body["title"].as_str()
        ),
        (Some("en"), Some("Nosferatu"))
    );
    let concert = json!({"kind": "concert"});
    app.call(Method::PATCH, &film_path, Some(&owner.token), Some(concert))
        .await
        .problem(422, "validation");
    let venue_path = format!("/venues/{}", venue["id"].as_str().unwrap());
    let layout = json!({"sections": [{"name": "Saal", "generate": {"rows": "A-B", "seats_per_row": 4, "category": "standard"}}]});
    let replaced = app
        .call(
            Method::PUT,
            &format!("{venue_path}/layout"),
            Some(&owner.token),
            Some(layout),
        )
        .await;
    assert_eq!(
        replaced.body["seats"].as_array().unwrap().len(),
        8,
        "{}",
        replaced.body
    );
    app.call(
        Method::PATCH,
        &venue_path,
        Some(&owner.token),
        Some(json!({"timezone": "Mars/Olympus"})),
    )
    .await
    .problem(422, "validation");
    assert_eq!(
        app.call(Method::DELETE, &film_path, Some(&owner.token), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    app.call(Method::GET, &film_path, None, None)
        .await
        .problem(404, "not_found");
    assert_eq!(
        app.call(Method::DELETE, &venue_path, Some(&owner.token), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    app.call(Method::GET, &venue_path, Some(&owner.token), None)
        .await
        .problem(404, "not_found");
}

crate::on_both_engines!(
    schedules_follow_local_time_across_the_clock_change,
    sale_windows_and_cancellation,
    events_and_unused_venues_can_be_edited_and_deleted,
);
