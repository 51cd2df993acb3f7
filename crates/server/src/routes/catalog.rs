//! Venues, events and shows. Organizers create and change them inside their own organizer
//! (anything of another organizer reads as missing); everyone can browse events, shows and
//! seat maps.

use crate::auth::Auth;
use crate::cache::{Scope, View};
use crate::error::ApiResult;
use crate::extract::{ApiJson, page_limit, path_id};
use crate::idempotency::{self, KeyHeader};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use boxoffice_core::DomainError;
use boxoffice_core::catalog::{Event, EventInput, EventPatch, Show, ShowInput, ShowPatch};
use boxoffice_core::ids::{EventId, OrganizerId, ShowId, VenueId};
use boxoffice_core::inventory::{CategoryAvailability, SeatMap};
use boxoffice_core::schedule::ScheduleInput;
use boxoffice_core::user::Actor;
use boxoffice_core::venue::{AreaInput, SectionInput, Venue, VenueInput};
use boxoffice_store::{SalesSummary, ShowFilter, ShowQuery, ShowSort, VenueSummary};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_venues, create_venue))
        .routes(routes!(venue, update_venue, delete_venue))
        .routes(routes!(replace_layout))
        .routes(routes!(events, create_event))
        .routes(routes!(event, update_event, delete_event))
        .routes(routes!(create_schedule))
        .routes(routes!(shows, create_show))
        .routes(routes!(show, update_show, cancel_show))
        .routes(routes!(seat_map))
        .routes(routes!(set_area_capacity))
        .routes(routes!(sales))
}

/// Discovery parameters of `GET /shows` and `GET /events`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Discover {
    /// Words in the event's title, description or tags.
    q: Option<String>,
    kind: Option<String>,
    event_id: Option<String>,
    venue_id: Option<String>,
    city: Option<String>,
    /// Shows starting at or after this instant (RFC 3339).
    from: Option<String>,
    /// Shows starting before this instant (RFC 3339).
    to: Option<String>,
    /// Only shows with something left to buy.
    available: Option<bool>,
    min_price: Option<i64>,
    max_price: Option<i64>,
    include_cancelled: Option<bool>,
    /// `starts_at` (default), `-starts_at`, `price` or `title`.
    sort: Option<String>,
    /// 1-based page number.
    page: Option<i64>,
    limit: Option<i64>,
    /// Plain event listing only: the `next` cursor of the previous page.
    after: Option<String>,
    /// Plain event listing only: this organizer's events.
    organizer_id: Option<String>,
}

/// The deepest a client may page; beyond it, narrow the filters.
const MAX_RESULTS_DEPTH: i64 = 10_000;

impl Discover {
    fn is_plain_listing(&self) -> bool {
        self.q.is_none()
            && self.kind.is_none()
            && self.event_id.is_none()
            && self.venue_id.is_none()
            && self.city.is_none()
            && self.from.is_none()
            && self.to.is_none()
            && self.available.is_none()
            && self.min_price.is_none()
            && self.max_price.is_none()
            && self.sort.is_none()
            && self.page.is_none()
    }

