//! Sign-up, sign-in, tokens and cookies.

use boxoffice_testkit::{Engine, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn register_login_and_me(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let alice = app.register("Alice@Example.com", "customer").await;
    let me = app.call(Method::GET, "/me", Some(&alice.token), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(
        (me.body["email"].as_str(), me.body["role"].as_str()),
        (Some("alice@example.com"), Some("customer"))
    );

    let twice = app
        .call(
            Method::POST,
            "/auth/register",
            None,
            Some(
                json!({"email": "alice@example.com", "password": "another password", "name": "A"}),
            ),
        )
        .await;
    twice.problem(409, "email_taken");

    let wrong = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "alice@example.com", "password": "not the password"})),
        )
        .await;
    wrong.problem(401, "unauthorized");
    let unknown = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "nobody@example.com", "password": "not the password"})),
        )
        .await;
    unknown.problem(401, "unauthorized");

    let login = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "alice@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(
        login.body["user"]["id"].as_str(),
        Some(alice.user_id.as_str())
    );
    let cookies: Vec<_> = login
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("boxoffice_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
}

async fn tokens_expire_and_forgeries_fail(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let alice = app.register("alice@example.com", "customer").await;
    app.call(Method::GET, "/me", None, None)
        .await
        .problem(401, "unauthorized");
    let forged = format!("{}x", alice.token);
    app.call(Method::GET, "/me", Some(&forged), None)
        .await
        .problem(401, "unauthorized");
    // An unsigned token ("alg": "none") claiming to be Alice.
    let none = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        alice.token.split('.').nth(1).unwrap()
    );
    app.call(Method::GET, "/me", Some(&none), None)
        .await
        .problem(401, "unauthorized");
    app.clock.advance_minutes(16);
    app.call(Method::GET, "/me", Some(&alice.token), None)
        .await
        .problem(401, "unauthorized");
}

async fn cookie_sessions_need_the_csrf_token_to_change_things(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 4, 10, 4).await;
    app.register("alice@example.com", "customer").await;
    let login = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": "alice@example.com", "password": "correct horse battery"})),
        )
        .await;
    let cookie = |name: &str| {
        login
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|c| c.starts_with(name))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    let (session, csrf) = (cookie("boxoffice_session="), cookie("boxoffice_csrf="));
    let jar = format!("{session}; {csrf}");
    let me = app
        .request(Method::GET, "/me")
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let hold = json!({"show_id": show["id"], "areas": [{"area_id": app.seat_map(show["id"].as_str().unwrap()).await["areas"][0]["id"], "quantity": 1}]});
    let without = app
        .request(Method::POST, "/holds")
        .header("cookie", &jar)
        .json(&hold)
        .send()
        .await
        .unwrap();
    boxoffice_testkit::Reply::from(without)
        .await
        .problem(403, "forbidden");
    let token = csrf.split_once('=').unwrap().1;
    let with = app
        .request(Method::POST, "/holds")
        .header("cookie", &jar)
        .header("x-csrf-token", token)
        .json(&hold)
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), StatusCode::CREATED);
}

crate::on_both_engines!(
    register_login_and_me,
    tokens_expire_and_forgeries_fail,
    cookie_sessions_need_the_csrf_token_to_change_things
);
