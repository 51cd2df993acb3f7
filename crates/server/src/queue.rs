//! The waiting room's line, gate and shop sessions: in this process's memory for one instance
//! (lost on restart, like any single-process state: people rejoin and keep nothing), or in
//! Redis for many (a sorted set per line, the gate and sessions beside it, every change one
//! script call, so two instances can never admit the same place twice or skip one).
//! The rules (draw, gate, states) are `boxoffice_core::waiting`'s; this module keeps the state.

use crate::cluster::RedisLink;
use base64::Engine as _;
use boxoffice_core::Timestamp;
use boxoffice_core::ids::{ShowId, UserId};
use boxoffice_core::waiting::{FIFO_BASE, Gate, GateView, Room, draw};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One account's place: its 0-based rank once the line is drawn (`None` before the sale opens,
/// when the draw is still to come), and the shop session it was given, if any.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Place {
    pub joined: bool,
    pub rank: Option<u64>,
    pub session_until: Option<Timestamp>,
}

/// The line as a whole.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LineFigures {
    pub length: u64,
    pub admitted_through: u64,
    pub active: u64,
}

/// What the gate needs to know that the line does not.
#[derive(Clone, Copy, Debug)]
pub struct Conditions {
    pub now: Timestamp,
    pub on_sale_at: Timestamp,
    pub inventory_left: bool,
}

pub enum Lines {
    Memory(Mutex<HashMap<ShowId, MemoryLine>>),
    Redis(Arc<RedisLink>),
}

#[derive(Default)]
pub struct MemoryLine {
    /// Pre-queue joiners with their draw values, until the sale opens.
    drawn: Vec<(u64, UserId)>,
    drawn_members: std::collections::HashSet<UserId>,
    opened: bool,
    order: Vec<UserId>,
    ranks: HashMap<UserId, u64>,
    gate: Gate,
    sessions: HashMap<UserId, i64>,
}

impl MemoryLine {
    /// At the first look after the sale opens: the drawn order becomes the head of the line.
    fn open_if_due(&mut self, now: Timestamp, on_sale_at: Timestamp) {
        if self.opened || now < on_sale_at {
            return;
        }
        self.opened = true;
        let mut drawn = std::mem::take(&mut self.drawn);
        self.drawn_members.clear();
        drawn.sort();
        for (_, user) in drawn {
            self.ranks.insert(user.clone(), self.order.len() as u64);
            self.order.push(user);
        }
    }

    fn active(&self, now: Timestamp) -> u64 {
        self.sessions
            .values()
            .filter(|until| **until > now.unix_ms())
            .count() as u64
    }

    fn place(&self, user: &UserId) -> Option<Place> {
        let session_until = self
            .sessions
            .get(user)
            .map(|ms| Timestamp::from_unix_ms(*ms));
        if let Some(rank) = self.ranks.get(user) {
            return Some(Place {
                joined: true,
                rank: Some(*rank),
                session_until,
            });
        }
        self.drawn_members.contains(user).then_some(Place {
            joined: true,
            rank: None,
            session_until,
        })
    }
}

/// Joins: `KEYS` line, seq, gate; `ARGV` user, draw (or empty after opening), FIFO base.
/// Returns {rank or -1, length}. Once any instance has moved the gate the draw is closed, even if
/// this instance's clock still says "before opening": a late draw could otherwise slip in ahead
/// of someone already let in.
const JOIN: &str = r"
local line, seq, gate = KEYS[1], KEYS[2], KEYS[3]
local user, drawn = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', line, user) then
  if drawn ~= '' and redis.call('HEXISTS', gate, 'at') == 0 then
    redis.call('ZADD', line, tonumber(drawn), user)
  else
    redis.call('ZADD', line, tonumber(ARGV[3]) + redis.call('INCR', seq), user)
  end
end
return {redis.call('ZRANK', line, user), redis.call('ZCARD', line)}
";

