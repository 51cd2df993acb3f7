//! Bookings and tickets: what a confirmed hold becomes, and when it may be cancelled.

use crate::error::DomainError;
use crate::ids::{AreaId, BookingId, HoldId, SeatId, ShowId, TicketId, UserId};
use crate::{Money, Timestamp};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingState {
    Confirmed,
    Cancelled,
}

impl BookingState {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingState::Confirmed => "confirmed",
            BookingState::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "confirmed" => Some(BookingState::Confirmed),
            "cancelled" => Some(BookingState::Cancelled),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: TicketId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_id: Option<SeatId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_id: Option<AreaId>,
    pub label: String,
    pub category: String,
    pub price_minor: i64,
    /// Signed code printed as the ticket's barcode; checked at the door.
    pub code: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Booking {
    pub id: BookingId,
    pub show_id: ShowId,
    pub user_id: UserId,
    pub hold_id: HoldId,
    pub state: BookingState,
    pub total: Money,
    pub payment_reference: String,
    /// `pending` once a cancellation owes the customer their money, `refunded` when paid back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<String>,
    /// What of the total was paid from the customer's wallet (the rest by card).
    pub wallet_minor: i64,
    /// What a cancellation gave back, by the show's refund policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunded_minor: Option<i64>,
    pub tickets: Vec<Ticket>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<Timestamp>,
}

impl Booking {
    /// A confirmed booking may be cancelled by its owner until the show starts.
    pub fn check_cancellable(
        &self,
        user_id: &UserId,
        show_starts_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if &self.user_id != user_id {
            return Err(DomainError::NotFound("booking"));
        }
        if self.state != BookingState::Confirmed {
            return Err(DomainError::NotCancellable(
                "the booking is already cancelled".to_owned(),
            ));
        }
        if now >= show_starts_at {
            return Err(DomainError::NotCancellable(
                "the show has already started".to_owned(),
            ));
        }
        Ok(())
    }
}
