//! A thin HTTP client over the servers under test: spreads clients across targets and turns
//! every answer into (status, JSON), or `None` when no answer came (the outcome is unknown).
//!
//! Plain HTTP/1.1 on kept-alive connections, straight on hyper. A general-purpose client
//! (URL parsing, host normalisation, a pool and a timer per request) spent more CPU per
//! refused hold than the server does answering it, and on one machine the load generator's
//! CPU is taken from the server under test.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Routes of the server itself; every other path is the API's, under `/api/v1`.
const SERVER_ROUTES: [&str; 2] = ["/healthz", "/metrics"];

/// An answer not complete within this long counts as no answer.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Api {
    targets: Vec<Target>,
}

/// One server: where to connect, and its connections not in use right now.
struct Target {
    base: String,
    authority: String,
    host: HeaderValue,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

pub struct Answer {
    pub status: u16,
    /// Raw body: parsed only by those who need it, so the load generator spends its CPU on load.
    pub bytes: Bytes,
    pub latency: Duration,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

impl Api {
    /// `targets` are `http://HOST:PORT` base URLs; `clients` sizes the connections kept.
    pub fn new(targets: &[String], clients: usize) -> anyhow::Result<Self> {
        let targets = targets
            .iter()
            .map(|t| Target::new(t, clients))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!targets.is_empty(), "no target to drive");
        Ok(Self { targets })
    }

    /// The base URL of the target client `client` talks to.
    pub fn base(&self, client: usize) -> &str {
        &self.target(client).base
    }

    fn target(&self, client: usize) -> &Target {
        &self.targets[client % self.targets.len()]
    }

    /// `None` when the request failed without an answer: the effect may or may not have happened.
    pub async fn call(
        &self,
        client: usize,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Option<Answer> {
        let target = self.target(client);
        let path = if path.starts_with('/')
            && !path.starts_with("/api/")
            && !SERVER_ROUTES.contains(&path)
        {
            format!("/api/v1{path}")
        } else {
            path.to_owned()
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, target.host.clone());
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(body).ok()?)
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(body)).ok()?;
        let started = Instant::now();
        let (status, bytes) = tokio::time::timeout(TIMEOUT, target.send(request))
            .await
            .ok()??;
        Some(Answer {
            status,
            bytes,
            latency: started.elapsed(),
        })
    }

    /// Like `call`, for set-up steps that must succeed.
    pub async fn must(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let answer = self
            .call(0, method.clone(), path, token, Some(body))
            .await
            .ok_or_else(|| anyhow::anyhow!("{method} {path}: no answer from {}", self.base(0)))?;
        anyhow::ensure!(
            answer.status == expect,
            "{method} {path}: {} {}",
            answer.status,
            answer.json()
        );
        Ok(answer.json())
    }
}

impl Target {
    fn new(base: &str, clients: usize) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let authority = base
            .strip_prefix("http://")
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| anyhow::anyhow!("{base}: targets are plain http://HOST:PORT base URLs"))?
            .to_owned();
        let authority = if authority.contains(':') {
            authority
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            host: HeaderValue::from_str(&authority)?,
            base,
            authority,
            idle: Mutex::new(Vec::with_capacity(clients)),
        })
    }

    /// Sends on a kept connection, or a new one. A request goes out at most once: it is resent
    /// only when a kept connection turned out closed before it was written.
    async fn send(&self, mut request: Request<Full<Bytes>>) -> Option<(u16, Bytes)> {
        loop {
            let kept = self.idle.lock().expect("idle connections").pop();
            let fresh = kept.is_none();
            let mut sender = match kept {
                Some(sender) => sender,
                None => self.connect().await?,
            };
            if sender.ready().await.is_err() {
                if fresh {
                    return None;
                }
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let bytes = response.into_body().collect().await.ok()?.to_bytes();
                    self.idle.lock().expect("idle connections").push(sender);
                    return Some((status, bytes));
                }
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) if !fresh => request = unsent,
                    _ => return None,
                },
            }
        }
    }

    async fn connect(&self) -> Option<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await.ok()?;
        stream.set_nodelay(true).ok()?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(connection);
        Some(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_plain_http_base_urls() {
        let api = Api::new(&["http://127.0.0.1:8080/".into()], 4).unwrap();
        assert_eq!(api.base(3), "http://127.0.0.1:8080");
        assert_eq!(api.targets[0].authority, "127.0.0.1:8080");
        assert_eq!(
            Api::new(&["http://localhost".into()], 1).unwrap().targets[0].authority,
            "localhost:80"
        );
        for bad in ["https://127.0.0.1:8443", "127.0.0.1:8080", "http://h:1/api"] {
            assert!(Api::new(&[bad.into()], 1).is_err(), "{bad}");
        }
    }
}
