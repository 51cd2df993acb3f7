//! Live seat maps: what changed in a show, numbered per show, delivered to every viewer on every
//! instance. A change is published once; with Redis, one script call numbers it (`INCR`) and
//! publishes it, so every instance sees every show's changes in one order; without Redis this
//! process numbers and delivers its own. Each show keeps a short replay buffer for SSE resume.
//!
//! Viewers read from a bounded broadcast ring shared by all of a show's viewers: one who falls
//! behind by a full ring is cut off (and re-fetches when it reconnects), so a slow or dead
//! consumer costs the server nothing beyond the ring. Availability per category is coalesced:
//! at most one `availability` event per show per tick, however many seats change. Changes that
//! follow a send closely are held back for the show's batch interval and then handed over
//! together as one WebSocket message (a JSON array of the events in order), so a busy show
//! costs each viewer one wake-up and one write per batch rather than one per change: the
//! writes, not the changes, are what a crowd of viewers costs. The batch interval grows to
//! half again the time the last delivery took to reach nine in ten of the show's viewers, so
//! a machine that writes slowly batches more instead of queueing change behind change.

use crate::cluster::RedisLink;
use boxoffice_core::clock::{Clock, SystemClock, Timestamp};
use boxoffice_core::filter::Taken;
use boxoffice_core::ids::{AreaId, SeatId, ShowId};
use boxoffice_core::inventory::{AreaView, CategoryAvailability};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Frames a viewer may fall behind before it is dropped.
const RING: usize = 256;
/// Frames kept per show for `Last-Event-ID` resume.
const REPLAY: usize = 512;
/// The longest a slow spread makes changes wait for the next batch.
const MAX_BATCH: Duration = Duration::from_secs(1);
/// The batch interval as a multiple of the last spread: at 1.0 the server writes to its viewers
/// all the time and requests queue behind the writes; at 2.0 changes wait longer than they
/// save (10,000 viewers here: p99 420–650 ms at 1.0, 280–320 at 1.5, 380–400 at 2.0).
const SPREAD_MARGIN: f64 = 1.5;
/// A show nobody watches and nothing happened to for this long is forgotten.
const IDLE: Duration = Duration::from_secs(120);
/// Where instances publish a show's changes: `bo:show:{show_id}`.
pub const CHANNEL_PREFIX: &str = "bo:show:";
/// Where instances announce that venues, events or shows changed (listings are stale).
pub const CATALOG_CHANNEL: &str = "bo:catalog";
/// Where instances announce that sessions, accounts or memberships changed.
pub const SESSIONS_CHANNEL: &str = "bo:sessions";

/// What happened in a show, as viewers see it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    SeatHeld {
        seat_ids: Vec<SeatId>,
    },
    SeatReleased {
        seat_ids: Vec<SeatId>,
    },
    SeatSold {
        seat_ids: Vec<SeatId>,
    },
    /// Counts per category and per standing area after recent changes.
    Availability {
        categories: Vec<CategoryAvailability>,
        areas: Vec<AreaFigures>,
    },
    /// Prices, limits or the sale window changed: re-fetch the show.
    ShowChanged,
    ShowCancelled,
    /// The waiting room let more people in: a place `n` (1-based number) is in once
    /// `n <= admitted_through`.
    QueuePosition {
        admitted_through: u64,
        line_length: u64,
        sold_out: bool,
    },
    /// Someone came in through the door: how many are in now.
    CheckedIn {
        checked_in: i64,
    },
    /// A waitlist entry was offered places (as a hold in its owner's name).
    WaitlistOffered {
        entry_id: boxoffice_core::ids::WaitlistEntryId,
    },
    /// Changes to the show may have been missed (the instance that saved them stopped before
    /// telling viewers, and the outbox dispatcher noticed): a fresh snapshot follows.
    Resync,
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Change::SeatHeld { .. } => "seat_held",
            Change::SeatReleased { .. } => "seat_released",
            Change::SeatSold { .. } => "seat_sold",
            Change::Availability { .. } => "availability",
            Change::ShowChanged => "show_changed",
            Change::ShowCancelled => "show_cancelled",
            Change::QueuePosition { .. } => "queue_position",
            Change::CheckedIn { .. } => "checked_in",
            Change::WaitlistOffered { .. } => "waitlist_offered",
            Change::Resync => "resync",
        }
    }

    /// Whether counts moved, so an `availability` event should follow.
    fn moves_counts(&self) -> bool {
        !matches!(
            self,
            Change::Availability { .. }
                | Change::QueuePosition { .. }
                | Change::CheckedIn { .. }
                | Change::WaitlistOffered { .. }
        )
    }

    fn names_no_seat(&self) -> bool {
        match self {
            Change::SeatHeld { seat_ids }
            | Change::SeatReleased { seat_ids }
            | Change::SeatSold { seat_ids } => seat_ids.is_empty(),
            _ => false,
        }
    }

    /// What it may have freed: what the filter learned about those seats is stale.
    pub fn freed(&self) -> Freed<'_> {
        match self {
            Change::SeatReleased { seat_ids } => Freed::Seats(seat_ids),
            Change::ShowChanged | Change::ShowCancelled | Change::Resync => Freed::Anything,
            _ => Freed::Nothing,
        }
    }

    /// The seats it took, and how.
    pub fn taken(&self) -> Option<(&[SeatId], Taken)> {
        match self {
            Change::SeatHeld { seat_ids } => Some((seat_ids, Taken::Held)),
            Change::SeatSold { seat_ids } => Some((seat_ids, Taken::Sold)),
            _ => None,
        }
    }
}