    fn query(&self) -> ApiResult<ShowQuery> {
        let mut problems = boxoffice_core::error::Problems::default();
        let limit = page_limit(self.limit)?;
        let page = self.page.unwrap_or(1);
        problems.check(
            page >= 1 && page * limit <= MAX_RESULTS_DEPTH,
            "page",
            format!("pages reach at most {MAX_RESULTS_DEPTH} results"),
        );
        let instant =
            |raw: &Option<String>, field: &str, problems: &mut boxoffice_core::error::Problems| {
                raw.as_deref().and_then(|r| {
                    let parsed = boxoffice_core::Timestamp::parse_rfc3339(r);
                    problems.check(parsed.is_some(), field, "must be an RFC 3339 instant");
                    parsed
                })
            };
        problems.check(
            self.organizer_id.is_none(),
            "organizer_id",
            "lists one organizer's events and cannot be combined with search filters",
        );
        let starts_from = instant(&self.from, "from", &mut problems);
        let starts_before = instant(&self.to, "to", &mut problems);
        let kind = self.kind.as_deref().filter(|k| {
            let known = boxoffice_core::catalog::EventKind::parse(k).is_some();
            problems.check(
                known,
                "kind",
                "must be movie, concert, theatre, sports, conference or other",
            );
            known
        });
        let event_id = self.event_id.as_deref().and_then(|e| {
            let id = EventId::parse(e);
            problems.check(id.is_some(), "event_id", "not an event id");
            id
        });
        let venue_id = self.venue_id.as_deref().and_then(|v| {
            let id = VenueId::parse(v);
            problems.check(id.is_some(), "venue_id", "not a venue id");
            id
        });
        let sort = match self.sort.as_deref() {
            None | Some("starts_at") => ShowSort::StartsAt,
            Some("-starts_at") => ShowSort::StartsAtDesc,
            Some("price") => ShowSort::Price,
            Some("title") => ShowSort::Title,
            Some(_) => {
                problems.add("sort", "must be starts_at, -starts_at, price or title");
                ShowSort::StartsAt
            }
        };
        problems.check(
            self.q
                .as_ref()
                .is_none_or(|q| !q.trim().is_empty() && q.len() <= 100),
            "q",
            "must be 1 to 100 characters",
        );
        problems.check(
            self.min_price.is_none_or(|p| p >= 0) && self.max_price.is_none_or(|p| p >= 0),
            "min_price",
            "prices are not negative",
        );
        problems
            .finish(ShowQuery {
                text: self.q.as_ref().map(|q| q.trim().to_owned()),
                kind: kind.map(str::to_owned),
                event_id,
                venue_id,
                city: self.city.clone(),
                starts_from,
                starts_before,
                available: self.available.unwrap_or(false),
                min_price: self.min_price,
                max_price: self.max_price,
                include_cancelled: self.include_cancelled.unwrap_or(false),
                sort,
                offset: (page - 1) * limit,
                // One more than a page, to tell whether another page follows.
                limit: limit + 1,
            })
            .map_err(Into::into)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Found<T> {
    items: Vec<T>,
    page: i64,
    limit: i64,
    has_more: bool,
}

impl<T> Found<T> {
    fn of(mut items: Vec<T>, query: &ShowQuery) -> Self {
        let limit = query.limit - 1;
        let has_more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        Found {
            items,
            page: query.offset / limit + 1,
            limit,
            has_more,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
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

#[derive(Serialize, utoipa::ToSchema)]
struct ShowView {
    #[serde(flatten)]
    show: Show,
    availability: Vec<CategoryAvailability>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct EventView {
    #[serde(flatten)]
    event: Event,
    shows: Vec<ShowView>,
}

/// A venue of the caller's organizer (admins: any); anything else reads as missing.
async fn managed_venue(app: &AppState, actor: &Actor, id: &str) -> ApiResult<Venue> {
    let id = path_id(id, VenueId::parse, "venue")?;
    let venue = app
        .store
        .venue(&id)
        .await?
        .filter(|v| actor.may_manage(&v.organizer_id));
    Ok(venue.ok_or(DomainError::NotFound("venue"))?)
}

async fn managed_event(app: &AppState, actor: &Actor, id: &str) -> ApiResult<Event> {
    let id = path_id(id, EventId::parse, "event")?;
    let event = app
        .store
        .event(&id)
        .await?
        .filter(|e| actor.may_manage(&e.organizer_id));
    Ok(event.ok_or(DomainError::NotFound("event"))?)
}

pub(crate) async fn managed_show(app: &AppState, actor: &Actor, id: &str) -> ApiResult<Show> {
    let id = path_id(id, ShowId::parse, "show")?;
    let show = app
        .store
        .show(&id)
        .await?
        .filter(|s| actor.may_manage(&s.organizer_id));
    Ok(show.ok_or(DomainError::NotFound("show"))?)
}

#[utoipa::path(
    post,
    path = "/venues",
    tag = "venues",
    summary = "Create a venue with its layout",
    request_body = VenueInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first answer")),
    responses((status = 201, description = "Success", body = Venue), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn create_venue(
    State(app): State<AppState>,
    auth: Auth,
    key: KeyHeader,
    body: ApiJson<VenueInput>,
) -> ApiResult<Response> {
    let organizer = auth.organizer()?;
    let fingerprint = key.fingerprint_of("POST", "/api/v1/venues", &body);
    let venue = body.value.into_venue(organizer, app.clock.now())?;
    let store = app.store.clone();
    idempotency::run(
        &app,
        &auth.0.user_id,
        key,
        fingerprint,
        StatusCode::CREATED,
        |key| async move { Ok(store.insert_venue(&venue, key.as_ref()).await?.with(venue)) },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/venues",
    tag = "venues",
    summary = "My organizer's venues",
    responses((status = 200, description = "Success", body = Vec<VenueSummary>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn my_venues(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<VenueSummary>>> {
    Ok(Json(app.store.venues_of(&auth.organizer()?).await?))
}

#[utoipa::path(
    get,
    path = "/venues/{id}",
    tag = "venues",
    summary = "A venue with its layout",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Venue), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn venue(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Venue>> {
    Ok(Json(managed_venue(&app, &actor, &id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VenueDetails {
    name: Option<String>,
    city: Option<String>,
    timezone: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Layout {
    #[serde(default)]
    sections: Vec<SectionInput>,
    #[serde(default)]
    areas: Vec<AreaInput>,
}

/// Checks details or a layout by building the venue anew, then keeps the venue's identity.
fn rebuilt(current: &Venue, input: VenueInput, now: boxoffice_core::Timestamp) -> ApiResult<Venue> {
    let fresh = input.into_venue(current.organizer_id.clone(), now)?;
    Ok(Venue {
        id: current.id.clone(),
        created_at: current.created_at,
        ..fresh
    })
}

fn layout_of(venue: &Venue) -> Layout {
    let sections = venue
        .sections
        .iter()
        .map(|section| {
            let mut rows: Vec<boxoffice_core::venue::RowInput> = Vec::new();
            for seat in venue.seats.iter().filter(|s| s.section_id == section.id) {
                if rows.last().is_none_or(|r| r.label != seat.row_label) {
                    rows.push(boxoffice_core::venue::RowInput {
                        label: seat.row_label.clone(),
                        count: None,
                        category: None,
                        seats: vec![],
                    });
                }
                rows.last_mut().expect("pushed above").seats.push(
                    boxoffice_core::venue::SeatInput {
                        number: seat.number,
                        label: Some(seat.label.clone()),
                        category: Some(seat.category.clone()),
                        x: Some(seat.x),
                        y: Some(seat.y),
                        blocked: seat.blocked,
                    },
                );
            }
            SectionInput {
                name: section.name.clone(),
                rows,
                generate: None,
            }
        })
        .collect();
    let areas = venue
        .areas
        .iter()
        .map(|a| AreaInput {
            name: a.name.clone(),
            category: a.category.clone(),
            capacity: a.capacity,
        })
        .collect();
    Layout { sections, areas }
}

#[utoipa::path(
    patch,
    path = "/venues/{id}",
    tag = "venues",
    summary = "Change name, city or time zone",
    request_body = VenueDetails,
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Venue), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn update_venue(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    body: ApiJson<VenueDetails>,
) -> ApiResult<Json<Venue>> {
    let current = managed_venue(&app, &actor, &id).await?;
    let details = body.value;
    let layout = layout_of(&current);
    let input = VenueInput {
        name: details.name.unwrap_or_else(|| current.name.clone()),
        city: details.city.unwrap_or_else(|| current.city.clone()),
        timezone: details.timezone.unwrap_or_else(|| current.timezone.clone()),
        sections: layout.sections,
        areas: layout.areas,
    };
    // Validate the new details against the unchanged layout, keep the stored layout as it is.
    let checked = rebuilt(&current, input, app.clock.now())?;
    let updated = Venue {
        name: checked.name,
        city: checked.city,
        timezone: checked.timezone,
        ..current
    };
    app.store.update_venue_details(&updated).await?;
    Ok(Json(updated))
}

#[utoipa::path(
    put,
    path = "/venues/{id}/layout",
    tag = "venues",
    summary = "Replace the layout (refused once seats are sold or held)",
    request_body = Layout,
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Venue), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn replace_layout(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    body: ApiJson<Layout>,
) -> ApiResult<Json<Venue>> {
    let current = managed_venue(&app, &actor, &id).await?;
    let input = VenueInput {
        name: current.name.clone(),
        city: current.city.clone(),
        timezone: current.timezone.clone(),
        sections: body.value.sections,
        areas: body.value.areas,
    };
    let venue = rebuilt(&current, input, app.clock.now())?;
    app.store.replace_layout(&venue, app.clock.now()).await?;
    Ok(Json(venue))
}

#[utoipa::path(
    delete,
    path = "/venues/{id}",
    tag = "venues",
    summary = "Delete an unused venue",
    params(("id" = String, Path)),
    responses((status = 204, description = "Success"), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn delete_venue(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let venue = managed_venue(&app, &actor, &id).await?;
    app.store.delete_venue(&venue.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/events",
    tag = "events",
    summary = "Create an event",
    request_body = EventInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first answer")),
    responses((status = 201, description = "Success", body = Event), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn create_event(
    State(app): State<AppState>,
    auth: Auth,
    key: KeyHeader,
    body: ApiJson<EventInput>,
) -> ApiResult<Response> {
    let organizer = auth.organizer()?;
    let fingerprint = key.fingerprint_of("POST", "/api/v1/events", &body);
    let event = body.value.into_event(organizer, app.clock.now())?;
    let store = app.store.clone();
    idempotency::run(
        &app,
        &auth.0.user_id,
        key,
        fingerprint,
        StatusCode::CREATED,
        |key| async move { Ok(store.insert_event(&event, key.as_ref()).await?.with(event)) },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    summary = "List or search events",
    params(Discover),
    responses((status = 200, description = "Success", body = Found<Event>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
async fn events(
    State(app): State<AppState>,
    uri: axum::http::Uri,
    Query(params): Query<Discover>,
) -> ApiResult<Response> {
    // Every event by creation (cursor `after`), or — with any discovery filter — the events that
    // have a matching show, soonest first. Served from memory until the catalog changes.
    let listing = View::Events(uri.query().unwrap_or_default().to_owned());
    let now = app.clock.now();
    let body = app
        .reads
        .get(&Scope::Catalog, listing, now, || async {
            if params.is_plain_listing() {
                let limit = page_limit(params.limit)?;
                let after = params
                    .after
                    .as_deref()
                    .map(|a| {
                        EventId::parse(a).ok_or(DomainError::invalid("after", "not an event id"))
                    })
                    .transpose()?;
                let organizer = params
                    .organizer_id
                    .as_deref()
                    .map(|o| {
                        OrganizerId::parse(o)
                            .ok_or(DomainError::invalid("organizer_id", "not an organizer id"))
                    })
                    .transpose()?;
                let events = app
                    .store
                    .events(organizer.as_ref(), after.as_ref(), limit)
                    .await?;
                return json_bytes(&list(events, limit, |e| e.id.to_string()));
            }
            let query = params.query()?;
            let events = app.store.search_events(&query, now).await?;
            json_bytes(&Found::of(events, &query))
        })
        .await?;
    Ok(json_response(body))
}

#[utoipa::path(
    get,
    path = "/events/{id}",
    tag = "events",
    summary = "An event with its shows",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = EventView), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
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

#[utoipa::path(
    patch,
    path = "/events/{id}",
    tag = "events",
    summary = "Change an event",
    request_body = EventPatch,
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Event), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn update_event(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    body: ApiJson<EventPatch>,
) -> ApiResult<Json<Event>> {
    let event = managed_event(&app, &actor, &id).await?.apply(body.value)?;
    app.store.update_event(&event).await?;
    Ok(Json(event))
}

#[utoipa::path(
    delete,
    path = "/events/{id}",
    tag = "events",
    summary = "Delete an event without shows",
    params(("id" = String, Path)),
    responses((status = 204, description = "Success"), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn delete_event(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let event = managed_event(&app, &actor, &id).await?;
    app.store.delete_event(&event.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The event's and venue's organizer must be the caller's (admins: they must match each other).
async fn venue_for_event(
    app: &AppState,
    actor: &Actor,
    event: &Event,
    venue_id: &str,
) -> ApiResult<Venue> {
    let venue_id =
        VenueId::parse(venue_id).ok_or(DomainError::invalid("venue_id", "not a venue id"))?;
    let venue = app
        .store
        .venue(&venue_id)
        .await?
        .filter(|v| v.organizer_id == event.organizer_id && actor.may_manage(&v.organizer_id));
    Ok(venue.ok_or(DomainError::NotFound("venue"))?)
}

#[utoipa::path(
    post,
    path = "/events/{id}/schedule",
    tag = "events",
    summary = "Create many shows from a recurrence, all or nothing",
    request_body = ScheduleInput,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first answer")),
    responses((status = 201, description = "Success", body = Vec<Show>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn create_schedule(
    State(app): State<AppState>,
    auth: Auth,
    key: KeyHeader,
    Path(id): Path<String>,
    body: ApiJson<ScheduleInput>,
) -> ApiResult<Response> {
    auth.organizer()?;
    let event = managed_event(&app, &auth.0, &id).await?;
    let fingerprint = key.fingerprint_of(
        "POST",
        &format!("/api/v1/events/{}/schedule", event.id),
        &body,
    );
    let venue = venue_for_event(&app, &auth.0, &event, &body.value.venue_id).await?;
    let shows = body.value.shows(&event, &venue, app.clock.now())?;
    let store = app.store.clone();
    idempotency::run(
        &app,
        &auth.0.user_id,
        key,
        fingerprint,
        StatusCode::CREATED,
        |key| async move {
            Ok(store
                .insert_schedule(&shows, key.as_ref())
                .await?
                .with(shows))
        },
    )
    .await
}

async fn with_availability(app: &AppState, show: Show) -> ApiResult<ShowView> {
    let availability = app
        .store
        .seat_map(&show, app.clock.now())
        .await?
        .availability;
    Ok(ShowView { show, availability })
}

#[utoipa::path(
    post,
    path = "/shows",
    tag = "shows",
    summary = "Create a show",
    request_body = ShowInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first answer")),
    responses((status = 201, description = "Success", body = Show), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Answers with the show as created; its availability is on `GET /shows/{id}`.
async fn create_show(
    State(app): State<AppState>,
    auth: Auth,
    key: KeyHeader,
    body: ApiJson<ShowInput>,
) -> ApiResult<Response> {
    auth.organizer()?;
    let fingerprint = key.fingerprint_of("POST", "/api/v1/shows", &body);
    let input = body.value;
    let event_id = EventId::parse(&input.event_id)
        .ok_or(DomainError::invalid("event_id", "not an event id"))?;
    // Someone else's event or venue is reported as missing, never as "exists but not yours".
    let event = app
        .store
        .event(&event_id)
        .await?
        .filter(|e| auth.0.may_manage(&e.organizer_id));
    let event = event.ok_or(DomainError::NotFound("event"))?;
    let venue = venue_for_event(&app, &auth.0, &event, &input.venue_id).await?;
    let show = input.into_show(&event, &venue, app.clock.now())?;
    let store = app.store.clone();
    idempotency::run(
        &app,
        &auth.0.user_id,
        key,
        fingerprint,
        StatusCode::CREATED,
        |key| async move { Ok(store.insert_show(&show, key.as_ref()).await?.with(show)) },
    )
    .await
}

#[utoipa::path(
    get,
    path = "/shows",
    tag = "shows",
    summary = "Search shows",
    params(Discover),
    responses((status = 200, description = "Success", body = Found<ShowView>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
async fn shows(
    State(app): State<AppState>,
    Query(params): Query<Discover>,
) -> ApiResult<Json<Found<ShowView>>> {
    if params.after.is_some() {
        return Err(DomainError::invalid("after", "shows are paged with page and limit").into());
    }
    let query = params.query()?;
    let mut views = Vec::new();
    for show in app.store.search_shows(&query, app.clock.now()).await? {
        views.push(with_availability(&app, show).await?);
    }
    Ok(Json(Found::of(views, &query)))
}

#[utoipa::path(
    get,
    path = "/shows/{id}",
    tag = "shows",
    summary = "A show with availability",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = ShowView), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
async fn show(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id, ShowId::parse, "show")?;
    let now = app.clock.now();
    let body = app
        .reads
        .get(&Scope::Show(id.clone()), View::Show, now, || async {
            let show = app
                .store
                .show(&id)
                .await?
                .ok_or(DomainError::NotFound("show"))?;
            json_bytes(&with_availability(&app, show).await?)
        })
        .await?;
    Ok(json_response(body))
}

#[utoipa::path(
    patch,
    path = "/shows/{id}",
    tag = "shows",
    summary = "Change selling terms",
    request_body = ShowPatch,
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Show), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn update_show(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    body: ApiJson<ShowPatch>,
) -> ApiResult<Json<Show>> {
    let current = managed_show(&app, &actor, &id).await?;
    let venue = app
        .store
        .venue(&current.venue_id)
        .await?
        .ok_or(DomainError::NotFound("venue"))?;
    let show = current.apply(body.value, &venue)?;
    app.store.update_show(&show, app.clock.now()).await?;
    // Viewers hear of it through the outbox (at least once, even if this process dies now);
    // this process's caches forget the old show at once.
    app.forget_show(&show.id);
    Ok(Json(show))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CapacityBody {
    capacity: i64,
}

#[utoipa::path(
    put,
    path = "/shows/{id}/areas/{area_id}/capacity",
    tag = "shows",
    summary = "Change a standing area's capacity for one show",
    params(("id" = String, Path), ("area_id" = String, Path)),
    request_body = CapacityBody,
    responses((status = 200, description = "Success", body = boxoffice_core::inventory::AreaView), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// More places (the show's waitlist is offered them first), or fewer, never below what is sold
/// and held.
async fn set_area_capacity(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path((id, area_id)): Path<(String, String)>,
    body: ApiJson<CapacityBody>,
) -> ApiResult<Json<boxoffice_core::inventory::AreaView>> {
    let show = managed_show(&app, &actor, &id).await?;
    let area = path_id(&area_id, boxoffice_core::ids::AreaId::parse, "area")?;
    let now = app.clock.now();
    app.store
        .set_area_capacity(&show.id, &area, body.value.capacity, now)
        .await?;
    // Counts moved (and places may have come free): caches forget, viewers get availability.
    app.announce(
        &show.id,
        crate::live::Change::SeatReleased {
            seat_ids: Vec::new(),
        },
    )
    .await;
    app.places_came_back(&show.id);
    let map = app.store.seat_map(&show, now).await?;
    Ok(Json(
        map.areas
            .into_iter()
            .find(|a| a.id == area)
            .ok_or(DomainError::NotFound("area"))?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Cancelled {
    show: Show,
    /// Bookings cancelled with the show; each is marked for refund.
    bookings_cancelled: i64,
}

#[utoipa::path(
    delete,
    path = "/shows/{id}",
    tag = "shows",
    summary = "Cancel a show and its bookings",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Cancelled), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn cancel_show(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Cancelled>> {
    let show = managed_show(&app, &actor, &id).await?;
    let bookings_cancelled = app.store.cancel_show(&show.id, app.clock.now()).await?;
    crate::metrics::booking_cancelled(bookings_cancelled.max(0) as u64);
    app.forget_show(&show.id);
    let show = app
        .store
        .show(&show.id)
        .await?
        .ok_or(DomainError::NotFound("show"))?;
    Ok(Json(Cancelled {
        show,
        bookings_cancelled,
    }))
}

#[utoipa::path(
    get,
    path = "/shows/{id}/seats",
    tag = "shows",
    summary = "The seat map",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = SeatMap), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
async fn seat_map(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id, ShowId::parse, "show")?;
    Ok(json_response(seat_map_json(&app, &id).await?))
}

/// The show's seat map as served (from the read cache); live snapshots send the same bytes.
pub(crate) async fn seat_map_json(app: &AppState, id: &ShowId) -> ApiResult<axum::body::Bytes> {
    let now = app.clock.now();
    app.reads
        .get(&Scope::Show(id.clone()), View::SeatMap, now, || async {
            let show = app
                .store
                .show(id)
                .await?
                .ok_or(DomainError::NotFound("show"))?;
            json_bytes(&app.store.seat_map(&show, now).await?)
        })
        .await
}

fn json_bytes(value: &impl Serialize) -> ApiResult<axum::body::Bytes> {
    Ok(serde_json::to_vec(value)
        .map_err(crate::error::ApiError::internal)?
        .into())
}

fn json_response(body: axum::body::Bytes) -> Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[derive(Serialize, utoipa::ToSchema)]
struct ShowFigures {
    #[serde(flatten)]
    sales: SalesSummary,
    /// Sold, held and free per category as of now.
    availability: Vec<CategoryAvailability>,
}

#[utoipa::path(
    get,
    path = "/shows/{id}/sales",
    tag = "shows",
    summary = "A show's sales figures",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = ShowFigures), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn sales(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ShowFigures>> {
    let show = managed_show(&app, &actor, &id).await?;
    let sales = app.store.sales(&show.id).await?;
    let availability = app
        .store
        .seat_map(&show, app.clock.now())
        .await?
        .availability;
    Ok(Json(ShowFigures {
        sales,
        availability,
    }))
}
