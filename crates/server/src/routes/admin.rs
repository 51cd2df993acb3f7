//! Platform administration under `/admin`: users and organizers, listed, created, suspended and
//! reinstated. Suspension takes effect on the next request of every session of the account.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, page_limit, path_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use boxoffice_core::DomainError;
use boxoffice_core::ids::{OrganizerId, UserId};
use boxoffice_core::user::{AccountState, Email, Organizer, Registration, Role, User};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users, create_user))
        .routes(routes!(suspend_user))
        .routes(routes!(reinstate_user))
        .routes(routes!(delete_user))
        .routes(routes!(organizers, create_organizer))
        .routes(routes!(suspend_organizer))
        .routes(routes!(reinstate_organizer))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    password: String,
    name: String,
    /// `customer` (default), `organizer` (starts its own organizer) or `admin`.
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOrganizer {
    name: String,
    /// An existing account, not yet working for an organizer, becomes its owner.
    owner_email: String,
}

#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "admin",
    summary = "List users",
    params(Page),
    responses((status = 200, description = "Success", body = Vec<User>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn users(
    State(app): State<AppState>,
    auth: Auth,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<User>>> {
    auth.admin()?;
    let after = page
        .after
        .as_deref()
        .map(|a| UserId::parse(a).ok_or(DomainError::invalid("after", "not a user id")))
        .transpose()?;
    Ok(Json(
        app.store
            .users(after.as_ref(), page_limit(page.limit)?)
            .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/admin/users",
    tag = "admin",
    summary = "Create a user",
    request_body = NewUser,
    responses((status = 201, description = "Success", body = User), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn create_user(
    State(app): State<AppState>,
    auth: Auth,
    body: ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    auth.admin()?;
    let body = body.value;
    let admin = body.role.as_deref() == Some("admin");
    let role = if admin { None } else { body.role.as_deref() };
    let mut registration = Registration::parse(&body.email, &body.password, &body.name, role)?;
    if admin {
        registration.role = Role::Admin;
    }
    let user = super::accounts::create_account(&app, registration).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn set_user(
    app: &AppState,
    auth: &Auth,
    id: &str,
    state: AccountState,
) -> ApiResult<Json<User>> {
    let admin = auth.admin()?;
    let id = path_id(id, UserId::parse, "user")?;
    if id == admin.user_id && state != AccountState::Active {
        return Err(DomainError::Conflict(
            "an admin cannot suspend or delete their own account".into(),
        )
        .into());
    }
    Ok(Json(
        app.store
            .set_user_state(&id, state)
            .await?
            .ok_or(DomainError::NotFound("user"))?,
    ))
}

#[utoipa::path(
    post,
    path = "/admin/users/{id}/suspend",
    tag = "admin",
    summary = "Suspend a user",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = User), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn suspend_user(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    set_user(&app, &auth, &id, AccountState::Suspended).await
}

#[utoipa::path(
    post,
    path = "/admin/users/{id}/reinstate",
    tag = "admin",
    summary = "Reinstate a user",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = User), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn reinstate_user(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    set_user(&app, &auth, &id, AccountState::Active).await
}

#[utoipa::path(
    delete,
    path = "/admin/users/{id}",
    tag = "admin",
    summary = "Delete a user (access ends at once)",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = User), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn delete_user(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    set_user(&app, &auth, &id, AccountState::Deleted).await
}

#[utoipa::path(
    get,
    path = "/admin/organizers",
    tag = "admin",
    summary = "List organizers",
    params(Page),
    responses((status = 200, description = "Success", body = Vec<Organizer>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn organizers(
    State(app): State<AppState>,
    auth: Auth,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<Organizer>>> {
    auth.admin()?;
    let after = page
        .after
        .as_deref()
        .map(|a| OrganizerId::parse(a).ok_or(DomainError::invalid("after", "not an organizer id")))
        .transpose()?;
    Ok(Json(
        app.store
            .organizers(after.as_ref(), page_limit(page.limit)?)
            .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/admin/organizers",
    tag = "admin",
    summary = "Create an organizer",
    request_body = NewOrganizer,
    responses((status = 201, description = "Success", body = Organizer), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn create_organizer(
    State(app): State<AppState>,
    auth: Auth,
    body: ApiJson<NewOrganizer>,
) -> ApiResult<(StatusCode, Json<Organizer>)> {
    auth.admin()?;
    let body = body.value;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::invalid("name", "must be 1 to 100 characters").into());
    }
    let email = Email::parse(&body.owner_email)
        .ok_or_else(|| DomainError::invalid("owner_email", "must be an email address"))?;
    let (owner, _) = app
        .store
        .credentials(email.as_str())
        .await?
        .ok_or_else(|| DomainError::invalid("owner_email", "no account has this email"))?;
    let organizer = Organizer {
        id: OrganizerId::generate(),
        name: name.to_owned(),
        state: AccountState::Active,
        created_at: app.clock.now(),
    };
    app.store.insert_organizer(&organizer, &owner.id).await?;
    Ok((StatusCode::CREATED, Json(organizer)))
}

async fn set_organizer(
    app: &AppState,
    auth: &Auth,
    id: &str,
    state: AccountState,
) -> ApiResult<Json<Organizer>> {
    auth.admin()?;
    let id = path_id(id, OrganizerId::parse, "organizer")?;
    Ok(Json(
        app.store
            .set_organizer_state(&id, state)
            .await?
            .ok_or(DomainError::NotFound("organizer"))?,
    ))
}

#[utoipa::path(
    post,
    path = "/admin/organizers/{id}/suspend",
    tag = "admin",
    summary = "Suspend an organizer (its shows stop selling)",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Organizer), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn suspend_organizer(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Organizer>> {
    set_organizer(&app, &auth, &id, AccountState::Suspended).await
}

#[utoipa::path(
    post,
    path = "/admin/organizers/{id}/reinstate",
    tag = "admin",
    summary = "Reinstate an organizer",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Organizer), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn reinstate_organizer(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Organizer>> {
    set_organizer(&app, &auth, &id, AccountState::Active).await
}
