//! Sign-up, sign-in, refresh, sign-out and "who am I". A sign-in answers with a short-lived
//! Bearer access token and a refresh token that rotates on every use; it also sets the session
//! cookie (HttpOnly, SameSite=Strict), the refresh cookie and the CSRF companion for pages.

use crate::auth::{
    Auth, CSRF_COOKIE, REFRESH_COOKIE, SESSION_COOKIE, SESSION_DAYS, new_refresh_token,
    refresh_token_hash,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use boxoffice_core::ids::{OrganizerId, SessionId, UserId};
use boxoffice_core::user::{AccountState, Email, Organizer, Registration, Role, User};
use boxoffice_core::{DomainError, Timestamp};
use boxoffice_store::{Refresh, SessionRecord};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    email: String,
    password: String,
    name: String,
    /// `customer` (default) or `organizer`: an organizer account starts its own organizer.
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    /// Optional when the refresh cookie is sent instead.
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionBody {
    pub token: String,
    pub token_type: &'static str,
    pub expires_at: Timestamp,
    pub refresh_token: String,
    pub refresh_expires_at: Timestamp,
    pub user: User,
}

#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "accounts",
    summary = "Sign up and sign in",
    request_body = RegisterBody,
    responses((status = 201, description = "Success", body = SessionBody), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
async fn register(State(app): State<AppState>, body: ApiJson<RegisterBody>) -> ApiResult<Response> {
    let body = body.value;
    let registration = Registration::parse(
        &body.email,
        &body.password,
        &body.name,
        body.role.as_deref(),
    )?;
    let user = create_account(&app, registration).await?;
    start_session(&app, user, StatusCode::CREATED).await
}

/// Hashes the password and stores the account; an organizer account starts its own organizer.
/// The one way accounts are made, by sign-up and by admins.
pub(crate) async fn create_account(app: &AppState, registration: Registration) -> ApiResult<User> {
    let password_hash = app.passwords.hash(registration.password).await?;
    let now = app.clock.now();
    let organizer = (registration.role == Role::Organizer).then(|| Organizer {
        id: OrganizerId::generate(),
        name: registration.name.clone(),
        state: AccountState::Active,
        created_at: now,
    });
    let user = User {
        id: UserId::generate(),
        email: registration.email.as_str().to_owned(),
        name: registration.name,
        role: registration.role,
        state: AccountState::Active,
        organizer: None,
        created_at: now,
    };
    app.store
        .insert_user(&user, &password_hash, organizer.as_ref())
        .await?;
    tracing::info!(user_id = %user.id, role = user.role.as_str(), "account created");
    Ok(app
        .store
        .user(&user.id)
        .await?
        .ok_or(DomainError::NotFound("user"))?)
}

#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "accounts",
    summary = "Sign in",
    request_body = LoginBody,
    responses((status = 200, description = "Success", body = SessionBody), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
async fn login(State(app): State<AppState>, body: ApiJson<LoginBody>) -> ApiResult<Response> {
    let body = body.value;
    let wrong = || ApiError::Unauthorized("wrong email or password");
    let found = match Email::parse(&body.email) {
        Some(email) => app.store.credentials(email.as_str()).await?,
        None => None,
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    if !app.passwords.verify(body.password, hash).await? {
        return Err(wrong());
    }
    let user = user.ok_or_else(wrong)?;
    if user.state != AccountState::Active {
        return Err(ApiError::Unauthorized("this account is suspended"));
    }
    start_session(&app, user, StatusCode::OK).await
}

async fn start_session(app: &AppState, user: User, status: StatusCode) -> ApiResult<Response> {
    let now = app.clock.now();
    let session = SessionRecord {
        id: SessionId::generate(),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now.plus_minutes(SESSION_DAYS * 24 * 60),
    };
    let refresh_token = new_refresh_token();
    let refresh_expires_at = session.expires_at;
    app.store
        .insert_session(
            &session,
            &refresh_token_hash(&refresh_token),
            refresh_expires_at,
        )
        .await?;
    respond_with_session(
        app,
        user,
        &session.id,
        refresh_token,
        refresh_expires_at,
        status,
    )
}

fn respond_with_session(
    app: &AppState,
    user: User,
    session_id: &SessionId,
    refresh_token: String,
    refresh_expires_at: Timestamp,
    status: StatusCode,
) -> ApiResult<Response> {
    let now = app.clock.now();
    let issued = app.tokens.issue(&user.id, session_id, user.role, now)?;
    let csrf = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
    let access_age = app.tokens.ttl_minutes() * 60;
    let refresh_age = (refresh_expires_at.unix_ms() - now.unix_ms()) / 1000;
    let secure = if app.config.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let cookies = [
        format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={access_age}{secure}",
            issued.token
        ),
        format!(
            "{REFRESH_COOKIE}={refresh_token}; Path=/api/v1/auth; HttpOnly; SameSite=Strict; Max-Age={refresh_age}{secure}"
        ),
        format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict; Max-Age={refresh_age}{secure}"),
    ];
    let body = SessionBody {
        token: issued.token,
        token_type: "Bearer",
        expires_at: issued.expires_at,
        refresh_token,
        refresh_expires_at,
        user,
    };
    let mut response = (status, Json(body)).into_response();
    for cookie in cookies {
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
        );
    }
    Ok(response)
}

#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "accounts",
    summary = "Trade a refresh token for a new pair",
    request_body = Option<RefreshBody>,
    responses((status = 200, description = "Success", body = SessionBody), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
/// Trades a live refresh token for a new pair. A token presented twice ends its session.
async fn refresh(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body: RefreshBody = if body.is_empty() {
        RefreshBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| DomainError::invalid("body", e.to_string()))?
    };
    let presented = body
        .refresh_token
        .or_else(|| crate::auth::cookie(&headers, REFRESH_COOKIE).map(str::to_owned))
        .ok_or_else(|| DomainError::invalid("refresh_token", "send the refresh token"))?;
    let now = app.clock.now();
    let next = new_refresh_token();
    let expires_at = now.plus_minutes(SESSION_DAYS * 24 * 60);
    match app
        .store
        .rotate_refresh(
            &refresh_token_hash(&presented),
            &refresh_token_hash(&next),
            now,
            expires_at,
        )
        .await?
    {
        Refresh::Rotated {
            session_id,
            user_id,
        } => {
            let user = app
                .store
                .user(&user_id)
                .await?
                .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
            respond_with_session(&app, user, &session_id, next, expires_at, StatusCode::OK)
        }
        Refresh::Reused => Err(ApiError::Unauthorized(
            "this refresh token was already used; the session has been ended",
        )),
        Refresh::Invalid => Err(ApiError::Unauthorized(
            "the refresh token is invalid or has expired; sign in again",
        )),
    }
}

#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "accounts",
    summary = "End this sign-in",
    responses((status = 204, description = "Success"), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Ends the sign-in: its access and refresh tokens stop working at once.
async fn logout(State(app): State<AppState>, Auth(actor): Auth) -> ApiResult<Response> {
    app.store.revoke_session(&actor.session_id).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for (name, path) in [
        (SESSION_COOKIE, "/"),
        (REFRESH_COOKIE, "/api/v1/auth"),
        (CSRF_COOKIE, "/"),
    ] {
        let cleared = format!("{name}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0");
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&cleared).map_err(ApiError::internal)?,
        );
    }
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/me",
    tag = "accounts",
    summary = "Who am I",
    responses((status = 200, description = "Success", body = User), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn me(State(app): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<User>> {
    let user = app
        .store
        .user(&actor.user_id)
        .await?
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    Ok(Json(user))
}
