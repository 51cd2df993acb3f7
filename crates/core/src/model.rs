//! An in-memory model of one show's inventory that applies the same rules as the stores'
//! transactions. It is what the property tests drive with random histories, and the shape the
//! in-process availability index will take.

use crate::error::DomainError;
use crate::inventory::{SeatState, check_area_claim};
use crate::{Timestamp, ids::UserId};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    Free,
    Held { hold: u64, until: Timestamp },
    Sold { booking: u64 },
}

#[derive(Clone, Debug)]
struct ModelHold {
    user: UserId,
    seats: Vec<usize>,
    area_places: i64,
    expires_at: Timestamp,
    live: bool,
}

#[derive(Clone, Debug)]
struct ModelBooking {
    user: UserId,
    seats: Vec<usize>,
    area_places: i64,
    cancelled: bool,
}

/// Seats are numbered `0..seat_count`; there is one general-admission area.
#[derive(Clone, Debug)]
pub struct ShowInventory {
    seats: Vec<Slot>,
    area_capacity: i64,
    area_sold: i64,
    holds: BTreeMap<u64, ModelHold>,
    bookings: BTreeMap<u64, ModelBooking>,
    next_id: u64,
    hold_ms: i64,
}

impl ShowInventory {
    pub fn new(seat_count: usize, area_capacity: i64, hold_ms: i64) -> Self {
        Self {
            seats: vec![Slot::Free; seat_count],
            area_capacity,
            area_sold: 0,
            holds: BTreeMap::new(),
            bookings: BTreeMap::new(),
            next_id: 1,
            hold_ms,
        }
    }

    fn seat_state(&self, seat: usize, now: Timestamp) -> SeatState {
        match &self.seats[seat] {
            Slot::Free => SeatState::Free,
            Slot::Held { until, .. } => SeatState::effective("held", Some(*until), now),
            Slot::Sold { .. } => SeatState::Sold,
        }
    }

    fn area_held_live(&self, now: Timestamp) -> i64 {
        self.holds
            .values()
            .filter(|h| h.live && h.expires_at > now)
            .map(|h| h.area_places)
            .sum()
    }

    /// All or nothing, as the store's transaction.
    pub fn hold(
        &mut self,
        user: &UserId,
        seats: &[usize],
        area_places: i64,
        now: Timestamp,
    ) -> Result<u64, DomainError> {
        let taken: Vec<String> = seats
            .iter()
            .filter(|s| self.seat_state(**s, now) != SeatState::Free)
            .map(|s| s.to_string())
            .collect();
        if !taken.is_empty() {
            return Err(DomainError::SeatUnavailable { seat_ids: taken });
        }
        if area_places > 0 {
            // Holds past their deadline are retired here, as the store does under the area lock.
            for hold in self
                .holds
                .values_mut()
                .filter(|h| h.live && h.expires_at <= now)
            {
                hold.live = false;
            }
            check_area_claim(
                "area",
                self.area_capacity,
                self.area_sold,
                self.area_held_live(now),
                area_places,
            )?;
        }
        let id = self.next_id;
        self.next_id += 1;
        let until = now.plus_ms(self.hold_ms);
        for seat in seats {
            self.seats[*seat] = Slot::Held { hold: id, until };
        }
        self.holds.insert(
            id,
            ModelHold {
                user: user.clone(),
                seats: seats.to_vec(),
                area_places,
                expires_at: until,
                live: true,
            },
        );
        Ok(id)
    }

    pub fn release(&mut self, hold_id: u64) {
        if let Some(hold) = self.holds.get_mut(&hold_id).filter(|h| h.live) {
            hold.live = false;
            for seat in hold.seats.clone() {
                if matches!(self.seats[seat], Slot::Held { hold, .. } if hold == hold_id) {
                    self.seats[seat] = Slot::Free;
                }
            }
        }
    }

    /// What the sweeper does; nothing depends on it having run.
    pub fn sweep(&mut self, now: Timestamp) {
        let due: Vec<u64> = self
            .holds
            .iter()
            .filter(|(_, h)| h.live && h.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.release(id);
        }
    }

