//! The web pages: server-rendered HTML for customers, organizers and admins, with a little
//! script for what must move (seat selection, live seat maps, countdowns, forms).
//!
//! A page is a client of the JSON API: it calls the API in process with the visitor's cookies,
//! so every rule (who may see what, tenant walls, validation) is the API's, written once, and a
//! template only lays out what the API answered. Changes go the other way: the page's script
//! calls the API itself (with the CSRF header), so no page handler ever writes anything.
//! Everything a page needs is served by this binary; the Content-Security-Policy forbids the
//! browser from loading anything from elsewhere.

mod assets;
mod svg;

use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use boxoffice_core::Timestamp;
use minijinja::Environment;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tower::ServiceExt;

/// What the browser may load: only this origin (scripts, styles, images, sockets).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// The largest API answer a page reads (a seat map of 20,000 seats is about 4 MiB).
const API_BODY_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// How many shows a dashboard lists, and reads sales figures for.
const DASHBOARD_SHOWS: usize = 60;

/// The API as the pages reach it, and the compiled templates.
pub struct Pages {
    api: Router,
    templates: Environment<'static>,
}

/// The pages' routes; `api` is the JSON API with its state, called in process.
pub fn router(api: Router) -> Router<AppState> {
    let pages = Arc::new(Pages {
        api,
        templates: templates(),
    });
    Router::new()
        .route("/", get(home))
        .route("/events/{id}", get(event))
        .route("/shows/{id}", get(show))
        .route("/shows/{id}/queue", get(queue))
        .route("/holds/{id}", get(hold))
        .route("/bookings", get(bookings))
        .route("/bookings/{id}", get(booking))
        .route("/tickets/{id}", get(ticket))
        .route("/signin", get(signin))
        .route("/signup", get(signup))
        .route("/organizer", get(organizer))
        .route("/organizer/shows/{id}", get(organizer_show))
        .route("/admin", get(admin))
        .route("/pages/layout-preview", post(layout_preview))
        .route("/assets/{name}", get(assets::serve))
        .fallback(not_found)
        .layer(axum::Extension(pages))
}

fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("macros.html", include_str!("../../templates/macros.html")),
        ("home.html", include_str!("../../templates/home.html")),
        ("event.html", include_str!("../../templates/event.html")),
        ("show.html", include_str!("../../templates/show.html")),
        ("queue.html", include_str!("../../templates/queue.html")),
        ("hold.html", include_str!("../../templates/hold.html")),
        ("booking.html", include_str!("../../templates/booking.html")),
        (
            "bookings.html",
            include_str!("../../templates/bookings.html"),
        ),
        ("signin.html", include_str!("../../templates/signin.html")),
        ("signup.html", include_str!("../../templates/signup.html")),
        (
            "organizer.html",
            include_str!("../../templates/organizer.html"),
        ),
        (
            "organizer_show.html",
            include_str!("../../templates/organizer_show.html"),
        ),
        ("admin.html", include_str!("../../templates/admin.html")),
        ("problem.html", include_str!("../../templates/problem.html")),
        ("ticket.html", include_str!("../../templates/ticket.html")),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e}"));
    }
    env.add_filter("money", money);
    env.add_filter("clip", clip);
    env
}

/// `1200, "EUR"` → `€12.00`: integer minor units, never floats.
pub(crate) fn money(minor: i64, currency: Option<&str>) -> String {
    let currency = currency.unwrap_or("EUR");
    let (symbol, decimals) = match currency {
        "EUR" => ("€", 2),
        "USD" => ("$", 2),
        "GBP" => ("£", 2),
        "JPY" => ("¥", 0),
        _ => ("", 2),
    };
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    let amount = if decimals == 0 {
        minor.to_string()
    } else {
        format!("{}.{:02}", minor / 100, minor % 100)
    };
    if symbol.is_empty() {
        format!("{sign}{amount} {currency}")
    } else {
        format!("{sign}{symbol}{amount}")
    }
}

