//! The flash sale: N clients race for one show's seats (explicit pairs and best-available) and
//! its general-admission area; each holds, then mostly pays, sometimes abandons (releases) or
//! cancels after paying. Every operation is recorded for the checker.

use crate::Options;
use crate::api::Api;
use crate::checker::{self, Op, OpKind, Outcome};
use crate::report::{Latencies, Report, SOLD_OUT_MIN_S, SoldOut, WINDOW_S, Window};
use boxoffice_core::Timestamp;
use hyper::Method;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const PASSWORD: &str = "bench password 123";
const CARD: &str = "4242424242424242";

pub struct Sale {
    pub show_id: String,
    /// The organizer's access token, for settings made after set-up.
    pub organizer_token: String,
    pub seat_ids: Vec<String>,
    pub area_id: String,
    pub capacity: i64,
}

/// A fresh organizer, venue, event and show for this run, so runs never see each other's sales.
pub async fn set_up(api: &Api, options: &Options, run: &str) -> anyhow::Result<Sale> {
    let organizer = api
        .must(
            Method::POST,
            "/auth/register",
            None,
            &json!({"email": format!("bench-org-{run}@example.com"), "password": PASSWORD,
            "name": "Bench Organizer", "role": "organizer"}),
            201,
        )
        .await?;
    let token = organizer["token"].as_str().unwrap_or_default().to_owned();
    // Sections of at most 100 rows of 20 seats, as many as the seat count needs.
    let rows = options.seats.div_ceil(20).max(1);
    let sections: Vec<Value> = (0..rows.div_ceil(100))
        .map(|s| {
            let in_section = (rows - s * 100).min(100);
            json!({"name": format!("Block {}", s + 1), "generate": {"rows": format!("1-{in_section}"), "seats_per_row": 20, "category": "standard"}})
        })
        .collect();
    let mut venue =
        json!({"name": format!("Bench Arena {run}"), "city": "Benchville", "sections": sections});
    if options.ga_capacity > 0 {
        venue["areas"] =
            json!([{"name": "Floor", "category": "standing", "capacity": options.ga_capacity}]);
    }
    let venue = api
        .must(Method::POST, "/venues", Some(&token), &venue, 201)
        .await?;
    let event = api
        .must(
            Method::POST,
            "/events",
            Some(&token),
            &json!({"title": format!("Flash Sale {run}"), "kind": "concert"}),
            201,
        )
        .await?;
    // Far ahead, so the show is on sale whatever the server's clock says (tests move theirs).
    let starts_at = Timestamp::from_unix_ms(crate::unix_ms()).plus_minutes(10 * 366 * 24 * 60);
    let mut prices = json!({"standard": 5000});
    if options.ga_capacity > 0 {
        prices["standing"] = json!(3000);
    }
    let show = api
        .must(Method::POST, "/shows", Some(&token), &json!({"event_id": event["id"], "venue_id": venue["id"], "starts_at": starts_at,
            "currency": "EUR", "prices": prices, "hold_minutes": 10, "max_tickets_per_order": 4, "max_tickets_per_customer": 500}), 201)
        .await?;
    let seat_ids = venue["seats"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Sale {
        show_id: show["id"].as_str().unwrap_or_default().to_owned(),
        organizer_token: token.clone(),
        seat_ids,
        area_id: venue["areas"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        capacity: options.ga_capacity,
    })
}

/// One account per client, registered a few at a time (each costs the server a password hash).
pub async fn customers(api: &Api, clients: usize, run: &str) -> anyhow::Result<Vec<String>> {
    use futures_util::StreamExt;
    let tokens: Vec<anyhow::Result<String>> = futures_util::stream::iter(0..clients)
        .map(|i| async move {
            let body = json!({"email": format!("bench-{run}-{i}@example.com"), "password": PASSWORD, "name": format!("Fan {i}")});
            let session = api.must(Method::POST, "/auth/register", None, &body, 201).await?;
            Ok(session["token"].as_str().unwrap_or_default().to_owned())
        })
        .buffered(8)
        .collect()
        .await;
    tokens.into_iter().collect()
}

/// Each client stands for a stream of customers, taking turns among this many accounts, so that
/// no one account buys hundreds of tickets of the show (every hold reads the customer's own
/// tickets for the show, to keep to the per-customer limit).
pub const ACCOUNTS_PER_CLIENT: usize = 4;

struct Client {
    index: usize,
    /// The customers' tokens this client takes turns among, and whose turn it is.
    accounts: Vec<String>,
    turn: usize,
    ops: Vec<Op>,
    latencies: BTreeMap<&'static str, Latencies>,
}

impl Client {
    /// The next customer's turn: a hold and what follows it are one customer's.
    fn next_customer(&mut self) {
        self.turn = (self.turn + 1) % self.accounts.len();
    }

    async fn timed(
        &mut self,
        api: &Api,
        kind: OpKind,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Op {
        let invoke_ms = crate::unix_ms();
        let answer = api
            .call(
                self.index,
                method,
                path,
                Some(&self.accounts[self.turn]),
                body,
            )
            .await;
        let op = Op::from_answer(kind, invoke_ms, answer.as_ref());
        if let Some(answer) = &answer {
            let name = match (kind, op.outcome) {
                (OpKind::Hold, Outcome::Ok) => "hold_granted",
                (OpKind::Hold, _) => "hold_refused",
                (OpKind::Book, _) => "book",
                (OpKind::Cancel, _) => "cancel",
                (OpKind::Release, _) => "release",
            };
            self.latencies
                .entry(name)
                .or_default()
                .record(answer.latency);
        }
        self.ops.push(op.clone());
        op
    }
}

pub async fn run(api: &Api, options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&options.pay_share),
        "the share of holds paid must be between 0 and 1, not {}",
        options.pay_share
    );
    let run = format!("{}", crate::unix_ms());
    let sale = Arc::new(set_up(api, options, &run).await?);
    let tokens = customers(api, options.clients * ACCOUNTS_PER_CLIENT, &run).await?;
    let budget = Arc::new(AtomicU64::new(options.max_requests.unwrap_or(u64::MAX)));
    let busy_before = lines_busy_us(options).await;
    let started_ms = crate::unix_ms();
    let started = Instant::now();
    let deadline = started + options.duration;
    let api = Arc::new(Api::new(&options.targets, options.clients)?);
    let pay_share = options.pay_share;
    let mut tasks = Vec::new();
    for (index, accounts) in tokens.chunks(ACCOUNTS_PER_CLIENT).enumerate() {
        let (api, sale, budget, accounts) =
            (api.clone(), sale.clone(), budget.clone(), accounts.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut client = Client { index, accounts, turn: 0, ops: Vec::new(), latencies: BTreeMap::new() };
            let mut rng = SmallRng::seed_from_u64(index as u64);
            while Instant::now() < deadline && budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1)).is_ok() {
                client.next_customer();
                let roll: f64 = rng.random();
                let body = if roll < 0.5 && !sale.seat_ids.is_empty() {
                    let first = rng.random_range(0..sale.seat_ids.len());
                    let pair = (first + 1 < sale.seat_ids.len() && rng.random_bool(0.5)).then(|| sale.seat_ids[first + 1].clone());
                    let seats: Vec<String> = std::iter::once(sale.seat_ids[first].clone()).chain(pair).collect();
                    json!({"show_id": sale.show_id, "seat_ids": seats})
                } else if roll < 0.7 && !sale.seat_ids.is_empty() {
                    json!({"show_id": sale.show_id, "best_available": {"category": "standard", "quantity": rng.random_range(1..=2)}})
                } else if sale.capacity > 0 {
                    json!({"show_id": sale.show_id, "areas": [{"area_id": sale.area_id, "quantity": rng.random_range(1..=4)}]})
                } else {
                    json!({"show_id": sale.show_id, "best_available": {"category": "standard", "quantity": 1}})
                };
                let hold = client.timed(&api, OpKind::Hold, Method::POST, "/holds", Some(&body)).await;
                let Some(hold_id) = hold.hold_id.clone().filter(|_| hold.outcome == Outcome::Ok) else { continue };
                if rng.random_bool(pay_share) {
                    let pay = json!({"hold_id": hold_id, "payment": {"method": "card", "card_number": CARD}});
                    let booked = client.timed(&api, OpKind::Book, Method::POST, "/bookings", Some(&pay)).await;
                    if let (Outcome::Ok, Some(booking)) = (booked.outcome, booked.booking_id.clone())
                        && rng.random_bool(0.1)
                    {
                        client.timed(&api, OpKind::Cancel, Method::POST, &format!("/bookings/{booking}/cancel"), None).await;
                    }
                } else {
                    client.timed(&api, OpKind::Release, Method::DELETE, &format!("/holds/{hold_id}"), None).await;
                }
            }
            client
        }));
    }
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let busy_after = lines_busy_us(options).await;
    // Per server: each has a line of its own per show.
    let servers = options.targets.len().max(1) as f64;
    let lines_busy = busy_before
        .iter()
        .zip(&busy_after)
        .filter_map(|((line, before), (_, after))| {
            Some((
                line.to_string(),
                (after.as_ref()? - before.as_ref()?) / 1e6 / elapsed / servers,
            ))
        })
        .collect();
    let mut latencies: BTreeMap<&'static str, Latencies> = BTreeMap::new();
    let mut ops = Vec::new();
    for client in &mut clients {
        for (name, l) in &client.latencies {
            latencies.entry(name).or_default().merge(l);
        }
        ops.append(&mut client.ops);
    }
    let checked = checker::check(&api, &sale, &tokens, &ops).await?;
    let count = |kind: OpKind, outcome: Option<Outcome>| {
        ops.iter()
            .filter(|o| o.kind == kind && outcome.is_none_or(|w| o.outcome == w))
            .count() as u64
    };
    let mut counts = BTreeMap::new();
    counts.insert("hold_attempts".to_owned(), count(OpKind::Hold, None));
    counts.insert(
        "holds_granted".to_owned(),
        count(OpKind::Hold, Some(Outcome::Ok)),
    );
    counts.insert(
        "bookings".to_owned(),
        count(OpKind::Book, Some(Outcome::Ok)),
    );
    counts.insert(
        "cancellations".to_owned(),
        count(OpKind::Cancel, Some(Outcome::Ok)),
    );
    counts.insert(
        "releases".to_owned(),
        count(OpKind::Release, Some(Outcome::Ok)),
    );
    counts.insert(
        "unknown_outcomes".to_owned(),
        ops.iter().filter(|o| o.outcome == Outcome::Unknown).count() as u64,
    );
    let rates = ["hold_attempts", "holds_granted", "bookings"]
        .iter()
        .map(|k| ((*k).to_owned(), counts[*k] as f64 / elapsed))
        .collect();
    Ok(Report {
        scenario: "flash-sale".into(),
        targets: options.targets.clone(),
        clients: options.clients,
        duration_s: elapsed,
        rates_per_s: rates,
        counts,
        latency: latencies
            .iter()
            .map(|(k, l)| ((*k).to_owned(), l.summary()))
            .collect(),
        sold: Some((checked.sold, sale.seat_ids.len() as i64 + sale.capacity)),
        checker: Some(checked.verdict),
        show_id: Some(sale.show_id.clone()),
        lines_busy,
        timeline: timeline(&ops, started_ms, elapsed),
        sold_out: sold_out(&ops, started_ms, elapsed),
        ceilings: Default::default(),
    })
}

