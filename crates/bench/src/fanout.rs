//! The fan-out: K WebSocket viewers (the run's clients, spread over the targets) follow one show
//! while a few sellers hold and release seats on it. Each change's delivery latency is measured
//! per viewer from the commit (the `announced_at` the server stamps on it right after committing;
//! server and load generator share the machine's clock), and also from the moment its seller
//! sent the request (so including the hold itself); the sellers' own hold and release latencies
//! are reported beside. Changes that never arrive and sequence gaps are counted; the servers'
//! resident memory is read from their `/metrics` before and after.

use crate::api::Api;
use crate::report::{Latencies, Report};
use crate::{Options, flash_sale};
use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Sellers making changes; each owns one seat and alternates hold and release on it.
const SELLERS: usize = 4;
/// Pause between a seller's changes, so the run measures delivery, not the sellers' rate.
const PACE: Duration = Duration::from_millis(10);

/// (seller, held?, n-th time) → when the seller sent the request.
type Sent = RwLock<HashMap<(usize, bool, u32), Instant>>;

struct Seen {
    /// From the commit (the change's `announced_at`) to receipt.
    latencies: Latencies,
    /// From the seller's request to receipt.
    from_request: Latencies,
    delivered: u64,
    gaps: u64,
    /// WebSocket messages after the snapshot (a batch of changes is one).
    messages: u64,
}

