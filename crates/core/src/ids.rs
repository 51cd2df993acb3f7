//! Opaque, prefixed identifiers (`bk_0190…`): the prefix says what kind of thing an id names,
//! the UUIDv7 body sorts by creation time, and a typed wrapper stops a seat id being passed
//! where a show id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id, ordered after every id made before it in this process.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// Accepts only ids with this kind's prefix, so a typo is a clear 4xx, not a miss.
            pub fn parse(raw: &str) -> Option<Self> {
                let body = raw.strip_prefix($prefix)?.strip_prefix('_')?;
                let well_formed = !body.is_empty()
                    && body.len() <= 64
                    && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                well_formed.then(|| Self(raw.to_owned()))
            }

            /// Wraps a value read back from our own database, where it was written by `generate`.
            pub fn from_trusted(raw: String) -> Self {
                Self(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(UserId, "usr");
prefixed_id!(OrganizerId, "org");
prefixed_id!(SessionId, "ses");
prefixed_id!(InvitationId, "inv");
prefixed_id!(VenueId, "ven");
prefixed_id!(SectionId, "sec");
prefixed_id!(SeatId, "seat");
prefixed_id!(AreaId, "area");
prefixed_id!(EventId, "evt");
prefixed_id!(ShowId, "shw");
prefixed_id!(HoldId, "hld");
prefixed_id!(BookingId, "bk");
prefixed_id!(TicketId, "tkt");
prefixed_id!(
    /// A domain event told to the outside world (webhooks, streams); receivers drop repeats by it.
    MessageId,
    "msg"
);
prefixed_id!(WebhookId, "whk");
prefixed_id!(PaymentId, "pay");
prefixed_id!(PromoId, "promo");
prefixed_id!(DeliveryId, "dlv");
prefixed_id!(WaitlistEntryId, "wle");
prefixed_id!(ScratchCardId, "scr");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_own_prefix_only() {
        let id = ShowId::generate();
        assert_eq!(ShowId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(HoldId::parse(id.as_str()), None);
        assert_eq!(ShowId::parse("shw_"), None);
        assert_eq!(ShowId::parse("shw_a b"), None);
    }

    #[test]
    fn generated_ids_sort_by_creation() {
        let a = BookingId::generate();
        let b = BookingId::generate();
        assert!(a < b);
    }
}
