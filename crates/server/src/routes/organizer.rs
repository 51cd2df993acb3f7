//! The caller's own organizer under `/organizer`: who works there, and (for owners) adding and
//! removing members.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, path_id};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use boxoffice_core::ids::UserId;
use boxoffice_core::user::{Email, MemberRole, Organizer, User};
use boxoffice_core::{DomainError, Timestamp};
use boxoffice_store::OrganizerFigures;
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/organizer", get(mine))
        .route("/organizer/members", post(add_member))
        .route("/organizer/members/{user_id}", delete(remove_member))
        .route("/organizer/figures", get(figures))
}

#[derive(Serialize)]
struct OrganizerView {
    #[serde(flatten)]
    organizer: Organizer,
    members: Vec<User>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    email: String,
    role: MemberRole,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    /// RFC 3339; the last 30 days when absent.
    from: Option<String>,
    /// RFC 3339, exclusive; now when absent.
    to: Option<String>,
}

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
