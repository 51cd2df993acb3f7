//! Paying for a hold with a payment intent. The provider is behind [`PaymentProvider`] (the
//! built-in [`SimulatedProvider`] behaves like a real one: test cards decide, some outcomes
//! arrive later by signed webhook), so a real provider can be added without touching booking.
//!
//! The rules: a booking exists only for a succeeded payment (marked in the booking's own
//! transaction); while the provider is deciding, the hold is kept alive, within a bound; a
//! success that arrives after the hold died is refunded at once, never kept.

use crate::error::{ApiError, ApiResult};
use crate::live::Change;
use crate::state::AppState;
use async_trait::async_trait;
use axum::http::HeaderMap;
use boxoffice_core::ids::{BookingId, HoldId, PaymentId, UserId};
use boxoffice_core::payment::{self, FirstAnswer, PaymentState};
use boxoffice_core::{Clock, DomainError, Money, Timestamp};
use boxoffice_store::{ConfirmHold, Outcome, Payment};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A charge the provider is asked to make.
pub struct ChargeRequest<'a> {
    pub payment_id: &'a PaymentId,
    pub amount: &'a Money,
    pub card_digits: &'a str,
}

/// The provider's first answer to a charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderAnswer {
    Succeeded {
        reference: String,
    },
    Declined {
        reference: String,
        reason: String,
    },
    /// The customer must pass a check first; the outcome then arrives by webhook.
    RequiresAction {
        reference: String,
    },
    /// Decided later; the outcome arrives by webhook.
    Processing {
        reference: String,
    },
}

/// An outcome the provider reported by webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderEvent {
    /// The provider's event id: a replay of the same event changes nothing.
    pub id: String,
    pub reference: String,
    pub succeeded: bool,
    pub reason: Option<String>,
}

#[async_trait]
pub trait PaymentProvider: Send + Sync {
    async fn charge(&self, request: ChargeRequest<'_>) -> Result<ProviderAnswer, ApiError>;
    /// The customer passed the check (3-D Secure) for `reference`.
    async fn complete_action(&self, reference: &str) -> Result<(), ApiError>;
    async fn refund(&self, reference: &str, amount: &Money) -> Result<(), ApiError>;
    /// Checks a webhook's signature and freshness, and reads its event.
    fn read_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: Timestamp,
    ) -> Result<ProviderEvent, DomainError>;
}

/// How old a provider webhook may be: older ones are refused as replays.
pub const WEBHOOK_TOLERANCE_S: i64 = 300;

/// A provider in process that behaves like a real one in test mode: the card number decides,
/// and later outcomes are POSTed, signed, to this server's `/api/v1/payments/webhook`.
pub struct SimulatedProvider {
    secret: String,
    clock: Arc<dyn Clock>,
    /// Where this server listens, once it does.
    own_url: Arc<OnceLock<String>>,
    delay: Duration,
    /// Charges waiting for the customer's check, and whether they will then succeed.
    waiting: Mutex<HashMap<String, bool>>,
    http: reqwest::Client,
}

impl SimulatedProvider {
    pub fn new(
        secret: String,
        clock: Arc<dyn Clock>,
        own_url: Arc<OnceLock<String>>,
        delay: Duration,
    ) -> Self {
        Self {
            secret,
            clock,
            own_url,
            delay,
            waiting: Mutex::new(HashMap::new()),
            http: reqwest::Client::new(),
        }
    }

    /// Reports the outcome of `reference` after the delay, retrying until this server takes it.
    fn report_later(&self, reference: String, succeeds: bool) {
        let (secret, clock, url, delay, http) = (
            self.secret.clone(),
            self.clock.clone(),
            self.own_url.clone(),
            self.delay,
            self.http.clone(),
        );
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let body = serde_json::json!({
                "id": format!("evt_sim_{}", uuid::Uuid::now_v7().simple()),
                "type": if succeeds { "payment.succeeded" } else { "payment.failed" },
                "reference": reference,
                "reason": if succeeds { None } else { Some("the issuer refused the payment") },
            })
            .to_string();
            for attempt in 0..8u32 {
                let Some(base) = url.get() else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let signature = crate::dispatch::sign(&secret, clock.now().unix_ms() / 1000, &body);
                let sent = http
                    .post(format!("{base}/api/v1/payments/webhook"))
                    .header("content-type", "application/json")
                    .header(crate::dispatch::SIGNATURE_HEADER, signature)
                    .body(body.clone())
                    .send()
                    .await;
                if sent.is_ok_and(|r| r.status().is_success()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
            }
            tracing::warn!(%reference, "the simulated provider gave up reporting an outcome");
        });
    }
}

