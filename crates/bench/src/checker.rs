//! The history checker, in the spirit of Jepsen: clients record what they invoked and what came
//! back (ok, failed, or unknown when no answer came); afterwards the checker reads what the
//! servers hold and reports every way the two disagree with the laws.

use crate::api::{Answer, Api};
use crate::flash_sale::Sale;
use crate::report::Verdict;
use boxoffice_core::Timestamp;
use hyper::Method;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Hold,
    Book,
    Cancel,
    Release,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    /// No answer: the effect may or may not have happened.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Op {
    pub kind: OpKind,
    pub invoke_ms: i64,
    pub outcome: Outcome,
    pub hold_id: Option<String>,
    pub booking_id: Option<String>,
    /// For holds: when the server said the hold ends.
    pub expires_at_ms: Option<i64>,
    /// How long the answer took; none when there was none.
    pub latency: Option<std::time::Duration>,
}

impl Op {
    pub fn from_answer(kind: OpKind, invoke_ms: i64, answer: Option<&Answer>) -> Op {
        let outcome = match answer {
            None => Outcome::Unknown,
            Some(a) if a.status >= 500 => Outcome::Unknown,
            Some(a) if a.status < 300 => Outcome::Ok,
            Some(_) => Outcome::Fail,
        };
        // Only an acknowledged operation names what it made; a refusal's body is not parsed
        // (the load generator's CPU is the server's too on one machine).
        let body = answer.filter(|_| outcome == Outcome::Ok).map(Answer::json);
        let text = |field: &str| {
            body.as_ref()
                .and_then(|b| b[field].as_str())
                .map(str::to_owned)
        };
        let (hold_id, booking_id) = match kind {
            OpKind::Hold => (text("id"), None),
            OpKind::Book => (text("hold_id"), text("id")),
            OpKind::Cancel | OpKind::Release => (text("hold_id"), text("id")),
        };
        let expires_at_ms = text("expires_at")
            .and_then(|t| Timestamp::parse_rfc3339(&t))
            .map(Timestamp::unix_ms);
        Op {
            kind,
            invoke_ms,
            outcome,
            hold_id,
            booking_id,
            expires_at_ms,
            latency: answer.map(|a| a.latency),
        }
    }
}

pub struct Checked {
    pub verdict: Verdict,
    /// Places sold at the end: seats plus general admission.
    pub sold: i64,
}

/// Every booking of the show, as each client's own list shows it.
async fn present_bookings(
    api: &Api,
    show_id: &str,
    tokens: &[String],
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut found = Vec::new();
    for (client, token) in tokens.iter().enumerate() {
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/bookings?limit=100&after={a}"),
                None => "/bookings?limit=100".to_owned(),
            };
            let page = api
                .call(client, Method::GET, &path, Some(token), None)
                .await
                .filter(|a| a.status == 200)
                .ok_or_else(|| anyhow::anyhow!("could not list bookings of client {client}"))?;
            let page = page.json();
            let items = page["items"].as_array().cloned().unwrap_or_default();
            found.extend(items.into_iter().filter(|b| b["show_id"] == show_id));
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
    }
    Ok(found)
}

pub async fn check(
    api: &Api,
    sale: &Sale,
    tokens: &[String],
    ops: &[Op],
) -> anyhow::Result<Checked> {
    let bookings = present_bookings(api, &sale.show_id, tokens).await?;
    let map = api
        .call(
            0,
            Method::GET,
            &format!("/shows/{}/seats", sale.show_id),
            None,
            None,
        )
        .await
        .filter(|a| a.status == 200)
        .ok_or_else(|| anyhow::anyhow!("could not read the seat map"))?
        .json();

    let confirmed: Vec<&serde_json::Value> = bookings
        .iter()
        .filter(|b| b["state"] == "confirmed")
        .collect();
    let mut seat_sales: BTreeMap<String, u64> = BTreeMap::new();
    let mut area_sold: BTreeMap<String, i64> = BTreeMap::new();
    for booking in &confirmed {
        for ticket in booking["tickets"].as_array().into_iter().flatten() {
            if let Some(seat) = ticket["seat_id"].as_str() {
                *seat_sales.entry(seat.to_owned()).or_default() += 1;
            }
            if let Some(area) = ticket["area_id"].as_str() {
                *area_sold.entry(area.to_owned()).or_default() += 1;
            }
        }
    }
    let seats_sold_twice = seat_sales.values().filter(|n| **n > 1).count() as u64;

    let present: BTreeMap<&str, &serde_json::Value> = bookings
        .iter()
        .filter_map(|b| Some((b["id"].as_str()?, b)))
        .collect();
    let cancel_attempted: BTreeSet<&str> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Cancel && o.outcome != Outcome::Fail)
        .filter_map(|o| o.booking_id.as_deref())
        .collect();
    let acknowledged_bookings_missing = ops
        .iter()
        .filter(|o| o.kind == OpKind::Book && o.outcome == Outcome::Ok)
        .filter_map(|o| o.booking_id.as_deref())
        .filter(|id| match present.get(id) {
            None => true,
            Some(b) => b["state"] != "confirmed" && !cancel_attempted.contains(id),
        })
        .count() as u64;

    let booked_holds: BTreeSet<&str> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Book && o.outcome != Outcome::Fail)
        .filter_map(|o| o.hold_id.as_deref())
        .collect();
    let bookings_nobody_attempted = bookings
        .iter()
        .filter(|b| {
            b["hold_id"]
                .as_str()
                .is_none_or(|h| !booked_holds.contains(h))
        })
        .count() as u64;

    let hold_ends: BTreeMap<&str, i64> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Hold)
        .filter_map(|o| Some((o.hold_id.as_deref()?, o.expires_at_ms?)))
        .collect();
    let holds_honored_past_expiry = ops
        .iter()
        .filter(|o| o.kind == OpKind::Book && o.outcome == Outcome::Ok)
        .filter(|o| {
            o.hold_id
                .as_deref()
                .and_then(|h| hold_ends.get(h))
                .is_some_and(|end| o.invoke_ms > *end)
        })
        .count() as u64;

    let mut ga_conserved = true;
    let mut ga_sold_total = 0;
    for area in map["areas"].as_array().into_iter().flatten() {
        let field = |f: &str| area[f].as_i64().unwrap_or(-1);
        let (capacity, held, sold, free) = (
            field("capacity"),
            field("held"),
            field("sold"),
            field("free"),
        );
        let booked = area["id"]
            .as_str()
            .and_then(|id| area_sold.get(id))
            .copied()
            .unwrap_or(0);
        ga_conserved &= held >= 0 && free >= 0 && held + sold + free == capacity && sold == booked;
        ga_sold_total += sold.max(0);
    }
    let sold_on_map: BTreeSet<String> = map["seats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["state"] == "sold")
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    let sold_in_bookings: BTreeSet<String> = seat_sales.keys().cloned().collect();
    let seat_map_disagreements = sold_on_map.symmetric_difference(&sold_in_bookings).count() as u64;

    let clean = seats_sold_twice == 0
        && acknowledged_bookings_missing == 0
        && bookings_nobody_attempted == 0
        && ga_conserved
        && holds_honored_past_expiry == 0
        && seat_map_disagreements == 0;
    Ok(Checked {
        verdict: Verdict {
            seats_sold_twice,
            acknowledged_bookings_missing,
            bookings_nobody_attempted,
            ga_conserved,
            holds_honored_past_expiry,
            seat_map_disagreements,
            clean,
        },
        sold: sold_on_map.len() as i64 + ga_sold_total,
    })
}
