//! A running server is observable: request ids reach error bodies, and `/metrics` counts
//! requests per route and the sale's own events.

use boxoffice_testkit::{Engine, TestApp};
use reqwest::Method;
use serde_json::json;

async fn errors_carry_the_request_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let reply = app
        .request(Method::GET, "/shows/shw_missing")
        .header("x-request-id", "trace-77")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.headers()["x-request-id"], "trace-77");
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(
        (body["type"].as_str(), body["request_id"].as_str()),
        (Some("not_found"), Some("trace-77"))
    );
    let unrouted = app.request(Method::GET, "/nowhere").send().await.unwrap();
    let id = unrouted.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = unrouted.json().await.unwrap();
    assert_eq!(
        body["request_id"],
        id.as_str(),
        "generated ids reach the body too"
    );
}

async fn metrics_count_requests_and_sales(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, show) = app.show_with("org@example.com", 2, 5, 4).await;
    let alice = app.register("alice@example.com", "customer").await;
    let area = app.seat_map(show["id"].as_str().unwrap()).await["areas"][0]["id"].clone();
    let body = json!({"show_id": show["id"], "areas": [{"area_id": area, "quantity": 6}]});
    app.call(Method::POST, "/holds", Some(&alice.token), Some(body))
        .await
        .problem(422, "limit_exceeded");
    let body = json!({"show_id": show["id"], "areas": [{"area_id": area, "quantity": 2}]});
    app.call(Method::POST, "/holds", Some(&alice.token), Some(body))
        .await;
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "boxoffice_http_requests_total{method=\"POST\",route=\"/api/v1/holds\",status=\"201\"}",
        "boxoffice_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/holds\"",
        "boxoffice_holds_created_total",
        "boxoffice_holds_refused_total{reason=\"limit_exceeded\"}",
        "boxoffice_commit_groups_total{kind=\"hold\"}",
        "boxoffice_grouped_commands_total{kind=\"booking\"}",
        "boxoffice_waiting_for_group{kind=\"hold\"}",
        "boxoffice_failed_groups_total{kind=\"booking\"}",
        "boxoffice_grouped_commands_total{kind=\"release\"}",
        "boxoffice_outbox_unsent{channel=\"mail\"}",
        "boxoffice_outbox_unsent{channel=\"live\"}",
        "boxoffice_outbox_unsent{channel=\"card_refunds\"}",
    ] {
        assert!(
            metrics.contains(expected),
            "/metrics lacks {expected}:\n{metrics}"
        );
    }
    let hold_line_busy_us: u64 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("boxoffice_commit_group_busy_microseconds_total{kind=\"hold\"} ")
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("/metrics lacks the hold line's busy time:\n{metrics}"));
    assert!(
        hold_line_busy_us > 0,
        "the granted hold's group took time to decide"
    );
    assert!(
        !metrics.contains("route=\"/api/v1/shows/shw_"),
        "routes are labelled by pattern, not by id"
    );
}

crate::on_both_engines!(
    errors_carry_the_request_id,
    metrics_count_requests_and_sales
);
