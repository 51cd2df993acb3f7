//! Payment intents under `/payments`: a customer reads their own and completes a 3-D Secure
//! check; the provider reports outcomes to the signed webhook.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::path_id;
use crate::payments;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use boxoffice_core::DomainError;
use boxoffice_core::ids::PaymentId;
use boxoffice_core::payment::PaymentState;
use boxoffice_store::Payment;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(one))
        .routes(routes!(confirm))
        .routes(routes!(webhook))
}

/// What the customer must do next, while a payment waits for them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NextAction {
    /// `three_d_secure`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// POST here once the customer passed their bank's check.
    confirm_url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    #[serde(flatten)]
    payment: Payment,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_action: Option<NextAction>,
}

impl From<Payment> for PaymentView {
    fn from(payment: Payment) -> Self {
        let next_action = (payment.state == PaymentState::RequiresAction).then(|| NextAction {
            kind: "three_d_secure",
            confirm_url: format!("/api/v1/payments/{}/confirm", payment.id),
        });
        Self {
            payment,
            next_action,
        }
    }
}

async fn own_payment(app: &AppState, auth: &Auth, id: &str) -> ApiResult<Payment> {
    let id = path_id(id, PaymentId::parse, "payment")?;
    app.store
        .payment(&id)
        .await?
        .filter(|p| p.user_id == auth.0.user_id)
        .ok_or_else(|| DomainError::NotFound("payment").into())
}

#[utoipa::path(
    get,
    path = "/payments/{id}",
    tag = "orders",
    summary = "A payment of mine",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = PaymentView), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Poll this after `POST /bookings` answered `202`: `booking_id` appears once it succeeded;
/// `refunded` means the seats were gone by then and the money went back.
async fn one(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<PaymentView>> {
    Ok(Json(own_payment(&app, &auth, &id).await?.into()))
}

#[utoipa::path(
    post,
    path = "/payments/{id}/confirm",
    tag = "orders",
    summary = "I passed my bank's check (3-D Secure)",
    params(("id" = String, Path)),
    responses((status = 200, description = "Now processing", body = PaymentView), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn confirm(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<PaymentView>> {
    let payment = own_payment(&app, &auth, &id).await?;
    Ok(Json(
        payments::complete_action(&app, &payment).await?.into(),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Received {
    received: bool,
    /// This event had been acted on before; nothing changed.
    replayed: bool,
}

#[utoipa::path(
    post,
    path = "/payments/webhook",
    tag = "orders",
    summary = "The payment provider reports an outcome",
    request_body(content = String, description = "The provider's event, signed in `boxoffice-signature`"),
    responses((status = 200, description = "Taken", body = Received), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
/// Signed like Boxoffice's own webhooks (`t=<unix>,v1=<HMAC-SHA256 of "<t>.<body>">`) with
/// the provider's secret; a wrong or older than five minutes signature is `403`. The same event
/// again is acknowledged and changes nothing.
async fn webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<Received>> {
    let event = app
        .payments
        .read_webhook(&headers, &body, app.clock.now())?;
    let acted = payments::on_provider_event(&app, event).await?;
    Ok(Json(Received {
        received: true,
        replayed: !acted,
    }))
}
