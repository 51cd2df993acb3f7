//! The read mix: event list, a show, its seat map — a third each — against one show created
//! for the run.

use crate::api::Api;
use crate::report::{self, Latencies, Report};
use crate::{Options, flash_sale};
use hyper::Method;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

pub async fn run(api: &Api, options: &Options) -> anyhow::Result<Report> {
    let run = format!("browse{}", crate::unix_ms());
    let sale = flash_sale::set_up(api, options, &run).await?;
    let paths = Arc::new([
        "/events?limit=20".to_owned(),
        format!("/shows/{}", sale.show_id),
        format!("/shows/{}/seats", sale.show_id),
    ]);
    let api = Arc::new(Api::new(&options.targets, options.clients)?);
    let started = Instant::now();
    let deadline = started + options.duration;
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(
        options.max_requests.unwrap_or(u64::MAX),
    ));
    let mut tasks = Vec::new();
    for client in 0..options.clients {
        let (api, paths, budget) = (api.clone(), paths.clone(), budget.clone());
        tasks.push(tokio::spawn(async move {
            let names = ["event_list", "show", "seat_map"];
            let mut latencies: BTreeMap<&'static str, Latencies> = BTreeMap::new();
            let mut errors = 0u64;
            let mut i = client;
            while Instant::now() < deadline
                && budget
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |b| b.checked_sub(1),
                    )
                    .is_ok()
            {
                let which = i % 3;
                i += 1;
                match api
                    .call(client, Method::GET, &paths[which], None, None)
                    .await
                {
                    Some(answer) if answer.status == 200 => latencies
                        .entry(names[which])
                        .or_default()
                        .record(answer.latency),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let (summaries, errors) = report::gather(tasks).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut rates: BTreeMap<String, f64> = summaries
        .iter()
        .map(|(k, s)| (k.clone(), s.count as f64 / elapsed))
        .collect();
    rates.insert(
        "reads".into(),
        summaries.values().map(|s| s.count).sum::<u64>() as f64 / elapsed,
    );
    Ok(Report {
        scenario: "browse".into(),
        targets: options.targets.clone(),
        clients: options.clients,
        duration_s: elapsed,
        rates_per_s: rates,
        counts: BTreeMap::from([("errors".to_owned(), errors)]),
        latency: summaries,
        ..Default::default()
    })
}
