//! The waiting room as a service: a show's room settings (from the store, remembered here until
//! the show changes), where an account stands, admission tokens, the inventory check that stops
//! admission when nothing is left, and live `queue` updates for the people waiting.

use crate::error::{ApiError, ApiResult};
use crate::live::Change;
use crate::queue::{Admissions, Conditions, LineFigures, LineUnavailable, Lines};
use crate::state::AppState;
use axum::http::StatusCode;
use boxoffice_core::ids::{ShowId, UserId};
use boxoffice_core::waiting::{QueueState, Room, estimated_wait_seconds, state_of};
use boxoffice_core::{DomainError, Timestamp};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// How long (by the app's clock) an inventory reading is trusted by the gate.
const INVENTORY_MS: i64 = 1_000;

#[derive(Clone, Copy, Debug)]
struct Inventory {
    read_at: i64,
    free: bool,
    held: bool,
}

pub struct WaitingRooms {
    pub lines: Lines,
    pub admissions: Admissions,
    /// Room settings and sale opening per show (`None`: no room), until the show changes.
    rooms: Mutex<HashMap<ShowId, Option<(Room, Timestamp)>>>,
    inventory: Mutex<HashMap<ShowId, Inventory>>,
}

/// Where an account stands, as the API answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Standing {
    pub show_id: ShowId,
    pub state: QueueState,
    /// 1 = next in; absent before the draw and once in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<u64>,
    /// Everyone who joined, admitted or not.
    pub line_length: u64,
    pub admitted_through: u64,
    /// Send as `x-admission-token` on `POST /holds` for this show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_expires_at: Option<Timestamp>,
    /// Sold out for now, but held seats may still come back.
    pub held_may_return: bool,
}

/// The organizer's view of a room.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RoomStats {
    pub show_id: ShowId,
    pub enabled: bool,
    pub line_length: u64,
    pub waiting: u64,
    pub admitted: u64,
    pub admitted_per_minute: f64,
    pub active_shoppers: u64,
    pub bookings: i64,
    /// Bookings per admitted person.
    pub conversion: f64,
    pub sold_out: bool,
    /// The pre-queue draw's seed, published once the sale has opened (for audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw_seed: Option<String>,
}

impl From<LineUnavailable> for ApiError {
    fn from(error: LineUnavailable) -> Self {
        ApiError::Problem {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "waiting_room_unavailable",
            detail: error.to_string(),
        }
    }
}

impl WaitingRooms {
    pub fn new(lines: Lines, admissions: Admissions) -> Self {
        Self {
            lines,
            admissions,
            rooms: Mutex::default(),
            inventory: Mutex::default(),
        }
    }

    /// The show changed (perhaps its room): read the settings again next time.
    pub fn forget(&self, show: &ShowId) {
        self.rooms.lock().expect("rooms lock").remove(show);
    }

    /// The show's room and sale opening, when it has a room switched on.
    pub async fn room(app: &AppState, show: &ShowId) -> ApiResult<Option<(Room, Timestamp)>> {
        let known = app
            .waiting
            .rooms
            .lock()
            .expect("rooms lock")
            .get(show)
            .cloned();
        let room = match known {
            Some(room) => room,
            None => {
                let room = match app.store.waiting_room(show).await? {
                    Some(room) => {
                        let found = app.store.show(show).await?;
                        found.map(|s| (room, s.on_sale_at))
                    }
                    None => None,
                };
                let mut rooms = app.waiting.rooms.lock().expect("rooms lock");
                rooms.insert(show.clone(), room.clone());
                room
            }
        };
        Ok(room.filter(|(room, _)| room.enabled))
    }

    /// Whether anything is free, and whether anything is held, read at most once a second.
    async fn inventory(app: &AppState, show: &ShowId, now: Timestamp) -> ApiResult<Inventory> {
        let known = app
            .waiting
            .inventory
            .lock()
            .expect("inventory lock")
            .get(show)
            .copied();
        if let Some(known) = known.filter(|i| now.unix_ms() - i.read_at < INVENTORY_MS) {
            return Ok(known);
        }
        let found = app
            .store
            .show(show)
            .await?
            .ok_or(DomainError::NotFound("show"))?;
        let map = app.store.seat_map(&found, now).await?;
        let reading = Inventory {
            read_at: now.unix_ms(),
            free: map.availability.iter().any(|c| c.free > 0),
            held: map.availability.iter().any(|c| c.held > 0),
        };
        let mut inventory = app.waiting.inventory.lock().expect("inventory lock");
        inventory.insert(show.clone(), reading);
        Ok(reading)
    }

    /// Lets in whom the gate allows now, and tells the people waiting if that moved the line.
    async fn advance(
        app: &AppState,
        show: &ShowId,
        room: &Room,
        on_sale_at: Timestamp,
        now: Timestamp,
    ) -> ApiResult<(LineFigures, Inventory)> {
        let inventory = Self::inventory(app, show, now).await?;
        let when = Conditions {
            now,
            on_sale_at,
            inventory_left: inventory.free,
        };
        let (admitted, figures) = app.waiting.lines.advance(show, room, when).await?;
        if admitted > 0 {
            crate::metrics::queue_admitted(admitted);
            let change = Change::QueuePosition {
                admitted_through: figures.admitted_through,
                line_length: figures.length,
                sold_out: !inventory.free,
            };
            app.live.publish(show, change).await;
        }
        crate::metrics::queue_waiting(
            show,
            figures.length.saturating_sub(figures.admitted_through),
        );
        Ok((figures, inventory))
    }

