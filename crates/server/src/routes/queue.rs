//! The waiting room's routes: organizers switch a show's room on and watch it; customers join
//! the line and ask where they stand (live updates come as `queue_position` events on the show's channel).

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, path_id};
use crate::routes::catalog::managed_show;
use crate::state::AppState;
use crate::waiting_room::{RoomStats, Standing, WaitingRooms};
use axum::Json;
use axum::extract::{Path, State};
use boxoffice_core::DomainError;
use boxoffice_core::ids::ShowId;
use boxoffice_core::waiting::{Room, RoomInput};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(waiting_room, configure))
        .routes(routes!(stats))
        .routes(routes!(join))
        .routes(routes!(position))
}

#[utoipa::path(
    put,
    path = "/shows/{id}/waiting-room",
    tag = "waiting room",
    summary = "Switch a show's waiting room on or off, and set its pace",
    request_body = RoomInput,
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Room), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn configure(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    body: ApiJson<RoomInput>,
) -> ApiResult<Json<Room>> {
    let show = managed_show(&app, &actor, &id).await?;
    // The draw's seed is chosen once: changing the pace never reshuffles a line.
    let seed = match app.store.waiting_room(&show.id).await? {
        Some(existing) => existing.seed,
        None => rand::random(),
    };
    let room = body.value.into_room(show.on_sale_at, seed)?;
    app.store
        .put_waiting_room(&show.id, &room, app.clock.now())
        .await?;
    app.announce(&show.id, crate::live::Change::ShowChanged)
        .await;
    Ok(Json(room))
}

#[utoipa::path(
    get,
    path = "/shows/{id}/waiting-room",
    tag = "waiting room",
    summary = "A show's waiting room settings",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Room), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
async fn waiting_room(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Room>> {
    let show = path_id(&id, ShowId::parse, "show")?;
    let room = app
        .store
        .waiting_room(&show)
        .await?
        .ok_or(DomainError::NotFound("waiting room"))?;
    Ok(Json(room))
}

#[utoipa::path(
    get,
    path = "/shows/{id}/waiting-room/stats",
    tag = "waiting room",
    summary = "The line as the organizer sees it: length, admissions, shoppers, conversion",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = RoomStats), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn stats(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RoomStats>> {
    let show = managed_show(&app, &actor, &id).await?;
    let room = app
        .store
        .waiting_room(&show.id)
        .await?
        .ok_or(DomainError::NotFound("waiting room"))?;
    Ok(Json(
        WaitingRooms::stats(&app, &show.id, &room, show.on_sale_at).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/queues/{show_id}/join",
    tag = "waiting room",
    summary = "Take a place in the show's line (joining again keeps the place)",
    params(("show_id" = String, Path)),
    responses((status = 200, description = "Where you stand", body = Standing), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn join(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(show_id): Path<String>,
) -> ApiResult<Json<Standing>> {
    let show = path_id(&show_id, ShowId::parse, "show")?;
    Ok(Json(
        WaitingRooms::stand(&app, &show, &actor.user_id, true).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/queues/{show_id}/position",
    tag = "waiting room",
    summary = "Where you stand: position, people ahead, estimated wait, and your admission once in",
    params(("show_id" = String, Path)),
    responses((status = 200, description = "Where you stand", body = Standing), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn position(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(show_id): Path<String>,
) -> ApiResult<Json<Standing>> {
    let show = path_id(&show_id, ShowId::parse, "show")?;
    Ok(Json(
        WaitingRooms::stand(&app, &show, &actor.user_id, false).await?,
    ))
}
