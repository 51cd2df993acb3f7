//! Promo codes: an organizer's discount (a percentage or a fixed amount), or the key to a
//! category sold only with a code (an unlock: presales, guest lists), for all its shows, one
//! event's or one show's, valid in a window, with a total number of uses and a number per
//! customer. A use is counted from the hold that applies it (a hold that lapses gives it back,
//! with no sweeper needed) to the booking it becomes; the store counts them under a lock on the
//! code, so no code is used more often than it allows.

use crate::Timestamp;
use crate::catalog::Show;
use crate::error::{DomainError, Problems};
use crate::ids::{EventId, OrganizerId, PromoId, ShowId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Discount {
    /// This share off, 1 to 100.
    Percent(i64),
    /// This much off (minor units of the show's currency), never below zero.
    Amount(i64),
    /// Nothing off, but seats of this locked category may be held with it (at their price).
    Unlock(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Promo {
    pub id: PromoId,
    #[serde(skip)]
    pub organizer_id: OrganizerId,
    /// Upper case; customers may type it in any case.
    pub code: String,
    /// Only this event's shows, or only this show; all the organizer's shows when neither.
    pub event_id: Option<EventId>,
    pub show_id: Option<ShowId>,
    pub discount: Discount,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub max_uses: i64,
    pub max_uses_per_customer: i64,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoInput {
    pub code: String,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub show_id: Option<String>,
    pub discount: Discount,
    #[serde(default)]
    pub valid_from: Option<Timestamp>,
    #[serde(default)]
    pub valid_until: Option<Timestamp>,
    pub max_uses: i64,
    #[serde(default = "one")]
    pub max_uses_per_customer: i64,
}

fn one() -> i64 {
    1
}

/// The code as stored and compared: trimmed, upper case.
pub fn normalize(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

impl PromoInput {
    pub fn into_promo(self, organizer: OrganizerId, now: Timestamp) -> Result<Promo, DomainError> {
        let mut problems = Problems::default();
        let code = normalize(&self.code);
        problems.check(
            (3..=32).contains(&code.len())
                && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "code",
            "must be 3 to 32 letters, digits or dashes",
        );
        let event_id = self.event_id.as_deref().and_then(|e| {
            let id = EventId::parse(e);
            problems.check(id.is_some(), "event_id", "not an event id");
            id
        });
        let show_id = self.show_id.as_deref().and_then(|s| {
            let id = ShowId::parse(s);
            problems.check(id.is_some(), "show_id", "not a show id");
            id
        });
        problems.check(
            !(event_id.is_some() && show_id.is_some()),
            "show_id",
            "give an event or a show, not both",
        );
        match &self.discount {
            Discount::Unlock(category) => problems.check(
                crate::venue::valid_category(category),
                "discount.unlock",
                "is not a category name",
            ),
            Discount::Percent(p) => problems.check(
                (1..=100).contains(p),
                "discount.percent",
                "must be 1 to 100",
            ),
            Discount::Amount(a) => problems.check(*a > 0, "discount.amount", "must be more than 0"),
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until) {
            problems.check(from < until, "valid_until", "must be after valid_from");
        }
        problems.check(
            (1..=1_000_000).contains(&self.max_uses),
            "max_uses",
            "must be 1 to 1,000,000",
        );
        problems.check(
            (1..=self.max_uses.max(1)).contains(&self.max_uses_per_customer),
            "max_uses_per_customer",
            "must be 1 to max_uses",
        );
        problems.finish(Promo {
            id: PromoId::generate(),
            organizer_id: organizer,
            code,
            event_id,
            show_id,
            discount: self.discount,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            max_uses: self.max_uses,
            max_uses_per_customer: self.max_uses_per_customer,
            created_at: now,
        })
    }
}

impl Promo {
    /// Whether it may be applied to a hold for `show` at `now`, given how often it was used.
    pub fn check(
        &self,
        show: &Show,
        now: Timestamp,
        uses: i64,
        uses_by_customer: i64,
    ) -> Result<(), DomainError> {
        let scoped = self.organizer_id == show.organizer_id
            && self.event_id.as_ref().is_none_or(|e| *e == show.event_id)
            && self.show_id.as_ref().is_none_or(|s| *s == show.id);
        if !scoped {
            return Err(DomainError::invalid(
                "promo_code",
                "this code is not valid for this show",
            ));
        }
        if self.valid_from.is_some_and(|from| now < from)
            || self.valid_until.is_some_and(|until| now >= until)
        {
            return Err(DomainError::invalid(
                "promo_code",
                "this code is not valid at this time",
            ));
        }
        if uses >= self.max_uses {
            return Err(DomainError::Conflict("this code has been used up".into()));
        }
        if uses_by_customer >= self.max_uses_per_customer {
            return Err(DomainError::Conflict(
                "you have used this code as often as it allows".into(),
            ));
        }
        Ok(())
    }

    /// The category this code unlocks, if it is an unlock.
    pub fn unlocks(&self) -> Option<&str> {
        match &self.discount {
            Discount::Unlock(category) => Some(category),
            _ => None,
        }
    }

    /// The discount on `subtotal_minor`, never more than it.
    pub fn discount_minor(&self, subtotal_minor: i64) -> i64 {
        match &self.discount {
            Discount::Percent(percent) => subtotal_minor * (*percent).clamp(0, 100) / 100,
            Discount::Amount(amount) => (*amount).clamp(0, subtotal_minor),
            Discount::Unlock(_) => 0,
        }
    }
}

/// Whether a hold of `categories` may go ahead with `promo` (if any) on `show`: locked categories
/// need a code that unlocks them, and an unlocking code is only for its category.
pub fn check_unlocked<'a>(
    show: &Show,
    categories: impl IntoIterator<Item = &'a str>,
    promo: Option<&Promo>,
) -> Result<(), DomainError> {
    let unlocked = promo.and_then(Promo::unlocks);
    let mut locked_seen = false;
    for category in categories {
        if show.locked_categories.contains(category) {
            locked_seen = true;
            if unlocked != Some(category) {
                return Err(DomainError::invalid(
                    "promo_code",
                    format!("{category} places are sold only with a code that unlocks them"),
                ));
            }
        }
    }
    if let (Some(category), false) = (unlocked, locked_seen) {
        return Err(DomainError::invalid(
            "promo_code",
            format!("this code unlocks {category} places: choose some of those"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discounts_never_exceed_the_total() {
        let input = |discount| PromoInput {
            code: " summer-10 ".into(),
            event_id: None,
            show_id: None,
            discount,
            valid_from: None,
            valid_until: None,
            max_uses: 10,
            max_uses_per_customer: 1,
        };
        let promo = input(Discount::Percent(10))
            .into_promo(OrganizerId::generate(), Timestamp::from_unix_ms(0))
            .unwrap();
        assert_eq!(promo.code, "SUMMER-10");
        assert_eq!(promo.discount_minor(1_999), 199);
        let fixed = input(Discount::Amount(5_000))
            .into_promo(OrganizerId::generate(), Timestamp::from_unix_ms(0))
            .unwrap();
        assert_eq!(fixed.discount_minor(1_200), 1_200);
        assert!(
            input(Discount::Percent(0))
                .into_promo(OrganizerId::generate(), Timestamp::from_unix_ms(0))
                .is_err()
        );
        assert!(
            input(Discount::Amount(-1))
                .into_promo(OrganizerId::generate(), Timestamp::from_unix_ms(0))
                .is_err()
        );
    }
}
