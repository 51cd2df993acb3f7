//! Holds: a customer's claim on seats or general-admission places for a few minutes, all or
//! nothing. What may be asked for is parsed here; whether it is granted is decided by the
//! store's transaction using the rules in `inventory` and `catalog`.

use crate::error::{DomainError, Problems};
use crate::ids::{AreaId, HoldId, SeatId, ShowId, UserId};
use crate::venue::valid_category;
use crate::{Money, Timestamp};
use serde::Serialize;
use std::collections::HashSet;

/// Explicit seats, places in general-admission areas, or the best N seats of a category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldRequest {
    Seats(Vec<SeatId>),
    Areas(Vec<AreaQuantity>),
    BestAvailable { category: String, quantity: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AreaQuantity {
    pub area_id: AreaId,
    pub quantity: i64,
}

/// The hard ceiling of one request, whatever a show allows, so a request's size is bounded.
pub const MAX_ITEMS_PER_REQUEST: usize = 50;

impl HoldRequest {
    /// Exactly one of the three forms must be given.
    pub fn parse(
        seat_ids: Option<Vec<String>>,
        areas: Option<Vec<(String, i64)>>,
        best_available: Option<(String, i64)>,
    ) -> Result<Self, DomainError> {
        let mut problems = Problems::default();
        let given = [
            seat_ids.is_some(),
            areas.is_some(),
            best_available.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            problems.add(
                "seat_ids",
                "give exactly one of seat_ids, areas or best_available",
            );
            return Err(problems.finish(()).expect_err("recorded"));
        }
        if let Some(raw_ids) = seat_ids {
            problems.check(
                !raw_ids.is_empty(),
                "seat_ids",
                "must name at least one seat",
            );
            problems.check(
                raw_ids.len() <= MAX_ITEMS_PER_REQUEST,
                "seat_ids",
                "too many seats",
            );
            let mut seen = HashSet::new();
            let mut ids = Vec::with_capacity(raw_ids.len());
            for (i, raw) in raw_ids.iter().enumerate() {
                match SeatId::parse(raw) {
                    Some(id) if seen.insert(id.clone()) => ids.push(id),
                    Some(_) => problems.add(format!("seat_ids.{i}"), "is listed twice"),
                    None => problems.add(format!("seat_ids.{i}"), "is not a seat id"),
                }
            }
            return problems.finish(HoldRequest::Seats(ids));
        }
        if let Some(raw_areas) = areas {
            problems.check(
                !raw_areas.is_empty(),
                "areas",
                "must name at least one area",
            );
            problems.check(
                raw_areas.len() <= MAX_ITEMS_PER_REQUEST,
                "areas",
                "too many areas",
            );
            let mut seen = HashSet::new();
            let mut parsed = Vec::with_capacity(raw_areas.len());
            for (i, (raw, quantity)) in raw_areas.into_iter().enumerate() {
                problems.check(
                    quantity >= 1,
                    format!("areas.{i}.quantity"),
                    "must be at least 1",
                );
                match AreaId::parse(&raw) {
                    Some(id) if seen.insert(id.clone()) => parsed.push(AreaQuantity {
                        area_id: id,
                        quantity,
                    }),
                    Some(_) => problems.add(format!("areas.{i}.area_id"), "is listed twice"),
                    None => problems.add(format!("areas.{i}.area_id"), "is not an area id"),
                }
            }
            return problems.finish(HoldRequest::Areas(parsed));
        }
        let (category, quantity) = best_available.expect("one form was given");
        problems.check(
            valid_category(&category),
            "best_available.category",
            "is not a category name",
        );
        problems.check(
            quantity >= 1,
            "best_available.quantity",
            "must be at least 1",
        );
        problems.finish(HoldRequest::BestAvailable { category, quantity })
    }

    /// How many tickets the request would become.
    pub fn quantity(&self) -> i64 {
        match self {
            HoldRequest::Seats(ids) => ids.len() as i64,
            HoldRequest::Areas(areas) => areas.iter().map(|a| a.quantity).sum(),
            HoldRequest::BestAvailable { quantity, .. } => *quantity,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    Active,
    Released,
    Expired,
    /// Turned into a booking.
    Converted,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Active => "active",
            HoldState::Released => "released",
            HoldState::Expired => "expired",
            HoldState::Converted => "converted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(HoldState::Active),
            "released" => Some(HoldState::Released),
            "expired" => Some(HoldState::Expired),
            "converted" => Some(HoldState::Converted),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HoldItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_id: Option<SeatId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_id: Option<AreaId>,
    /// Seat label (`F12`) or area name.
    pub label: String,
    pub category: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Hold {
    pub id: HoldId,
    pub show_id: ShowId,
    pub user_id: UserId,
    pub state: HoldState,
    pub items: Vec<HoldItem>,
    /// What is to pay: the items' prices less the discount.
    pub total: Money,
    /// Taken off by `promo_code`.
    pub discount_minor: i64,
    /// Loyalty points spent on it; their value is taken off the total too.
    pub points_redeemed: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promo_code: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Hold {
    /// A hold past its deadline is expired whether or not the sweeper has visited it yet.
    pub fn effective_state(&self, now: Timestamp) -> HoldState {
        match self.state {
            HoldState::Active if self.expires_at <= now => HoldState::Expired,
            state => state,
        }
    }

    /// Shown to clients as it stands at `now`.
    pub fn as_of(mut self, now: Timestamp) -> Self {
        self.state = self.effective_state(now);
        self
    }

    pub fn ticket_count(&self) -> i64 {
        self.items.iter().map(|i| i.quantity).sum()
    }

    /// Only the owner may turn a live hold into a booking.
    pub fn check_confirmable(&self, user_id: &UserId, now: Timestamp) -> Result<(), DomainError> {
        if &self.user_id != user_id {
            return Err(DomainError::NotFound("hold"));
        }
        match self.effective_state(now) {
            HoldState::Active => Ok(()),
            HoldState::Converted => Err(DomainError::HoldAlreadyBooked),
            HoldState::Expired | HoldState::Released => Err(DomainError::HoldExpired),
        }
    }
}

/// Holds one customer may let lapse on one show within [`LAPSE_WINDOW_MINUTES`] before the next
/// hold must wait: a hoarder who keeps seats off sale by holding and walking away is slowed down,
/// a customer who let one hold run out while deciding is not.
pub const LAPSES_ALLOWED: usize = 3;
pub const LAPSE_WINDOW_MINUTES: i64 = 60;

/// Anti-hoarding rules for a new hold on a show: at most one live hold per customer and show
/// (the per-customer ticket limit already counts across holds), and a pause after repeated
/// lapses. `lapsed_recently` are the deadlines of the customer's holds on this show that ran out
/// within the window, oldest first.
pub fn check_hoarding(
    active_on_show: i64,
    lapsed_recently: &[Timestamp],
    now: Timestamp,
) -> Result<(), DomainError> {
    if active_on_show > 0 {
        return Err(DomainError::Conflict(
            "you already have an active hold for this show: book or release it first".into(),
        ));
    }
    if lapsed_recently.len() >= LAPSES_ALLOWED {
        // The oldest lapse that keeps the count at the limit must leave the window first.
        let pivot = lapsed_recently[lapsed_recently.len() - LAPSES_ALLOWED];
        let free_at = pivot.plus_minutes(LAPSE_WINDOW_MINUTES);
        let wait_ms = (free_at.unix_ms() - now.unix_ms()).max(1_000);
        return Err(DomainError::Throttled {
            reason: format!(
                "{} of your holds on this show ran out within {} minutes; new holds wait a while",
                lapsed_recently.len(),
                LAPSE_WINDOW_MINUTES
            ),
            retry_after_seconds: (wait_ms + 999) / 1_000,
        });
    }
    Ok(())
}

pub fn total_of(items: &[HoldItem]) -> i64 {
    items.iter().map(|i| i.quantity * i.unit_price_minor).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_live_hold_on_a_show_is_refused() {
        let now = Timestamp::from_unix_ms(1_000_000_000);
        assert_eq!(check_hoarding(0, &[], now), Ok(()));
        assert!(matches!(
            check_hoarding(1, &[], now),
            Err(DomainError::Conflict(_))
        ));
    }

    #[test]
    fn repeated_lapses_wait_until_the_oldest_leaves_the_window() {
        let now = Timestamp::from_unix_ms(10_000_000_000);
        let ago = |minutes: i64| now.plus_minutes(-minutes);
        assert_eq!(check_hoarding(0, &[ago(50), ago(20)], now), Ok(()));
        let Err(DomainError::Throttled {
            retry_after_seconds,
            ..
        }) = check_hoarding(0, &[ago(50), ago(20), ago(5)], now)
        else {
            panic!("a third lapse throttles");
        };
        assert_eq!(
            retry_after_seconds,
            10 * 60,
            "the lapse 50 minutes ago leaves in 10"
        );
        let Err(DomainError::Throttled {
            retry_after_seconds,
            ..
        }) = check_hoarding(0, &[ago(59), ago(50), ago(20), ago(5)], now)
        else {
            panic!("four lapses throttle");
        };
        assert_eq!(
            retry_after_seconds,
            10 * 60,
            "three remain until the 50-minute one leaves"
        );
    }

    #[test]
    fn exactly_one_form_is_accepted() {
        assert!(HoldRequest::parse(None, None, None).is_err());
        assert!(HoldRequest::parse(Some(vec![]), None, Some(("a".into(), 1))).is_err());
        let seat = SeatId::generate();
        assert_eq!(
            HoldRequest::parse(Some(vec![seat.to_string()]), None, None),
            Ok(HoldRequest::Seats(vec![seat]))
        );
    }

    #[test]
    fn duplicate_and_malformed_items_are_named() {
        let seat = SeatId::generate().to_string();
        let Err(DomainError::Validation(errors)) =
            HoldRequest::parse(Some(vec![seat.clone(), seat, "shw_1".into()]), None, None)
        else {
            panic!("expected validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["seat_ids.1", "seat_ids.2"]);
        assert!(
            HoldRequest::parse(None, Some(vec![(AreaId::generate().to_string(), 0)]), None)
                .is_err()
        );
        assert!(HoldRequest::parse(None, None, Some(("standard".into(), 0))).is_err());
    }
}
