//! The virtual waiting room's rules: its settings, the order of the line, and the gate that
//! lets people in at a rate the sale can serve.
//!
//! Order: people who join before the sale opens are drawn into a random order: each gets a
//! draw value from the room's secret seed and their account id, and the line sorts by it. The
//! seed is fixed when the room is switched on and published once the sale is open, so anyone can
//! recompute the draw. Everyone who joins after opening is appended first-come first-served.
//! Rejoining never moves anyone: an account has one place.
//!
//! The gate keeps a count `admitted_through`: the first that many places of the line are in.
//! It earns credit at the admission rate, spends it on the next people in line, and stops while
//! nothing is left to sell or the shop is full (at most `max_active` shoppers at once).

use crate::clock::Timestamp;
use crate::error::{DomainError, Problems};
use serde::{Deserialize, Serialize};

/// Draw values of pre-queue joiners lie below this; later joiners get `FIFO_BASE + n`.
pub const FIFO_BASE: u64 = 1 << 48;

/// A room's settings as the organizer gives them.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomInput {
    pub enabled: bool,
    /// People let in per minute.
    #[serde(default)]
    pub admission_rate_per_minute: Option<i64>,
    /// At most this many admitted people shopping at once.
    #[serde(default)]
    pub max_active_shoppers: Option<i64>,
    /// How long an admission lasts.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: i64,
    /// When people may start joining (before the sale opens they are drawn at random).
    #[serde(default)]
    pub opens_at: Option<Timestamp>,
}

fn default_session_minutes() -> i64 {
    15
}

/// A show's waiting room.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Room {
    pub enabled: bool,
    pub admission_rate_per_minute: i64,
    pub max_active_shoppers: Option<i64>,
    pub session_minutes: i64,
    /// Joining opens here; the line is drawn at the sale's opening.
    pub opens_at: Timestamp,
    /// Secret until the sale opens; then shown so the draw can be checked.
    #[serde(skip)]
    pub seed: u64,
}

impl RoomInput {
    /// Validated against the show's sale opening; keeps `seed` when the room existed already,
    /// so switching settings never redraws a line.
    pub fn into_room(self, on_sale_at: Timestamp, seed: u64) -> Result<Room, DomainError> {
        let mut problems = Problems::default();
        let rate = self.admission_rate_per_minute;
        let cap = self.max_active_shoppers;
        problems.check(
            rate.is_some() || cap.is_some(),
            "admission_rate_per_minute",
            "give a rate, a maximum of active shoppers, or both",
        );
        problems.check(
            rate.is_none_or(|r| (1..=1_000_000).contains(&r)),
            "admission_rate_per_minute",
            "must be 1 to 1,000,000",
        );
        problems.check(
            cap.is_none_or(|c| (1..=10_000_000).contains(&c)),
            "max_active_shoppers",
            "must be 1 to 10,000,000",
        );
        problems.check(
            (1..=240).contains(&self.session_minutes),
            "session_minutes",
            "must be 1 to 240",
        );
        let opens_at = self.opens_at.unwrap_or(on_sale_at);
        problems.check(
            opens_at <= on_sale_at,
            "opens_at",
            "must not be after the sale opens",
        );
        problems.finish(Room {
            enabled: self.enabled,
            // Without a rate, the shop's capacity alone paces admission.
            admission_rate_per_minute: rate.unwrap_or(1_000_000),
            max_active_shoppers: cap,
            session_minutes: self.session_minutes,
            opens_at,
            seed,
        })
    }
}

/// Where an account stands in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Joined before the sale opens: the order is drawn at opening.
    PreQueue,
    Waiting,
    Admitted,
    /// Was admitted, and the admission ran out.
    Expired,
    /// Nothing is left to sell (held seats may still come back).
    SoldOut,
}

/// The draw value of a pre-queue joiner: the first 48 bits of SHA-256(seed ‖ account id).
pub fn draw(seed: u64, account: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(seed.to_be_bytes());
    hasher.update(account.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first[2..].copy_from_slice(&digest[..6]);
    u64::from_be_bytes(first)
}

/// The gate: how many from the head of the line are in, and the credit earned toward the next.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Gate {
    pub admitted_through: u64,
    pub credit: f64,
    /// When credit was last earned (ms); zero before the sale opened.
    pub at_ms: i64,
}

/// What the gate sees when it moves.
#[derive(Clone, Copy, Debug)]
pub struct GateView {
    pub now: Timestamp,
    pub on_sale_at: Timestamp,
    pub rate_per_minute: i64,
    /// People in the line, admitted or not.
    pub line_length: u64,
    /// Admitted people still shopping.
    pub active: u64,
    pub max_active: Option<u64>,
    /// Whether anything can still be sold (free now).
    pub inventory_left: bool,
}