/// The sale's operations in stretches of `WINDOW_S` seconds by when they began; the last
/// stretch runs to the end of the run (a run of 12.3 s is 0-5 and 5-12.3).
fn timeline(ops: &[Op], started_ms: i64, elapsed_s: f64) -> Vec<Window> {
    let count = ((elapsed_s / WINDOW_S) as usize).max(1);
    let mut windows: Vec<(Window, Latencies)> = (0..count)
        .map(|i| {
            let from_s = i as f64 * WINDOW_S;
            let to_s = if i + 1 == count {
                elapsed_s
            } else {
                from_s + WINDOW_S
            };
            let window = Window {
                from_s,
                to_s,
                ..Default::default()
            };
            (window, Latencies::default())
        })
        .collect();
    for op in ops {
        let at_s = began_s(op, started_ms);
        let (window, granted) = &mut windows[((at_s / WINDOW_S) as usize).min(count - 1)];
        match (op.kind, op.outcome) {
            (OpKind::Hold, Outcome::Ok) => {
                window.hold_attempts_per_s += 1.0;
                window.holds_granted_per_s += 1.0;
                if let Some(latency) = op.latency {
                    granted.record(latency);
                }
            }
            (OpKind::Hold, _) => window.hold_attempts_per_s += 1.0,
            (OpKind::Book, Outcome::Ok) => window.bookings_per_s += 1.0,
            _ => {}
        }
    }
    windows
        .into_iter()
        .map(|(mut window, granted)| {
            let length = (window.to_s - window.from_s).max(1e-3);
            window.hold_attempts_per_s /= length;
            window.holds_granted_per_s /= length;
            window.bookings_per_s /= length;
            window.hold_granted_p99_ms = granted.summary().p99_ms;
            window
        })
        .collect()
}

