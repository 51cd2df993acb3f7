//! `Idempotency-Key` handling at the edge. The store records the key with the effect in one
//! transaction; here we fingerprint the request, replay a saved answer, refuse a key reused for
//! another request (422), and refuse a retry while the first is still running (409).

use crate::error::ApiError;
use crate::extract::ApiJson;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use boxoffice_core::DomainError;
use boxoffice_core::ids::UserId;
use boxoffice_store::{IdempotencyKey, Outcome, SavedResponse, Store};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;
/// Keys in flight at once in this process; a bound like every other table in memory.
const MAX_IN_FLIGHT: usize = 100_000;

/// The raw header, if the client sent one.
pub struct KeyHeader(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for KeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(raw) = parts.headers.get(HEADER) else {
            return Ok(KeyHeader(None));
        };
        let key = raw.to_str().ok().filter(|k| {
            !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
        });
        key.map(|k| KeyHeader(Some(k.to_owned()))).ok_or_else(|| {
            DomainError::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
            .into()
        })
    }
}

/// Keys whose first request is still running in this process.
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashSet<(UserId, String)>>>);

/// Holds a key as in flight until dropped.
pub struct Claim {
    table: InFlight,
    entry: (UserId, String),
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.table
            .0
            .lock()
            .expect("in-flight table")
            .remove(&self.entry);
    }
}

/// What to do with a request that carries (or not) a key.
pub enum Start {
    /// Run the command, recording its answer under `key` if there is one.
    Run {
        key: Option<IdempotencyKey>,
        claim: Option<Claim>,
    },
    /// The same request was answered before: send that answer again.
    Replay(Response),
}

pub fn fingerprint(method: &str, path: &str, canonical_body: &str) -> String {
    crate::auth::sha256_hex(format!("{method} {path}\n{canonical_body}").as_bytes())
}

impl KeyHeader {
    /// The request's fingerprint, computed only when there is a key to keep it with (most
    /// requests, and every refused hold of a flash sale, carry none).
    pub fn fingerprint_of<T>(&self, method: &str, path: &str, body: &ApiJson<T>) -> String {
        if self.0.is_some() {
            fingerprint(method, path, &body.canonical())
        } else {
            String::new()
        }
    }

    /// Like [`KeyHeader::fingerprint_of`], for a request whose body is not JSON.
    pub fn fingerprint(&self, method: &str, path: &str, canonical_body: &str) -> String {
        if self.0.is_some() {
            fingerprint(method, path, canonical_body)
        } else {
            String::new()
        }
    }
}

impl InFlight {
    pub async fn start(
        &self,
        store: &dyn Store,
        user_id: &UserId,
        header: KeyHeader,
        fingerprint: String,
        status: StatusCode,
    ) -> Result<Start, ApiError> {
        let Some(key) = header.0 else {
            return Ok(Start::Run {
                key: None,
                claim: None,
            });
        };
        let entry = (user_id.clone(), key.clone());
        {
            let mut table = self.0.lock().expect("in-flight table");
            if table.len() >= MAX_IN_FLIGHT {
                return Err(ApiError::problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "too many requests in flight",
                ));
            }
            if !table.insert(entry.clone()) {
                return Err(ApiError::problem(
                    StatusCode::CONFLICT,
                    "idempotency_in_progress",
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                ));
            }
        }
        let claim = Claim {
            table: self.clone(),
            entry,
        };
        // Looked up only once the key is ours: a first request releases the key after it has
        // committed, so from here its saved answer is visible.
        if let Some(saved) = store.saved_response(user_id, &key).await? {
            return replay(saved, &fingerprint).map(Start::Replay);
        }
        let key = IdempotencyKey {
            user_id: user_id.clone(),
            key,
            fingerprint,
            status: status.as_u16(),
        };
        Ok(Start::Run {
            key: Some(key),
            claim: Some(claim),
        })
    }
}

/// The saved answer, as first sent, if it answered this very request.
pub fn replay(saved: SavedResponse, fingerprint: &str) -> Result<Response, ApiError> {
    if saved.fingerprint != fingerprint {
        return Err(ApiError::problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request",
        ));
    }
    let status = StatusCode::from_u16(saved.status).map_err(ApiError::internal)?;
    let mut response = (status, saved.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

/// The HTTP answer for a command's outcome under an optional key.
pub fn respond<T: Serialize>(
    outcome: Outcome<T>,
    status: StatusCode,
    key: Option<&IdempotencyKey>,
) -> Result<Response, ApiError> {
    match outcome {
        Outcome::Done(value) => {
            let body = serde_json::to_string(&value).map_err(ApiError::internal)?;
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(response)
        }
        Outcome::Replayed(saved) => replay(
            saved,
            key.map(|k| k.fingerprint.as_str()).unwrap_or_default(),
        ),
    }
}

/// Runs `command` at most once per key: a saved answer is replayed, a reused or busy key is
/// refused, and otherwise the command runs with the key it must record with its effect.
pub async fn run<T, F, Fut>(
    app: &crate::state::AppState,
    user_id: &UserId,
    header: KeyHeader,
    fingerprint: String,
    status: StatusCode,
    command: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: FnOnce(Option<IdempotencyKey>) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome<T>, ApiError>>,
{
    match app
        .in_flight
        .start(&*app.store, user_id, header, fingerprint, status)
        .await?
    {
        Start::Replay(first) => Ok(first),
        Start::Run { key, claim } => {
            let outcome = command(key.clone()).await?;
            let response = respond(outcome, status, key.as_ref());
            drop(claim);
            response
        }
    }
}
