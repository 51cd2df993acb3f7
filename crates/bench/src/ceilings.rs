//! The ceilings of the parts underneath, measured in the same run: the HTTP stack on a trivial
//! route of the same server, and PostgreSQL's own pgbench running the claim statement and the
//! hold path's own transactions.

use crate::Options;
use crate::api::Api;
use crate::report::{HttpCeiling, Latencies, PgbenchCeiling, RedisCeiling};
use hyper::Method;
use sqlx::Connection;
use std::sync::Arc;
use std::time::Instant;

pub async fn http(options: &Options) -> anyhow::Result<HttpCeiling> {
    let api = Arc::new(Api::new(&options.targets, options.clients)?);
    let started = Instant::now();
    let deadline = started + options.ceiling_duration;
    let mut tasks = Vec::new();
    for client in 0..options.clients {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            while Instant::now() < deadline {
                if let Some(answer) = api.call(client, Method::GET, "/healthz", None, None).await {
                    latencies.record(answer.latency);
                }
            }
            latencies
        }));
    }
    let mut all = Latencies::default();
    for task in tasks {
        all.merge(&task.await?);
    }
    let summary = all.summary();
    Ok(HttpCeiling {
        route: "GET /healthz".into(),
        requests_per_s: summary.count as f64 / started.elapsed().as_secs_f64(),
        latency: summary,
    })
}

const CLAIM: &str = "UPDATE bench_claims SET state = 'held', hold_id = :client_id, held_until = 1 WHERE seat_id = :seat AND state = 'free';";
const ROWS: i64 = 200_000;

fn pgbench_binary() -> String {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/pgbench"))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "pgbench".into())
}

/// The conditional claim `UPDATE` the store runs, on a scratch table of free seats, through
/// pgbench with as many connections as the benchmark has clients (capped at 64).
pub async fn pgbench(url: &str, options: &Options) -> anyhow::Result<PgbenchCeiling> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    for statement in [
        "DROP TABLE IF EXISTS bench_claims",
        "CREATE TABLE bench_claims (seat_id BIGINT PRIMARY KEY, state TEXT NOT NULL, hold_id TEXT, held_until BIGINT)",
    ] {
        sqlx::query(statement).execute(&mut conn).await?;
    }
    sqlx::query(
        "INSERT INTO bench_claims (seat_id, state) SELECT g, 'free' FROM generate_series(1, $1) g",
    )
    .bind(ROWS)
    .execute(&mut conn)
    .await?;
    let clients = options.clients.clamp(1, 64);
    let measured = run_pgbench(
        url,
        &format!("\\set seat random(1, {ROWS})\n{CLAIM}\n"),
        clients,
        options,
        false,
    )
    .await;
    sqlx::query("DROP TABLE IF EXISTS bench_claims")
        .execute(&mut conn)
        .await?;
    let (transactions_per_s, latency_avg_ms) = measured?;
    Ok(PgbenchCeiling {
        statement: CLAIM.into(),
        clients,
        transactions_per_s,
        latency_avg_ms,
    })
}

/// Picks each transaction's seat (its client's own, so clients never meet on a seat), customer
/// and new hold id, and the hold's rows as the JSON the store sends, in one lookup.
const HOLD_PICK: &str = "SELECT s.show_id, s.seat_id, c.user_id, h.hold_id, h.now_ms, h.now_ms + 600000 AS expires_ms, \
    h.now_ms - 3600000 AS since_ms, \
    json_build_array(json_build_object('id', h.hold_id, 'show_id', s.show_id, 'user_id', c.user_id, 'state', 'active', \
      'total_minor', s.price, 'currency', s.currency, 'created_at', h.now_ms, 'expires_at', h.now_ms + 600000, \
      'promo_id', NULL, 'promo_code', NULL, 'discount_minor', 0, 'points_redeemed', 0))::text AS holds_json, \
    json_build_array(json_build_object('hold_id', h.hold_id, 'position', 0, 'show_id', s.show_id, 'seat_id', s.seat_id, \
      'area_id', NULL, 'label', s.label, 'category', s.category, 'quantity', 1, 'unit_price_minor', s.price))::text AS items_json \
  FROM bench_hold_seats s, bench_hold_customers c, \
    (SELECT 'hld_bench' || lpad(nextval('bench_hold_ids')::text, 23, '0') AS hold_id, \
      CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT) AS now_ms) h \
  WHERE s.n = :seat AND c.n = :customer";