/// When the operation began, in seconds since the sale began.
fn began_s(op: &Op, started_ms: i64) -> f64 {
    (op.invoke_ms - started_ms).max(0) as f64 / 1000.0
}

/// The stretch after the last granted hold was answered, to the end of the run, when it is long
/// enough to give a rate: a sale with no granted hold at all is sold out from its start.
fn sold_out(ops: &[Op], started_ms: i64, elapsed_s: f64) -> Option<SoldOut> {
    let from_s = ops
        .iter()
        .filter(|op| op.kind == OpKind::Hold && op.outcome == Outcome::Ok)
        .map(|op| began_s(op, started_ms) + op.latency.map_or(0.0, |l| l.as_secs_f64()))
        .fold(0.0, f64::max);
    if elapsed_s - from_s < SOLD_OUT_MIN_S {
        return None;
    }
    let refused = ops
        .iter()
        .filter(|op| op.kind == OpKind::Hold && op.outcome == Outcome::Fail)
        .filter(|op| began_s(op, started_ms) >= from_s)
        .count();
    Some(SoldOut {
        from_s,
        to_s: elapsed_s,
        refused_per_s: refused as f64 / (elapsed_s - from_s),
    })
}

/// Each group-commit line's busy time (`boxoffice_commit_group_busy_microseconds_total`) summed
/// over the targets, by kind; `None` for a kind a target does not report.
async fn lines_busy_us(options: &Options) -> Vec<(&'static str, Option<f64>)> {
    let kinds = ["hold", "booking", "release"];
    let series: Vec<String> = kinds
        .iter()
        .map(|kind| format!("boxoffice_commit_group_busy_microseconds_total{{kind=\"{kind}\"}}"))
        .collect();
    let series: Vec<&str> = series.iter().map(String::as_str).collect();
    kinds
        .into_iter()
        .zip(crate::metric_sums(options, &series).await)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn op(kind: OpKind, outcome: Outcome, invoke_ms: i64, latency_ms: u64) -> Op {
        Op {
            kind,
            invoke_ms,
            outcome,
            hold_id: None,
            booking_id: None,
            expires_at_ms: None,
            latency: Some(Duration::from_millis(latency_ms)),
        }
    }

    #[test]
    fn the_timeline_counts_each_operation_in_the_stretch_it_began_in() {
        let start = 1_000_000;
        let ops = [
            op(OpKind::Hold, Outcome::Ok, start + 100, 10),
            op(OpKind::Hold, Outcome::Fail, start + 4_900, 1),
            op(OpKind::Book, Outcome::Ok, start + 4_999, 30),
            op(OpKind::Hold, Outcome::Ok, start + 5_000, 80),
            op(OpKind::Release, Outcome::Ok, start + 6_000, 5),
            // In the run's last fraction of a second: the last stretch runs to the end.
            op(OpKind::Hold, Outcome::Ok, start + 10_200, 20),
        ];
        let windows = timeline(&ops, start, 10.5);
        assert_eq!(windows.len(), 2);
        assert_eq!((windows[0].from_s, windows[0].to_s), (0.0, 5.0));
        assert_eq!((windows[1].from_s, windows[1].to_s), (5.0, 10.5));
        assert_eq!(windows[0].hold_attempts_per_s, 2.0 / 5.0);
        assert_eq!(windows[0].holds_granted_per_s, 1.0 / 5.0);
        assert_eq!(windows[0].bookings_per_s, 1.0 / 5.0);
        assert_eq!(windows[1].holds_granted_per_s, 2.0 / 5.5);
        assert_eq!(windows[1].bookings_per_s, 0.0);
        assert!((windows[0].hold_granted_p99_ms - 10.0).abs() < 0.1);
        assert!((windows[1].hold_granted_p99_ms - 80.0).abs() < 0.1);
        assert_eq!(
            timeline(&[], start, 0.2).len(),
            1,
            "a short run is one stretch"
        );
    }

    #[test]
    fn the_sold_out_stretch_starts_when_the_last_granted_hold_was_answered() {
        let start = 1_000_000;
        let ops = [
            op(OpKind::Hold, Outcome::Ok, start + 100, 10),
            // Begun before the last grant was answered: part of the sale, not of the stretch.
            op(OpKind::Hold, Outcome::Fail, start + 1_950, 1),
            op(OpKind::Hold, Outcome::Ok, start + 1_900, 100),
            op(OpKind::Book, Outcome::Ok, start + 2_000, 30),
            op(OpKind::Hold, Outcome::Fail, start + 2_000, 1),
            op(OpKind::Hold, Outcome::Unknown, start + 3_000, 1),
            op(OpKind::Hold, Outcome::Fail, start + 5_900, 1),
        ];
        let stretch = sold_out(&ops, start, 6.0).expect("four seconds sold out");
        assert!((stretch.from_s - 2.0).abs() < 1e-9, "{stretch:?}");
        assert_eq!(stretch.to_s, 6.0);
        // Refused only: an attempt with no answer is not counted.
        assert!(
            (stretch.refused_per_s - 2.0 / 4.0).abs() < 1e-9,
            "{stretch:?}"
        );
        assert!(
            sold_out(&ops, start, 2.5).is_none(),
            "half a second gives no rate"
        );
        let never_granted = [op(OpKind::Hold, Outcome::Fail, start + 10, 1)];
        let stretch = sold_out(&never_granted, start, 2.0).expect("sold out from the start");
        assert_eq!((stretch.from_s, stretch.refused_per_s), (0.0, 0.5));
    }
}
