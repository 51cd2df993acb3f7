//! Group commit: claims that arrive while others of their line are in flight wait, and then go
//! together in one transaction, in the order they arrived. A flash sale is thousands of small
//! claims on one show; alone, each pays a transaction's round trips and commit (on SQLite, a
//! sync to disk), which on a busy machine cost far more than the claim itself.
//!
//! New holds wait in a line per show: grouped, the show is read once, the customers' standings
//! in one statement, the seats locked and claimed in one statement each, and every hold is
//! written and committed at once. Bookings paid by card wait in a line per show: their holds and seats
//! are locked and read in one statement each, every booking is decided from them as alone, and
//! all of them are written with one statement and committed at once. Releases wait in one line:
//! their holds are locked in one statement, their seats freed in one and each area's places given
//! back in one, and committed at once.
//!
//! The queue only groups and hands out answers; what a group decides is the store's (its
//! transaction) and core's (`inventory::grant_in_order`). A group never holds two claims of one
//! customer: the per-customer rules (one live hold, ticket limits) must see the first claim
//! before they judge the second, so the second waits for the next group.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// A claim that can wait in a line.
pub(crate) trait Member: Send + 'static {
    /// The line it waits in (its show).
    fn line(&self) -> &str;
    /// Its customer: a group holds at most one claim of each.
    fn customer(&self) -> &str;
}

/// The lines of waiting claims, one per show.
pub(crate) struct Queue<M, A> {
    lines: Mutex<HashMap<String, Line<M, A>>>,
    max_group: usize,
    groups: AtomicU64,
    grouped: AtomicU64,
    failed: AtomicU64,
    busy_us: AtomicU64,
}

/// A line's waiting claims; a line exists while its flight runs. One flight per line: on two
/// cores a second one only split the claims into smaller groups that each paid a transaction's
/// statements and commit, and made a show's groups wait for each other's row locks
/// (alternating runs of the capacity sale, PostgreSQL: granted holds +6 %, hold p99 64 → 56 ms;
/// SQLite +14 %; BENCHMARKS.md, thirteenth session).
struct Line<M, A> {
    waiting: VecDeque<Waiter<M, A>>,
}

struct Waiter<M, A> {
    member: M,
    answer: oneshot::Sender<A>,
    /// The span of the request that waits (its request id): what the group logs about this
    /// claim is logged there, since the group runs in a task of its own.
    span: tracing::Span,
}

/// Groups run and the claims they carried, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    pub groups: u64,
    pub claims: u64,
    /// Claims waiting for their group now.
    pub waiting: usize,
    /// Groups whose transaction failed before its commit (each of their claims went alone).
    pub failed: u64,
    /// Time spent deciding groups, in microseconds (from a group's first statement to its
    /// commit). With one flight per line, a line whose busy time grows as fast as the clock
    /// is the limit of what its show sells: claims only wait for it.
    pub busy_us: u64,
}

/// The store's groups: new holds and bookings (a line per show each), releases (one line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommits {
    pub holds: GroupStats,
    pub bookings: GroupStats,
    pub releases: GroupStats,
}