/// Looks: `KEYS` line, gate, sessions; `ARGV` user, now. Returns {rank or -1, length, through,
/// active, session_until or -1}.
const LOOK: &str = r"
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
local through = tonumber(redis.call('HGET', KEYS[2], 'through') or '0')
local session = redis.call('ZSCORE', KEYS[3], ARGV[1])
return {rank or -1, redis.call('ZCARD', KEYS[1]), through,
  redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[2], '+inf'), session and tonumber(session) or -1}
";

/// Moves the gate (the rule of `Gate::advance`, in one atomic step): `KEYS` line, gate,
/// sessions; `ARGV` now, on_sale_at, rate, max_active (0: none), inventory_left (0/1).
/// Returns {admitted now, through, length, active}.
const ADVANCE: &str = r"
local now, opens = tonumber(ARGV[1]), tonumber(ARGV[2])
local rate, cap, left = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
local through = tonumber(redis.call('HGET', KEYS[2], 'through') or '0')
local length = redis.call('ZCARD', KEYS[1])
local active = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
if now < opens then return {0, through, length, active} end
local credit = tonumber(redis.call('HGET', KEYS[2], 'credit') or '0')
local at = tonumber(redis.call('HGET', KEYS[2], 'at') or '0')
if at == 0 then at = opens end
if now > at then
  credit = math.min(credit + rate * (now - at) / 60000, math.max(rate, 1))
  at = now
end
local allow = math.max(math.floor(credit), 0)
allow = math.min(allow, length - through)
if cap > 0 then allow = math.min(allow, math.max(cap - active, 0)) end
if not left then allow = 0 end
through = through + allow
credit = credit - allow
redis.call('HSET', KEYS[2], 'through', through, 'credit', tostring(credit), 'at', at)
return {allow, through, length, active}
";

/// Gives a session to an admitted place once: `KEYS` sessions; `ARGV` user, until. Returns the
/// session's end (the first one given, however often it is asked).
const SESSION: &str = r"
redis.call('ZADD', KEYS[1], 'NX', tonumber(ARGV[2]), ARGV[1])
return tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
";

fn joined_or_unavailable(joined: &[i64]) -> Result<(), LineUnavailable> {
    match joined.first() {
        Some(rank) if *rank >= 0 => Ok(()),
        _ => Err(LineUnavailable),
    }
}

fn keys(show: &ShowId) -> [String; 4] {
    [
        format!("bo:q:{show}:line"),
        format!("bo:q:{show}:gate"),
        format!("bo:q:{show}:sessions"),
        format!("bo:q:{show}:seq"),
    ]
}

/// The line needs Redis to be there; without it, a distributed waiting room cannot promise an
/// order, so it says so instead of inventing one.
#[derive(Debug, thiserror::Error)]
#[error("the waiting room is unavailable for a moment; keep your place by trying again")]
pub struct LineUnavailable;

impl Lines {
    pub fn new(redis: Option<Arc<RedisLink>>) -> Self {
        match redis {
            Some(redis) => Lines::Redis(redis),
            None => Lines::Memory(Mutex::default()),
        }
    }

    /// Takes a place in the line, or returns the one the account has.
    pub async fn join(
        &self,
        show: &ShowId,
        user: &UserId,
        room: &Room,
        when: Conditions,
    ) -> Result<Place, LineUnavailable> {
        let early = when.now < when.on_sale_at;
        match self {
            Lines::Memory(lines) => {
                let mut lines = lines.lock().expect("line lock");
                let line = lines.entry(show.clone()).or_default();
                line.open_if_due(when.now, when.on_sale_at);
                if let Some(place) = line.place(user) {
                    return Ok(place);
                }
                if early {
                    line.drawn
                        .push((draw(room.seed, user.as_str()), user.clone()));
                    line.drawn_members.insert(user.clone());
                } else {
                    line.ranks.insert(user.clone(), line.order.len() as u64);
                    line.order.push(user.clone());
                }
                Ok(line.place(user).expect("just joined"))
            }
            Lines::Redis(redis) => {
                let [line, gate, _, seq] = keys(show);
                let drawn = if early {
                    draw(room.seed, user.as_str()).to_string()
                } else {
                    String::new()
                };
                let base = FIFO_BASE.to_string();
                let joined: Vec<i64> = redis
                    .run(
                        &redis::Script::new(JOIN),
                        &[&line, &seq, &gate],
                        &[user.as_str(), &drawn, &base],
                    )
                    .await
                    .ok_or(LineUnavailable)?;
                joined_or_unavailable(&joined)?;
                Ok(self.look(show, user, when.now).await?.0)
            }
        }
    }

