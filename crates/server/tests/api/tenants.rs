//! Organizers as tenants: members act for their organizer, owners manage members, admins
//! create and suspend organizers, and a suspended organizer stops selling.

use boxoffice_testkit::{Engine, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn owners_add_staff_who_run_the_catalog(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (owner, show) = app.show_with("owner@example.com", 4, 10, 4).await;
    let staff = app.register("staff@example.com", "customer").await;
    let outsider = app.register("outsider@example.com", "organizer").await;
    let venue_path = format!("/venues/{}", show["venue_id"].as_str().unwrap());
    app.call(Method::GET, &venue_path, Some(&staff.token), None)
        .await
        .problem(404, "not_found");

    let add = json!({"email": "staff@example.com", "role": "staff"});
    let invited = app
        .call(
            Method::POST,
            "/organizer/members",
            Some(&owner.token),
            Some(add.clone()),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
    assert_eq!(
        (
            invited.body["state"].as_str(),
            invited.body["role"].as_str()
        ),
        (Some("pending"), Some("staff"))
    );
    // Nobody joins without saying yes.
    app.call(Method::GET, &venue_path, Some(&staff.token), None)
        .await
        .problem(404, "not_found");
    let sent = app
        .call(
            Method::GET,
            "/organizer/invitations",
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(sent.body.as_array().unwrap().len(), 1);
    let mine = app
        .call(Method::GET, "/me/invitations", Some(&staff.token), None)
        .await;
    assert_eq!(mine.body[0]["id"], invited.body["id"]);
    let accept = format!(
        "/invitations/{}/accept",
        invited.body["id"].as_str().unwrap()
    );
    app.call(Method::POST, &accept, Some(&outsider.token), None)
        .await
        .problem(404, "not_found");
    let accepted = app
        .call(Method::POST, &accept, Some(&staff.token), None)
        .await;
    assert_eq!(accepted.body["state"], "accepted", "{}", accepted.body);
    app.call(Method::POST, &accept, Some(&staff.token), None)
        .await
        .problem(409, "conflict");
    let me = app.call(Method::GET, "/me", Some(&staff.token), None).await;
    assert_eq!(me.body["organizer"]["role"], "staff");
    let again = app
        .call(
            Method::POST,
            "/organizer/members",
            Some(&owner.token),
            Some(add),
        )
        .await;
    let twice = format!("/invitations/{}/accept", again.body["id"].as_str().unwrap());
    app.call(Method::POST, &twice, Some(&staff.token), None)
        .await
        .problem(409, "conflict");
    let declined = app
        .call(
            Method::POST,
            &format!(
                "/invitations/{}/decline",
                again.body["id"].as_str().unwrap()
            ),
            Some(&staff.token),
            None,
        )
        .await;
    assert_eq!(declined.body["state"], "declined", "{}", declined.body);

    assert_eq!(
        app.call(Method::GET, &venue_path, Some(&staff.token), None)
            .await
            .status,
        StatusCode::OK,
        "staff see the venue"
    );
    let renamed = app
        .call(
            Method::PATCH,
            &venue_path,
            Some(&staff.token),
            Some(json!({"name": "Main Hall"})),
        )
        .await;
    assert_eq!(renamed.body["name"], "Main Hall", "{}", renamed.body);
    app.call(
        Method::PATCH,
        &venue_path,
        Some(&outsider.token),
        Some(json!({"name": "Mine now"})),
    )
    .await
    .problem(404, "not_found");

    let more = json!({"email": "outsider@example.com", "role": "staff"});
    app.call(
        Method::POST,
        "/organizer/members",
        Some(&staff.token),
        Some(more),
    )
    .await
    .problem(403, "forbidden");
    let mine = app
        .call(Method::GET, "/organizer", Some(&staff.token), None)
        .await;
    assert_eq!(mine.body["members"].as_array().unwrap().len(), 2);
    let owner_id = &owner.user_id;
    app.call(
        Method::DELETE,
        &format!("/organizer/members/{owner_id}"),
        Some(&owner.token),
        None,
    )
    .await
    .problem(409, "conflict");
    let removed = app
        .call(
            Method::DELETE,
            &format!("/organizer/members/{}", staff.user_id),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    app.call(Method::GET, &venue_path, Some(&staff.token), None)
        .await
        .problem(404, "not_found");
}

async fn a_suspended_organizer_stops_selling(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.admin().await;
    let (owner, show) = app.show_with("owner@example.com", 4, 10, 4).await;
    let show_id = show["id"].as_str().unwrap();
    let alice = app.register("alice@example.com", "customer").await;
    let area = app.seat_map(show_id).await["areas"][0]["id"].clone();
    let hold = json!({"show_id": show_id, "areas": [{"area_id": area, "quantity": 1}]});
    assert_eq!(
        app.call(
            Method::POST,
            "/holds",
            Some(&alice.token),
            Some(hold.clone())
        )
        .await
        .status,
        StatusCode::CREATED
    );

    let organizers = app
        .call(Method::GET, "/admin/organizers", Some(&admin.token), None)
        .await;
    let organizer_id = organizers.body[0]["id"].as_str().unwrap().to_owned();
    let suspended = app
        .call(
            Method::POST,
            &format!("/admin/organizers/{organizer_id}/suspend"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(suspended.body["state"], "suspended");
    let bob = app.register("bob@example.com", "customer").await;
    app.call(Method::POST, "/holds", Some(&bob.token), Some(hold.clone()))
        .await
        .problem(409, "not_on_sale");
    app.call(Method::GET, "/venues", Some(&owner.token), None)
        .await
        .problem(403, "forbidden");

    app.call(
        Method::POST,
        &format!("/admin/organizers/{organizer_id}/reinstate"),
        Some(&admin.token),
        None,
    )
    .await;
    assert_eq!(
        app.call(Method::POST, "/holds", Some(&bob.token), Some(hold))
            .await
            .status,
        StatusCode::CREATED
    );
}

async fn admins_create_organizers_for_existing_accounts(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.admin().await;
    let carol = app.register("carol@example.com", "customer").await;
    let body = json!({"name": "Carol's Comedy", "owner_email": "carol@example.com"});
    app.call(
        Method::POST,
        "/admin/organizers",
        Some(&carol.token),
        Some(body.clone()),
    )
    .await
    .problem(403, "forbidden");
    let created = app
        .call(
            Method::POST,
            "/admin/organizers",
            Some(&admin.token),
            Some(body.clone()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    app.call(
        Method::POST,
        "/admin/organizers",
        Some(&admin.token),
        Some(body),
    )
    .await
    .problem(409, "conflict");
    let me = app.call(Method::GET, "/me", Some(&carol.token), None).await;
    assert_eq!(
        (
            me.body["role"].as_str(),
            me.body["organizer"]["role"].as_str()
        ),
        (Some("organizer"), Some("owner"))
    );
    let venue = json!({"name": "Club", "areas": [{"name": "Floor", "category": "standing", "capacity": 80}]});
    assert_eq!(
        app.call(Method::POST, "/venues", Some(&carol.token), Some(venue))
            .await
            .status,
        StatusCode::CREATED
    );
}

crate::on_both_engines!(
    owners_add_staff_who_run_the_catalog,
    a_suspended_organizer_stops_selling,
    admins_create_organizers_for_existing_accounts,
);
