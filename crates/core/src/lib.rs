//! The Boxoffice domain: what a venue, a show, a hold and a booking are, and the rules that
//! decide whether a request for seats may be granted. Pure Rust, no I/O: the store asks these
//! functions for decisions inside its transactions, and the property tests drive them directly.

pub mod best_available;
pub mod booking;
pub mod catalog;
pub mod clock;
pub mod error;
pub mod filter;
pub mod hold;
pub mod ids;
pub mod inventory;
pub mod ledger;
pub mod loyalty;
pub mod model;
pub mod money;
pub mod outbox;
pub mod payment;
pub mod promo;
pub mod schedule;
pub mod ticket;
pub mod user;
pub mod venue;
pub mod waiting;
pub mod waitlist;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{DomainError, FieldError};
pub use money::{Currency, Money};
