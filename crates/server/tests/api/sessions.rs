//! Sessions: refresh tokens rotate, a reused one ends the session, logout and suspension take
//! effect on the very next request.

use boxoffice_testkit::{Engine, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn refresh_tokens_rotate_and_reuse_ends_the_session(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let alice = app.register("alice@example.com", "customer").await;
    let first = app
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({"refresh_token": alice.refresh_token})),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let rotated = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, alice.refresh_token);
    let token = first.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call(Method::GET, "/me", Some(&token), None)
            .await
            .status,
        StatusCode::OK
    );

    // The old refresh token comes back: someone copied it. The whole session ends.
    let reuse = app
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({"refresh_token": alice.refresh_token})),
        )
        .await;
    reuse.problem(401, "unauthorized");
    app.call(Method::GET, "/me", Some(&token), None)
        .await
        .problem(401, "unauthorized");
    app.call(Method::GET, "/me", Some(&alice.token), None)
        .await
        .problem(401, "unauthorized");
    app.call(
        Method::POST,
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": rotated})),
    )
    .await
    .problem(401, "unauthorized");
    app.call(
        Method::POST,
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": "made-up"})),
    )
    .await
    .problem(401, "unauthorized");

    // A new sign-in is a new session, untouched by the old one's end.
    let again = app.login("alice@example.com").await;
    assert_eq!(
        app.call(Method::GET, "/me", Some(&again.token), None)
            .await
            .status,
        StatusCode::OK
    );
}

async fn access_tokens_expire_but_refresh_keeps_the_session(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let alice = app.register("alice@example.com", "customer").await;
    app.clock.advance_minutes(16);
    app.call(Method::GET, "/me", Some(&alice.token), None)
        .await
        .problem(401, "unauthorized");
    let renewed = app
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({"refresh_token": alice.refresh_token})),
        )
        .await;
    let token = renewed.body["token"].as_str().unwrap();
    assert_eq!(
        app.call(Method::GET, "/me", Some(token), None).await.status,
        StatusCode::OK
    );
    app.clock.advance_minutes(31 * 24 * 60);
    let late = renewed.body["refresh_token"].as_str().unwrap();
    app.call(
        Method::POST,
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": late})),
    )
    .await
    .problem(401, "unauthorized");
}

async fn logout_revokes_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let alice = app.register("alice@example.com", "customer").await;
    let other_device = app.login("alice@example.com").await;
    let out = app
        .call(Method::POST, "/auth/logout", Some(&alice.token), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    app.call(Method::GET, "/me", Some(&alice.token), None)
        .await
        .problem(401, "unauthorized");
    app.call(
        Method::POST,
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": alice.refresh_token})),
    )
    .await
    .problem(401, "unauthorized");
    assert_eq!(
        app.call(Method::GET, "/me", Some(&other_device.token), None)
            .await
            .status,
        StatusCode::OK,
        "other sessions live on"
    );
}

async fn suspended_accounts_lose_access_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.admin().await;
    let alice = app.register("alice@example.com", "customer").await;
    let path = format!("/admin/users/{}/suspend", alice.user_id);
    app.call(Method::POST, &path, Some(&alice.token), None)
        .await
        .problem(403, "forbidden");
    let suspended = app
        .call(Method::POST, &path, Some(&admin.token), None)
        .await;
    assert_eq!(suspended.body["state"], "suspended", "{}", suspended.body);
    app.call(Method::GET, "/me", Some(&alice.token), None)
        .await
        .problem(401, "unauthorized");
    app.call(
        Method::POST,
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": alice.refresh_token})),
    )
    .await
    .problem(401, "unauthorized");
    app.call(
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": "alice@example.com", "password": "correct horse battery"})),
    )
    .await
    .problem(401, "unauthorized");
    let reinstated = app
        .call(
            Method::POST,
            &format!("/admin/users/{}/reinstate", alice.user_id),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(reinstated.body["state"], "active");
    app.login("alice@example.com").await;
    let users = app
        .call(Method::GET, "/admin/users", Some(&admin.token), None)
        .await;
    assert_eq!(users.body.as_array().unwrap().len(), 2);
}

crate::on_both_engines!(
    refresh_tokens_rotate_and_reuse_ends_the_session,
    access_tokens_expire_but_refresh_keeps_the_session,
    logout_revokes_at_once,
    suspended_accounts_lose_access_at_once,
);