/// The first `chars` characters of `text`, with an ellipsis when cut.
fn clip(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", text[..end].trim_end()),
        None => text.to_owned(),
    }
}

/// Why a page could not be shown, in words for the visitor.
struct PageError {
    status: StatusCode,
    title: String,
    detail: String,
}

impl PageError {
    fn from_problem(status: StatusCode, problem: &Value) -> Self {
        let text = |key: &str, fallback: &str| {
            problem[key]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(fallback)
                .to_owned()
        };
        Self {
            status,
            title: text("title", "Something went wrong"),
            detail: text("detail", "Please try again in a moment."),
        }
    }

    fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Something went wrong on our side".into(),
            detail: "Please try again in a moment.".into(),
        }
    }
}

type PageResult = Result<Response, PageError>;

/// One request's view of the API, with the visitor's cookies.
struct Visit<'a> {
    pages: &'a Pages,
    cookies: Option<HeaderValue>,
    /// The path and query of the page, to come back to after signing in.
    here: String,
}

impl<'a> Visit<'a> {
    fn new(pages: &'a Pages, headers: &HeaderMap, here: String) -> Self {
        Self {
            pages,
            cookies: headers.get(header::COOKIE).cloned(),
            here,
        }
    }

    /// `GET /api/v1{path}` as the visitor.
    async fn get(&self, path: &str) -> Result<Value, PageError> {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(format!("/api/v1{path}"));
        if let Some(cookies) = &self.cookies {
            request = request.header(header::COOKIE, cookies.clone());
        }
        let request = request
            .body(Body::empty())
            .map_err(|_| PageError::internal())?;
        let response = match self.pages.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), API_BODY_LIMIT_BYTES)
            .await
            .map_err(|_| PageError::internal())?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(PageError::from_problem(status, &value))
        }
    }

    /// The signed-in visitor, or `None`.
    async fn visitor(&self) -> Option<Value> {
        let signed_in = self
            .cookies
            .as_ref()
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.contains(crate::auth::SESSION_COOKIE));
        if !signed_in {
            return None;
        }
        self.get("/me").await.ok()
    }

    /// Renders `template` with `context` plus the visitor and where they are.
    async fn render(&self, template: &str, mut context: Value) -> PageResult {
        let visitor = self.visitor().await;
        context["visitor"] = visitor.unwrap_or(Value::Null);
        context["here"] = Value::String(self.here.clone());
        html(&self.pages.templates, template, StatusCode::OK, context)
    }
}

fn html(env: &Environment<'_>, template: &str, status: StatusCode, context: Value) -> PageResult {
    let page = env
        .get_template(template)
        .and_then(|t| t.render(minijinja::Value::from_serialize(&context)))
        .map_err(|e| {
            tracing::error!(template, error = %e, "a page failed to render");
            PageError::internal()
        })?;
    Ok((status, html_headers(), page).into_response())
}

