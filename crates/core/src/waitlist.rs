//! The waitlist of a sold-out show: who waits for how many places (of one category, or of any),
//! in what order, and the rule that decides who is offered what comes back.
//!
//! An offer is a hold in the customer's name with its own deadline. Entries are served in the
//! order they joined, but a later entry may take places an earlier one cannot use (a single may
//! take a lone seat that a group of four together cannot). Each time that happens, every entry it
//! overtook counts one pass; an entry passed [`MAX_PASSES`] times *holds the line*: while it
//! cannot be served nobody behind it is offered anything, so a group is not skipped for ever by
//! the singles behind it.

use crate::Timestamp;
use crate::catalog::Show;
use crate::error::{DomainError, Problems};
use crate::ids::{HoldId, ShowId, UserId, WaitlistEntryId};
use serde::{Deserialize, Serialize};

/// How often an entry may be overtaken before it holds the line.
pub const MAX_PASSES: i64 = 3;
/// How long a customer has to pay for an offer (never past the end of the sale).
pub const OFFER_MINUTES: i64 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// In line.
    Waiting,
    /// Offered places as a hold that is still open.
    Offered,
    /// The offer became a booking.
    Booked,
    /// The offer ran out (or was turned down); the places went to the next in line.
    Lapsed,
    /// The customer left the list.
    Left,
    /// The show was cancelled or its sale ended.
    Closed,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Waiting => "waiting",
            EntryState::Offered => "offered",
            EntryState::Booked => "booked",
            EntryState::Lapsed => "lapsed",
            EntryState::Left => "left",
            EntryState::Closed => "closed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            EntryState::Waiting,
            EntryState::Offered,
            EntryState::Booked,
            EntryState::Lapsed,
            EntryState::Left,
            EntryState::Closed,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// Still on the list: waiting, or holding an offer.
    pub fn is_open(self) -> bool {
        matches!(self, EntryState::Waiting | EntryState::Offered)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WaitlistEntry {
    pub id: WaitlistEntryId,
    pub show_id: ShowId,
    pub user_id: UserId,
    /// Places of this category only; any category when absent.
    pub category: Option<String>,
    pub quantity: i64,
    /// Seats side by side in one row (standing places are always together).
    pub together: bool,
    pub state: EntryState,
    /// How often later entries were offered places before this one.
    pub passes: i64,
    /// The offer: a hold in the customer's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<HoldId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// 1 for the first waiting entry; only while waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinInput {
    pub quantity: i64,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub together: bool,
}

impl JoinInput {
    /// A new entry for `user` on `show`, checked against the show's terms.
    pub fn into_entry(
        self,
        show: &Show,
        user: UserId,
        now: Timestamp,
    ) -> Result<WaitlistEntry, DomainError> {
        let mut problems = Problems::default();
        problems.check(
            (1..=show.max_tickets_per_order).contains(&self.quantity),
            "quantity",
            format!("must be 1 to {}", show.max_tickets_per_order),
        );
        if let Some(category) = &self.category {
            problems.check(
                show.prices.contains_key(category),
                "category",
                "is not a category of this show",
            );
            problems.check(
                !show.locked_categories.contains(category),
                "category",
                "is sold only with a code, not from the waitlist",
            );
        }
        problems.finish(WaitlistEntry {
            id: WaitlistEntryId::generate(),
            show_id: show.id.clone(),
            user_id: user,
            category: self.category,
            quantity: self.quantity,
            together: self.together,
            state: EntryState::Waiting,
            passes: 0,
            hold_id: None,
            offer_expires_at: None,
            created_at: now,
            place: None,
        })
    }
}

/// Joining is for what is sold out: `free` places of the entry's scope are on sale right now.
pub fn check_sold_out(free: i64) -> Result<(), DomainError> {
    if free > 0 {
        return Err(DomainError::Conflict(format!(
            "{free} places are still on sale: book them instead of waiting"
        )));
    }
    Ok(())
}

/// When an offer made at `now` runs out.
pub fn offer_deadline(show: &Show, now: Timestamp) -> Timestamp {
    now.plus_minutes(OFFER_MINUTES).min(show.off_sale_at)
}

/// A walk down the line in order, deciding whom to try and counting who was overtaken.
#[derive(Debug, Default)]
pub struct Walk {
    unserved: Vec<usize>,
    overtaken: Vec<usize>,
    stopped: bool,
}

impl Walk {
    /// Whether entries further down may still be tried.
    pub fn goes_on(&self) -> bool {
        !self.stopped
    }

    /// Entry `index` (with `passes` so far) was tried and could not be served.
    pub fn unserved(&mut self, index: usize, passes: i64) {
        self.unserved.push(index);
        if passes >= MAX_PASSES {
            self.stopped = true;
        }
    }

    /// Entry `index` was served: every entry before it still unserved was overtaken.
    pub fn served(&mut self, _index: usize) {
        self.overtaken.append(&mut self.unserved);
    }

    /// The entries to count a pass for.
    pub fn overtaken(mut self) -> Vec<usize> {
        self.overtaken.sort_unstable();
        self.overtaken.dedup();
        self.overtaken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a walk over entries wanting `wants` places with `passes` each, with `free` places
    /// taken first come: (served indices, overtaken indices).
    fn walk(wants: &[i64], passes: &[i64], mut free: i64) -> (Vec<usize>, Vec<usize>) {
        let mut walk = Walk::default();
        let mut served = Vec::new();
        for (i, want) in wants.iter().enumerate() {
            if !walk.goes_on() {
                break;
            }
            if *want <= free {
                free -= want;
                walk.served(i);
                served.push(i);
            } else {
                walk.unserved(i, passes[i]);
            }
        }
        (served, walk.overtaken())
    }

    #[test]
    fn entries_are_served_in_order_while_places_last() {
        assert_eq!(walk(&[1, 2, 1], &[0, 0, 0], 3), (vec![0, 1], vec![]));
    }

    #[test]
    fn a_later_entry_may_take_what_an_earlier_one_cannot_use_and_counts_a_pass() {
        assert_eq!(walk(&[4, 1, 1], &[0, 0, 0], 1), (vec![1], vec![0]));
        assert_eq!(walk(&[4, 4, 1], &[2, 0, 0], 1), (vec![2], vec![0, 1]));
    }

    #[test]
    fn an_entry_passed_too_often_holds_the_line() {
        assert_eq!(walk(&[4, 1, 1], &[MAX_PASSES, 0, 0], 2), (vec![], vec![]));
        // Once the group fits, it goes first.
        assert_eq!(
            walk(&[4, 1, 1], &[MAX_PASSES, 0, 0], 5),
            (vec![0, 1], vec![])
        );
    }

    #[test]
    fn a_group_is_overtaken_at_most_max_passes_times_by_any_stream_of_singles() {
        let mut passes = [0_i64, 0, 0, 0, 0, 0, 0];
        let mut served_singles = 0;
        // One seat comes back at a time, for ever: the singles behind get at most MAX_PASSES.
        for _ in 0..20 {
            let wants: Vec<i64> = std::iter::once(4)
                .chain(std::iter::repeat_n(1, 6 - served_singles.min(6)))
                .collect();
            let (served, overtaken) = walk(&wants, &passes, 1);
            served_singles += served.len();
            for i in overtaken {
                passes[i] += 1;
            }
        }
        assert_eq!(served_singles as i64, MAX_PASSES);
        assert_eq!(passes[0], MAX_PASSES);
    }

    #[test]
    fn offers_end_with_the_sale() {
        let start = Timestamp::from_unix_ms(0).plus_minutes(24 * 60);
        let show = Show {
            id: ShowId::generate(),
            event_id: crate::ids::EventId::generate(),
            organizer_id: crate::ids::OrganizerId::generate(),
            venue_id: crate::ids::VenueId::generate(),
            state: crate::catalog::ShowState::Scheduled,
            starts_at: start,
            ends_at: start.plus_minutes(120),
            on_sale_at: Timestamp::from_unix_ms(0),
            off_sale_at: start,
            currency: crate::Currency::from_trusted("EUR".into()),
            prices: [("standard".to_owned(), 2_000)].into(),
            locked_categories: Default::default(),
            hold_minutes: 10,
            max_tickets_per_order: 4,
            max_tickets_per_customer: 8,
            format: None,
            language: None,
            created_at: Timestamp::from_unix_ms(0),
            cancelled_at: None,
        };
        let early = offer_deadline(&show, Timestamp::from_unix_ms(0));
        assert_eq!(
            early,
            Timestamp::from_unix_ms(0).plus_minutes(OFFER_MINUTES)
        );
        let late = offer_deadline(&show, show.off_sale_at.plus_minutes(-5));
        assert_eq!(late, show.off_sale_at);
    }
}
