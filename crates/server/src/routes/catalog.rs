//! Venues, events and shows: organizers create them (and only see their own venues and sales
//! figures); everyone can browse events, shows and seat maps.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, page_limit, path_id};
use crate::idempotency::{self, KeyHeader};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use boxoffice_core::DomainError;
use boxoffice_core::catalog::{Event, EventInput, Show, ShowInput};
use boxoffice_core::ids::{EventId, ShowId, VenueId};
use boxoffice_core::inventory::{CategoryAvailability, SeatMap};
use boxoffice_core::venue::{Venue, VenueInput};
use boxoffice_store::{SalesSummary, ShowFilter, VenueSummary};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/venues", get(my_venues).post(create_venue))
        .route("/venues/{id}", get(venue))
        .route("/events", get(events).post(create_event))
        .route("/events/{id}", get(event))
        .route("/shows", get(shows).post(create_show))
        .route("/shows/{id}", get(show))
        .route("/shows/{id}/seats", get(seat_map))
        .route("/shows/{id}/sales", get(sales))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<String>,
    limit: Option<i64>,
    event_id: Option<String>,
}

#[derive(Serialize)]
struct List<T> {
    items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

fn list<T>(items: Vec<T>, limit: i64, id_of: impl Fn(&T) -> String) -> List<T> {
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(&id_of))
        .flatten();
    List { items, next }
}

#[derive(Serialize)]
struct ShowView {
    #[serde(flatten)]
    show: Show,
    availability: Vec<CategoryAvailability>,
}

#[derive(Serialize)]
struct EventView {
    #[serde(flatten)]
    event: Event,
    shows: Vec<ShowView>,
}

async fn create_venue(
    State(app): State<AppState>,
    auth: Auth,
    key: KeyHeader,
    body: ApiJson<VenueInput>,
) -> ApiResult<Response> {
    let owner = auth.organizer()?.user_id.clone();
    let fingerprint = idempotency::fingerprint("POST", "/api/v1/venues", &body.canonical);
    let venue = body.value.into_venue(owner.clone(), app.clock.now())?;
    let store = app.store.clone();
    idempotency::run(
        &app,
        &owner,
        key,
        fingerprint,
        StatusCode::CREATED,
        |key| async move { Ok(store.insert_venue(&venue, key.as_ref()).await?.with(venue)) },
    )
    .await
}

