//! What is free, held and sold in a show, and the rules that decide a claim. The stores apply
//! these rules inside their transactions; `model::ShowInventory` applies them in memory.

use crate::error::DomainError;
use crate::ids::{AreaId, SeatId, ShowId};
use crate::{Currency, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    Free,
    Held,
    Sold,
    Blocked,
}

impl SeatState {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatState::Free => "free",
            SeatState::Held => "held",
            SeatState::Sold => "sold",
            SeatState::Blocked => "blocked",
        }
    }

    /// The state a seat is in at `now`: a hold past its deadline no longer holds anything,
    /// whether or not the sweeper has cleared it yet (law 3).
    pub fn effective(stored: &str, held_until: Option<Timestamp>, now: Timestamp) -> SeatState {
        match stored {
            "held" if held_until.is_some_and(|until| until > now) => SeatState::Held,
            "held" | "free" => SeatState::Free,
            "sold" => SeatState::Sold,
            _ => SeatState::Blocked,
        }
    }
}

/// Room left in a general-admission area; `held_live` counts only holds that have not expired.
pub fn area_room(capacity: i64, sold: i64, held_live: i64) -> i64 {
    capacity - sold - held_live
}

/// The most places one standing area of a show may have.
pub const MAX_AREA_CAPACITY: i64 = 1_000_000;

/// A new capacity for a show's standing area: never below what is sold and held there (law 1).
pub fn check_new_capacity(capacity: i64, sold: i64, held: i64) -> Result<(), DomainError> {
    if !(1..=MAX_AREA_CAPACITY).contains(&capacity) {
        return Err(DomainError::invalid("capacity", "must be 1 to 1,000,000"));
    }
    if capacity < sold + held {
        return Err(DomainError::invalid(
            "capacity",
            format!(
                "{sold} places are sold and {held} held: the capacity cannot go below {}",
                sold + held
            ),
        ));
    }
    Ok(())
}

/// Grants `requested` places only if they fit without overselling (law 1).
pub fn check_area_claim(
    area_name: &str,
    capacity: i64,
    sold: i64,
    held_live: i64,
    requested: i64,
) -> Result<(), DomainError> {
    let available = area_room(capacity, sold, held_live).max(0);
    if requested > available {
        return Err(DomainError::CapacityUnavailable {
            area: area_name.to_owned(),
            available,
            requested,
        });
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SeatView {
    pub id: SeatId,
    pub section: String,
    pub row: String,
    pub number: i64,
    pub label: String,
    pub category: String,
    pub x: f64,
    pub y: f64,
    pub state: SeatState,
    pub price_minor: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AreaView {
    pub id: AreaId,
    pub name: String,
    pub category: String,
    pub capacity: i64,
    pub held: i64,
    pub sold: i64,
    pub free: i64,
    pub price_minor: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CategoryAvailability {
    pub category: String,
    pub price_minor: i64,
    /// Sellable places: seats that are not blocked, plus area capacity.
    pub total: i64,
    pub free: i64,
    pub held: i64,
    pub sold: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SeatMap {
    pub show_id: ShowId,
    pub currency: Currency,
    pub as_of: Timestamp,
    pub seats: Vec<SeatView>,
    pub areas: Vec<AreaView>,
    pub availability: Vec<CategoryAvailability>,
}

/// Seats of one category in one state: what availability needs of a seat map, counted.
#[derive(Clone, Debug, PartialEq)]
pub struct SeatCount {
    pub category: String,
    pub price_minor: i64,
    pub state: SeatState,
    pub seats: i64,
}

/// Per-category counts of a seat map, in category order.
pub fn availability(seats: &[SeatView], areas: &[AreaView]) -> Vec<CategoryAvailability> {
    let counted: Vec<SeatCount> = seats
        .iter()
        .map(|seat| SeatCount {
            category: seat.category.clone(),
            price_minor: seat.price_minor,
            state: seat.state,
            seats: 1,
        })
        .collect();
    availability_of_counts(&counted, areas)
}

/// Per-category counts from seats already counted by category and state, in category order.
pub fn availability_of_counts(
    seats: &[SeatCount],
    areas: &[AreaView],
) -> Vec<CategoryAvailability> {
    fn entry<'a>(
        counts: &'a mut BTreeMap<String, CategoryAvailability>,
        category: &str,
        price_minor: i64,
    ) -> &'a mut CategoryAvailability {
        counts
            .entry(category.to_owned())
            .or_insert_with(|| CategoryAvailability {
                category: category.to_owned(),
                price_minor,
                total: 0,
                free: 0,
                held: 0,
                sold: 0,
            })
    }
    let mut by_category = BTreeMap::new();
    for count in seats {
        let counts = entry(&mut by_category, &count.category, count.price_minor);
        match count.state {
            SeatState::Free => counts.free += count.seats,
            SeatState::Held => counts.held += count.seats,
            SeatState::Sold => counts.sold += count.seats,
            SeatState::Blocked => continue,
        }
        counts.total += count.seats;
    }
    for area in areas {
        let counts = entry(&mut by_category, &area.category, area.price_minor);
        counts.total += area.capacity;
        counts.free += area.free;
        counts.held += area.held;
        counts.sold += area.sold;
    }
    by_category.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_hold_leaves_the_seat_free() {
        let now = Timestamp::from_unix_ms(1_000);
        assert_eq!(
            SeatState::effective("held", Some(now.plus_ms(1)), now),
            SeatState::Held
        );
        assert_eq!(
            SeatState::effective("held", Some(now), now),
            SeatState::Free
        );
        assert_eq!(SeatState::effective("sold", None, now), SeatState::Sold);
        assert_eq!(
            SeatState::effective("blocked", None, now),
            SeatState::Blocked
        );
    }

    #[test]
    fn area_claims_never_exceed_capacity() {
        assert!(check_area_claim("Floor", 300, 296, 0, 4).is_ok());
        assert_eq!(
            check_area_claim("Floor", 300, 296, 2, 4),
            Err(DomainError::CapacityUnavailable {
                area: "Floor".into(),
                available: 2,
                requested: 4
            })
        );
    }
}
