//! Demo data for a first start on an empty database: four accounts, a cinema hall, a concert
//! venue with a seated balcony and a standing floor, and shows over the next two weeks.

use crate::state::AppState;
use boxoffice_core::catalog::{EventInput, ShowInput};
use boxoffice_core::ids::{OrganizerId, UserId};
use boxoffice_core::user::{AccountState, Organizer, Role, User};
use boxoffice_core::venue::VenueInput;
use serde_json::json;

pub const DEMO_PASSWORD: &str = "boxoffice-demo";
pub const DEMO_ACCOUNTS: [(&str, &str, Role); 4] = [
    ("admin@example.com", "Ada Admin", Role::Admin),
    ("organizer@example.com", "Olga Organizer", Role::Organizer),
    ("alice@example.com", "Alice", Role::Customer),
    ("bob@example.com", "Bob", Role::Customer),
];

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Seeds only an empty database; returns whether it did.
pub async fn seed(app: &AppState) -> anyhow::Result<bool> {
    if app.store.user_count().await? > 0 {
        return Ok(false);
    }
    let now = app.clock.now();
    let hash = app
        .passwords
        .hash(DEMO_PASSWORD.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let organizer = Organizer {
        id: OrganizerId::generate(),
        name: "Lumière & Riverside".into(),
        state: AccountState::Active,
        created_at: now,
    };
    for (email, name, role) in DEMO_ACCOUNTS {
        let user = User {
            id: UserId::generate(),
            email: email.into(),
            name: name.into(),
            role,
            state: AccountState::Active,
            organizer: None,
            created_at: now,
        };
        let owns = (role == Role::Organizer).then_some(&organizer);
        app.store.insert_user(&user, &hash, owns).await?;
    }
    let organizer = organizer.id;

    let rows: Vec<_> = ('A'..='J')
        .map(|row| {
            let category = match row {
                'A'..='C' => "standard",
                'D'..='H' => "premium",
                _ => "recliner",
            };
            json!({ "label": row.to_string(), "count": 16, "category": category })
        })
        .collect();
    let cinema: VenueInput = serde_json::from_value(json!({
        "name": "Lumière Hall 1", "city": "Berlin", "timezone": "Europe/Berlin",
        "sections": [{ "name": "Auditorium", "rows": rows }],
    }))?;
    let cinema = cinema
        .into_venue(organizer.clone(), now)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    app.store.insert_venue(&cinema, None).await?;

    let balcony: Vec<_> = (1..=5)
        .map(|n| json!({ "label": format!("R{n}"), "count": 20, "category": "seated" }))
        .collect();
    let arena: VenueInput = serde_json::from_value(json!({
        "name": "Riverside Arena", "city": "Berlin", "timezone": "Europe/Berlin",
        "sections": [{ "name": "Balcony", "rows": balcony }],
        "areas": [{ "name": "Standing floor", "category": "standing", "capacity": 500 }],
    }))?;
    let arena = arena
        .into_venue(organizer.clone(), now)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    app.store.insert_venue(&arena, None).await?;

    let film: EventInput = serde_json::from_value(json!({
        "title": "The Long Night", "kind": "movie", "duration_minutes": 118, "age_rating": "12",
        "tags": ["drama", "thriller"], "language": "en", "subtitles": "de", "format": "2D",
        "description": "A lighthouse keeper, a storm, and one night that will not end.",
    }))?;
    let film = film
        .into_event(organizer.clone(), now)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    app.store.insert_event(&film, None).await?;
    let concert: EventInput = serde_json::from_value(json!({
        "title": "Northern Lights Live", "kind": "concert", "duration_minutes": 150, "tags": ["synth-pop", "live"],
        "description": "An evening of synth-pop under the arena roof.",
    }))?;
    let concert = concert
        .into_event(organizer.clone(), now)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    app.store.insert_event(&concert, None).await?;

    let midnight = now.unix_ms() - now.unix_ms().rem_euclid(DAY_MS);
    for day in 1..=14 {
        for hour in [17, 20] {
            let starts_at =
                boxoffice_core::Timestamp::from_unix_ms(midnight + day * DAY_MS + hour * HOUR_MS);
            let show: ShowInput = serde_json::from_value(json!({
                "event_id": film.id, "venue_id": cinema.id, "starts_at": starts_at, "currency": "EUR",
                "prices": { "standard": 900, "premium": 1200, "recliner": 1600 },
                "hold_minutes": 10, "max_tickets_per_order": 8, "max_tickets_per_customer": 10,
            }))?;
            let show = show
                .into_show(&film, &cinema, now)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            app.store.insert_show(&show, None).await?;
        }
    }
    for day in [6, 13] {
        let starts_at =
            boxoffice_core::Timestamp::from_unix_ms(midnight + day * DAY_MS + 19 * HOUR_MS);
        let show: ShowInput = serde_json::from_value(json!({
            "event_id": concert.id, "venue_id": arena.id, "starts_at": starts_at, "currency": "EUR",
            "prices": { "seated": 6500, "standing": 4500 },
            "hold_minutes": 8, "max_tickets_per_order": 6, "max_tickets_per_customer": 6,
        }))?;
        let show = show
            .into_show(&concert, &arena, now)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        app.store.insert_show(&show, None).await?;
    }
    Ok(true)
}
