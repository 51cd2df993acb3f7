//! An organizer's webhooks under `/webhooks`: endpoints that receive the organizer's domain
//! events (signed with the endpoint's secret), every delivery on record with its attempts, and
//! a way to send one again. Another organizer's endpoints read as missing.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, page_limit, path_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine as _;
use boxoffice_core::DomainError;
use boxoffice_core::ids::{DeliveryId, WebhookId};
use boxoffice_core::outbox::WebhookInput;
use boxoffice_store::{DeliveryView, WebhookEndpoint};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(one, delete))
        .routes(routes!(deliveries))
        .routes(routes!(replay))
}

#[derive(Serialize, utoipa::ToSchema)]
struct CreatedEndpoint {
    #[serde(flatten)]
    endpoint: WebhookEndpoint,
    /// Verify each delivery's `boxoffice-signature` with it. Shown only now.
    secret: String,
}

/// The caller's organizer's endpoint `id`, or "not found".
async fn own_endpoint(app: &AppState, auth: &Auth, id: &str) -> ApiResult<WebhookEndpoint> {
    let organizer = auth.organizer()?;
    let id = path_id(id, WebhookId::parse, "webhook")?;
    app.store
        .webhook(&id)
        .await?
        .filter(|e| e.organizer_id == organizer)
        .ok_or_else(|| DomainError::NotFound("webhook").into())
}

#[utoipa::path(
    post,
    path = "/webhooks",
    tag = "webhooks",
    summary = "Register a webhook endpoint",
    request_body = WebhookInput,
    responses((status = 201, description = "Success", body = CreatedEndpoint), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Events of the chosen kinds (all when none are named) are POSTed to `url` as JSON, with
/// `boxoffice-event-id`, `boxoffice-event-type` and `boxoffice-signature: t=<unix>,v1=<hex
/// HMAC-SHA256 of "<t>.<body>">` headers. A non-2xx answer or no answer within 10 s is tried
/// again with growing pauses for a day; a booking's events arrive in the order they happened.
async fn create(
    State(app): State<AppState>,
    auth: Auth,
    body: ApiJson<WebhookInput>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    let organizer = auth.organizer()?;
    let (url, event_types) = body.value.parse()?;
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
    );
    let endpoint = WebhookEndpoint {
        id: WebhookId::generate(),
        organizer_id: organizer,
        url,
        secret: secret.clone(),
        event_types,
        created_at: app.clock.now(),
    };
    app.store.insert_webhook(&endpoint).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint { endpoint, secret }),
    ))
}

#[utoipa::path(
    get,
    path = "/webhooks",
    tag = "webhooks",
    summary = "My organizer's webhook endpoints",
    responses((status = 200, description = "Success", body = Vec<WebhookEndpoint>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn list(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<WebhookEndpoint>>> {
    let organizer = auth.organizer()?;
    Ok(Json(app.store.webhooks_of(&organizer).await?))
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    tag = "webhooks",
    summary = "A webhook endpoint",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = WebhookEndpoint), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn one(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookEndpoint>> {
    Ok(Json(own_endpoint(&app, &auth, &id).await?))
}

#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    tag = "webhooks",
    summary = "Stop sending to an endpoint",
    params(("id" = String, Path)),
    responses((status = 204, description = "Success"), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn delete(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let endpoint = own_endpoint(&app, &auth, &id).await?;
    app.store
        .delete_webhook(&endpoint.id, app.clock.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct Page {
    /// At most 100.
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    tag = "webhooks",
    summary = "What was sent to an endpoint, newest first",
    params(("id" = String, Path), Page),
    responses((status = 200, description = "Success", body = Vec<DeliveryView>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn deliveries(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    let endpoint = own_endpoint(&app, &auth, &id).await?;
    let limit = page_limit(page.limit)?;
    Ok(Json(app.store.deliveries_of(&endpoint.id, limit).await?))
}

#[utoipa::path(
    post,
    path = "/webhooks/{id}/deliveries/{delivery_id}/replay",
    tag = "webhooks",
    summary = "Send a delivery again",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, description = "Queued to be sent again"), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// A delivered or given-up delivery is sent again (with the same event id, so a receiver that
/// already has it can tell); one still being tried is `409 conflict`.
async fn replay(
    State(app): State<AppState>,
    auth: Auth,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let endpoint = own_endpoint(&app, &auth, &id).await?;
    let delivery_id = path_id(&delivery_id, DeliveryId::parse, "delivery")?;
    app.store
        .replay_delivery(&endpoint.id, &delivery_id, app.clock.now())
        .await?;
    Ok(StatusCode::ACCEPTED)
}
