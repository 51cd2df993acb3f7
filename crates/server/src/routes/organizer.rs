//! The caller's own organizer under `/organizer`: who works there, and (for owners) adding and
//! removing members.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, path_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use boxoffice_core::ids::UserId;
use boxoffice_core::user::{Email, MemberRole, Organizer, User};
use boxoffice_core::{DomainError, Timestamp};
use boxoffice_store::OrganizerFigures;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mine))
        .routes(routes!(add_member))
        .routes(routes!(remove_member))
        .routes(routes!(figures))
}

#[derive(Serialize, utoipa::ToSchema)]
struct OrganizerView {
    #[serde(flatten)]
    organizer: Organizer,
    members: Vec<User>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewMember {
    email: String,
    role: MemberRole,
}

#[utoipa::path(
    get,
    path = "/organizer",
    tag = "organizer",
    summary = "My organizer and its members",
    responses((status = 200, description = "Success", body = OrganizerView), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn mine(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<OrganizerView>> {
    let organizer_id = auth.organizer()?;
    let organizer = app
        .store
        .organizer(&organizer_id)
        .await?
        .ok_or(DomainError::NotFound("organizer"))?;
    let members = app.store.members(&organizer_id).await?;
    Ok(Json(OrganizerView { organizer, members }))
}

fn owner(auth: &Auth) -> ApiResult<boxoffice_core::ids::OrganizerId> {
    let organizer_id = auth.organizer()?;
    if !auth.0.is_owner_of(&organizer_id) {
        return Err(
            DomainError::Forbidden("only the organizer's owners manage its members").into(),
        );
    }
    Ok(organizer_id)
}

#[utoipa::path(
    post,
    path = "/organizer/members",
    tag = "organizer",
    summary = "Add a member (owners)",
    request_body = NewMember,
    responses((status = 201, description = "Success", body = User), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn add_member(
    State(app): State<AppState>,
    auth: Auth,
    body: ApiJson<NewMember>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let organizer_id = owner(&auth)?;
    let email = Email::parse(&body.value.email)
        .ok_or_else(|| DomainError::invalid("email", "must be an email address"))?;
    let user = app
        .store
        .add_member(
            &organizer_id,
            email.as_str(),
            body.value.role,
            app.clock.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(
    delete,
    path = "/organizer/members/{user_id}",
    tag = "organizer",
    summary = "Remove a member (owners)",
    params(("user_id" = String, Path)),
    responses((status = 204, description = "Success"), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn remove_member(
    State(app): State<AppState>,
    auth: Auth,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    let organizer_id = owner(&auth)?;
    let user_id = path_id(&user_id, UserId::parse, "member")?;
    app.store.remove_member(&organizer_id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Range {
    /// RFC 3339; the last 30 days when absent.
    from: Option<String>,
    /// RFC 3339, exclusive; now when absent.
    to: Option<String>,
}

#[utoipa::path(
    get,
    path = "/organizer/figures",
    tag = "organizer",
    summary = "Figures over a date range",
    params(Range),
    responses((status = 200, description = "Success", body = OrganizerFigures), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Most-booked events, cancellation rate, and bookings and revenue per day over a range.
async fn figures(
    State(app): State<AppState>,
    auth: Auth,
    Query(range): Query<Range>,
) -> ApiResult<Json<OrganizerFigures>> {
    let organizer_id = auth.organizer()?;
    let now = app.clock.now();
    let parse = |raw: &Option<String>, field: &'static str, default: Timestamp| match raw {
        None => Ok(default),
        Some(r) => Timestamp::parse_rfc3339(r)
            .ok_or_else(|| DomainError::invalid(field, "must be an RFC 3339 instant")),
    };
    let to = parse(&range.to, "to", now.plus_ms(1))?;
    let from = parse(&range.from, "from", to.plus_minutes(-30 * 24 * 60))?;
    if from >= to || to.unix_ms() - from.unix_ms() > 400 * 86_400_000 {
        return Err(
            DomainError::invalid("from", "must be before to, at most 400 days apart").into(),
        );
    }
    Ok(Json(
        app.store.organizer_figures(&organizer_id, from, to).await?,
    ))
}