fn html_headers() -> [(header::HeaderName, HeaderValue); 3] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// Renders a page, or the page that explains why it could not be shown. A visitor whose sign-in
/// lapsed gets a page that renews it (the refresh cookie only goes to the API) or asks them to
/// sign in, then comes back.
async fn page(visit: &Visit<'_>, result: PageResult) -> Response {
    let pages = visit.pages;
    let here = visit.here.clone();
    match result {
        Ok(response) => response,
        Err(mut error) => {
            if error.status == StatusCode::UNAUTHORIZED {
                error.title = "Please sign in".into();
                error.detail = "You need to be signed in to see this page.".into();
            }
            let context = json!({
                "title": error.title,
                "detail": error.detail,
                "status": error.status.as_u16(),
                "sign_in": error.status == StatusCode::UNAUTHORIZED,
                "here": here,
                "visitor": if error.status == StatusCode::UNAUTHORIZED { None } else { visit.visitor().await },
            });
            html(&pages.templates, "problem.html", error.status, context)
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

fn here(path: &str, query: &Option<String>) -> String {
    match query.as_deref().filter(|q| !q.is_empty()) {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    }
}

/// Keeps only characters an id can hold, so a path segment cannot smuggle a query into the
/// API call (the API then answers "not found" for anything that is not an id).
fn segment(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}

fn query_string(pairs: &[(&str, String)]) -> String {
    let mut out = form_urlencoded_pairs(pairs);
    if !out.is_empty() {
        out.insert(0, '?');
    }
    out
}

fn form_urlencoded_pairs(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Venue names, cities and time zones by id, read once per page; shows are shown in their
/// venue's local time.
async fn venues(app: &AppState, shows: &[Value]) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for show in shows {
        let Some(id) = show["venue_id"].as_str() else {
            continue;
        };
        if out.contains_key(id) {
            continue;
        }
        let Some(venue_id) = boxoffice_core::ids::VenueId::parse(id) else {
            continue;
        };
        if let Ok(Some(venue)) = app.store.venue_place(&venue_id).await {
            out.insert(
                id.to_owned(),
                json!({ "name": venue.name, "city": venue.city, "timezone": venue.timezone }),
            );
        }
    }
    out
}

/// Adds `local` (date and time at the venue), `venue` and free/held/sold totals to each show.
fn decorate_shows(shows: &mut [Value], venues: &HashMap<String, Value>) {
    for show in shows {
        let venue = show["venue_id"]
            .as_str()
            .and_then(|id| venues.get(id))
            .cloned()
            .unwrap_or(Value::Null);
        let zone = venue["timezone"].as_str().unwrap_or("UTC");
        let local = show["starts_at"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339)
            .and_then(|at| boxoffice_core::schedule::local_moment(at, zone));
        show["local"] = serde_json::to_value(local).unwrap_or(Value::Null);
        show["venue"] = venue;
        let mut totals = BTreeMap::from([("free", 0), ("held", 0), ("sold", 0), ("total", 0)]);
        let mut min_price: Option<i64> = None;
        for category in show["availability"].as_array().into_iter().flatten() {
            for (key, total) in totals.iter_mut() {
                *total += category[*key].as_i64().unwrap_or(0);
            }
            if let Some(price) = category["price_minor"].as_i64() {
                min_price = Some(min_price.map_or(price, |m| m.min(price)));
            }
        }
        show["totals"] = json!(totals);
        show["from_price_minor"] = json!(min_price);
    }
}

/// Shows grouped by their local date, in order.
fn by_day(shows: Vec<Value>) -> Vec<Value> {
    let mut days: Vec<(String, String, Vec<Value>)> = Vec::new();
    for show in shows {
        let date = show["local"]["date"].as_str().unwrap_or("").to_owned();
        let label = show["local"]["day"].as_str().unwrap_or("").to_owned();
        match days.last_mut() {
            Some((last, _, list)) if *last == date => list.push(show),
            _ => days.push((date, label, vec![show])),
        }
    }
    days.into_iter()
        .map(|(date, day, shows)| json!({ "date": date, "day": day, "shows": shows }))
        .collect()
}

fn items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(list) => list,
        mut other => match other["items"].take() {
            Value::Array(list) => list,
            _ => Vec::new(),
        },
    }
}

#[derive(Deserialize)]
struct HomeFilters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    city: String,
    /// A day, `YYYY-MM-DD`.
    #[serde(default)]
    date: String,
}

