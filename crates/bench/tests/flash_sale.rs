//! The bench tool's own behaviour (not its numbers): a short flash sale against the real app
//! on each engine ends with a clean checker verdict and a consistent history.

use boxoffice_bench::{Options, Scenario};
use boxoffice_testkit::{Engine, TestApp};
use std::time::Duration;

/// A small run against `target`: 20 seats, no standing area, 1 s ceilings; each test says what
/// it changes.
fn small_run(target: &str, clients: usize, requests: u64) -> Options {
    Options {
        targets: vec![target.to_owned()],
        clients,
        duration: Duration::from_secs(30),
        max_requests: Some(requests),
        seats: 20,
        ga_capacity: 0,
        pg_url: None,
        ceiling_duration: Duration::from_secs(1),
        people: 1,
        redis_url: None,
        change_rate: None,
        pay_share: 0.8,
    }
}

async fn a_short_sale_is_recorded_and_checked(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let options = Options {
        ga_capacity: 15,
        // Paced, as `--rate` runs are: 80 changes at 200 a second.
        change_rate: Some(200.0),
        ..small_run(&app.base, 8, 300)
    };
    let report = boxoffice_bench::run(Scenario::FlashSale, &options)
        .await
        .expect("the run completes");
    let verdict = report.checker.clone().expect("a flash sale is checked");
    assert!(verdict.clean, "{}", report.table());
    let (sold, capacity) = report.sold.expect("sold places are reported");
    assert_eq!(capacity, 35);
    assert!(sold <= capacity);
    assert!(report.counts["bookings"] <= report.counts["holds_granted"]);
    assert_eq!(
        report.counts["hold_attempts"], 300,
        "the request budget is kept"
    );
    assert!(
        report
            .ceilings
            .http
            .as_ref()
            .is_some_and(|h| h.requests_per_s > 0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_short_sale() {
    a_short_sale_is_recorded_and_checked(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_short_sale() {
    a_short_sale_is_recorded_and_checked(Engine::Postgres).await;
}

/// `--pay-share 0`: the hold path alone, every granted hold released and none paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_where_nobody_pays_releases_every_granted_hold() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let options = Options {
        ga_capacity: 15,
        pay_share: 0.0,
        ..small_run(&app.base, 4, 120)
    };
    let report = boxoffice_bench::run(Scenario::FlashSale, &options)
        .await
        .expect("the run completes");
    assert!(
        report.checker.as_ref().is_some_and(|v| v.clean),
        "{}",
        report.table()
    );
    assert_eq!(report.counts["bookings"], 0);
    assert!(report.counts["holds_granted"] > 0, "{}", report.table());
    assert_eq!(report.counts["releases"], report.counts["holds_granted"]);
    assert_eq!(report.sold, Some((0, 35)), "nothing is sold");
    let busy = |line: &str| report.lines_busy.get(line).copied();
    assert!(
        busy("hold").is_some_and(|b| b > 0.0) && busy("release").is_some_and(|b| b > 0.0),
        "the hold and release lines decided groups: {:?}",
        report.lines_busy
    );
    assert_eq!(busy("booking"), Some(0.0), "no booking group ran");
    let granted_in_stretches: f64 = report
        .timeline
        .iter()
        .map(|w| w.holds_granted_per_s * (w.to_s - w.from_s))
        .sum();
    assert_eq!(
        granted_in_stretches.round() as u64,
        report.counts["holds_granted"],
        "every granted hold is in one stretch of the timeline: {:?}",
        report.timeline
    );

    let out_of_range = Options {
        pay_share: 1.5,
        max_requests: Some(1),
        ..options
    };
    let refused = boxoffice_bench::run(Scenario::FlashSale, &out_of_range).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("between 0 and 1")));
}

/// On PostgreSQL the run ends with both pgbench ceilings: the claim statement on a scratch
/// table, and the hold path's own statements on the sale's show, which leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ceilings_run_the_claim_and_the_hold_path_through_pgbench() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let options = Options {
        pay_share: 0.0,
        pg_url: Some(app.database_url().to_owned()),
        ..small_run(&app.base, 4, 60)
    };
    let report = boxoffice_bench::run(Scenario::FlashSale, &options)
        .await
        .expect("the run and its ceilings complete");
    let claim = report
        .ceilings
        .pgbench
        .as_ref()
        .expect("the claim's ceiling");
    assert!(claim.transactions_per_s > 0.0, "{}", report.table());
    let hold_path = report
        .ceilings
        .pgbench_hold_path
        .as_ref()
        .expect("the hold path's ceiling");
    assert!(hold_path.transactions_per_s > 0.0, "{}", report.table());
    assert!([4, 8, 16].contains(&hold_path.clients));
    assert!(
        hold_path.clients <= 20,
        "no more clients than free seats (20): {}",
        hold_path.clients
    );
    assert!(
        report
            .table()
            .contains("granted holds / pgbench on the hold path"),
        "{}",
        report.table()
    );
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(app.database_url())
        .await
        .unwrap();
    let (left, held, scratch): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM holds WHERE id LIKE 'hld\\_bench%'), \
         (SELECT COUNT(*) FROM show_seats WHERE state <> 'free'), \
         (SELECT COUNT(*) FROM pg_class WHERE relname LIKE 'bench\\_%')",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(
        (left, held, scratch),
        (0, 0, 0),
        "the ceilings' holds, held seats and scratch tables are gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_counts_every_change_at_every_viewer() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let options = small_run(&app.base, 6, 80);
    let report = boxoffice_bench::run(Scenario::Fanout, &options)
        .await
        .expect("the run completes");
    assert_eq!(report.counts["changes"], 80, "{}", report.table());
    assert_eq!(report.counts["deliveries"], 80 * 6, "{}", report.table());
    assert_eq!(report.counts["deliveries_missing"], 0);
    assert_eq!(report.counts["sequence_gaps"], 0);
    assert!(
        report.counts["server_rss_mb_after"] > 0,
        "memory is read from /metrics"
    );
    // Every delivery is timed from its commit (the change's announced_at) and from its request.
    assert_eq!(report.latency["delivery"].count, 80 * 6);
    assert_eq!(report.latency["delivery_from_request"].count, 80 * 6);
    assert_eq!(report.latency["hold"].count, 40);
    assert_eq!(report.latency["release"].count, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_join_measures_the_line_over_http_and_in_process() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let redis = boxoffice_testkit::redis::RedisServer::start().await;
    let options = Options {
        people: 5_000,
        redis_url: Some(redis.url()),
        ..small_run(&app.base, 4, 40)
    };
    let report = boxoffice_bench::run(Scenario::QueueJoin, &options)
        .await
        .expect("the run completes");
    assert_eq!(report.latency["join"].count, 4, "{}", report.table());
    assert_eq!(report.latency["position"].count, 36);
    assert_eq!(report.counts["http_errors"], 0);
    assert_eq!(report.counts["memory_people"], 5_000);
    assert_eq!(report.counts["redis_people"], 5_000);
    assert!(report.rates_per_s["memory_joins"] > 0.0);
    assert!(report.rates_per_s["redis_looks"] > 0.0);
    let redis_ceiling = report
        .ceilings
        .redis
        .as_ref()
        .expect("measured with a Redis");
    assert!(redis_ceiling.requests_per_s > 0.0, "{}", report.table());
}