#[async_trait]
impl PaymentProvider for SimulatedProvider {
    async fn charge(&self, request: ChargeRequest<'_>) -> Result<ProviderAnswer, ApiError> {
        let reference = format!("sim_{}", request.payment_id.as_str());
        Ok(match payment::simulated_answer(request.card_digits) {
            FirstAnswer::Succeeded => ProviderAnswer::Succeeded { reference },
            FirstAnswer::Declined => ProviderAnswer::Declined {
                reference,
                reason: "the card was declined by its issuer".into(),
            },
            FirstAnswer::RequiresAction => {
                self.waiting
                    .lock()
                    .expect("simulated provider")
                    .insert(reference.clone(), true);
                ProviderAnswer::RequiresAction { reference }
            }
            FirstAnswer::Processing { succeeds } => {
                self.report_later(reference.clone(), succeeds);
                ProviderAnswer::Processing { reference }
            }
        })
    }

    async fn complete_action(&self, reference: &str) -> Result<(), ApiError> {
        let waiting = self
            .waiting
            .lock()
            .expect("simulated provider")
            .remove(reference);
        match waiting {
            Some(succeeds) => {
                self.report_later(reference.to_owned(), succeeds);
                Ok(())
            }
            None => {
                Err(DomainError::Conflict("this payment is not waiting for a check".into()).into())
            }
        }
    }

    async fn refund(&self, _reference: &str, _amount: &Money) -> Result<(), ApiError> {
        Ok(())
    }

    fn read_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: Timestamp,
    ) -> Result<ProviderEvent, DomainError> {
        let signature = headers
            .get(crate::dispatch::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let text = std::str::from_utf8(body).unwrap_or("");
        if !crate::dispatch::verify(
            &self.secret,
            signature,
            text,
            now.unix_ms() / 1000,
            WEBHOOK_TOLERANCE_S,
        ) {
            return Err(DomainError::Forbidden(
                "the webhook signature is missing, wrong or too old",
            ));
        }
        let event: serde_json::Value =
            serde_json::from_str(text).map_err(|e| DomainError::invalid("body", e.to_string()))?;
        let field = |name: &str| {
            event[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| DomainError::invalid(name, "missing"))
        };
        let kind = field("type")?;
        if kind != "payment.succeeded" && kind != "payment.failed" {
            return Err(DomainError::invalid("type", "unknown event type"));
        }
        Ok(ProviderEvent {
            id: field("id")?,
            reference: field("reference")?,
            succeeded: kind == "payment.succeeded",
            reason: event["reason"].as_str().map(str::to_owned),
        })
    }
}

/// What paying for a hold came to.
pub enum Paid {
    Booked(Outcome<boxoffice_core::booking::Booking>),
    /// Not decided yet: the payment as it stands.
    Pending(Payment),
}

/// How the customer pays for a hold.
pub enum HowToPay {
    /// All of it from the wallet.
    Wallet,
    /// By card, `wallet_minor` of it from the wallet.
    Card {
        card_number: String,
        wallet_minor: i64,
    },
}

