//! Who is calling: argon2id password hashing (bounded, off the async threads), short-lived JWTs
//! with a pinned algorithm, and the `Auth` extractor that accepts a Bearer token or the session
//! cookie (with a double-submit CSRF check on cookie-authenticated mutations).

use crate::error::ApiError;
use crate::state::AppState;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use boxoffice_core::DomainError;
use boxoffice_core::Timestamp;
use boxoffice_core::ids::{OrganizerId, SessionId, UserId};
use boxoffice_core::user::{Actor, Role};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub const SESSION_COOKIE: &str = "boxoffice_session";
pub const CSRF_COOKIE: &str = "boxoffice_csrf";
pub const REFRESH_COOKIE: &str = "boxoffice_refresh";
/// How long a sign-in lasts without activity before its refresh token stops working.
pub const SESSION_DAYS: i64 = 30;
pub const CSRF_HEADER: &str = "x-csrf-token";

/// argon2id cost. The default is OWASP's recommendation (19 MiB, 2 passes, 1 lane).
#[derive(Clone, Copy, Debug)]
pub struct PasswordCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordCost {
    /// For tests only: as cheap as argon2 allows, so thousands of accounts register quickly.
    pub const CHEAPEST: Self = Self {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
}

/// Hashes and verifies passwords on the blocking pool, at most `permits` at a time, so a login
/// flood queues (and then gets 503) instead of starving the runtime.
#[derive(Clone)]
pub struct Passwords {
    cost: PasswordCost,
    permits: Arc<Semaphore>,
    /// Verified when the email is unknown, so a miss takes as long as a wrong password.
    decoy_hash: Arc<String>,
}

const HASH_QUEUE_WAIT: Duration = Duration::from_secs(10);

impl Passwords {
    pub fn new(cost: PasswordCost, concurrency: usize) -> anyhow::Result<Self> {
        let decoy_hash = hash_with(cost, "decoy password for unknown accounts")?;
        Ok(Self {
            cost,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            decoy_hash: Arc::new(decoy_hash),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(HASH_QUEUE_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                ApiError::problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "too many sign-ins at once; try again shortly",
                )
            })?
            .map_err(ApiError::internal)?;
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(ApiError::internal)?;
        Ok(result)
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let cost = self.cost;
        self.run(move || hash_with(cost, &password))
            .await?
            .map_err(ApiError::internal)
    }

    /// `stored` is `None` for an unknown account: the decoy is checked and the answer is no.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.decoy_hash.as_ref().clone());
        let matches = self
            .run(move || {
                Argon2::default()
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok()
            })
            .await?;
        Ok(known && matches)
    }
}

fn hash_with(cost: PasswordCost, password: &str) -> anyhow::Result<String> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// The sign-in this token belongs to; revoking it ends the token at once.
    sid: String,
    role: Role,
    iat: i64,
    exp: i64,
}

/// Signs and checks access tokens: HS256 only, whatever a token's header claims.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_minutes: i64,
    /// Tokens whose signature was checked, with what they say and when they lapse: a client
    /// retrying in a flash sale sends the same token many times a second, and checking the
    /// signature again each time was a tenth of the refused path.
    verified: Arc<std::sync::Mutex<HashMap<String, VerifiedToken>>>,
}

/// What a checked token says: its user, its session, and when it lapses (unix ms).
type VerifiedToken = (UserId, SessionId, i64);

/// Verified tokens remembered at most; the memory is cleared when it is full.
const VERIFIED_TOKENS: usize = 100_000;

pub struct IssuedToken {
    pub token: String,
    pub expires_at: Timestamp,
}

