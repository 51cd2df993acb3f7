//! Waitlists under `/shows/{id}/waitlist`: a customer joins a sold-out show's (or category's)
//! list, sees their place (`/me/waitlist`) and leaves; the organizer sees the list. Offers arrive as holds in the
//! customer's name (`hold_id`), announced by e-mail and on the show's live channel.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, path_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use boxoffice_core::DomainError;
use boxoffice_core::ids::{ShowId, WaitlistEntryId};
use boxoffice_core::waitlist::{self, JoinInput, WaitlistEntry};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join, list))
        .routes(routes!(mine))
        .routes(routes!(leave))
}

#[utoipa::path(
    post,
    path = "/shows/{id}/waitlist",
    tag = "orders",
    summary = "Join a sold-out show's waitlist",
    params(("id" = String, Path)),
    request_body = JoinInput,
    responses((status = 201, description = "Success", body = WaitlistEntry), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Ask for `quantity` places (1 to the show's per-order limit) of `category`, or of any category
/// when absent (cheapest first), with `together: true` for seats side by side. Only for what is
/// sold out: while places are on sale the answer is `409`. When places come back, the first
/// entries they can serve are offered them as a hold with its own deadline; later entries may
/// take what earlier ones cannot use, but an entry overtaken three times holds the line.
async fn join(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    body: ApiJson<JoinInput>,
) -> ApiResult<(StatusCode, Json<WaitlistEntry>)> {
    let id = path_id(&id, ShowId::parse, "show")?;
    let now = app.clock.now();
    let show = app
        .store
        .show(&id)
        .await?
        .ok_or(DomainError::NotFound("show"))?;
    if show.state != boxoffice_core::catalog::ShowState::Scheduled || now >= show.off_sale_at {
        return Err(DomainError::NotOnSale("this show's sale has ended".into()).into());
    }
    let entry = body.value.into_entry(&show, actor.user_id.clone(), now)?;
    let map = app.store.seat_map(&show, now).await?;
    let free = map
        .availability
        .iter()
        .filter(|c| {
            entry
                .category
                .as_ref()
                .is_none_or(|wanted| &c.category == wanted)
        })
        .filter(|c| !show.locked_categories.contains(&c.category))
        .map(|c| c.free)
        .sum();
    waitlist::check_sold_out(free)?;
    let joined = app.store.join_waitlist(&entry).await?;
    Ok((StatusCode::CREATED, Json(joined)))
}

#[utoipa::path(
    get,
    path = "/shows/{id}/waitlist",
    tag = "organizer",
    summary = "A show's waitlist",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Vec<WaitlistEntry>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Every entry in joining order, with its state, passes and offer.
async fn list(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<WaitlistEntry>>> {
    let organizer = auth.organizer()?;
    let id = path_id(&id, ShowId::parse, "show")?;
    let show = app
        .store
        .show(&id)
        .await?
        .filter(|s| s.organizer_id == organizer)
        .ok_or(DomainError::NotFound("show"))?;
    Ok(Json(
        app.store.waitlist_of(&show.id, app.clock.now()).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
struct MineQuery {
    /// Only this show's entries.
    show_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/me/waitlist",
    tag = "orders",
    summary = "My waitlist entries",
    params(MineQuery),
    responses((status = 200, description = "Success", body = Vec<WaitlistEntry>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Oldest first: `place` (1 = next) while waiting, the offer's `hold_id` and deadline once
/// offered, then `booked` or `lapsed`.
async fn mine(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Query(query): Query<MineQuery>,
) -> ApiResult<Json<Vec<WaitlistEntry>>> {
    let show = match query.show_id.as_deref() {
        Some(raw) => Some(
            ShowId::parse(raw).ok_or_else(|| DomainError::invalid("show_id", "not a show id"))?,
        ),
        None => None,
    };
    Ok(Json(
        app.store
            .waitlist_entries_of(show.as_ref(), &actor.user_id, app.clock.now())
            .await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/waitlist/{id}",
    tag = "orders",
    summary = "Leave a waitlist",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = WaitlistEntry), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Only while waiting; an open offer is turned down by releasing its hold.
async fn leave(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<WaitlistEntry>> {
    let id = path_id(&id, WaitlistEntryId::parse, "waitlist entry")?;
    Ok(Json(
        app.store
            .leave_waitlist(&id, &actor.user_id, app.clock.now())
            .await?,
    ))
}
