//! Events and their shows: what is on, where, when, at what price, and under which selling
//! limits. A show's rules (hold minutes, per-order and per-customer limits) are checked here.

use crate::error::{DomainError, Problems};
use crate::ids::{EventId, ShowId, UserId, VenueId};
use crate::venue::Venue;
use crate::{Currency, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_HOLD_MINUTES: i64 = 60;
pub const MAX_TICKETS_PER_ORDER: i64 = 50;
pub const MAX_PRICE_MINOR: i64 = 100_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Movie,
    Concert,
    Theatre,
    Sports,
    Conference,
    Other,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Movie => "movie",
            EventKind::Concert => "concert",
            EventKind::Theatre => "theatre",
            EventKind::Sports => "sports",
            EventKind::Conference => "conference",
            EventKind::Other => "other",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            EventKind::Movie,
            EventKind::Concert,
            EventKind::Theatre,
            EventKind::Sports,
            EventKind::Conference,
            EventKind::Other,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == raw)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub id: EventId,
    pub organizer_id: UserId,
    pub title: String,
    pub kind: EventKind,
    pub description: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub title: String,
    pub kind: EventKind,
    #[serde(default)]
    pub description: String,
}

impl EventInput {
    pub fn into_event(self, organizer_id: UserId, now: Timestamp) -> Result<Event, DomainError> {
        let mut problems = Problems::default();
        let title = self.title.trim().to_owned();
        problems.check(
            !title.is_empty() && title.chars().count() <= 200,
            "title",
            "must be 1 to 200 characters",
        );
        problems.check(
            self.description.chars().count() <= 5_000,
            "description",
            "must be at most 5000 characters",
        );
        problems.finish(Event {
            id: EventId::generate(),
            organizer_id,
            title,
            kind: self.kind,
            description: self.description,
            created_at: now,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Show {
    pub id: ShowId,
    pub event_id: EventId,
    pub organizer_id: UserId,
    pub venue_id: VenueId,
    pub starts_at: Timestamp,
    pub currency: Currency,
    /// Price in minor units per seat or area category.
    pub prices: BTreeMap<String, i64>,
    pub hold_minutes: i64,
    pub max_tickets_per_order: i64,
    pub max_tickets_per_customer: i64,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowInput {
    pub event_id: String,
    pub venue_id: String,
    pub starts_at: Timestamp,
    pub currency: String,
    pub prices: BTreeMap<String, i64>,
    #[serde(default = "default_hold_minutes")]
    pub hold_minutes: i64,
    #[serde(default = "default_max_per_order")]
    pub max_tickets_per_order: i64,
    #[serde(default = "default_max_per_customer")]
    pub max_tickets_per_customer: i64,
}

fn default_hold_minutes() -> i64 {
    10
}
fn default_max_per_order() -> i64 {
    10
}
fn default_max_per_customer() -> i64 {
    10
}

impl ShowInput {
    /// `event` and `venue` are the ones the ids named, already checked to belong to the caller.
    pub fn into_show(
        self,
        event: &Event,
        venue: &Venue,
        now: Timestamp,
    ) -> Result<Show, DomainError> {
        let mut problems = Problems::default();
        let currency = Currency::parse(&self.currency);
        problems.check(
            currency.is_some(),
            "currency",
            "must be a 3-letter ISO 4217 code such as EUR",
        );
        problems.check(self.starts_at > now, "starts_at", "must be in the future");
        problems.check(
            (1..=MAX_HOLD_MINUTES).contains(&self.hold_minutes),
            "hold_minutes",
            format!("must be 1 to {MAX_HOLD_MINUTES}"),
        );
        problems.check(
            (1..=MAX_TICKETS_PER_ORDER).contains(&self.max_tickets_per_order),
            "max_tickets_per_order",
            format!("must be 1 to {MAX_TICKETS_PER_ORDER}"),
        );
        problems.check(
            self.max_tickets_per_customer >= self.max_tickets_per_order
                && self.max_tickets_per_customer <= 10 * MAX_TICKETS_PER_ORDER,
            "max_tickets_per_customer",
            "must be at least max_tickets_per_order and at most 500",
        );
        let categories = venue.categories();
        for category in &categories {
            problems.check(
                self.prices.contains_key(category),
                format!("prices.{category}"),
                "the venue has this category; give it a price",
            );
        }
        for (category, price) in &self.prices {
            problems.check(
                categories.contains(category),
                format!("prices.{category}"),
                "the venue has no such category",
            );
            problems.check(
                (0..=MAX_PRICE_MINOR).contains(price),
                format!("prices.{category}"),
                "must be 0 to 100000000 minor units",
            );
        }
        let Some(currency) = currency else {
            return Err(problems
                .finish(())
                .expect_err("currency problem was recorded"));
        };
        problems.finish(Show {
            id: ShowId::generate(),
            event_id: event.id.clone(),
            organizer_id: event.organizer_id.clone(),
            venue_id: venue.id.clone(),
            starts_at: self.starts_at,
            currency,
            prices: self.prices,
            hold_minutes: self.hold_minutes,
            max_tickets_per_order: self.max_tickets_per_order,
            max_tickets_per_customer: self.max_tickets_per_customer,
            created_at: now,
        })
    }
}

impl Show {
    /// Seats can be held and bought until the show starts.
    pub fn check_on_sale(&self, now: Timestamp) -> Result<(), DomainError> {
        if now >= self.starts_at {
            return Err(DomainError::NotOnSale(
                "the show has already started".to_owned(),
            ));
        }
        Ok(())
    }

    pub fn price_of(&self, category: &str) -> Result<i64, DomainError> {
        self.prices
            .get(category)
            .copied()
            .ok_or_else(|| DomainError::NotOnSale(format!("category {category} has no price")))
    }

    /// A new order of `requested` tickets, for a customer who already holds or owns
    /// `customer_already` tickets of this show.
    pub fn check_ticket_limits(
        &self,
        requested: i64,
        customer_already: i64,
    ) -> Result<(), DomainError> {
        if requested > self.max_tickets_per_order {
            return Err(DomainError::LimitExceeded(format!(
                "at most {} tickets per order",
                self.max_tickets_per_order
            )));
        }
        if customer_already + requested > self.max_tickets_per_customer {
            return Err(DomainError::LimitExceeded(format!(
                "at most {} tickets per customer for this show; you already hold or own {}",
                self.max_tickets_per_customer, customer_already
            )));
        }
        Ok(())
    }
}