/// What a change of a show may have freed.
#[derive(Clone, Copy, Debug)]
pub enum Freed<'a> {
    Nothing,
    /// These seats, and places that may have come back with them.
    Seats(&'a [SeatId]),
    /// Anything: not known seat by seat.
    Anything,
}

#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AreaFigures {
    pub area_id: AreaId,
    pub capacity: i64,
    pub held: i64,
    pub sold: i64,
    pub free: i64,
}

impl From<&AreaView> for AreaFigures {
    fn from(area: &AreaView) -> Self {
        Self {
            area_id: area.id.clone(),
            capacity: area.capacity,
            held: area.held,
            sold: area.sold,
            free: area.free,
        }
    }
}

/// One message to viewers, serialized once and shared by all of them.
#[derive(Clone, Debug)]
pub struct Frame {
    pub seq: u64,
    pub kind: Arc<str>,
    /// A whole seat map: replaces what the viewer has, whatever its sequence.
    pub snapshot: bool,
    pub json: Utf8Bytes,
}

/// What one send hands a show's viewers: changes in order (or one snapshot), with the
/// WebSocket message that carries them, serialized once for every viewer.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub frames: Arc<[Frame]>,
    /// One event's JSON object, or several events as one JSON array.
    pub message: Utf8Bytes,
    tally: Arc<Tally>,
}

/// How far one delivery has spread: once nine in ten of the viewers it was sent to have taken
/// it, the time that took is the show's spread (a few stalled viewers do not hold it up).
#[derive(Debug)]
struct Tally {
    sent_at: Instant,
    owed: usize,
    taken: AtomicUsize,
    spread: Arc<AtomicU64>,
}

impl Delivery {
    /// A viewer has taken this delivery into its own queue.
    pub fn taken(&self) {
        let tally = &self.tally;
        if tally.taken.fetch_add(1, Ordering::Relaxed) + 1 == tally.owed {
            let spread = tally.sent_at.elapsed();
            tally
                .spread
                .store(spread.as_micros() as u64, Ordering::Relaxed);
            crate::metrics::live_spread(spread);
        }
    }

