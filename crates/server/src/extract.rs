//! Request extractors that turn bad input into problem documents: JSON bodies (unknown fields
//! refused, the canonical form kept for idempotency fingerprints) and path ids.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use boxoffice_core::DomainError;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A JSON body as `T`, plus its canonical text (keys sorted) for request fingerprints.
pub struct ApiJson<T> {
    pub value: T,
    pub canonical: String,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::problem(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the request body is over the size limit",
                    )
                } else {
                    ApiError::problem(
                        StatusCode::BAD_REQUEST,
                        "malformed_request",
                        rejection.body_text(),
                    )
                }
            })?;
        let tree: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::problem(
                StatusCode::BAD_REQUEST,
                "malformed_request",
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        let canonical = tree.to_string();
        let value = T::deserialize(tree)
            .map_err(|e| ApiError::Domain(DomainError::invalid("body", e.to_string())))?;
        Ok(Self { value, canonical })
    }
}

/// Parses a path id of the expected kind; anything else names nothing, so it is a 404.
pub fn path_id<T>(
    raw: &str,
    parse: fn(&str) -> Option<T>,
    what: &'static str,
) -> Result<T, ApiError> {
    parse(raw).ok_or(ApiError::Domain(DomainError::NotFound(what)))
}

/// Page size for lists: 20 unless asked, never more than 100.
pub fn page_limit(requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        None => Ok(20),
        Some(n) if (1..=100).contains(&n) => Ok(n),
        Some(_) => Err(DomainError::invalid("limit", "must be 1 to 100").into()),
    }
}
