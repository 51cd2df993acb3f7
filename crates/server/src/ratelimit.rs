//! Rate limits in tiers: every route per client address, sign-in and sign-up per address (much
//! stricter), every route per signed-in user, and a burst guard on holds and bookings per user.
//! Each tier is a GCRA (generic cell rate algorithm): a steady rate plus a burst. With Redis the
//! cells live there and all of a request's tiers are checked and charged in one script call, so
//! several instances share one budget; without Redis, or while it is unreachable, each process
//! counts in memory (`governor`), so limits loosen by the number of instances but never vanish.

use crate::cluster::RedisLink;
use crate::error::problem_response;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// A steady rate with a burst on top: `burst` requests at once, then one per `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub interval: Duration,
    pub burst: u32,
}

impl Rate {
    /// `N/s:B`, `N/m:B` or `N/h:B`: N requests per second, minute or hour, bursts of B.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad = || format!("{text:?} is not a rate like 20/s:100 (20 per second, bursts of 100)");
        let (rate, burst) = text.split_once(':').ok_or_else(bad)?;
        let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let burst: u32 = burst.trim().parse().map_err(|_| bad())?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if count == 0 || burst == 0 {
            return Err(format!(
                "{text:?}: a rate and a burst of at least 1 (limits cannot be turned off)"
            ));
        }
        Ok(Rate {
            interval: (period / count).max(Duration::from_micros(1)),
            burst,
        })
    }

    fn window(&self) -> Duration {
        self.interval * self.burst
    }
}

/// One rate per tier.
#[derive(Clone, Debug)]
pub struct RateLimits {
    pub ip: Rate,
    pub auth: Rate,
    pub user: Rate,
    pub orders: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        let rate = |text| Rate::parse(text).expect("default rates parse");
        Self {
            ip: rate("50/s:200"),
            auth: rate("10/m:10"),
            user: rate("20/s:100"),
            orders: rate("1/s:5"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Ip,
    Auth,
    User,
    Orders,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Ip => "ip",
            Tier::Auth => "auth",
            Tier::User => "user",
            Tier::Orders => "orders",
        }
    }
}

/// The verdict of one tier.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub tier: Tier,
    pub rate: Rate,
    pub allowed: bool,
    pub remaining: u64,
    /// Until the next request of this tier would be allowed (zero when allowed).
    pub retry_after: Duration,
    /// Until the tier's budget is whole again.
    pub reset: Duration,
}

type Local =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

pub struct Limiter {
    tiers: Vec<(Tier, Rate, Local)>,
    redis: Option<Arc<RedisLink>>,
    script: redis::Script,
}

/// Checks every key against its cell and charges all of them only if all allow, using Redis's
/// clock so instances agree. Times in microseconds. Returns allowed, remaining, retry, reset per key.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out, tats, all = {}, {}, true
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local next_tat = tat + interval
  local allow_at = next_tat - interval * burst
  if allow_at > now then
    all = false
    table.insert(out, 0); table.insert(out, 0); table.insert(out, allow_at - now); table.insert(out, tat - now)
  else
    tats[i] = next_tat
    table.insert(out, 1); table.insert(out, math.floor((now - allow_at) / interval))
    table.insert(out, 0); table.insert(out, next_tat - now)
  end
end
if all then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], tats[i], 'PX', math.max(1, math.ceil((tats[i] - now) / 1000)))
  end
end
return out
";

impl Limiter {
    pub fn new(limits: &RateLimits, redis: Option<Arc<RedisLink>>) -> Self {
        let local = |rate: Rate| {
            let burst = NonZeroU32::new(rate.burst).expect("bursts are at least 1");
            let quota = Quota::with_period(rate.interval)
                .expect("intervals are positive")
                .allow_burst(burst);
            RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>()
        };
        let tiers = [
            (Tier::Ip, limits.ip),
            (Tier::Auth, limits.auth),
            (Tier::User, limits.user),
            (Tier::Orders, limits.orders),
        ]
        .into_iter()
        .map(|(tier, rate)| (tier, rate, local(rate)))
        .collect();
        Self {
            tiers,
            redis,
            script: redis::Script::new(GCRA),
        }
    }

    fn rate(&self, tier: Tier) -> (Rate, &Local) {
        let (_, rate, local) = self
            .tiers
            .iter()
            .find(|(t, _, _)| *t == tier)
            .expect("every tier is configured");
        (*rate, local)
    }

    /// Checks and charges each (tier, key); shared through Redis when it answers.
    pub async fn check(&self, checks: &[(Tier, String)]) -> Vec<Decision> {
        if let Some(redis) = &self.redis {
            let keys: Vec<String> = checks
                .iter()
                .map(|(tier, key)| format!("bo:rl:{}:{key}", tier.as_str()))
                .collect();
            let args: Vec<String> = checks
                .iter()
                .flat_map(|(tier, _)| {
                    let rate = self.rate(*tier).0;
                    [
                        rate.interval.as_micros().to_string(),
                        rate.burst.to_string(),
                    ]
                })
                .collect();
            let keys_ref: Vec<&str> = keys.iter().map(String::as_str).collect();
            let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
            if let Some(flat) = redis
                .run::<Vec<i64>>(&self.script, &keys_ref, &args_ref)
                .await
                && flat.len() == checks.len() * 4
            {
                return checks
                    .iter()
                    .zip(flat.chunks(4))
                    .map(|((tier, _), cell)| Decision {
                        tier: *tier,
                        rate: self.rate(*tier).0,
                        allowed: cell[0] == 1,
                        remaining: cell[1].max(0) as u64,
                        retry_after: Duration::from_micros(cell[2].max(0) as u64),
                        reset: Duration::from_micros(cell[3].max(0) as u64),
                    })
                    .collect();
            }
        }
        checks
            .iter()
            .map(|(tier, key)| self.check_locally(*tier, key))
            .collect()
    }

