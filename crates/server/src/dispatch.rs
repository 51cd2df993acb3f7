//! The outbox dispatcher: turns the domain events that the store wrote with their changes into
//! webhook deliveries, sends them signed, retries failures with backoff for a day, and publishes
//! every event to a Redis stream per organizer when there is Redis; makes sure every seat change
//! reached the live layer.
//!
//! At least once, never lost: a delivery is leased while it is tried, so a dispatcher that dies
//! mid-delivery (or is stopped) leaves the lease to lapse and another dispatcher, on any
//! instance, tries again. Receivers drop repeats by the event id.

use crate::state::AppState;
use boxoffice_core::Timestamp;
use boxoffice_core::ids::{MessageId, ShowId};
use boxoffice_core::outbox::{EventKind, retry_delay_ms, still_trying};
use boxoffice_store::{Attempt, Channel, DueDelivery, StoreError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the endpoint's secret>`.
pub const SIGNATURE_HEADER: &str = "boxoffice-signature";
pub const EVENT_ID_HEADER: &str = "boxoffice-event-id";
pub const EVENT_TYPE_HEADER: &str = "boxoffice-event-type";
/// How long a dispatcher owns a delivery it is trying.
pub const LEASE_MS: i64 = 30_000;
/// Deliveries claimed per round; they are sent concurrently.
const BATCH: i64 = 32;
/// Events handled per round by the fan-out and the stream.
const EVENT_BATCH: i64 = 256;
/// Events kept per organizer stream (trimmed approximately).
const STREAM_LENGTH: &str = "100000";
pub const STREAM_PREFIX: &str = "bo:events:";

/// The signature header for `body` sent at `timestamp_s`.
pub fn sign(secret: &str, timestamp_s: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp_s},v1={hex}")
}