impl Tokens {
    pub fn new(secret: &[u8], ttl_minutes: i64) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "sub"].iter().map(|s| s.to_string()).collect();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_minutes,
            verified: Default::default(),
        }
    }

    pub fn issue(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        role: Role,
        now: Timestamp,
    ) -> Result<IssuedToken, ApiError> {
        let expires_at = now.plus_minutes(self.ttl_minutes);
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            role,
            iat: now.unix_ms() / 1000,
            exp: expires_at.unix_ms() / 1000,
        };
        let token = encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .map_err(ApiError::internal)?;
        Ok(IssuedToken { token, expires_at })
    }

    /// Expiry is checked against our clock, not the library's, so tests can move time.
    /// The session a token's signature vouches for, if it has not lapsed at `now` (whether the
    /// session still stands is the session check's business).
    pub fn verify(&self, token: &str, now: Timestamp) -> Option<(UserId, SessionId)> {
        if let Some((user, session, expires_ms)) =
            self.verified.lock().expect("tokens lock").get(token)
        {
            return (now.unix_ms() < *expires_ms).then(|| (user.clone(), session.clone()));
        }
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        let expires_ms = claims.exp.saturating_mul(1000);
        let found = (UserId::parse(&claims.sub)?, SessionId::parse(&claims.sid)?);
        let mut verified = self.verified.lock().expect("tokens lock");
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(
            token.to_owned(),
            (found.0.clone(), found.1.clone(), expires_ms),
        );
        drop(verified);
        (now.unix_ms() < expires_ms).then_some(found)
    }

    pub fn ttl_minutes(&self) -> i64 {
        self.ttl_minutes
    }
}

/// Refresh tokens are random, shown to the client once, and stored only as this hash.
pub fn refresh_token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// Lower-case hex SHA-256, for stored token hashes and request fingerprints.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in Sha256::digest(data) {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
    out
}

pub fn new_refresh_token() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The authenticated caller, checked against the store on every request: a revoked session or
/// a suspended account is refused at once. Rejects with 401.
pub struct Auth(pub Actor);

impl Auth {
    /// Tenant routes: the organizer the caller works for, while it is active.
    pub fn organizer(&self) -> Result<OrganizerId, ApiError> {
        match (&self.0.organizer, self.0.role) {
            (Some(membership), _) => Ok(membership.organizer_id.clone()),
            (None, Role::Organizer) => {
                Err(DomainError::Forbidden("your organizer is suspended").into())
            }
            (None, Role::Admin) => {
                Err(DomainError::Forbidden("admins manage organizers through /api/v1/admin").into())
            }
            (None, Role::Customer) => {
                Err(DomainError::Forbidden("only organizers may do this").into())
            }
        }
    }

    pub fn admin(&self) -> Result<&Actor, ApiError> {
        match self.0.role {
            Role::Admin => Ok(&self.0),
            _ => Err(DomainError::Forbidden("only platform admins may do this").into()),
        }
    }
}

pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let (token, from_cookie) = match bearer {
            Some(token) => (token, false),
            None => (
                cookie(&parts.headers, SESSION_COOKIE)
                    .ok_or(ApiError::Unauthorized("sign in first"))?,
                true,
            ),
        };
        let mutating = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if from_cookie && mutating {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            let expected = cookie(&parts.headers, CSRF_COOKIE);
            if sent.is_none() || sent != expected {
                return Err(DomainError::Forbidden("missing or wrong CSRF token").into());
            }
        }
        let now = app.clock.now();
        let token = token.trim();
        let checked = parts
            .extensions
            .get::<Verified>()
            .filter(|v| v.token == token)
            .map(|v| (v.user.clone(), v.session.clone()));
        let (user_id, session_id) =
            checked
                .or_else(|| app.tokens.verify(token, now))
                .ok_or(ApiError::Unauthorized(
                    "the token is invalid or has expired; refresh it or sign in again",
                ))?;
        if let Some(actor) = app.sessions.get(&session_id, &user_id, now) {
            return Ok(Auth(actor));
        }
        let actor =
            app.store
                .actor(&session_id, &user_id, now)
                .await?
                .ok_or(ApiError::Unauthorized(
                    "this session has ended or the account is not active",
                ))?;
        app.sessions.put(actor.clone(), now);
        Ok(Auth(actor))
    }
}

/// A token whose signature and expiry were checked earlier in this request (by the rate
/// limiter), with what it names.
#[derive(Clone, Debug)]
pub struct Verified {
    pub token: String,
    pub user: UserId,
    pub session: SessionId,
}

/// Sessions checked against the store lately, so a burst of requests from one session costs one
/// read. Anything that can end a session or change what an account may do (sign-out, refresh,
/// admin and organizer changes, invitations) clears it here and, through Redis, on every
/// instance at once; `ttl_ms` bounds how long a change could go unseen if that notice is lost.
pub struct SessionCache {
    entries: std::sync::Mutex<std::collections::HashMap<SessionId, (Actor, i64)>>,
    ttl_ms: i64,
}

/// Entries kept at most; beyond it the cache starts over.
const SESSION_CACHE_ENTRIES: usize = 100_000;