impl Gate {
    /// Earns credit for the time since the last move (at most a minute's worth is banked, so a
    /// pause never turns into a stampede) and lets in as many as the credit, the line, the
    /// shop's room and the inventory allow. Returns how many were let in.
    pub fn advance(&mut self, view: GateView) -> u64 {
        if view.now < view.on_sale_at {
            return 0;
        }
        let now = view.now.unix_ms();
        let since = if self.at_ms == 0 {
            view.on_sale_at.unix_ms()
        } else {
            self.at_ms
        };
        if now > since {
            let rate = view.rate_per_minute.max(1) as f64;
            self.credit = (self.credit + rate * (now - since) as f64 / 60_000.0).min(rate.max(1.0));
        }
        self.at_ms = now.max(since);
        let mut allow = self.credit.floor().max(0.0) as u64;
        allow = allow.min(view.line_length.saturating_sub(self.admitted_through));
        if let Some(cap) = view.max_active {
            allow = allow.min(cap.saturating_sub(view.active));
        }
        if !view.inventory_left {
            allow = 0;
        }
        self.admitted_through += allow;
        self.credit -= allow as f64;
        allow
    }
}

/// Where a place stands, from its 0-based rank in the line and the gate.
pub fn state_of(
    rank: u64,
    gate: &Gate,
    opened: bool,
    session_expired: bool,
    inventory_left: bool,
) -> QueueState {
    if !opened {
        QueueState::PreQueue
    } else if rank < gate.admitted_through {
        if session_expired {
            QueueState::Expired
        } else {
            QueueState::Admitted
        }
    } else if !inventory_left {
        QueueState::SoldOut
    } else {
        QueueState::Waiting
    }
}

/// Seconds until `ahead` more people are let in at `rate_per_minute`.
pub fn estimated_wait_seconds(ahead: u64, rate_per_minute: i64) -> u64 {
    (ahead * 60).div_ceil(rate_per_minute.max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(now_min: i64, line: u64) -> GateView {
        GateView {
            now: Timestamp::from_unix_ms(now_min * 60_000),
            on_sale_at: Timestamp::from_unix_ms(0),
            rate_per_minute: 100,
            line_length: line,
            active: 0,
            max_active: None,
            inventory_left: true,
        }
    }

    #[test]
    fn the_gate_admits_at_the_rate_and_banks_at_most_a_minute() {
        let mut gate = Gate::default();
        assert_eq!(gate.advance(view(0, 1_000)), 0);
        assert_eq!(gate.advance(view(1, 1_000)), 100);
        assert_eq!(gate.advance(view(2, 1_000)), 100);
        // Five quiet minutes earn one minute's worth, not five.
        assert_eq!(gate.advance(view(7, 1_000)), 100);
        assert_eq!(gate.admitted_through, 300);
    }

    #[test]
    fn the_gate_stops_for_an_empty_line_a_full_shop_and_a_sold_out_show() {
        let mut gate = Gate::default();
        assert_eq!(gate.advance(view(1, 30)), 30, "no more than are waiting");
        let mut full = view(2, 1_000);
        full.max_active = Some(50);
        full.active = 40;
        assert_eq!(
            gate.advance(full),
            10,
            "only as many as the shop has room for"
        );
        let mut sold_out = view(3, 1_000);
        sold_out.inventory_left = false;
        assert_eq!(gate.advance(sold_out), 0);
        assert_eq!(
            gate.advance(view(4, 1_000)),
            100,
            "resumes when seats return"
        );
    }

    #[test]
    fn nobody_is_let_in_before_the_sale_opens() {
        let mut gate = Gate::default();
        let mut early = view(-5, 1_000);
        early.on_sale_at = Timestamp::from_unix_ms(0);
        assert_eq!(gate.advance(early), 0);
        assert_eq!(gate.credit, 0.0);
    }

    #[test]
    fn the_draw_depends_on_seed_and_account_only() {
        assert_eq!(draw(7, "usr_a"), draw(7, "usr_a"));
        assert_ne!(draw(7, "usr_a"), draw(8, "usr_a"));
        assert_ne!(draw(7, "usr_a"), draw(7, "usr_b"));
        assert!(draw(7, "usr_a") < FIFO_BASE);
    }

    #[test]
    fn settings_are_checked() {
        let input = |rate: Option<i64>, cap: Option<i64>| RoomInput {
            enabled: true,
            admission_rate_per_minute: rate,
            max_active_shoppers: cap,
            session_minutes: 15,
            opens_at: None,
        };
        let open = Timestamp::from_unix_ms(1_000_000);
        assert!(input(None, None).into_room(open, 1).is_err());
        assert!(input(Some(0), None).into_room(open, 1).is_err());
        assert!(input(None, Some(100)).into_room(open, 1).is_ok());
        let mut late = input(Some(10), None);
        late.opens_at = Some(Timestamp::from_unix_ms(2_000_000));
        assert!(
            late.into_room(open, 1).is_err(),
            "joining cannot open after the sale"
        );
    }
}