/// Pays for `hold_id`: from the wallet (booked at once, or refused when it is short), or by card
/// (booked at once when the provider says yes, the hold kept alive while it decides, and why
/// not when it declines).
pub async fn pay(
    app: &AppState,
    user: &UserId,
    hold_id: HoldId,
    how: HowToPay,
    key: Option<&boxoffice_store::IdempotencyKey>,
) -> ApiResult<Paid> {
    let (card_number, wallet_minor) = match how {
        HowToPay::Wallet => return pay_from_wallet(app, user, hold_id, key).await,
        HowToPay::Card {
            card_number,
            wallet_minor,
        } => (card_number, wallet_minor),
    };
    // A retry of a payment already under way answers with it rather than charging again.
    if let Some(key) = key
        && let Some(existing) = app.store.payment_by_key(user, &key.key).await?
    {
        return answer_for(existing);
    }
    let now = app.clock.now();
    let (hold, being_decided) = app
        .store
        .hold_to_pay(&hold_id)
        .await?
        .ok_or(DomainError::NotFound("hold"))?;
    // Check the hold before charging, so a dead hold is never paid for.
    hold.check_confirmable(user, now)?;
    let digits = payment::card_digits(&card_number)?;
    if !(0..hold.total.amount_minor).contains(&wallet_minor) {
        return Err(DomainError::invalid(
            "payment.wallet_minor",
            "must be 0 or more and less than the total (pay it all with method wallet)",
        )
        .into());
    }
    // A first look before charging the card; the booking's transaction decides under the
    // wallet's lock.
    if wallet_minor > 0 {
        let (balance, _) = app
            .store
            .wallet(user, hold.total.currency.as_str(), 0)
            .await?;
        if balance < wallet_minor {
            return Err(
                DomainError::PaymentDeclined("there is not enough in your wallet".into()).into(),
            );
        }
    }
    let card_minor = hold.total.amount_minor - wallet_minor;
    let card_amount = Money::new(card_minor, hold.total.currency.clone());
    if let Some(open) = being_decided {
        return Err(DomainError::Conflict(format!(
            "payment {open} for this hold is still being decided"
        ))
        .into());
    }
    let payment_id = PaymentId::generate();
    let answer = app
        .payments
        .charge(ChargeRequest {
            payment_id: &payment_id,
            amount: &card_amount,
            card_digits: &digits,
        })
        .await?;
    let (state, reference, reason) = match &answer {
        ProviderAnswer::Succeeded { reference } => (PaymentState::Processing, reference, None),
        ProviderAnswer::Declined { reference, reason } => {
            (PaymentState::Failed, reference, Some(reason.clone()))
        }
        ProviderAnswer::RequiresAction { reference } => {
            (PaymentState::RequiresAction, reference, None)
        }
        ProviderAnswer::Processing { reference } => (PaymentState::Processing, reference, None),
    };
    let record = Payment {
        id: payment_id.clone(),
        hold_id: hold_id.clone(),
        user_id: user.clone(),
        show_id: hold.show_id.clone(),
        amount: card_amount.clone(),
        wallet_minor,
        method: "card".into(),
        card_last4: digits[digits.len() - 4..].to_owned(),
        state,
        provider_reference: reference.clone(),
        booking_id: None,
        failure_reason: reason.clone(),
        idempotency_key: key.map(|k| k.key.clone()),
        created_at: now,
        updated_at: now,
    };
    if let ProviderAnswer::Succeeded { .. } = answer {
        return Ok(Paid::Booked(book_paid(app, record, key).await?));
    }
    app.store.insert_payment(&record).await?;
    match answer {
        ProviderAnswer::Succeeded { .. } => unreachable!("booked above"),
        ProviderAnswer::Declined { reason, .. } => Err(DomainError::PaymentDeclined(reason).into()),
        ProviderAnswer::RequiresAction { .. } => Ok(Paid::Pending(record)),
        ProviderAnswer::Processing { .. } => {
            keep_alive(app, &record).await?;
            Ok(Paid::Pending(record))
        }
    }
}

/// All of it from the wallet, in the booking's own transaction (so two spends cannot overdraw).
async fn pay_from_wallet(
    app: &AppState,
    user: &UserId,
    hold_id: HoldId,
    key: Option<&boxoffice_store::IdempotencyKey>,
) -> ApiResult<Paid> {
    let now = app.clock.now();
    let hold = app
        .store
        .hold(&hold_id)
        .await?
        .ok_or(DomainError::NotFound("hold"))?;
    hold.check_confirmable(user, now)?;
    let signer = ticket_key(app, &hold.show_id).await?;
    let sign: boxoffice_store::TicketSigner =
        std::sync::Arc::new(move |claims| boxoffice_core::ticket::sign(claims, &signer));
    let cmd = ConfirmHold {
        scratch_draw: scratch_draw(app),
        booking_id: BookingId::generate(),
        hold_id,
        show_id: hold.show_id.clone(),
        user_id: user.clone(),
        payment_reference: "wallet".into(),
        payment_id: None,
        new_payment: None,
        wallet_minor: hold.total.amount_minor,
        now,
        sign_ticket: sign,
    };
    let outcome = app.store.confirm_hold(cmd, key).await?;
    announce_sold(app, &outcome).await;
    Ok(Paid::Booked(outcome))
}