    pub fn confirm(
        &mut self,
        hold_id: u64,
        user: &UserId,
        now: Timestamp,
    ) -> Result<u64, DomainError> {
        let hold = self
            .holds
            .get(&hold_id)
            .ok_or(DomainError::NotFound("hold"))?;
        if &hold.user != user {
            return Err(DomainError::NotFound("hold"));
        }
        if !hold.live || hold.expires_at <= now {
            return Err(DomainError::HoldExpired);
        }
        let still_mine = hold
            .seats
            .iter()
            .all(|s| matches!(self.seats[*s], Slot::Held { hold, .. } if hold == hold_id));
        if !still_mine {
            return Err(DomainError::HoldExpired);
        }
        let hold = self.holds.get_mut(&hold_id).expect("checked above");
        hold.live = false;
        let booking = self.next_id;
        self.next_id += 1;
        for seat in &hold.seats {
            self.seats[*seat] = Slot::Sold { booking };
        }
        self.area_sold += hold.area_places;
        self.bookings.insert(
            booking,
            ModelBooking {
                user: user.clone(),
                seats: hold.seats.clone(),
                area_places: hold.area_places,
                cancelled: false,
            },
        );
        Ok(booking)
    }

    pub fn cancel(&mut self, booking_id: u64, user: &UserId) -> Result<(), DomainError> {
        let booking = self
            .bookings
            .get_mut(&booking_id)
            .ok_or(DomainError::NotFound("booking"))?;
        if &booking.user != user {
            return Err(DomainError::NotFound("booking"));
        }
        if booking.cancelled {
            return Err(DomainError::NotCancellable("already cancelled".into()));
        }
        booking.cancelled = true;
        for seat in &booking.seats {
            self.seats[*seat] = Slot::Free;
        }
        self.area_sold -= booking.area_places;
        Ok(())
    }

    pub fn free_seats(&self, now: Timestamp) -> Vec<usize> {
        (0..self.seats.len())
            .filter(|s| self.seat_state(*s, now) == SeatState::Free)
            .collect()
    }

    pub fn area_free(&self, now: Timestamp) -> i64 {
        self.area_capacity - self.area_sold - self.area_held_live(now)
    }

    pub fn hold_ids(&self) -> Vec<u64> {
        self.holds.keys().copied().collect()
    }

    pub fn booking_ids(&self) -> Vec<u64> {
        self.bookings.keys().copied().collect()
    }

    /// The laws, checked against the model's own history rather than its counters.
    pub fn check_laws(&self, now: Timestamp) -> Result<(), String> {
        let mut sold_by = vec![0u32; self.seats.len()];
        let mut area_sold = 0;
        for booking in self.bookings.values().filter(|b| !b.cancelled) {
            for seat in &booking.seats {
                sold_by[*seat] += 1;
            }
            area_sold += booking.area_places;
        }
        if let Some(seat) = sold_by.iter().position(|n| *n > 1) {
            return Err(format!("seat {seat} sold {} times", sold_by[seat]));
        }
        for (seat, slot) in self.seats.iter().enumerate() {
            let sold = matches!(slot, Slot::Sold { .. });
            if sold != (sold_by[seat] == 1) {
                return Err(format!(
                    "seat {seat} state {slot:?} disagrees with bookings"
                ));
            }
        }
        if area_sold != self.area_sold {
            return Err(format!(
                "area sold counter {} but bookings say {area_sold}",
                self.area_sold
            ));
        }
        let held = self.area_held_live(now);
        if area_sold + held > self.area_capacity || area_sold < 0 {
            return Err(format!(
                "area oversold: sold {area_sold} + held {held} > {}",
                self.area_capacity
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Hold {
            user: usize,
            seats: Vec<usize>,
            places: i64,
        },
        Release {
            pick: usize,
        },
        Confirm {
            user: usize,
            pick: usize,
        },
        Cancel {
            user: usize,
            pick: usize,
        },
        Advance {
            ms: i64,
        },
        Sweep,
    }

    const SEATS: usize = 12;
    const CAPACITY: i64 = 10;
    const HOLD_MS: i64 = 60_000;

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3usize, proptest::collection::vec(0..SEATS, 0..4), 0..5i64)
                .prop_map(|(user, seats, places)| Op::Hold { user, seats, places }),
            1 => any::<usize>().prop_map(|pick| Op::Release { pick }),
            3 => (0..3usize, any::<usize>()).prop_map(|(user, pick)| Op::Confirm { user, pick }),
            1 => (0..3usize, any::<usize>()).prop_map(|(user, pick)| Op::Cancel { user, pick }),
            2 => (0..90_000i64).prop_map(|ms| Op::Advance { ms }),
            1 => Just(Op::Sweep),
        ]
    }