async fn my_venues(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<VenueSummary>>> {
    let owner = &auth.organizer()?.user_id;
    Ok(Json(app.store.venues_of(owner).await?))
}

async fn venue(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Venue>> {
    let id = path_id(&id, VenueId::parse, "venue")?;
    let venue = app
        .store
        .venue(&id)
        .await?
        .filter(|v| actor.may_access(&v.owner_id));
    Ok(Json(venue.ok_or(DomainError::NotFound("venue"))?))
}

async fn create_event(
    State(app): State<AppState>,
    auth: Auth,
    key: KeyHeader,
    body: ApiJson<EventInput>,
) -> ApiResult<Response> {
    let organizer = auth.organizer()?.user_id.clone();
    let fingerprint = idempotency::fingerprint("POST", "/api/v1/events", &body.canonical);
    let event = body.value.into_event(organizer.clone(), app.clock.now())?;
    let store = app.store.clone();
    idempotency::run(
        &app,
        &organizer,
        key,
        fingerprint,
        StatusCode::CREATED,
        |key| async move { Ok(store.insert_event(&event, key.as_ref()).await?.with(event)) },
    )
    .await
}

async fn events(
    State(app): State<AppState>,
    Query(page): Query<Page>,
) -> ApiResult<Json<List<Event>>> {
    let limit = page_limit(page.limit)?;
    let after = page
        .after
        .as_deref()
        .map(|a| EventId::parse(a).ok_or(DomainError::invalid("after", "not an event id")))
        .transpose()?;
    let events = app.store.events(after.as_ref(), limit).await?;
    Ok(Json(list(events, limit, |e| e.id.to_string())))
}

async fn event(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<EventView>> {
    let id = path_id(&id, EventId::parse, "event")?;
    let event = app
        .store
        .event(&id)
        .await?
        .ok_or(DomainError::NotFound("event"))?;
    let filter = ShowFilter {
        event_id: Some(id),
        after: None,
        limit: 100,
    };
    let mut shows = Vec::new();
    for show in app.store.shows(&filter).await? {
        shows.push(with_availability(&app, show).await?);
    }
    Ok(Json(EventView { event, shows }))
}

async fn with_availability(app: &AppState, show: Show) -> ApiResult<ShowView> {
    let availability = app
        .store
        .seat_map(&show, app.clock.now())
        .await?
        .availability;
    Ok(ShowView { show, availability })
}

/// Answers with the show as created; its availability is on `GET /shows/{id}`.
async fn create_show(
    State(app): State<AppState>,
    auth: Auth,
    key: KeyHeader,
    body: ApiJson<ShowInput>,
) -> ApiResult<Response> {
    let actor = auth.organizer()?.clone();
    let fingerprint = idempotency::fingerprint("POST", "/api/v1/shows", &body.canonical);
    let input = body.value;
    let event_id = EventId::parse(&input.event_id)
        .ok_or(DomainError::invalid("event_id", "not an event id"))?;
    let venue_id = VenueId::parse(&input.venue_id)
        .ok_or(DomainError::invalid("venue_id", "not a venue id"))?;
    // Someone else's event or venue is reported as missing, never as "exists but not yours".
    let event = app
        .store
        .event(&event_id)
        .await?
        .filter(|e| actor.may_access(&e.organizer_id));
    let event = event.ok_or(DomainError::invalid("event_id", "no such event of yours"))?;
    let venue = app
        .store
        .venue(&venue_id)
        .await?
        .filter(|v| v.owner_id == event.organizer_id);
    let venue = venue.ok_or(DomainError::invalid(
        "venue_id",
        "no such venue of the event's organizer",
    ))?;
    let show = input.into_show(&event, &venue, app.clock.now())?;
    let store = app.store.clone();
    idempotency::run(
        &app,
        &actor.user_id,
        key,
        fingerprint,
        StatusCode::CREATED,
        |key| async move { Ok(store.insert_show(&show, key.as_ref()).await?.with(show)) },
    )
    .await
}

async fn shows(
    State(app): State<AppState>,
    Query(page): Query<Page>,
) -> ApiResult<Json<List<ShowView>>> {
    let limit = page_limit(page.limit)?;
    let after = page
        .after
        .as_deref()
        .map(|a| ShowId::parse(a).ok_or(DomainError::invalid("after", "not a show id")))
        .transpose()?;
    let event_id = page
        .event_id
        .as_deref()
        .map(|e| EventId::parse(e).ok_or(DomainError::invalid("event_id", "not an event id")))
        .transpose()?;
    let mut views = Vec::new();
    for show in app
        .store
        .shows(&ShowFilter {
            event_id,
            after,
            limit,
        })
        .await?
    {
        views.push(with_availability(&app, show).await?);
    }
    Ok(Json(list(views, limit, |v| v.show.id.to_string())))
}

async fn show(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ShowView>> {
    let id = path_id(&id, ShowId::parse, "show")?;
    let show = app
        .store
        .show(&id)
        .await?
        .ok_or(DomainError::NotFound("show"))?;
    Ok(Json(with_availability(&app, show).await?))
}

async fn seat_map(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<SeatMap>> {
    let id = path_id(&id, ShowId::parse, "show")?;
    let show = app
        .store
        .show(&id)
        .await?
        .ok_or(DomainError::NotFound("show"))?;
    Ok(Json(app.store.seat_map(&show, app.clock.now()).await?))
}

async fn sales(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SalesSummary>> {
    let id = path_id(&id, ShowId::parse, "show")?;
    let show = app
        .store
        .show(&id)
        .await?
        .filter(|s| actor.may_access(&s.organizer_id));
    let show = show.ok_or(DomainError::NotFound("show"))?;
    Ok(Json(app.store.sales(&show.id).await?))
}