impl SessionCache {
    pub fn new(ttl_ms: i64) -> Self {
        Self {
            entries: Default::default(),
            ttl_ms,
        }
    }

    pub fn get(&self, session: &SessionId, user: &UserId, now: Timestamp) -> Option<Actor> {
        let entries = self.entries.lock().expect("session cache lock");
        let (actor, at) = entries.get(session)?;
        let fresh = (*at..*at + self.ttl_ms).contains(&now.unix_ms());
        (&actor.user_id == user && fresh).then(|| actor.clone())
    }

    pub fn put(&self, actor: Actor, now: Timestamp) {
        if self.ttl_ms <= 0 {
            return;
        }
        let mut entries = self.entries.lock().expect("session cache lock");
        if entries.len() >= SESSION_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(actor.session_id.clone(), (actor, now.unix_ms()));
    }

    pub fn clear(&self) {
        self.entries.lock().expect("session cache lock").clear();
    }
}

/// A write to accounts, sessions, organizers or memberships: once it succeeds, every cached
/// session check is out of date. Signing in or up creates a session but changes none, so it
/// is not one.
#[derive(Clone, Copy)]
pub struct SessionWrite {
    /// A refresh token used twice ends its session even though that request itself fails.
    refresh: bool,
}

impl SessionWrite {
    pub fn of(path: &str) -> Option<Self> {
        let prefixes = [
            "/api/v1/auth/",
            "/api/v1/admin/",
            "/api/v1/organizer",
            "/api/v1/invitations/",
            "/api/v1/me",
        ];
        let accounts = prefixes.iter().any(|prefix| path.starts_with(prefix))
            && !matches!(path, "/api/v1/auth/login" | "/api/v1/auth/register");
        accounts.then_some(Self {
            refresh: path == "/api/v1/auth/refresh",
        })
    }

    pub fn stales_sessions(self, status: StatusCode) -> bool {
        status.is_success() || self.refresh
    }
}

#[cfg(test)]
mod session_cache_tests {
    use super::*;

    #[test]
    fn checks_are_reused_for_their_owner_within_the_ttl_only() {
        let cache = SessionCache::new(1_000);
        let actor = Actor {
            user_id: UserId::generate(),
            role: boxoffice_core::user::Role::Customer,
            session_id: SessionId::generate(),
            organizer: None,
        };
        let at = Timestamp::from_unix_ms(10_000);
        cache.put(actor.clone(), at);
        let session = actor.session_id.clone();
        assert_eq!(
            cache.get(&session, &actor.user_id, at.plus_ms(999)),
            Some(actor.clone())
        );
        assert_eq!(
            cache.get(&session, &actor.user_id, at.plus_ms(1_000)),
            None,
            "stale"
        );
        assert_eq!(
            cache.get(&session, &UserId::generate(), at),
            None,
            "someone else's"
        );
        cache.clear();
        assert_eq!(cache.get(&session, &actor.user_id, at), None, "cleared");
        let strict = SessionCache::new(0);
        strict.put(actor.clone(), at);
        assert_eq!(
            strict.get(&session, &actor.user_id, at),
            None,
            "0 keeps nothing"
        );
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;

    #[test]
    fn remembered_tokens_still_lapse_and_altered_ones_are_refused() {
        let tokens = Tokens::new(b"a test key of some length", 15);
        let (user, session) = (UserId::generate(), SessionId::generate());
        let at = Timestamp::from_unix_ms(1_900_000_000_000);
        let issued = tokens
            .issue(&user, &session, boxoffice_core::user::Role::Customer, at)
            .unwrap();
        let expected = Some((user.clone(), session.clone()));
        assert_eq!(tokens.verify(&issued.token, at), expected);
        // Again, now from memory.
        assert_eq!(tokens.verify(&issued.token, at.plus_minutes(14)), expected);
        assert_eq!(
            tokens.verify(&issued.token, at.plus_minutes(15)),
            None,
            "lapsed"
        );
        // A character well inside the signature, so the change is not lost in base64 padding.
        let mut altered: Vec<char> = issued.token.chars().collect();
        let at_char = altered.len() - 5;
        altered[at_char] = if altered[at_char] == 'A' { 'B' } else { 'A' };
        let altered: String = altered.into_iter().collect();
        assert_eq!(tokens.verify(&altered, at), None, "a changed signature");
        let other = Tokens::new(b"another key altogether", 15);
        assert_eq!(other.verify(&issued.token, at), None, "another key");
    }
}
