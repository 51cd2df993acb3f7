//! Schedules: many shows from one recurrence (a date range, weekdays, local times of day in the
//! venue's time zone), checked as a whole — a schedule is created entirely or not at all, and
//! any clash with the venue's other shows is reported.

use crate::Timestamp;
use crate::catalog::{Event, SaleTerms, Show};
use crate::error::{DomainError, Problems};
use crate::ids::ShowId;
use crate::venue::Venue;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most shows one schedule may create.
pub const MAX_SHOWS_PER_SCHEDULE: usize = 500;

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub venue_id: String,
    /// First and last day, inclusive, as `YYYY-MM-DD` in the venue's time zone.
    pub from: String,
    pub to: String,
    /// `mon` … `sun`; every day when absent.
    #[serde(default)]
    pub weekdays: Vec<String>,
    /// Local start times, `HH:MM`.
    pub times: Vec<String>,
    pub currency: String,
    pub prices: BTreeMap<String, i64>,
    #[serde(default = "crate::catalog::default_hold_minutes")]
    pub hold_minutes: i64,
    #[serde(default = "crate::catalog::default_max_per_order")]
    pub max_tickets_per_order: i64,
    #[serde(default = "crate::catalog::default_max_per_customer")]
    pub max_tickets_per_customer: i64,
    #[serde(default)]
    pub on_sale_at: Option<Timestamp>,
    #[serde(default)]
    pub format: Option<crate::catalog::Format>,
    #[serde(default)]
    pub language: Option<String>,
}

/// Two shows that would share the venue at the same time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Conflict {
    pub starts_at: Timestamp,
    /// The existing show it overlaps, or absent when two new shows overlap each other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_show_id: Option<ShowId>,
    pub existing_starts_at: Timestamp,
}