/// The key that signs the tickets of the show's organizer.
async fn ticket_key(
    app: &AppState,
    show: &boxoffice_core::ids::ShowId,
) -> ApiResult<ed25519_dalek::SigningKey> {
    Ok(app
        .tickets
        .of_show(&*app.store, show)
        .await?
        .ok_or(DomainError::NotFound("show"))?)
}

/// Where this booking's scratch card (if it earns one) is drawn.
fn scratch_draw(app: &AppState) -> f64 {
    app.config
        .fixed_scratch_draw
        .unwrap_or_else(rand::random::<f64>)
}

async fn announce_sold(app: &AppState, outcome: &Outcome<boxoffice_core::booking::Booking>) {
    if let Outcome::Done(booking) = outcome {
        crate::metrics::booking_confirmed();
        let seat_ids = booking
            .tickets
            .iter()
            .filter_map(|t| t.seat_id.clone())
            .collect();
        app.announce_event(
            &booking.show_id,
            Change::SeatSold { seat_ids },
            boxoffice_core::outbox::EventKind::BookingConfirmed,
            booking.id.as_str(),
        )
        .await;
    }
}

fn answer_for(existing: Payment) -> ApiResult<Paid> {
    match existing.state {
        PaymentState::Failed => Err(DomainError::PaymentDeclined(
            existing
                .failure_reason
                .unwrap_or_else(|| "the payment failed".into()),
        )
        .into()),
        _ => Ok(Paid::Pending(existing)),
    }
}

/// Keeps the payment's hold alive while the provider decides: 15 minutes from now at most.
async fn keep_alive(app: &AppState, payment: &Payment) -> ApiResult<()> {
    let now = app.clock.now();
    let until = now.plus_minutes(payment::MAX_HOLD_EXTENSION_MINUTES);
    app.store.extend_hold(&payment.hold_id, now, until).await?;
    Ok(())
}

/// Books the hold of a payment that succeeded at once, recording the payment with the booking in
/// one transaction; when the hold is gone meanwhile, the payment is recorded and refunded.
async fn book_paid(
    app: &AppState,
    payment: Payment,
    key: Option<&boxoffice_store::IdempotencyKey>,
) -> ApiResult<Outcome<boxoffice_core::booking::Booking>> {
    let signer = ticket_key(app, &payment.show_id).await?;
    let sign: boxoffice_store::TicketSigner =
        std::sync::Arc::new(move |claims| boxoffice_core::ticket::sign(claims, &signer));
    let cmd = ConfirmHold {
        scratch_draw: scratch_draw(app),
        booking_id: BookingId::generate(),
        hold_id: payment.hold_id.clone(),
        show_id: payment.show_id.clone(),
        user_id: payment.user_id.clone(),
        payment_reference: reference_of(&payment),
        payment_id: None,
        new_payment: Some(payment.clone()),
        wallet_minor: payment.wallet_minor,
        now: app.clock.now(),
        sign_ticket: sign,
    };
    match app.store.confirm_hold(cmd, key).await {
        Ok(outcome) => {
            announce_sold(app, &outcome).await;
            Ok(outcome)
        }
        Err(error) => {
            let error = ApiError::from(error);
            if unbookable(&error) {
                app.store.insert_payment(&payment).await?;
                refund_unbookable(app, &payment).await?;
            }
            Err(error)
        }
    }
}

/// The seats are gone (or went to another payment, or the wallet's share is not there): the
/// money goes back.
fn unbookable(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::Domain(
            DomainError::HoldExpired
                | DomainError::NotOnSale(_)
                | DomainError::HoldAlreadyBooked
                | DomainError::PaymentDeclined(_)
        )
    )
}

fn reference_of(payment: &Payment) -> String {
    if payment.wallet_minor > 0 {
        format!("wallet and card ending {}", payment.card_last4)
    } else {
        format!("card ending {}", payment.card_last4)
    }
}

