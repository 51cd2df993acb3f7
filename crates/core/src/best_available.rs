//! "Give me the best N seats": adjacent seats (consecutive numbers, no aisle between) in one row where possible, front rows first and
//! nearest the middle of the row; scattered seats only when no row has N together.

use crate::ids::SeatId;
use std::collections::BTreeMap;

/// One seat of the requested category, free or not: taken seats still tell where a row's
/// middle is and break runs of neighbours.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub seat_id: SeatId,
    pub row_rank: i64,
    pub number: i64,
    pub x: f64,
    pub free: bool,
}

/// Picks `quantity` free seats, or `None` when fewer are free.
pub fn pick(candidates: &[Candidate], quantity: usize) -> Option<Vec<SeatId>> {
    if quantity == 0 || candidates.iter().filter(|c| c.free).count() < quantity {
        return None;
    }
    block(candidates, quantity).or_else(|| Some(scattered(candidates, quantity)))
}

/// The best block of `quantity` adjacent free seats in one row, if any row has one. Rows are
/// judged front first, so a caller may look at the front rows alone and stop at the first block.
pub fn block(candidates: &[Candidate], quantity: usize) -> Option<Vec<SeatId>> {
    if quantity == 0 {
        return None;
    }
    let mut rows: BTreeMap<i64, Vec<&Candidate>> = BTreeMap::new();
    for c in candidates {
        rows.entry(c.row_rank).or_default().push(c);
    }
    let mut best: Option<(i64, f64, Vec<SeatId>)> = None;
    for (rank, mut seats) in rows {
        seats.sort_by_key(|s| s.number);
        let middle = row_middle(&seats);
        for window in seats.windows(quantity) {
            let adjacent = window.iter().all(|s| s.free)
                && window.windows(2).all(|pair| {
                    pair[1].number == pair[0].number + 1
                        && pair[1].x - pair[0].x <= 1.0 + f64::EPSILON
                });
            if !adjacent {
                continue;
            }
            let centre = window.iter().map(|s| s.x).sum::<f64>() / quantity as f64;
            let off_centre = (centre - middle).abs();
            let better = match &best {
                None => true,
                Some((best_rank, best_off, _)) => (rank, off_centre) < (*best_rank, *best_off),
            };
            if better {
                best = Some((
                    rank,
                    off_centre,
                    window.iter().map(|s| s.seat_id.clone()).collect(),
                ));
            }
        }
        if best.is_some() {
            // Rows are visited front first, so the first row with a block wins.
            break;
        }
    }
    best.map(|(_, _, ids)| ids)
}

fn row_middle(seats: &[&Candidate]) -> f64 {
    let (min, max) = seats.iter().fold((f64::MAX, f64::MIN), |(lo, hi), s| {
        (lo.min(s.x), hi.max(s.x))
    });
    (min + max) / 2.0
}

/// The best single seats: front rows first, then nearest each row's middle.
fn scattered(candidates: &[Candidate], quantity: usize) -> Vec<SeatId> {
    let mut rows: BTreeMap<i64, Vec<&Candidate>> = BTreeMap::new();
    for c in candidates {
        rows.entry(c.row_rank).or_default().push(c);
    }
    let mut ranked: Vec<(i64, f64, &SeatId)> = Vec::new();
    for (rank, seats) in &rows {
        let middle = row_middle(seats);
        ranked.extend(
            seats
                .iter()
                .filter(|s| s.free)
                .map(|s| (*rank, (s.x - middle).abs(), &s.seat_id)),
        );
    }
    ranked.sort_by(|a, b| {
        (a.0, a.1)
            .partial_cmp(&(b.0, b.1))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    ranked
        .into_iter()
        .take(quantity)
        .map(|(_, _, id)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(rank: i64, free: &[bool]) -> Vec<Candidate> {
        free.iter()
            .enumerate()
            .map(|(i, f)| Candidate {
                seat_id: SeatId::from_trusted(format!("seat_{rank}_{}", i + 1)),
                row_rank: rank,
                number: i as i64 + 1,
                x: i as f64 + 1.0,
                free: *f,
            })
            .collect()
    }

    #[test]
    fn prefers_a_centred_block_in_the_front_most_row() {
        let mut seats = row(0, &[true, true, false, false, false, true]);
        seats.extend(row(1, &[true, true, true, true, true, true]));
        let picked = pick(&seats, 3).unwrap();
        let names: Vec<_> = picked.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["seat_1_2", "seat_1_3", "seat_1_4"]);
    }

    #[test]
    fn falls_back_to_scattered_seats_when_no_row_has_a_block() {
        let seats = row(0, &[true, false, true, false, true]);
        assert_eq!(pick(&seats, 3).unwrap().len(), 3);
        assert_eq!(pick(&seats, 4), None);
    }

    #[test]
    fn an_aisle_breaks_a_block() {
        // Seats 1-3 | aisle | 4-6, with 1, 2 and 6 taken: 3-4-5 are numbered in a row but
        // straddle the aisle, so the pair 4-5 is the only block of two and no block of three exists.
        let mut seats = row(0, &[false, false, true, true, true, false]);
        for seat in seats.iter_mut().skip(3) {
            seat.x += 1.0;
        }
        assert_eq!(block(&seats, 3), None);
        let pair: Vec<_> = block(&seats, 2)
            .unwrap()
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        assert_eq!(pair, ["seat_0_4", "seat_0_5"]);
        assert_eq!(
            pick(&seats, 3).unwrap().len(),
            3,
            "scattered when no block exists"
        );
    }

    proptest! {
        #[test]
        fn picks_only_free_distinct_seats(free in proptest::collection::vec(any::<bool>(), 1..40), quantity in 1usize..8) {
            let seats: Vec<_> = free.chunks(8).enumerate().flat_map(|(r, chunk)| row(r as i64, chunk)).collect();
            let free_count = seats.iter().filter(|s| s.free).count();
            match pick(&seats, quantity) {
                None => prop_assert!(free_count < quantity),
                Some(ids) => {
                    prop_assert_eq!(ids.len(), quantity);
                    let mut unique = ids.clone();
                    unique.sort();
                    unique.dedup();
                    prop_assert_eq!(unique.len(), quantity);
                    for id in &ids {
                        prop_assert!(seats.iter().any(|s| &s.seat_id == id && s.free));
                    }
                }
            }
        }
    }
}
