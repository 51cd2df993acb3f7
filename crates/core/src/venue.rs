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

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
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

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Section {
    pub id: SectionId,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
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

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
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

/// A section is either its rows, or `generate`: a compact description expanded into rows.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionInput {
    pub name: String,
    #[serde(default)]
    pub rows: Vec<RowInput>,
    #[serde(default)]
    pub generate: Option<GenerateInput>,
}

/// E.g. rows `A-L` × 20 seats, premium in rows `E-H`, aisles after seats 5 and 15, F10 blocked
/// for a camera, H1 and H2 wheelchair spaces.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateInput {
    /// A range of single letters (`A-L`) or numbers (`1-20`), front first.
    pub rows: String,
    pub seats_per_row: i64,
    /// The category of every seat not named otherwise.
    pub category: String,
    /// Categories for ranges of rows, e.g. `{"rows": "E-H", "category": "premium"}`.
    #[serde(default)]
    pub row_categories: Vec<RowCategory>,
    /// Categories for single seats by label, e.g. wheelchair spaces.
    #[serde(default)]
    pub seat_categories: Vec<SeatCategory>,
    /// Seat numbers after which an aisle runs; seats either side are not adjacent.
    #[serde(default)]
    pub aisles_after: Vec<i64>,
    /// Labels of seats that are never sold (a camera position, a pillar).
    #[serde(default)]
    pub blocked: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowCategory {
    pub rows: String,
    pub category: String,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatCategory {
    pub seats: Vec<String>,
    pub category: String,
}

/// `A-L` → A, B, …, L; `1-20` → 1 … 20; a single label stands for itself.
fn row_range(raw: &str) -> Option<Vec<String>> {
    let (first, last) = raw
        .split_once('-')
        .map_or((raw, raw), |(a, b)| (a.trim(), b.trim()));
    if let (Ok(a), Ok(b)) = (first.parse::<u32>(), last.parse::<u32>()) {
        return (a <= b && b - a < 200).then(|| (a..=b).map(|n| n.to_string()).collect());
    }
    let (a, b) = (first.chars().next()?, last.chars().next()?);
    let single =
        first.len() == 1 && last.len() == 1 && a.is_ascii_uppercase() && b.is_ascii_uppercase();
    (single && a <= b).then(|| (a..=b).map(|c| c.to_string()).collect())
}

impl GenerateInput {
    fn expand(&self, at: &str, problems: &mut Problems) -> Vec<RowInput> {
        let Some(labels) = row_range(&self.rows) else {
            problems.add(format!("{at}.rows"), "must be a range such as A-L or 1-20");
            return Vec::new();
        };
        if !(1..=200).contains(&self.seats_per_row) {
            problems.add(format!("{at}.seats_per_row"), "must be 1 to 200");
            return Vec::new();
        }
        let mut row_category = std::collections::HashMap::new();
        for (i, rc) in self.row_categories.iter().enumerate() {
            match row_range(&rc.rows) {
                Some(rows) => rows.into_iter().for_each(|r| {
                    row_category.insert(r, rc.category.clone());
                }),
                None => problems.add(
                    format!("{at}.row_categories.{i}.rows"),
                    "must be a range such as A-L",
                ),
            }
        }
        let seat_category: std::collections::HashMap<&str, &str> = self
            .seat_categories
            .iter()
            .flat_map(|sc| {
                sc.seats
                    .iter()
                    .map(move |seat| (seat.as_str(), sc.category.as_str()))
            })
            .collect();
        let all_labels: HashSet<String> = labels
            .iter()
            .flat_map(|row| (1..=self.seats_per_row).map(move |n| format!("{row}{n}")))
            .collect();
        for (i, seat) in self.blocked.iter().enumerate() {
            problems.check(
                all_labels.contains(seat.as_str()),
                format!("{at}.blocked.{i}"),
                format!("{seat} is not a seat of this section"),
            );
        }
        for (i, seat) in self
            .seat_categories
            .iter()
            .flat_map(|sc| &sc.seats)
            .enumerate()
        {
            problems.check(
                all_labels.contains(seat.as_str()),
                format!("{at}.seat_categories.{i}"),
                format!("{seat} is not a seat of this section"),
            );
        }
        labels
            .iter()
            .enumerate()
            .map(|(r, row)| RowInput {
                label: row.clone(),
                count: None,
                category: None,
                seats: (1..=self.seats_per_row)
                    .map(|n| {
                        let label = format!("{row}{n}");
                        let aisles_before =
                            self.aisles_after.iter().filter(|a| **a < n).count() as f64;
                        let category = seat_category
                            .get(label.as_str())
                            .map(|c| c.to_string())
                            .or_else(|| row_category.get(row).cloned())
                            .unwrap_or_else(|| self.category.clone());
                        SeatInput {
                            number: n,
                            blocked: self.blocked.contains(&label),
                            label: Some(label),
                            category: Some(category),
                            x: Some(n as f64 + aisles_before),
                            y: Some(r as f64),
                        }
                    })
                    .collect(),
            })
            .collect()
    }
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
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

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
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

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
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
    pub fn into_venue(
        self,
        organizer_id: OrganizerId,
        now: Timestamp,
    ) -> Result<Venue, DomainError> {
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
            jiff::tz::TimeZone::get(self.timezone.trim()).is_ok(),
            "timezone",
            "must be an IANA time zone name such as Europe/Berlin",
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
            let rows = match (&section.generate, section.rows.is_empty()) {
                (Some(generate), true) => generate.expand(&format!("{at}.generate"), &mut problems),
                (Some(_), false) => {
                    problems.add(
                        format!("{at}.rows"),
                        "give either rows or generate, not both",
                    );
                    Vec::new()
                }
                (None, true) => {
                    problems.add(format!("{at}.rows"), "a section needs at least one row");
                    Vec::new()
                }
                (None, false) => section.rows,
            };
            let section_id = SectionId::generate();
            let mut row_labels = HashSet::new();
            let first_rank = row_rank;
            for (r, row) in rows.into_iter().enumerate() {
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
                        y: seat.y.map_or(row_rank as f64, |y| first_rank as f64 + y),
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
    fn a_compact_description_expands_with_aisles_categories_and_blocked_seats() {
        let venue = input(
            r#"{"name":"Cinema","timezone":"Europe/Berlin","sections":[{"name":"Hall","generate":{
            "rows":"A-L","seats_per_row":20,"category":"standard",
            "row_categories":[{"rows":"E-H","category":"premium"}],
            "seat_categories":[{"seats":["L1","L2"],"category":"wheelchair"}],
            "aisles_after":[5,15],"blocked":["F10"]}}]}"#,
        )
        .into_venue(OrganizerId::generate(), Timestamp::from_unix_ms(0))
        .unwrap();
        assert_eq!(venue.seats.len(), 12 * 20);
        let seat = |label: &str| venue.seats.iter().find(|s| s.label == label).unwrap();
        assert_eq!(
            (
                seat("A1").category.as_str(),
                seat("E1").category.as_str(),
                seat("L2").category.as_str()
            ),
            ("standard", "premium", "wheelchair")
        );
        assert!(seat("F10").blocked && !seat("F11").blocked);
        assert_eq!(
            (seat("A5").x, seat("A6").x, seat("A16").x),
            (5.0, 7.0, 18.0),
            "aisles leave gaps"
        );
        assert_eq!(seat("L1").row_rank, 11);
        let bad = input(r#"{"name":"C","sections":[{"name":"H","generate":{"rows":"A-?","seats_per_row":0,"category":"s","blocked":["Z9"]}}]}"#)
            .into_venue(OrganizerId::generate(), Timestamp::from_unix_ms(0));
        assert!(
            matches!(bad, Err(DomainError::Validation(e)) if e[0].field == "sections.0.generate.rows")
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