/// A hold of one named seat as the store's group of one sends it, then its release: the show
/// read and shared, the customer locked and their standing read, the seat locked and claimed,
/// the hold and its item written; then the show shared, the hold locked and read with its
/// items, retired, its seat freed and a payment of it waiting for the bank cancelled. The parameters are those the store binds (pgbench's
/// `-M prepared` sends them, as sqlx does, to statements prepared once per connection).
const HOLD_PATH: &str = "BEGIN;
SELECT s.*, (SELECT o.state FROM organizers o WHERE o.id = s.organizer_id) AS organizer_state, p.category AS price_category, p.amount_minor AS price_amount_minor, p.locked AS price_locked, (SELECT COUNT(*) FROM (SELECT u.id FROM users u WHERE u.id IN (:user_id) AND s.id IS NOT NULL ORDER BY u.id FOR NO KEY UPDATE) l) AS locked_customers FROM (SELECT id, event_id, organizer_id, venue_id, state, starts_at, ends_at, on_sale_at, off_sale_at, currency, hold_minutes, max_tickets_per_order, max_tickets_per_customer, format, language, created_at, cancelled_at FROM shows WHERE id = :show_id FOR SHARE) s LEFT JOIN show_prices p ON p.show_id = s.id;
SELECT h.user_id, h.state, h.expires_at, CAST(COALESCE((SELECT SUM(hi.quantity) FROM hold_items hi WHERE hi.hold_id = h.id), 0) AS BIGINT) FROM holds h WHERE h.user_id IN (:user_id) AND h.show_id = :show_id AND h.state IN ('active', 'expired') AND (h.state = 'active' OR h.expires_at > CAST(:since_ms AS BIGINT)) UNION ALL SELECT c.id, 'booked', 0, COALESCE((SELECT t.tickets FROM customer_tickets t WHERE t.user_id = c.id AND t.show_id = :show_id), 0) FROM (SELECT column1 AS id FROM (VALUES (CAST(:user_id AS TEXT))) AS listed) c;
SELECT * FROM (SELECT seat_id, state, held_until, (SELECT s.label FROM seats s WHERE s.id = show_seats.seat_id) AS label, (SELECT s.category FROM seats s WHERE s.id = show_seats.seat_id) AS category FROM show_seats WHERE show_id = :show_id AND seat_id IN (:seat_id) ORDER BY seat_id FOR UPDATE) AS locked;
WITH claims (seat_id, hold_id, held_until) AS (VALUES (CAST(:seat_id AS TEXT), CAST(:hold_id AS TEXT), CAST(:expires_ms AS BIGINT))) UPDATE show_seats SET state = 'held', hold_id = claims.hold_id, held_until = claims.held_until, booking_id = NULL FROM claims WHERE show_seats.show_id = :show_id AND show_seats.seat_id = claims.seat_id;
WITH w1 AS (INSERT INTO holds (id, show_id, user_id, state, total_minor, currency, created_at, expires_at, promo_id, promo_code, discount_minor, points_redeemed) SELECT id, show_id, user_id, state, total_minor, currency, created_at, expires_at, promo_id, promo_code, discount_minor, points_redeemed FROM json_populate_recordset(NULL::holds, CAST(:holds_json AS json)) r), w2 AS (INSERT INTO hold_items (hold_id, position, show_id, seat_id, area_id, label, category, quantity, unit_price_minor) SELECT hold_id, position, show_id, seat_id, area_id, label, category, quantity, unit_price_minor FROM json_populate_recordset(NULL::hold_items, CAST(:items_json AS json)) r) SELECT 1;
COMMIT;
BEGIN;
SELECT id FROM shows WHERE id IN (SELECT show_id FROM holds WHERE id IN (:hold_id)) ORDER BY id FOR SHARE;
SELECT h.id, h.show_id, h.user_id, h.state, h.total_minor, h.currency, h.discount_minor, h.promo_code, h.created_at, h.expires_at, h.points_redeemed, hi.seat_id, hi.area_id, hi.label, hi.category, hi.quantity, hi.unit_price_minor FROM (SELECT * FROM holds WHERE id IN (:hold_id) ORDER BY id FOR UPDATE) h LEFT JOIN LATERAL (SELECT * FROM hold_items i WHERE i.hold_id = h.id OFFSET 0) hi ON true ORDER BY h.id, hi.position;
UPDATE holds SET state = 'released' WHERE id IN (:hold_id);
UPDATE show_seats SET state = 'free', hold_id = NULL, held_until = NULL WHERE state = 'held' AND hold_id IN (:hold_id) AND (show_id, seat_id) IN (SELECT show_id, seat_id FROM show_seats WHERE state = 'held' AND hold_id IN (:hold_id) ORDER BY seat_id FOR UPDATE) RETURNING show_id, (SELECT s.row_rank FROM seats s WHERE s.id = show_seats.seat_id);
UPDATE payments SET state = 'cancelled', failure_reason = 'the customer released the seats', updated_at = :now_ms WHERE state = 'requires_action' AND hold_id IN (:hold_id);
COMMIT;
";