async fn home(
    State(app): State<AppState>,
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(filters): Query<HomeFilters>,
) -> Response {
    let here = here("/", &raw);
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        let now = app.clock.now();
        let (from, to) = match Timestamp::parse_rfc3339(&format!("{}T00:00:00Z", filters.date)) {
            Some(day) => (day.max(now), day.plus_minutes(24 * 60)),
            None => (now, now.plus_minutes(60 * 24 * 365)),
        };
        let query = query_string(&[
            ("q", filters.q.clone()),
            ("kind", filters.kind.clone()),
            ("city", filters.city.clone()),
            ("from", from.to_rfc3339()),
            ("to", to.to_rfc3339()),
            ("limit", "24".into()),
        ]);
        let mut shows = items(visit.get(&format!("/shows{query}")).await?);
        let events = items(visit.get(&format!("/events{query}")).await?);
        let venues = venues(&app, &shows).await;
        decorate_shows(&mut shows, &venues);
        let titles: HashMap<String, Value> = events
            .iter()
            .map(|e| (e["id"].as_str().unwrap_or("").to_owned(), e.clone()))
            .collect();
        for show in &mut shows {
            let event = show["event_id"].as_str().and_then(|id| titles.get(id));
            show["event"] = event.cloned().unwrap_or(Value::Null);
        }
        visit
            .render(
                "home.html",
                json!({
                    "events": events,
                    "shows": shows,
                    "filters": { "q": filters.q, "kind": filters.kind, "city": filters.city, "date": filters.date },
                    "kinds": ["movie", "concert", "theatre", "sports", "conference", "other"],
                }),
            )
            .await
    }
    .await;
    page(&visit, result).await
}

async fn event(
    State(app): State<AppState>,
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/events/{}", segment(&id));
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        let mut event = visit.get(&format!("/events/{}", segment(&id))).await?;
        let mut shows = items(event["shows"].take());
        let venues = venues(&app, &shows).await;
        decorate_shows(&mut shows, &venues);
        shows.sort_by(|a, b| a["starts_at"].as_str().cmp(&b["starts_at"].as_str()));
        visit
            .render(
                "event.html",
                json!({ "event": event, "days": by_day(shows) }),
            )
            .await
    }
    .await;
    page(&visit, result).await
}

/// A show (with its venue and local time) and its event.
async fn show_and_event(
    app: &AppState,
    visit: &Visit<'_>,
    show_id: &str,
) -> Result<(Value, Value), PageError> {
    let mut show = visit.get(&format!("/shows/{}", segment(show_id))).await?;
    let event = visit
        .get(&format!(
            "/events/{}",
            show["event_id"].as_str().unwrap_or("")
        ))
        .await?;
    let venues = venues(app, std::slice::from_ref(&show)).await;
    decorate_shows(std::slice::from_mut(&mut show), &venues);
    Ok((show, event))
}

/// The show, its event and venue, and its seat map drawn from the layout's coordinates.
async fn show_context(app: &AppState, visit: &Visit<'_>, id: &str) -> Result<Value, PageError> {
    let (show, event) = show_and_event(app, visit, id).await?;
    let map = visit.get(&format!("/shows/{id}/seats")).await?;
    let categories: Vec<String> = map["availability"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["category"].as_str().map(str::to_owned))
        .collect();
    let currency = map["currency"].as_str().unwrap_or("EUR").to_owned();
    let seats = svg::Dot::from_seat_map(&map);
    let drawing = svg::seat_map(&seats, &categories, &currency);
    Ok(json!({
        "show": show,
        "event": { "id": event["id"], "title": event["title"], "kind": event["kind"], "description": event["description"],
                   "duration_minutes": event["duration_minutes"], "tags": event["tags"] },
        "map": { "availability": map["availability"], "areas": map["areas"], "currency": currency,
                 "seat_count": seats.len() },
        "categories": categories,
        "svg": drawing,
    }))
}

