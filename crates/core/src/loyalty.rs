//! Loyalty: points earned per ticket of a confirmed booking (taken back when it is cancelled),
//! spent as a discount on a hold; and the scratch card a group booking earns, drawn once when
//! the booking is confirmed, revealed when the customer scratches it, revoked with the booking.
//!
//! Points are counted from an append-only history, never stored as a balance. A hold that
//! spends points keeps them aside while it is live (a lapsed hold gives them back without any
//! sweeper); the booking it becomes writes the spending down. The balance may fall below zero
//! when a cancelled booking's points were already spent: new points pay that back first.

use crate::Timestamp;
use crate::error::DomainError;
use crate::ids::{BookingId, ScratchCardId, ShowId};
use serde::Serialize;

/// Points per ticket of a confirmed booking.
pub const POINTS_PER_TICKET: i64 = 100;
/// What one point takes off a total, in minor units (100 points = 1.00).
pub const POINT_VALUE_MINOR: i64 = 1;
/// Bookings of this many tickets or more earn a scratch card.
pub const SCRATCH_CARD_TICKETS: i64 = 3;
/// The cashback prize, as a share of the booking's total (percent), and its floor.
pub const CASHBACK_PERCENT: i64 = 10;
pub const CASHBACK_MIN_MINOR: i64 = 100;
/// The discount-code prize: this much off one later booking with the organizer, for this long.
pub const PRIZE_CODE_PERCENT: i64 = 15;
pub const PRIZE_CODE_DAYS: i64 = 90;

pub fn points_for(tickets: i64) -> i64 {
    tickets.max(0) * POINTS_PER_TICKET
}

/// The discount for spending `requested` points with `available` to spend on a hold of
/// `total_minor`: refused when there are not enough; never more than the total.
pub fn redemption(
    requested: i64,
    available: i64,
    total_minor: i64,
) -> Result<(i64, i64), DomainError> {
    if requested < 0 {
        return Err(DomainError::invalid(
            "redeem_points",
            "must not be negative",
        ));
    }
    if requested > available {
        return Err(DomainError::invalid(
            "redeem_points",
            format!("you have {} points to spend", available.max(0)),
        ));
    }
    let usable = requested.min(total_minor.max(0) / POINT_VALUE_MINOR);
    Ok((usable, usable * POINT_VALUE_MINOR))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointsKind {
    /// Earned by a confirmed booking.
    Earned,
    /// Spent as a discount by a booking.
    Redeemed,
    /// Taken back: the booking that earned them was cancelled.
    Reversed,
    /// Given back: the booking that spent them was cancelled.
    Restored,
}

impl PointsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PointsKind::Earned => "earned",
            PointsKind::Redeemed => "redeemed",
            PointsKind::Reversed => "reversed",
            PointsKind::Restored => "restored",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            PointsKind::Earned,
            PointsKind::Redeemed,
            PointsKind::Reversed,
            PointsKind::Restored,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PointsEntry {
    pub kind: PointsKind,
    /// Gained (positive) or given (negative).
    pub points: i64,
    pub booking_id: BookingId,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Loyalty {
    /// The sum of the history.
    pub balance: i64,
    /// What a new hold may spend: the balance less what live holds keep aside.
    pub available: i64,
    /// Newest first (at most 100).
    pub history: Vec<PointsEntry>,
}

/// What a scratch card hides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prize {
    /// Credited to the wallet when the show starts (so a cancellation simply revokes it).
    Cashback { amount_minor: i64, currency: String },
    /// Something extra at the venue, shown at the door with this voucher.
    AddOn {
        description: String,
        voucher: String,
    },
    /// A code for a later booking with the same organizer.
    DiscountCode { code: String, percent: i64 },
}

/// Which kind of prize a draw of `unit` in `[0, 1)` gives: cashback 30 %, an add-on 30 %, a
/// discount code 40 %.
pub fn prize_kind(unit: f64) -> &'static str {
    match unit.clamp(0.0, 1.0) {
        u if u < 0.3 => "cashback",
        u if u < 0.6 => "add_on",
        _ => "discount_code",
    }
}

pub fn cashback_minor(total_minor: i64) -> i64 {
    (total_minor * CASHBACK_PERCENT / 100).max(CASHBACK_MIN_MINOR)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardState {
    /// Drawn, not yet scratched: the prize is not shown.
    Hidden,
    Revealed,
    /// Its booking was cancelled: the prize is void.
    Revoked,
}

impl CardState {
    pub fn as_str(self) -> &'static str {
        match self {
            CardState::Hidden => "hidden",
            CardState::Revealed => "revealed",
            CardState::Revoked => "revoked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [CardState::Hidden, CardState::Revealed, CardState::Revoked]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScratchCard {
    pub id: ScratchCardId,
    pub booking_id: BookingId,
    pub show_id: ShowId,
    pub state: CardState,
    /// Only once revealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prize: Option<Prize>,
    pub drawn_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revealed_at: Option<Timestamp>,
    /// When a cashback reached the wallet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credited_at: Option<Timestamp>,
}

impl ScratchCard {
    /// As its owner may see it: the prize stays hidden until scratched.
    pub fn shown(mut self) -> Self {
        if self.state != CardState::Revealed {
            self.prize = None;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_pay_at_most_the_total_and_never_more_than_there_are() {
        assert_eq!(redemption(150, 200, 1_000).unwrap(), (150, 150));
        assert_eq!(redemption(500, 900, 300).unwrap(), (300, 300));
        assert!(redemption(201, 200, 1_000).is_err());
        assert!(redemption(-1, 200, 1_000).is_err());
        assert!(redemption(1, -50, 1_000).is_err());
        assert_eq!(redemption(0, 0, 1_000).unwrap(), (0, 0));
    }

    #[test]
    fn draws_cover_every_prize_and_cashback_has_a_floor() {
        assert_eq!(prize_kind(0.0), "cashback");
        assert_eq!(prize_kind(0.45), "add_on");
        assert_eq!(prize_kind(0.99), "discount_code");
        assert_eq!(cashback_minor(6_000), 600);
        assert_eq!(cashback_minor(300), CASHBACK_MIN_MINOR);
    }
}
