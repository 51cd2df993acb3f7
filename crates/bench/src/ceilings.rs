//! The ceilings of the parts underneath, measured in the same run: the HTTP stack on a trivial
//! route of the same server, and PostgreSQL's own pgbench running the claim statement.

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
    let script = std::env::temp_dir().join(format!("boxoffice-claim-{}.sql", std::process::id()));
    std::fs::write(&script, format!("\\set seat random(1, {ROWS})\n{CLAIM}\n"))?;
    let clients = options.clients.clamp(1, 64);
    let output = tokio::process::Command::new(pgbench_binary())
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &options.ceiling_duration.as_secs().max(1).to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .await?;
    let _ = std::fs::remove_file(&script);
    sqlx::query("DROP TABLE IF EXISTS bench_claims")
        .execute(&mut conn)
        .await?;
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
    Ok(PgbenchCeiling {
        statement: CLAIM.into(),
        clients,
        transactions_per_s: number_after("tps").unwrap_or(0.0),
        latency_avg_ms: number_after("latency average").unwrap_or(0.0),
    })
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