/// The database's own limit for the hold path: pgbench running, on the sale's show, the
/// statements a granted hold of one seat and its release send (`HOLD_PATH`, copied from what
/// the store sends for a group of one), each client on seats of its own and as one of the
/// sale's customers. One pgbench transaction is a hold and its release, the work of a granted
/// hold in `--pay-share 0`. With 8, 16 and the run's clients (two cores give their best to fewer
/// connections than 64: 1,890, 2,050 and 1,360 a second here), the best of them; what each
/// run wrote is removed after it. None when the sale left fewer free seats than clients (a
/// sold-out sale) or no customer.
pub async fn pgbench_hold_path(
    url: &str,
    show_id: &str,
    options: &Options,
) -> anyhow::Result<Option<PgbenchCeiling>> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    for statement in [
        "DROP TABLE IF EXISTS bench_hold_seats, bench_hold_customers",
        "DROP SEQUENCE IF EXISTS bench_hold_ids",
        "CREATE SEQUENCE bench_hold_ids",
        "CREATE TABLE bench_hold_seats (n BIGINT PRIMARY KEY, show_id TEXT, seat_id TEXT, label TEXT, category TEXT, price BIGINT, currency TEXT)",
        "CREATE TABLE bench_hold_customers (n BIGINT PRIMARY KEY, user_id TEXT)",
    ] {
        sqlx::query(statement).execute(&mut conn).await?;
    }
    let seats = sqlx::query(
        "INSERT INTO bench_hold_seats SELECT row_number() OVER (ORDER BY ss.seat_id), ss.show_id, ss.seat_id, s.label, s.category, p.amount_minor, sh.currency \
         FROM show_seats ss JOIN seats s ON s.id = ss.seat_id JOIN shows sh ON sh.id = ss.show_id \
         JOIN show_prices p ON p.show_id = ss.show_id AND p.category = s.category WHERE ss.show_id = $1 AND ss.state = 'free'",
    )
    .bind(show_id)
    .execute(&mut conn)
    .await?
    .rows_affected();
    let customers = sqlx::query(
        "INSERT INTO bench_hold_customers SELECT row_number() OVER (ORDER BY user_id) - 1, user_id \
         FROM (SELECT DISTINCT user_id FROM holds WHERE show_id = $1) c",
    )
    .bind(show_id)
    .execute(&mut conn)
    .await?
    .rows_affected();
    let measured = measure_hold_path(&mut conn, url, seats, customers, options).await;
    for statement in [
        "DROP TABLE IF EXISTS bench_hold_seats, bench_hold_customers",
        "DROP SEQUENCE IF EXISTS bench_hold_ids",
    ] {
        sqlx::query(statement).execute(&mut conn).await?;
    }
    measured
}

