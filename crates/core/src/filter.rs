//! The in-process availability filter: what this process learned recently about seats and
//! places that are taken, so a request that is sure to be refused is refused without a
//! database round trip. It learns from the database's answers here and from the seat changes
//! every instance announces (seats held and sold, whoever chose them). It is a filter, never the
//! judge: every fact lapses (and whatever is announced freed is forgotten at once: the freed
//! seats and every count of the show), so it can only ever be stale towards "taken" for that
//! long; whatever it lets through, the database transaction decides.

use crate::Timestamp;
use crate::error::DomainError;
use crate::hold::HoldRequest;
use crate::ids::{SeatId, ShowId};
use std::collections::HashMap;

/// Shows tracked at once; the oldest is forgotten beyond this.
const MAX_SHOWS: usize = 10_000;

#[derive(Debug, Default)]
struct ShowFacts {
    /// Seat id → until when it is known taken.
    seats: HashMap<String, Timestamp>,
    /// Area id or seat category → (places known available, until when).
    short: HashMap<String, (i64, Timestamp)>,
    touched: Timestamp,
}

#[derive(Debug)]
pub struct AvailabilityFilter {
    shows: HashMap<ShowId, ShowFacts>,
    fact_ms: i64,
    sold_fact_ms: i64,
}

/// How a seat was announced taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Held: free again when the hold ends, at the latest when it lapses.
    Held,
    /// Sold: free again only when its booking is cancelled or the show changes, which are
    /// announced too.
    Sold,
}

impl AvailabilityFilter {
    /// `fact_ms`: how long a learned fact is trusted; `sold_fact_ms`: how long an announced sale
    /// is (a sold seat comes back only through an announced cancellation, so the window only
    /// bounds an announcement this process missed).
    pub fn new(fact_ms: i64, sold_fact_ms: i64) -> Self {
        Self {
            shows: HashMap::new(),
            fact_ms,
            sold_fact_ms: sold_fact_ms.max(fact_ms),
        }
    }

    /// Seats of the show announced taken (by this instance or another): refused in memory
    /// for the window of `how`. A fact already known for longer keeps its window.
    pub fn seen_taken(&mut self, show: &ShowId, seat_ids: &[SeatId], how: Taken, now: Timestamp) {
        if seat_ids.is_empty() {
            return;
        }
        let until = now.plus_ms(match how {
            Taken::Held => self.fact_ms,
            Taken::Sold => self.sold_fact_ms,
        });
        let facts = self.facts(show, now);
        for id in seat_ids {
            know_taken(&mut facts.seats, id.as_str(), until);
        }
    }

    /// `Err` when the request asks for something known to be taken right now.
    pub fn check(
        &self,
        show: &ShowId,
        request: &HoldRequest,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        let Some(facts) = self.shows.get(show) else {
            return Ok(());
        };
        match request {
            HoldRequest::Seats(ids) => {
                let taken: Vec<String> = ids
                    .iter()
                    .filter(|id| {
                        facts
                            .seats
                            .get(id.as_str())
                            .is_some_and(|until| *until > now)
                    })
                    .map(|id| id.to_string())
                    .collect();
                if taken.is_empty() {
                    Ok(())
                } else {
                    Err(DomainError::SeatUnavailable { seat_ids: taken })
                }
            }
            HoldRequest::BestAvailable { category, quantity } => {
                Self::check_short(facts, category, category, *quantity, now)
            }
            HoldRequest::Areas(areas) => {
                for area in areas {
                    Self::check_short(
                        facts,
                        area.area_id.as_str(),
                        area.area_id.as_str(),
                        area.quantity,
                        now,
                    )?;
                }
                Ok(())
            }
        }
    }

    fn check_short(
        facts: &ShowFacts,
        key: &str,
        name: &str,
        requested: i64,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        match facts.short.get(key) {
            Some((available, until)) if *until > now && requested > *available => {
                Err(DomainError::CapacityUnavailable {
                    area: name.to_owned(),
                    available: *available,
                    requested,
                })
            }
            _ => Ok(()),
        }
    }

