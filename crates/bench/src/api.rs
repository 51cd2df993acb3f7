//! A thin HTTP client over the servers under test: spreads clients across targets and turns
//! every answer into (status, JSON), or `None` when no answer came (the outcome is unknown).

use serde_json::Value;
use std::time::{Duration, Instant};

pub struct Api {
    http: reqwest::Client,
    targets: Vec<String>,
}

pub struct Answer {
    pub status: u16,
    /// Raw body: parsed only by those who need it, so the load generator spends its CPU on load.
    pub bytes: bytes::Bytes,
    pub latency: Duration,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

impl Api {
    pub fn new(targets: &[String], clients: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients.max(1))
            .timeout(Duration::from_secs(30))
            .build()?;
        let targets = targets
            .iter()
            .map(|t| t.trim_end_matches('/').to_owned())
            .collect();
        Ok(Self { http, targets })
    }

    /// The target client `client` talks to.
    pub fn base(&self, client: usize) -> &str {
        &self.targets[client % self.targets.len()]
    }

    /// `None` when the request failed without an answer: the effect may or may not have happened.
    pub async fn call(
        &self,
        client: usize,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Option<Answer> {
        let url = if path.starts_with('/') && !path.starts_with("/api/") && path != "/healthz" {
            format!("{}/api/v1{path}", self.base(client))
        } else {
            format!("{}{path}", self.base(client))
        };
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = Instant::now();
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.ok()?;
        let latency = started.elapsed();
        Some(Answer {
            status,
            bytes,
            latency,
        })
    }

    /// Like `call`, for set-up steps that must succeed.
    pub async fn must(
        &self,
        method: reqwest::Method,
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