async fn show(
    State(app): State<AppState>,
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let id = segment(&id);
    let here = format!("/shows/{id}");
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        let mut context = show_context(&app, &visit, &id).await?;
        // What a signed-in visitor has here: points to spend, and their place on the waitlist
        // (offered when everything open to the public is gone).
        let locked: Vec<String> = context["show"]["locked_categories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect();
        let open: Vec<&Value> = context["map"]["availability"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| !locked.iter().any(|l| c["category"] == l.as_str()))
            .collect();
        let sold_out = !open.is_empty() && open.iter().all(|c| c["free"] == 0);
        let waitlist_categories: Vec<Value> = open.iter().map(|c| c["category"].clone()).collect();
        context["sold_out"] = json!(sold_out);
        context["waitlist_categories"] = json!(waitlist_categories);
        if let Ok(points) = visit.get("/me/loyalty").await {
            context["points"] = points["available"].clone();
            let entries = visit.get(&format!("/me/waitlist?show_id={id}")).await?;
            let open_entry = entries
                .as_array()
                .and_then(|all| {
                    all.iter()
                        .rev()
                        .find(|e| e["state"] == "waiting" || e["state"] == "offered")
                })
                .cloned();
            context["entry"] = open_entry.unwrap_or(Value::Null);
            context["signed_in"] = json!(true);
        }
        visit.render("show.html", context).await
    }
    .await;
    page(&visit, result).await
}

async fn queue(
    State(app): State<AppState>,
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let id = segment(&id);
    let here = format!("/shows/{id}/queue");
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        // The queue is for signed-in customers: joining needs an account.
        visit.get("/me").await?;
        let (show, event) = show_and_event(&app, &visit, &id).await?;
        visit
            .render(
                "queue.html",
                json!({ "show": show, "event": { "title": event["title"] } }),
            )
            .await
    }
    .await;
    page(&visit, result).await
}

async fn hold(
    State(app): State<AppState>,
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let id = segment(&id);
    let here = format!("/holds/{id}");
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        let hold = visit.get(&format!("/holds/{id}")).await?;
        let (show, event) =
            show_and_event(&app, &visit, hold["show_id"].as_str().unwrap_or("")).await?;
        // The countdown runs from the server's clock, not the browser's, which may be off.
        let remaining_ms = hold["expires_at"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339)
            .map_or(0, |until| (until.unix_ms() - app.clock.now().unix_ms()).max(0));
        let live = hold["state"] == "active" && remaining_ms > 0;
        let seconds = (remaining_ms + 999) / 1000;
        let remaining_text = format!("{}:{:02}", seconds / 60, seconds % 60);
        visit
            .render(
                "hold.html",
                json!({ "hold": hold, "show": show, "event": { "title": event["title"] },
                        "remaining_ms": remaining_ms, "remaining_text": remaining_text, "live": live }),
            )
            .await
    }
    .await;
    page(&visit, result).await
}

/// A booking with what it was for, as the customer's pages show it.
async fn booking_context(
    app: &AppState,
    visit: &Visit<'_>,
    mut booking: Value,
    shows: &mut HashMap<String, Value>,
) -> Result<Value, PageError> {
    let show_id = booking["show_id"].as_str().unwrap_or("").to_owned();
    if !shows.contains_key(&show_id) {
        let (mut show, event) = show_and_event(app, visit, &show_id).await?;
        show["event"] = json!({ "title": event["title"] });
        shows.insert(show_id.clone(), show);
    }
    booking["show"] = shows[&show_id].clone();
    Ok(booking)
}

async fn booking(
    State(app): State<AppState>,
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let id = segment(&id);
    let here = format!("/bookings/{id}");
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        let booking = visit.get(&format!("/bookings/{id}")).await?;
        let booking = booking_context(&app, &visit, booking, &mut HashMap::new()).await?;
        visit
            .render("booking.html", json!({ "booking": booking }))
            .await
    }
    .await;
    page(&visit, result).await
}

async fn bookings(
    State(app): State<AppState>,
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
) -> Response {
    let here = "/bookings".to_owned();
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        let list = items(visit.get("/bookings?limit=100").await?);
        let mut shows = HashMap::new();
        let mut bookings = Vec::new();
        for booking in list {
            bookings.push(booking_context(&app, &visit, booking, &mut shows).await?);
        }
        let wallet = visit.get("/me/wallet?limit=5").await?;
        let points = visit.get("/me/loyalty").await?;
        let cards = visit.get("/me/scratch-cards").await?;
        visit
            .render(
                "bookings.html",
                json!({ "bookings": bookings, "wallet": wallet, "points": points, "cards": cards }),
            )
            .await
    }
    .await;
    page(&visit, result).await
}

