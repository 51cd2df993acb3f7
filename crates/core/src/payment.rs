//! The simulated card processor used until real payment intents arrive: the card number decides
//! the outcome, as with a real provider's test cards.

use crate::error::DomainError;

pub const CARD_SUCCEEDS: &str = "4242424242424242";
pub const CARD_DECLINED: &str = "4000000000000002";

/// Charges the card, or says why not. Any other well-formed number succeeds, like a test mode.
pub fn charge_card(card_number: &str) -> Result<String, DomainError> {
    let digits: String = card_number.chars().filter(|c| !c.is_whitespace()).collect();
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::invalid(
            "payment.card_number",
            "must be 12 to 19 digits",
        ));
    }
    if digits == CARD_DECLINED {
        return Err(DomainError::PaymentDeclined(
            "the card was declined by its issuer".to_owned(),
        ));
    }
    let last4 = &digits[digits.len() - 4..];
    Ok(format!("card ending {last4}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cards_decide_the_outcome() {
        assert_eq!(charge_card(CARD_SUCCEEDS).unwrap(), "card ending 4242");
        assert!(matches!(
            charge_card(CARD_DECLINED),
            Err(DomainError::PaymentDeclined(_))
        ));
        assert!(matches!(charge_card("42"), Err(DomainError::Validation(_))));
    }
}
