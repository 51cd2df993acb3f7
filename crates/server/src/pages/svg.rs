//! Drawings in SVG, made on the server: the seat map (from the layout's coordinates, one
//! focusable mark per seat that the page's script colours as seats change) and a show's sales
//! over time.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Pixels per layout unit: a seat's `x`/`y` are in seat widths and rows.
const UNIT_PX: f64 = 26.0;
const SEAT_RADIUS_PX: f64 = 10.0;
const MARGIN_PX: f64 = 40.0;
/// Above this many seats the drawing leaves out the per-seat tooltips to stay small.
const TOOLTIP_SEATS: usize = 5_000;

/// A layout a new organizer can start from: a generated stalls section and a standing floor.
pub const EXAMPLE_LAYOUT: &str = r#"{
  "sections": [
    {"name": "Stalls", "generate": {"rows": "A-H", "seats_per_row": 14, "category": "standard",
      "row_categories": [{"rows": "D-F", "category": "premium"}],
      "aisles_after": [7], "blocked": ["A1"]}}
  ],
  "areas": [{"name": "Standing", "category": "standing", "capacity": 200}]
}"#;

/// One seat as drawn.
pub struct Dot {
    pub id: String,
    pub label: String,
    pub row: String,
    pub section: String,
    pub category: String,
    pub x: f64,
    pub y: f64,
    /// `free`, `held`, `sold` or `blocked`.
    pub state: String,
    pub price_minor: Option<i64>,
}

impl Dot {
    /// The seats of a seat map as the API answers it.
    pub fn from_seat_map(map: &Value) -> Vec<Dot> {
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        map["seats"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|seat| Dot {
                id: text(&seat["id"]),
                label: text(&seat["label"]),
                row: text(&seat["row"]),
                section: text(&seat["section"]),
                category: text(&seat["category"]),
                x: seat["x"].as_f64().unwrap_or(0.0),
                y: seat["y"].as_f64().unwrap_or(0.0),
                state: text(&seat["state"]),
                price_minor: seat["price_minor"].as_i64(),
            })
            .collect()
    }

    /// The seats of a layout not yet saved (all free, unpriced).
    pub fn from_venue(venue: &boxoffice_core::venue::Venue) -> Vec<Dot> {
        let sections: BTreeMap<_, _> = venue
            .sections
            .iter()
            .map(|s| (s.id.to_string(), s.name.clone()))
            .collect();
        venue
            .seats
            .iter()
            .map(|seat| Dot {
                id: seat.id.to_string(),
                label: seat.label.clone(),
                row: seat.row_label.clone(),
                section: sections
                    .get(&seat.section_id.to_string())
                    .cloned()
                    .unwrap_or_default(),
                category: seat.category.clone(),
                x: seat.x,
                y: seat.y,
                state: if seat.blocked { "blocked" } else { "free" }.to_owned(),
                price_minor: None,
            })
            .collect()
    }
}

pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The seat map: a stage bar, row labels, and one circle per seat, coloured by category
/// (`c0`, `c1`, … in `categories` order) and greyed by state. Each free seat is a checkbox a
/// keyboard can reach.
pub fn seat_map(dots: &[Dot], categories: &[String], currency: &str) -> String {
    if dots.is_empty() {
        return String::new();
    }
    let (min_x, max_x, min_y, max_y) = dots.iter().fold(
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
        |(a, b, c, d), dot| (a.min(dot.x), b.max(dot.x), c.min(dot.y), d.max(dot.y)),
    );
    let width = (max_x - min_x) * UNIT_PX + 2.0 * MARGIN_PX;
    let height = (max_y - min_y) * UNIT_PX + 2.0 * MARGIN_PX + 30.0;
    let px = |x: f64| (x - min_x) * UNIT_PX + MARGIN_PX;
    let py = |y: f64| (y - min_y) * UNIT_PX + MARGIN_PX + 30.0;
    let mut out = String::with_capacity(dots.len() * 220);
    let _ = write!(
        out,
        "<svg class=\"seatmap\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"group\" aria-label=\"Seat map: {} seats\" xmlns=\"http://www.w3.org/2000/svg\">",
        dots.len()
    );
    let _ = write!(
        out,
        "<rect class=\"stage\" x=\"{:.0}\" y=\"6\" width=\"{:.0}\" height=\"18\" rx=\"4\"/><text class=\"stage-label\" x=\"{:.0}\" y=\"19\" text-anchor=\"middle\">Stage / screen</text>",
        MARGIN_PX,
        width - 2.0 * MARGIN_PX,
        width / 2.0
    );
    let mut row_starts: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for dot in dots {
        let key = (dot.section.clone(), dot.row.clone());
        let entry = row_starts.entry(key).or_insert((dot.x, dot.y));
        if dot.x < entry.0 {
            *entry = (dot.x, dot.y);
        }
    }
    for ((_, row), (x, y)) in &row_starts {
        let _ = write!(
            out,
            "<text class=\"row-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" aria-hidden=\"true\">{}</text>",
            px(*x) - SEAT_RADIUS_PX - 6.0,
            py(*y) + 4.0,
            escape(row)
        );
    }
    let tooltips = dots.len() <= TOOLTIP_SEATS;
    for dot in dots {
        let category_index = categories
            .iter()
            .position(|c| *c == dot.category)
            .unwrap_or(0);
        let price = dot
            .price_minor
            .map(|p| format!(", {}", super::money(p, Some(currency))))
            .unwrap_or_default();
        let name = format!(
            "{}{}, {}{}",
            if dot.section.is_empty() {
                String::new()
            } else {
                format!("{} ", dot.section)
            },
            dot.label,
            dot.category,
            price
        );
        let name = escape(&name);
        let focus = if dot.state == "blocked" {
            ""
        } else {
            " tabindex=\"0\""
        };
        let _ = write!(
            out,
            "<circle class=\"seat c{category_index} {state}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{SEAT_RADIUS_PX}\" data-seat=\"{id}\" data-label=\"{label}\" data-category=\"{category}\"{focus} role=\"checkbox\" aria-checked=\"false\" aria-label=\"{name}\">",
            px(dot.x),
            py(dot.y),
            state = escape(&dot.state),
            id = escape(&dot.id),
            label = escape(&dot.label),
            category = escape(&dot.category),
        );
        if tooltips {
            let _ = write!(out, "<title>{name}</title>");
        }
        out.push_str("</circle>");
    }
    out.push_str("</svg>");
    out
}