fn weekday(raw: &str) -> Option<Weekday> {
    Some(match raw {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

impl ScheduleInput {
    /// Every show of the schedule, in start order. A local time that does not exist on a
    /// spring-forward day moves forward by the gap; one that happens twice takes the first.
    pub fn shows(
        &self,
        event: &Event,
        venue: &Venue,
        now: Timestamp,
    ) -> Result<Vec<Show>, DomainError> {
        let mut problems = Problems::default();
        let tz = TimeZone::get(&venue.timezone).ok();
        problems.check(
            tz.is_some(),
            "venue_id",
            format!("the venue's time zone {:?} is unknown", venue.timezone),
        );
        let from = self.from.parse::<Date>().ok();
        let to = self.to.parse::<Date>().ok();
        problems.check(from.is_some(), "from", "must be a date YYYY-MM-DD");
        problems.check(to.is_some(), "to", "must be a date YYYY-MM-DD");
        let mut weekdays = Vec::new();
        for (i, raw) in self.weekdays.iter().enumerate() {
            match weekday(raw) {
                Some(day) => weekdays.push(day),
                None => problems.add(
                    format!("weekdays.{i}"),
                    "must be mon, tue, wed, thu, fri, sat or sun",
                ),
            }
        }
        let mut times = Vec::new();
        problems.check(
            !self.times.is_empty() && self.times.len() <= 24,
            "times",
            "give 1 to 24 times of day",
        );
        for (i, raw) in self.times.iter().enumerate() {
            match raw.parse::<Time>() {
                Ok(time) if raw.len() == 5 => times.push(time),
                _ => problems.add(format!("times.{i}"), "must be a time of day HH:MM"),
            }
        }
        times.sort();
        times.dedup();
        let (Some(tz), Some(from), Some(to)) = (tz, from, to) else {
            return Err(problems.finish(()).expect_err("recorded"));
        };
        problems.check(from <= to, "to", "must not be before from");
        problems.check(
            to.since(from)
                .map(|span| span.get_days() <= 366)
                .unwrap_or(false),
            "to",
            "a schedule spans at most a year",
        );
        let mut starts = Vec::new();
        let mut day = from;
        while day <= to && starts.len() <= MAX_SHOWS_PER_SCHEDULE {
            if weekdays.is_empty() || weekdays.contains(&day.weekday()) {
                for time in &times {
                    match day.to_datetime(*time).to_zoned(tz.clone()) {
                        Ok(zoned) => {
                            starts.push(Timestamp::from_unix_ms(zoned.timestamp().as_millisecond()))
                        }
                        Err(_) => problems.add(
                            "times",
                            format!("{day} {time} cannot be placed in {}", venue.timezone),
                        ),
                    }
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        problems.check(
            !starts.is_empty(),
            "weekdays",
            "the range has none of these weekdays",
        );
        problems.check(
            starts.len() <= MAX_SHOWS_PER_SCHEDULE,
            "to",
            format!("a schedule creates at most {MAX_SHOWS_PER_SCHEDULE} shows"),
        );
        problems.finish(())?;
        let terms = SaleTerms {
            currency: self.currency.clone(),
            prices: self.prices.clone(),
            // A schedule's shows start unlocked; lock categories per show afterwards.
            locked_categories: Default::default(),
            hold_minutes: self.hold_minutes,
            max_tickets_per_order: self.max_tickets_per_order,
            max_tickets_per_customer: self.max_tickets_per_customer,
            on_sale_at: self.on_sale_at,
            off_sale_at: None,
            format: self.format,
            language: self.language.clone(),
        };
        starts
            .into_iter()
            .map(|at| terms.show_at(at, event, venue, now))
            .collect()
    }
}

/// Overlaps of the new shows with each other and with the venue's existing shows
/// (`(id, starts_at, ends_at)`); shows that merely touch do not overlap.
pub fn conflicts(new: &[Show], existing: &[(ShowId, Timestamp, Timestamp)]) -> Vec<Conflict> {
    let mut found = Vec::new();
    for (i, show) in new.iter().enumerate() {
        for (id, starts_at, ends_at) in existing {
            if show.starts_at < *ends_at && *starts_at < show.ends_at {
                found.push(Conflict {
                    starts_at: show.starts_at,
                    existing_show_id: Some(id.clone()),
                    existing_starts_at: *starts_at,
                });
            }
        }
        for earlier in &new[..i] {
            if show.starts_at < earlier.ends_at && earlier.starts_at < show.ends_at {
                found.push(Conflict {
                    starts_at: show.starts_at,
                    existing_show_id: None,
                    existing_starts_at: earlier.starts_at,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{EventInput, EventKind};
    use crate::ids::OrganizerId;
    use crate::venue::VenueInput;

    fn fixtures(duration: i64) -> (Event, Venue) {
        let organizer = OrganizerId::generate();
        let event = EventInput {
            title: "Film".into(),
            kind: EventKind::Movie,
            description: String::new(),
            duration_minutes: Some(duration),
            tags: vec![],
            age_rating: None,
            image_url: None,
            language: None,
            subtitles: None,
            format: None,
        }
        .into_event(organizer.clone(), Timestamp::from_unix_ms(0))
        .unwrap();
        let venue: VenueInput = serde_json::from_value(serde_json::json!({
            "name": "Hall", "timezone": "Europe/Berlin",
            "areas": [{"name": "Floor", "category": "standing", "capacity": 10}]
        }))
        .unwrap();
        (
            event,
            venue
                .into_venue(organizer, Timestamp::from_unix_ms(0))
                .unwrap(),
        )
    }

    fn schedule(from: &str, to: &str, times: &[&str]) -> ScheduleInput {
        serde_json::from_value(serde_json::json!({
            "venue_id": "ven_x", "from": from, "to": to, "times": times,
            "currency": "EUR", "prices": {"standing": 1000}
        }))
        .unwrap()
    }

    #[test]
    fn local_times_stay_local_across_the_autumn_change() {
        // Berlin leaves summer time on 2030-10-27: 14:00 is 12:00Z before and 13:00Z after.
        let (event, venue) = fixtures(100);
        let shows = schedule("2030-10-26", "2030-10-28", &["14:00"])
            .shows(&event, &venue, Timestamp::from_unix_ms(0))
            .unwrap();
        let utc: Vec<_> = shows.iter().map(|s| s.starts_at.to_rfc3339()).collect();
        assert_eq!(
            utc,
            [
                "2030-10-26T12:00:00Z",
                "2030-10-27T13:00:00Z",
                "2030-10-28T13:00:00Z"
            ]
        );
    }

    #[test]
    fn a_time_inside_the_spring_gap_moves_forward() {
        // 2030-03-31 02:30 does not exist in Berlin; the show starts at 03:30 local (01:30Z).
        let (event, venue) = fixtures(60);
        let shows = schedule("2030-03-30", "2030-03-31", &["02:30"])
            .shows(&event, &venue, Timestamp::from_unix_ms(0))
            .unwrap();
        let utc: Vec<_> = shows.iter().map(|s| s.starts_at.to_rfc3339()).collect();
        assert_eq!(utc, ["2030-03-30T01:30:00Z", "2030-03-31T01:30:00Z"]);
    }

    #[test]
    fn overlapping_times_are_conflicts() {
        let (event, venue) = fixtures(150);
        let shows = schedule("2030-01-07", "2030-01-07", &["14:00", "16:00", "18:30"])
            .shows(&event, &venue, Timestamp::from_unix_ms(0))
            .unwrap();
        let found = conflicts(&shows, &[]);
        assert_eq!(
            found.len(),
            1,
            "16:00 overlaps 14:00 (150 minutes); 18:30 touches nothing"
        );
        let existing = vec![(
            ShowId::generate(),
            shows[2].starts_at.plus_ms(-60_000),
            shows[2].starts_at.plus_ms(1),
        )];
        assert_eq!(conflicts(&shows[2..], &existing).len(), 1);
    }

    #[test]
    fn bad_recurrences_are_named() {
        let (event, venue) = fixtures(60);
        let mut input = schedule("2030-02-30", "2030-01-01", &["25:00"]);
        input.weekdays = vec!["funday".into()];
        let Err(DomainError::Validation(errors)) =
            input.shows(&event, &venue, Timestamp::from_unix_ms(0))
        else {
            panic!("expected validation errors");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["from", "weekdays.0", "times.0"]);
    }
}

/// An instant as people at a venue read it on a clock and a calendar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalMoment {
    /// `2030-01-02`, for grouping by day.
    pub date: String,
    /// `Wed 2 Jan 2030`.
    pub day: String,
    /// `19:30`.
    pub time: String,
}

/// `at` in the time zone `zone` (an IANA name); `None` for an unknown zone.
pub fn local_moment(at: Timestamp, zone: &str) -> Option<LocalMoment> {
    let zone = TimeZone::get(zone).ok()?;
    let instant = jiff::Timestamp::from_millisecond(at.unix_ms()).ok()?;
    let local = instant.to_zoned(zone);
    Some(LocalMoment {
        date: local.strftime("%Y-%m-%d").to_string(),
        day: local.strftime("%a %-d %b %Y").to_string(),
        time: local.strftime("%H:%M").to_string(),
    })
}

#[cfg(test)]
mod local_moment_tests {
    use super::*;

    #[test]
    fn instants_read_in_the_venue_zone_across_summer_time() {
        // 2030-01-01T18:30Z is 19:30 in Berlin (CET); 2030-07-01T17:30Z is 19:30 too (CEST).
        let winter = local_moment(Timestamp::from_unix_ms(1_893_522_600_000), "Europe/Berlin");
        assert_eq!(
            winter,
            Some(LocalMoment {
                date: "2030-01-01".into(),
                day: "Tue 1 Jan 2030".into(),
                time: "19:30".into(),
            })
        );
        let summer = local_moment(Timestamp::from_unix_ms(1_909_157_400_000), "Europe/Berlin");
        assert_eq!(summer.map(|m| m.time), Some("19:30".into()));
        assert_eq!(
            local_moment(Timestamp::from_unix_ms(0), "Mars/Olympus"),
            None
        );
    }
}
