//! Events and their shows: what is on, where, when, at what price, and under which selling
//! limits. A show's rules (hold minutes, per-order and per-customer limits) are checked here.

use crate::error::{DomainError, Problems};
use crate::ids::{EventId, OrganizerId, ShowId, VenueId};
use crate::venue::Venue;
use crate::{Currency, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub const MAX_HOLD_MINUTES: i64 = 60;
pub const MAX_TICKETS_PER_ORDER: i64 = 50;
pub const MAX_PRICE_MINOR: i64 = 100_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// How a film is projected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Format {
    #[serde(rename = "2D")]
    TwoD,
    #[serde(rename = "3D")]
    ThreeD,
    #[serde(rename = "IMAX")]
    Imax,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::TwoD => "2D",
            Format::ThreeD => "3D",
            Format::Imax => "IMAX",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Format::TwoD, Format::ThreeD, Format::Imax]
            .into_iter()
            .find(|f| f.as_str() == raw)
    }
}

/// How long a show blocks its venue when the event gives no duration.
pub const DEFAULT_DURATION_MINUTES: i64 = 120;

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Event {
    pub id: EventId,
    pub organizer_id: OrganizerId,
    pub title: String,
    pub kind: EventKind,
    pub description: String,
    pub duration_minutes: Option<i64>,
    pub tags: Vec<String>,
    pub age_rating: Option<String>,
    pub image_url: Option<String>,
    /// Films only: spoken language, subtitle language and projection format.
    pub language: Option<String>,
    pub subtitles: Option<String>,
    pub format: Option<Format>,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub title: String,
    pub kind: EventKind,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub duration_minutes: Option<i64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub age_rating: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub subtitles: Option<String>,
    #[serde(default)]
    pub format: Option<Format>,
}

/// A change to an event: absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    pub title: Option<String>,
    pub kind: Option<EventKind>,
    pub description: Option<String>,
    pub duration_minutes: Option<i64>,
    pub tags: Option<Vec<String>>,
    pub age_rating: Option<String>,
    pub image_url: Option<String>,
    pub language: Option<String>,
    pub subtitles: Option<String>,
    pub format: Option<Format>,
}

impl EventInput {
    pub fn into_event(
        self,
        organizer_id: OrganizerId,
        now: Timestamp,
    ) -> Result<Event, DomainError> {
        Event {
            id: EventId::generate(),
            organizer_id,
            title: self.title.trim().to_owned(),
            kind: self.kind,
            description: self.description,
            duration_minutes: self.duration_minutes,
            tags: self.tags,
            age_rating: self.age_rating,
            image_url: self.image_url,
            language: self.language,
            subtitles: self.subtitles,
            format: self.format,
            created_at: now,
        }
        .validated()
    }
}

impl Event {
    pub fn apply(mut self, patch: EventPatch) -> Result<Event, DomainError> {
        macro_rules! take {
            ($($field:ident),*) => { $(if let Some(value) = patch.$field { self.$field = value.into(); })* };
        }
        take!(
            title,
            kind,
            description,
            duration_minutes,
            tags,
            age_rating,
            image_url,
            language,
            subtitles,
            format
        );
        self.title = self.title.trim().to_owned();
        self.validated()
    }