    fn of(frames: Vec<Frame>, viewers: usize, spread: &Arc<AtomicU64>) -> Self {
        let message = match frames.as_slice() {
            [one] => one.json.clone(),
            many => {
                let length = many.iter().map(|f| f.json.len() + 1).sum::<usize>() + 1;
                let mut array = String::with_capacity(length);
                array.push('[');
                for (i, frame) in many.iter().enumerate() {
                    if i > 0 {
                        array.push(',');
                    }
                    array.push_str(frame.json.as_str());
                }
                array.push(']');
                Utf8Bytes::from(array)
            }
        };
        Self {
            frames: frames.into(),
            message,
            tally: Arc::new(Tally {
                sent_at: Instant::now(),
                owed: (viewers * 9).div_ceil(10),
                taken: AtomicUsize::new(0),
                spread: spread.clone(),
            }),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    show_id: &'a ShowId,
    /// When this server announced the change: right after committing it (or, for a change an
    /// instance stopped before announcing, when the outbox dispatcher made up for it). Viewers
    /// can tell how far behind they are; the benchmark measures commit-to-receipt from it.
    announced_at: Timestamp,
    #[serde(flatten)]
    change: &'a Change,
}

struct Channel {
    sender: broadcast::Sender<Delivery>,
    /// The last number given to a change.
    last_seq: u64,
    /// The last number handed to the viewers (`pending` holds the ones in between).
    sent_seq: u64,
    replay: VecDeque<Frame>,
    touched: Instant,
    /// Changes numbered but held back until a batch interval has passed since the last send,
    /// so a burst reaches each viewer as one wake-up and one write instead of one per change.
    pending: Vec<Frame>,
    last_sent: Option<Instant>,
    flush_armed: bool,
    /// How long the last delivery took to reach most viewers, in microseconds.
    spread: Arc<AtomicU64>,
}

impl Channel {
    fn new() -> Self {
        Self {
            sender: broadcast::channel(RING).0,
            last_seq: 0,
            sent_seq: 0,
            replay: VecDeque::new(),
            touched: Instant::now(),
            pending: Vec::new(),
            last_sent: None,
            flush_armed: false,
            spread: Arc::new(AtomicU64::new(0)),
        }
    }

    fn deliver(&self, frames: Vec<Frame>) {
        let delivery = Delivery::of(frames, self.sender.receiver_count(), &self.spread);
        let _ = self.sender.send(delivery);
    }

    /// How long changes after a send are held back: the configured share for this audience,
    /// or half again the last delivery's spread when writing to the viewers takes longer (up
    /// to a second), so a show whose viewers are still being written to batches instead.
    fn batch(&self, limits: &LiveLimits) -> Duration {
        let viewers = self.sender.receiver_count() as f64;
        let share = (viewers / limits.full_batch_viewers.max(1) as f64).min(1.0);
        let spread = Duration::from_micros(self.spread.load(Ordering::Relaxed));
        limits
            .batch
            .mul_f64(share)
            .max(spread.mul_f64(SPREAD_MARGIN).min(MAX_BATCH))
    }

    /// Hands every held-back change to the viewers, in one delivery.
    fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if let Some(last) = pending.last() {
            self.sent_seq = last.seq;
            self.deliver(pending);
        }
        self.last_sent = Some(Instant::now());
        self.flush_armed = false;
    }
}

type Channels = Arc<Mutex<HashMap<ShowId, Channel>>>;

/// Limits on live connections, so a crowd of viewers cannot exhaust the process.
#[derive(Clone, Debug)]
pub struct LiveLimits {
    /// WebSocket and SSE connections at once.
    pub max_connections: usize,
    /// Shows one WebSocket may follow at once.
    pub max_subscriptions: usize,
    pub heartbeat: Duration,
    /// A write to a viewer that takes longer than this drops the viewer.
    pub write_timeout: Duration,
    /// How often coalesced availability and pending snapshots go out.
    pub tick: Duration,
    /// A show's availability goes out at most this often: counting a big hall costs the
    /// database milliseconds, and seat changes reach viewers one by one meanwhile.
    pub availability_every: Duration,
    /// Changes to a show within this long of its last send go out together when it has
    /// passed (the first of a quiet show goes out at once): with thousands of viewers, one
    /// write per viewer per batch instead of one per change.
    pub batch: Duration,
    /// The viewers of a show at which changes are held back for the whole `batch`; a show
    /// with fewer holds them back proportionally less (sending a change costs in proportion
    /// to its viewers, so a small audience gets its changes sooner).
    pub full_batch_viewers: usize,
}

impl Default for LiveLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_subscriptions: 16,
            heartbeat: Duration::from_secs(15),
            write_timeout: Duration::from_secs(10),
            tick: Duration::from_millis(250),
            availability_every: Duration::from_secs(1),
            batch: Duration::from_millis(100),
            full_batch_viewers: 10_000,
        }
    }
}

/// Held while a live connection is open; dropping it frees the place.
pub struct ConnectionPermit {
    live: Arc<AtomicUsize>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let now = self.live.fetch_sub(1, Ordering::Relaxed) - 1;
        crate::metrics::live_connections(now);
    }
}

/// Shows whose counts moved, and when each last had its availability sent.
#[derive(Default)]
struct CountsOwed {
    moved: HashSet<ShowId>,
    sent_at: HashMap<ShowId, Instant>,
}

impl CountsOwed {
    /// The moved shows whose last availability is at least `every` old (or never went out);
    /// the others stay owed until then.
    fn take_due(&mut self, now: Instant, every: Duration) -> Vec<ShowId> {
        self.sent_at.retain(|_, at| now.duration_since(*at) < every);
        let due: Vec<ShowId> = self
            .moved
            .iter()
            .filter(|show| !self.sent_at.contains_key(*show))
            .cloned()
            .collect();
        for show in &due {
            self.moved.remove(show);
            self.sent_at.insert(show.clone(), now);
        }
        due
    }
}

pub struct Live {
    channels: Channels,
    /// Shows whose counts moved here and are owed an availability.
    dirty: Mutex<CountsOwed>,
    /// Shows whose viewers here may have missed changes and need a fresh snapshot.
    stale: Mutex<HashSet<ShowId>>,
    redis: Option<Arc<RedisLink>>,
    connections: Arc<AtomicUsize>,
    pub limits: LiveLimits,
}

const PUBLISH: &str = r"
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], 604800000)
redis.call('PUBLISH', KEYS[2], seq .. ' ' .. ARGV[1])
return seq
";

