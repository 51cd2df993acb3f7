//! One error type for the HTTP layer and its single mapping to RFC 9457 problem+json. Domain
//! errors keep their meaning (a stable `type` per kind); database and unexpected errors become
//! a 500 that says nothing about the inside.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use boxoffice_core::{DomainError, FieldError};
use boxoffice_store::StoreError;
use serde_json::{Value, json};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// RFC 9457 problem details: the body of every error response.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes what `problem_response` writes; never built as a value.
pub struct Problem {
    /// Stable kind of error, e.g. `seat_unavailable`, `validation`, `not_found`.
    #[schema(rename = "type", example = "seat_unavailable")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// For `validation`: every field that was wrong.
    errors: Option<Vec<FieldError>>,
    /// For `seat_unavailable`: the seats someone else has.
    seat_ids: Option<Vec<String>>,
    /// For `schedule_conflict`: the clashing start times.
    conflicts: Option<Vec<boxoffice_core::schedule::Conflict>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{detail}")]
    Problem {
        status: StatusCode,
        kind: &'static str,
        detail: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn problem(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Problem {
            status,
            kind,
            detail: detail.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        ApiError::Internal(error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Domain(domain) => ApiError::Domain(domain),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The members every problem document has, written straight from borrowed parts (refused holds
/// are errors, and a flash sale makes many of them).
#[derive(serde::Serialize)]
struct ProblemHead<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'static str,
    status: u16,
    detail: &'a str,
}

/// A problem document; `extra` adds kind-specific members such as `errors` or `seat_ids`.
pub fn problem_response(status: StatusCode, kind: &str, detail: &str, extra: Value) -> Response {
    let head = ProblemHead {
        kind,
        title: title_of(kind),
        status: status.as_u16(),
        detail,
    };
    let mut body = serde_json::to_vec(&head).expect("a problem serializes");
    if let Value::Object(extra) = extra
        && !extra.is_empty()
    {
        body.pop(); // the closing brace, which the extra members go before
        for (name, value) in extra {
            body.push(b',');
            serde_json::to_writer(&mut body, &name).expect("a name serializes");
            body.push(b':');
            serde_json::to_writer(&mut body, &value).expect("a value serializes");
        }
        body.push(b'}');
    }
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

/// `document` (a JSON object) with `request_id` added as its last member, without parsing it
/// back: refused holds are errors, and a flash sale makes many of them.
fn with_request_id(document: &[u8], request_id: &str) -> Option<Vec<u8>> {
    let inner = document
        .trim_ascii()
        .strip_prefix(b"{")?
        .strip_suffix(b"}")?;
    let id = serde_json::to_string(request_id).ok()?;
    let mut out = Vec::with_capacity(document.len() + id.len() + 16);
    out.push(b'{');
    out.extend_from_slice(inner);
    if !inner.trim_ascii().is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b"\"request_id\":");
    out.extend_from_slice(id.as_bytes());
    out.push(b'}');
    Some(out)
}

fn title_of(kind: &str) -> &'static str {
    match kind {
        "validation" => "The request is invalid",
        "malformed_request" => "The request body could not be read",
        "unauthorized" => "Authentication is required",
        "forbidden" => "You may not do this",
        "not_found" => "Not found",
        "method_not_allowed" => "Method not allowed",
        "seat_unavailable" => "Seats or places are not available",
        "limit_exceeded" => "A ticket limit was exceeded",
        "hold_expired" => "The hold has expired",
        "hold_already_booked" => "The hold was already booked",
        "not_on_sale" => "Not on sale",
        "not_cancellable" => "The booking cannot be cancelled",
        "payment_declined" => "The payment was declined",
        "email_taken" => "The email address is taken",
        "conflict" => "The request conflicts with the current state",
        "schedule_conflict" => "The shows would overlap others at the venue",
        "idempotency_key_reused" => "The idempotency key was used for another request",
        "idempotency_in_progress" => "A request with this idempotency key is still running",
        "payload_too_large" => "The request body is too large",
        "unsupported_media_type" => "Unsupported media type",
        "busy" => "The server is busy",
        "rate_limited" => "Too many requests",
        _ => "Internal server error",
    }
}

fn field_errors(errors: &[FieldError]) -> Value {
    json!({ "errors": errors })
}

/// The status and stable problem type of each domain refusal.
pub fn classify(error: &DomainError) -> (StatusCode, &'static str) {
    use DomainError as D;
    match error {
        D::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        D::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        D::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        D::SeatUnavailable { .. } | D::CapacityUnavailable { .. } => {
            (StatusCode::CONFLICT, "seat_unavailable")
        }
        D::LimitExceeded(_) => (StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded"),
        D::HoldExpired => (StatusCode::CONFLICT, "hold_expired"),
        D::HoldAlreadyBooked => (StatusCode::CONFLICT, "hold_already_booked"),
        D::NotOnSale(_) => (StatusCode::CONFLICT, "not_on_sale"),
        D::NotCancellable(_) => (StatusCode::CONFLICT, "not_cancellable"),
        D::PaymentDeclined(_) => (StatusCode::PAYMENT_REQUIRED, "payment_declined"),
        D::EmailTaken => (StatusCode::CONFLICT, "email_taken"),
        D::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        D::ScheduleConflict(_) => (StatusCode::CONFLICT, "schedule_conflict"),
        D::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
    }
}

pub fn kind_of(error: &DomainError) -> &'static str {
    classify(error).1
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use DomainError as D;
        let detail = self.to_string();
        match &self {
            ApiError::Domain(domain) => {
                let (status, kind) = classify(domain);
                let extra = match domain {
                    D::Validation(errors) => {
                        let summary = errors
                            .iter()
                            .map(|e| format!("{}: {}", e.field, e.message))
                            .collect::<Vec<_>>()
                            .join("; ");
                        return problem_response(status, kind, &summary, field_errors(errors));
                    }
                    D::SeatUnavailable { seat_ids } => json!({ "seat_ids": seat_ids }),
                    D::CapacityUnavailable {
                        available,
                        requested,
                        ..
                    } => json!({ "available": available, "requested": requested }),
                    D::ScheduleConflict(conflicts) => json!({ "conflicts": conflicts }),
                    D::Throttled {
                        retry_after_seconds,
                        ..
                    } => {
                        let mut response = problem_response(
                            status,
                            kind,
                            &detail,
                            json!({ "retry_after_seconds": retry_after_seconds }),
                        );
                        response.headers_mut().insert(
                            axum::http::header::RETRY_AFTER,
                            axum::http::HeaderValue::from(*retry_after_seconds),
                        );
                        return response;
                    }
                    _ => Value::Null,
                };
                problem_response(status, kind, &detail, extra)
            }
            ApiError::Unauthorized(_) => problem_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &detail,
                Value::Null,
            ),
            ApiError::Problem { status, kind, .. } => {
                problem_response(*status, kind, &detail, Value::Null)
            }
            ApiError::Internal(error) => {
                tracing::error!(%error, "request failed");
                problem_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "something went wrong on our side; the request may be retried",
                    Value::Null,
                )
            }
        }
    }
}

/// Gives every error response the problem+json shape (a framework rejection, an unknown route,
/// a body over the limit included) and stamps it with the request's id, so a user's report of
/// an error leads to its log lines.
pub async fn problems_everywhere(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response.headers().get(header::CONTENT_TYPE);
    // A page says what went wrong in words on an HTML page of its own.
    if content_type.is_some_and(|v| v.as_bytes().starts_with(b"text/html")) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let (mut parts, body) = response.into_parts();
    let document: Vec<u8> = if is_problem {
        let Ok(bytes) = axum::body::to_bytes(body, 256 * 1024).await else {
            return problem_response(
                status,
                "internal",
                "the error could not be described",
                Value::Null,
            );
        };
        match &request_id {
            Some(id) => match with_request_id(&bytes, id) {
                Some(stamped) => stamped,
                None => {
                    return problem_response(
                        status,
                        "internal",
                        "the error could not be described",
                        Value::Null,
                    );
                }
            },
            None => bytes.to_vec(),
        }
    } else {
        let (kind, detail) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this resource does not accept that method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the request body is over the size limit",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send JSON with Content-Type: application/json",
            ),
            StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
            s if s.is_client_error() => {
                ("malformed_request", "the request could not be understood")
            }
            _ => (
                "internal",
                "something went wrong on our side; the request may be retried",
            ),
        };
        let mut problem = json!({ "type": kind, "title": title_of(kind), "status": status.as_u16(), "detail": detail });
        if let (Some(object), Some(id)) = (problem.as_object_mut(), request_id) {
            object.insert("request_id".into(), Value::String(id));
        }
        problem.to_string().into_bytes()
    };
    // The answer keeps its status and headers (rate-limit figures, Retry-After, …) with the
    // new body.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, axum::body::Body::from(document))
}

