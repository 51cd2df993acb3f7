//! The JSON API under `/api/v1`, one module per area; each exposes its own `router()`.

mod accounts;
mod catalog;
mod orders;

use crate::state::AppState;
use axum::Router;

pub fn api() -> Router<AppState> {
    Router::new()
        .merge(accounts::router())
        .merge(catalog::router())
        .merge(orders::router())
}