/// Whether `header` signs `body` under `secret` and is at most `tolerance_s` old at `now_s`
/// (so a captured request cannot be replayed later). Compares in constant time.
pub fn verify(secret: &str, header: &str, body: &str, now_s: i64, tolerance_s: i64) -> bool {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return false;
    };
    if (now_s - timestamp).abs() > tolerance_s {
        return false;
    }
    let Some(given) = decode_hex(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.verify_slice(&given).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

pub async fn run(app: AppState, mut stop: watch::Receiver<bool>) {
    let http = match reqwest::Client::builder()
        .timeout(app.config.webhook_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Boxoffice-Webhooks/1")
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "no HTTP client for webhooks; deliveries wait");
            return;
        }
    };
    let mut unannounced = Unannounced::default();
    let mut tick = tokio::time::interval(app.config.dispatch_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        // Stopping drops a round mid-flight: its leased deliveries lapse and are tried again,
        // exactly as if the process had died.
        tokio::select! {
            outcome = round(&app, &http, &mut unannounced) => {
                if let Err(error) = outcome {
                    tracing::warn!(%error, "dispatch round failed; retrying next round");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

async fn round(
    app: &AppState,
    http: &reqwest::Client,
    unannounced: &mut Unannounced,
) -> Result<(), StoreError> {
    while app.store.fan_out(app.clock.now(), EVENT_BATCH).await? as i64 == EVENT_BATCH {}
    if app.redis.is_some() {
        stream(app).await?;
    }
    announce(app, unannounced).await?;
    refund_cards(app).await?;
    app.mailer.round(app).await?;
    loop {
        let due = app
            .store
            .claim_deliveries(app.clock.now(), LEASE_MS, BATCH)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let mut sending = tokio::task::JoinSet::new();
        for delivery in due {
            let (app, http) = (app.clone(), http.clone());
            sending.spawn(async move { deliver(&app, &http, delivery).await });
        }
        while let Some(done) = sending.join_next().await {
            if let Ok(Err(error)) = done {
                tracing::warn!(%error, "a delivery could not be recorded; its lease will lapse");
            }
        }
    }
}

async fn deliver(
    app: &AppState,
    http: &reqwest::Client,
    delivery: DueDelivery,
) -> Result<(), StoreError> {
    let now = app.clock.now();
    let signature = sign(&delivery.secret, unix_seconds(now), &delivery.body);
    let started = Instant::now();
    let sent = http
        .post(&delivery.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_ID_HEADER, delivery.message_id.as_str())
        .header(EVENT_TYPE_HEADER, delivery.kind.as_str())
        .header(SIGNATURE_HEADER, signature)
        .body(delivery.body.clone())
        .send()
        .await;
    let duration_ms = started.elapsed().as_millis() as i64;
    let attempt = match sent {
        Ok(response) => Attempt {
            status: Some(response.status().as_u16()),
            error: None,
            duration_ms,
        },
        Err(error) => Attempt {
            status: None,
            error: Some(describe(&error)),
            duration_ms,
        },
    };
    let retry_at = if attempt.succeeded() {
        None
    } else {
        let attempts = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
        let next = now.plus_ms(retry_delay_ms(attempts, rand::random::<f64>()));
        still_trying(delivery.message_created_at.unix_ms(), next.unix_ms()).then_some(next)
    };
    crate::metrics::webhook_attempt(attempt.succeeded());
    app.store
        .record_attempt(&delivery.id, &attempt, app.clock.now(), retry_at)
        .await
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

/// What the dispatcher of this process has seen of seat changes not yet ticked off.
#[derive(Default)]
pub struct Unannounced {
    first_seen: HashMap<MessageId, Instant>,
}

/// A seat change not ticked off this long after the dispatcher first saw it was never told to
/// viewers: the instance that committed it stopped first (or could not reach Redis).
fn orphaned_after(app: &AppState) -> Duration {
    (app.config.dispatch_interval * 10).max(Duration::from_secs(2))
}

/// Brings every outbox event to the show's viewers, everywhere, through the live layer: show
/// changes and cancellations are told here; seat changes were told at once by the instance that
/// committed them, which ticks them off, and those never ticked off get the show a `resync`
/// (viewers are sent a fresh snapshot: the event's own change may be stale by now).
async fn announce(app: &AppState, unannounced: &mut Unannounced) -> Result<(), StoreError> {
    let told = std::mem::take(&mut *app.live_receipts.lock().expect("receipts lock"));
    app.store.mark_told(&told, app.clock.now()).await?;
    let messages = app.store.unsent(Channel::Live, EVENT_BATCH).await?;
    let mut done = Vec::with_capacity(messages.len());
    let mut resync = BTreeSet::new();
    let patience = orphaned_after(app);
    for message in &messages {
        let show = match message.kind {
            EventKind::ShowChanged | EventKind::ShowCancelled => {
                let change = if message.kind == EventKind::ShowChanged {
                    crate::live::Change::ShowChanged
                } else {
                    crate::live::Change::ShowCancelled
                };
                if let Some(show) = ShowId::parse(&message.subject) {
                    app.announce(&show, change).await;
                }
                done.push(message.id.clone());
                continue;
            }
            EventKind::BookingConfirmed | EventKind::BookingCancelled | EventKind::HoldExpired => {
                seat_change_show(message)
            }
            _ => None,
        };
        let Some(show) = show else {
            done.push(message.id.clone());
            continue;
        };
        let seen = *unannounced
            .first_seen
            .entry(message.id.clone())
            .or_insert_with(Instant::now);
        if seen.elapsed() >= patience {
            resync.insert(show);
            done.push(message.id.clone());
        }
    }
    for show in resync {
        tracing::warn!(%show, "seat changes were never told to viewers; resyncing them");
        crate::metrics::live_resync();
        app.announce(&show, crate::live::Change::Resync).await;
    }
    for id in &done {
        unannounced.first_seen.remove(id);
    }
    unannounced
        .first_seen
        .retain(|_, seen| seen.elapsed() < patience * 10);
    app.store
        .mark_sent(Channel::Live, &done, app.clock.now())
        .await
}

/// The show whose seat map the event changed, if viewers are told of it after its commit (a
/// booking cancelled with its show is told by the show's cancellation).
fn seat_change_show(message: &boxoffice_store::Message) -> Option<ShowId> {
    let body: serde_json::Value = serde_json::from_str(&message.body).ok()?;
    let data = &body["data"];
    if data["reason"] == "show_cancelled" {
        return None;
    }
    let show = data["show_id"]
        .as_str()
        .or_else(|| data["booking"]["show_id"].as_str())?;
    ShowId::parse(show)
}

/// Asks the payment provider to send the card's share of each refund back, once per refund
/// (a failure is tried again next round; the ledger already shows the money as owed to `cards`).
async fn refund_cards(app: &AppState) -> Result<(), StoreError> {
    let messages = app.store.unsent(Channel::CardRefunds, EVENT_BATCH).await?;
    let mut done = Vec::with_capacity(messages.len());
    for message in &messages {
        if Channel::CardRefunds.carries(message.kind) && refund_card(app, message).await.is_err() {
            break;
        }
        done.push(message.id.clone());
    }
    app.store
        .mark_sent(Channel::CardRefunds, &done, app.clock.now())
        .await
}

async fn refund_card(app: &AppState, message: &boxoffice_store::Message) -> Result<(), ()> {
    let body: serde_json::Value = serde_json::from_str(&message.body).map_err(|_| ())?;
    let data = &body["data"];
    let refunded = data["refunded_minor"].as_i64().unwrap_or(0);
    let from_wallet = data["wallet_minor"].as_i64().unwrap_or(0).min(refunded);
    let to_card = if data["refund_to"] == "card" {
        refunded - from_wallet
    } else {
        0
    };
    let Some(booking_id) = data["booking_id"]
        .as_str()
        .and_then(boxoffice_core::ids::BookingId::parse)
    else {
        return Ok(());
    };
    if to_card <= 0 {
        return Ok(());
    }
    let Ok(Some(booking)) = app.store.booking(&booking_id).await else {
        return Ok(());
    };
    let payments = app
        .store
        .payments_of_hold(&booking.hold_id)
        .await
        .map_err(|_| ())?;
    let Some(paid) = payments
        .into_iter()
        .find(|p| p.state == boxoffice_core::payment::PaymentState::Succeeded)
    else {
        return Ok(());
    };
    let amount = boxoffice_core::Money::new(to_card, paid.amount.currency.clone());
    if let Err(error) = app.payments.refund(&paid.provider_reference, &amount).await {
        tracing::warn!(%error, booking = %booking_id, "the card refund failed; trying again later");
        return Err(());
    }
    app.store
        .record_card_refund(&paid, to_card, &booking_id, app.clock.now())
        .await
        .map_err(|_| ())
}

/// Publishes new events to `bo:events:{organizer}` (fields `id`, `type`, `body`), then marks
/// them: a crash in between publishes some twice, which consumers drop by `id`.
async fn stream(app: &AppState) -> Result<(), StoreError> {
    static XADD: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(
            "return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[2], 'type', ARGV[3], 'body', ARGV[4])",
        )
    });
    let Some(redis) = &app.redis else {
        return Ok(());
    };
    let messages = app.store.unsent(Channel::Stream, EVENT_BATCH).await?;
    let mut published = Vec::with_capacity(messages.len());
    for message in &messages {
        let key = format!("{STREAM_PREFIX}{}", message.organizer_id);
        let added: Option<String> = redis
            .run(
                &XADD,
                &[&key],
                &[
                    STREAM_LENGTH,
                    message.id.as_str(),
                    message.kind.as_str(),
                    &message.body,
                ],
            )
            .await;
        if added.is_none() {
            // Redis is away: the rest waits for the next round.
            break;
        }
        published.push(message.id.clone());
    }
    app.store
        .mark_sent(Channel::Stream, &published, app.clock.now())
        .await
}

/// The unix time in seconds, for signatures checked against the same clock.
pub fn unix_seconds(at: Timestamp) -> i64 {
    at.unix_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_the_same_secret_body_and_recent_time() {
        let header = sign("whsec_1", 1_900_000_000, r#"{"id":"msg_1"}"#);
        assert!(header.starts_with("t=1900000000,v1="));
        assert!(verify(
            "whsec_1",
            &header,
            r#"{"id":"msg_1"}"#,
            1_900_000_010,
            300
        ));
        assert!(!verify(
            "whsec_2",
            &header,
            r#"{"id":"msg_1"}"#,
            1_900_000_010,
            300
        ));
        assert!(!verify(
            "whsec_1",
            &header,
            r#"{"id":"msg_2"}"#,
            1_900_000_010,
            300
        ));
        assert!(!verify(
            "whsec_1",
            &header,
            r#"{"id":"msg_1"}"#,
            1_900_001_000,
            300
        ));
        assert!(!verify("whsec_1", "t=1,v1=zz", "", 1, 300));
        assert!(!verify("whsec_1", "garbage", "", 1, 300));
    }
}
