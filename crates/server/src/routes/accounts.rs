//! Sign-up, sign-in, sign-out and "who am I". A successful sign-in answers with a Bearer token
//! and also sets the session cookie (HttpOnly, SameSite=Strict) with its CSRF companion.

use crate::auth::{Auth, CSRF_COOKIE, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use boxoffice_core::Timestamp;
use boxoffice_core::ids::UserId;
use boxoffice_core::user::{Email, Registration, User};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    email: String,
    password: String,
    name: String,
    /// `customer` (default) or `organizer`.
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Serialize)]
pub struct SessionBody {
    pub token: String,
    pub token_type: &'static str,
    pub expires_at: Timestamp,
    pub user: User,
}

async fn register(State(app): State<AppState>, body: ApiJson<RegisterBody>) -> ApiResult<Response> {
    let body = body.value;
    let registration = Registration::parse(
        &body.email,
        &body.password,
        &body.name,
        body.role.as_deref(),
    )?;
    let password_hash = app.passwords.hash(registration.password).await?;
    let user = User {
        id: UserId::generate(),
        email: registration.email.as_str().to_owned(),
        name: registration.name,
        role: registration.role,
        created_at: app.clock.now(),
    };
    app.store.insert_user(&user, &password_hash).await?;
    tracing::info!(user_id = %user.id, role = user.role.as_str(), "account registered");
    session(&app, user, StatusCode::CREATED)
}

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
    session(&app, user.ok_or_else(wrong)?, StatusCode::OK)
}

fn session(app: &AppState, user: User, status: StatusCode) -> ApiResult<Response> {
    let issued = app.tokens.issue(&user.id, user.role, app.clock.now())?;
    let csrf = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
    let max_age = app.tokens.ttl_minutes() * 60;
    let secure = if app.config.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let session_cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        issued.token
    );
    let csrf_cookie =
        format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict; Max-Age={max_age}{secure}");
    let body = SessionBody {
        token: issued.token,
        token_type: "Bearer",
        expires_at: issued.expires_at,
        user,
    };
    let mut response = (status, Json(body)).into_response();
    for cookie in [session_cookie, csrf_cookie] {
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
        );
    }
    Ok(response)
}

/// Clears the session cookies. Access tokens are short-lived; server-side revocation of a
/// token before it expires comes with refresh tokens.
async fn logout(_auth: Auth) -> ApiResult<Response> {
    let mut response = StatusCode::NO_CONTENT.into_response();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        let cleared = format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&cleared).map_err(ApiError::internal)?,
        );
    }
    Ok(response)
}

async fn me(State(app): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<User>> {
    let user = app
        .store
        .user(&actor.user_id)
        .await?
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    Ok(Json(user))
}