/// pgbench on the hold path with each client count; the best. What each run wrote is removed.
async fn measure_hold_path(
    conn: &mut sqlx::PgConnection,
    url: &str,
    seats: u64,
    customers: u64,
    options: &Options,
) -> anyhow::Result<Option<PgbenchCeiling>> {
    let mut best: Option<PgbenchCeiling> = None;
    let mut counts = vec![8, 16, options.clients.clamp(1, 64)];
    counts.sort_unstable();
    counts.dedup();
    counts.retain(|&clients| customers >= 1 && seats >= clients as u64);
    for clients in counts {
        let per_client = seats / clients as u64;
        let script = format!(
            "\\set seat 1 + :client_id + {clients} * random(0, {last})\n\\set customer :client_id % {customers}\n{HOLD_PICK} \\gset\n{HOLD_PATH}",
            last = per_client - 1,
        );
        let measured = run_pgbench(url, &script, clients, options, true).await;
        // A hold committed and not yet released when pgbench stopped.
        for statement in [
            "UPDATE show_seats SET state = 'free', hold_id = NULL, held_until = NULL WHERE hold_id LIKE 'hld\\_bench%'",
            "DELETE FROM hold_items WHERE hold_id LIKE 'hld\\_bench%'",
            "DELETE FROM holds WHERE id LIKE 'hld\\_bench%'",
        ] {
            sqlx::query(statement).execute(&mut *conn).await?;
        }
        let (transactions_per_s, latency_avg_ms) = measured?;
        if best
            .as_ref()
            .is_none_or(|b| transactions_per_s > b.transactions_per_s)
        {
            best = Some(PgbenchCeiling {
                statement: "a hold of one seat and its release, as the store sends them (13 statements, two commits); the best of 8, 16 and the run's clients".into(),
                clients,
                transactions_per_s,
                latency_avg_ms,
            });
        }
    }
    Ok(best)
}

/// Runs `script` through pgbench for the ceiling's duration; its transactions per second and
/// average latency. `prepared`: statements prepared once per connection, as the server's are.
async fn run_pgbench(
    url: &str,
    script: &str,
    clients: usize,
    options: &Options,
    prepared: bool,
) -> anyhow::Result<(f64, f64)> {
    let path = std::env::temp_dir().join(format!(
        "boxoffice-pgbench-{}-{}.sql",
        std::process::id(),
        crate::unix_micros()
    ));
    std::fs::write(&path, script)?;
    let output = tokio::process::Command::new(pgbench_binary())
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-M",
            if prepared { "prepared" } else { "simple" },
            "-T",
            &options.ceiling_duration.as_secs().max(1).to_string(),
            "-f",
        ])
        .arg(&path)
        .arg(url)
        .output()
        .await;
    let _ = std::fs::remove_file(&path);
    let output = output?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let number_after = |label: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
        line.split_once('=')?
            .1
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Ok((
        number_after("tps").unwrap_or(0.0),
        number_after("latency average").unwrap_or(0.0),
    ))
}

/// Redis' own limit for the line's commonest operation: `redis-benchmark` running `ZADD` (a
/// join) with as many connections as the run has clients.
pub async fn redis(url: &str, options: &Options) -> anyhow::Result<RedisCeiling> {
    let address = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("{url}: expected redis://HOST:PORT"))?;
    let clients = options.clients.clamp(1, 64);
    let output = tokio::process::Command::new("redis-benchmark")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-c",
            &clients.to_string(),
            "-n",
            "200000",
            // Random scores and members, as joins have.
            "-r",
            "1000000",
            "-q",
        ])
        .args([
            "ZADD",
            "bo:bench:ceiling",
            "__rand_int__",
            "member:__rand_int__",
        ])
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    anyhow::ensure!(output.status.success(), "redis-benchmark failed: {text}");
    // "ZADD bo:bench:ceiling …: 81234.57 requests per second, p50=0.399 msec"
    let per_second = text
        .split("requests per second")
        .next()
        .and_then(|head| {
            head.rsplit(' ')
                .nth(1)
                .or_else(|| head.split_whitespace().last())
        })
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let _: i64 = redis::cmd("DEL")
        .arg("bo:bench:ceiling")
        .query_async(&mut connection)
        .await?;
    Ok(RedisCeiling {
        command: "ZADD".into(),
        clients,
        requests_per_s: per_second,
    })
}