/// Books the hold of a succeeded payment, marking the payment in the same transaction; when the
/// hold is gone, the money goes back.
async fn book(
    app: &AppState,
    payment: &Payment,
    key: Option<&boxoffice_store::IdempotencyKey>,
) -> ApiResult<Outcome<boxoffice_core::booking::Booking>> {
    let signer = ticket_key(app, &payment.show_id).await?;
    let sign: boxoffice_store::TicketSigner =
        std::sync::Arc::new(move |claims| boxoffice_core::ticket::sign(claims, &signer));
    let cmd = ConfirmHold {
        scratch_draw: scratch_draw(app),
        booking_id: BookingId::generate(),
        hold_id: payment.hold_id.clone(),
        show_id: payment.show_id.clone(),
        user_id: payment.user_id.clone(),
        payment_reference: reference_of(payment),
        payment_id: Some(payment.id.clone()),
        new_payment: None,
        wallet_minor: payment.wallet_minor,
        now: app.clock.now(),
        sign_ticket: sign,
    };
    match app.store.confirm_hold(cmd, key).await {
        Ok(outcome) => {
            announce_sold(app, &outcome).await;
            Ok(outcome)
        }
        Err(error) => {
            let error = ApiError::from(error);
            // The move to `succeeded` is conditional, so a payment this very booking already
            // settled is never refunded by a duplicate outcome.
            if unbookable(&error) {
                refund_unbookable(app, payment).await?;
            }
            Err(error)
        }
    }
}

/// The money of a payment whose seats are gone goes back at once.
async fn refund_unbookable(app: &AppState, payment: &Payment) -> ApiResult<()> {
    let now = app.clock.now();
    let succeeded = app
        .store
        .move_payment(
            &payment.id,
            &[PaymentState::RequiresAction, PaymentState::Processing],
            PaymentState::Succeeded,
            None,
            now,
        )
        .await?;
    if succeeded.is_some() {
        app.payments
            .refund(&payment.provider_reference, &payment.amount)
            .await?;
        app.store
            .move_payment(
                &payment.id,
                &[PaymentState::Succeeded],
                PaymentState::Refunded,
                Some("the hold had ended before the payment succeeded; refunded in full"),
                app.clock.now(),
            )
            .await?;
        tracing::info!(payment = %payment.id, "a late payment success was refunded");
    }
    Ok(())
}

/// The customer passed the provider's check: the outcome follows by webhook, and the hold is
/// kept alive meanwhile.
pub async fn complete_action(app: &AppState, payment: &Payment) -> ApiResult<Payment> {
    if payment.state != PaymentState::RequiresAction {
        return Err(DomainError::Conflict(format!(
            "the payment is {}, not waiting for a check",
            payment.state.as_str()
        ))
        .into());
    }
    app.payments
        .complete_action(&payment.provider_reference)
        .await?;
    let moved = app
        .store
        .move_payment(
            &payment.id,
            &[PaymentState::RequiresAction],
            PaymentState::Processing,
            None,
            app.clock.now(),
        )
        .await?
        .ok_or_else(|| DomainError::Conflict("the payment changed meanwhile".into()))?;
    keep_alive(app, &moved).await?;
    Ok(moved)
}

/// Acts on a provider's webhook once: books (or refunds) on success, records a failure.
/// Returns `false` for an event already acted on.
pub async fn on_provider_event(app: &AppState, event: ProviderEvent) -> ApiResult<bool> {
    if app.store.provider_event_seen(&event.id).await? {
        return Ok(false);
    }
    let payment = app
        .store
        .payment_by_reference(&event.reference)
        .await?
        .ok_or(DomainError::NotFound("payment"))?;
    if event.succeeded {
        if matches!(
            payment.state,
            PaymentState::RequiresAction | PaymentState::Processing
        ) {
            match book(app, &payment, None).await {
                Ok(_) => {}
                Err(ApiError::Domain(
                    DomainError::HoldExpired
                    | DomainError::NotOnSale(_)
                    | DomainError::HoldAlreadyBooked
                    | DomainError::PaymentDeclined(_),
                )) => {}
                Err(other) => return Err(other),
            }
        }
    } else {
        app.store
            .move_payment(
                &payment.id,
                &[PaymentState::RequiresAction, PaymentState::Processing],
                PaymentState::Failed,
                Some(event.reason.as_deref().unwrap_or("the payment failed")),
                app.clock.now(),
            )
            .await?;
    }
    // Recorded after acting: a crash in between means the provider's retry acts again, and
    // every step above is conditional, so acting twice changes nothing.
    app.store
        .first_provider_event(&event.id, app.clock.now())
        .await?;
    Ok(true)
}
