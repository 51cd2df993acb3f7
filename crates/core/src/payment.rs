//! Payments as intents: what a payment may go through (requires action → processing →
//! succeeded / failed / cancelled, and refunded after success), the simulated provider's test
//! cards, and how long a hold is kept alive while a payment is still being decided.

use crate::error::DomainError;
use serde::{Deserialize, Serialize};

/// Test cards of the simulated provider, as a real provider's test mode has them.
pub const CARD_SUCCEEDS: &str = "4242424242424242";
pub const CARD_DECLINED: &str = "4000000000000002";
/// Asks for 3-D Secure; succeeds once the customer confirms.
pub const CARD_THREE_D_SECURE: &str = "4000000000003220";
/// Accepted, then decided later: succeeds after a delay.
pub const CARD_SUCCEEDS_LATER: &str = "4000000000000077";
/// Accepted, then decided later: fails after a delay.
pub const CARD_FAILS_LATER: &str = "4000000000000119";

/// While a payment is being decided, its hold may outlive its deadline by at most this much,
/// so a paying customer does not lose the seats mid-payment, and nobody waits for ever.
pub const MAX_HOLD_EXTENSION_MINUTES: i64 = 15;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// The customer must act first (3-D Secure).
    RequiresAction,
    /// The provider is deciding; the outcome arrives by webhook.
    Processing,
    Succeeded,
    Failed,
    Cancelled,
    /// Succeeded, then the money went back (the hold had died, or the booking was cancelled).
    Refunded,
}

/// What can happen to a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentEvent {
    /// The customer completed the provider's check.
    ActionCompleted,
    ProviderSucceeded,
    ProviderFailed,
    /// The customer or the system gave up before an outcome.
    Cancel,
    Refund,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::RequiresAction => "requires_action",
            PaymentState::Processing => "processing",
            PaymentState::Succeeded => "succeeded",
            PaymentState::Failed => "failed",
            PaymentState::Cancelled => "cancelled",
            PaymentState::Refunded => "refunded",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            PaymentState::RequiresAction,
            PaymentState::Processing,
            PaymentState::Succeeded,
            PaymentState::Failed,
            PaymentState::Cancelled,
            PaymentState::Refunded,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// No further outcome can come from the provider.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PaymentState::Failed | PaymentState::Cancelled | PaymentState::Refunded
        )
    }

    /// The state after `event`, or why it cannot happen now. Money moves only out of
    /// `succeeded` (to `refunded`), and only once.
    pub fn after(self, event: PaymentEvent) -> Result<PaymentState, DomainError> {
        use PaymentEvent::*;
        use PaymentState::*;
        match (self, event) {
            (RequiresAction, ActionCompleted) => Ok(Processing),
            (RequiresAction | Processing, ProviderSucceeded) => Ok(Succeeded),
            (RequiresAction | Processing, ProviderFailed) => Ok(Failed),
            (RequiresAction | Processing, Cancel) => Ok(Cancelled),
            (Succeeded, Refund) => Ok(Refunded),
            (state, event) => Err(DomainError::Conflict(format!(
                "a {} payment cannot take {event:?}",
                state.as_str()
            ))),
        }
    }
}

/// A card number with its spaces removed, if it is one.
pub fn card_digits(card_number: &str) -> Result<String, DomainError> {
    let digits: String = card_number.chars().filter(|c| !c.is_whitespace()).collect();
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::invalid(
            "payment.card_number",
            "must be 12 to 19 digits",
        ));
    }
    Ok(digits)
}

/// What the simulated provider does with a card at first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstAnswer {
    Succeeded,
    Declined,
    RequiresAction,
    /// Decided later: `true` when it will succeed.
    Processing {
        succeeds: bool,
    },
}

/// The simulated provider's test cards; any other well-formed number succeeds at once.
pub fn simulated_answer(digits: &str) -> FirstAnswer {
    match digits {
        CARD_DECLINED => FirstAnswer::Declined,
        CARD_THREE_D_SECURE => FirstAnswer::RequiresAction,
        CARD_SUCCEEDS_LATER => FirstAnswer::Processing { succeeds: true },
        CARD_FAILS_LATER => FirstAnswer::Processing { succeeds: false },
        _ => FirstAnswer::Succeeded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn test_cards_decide_the_outcome() {
        assert_eq!(simulated_answer(CARD_SUCCEEDS), FirstAnswer::Succeeded);
        assert_eq!(simulated_answer(CARD_DECLINED), FirstAnswer::Declined);
        assert_eq!(
            simulated_answer(CARD_THREE_D_SECURE),
            FirstAnswer::RequiresAction
        );
        assert_eq!(
            simulated_answer(CARD_FAILS_LATER),
            FirstAnswer::Processing { succeeds: false }
        );
        assert_eq!(card_digits("4242 4242 4242 4242").unwrap(), CARD_SUCCEEDS);
        assert!(matches!(card_digits("42"), Err(DomainError::Validation(_))));
        assert!(matches!(
            card_digits("4242x4242x4242x4242"),
            Err(DomainError::Validation(_))
        ));
    }

    fn event() -> impl Strategy<Value = PaymentEvent> {
        prop_oneof![
            Just(PaymentEvent::ActionCompleted),
            Just(PaymentEvent::ProviderSucceeded),
            Just(PaymentEvent::ProviderFailed),
            Just(PaymentEvent::Cancel),
            Just(PaymentEvent::Refund),
        ]
    }

    proptest! {
        /// Whatever arrives in whatever order (duplicated, late, out of order webhooks), a payment
        /// succeeds at most once and is refunded at most once, only after succeeding, and a final
        /// state never changes again.
        #[test]
        fn payments_move_money_at_most_once(events in proptest::collection::vec(event(), 0..20),
                                           start_with_action in any::<bool>()) {
            let mut state = if start_with_action { PaymentState::RequiresAction } else { PaymentState::Processing };
            let (mut successes, mut refunds) = (0, 0);
            for event in events {
                let before = state;
                match state.after(event) {
                    Ok(next) => {
                        prop_assert!(!before.is_final(), "{before:?} moved on");
                        if next == PaymentState::Succeeded { successes += 1; }
                        if next == PaymentState::Refunded {
                            prop_assert_eq!(before, PaymentState::Succeeded);
                            refunds += 1;
                        }
                        state = next;
                    }
                    Err(_) => prop_assert_eq!(state, before),
                }
            }
            prop_assert!(successes <= 1);
            prop_assert!(refunds <= successes);
        }
    }
}