/// Tickets sold over time: cumulative tickets as a line and bookings per hour as bars, from a
/// sales timeline (hours with at least one booking, oldest first).
pub fn sales_chart(timeline: &Value, zone: &str) -> String {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 220.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 28.0;
    const HOUR_MS: i64 = 3_600_000;
    let hours: Vec<(i64, i64, i64)> = timeline
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| {
            let at = boxoffice_core::Timestamp::parse_rfc3339(h["starts_at"].as_str()?)?;
            Some((
                at.unix_ms(),
                h["bookings"].as_i64()?,
                h["tickets"].as_i64()?,
            ))
        })
        .collect();
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"chart-title\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-title\">Tickets sold over time</title>"
    );
    let (Some(first), Some(last)) = (hours.first(), hours.last()) else {
        out.push_str("<text class=\"chart-empty\" x=\"320\" y=\"110\" text-anchor=\"middle\">No bookings yet</text></svg>");
        return out;
    };
    let start = first.0;
    let span = (last.0 + HOUR_MS - start).max(HOUR_MS) as f64;
    let total_tickets: i64 = hours.iter().map(|h| h.2).sum();
    let top = total_tickets.max(1) as f64;
    let plot_w = WIDTH - LEFT - 12.0;
    let plot_h = HEIGHT - BOTTOM - 12.0;
    let x = |at: i64| LEFT + (at - start) as f64 / span * plot_w;
    let y = |value: f64| 12.0 + plot_h - value / top * plot_h;
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{LEFT}\" y1=\"12\" x2=\"{LEFT}\" y2=\"{:.1}\"/>",
        12.0 + plot_h,
        WIDTH - 12.0,
        12.0 + plot_h,
        12.0 + plot_h
    );
    let bar_w = (plot_w * HOUR_MS as f64 / span).clamp(2.0, 40.0);
    let mut sold = 0;
    let mut points = vec![format!("{:.1},{:.1}", x(start), y(0.0))];
    for (at, bookings, tickets) in &hours {
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\"><title>{bookings} bookings, {tickets} tickets</title></rect>",
            x(*at),
            y(*tickets as f64),
            12.0 + plot_h - y(*tickets as f64)
        );
        sold += tickets;
        points.push(format!("{:.1},{:.1}", x(at + HOUR_MS), y(sold as f64)));
    }
    let _ = write!(
        out,
        "<polyline class=\"line\" points=\"{}\"/>",
        points.join(" ")
    );
    let label = |at: i64| {
        boxoffice_core::schedule::local_moment(boxoffice_core::Timestamp::from_unix_ms(at), zone)
            .map(|m| format!("{} {}", m.day, m.time))
            .unwrap_or_default()
    };
    let _ = write!(
        out,
        "<text class=\"tick\" x=\"{LEFT}\" y=\"{:.0}\">{}</text><text class=\"tick\" x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text><text class=\"tick\" x=\"{:.0}\" y=\"18\" text-anchor=\"end\">{total_tickets}</text><text class=\"tick\" x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">0</text>",
        HEIGHT - 8.0,
        escape(&label(start)),
        WIDTH - 12.0,
        HEIGHT - 8.0,
        escape(&label(last.0 + HOUR_MS)),
        LEFT - 6.0,
        LEFT - 6.0,
        12.0 + plot_h
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seats_are_drawn_where_the_layout_puts_them_and_escaped() {
        let map = json!({ "seats": [
            { "id": "seat_1", "label": "A1", "row": "A", "section": "S", "category": "vip", "x": 1.0, "y": 0.0, "state": "sold", "price_minor": 1500 },
            { "id": "seat_2", "label": "<A2>", "row": "A", "section": "S", "category": "std", "x": 3.0, "y": 2.0, "state": "free", "price_minor": 900 },
        ]});
        let dots = Dot::from_seat_map(&map);
        let svg = seat_map(&dots, &["std".into(), "vip".into()], "EUR");
        assert!(
            svg.contains("class=\"seat c1 sold\" cx=\"40.0\" cy=\"70.0\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"seat c0 free\" cx=\"92.0\" cy=\"122.0\""),
            "{svg}"
        );
        assert!(svg.contains("data-label=\"&lt;A2&gt;\""));
        assert!(!svg.contains("<A2>"));
        assert!(svg.contains("aria-label=\"S A1, vip, €15.00\""));
    }

    #[test]
    fn the_chart_accumulates_tickets_hour_by_hour() {
        let timeline = json!([
            { "starts_at": "2030-01-01T10:00:00Z", "bookings": 1, "tickets": 2 },
            { "starts_at": "2030-01-01T12:00:00Z", "bookings": 2, "tickets": 6 },
        ]);
        let svg = sales_chart(&timeline, "UTC");
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        // The line ends at the top: all 8 tickets.
        assert!(svg.contains(">8</text>"));
        assert!(svg.contains("628.0,12.0\"/>"), "{svg}");
        assert!(sales_chart(&json!([]), "UTC").contains("No bookings yet"));
    }
}
