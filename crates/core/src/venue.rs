//! Venues and their layouts: sections of rows of seats (each with a category and drawing
//! coordinates) and general-admission areas with a capacity. A layout is validated here once,
//! when it is created, so every stored layout is well formed.

use crate::Timestamp;
use crate::error::{DomainError, Problems};
use crate::ids::{AreaId, OrganizerId, SeatId, SectionId, VenueId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};

pub const MAX_SECTIONS: usize = 50;
pub const MAX_SEATS: usize = 20_000;
pub const MAX_AREAS: usize = 20;
pub const MAX_AREA_CAPACITY: i64 = 200_000;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Venue {
    pub id: VenueId,
    pub organizer_id: OrganizerId,
    pub name: String,
    pub city: String,
    pub timezone: String,
    pub created_at: Timestamp,
    pub sections: Vec<Section>,
    pub seats: Vec<Seat>,
    pub areas: Vec<Area>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Section {
    pub id: SectionId,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Seat {
    pub id: SeatId,
    pub section_id: SectionId,
    pub row_label: String,
    /// Position of the row across the whole venue, front first; best-available prefers low ranks.
    pub row_rank: i64,
    pub number: i64,
    pub label: String,
    pub category: String,
    pub x: f64,
    pub y: f64,
    /// Never for sale (a camera position, a pillar); wheelchair spaces are a category instead.
    pub blocked: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Area {
    pub id: AreaId,
    pub name: String,
    pub category: String,
    pub capacity: i64,
}

impl Venue {
    /// Every category a show at this venue must put a price on.
    pub fn categories(&self) -> BTreeSet<String> {
        self.seats
            .iter()
            .map(|s| s.category.clone())
            .chain(self.areas.iter().map(|a| a.category.clone()))
            .collect()
    }
}

/// The layout as an organizer sends it. A row lists its seats, or gives a `count` and one
/// category for seats numbered 1..=count.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueInput {
    pub name: String,
    #[serde(default)]
    pub city: String,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default)]
    pub sections: Vec<SectionInput>,
    #[serde(default)]
    pub areas: Vec<AreaInput>,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionInput {
    pub name: String,
    pub rows: Vec<RowInput>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowInput {
    pub label: String,
    #[serde(default)]
    pub count: Option<i64>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub seats: Vec<SeatInput>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatInput {
    pub number: i64,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub x: Option<f64>,
    #[serde(default)]
    pub y: Option<f64>,
    #[serde(default)]
    pub blocked: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaInput {
    pub name: String,
    pub category: String,
    pub capacity: i64,
}

pub fn valid_category(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 40
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_text(raw: &str, max: usize) -> bool {
    let trimmed = raw.trim();
    !trimmed.is_empty() && trimmed.chars().count() <= max
}

impl VenueInput {
    /// Checks the whole layout, reporting every problem, and gives each part its id.
    pub fn into_venue(self, organizer_id: OrganizerId, now: Timestamp) -> Result<Venue, DomainError> {
        let mut problems = Problems::default();
        problems.check(
            valid_text(&self.name, 100),
            "name",
            "must be 1 to 100 characters",
        );
        problems.check(
            self.city.chars().count() <= 100,
            "city",
            "must be at most 100 characters",
        );
        problems.check(
            valid_text(&self.timezone, 64),
            "timezone",
            "must be an IANA time zone name",
        );
        problems.check(
            !self.sections.is_empty() || !self.areas.is_empty(),
            "sections",
            "a venue needs at least one section or general-admission area",
        );
        problems.check(
            self.sections.len() <= MAX_SECTIONS,
            "sections",
            format!("at most {MAX_SECTIONS}"),
        );
        problems.check(
            self.areas.len() <= MAX_AREAS,
            "areas",
            format!("at most {MAX_AREAS}"),
        );

        let mut sections = Vec::new();
        let mut seats = Vec::new();
        let mut row_rank = 0;
        let mut section_names = HashSet::new();
        for (s, section) in self.sections.into_iter().enumerate() {
            let at = format!("sections.{s}");
            problems.check(
                valid_text(&section.name, 100),
                format!("{at}.name"),
                "must be 1 to 100 characters",
            );
            problems.check(
                section_names.insert(section.name.clone()),
                format!("{at}.name"),
                "is used twice",
            );
            problems.check(
                !section.rows.is_empty(),
                format!("{at}.rows"),
                "a section needs at least one row",
            );
            let section_id = SectionId::generate();
            let mut row_labels = HashSet::new();
            for (r, row) in section.rows.into_iter().enumerate() {
                let at = format!("{at}.rows.{r}");
                problems.check(
                    valid_text(&row.label, 10),
                    format!("{at}.label"),
                    "must be 1 to 10 characters",
                );
                problems.check(
                    row_labels.insert(row.label.clone()),
                    format!("{at}.label"),
                    "is used twice in this section",
                );
                let row_seats = expand_row(&row, &at, &mut problems);
                let mut numbers = HashSet::new();
                for (n, seat) in row_seats.into_iter().enumerate() {
                    let seat_at = format!("{at}.seats.{n}");
                    problems.check(
                        numbers.insert(seat.number),
                        format!("{seat_at}.number"),
                        "is used twice in this row",
                    );
                    problems.check(
                        seat.number >= 1 && seat.number <= 10_000,
                        format!("{seat_at}.number"),
                        "must be 1 to 10000",
                    );
                    let category = seat
                        .category
                        .or_else(|| row.category.clone())
                        .unwrap_or_default();
                    problems.check(
                        valid_category(&category),
                        format!("{seat_at}.category"),
                        "must be 1 to 40 of a-z, 0-9, _ or -",
                    );
                    let label = seat
                        .label
                        .unwrap_or_else(|| format!("{}{}", row.label, seat.number));
                    problems.check(
                        valid_text(&label, 20),
                        format!("{seat_at}.label"),
                        "must be 1 to 20 characters",
                    );
                    seats.push(Seat {
                        id: SeatId::generate(),
                        section_id: section_id.clone(),
                        row_label: row.label.clone(),
                        row_rank,
                        number: seat.number,
                        label,
                        category,
                        x: seat.x.unwrap_or(seat.number as f64),
                        y: seat.y.unwrap_or(row_rank as f64),
                        blocked: seat.blocked,
                    });
                }
                row_rank += 1;
            }
            sections.push(Section {
                id: section_id,
                name: section.name.trim().to_owned(),
            });
        }
        problems.check(
            seats.len() <= MAX_SEATS,
            "sections",
            format!("at most {MAX_SEATS} seats"),
        );

        let mut area_names = HashSet::new();
        let areas = self
            .areas
            .into_iter()
            .enumerate()
            .map(|(a, area)| {
                let at = format!("areas.{a}");
                problems.check(
                    valid_text(&area.name, 100),
                    format!("{at}.name"),
                    "must be 1 to 100 characters",
                );
                problems.check(
                    area_names.insert(area.name.clone()),
                    format!("{at}.name"),
                    "is used twice",
                );
                problems.check(
                    valid_category(&area.category),
                    format!("{at}.category"),
                    "must be 1 to 40 of a-z, 0-9, _ or -",
                );
                problems.check(
                    (1..=MAX_AREA_CAPACITY).contains(&area.capacity),
                    format!("{at}.capacity"),
                    format!("must be 1 to {MAX_AREA_CAPACITY}"),
                );
                Area {
                    id: AreaId::generate(),
                    name: area.name.trim().to_owned(),
                    category: area.category,
                    capacity: area.capacity,
                }
            })
            .collect();

        problems.finish(Venue {
            id: VenueId::generate(),
            organizer_id,
            name: self.name.trim().to_owned(),
            city: self.city.trim().to_owned(),
            timezone: self.timezone.trim().to_owned(),
            created_at: now,
            sections,
            seats,
            areas,
        })
    }
}

/// A row is either its explicit seats or `count` seats numbered from 1, never both.
fn expand_row(row: &RowInput, at: &str, problems: &mut Problems) -> Vec<SeatInput> {
    match (row.count, row.seats.is_empty()) {
        (Some(_), false) => {
            problems.add(
                format!("{at}.count"),
                "give either count or seats, not both",
            );
            Vec::new()
        }
        (Some(count), true) if !(1..=1_000).contains(&count) => {
            problems.add(format!("{at}.count"), "must be 1 to 1000");
            Vec::new()
        }
        (Some(count), true) => (1..=count)
            .map(|number| SeatInput {
                number,
                label: None,
                category: None,
                x: None,
                y: None,
                blocked: false,
            })
            .collect(),
        (None, true) => {
            problems.add(format!("{at}.seats"), "a row needs seats or a count");
            Vec::new()
        }
        (None, false) => row.seats.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> VenueInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn compact_rows_expand_with_labels_and_ranks() {
        let venue = input(r#"{"name":"Hall","sections":[{"name":"Stalls","rows":[
            {"label":"A","count":3,"category":"standard"},
            {"label":"B","seats":[{"number":1,"category":"vip"},{"number":2,"category":"vip","blocked":true}]}]}],
            "areas":[{"name":"Floor","category":"standing","capacity":300}]}"#)
        .into_venue(OrganizerId::generate(), Timestamp::from_unix_ms(0))
        .unwrap();
        let labels: Vec<_> = venue.seats.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["A1", "A2", "A3", "B1", "B2"]);
        assert_eq!(venue.seats[3].row_rank, 1);
        assert!(venue.seats[4].blocked);
        assert_eq!(
            venue.categories().into_iter().collect::<Vec<_>>(),
            ["standard", "standing", "vip"]
        );
    }

    #[test]
    fn every_layout_problem_is_reported_with_its_path() {
        let Err(DomainError::Validation(errors)) = input(r#"{"name":"","sections":[{"name":"S","rows":[
            {"label":"A","count":2},
            {"label":"A","seats":[{"number":1,"category":"Bad Cat"},{"number":1,"category":"ok"}]}]}],
            "areas":[{"name":"Floor","category":"standing","capacity":0}]}"#)
        .into_venue(OrganizerId::generate(), Timestamp::from_unix_ms(0))
        else {
            panic!("layout should be rejected");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"name"));
        assert!(fields.contains(&"sections.0.rows.0.seats.0.category"));
        assert!(fields.contains(&"sections.0.rows.1.label"));
        assert!(fields.contains(&"sections.0.rows.1.seats.0.category"));
        assert!(fields.contains(&"sections.0.rows.1.seats.1.number"));
        assert!(fields.contains(&"areas.0.capacity"));
    }
}