    fn check_locally(&self, tier: Tier, key: &str) -> Decision {
        let (rate, local) = self.rate(tier);
        match local.check_key(&key.to_owned()) {
            Ok(state) => {
                let remaining = u64::from(state.remaining_burst_capacity());
                let used = u64::from(rate.burst).saturating_sub(remaining);
                Decision {
                    tier,
                    rate,
                    allowed: true,
                    remaining,
                    retry_after: Duration::ZERO,
                    reset: rate.interval * used as u32,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    tier,
                    rate,
                    allowed: false,
                    remaining: 0,
                    retry_after: wait,
                    reset: rate.window(),
                }
            }
        }
    }

    /// Forgets idle in-memory cells, so one-off visitors do not accumulate.
    pub fn tidy(&self) {
        for (_, _, local) in &self.tiers {
            local.retain_recent();
        }
    }
}

/// The address the request came from: the socket's peer, or behind a trusted proxy the last
/// `X-Forwarded-For` hop (the one the proxy itself appended).
fn client_ip(request: &Request, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(forwarded) = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return forwarded.to_string();
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The signed-in user, read from the token's signature alone (the handler checks the session).
fn user_of(app: &crate::state::AppState, headers: &HeaderMap) -> Option<crate::auth::Verified> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| crate::auth::cookie(headers, crate::auth::SESSION_COOKIE))?
        .trim();
    let (user, session) = app.tokens.verify(token, app.clock.now())?;
    Some(crate::auth::Verified {
        token: token.to_owned(),
        user,
        session,
    })
}

/// Whether a route is exempt: probes and scrapes come from the platform, not from clients.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

pub async fn enforce(
    State(app): State<crate::state::AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let path = path.as_str();
    if exempt(path) {
        return next.run(request).await;
    }
    let ip = client_ip(&request, app.config.trust_forwarded_for);
    let mut checks = vec![(Tier::Ip, ip.clone())];
    let signs_in = request.method() == Method::POST
        && matches!(
            path,
            "/api/v1/auth/login" | "/api/v1/auth/register" | "/api/v1/auth/refresh"
        );
    if signs_in {
        checks.push((Tier::Auth, ip.clone()));
    }
    let verified = user_of(&app, request.headers());
    let user = verified.as_ref().map(|v| v.user.to_string());
    if let Some(user) = &user {
        checks.push((Tier::User, user.clone()));
    }
    if let Some(verified) = verified {
        // Checked once: `Auth` takes it from here instead of verifying the signature again.
        request.extensions_mut().insert(verified);
    }
    let orders =
        request.method() == Method::POST && (path == "/api/v1/holds" || path == "/api/v1/bookings");
    if orders {
        checks.push((Tier::Orders, user.unwrap_or(ip)));
    }
    let decisions = app.limiter.check(&checks).await;
    if let Some(denied) = decisions
        .iter()
        .filter(|d| !d.allowed)
        .max_by_key(|d| d.retry_after)
    {
        crate::metrics::rate_limited(denied.tier.as_str());
        let retry_seconds = denied.retry_after.as_millis().div_ceil(1000).max(1) as u64;
        let mut response = problem_response(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            &format!(
                "too many requests ({} limit); try again in {retry_seconds} s",
                denied.tier.as_str()
            ),
            json!({ "tier": denied.tier.as_str(), "retry_after_seconds": retry_seconds }),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_seconds));
        add_headers(response.headers_mut(), denied);
        return response;
    }
    let mut response = next.run(request).await;
    if let Some(tightest) = decisions.iter().min_by_key(|d| d.remaining) {
        add_headers(response.headers_mut(), tightest);
    }
    response
}

fn add_headers(headers: &mut HeaderMap, decision: &Decision) {
    let seconds = |d: Duration| d.as_millis().div_ceil(1000) as u64;
    headers.insert("ratelimit-limit", HeaderValue::from(decision.rate.burst));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert(
        "ratelimit-reset",
        HeaderValue::from(seconds(decision.reset)),
    );
    if let Ok(policy) = HeaderValue::from_str(&format!(
        "{};w={};name=\"{}\"",
        decision.rate.burst,
        seconds(decision.rate.window()).max(1),
        decision.tier.as_str()
    )) {
        headers.insert("ratelimit-policy", policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_refuse_to_switch_limits_off() {
        assert_eq!(
            Rate::parse("20/s:100"),
            Ok(Rate {
                interval: Duration::from_millis(50),
                burst: 100
            })
        );
        assert_eq!(
            Rate::parse("10/m:5").unwrap().interval,
            Duration::from_secs(6)
        );
        assert!(Rate::parse("0/s:10").is_err());
        assert!(Rate::parse("10/s:0").is_err());
        assert!(Rate::parse("10 per second").is_err());
        assert!(Rate::parse("10/d:1").is_err());
    }

    #[tokio::test]
    async fn in_memory_cells_allow_the_burst_then_refuse_with_a_wait() {
        let limits = RateLimits {
            user: Rate::parse("1/m:3").unwrap(),
            ..Default::default()
        };
        let limiter = Limiter::new(&limits, None);
        let alice = [(Tier::User, "usr_a".to_string())];
        let mut remaining = Vec::new();
        for _ in 0..3 {
            remaining.push(limiter.check(&alice).await[0].remaining);
        }
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.check(&alice).await[0];
        assert!(!refused.allowed);
        assert!(refused.retry_after > Duration::from_secs(50));
        let other = limiter.check(&[(Tier::User, "usr_b".to_string())]).await;
        assert!(other[0].allowed, "cells are per key");
    }
}