    /// The account's place (if it joined) and the line's figures.
    pub async fn look(
        &self,
        show: &ShowId,
        user: &UserId,
        now: Timestamp,
    ) -> Result<(Place, LineFigures), LineUnavailable> {
        match self {
            Lines::Memory(lines) => {
                let lines = lines.lock().expect("line lock");
                let Some(line) = lines.get(show) else {
                    return Ok((none(), LineFigures::default()));
                };
                let figures = LineFigures {
                    length: (line.order.len() + line.drawn.len()) as u64,
                    admitted_through: line.gate.admitted_through,
                    active: line.active(now),
                };
                let place = line.place(user).unwrap_or(none());
                Ok((place, figures))
            }
            Lines::Redis(redis) => {
                let [line, gate, sessions, _] = keys(show);
                let now_ms = now.unix_ms().to_string();
                let seen: Vec<i64> = redis
                    .run(
                        &redis::Script::new(LOOK),
                        &[&line, &gate, &sessions],
                        &[user.as_str(), &now_ms],
                    )
                    .await
                    .ok_or(LineUnavailable)?;
                let [rank, length, through, active, session] = seen[..] else {
                    return Err(LineUnavailable);
                };
                let place = Place {
                    joined: rank >= 0,
                    rank: (rank >= 0).then_some(rank as u64),
                    session_until: (session >= 0).then(|| Timestamp::from_unix_ms(session)),
                };
                let figures = LineFigures {
                    length: length as u64,
                    admitted_through: through as u64,
                    active: active as u64,
                };
                Ok((place, figures))
            }
        }
    }

    /// Lets in whom the gate allows now; how many, and the line's figures after.
    pub async fn advance(
        &self,
        show: &ShowId,
        room: &Room,
        when: Conditions,
    ) -> Result<(u64, LineFigures), LineUnavailable> {
        match self {
            Lines::Memory(lines) => {
                let mut lines = lines.lock().expect("line lock");
                let line = lines.entry(show.clone()).or_default();
                line.open_if_due(when.now, when.on_sale_at);
                let active = line.active(when.now);
                let admitted = line.gate.advance(GateView {
                    now: when.now,
                    on_sale_at: when.on_sale_at,
                    rate_per_minute: room.admission_rate_per_minute,
                    line_length: line.order.len() as u64,
                    active,
                    max_active: room.max_active_shoppers.map(|c| c as u64),
                    inventory_left: when.inventory_left,
                });
                let figures = LineFigures {
                    length: (line.order.len() + line.drawn.len()) as u64,
                    admitted_through: line.gate.admitted_through,
                    active,
                };
                Ok((admitted, figures))
            }
            Lines::Redis(redis) => {
                let [line, gate, sessions, _] = keys(show);
                let args = [
                    when.now.unix_ms().to_string(),
                    when.on_sale_at.unix_ms().to_string(),
                    room.admission_rate_per_minute.to_string(),
                    room.max_active_shoppers.unwrap_or(0).to_string(),
                    if when.inventory_left { "1" } else { "0" }.to_owned(),
                ];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let moved: Vec<i64> = redis
                    .run(
                        &redis::Script::new(ADVANCE),
                        &[&line, &gate, &sessions],
                        &args,
                    )
                    .await
                    .ok_or(LineUnavailable)?;
                let [admitted, through, length, active] = moved[..] else {
                    return Err(LineUnavailable);
                };
                let figures = LineFigures {
                    length: length as u64,
                    admitted_through: through as u64,
                    active: active as u64,
                };
                Ok((admitted as u64, figures))
            }
        }
    }