/// A ticket to print or show at the door, with its QR code.
async fn ticket(
    State(app): State<AppState>,
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let id = segment(&id);
    let here = format!("/tickets/{id}");
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        let view = visit.get(&format!("/tickets/{id}")).await?;
        let (show, event) =
            show_and_event(&app, &visit, view["show_id"].as_str().unwrap_or("")).await?;
        visit
            .render(
                "ticket.html",
                json!({ "view": view, "show": show, "event": { "title": event["title"] } }),
            )
            .await
    }
    .await;
    page(&visit, result).await
}

#[derive(Deserialize)]
struct Next {
    #[serde(default)]
    next: String,
}

/// Only a path on this site may be gone back to after signing in.
fn safe_next(next: &str) -> String {
    let local = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\');
    if local {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

async fn signin(
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> Response {
    let next = safe_next(&next.next);
    let visit = Visit::new(&pages, &headers, "/signin".into());
    let result = visit.render("signin.html", json!({ "next": next })).await;
    page(&visit, result).await
}

async fn signup(
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> Response {
    let next = safe_next(&next.next);
    let visit = Visit::new(&pages, &headers, "/signup".into());
    let result = visit.render("signup.html", json!({ "next": next })).await;
    page(&visit, result).await
}

async fn organizer(
    State(app): State<AppState>,
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
) -> Response {
    let here = "/organizer".to_owned();
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        let organizer = visit.get("/organizer").await?;
        let organizer_id = organizer["id"].as_str().unwrap_or("").to_owned();
        let venues_list = visit.get("/venues").await?;
        let events = items(
            visit
                .get(&format!("/events?organizer_id={organizer_id}&limit=100"))
                .await?,
        );
        let mut shows = Vec::new();
        for venue in venues_list.as_array().into_iter().flatten() {
            let venue_id = venue["id"].as_str().unwrap_or("");
            let found = visit
                .get(&format!("/shows?venue_id={venue_id}&include_cancelled=true&limit=100"))
                .await?;
            shows.extend(items(found));
        }
        shows.sort_by(|a, b| a["starts_at"].as_str().cmp(&b["starts_at"].as_str()));
        shows.truncate(DASHBOARD_SHOWS);
        let venue_info = venues(&app, &shows).await;
        decorate_shows(&mut shows, &venue_info);
        let titles: HashMap<&str, &Value> = events
            .iter()
            .filter_map(|e| e["id"].as_str().map(|id| (id, &e["title"])))
            .collect();
        let mut revenue_minor = 0;
        for show in &mut shows {
            let title = show["event_id"].as_str().and_then(|id| titles.get(id));
            show["event_title"] = title.map(|t| (*t).clone()).unwrap_or(Value::Null);
            let sales = visit
                .get(&format!("/shows/{}/sales", show["id"].as_str().unwrap_or("")))
                .await?;
            revenue_minor += sales["revenue_minor"].as_i64().unwrap_or(0);
            show["revenue_minor"] = sales["revenue_minor"].clone();
        }
        let figures = visit.get("/organizer/figures").await?;
        visit
            .render(
                "organizer.html",
                json!({ "organizer": organizer, "venues": venues_list, "events": events, "shows": shows,
                        "figures": figures, "revenue_minor": revenue_minor,
                        "kinds": ["movie", "concert", "theatre", "sports", "conference", "other"],
                        "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "example_layout": svg::EXAMPLE_LAYOUT }),
            )
            .await
    }
    .await;
    page(&visit, result).await
}

async fn organizer_show(
    State(app): State<AppState>,
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let id = segment(&id);
    let here = format!("/organizer/shows/{id}");
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        // Sales first: it answers "not found" for another organizer's show.
        let sales = visit.get(&format!("/shows/{id}/sales")).await?;
        let mut context = show_context(&app, &visit, &id).await?;
        let currency = context["show"]["currency"]
            .as_str()
            .unwrap_or("EUR")
            .to_owned();
        let zone = context["show"]["venue"]["timezone"]
            .as_str()
            .unwrap_or("UTC")
            .to_owned();
        context["chart"] = Value::String(svg::sales_chart(&sales["timeline"], &zone));
        context["sales"] = sales;
        context["currency"] = Value::String(currency);
        visit.render("organizer_show.html", context).await
    }
    .await;
    page(&visit, result).await
}

async fn admin(
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
) -> Response {
    let here = "/admin".to_owned();
    let visit = Visit::new(&pages, &headers, here.clone());
    let result = async {
        let organizers = items(visit.get("/admin/organizers?limit=100").await?);
        let users = items(visit.get("/admin/users?limit=100").await?);
        visit
            .render(
                "admin.html",
                json!({ "organizers": organizers, "users": users }),
            )
            .await
    }
    .await;
    page(&visit, result).await
}

/// The seat map a layout description would make, before it is saved. Reads nothing and writes
/// nothing; a layout with mistakes gets the same problem document `PUT /venues/{id}/layout`
/// would answer.
async fn layout_preview(
    State(app): State<AppState>,
    body: crate::extract::ApiJson<boxoffice_core::venue::VenueInput>,
) -> Result<Response, crate::error::ApiError> {
    let venue = body.value.into_venue(
        boxoffice_core::ids::OrganizerId::generate(),
        app.clock.now(),
    )?;
    let categories: Vec<String> = venue.categories().into_iter().collect();
    let dots = svg::Dot::from_venue(&venue);
    let areas: Vec<String> = venue
        .areas
        .iter()
        .map(|a| {
            format!(
                "<li>{} — {} standing ({})</li>",
                svg::escape(&a.name),
                a.capacity,
                svg::escape(&a.category)
            )
        })
        .collect();
    let fragment = format!(
        "<p class=\"preview-summary\">{} seats in {} sections{}</p>{}{}",
        dots.len(),
        venue.sections.len(),
        if areas.is_empty() {
            String::new()
        } else {
            format!(", {} standing areas", areas.len())
        },
        svg::seat_map(&dots, &categories, "EUR"),
        if areas.is_empty() {
            String::new()
        } else {
            format!("<ul>{}</ul>", areas.join(""))
        },
    );
    Ok((html_headers(), fragment).into_response())
}

async fn not_found(
    axum::Extension(pages): axum::Extension<Arc<Pages>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    // The API keeps its own problem documents for unknown paths.
    if uri.path().starts_with("/api/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let error = PageError {
        status: StatusCode::NOT_FOUND,
        title: "This page does not exist".into(),
        detail: "The address may be mistyped, or what it showed was removed.".into(),
    };
    let visit = Visit::new(&pages, &headers, uri.path().to_owned());
    page(&visit, Err(error)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_from_minor_units() {
        assert_eq!(money(1200, Some("EUR")), "€12.00");
        assert_eq!(money(5, Some("USD")), "$0.05");
        assert_eq!(money(1500, Some("JPY")), "¥1500");
        assert_eq!(money(-250, Some("CHF")), "-2.50 CHF");
    }

    #[test]
    fn only_local_paths_are_gone_back_to() {
        assert_eq!(safe_next("/shows/shw_1"), "/shows/shw_1");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
    }

    #[test]
    fn path_segments_cannot_carry_a_query_into_the_api() {
        assert_eq!(segment("shw_1?x=1/../admin"), "shw_1x1admin");
    }

    #[test]
    fn every_template_compiles() {
        let env = templates();
        assert!(env.templates().count() >= 16);
    }
}
