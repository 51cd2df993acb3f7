//! An organizer's promo codes under `/promo-codes`: create them with their scope, window and
//! limits, and see how often each was used. Customers apply one with `promo_code` on `POST
//! /holds`; the hold's total shows the discount.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use boxoffice_core::DomainError;
use boxoffice_core::promo::{Promo, PromoInput};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list))
}

#[derive(Serialize, utoipa::ToSchema)]
struct PromoView {
    #[serde(flatten)]
    promo: Promo,
    /// Bookings made with it.
    used: i64,
}

#[utoipa::path(
    post,
    path = "/promo-codes",
    tag = "organizer",
    summary = "Create a promo code",
    request_body = PromoInput,
    responses((status = 201, description = "Success", body = Promo), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// `discount` is `{"percent": 10}` or `{"amount": 500}` (minor units); scope it with `event_id`
/// or `show_id` (of this organizer), a window with `valid_from` / `valid_until`, and limit it with
/// `max_uses` and `max_uses_per_customer` (default 1). A use counts from the hold that applies it
/// until the hold lapses or is released, and for good once it is booked.
async fn create(
    State(app): State<AppState>,
    auth: Auth,
    body: ApiJson<PromoInput>,
) -> ApiResult<(StatusCode, Json<Promo>)> {
    let organizer = auth.organizer()?;
    let promo = body.value.into_promo(organizer.clone(), app.clock.now())?;
    // A scope of another organizer's is reported as missing.
    if let Some(event) = &promo.event_id {
        let found = app.store.event(event).await?;
        if found.is_none_or(|e| e.organizer_id != organizer) {
            return Err(DomainError::NotFound("event").into());
        }
    }
    if let Some(show) = &promo.show_id {
        let found = app.store.show(show).await?;
        if found.is_none_or(|s| s.organizer_id != organizer) {
            return Err(DomainError::NotFound("show").into());
        }
    }
    app.store.insert_promo(&promo).await?;
    Ok((StatusCode::CREATED, Json(promo)))
}

#[utoipa::path(
    get,
    path = "/promo-codes",
    tag = "organizer",
    summary = "My organizer's promo codes",
    responses((status = 200, description = "Success", body = Vec<PromoView>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn list(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<PromoView>>> {
    let organizer = auth.organizer()?;
    let promos = app.store.promos_of(&organizer).await?;
    Ok(Json(
        promos
            .into_iter()
            .map(|(promo, used)| PromoView { promo, used })
            .collect(),
    ))
}
