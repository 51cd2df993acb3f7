//! The ways a domain decision can say no. Each variant maps to one stable problem `type` at the
//! HTTP edge; the store adds only "the database failed" on top of these.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Dotted path of the offending field, e.g. `sections.0.rows.2.seats`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("some of the requested seats are not available")]
    SeatUnavailable { seat_ids: Vec<String> },
    #[error("not enough places are left in {area}: {available} available, {requested} requested")]
    CapacityUnavailable {
        area: String,
        available: i64,
        requested: i64,
    },
    #[error("{0}")]
    LimitExceeded(String),
    #[error("the hold has expired")]
    HoldExpired,
    #[error("the hold was already turned into a booking")]
    HoldAlreadyBooked,
    #[error("{0}")]
    NotOnSale(String),
    #[error("{0}")]
    NotCancellable(String),
    #[error("the payment was declined: {0}")]
    PaymentDeclined(String),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("{0}")]
    Conflict(String),
    #[error("the schedule clashes with other shows at this venue")]
    ScheduleConflict(Vec<crate::schedule::Conflict>),
    /// Asked too often; the same request may succeed after `retry_after_seconds`.
    #[error("{reason}")]
    Throttled {
        reason: String,
        retry_after_seconds: i64,
    },
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}

/// Collects field errors while parsing a request, so the caller hears about all of them at once.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn check(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.add(field, message);
        }
    }

    pub fn finish<T>(self, value: T) -> Result<T, DomainError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(DomainError::Validation(self.0))
        }
    }
}