    /// The admitted account's shop session: given once, its end never moves.
    pub async fn session(
        &self,
        show: &ShowId,
        user: &UserId,
        until: Timestamp,
    ) -> Result<Timestamp, LineUnavailable> {
        match self {
            Lines::Memory(lines) => {
                let mut lines = lines.lock().expect("line lock");
                let line = lines.entry(show.clone()).or_default();
                let ms = *line.sessions.entry(user.clone()).or_insert(until.unix_ms());
                Ok(Timestamp::from_unix_ms(ms))
            }
            Lines::Redis(redis) => {
                let [_, _, sessions, _] = keys(show);
                let until = until.unix_ms().to_string();
                let ms: i64 = redis
                    .run(
                        &redis::Script::new(SESSION),
                        &[&sessions],
                        &[user.as_str(), &until],
                    )
                    .await
                    .ok_or(LineUnavailable)?;
                Ok(Timestamp::from_unix_ms(ms))
            }
        }
    }
}

fn none() -> Place {
    Place {
        joined: false,
        rank: None,
        session_until: None,
    }
}

/// Signed proof that an account was let into a show's shop, valid until its session ends.
#[derive(Clone)]
pub struct Admissions {
    key: Arc<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct AdmissionClaims {
    user: String,
    show: String,
    until_ms: i64,
}

impl Admissions {
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: Arc::new(key.to_vec()),
        }
    }

    fn tag(&self, payload: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(b"admission.");
        mac.update(payload.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    pub fn issue(&self, user: &UserId, show: &ShowId, until: Timestamp) -> String {
        let claims = AdmissionClaims {
            user: user.to_string(),
            show: show.to_string(),
            until_ms: until.unix_ms(),
        };
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let tag = self.tag(&payload);
        format!("{payload}.{tag}")
    }

    /// Whether `token` admits `user` to `show` at `now`.
    pub fn admits(&self, token: &str, user: &UserId, show: &ShowId, now: Timestamp) -> bool {
        let Some((payload, tag)) = token.split_once('.') else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(b"admission.");
        mac.update(payload.as_bytes());
        let Ok(sent) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        if mac.verify_slice(&sent).is_err() {
            return false;
        }
        let Some(claims) = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<AdmissionClaims>(&bytes).ok())
        else {
            return false;
        };
        claims.user == user.as_str()
            && claims.show == show.as_str()
            && claims.until_ms > now.unix_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_tokens_bind_account_show_and_time() {
        let admissions = Admissions::new(b"key");
        let (alice, bob) = (UserId::generate(), UserId::generate());
        let (show, other) = (ShowId::generate(), ShowId::generate());
        let until = Timestamp::from_unix_ms(10_000);
        let token = admissions.issue(&alice, &show, until);
        let before = Timestamp::from_unix_ms(9_999);
        assert!(admissions.admits(&token, &alice, &show, before));
        assert!(
            !admissions.admits(&token, &bob, &show, before),
            "someone else's"
        );
        assert!(
            !admissions.admits(&token, &alice, &other, before),
            "another show"
        );
        assert!(!admissions.admits(&token, &alice, &show, until), "expired");
        assert!(!Admissions::new(b"other key").admits(&token, &alice, &show, before));
        let mut forged = token.clone();
        forged.replace_range(3..4, if &token[3..4] == "A" { "B" } else { "A" });
        assert!(
            !admissions.admits(&forged, &alice, &show, before),
            "tampered"
        );
    }
}