impl Live {
    pub fn new(redis: Option<Arc<RedisLink>>, limits: LiveLimits) -> Self {
        Self {
            channels: Arc::new(Mutex::new(HashMap::new())),
            dirty: Mutex::new(CountsOwed::default()),
            stale: Mutex::new(HashSet::new()),
            redis,
            connections: Arc::new(AtomicUsize::new(0)),
            limits,
        }
    }

    pub fn distributed(&self) -> bool {
        self.redis.is_some()
    }

    /// A place for one more live connection, or `None` at the limit.
    pub fn admit(&self) -> Option<ConnectionPermit> {
        let admitted = self
            .connections
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.limits.max_connections).then_some(n + 1)
            });
        match admitted {
            Ok(before) => {
                crate::metrics::live_connections(before + 1);
                Some(ConnectionPermit {
                    live: self.connections.clone(),
                })
            }
            Err(_) => None,
        }
    }

    /// Starts following a show: frames after the returned sequence arrive on the receiver.
    pub fn subscribe(&self, show: &ShowId) -> (broadcast::Receiver<Delivery>, u64) {
        let mut channels = self.channels.lock().expect("live lock");
        let channel = channels.entry(show.clone()).or_insert_with(Channel::new);
        channel.touched = Instant::now();
        (channel.sender.subscribe(), channel.sent_seq)
    }

    /// The frames after `seq`, if this process still has all of them.
    pub fn since(&self, show: &ShowId, seq: u64) -> Option<Vec<Frame>> {
        let channels = self.channels.lock().expect("live lock");
        let channel = channels.get(show)?;
        if seq > channel.last_seq {
            return None;
        }
        if seq == channel.last_seq {
            return Some(Vec::new());
        }
        let first = channel.replay.front()?.seq;
        if first > seq + 1 {
            return None;
        }
        Some(
            channel
                .replay
                .iter()
                .filter(|f| f.seq > seq && !f.snapshot)
                .cloned()
                .collect(),
        )
    }

    /// Announces a change to every viewer of the show on every instance; `false` when it could
    /// not be sent to the other instances (Redis is away).
    pub async fn publish(&self, show: &ShowId, change: Change) -> bool {
        if change.moves_counts() {
            self.dirty
                .lock()
                .expect("live lock")
                .moved
                .insert(show.clone());
        }
        if change.names_no_seat() {
            // Standing places only: the coalesced availability tells it.
            return true;
        }
        let body = serde_json::to_string(&Envelope {
            show_id: show,
            // The wall clock, not the app's (tests move that one): viewers compare it with theirs.
            announced_at: SystemClock.now(),
            change: &change,
        })
        .expect("changes serialize");
        if let Some(redis) = &self.redis {
            let script = redis::Script::new(PUBLISH);
            let seq_key = format!("bo:seq:{show}");
            let channel = format!("{CHANNEL_PREFIX}{show}");
            let message = format!("{} {}", change.kind(), body);
            let published: Option<u64> =
                redis.run(&script, &[&seq_key, &channel], &[&message]).await;
            if published.is_none() {
                // Not numbered, so not sent as an event; viewers here get a fresh snapshot on the
                // next tick instead, and viewers elsewhere when Redis is back.
                crate::metrics::live_publish_failed();
                self.stale.lock().expect("live lock").insert(show.clone());
                return false;
            }
            return true;
        }
        self.deliver(show, None, change.kind(), &body);
        true
    }

    /// Tells the other instances something on `channel` changed (this one already knows).
    pub async fn publish_notice(&self, channel: &str) {
        if let Some(redis) = &self.redis {
            let script = redis::Script::new("return redis.call('PUBLISH', KEYS[1], ARGV[1])");
            let _: Option<i64> = redis.run(&script, &[channel], &["changed"]).await;
        }
    }

    /// A message from the Redis channel: `{seq} {kind} {json}`.
    pub fn deliver_published(&self, show: &ShowId, message: &str) -> Option<&'static str> {
        let (seq, rest) = message.split_once(' ')?;
        let (kind, body) = rest.split_once(' ')?;
        let kind = KINDS.iter().find(|k| **k == kind)?;
        self.deliver(show, Some(seq.parse().ok()?), kind, body);
        Some(kind)
    }

    /// Delivers a change to the show's viewers here, numbered by Redis or, with `None`, by this
    /// process (under the same lock, so two local changes never share a number).
    fn deliver(&self, show: &ShowId, seq: Option<u64>, kind: &'static str, body: &str) {
        let mut channels = self.channels.lock().expect("live lock");
        let channel = channels.entry(show.clone()).or_insert_with(Channel::new);
        let seq = seq.unwrap_or(channel.last_seq + 1);
        let json = format!("{{\"seq\":{seq},{}", body.strip_prefix('{').unwrap_or(body));
        let frame = Frame {
            seq,
            kind: Arc::from(kind),
            snapshot: false,
            json: Utf8Bytes::from(json),
        };
        if seq <= channel.last_seq {
            // The numbering restarted (Redis lost its keys): history before is not comparable.
            channel.replay.clear();
            self.stale.lock().expect("live lock").insert(show.clone());
        }
        channel.last_seq = seq;
        channel.touched = Instant::now();
        channel.replay.push_back(frame.clone());
        while channel.replay.len() > REPLAY {
            channel.replay.pop_front();
        }
        let batch = channel.batch(&self.limits);
        let quiet =
            channel.pending.is_empty() && channel.last_sent.is_none_or(|at| at.elapsed() >= batch);
        match tokio::runtime::Handle::try_current() {
            // Held back; the first change held arms one flush for when the batch has passed.
            Ok(runtime) if !quiet => {
                channel.pending.push(frame);
                if !channel.flush_armed {
                    channel.flush_armed = true;
                    let wait = channel
                        .last_sent
                        .map_or(Duration::ZERO, |at| batch.saturating_sub(at.elapsed()));
                    let (channels, show) = (self.channels.clone(), show.clone());
                    runtime.spawn(async move {
                        tokio::time::sleep(wait).await;
                        if let Some(channel) = channels.lock().expect("live lock").get_mut(&show) {
                            channel.flush();
                        }
                    });
                }
            }
            // A quiet show, or no runtime to flush later: at once, with anything held.
            _ => {
                channel.pending.push(frame);
                channel.flush();
            }
        }
        drop(channels);
        if kind == "resync" {
            self.stale.lock().expect("live lock").insert(show.clone());
        }
        crate::metrics::live_event(kind);
    }

    /// Sends a whole seat map to the show's viewers here.
    pub fn deliver_snapshot(&self, show: &ShowId, seat_map: &[u8]) {
        let mut channels = self.channels.lock().expect("live lock");
        let Some(channel) = channels.get_mut(show) else {
            return;
        };
        channel.flush();
        let frame = snapshot_frame(show, channel.sent_seq, seat_map);
        channel.deliver(vec![frame]);
    }

    /// Every show somebody here watches needs a fresh snapshot (the link to other instances was
    /// broken, so changes made there may have been missed).
    pub fn all_stale(&self) {
        let channels = self.channels.lock().expect("live lock");
        let mut stale = self.stale.lock().expect("live lock");
        stale.extend(
            channels
                .iter()
                .filter(|(_, c)| c.sender.receiver_count() > 0)
                .map(|(show, _)| show.clone()),
        );
    }

    /// Takes the shows owed an availability now and those needing snapshots since the last
    /// tick, and forgets shows nobody watches any more. Without other instances, a show nobody
    /// here watches is owed nothing (a new viewer starts from a snapshot); with them, its
    /// viewers may be elsewhere.
    pub fn take_pending(&self) -> (Vec<ShowId>, Vec<ShowId>) {
        let due = self
            .dirty
            .lock()
            .expect("live lock")
            .take_due(Instant::now(), self.limits.availability_every);
        let stale: Vec<_> = self.stale.lock().expect("live lock").drain().collect();
        let mut channels = self.channels.lock().expect("live lock");
        channels.retain(|_, c| c.sender.receiver_count() > 0 || c.touched.elapsed() < IDLE);
        let watched = |show: &ShowId| {
            channels
                .get(show)
                .is_some_and(|c| c.sender.receiver_count() > 0)
        };
        let due = due
            .into_iter()
            .filter(|s| self.distributed() || watched(s))
            .collect();
        let stale = stale.into_iter().filter(|s| watched(s)).collect();
        (due, stale)
    }
}

