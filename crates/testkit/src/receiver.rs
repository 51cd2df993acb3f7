//! A webhook receiver on a loopback port, as an organizer's integration would run one: it
//! records every request it gets, answers `500` to the first few (a receiver having a bad
//! minute), and can leave the very first request unanswered (a receiver that hangs).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One request as the receiver saw it, and what it answered.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// The status it answered with; `None` while (or because) it hung.
    pub answered: Option<u16>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

#[derive(Default)]
struct Behaviour {
    failures_left: usize,
    hang_first: bool,
    seen: Vec<Received>,
}

pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<Behaviour>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers `500` to the first `failures` requests, `200` after.
    pub async fn start(failures: usize) -> Self {
        Self::with(Behaviour {
            failures_left: failures,
            ..Default::default()
        })
        .await
    }

    /// Never answers its first request; answers `200` after.
    pub async fn hanging_first() -> Self {
        Self::with(Behaviour {
            hang_first: true,
            ..Default::default()
        })
        .await
    }

    async fn with(behaviour: Behaviour) -> Self {
        let state = Arc::new(Mutex::new(behaviour));
        let shared = state.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { receive(state, headers, body).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!(
            "http://{}/hooks",
            listener.local_addr().expect("bound address")
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            state,
            _server: server,
        }
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("receiver lock").seen.clone()
    }

    /// The bodies answered with a 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<serde_json::Value> {
        self.received()
            .iter()
            .filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s)))
            .map(Received::json)
            .collect()
    }
}

async fn receive(state: Arc<Mutex<Behaviour>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = String::from_utf8_lossy(&body).into_owned();
    let (status, hang) = {
        let mut behaviour = state.lock().expect("receiver lock");
        let hang = behaviour.hang_first && behaviour.seen.is_empty();
        let status = if hang {
            None
        } else if behaviour.failures_left > 0 {
            behaviour.failures_left -= 1;
            Some(500)
        } else {
            Some(200)
        };
        behaviour.seen.push(Received {
            headers,
            body,
            answered: status,
        });
        (status, hang)
    };
    if hang {
        // Longer than any test waits: the sender must give up on this one by itself.
        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
    }
    StatusCode::from_u16(status.unwrap_or(200)).unwrap_or(StatusCode::OK)
}
