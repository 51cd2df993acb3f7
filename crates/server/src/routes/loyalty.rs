//! A customer's loyalty: points (`/me/loyalty`; spend them with `redeem_points` on `POST
//! /holds`) and the scratch cards group bookings earn (`/me/scratch-cards`, scratched once with
//! `POST /scratch-cards/{id}/reveal`).

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::path_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use boxoffice_core::ids::ScratchCardId;
use boxoffice_core::loyalty::{Loyalty, ScratchCard};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(points))
        .routes(routes!(cards))
        .routes(routes!(reveal))
}

#[utoipa::path(
    get,
    path = "/me/loyalty",
    tag = "accounts",
    summary = "My loyalty points",
    responses((status = 200, description = "Success", body = Loyalty), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// 100 points per ticket of a confirmed booking, taken back if it is cancelled; 100 points take
/// 1.00 off a hold. `available` is the balance less what live holds keep aside.
async fn points(State(app): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Loyalty>> {
    Ok(Json(
        app.store
            .loyalty_of(&actor.user_id, app.clock.now())
            .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/me/scratch-cards",
    tag = "accounts",
    summary = "My scratch cards",
    responses((status = 200, description = "Success", body = Vec<ScratchCard>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// A booking of three tickets or more earns one, drawn when it is confirmed; the prize shows
/// once the card is revealed. Cancelling the booking revokes it.
async fn cards(
    State(app): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<ScratchCard>>> {
    Ok(Json(app.store.scratch_cards_of(&actor.user_id).await?))
}

#[utoipa::path(
    post,
    path = "/scratch-cards/{id}/reveal",
    tag = "accounts",
    summary = "Scratch a card",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = ScratchCard), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Shows the prize drawn at confirmation: a cashback (paid into the wallet when the show
/// starts), an add-on voucher, or a discount code for a later booking. Scratching again shows
/// the same prize; nothing is ever drawn again. A revoked card answers `409`.
async fn reveal(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ScratchCard>> {
    let id = path_id(&id, ScratchCardId::parse, "scratch card")?;
    Ok(Json(
        app.store
            .reveal_scratch_card(&id, &actor.user_id, app.clock.now())
            .await?,
    ))
}
