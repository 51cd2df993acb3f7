//! Production logs are JSON, one object per line, and every line of a request carries its id.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn json_log_lines_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args([
            "serve",
            "--no-demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--database")
        .arg(format!("sqlite://{}", dir.path().join("logs.db").display()))
        .env("BOXOFFICE_MAIL_DIR", dir.path().join("mail"))
        .env("BOXOFFICE_LOG_FORMAT", "json")
        .env("BOXOFFICE_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start boxoffice");
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "boxoffice did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = reqwest::Client::new()
        .get(format!("{base}/api/v1/shows/shw_nothing"))
        .header("x-request-id", "log-line-check-42")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 404);
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = BufReader::new(&output.stdout[..])
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).expect("every log line is a JSON object"))
        .collect();
    assert!(!lines.is_empty());
    let ours: Vec<_> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == "log-line-check-42")
        .collect();
    assert!(
        !ours.is_empty(),
        "the request's lines carry its id: {lines:?}"
    );
    assert!(
        ours.iter().any(|l| l["fields"]["status"] == 404),
        "an access line with the status: {ours:?}"
    );
}
