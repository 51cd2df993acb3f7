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

/// How a claim of a group finds a seat it asked for, under lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatLook {
    /// The show has no such seat.
    Unknown,
    /// Free at the claim's moment (a lapsed hold holds nothing: `SeatState::effective`).
    Free,
    /// Held, sold, blocked, or locked by a claim of another transaction.
    Taken,
}

/// Decides seat claims that commit together (group commit) as if they had run one after
/// another in the order they arrived: each gets all of its seats or none, and a seat goes to
/// the first claim that can take it whole. A refusal names the seats the show does not have,
/// else the seats that were taken (by others, or by an earlier claim of the group).
/// `look(claim, seat)` is the seat as the claim's transaction found it.
pub fn grant_in_order(
    claims: &[&[SeatId]],
    look: impl Fn(usize, &SeatId) -> SeatLook,
) -> Vec<Result<(), DomainError>> {
    let mut granted: std::collections::HashSet<&SeatId> = std::collections::HashSet::new();
    claims
        .iter()
        .enumerate()
        .map(|(claim, seats)| {
            let unknown: Vec<crate::error::FieldError> = seats
                .iter()
                .enumerate()
                .filter(|(_, seat)| look(claim, seat) == SeatLook::Unknown)
                .map(|(i, _)| {
                    crate::error::FieldError::new(
                        format!("seat_ids.{i}"),
                        "is not a seat of this show",
                    )
                })
                .collect();
            if !unknown.is_empty() {
                return Err(DomainError::Validation(unknown));
            }
            let taken: Vec<String> = seats
                .iter()
                .filter(|seat| granted.contains(seat) || look(claim, seat) != SeatLook::Free)
                .map(|seat| seat.to_string())
                .collect();
            if !taken.is_empty() {
                return Err(DomainError::SeatUnavailable { seat_ids: taken });
            }
            granted.extend(seats.iter());
            Ok(())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(n: u32) -> SeatId {
        SeatId::parse(&format!("seat_{n:026}")).expect("a seat id")
    }

    #[test]
    fn a_group_grants_in_arrival_order_all_or_nothing() {
        let (s1, s2, s3, s4) = (seat(1), seat(2), seat(3), seat(4));
        // s1 is sold; the first claim wants it with s2, so it gets neither, and the second
        // claim, which wants only s2, gets it; the third overlaps the second and loses s2.
        let wanted = [
            vec![s1.clone(), s2.clone()],
            vec![s2.clone()],
            vec![s3.clone(), s2.clone()],
            vec![s3.clone(), s4.clone()],
        ];
        let claims: Vec<&[SeatId]> = wanted.iter().map(Vec::as_slice).collect();
        let look = |_: usize, s: &SeatId| {
            if *s == s1 {
                SeatLook::Taken
            } else {
                SeatLook::Free
            }
        };
        let decided = grant_in_order(&claims, look);
        assert_eq!(
            decided[0],
            Err(DomainError::SeatUnavailable {
                seat_ids: vec![s1.to_string()]
            })
        );
        assert_eq!(decided[1], Ok(()));
        assert_eq!(
            decided[2],
            Err(DomainError::SeatUnavailable {
                seat_ids: vec![s2.to_string()]
            })
        );
        assert_eq!(decided[3], Ok(()), "a refused claim keeps nothing back");
    }

    #[test]
    fn a_group_names_unknown_seats_before_taken_ones() {
        let (s1, s2) = (seat(1), seat(2));
        let wanted = [vec![s1.clone(), s2.clone()], vec![s1.clone()]];
        let claims: Vec<&[SeatId]> = wanted.iter().map(Vec::as_slice).collect();
        let look = |claim: usize, s: &SeatId| match (claim, s == &s2) {
            (0, true) => SeatLook::Unknown,
            _ => SeatLook::Free,
        };
        let decided = grant_in_order(&claims, look);
        assert!(
            matches!(&decided[0], Err(DomainError::Validation(fields)) if fields.len() == 1 && fields[0].field == "seat_ids.1"),
            "{decided:?}"
        );
        assert_eq!(decided[1], Ok(()), "the unknown seat's claim took nothing");
    }

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
