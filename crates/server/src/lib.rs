//! HTTP for Boxoffice: turns requests into core commands and store calls, and results into JSON
//! or problem+json. Cross-cutting concerns (request ids, tracing, body limits, panics, the
//! problem shape of every error) are layers written once here.

pub mod auth;
pub mod cache;
pub mod cluster;
pub mod demo;
pub mod dispatch;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod live;
pub mod mail;
pub mod metrics;
mod pages;
pub mod payments;
pub mod queue;
pub mod ratelimit;
mod routes;
pub mod state;
pub mod sweeper;
pub mod waiting_room;
pub mod waitlist;

use crate::auth::{Passwords, Tokens};
use crate::state::{AppState, Inner, ServerConfig, TicketKeys};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use boxoffice_core::Clock;
use boxoffice_store::Store;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use state::ServerConfig as Config;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the shared state: signing keys come from the store, created on first start, so every
/// instance on one database agrees on them.
pub async fn state(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: ServerConfig,
) -> anyhow::Result<AppState> {
    // Install the recorder before the first request, so no early metric is lost.
    metrics::handle();
    let fresh_key = || base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let token_key = store.secret("token_signing_key", &fresh_key()).await?;
    let admission_key = store.secret("admission_signing_key", &fresh_key()).await?;
    let provider_key = store.secret("payment_webhook_secret", &fresh_key()).await?;
    let own_url = Arc::new(std::sync::OnceLock::new());
    let payments = Arc::new(payments::SimulatedProvider::new(
        provider_key,
        clock.clone(),
        own_url.clone(),
        config.simulated_payment_delay,
    ));
    let redis = config
        .redis_url
        .as_deref()
        .map(cluster::RedisLink::new)
        .transpose()?
        .map(Arc::new);
    Ok(AppState::new(Inner {
        live: live::Live::new(redis.clone(), config.live.clone()),
        live_receipts: Default::default(),
        waitlist_rounds: Default::default(),
        sessions: auth::SessionCache::new(config.session_cache_ms),
        limiter: ratelimit::Limiter::new(&config.rate_limits, redis.clone()),
        waiting: waiting_room::WaitingRooms::new(
            queue::Lines::new(redis.clone()),
            queue::Admissions::new(admission_key.as_bytes()),
        ),
        redis,
        stopping: watch::channel(false).0,
        payments,
        own_url,
        mailer: mail::Mailer::new(config.mail.clone())?,
        passwords: Passwords::new(config.password_cost, config.hashing_concurrency)?,
        tokens: Tokens::new(token_key.as_bytes(), config.token_ttl_minutes),
        tickets: TicketKeys::default(),
        in_flight: Default::default(),
        reads: cache::ReadCache::new(config.read_cache_ms),
        filter: std::sync::Mutex::new(boxoffice_core::filter::AvailabilityFilter::new(
            config.filter_fact_ms,
            config.filter_sold_fact_ms,
        )),
        store,
        clock,
        config,
    }))
}

/// The API's OpenAPI 3.1 document, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = api_router().split_for_parts();
    doc
}

fn api_router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa::OpenApi;
    utoipa_axum::router::OpenApiRouter::with_openapi(routes::ApiDoc::openapi())
        .nest("/api/v1", routes::api())
}

pub fn router(app: AppState) -> Router {
    let config = app.config.clone();
    let (api, doc) = api_router().split_for_parts();
    let docs = utoipa_swagger_ui::SwaggerUi::new("/docs").url("/api/v1/openapi.json", doc);
    // The pages call the API in process, past the outer layers (their own request went
    // through them already).
    let pages = pages::router(api.clone().with_state(app.clone()));
    Router::new()
        .merge(api)
        .merge(docs)
        .merge(pages)
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readiness))
        .route("/metrics", get(metrics::render))
        .layer(axum::middleware::from_fn_with_state(app.clone(), cache::writes_invalidate))
        .layer(axum::middleware::from_fn_with_state(app.clone(), ratelimit::enforce))
        .with_state(app)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn(error::problems_everywhere))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, config.request_timeout))
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
                })
                // One access-log line per request, inside its span (so with its request id).
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Ready to take traffic: the database answers. Redis being unreachable degrades the instance
/// (limits per process, no fan-out to other instances) but it keeps selling, so it stays ready
/// and says so.
async fn readiness(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let database = app.store.ping().await.is_ok();
    let redis = match &app.redis {
        None => "not_configured",
        Some(link) if link.ping().await => "up",
        Some(_) => "down",
    };
    let status = match (database, redis) {
        (false, _) => "unavailable",
        (true, "down") => "degraded",
        _ => "ready",
    };
    let code = if database {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": status,
        "database": if database { "up" } else { "down" },
        "redis": redis,
    });
    (code, Json(body)).into_response()
}

/// Serves until `shutdown` resolves: then stops accepting, closes live connections with a close
/// frame, finishes in-flight requests, and stops the background tasks.
pub async fn serve(
    listener: TcpListener,
    app: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        let _ = app.own_url.set(format!("http://{address}"));
    }
    let (stop_tasks, tasks_stopped) = watch::channel(false);
    let sweeper = tokio::spawn(sweeper::run(app.clone(), tasks_stopped.clone()));
    let dispatcher = tokio::spawn(dispatch::run(app.clone(), tasks_stopped.clone()));
    let live = tokio::spawn(live::run(app.clone(), tasks_stopped));
    let stopping = app.clone();
    let signal = async move {
        shutdown.await;
        let _ = stopping.stopping.send(true);
    };
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service)
        .with_graceful_shutdown(signal)
        .await;
    let _ = stop_tasks.send(true);
    let _ = sweeper.await;
    let _ = dispatcher.await;
    let _ = live.await;
    result
}
