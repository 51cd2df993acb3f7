//! The JSON API under `/api/v1`, one module per area; each exposes its own `router()`.

mod accounts;
mod admin;
mod catalog;
mod orders;
mod organizer;

use crate::state::AppState;
use axum::Router;

pub fn api() -> Router<AppState> {
    Router::new()
        .merge(accounts::router())
        .merge(admin::router())
        .merge(organizer::router())
        .merge(catalog::router())
        .merge(orders::router())
}
