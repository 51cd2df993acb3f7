//! Discovery (search, filters, sorting, paging) and the organizer's figures.

use boxoffice_testkit::{Engine, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn create(app: &TestApp, owner: &Session, path: &str, body: Value) -> Value {
    let reply = app
        .call(Method::POST, path, Some(&owner.token), Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{path}: {}", reply.body);
    reply.body
}

/// Berlin cinema with a film (2 shows), Hamburg club with a concert (1 show, 1 place).
async fn season(app: &TestApp) -> (Session, Vec<Value>) {
    let owner = app.register("season@example.com", "organizer").await;
    let kino = create(app, &owner, "/venues", json!({"name": "Kino", "city": "Berlin", "timezone": "Europe/Berlin",
        "sections": [{"name": "Saal", "generate": {"rows": "A-B", "seats_per_row": 4, "category": "standard"}}]})).await;
    let club = create(
        app,
        &owner,
        "/venues",
        json!({"name": "Club", "city": "Hamburg", "timezone": "Europe/Berlin",
        "areas": [{"name": "Floor", "category": "standing", "capacity": 1}]}),
    )
    .await;
    let film = create(app, &owner, "/events", json!({"title": "Metropolis", "kind": "movie", "tags": ["silent", "classic"], "duration_minutes": 90})).await;
    let gig = create(
        app,
        &owner,
        "/events",
        json!({"title": "Kraftwerk Tribute", "kind": "concert", "description": "Robots on stage"}),
    )
    .await;
    let at = |hours: i64| app.clock.now_plus_minutes(hours * 60);
    let mut shows = Vec::new();
    for (hours, price) in [(24, 800), (48, 1400)] {
        shows.push(
            create(
                app,
                &owner,
                "/shows",
                json!({"event_id": film["id"], "venue_id": kino["id"], "starts_at": at(hours),
            "currency": "EUR", "prices": {"standard": price}}),
            )
            .await,
        );
    }
    shows.push(
        create(
            app,
            &owner,
            "/shows",
            json!({"event_id": gig["id"], "venue_id": club["id"], "starts_at": at(72),
        "currency": "EUR", "prices": {"standing": 3000}}),
        )
        .await,
    );
    (owner, shows)
}

fn ids(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn search_filters_sort_and_page(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, shows) = season(&app).await;
    let id = |i: usize| shows[i]["id"].as_str().unwrap().to_owned();
    let get = |query: &str| {
        let path = format!("/shows?{query}");
        let app = &app;
        async move { app.call(Method::GET, &path, None, None).await }
    };

    assert_eq!(ids(&get("").await.body), [id(0), id(1), id(2)]);
    assert_eq!(
        ids(&get("q=METRO").await.body),
        [id(0), id(1)],
        "text is case-insensitive"
    );
    assert_eq!(
        ids(&get("q=silent").await.body),
        [id(0), id(1)],
        "tags match"
    );
    assert_eq!(
        ids(&get("q=robots").await.body),
        [id(2)],
        "descriptions match"
    );
    assert_eq!(
        ids(&get("q=100%25").await.body),
        Vec::<String>::new(),
        "wildcards are literal"
    );
    assert_eq!(ids(&get("kind=concert").await.body), [id(2)]);
    assert_eq!(ids(&get("city=hamburg").await.body), [id(2)]);
    let from = app.clock.now_plus_minutes(36 * 60).to_rfc3339();
    assert_eq!(
        ids(&get(&format!("from={from}")).await.body),
        [id(1), id(2)]
    );
    assert_eq!(
        ids(&get("min_price=1000&max_price=2000").await.body),
        [id(1)]
    );
    assert_eq!(ids(&get("sort=price").await.body), [id(0), id(1), id(2)]);
    assert_eq!(
        ids(&get("sort=-starts_at").await.body),
        [id(2), id(1), id(0)]
    );
    let first = get("limit=2").await;
    assert_eq!(
        (ids(&first.body), first.body["has_more"].as_bool()),
        (vec![id(0), id(1)], Some(true))
    );
    let second = get("limit=2&page=2").await;
    assert_eq!(
        (ids(&second.body), second.body["has_more"].as_bool()),
        (vec![id(2)], Some(false))
    );

    // Sell the club's only place: it drops out of "available".
    let fan = app.register("fan@example.com", "customer").await;
    let area = app.seat_map(&id(2)).await["areas"][0]["id"].clone();
    let hold = app
        .call(
            Method::POST,
            "/holds",
            Some(&fan.token),
            Some(json!({"show_id": id(2), "areas": [{"area_id": area, "quantity": 1}]})),
        )
        .await;
    assert_eq!(hold.status, StatusCode::CREATED);
    assert_eq!(ids(&get("available=true").await.body), [id(0), id(1)]);
    app.clock.advance_minutes(10);
    assert_eq!(
        ids(&get("available=true").await.body).len(),
        3,
        "an expired hold makes it available again"
    );

    let events = app
        .call(Method::GET, "/events?q=kraftwerk", None, None)
        .await;
    assert_eq!(events.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(events.body["items"][0]["title"], "Kraftwerk Tribute");
    let by_city = app
        .call(Method::GET, "/events?city=berlin", None, None)
        .await;
    assert_eq!(by_city.body["items"][0]["title"], "Metropolis");

    for bad in [
        "limit=101",
        "page=0",
        "page=1000",
        "sort=random",
        "kind=opera",
        "from=yesterday",
        "min_price=-1",
        "event_id=nope",
        "after=x",
    ] {
        get(bad).await.problem(422, "validation");
    }
    get("colour=red").await.problem(400, "malformed_request");
}

async fn organizers_see_their_figures(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (owner, shows) = season(&app).await;
    let buyer = app.register("buyer@example.com", "customer").await;
    let mut bookings = Vec::new();
    for (show, quantity) in [(&shows[0], 2), (&shows[1], 1)] {
        let hold = app
            .call(Method::POST, "/holds", Some(&buyer.token), Some(json!({"show_id": show["id"], "best_available": {"category": "standard", "quantity": quantity}})))
            .await;
        let pay = json!({"hold_id": hold.body["id"], "payment": {"method": "card", "card_number": "4242424242424242"}});
        bookings.push(
            app.call(Method::POST, "/bookings", Some(&buyer.token), Some(pay))
                .await
                .body,
        );
    }
    let cancel = format!("/bookings/{}/cancel", bookings[1]["id"].as_str().unwrap());
    app.call(Method::POST, &cancel, Some(&buyer.token), None)
        .await;

    let show_path = format!("/shows/{}/sales", shows[0]["id"].as_str().unwrap());
    let sales = app
        .call(Method::GET, &show_path, Some(&owner.token), None)
        .await;
    assert_eq!(
        sales.body["revenue_by_category"]["standard"], 1600,
        "{}",
        sales.body
    );
    assert_eq!(
        (
            sales.body["availability"][0]["sold"].as_i64(),
            sales.body["availability"][0]["free"].as_i64()
        ),
        (Some(2), Some(6))
    );

    let figures = app
        .call(Method::GET, "/organizer/figures", Some(&owner.token), None)
        .await;
    assert_eq!(figures.status, StatusCode::OK, "{}", figures.body);
    assert_eq!(figures.body["top_events"][0]["title"], "Metropolis");
    assert_eq!(figures.body["top_events"][0]["tickets_sold"], 2);
    assert_eq!(
        (
            figures.body["bookings_confirmed"].as_i64(),
            figures.body["bookings_cancelled"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(figures.body["cancellation_rate"], 0.5);
    assert_eq!(
        figures.body["per_day"],
        json!([{"day": "2030-01-01", "bookings": 1, "revenue_minor": 1600}])
    );
    app.call(Method::GET, "/organizer/figures", Some(&buyer.token), None)
        .await
        .problem(403, "forbidden");
    app.call(
        Method::GET,
        "/organizer/figures?from=2030-02-01T00:00:00Z&to=2030-01-01T00:00:00Z",
        Some(&owner.token),
        None,
    )
    .await
    .problem(422, "validation");
}

crate::on_both_engines!(search_filters_sort_and_page, organizers_see_their_figures);