#[cfg(test)]
mod stamp_tests {
    use super::{problem_response, with_request_id};
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    async fn document(extra: Value) -> Value {
        let response = problem_response(
            StatusCode::CONFLICT,
            "seat_unavailable",
            "taken \"A1\"",
            extra,
        );
        assert_eq!(response.headers()["content-type"], super::PROBLEM_JSON);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&body).expect("one JSON document")
    }

    #[tokio::test]
    async fn a_problem_has_its_members_and_any_extra_ones() {
        let plain = document(Value::Null).await;
        assert_eq!(
            plain,
            json!({"type": "seat_unavailable", "title": "Seats or places are not available",
                   "status": 409, "detail": "taken \"A1\""})
        );
        assert_eq!(document(json!({})).await, plain);
        let extra = document(json!({"seat_ids": ["seat_1"], "n": 2})).await;
        assert_eq!(extra["seat_ids"], json!(["seat_1"]));
        assert_eq!(extra["n"], 2);
        assert_eq!(extra["detail"], plain["detail"]);
    }

    #[test]
    fn the_request_id_is_added_as_a_json_member() {
        let stamped = with_request_id(br#"{"type":"not_found","status":404}"#, "abc\"1").unwrap();
        let value: serde_json::Value = serde_json::from_slice(&stamped).unwrap();
        assert_eq!(value["request_id"], "abc\"1");
        assert_eq!(value["status"], 404);
        let empty = with_request_id(b"{}", "x").unwrap();
        assert_eq!(empty, br#"{"request_id":"x"}"#);
        assert!(with_request_id(b"[1]", "x").is_none());
    }
}
