//! Prometheus metrics at `/metrics`: request counts and latency per route, and the sale's own
//! counters (holds, bookings, cancellations, expiries, holds and bookings committed in groups)
//! and gauges (active holds, database pool, holds and bookings waiting for their group, events
//! waiting for each outbox channel).
//! One recorder per process, shared by every app in it (tests run several).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use boxoffice_store::Channel;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds: fine below 10 ms, where a healthy sale lives.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .expect("latency buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test process); then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Counts and times every request under the route it matched (not its raw path, which would
/// make one series per id).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| interned(p.as_str()));
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = interned(response.status().as_str());
    metrics::counter!("boxoffice_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    metrics::histogram!("boxoffice_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The standard methods by name; any other (a client may invent one) counts as `OTHER`, so
/// the series stay few.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Label values that last as long as the process: matched routes and statuses are few and
/// fixed, so each is kept once and labels borrow it instead of allocating on every request.
fn interned(value: &str) -> &'static str {
    static SEEN: std::sync::LazyLock<std::sync::RwLock<std::collections::HashSet<&'static str>>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(known) = SEEN.read().expect("label lock").get(value) {
        return known;
    }
    let mut seen = SEEN.write().expect("label lock");
    if let Some(known) = seen.get(value) {
        return known;
    }
    let kept: &'static str = Box::leak(value.to_owned().into_boxed_str());
    seen.insert(kept);
    kept
}

pub async fn render(axum::extract::State(app): axum::extract::State<crate::AppState>) -> Response {
    if let Some(bytes) = resident_memory_bytes() {
        metrics::gauge!("boxoffice_process_resident_memory_bytes").set(bytes as f64);
    }
    let groups = app.store.group_stats();
    for (kind, stats) in [
        ("hold", groups.holds),
        ("booking", groups.bookings),
        ("release", groups.releases),
    ] {
        metrics::counter!("boxoffice_commit_groups_total", "kind" => kind).absolute(stats.groups);
        metrics::counter!("boxoffice_grouped_commands_total", "kind" => kind)
            .absolute(stats.claims);
        metrics::gauge!("boxoffice_waiting_for_group", "kind" => kind).set(stats.waiting as f64);
        metrics::counter!("boxoffice_failed_groups_total", "kind" => kind).absolute(stats.failed);
        metrics::counter!("boxoffice_commit_group_busy_microseconds_total", "kind" => kind)
            .absolute(stats.busy_us);
    }
    // The stream's backlog only means something where an instance streams (without Redis
    // nothing reads it, and it only grows).
    let channels = Channel::ALL
        .into_iter()
        .filter(|channel| *channel != Channel::Stream || app.redis.is_some());
    for channel in channels {
        if let Ok(waiting) = app.store.unsent_count(channel).await {
            metrics::gauge!("boxoffice_outbox_unsent", "channel" => channel.name())
                .set(waiting as f64);
        }
    }
    let body = handle().render();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

pub fn hold_created() {
    metrics::counter!("boxoffice_holds_created_total").increment(1);
}

/// `reason` is the problem type a refused hold got, e.g. `seat_unavailable`.
pub fn hold_refused(reason: &'static str) {
    metrics::counter!("boxoffice_holds_refused_total", "reason" => reason).increment(1);
}

/// Refused by the in-process filter, without a database round trip.
pub fn hold_filtered(reason: &'static str) {
    metrics::counter!("boxoffice_holds_refused_total", "reason" => reason).increment(1);
    metrics::counter!("boxoffice_holds_filtered_total").increment(1);
}

pub fn booking_confirmed() {
    metrics::counter!("boxoffice_bookings_confirmed_total").increment(1);
}

pub fn booking_cancelled(count: u64) {
    metrics::counter!("boxoffice_bookings_cancelled_total").increment(count);
}

pub fn holds_expired(count: u64) {
    metrics::counter!("boxoffice_holds_expired_total").increment(count);
}

pub fn mail_sent() {
    metrics::counter!("boxoffice_mail_sent_total").increment(1);
}

/// One webhook delivery attempt, by whether the receiver took it.
pub fn webhook_attempt(delivered: bool) {
    let outcome = if delivered { "delivered" } else { "failed" };
    metrics::counter!("boxoffice_webhook_attempts_total", "outcome" => outcome).increment(1);
}

pub fn gauges(active_holds: i64, pool: boxoffice_store::PoolStats) {
    metrics::gauge!("boxoffice_holds_active").set(active_holds as f64);
    metrics::gauge!("boxoffice_db_pool_connections", "state" => "idle").set(pool.idle as f64);
    metrics::gauge!("boxoffice_db_pool_connections", "state" => "in_use")
        .set(pool.size.saturating_sub(pool.idle) as f64);
}

/// Open WebSocket and SSE connections of this process.
pub fn live_connections(open: usize) {
    metrics::gauge!("boxoffice_live_connections").set(open as f64);
}

pub fn live_event(kind: &'static str) {
    metrics::counter!("boxoffice_live_events_total", "type" => kind).increment(1);
}

/// How long a delivery took to reach nine in ten of its show's viewers here.
pub fn live_spread(took: std::time::Duration) {
    metrics::histogram!("boxoffice_live_spread_duration_seconds").record(took.as_secs_f64());
}

/// A viewer fell a whole ring behind (or could not be written to) and was cut off.
pub fn slow_consumer_dropped(transport: &'static str) {
    metrics::counter!("boxoffice_live_slow_consumers_dropped_total", "transport" => transport)
        .increment(1);
}

pub fn waitlist_offered() {
    metrics::counter!("boxoffice_waitlist_offers_total").increment(1);
}

/// A show's viewers were sent a fresh snapshot because seat changes were never told to them.
pub fn live_resync() {
    metrics::counter!("boxoffice_live_resyncs_total").increment(1);
}

pub fn live_publish_failed() {
    metrics::counter!("boxoffice_live_publish_failures_total").increment(1);
}

pub fn rate_limited(tier: &'static str) {
    metrics::counter!("boxoffice_rate_limited_total", "tier" => tier).increment(1);
}

pub fn redis_healthy(up: bool) {
    metrics::gauge!("boxoffice_redis_up").set(if up { 1.0 } else { 0.0 });
}

/// This process's resident memory, from `/proc/self/statm` (Linux; elsewhere nothing).
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

pub fn queue_admitted(count: u64) {
    metrics::counter!("boxoffice_queue_admitted_total").increment(count);
}

/// People waiting in a show's line (not yet admitted), as this process last saw it.
pub fn queue_waiting(show: &boxoffice_core::ids::ShowId, waiting: u64) {
    metrics::gauge!("boxoffice_queue_waiting", "show" => show.to_string()).set(waiting as f64);
}
