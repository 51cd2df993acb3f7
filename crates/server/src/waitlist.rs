//! Runs waitlist matching rounds and tells people about the offers: after anything that frees
//! places on a show (a cancellation, a released or expired hold) and on every sweeper tick for
//! each show with an open list (which also catches capacity an organizer added, and rounds an
//! instance died before running). The round itself is the store's, under the show's lock.

use crate::live::Change;
use crate::state::AppState;
use boxoffice_core::ids::ShowId;

/// Offers what is free on `show` to the first entries it can serve, and tells viewers: the
/// offered seats are held, and each offer's entry (its owner's page listens for its id) has one.
/// The e-mail goes through the outbox with the offer.
pub async fn serve(app: &AppState, show: &ShowId) {
    let offers = match app.store.serve_waitlist(show, &*app.clock).await {
        Ok(offers) => offers,
        Err(error) => {
            tracing::warn!(%error, %show, "waitlist round failed; the next tick tries again");
            return;
        }
    };
    for offer in offers {
        crate::metrics::waitlist_offered();
        let seat_ids = offer
            .hold
            .items
            .iter()
            .filter_map(|i| i.seat_id.clone())
            .collect();
        app.announce(show, Change::SeatHeld { seat_ids }).await;
        app.announce(
            show,
            Change::WaitlistOffered {
                entry_id: offer.entry.id.clone(),
            },
        )
        .await;
    }
}

/// A round for every show with an open list.
pub async fn serve_all(app: &AppState) {
    match app.store.shows_with_open_waitlists(1_000).await {
        Ok(shows) => {
            for show in shows {
                serve(app, &show).await;
            }
        }
        Err(error) => tracing::warn!(%error, "could not list open waitlists"),
    }
}
