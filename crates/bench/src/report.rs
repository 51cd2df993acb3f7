//! What a run found: throughput, latency percentiles per operation (HDR histograms), the
//! checker's verdict and the ceilings; printed as a table or as JSON.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies of one kind of operation, in microseconds, 1 µs to 60 s at 3 significant digits.
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, 60_000_000);
        self.0.record(micros).expect("clamped into bounds");
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("same bounds");
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |q: f64| self.0.value_at_quantile(q) as f64 / 1000.0;
        LatencySummary {
            count: self.0.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: self.0.max() as f64 / 1000.0,
        }
    }
}

/// Per-operation latencies of every client task merged, with the tasks' error count: what the
/// read-only scenarios (browse, queue-join over HTTP) all do once their clients finish.
pub async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(BTreeMap<&'static str, Latencies>, u64)>>,
) -> anyhow::Result<(BTreeMap<String, LatencySummary>, u64)> {
    let mut latencies: BTreeMap<&'static str, Latencies> = BTreeMap::new();
    let mut errors = 0;
    for task in tasks {
        let (client, failed) = task.await?;
        errors += failed;
        for (name, l) in &client {
            latencies.entry(name).or_default().merge(l);
        }
    }
    let summaries = latencies
        .iter()
        .map(|(k, l)| ((*k).to_owned(), l.summary()))
        .collect();
    Ok((summaries, errors))
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    pub seats_sold_twice: u64,
    pub acknowledged_bookings_missing: u64,
    pub bookings_nobody_attempted: u64,
    /// held + sold + free = capacity for every area, and sold matches the bookings.
    pub ga_conserved: bool,
    pub holds_honored_past_expiry: u64,
    /// Seats the seat map shows sold that no confirmed booking holds, or the reverse.
    pub seat_map_disagreements: u64,
    pub clean: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct HttpCeiling {
    pub route: String,
    pub requests_per_s: f64,
    pub latency: LatencySummary,
}

#[derive(Clone, Debug, Serialize)]
pub struct PgbenchCeiling {
    pub statement: String,
    pub clients: usize,
    pub transactions_per_s: f64,
    pub latency_avg_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RedisCeiling {
    pub command: String,
    pub clients: usize,
    pub requests_per_s: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Ceilings {
    pub http: Option<HttpCeiling>,
    pub pgbench: Option<PgbenchCeiling>,
    /// pgbench running the hold path's own transactions (a hold of one seat and its release),
    /// for a flash sale on PostgreSQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgbench_hold_path: Option<PgbenchCeiling>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisCeiling>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub targets: Vec<String>,
    pub clients: usize,
    pub duration_s: f64,
    /// Operations per second by kind (`hold_attempts`, `holds_granted`, `bookings`, `reads`, …).
    pub rates_per_s: BTreeMap<String, f64>,
    pub counts: BTreeMap<String, u64>,
    pub latency: BTreeMap<String, LatencySummary>,
    /// Sold places out of those that exist (seats + general admission), when selling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sold: Option<(i64, i64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checker: Option<Verdict>,
    /// The show a flash sale sold (the hold path's ceiling runs on it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_id: Option<String>,
    /// A flash sale: the share of the run each group-commit line (hold, booking, release) of a
    /// server spent deciding groups. A show's line has one group in flight at a time, so a line
    /// near 1 is what the sale waits for.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub lines_busy: BTreeMap<String, f64>,
    /// A flash sale in stretches of `WINDOW_S` seconds, by when each operation began: how a sale
    /// holds up as its show fills (totals hide a sale that slows down near its sell-out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Window>,
    /// A flash sale after its last granted hold, when every attempt is refused: the rate the
    /// issue's target for refused attempts is about (the run's whole rate mixes in the sale
    /// itself, when clients wait on granted holds and bookings instead of attempting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sold_out: Option<SoldOut>,
    pub ceilings: Ceilings,
}

/// The stretch of a flash sale after its last granted hold.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SoldOut {
    /// Seconds since the sale began when the last granted hold was answered.
    pub from_s: f64,
    pub to_s: f64,
    /// Hold attempts begun in the stretch and refused, a second.
    pub refused_per_s: f64,
}

/// The shortest sold-out stretch worth a rate: a second of attempts at least.
pub const SOLD_OUT_MIN_S: f64 = 1.0;

/// One stretch of a flash sale's timeline.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Window {
    /// Seconds since the sale began.
    pub from_s: f64,
    pub to_s: f64,
    pub hold_attempts_per_s: f64,
    pub holds_granted_per_s: f64,
    pub bookings_per_s: f64,
    /// Of the holds granted that began in the stretch.
    pub hold_granted_p99_ms: f64,
}

/// The length of a timeline's stretches.
pub const WINDOW_S: f64 = 5.0;

impl Report {
    pub fn table(&self) -> String {
        let mut out = format!(
            "scenario {} — {} clients against {} for {:.1} s\n",
            self.scenario,
            self.clients,
            self.targets.join(", "),
            self.duration_s
        );
        out += "  throughput\n";
        for (name, rate) in &self.rates_per_s {
            out += &format!("    {name:<20} {rate:>10.1} /s\n");
        }
        out += "  totals\n";
        for (name, count) in &self.counts {
            out += &format!("    {name:<20} {count:>10}\n");
        }
        out += &format!(
            "  {:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
            "latency (ms)", "count", "p50", "p90", "p99", "p999", "max"
        );
        for (name, l) in &self.latency {
            out += &format!(
                "  {name:<22} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}\n",
                l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            );
        }
        for (line, busy) in &self.lines_busy {
            out += &format!("  {line} line busy {:.1} % of the run\n", 100.0 * busy);
        }
        if self.timeline.len() > 1 {
            out += &format!(
                "  {:<22} {:>8} {:>8} {:>8} {:>8}\n",
                "over time (s)", "attempts", "granted", "booked", "hold p99"
            );
            for w in &self.timeline {
                out += &format!(
                    "  {:<22} {:>8.1} {:>8.1} {:>8.1} {:>8.2}\n",
                    format!("{:.0}-{:.0}", w.from_s, w.to_s),
                    w.hold_attempts_per_s,
                    w.holds_granted_per_s,
                    w.bookings_per_s,
                    w.hold_granted_p99_ms
                );
            }
        }
        if let Some(s) = &self.sold_out {
            out += &format!(
                "  sold out from {:.1} s to {:.1} s: {:.1} refused attempts/s\n",
                s.from_s, s.to_s, s.refused_per_s
            );
        }
        if let Some((sold, capacity)) = self.sold {
            out += &format!("  sold {sold} of {capacity}\n");
        }
        if let Some(v) = &self.checker {
            out += &format!(
                "  checker: {} (sold twice {}, acknowledged missing {}, unattempted {}, GA conserved {}, past expiry {}, map disagreements {})\n",
                if v.clean { "CLEAN" } else { "VIOLATIONS" },
                v.seats_sold_twice,
                v.acknowledged_bookings_missing,
                v.bookings_nobody_attempted,
                v.ga_conserved,
                v.holds_honored_past_expiry,
                v.seat_map_disagreements
            );
        }
        if let Some(h) = &self.ceilings.http {
            out += &format!(
                "  ceiling HTTP {}: {:.1} req/s, p99 {:.2} ms\n",
                h.route, h.requests_per_s, h.latency.p99_ms
            );
        }
        if let Some(p) = &self.ceilings.pgbench {
            out += &format!(
                "  ceiling pgbench ({} clients): {:.1} tps, avg {:.2} ms — {}\n",
                p.clients, p.transactions_per_s, p.latency_avg_ms, p.statement
            );
        }
        if let Some(p) = &self.ceilings.pgbench_hold_path {
            out += &format!(
                "  ceiling pgbench, the hold path ({} clients): {:.1} holds+releases/s, avg {:.2} ms — {}\n",
                p.clients, p.transactions_per_s, p.latency_avg_ms, p.statement
            );
        }
        if let (Some(s), Some(h)) = (&self.sold_out, &self.ceilings.http)
            && h.requests_per_s > 0.0
        {
            out += &format!(
                "  refused attempts once sold out / HTTP ceiling: {:.1} %\n",
                100.0 * s.refused_per_s / h.requests_per_s
            );
        }
        let granted = self
            .rates_per_s
            .get("holds_granted")
            .copied()
            .unwrap_or(0.0);
        for (name, ceiling) in [
            ("the claim statement", &self.ceilings.pgbench),
            ("the hold path", &self.ceilings.pgbench_hold_path),
        ] {
            if let Some(p) = ceiling
                .as_ref()
                .filter(|p| p.transactions_per_s > 0.0 && granted > 0.0)
            {
                out += &format!(
                    "  granted holds / pgbench on {name}: {:.1} %\n",
                    100.0 * granted / p.transactions_per_s
                );
            }
        }
        if let Some(r) = &self.ceilings.redis {
            out += &format!(
                "  ceiling redis-benchmark {} ({} clients): {:.1} req/s\n",
                r.command, r.clients, r.requests_per_s
            );
        }
        out
    }
}