const KINDS: [&str; 10] = [
    "seat_held",
    "seat_released",
    "seat_sold",
    "availability",
    "show_changed",
    "show_cancelled",
    "queue_position",
    "checked_in",
    "waitlist_offered",
    "resync",
];

/// `{"seq":N,"type":"snapshot","show_id":…,"seat_map":{…}}`; the seat map is already JSON.
pub fn snapshot_frame(show: &ShowId, seq: u64, seat_map: &[u8]) -> Frame {
    let map = String::from_utf8_lossy(seat_map);
    Frame {
        seq,
        kind: Arc::from("snapshot"),
        snapshot: true,
        json: Utf8Bytes::from(format!(
            "{{\"seq\":{seq},\"type\":\"snapshot\",\"show_id\":\"{show}\",\"seat_map\":{map}}}"
        )),
    }
}

/// The live layer's background work until shutdown: following Redis (distributed mode), and
/// every tick sending coalesced availability and the snapshots viewers here are owed.
pub async fn run(app: crate::state::AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let follower = app
        .redis
        .clone()
        .map(|redis| tokio::spawn(follow_redis(app.clone(), redis)));
    let mut tick = tokio::time::interval(app.live.limits.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        let (dirty, stale) = app.live.take_pending();
        for show in dirty {
            if let Some(change) = availability(&app, &show).await {
                app.live.publish(&show, change).await;
            }
        }
        for show in stale {
            app.forget(&show, Freed::Anything);
            if let Ok(seat_map) = crate::routes::catalog::seat_map_json(&app, &show).await {
                app.live.deliver_snapshot(&show, &seat_map);
            }
        }
        app.limiter.tidy();
        crate::waiting_room::WaitingRooms::tick(&app).await;
    }
    if let Some(follower) = follower {
        follower.abort();
    }
}