    fn facts(&mut self, show: &ShowId, now: Timestamp) -> &mut ShowFacts {
        if self.shows.len() >= MAX_SHOWS && !self.shows.contains_key(show) {
            let oldest = self
                .shows
                .iter()
                .min_by_key(|(_, f)| f.touched)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.shows.remove(&oldest);
            }
        }
        let facts = self.shows.entry(show.clone()).or_default();
        facts.touched = now;
        facts
    }

    /// Learns from the database's refusal of `request`. (What it grants is announced, and
    /// learned from the announcement: `seen_taken`.)
    pub fn learn_refusal(
        &mut self,
        show: &ShowId,
        request: &HoldRequest,
        refused: &DomainError,
        now: Timestamp,
    ) {
        let until = now.plus_ms(self.fact_ms);
        match (refused, request) {
            (DomainError::SeatUnavailable { seat_ids }, _) => {
                let facts = self.facts(show, now);
                for id in seat_ids {
                    know_taken(&mut facts.seats, id, until);
                }
            }
            (
                DomainError::CapacityUnavailable { available, .. },
                HoldRequest::BestAvailable { category, .. },
            ) => {
                self.facts(show, now)
                    .short
                    .insert(category.clone(), (*available, until));
            }
            (DomainError::CapacityUnavailable { available, .. }, HoldRequest::Areas(areas))
                if areas.len() == 1 =>
            {
                self.facts(show, now)
                    .short
                    .insert(areas[0].area_id.to_string(), (*available, until));
            }
            _ => {}
        }
    }

    /// Something in the show was freed here, or changed in a way not known seat by seat:
    /// forget everything learned about it.
    pub fn forget(&mut self, show: &ShowId) {
        self.shows.remove(show);
    }

    /// These seats of the show were freed here (and places may have come back with them): what
    /// was learned about them and every count of the show is forgotten. What is known of the
    /// show's other seats stays true, so a sale with releases keeps its filter.
    pub fn freed(&mut self, show: &ShowId, seat_ids: &[SeatId]) {
        if let Some(facts) = self.shows.get_mut(show) {
            for seat in seat_ids {
                facts.seats.remove(seat.as_str());
            }
            facts.short.clear();
        }
    }
}

