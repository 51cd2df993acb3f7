//! What Boxoffice tells the outside world, and the rules for telling it: the kinds of domain
//! event written to the outbox with the change they describe, the webhook endpoints organizers
//! register for them, and how often a failing delivery is tried again.

use crate::error::{DomainError, Problems};
use serde::{Deserialize, Serialize};

/// A kind of domain event, as receivers see it in `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    #[serde(rename = "booking.confirmed")]
    BookingConfirmed,
    #[serde(rename = "booking.cancelled")]
    BookingCancelled,
    #[serde(rename = "booking.refunded")]
    BookingRefunded,
    #[serde(rename = "hold.expired")]
    HoldExpired,
    #[serde(rename = "show.changed")]
    ShowChanged,
    #[serde(rename = "show.cancelled")]
    ShowCancelled,
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded,
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    #[serde(rename = "payment.refunded")]
    PaymentRefunded,
    #[serde(rename = "waitlist.offered")]
    WaitlistOffered,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::BookingConfirmed,
        EventKind::BookingCancelled,
        EventKind::BookingRefunded,
        EventKind::HoldExpired,
        EventKind::ShowChanged,
        EventKind::ShowCancelled,
        EventKind::PaymentSucceeded,
        EventKind::PaymentFailed,
        EventKind::PaymentRefunded,
        EventKind::WaitlistOffered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::BookingConfirmed => "booking.confirmed",
            EventKind::BookingCancelled => "booking.cancelled",
            EventKind::BookingRefunded => "booking.refunded",
            EventKind::HoldExpired => "hold.expired",
            EventKind::ShowChanged => "show.changed",
            EventKind::ShowCancelled => "show.cancelled",
            EventKind::PaymentSucceeded => "payment.succeeded",
            EventKind::PaymentFailed => "payment.failed",
            EventKind::PaymentRefunded => "payment.refunded",
            EventKind::WaitlistOffered => "waitlist.offered",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// A delivery is tried for this long after its event, then given up (and can be replayed).
pub const DELIVERY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// The first retry waits this long; each further one twice as long, up to [`MAX_RETRY_DELAY_MS`].
pub const FIRST_RETRY_DELAY_MS: i64 = 5_000;
pub const MAX_RETRY_DELAY_MS: i64 = 60 * 60 * 1000;

/// How long to wait before attempt `attempts + 1`, after `attempts` failed ones: exponential
/// backoff with "equal jitter" (half fixed, half random, from `unit` in `[0, 1)`), so receivers
/// coming back from an outage are not hit by every sender at the same instant.
pub fn retry_delay_ms(attempts: u32, unit: f64) -> i64 {
    let doublings = attempts.saturating_sub(1).min(20);
    let ceiling = (FIRST_RETRY_DELAY_MS << doublings).min(MAX_RETRY_DELAY_MS);
    let half = ceiling / 2;
    half + (half as f64 * unit.clamp(0.0, 1.0)) as i64
}

/// Whether a delivery that has failed so far is still worth trying at `now`.
pub fn still_trying(event_created_at_ms: i64, now_ms: i64) -> bool {
    now_ms - event_created_at_ms < DELIVERY_WINDOW_MS
}

/// A webhook endpoint as an organizer registers it.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where events are POSTed: `https://…` (or `http://…`, for a receiver on your own network).
    pub url: String,
    /// Kinds to receive (`booking.confirmed`, …); all kinds when empty.
    #[serde(default)]
    pub event_types: Vec<String>,
}

/// The most endpoints one organizer may register.
pub const MAX_WEBHOOKS_PER_ORGANIZER: usize = 20;

impl WebhookInput {
    /// The endpoint's address and the kinds it wants, or every problem with them.
    pub fn parse(self) -> Result<(String, Vec<EventKind>), DomainError> {
        let mut problems = Problems::default();
        let url = self.url.trim().to_owned();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
        problems.check(
            host.is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace))
                && url.len() <= 2_000,
            "url",
            "must be an http:// or https:// address with a host, at most 2,000 characters",
        );
        let mut kinds = Vec::new();
        for (index, raw) in self.event_types.iter().enumerate() {
            match EventKind::parse(raw) {
                Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
                Some(_) => {}
                None => problems.add(
                    format!("event_types.{index}"),
                    format!(
                        "unknown event type; known: {}",
                        EventKind::ALL.map(|k| k.as_str()).join(", ")
                    ),
                ),
            }
        }
        if kinds.is_empty() {
            kinds = EventKind::ALL.to_vec();
        }
        problems.finish((url, kinds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_within_bounds() {
        assert_eq!(retry_delay_ms(1, 0.0), 2_500);
        assert_eq!(retry_delay_ms(1, 0.999_999), 4_999);
        assert_eq!(retry_delay_ms(2, 0.0), 5_000);
        assert_eq!(retry_delay_ms(4, 0.5), 30_000);
        // Capped at an hour, however many attempts failed.
        assert_eq!(retry_delay_ms(30, 0.0), MAX_RETRY_DELAY_MS / 2);
        assert!(retry_delay_ms(30, 1.0) <= MAX_RETRY_DELAY_MS);
        assert!(still_trying(0, DELIVERY_WINDOW_MS - 1));
        assert!(!still_trying(0, DELIVERY_WINDOW_MS));
    }

    #[test]
    fn endpoints_need_a_web_address_and_known_kinds() {
        let parsed = WebhookInput {
            url: " https://example.com/hooks ".into(),
            event_types: vec!["booking.confirmed".into(), "booking.confirmed".into()],
        }
        .parse()
        .unwrap();
        assert_eq!(
            parsed,
            (
                "https://example.com/hooks".into(),
                vec![EventKind::BookingConfirmed]
            )
        );
        let all = WebhookInput {
            url: "http://10.0.0.1:9000".into(),
            event_types: vec![],
        }
        .parse()
        .unwrap();
        assert_eq!(all.1.len(), EventKind::ALL.len());
        for url in [
            "ftp://example.com",
            "https://",
            "example.com",
            "https:// spaced",
        ] {
            let refused = WebhookInput {
                url: url.into(),
                event_types: vec!["nope".into()],
            }
            .parse()
            .unwrap_err();
            let DomainError::Validation(problems) = refused else {
                panic!("{url}: not a validation error")
            };
            assert_eq!(problems.len(), 2, "{url}");
        }
    }
}