async fn availability(app: &crate::state::AppState, show: &ShowId) -> Option<Change> {
    let found = app.store.show(show).await.ok()??;
    let (categories, areas) = app.store.availability(&found, app.clock.now()).await.ok()?;
    Some(Change::Availability {
        categories,
        areas: areas.iter().map(AreaFigures::from).collect(),
    })
}

/// What a change published through Redis (by any instance, this one too) means for this
/// process's memory.
#[derive(Debug, PartialEq)]
enum Heard {
    /// Counts only (availability, queue positions): nothing cached is out of date.
    Counts,
    /// The show's reads are out of date; nothing was freed.
    Changed,
    /// These seats were freed, and places may have come back with them.
    Freed(Vec<SeatId>),
    /// Anything may have been freed: not known seat by seat.
    FreedAnything,
    /// These seats were taken.
    Taken(Vec<SeatId>, Taken),
}

impl Heard {
    /// From the change's kind and its JSON (the envelope `publish` wrote).
    fn of(kind: &str, body: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Seats {
            seat_ids: Vec<SeatId>,
        }
        let seats = || serde_json::from_str::<Seats>(body).ok().map(|s| s.seat_ids);
        match kind {
            "availability" | "queue_position" => Heard::Counts,
            // A release whose seats cannot be read frees anything, to be safe.
            "seat_released" => seats().map_or(Heard::FreedAnything, Heard::Freed),
            "show_changed" | "show_cancelled" | "resync" => Heard::FreedAnything,
            "seat_held" => seats().map_or(Heard::Changed, |ids| Heard::Taken(ids, Taken::Held)),
            "seat_sold" => seats().map_or(Heard::Changed, |ids| Heard::Taken(ids, Taken::Sold)),
            _ => Heard::Changed,
        }
    }
}