/// The seat is known taken until `until`, or longer if it already was.
fn know_taken(seats: &mut HashMap<String, Timestamp>, id: &str, until: Timestamp) {
    match seats.get_mut(id) {
        Some(known) => *known = (*known).max(until),
        None => {
            seats.insert(id.to_owned(), until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hold::AreaQuantity;
    use crate::ids::{AreaId, SeatId};

    #[test]
    fn refused_seats_are_refused_in_memory_until_the_fact_lapses() {
        let mut filter = AvailabilityFilter::new(1_000, 10_000);
        let show = ShowId::generate();
        let (a, b) = (SeatId::generate(), SeatId::generate());
        let now = Timestamp::from_unix_ms(0);
        let both = HoldRequest::Seats(vec![a.clone(), b.clone()]);
        assert!(
            filter.check(&show, &both, now).is_ok(),
            "nothing is known yet"
        );
        filter.learn_refusal(
            &show,
            &both,
            &DomainError::SeatUnavailable {
                seat_ids: vec![a.to_string()],
            },
            now,
        );
        assert_eq!(
            filter.check(&show, &both, now.plus_ms(999)),
            Err(DomainError::SeatUnavailable {
                seat_ids: vec![a.to_string()]
            })
        );
        assert!(
            filter
                .check(&show, &HoldRequest::Seats(vec![b]), now)
                .is_ok(),
            "only what was refused"
        );
        assert!(
            filter.check(&show, &both, now.plus_ms(1_000)).is_ok(),
            "facts lapse"
        );
        filter.learn_refusal(
            &show,
            &both,
            &DomainError::SeatUnavailable {
                seat_ids: vec![a.to_string()],
            },
            now,
        );
        filter.forget(&show);
        assert!(
            filter.check(&show, &both, now).is_ok(),
            "a local release forgets the show"
        );
    }

    #[test]
    fn announced_holds_and_sales_are_refused_for_their_windows() {
        let mut filter = AvailabilityFilter::new(1_000, 10_000);
        let show = ShowId::generate();
        let (held, sold) = (SeatId::generate(), SeatId::generate());
        let now = Timestamp::from_unix_ms(0);
        let ask = |seat: &SeatId| HoldRequest::Seats(vec![seat.clone()]);
        filter.seen_taken(&show, std::slice::from_ref(&held), Taken::Held, now);
        filter.seen_taken(&show, std::slice::from_ref(&sold), Taken::Sold, now);
        // A refusal learned later is a shorter fact: it does not cut the sale's window short.
        filter.learn_refusal(
            &show,
            &ask(&sold),
            &DomainError::SeatUnavailable {
                seat_ids: vec![sold.to_string()],
            },
            now.plus_ms(500),
        );
        assert!(filter.check(&show, &ask(&held), now.plus_ms(999)).is_err());
        assert!(
            filter.check(&show, &ask(&held), now.plus_ms(1_000)).is_ok(),
            "a hold's fact lapses with the short window"
        );
        assert!(
            filter
                .check(&show, &ask(&sold), now.plus_ms(9_999))
                .is_err(),
            "a sale is refused for the long window"
        );
        assert!(
            filter
                .check(&show, &ask(&sold), now.plus_ms(10_000))
                .is_ok()
        );
        filter.seen_taken(&show, std::slice::from_ref(&sold), Taken::Sold, now);
        filter.freed(&show, std::slice::from_ref(&sold));
        assert!(
            filter.check(&show, &ask(&sold), now).is_ok(),
            "a cancelled sale is forgotten at once"
        );
    }

    #[test]
    fn sold_out_areas_and_categories_refuse_what_does_not_fit() {
        let mut filter = AvailabilityFilter::new(1_000, 10_000);
        let show = ShowId::generate();
        let area = AreaId::generate();
        let now = Timestamp::from_unix_ms(0);
        let ask = |quantity| {
            HoldRequest::Areas(vec![AreaQuantity {
                area_id: area.clone(),
                quantity,
            }])
        };
        let refused = DomainError::CapacityUnavailable {
            area: "Floor".into(),
            available: 2,
            requested: 3,
        };
        filter.learn_refusal(&show, &ask(3), &refused, now);
        assert!(filter.check(&show, &ask(3), now).is_err());
        assert!(
            filter.check(&show, &ask(2), now).is_ok(),
            "what still fits goes to the database"
        );
        let best = HoldRequest::BestAvailable {
            category: "vip".into(),
            quantity: 1,
        };
        filter.learn_refusal(
            &show,
            &best,
            &DomainError::CapacityUnavailable {
                area: "vip".into(),
                available: 0,
                requested: 1,
            },
            now,
        );
        assert!(filter.check(&show, &best, now).is_err());
        assert!(
            filter.check(&ShowId::generate(), &best, now).is_ok(),
            "facts belong to their show"
        );
    }

    #[test]
    fn freed_seats_and_counts_are_forgotten_and_the_rest_kept() {
        let mut filter = AvailabilityFilter::new(1_000, 10_000);
        let show = ShowId::generate();
        let (a, b, c) = (SeatId::generate(), SeatId::generate(), SeatId::generate());
        let now = Timestamp::from_unix_ms(0);
        filter.seen_taken(&show, &[a.clone(), b.clone()], Taken::Held, now);
        let area = AreaId::generate();
        let places = HoldRequest::Areas(vec![AreaQuantity {
            area_id: area.clone(),
            quantity: 2,
        }]);
        filter.learn_refusal(
            &show,
            &places,
            &DomainError::CapacityUnavailable {
                area: area.to_string(),
                available: 0,
                requested: 2,
            },
            now,
        );
        assert!(filter.check(&show, &places, now).is_err());
        filter.freed(&show, std::slice::from_ref(&a));
        assert!(
            filter
                .check(&show, &HoldRequest::Seats(vec![a.clone()]), now)
                .is_ok(),
            "the freed seat"
        );
        assert_eq!(
            filter.check(&show, &HoldRequest::Seats(vec![b.clone(), c]), now),
            Err(DomainError::SeatUnavailable {
                seat_ids: vec![b.to_string()]
            }),
            "a seat not freed is still known taken"
        );
        assert!(
            filter.check(&show, &places, now).is_ok(),
            "places may have come back with the seats"
        );
        filter.freed(&ShowId::generate(), std::slice::from_ref(&b));
        assert!(
            filter
                .check(&show, &HoldRequest::Seats(vec![b.clone()]), now)
                .is_err(),
            "seats of another show"
        );
    }
}
