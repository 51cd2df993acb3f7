//! The background sweeper: marks holds past their deadline as expired and frees their seats in
//! storage. Correctness never waits for it (an expired hold already counts as free); it keeps
//! the stored state tidy, announces the releases to viewers and runs the waitlists' rounds.

use crate::live::Change;
use crate::state::AppState;
use boxoffice_core::outbox::EventKind;
use tokio::sync::watch;

const BATCH: i64 = 500;

pub async fn run(app: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(app.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Ok(active) = app.store.active_holds(app.clock.now()).await {
            crate::metrics::gauges(active, app.store.pool_stats());
        }
        loop {
            match app.store.expire_holds(app.clock.now(), BATCH).await {
                Ok(expired) if expired.is_empty() => break,
                Ok(expired) => {
                    crate::metrics::holds_expired(expired.len() as u64);
                    tracing::info!(count = expired.len(), "expired holds released");
                    for hold in &expired {
                        let change = Change::SeatReleased {
                            seat_ids: hold.seat_ids.clone(),
                        };
                        app.announce_event(
                            &hold.show_id,
                            change,
                            EventKind::HoldExpired,
                            hold.id.as_str(),
                        )
                        .await;
                    }
                    if (expired.len() as i64) < BATCH {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "hold sweep failed; retrying next tick");
                    break;
                }
            }
        }
        // What came back (expired holds and offers, anything an organizer added) goes to the
        // waitlists first.
        crate::waitlist::serve_all(&app).await;
        if let Err(error) = app.store.credit_cashbacks(app.clock.now(), BATCH).await {
            tracing::warn!(%error, "crediting cashback prizes failed; retrying next tick");
        }
    }
}