impl<M: Member, A: Send + 'static> Queue<M, A> {
    pub(crate) fn new(max_group: usize) -> Arc<Self> {
        Arc::new(Self {
            lines: Mutex::new(HashMap::new()),
            max_group: max_group.max(1),
            groups: AtomicU64::new(0),
            grouped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            busy_us: AtomicU64::new(0),
        })
    }

    pub(crate) fn stats(&self) -> GroupStats {
        GroupStats {
            groups: self.groups.load(Ordering::Relaxed),
            claims: self.grouped.load(Ordering::Relaxed),
            waiting: self.lock().values().map(|line| line.waiting.len()).sum(),
            failed: self.failed.load(Ordering::Relaxed),
            busy_us: self.busy_us.load(Ordering::Relaxed),
        }
    }

    /// Waits in the member's line for its group to be decided. `run` decides a group (the
    /// answers in the members' order, or an error when its transaction failed before its
    /// commit); it is used only if this call starts a flight, which is a task of its own: a
    /// request that goes away does not take its group's transaction with it. `None` when the
    /// group failed or was lost (its flight panicked): the caller goes alone.
    pub(crate) async fn join<F, Fut>(self: &Arc<Self>, member: M, run: F) -> Option<A>
    where
        F: Fn(Vec<M>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<A>, crate::StoreError>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let line = member.line().to_owned();
        let take_off = {
            let mut lines = self.lock();
            // No line: no flight runs for it, so this claim starts one.
            let take_off = !lines.contains_key(&line);
            let waiting = lines.entry(line.clone()).or_insert_with(|| Line {
                waiting: VecDeque::new(),
            });
            waiting.waiting.push_back(Waiter {
                member,
                answer,
                span: tracing::Span::current(),
            });
            take_off
        };
        if take_off {
            let flight = Flight {
                queue: self.clone(),
                line,
                landed: false,
            };
            tokio::spawn(flight.fly(run));
        }
        answered.await.ok()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Line<M, A>>> {
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next group of the line, oldest first, one claim per customer; `None` (and the
    /// flight ends) when nobody waits.
    fn next_group(&self, line: &str) -> Option<Vec<Waiter<M, A>>> {
        let mut lines = self.lock();
        let waiting = lines.get_mut(line)?;
        if waiting.waiting.is_empty() {
            lines.remove(line);
            return None;
        }
        let mut customers = HashSet::new();
        let mut group = Vec::new();
        let mut later = VecDeque::new();
        while let Some(waiter) = waiting.waiting.pop_front() {
            if group.len() < self.max_group && customers.insert(waiter.member.customer().to_owned())
            {
                group.push(waiter);
            } else {
                later.push_back(waiter);
            }
        }
        waiting.waiting = later;
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.grouped
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        Some(group)
    }
}

/// A new hold waiting for its group: the command and, for best-available, the seats chosen.
pub(crate) struct HoldClaim {
    pub cmd: crate::CreateHold,
    pub chosen: Option<Vec<boxoffice_core::ids::SeatId>>,
}

impl Member for HoldClaim {
    fn line(&self) -> &str {
        self.cmd.show_id.as_str()
    }
    fn customer(&self) -> &str {
        self.cmd.user_id.as_str()
    }
}

/// A group's answer to one claim: decided, or `None` when the claim must go alone (the group's
/// transaction failed before its commit, or the claim needs what only the lone path does).
pub(crate) type HoldAnswer = Option<crate::StoreResult<boxoffice_core::hold::Hold>>;

/// Holds waiting for their group, per show: one group of a show in flight at a time, at most 64
/// claims in a group.
pub(crate) type HoldQueue = Queue<HoldClaim, HoldAnswer>;

pub(crate) fn hold_queue() -> Arc<HoldQueue> {
    Queue::new(64)
}

/// A booking waiting for its group, in its show's line: one show's bookings (a sale's) do not
/// wait for another's, such as one whose cancellation holds the show's row.
pub(crate) struct BookingClaim(pub crate::ConfirmHold);

impl Member for BookingClaim {
    fn line(&self) -> &str {
        self.0.show_id.as_str()
    }
    fn customer(&self) -> &str {
        self.0.user_id.as_str()
    }
}

/// A group's answer to one booking, as for holds.
pub(crate) type BookingAnswer = Option<crate::StoreResult<boxoffice_core::booking::Booking>>;

pub(crate) type BookingQueue = Queue<BookingClaim, BookingAnswer>;

pub(crate) fn booking_queue() -> Arc<BookingQueue> {
    Queue::new(64)
}

/// A customer's release of a hold waiting for its group. Releases of every show share one line.
pub(crate) struct ReleaseClaim {
    pub hold_id: boxoffice_core::ids::HoldId,
    pub user_id: boxoffice_core::ids::UserId,
    pub now: boxoffice_core::Timestamp,
}

impl Member for ReleaseClaim {
    fn line(&self) -> &str {
        "releases"
    }
    fn customer(&self) -> &str {
        self.user_id.as_str()
    }
}

/// A group's answer to one release: the hold as released (or as it already was).
pub(crate) type ReleaseAnswer = crate::StoreResult<boxoffice_core::hold::Hold>;

pub(crate) type ReleaseQueue = Queue<ReleaseClaim, ReleaseAnswer>;

pub(crate) fn release_queue() -> Arc<ReleaseQueue> {
    Queue::new(64)
}

/// One flight of a line: runs groups while claims wait.
struct Flight<M: Member, A: Send + 'static> {
    queue: Arc<Queue<M, A>>,
    line: String,
    /// Ended because nobody waits (its place was given back with the last look at the line).
    landed: bool,
}

impl<M: Member, A: Send + 'static> Flight<M, A> {
    async fn fly<F, Fut>(mut self, run: F)
    where
        F: Fn(Vec<M>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<A>, crate::StoreError>> + Send + 'static,
    {
        while let Some(group) = self.queue.next_group(&self.line) {
            let claims = group.len();
            let mut members = Vec::with_capacity(claims);
            let mut answers = Vec::with_capacity(claims);
            let mut spans = Vec::with_capacity(claims);
            for waiter in group {
                members.push(waiter.member);
                answers.push(waiter.answer);
                spans.push(waiter.span);
            }
            let started = std::time::Instant::now();
            let decided = run(members).await;
            let busy_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.queue.busy_us.fetch_add(busy_us, Ordering::Relaxed);
            match decided {
                Ok(decided) => {
                    for (answer, decided) in answers.into_iter().zip(decided) {
                        // A member whose request went away gets no answer; its hold lapses.
                        let _ = answer.send(decided);
                    }
                }
                Err(error) => {
                    // Rolled back: told nothing, every member goes alone (and each member's request
                    // logs why, under its own request id).
                    for span in spans {
                        span.in_scope(|| {
                            tracing::warn!(%error, line = %self.line, claims, "a group failed; each of its claims goes alone");
                        });
                    }
                    self.queue.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.landed = true;
    }
}

impl<M: Member, A: Send + 'static> Drop for Flight<M, A> {
    /// Only when a group panicked: the line is given up (its members were told nothing and go
    /// alone, and so do the claims still waiting, their answers dropped), and the next claim to
    /// arrive starts a new flight.
    fn drop(&mut self) {
        if self.landed {
            return;
        }
        self.queue.lock().remove(&self.line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use tokio::sync::Notify;

    #[derive(Debug)]
    struct Claim {
        show: &'static str,
        customer: String,
        value: u32,
    }

    impl Member for Claim {
        fn line(&self) -> &str {
            self.show
        }
        fn customer(&self) -> &str {
            &self.customer
        }
    }

    fn claim(customer: &str, value: u32) -> Claim {
        Claim {
            show: "show",
            customer: customer.to_owned(),
            value,
        }
    }

    type Answers = std::pin::Pin<Box<dyn Future<Output = crate::StoreResult<Vec<u32>>> + Send>>;

    /// A runner that waits for `gate` before its first group, records every group's values
    /// and answers each claim with ten times its value.
    fn runner(
        gate: Arc<Notify>,
        seen: Arc<StdMutex<Vec<Vec<u32>>>>,
    ) -> impl Fn(Vec<Claim>) -> Answers + Send + Sync + 'static {
        move |group: Vec<Claim>| {
            let (gate, seen) = (gate.clone(), seen.clone());
            Box::pin(async move {
                let first = seen.lock().unwrap().is_empty();
                seen.lock()
                    .unwrap()
                    .push(group.iter().map(|c| c.value).collect());
                if first {
                    gate.notified().await;
                }
                Ok(group.iter().map(|c| c.value * 10).collect())
            })
        }
    }

    /// The first claim (c0, value 0), once its flight is running and held at `gate`.
    async fn in_flight(
        queue: &Arc<Queue<Claim, u32>>,
        gate: &Arc<Notify>,
        seen: &Arc<StdMutex<Vec<Vec<u32>>>>,
    ) -> tokio::task::JoinHandle<Option<u32>> {
        let first = tokio::spawn({
            let (queue, run) = (queue.clone(), runner(gate.clone(), seen.clone()));
            async move { queue.join(claim("c0", 0), run).await }
        });
        while seen.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        first
    }

    #[tokio::test]
    async fn claims_arriving_during_a_flight_go_together_in_order() {
        let queue: Arc<Queue<Claim, u32>> = Queue::new(64);
        let (gate, seen) = (Arc::new(Notify::new()), Arc::new(StdMutex::new(Vec::new())));
        let first = in_flight(&queue, &gate, &seen).await;
        let waiting: Vec<_> = (1..=5)
            .map(|i| {
                let (queue, run) = (queue.clone(), runner(gate.clone(), seen.clone()));
                tokio::spawn(async move { queue.join(claim(&format!("c{i}"), i), run).await })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // The first group is busy for at least this long: its flight waits at the gate.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        gate.notify_one();
        assert_eq!(first.await.unwrap(), Some(0));
        for (i, answer) in waiting.into_iter().enumerate() {
            assert_eq!(
                answer.await.unwrap(),
                Some((i as u32 + 1) * 10),
                "each gets its own answer"
            );
        }
        assert_eq!(*seen.lock().unwrap(), vec![vec![0], vec![1, 2, 3, 4, 5]]);
        let stats = queue.stats();
        assert_eq!(
            stats,
            GroupStats {
                groups: 2,
                claims: 6,
                waiting: 0,
                failed: 0,
                busy_us: stats.busy_us
            }
        );
        assert!(
            stats.busy_us >= 2_000,
            "the first group was busy until its gate opened: {stats:?}"
        );
        assert!(queue.lock().is_empty(), "an idle line is forgotten");
    }

    #[tokio::test]
    async fn a_group_holds_one_claim_per_customer_and_no_more_than_its_size() {
        let queue: Arc<Queue<Claim, u32>> = Queue::new(3);
        let (gate, seen) = (Arc::new(Notify::new()), Arc::new(StdMutex::new(Vec::new())));
        let first = in_flight(&queue, &gate, &seen).await;
        // Customer a twice: its second claim waits for the group after its first.
        let customers = ["a", "a", "b", "c", "d"];
        let mut waiting = Vec::new();
        for (i, customer) in customers.into_iter().enumerate() {
            let (queue, run) = (queue.clone(), runner(gate.clone(), seen.clone()));
            waiting.push(tokio::spawn(async move {
                queue.join(claim(customer, i as u32 + 1), run).await
            }));
            tokio::task::yield_now().await;
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        first.await.unwrap();
        for answer in waiting {
            assert!(answer.await.unwrap().is_some());
        }
        assert_eq!(
            *seen.lock().unwrap(),
            vec![vec![0], vec![1, 3, 4], vec![2, 5]]
        );
    }

    /// What the test's log subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<StdMutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failed_group_sends_its_claims_alone_and_is_counted() {
        use tracing::Instrument;
        let logs = Captured::default();
        let writer = logs.clone();
        let _logging = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        );
        let queue: Arc<Queue<Claim, u32>> = Queue::new(64);
        let failing =
            |_: Vec<Claim>| async move { Err(crate::StoreError::Corrupt("rolled back".into())) };
        let request = tracing::info_span!("request", request_id = "req-7");
        assert_eq!(
            queue
                .join(claim("c0", 0), failing)
                .instrument(request)
                .await,
            None,
            "the member goes alone"
        );
        let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(
            logged.contains("request_id=\"req-7\"") && logged.contains("a group failed"),
            "the failure is logged under the waiting request's id: {logged}"
        );
        let stats = queue.stats();
        assert_eq!((stats.groups, stats.failed), (1, 1));
        assert!(queue.lock().is_empty(), "the line is idle again");
    }

    #[tokio::test]
    async fn a_lost_flight_sends_its_group_alone_and_the_line_goes_on() {
        let queue: Arc<Queue<Claim, u32>> = Queue::new(64);
        let panicking = |group: Vec<Claim>| async move {
            assert!(group.is_empty(), "a group's transaction panicked");
            Ok(Vec::new())
        };
        let lost = queue.join(claim("c0", 0), panicking).await;
        assert_eq!(lost, None, "the member is told to go alone");
        let (gate, seen) = (Arc::new(Notify::new()), Arc::new(StdMutex::new(Vec::new())));
        gate.notify_one();
        let after = queue.join(claim("c1", 1), runner(gate, seen)).await;
        assert_eq!(after, Some(10), "the line has a flight again");
    }

    #[tokio::test]
    async fn claims_waiting_behind_a_lost_flight_go_alone_without_waiting_for_another() {
        let queue: Arc<Queue<Claim, u32>> = Queue::new(64);
        let (gate, started) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let panicking = {
            let (gate, started) = (gate.clone(), started.clone());
            move |group: Vec<Claim>| {
                let (gate, started) = (gate.clone(), started.clone());
                async move {
                    started.notify_one();
                    gate.notified().await;
                    assert!(group.is_empty(), "a group's transaction panicked");
                    Ok(Vec::new())
                }
            }
        };
        let first = tokio::spawn({
            let queue = queue.clone();
            async move { queue.join(claim("c0", 0), panicking).await }
        });
        started.notified().await;
        let waiting = tokio::spawn({
            let (queue, seen) = (queue.clone(), Arc::new(StdMutex::new(Vec::new())));
            let run = runner(Arc::new(Notify::new()), seen);
            async move { queue.join(claim("c1", 1), run).await }
        });
        while queue.stats().waiting == 0 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        assert_eq!(first.await.unwrap(), None, "the member is told to go alone");
        // Only a guard against hanging: with the line kept, c1 waited for a claim to come.
        let waiting = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the claim waiting behind the lost flight was left waiting");
        assert_eq!(
            waiting.unwrap(),
            None,
            "so is the claim that waited behind it"
        );
        assert!(queue.lock().is_empty(), "the line is given up");
    }
}
