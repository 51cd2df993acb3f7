//! Holds and bookings: the customer's side of a sale. Every mutating POST takes an
//! `Idempotency-Key`; the store records it in the transaction that makes the change.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{AdmissionToken, ApiJson, page_limit, path_id};
use crate::idempotency::{self, KeyHeader};
use crate::live::Change;
use crate::state::AppState;
use crate::waiting_room::WaitingRooms;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use boxoffice_core::DomainError;
use boxoffice_core::booking::Booking;
use boxoffice_core::hold::{Hold, HoldRequest};
use boxoffice_core::ids::{BookingId, HoldId, ShowId};
use boxoffice_store::{CreateHold, Outcome};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_hold))
        .routes(routes!(hold, release_hold))
        .routes(routes!(my_bookings, book))
        .routes(routes!(booking))
        .routes(routes!(cancel))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    show_id: String,
    #[serde(default)]
    seat_ids: Option<Vec<String>>,
    #[serde(default)]
    areas: Option<Vec<AreaBody>>,
    #[serde(default)]
    best_available: Option<BestBody>,
    /// The organizer's promo code (any case); the hold's total shows the discount.
    #[serde(default)]
    promo_code: Option<String>,
    /// Loyalty points to spend (100 points take 1.00 off); refused beyond what you have.
    #[serde(default)]
    redeem_points: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AreaBody {
    area_id: String,
    quantity: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BestBody {
    category: String,
    quantity: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BookBody {
    hold_id: String,
    payment: PaymentBody,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PaymentBody {
    /// `card`, or `wallet` to pay it all from the wallet.
    method: String,
    /// With `card`.
    #[serde(default)]
    card_number: Option<String>,
    /// With `card`: this much (minor units) from the wallet, the rest by card.
    #[serde(default)]
    wallet_minor: Option<i64>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    /// Where the card-paid part of the refund goes (`card`, the default, or `wallet`); what was
    /// paid from the wallet always goes back to it.
    #[serde(default)]
    refund_to: Option<boxoffice_core::ledger::RefundTo>,
}

#[utoipa::path(
    post,
    path = "/holds",
    tag = "orders",
    summary = "Hold seats or places, all or nothing",
    request_body = HoldBody,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first answer"),
        ("x-admission-token" = Option<String>, Header, description = "Required while the show's waiting room is on: the token the room gave when it was your turn"),
    ),
    responses((status = 201, description = "Success", body = Hold), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn create_hold(
    State(app): State<AppState>,
    Auth(actor): Auth,
    key: KeyHeader,
    AdmissionToken(admission): AdmissionToken,
    body: ApiJson<HoldBody>,
) -> ApiResult<Response> {
    let fingerprint = key.fingerprint_of("POST", "/api/v1/holds", &body);
    let body = body.value;
    let show_id =
        ShowId::parse(&body.show_id).ok_or(DomainError::invalid("show_id", "not a show id"))?;
    let promo_code = body.promo_code.filter(|c| !c.trim().is_empty());
    let redeem_points = body.redeem_points;
    if redeem_points < 0 {
        return Err(DomainError::invalid("redeem_points", "must not be negative").into());
    }
    let areas = body
        .areas
        .map(|areas| areas.into_iter().map(|a| (a.area_id, a.quantity)).collect());
    let request = HoldRequest::parse(
        body.seat_ids,
        areas,
        body.best_available.map(|b| (b.category, b.quantity)),
    )?;
    WaitingRooms::check_admission(&app, &show_id, &actor.user_id, admission.as_deref()).await?;
    let worker = app.clone();
    idempotency::run(
        &app,
        &actor.user_id.clone(),
        key,
        fingerprint,
        StatusCode::CREATED,
        |key| async move {
            let app = worker;
            let now = app.clock.now();
            // Refused in memory when this process just learned the seats are taken.
            if let Err(known) = app
                .filter
                .lock()
                .expect("filter lock")
                .check(&show_id, &request, now)
            {
                crate::metrics::hold_filtered(crate::error::kind_of(&known));
                return Err(known.into());
            }
            let cmd = CreateHold {
                hold_id: HoldId::generate(),
                show_id: show_id.clone(),
                user_id: actor.user_id.clone(),
                request: request.clone(),
                promo_code: promo_code.clone(),
                redeem_points,
                now,
            };
            let outcome = app.store.create_hold(cmd, key.as_ref()).await;
            match &outcome {
                Ok(Outcome::Done(_)) => crate::metrics::hold_created(),
                Err(boxoffice_store::StoreError::Domain(refused)) => {
                    crate::metrics::hold_refused(crate::error::kind_of(refused));
                    app.filter
                        .lock()
                        .expect("filter lock")
                        .learn_refusal(&show_id, &request, refused, now);
                }
                _ => {}
            }
            // The seats granted are learned from the announcement, as other instances learn them.
            if let Ok(Outcome::Done(hold)) = &outcome {
                app.announce(
                    &show_id,
                    Change::SeatHeld {
                        seat_ids: seats_of(&hold.items),
                    },
                )
                .await;
            }
            Ok(outcome?)
        },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/holds/{id}",
    tag = "orders",
    summary = "A hold of mine",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Hold), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn hold(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Hold>> {
    let id = path_id(&id, HoldId::parse, "hold")?;
    let hold = app
        .store
        .hold(&id)
        .await?
        .filter(|h| actor.may_access(&h.user_id));
    Ok(Json(
        hold.ok_or(DomainError::NotFound("hold"))?
            .as_of(app.clock.now()),
    ))
}

#[utoipa::path(
    delete,
    path = "/holds/{id}",
    tag = "orders",
    summary = "Release a hold",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Hold), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn release_hold(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Hold>> {
    let id = path_id(&id, HoldId::parse, "hold")?;
    let released = app
        .store
        .release_hold(&id, &actor.user_id, app.clock.now())
        .await?;
    let seat_ids = seats_of(&released.items);
    app.announce(&released.show_id, Change::SeatReleased { seat_ids })
        .await;
    app.places_came_back(&released.show_id);
    Ok(Json(released))
}

#[utoipa::path(
    post,
    path = "/bookings",
    tag = "orders",
    summary = "Pay for a hold and book it",
    request_body = BookBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first answer")),
    responses((status = 201, description = "Success", body = Booking), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn book(
    State(app): State<AppState>,
    Auth(actor): Auth,
    key: KeyHeader,
    body: ApiJson<BookBody>,
) -> ApiResult<Response> {
    let fingerprint = key.fingerprint_of("POST", "/api/v1/bookings", &body);
    let body = body.value;
    let hold_id =
        HoldId::parse(&body.hold_id).ok_or(DomainError::invalid("hold_id", "not a hold id"))?;
    let how = match (body.payment.method.as_str(), body.payment.card_number) {
        ("wallet", None) => crate::payments::HowToPay::Wallet,
        ("card", Some(card_number)) => crate::payments::HowToPay::Card {
            card_number,
            wallet_minor: body.payment.wallet_minor.unwrap_or(0),
        },
        ("card", None) => {
            return Err(DomainError::invalid("payment.card_number", "give the card number").into());
        }
        ("wallet", Some(_)) => {
            return Err(DomainError::invalid(
                "payment.card_number",
                "a wallet payment takes no card; to split, pay by card with wallet_minor",
            )
            .into());
        }
        _ => {
            return Err(DomainError::invalid("payment.method", "must be card or wallet").into());
        }
    };
    let user = actor.user_id.clone();
    match app
        .in_flight
        .start(&*app.store, &user, key, fingerprint, StatusCode::CREATED)
        .await?
    {
        idempotency::Start::Replay(first) => Ok(first),
        idempotency::Start::Run { key, claim } => {
            let paid = crate::payments::pay(&app, &user, hold_id, how, key.as_ref()).await;
            let response = match paid? {
                crate::payments::Paid::Booked(outcome) => {
                    idempotency::respond(outcome, StatusCode::CREATED, key.as_ref())
                }
                crate::payments::Paid::Pending(payment) => {
                    let view = super::payments::PaymentView::from(payment);
                    Ok(axum::response::IntoResponse::into_response((
                        StatusCode::ACCEPTED,
                        Json(view),
                    )))
                }
            };
            drop(claim);
            response
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct BookingList {
    items: Vec<Booking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/bookings",
    tag = "orders",
    summary = "My bookings",
    params(Page),
    responses((status = 200, description = "Success", body = BookingList), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn my_bookings(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Query(page): Query<Page>,
) -> ApiResult<Json<BookingList>> {
    let limit = page_limit(page.limit)?;
    let after = page
        .after
        .as_deref()
        .map(|a| BookingId::parse(a).ok_or(DomainError::invalid("after", "not a booking id")))
        .transpose()?;
    let items = app
        .store
        .bookings_of(&actor.user_id, after.as_ref(), limit)
        .await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|b| b.id.to_string()))
        .flatten();
    Ok(Json(BookingList { items, next }))
}

#[utoipa::path(
    get,
    path = "/bookings/{id}",
    tag = "orders",
    summary = "A booking of mine",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Booking), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn booking(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Booking>> {
    let id = path_id(&id, BookingId::parse, "booking")?;
    let booking = app
        .store
        .booking(&id)
        .await?
        .filter(|b| actor.may_access(&b.user_id));
    Ok(Json(booking.ok_or(DomainError::NotFound("booking"))?))
}

#[utoipa::path(
    post,
    path = "/bookings/{id}/cancel",
    tag = "orders",
    summary = "Cancel a booking before the show",
    request_body = Option<CancelBody>,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first answer")),
    responses((status = 200, description = "Success", body = Booking), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn cancel(
    State(app): State<AppState>,
    Auth(actor): Auth,
    key: KeyHeader,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let id = path_id(&id, BookingId::parse, "booking")?;
    let choice: CancelBody = if body.is_empty() {
        CancelBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| DomainError::invalid("body", e.to_string()))?
    };
    let refund_to = choice.refund_to.unwrap_or_default();
    let path = format!("/api/v1/bookings/{id}/cancel");
    let fingerprint = key.fingerprint("POST", &path, &format!("{refund_to:?}"));
    let worker = app.clone();
    idempotency::run(
        &app,
        &actor.user_id.clone(),
        key,
        fingerprint,
        StatusCode::OK,
        |key| async move {
            let app = worker;
            let outcome = app
                .store
                .cancel_booking(
                    &id,
                    &actor.user_id,
                    app.clock.now(),
                    refund_to,
                    key.as_ref(),
                )
                .await?;
            if let Outcome::Done(cancelled) = &outcome {
                crate::metrics::booking_cancelled(1);
                let seat_ids = cancelled
                    .tickets
                    .iter()
                    .filter_map(|t| t.seat_id.clone())
                    .collect();
                app.announce_event(
                    &cancelled.show_id,
                    Change::SeatReleased { seat_ids },
                    boxoffice_core::outbox::EventKind::BookingCancelled,
                    cancelled.id.as_str(),
                )
                .await;
                app.places_came_back(&cancelled.show_id);
            }
            Ok(outcome)
        },
    )
    .await
}

fn seats_of(items: &[boxoffice_core::hold::HoldItem]) -> Vec<boxoffice_core::ids::SeatId> {
    items.iter().filter_map(|i| i.seat_id.clone()).collect()
}