pub async fn run(api: &Api, options: &Options) -> anyhow::Result<Report> {
    let run = format!("fanout{}", crate::unix_ms());
    let sale = flash_sale::set_up(api, options, &run).await?;
    anyhow::ensure!(
        sale.seat_ids.len() >= SELLERS,
        "the show needs at least {SELLERS} seats"
    );
    let tokens = flash_sale::customers(api, SELLERS, &run).await?;
    let memory_before = resident_memory(options).await;

    let sent: Arc<Sent> = Arc::default();
    let stop = Arc::new(tokio::sync::Notify::new());
    let seats: Arc<Vec<String>> = Arc::new(sale.seat_ids[..SELLERS].to_vec());
    // Viewers connect a hundred at a time; selling starts once every one has its snapshot.
    let handshakes = Arc::new(tokio::sync::Semaphore::new(100));
    let (ready_tx, mut ready_rx) =
        tokio::sync::mpsc::channel::<anyhow::Result<()>>(options.clients.max(1));
    let mut viewers = Vec::new();
    for viewer in 0..options.clients {
        let base = &options.targets[viewer % options.targets.len()];
        let url = format!(
            "{}/api/v1/ws",
            base.trim_end_matches('/').replacen("http", "ws", 1)
        );
        let subscribe = json!({"type": "subscribe", "show_id": sale.show_id}).to_string();
        let (sent, stop, seats, handshakes, ready) = (
            sent.clone(),
            stop.clone(),
            seats.clone(),
            handshakes.clone(),
            ready_tx.clone(),
        );
        viewers.push(tokio::spawn(async move {
            let mut seen = Seen {
                latencies: Latencies::default(),
                from_request: Latencies::default(),
                delivered: 0,
                gaps: 0,
                messages: 0,
            };
            // Listening for the stop before anything else, so it cannot be missed.
            let stopped = stop.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            let connected = async {
                let _turn = handshakes.acquire().await?;
                // Small read buffers: tungstenite zeroes a whole buffer's worth before each read,
                // and at the default 128 KiB that was a quarter of the load generator's time.
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .read_buffer_size(4 * 1024);
                let (mut socket, _) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
                socket.send(Message::Text(subscribe.into())).await?;
                // The snapshot first: from here on every change counts.
                loop {
                    match socket.next().await {
                        Some(Ok(Message::Text(text))) if text.contains("\"type\":\"snapshot\"") => {
                            break;
                        }
                        Some(Ok(_)) => continue,
                        _ => anyhow::bail!("viewer {viewer} got no snapshot"),
                    }
                }
                anyhow::Ok(socket)
            }
            .await;
            let mut socket = match connected {
                Ok(socket) => {
                    let _ = ready.send(Ok(())).await;
                    socket
                }
                Err(error) => {
                    let _ = ready.send(Err(error)).await;
                    return seen;
                }
            };
            // How often each seller's seat was seen held / released: the n-th one matches the
            // seller's n-th request. Keys are small numbers, so a delivery allocates nothing.
            let mut occurrences = [[0u32; 2]; SELLERS];
            let mut last_seq: Option<u64> = None;
            loop {
                let message = tokio::select! {
                    biased;
                    _ = &mut stopped => break,
                    message = socket.next() => message,
                };
                let Some(Ok(message)) = message else {
                    break;
                };
                let Message::Text(text) = message else {
                    continue;
                };
                let received = Instant::now();
                let received_unix_us = crate::unix_micros();
                seen.messages += 1;
                for event in events(&text) {
                    if let Some(seq) = field(event, "", ',').and_then(|s| s.parse().ok()) {
                        if last_seq.is_some_and(|last| seq != last + 1) {
                            seen.gaps += 1;
                        }
                        last_seq = Some(seq);
                    }
                    let held = event.contains("\"type\":\"seat_held\"");
                    if !held && !event.contains("\"type\":\"seat_released\"") {
                        continue;
                    }
                    let Some(seller) = field(event, "\"seat_ids\":[\"", '"')
                        .and_then(|seat| seats.iter().position(|s| s == seat))
                    else {
                        continue;
                    };
                    let n = &mut occurrences[seller][usize::from(held)];
                    *n += 1;
                    if let Some(at) = sent.read().expect("sent lock").get(&(seller, held, *n)) {
                        seen.from_request
                            .record(received.saturating_duration_since(*at));
                        seen.delivered += 1;
                    }
                    // Milliseconds on the wire: the latency is over by less than one.
                    if let Some(at) = field(event, "\"announced_at\":\"", '"')
                        .and_then(boxoffice_core::clock::Timestamp::parse_rfc3339)
                    {
                        let at_us = at.unix_ms().saturating_mul(1000);
                        seen.latencies.record(Duration::from_micros(
                            received_unix_us.saturating_sub(at_us).max(0) as u64,
                        ));
                    }
                }
            }
            seen
        }));
    }
    drop(ready_tx);
    for _ in 0..options.clients {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(error)) => return Err(error),
            None => anyhow::bail!("a viewer stopped before its snapshot"),
        }
    }

    let started = Instant::now();
    let deadline = started + options.duration;
    let budget = Arc::new(AtomicU64::new(options.max_requests.unwrap_or(u64::MAX)));
    let sellers: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(n, token)| {
            let seat = sale.seat_ids[n].clone();
            let (api, sent, budget) = (
                Api::new(&options.targets, SELLERS).map(Arc::new),
                sent.clone(),
                budget.clone(),
            );
            let show_id = sale.show_id.clone();
            // Each round is two changes; with a rate, each seller starts a round every `every`.
            let every = options
                .change_rate
                .map(|rate| Duration::from_secs_f64(2.0 * SELLERS as f64 / rate));
            tokio::spawn(async move {
                let api = api?;
                let (mut holds, mut releases) = (Latencies::default(), Latencies::default());
                let mut changes = 0u64;
                let mut round = 0u32;
                let body = json!({"show_id": show_id, "seat_ids": [seat]});
                while Instant::now() < deadline
                    && budget
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(2))
                        .is_ok()
                {
                    let began = Instant::now();
                    round += 1;
                    let asked = Instant::now();
                    sent.write()
                        .expect("sent lock")
                        .insert((n, true, round), asked);
                    let Some(hold) = api
                        .call(n, Method::POST, "/holds", Some(&token), Some(&body))
                        .await
                        .filter(|a| a.status == 201)
                    else {
                        anyhow::bail!("seller {n} could not hold its seat");
                    };
                    holds.record(asked.elapsed());
                    let id = hold.json()["id"].as_str().unwrap_or_default().to_owned();
                    let asked = Instant::now();
                    sent.write()
                        .expect("sent lock")
                        .insert((n, false, round), asked);
                    let released = api
                        .call(
                            n,
                            Method::DELETE,
                            &format!("/holds/{id}"),
                            Some(&token),
                            None,
                        )
                        .await;
                    releases.record(asked.elapsed());
                    anyhow::ensure!(
                        released.is_some_and(|a| a.status == 200),
                        "seller {n} could not release its hold"
                    );
                    changes += 2;
                    match every {
                        Some(every) => tokio::time::sleep_until((began + every).into()).await,
                        None => tokio::time::sleep(PACE).await,
                    }
                }
                Ok((changes, holds, releases))
            })
        })
        .collect();
    let mut changes = 0;
    let (mut holds, mut releases) = (Latencies::default(), Latencies::default());
    for seller in sellers {
        let (made, held, released) = seller.await??;
        changes += made;
        holds.merge(&held);
        releases.merge(&released);
    }
    let selling = started.elapsed().as_secs_f64();
    // Let the last changes arrive before counting what is missing; memory is read while every
    // viewer is still connected.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let memory_after = resident_memory(options).await;
    stop.notify_waiters();
    let (mut latencies, mut from_request) = (Latencies::default(), Latencies::default());
    let (mut delivered, mut gaps, mut messages) = (0u64, 0u64, 0u64);
    for viewer in viewers {
        let seen = viewer.await?;
        latencies.merge(&seen.latencies);
        from_request.merge(&seen.from_request);
        delivered += seen.delivered;
        gaps += seen.gaps;
        messages += seen.messages;
    }
    let expected = changes * options.clients as u64;
    let mb = |bytes: Option<u64>| bytes.map_or(0, |b| b / (1024 * 1024));
    Ok(Report {
        scenario: "fanout".into(),
        targets: options.targets.clone(),
        clients: options.clients,
        duration_s: selling,
        rates_per_s: BTreeMap::from([
            ("changes".to_owned(), changes as f64 / selling),
            ("deliveries".to_owned(), delivered as f64 / selling),
            ("messages".to_owned(), messages as f64 / selling),
        ]),
        counts: BTreeMap::from([
            ("viewers".to_owned(), options.clients as u64),
            ("changes".to_owned(), changes),
            ("deliveries".to_owned(), delivered),
            (
                "deliveries_missing".to_owned(),
                expected.saturating_sub(delivered),
            ),
            ("sequence_gaps".to_owned(), gaps),
            ("messages".to_owned(), messages),
            ("server_rss_mb_before".to_owned(), mb(memory_before)),
            ("server_rss_mb_after".to_owned(), mb(memory_after)),
        ]),
        latency: BTreeMap::from([
            ("delivery".to_owned(), latencies.summary()),
            ("delivery_from_request".to_owned(), from_request.summary()),
            ("hold".to_owned(), holds.summary()),
            ("release".to_owned(), releases.summary()),
        ]),
        ..Default::default()
    })
}

