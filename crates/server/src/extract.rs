//! Request extractors that turn bad input into problem documents: JSON bodies (unknown fields
//! refused, the canonical form for idempotency fingerprints made on demand), path ids, and the
//! waiting room's admission token.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use boxoffice_core::DomainError;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use serde_json::error::Category;

/// A JSON body as `T`, read straight from the bytes; its canonical text (keys sorted) for
/// request fingerprints is made only when asked for, since most requests carry no key.
pub struct ApiJson<T> {
    pub value: T,
    body: Bytes,
}

impl<T> ApiJson<T> {
    /// The body with its keys sorted and no spacing, so a retry that orders or spaces its JSON
    /// differently is still the same request.
    pub fn canonical(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .map(|tree| tree.to_string())
            .unwrap_or_default()
    }
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
        let value = serde_json::from_slice::<T>(&bytes).map_err(|e| body_error(&bytes, e))?;
        Ok(Self { value, body: bytes })
    }
}

/// The `x-admission-token` a show's waiting room gave the customer, if the request has one
/// (read alone: taking the whole header map would copy it for every hold).
pub struct AdmissionToken(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AdmissionToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get("x-admission-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ))
    }
}

/// A body that is not JSON is malformed (400); JSON of the wrong shape is invalid (422).
fn body_error(bytes: &[u8], error: serde_json::Error) -> ApiError {
    let syntax = if error.classify() == Category::Data {
        // A shape error can come before a syntax error further on.
        match serde_json::from_slice::<IgnoredAny>(bytes) {
            Ok(_) => return ApiError::Domain(DomainError::invalid("body", error.to_string())),
            Err(syntax) => syntax,
        }
    } else {
        error
    };
    ApiError::problem(
        StatusCode::BAD_REQUEST,
        "malformed_request",
        format!("the body is not valid JSON: {syntax}"),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Order {
        show_id: String,
        quantity: i64,
    }

    async fn read(body: &str) -> Result<ApiJson<Order>, ApiError> {
        let request = Request::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        ApiJson::<Order>::from_request(request, &()).await
    }

    fn status(result: Result<ApiJson<Order>, ApiError>) -> StatusCode {
        use axum::response::IntoResponse;
        result.err().expect("refused").into_response().status()
    }

    #[tokio::test]
    async fn bodies_are_read_straight_into_the_type_and_canonical_on_demand() {
        let read_back = read(r#"{ "quantity": 2,  "show_id": "shw_1" }"#)
            .await
            .ok()
            .unwrap();
        assert_eq!(
            (read_back.value.show_id.as_str(), read_back.value.quantity),
            ("shw_1", 2)
        );
        let reordered = read(r#"{"show_id":"shw_1","quantity":2}"#)
            .await
            .ok()
            .unwrap();
        assert_eq!(read_back.canonical(), reordered.canonical());
        assert_eq!(read_back.canonical(), r#"{"quantity":2,"show_id":"shw_1"}"#);
    }

    #[tokio::test]
    async fn broken_json_is_malformed_and_the_wrong_shape_is_invalid() {
        assert_eq!(
            status(read(r#"{"show_id": "#).await),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status(read("[1,").await), StatusCode::BAD_REQUEST);
        for wrong in [
            r#"{"show_id":"shw_1"}"#,
            r#"{"show_id":"shw_1","quantity":"two"}"#,
            r#"{"show_id":"shw_1","quantity":2,"extra":true}"#,
        ] {
            assert_eq!(
                status(read(wrong).await),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{wrong}"
            );
        }
    }
}
