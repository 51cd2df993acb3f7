//! The JSON API under `/api/v1`, one module per area; each exposes its own `router()`, whose
//! handlers carry their OpenAPI description, so the document cannot miss a route.

mod accounts;
mod admin;
pub(crate) mod catalog;
mod live;
mod loyalty;
mod money;
mod orders;
mod organizer;
pub(crate) mod payments;
mod promo;
mod queue;
mod tickets;
mod waitlist;
mod webhooks;

use crate::state::AppState;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Boxoffice",
        description = "Ticketing and booking for events and showtimes. Errors are RFC 9457 problem documents.",
    ),
    modifiers(&Security),
    tags(
        (name = "accounts", description = "Sign-up, sign-in, sessions"),
        (name = "admin", description = "Platform administration"),
        (name = "organizer", description = "The caller's organizer: members and figures"),
        (name = "venues", description = "Venues and layouts"),
        (name = "events", description = "Events and schedules"),
        (name = "shows", description = "Shows, seat maps and sales"),
        (name = "orders", description = "Holds and bookings"),
        (name = "tickets", description = "Signed tickets, public keys, revocations and check-in"),
        (name = "webhooks", description = "Domain events sent to the organizer's endpoints"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "boxoffice_session",
                "Set by sign-in; changes also need the boxoffice_csrf cookie's value in x-csrf-token",
            ))),
        );
    }
}

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(accounts::router())
        .merge(admin::router())
        .merge(organizer::router())
        .merge(catalog::router())
        .merge(orders::router())
        .merge(live::router())
        .merge(queue::router())
        .merge(webhooks::router())
        .merge(payments::router())
        .merge(money::router())
        .merge(tickets::router())
        .merge(promo::router())
        .merge(waitlist::router())
        .merge(loyalty::router())
}