/// The events of one message (one object, or several in order as an array), each from just
/// after its opening `{"seq":`, which every numbered event starts with.
fn events(text: &str) -> impl Iterator<Item = &str> {
    text.split("{\"seq\":").skip(1)
}

/// The text after `start` up to `end` (no JSON parse: viewers must keep up with the server).
fn field<'a>(text: &'a str, start: &str, end: char) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let rest = &text[from..];
    Some(&rest[..rest.find(end)?])
}

/// The servers' resident memory summed over the targets, from their Prometheus metrics.
async fn resident_memory(options: &Options) -> Option<u64> {
    crate::metric_sums(options, &["boxoffice_process_resident_memory_bytes"])
        .await
        .pop()
        .flatten()
        .map(|bytes| bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::{events, field};

    #[test]
    fn a_batch_is_read_event_by_event() {
        let one = r#"{"seq":3,"type":"seat_sold","show_id":"shw_1","seat_ids":["seat_1"]}"#;
        let batch = format!(
            r#"[{one},{{"seq":4,"type":"availability","show_id":"shw_1","areas":[{{"area_id":"ar_1"}}]}}]"#
        );
        let seqs = |text: &str| -> Vec<String> {
            events(text)
                .map(|e| field(e, "", ',').unwrap().to_owned())
                .collect()
        };
        assert_eq!(seqs(one), ["3"]);
        assert_eq!(seqs(&batch), ["3", "4"]);
        let first = events(&batch).next().unwrap();
        assert_eq!(field(first, "\"seat_ids\":[\"", '"'), Some("seat_1"));
        assert_eq!(events(r#"{"type":"error","detail":"x"}"#).count(), 0);
    }

    #[test]
    fn fields_are_cut_from_the_text() {
        let text =
            r#"{"seq":12,"type":"seat_held","show_id":"shw_1","seat_ids":["seat_9","seat_8"]}"#;
        assert_eq!(field(text, "\"seq\":", ','), Some("12"));
        assert_eq!(field(text, "\"seat_ids\":[\"", '"'), Some("seat_9"));
        assert_eq!(field(text, "\"nope\":", ','), None);
    }
}
