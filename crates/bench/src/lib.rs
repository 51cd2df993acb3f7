//! `boxoffice bench`: drives one or more running servers over real HTTP from a separate
//! process, records every client operation (invoke, then ok / fail / unknown), checks the
//! history against what the servers say afterwards, and measures the ceilings of the parts
//! underneath in the same run (a trivial route; PostgreSQL's own pgbench on the claim
//! statement and on the hold path's own transactions; redis-benchmark on the line's `ZADD`) so
//! results read as ratios.

mod api;
mod browse;
mod ceilings;
mod checker;
mod fanout;
mod flash_sale;
mod queue_join;
mod report;

pub use report::Report;

use std::time::Duration;

/// The wall clock in microseconds since the Unix epoch: the clock the server stamps changes
/// with (same machine), and what names a run's organizer and accounts.
pub(crate) fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as i64)
}

/// [`unix_micros`] in milliseconds.
pub(crate) fn unix_ms() -> i64 {
    unix_micros() / 1000
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Base URLs of the servers (`http://127.0.0.1:8080`); clients are spread across them.
    pub targets: Vec<String>,
    pub clients: usize,
    pub duration: Duration,
    /// Stop after this many operations instead of (or before) the duration.
    pub max_requests: Option<u64>,
    /// Reserved seats of the flash-sale show (rounded up to whole rows of 20).
    pub seats: usize,
    /// General-admission capacity of the flash-sale show.
    pub ga_capacity: i64,
    /// The servers' PostgreSQL, for the pgbench ceiling; none for SQLite.
    pub pg_url: Option<String>,
    /// Seconds each ceiling is measured for.
    pub ceiling_duration: Duration,
    /// People put in the line by `queue-join`'s in-process part.
    pub people: u64,
    /// A Redis for `queue-join` to measure the shared line in.
    pub redis_url: Option<String>,
    /// `fanout`: seat changes per second the sellers make together; `None` is as fast as they
    /// can, 10 ms apart (the servers' saturation point, where latency is mostly queueing).
    pub change_rate: Option<f64>,
    /// `flash-sale`: the share of granted holds a client pays for (0.8 in the scripted runs);
    /// the rest it releases. 0 measures the hold path alone: every granted hold is released.
    pub pay_share: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    FlashSale,
    Browse,
    Fanout,
    QueueJoin,
}

impl Scenario {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "flash-sale" => Some(Scenario::FlashSale),
            "browse" => Some(Scenario::Browse),
            "fanout" => Some(Scenario::Fanout),
            "queue-join" => Some(Scenario::QueueJoin),
            _ => None,
        }
    }
}

/// One sample of the targets' Prometheus metrics, each of `series` (a name with its labels, as
/// the exposition writes it) summed over the targets, from one read of each target's
/// `/metrics`; `None` for a series a target lacks, all `None` when a target does not answer.
pub(crate) async fn metric_sums(options: &Options, series: &[&str]) -> Vec<Option<f64>> {
    let mut totals = vec![Some(0.0); series.len()];
    let Ok(api) = api::Api::new(&options.targets, 1) else {
        return vec![None; series.len()];
    };
    for target in 0..options.targets.len() {
        let answer = api
            .call(target, hyper::Method::GET, "/metrics", None, None)
            .await;
        let text = answer
            .as_ref()
            .and_then(|a| std::str::from_utf8(&a.bytes).ok());
        for (total, series) in totals.iter_mut().zip(series) {
            let value = text.and_then(|text| {
                text.lines().find_map(|line| {
                    line.strip_prefix(series)?
                        .strip_prefix(' ')?
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
            });
            *total = total.zip(value).map(|(sum, value)| sum + value);
        }
    }
    totals
}

pub async fn run(scenario: Scenario, options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(!options.targets.is_empty(), "give at least one --target");
    anyhow::ensure!(
        options.clients >= 1 && options.clients <= 10_000,
        "--clients must be 1 to 10000"
    );
    let api = api::Api::new(&options.targets, options.clients)?;
    let mut report = match scenario {
        Scenario::FlashSale => flash_sale::run(&api, options).await?,
        Scenario::Browse => browse::run(&api, options).await?,
        Scenario::Fanout => fanout::run(&api, options).await?,
        Scenario::QueueJoin => queue_join::run(&api, options).await?,
    };
    report.ceilings.http = Some(ceilings::http(options).await?);
    if let Some(url) = &options.pg_url {
        report.ceilings.pgbench = Some(ceilings::pgbench(url, options).await?);
        if let Some(show) = &report.show_id {
            report.ceilings.pgbench_hold_path =
                ceilings::pgbench_hold_path(url, show, options).await?;
        }
    }
    if let Some(url) = &options.redis_url {
        report.ceilings.redis = Some(ceilings::redis(url, options).await?);
    }
    Ok(report)
}