/// Receives every instance's changes from Redis and hands them to viewers here; reconnects
/// after Redis goes away, and then owes its viewers snapshots (changes may have been missed).
async fn follow_redis(app: crate::state::AppState, redis: Arc<RedisLink>) {
    use futures_util::StreamExt;
    loop {
        if let Ok(mut pubsub) = redis.client().get_async_pubsub().await
            && pubsub
                .psubscribe(format!("{CHANNEL_PREFIX}*"))
                .await
                .is_ok()
            && pubsub.subscribe(CATALOG_CHANNEL).await.is_ok()
            && pubsub.subscribe(SESSIONS_CHANNEL).await.is_ok()
        {
            tracing::info!("following live changes through redis");
            // Whatever changed while the link was down was missed.
            app.live.all_stale();
            app.reads.invalidate(&crate::cache::Scope::Catalog);
            app.sessions.clear();
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                if message.get_channel_name() == CATALOG_CHANNEL {
                    app.reads.invalidate(&crate::cache::Scope::Catalog);
                    continue;
                }
                if message.get_channel_name() == SESSIONS_CHANNEL {
                    app.sessions.clear();
                    continue;
                }
                let Some(show) = message
                    .get_channel_name()
                    .strip_prefix(CHANNEL_PREFIX)
                    .and_then(ShowId::parse)
                else {
                    continue;
                };
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                // Caches first, so a viewer who sees the change and re-reads sees it too.
                let kind = payload.split(' ').nth(1).unwrap_or_default();
                if kind == "show_changed" || kind == "show_cancelled" {
                    app.waiting.forget(&show);
                }
                let body = payload.splitn(3, ' ').nth(2).unwrap_or_default();
                match Heard::of(kind, body) {
                    Heard::Counts => {}
                    Heard::Changed => app.forget(&show, Freed::Nothing),
                    Heard::Freed(seat_ids) => app.forget(&show, Freed::Seats(&seat_ids)),
                    Heard::FreedAnything => app.forget(&show, Freed::Anything),
                    Heard::Taken(seat_ids, how) => {
                        app.forget(&show, Freed::Nothing);
                        app.seen_taken(&show, Some((&seat_ids, how)));
                    }
                }
                app.live.deliver_published(&show, &payload);
            }
            tracing::warn!("lost the redis subscription; reconnecting");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs_of(delivery: &Delivery) -> Vec<u64> {
        delivery.frames.iter().map(|f| f.seq).collect()
    }

    /// A live layer whose shows hold changes back for `batch`, whatever their audience.
    fn batching(batch: Duration) -> Live {
        Live::new(
            None,
            LiveLimits {
                batch,
                full_batch_viewers: 1,
                ..Default::default()
            },
        )
    }

    #[test]
    fn what_another_instance_published_is_read_seat_by_seat() {
        let show = ShowId::generate();
        let seats = vec![SeatId::generate(), SeatId::generate()];
        let published = |change: Change| {
            let body = serde_json::to_string(&Envelope {
                show_id: &show,
                announced_at: Timestamp::from_unix_ms(0),
                change: &change,
            })
            .unwrap();
            Heard::of(change.kind(), &body)
        };
        assert_eq!(
            published(Change::SeatHeld {
                seat_ids: seats.clone()
            }),
            Heard::Taken(seats.clone(), Taken::Held)
        );
        assert_eq!(
            published(Change::SeatSold {
                seat_ids: seats.clone()
            }),
            Heard::Taken(seats.clone(), Taken::Sold)
        );
        assert_eq!(
            published(Change::SeatReleased {
                seat_ids: seats.clone()
            }),
            Heard::Freed(seats)
        );
        assert_eq!(published(Change::ShowChanged), Heard::FreedAnything);
        assert_eq!(published(Change::Resync), Heard::FreedAnything);
        assert_eq!(
            Heard::of("seat_released", "{not json"),
            Heard::FreedAnything,
            "a release that cannot be read frees anything"
        );
        assert_eq!(Heard::of("seat_sold", "{}"), Heard::Changed);
        assert_eq!(Heard::of("availability", "{}"), Heard::Counts);
    }

    #[tokio::test]
    async fn changes_are_numbered_per_show_and_replayable() {
        // Each change at once (no batching), to read them one by one.
        let live = batching(Duration::ZERO);
        let (a, b) = (ShowId::generate(), ShowId::generate());
        let (mut viewer, start) = live.subscribe(&a);
        assert_eq!(start, 0);
        let before = SystemClock.now();
        let seat = SeatId::generate();
        for _ in 0..3 {
            live.publish(
                &a,
                Change::SeatHeld {
                    seat_ids: vec![seat.clone()],
                },
            )
            .await;
        }
        live.publish(&b, Change::ShowChanged).await;
        let seqs: Vec<u64> = (0..3)
            .flat_map(|_| seqs_of(&viewer.try_recv().unwrap()))
            .collect();
        assert_eq!(seqs, [1, 2, 3], "show b's change has its own numbering");
        assert!(viewer.try_recv().is_err());
        let frame = live.since(&a, 1).unwrap();
        assert_eq!(frame.iter().map(|f| f.seq).collect::<Vec<_>>(), [2, 3]);
        let json: serde_json::Value = serde_json::from_str(frame[0].json.as_str()).unwrap();
        assert_eq!(json["type"], "seat_held");
        assert_eq!(json["seq"], 2);
        assert_eq!(json["show_id"], a.to_string());
        assert_eq!(json["seat_ids"][0], seat.to_string());
        let announced = json["announced_at"].as_str().unwrap();
        let announced = Timestamp::parse_rfc3339(announced).unwrap();
        assert!(
            before <= announced && announced <= SystemClock.now(),
            "stamped when published: {announced:?}"
        );
        assert!(
            live.since(&a, 7).is_none(),
            "a future sequence cannot be resumed"
        );
    }

    #[tokio::test]
    async fn availability_is_owed_once_per_interval_and_only_for_shows_watched_here() {
        let every = Duration::from_secs(3600);
        let live = Live::new(
            None,
            LiveLimits {
                availability_every: every,
                ..Default::default()
            },
        );
        let (watched, unwatched) = (ShowId::generate(), ShowId::generate());
        let (_viewer, _) = live.subscribe(&watched);
        let held = || Change::SeatHeld {
            seat_ids: vec![SeatId::generate()],
        };
        live.publish(&watched, held()).await;
        live.publish(&unwatched, held()).await;
        assert_eq!(
            live.take_pending().0,
            std::slice::from_ref(&watched),
            "the first change is owed at once, and only where someone watches"
        );
        live.publish(&watched, held()).await;
        assert!(
            live.take_pending().0.is_empty(),
            "within the interval the counts wait"
        );
        let later = Instant::now() + every;
        assert_eq!(
            live.dirty.lock().unwrap().take_due(later, every),
            [watched],
            "and are still owed when it has passed"
        );
        assert!(live.dirty.lock().unwrap().take_due(later, every).is_empty());
    }

    #[tokio::test]
    async fn a_viewer_that_falls_a_ring_behind_is_cut_off() {
        // Each change at once (no batching), to read them one by one.
        let live = batching(Duration::ZERO);
        let show = ShowId::generate();
        let (mut slow, _) = live.subscribe(&show);
        for _ in 0..RING + 10 {
            live.publish(&show, Change::ShowChanged).await;
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
        assert!(live.since(&show, 0).unwrap().len() == RING + 10);
    }

    #[tokio::test]
    async fn changes_right_after_a_send_are_held_back_and_go_out_together_in_order() {
        let live = batching(Duration::from_secs(3600));
        let show = ShowId::generate();
        let (mut early, _) = live.subscribe(&show);
        live.publish(&show, Change::ShowChanged).await;
        let first = early.try_recv().unwrap();
        assert_eq!(
            seqs_of(&first),
            [1],
            "the first change of a quiet show goes out at once"
        );
        assert_eq!(
            first.message, first.frames[0].json,
            "alone, a change is its own message"
        );
        live.publish(&show, Change::ShowChanged).await;
        live.publish(&show, Change::ShowChanged).await;
        assert!(
            early.try_recv().is_err(),
            "the next ones wait for the batch"
        );
        let (mut late, from) = live.subscribe(&show);
        assert_eq!(
            from, 1,
            "a new viewer starts after what was sent, so the held changes reach it too"
        );
        let remembered: Vec<u64> = live
            .since(&show, 1)
            .unwrap()
            .iter()
            .map(|f| f.seq)
            .collect();
        assert_eq!(
            remembered,
            [2, 3],
            "held changes are numbered and kept for resuming already"
        );
        live.deliver_snapshot(&show, b"{}");
        for viewer in [&mut early, &mut late] {
            let held = viewer.try_recv().unwrap();
            let snapshot = viewer.try_recv().unwrap();
            assert_eq!(
                (
                    seqs_of(&held),
                    seqs_of(&snapshot),
                    snapshot.frames[0].snapshot
                ),
                (vec![2, 3], vec![3], true),
                "a snapshot sends what was held first, and counts it"
            );
            let message: serde_json::Value = serde_json::from_str(held.message.as_str()).unwrap();
            let told: Vec<_> = message
                .as_array()
                .expect("an array")
                .iter()
                .map(|e| e["seq"].clone())
                .collect();
            assert_eq!(told, [2, 3], "the held changes are one message, in order");
            assert_eq!(message[1]["type"], "show_changed");
        }
    }

    #[tokio::test]
    async fn held_changes_go_out_when_the_batch_has_passed() {
        let live = batching(Duration::from_millis(20));
        let show = ShowId::generate();
        let (mut viewer, _) = live.subscribe(&show);
        for _ in 0..3 {
            live.publish(&show, Change::ShowChanged).await;
        }
        let mut seqs = Vec::new();
        while seqs.len() < 3 {
            let delivery = tokio::time::timeout(Duration::from_secs(30), viewer.recv())
                .await
                .expect("held changes are sent without another change to push them")
                .unwrap();
            seqs.extend(seqs_of(&delivery));
        }
        assert_eq!(seqs, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_slow_spread_holds_the_next_changes_back_for_longer() {
        let live = batching(Duration::ZERO);
        let show = ShowId::generate();
        let batch = || {
            let channels = live.channels.lock().unwrap();
            channels[&show].batch(&live.limits)
        };
        let mut viewers: Vec<_> = (0..10).map(|_| live.subscribe(&show).0).collect();
        live.publish(&show, Change::ShowChanged).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        for viewer in &mut viewers[..8] {
            viewer.try_recv().unwrap().taken();
        }
        assert_eq!(
            batch(),
            Duration::ZERO,
            "eight in ten have not made it a spread"
        );
        viewers[8].try_recv().unwrap().taken();
        let slow = batch();
        assert!(
            slow >= Duration::from_millis(450) && slow <= MAX_BATCH,
            "half again the 300 ms the ninth viewer took, the tenth never asked: {slow:?}"
        );
        live.publish(&show, Change::ShowChanged).await;
        assert!(
            viewers[0].try_recv().is_err(),
            "the next change waits for the longer batch"
        );
        let held = tokio::time::timeout(Duration::from_secs(30), viewers[0].recv())
            .await
            .expect("and then goes out by itself")
            .unwrap();
        assert_eq!(seqs_of(&held), [2]);
    }

    #[test]
    fn connections_beyond_the_limit_are_refused_until_one_closes() {
        let live = Live::new(
            None,
            LiveLimits {
                max_connections: 2,
                ..Default::default()
            },
        );
        let first = live.admit().unwrap();
        let _second = live.admit().unwrap();
        assert!(live.admit().is_none());
        drop(first);
        assert!(live.admit().is_some());
    }
}
