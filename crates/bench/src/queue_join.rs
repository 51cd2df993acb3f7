//! The waiting room under a crowd, two ways. Over HTTP: `--clients` accounts join a show's line
//! on the target server(s) and then poll their position, as a waiting page does (joins/s,
//! polls/s, latency). In process: `--people` (default 1,000,000) places taken in the line
//! itself and as many positions looked up, in memory and, with `--redis-url`, in Redis (joins/s,
//! looks/s, and the memory the line takes). Registering a million accounts would measure
//! password hashing, not the line, hence the split.

use crate::api::Api;
use crate::report::{self, Latencies, Report};
use crate::{Options, flash_sale};
use boxoffice_core::Timestamp;
use boxoffice_core::ids::{ShowId, UserId};
use boxoffice_core::waiting::Room;
use boxoffice_server::cluster::RedisLink;
use boxoffice_server::queue::{Conditions, Lines};
use hyper::Method;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub async fn run(api: &Api, options: &Options) -> anyhow::Result<Report> {
    let mut report = over_http(api, options).await?;
    let (memory_rates, memory_counts) = in_process(Lines::new(None), options.people, 1).await?;
    for (name, rate) in memory_rates {
        report.rates_per_s.insert(format!("memory_{name}"), rate);
    }
    for (name, count) in memory_counts {
        report.counts.insert(format!("memory_{name}"), count);
    }
    if let Some(url) = &options.redis_url {
        let link = Arc::new(RedisLink::new(url)?);
        let before = redis_memory(url).await?;
        let (rates, counts) = in_process(Lines::new(Some(link)), options.people, 64).await?;
        let after = redis_memory(url).await?;
        for (name, rate) in rates {
            report.rates_per_s.insert(format!("redis_{name}"), rate);
        }
        for (name, count) in counts {
            if name != "line_mb" {
                report.counts.insert(format!("redis_{name}"), count);
            }
        }
        report.counts.insert(
            "redis_line_mb".into(),
            after.saturating_sub(before) / (1024 * 1024),
        );
    }
    Ok(report)
}

async fn over_http(api: &Api, options: &Options) -> anyhow::Result<Report> {
    let run = format!("queue{}", crate::unix_ms());
    let sale = flash_sale::set_up(api, options, &run).await?;
    api.must(
        Method::PUT,
        &format!("/shows/{}/waiting-room", sale.show_id),
        Some(&sale.organizer_token),
        &json!({"enabled": true, "admission_rate_per_minute": 1000}),
        200,
    )
    .await?;
    let tokens = flash_sale::customers(api, options.clients, &run).await?;
    let api = Arc::new(Api::new(&options.targets, options.clients)?);
    let started = Instant::now();
    let deadline = started + options.duration;
    let budget = Arc::new(AtomicU64::new(options.max_requests.unwrap_or(u64::MAX)));
    let mut tasks = Vec::new();
    for (client, token) in tokens.into_iter().enumerate() {
        let (api, budget, show) = (api.clone(), budget.clone(), sale.show_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies: BTreeMap<&'static str, Latencies> = BTreeMap::new();
            let mut errors = 0u64;
            let mut joined = false;
            while Instant::now() < deadline
                && budget
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
                    .is_ok()
            {
                let (name, method, path) = if joined {
                    ("position", Method::GET, format!("/queues/{show}/position"))
                } else {
                    ("join", Method::POST, format!("/queues/{show}/join"))
                };
                match api.call(client, method, &path, Some(&token), None).await {
                    Some(answer) if answer.status == 200 => {
                        joined = true;
                        latencies.entry(name).or_default().record(answer.latency);
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let (summaries, errors) = report::gather(tasks).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let rates = summaries
        .iter()
        .map(|(k, s)| (format!("http_{k}"), s.count as f64 / elapsed))
        .collect();
    Ok(Report {
        scenario: "queue-join".into(),
        targets: options.targets.clone(),
        clients: options.clients,
        duration_s: elapsed,
        rates_per_s: rates,
        counts: BTreeMap::from([("http_errors".to_owned(), errors)]),
        latency: summaries,
        ..Default::default()
    })
}

/// `people` joins, then as many position looks, with `concurrency` tasks at once.
async fn in_process(
    lines: Lines,
    people: u64,
    concurrency: u64,
) -> anyhow::Result<(BTreeMap<String, f64>, BTreeMap<String, u64>)> {
    let lines = Arc::new(lines);
    let show = ShowId::generate();
    let room = Room {
        enabled: true,
        admission_rate_per_minute: 1000,
        max_active_shoppers: None,
        session_minutes: 15,
        opens_at: Timestamp::from_unix_ms(0),
        seed: rand::random(),
    };
    let when = Conditions {
        now: Timestamp::from_unix_ms(1),
        on_sale_at: Timestamp::from_unix_ms(0),
        inventory_left: true,
    };
    let users: Arc<Vec<UserId>> = Arc::new((0..people).map(|_| UserId::generate()).collect());
    let memory_before = resident_bytes();
    let per_task = people.div_ceil(concurrency);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let (lines, users, show, room) = (lines.clone(), users.clone(), show.clone(), room.clone());
        tasks.push(tokio::spawn(async move {
            let from = (task * per_task) as usize;
            let to = ((task + 1) * per_task).min(people) as usize;
            for user in &users[from..to] {
                lines
                    .join(&show, user, &room, when)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let joining = started.elapsed().as_secs_f64();
    let memory_after = resident_bytes();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let (lines, users, show) = (lines.clone(), users.clone(), show.clone());
        tasks.push(tokio::spawn(async move {
            let mut worst = 0u64;
            for n in 0..per_task {
                // Spread over the line: looks hit the head, the middle and the back alike.
                let index = ((task * per_task + n) * 7_919 % people) as usize;
                let (place, _) = lines
                    .look(&show, &users[index], when.now)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                anyhow::ensure!(place.joined, "a joined account lost its place");
                worst = worst.max(place.rank.unwrap_or(0));
            }
            anyhow::Ok(worst)
        }));
    }
    let mut last_rank = 0;
    for task in tasks {
        last_rank = last_rank.max(task.await??);
    }
    let looking = started.elapsed().as_secs_f64();
    anyhow::ensure!(last_rank < people, "a rank beyond the line");
    Ok((
        BTreeMap::from([
            ("joins".to_owned(), people as f64 / joining),
            (
                "looks".to_owned(),
                (per_task * concurrency) as f64 / looking,
            ),
        ]),
        BTreeMap::from([
            ("people".to_owned(), people),
            (
                "line_mb".to_owned(),
                memory_after.saturating_sub(memory_before) / (1024 * 1024),
            ),
        ]),
    ))
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

async fn redis_memory(url: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut connection)
        .await?;
    let used = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(used)
}