    fn validated(self) -> Result<Event, DomainError> {
        let mut problems = Problems::default();
        problems.check(
            !self.title.is_empty() && self.title.chars().count() <= 200,
            "title",
            "must be 1 to 200 characters",
        );
        problems.check(
            self.description.chars().count() <= 5_000,
            "description",
            "must be at most 5000 characters",
        );
        problems.check(
            self.duration_minutes
                .is_none_or(|m| (1..=24 * 60).contains(&m)),
            "duration_minutes",
            "must be 1 to 1440",
        );
        problems.check(self.tags.len() <= 20, "tags", "at most 20 tags");
        for (i, tag) in self.tags.iter().enumerate() {
            problems.check(
                !tag.trim().is_empty() && tag.chars().count() <= 40,
                format!("tags.{i}"),
                "must be 1 to 40 characters",
            );
        }
        problems.check(
            self.age_rating
                .as_ref()
                .is_none_or(|r| !r.is_empty() && r.len() <= 10),
            "age_rating",
            "must be 1 to 10 characters",
        );
        problems.check(
            self.image_url.as_ref().is_none_or(|u| {
                (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 2_000
            }),
            "image_url",
            "must be an http(s) URL of at most 2000 characters",
        );
        let film_only = [
            ("language", self.language.is_some()),
            ("subtitles", self.subtitles.is_some()),
            ("format", self.format.is_some()),
        ];
        for (field, given) in film_only {
            problems.check(
                self.kind == EventKind::Movie || !given,
                field,
                "only films have a language, subtitles and format",
            );
        }
        for (field, value) in [("language", &self.language), ("subtitles", &self.subtitles)] {
            problems.check(
                value.as_ref().is_none_or(|v| (2..=35).contains(&v.len())),
                field,
                "must be 2 to 35 characters",
            );
        }
        problems.finish(self)
    }

    pub fn duration_ms(&self) -> i64 {
        self.duration_minutes.unwrap_or(DEFAULT_DURATION_MINUTES) * 60_000
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShowState {
    Scheduled,
    Cancelled,
}

impl ShowState {
    pub fn as_str(self) -> &'static str {
        match self {
            ShowState::Scheduled => "scheduled",
            ShowState::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "scheduled" => Some(ShowState::Scheduled),
            "cancelled" => Some(ShowState::Cancelled),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Show {
    pub id: ShowId,
    pub event_id: EventId,
    pub organizer_id: OrganizerId,
    pub venue_id: VenueId,
    pub state: ShowState,
    pub starts_at: Timestamp,
    /// When the venue is free again: start plus the event's duration.
    pub ends_at: Timestamp,
    pub on_sale_at: Timestamp,
    pub off_sale_at: Timestamp,
    pub currency: Currency,
    /// Price in minor units per seat or area category.
    pub prices: BTreeMap<String, i64>,
    /// Categories sold only with a promo code that unlocks them (presales, guest lists).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub locked_categories: BTreeSet<String>,
    pub hold_minutes: i64,
    pub max_tickets_per_order: i64,
    pub max_tickets_per_customer: i64,
    /// Overrides of the film's format and language for this showing.
    pub format: Option<Format>,
    pub language: Option<String>,
    pub created_at: Timestamp,
    pub cancelled_at: Option<Timestamp>,
}

/// What a show sells under: shared by single shows and schedules.
#[derive(Clone, Debug)]
pub struct SaleTerms {
    pub currency: String,
    pub prices: BTreeMap<String, i64>,
    pub locked_categories: BTreeSet<String>,
    pub hold_minutes: i64,
    pub max_tickets_per_order: i64,
    pub max_tickets_per_customer: i64,
    pub on_sale_at: Option<Timestamp>,
    pub off_sale_at: Option<Timestamp>,
    pub format: Option<Format>,
    pub language: Option<String>,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowInput {
    pub event_id: String,
    pub venue_id: String,
    pub starts_at: Timestamp,
    pub currency: String,
    pub prices: BTreeMap<String, i64>,
    /// Categories sold only with a promo code that unlocks them.
    #[serde(default)]
    pub locked_categories: BTreeSet<String>,
    #[serde(default = "default_hold_minutes")]
    pub hold_minutes: i64,
    #[serde(default = "default_max_per_order")]
    pub max_tickets_per_order: i64,
    #[serde(default = "default_max_per_customer")]
    pub max_tickets_per_customer: i64,
    /// Sales open now unless given.
    #[serde(default)]
    pub on_sale_at: Option<Timestamp>,
    /// Sales close when the show starts unless given.
    #[serde(default)]
    pub off_sale_at: Option<Timestamp>,
    #[serde(default)]
    pub format: Option<Format>,
    #[serde(default)]
    pub language: Option<String>,
}

pub fn default_hold_minutes() -> i64 {
    10
}
pub fn default_max_per_order() -> i64 {
    10
}
pub fn default_max_per_customer() -> i64 {
    10
}

impl ShowInput {
    pub fn terms(&self) -> SaleTerms {
        SaleTerms {
            currency: self.currency.clone(),
            prices: self.prices.clone(),
            locked_categories: self.locked_categories.clone(),
            hold_minutes: self.hold_minutes,
            max_tickets_per_order: self.max_tickets_per_order,
            max_tickets_per_customer: self.max_tickets_per_customer,
            on_sale_at: self.on_sale_at,
            off_sale_at: self.off_sale_at,
            format: self.format,
            language: self.language.clone(),
        }
    }

    /// `event` and `venue` are the ones the ids named, already checked to belong to the caller.
    pub fn into_show(
        self,
        event: &Event,
        venue: &Venue,
        now: Timestamp,
    ) -> Result<Show, DomainError> {
        self.terms().show_at(self.starts_at, event, venue, now)
    }
}

impl SaleTerms {
    /// A show of `event` at `venue` starting at `starts_at`, checked against the terms' rules.
    pub fn show_at(
        &self,
        starts_at: Timestamp,
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
        problems.check(starts_at > now, "starts_at", "must be in the future");
        self.check_limits(&mut problems);
        check_prices(&self.prices, venue, &mut problems);
        check_locked(&self.locked_categories, &self.prices, &mut problems);
        let on_sale_at = self.on_sale_at.unwrap_or(now);
        let off_sale_at = self.off_sale_at.unwrap_or(starts_at);
        let ends_at = starts_at.plus_ms(event.duration_ms());
        problems.check(
            on_sale_at < off_sale_at,
            "on_sale_at",
            "must be before off_sale_at",
        );
        problems.check(
            off_sale_at <= ends_at,
            "off_sale_at",
            "must not be after the show ends",
        );
        problems.check(
            event.kind == EventKind::Movie || (self.format.is_none() && self.language.is_none()),
            "format",
            "only film showings have a format or language",
        );
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
            state: ShowState::Scheduled,
            starts_at,
            ends_at,
            on_sale_at,
            off_sale_at,
            currency,
            prices: self.prices.clone(),
            locked_categories: self.locked_categories.clone(),
            hold_minutes: self.hold_minutes,
            max_tickets_per_order: self.max_tickets_per_order,
            max_tickets_per_customer: self.max_tickets_per_customer,
            format: self.format,
            language: self.language.clone(),
            created_at: now,
            cancelled_at: None,
        })
    }

    fn check_limits(&self, problems: &mut Problems) {
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
    }
}

fn check_locked(
    locked: &BTreeSet<String>,
    prices: &BTreeMap<String, i64>,
    problems: &mut Problems,
) {
    for category in locked {
        problems.check(
            prices.contains_key(category),
            format!("locked_categories.{category}"),
            "is not a category of this show",
        );
    }
}

fn check_prices(prices: &BTreeMap<String, i64>, venue: &Venue, problems: &mut Problems) {
    let categories = venue.categories();
    for category in &categories {
        problems.check(
            prices.contains_key(category),
            format!("prices.{category}"),
            "the venue has this category; give it a price",
        );
    }
    for (category, price) in prices {
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
}

/// A change to a show's selling terms; where and when it happens is fixed once sold.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowPatch {
    pub prices: Option<BTreeMap<String, i64>>,
    /// Replaces the set of categories sold only with an unlocking code.
    pub locked_categories: Option<BTreeSet<String>>,
    pub hold_minutes: Option<i64>,
    pub max_tickets_per_order: Option<i64>,
    pub max_tickets_per_customer: Option<i64>,
    pub on_sale_at: Option<Timestamp>,
    pub off_sale_at: Option<Timestamp>,
    pub format: Option<Format>,
    pub language: Option<String>,
}

impl Show {
    pub fn apply(mut self, patch: ShowPatch, venue: &Venue) -> Result<Show, DomainError> {
        let mut problems = Problems::default();
        if let Some(changed) = patch.prices {
            // A price patch changes the categories it names and keeps the others.
            let mut prices = self.prices.clone();
            prices.extend(changed);
            check_prices(&prices, venue, &mut problems);
            self.prices = prices;
        }
        if let Some(locked) = patch.locked_categories {
            self.locked_categories = locked;
        }
        check_locked(&self.locked_categories, &self.prices, &mut problems);
        macro_rules! take {
            ($($field:ident),*) => { $(if let Some(value) = patch.$field { self.$field = value.into(); })* };
        }
        take!(
            hold_minutes,
            max_tickets_per_order,
            max_tickets_per_customer,
            on_sale_at,
            off_sale_at,
            format,
            language
        );
        SaleTerms {
            currency: self.currency.to_string(),
            prices: self.prices.clone(),
            locked_categories: self.locked_categories.clone(),
            hold_minutes: self.hold_minutes,
            max_tickets_per_order: self.max_tickets_per_order,
            max_tickets_per_customer: self.max_tickets_per_customer,
            on_sale_at: None,
            off_sale_at: None,
            format: None,
            language: None,
        }
        .check_limits(&mut problems);
        problems.check(
            self.on_sale_at < self.off_sale_at,
            "on_sale_at",
            "must be before off_sale_at",
        );
        problems.check(
            self.off_sale_at <= self.ends_at,
            "off_sale_at",
            "must not be after the show ends",
        );
        problems.check(
            self.state == ShowState::Scheduled,
            "state",
            "a cancelled show cannot be changed",
        );
        problems.finish(self)
    }

    /// Seats can be held and bought inside the sale window of a scheduled show.
    pub fn check_on_sale(&self, now: Timestamp) -> Result<(), DomainError> {
        if self.state == ShowState::Cancelled {
            return Err(DomainError::NotOnSale("the show was cancelled".to_owned()));
        }
        if now < self.on_sale_at {
            return Err(DomainError::NotOnSale(format!(
                "sales open at {}",
                self.on_sale_at.to_rfc3339()
            )));
        }
        if now >= self.off_sale_at {
            return Err(DomainError::NotOnSale(
                "sales for this show have closed".to_owned(),
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
