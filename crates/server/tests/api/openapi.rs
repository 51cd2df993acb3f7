//! The OpenAPI document: generated from the handlers, complete, and served with its docs page
//! entirely by the binary.

use boxoffice_testkit::{Engine, TestApp};
use reqwest::Method;
use serde_json::Value;

/// Every documented operation: (method, path under /api/v1, requires sign-in).
pub fn operations(doc: &Value) -> Vec<(Method, String, bool)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let method =
                Method::from_bytes(method.to_uppercase().as_bytes()).expect("an HTTP method");
            let secured = op
                .get("security")
                .is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()));
            found.push((
                method,
                path.strip_prefix("/api/v1")
                    .expect("under /api/v1")
                    .to_owned(),
                secured,
            ));
        }
    }
    found
}

async fn the_document_describes_every_route(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let reply = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(reply.status, 200);
    let doc = reply.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let parsed: utoipa::openapi::OpenApi =
        serde_json::from_value(doc.clone()).expect("a well-formed OpenAPI document");
    assert_eq!(
        serde_json::to_value(&parsed).unwrap()["paths"],
        doc["paths"],
        "nothing lost in a round trip"
    );
    assert_eq!(
        serde_json::to_value(boxoffice_server::openapi()).unwrap(),
        doc,
        "served as generated"
    );

    let operations = operations(&doc);
    assert!(
        operations.len() >= 40,
        "only {} operations documented",
        operations.len()
    );
    for (method, path, secured) in &operations {
        let op = &doc["paths"][format!("/api/v1{path}")][method.as_str().to_lowercase()];
        assert!(
            op["responses"]["4XX"]["content"]["application/problem+json"].is_object(),
            "{method} {path} documents its problems"
        );
        assert!(
            op["tags"].is_array() && op["summary"].is_string(),
            "{method} {path} has a tag and a summary"
        );
        // The router serves the documented route: unauthenticated calls are refused by auth or
        // answered, never met with "no such route" or "method not allowed".
        let concrete = path.replace("{id}", "x").replace("{user_id}", "x");
        let reply = app
            .request(method.clone(), &concrete)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = reply.status().as_u16();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{method} {path} is not routed");
        assert!(
            status != 404 || body["detail"] != "no such resource",
            "{method} {path} is not routed"
        );
        if *secured {
            assert_eq!(status, 401, "{method} {path} requires sign-in: {body}");
        }
    }
    for schema in [
        "Problem",
        "Hold",
        "Booking",
        "SeatMap",
        "Venue",
        "Show",
        "ScheduleInput",
        "FieldError",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} is documented"
        );
    }
}

async fn the_docs_page_needs_nothing_from_outside(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let page = app
        .http
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.ends_with(".js") || part.ends_with(".css") || part.ends_with(".png"))
        .collect();
    assert!(assets.len() >= 3, "the page loads its assets: {html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no absolute (external) address in the page"
    );
    for asset in assets {
        let url = format!("{}/docs/{}", app.base, asset.trim_start_matches("./"));
        let reply = app.http.get(&url).send().await.unwrap();
        assert_eq!(reply.status(), 200, "{url} is served by the binary");
        let text = reply.text().await.unwrap_or_default();
        if asset.contains("initializer") {
            assert!(
                text.contains("/api/v1/openapi.json"),
                "the page points at our document"
            );
        }
    }
}

crate::on_both_engines!(
    the_document_describes_every_route,
    the_docs_page_needs_nothing_from_outside
);