    /// Joins the line (when `join`) and says where the account stands.
    pub async fn stand(
        app: &AppState,
        show: &ShowId,
        user: &UserId,
        join: bool,
    ) -> ApiResult<Standing> {
        let (room, on_sale_at) = Self::room(app, show)
            .await?
            .ok_or(DomainError::NotFound("waiting room"))?;
        let now = app.clock.now();
        if join && now < room.opens_at {
            return Err(DomainError::NotOnSale(format!(
                "the waiting room opens at {}",
                room.opens_at.to_rfc3339()
            ))
            .into());
        }
        let when = Conditions {
            now,
            on_sale_at,
            inventory_left: true,
        };
        if join {
            app.waiting.lines.join(show, user, &room, when).await?;
        }
        let (figures, inventory) = Self::advance(app, show, &room, on_sale_at, now).await?;
        let (place, _) = app.waiting.lines.look(show, user, now).await?;
        let opened = now >= on_sale_at;
        if !place.joined {
            return Err(DomainError::NotFound("place in this line: join first").into());
        }
        // Before the draw a rank means nothing yet; after it every place has one.
        let rank = match place.rank {
            Some(rank) if opened => rank,
            _ if opened => return Err(LineUnavailable.into()),
            _ => u64::MAX,
        };
        let admitted = opened && rank < figures.admitted_through;
        let mut session_until = place.session_until;
        if admitted && session_until.is_none() {
            let until = now.plus_minutes(room.session_minutes);
            session_until = Some(app.waiting.lines.session(show, user, until).await?);
        }
        let expired = session_until.is_some_and(|until| until <= now);
        let state = state_of(
            rank,
            &admitted_gate(figures),
            opened,
            expired,
            inventory.free,
        );
        let waiting = matches!(state, QueueState::Waiting | QueueState::SoldOut);
        let ahead = waiting.then(|| rank - figures.admitted_through);
        let token = (state == QueueState::Admitted)
            .then(|| session_until.map(|until| app.waiting.admissions.issue(user, show, until)))
            .flatten();
        Ok(Standing {
            show_id: show.clone(),
            state,
            position: ahead.map(|a| a + 1),
            ahead,
            estimated_wait_seconds: ahead
                .filter(|_| state == QueueState::Waiting)
                .map(|a| estimated_wait_seconds(a + 1, room.admission_rate_per_minute)),
            line_length: figures.length,
            admitted_through: figures.admitted_through,
            admission_token: token,
            admission_expires_at: session_until.filter(|_| state == QueueState::Admitted),
            held_may_return: !inventory.free && inventory.held,
        })
    }

    /// While the show's room is on, only admitted accounts may hold its seats.
    pub async fn check_admission(
        app: &AppState,
        show: &ShowId,
        user: &UserId,
        token: Option<&str>,
    ) -> ApiResult<()> {
        if Self::room(app, show).await?.is_none() {
            return Ok(());
        }
        let admitted = token.is_some_and(|t| {
            app.waiting
                .admissions
                .admits(t, user, show, app.clock.now())
        });
        if admitted {
            Ok(())
        } else {
            Err(ApiError::Problem {
                status: StatusCode::FORBIDDEN,
                kind: "admission_required",
                detail: "this show sells through its waiting room: join the line and send the \
                         admission token you get when it is your turn (x-admission-token)"
                    .into(),
            })
        }
    }

    pub async fn stats(
        app: &AppState,
        show: &ShowId,
        room: &Room,
        on_sale_at: Timestamp,
    ) -> ApiResult<RoomStats> {
        let now = app.clock.now();
        let (figures, inventory) = if room.enabled {
            Self::advance(app, show, room, on_sale_at, now).await?
        } else {
            let figures = app
                .waiting
                .lines
                .look(show, &UserId::generate(), now)
                .await?
                .1;
            (figures, Self::inventory(app, show, now).await?)
        };
        let sales = app.store.sales(show).await?;
        let minutes_open = ((now.unix_ms() - on_sale_at.unix_ms()) as f64 / 60_000.0).max(1.0);
        let opened = now >= on_sale_at;
        Ok(RoomStats {
            show_id: show.clone(),
            enabled: room.enabled,
            line_length: figures.length,
            waiting: figures.length.saturating_sub(figures.admitted_through),
            admitted: figures.admitted_through,
            admitted_per_minute: if opened {
                figures.admitted_through as f64 / minutes_open
            } else {
                0.0
            },
            active_shoppers: figures.active,
            bookings: sales.bookings_confirmed,
            conversion: if figures.admitted_through > 0 {
                sales.bookings_confirmed as f64 / figures.admitted_through as f64
            } else {
                0.0
            },
            sold_out: !inventory.free,
            draw_seed: opened.then(|| room.seed.to_string()),
        })
    }

    /// Moves every room this process has seen lately, so people advance without polling.
    pub async fn tick(app: &AppState) {
        let shows: Vec<(ShowId, Room, Timestamp)> = app
            .waiting
            .rooms
            .lock()
            .expect("rooms lock")
            .iter()
            .filter_map(|(show, room)| {
                room.as_ref()
                    .filter(|(room, _)| room.enabled)
                    .map(|(room, opens)| (show.clone(), room.clone(), *opens))
            })
            .collect();
        let now = app.clock.now();
        for (show, room, on_sale_at) in shows {
            if let Err(error) = Self::advance(app, &show, &room, on_sale_at, now).await {
                tracing::debug!(%show, ?error, "waiting room tick failed");
            }
        }
    }
}

fn admitted_gate(figures: LineFigures) -> boxoffice_core::waiting::Gate {
    boxoffice_core::waiting::Gate {
        admitted_through: figures.admitted_through,
        ..Default::default()
    }
}