    fn nth(ids: &[u64], pick: usize) -> Option<u64> {
        (!ids.is_empty()).then(|| ids[pick % ids.len()])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn random_histories_keep_the_laws(ops in proptest::collection::vec(op(), 1..80)) {
            let users: Vec<UserId> = (0..3).map(|_| UserId::generate()).collect();
            let mut show = ShowInventory::new(SEATS, CAPACITY, HOLD_MS);
            let mut now = Timestamp::from_unix_ms(1_000_000);
            for op in ops {
                match op {
                    Op::Hold { user, mut seats, places } => {
                        seats.sort();
                        seats.dedup();
                        let free_before = show.free_seats(now);
                        let room_before = show.area_free(now);
                        let granted = show.hold(&users[user], &seats, places, now);
                        let fits = seats.iter().all(|s| free_before.contains(s)) && places <= room_before;
                        // Law 3: anything free at `now` (expired holds included) must be grantable.
                        prop_assert_eq!(granted.is_ok(), fits, "hold of {:?}+{} at free {:?} room {}", seats, places, free_before, room_before);
                    }
                    Op::Release { pick } => {
                        if let Some(id) = nth(&show.hold_ids(), pick) { show.release(id); }
                    }
                    Op::Confirm { user, pick } => {
                        if let Some(id) = nth(&show.hold_ids(), pick) { let _ = show.confirm(id, &users[user], now); }
                    }
                    Op::Cancel { user, pick } => {
                        if let Some(id) = nth(&show.booking_ids(), pick) { let _ = show.cancel(id, &users[user]); }
                    }
                    Op::Advance { ms } => now = now.plus_ms(ms),
                    Op::Sweep => show.sweep(now),
                }
                if let Err(broken) = show.check_laws(now) {
                    prop_assert!(false, "{}", broken);
                }
            }
        }
    }

    #[test]
    fn an_expired_hold_cannot_be_confirmed_and_blocks_nobody() {
        let (alice, bob) = (UserId::generate(), UserId::generate());
        let mut show = ShowInventory::new(2, 0, HOLD_MS);
        let now = Timestamp::from_unix_ms(0);
        let hold = show.hold(&alice, &[0, 1], 0, now).unwrap();
        assert!(show.hold(&bob, &[1], 0, now.plus_ms(HOLD_MS - 1)).is_err());
        let later = now.plus_ms(HOLD_MS);
        assert!(show.hold(&bob, &[1], 0, later).is_ok());
        assert_eq!(
            show.confirm(hold, &alice, later),
            Err(DomainError::HoldExpired)
        );
    }

    #[test]
    fn only_the_owner_confirms_or_cancels() {
        let (alice, bob) = (UserId::generate(), UserId::generate());
        let mut show = ShowInventory::new(1, 5, HOLD_MS);
        let now = Timestamp::from_unix_ms(0);
        let hold = show.hold(&alice, &[0], 2, now).unwrap();
        assert_eq!(
            show.confirm(hold, &bob, now),
            Err(DomainError::NotFound("hold"))
        );
        let booking = show.confirm(hold, &alice, now).unwrap();
        assert_eq!(
            show.cancel(booking, &bob),
            Err(DomainError::NotFound("booking"))
        );
        show.cancel(booking, &alice).unwrap();
        assert_eq!(show.area_free(now), 5);
    }
}
