//! The caller's own organizer under `/organizer`: who works there, invitations (owners invite by
//! email; the invitee joins by accepting), removing members, and the organizer's figures.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, path_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use boxoffice_core::ids::{InvitationId, UserId};
use boxoffice_core::user::{Email, Invitation, InvitationState, MemberRole, Organizer, User};
use boxoffice_core::{DomainError, Timestamp};
use boxoffice_store::OrganizerFigures;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mine))
        .routes(routes!(invite))
        .routes(routes!(sent_invitations))
        .routes(routes!(my_invitations))
        .routes(routes!(accept))
        .routes(routes!(decline))
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
    summary = "Invite someone by email to join as owner or staff (owners); they join by accepting",
    request_body = NewMember,
    responses((status = 201, description = "Success", body = Invitation), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn invite(
    State(app): State<AppState>,
    auth: Auth,
    body: ApiJson<NewMember>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    let organizer_id = owner(&auth)?;
    let email = Email::parse(&body.value.email)
        .ok_or_else(|| DomainError::invalid("email", "must be an email address"))?;
    let invitation = Invitation {
        id: InvitationId::generate(),
        organizer_id,
        email: email.as_str().to_owned(),
        role: body.value.role,
        state: InvitationState::Pending,
        invited_by: auth.0.user_id.clone(),
        created_at: app.clock.now(),
    };
    app.store.insert_invitation(&invitation).await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

#[utoipa::path(
    get,
    path = "/organizer/invitations",
    tag = "organizer",
    summary = "Invitations of my organizer still waiting for an answer (owners)",
    responses((status = 200, description = "Success", body = Vec<Invitation>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn sent_invitations(
    State(app): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<Invitation>>> {
    let organizer_id = owner(&auth)?;
    Ok(Json(
        app.store
            .pending_invitations(None, Some(&organizer_id))
            .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/me/invitations",
    tag = "organizer",
    summary = "Invitations addressed to me",
    responses((status = 200, description = "Success", body = Vec<Invitation>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn my_invitations(
    State(app): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<Invitation>>> {
    let me = app
        .store
        .user(&actor.user_id)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    Ok(Json(
        app.store.pending_invitations(Some(&me.email), None).await?,
    ))
}

async fn answer(
    app: &AppState,
    actor: &boxoffice_core::user::Actor,
    id: &str,
    accept: bool,
) -> ApiResult<Json<Invitation>> {
    let id = path_id(id, InvitationId::parse, "invitation")?;
    let me = app
        .store
        .user(&actor.user_id)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    Ok(Json(
        app.store
            .answer_invitation(&id, &me, accept, app.clock.now())
            .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/invitations/{id}/accept",
    tag = "organizer",
    summary = "Accept an invitation addressed to me and join the organizer",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Invitation), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn accept(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Invitation>> {
    answer(&app, &actor, &id, true).await
}

#[utoipa::path(
    post,
    path = "/invitations/{id}/decline",
    tag = "organizer",
    summary = "Decline an invitation addressed to me",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Invitation), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn decline(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Invitation>> {
    answer(&app, &actor, &id, false).await
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
