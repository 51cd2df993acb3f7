//! The store logic both engines share. `store_engine!` expands to the `Store` implementation for
//! one engine: the SQL is the same text on SQLite and PostgreSQL (`$n` placeholders work on
//! both), and the engine supplies how a write transaction begins (`begin_write`), the row
//! locking clauses (`FOR UPDATE` on PostgreSQL, and `FOR NO KEY UPDATE` for rows that new rows
//! point at, which a foreign key check must still be able to share; SQLite has one writer, so
//! none), whether a
//! transaction's plain writes go as one statement (`Writes`: PostgreSQL's data-modifying CTEs,
//! where every statement is a round trip) and whether bulk writes refresh the planner's
//! statistics.
//!
//! Lock order, the same in every transaction so that none can deadlock: the show row (shared by
//! claims, exclusive for a cancellation or a waitlist round), the customer's user row, then hold
//! rows, then seat rows (by seat id), then wallet accounts (by id), the customer's ticket count
//! (`customer_tickets`, written with the booking's other rows), and area rows (by area id)
//! last: every standing sale of a show goes through its area's one row, so each transaction
//! changes its counters as its last statement and holds that row only until it commits.
//! Scheduling locks venue rows (by id) alone. A group of new holds (`group_commit`) takes the
//! same locks in the same order for all its claims: the show, its customers by id, the seats by
//! id (those best-available chose without waiting), the areas by id. A group of bookings: the
//! holds' shows (shared), the holds by id, their seats by id, the areas by id.

use sqlx::{Database, Transaction};
use tokio::sync::OwnedMutexGuard;

/// A write transaction, and on SQLite the in-process gate that lets one writer in at a time
/// (waiting on a mutex is cheaper than SQLite's busy-retry loop).
pub(crate) struct WriteTx<DB: Database> {
    pub tx: Transaction<'static, DB>,
    pub _gate: Option<OwnedMutexGuard<()>>,
}

/// Writes whose results the transaction does not read back (inserts, unconditional updates),
/// sent together when the caller runs them: on PostgreSQL as one statement, each write a
/// data-modifying CTE (a booking's ten inserts and updates made ten round trips, each one a wait
/// for the other side to be scheduled on a busy machine); on SQLite, which has no such CTEs and
/// no round trips, one after another in the order they were added, so a row a foreign key needs
/// must be added before the row that points at it.
///
/// Rows go through `insert`. Fused, every row of one table is one insert, whatever came
/// between, and its rows are one JSON parameter (`json_populate_recordset`), in the order they
/// were added: the statement's text then depends on which tables it writes, not on how many
/// rows, so PostgreSQL can keep it prepared instead of parsing and planning it for each group
/// (with a `VALUES` list per group size, a capacity sale made a thousand texts, more than any
/// connection's statement cache kept). The CTEs of one statement run in no
/// promised order, so rows whose order matters (outbox events, numbered by a sequence) must go
/// to one table. Unfused, consecutive rows of one table are one `INSERT … VALUES`.
pub(crate) struct Writes<DB: Database> {
    fused: bool,
    statements: Vec<sqlx::QueryBuilder<DB>>,
    count: usize,
    /// Unfused: the head of the insert the last rows went to, while it takes more rows, and
    /// what follows its rows.
    open_insert: Option<(String, &'static str)>,
    /// Fused: whether a CTE is open (its closing parenthesis not written yet).
    open: bool,
    /// Fused: each table's rows, in the order its first row came.
    tables: Vec<TableRows>,
}

/// One table's rows of a fused `Writes`: its columns, read once from the head, and its rows
/// as the text of a JSON array of objects, written as they come.
struct TableRows {
    head: String,
    columns: Vec<String>,
    select: Option<&'static str>,
    tail: &'static str,
    rows: String,
}

/// An insert of `Writes`: `head` is `INSERT INTO table (columns)`; fused, the row's values are
/// the columns in order, and `select` (over the rows as `r`) is what is inserted when a column
/// is computed rather than given; `tail` follows the rows (`ON CONFLICT …`).
#[derive(Clone, Copy)]
pub(crate) struct Insert<'a> {
    pub head: &'a str,
    pub select: Option<&'static str>,
    pub tail: &'static str,
}

impl<'a> Insert<'a> {
    pub(crate) const fn into(head: &'a str) -> Self {
        Self {
            head,
            select: None,
            tail: "",
        }
    }

    pub(crate) const fn then(self, tail: &'static str) -> Self {
        Self { tail, ..self }
    }

    pub(crate) const fn selecting(self, select: &'static str) -> Self {
        Self {
            select: Some(select),
            ..self
        }
    }
}

/// One row of an insert being added to `Writes`.
pub(crate) enum Row<'r, 'q, DB: Database> {
    Values(sqlx::query_builder::Separated<'r, DB, &'static str>),
    Json(&'q mut Vec<serde_json::Value>),
}

impl<DB: Database> Row<'_, '_, DB> {
    /// The next column's value.
    pub(crate) fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB> + serde::Serialize + Send + 'static,
    {
        match self {
            Row::Values(separated) => {
                separated.push_bind(value);
            }
            Row::Json(values) => {
                values.push(serde_json::to_value(&value).expect("a column value is plain JSON"))
            }
        }
        self
    }

    /// A column computed in SQL: `values` writes it into a `VALUES` row; a fused insert
    /// computes it in its `select` instead.
    pub(crate) fn push_computed(
        &mut self,
        values: impl FnOnce(&mut sqlx::query_builder::Separated<'_, DB, &'static str>),
    ) -> &mut Self {
        if let Row::Values(separated) = self {
            values(separated);
        }
        self
    }
}

impl<DB: Database> Writes<DB> {
    pub(crate) fn new(fused: bool) -> Self {
        Self {
            fused,
            statements: Vec::new(),
            count: 0,
            open_insert: None,
            open: false,
            tables: Vec::new(),
        }
    }

    /// Adds one write: `write` pushes its whole text and binds (no `RETURNING`).
    pub(crate) fn add(&mut self, write: impl FnOnce(&mut sqlx::QueryBuilder<DB>)) {
        write(self.start());
    }

    /// Adds a row to `insert`: `row` pushes its values, one per column, in order.
    pub(crate) fn insert<'h>(
        &mut self,
        insert: impl Into<Insert<'h>>,
        row: impl FnOnce(&mut Row<'_, '_, DB>),
    ) {
        let insert = insert.into();
        if self.fused {
            let mut values = Vec::new();
            row(&mut Row::Json(&mut values));
            let index = match self.tables.iter().position(|t| t.head == insert.head) {
                Some(index) => index,
                None => {
                    self.tables.push(TableRows {
                        head: insert.head.to_owned(),
                        columns: columns_of(insert.head).map(str::to_owned).collect(),
                        select: insert.select,
                        tail: insert.tail,
                        rows: String::new(),
                    });
                    self.tables.len() - 1
                }
            };
            let table = &mut self.tables[index];
            table
                .rows
                .push(if table.rows.is_empty() { '[' } else { ',' });
            let object: serde_json::Map<String, serde_json::Value> =
                table.columns.iter().cloned().zip(values).collect();
            table
                .rows
                .push_str(&serde_json::Value::Object(object).to_string());
            return;
        }
        if self
            .open_insert
            .as_ref()
            .is_some_and(|(head, _)| head == insert.head)
        {
            self.last().push(", (");
        } else {
            self.start().push(insert.head).push(" VALUES (");
        }
        let statement = self.last();
        row(&mut Row::Values(statement.separated(", ")));
        statement.push(")");
        self.open_insert = Some((insert.head.to_owned(), insert.tail));
    }

    /// The statements to execute, in order.
    pub(crate) fn into_statements(self) -> Vec<sqlx::QueryBuilder<DB>>
    where
        String: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    {
        let fused = self.fused;
        let mut statements = self.written();
        if let Some(statement) = statements.first_mut()
            && fused
        {
            // Data-modifying CTEs run whether or not the main query reads them.
            statement.push(" SELECT 1");
        }
        statements
    }

    /// The statements with every write in them; fused, the one statement's main query is
    /// still to come.
    fn written(mut self) -> Vec<sqlx::QueryBuilder<DB>>
    where
        String: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    {
        self.finish_write();
        if self.fused {
            for table in std::mem::take(&mut self.tables) {
                let (name, columns) = table_of(&table.head);
                let select = table
                    .select
                    .map_or_else(|| columns.to_owned(), str::to_owned);
                let rows = table.rows + "]";
                let statement = self.start();
                statement
                    .push(&table.head)
                    .push(format_args!(
                        " SELECT {select} FROM json_populate_recordset(NULL::{name}, CAST("
                    ))
                    .push_bind(rows)
                    .push(" AS json)) r");
                if !table.tail.is_empty() {
                    statement.push(" ").push(table.tail);
                }
                self.finish_write();
            }
        }
        self.statements
    }

    /// The statements to execute, in order, the last of them `main`, a statement of the
    /// caller's whose rows it reads (it must not begin with `WITH`). Fused, the writes are
    /// `main`'s CTEs: PostgreSQL runs a data-modifying CTE that the main statement does not read
    /// to completion after the main statement.
    pub(crate) fn then(
        self,
        main: impl FnOnce(&mut sqlx::QueryBuilder<DB>),
    ) -> Vec<sqlx::QueryBuilder<DB>>
    where
        String: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    {
        let fused = self.fused;
        let mut statements = self.written();
        match statements.first_mut() {
            Some(with) if fused => {
                with.push(" ");
                main(with);
            }
            _ => {
                let mut last = sqlx::QueryBuilder::new("");
                main(&mut last);
                statements.push(last);
            }
        }
        statements
    }

    /// Ends the write before and begins the next; returns where its text goes.
    fn start(&mut self) -> &mut sqlx::QueryBuilder<DB> {
        self.finish_write();
        self.count += 1;
        if !self.fused {
            self.statements.push(sqlx::QueryBuilder::new(""));
        } else if self.statements.is_empty() {
            self.statements
                .push(sqlx::QueryBuilder::new("WITH w1 AS ("));
        } else {
            let n = self.count;
            self.statements[0].push(format_args!(", w{n} AS ("));
        }
        self.open = true;
        self.last()
    }

    fn finish_write(&mut self) {
        if let Some((_, tail)) = self.open_insert.take()
            && !tail.is_empty()
        {
            self.last().push(" ").push(tail);
        }
        if self.fused && self.open {
            self.last().push(")");
        }
        self.open = false;
    }

    fn last(&mut self) -> &mut sqlx::QueryBuilder<DB> {
        self.statements.last_mut().expect("a write was started")
    }
}

impl<'a> From<&'a str> for Insert<'a> {
    fn from(head: &'a str) -> Self {
        Insert::into(head)
    }
}

impl<'a> From<&'a String> for Insert<'a> {
    fn from(head: &'a String) -> Self {
        Insert::into(head)
    }
}

/// The table and the column list of `INSERT INTO table (columns)`.
fn table_of(head: &str) -> (&str, &str) {
    let rest = head
        .trim_start()
        .trim_start_matches("INSERT INTO")
        .trim_start();
    let (name, columns) = rest.split_once('(').unwrap_or((rest, ""));
    (name.trim(), columns.trim_end().trim_end_matches(')'))
}

fn columns_of(head: &str) -> impl Iterator<Item = &str> {
    table_of(head).1.split(',').map(str::trim)
}

/// Where best-available starts reading a show's category for a number of seats: the first row
/// that had a block of that many free seats side by side when this process last looked (rows
/// before it had none). Kept by number, since a hall sold seat by seat keeps single seats in its
/// front rows long after its pairs are gone. A seat freed in front of it is found again as soon as this process frees it, or once the hint is `HINT_LIFETIME` old (seats
/// freed by another instance, or whose hold simply lapsed). Without it, every pick re-read the
/// sold-out front of a big hall: the costliest statement of a busy sale.
///
/// It also knows the seats best-available picks of this process are claiming right now, so
/// concurrent picks choose around each other: they would all choose the same best block, and
/// all but one would lose it and choose again.
#[derive(Default)]
pub(crate) struct BestAvailableHints {
    /// By (show, category, seats asked for): the row, and since when it is known.
    starts: std::sync::Mutex<std::collections::HashMap<PickKey, (i64, std::time::Instant)>>,
    claiming:
        std::sync::Mutex<std::collections::HashMap<String, std::collections::HashSet<String>>>,
    /// Where picks of a show's category read, by (show, category), for `LAYOUT_LIFETIME`: a
    /// layout changes only before anything is sold or held, and a pick is only a proposal.
    layouts: std::sync::Mutex<
        std::collections::HashMap<(String, String), (PickLayout, std::time::Instant)>,
    >,
}

/// A show, a category and a number of seats: what a best-available hint is kept for.
type PickKey = (String, String, i64);

/// Where a pick reads: the show's venue, and the last row with seats of the category.
#[derive(Clone, Debug)]
pub(crate) struct PickLayout {
    pub(crate) show_id: String,
    pub(crate) venue_id: String,
    pub(crate) last_rank: i64,
}

/// Seats a pick of this process is claiming; given up when dropped.
pub(crate) struct Claiming<'a> {
    hints: &'a BestAvailableHints,
    show: String,
    seats: Vec<String>,
}

impl Drop for Claiming<'_> {
    fn drop(&mut self) {
        let mut claiming = self.hints.claiming.lock().expect("best-available claims");
        if let Some(seats) = claiming.get_mut(&self.show) {
            for seat in &self.seats {
                seats.remove(seat);
            }
            if seats.is_empty() {
                claiming.remove(&self.show);
            }
        }
    }
}

const HINT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a show's layout is used without reading it again: a layout replaced meanwhile (on
/// another instance; here the replacement forgets them) can only make a pick propose worse
/// seats or fail, and a failed pick is made again from the database.
const LAYOUT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(10);
/// Hints kept at most; beyond it the memory starts over.
const HINTS_KEPT: usize = 10_000;

impl BestAvailableHints {
    pub(crate) fn start(&self, show: &str, category: &str, quantity: i64) -> i64 {
        let hints = self.starts.lock().expect("best-available hints");
        hints
            .get(&(show.to_owned(), category.to_owned(), quantity))
            .filter(|(_, at)| at.elapsed() < HINT_LIFETIME)
            .map_or(0, |(rank, _)| *rank)
    }

    /// Rows before `rank` had no block of `quantity` free seats. An old hint is replaced, a
    /// young one only moved on.
    pub(crate) fn remember(&self, show: &str, category: &str, quantity: i64, rank: i64) {
        let mut hints = self.starts.lock().expect("best-available hints");
        if hints.len() >= HINTS_KEPT {
            hints.clear();
        }
        let now = std::time::Instant::now();
        let entry = hints
            .entry((show.to_owned(), category.to_owned(), quantity))
            .or_insert((rank, now));
        if entry.1.elapsed() >= HINT_LIFETIME {
            *entry = (rank, now);
        } else {
            entry.0 = entry.0.max(rank);
        }
    }

    /// Seats of the show were freed here, the first of them in row `rank`: picks start there
    /// at the latest.
    pub(crate) fn freed(&self, show: &str, rank: i64) {
        for ((s, _, _), (start, _)) in self.starts.lock().expect("best-available hints").iter_mut()
        {
            if s == show {
                *start = (*start).min(rank);
            }
        }
    }

    /// The layout picks of the show's category read, if this process read it lately.
    pub(crate) fn layout(&self, show: &str, category: &str) -> Option<PickLayout> {
        let layouts = self.layouts.lock().expect("best-available layouts");
        layouts
            .get(&(show.to_owned(), category.to_owned()))
            .filter(|(_, at)| at.elapsed() < LAYOUT_LIFETIME)
            .map(|(layout, _)| layout.clone())
    }

    pub(crate) fn know_layout(&self, show: &str, category: &str, layout: &PickLayout) {
        let mut layouts = self.layouts.lock().expect("best-available layouts");
        if layouts.len() >= HINTS_KEPT {
            layouts.clear();
        }
        layouts.insert(
            (show.to_owned(), category.to_owned()),
            (layout.clone(), std::time::Instant::now()),
        );
    }

    /// The venue's layout was replaced: picks read it again.
    pub(crate) fn forget_layouts_of(&self, venue: &str) {
        let mut layouts = self.layouts.lock().expect("best-available layouts");
        layouts.retain(|_, (layout, _)| layout.venue_id != venue);
    }

    /// The seats of the show other picks here are claiming.
    pub(crate) fn being_claimed(&self, show: &str) -> Vec<String> {
        let claiming = self.claiming.lock().expect("best-available claims");
        claiming
            .get(show)
            .map(|seats| seats.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Marks the chosen seats as being claimed, unless another pick here marked one first
    /// (then those seats are the answer, to choose around).
    pub(crate) fn claim<'a>(
        &'a self,
        show: &str,
        seats: &[String],
    ) -> Result<Claiming<'a>, Vec<String>> {
        let mut claiming = self.claiming.lock().expect("best-available claims");
        let taken = claiming.entry(show.to_owned()).or_default();
        let raced: Vec<String> = seats
            .iter()
            .filter(|s| taken.contains(*s))
            .cloned()
            .collect();
        if !raced.is_empty() {
            return Err(raced);
        }
        taken.extend(seats.iter().cloned());
        Ok(Claiming {
            hints: self,
            show: show.to_owned(),
            seats: seats.to_vec(),
        })
    }
}

macro_rules! store_engine {
    ($store:ty, $db:ty, lock = $lock:literal, key_lock = $key_lock:literal, share = $share:literal, skip_locked = $skip_locked:literal, items_of_each_hold = $items_of_each_hold:literal, fuse_writes = $fuse_writes:literal, refresh_statistics = $refresh_statistics:literal) => {
        use $crate::engine::{Insert, PickLayout, WriteTx, Writes};
        use $crate::group_commit::{BookingAnswer, BookingClaim, HoldAnswer, HoldClaim, ReleaseAnswer, ReleaseClaim};

        /// Whether `Writes` go as one statement on this engine.
        const FUSE_WRITES: bool = $fuse_writes;
        /// Whether the engine plans from statistics that bulk writes leave behind.
        const REFRESH_STATISTICS: bool = $refresh_statistics;
        use $crate::rows::*;
        use $crate::{
            ConfirmHold, CreateHold, ExpiredHold, IdempotencyKey, Outcome, SalesSummary, SavedResponse, ShowFilter, ShowQuery, ShowSort, Store,
            StoreError, StoreResult, VenueSummary,
        };
        use boxoffice_core::best_available::{self, Candidate};
        use boxoffice_core::booking::{Booking, BookingState};
        use boxoffice_core::catalog::{Event, Show};
        use boxoffice_core::hold::{self, AreaQuantity, Hold, HoldItem, HoldRequest, HoldState, total_of};
        use boxoffice_core::ids::*;
        use boxoffice_core::inventory::{self, SeatMap, SeatState};
        use boxoffice_core::user::User;
        use boxoffice_core::waiting::Room;
        $crate::accounts::accounts_engine!($store, $db, lock = $lock);
        $crate::outbox::outbox_engine!($store, $db, lock = $lock, skip_locked = $skip_locked);
        $crate::payments::payments_engine!($store, $db, lock = $lock);
        $crate::ledger::ledger_engine!($store, $db, lock = $lock);
        $crate::checkin::checkin_engine!($store, $db, share = $share);
        $crate::promo::promo_engine!($store, $db, lock = $lock);
        $crate::waitlist::waitlist_engine!($store, $db, lock = $lock, share = $share);
        $crate::loyalty::loyalty_engine!($store, $db);
        use boxoffice_core::venue::Venue;
        use boxoffice_core::{DomainError, FieldError, Money, Timestamp};
        use sqlx::AssertSqlSafe;
        use std::collections::BTreeMap;

        type Conn = <$db as sqlx::Database>::Connection;

        /// Sends the writes (one statement on an engine that fuses them).
        async fn run_writes(conn: &mut Conn, writes: Writes<$db>) -> StoreResult<()> {
            for mut statement in writes.into_statements() {
                statement.build().execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Sends the writes and then `main`, a statement whose rows are the answer: on an engine
        /// that fuses writes, as one statement (`Writes::then`).
        async fn run_writes_returning<R>(conn: &mut Conn, writes: Writes<$db>, main: impl FnOnce(&mut sqlx::QueryBuilder<$db>)) -> StoreResult<Vec<R>>
        where
            R: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
        {
            let mut statements = writes.then(main);
            let mut last = statements.pop().expect("the main statement");
            for mut statement in statements {
                statement.build().execute(&mut *conn).await?;
            }
            Ok(last.build_query_as().fetch_all(&mut *conn).await?)
        }

        fn is_unique_violation(error: &sqlx::Error) -> bool {
            matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
        }

        /// The show, its prices and its organizer's state (sales stop when suspended) in one
        /// statement; `lock` is the engine's clause for taking the show's row, and the
        /// `customers`' user rows (sorted) are locked too, in id order, with the engine's key
        /// lock (after the show's: the subquery reads the locked show row, so it runs above the
        /// show's lock). What the customers hold must be read by a later statement, which sees
        /// whatever a transaction that had one of them locked committed.
        async fn read_show(conn: &mut Conn, id: &str, lock: &str, customers: &[&str]) -> StoreResult<Option<(Show, Option<String>)>> {
            // The customers' lock is the engine's key lock: their holds and bookings point at
            // the rows, and those inserts must not wait for it.
            // The show's lock inside, on its one row: the join gives a row per price, and a lock
            // clause outside would lock the show once per price (the customers are locked again
            // per price, which the second time finds them locked by this transaction already).
            let customer_lock = if customers.is_empty() {
                String::new()
            } else {
                format!(
                    ", (SELECT COUNT(*) FROM (SELECT u.id FROM users u WHERE u.id IN ({}) AND s.id IS NOT NULL ORDER BY u.id{}) l) AS locked_customers",
                    placeholders(2, padded_len(customers.len())),
                    $key_lock
                )
            };
            let sql = format!(
                "SELECT s.*, (SELECT o.state FROM organizers o WHERE o.id = s.organizer_id) AS organizer_state, \
                 p.category AS price_category, p.amount_minor AS price_amount_minor, p.locked AS price_locked{customer_lock} \
                 FROM (SELECT {SHOW_COLUMNS} FROM shows WHERE id = $1{lock}) s LEFT JOIN show_prices p ON p.show_id = s.id"
            );
            let mut query = sqlx::query_as::<_, ShowWithPriceRow>(AssertSqlSafe(sql)).bind(id.to_owned());
            for customer in padded(customers) {
                query = query.bind(customer.to_string());
            }
            show_from_rows(query.fetch_all(&mut *conn).await?)
        }

        async fn load_show(conn: &mut Conn, id: &str) -> StoreResult<Option<Show>> {
            Ok(read_show(conn, id, "", &[]).await?.map(|(show, _)| show))
        }

        /// Takes the show's row shared (a cancellation or a waitlist round, which take it
        /// exclusively, wait for this transaction, or it sees theirs) and reads the show and its
        /// organizer's state with the same statement.
        async fn share_show(conn: &mut Conn, id: &str) -> StoreResult<Option<(Show, Option<String>)>> {
            read_show(conn, id, $share, &[]).await
        }

        /// The show's standing areas as a seat map shows them (held counts only live holds).
        async fn load_area_views(conn: &mut Conn, show: &Show, now: Timestamp) -> StoreResult<Vec<inventory::AreaView>> {
            let areas: Vec<AreaMapRow> = sqlx::query_as(
                "SELECT a.id AS area_id, a.name, a.category, sa.capacity, sa.sold, \
                 CAST(COALESCE((SELECT SUM(hi.quantity) FROM hold_items hi JOIN holds h ON h.id = hi.hold_id \
                   WHERE hi.show_id = sa.show_id AND hi.area_id = sa.area_id AND h.state = 'active' \
                   AND h.expires_at > $2), 0) AS BIGINT) AS held \
                 FROM show_areas sa JOIN areas a ON a.id = sa.area_id WHERE sa.show_id = $1 ORDER BY a.position",
            )
            .bind(show.id.to_string())
            .bind(now.unix_ms())
            .fetch_all(&mut *conn)
            .await?;
            Ok(areas.into_iter().map(|r| r.into_view(show)).collect())
        }

        async fn load_prices(conn: &mut Conn, show_ids: &[String]) -> StoreResult<BTreeMap<String, PriceList>> {
            let mut by_show: BTreeMap<String, PriceList> = BTreeMap::new();
            if show_ids.is_empty() {
                return Ok(by_show);
            }
            let sql = format!(
                "SELECT show_id, category, amount_minor, locked FROM show_prices WHERE show_id IN ({})",
                placeholders(1, show_ids.len())
            );
            let mut query = sqlx::query_as::<_, PriceRow>(AssertSqlSafe(sql));
            for id in show_ids {
                query = query.bind(id.clone());
            }
            for row in query.fetch_all(&mut *conn).await? {
                by_show.entry(row.show_id).or_default().add(row.category, row.amount_minor, row.locked);
            }
            Ok(by_show)
        }

        /// The hold and its items in one read.
        /// One hold by id (`$1`), a row per item in order, with `extra` columns of it after them.
        fn hold_by_id(extra: &str) -> String {
            format!(
                "SELECT {HOLD_WITH_ITEM_COLUMNS}{extra} FROM holds h {} WHERE h.id = $1 ORDER BY hi.position",
                $items_of_each_hold
            )
        }

        async fn load_hold(conn: &mut Conn, id: &str) -> StoreResult<Option<Hold>> {
            let sql = hold_by_id("");
            let rows: Vec<HoldWithItemRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            $crate::rows::hold_from_rows(rows)
        }

        /// The hold with the first of its payments still being decided (waiting for the
        /// customer's bank or for the provider), in one statement: what paying for it checks.
        async fn load_hold_to_pay(conn: &mut Conn, id: &str) -> StoreResult<Option<(Hold, Option<PaymentId>)>> {
            let sql = hold_by_id(
                ", (SELECT MIN(p.id) FROM payments p WHERE p.hold_id = h.id AND p.state IN ('requires_action', 'processing')) AS open_payment",
            );
            let rows: Vec<HoldToPayRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            let open = rows.first().and_then(|r| r.open_payment.clone()).map(PaymentId::from_trusted);
            let hold = $crate::rows::hold_from_rows(rows.into_iter().map(|r| r.hold).collect())?;
            Ok(hold.map(|hold| (hold, open)))
        }

        async fn load_booking(conn: &mut Conn, row: BookingRow) -> StoreResult<Booking> {
            load_bookings(conn, vec![row]).await?.pop().ok_or_else(|| StoreError::Corrupt("a booking vanished while read".into()))
        }

        /// Bookings with their tickets: one read of the tickets for the whole page.
        async fn load_bookings(conn: &mut Conn, rows: Vec<BookingRow>) -> StoreResult<Vec<Booking>> {
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let sql = format!(
                "SELECT booking_id, id, seat_id, area_id, label, category, price_minor, code FROM tickets \
                 WHERE booking_id IN ({}) ORDER BY booking_id, position",
                placeholders(1, rows.len())
            );
            let mut query = sqlx::query_as::<_, BookingTicketRow>(AssertSqlSafe(sql));
            for row in &rows {
                query = query.bind(row.id.clone());
            }
            let mut tickets: BTreeMap<String, Vec<TicketRow>> = BTreeMap::new();
            for row in query.fetch_all(&mut *conn).await? {
                tickets.entry(row.booking_id).or_default().push(row.ticket);
            }
            rows.into_iter()
                .map(|row| {
                    let of_booking = tickets.remove(&row.id).unwrap_or_default();
                    row.into_booking(of_booking)
                })
                .collect()
        }

        async fn load_booking_by_id(conn: &mut Conn, id: &str) -> StoreResult<Option<Booking>> {
            let sql = format!("SELECT {BOOKING_COLUMNS} FROM bookings WHERE id = $1");
            let row: Option<BookingRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(id.to_owned()).fetch_optional(&mut *conn).await?;
            match row {
                Some(row) => Ok(Some(load_booking(conn, row).await?)),
                None => Ok(None),
            }
        }

        /// Where the customer stands on the show, in one statement (`standing_rows`).
        async fn customer_standing(conn: &mut Conn, user_id: &str, show_id: &str, now: Timestamp) -> StoreResult<CustomerStanding> {
            let mut rows = standing_rows(conn, &[user_id], show_id, now).await?;
            Ok(CustomerStanding::of(rows.remove(user_id).unwrap_or_default(), now))
        }

        /// What decides where customers stand on the show, per customer, in one statement: live
        /// holds, the deadlines of holds that ran out within the anti-hoarding window of
        /// `since` (released holds were given back, so they do not count), and tickets booked
        /// (`customer_tickets`, kept by bookings and cancellations).
        /// The states are named in one `IN` so the customer's index is the way in: with
        /// `state = 'active' OR …` PostgreSQL read every active hold of every customer (15,000
        /// in a flash sale) to find this one's.
        async fn standing_rows(conn: &mut Conn, user_ids: &[&str], show_id: &str, since: Timestamp) -> StoreResult<Standings> {
            let sql = standings_sql(padded_len(user_ids.len()));
            let mut query = sqlx::query_as::<_, (String, String, i64, i64)>(AssertSqlSafe(sql)).bind(show_id.to_owned()).bind(lapse_window_start(since));
            for user in padded_customers(user_ids) {
                query = query.bind(user);
            }
            let mut per_customer = Standings::new();
            for (user, state, expires_at, quantity) in query.fetch_all(&mut *conn).await? {
                per_customer.entry(user).or_default().push(StandingRow { state, expires_at, quantity });
            }
            Ok(per_customer)
        }

        /// What each customer's standing on a show is decided from, by customer.
        type Standings = std::collections::HashMap<String, Vec<StandingRow>>;

        /// The start of the anti-hoarding window that ends at `since`.
        fn lapse_window_start(since: Timestamp) -> i64 {
            since.plus_minutes(-hold::LAPSE_WINDOW_MINUTES).unix_ms()
        }

        /// The customers, padded with no one ('') to `padded_len`.
        fn padded_customers<'a>(user_ids: &'a [&str]) -> impl Iterator<Item = String> + 'a {
            let padding = padded_len(user_ids.len()) - user_ids.len();
            user_ids.iter().map(|u| u.to_string()).chain(std::iter::repeat_n(String::new(), padding))
        }

        /// The standings read (`standing_rows`) for `padding` customers: the show is `$1`, the
        /// window's start `$2`, the customers `$3` on; rows of (customer, state, deadline,
        /// places). Each customer's booked tickets are one row of `customer_tickets`, read by key.
        fn standings_sql(padding: usize) -> String {
            let listed = placeholders(3, padding);
            let customers = (3..3 + padding).map(|i| format!("(${i})")).collect::<Vec<_>>().join(", ");
            format!(
                "SELECT h.user_id, h.state, h.expires_at, \
                 CAST(COALESCE((SELECT SUM(hi.quantity) FROM hold_items hi WHERE hi.hold_id = h.id), 0) AS BIGINT) \
                 FROM holds h WHERE h.user_id IN ({listed}) AND h.show_id = $1 AND h.state IN ('active', 'expired') \
                 AND (h.state = 'active' OR h.expires_at > $2) \
                 UNION ALL \
                 SELECT c.id, 'booked', 0, COALESCE((SELECT t.tickets FROM customer_tickets t WHERE t.user_id = c.id AND t.show_id = $1), 0) \
                 FROM (SELECT column1 AS id FROM (VALUES {customers}) AS listed) c"
            )
        }

        /// The front-most row (rank) of these seats; `None` for no seats.
        async fn first_row_of(conn: &mut Conn, seat_ids: &[String]) -> StoreResult<Option<i64>> {
            if seat_ids.is_empty() {
                return Ok(None);
            }
            let sql = format!("SELECT MIN(row_rank) FROM seats WHERE id IN ({})", placeholders(1, seat_ids.len()));
            let mut query = sqlx::query_scalar::<_, Option<i64>>(AssertSqlSafe(sql));
            for id in seat_ids {
                query = query.bind(id.clone());
            }
            Ok(query.fetch_one(&mut *conn).await?)
        }

        /// How a claim treats a seat that another transaction has locked.
        #[derive(Clone, Copy, PartialEq)]
        enum Busy {
            /// Wait for it: the customer named that seat.
            Wait,
            /// Count it as taken: best-available chooses again rather than queue behind a faster
            /// customer for a seat it would most likely lose (and keep a connection waiting).
            Taken,
        }

        /// `head`, the hold ids as a list padded to a few lengths (`padded`), then `tail`.
        fn by_hold_ids(head: &str, hold_ids: &[String], tail: &str) -> sqlx::QueryBuilder<$db> {
            let mut query = sqlx::QueryBuilder::new(head);
            push_padded(&mut query, hold_ids);
            query.push(tail);
            query
        }

        /// The ids sorted (the order rows are locked in), each once.
        fn sorted_unique(ids: impl Iterator<Item = String>) -> Vec<String> {
            ids.collect::<std::collections::BTreeSet<_>>().into_iter().collect()
        }

        /// The ids as a list of binds padded to a few lengths (`padded`).
        fn push_padded(query: &mut sqlx::QueryBuilder<$db>, ids: &[String]) {
            let mut listed = query.separated(", ");
            for id in padded(ids) {
                listed.push_bind(id.clone());
            }
        }

        /// Takes the shows of these holds (`hold_ids` sorted) shared in id order, then locks the
        /// holds in id order and reads them with their items, by id, in one statement. The
        /// shows' lock is an uncorrelated subquery of the holds' condition, which runs once,
        /// before the first hold row reaches the lock above the scan: the order stays shows,
        /// then holds. The shows' ids are those of the holds read. Locked and then updated by the
        /// same transaction, not a savepoint of it: a row locked by a transaction and updated by
        /// its savepoint becomes a multixact.
        async fn share_shows_and_lock_holds(conn: &mut Conn, hold_ids: &[String]) -> StoreResult<BTreeMap<String, Hold>> {
            let head = format!(
                "SELECT {HOLD_WITH_ITEM_COLUMNS} FROM (SELECT * FROM holds WHERE (SELECT COUNT(*) FROM \
                 (SELECT id FROM shows WHERE id IN (SELECT show_id FROM holds WHERE id IN ("
            );
            let mut query = by_hold_ids(&head, hold_ids, concat!(")) ORDER BY id", $share, ") shared) >= 0 AND id IN ("));
            push_padded(&mut query, hold_ids);
            query.push(concat!(") ORDER BY id", $lock, ") h ", $items_of_each_hold, " ORDER BY h.id, hi.position"));
            holds_from_rows(query.build_query_as().fetch_all(&mut *conn).await?)
        }

        /// Locks the seats these holds (`hold_ids` sorted) still hold, in seat-id order (like
        /// every claim), and counts them per hold.
        async fn lock_held_seats(conn: &mut Conn, hold_ids: &[String]) -> StoreResult<BTreeMap<String, u64>> {
            let mut query = by_hold_ids("SELECT hold_id FROM show_seats WHERE hold_id IN (", hold_ids, concat!(") AND state = 'held' ORDER BY seat_id", $lock));
            let holds: Vec<String> = query.build_query_scalar().fetch_all(&mut *conn).await?;
            let mut held = BTreeMap::new();
            for hold in holds {
                *held.entry(hold).or_default() += 1;
            }
            Ok(held)
        }

        /// The holds of the bookings converted and their seats sold to them, as the caller's
        /// `writes`: unconditional, so only under the locks `decide_booking_group` decided by.
        fn convert_holds_into(writes: &mut Writes<$db>, confirmed: &[Confirmed<'_>]) {
            let hold_ids: Vec<String> = confirmed.iter().map(|c| c.hold.id.to_string()).collect();
            let seated: Vec<(String, String)> = confirmed
                .iter()
                .filter(|c| seats_of(&c.hold) > 0)
                .map(|c| (c.hold.id.to_string(), c.booking.id.to_string()))
                .collect();
            // The holds by an id list padded (`padded`) to a few lengths: planned for each
            // list, it stays a primary-key lookup however small the table was when a cached
            // plan would have been made (a generic plan from a sale's first seconds scanned
            // the whole table for every group after).
            writes.add(|sql| {
                sql.push("UPDATE holds SET state = 'converted' WHERE id IN (");
                let mut ids = sql.separated(", ");
                for id in padded(&hold_ids) {
                    ids.push_bind(id.clone());
                }
                ids.push_unseparated(")");
            });
            if seated.is_empty() {
                return;
            }
            if FUSE_WRITES {
                // The seats by one JSON parameter, so that the statement's text does not change
                // with the number of bookings (see `Writes`); `show_seats` is written (and its
                // statistics refreshed) with the show, so the join is planned from its real size.
                let sold: Vec<serde_json::Value> = seated.iter().map(|(hold, booking)| serde_json::json!({"hold_id": hold, "booking_id": booking})).collect();
                let sold = serde_json::Value::from(sold).to_string();
                writes.add(|sql| {
                    sql.push(
                        "UPDATE show_seats SET state = 'sold', hold_id = NULL, held_until = NULL, booking_id = r.booking_id \
                         FROM json_populate_recordset(NULL::show_seats, CAST(",
                    )
                    .push_bind(sold)
                    .push(" AS json)) r WHERE show_seats.state = 'held' AND show_seats.hold_id = r.hold_id");
                });
                return;
            }
            writes.add(|sql| {
                sql.push("UPDATE show_seats SET state = 'sold', hold_id = NULL, held_until = NULL, booking_id = CASE hold_id");
                for (hold, booking) in padded(&seated) {
                    sql.push(" WHEN ").push_bind(hold.clone()).push(" THEN ").push_bind(booking.clone());
                }
                sql.push(" END WHERE state = 'held' AND hold_id IN (");
                let mut ids = sql.separated(", ");
                for (hold, _) in padded(&seated) {
                    ids.push_bind(hold.clone());
                }
                ids.push_unseparated(")");
            });
        }

        /// A show's seat as a group of claims finds it under lock.
        struct LockedSeat {
            state: String,
            held_until: Option<i64>,
            label: String,
            category: String,
        }

        /// A group's customers' standings (as `standing_rows`), the `areas` it asks for (name and
        /// category, as `area_items` reads them) and its seats, locked and read, in one
        /// statement: the standings first (read after the customers' locks, by a statement of
        /// its own, as they must be), the areas, then the `waiting` seats (sorted) in seat-id order,
        /// waiting for any other transaction that has one locked (`Busy::Wait`), then the
        /// `passing` ones (sorted), where a row another transaction has locked is passed over and
        /// missing from the answer, like a seat the show does not have (`Busy::Taken`). Each part
        /// of a `UNION ALL` runs after the one before it, so the locks keep the claims' order.
        async fn standings_areas_and_seats(
            conn: &mut Conn,
            show_id: &str,
            user_ids: &[&str],
            since: Timestamp,
            areas: &[String],
            waiting: &[String],
            passing: &[String],
        ) -> StoreResult<(Standings, BTreeMap<String, (String, String)>, BTreeMap<String, LockedSeat>)> {
            let customers = padded_len(user_ids.len());
            let parts: Vec<(&[String], Busy)> = [(waiting, Busy::Wait), (passing, Busy::Taken)].into_iter().filter(|(ids, _)| !ids.is_empty()).collect();
            let mut next = 3 + customers;
            let mut sql = format!(
                "SELECT 'standing' AS kind, standing.*, CAST(NULL AS TEXT) AS label, CAST(NULL AS TEXT) AS category FROM ({}) AS standing",
                standings_sql(customers)
            );
            if !areas.is_empty() {
                let listed = placeholders(next, padded_len(areas.len()));
                next += padded_len(areas.len());
                sql += &format!(
                    " UNION ALL SELECT 'area', sa.area_id, a.name, CAST(NULL AS BIGINT), 0, CAST(NULL AS TEXT), a.category \
                     FROM show_areas sa JOIN areas a ON a.id = sa.area_id WHERE sa.show_id = $1 AND sa.area_id IN ({listed})"
                );
            }
            for (ids, busy) in &parts {
                let listed = placeholders(next, padded_len(ids.len()));
                next += padded_len(ids.len());
                sql += &format!(
                    " UNION ALL SELECT 'seat', locked.seat_id, locked.state, locked.held_until, 0, locked.label, locked.category \
                     FROM (SELECT seat_id, state, held_until, \
                     (SELECT s.label FROM seats s WHERE s.id = show_seats.seat_id) AS label, \
                     (SELECT s.category FROM seats s WHERE s.id = show_seats.seat_id) AS category \
                     FROM show_seats WHERE show_id = $1 AND seat_id IN ({listed}) ORDER BY seat_id{}) AS locked",
                    if *busy == Busy::Taken { $skip_locked } else { $lock }
                );
            }
            type Row = (String, String, String, Option<i64>, i64, Option<String>, Option<String>);
            let mut query = sqlx::query_as::<_, Row>(AssertSqlSafe(sql)).bind(show_id.to_owned()).bind(lapse_window_start(since));
            for user in padded_customers(user_ids) {
                query = query.bind(user);
            }
            for id in padded(areas) {
                query = query.bind(id.clone());
            }
            for (ids, _) in &parts {
                for id in padded(ids) {
                    query = query.bind(id.clone());
                }
            }
            let mut standings = Standings::new();
            let mut named_areas = BTreeMap::new();
            let mut seats = BTreeMap::new();
            for (kind, id, state, deadline, quantity, label, category) in query.fetch_all(&mut *conn).await? {
                match (kind.as_str(), label, category) {
                    ("seat", Some(label), Some(category)) => {
                        seats.insert(id, LockedSeat { state, held_until: deadline, label, category });
                    }
                    // An area's name comes in the state's column.
                    ("area", None, Some(category)) => {
                        named_areas.insert(id, (state, category));
                    }
                    ("standing", None, None) => standings.entry(id).or_default().push(StandingRow { state, expires_at: deadline.unwrap_or(0), quantity }),
                    (kind, ..) => return Err(StoreError::Corrupt(format!("a group's read gave a {kind} row {id} it cannot read"))),
                }
            }
            Ok((standings, named_areas, seats))
        }

        /// Claims locked seats for the holds a group granted them to, each claim a (seat, hold,
        /// held until), padded (`padded_len`) with claims of no seat; with `writes`, the group's
        /// holds' rows, in the same statement on an engine that fuses writes (one round trip
        /// fewer in the line every sale of the show waits for).
        async fn claim_locked_seats_and_write(conn: &mut Conn, show_id: &str, claims: &[(String, String, i64)], writes: Writes<$db>) -> StoreResult<()> {
            if claims.is_empty() {
                return run_writes(conn, writes).await;
            }
            let nothing = (String::new(), String::new(), 0);
            let rows = claims.iter().chain(std::iter::repeat_n(&nothing, padded_len(claims.len()) - claims.len()));
            let claimed: Vec<(String,)> = run_writes_returning(conn, writes, |sql| {
                sql.push(
                    "UPDATE show_seats SET state = 'held', hold_id = claims.hold_id, held_until = claims.held_until, booking_id = NULL \
                     FROM (SELECT column1 AS seat_id, column2 AS hold_id, column3 AS held_until FROM (",
                );
                sql.push_values(rows, |mut row, (seat, hold, until)| {
                    row.push_bind(seat.clone()).push_bind(hold.clone()).push_bind(*until);
                });
                sql.push(") AS listed) AS claims WHERE show_seats.show_id = ")
                    .push_bind(show_id.to_owned())
                    .push(" AND show_seats.seat_id = claims.seat_id RETURNING show_seats.seat_id");
            })
            .await?;
            if claimed.len() != claims.len() {
                return Err(StoreError::Corrupt(format!("a group claimed {} of {} locked seats", claimed.len(), claims.len())));
            }
            Ok(())
        }

        /// The hold a command makes of its items, less its discounts.
        fn new_hold(cmd: &CreateHold, show: &Show, items: Vec<HoldItem>, promo_code: Option<String>, discount: i64, (points, points_off): (i64, i64)) -> Hold {
            Hold {
                id: cmd.hold_id.clone(),
                show_id: show.id.clone(),
                user_id: cmd.user_id.clone(),
                state: HoldState::Active,
                total: Money::new(total_of(&items) - discount - points_off, show.currency.clone()),
                discount_minor: discount,
                points_redeemed: points,
                promo_code,
                items,
                created_at: cmd.now,
                expires_at: cmd.now.plus_minutes(show.hold_minutes),
            }
        }

        /// Claims the named seats for the hold if every one is free at `now`, in one statement:
        /// the seats are locked in seat-id order (the subquery), and the update takes those that
        /// are free (the SQL form of `SeatState::effective`: a seat whose hold ran out is free).
        /// Fewer rows back than seats asked for means no: the caller's transaction is rolled
        /// back, and only then are the seats read again to say which were unknown or taken.
        async fn claim_seats(
            conn: &mut Conn,
            show: &Show,
            seat_ids: &[SeatId],
            busy: Busy,
            hold_id: &HoldId,
            until: Timestamp,
            now: Timestamp,
        ) -> StoreResult<Vec<HoldItem>> {
            let mut ids: Vec<String> = seat_ids.iter().map(|s| s.to_string()).collect();
            ids.sort();
            // The seat's label and category come back with the claim (scalar subqueries: only
            // the show's seat rows are locked, not the venue's, which every show shares).
            // The seat ids are named outside the subquery too, so the update finds its rows by
            // key whatever the statistics say: a show put on sale right after its seats were
            // written has the statistics of before them, and without the list the planner chose
            // to scan the show's seats (15-40 ms a claim) until autovacuum looked.
            let listed = placeholders(5, ids.len());
            let sql = format!(
                "UPDATE show_seats SET state = 'held', hold_id = $1, held_until = $2, booking_id = NULL \
                 WHERE show_id = $3 AND seat_id IN ({listed}) \
                 AND {} \
                 AND seat_id IN (SELECT seat_id FROM show_seats WHERE show_id = $3 AND seat_id IN ({listed}) ORDER BY seat_id{}) \
                 RETURNING seat_id, \
                 (SELECT s.label FROM seats s WHERE s.id = show_seats.seat_id) AS label, \
                 (SELECT s.category FROM seats s WHERE s.id = show_seats.seat_id) AS category",
                free_at("", "$4"),
                if busy == Busy::Taken { $skip_locked } else { $lock }
            );
            let mut claim = sqlx::query_as::<_, (String, String, String)>(AssertSqlSafe(sql))
                .bind(hold_id.to_string())
                .bind(until.unix_ms())
                .bind(show.id.to_string())
                .bind(now.unix_ms());
            for id in &ids {
                claim = claim.bind(id.clone());
            }
            let claimed = claim.fetch_all(&mut *conn).await?;
            if claimed.len() != ids.len() {
                return Err(refused_claim(conn, show, seat_ids, &claimed).await);
            }
            let info: BTreeMap<&str, (&str, &str)> =
                claimed.iter().map(|(id, label, category)| (id.as_str(), (label.as_str(), category.as_str()))).collect();
            seat_ids
                .iter()
                .map(|id| {
                    let (label, category) = info.get(id.as_str()).ok_or_else(|| StoreError::Corrupt(format!("seat {id} vanished")))?;
                    Ok(HoldItem {
                        seat_id: Some(id.clone()),
                        area_id: None,
                        label: label.to_string(),
                        category: category.to_string(),
                        quantity: 1,
                        unit_price_minor: show.price_of(category)?,
                    })
                })
                .collect()
        }

        /// Why a claim got fewer seats than it asked for: seats the show does not have, else
        /// the ones it did not get (held, sold, blocked, or locked by a faster claim).
        async fn refused_claim(conn: &mut Conn, show: &Show, seat_ids: &[SeatId], claimed: &[(String, String, String)]) -> StoreError {
            let sql = format!("SELECT seat_id FROM show_seats WHERE show_id = $1 AND seat_id IN ({})", placeholders(2, seat_ids.len()));
            let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).bind(show.id.to_string());
            for id in seat_ids {
                query = query.bind(id.to_string());
            }
            let known = match query.fetch_all(&mut *conn).await {
                Ok(known) => known,
                Err(e) => return e.into(),
            };
            let unknown: Vec<FieldError> = seat_ids
                .iter()
                .enumerate()
                .filter(|(_, id)| !known.iter().any(|k| k == id.as_str()))
                .map(|(i, _)| FieldError::new(format!("seat_ids.{i}"), "is not a seat of this show"))
                .collect();
            if !unknown.is_empty() {
                return DomainError::Validation(unknown).into();
            }
            let taken = seat_ids
                .iter()
                .filter(|id| !claimed.iter().any(|(c, _, _)| c == id.as_str()))
                .map(|id| id.to_string())
                .collect();
            DomainError::SeatUnavailable { seat_ids: taken }.into()
        }

        /// What best-available is asked for: `quantity` seats of `category`, side by side unless
        /// `scattered_ok`, never those in `avoid`, reading from row `start_rank`.
        #[derive(Clone, Copy)]
        struct Pick<'a> {
            category: &'a str,
            quantity: i64,
            scattered_ok: bool,
            avoid: &'a [String],
            start_rank: i64,
        }

        /// Chooses seats without locks, front rows first, a few rows at a time so a large
        /// venue is not read whole when the front has room; `claim_seats` then decides under
        /// lock, and the caller chooses again if someone was faster.
        async fn pick_best_available(conn: &mut Conn, show: &Show, pick: &Pick<'_>, now: Timestamp) -> StoreResult<(Vec<SeatId>, i64)> {
            let layout = layout_of(conn, show, pick.category).await?;
            pick_in(conn, &layout, pick, now).await
        }

        /// The show's venue and the last row of its seats of `category`: where a pick reads.
        async fn layout_of(conn: &mut Conn, show: &Show, category: &str) -> StoreResult<PickLayout> {
            let last_rank: Option<i64> = sqlx::query_scalar(
                "SELECT row_rank FROM seats WHERE venue_id = $1 AND category = $2 ORDER BY row_rank DESC LIMIT 1",
            )
                .bind(show.venue_id.to_string())
                .bind(category)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(last_rank) = last_rank else {
                return Err(DomainError::invalid("best_available.category", "this show has no seats in that category").into());
            };
            Ok(PickLayout { show_id: show.id.to_string(), venue_id: show.venue_id.to_string(), last_rank })
        }

        /// Reads of rows with room for a block a pick makes at most (2, 4, … 64 rows: 126 rows
        /// with room), unless only seats together will do. Near a sell-out many rows have free
        /// seats but none side by side; reading all of them for every pick held the pool's
        /// connections long enough to stall the sale (20 granted holds a second where there had
        /// been 700). The next pick goes on where this one stopped, so the hall is still searched.
        const BLOCK_READS: usize = 6;

        /// `pick_best_available` in a layout already read.
        ///
        /// Every seat of the rows read comes with them (taken seats still tell where a row's
        /// middle is), each by one correlated primary-key probe rather than a join: the plan
        /// stays a scan of these rows whatever the statistics say (a join let PostgreSQL choose
        /// to read the whole show once statistics existed). A seat the show does not sell counts
        /// as taken. Three reads, each as few rows at a time as will do (2, then twice as many
        /// each time):
        /// 1. the rows from the hint on, where a hall with room has its block;
        /// 2. then only the next rows with at least `quantity` free seats (found by
        ///    `show_seats_open`, the seats not sold), the only rows a block can be in (a hall sold
        ///    seat by seat keeps single seats scattered over its rows), `BLOCK_READS` at most;
        /// 3. no block found: the front rows with any free seat, from the first row, until there
        ///    are enough for scattered seats (all of them when scattered seats will not do, to
        ///    say how many are free), so a pick never says sold out on the word of a hint.
        ///
        /// The answer's row is where the next pick of as many starts: the rows before it had no
        /// block (a hint is trusted for `HINT_LIFETIME`, and frees here move it back at once).
        async fn pick_in(conn: &mut Conn, layout: &PickLayout, pick: &Pick<'_>, now: Timestamp) -> StoreResult<(Vec<SeatId>, i64)> {
            let Pick { category, quantity, scattered_ok, avoid, start_rank } = *pick;
            let last_rank = layout.last_rank;
            let seats_of_rows = |rows: &str| {
                format!(
                    "SELECT s.id, s.row_rank, s.number, s.x, \
                     COALESCE((SELECT {} FROM show_seats ss WHERE ss.show_id = $1 AND ss.seat_id = s.id), false) AS free \
                     FROM seats s WHERE s.venue_id = $2 AND s.category = $3 AND {rows}",
                    free_at("ss.", "$6")
                )
            };
            let next_rows = seats_of_rows("s.row_rank >= $4 AND s.row_rank < $4 + $5");
            let next_rows_with_room = seats_of_rows(&format!(
                "s.row_rank IN (SELECT o.row_rank FROM show_seats o WHERE o.show_id = $1 AND o.category = $3 \
                 AND o.state IN ('free', 'held') AND {} AND o.row_rank >= $4 \
                 GROUP BY o.row_rank HAVING COUNT(*) >= $7 ORDER BY o.row_rank LIMIT $5)",
                free_at("o.", "$6")
            ));
            // `count` rows of the category from `from` on: every row, or with `Some(room)` those
            // with that many free seats. What was read, and the last row read.
            let mut read_rows = async |from: i64, count: i64, room: Option<i64>| -> StoreResult<(Vec<Candidate>, Option<i64>)> {
                let read = if room.is_some() { &next_rows_with_room } else { &next_rows };
                let mut query = sqlx::query_as::<_, CandidateRow>(AssertSqlSafe(read.as_str()))
                    .bind(layout.show_id.as_str())
                    .bind(layout.venue_id.as_str())
                    .bind(category)
                    .bind(from)
                    .bind(count)
                    .bind(now.unix_ms());
                if let Some(room) = room {
                    query = query.bind(room);
                }
                let rows = query.fetch_all(&mut *conn).await?;
                let last = rows.iter().map(|r| r.row_rank).max();
                let read = rows
                    .into_iter()
                    .map(|r| Candidate {
                        free: r.free && !avoid.contains(&r.id),
                        seat_id: SeatId::from_trusted(r.id),
                        row_rank: r.row_rank,
                        number: r.number,
                        x: r.x,
                    })
                    .collect();
                Ok((read, last))
            };
            // A block's row, for the next pick of as many: the rows read before it had none.
            let found = |candidates: &[Candidate]| {
                best_available::block(candidates, quantity as usize).map(|block| {
                    let row = candidates.iter().find(|c| Some(&c.seat_id) == block.first()).map_or(start_rank, |c| c.row_rank);
                    (block, row)
                })
            };
            // Reads go on after the last row read, twice as many rows each time, 64 at most.
            let step = |last: i64, count: i64| (last + 1, (count * 2).min(64));
            let (mut candidates, _) = read_rows(start_rank, 2, None).await?;
            if let Some(found) = found(&candidates) {
                return Ok(found);
            }
            let (mut from_rank, mut rows_per_read, mut reads) = (start_rank + 2, 2, 0);
            while from_rank <= last_rank && (reads < BLOCK_READS || !scattered_ok) {
                reads += 1;
                let (rows, last) = read_rows(from_rank, rows_per_read, Some(quantity)).await?;
                let Some(last) = last else {
                    from_rank = last_rank + 1;
                    break;
                };
                candidates.extend(rows);
                if let Some(found) = found(&candidates) {
                    return Ok(found);
                }
                (from_rank, rows_per_read) = step(last, rows_per_read);
            }
            // No block before `from_rank`: where the next pick of as many goes on.
            let next_start = from_rank;
            let mut scattered: Vec<Candidate> = Vec::new();
            let (mut from_rank, mut rows_per_read) = (0, 2);
            let free = |seats: &[Candidate]| seats.iter().filter(|c| c.free).count() as i64;
            while from_rank <= last_rank && (free(&scattered) < quantity || !scattered_ok) {
                let (rows, last) = read_rows(from_rank, rows_per_read, Some(1)).await?;
                let Some(last) = last else { break };
                scattered.extend(rows);
                (from_rank, rows_per_read) = step(last, rows_per_read);
            }
            match best_available::pick(&scattered, quantity as usize).filter(|_| scattered_ok) {
                Some(picked) => Ok((picked, next_start)),
                None => Err(DomainError::CapacityUnavailable { area: category.to_owned(), available: free(&scattered), requested: quantity }.into()),
            }
        }

        /// Places of retired holds that go back to their areas, as (show, area, quantity).
        /// Given back last in the transaction: area rows come last in the lock order.
        #[must_use]
        struct AreaReturns(Vec<(String, String, i64)>);

        /// Moves the listed holds that are still active to `state`; what they held of any area
        /// is returned for `give_back` once everything else of the transaction is written.
        async fn retire_holds(conn: &mut Conn, ids: &[String], state: &'static str) -> StoreResult<(Vec<String>, AreaReturns)> {
            if ids.is_empty() {
                return Ok((Vec::new(), AreaReturns(Vec::new())));
            }
            // Locked in id order (the subquery), whatever plan the update gets: two sweepers, or a
            // sweeper and a release, that locked the same holds in different orders deadlocked.
            let mut ids = ids.to_vec();
            ids.sort();
            let listed = placeholders(2, ids.len());
            let sql = format!(
                "UPDATE holds SET state = $1 WHERE state = 'active' AND id IN ({listed}) \
                 AND id IN (SELECT id FROM holds WHERE id IN ({listed}) ORDER BY id{}) RETURNING id",
                $lock
            );
            let mut update = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).bind(state);
            for id in &ids {
                update = update.bind(id.clone());
            }
            let retired: Vec<String> = update.fetch_all(&mut *conn).await?;
            if retired.is_empty() {
                return Ok((retired, AreaReturns(Vec::new())));
            }
            let sql = format!(
                "SELECT show_id, area_id, CAST(SUM(quantity) AS BIGINT) FROM hold_items \
                 WHERE area_id IS NOT NULL AND hold_id IN ({}) GROUP BY show_id, area_id ORDER BY show_id, area_id",
                placeholders(1, retired.len())
            );
            let mut query = sqlx::query_as::<_, (String, String, i64)>(AssertSqlSafe(sql));
            for id in &retired {
                query = query.bind(id.clone());
            }
            let returns = query.fetch_all(&mut *conn).await?;
            Ok((retired, AreaReturns(returns)))
        }

        /// Takes the places of retired holds off the area counters, in (show, area) order.
        async fn give_back(conn: &mut Conn, returns: AreaReturns) -> StoreResult<()> {
            for (show_id, area_id, quantity) in returns.0 {
                sqlx::query("UPDATE show_areas SET held = held - $3 WHERE show_id = $1 AND area_id = $2")
                    .bind(show_id)
                    .bind(area_id)
                    .bind(quantity)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// Retires the show's general-admission holds past their deadline, so the area counters
        /// hold only live places; O(expired holds), not O(all holds).
        async fn retire_lapsed_area_holds(conn: &mut Conn, show_id: &str, now: Timestamp) -> StoreResult<usize> {
            let expired: Vec<String> = sqlx::query_scalar(
                "SELECT h.id FROM holds h WHERE h.show_id = $1 AND h.state = 'active' AND h.expires_at <= $2 \
                 AND EXISTS (SELECT 1 FROM hold_items hi WHERE hi.hold_id = h.id AND hi.area_id IS NOT NULL)",
            )
            .bind(show_id.to_owned())
            .bind(now.unix_ms())
            .fetch_all(&mut *conn)
            .await?;
            let (retired, returns) = retire_holds(conn, &expired, "expired").await?;
            give_back(conn, returns).await?;
            Ok(retired.len())
        }

        /// The hold items for the requested standing places, read without locks: names,
        /// categories and prices do not change during a sale. `take_area_places` claims them.
        async fn area_items(conn: &mut Conn, show: &Show, requested: &[AreaQuantity]) -> StoreResult<Vec<HoldItem>> {
            let mut items = Vec::with_capacity(requested.len());
            for (i, want) in requested.iter().enumerate() {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT a.name, a.category FROM show_areas sa JOIN areas a ON a.id = sa.area_id \
                     WHERE sa.show_id = $1 AND sa.area_id = $2",
                )
                .bind(show.id.to_string())
                .bind(want.area_id.to_string())
                .fetch_optional(&mut *conn)
                .await?;
                items.push(area_item(show, i, want, row)?);
            }
            Ok(items)
        }

        /// The item of the `i`-th area asked for, from the area's (name, category) as the show
        /// has it (`None`: the show has no such area).
        fn area_item(show: &Show, i: usize, want: &AreaQuantity, area: Option<(String, String)>) -> Result<HoldItem, DomainError> {
            let Some((name, category)) = area else {
                return Err(DomainError::invalid(format!("areas.{i}.area_id"), "is not an area of this show"));
            };
            Ok(HoldItem {
                seat_id: None,
                area_id: Some(want.area_id.clone()),
                label: name,
                unit_price_minor: show.price_of(&category)?,
                category,
                quantity: want.quantity,
            })
        }

        /// The standing places of the items per area, in area order (the order area rows are locked in).
        fn area_quantities(items: &[HoldItem]) -> BTreeMap<&str, i64> {
            let mut per_area = BTreeMap::new();
            for item in items {
                if let Some(area) = &item.area_id {
                    *per_area.entry(area.as_str()).or_default() += item.quantity;
                }
            }
            per_area
        }

        /// Claims the items' standing places on the area counters, in area order, each with one
        /// conditional update, so an area row is locked only from here to the commit (area rows
        /// come last in the lock order: every general-admission sale of a show goes through
        /// the one row). For one area, only when its places do not fit are the show's lapsed
        /// holds retired and the claim tried again.
        async fn take_area_places(conn: &mut Conn, show_id: &str, items: &[HoldItem], now: Timestamp) -> StoreResult<()> {
            let per_area = area_quantities(items);
            // The lapsed holds are retired before any area's row is locked, since holds come
            // before areas in the lock order. Retired only once an area was found full, they were
            // locked while that area's row was held: a conditional update that waits for another
            // transaction's update of the row locks its newest version before it checks the
            // condition again, and keeps the lock when the area turns out full. A release or the
            // sweeper, locking the same holds and then the area, deadlocked with it (the
            // conformance test `general_admission_paths_racing_keep_the_counters`, one run in seven).
            if per_area.is_empty() {
                return Ok(());
            }
            retire_lapsed_area_holds(conn, show_id, now).await?;
            for (area, quantity) in per_area {
                loop {
                    if take_places_if_room(conn, show_id, area, quantity).await? {
                        break;
                    }
                    let (capacity, sold, held): (i64, i64, i64) =
                        sqlx::query_as("SELECT capacity, sold, held FROM show_areas WHERE show_id = $1 AND area_id = $2")
                            .bind(show_id.to_owned())
                            .bind(area.to_owned())
                            .fetch_one(&mut *conn)
                            .await?;
                    let name = items.iter().find(|i| i.area_id.as_ref().is_some_and(|a| a.as_str() == area)).map_or(area, |i| i.label.as_str());
                    inventory::check_area_claim(name, capacity, sold, held, quantity)?;
                    // Room appeared between the update and the read (a release committed): try again.
                }
            }
            Ok(())
        }

        /// Takes `quantity` places of the area's counter if they fit, with one conditional update.
        async fn take_places_if_room(conn: &mut Conn, show_id: &str, area: &str, quantity: i64) -> StoreResult<bool> {
            let taken = sqlx::query("UPDATE show_areas SET held = held + $3 WHERE show_id = $1 AND area_id = $2 AND capacity - sold - held >= $3")
                .bind(show_id.to_owned())
                .bind(area.to_owned())
                .bind(quantity)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            Ok(taken == 1)
        }

        /// Claims standing places at once, for a caller that holds the show exclusively.
        async fn claim_areas(conn: &mut Conn, show: &Show, requested: &[AreaQuantity], now: Timestamp) -> StoreResult<Vec<HoldItem>> {
            let items = area_items(conn, show, requested).await?;
            take_area_places(conn, show.id.as_str(), &items, now).await?;
            Ok(items)
        }

        async fn insert_hold_rows(conn: &mut Conn, hold: &Hold, promo_id: Option<&str>) -> StoreResult<()> {
            let mut writes = Writes::<$db>::new(FUSE_WRITES);
            hold_rows_into(&mut writes, hold, promo_id);
            run_writes(conn, writes).await
        }

        /// Deletes holds this transaction wrote (and their items), which it found it cannot
        /// grant after all.
        async fn delete_holds(conn: &mut Conn, ids: &[String]) -> StoreResult<()> {
            if ids.is_empty() {
                return Ok(());
            }
            let listed = placeholders(1, ids.len());
            for sql in [format!("DELETE FROM hold_items WHERE hold_id IN ({listed})"), format!("DELETE FROM holds WHERE id IN ({listed})")] {
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for id in ids {
                    query = query.bind(id.clone());
                }
                query.execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// The hold's row and its items, as the caller's `writes`.
        fn hold_rows_into(writes: &mut Writes<$db>, hold: &Hold, promo_id: Option<&str>) {
            writes.insert("INSERT INTO holds (id, show_id, user_id, state, total_minor, currency, created_at, expires_at, \
                     promo_id, promo_code, discount_minor, points_redeemed)", |row| {
                row.push_bind(hold.id.to_string())
                    .push_bind(hold.show_id.to_string())
                    .push_bind(hold.user_id.to_string())
                    .push_bind(hold.state.as_str())
                    .push_bind(hold.total.amount_minor)
                    .push_bind(hold.total.currency.to_string())
                    .push_bind(hold.created_at.unix_ms())
                    .push_bind(hold.expires_at.unix_ms())
                    .push_bind(promo_id.map(str::to_owned))
                    .push_bind(hold.promo_code.clone())
                    .push_bind(hold.discount_minor)
                    .push_bind(hold.points_redeemed);
            });
            if hold.items.is_empty() {
                return;
            }
            for (position, item) in hold.items.iter().enumerate() {
                writes.insert("INSERT INTO hold_items (hold_id, position, show_id, seat_id, area_id, label, category, quantity, unit_price_minor)", |row| {
                    row.push_bind(hold.id.to_string())
                        .push_bind(position as i64)
                        .push_bind(hold.show_id.to_string())
                        .push_bind(item.seat_id.as_ref().map(|s| s.to_string()))
                        .push_bind(item.area_id.as_ref().map(|a| a.to_string()))
                        .push_bind(item.label.clone())
                        .push_bind(item.category.clone())
                        .push_bind(item.quantity)
                        .push_bind(item.unit_price_minor);
                });
            }
        }

        /// Moves `quantity` standing places of the show's area from held to sold, in `writes`.
        fn sell_places_into(writes: &mut Writes<$db>, show_id: &str, area: &str, quantity: i64) {
            writes.add(|sql| {
                sql.push("UPDATE show_areas SET sold = sold + ")
                    .push_bind(quantity)
                    .push(", held = held - ")
                    .push_bind(quantity)
                    .push(" WHERE show_id = ")
                    .push_bind(show_id.to_owned())
                    .push(" AND area_id = ")
                    .push_bind(area.to_owned());
            });
        }

        /// A booking's work in the caller's transaction: the hold converted, its seats sold,
        /// the booking, tickets, ledger, rewards, payment and event written, and its standing
        /// places sold.
        async fn book_in(conn: &mut Conn, cmd: &ConfirmHold) -> StoreResult<Booking> {
        let hold = load_hold(conn, cmd.hold_id.as_str()).await?.ok_or(DomainError::NotFound("hold"))?;
        hold.check_confirmable(&cmd.user_id, cmd.now)?;
        let (show, _) = share_show(conn, hold.show_id.as_str()).await?.ok_or(DomainError::NotFound("show"))?;
        if show.state != boxoffice_core::catalog::ShowState::Scheduled {
            return Err(DomainError::NotOnSale("the show was cancelled".into()).into());
        }
        let converted = sqlx::query(
            "UPDATE holds SET state = 'converted' WHERE id = $1 AND state = 'active' AND expires_at > $2",
        )
        .bind(hold.id.to_string())
        .bind(cmd.now.unix_ms())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if converted != 1 {
            return Err(DomainError::HoldExpired.into());
        }
        let sold = sqlx::query(
            // By the hold alone: with the show as well, a generic plan read the show's seats.
            // Locked in seat-id order (the subquery), like every claim's.
            concat!("UPDATE show_seats SET state = 'sold', booking_id = $1, hold_id = NULL, held_until = NULL \
             WHERE hold_id = $2 AND state = 'held' \
             AND seat_id IN (SELECT seat_id FROM show_seats WHERE hold_id = $2 ORDER BY seat_id", $lock, ")"),
        )
        .bind(cmd.booking_id.to_string())
        .bind(hold.id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if sold != seats_of(&hold) {
            // A seat left this hold (expired and claimed elsewhere); sell nothing.
            return Err(DomainError::HoldExpired.into());
        }
        let booking = booking_of(cmd, &hold, &show)?;
        let one = [Confirmed { cmd, hold, show, booking }];
        let Confirmed { hold, show, booking, .. } = &one[0];
        // The rest is written together (one statement on PostgreSQL), rows pointed at first.
        let mut writes = Writes::<$db>::new(FUSE_WRITES);
        booking_rows_into(&mut writes, &one)?;
        let paid = ledger::payment_transfers(&show.organizer_id, &booking.user_id, booking.total.amount_minor, cmd.wallet_minor);
        post_into(conn, &mut writes, "booking_paid", booking.id.as_str(), booking.total.currency.as_str(), &paid, cmd.now).await?;
        if let Some(payment) = &cmd.payment_id {
            // The payment row points at the booking, which must be written first.
            run_writes(conn, std::mem::replace(&mut writes, Writes::new(FUSE_WRITES))).await?;
            settle_payment(conn, payment, &booking.id, cmd.now).await?;
        }
        if let Some(paid) = paid_with(cmd, booking) {
            if paid.idempotency_key.is_some() {
                // Its own statement, so a second payment under the key is told apart.
                run_writes(conn, std::mem::replace(&mut writes, Writes::new(FUSE_WRITES))).await?;
                insert_payment_row(conn, &paid, Some(show.organizer_id.as_str())).await?;
            } else {
                payment_rows_into(&mut writes, &paid, show.organizer_id.as_str());
            }
        }
        booking_confirmed_into(&mut writes, &one[0]);
        // Area rows last: the one row every standing sale of the show goes through is
        // locked only from here to the commit.
        for (area, quantity) in area_quantities(&hold.items) {
            sell_places_into(&mut writes, hold.show_id.as_str(), area, quantity);
        }
        run_writes(conn, writes).await?;
        let [Confirmed { booking, .. }] = one;
        Ok(booking)
        }

        /// A booking decided and about to be written, with what its rows are made of.
        struct Confirmed<'a> {
            cmd: &'a ConfirmHold,
            hold: Hold,
            show: Show,
            booking: Booking,
        }

        /// The hold's reserved seats.
        fn seats_of(hold: &Hold) -> u64 {
            hold.items.iter().filter(|i| i.seat_id.is_some()).count() as u64
        }

        /// The booking the command makes of the hold, its tickets signed; nothing written.
        fn booking_of(cmd: &ConfirmHold, hold: &Hold, show: &Show) -> StoreResult<Booking> {
            let booking = Booking {
                id: cmd.booking_id.clone(),
                show_id: hold.show_id.clone(),
                user_id: hold.user_id.clone(),
                hold_id: hold.id.clone(),
                state: BookingState::Confirmed,
                total: hold.total.clone(),
                payment_reference: cmd.payment_reference.clone(),
                refund: None,
                wallet_minor: cmd.wallet_minor,
                refunded_minor: None,
                tickets: hold
                    .items
                    .iter()
                    .flat_map(|item| (0..item.quantity).map(move |_| item))
                    .map(|item| {
                        let id = TicketId::generate();
                        let claims = boxoffice_core::ticket::TicketClaims {
                            ticket_id: id.clone(),
                            show_id: hold.show_id.clone(),
                            organizer_id: show.organizer_id.clone(),
                            seat: item.label.clone(),
                            holder: hold.user_id.clone(),
                            valid_from: show.starts_at.plus_minutes(-boxoffice_core::ticket::DOORS_OPEN_HOURS * 60),
                            valid_until: show.ends_at.plus_minutes(boxoffice_core::ticket::VALID_AFTER_END_HOURS * 60),
                        };
                        boxoffice_core::booking::Ticket {
                            code: (cmd.sign_ticket)(&claims),
                            id,
                            seat_id: item.seat_id.clone(),
                            area_id: item.area_id.clone(),
                            label: item.label.clone(),
                            category: item.category.clone(),
                            price_minor: item.unit_price_minor,
                        }
                    })
                    .collect(),
                created_at: cmd.now,
                cancelled_at: None,
            };
            if !(0..=booking.total.amount_minor).contains(&cmd.wallet_minor) {
                return Err(DomainError::invalid("payment.wallet_minor", "must be between 0 and the total").into());
            }
            Ok(booking)
        }

        /// The payment that succeeded at once for the booking, as it is recorded with it.
        fn paid_with(cmd: &ConfirmHold, booking: &Booking) -> Option<$crate::Payment> {
            cmd.new_payment.as_ref().map(|payment| $crate::Payment {
                state: boxoffice_core::payment::PaymentState::Succeeded,
                booking_id: Some(booking.id.clone()),
                updated_at: cmd.now,
                ..payment.clone()
            })
        }

        /// The rows of the bookings that point at nothing but their booking and the customer (the
        /// bookings, each customer's booked tickets, the tickets, the rewards), as the caller's
        /// `writes`, one insert per table for all of them, bookings first.
        fn booking_rows_into(writes: &mut Writes<$db>, confirmed: &[Confirmed<'_>]) -> StoreResult<()> {
            for Confirmed { booking, .. } in confirmed {
                writes.insert("INSERT INTO bookings (id, hold_id, show_id, user_id, state, total_minor, currency, payment_reference, \
                         created_at, cancelled_at, wallet_minor, ticket_count)", |row| {
                    row.push_bind(booking.id.to_string())
                        .push_bind(booking.hold_id.to_string())
                        .push_bind(booking.show_id.to_string())
                        .push_bind(booking.user_id.to_string())
                        .push_bind(booking.state.as_str())
                        .push_bind(booking.total.amount_minor)
                        .push_bind(booking.total.currency.to_string())
                        .push_bind(booking.payment_reference.clone())
                        .push_bind(booking.created_at.unix_ms())
                        .push_bind(None::<i64>)
                        .push_bind(booking.wallet_minor)
                        .push_bind(booking.tickets.len() as i64);
                });
            }
            // One row per customer and show: an upsert may not touch a row twice.
            let mut tickets_of: BTreeMap<(&str, &str), i64> = BTreeMap::new();
            for Confirmed { booking, .. } in confirmed {
                *tickets_of.entry((booking.user_id.as_str(), booking.show_id.as_str())).or_default() += booking.tickets.len() as i64;
            }
            let upsert = Insert::into("INSERT INTO customer_tickets (user_id, show_id, tickets)")
                .then("ON CONFLICT (user_id, show_id) DO UPDATE SET tickets = customer_tickets.tickets + excluded.tickets");
            for ((user, show), tickets) in &tickets_of {
                writes.insert(upsert, |row| {
                    row.push_bind(user.to_string()).push_bind(show.to_string()).push_bind(*tickets);
                });
            }
            for Confirmed { booking, .. } in confirmed {
                for (position, ticket) in booking.tickets.iter().enumerate() {
                    writes.insert("INSERT INTO tickets (id, booking_id, position, seat_id, area_id, label, category, price_minor, code)", |row| {
                        row.push_bind(ticket.id.to_string())
                            .push_bind(booking.id.to_string())
                            .push_bind(position as i64)
                            .push_bind(ticket.seat_id.as_ref().map(|s| s.to_string()))
                            .push_bind(ticket.area_id.as_ref().map(|a| a.to_string()))
                            .push_bind(ticket.label.clone())
                            .push_bind(ticket.category.clone())
                            .push_bind(ticket.price_minor)
                            .push_bind(ticket.code.clone());
                    });
                }
            }
            for Confirmed { cmd, hold, show, booking } in confirmed {
                reward_booking(writes, booking, hold, show, cmd.scratch_draw, cmd.now)?;
            }
            Ok(())
        }

        /// The booking's `booking_confirmed` event, as one of the caller's `writes`.
        fn booking_confirmed_into(writes: &mut Writes<$db>, confirmed: &Confirmed<'_>) {
            let Confirmed { cmd, show, booking, .. } = confirmed;
            emit_into(
                writes,
                show.organizer_id.as_str(),
                EventKind::BookingConfirmed,
                booking.id.as_str(),
                serde_json::json!({ "booking": booking }),
                cmd.now,
            );
        }

        /// Records the answer under the key, in the caller's transaction. `false` means another
        /// request with this key committed first: the caller must roll back and replay it.
        async fn save_response<T: serde::Serialize>(
            conn: &mut Conn,
            idem: &IdempotencyKey,
            value: &T,
            now: Timestamp,
        ) -> StoreResult<bool> {
            let body = serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, response_status, response_body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, key) DO NOTHING",
            )
            .bind(idem.user_id.to_string())
            .bind(idem.key.clone())
            .bind(idem.fingerprint.clone())
            .bind(i64::from(idem.status))
            .bind(body)
            .bind(now.unix_ms())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(inserted == 1)
        }

        async fn load_saved(conn: &mut Conn, user_id: &str, key: &str) -> StoreResult<Option<SavedResponse>> {
            let row: Option<SavedRow> = sqlx::query_as(
                "SELECT response_status, response_body, fingerprint FROM idempotency_keys WHERE user_id = $1 AND key = $2",
            )
            .bind(user_id)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row.map(|r| SavedResponse {
                status: u16::try_from(r.response_status).unwrap_or(500),
                body: r.response_body,
                fingerprint: r.fingerprint,
            }))
        }

        /// Commits `value` under `idem` (if any), or — when the key was taken meanwhile — rolls
        /// everything back and returns the first answer instead.
        async fn finish<T: serde::Serialize + Send>(
            store: &$store,
            mut w: WriteTx<$db>,
            idem: Option<&IdempotencyKey>,
            value: T,
            now: Timestamp,
        ) -> StoreResult<Outcome<T>> {
            if let Some(idem) = idem {
                if !save_response(&mut *w.tx, idem, &value, now).await? {
                    w.tx.rollback().await?;
                    drop(w._gate);
                    let mut conn = store.pool.acquire().await?;
                    let saved = load_saved(&mut *conn, idem.user_id.as_str(), &idem.key).await?;
                    return saved
                        .map(Outcome::Replayed)
                        .ok_or_else(|| StoreError::Corrupt("idempotency key vanished".into()));
                }
            }
            w.tx.commit().await?;
            Ok(Outcome::Done(value))
        }

        /// Law 4 around a command: a key already answered replays that answer, and a command that
        /// failed because its twin under the same key won the race replays the twin's answer.
        async fn once<T, F>(store: &$store, idem: Option<&IdempotencyKey>, command: F) -> StoreResult<Outcome<T>>
        where
            F: std::future::Future<Output = StoreResult<Outcome<T>>>,
        {
            async fn saved(store: &$store, idem: Option<&IdempotencyKey>) -> StoreResult<Option<SavedResponse>> {
                let Some(idem) = idem else { return Ok(None) };
                let mut conn = store.pool.acquire().await?;
                load_saved(&mut *conn, idem.user_id.as_str(), &idem.key).await
            }
            if let Some(first) = saved(store, idem).await? {
                return Ok(Outcome::Replayed(first));
            }
            match command.await {
                Err(StoreError::Domain(e)) => match saved(store, idem).await? {
                    Some(first) => Ok(Outcome::Replayed(first)),
                    None => Err(e.into()),
                },
                other => other,
            }
        }

        async fn insert_layout(conn: &mut Conn, venue: &Venue) -> StoreResult<()> {
            for (position, section) in venue.sections.iter().enumerate() {
                sqlx::query("INSERT INTO sections (id, venue_id, name, position) VALUES ($1, $2, $3, $4)")
                    .bind(section.id.to_string())
                    .bind(venue.id.to_string())
                    .bind(section.name.clone())
                    .bind(position as i64)
                    .execute(&mut *conn)
                    .await?;
            }
            for chunk in venue.seats.chunks(500) {
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO seats (id, venue_id, section_id, row_label, row_rank, number, label, category, x, y, blocked) ",
                );
                insert.push_values(chunk, |mut row, seat| {
                    row.push_bind(seat.id.to_string())
                        .push_bind(venue.id.to_string())
                        .push_bind(seat.section_id.to_string())
                        .push_bind(seat.row_label.clone())
                        .push_bind(seat.row_rank)
                        .push_bind(seat.number)
                        .push_bind(seat.label.clone())
                        .push_bind(seat.category.clone())
                        .push_bind(seat.x)
                        .push_bind(seat.y)
                        .push_bind(i64::from(seat.blocked));
                });
                insert.build().execute(&mut *conn).await?;
            }
            for (position, area) in venue.areas.iter().enumerate() {
                sqlx::query("INSERT INTO areas (id, venue_id, name, category, capacity, position) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(area.id.to_string())
                    .bind(venue.id.to_string())
                    .bind(area.name.clone())
                    .bind(area.category.clone())
                    .bind(area.capacity)
                    .bind(position as i64)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// A row per seat and a counter per area for one show, from its venue's layout.
        async fn insert_inventory(conn: &mut Conn, show_id: &str, venue_id: &str) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO show_seats (show_id, seat_id, state, category, row_rank) \
                 SELECT $1, id, CASE WHEN blocked <> 0 THEN 'blocked' ELSE 'free' END, category, row_rank FROM seats WHERE venue_id = $2",
            )
            .bind(show_id.to_owned())
            .bind(venue_id.to_owned())
            .execute(&mut *conn)
            .await?;
            sqlx::query("INSERT INTO show_areas (show_id, area_id, capacity, sold) SELECT $1, id, capacity, 0 FROM areas WHERE venue_id = $2")
                .bind(show_id.to_owned())
                .bind(venue_id.to_owned())
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// Appends the discovery filters of `query` (over `shows s`, `events e`, `venues v`).
        fn push_show_filters(sql: &mut sqlx::QueryBuilder<$db>, query: &ShowQuery, now: Timestamp) {
            if !query.include_cancelled {
                sql.push(" AND s.state = 'scheduled'");
            }
            if let Some(text) = &query.text {
                let pattern = format!("%{}%", text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
                sql.push(" AND (LOWER(e.title) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                sql.push(" OR LOWER(e.description) LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
                sql.push(" OR LOWER(e.tags) LIKE ").push_bind(pattern).push(" ESCAPE '\\')");
            }
            if let Some(kind) = &query.kind {
                sql.push(" AND e.kind = ").push_bind(kind.clone());
            }
            if let Some(event_id) = &query.event_id {
                sql.push(" AND s.event_id = ").push_bind(event_id.to_string());
            }
            if let Some(venue_id) = &query.venue_id {
                sql.push(" AND s.venue_id = ").push_bind(venue_id.to_string());
            }
            if let Some(city) = &query.city {
                sql.push(" AND LOWER(v.city) = ").push_bind(city.to_lowercase());
            }
            if let Some(from) = query.starts_from {
                sql.push(" AND s.starts_at >= ").push_bind(from.unix_ms());
            }
            if let Some(before) = query.starts_before {
                sql.push(" AND s.starts_at < ").push_bind(before.unix_ms());
            }
            if query.min_price.is_some() || query.max_price.is_some() {
                sql.push(" AND EXISTS (SELECT 1 FROM show_prices p WHERE p.show_id = s.id AND p.amount_minor >= ")
                    .push_bind(query.min_price.unwrap_or(0))
                    .push(" AND p.amount_minor <= ")
                    .push_bind(query.max_price.unwrap_or(i64::MAX))
                    .push(")");
            }
            if query.available {
                sql.push(" AND s.off_sale_at > ").push_bind(now.unix_ms());
                sql.push(
                    " AND (EXISTS (SELECT 1 FROM show_seats ss WHERE ss.show_id = s.id AND (ss.state = 'free' \
                     OR (ss.state = 'held' AND ss.held_until <= ",
                )
                .push_bind(now.unix_ms())
                .push(
                    "))) OR EXISTS (SELECT 1 FROM show_areas sa WHERE sa.show_id = s.id AND sa.capacity - sa.sold > \
                     COALESCE((SELECT SUM(hi.quantity) FROM hold_items hi JOIN holds h ON h.id = hi.hold_id \
                     WHERE hi.show_id = sa.show_id AND hi.area_id = sa.area_id AND h.state = 'active' AND h.expires_at > ",
                )
                .push_bind(now.unix_ms())
                .push("), 0)))");
            }
        }

        /// Inserts shows and their inventory after checking, under the venues' locks, that none
        /// overlaps another scheduled show at the same venue.
        async fn insert_shows_checked(conn: &mut Conn, shows: &[Show]) -> StoreResult<()> {
            let mut venues: Vec<&VenueId> = shows.iter().map(|s| &s.venue_id).collect();
            venues.sort();
            venues.dedup();
            let mut existing = Vec::new();
            for venue in venues {
                sqlx::query(concat!("SELECT id FROM venues WHERE id = $1", $lock)).bind(venue.to_string()).execute(&mut *conn).await?;
                let at_venue: Vec<&Show> = shows.iter().filter(|s| &s.venue_id == venue).collect();
                let first = at_venue.iter().map(|s| s.starts_at).min().unwrap_or(Timestamp::from_unix_ms(0));
                let last = at_venue.iter().map(|s| s.ends_at).max().unwrap_or(Timestamp::from_unix_ms(0));
                let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                    "SELECT id, starts_at, ends_at FROM shows WHERE venue_id = $1 AND state = 'scheduled' \
                     AND starts_at < $3 AND ends_at > $2",
                )
                .bind(venue.to_string())
                .bind(first.unix_ms())
                .bind(last.unix_ms())
                .fetch_all(&mut *conn)
                .await?;
                existing.extend(rows.into_iter().map(|(id, starts, ends)| {
                    (ShowId::from_trusted(id), Timestamp::from_unix_ms(starts), Timestamp::from_unix_ms(ends))
                }));
            }
            let clashes = boxoffice_core::schedule::conflicts(shows, &existing);
            if !clashes.is_empty() {
                return Err(DomainError::ScheduleConflict(clashes).into());
            }
            for show in shows {
                insert_show_rows(conn, show).await?;
            }
            Ok(())
        }

        async fn insert_show_rows(conn: &mut Conn, show: &Show) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO shows (id, event_id, organizer_id, venue_id, state, starts_at, ends_at, on_sale_at, off_sale_at, \
                 currency, hold_minutes, max_tickets_per_order, max_tickets_per_customer, format, language, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(show.id.to_string())
            .bind(show.event_id.to_string())
            .bind(show.organizer_id.to_string())
            .bind(show.venue_id.to_string())
            .bind(show.state.as_str())
            .bind(show.starts_at.unix_ms())
            .bind(show.ends_at.unix_ms())
            .bind(show.on_sale_at.unix_ms())
            .bind(show.off_sale_at.unix_ms())
            .bind(show.currency.to_string())
            .bind(show.hold_minutes)
            .bind(show.max_tickets_per_order)
            .bind(show.max_tickets_per_customer)
            .bind(show.format.map(|f| f.as_str()))
            .bind(show.language.clone())
            .bind(show.created_at.unix_ms())
            .execute(&mut *conn)
            .await?;
            for (category, amount) in &show.prices {
                sqlx::query("INSERT INTO show_prices (show_id, category, amount_minor, locked) VALUES ($1, $2, $3, $4)")
                    .bind(show.id.to_string())
                    .bind(category.clone())
                    .bind(*amount)
                    .bind(show.locked_categories.contains(category))
                    .execute(&mut *conn)
                    .await?;
            }
            insert_inventory(conn, show.id.as_str(), show.venue_id.as_str()).await?;
            Ok(())
        }

        /// Inserts the event, or (with `new = false`) rewrites its details.
        async fn write_event(conn: &mut Conn, event: &Event, new: bool) -> StoreResult<()> {
            let sql = if new {
                "INSERT INTO events (id, organizer_id, title, kind, description, duration_minutes, tags, age_rating, \
                 image_url, language, subtitles, format, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            } else {
                "UPDATE events SET organizer_id = $2, title = $3, kind = $4, description = $5, duration_minutes = $6, tags = $7, \
                 age_rating = $8, image_url = $9, language = $10, subtitles = $11, format = $12, created_at = $13 WHERE id = $1"
            };
            sqlx::query(sql)
                .bind(event.id.to_string())
                .bind(event.organizer_id.to_string())
                .bind(event.title.clone())
                .bind(event.kind.as_str())
                .bind(event.description.clone())
                .bind(event.duration_minutes)
                .bind(serde_json::to_string(&event.tags).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                .bind(event.age_rating.clone())
                .bind(event.image_url.clone())
                .bind(event.language.clone())
                .bind(event.subtitles.clone())
                .bind(event.format.map(|f| f.as_str()))
                .bind(event.created_at.unix_ms())
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        impl $store {
            /// A group of releases, each decided as alone from its hold's row under lock: the
            /// shows shared and the holds locked in id order, then the seats of the holds still
            /// active freed in seat-id order and their standing places given back last, area by
            /// area (the lock order of every claim), and committed once. A hold already over
            /// (expired, released) is answered as it is and a booked one refused, as alone.
            async fn decide_release_group(&self, group: &[ReleaseClaim]) -> StoreResult<Vec<ReleaseAnswer>> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let mut hold_ids: Vec<String> = group.iter().map(|c| c.hold_id.to_string()).collect();
                hold_ids.sort_unstable();
                hold_ids.dedup();
                let mut holds = share_shows_and_lock_holds(conn, &hold_ids).await?;
                let mut answers = Vec::with_capacity(group.len());
                let mut released: Vec<String> = Vec::new();
                // Every hold released here or over already: seats still held under its id are
                // freed too, as alone (a cancelled show's holds are retired with their seats left).
                let mut freeing: Vec<String> = Vec::new();
                let mut returns: BTreeMap<(String, String), i64> = BTreeMap::new();
                for claim in group {
                    let hold = holds.get_mut(claim.hold_id.as_str()).filter(|h| h.user_id == claim.user_id);
                    let answer = match hold {
                        None => Err(DomainError::NotFound("hold").into()),
                        Some(hold) if hold.state == HoldState::Converted => Err(DomainError::HoldAlreadyBooked.into()),
                        Some(hold) => {
                            freeing.push(hold.id.to_string());
                            if hold.state == HoldState::Active {
                                released.push(hold.id.to_string());
                                for (area, quantity) in area_quantities(&hold.items) {
                                    *returns.entry((hold.show_id.to_string(), area.to_owned())).or_default() += quantity;
                                }
                                hold.state = HoldState::Released;
                            }
                            Ok(hold.clone().as_of(claim.now))
                        }
                    };
                    answers.push(answer);
                }
                if freeing.is_empty() {
                    return Ok(answers);
                }
                if !released.is_empty() {
                    let mut retire = by_hold_ids("UPDATE holds SET state = 'released' WHERE id IN (", &released, ")");
                    retire.build().execute(&mut *conn).await?;
                }
                // The seats locked in seat-id order (the subquery), whatever plan the update gets;
                // each freed seat's row rank comes back for best-available's hint.
                let mut free = sqlx::QueryBuilder::<$db>::new("UPDATE show_seats SET state = 'free', hold_id = NULL, held_until = NULL WHERE state = 'held' AND hold_id IN (");
                let mut ids = free.separated(", ");
                for id in padded(&freeing) {
                    ids.push_bind(id.clone());
                }
                free.push(") AND (show_id, seat_id) IN (SELECT show_id, seat_id FROM show_seats WHERE state = 'held' AND hold_id IN (");
                let mut ids = free.separated(", ");
                for id in padded(&freeing) {
                    ids.push_bind(id.clone());
                }
                free.push(concat!(
                    ") ORDER BY seat_id",
                    $lock,
                    ") RETURNING show_id, (SELECT s.row_rank FROM seats s WHERE s.id = show_seats.seat_id)"
                ));
                let freed: Vec<(String, i64)> = free.build_query_as().fetch_all(&mut *conn).await?;
                // A payment still waiting for the customer's bank ends with its hold (one the
                // provider is already deciding runs on, and is refunded if it succeeds). Payment
                // rows come after seats, as in a booking.
                let now = group.iter().map(|c| c.now).max().unwrap_or(group[0].now);
                let mut cancel = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE payments SET state = 'cancelled', failure_reason = 'the customer released the seats', updated_at = ",
                );
                cancel.push_bind(now.unix_ms()).push(" WHERE state = 'requires_action' AND hold_id IN (");
                let mut ids = cancel.separated(", ");
                for id in padded(&freeing) {
                    ids.push_bind(id.clone());
                }
                cancel.push(")").build().execute(&mut *conn).await?;
                give_back(conn, AreaReturns(returns.into_iter().map(|((show, area), quantity)| (show, area, quantity)).collect())).await?;
                w.tx.commit().await?;
                let mut first_rows: BTreeMap<String, i64> = BTreeMap::new();
                for (show, rank) in freed {
                    let first = first_rows.entry(show).or_insert(rank);
                    *first = (*first).min(rank);
                }
                for (show, rank) in first_rows {
                    self.hint_freed(&show, Ok(Some(rank)));
                }
                Ok(answers)
            }

            /// After many rows land at once (a show's seats, a venue's layout), PostgreSQL's
            /// statistics describe the table as it was until autovacuum looks (up to a minute),
            /// and plans made meanwhile (a flash sale starts at once) can be far off: with the
            /// statistics of a hall of 200, a claim in a new hall of 20,000 read the whole show
            /// (15-40 ms instead of 0.3). Only a refresh: a failure changes nothing.
            async fn refresh_statistics(&self, table: &'static str) {
                if REFRESH_STATISTICS
                    && let Err(error) = sqlx::query(AssertSqlSafe(format!("ANALYZE {table}"))).execute(&self.pool).await
                {
                    tracing::warn!(%error, table, "could not refresh the table's statistics");
                }
            }

            /// Moves best-available's hint back to the first row of seats this process freed.
            async fn seats_freed(&self, show: &str, seat_ids: &[String]) {
                if seat_ids.is_empty() {
                    return;
                }
                let rank = match self.pool.acquire().await {
                    Ok(mut conn) => first_row_of(&mut *conn, seat_ids).await,
                    Err(e) => Err(e.into()),
                };
                self.hint_freed(show, rank);
            }

            /// `seats_freed` with the row read in the caller's transaction.
            fn hint_freed(&self, show: &str, first_row: StoreResult<Option<i64>>) {
                match first_row {
                    Ok(Some(rank)) => self.best_hints.freed(show, rank),
                    Ok(None) => {}
                    // Only a hint: without the rank, picks read the show from the front.
                    Err(_) => self.best_hints.freed(show, 0),
                }
            }

            /// A new hold, grouped with the others of its show arriving meanwhile (group commit)
            /// when it can be, else alone: a hold with an idempotency key, a promo code or points
            /// to spend, or places in several areas, needs the lone path's rollback when a later
            /// step refuses it, and so does one the group could not decide.
            async fn try_create_hold_grouped(&self, cmd: &CreateHold, chosen: Option<&[SeatId]>, idem: Option<&IdempotencyKey>) -> StoreResult<Outcome<Hold>> {
                let groupable = idem.is_none()
                    && cmd.promo_code.is_none()
                    && cmd.redeem_points == 0
                    && !matches!(&cmd.request, HoldRequest::Areas(areas) if areas.len() != 1);
                if groupable {
                    let claim = HoldClaim { cmd: cmd.clone(), chosen: chosen.map(<[SeatId]>::to_vec) };
                    let store = self.clone();
                    let run = move |group: Vec<HoldClaim>| {
                        let store = store.clone();
                        async move { store.decide_hold_group(&group).await }
                    };
                    if let Some(Some(decided)) = self.holds_waiting.join(claim, run).await {
                        return decided.map(Outcome::Done);
                    }
                }
                self.try_create_hold(cmd, chosen, idem).await
            }

            /// The lone path's rules for each claim in arrival order, with the work shared: the
            /// show read once, the customers locked and their standings read in one statement
            /// each, the seats locked in one statement per kind of wait and claimed in one
            /// (`inventory::grant_in_order` decides who gets them), each area's places taken
            /// for all its claims by one update, and every hold written by one statement.
            async fn decide_hold_group(&self, group: &[HoldClaim]) -> StoreResult<Vec<HoldAnswer>> {
                /// What a claim that passed its customer's rules asks for.
                enum Want<'a> {
                    Seats(&'a [SeatId], Busy),
                    Places(&'a AreaQuantity),
                }
                let Some(first) = group.first() else { return Ok(Vec::new()) };
                let show_id = first.cmd.show_id.as_str();
                let since = group.iter().map(|c| c.cmd.now).min().unwrap_or(first.cmd.now);
                let mut answers: Vec<HoldAnswer> = group.iter().map(|_| None).collect();
                let mut customers: Vec<&str> = group.iter().map(|c| c.cmd.user_id.as_str()).collect();
                customers.sort_unstable();
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let Some((show, organizer_state)) = read_show(conn, show_id, $share, &customers).await? else {
                    return Ok(group.iter().map(|_| Some(Err(DomainError::NotFound("show").into()))).collect());
                };
                // Every seat the group names or chose, locked with the standings' read: a claim its
                // customer's standing refuses only had its seats locked until the commit.
                let seats_of = |busy: Busy| {
                    sorted_unique(group
                        .iter()
                        .filter_map(|claim| match (&claim.cmd.request, busy) {
                            (HoldRequest::Seats(ids), Busy::Wait) => Some(ids.as_slice()),
                            (HoldRequest::BestAvailable { .. }, Busy::Taken) => claim.chosen.as_deref(),
                            _ => None,
                        })
                        .flatten()
                        .map(|id| id.to_string()))
                };
                let waiting = seats_of(Busy::Wait);
                let passing: Vec<String> = seats_of(Busy::Taken).into_iter().filter(|id| waiting.binary_search(id).is_err()).collect();
                let asked_areas = sorted_unique(group.iter().filter_map(|claim| match &claim.cmd.request {
                    HoldRequest::Areas(areas) => areas.first().map(|a| a.area_id.to_string()),
                    _ => None,
                }));
                let (mut standings, named_areas, seats) = standings_areas_and_seats(conn, show_id, &customers, since, &asked_areas, &waiting, &passing).await?;

                let mut wants: Vec<(usize, Want)> = Vec::new();
                for (i, claim) in group.iter().enumerate() {
                    let cmd = &claim.cmd;
                    let rows = standings.remove(cmd.user_id.as_str()).unwrap_or_default();
                    let checked = (|| -> StoreResult<Want> {
                        show.check_on_sale(cmd.now)?;
                        if organizer_state.as_deref() != Some("active") {
                            return Err(DomainError::NotOnSale("this organizer's sales are suspended".into()).into());
                        }
                        let standing = CustomerStanding::of(rows, cmd.now);
                        hold::check_hoarding(standing.active, &standing.lapsed, cmd.now)?;
                        show.check_ticket_limits(cmd.request.quantity(), standing.tickets)?;
                        Ok(match &cmd.request {
                            HoldRequest::Seats(ids) => Want::Seats(ids, Busy::Wait),
                            HoldRequest::BestAvailable { .. } => {
                                let ids = claim.chosen.as_deref().ok_or_else(|| StoreError::Corrupt("best-available without a choice".into()))?;
                                Want::Seats(ids, Busy::Taken)
                            }
                            HoldRequest::Areas(areas) => Want::Places(&areas[0]),
                        })
                    })();
                    match checked {
                        Ok(want) => wants.push((i, want)),
                        Err(refused) => answers[i] = Some(Err(refused)),
                    }
                }

                let seat_claims: Vec<(usize, &[SeatId], Busy)> = wants
                    .iter()
                    .filter_map(|(i, want)| match want {
                        Want::Seats(ids, busy) => Some((*i, *ids, *busy)),
                        Want::Places(_) => None,
                    })
                    .collect();
                let asked: Vec<&[SeatId]> = seat_claims.iter().map(|(_, ids, _)| *ids).collect();
                let verdicts = inventory::grant_in_order(&asked, |k, seat| {
                    let (i, _, busy) = seat_claims[k];
                    match seats.get(seat.as_str()) {
                        Some(row) => match SeatState::effective(&row.state, row.held_until.map(Timestamp::from_unix_ms), group[i].cmd.now) {
                            SeatState::Free => inventory::SeatLook::Free,
                            _ => inventory::SeatLook::Taken,
                        },
                        None if busy == Busy::Wait => inventory::SeatLook::Unknown,
                        None => inventory::SeatLook::Taken,
                    }
                });
                let mut holds: Vec<(usize, Hold)> = Vec::new();
                let mut claimed = Vec::new();
                for ((i, ids, _), verdict) in seat_claims.iter().zip(verdicts) {
                    let cmd = &group[*i].cmd;
                    let items = verdict.map_err(StoreError::from).and_then(|()| {
                        let items = ids
                            .iter()
                            .map(|id| {
                                let row = seats.get(id.as_str()).ok_or_else(|| StoreError::Corrupt(format!("seat {id} vanished")))?;
                                Ok(HoldItem {
                                    seat_id: Some(id.clone()),
                                    area_id: None,
                                    label: row.label.clone(),
                                    category: row.category.clone(),
                                    quantity: 1,
                                    unit_price_minor: show.price_of(&row.category)?,
                                })
                            })
                            .collect::<StoreResult<Vec<_>>>()?;
                        boxoffice_core::promo::check_unlocked(&show, items.iter().map(|i| i.category.as_str()), None)?;
                        Ok(items)
                    });
                    match items {
                        Ok(items) => {
                            let hold = new_hold(cmd, &show, items, None, 0, (0, 0));
                            claimed.extend(ids.iter().map(|id| (id.to_string(), hold.id.to_string(), hold.expires_at.unix_ms())));
                            holds.push((*i, hold));
                        }
                        Err(refused) => answers[*i] = Some(Err(refused)),
                    }
                }

                // Standing places last (area rows end the lock order), area by area: all of an
                // area's claims with one update when they fit together, else one by one; a claim
                // that does not fit goes alone, where lapsed holds are retired before a refusal.
                // Every hold's rows are written first: the area's row, which every standing sale of
                // the show waits for, is then locked only from its update to the commit (taken
                // before the rows, it stayed locked while their foreign keys were checked), and the
                // rows of a claim that did not fit are deleted again.
                let mut per_area: BTreeMap<&str, Vec<(usize, Vec<HoldItem>)>> = BTreeMap::new();
                for (i, want) in &wants {
                    let Want::Places(want) = want else { continue };
                    let area = want.area_id.as_str();
                    // A grouped claim asks for one area (`try_create_hold_grouped`): its first.
                    let checked = area_item(&show, 0, want, named_areas.get(area).cloned()).and_then(|item| {
                        boxoffice_core::promo::check_unlocked(&show, [item.category.as_str()], None)?;
                        Ok(vec![item])
                    });
                    match checked {
                        Ok(items) => per_area.entry(area).or_default().push((*i, items)),
                        Err(refused) => answers[*i] = Some(Err(refused.into())),
                    }
                }
                let placing: Vec<(&str, Vec<(usize, Hold)>)> = per_area
                    .into_iter()
                    .map(|(area, claims)| (area, claims.into_iter().map(|(i, items)| (i, new_hold(&group[i].cmd, &show, items, None, 0, (0, 0)))).collect()))
                    .collect();
                let mut writes = Writes::<$db>::new(FUSE_WRITES);
                for (_, hold) in holds.iter().chain(placing.iter().flat_map(|(_, claims)| claims)) {
                    hold_rows_into(&mut writes, hold, None);
                }
                claim_locked_seats_and_write(conn, show_id, &claimed, writes).await?;
                let mut unplaced = Vec::new();
                for (area, claims) in placing {
                    let together: i64 = claims.iter().map(|(_, hold)| hold.items[0].quantity).sum();
                    let all_fit = take_places_if_room(conn, show_id, area, together).await?;
                    for (i, hold) in claims {
                        if all_fit || take_places_if_room(conn, show_id, area, hold.items[0].quantity).await? {
                            holds.push((i, hold));
                        } else {
                            unplaced.push(hold.id.to_string());
                        }
                    }
                }
                delete_holds(conn, &unplaced).await?;
                if let Err(error) = w.tx.commit().await {
                    // Whether it committed is not known: no claim may go again alone.
                    let lost = |_| Some(Err(StoreError::Database(sqlx::Error::Io(std::io::Error::other(format!("a group of holds failed to commit: {error}"))))));
                    return Ok(group.iter().map(lost).collect());
                }
                for (i, hold) in holds {
                    answers[i] = Some(Ok(hold));
                }
                Ok(answers)
            }

            async fn try_create_hold(&self, cmd: &CreateHold, chosen: Option<&[SeatId]>, idem: Option<&IdempotencyKey>) -> StoreResult<Outcome<Hold>> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                // One customer's holds run one at a time, so two tabs cannot both pass the limit:
                // the customer's row is locked with the show's read, and what the customer holds
                // is read by the next statement, which sees whatever the other tab committed.
                let (show, organizer_state) = read_show(conn, cmd.show_id.as_str(), $share, &[cmd.user_id.as_str()])
                    .await?
                    .ok_or(DomainError::NotFound("show"))?;
                show.check_on_sale(cmd.now)?;
                if organizer_state.as_deref() != Some("active") {
                    return Err(DomainError::NotOnSale("this organizer's sales are suspended".into()).into());
                }
                let standing = customer_standing(conn, cmd.user_id.as_str(), show.id.as_str(), cmd.now).await?;
                hold::check_hoarding(standing.active, &standing.lapsed, cmd.now)?;
                show.check_ticket_limits(cmd.request.quantity(), standing.tickets)?;
                let expires_at = cmd.now.plus_minutes(show.hold_minutes);
                let items = match &cmd.request {
                    HoldRequest::Seats(ids) => claim_seats(conn, &show, ids, Busy::Wait, &cmd.hold_id, expires_at, cmd.now).await?,
                    HoldRequest::BestAvailable { .. } => {
                        let ids = chosen.ok_or_else(|| StoreError::Corrupt("best-available without a choice".into()))?;
                        claim_seats(conn, &show, ids, Busy::Taken, &cmd.hold_id, expires_at, cmd.now).await?
                    }
                    HoldRequest::Areas(areas) => area_items(conn, &show, areas).await?,
                };
                let subtotal = total_of(&items);
                let applied = match &cmd.promo_code {
                    Some(code) => Some(apply_promo(conn, &show, cmd.user_id.as_str(), code, subtotal, cmd.now).await?),
                    None => None,
                };
                boxoffice_core::promo::check_unlocked(&show, items.iter().map(|i| i.category.as_str()), applied.as_ref().map(|(p, _)| p))?;
                let discount = applied.as_ref().map_or(0, |(_, d)| *d);
                // Points are counted under the customer's lock taken above, so two holds cannot
                // spend the same points.
                let (points, points_off) = if cmd.redeem_points > 0 {
                    let available = points_available(conn, cmd.user_id.as_str(), cmd.now).await?;
                    boxoffice_core::loyalty::redemption(cmd.redeem_points, available, subtotal - discount)?
                } else {
                    (0, 0)
                };
                let hold = new_hold(cmd, &show, items, applied.as_ref().map(|(p, _)| p.code.clone()), discount, (points, points_off));
                insert_hold_rows(conn, &hold, applied.as_ref().map(|(p, _)| p.id.as_str())).await?;
                take_area_places(conn, show.id.as_str(), &hold.items, cmd.now).await?;
                finish(self, w, idem, hold, cmd.now).await
            }

            async fn try_confirm_hold(&self, cmd: ConfirmHold, idem: Option<&IdempotencyKey>) -> StoreResult<Outcome<Booking>> {
                let mut w = self.begin_write().await?;
                let booking = book_in(&mut *w.tx, &cmd).await?;
                finish(self, w, idem, booking, cmd.now).await
            }

            /// A booking, grouped with the others arriving meanwhile (group commit), when it is
            /// paid by card alone: a wallet's share must be locked and checked, a payment under
            /// a key or one decided earlier can be refused by its own write, and an idempotency
            /// key's twin is told apart by the lone path.
            async fn try_confirm_hold_grouped(&self, cmd: ConfirmHold, idem: Option<&IdempotencyKey>) -> StoreResult<Outcome<Booking>> {
                let by_card_alone = cmd.wallet_minor == 0 && cmd.payment_id.is_none() && cmd.new_payment.as_ref().is_none_or(|p| p.idempotency_key.is_none());
                if idem.is_some() || !by_card_alone {
                    return self.try_confirm_hold(cmd, idem).await;
                }
                let store = self.clone();
                let run = move |group: Vec<BookingClaim>| {
                    let store = store.clone();
                    async move { store.decide_booking_group(&group).await }
                };
                match self.bookings_waiting.join(BookingClaim(cmd.clone()), run).await {
                    Some(Some(decided)) => decided.map(Outcome::Done),
                    _ => self.try_confirm_hold(cmd, None).await,
                }
            }

            /// A group of bookings paid by card, decided as if one after another in arrival
            /// order, from what their holds' rows show under lock: the shows shared, the holds
            /// and then their seats locked in id order (release and expiry take them in the
            /// same order). Refusals are decided before anything is written; then every row of
            /// every booking is written at once (one statement on PostgreSQL, one insert per
            /// table), the standing places sold by a statement of their own, and committed once.
            async fn decide_booking_group(&self, group: &[BookingClaim]) -> StoreResult<Vec<BookingAnswer>> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let mut hold_ids: Vec<String> = group.iter().map(|BookingClaim(cmd)| cmd.hold_id.to_string()).collect();
                hold_ids.sort_unstable();
                hold_ids.dedup();
                let mut holds = share_shows_and_lock_holds(conn, &hold_ids).await?;
                let mut shows = BTreeMap::new();
                for id in holds.values().map(|hold| hold.show_id.as_str()).collect::<std::collections::BTreeSet<_>>() {
                    if let Some(show) = load_show(conn, id).await? {
                        shows.insert(id.to_owned(), show);
                    }
                }
                let held_seats = lock_held_seats(conn, &hold_ids).await?;
                let mut answers: Vec<BookingAnswer> = Vec::with_capacity(group.len());
                let mut confirmed: Vec<Confirmed<'_>> = Vec::new();
                for BookingClaim(cmd) in group {
                    let decided = (|| {
                        let hold = holds.get_mut(cmd.hold_id.as_str()).ok_or(DomainError::NotFound("hold"))?;
                        hold.check_confirmable(&cmd.user_id, cmd.now)?;
                        let show = shows.get(hold.show_id.as_str()).ok_or(DomainError::NotFound("show"))?;
                        if show.state != boxoffice_core::catalog::ShowState::Scheduled {
                            return Err(DomainError::NotOnSale("the show was cancelled".into()).into());
                        }
                        if held_seats.get(hold.id.as_str()).copied().unwrap_or(0) != seats_of(hold) {
                            // A seat left this hold (expired and claimed elsewhere).
                            return Err(DomainError::HoldExpired.into());
                        }
                        let booking = booking_of(cmd, hold, show)?;
                        let kept = hold.clone();
                        hold.state = HoldState::Converted;
                        Ok::<_, StoreError>(Confirmed { cmd, hold: kept, show: show.clone(), booking })
                    })();
                    match decided {
                        Ok(booking) => {
                            answers.push(Some(Ok(booking.booking.clone())));
                            confirmed.push(booking);
                        }
                        Err(refused) => answers.push(Some(Err(refused))),
                    }
                }
                if confirmed.is_empty() {
                    return Ok(answers);
                }
                let mut writes = Writes::<$db>::new(FUSE_WRITES);
                booking_rows_into(&mut writes, &confirmed)?;
                convert_holds_into(&mut writes, &confirmed);
                let mut postings = Vec::with_capacity(confirmed.len());
                for Confirmed { cmd, show, booking, .. } in &confirmed {
                    let currency = booking.total.currency.as_str();
                    // Paid by card alone: no wallet is taken from, so nothing to lock or check.
                    let paid = ledger::payment_transfers(&show.organizer_id, &booking.user_id, booking.total.amount_minor, 0);
                    postings.push(Posting { kind: "booking_paid", reference: booking.id.as_str(), currency, entries: ledger::entries(&paid, currency)?, at: cmd.now });
                }
                let mut accounts: Vec<String> = postings.iter().flat_map(|p| accounts_of(&p.entries)).collect();
                accounts.sort_unstable();
                accounts.dedup();
                open_accounts_into(&mut writes, &accounts, group[0].0.now);
                postings_into(&mut writes, &postings);
                let payments: Vec<Option<$crate::Payment>> = confirmed.iter().map(|c| paid_with(c.cmd, &c.booking)).collect();
                for paid in payments.iter().flatten() {
                    payment_row_into(&mut writes, paid);
                }
                for (one, paid) in confirmed.iter().zip(&payments) {
                    if let Some(paid) = paid {
                        payment_event_into(&mut writes, paid, one.show.organizer_id.as_str());
                    }
                    booking_confirmed_into(&mut writes, one);
                }
                let mut places: BTreeMap<(&str, &str), i64> = BTreeMap::new();
                for Confirmed { hold, .. } in &confirmed {
                    for (area, quantity) in area_quantities(&hold.items) {
                        *places.entry((hold.show_id.as_str(), area)).or_default() += quantity;
                    }
                }
                run_writes(conn, writes).await?;
                // Its own statement, after the rows: in the rows' statement the area's row, which
                // every standing sale of the show waits for, stayed locked while the foreign keys
                // of every row were checked.
                let mut sales = Writes::<$db>::new(FUSE_WRITES);
                for ((show, area), quantity) in places {
                    sell_places_into(&mut sales, show, area, quantity);
                }
                run_writes(conn, sales).await?;
                if let Err(error) = w.tx.commit().await {
                    // Whether it committed is not known: no booking may go again alone.
                    let lost = |_| Some(Err(StoreError::Database(sqlx::Error::Io(std::io::Error::other(format!("a group of bookings failed to commit: {error}"))))));
                    return Ok(group.iter().map(lost).collect());
                }
                Ok(answers)
            }

            async fn try_cancel_booking(
                &self,
                id: &BookingId,
                user_id: &UserId,
                now: Timestamp,
                refund_to: ledger::RefundTo,
                idem: Option<&IdempotencyKey>,
            ) -> StoreResult<Outcome<Booking>> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let booking = load_booking_by_id(conn, id.as_str()).await?.ok_or(DomainError::NotFound("booking"))?;
                // Shared on the show before anything it frees: a waitlist round sees all or none.
                let (show, _) = share_show(conn, booking.show_id.as_str()).await?.ok_or(DomainError::NotFound("show"))?;
                booking.check_cancellable(user_id, show.starts_at, now)?;
                let mut per_area: BTreeMap<String, i64> = BTreeMap::new();
                for ticket in &booking.tickets {
                    if let Some(area) = &ticket.area_id {
                        *per_area.entry(area.to_string()).or_default() += 1;
                    }
                }
                let policy = load_refund_policy(conn, booking.show_id.as_str()).await?;
                let refund = policy.refund_minor(booking.total.amount_minor, show.starts_at, now);
                let refund_state = (refund > 0).then_some("refunded");
                let cancelled = sqlx::query(
                    "UPDATE bookings SET state = 'cancelled', cancelled_at = $2, refund_state = $3, refunded_minor = $4 \
                     WHERE id = $1 AND state = 'confirmed'",
                )
                .bind(id.to_string())
                .bind(now.unix_ms())
                .bind(refund_state)
                .bind(refund)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if cancelled != 1 {
                    return Err(DomainError::NotCancellable("the booking is already cancelled".into()).into());
                }
                sqlx::query("UPDATE customer_tickets SET tickets = tickets - $3 WHERE user_id = $1 AND show_id = $2")
                    .bind(booking.user_id.to_string())
                    .bind(booking.show_id.to_string())
                    .bind(booking.tickets.len() as i64)
                    .execute(&mut *conn)
                    .await?;
                // Locked in seat-id order (the subquery), like every claim's.
                sqlx::query(concat!(
                    "UPDATE show_seats SET state = 'free', booking_id = NULL WHERE booking_id = $1 AND state = 'sold' \
                     AND seat_id IN (SELECT seat_id FROM show_seats WHERE booking_id = $1 ORDER BY seat_id",
                    $lock,
                    ")"
                ))
                    .bind(id.to_string())
                    .execute(&mut *conn)
                    .await?;
                let back = ledger::refund_transfers(&show.organizer_id, &booking.user_id, refund, booking.wallet_minor, refund_to);
                post(conn, "booking_refunded", booking.id.as_str(), booking.total.currency.as_str(), &back, now).await?;
                revoke_rewards(conn, booking.id.as_str(), now).await?;
                let cancelled = Booking {
                    state: BookingState::Cancelled,
                    cancelled_at: Some(now),
                    refund: refund_state.map(str::to_owned),
                    refunded_minor: Some(refund),
                    ..booking
                };
                emit(
                    conn,
                    show.organizer_id.as_str(),
                    EventKind::BookingCancelled,
                    cancelled.id.as_str(),
                    serde_json::json!({ "booking": cancelled, "reason": "customer" }),
                    now,
                )
                .await?;
                if refund > 0 {
                    emit(
                        conn,
                        show.organizer_id.as_str(),
                        EventKind::BookingRefunded,
                        cancelled.id.as_str(),
                        serde_json::json!({ "booking_id": cancelled.id, "refunded_minor": refund, "refund_to": refund_to,
                                            "wallet_minor": cancelled.wallet_minor, "currency": cancelled.total.currency }),
                        now,
                    )
                    .await?;
                }
                // Area rows last (see the lock order).
                for (area, quantity) in &per_area {
                    sqlx::query("UPDATE show_areas SET sold = sold - $3 WHERE show_id = $1 AND area_id = $2")
                        .bind(cancelled.show_id.to_string())
                        .bind(area.clone())
                        .bind(*quantity)
                        .execute(&mut *conn)
                        .await?;
                }
                let show_id = cancelled.show_id.clone();
                let seats: Vec<String> = cancelled.tickets.iter().filter_map(|t| t.seat_id.as_ref().map(|s| s.to_string())).collect();
                let outcome = finish(self, w, idem, cancelled, now).await;
                if outcome.is_ok() {
                    self.seats_freed(show_id.as_str(), &seats).await;
                }
                outcome
            }

        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn engine(&self) -> &'static str {
                Self::ENGINE
            }

            fn group_stats(&self) -> $crate::GroupCommits {
                $crate::GroupCommits { holds: self.holds_waiting.stats(), bookings: self.bookings_waiting.stats(), releases: self.releases_waiting.stats() }
            }

            fn pool_stats(&self) -> $crate::PoolStats {
                $crate::PoolStats { size: self.pool.size(), idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX) }
            }

            async fn active_holds(&self, now: Timestamp) -> StoreResult<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM holds WHERE state = 'active' AND expires_at > $1")
                    .bind(now.unix_ms())
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn migrate(&self) -> StoreResult<()> {
                Self::MIGRATOR.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn waiting_room(&self, show: &ShowId) -> StoreResult<Option<Room>> {
                let row: Option<(i64, i64, Option<i64>, i64, i64, i64)> = sqlx::query_as(
                    "SELECT enabled, admission_rate_per_minute, max_active_shoppers, session_minutes, opens_at, seed \
                     FROM waiting_rooms WHERE show_id = $1",
                )
                .bind(show.to_string())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(enabled, rate, cap, session, opens_at, seed)| Room {
                    enabled: enabled == 1,
                    admission_rate_per_minute: rate,
                    max_active_shoppers: cap,
                    session_minutes: session,
                    opens_at: Timestamp::from_unix_ms(opens_at),
                    seed: seed as u64,
                }))
            }

            async fn put_waiting_room(&self, show: &ShowId, room: &Room, now: Timestamp) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO waiting_rooms (show_id, enabled, admission_rate_per_minute, max_active_shoppers, \
                     session_minutes, opens_at, seed, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (show_id) DO UPDATE SET enabled = excluded.enabled, \
                     admission_rate_per_minute = excluded.admission_rate_per_minute, \
                     max_active_shoppers = excluded.max_active_shoppers, session_minutes = excluded.session_minutes, \
                     opens_at = excluded.opens_at, seed = excluded.seed, updated_at = excluded.updated_at",
                )
                .bind(show.to_string())
                .bind(i64::from(room.enabled))
                .bind(room.admission_rate_per_minute)
                .bind(room.max_active_shoppers)
                .bind(room.session_minutes)
                .bind(room.opens_at.unix_ms())
                .bind(room.seed as i64)
                .bind(now.unix_ms())
                .execute(&mut *w.tx)
                .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
                const READ: &str = "SELECT value FROM app_secrets WHERE name = $1";
                // Read first: once it exists no caller writes. Written like every write (on
                // SQLite, behind the one writer's gate): the first bookings of a sale all ask at
                // once, and writes around the gate waited in SQLite's busy handler, whose sleeps
                // grow, for up to two seconds.
                if let Some(value) = sqlx::query_scalar(READ).bind(name).fetch_optional(&self.pool).await? {
                    return Ok(value);
                }
                let mut w = self.begin_write().await?;
                sqlx::query("INSERT INTO app_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(candidate)
                    .execute(&mut *w.tx)
                    .await?;
                let value = sqlx::query_scalar(READ).bind(name).fetch_one(&mut *w.tx).await?;
                w.tx.commit().await?;
                Ok(value)
            }

            async fn insert_venue(&self, venue: &Venue, idem: Option<&IdempotencyKey>) -> StoreResult<Outcome<()>> {
                let outcome = once(self, idem, async {
                    let mut w = self.begin_write().await?;
                    let conn = &mut *w.tx;
                    sqlx::query(
                        "INSERT INTO venues (id, organizer_id, name, city, timezone, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(venue.id.to_string())
                    .bind(venue.organizer_id.to_string())
                    .bind(venue.name.clone())
                    .bind(venue.city.clone())
                    .bind(venue.timezone.clone())
                    .bind(venue.created_at.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                    insert_layout(conn, venue).await?;
                    finish(self, w, idem, venue, venue.created_at).await.map(Outcome::discard)
                })
                .await?;
                if matches!(outcome, Outcome::Done(_)) {
                    self.refresh_statistics("seats").await;
                }
                Ok(outcome)
            }

            async fn update_venue_details(&self, venue: &Venue) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query("UPDATE venues SET name = $2, city = $3, timezone = $4 WHERE id = $1")
                    .bind(venue.id.to_string())
                    .bind(venue.name.clone())
                    .bind(venue.city.clone())
                    .bind(venue.timezone.clone())
                    .execute(&mut *w.tx)
                    .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn replace_layout(&self, venue: &Venue, now: Timestamp) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                sqlx::query(concat!("SELECT id FROM venues WHERE id = $1", $lock)).bind(venue.id.to_string()).execute(&mut *conn).await?;
                let in_use: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM bookings b JOIN shows s ON s.id = b.show_id WHERE s.venue_id = $1) \
                     + (SELECT COUNT(*) FROM holds h JOIN shows s ON s.id = h.show_id \
                        WHERE s.venue_id = $1 AND h.state = 'active' AND h.expires_at > $2)",
                )
                .bind(venue.id.to_string())
                .bind(now.unix_ms())
                .fetch_one(&mut *conn)
                .await?;
                if in_use > 0 {
                    return Err(DomainError::Conflict(
                        "shows at this venue have bookings or live holds; changing the layout would orphan their seats".into(),
                    )
                    .into());
                }
                let shows = sqlx::query_as::<_, ShowRow>(AssertSqlSafe(format!("SELECT {SHOW_COLUMNS} FROM shows WHERE venue_id = $1")))
                    .bind(venue.id.to_string())
                    .fetch_all(&mut *conn)
                    .await?;
                let categories = venue.categories();
                for show in &shows {
                    let prices = load_prices(conn, std::slice::from_ref(&show.id)).await?.remove(&show.id).unwrap_or_default();
                    if let Some(missing) = categories.iter().find(|c| !prices.prices.contains_key(*c)) {
                        return Err(DomainError::invalid(
                            "sections",
                            format!("show {} has no price for the new category {missing}; price it first", show.id),
                        )
                        .into());
                    }
                }
                for statement in [
                    "DELETE FROM show_seats WHERE show_id IN (SELECT id FROM shows WHERE venue_id = $1)",
                    "DELETE FROM show_areas WHERE show_id IN (SELECT id FROM shows WHERE venue_id = $1)",
                    "DELETE FROM seats WHERE venue_id = $1",
                    "DELETE FROM sections WHERE venue_id = $1",
                    "DELETE FROM areas WHERE venue_id = $1",
                ] {
                    sqlx::query(statement).bind(venue.id.to_string()).execute(&mut *conn).await?;
                }
                insert_layout(conn, venue).await?;
                for show in &shows {
                    insert_inventory(conn, &show.id, venue.id.as_str()).await?;
                }
                w.tx.commit().await?;
                self.best_hints.forget_layouts_of(venue.id.as_str());
                // The layout's seats and every show's seats at it were written again.
                self.refresh_statistics("seats").await;
                self.refresh_statistics("show_seats").await;
                Ok(())
            }

            async fn delete_venue(&self, id: &VenueId) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let shows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shows WHERE venue_id = $1").bind(id.to_string()).fetch_one(&mut *conn).await?;
                if shows > 0 {
                    return Err(DomainError::Conflict("shows use this venue; it cannot be deleted".into()).into());
                }
                for statement in [
                    "DELETE FROM seats WHERE venue_id = $1",
                    "DELETE FROM sections WHERE venue_id = $1",
                    "DELETE FROM areas WHERE venue_id = $1",
                    "DELETE FROM venues WHERE id = $1",
                ] {
                    sqlx::query(statement).bind(id.to_string()).execute(&mut *conn).await?;
                }
                w.tx.commit().await?;
                Ok(())
            }

            async fn update_event(&self, event: &Event) -> StoreResult<()> {
                let mut conn = self.pool.acquire().await?;
                write_event(&mut *conn, event, false).await
            }

            async fn delete_event(&self, id: &EventId) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let shows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shows WHERE event_id = $1").bind(id.to_string()).fetch_one(&mut *conn).await?;
                if shows > 0 {
                    return Err(DomainError::Conflict("the event has shows; cancel them instead".into()).into());
                }
                sqlx::query("DELETE FROM events WHERE id = $1").bind(id.to_string()).execute(&mut *conn).await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn venue_place(&self, id: &VenueId) -> StoreResult<Option<$crate::VenuePlace>> {
                let row: Option<(String, String, String)> = sqlx::query_as("SELECT name, city, timezone FROM venues WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|(name, city, timezone)| $crate::VenuePlace { name, city, timezone }))
            }

            async fn venue(&self, id: &VenueId) -> StoreResult<Option<Venue>> {
                let mut conn = self.pool.acquire().await?;
                let row: Option<VenueRow> =
                    sqlx::query_as("SELECT id, organizer_id, name, city, timezone, created_at FROM venues WHERE id = $1")
                        .bind(id.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some(row) = row else { return Ok(None) };
                let sections: Vec<SectionRow> =
                    sqlx::query_as("SELECT id, name FROM sections WHERE venue_id = $1 ORDER BY position")
                        .bind(id.to_string())
                        .fetch_all(&mut *conn)
                        .await?;
                let seats: Vec<SeatRow> = sqlx::query_as(
                    "SELECT id, section_id, row_label, row_rank, number, label, category, x, y, blocked FROM seats \
                     WHERE venue_id = $1 ORDER BY row_rank, number",
                )
                .bind(id.to_string())
                .fetch_all(&mut *conn)
                .await?;
                let areas: Vec<AreaRow> =
                    sqlx::query_as("SELECT id, name, category, capacity FROM areas WHERE venue_id = $1 ORDER BY position")
                        .bind(id.to_string())
                        .fetch_all(&mut *conn)
                        .await?;
                Ok(Some(Venue {
                    id: VenueId::from_trusted(row.id),
                    organizer_id: OrganizerId::from_trusted(row.organizer_id),
                    name: row.name,
                    city: row.city,
                    timezone: row.timezone,
                    created_at: Timestamp::from_unix_ms(row.created_at),
                    sections: sections.into_iter().map(Into::into).collect(),
                    seats: seats.into_iter().map(Into::into).collect(),
                    areas: areas.into_iter().map(Into::into).collect(),
                }))
            }

            async fn venues_of(&self, organizer: &OrganizerId) -> StoreResult<Vec<VenueSummary>> {
                let rows: Vec<(String, String, String, String, i64, i64)> = sqlx::query_as(
                    "SELECT v.id, v.name, v.city, v.timezone, \
                     (SELECT COUNT(*) FROM seats s WHERE s.venue_id = v.id), \
                     CAST((SELECT COALESCE(SUM(a.capacity), 0) FROM areas a WHERE a.venue_id = v.id) AS BIGINT) \
                     FROM venues v WHERE v.organizer_id = $1 ORDER BY v.id",
                )
                .bind(organizer.to_string())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, city, timezone, seat_count, area_capacity)| VenueSummary {
                        id: VenueId::from_trusted(id),
                        name,
                        city,
                        timezone,
                        seat_count,
                        area_capacity,
                    })
                    .collect())
            }

            async fn insert_event(&self, event: &Event, idem: Option<&IdempotencyKey>) -> StoreResult<Outcome<()>> {
                once(self, idem, async {
                let mut w = self.begin_write().await?;
                write_event(&mut *w.tx, event, true).await?;
                finish(self, w, idem, event, event.created_at).await.map(Outcome::discard)
                }).await
            }

            async fn event(&self, id: &EventId) -> StoreResult<Option<Event>> {
                let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1");
                let row: Option<EventRow> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                row.map(Event::try_from).transpose()
            }

            async fn events(&self, organizer: Option<&OrganizerId>, after: Option<&EventId>, limit: i64) -> StoreResult<Vec<Event>> {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE id > $1 AND ($3 = '' OR organizer_id = $3) ORDER BY id LIMIT $2"
                );
                let rows: Vec<EventRow> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(after.map(|a| a.to_string()).unwrap_or_default())
                .bind(limit)
                .bind(organizer.map(|o| o.to_string()).unwrap_or_default())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(Event::try_from).collect()
            }

            async fn insert_show(&self, show: &Show, idem: Option<&IdempotencyKey>) -> StoreResult<Outcome<()>> {
                let outcome = once(self, idem, async {
                    let mut w = self.begin_write().await?;
                    insert_shows_checked(&mut *w.tx, std::slice::from_ref(show)).await?;
                    finish(self, w, idem, show, show.created_at).await.map(Outcome::discard)
                })
                .await?;
                if matches!(outcome, Outcome::Done(_)) {
                    self.refresh_statistics("show_seats").await;
                }
                Ok(outcome)
            }

            async fn insert_schedule(&self, shows: &[Show], idem: Option<&IdempotencyKey>) -> StoreResult<Outcome<()>> {
                let Some(first) = shows.first() else { return Ok(Outcome::Done(())) };
                let outcome = once(self, idem, async {
                    let mut w = self.begin_write().await?;
                    insert_shows_checked(&mut *w.tx, shows).await?;
                    finish(self, w, idem, shows, first.created_at).await.map(Outcome::discard)
                })
                .await?;
                if matches!(outcome, Outcome::Done(_)) {
                    self.refresh_statistics("show_seats").await;
                }
                Ok(outcome)
            }

            async fn update_show(&self, show: &Show, now: Timestamp) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let updated = sqlx::query(
                    "UPDATE shows SET on_sale_at = $2, off_sale_at = $3, hold_minutes = $4, max_tickets_per_order = $5, \
                     max_tickets_per_customer = $6, format = $7, language = $8 WHERE id = $1 AND state = 'scheduled'",
                )
                .bind(show.id.to_string())
                .bind(show.on_sale_at.unix_ms())
                .bind(show.off_sale_at.unix_ms())
                .bind(show.hold_minutes)
                .bind(show.max_tickets_per_order)
                .bind(show.max_tickets_per_customer)
                .bind(show.format.map(|f| f.as_str()))
                .bind(show.language.clone())
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if updated != 1 {
                    return Err(DomainError::Conflict("a cancelled show cannot be changed".into()).into());
                }
                for (category, amount) in &show.prices {
                    sqlx::query("UPDATE show_prices SET amount_minor = $3, locked = $4 WHERE show_id = $1 AND category = $2")
                        .bind(show.id.to_string())
                        .bind(category.clone())
                        .bind(*amount)
                        .bind(show.locked_categories.contains(category))
                        .execute(&mut *conn)
                        .await?;
                }
                emit(
                    conn,
                    show.organizer_id.as_str(),
                    EventKind::ShowChanged,
                    show.id.as_str(),
                    serde_json::json!({ "show": show }),
                    now,
                )
                .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn cancel_show(&self, id: &ShowId, now: Timestamp) -> StoreResult<i64> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                // Takes the show row exclusively: holds and confirms hold it shared while they decide.
                let cancelled = sqlx::query("UPDATE shows SET state = 'cancelled', cancelled_at = $2 WHERE id = $1 AND state = 'scheduled'")
                    .bind(id.to_string())
                    .bind(now.unix_ms())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                if cancelled != 1 {
                    return Err(DomainError::Conflict("the show is already cancelled".into()).into());
                }
                let active: Vec<String> = sqlx::query_scalar("SELECT id FROM holds WHERE show_id = $1 AND state = 'active'")
                    .bind(id.to_string())
                    .fetch_all(&mut *conn)
                    .await?;
                let (_, returns) = retire_holds(conn, &active, "released").await?;
                let bookings: Vec<(String, String, i64, i64, String)> =
                    sqlx::query_as("SELECT id, user_id, total_minor, wallet_minor, currency FROM bookings WHERE show_id = $1 AND state = 'confirmed' ORDER BY id")
                        .bind(id.to_string())
                        .fetch_all(&mut *conn)
                        .await?;
                let refunds = sqlx::query(
                    "UPDATE bookings SET state = 'cancelled', cancelled_at = $2, refund_state = 'refunded', refunded_minor = total_minor \
                     WHERE show_id = $1 AND state = 'confirmed'",
                )
                .bind(id.to_string())
                .bind(now.unix_ms())
                .execute(&mut *conn)
                .await?
                .rows_affected();
                sqlx::query("DELETE FROM customer_tickets WHERE show_id = $1").bind(id.to_string()).execute(&mut *conn).await?;
                let organizer = organizer_of_show(conn, id.as_str()).await?;
                emit(
                    conn,
                    &organizer,
                    EventKind::ShowCancelled,
                    id.as_str(),
                    serde_json::json!({ "show_id": id, "bookings_cancelled": refunds }),
                    now,
                )
                .await?;
                for (booking_id, user_id, total, wallet, currency) in &bookings {
                    // The organizer called it off: everything comes back, whatever the policy.
                    let back = ledger::refund_transfers(
                        &OrganizerId::from_trusted(organizer.clone()),
                        &UserId::from_trusted(user_id.clone()),
                        *total,
                        *wallet,
                        ledger::RefundTo::Card,
                    );
                    post(conn, "show_cancelled_refund", booking_id, currency, &back, now).await?;
                    revoke_rewards(conn, booking_id, now).await?;
                    emit(
                        conn,
                        &organizer,
                        EventKind::BookingRefunded,
                        booking_id,
                        serde_json::json!({ "booking_id": booking_id, "refunded_minor": total, "refund_to": "card",
                                            "wallet_minor": wallet, "currency": currency }),
                        now,
                    )
                    .await?;
                    emit(
                        conn,
                        &organizer,
                        EventKind::BookingCancelled,
                        booking_id,
                        serde_json::json!({
                            "booking": { "id": booking_id, "show_id": id, "user_id": user_id, "state": "cancelled", "refund": "refunded", "refunded_minor": total },
                            "reason": "show_cancelled",
                        }),
                        now,
                    )
                    .await?;
                }
                give_back(conn, returns).await?;
                w.tx.commit().await?;
                Ok(refunds as i64)
            }

            async fn show(&self, id: &ShowId) -> StoreResult<Option<Show>> {
                let mut conn = self.pool.acquire().await?;
                load_show(&mut *conn, id.as_str()).await
            }

            async fn shows(&self, filter: &ShowFilter) -> StoreResult<Vec<Show>> {
                let mut conn = self.pool.acquire().await?;
                let sql = format!(
                    "SELECT {SHOW_COLUMNS} FROM shows WHERE ($1 = '' OR event_id = $1) AND id > $2 ORDER BY id LIMIT $3"
                );
                let rows: Vec<ShowRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(filter.event_id.as_ref().map(|e| e.to_string()).unwrap_or_default())
                    .bind(filter.after.as_ref().map(|a| a.to_string()).unwrap_or_default())
                    .bind(filter.limit)
                    .fetch_all(&mut *conn)
                    .await?;
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let mut prices = load_prices(&mut *conn, &ids).await?;
                rows.into_iter()
                    .map(|row| {
                        let show_prices = prices.remove(&row.id).unwrap_or_default();
                        row.into_show(show_prices)
                    })
                    .collect()
            }

            async fn search_shows(&self, query: &ShowQuery, now: Timestamp) -> StoreResult<Vec<Show>> {
                let mut conn = self.pool.acquire().await?;
                let columns = SHOW_COLUMNS.split(", ").map(|c| format!("s.{}", c.trim())).collect::<Vec<_>>().join(", ");
                let mut sql = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {columns} FROM shows s JOIN events e ON e.id = s.event_id JOIN venues v ON v.id = s.venue_id WHERE 1 = 1"
                ));
                push_show_filters(&mut sql, query, now);
                sql.push(match query.sort {
                    ShowSort::StartsAt => " ORDER BY s.starts_at, s.id",
                    ShowSort::StartsAtDesc => " ORDER BY s.starts_at DESC, s.id",
                    ShowSort::Price => " ORDER BY (SELECT MIN(p.amount_minor) FROM show_prices p WHERE p.show_id = s.id), s.starts_at, s.id",
                    ShowSort::Title => " ORDER BY e.title, s.starts_at, s.id",
                });
                sql.push(" LIMIT ").push_bind(query.limit).push(" OFFSET ").push_bind(query.offset);
                let rows: Vec<ShowRow> = sql.build_query_as().fetch_all(&mut *conn).await?;
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let mut prices = load_prices(&mut *conn, &ids).await?;
                rows.into_iter()
                    .map(|row| {
                        let show_prices = prices.remove(&row.id).unwrap_or_default();
                        row.into_show(show_prices)
                    })
                    .collect()
            }

            async fn search_events(&self, query: &ShowQuery, now: Timestamp) -> StoreResult<Vec<Event>> {
                let columns = EVENT_COLUMNS.split(", ").map(|c| format!("e.{}", c.trim())).collect::<Vec<_>>().join(", ");
                let mut sql = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {columns} FROM events e WHERE EXISTS (SELECT 1 FROM shows s JOIN venues v ON v.id = s.venue_id \
                     WHERE s.event_id = e.id"
                ));
                push_show_filters(&mut sql, query, now);
                sql.push(")");
                sql.push(match query.sort {
                    ShowSort::Title => " ORDER BY e.title, e.id",
                    _ => " ORDER BY (SELECT MIN(s2.starts_at) FROM shows s2 WHERE s2.event_id = e.id AND s2.state = 'scheduled'), e.id",
                });
                sql.push(" LIMIT ").push_bind(query.limit).push(" OFFSET ").push_bind(query.offset);
                let rows: Vec<EventRow> = sql.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(Event::try_from).collect()
            }

            async fn seat_map(&self, show: &Show, now: Timestamp) -> StoreResult<SeatMap> {
                let mut conn = self.pool.acquire().await?;
                let seats: Vec<SeatMapRow> = sqlx::query_as(
                    "SELECT s.id AS seat_id, sec.name AS section_name, s.row_label, s.number, s.label, s.category, \
                     s.x, s.y, ss.state, ss.held_until FROM show_seats ss JOIN seats s ON s.id = ss.seat_id \
                     JOIN sections sec ON sec.id = s.section_id WHERE ss.show_id = $1 ORDER BY s.row_rank, s.number",
                )
                .bind(show.id.to_string())
                .fetch_all(&mut *conn)
                .await?;
                let areas = load_area_views(&mut *conn, show, now).await?;
                let seats: Vec<_> = seats.into_iter().map(|r| r.into_view(show, now)).collect();
                Ok(SeatMap {
                    show_id: show.id.clone(),
                    currency: show.currency.clone(),
                    as_of: now,
                    availability: inventory::availability(&seats, &areas),
                    seats,
                    areas,
                })
            }

            async fn availability(&self, show: &Show, now: Timestamp) -> StoreResult<(Vec<inventory::CategoryAvailability>, Vec<inventory::AreaView>)> {
                let mut conn = self.pool.acquire().await?;
                // Counted in the database: a sale changes a big show's map many times a second.
                let counted: Vec<(String, String, i64, i64)> = sqlx::query_as(
                    "SELECT s.category, ss.state, CAST(CASE WHEN ss.held_until IS NOT NULL AND ss.held_until <= $2 THEN 1 ELSE 0 END AS BIGINT), \
                     CAST(COUNT(*) AS BIGINT) FROM show_seats ss JOIN seats s ON s.id = ss.seat_id WHERE ss.show_id = $1 \
                     GROUP BY 1, 2, 3",
                )
                .bind(show.id.to_string())
                .bind(now.unix_ms())
                .fetch_all(&mut *conn)
                .await?;
                let seats: Vec<inventory::SeatCount> = counted
                    .into_iter()
                    .map(|(category, state, lapsed, seats)| inventory::SeatCount {
                        price_minor: show.prices.get(&category).copied().unwrap_or_default(),
                        state: SeatState::effective(&state, (lapsed == 0).then(|| now.plus_ms(1)), now),
                        category,
                        seats,
                    })
                    .collect();
                let areas = load_area_views(&mut *conn, show, now).await?;
                Ok((inventory::availability_of_counts(&seats, &areas), areas))
            }

            async fn sales(&self, show_id: &ShowId) -> StoreResult<SalesSummary> {
                let (confirmed, cancelled, revenue): (i64, i64, i64) = sqlx::query_as(
                    "SELECT CAST(COALESCE(SUM(CASE WHEN state = 'confirmed' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN state = 'cancelled' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN state = 'confirmed' THEN total_minor ELSE 0 END), 0) AS BIGINT) \
                     FROM bookings WHERE show_id = $1",
                )
                .bind(show_id.to_string())
                .fetch_one(&self.pool)
                .await?;
                let tickets: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM tickets t JOIN bookings b ON b.id = t.booking_id \
                     WHERE b.show_id = $1 AND b.state = 'confirmed'",
                )
                .bind(show_id.to_string())
                .fetch_one(&self.pool)
                .await?;
                let by_category: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT t.category, CAST(SUM(t.price_minor) AS BIGINT) FROM tickets t JOIN bookings b ON b.id = t.booking_id \
                     WHERE b.show_id = $1 AND b.state = 'confirmed' GROUP BY t.category ORDER BY t.category",
                )
                .bind(show_id.to_string())
                .fetch_all(&self.pool)
                .await?;
                const HOUR_MS: i64 = 3_600_000;
                let mut hours: Vec<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT CAST(b.created_at / 3600000 AS BIGINT) AS hour, CAST(COUNT(DISTINCT b.id) AS BIGINT), CAST(COUNT(t.id) AS BIGINT) \
                     FROM bookings b JOIN tickets t ON t.booking_id = b.id WHERE b.show_id = $1 AND b.state = 'confirmed' \
                     GROUP BY CAST(b.created_at / 3600000 AS BIGINT) ORDER BY hour DESC LIMIT $2",
                )
                .bind(show_id.to_string())
                .bind($crate::SALES_TIMELINE_HOURS)
                .fetch_all(&self.pool)
                .await?;
                hours.reverse();
                let timeline = hours
                    .into_iter()
                    .map(|(hour, bookings, tickets)| $crate::SalesHour {
                        starts_at: Timestamp::from_unix_ms(hour * HOUR_MS),
                        bookings,
                        tickets,
                    })
                    .collect();
                Ok(SalesSummary {
                    timeline,
                    show_id: show_id.clone(),
                    bookings_confirmed: confirmed,
                    bookings_cancelled: cancelled,
                    tickets_sold: tickets,
                    revenue_minor: revenue,
                    revenue_by_category: by_category.into_iter().collect(),
                })
            }

            async fn organizer_figures(&self, organizer: &OrganizerId, from: Timestamp, to: Timestamp) -> StoreResult<$crate::OrganizerFigures> {
                const DAY_MS: i64 = 86_400_000;
                let top: Vec<(String, String, i64, i64)> = sqlx::query_as(
                    "SELECT e.id, e.title, COUNT(t.id), CAST(COALESCE(SUM(t.price_minor), 0) AS BIGINT) FROM events e \
                     JOIN shows s ON s.event_id = e.id JOIN bookings b ON b.show_id = s.id JOIN tickets t ON t.booking_id = b.id \
                     WHERE e.organizer_id = $1 AND b.state = 'confirmed' AND b.created_at >= $2 AND b.created_at < $3 \
                     GROUP BY e.id, e.title ORDER BY COUNT(t.id) DESC, e.id LIMIT 10",
                )
                .bind(organizer.to_string())
                .bind(from.unix_ms())
                .bind(to.unix_ms())
                .fetch_all(&self.pool)
                .await?;
                let (confirmed, cancelled): (i64, i64) = sqlx::query_as(
                    "SELECT CAST(COALESCE(SUM(CASE WHEN b.state = 'confirmed' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN b.state = 'cancelled' THEN 1 ELSE 0 END), 0) AS BIGINT) \
                     FROM bookings b JOIN shows s ON s.id = b.show_id \
                     WHERE s.organizer_id = $1 AND b.created_at >= $2 AND b.created_at < $3",
                )
                .bind(organizer.to_string())
                .bind(from.unix_ms())
                .bind(to.unix_ms())
                .fetch_one(&self.pool)
                .await?;
                let days: Vec<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT b.created_at / 86400000 AS day, COUNT(*), CAST(SUM(b.total_minor) AS BIGINT) \
                     FROM bookings b JOIN shows s ON s.id = b.show_id \
                     WHERE s.organizer_id = $1 AND b.state = 'confirmed' AND b.created_at >= $2 AND b.created_at < $3 \
                     GROUP BY b.created_at / 86400000 ORDER BY day",
                )
                .bind(organizer.to_string())
                .bind(from.unix_ms())
                .bind(to.unix_ms())
                .fetch_all(&self.pool)
                .await?;
                let total = confirmed + cancelled;
                Ok($crate::OrganizerFigures {
                    from,
                    to,
                    top_events: top
                        .into_iter()
                        .map(|(id, title, tickets_sold, revenue_minor)| $crate::EventFigures {
                            event_id: EventId::from_trusted(id),
                            title,
                            tickets_sold,
                            revenue_minor,
                        })
                        .collect(),
                    bookings_confirmed: confirmed,
                    bookings_cancelled: cancelled,
                    cancellation_rate: if total == 0 { 0.0 } else { cancelled as f64 / total as f64 },
                    per_day: days
                        .into_iter()
                        .map(|(day, bookings, revenue_minor)| $crate::DayFigures {
                            day: Timestamp::from_unix_ms(day * DAY_MS).to_rfc3339()[..10].to_owned(),
                            bookings,
                            revenue_minor,
                        })
                        .collect(),
                })
            }

            async fn create_hold(&self, cmd: CreateHold, idem: Option<&IdempotencyKey>) -> StoreResult<Outcome<Hold>> {
                // Best-available chooses before it locks; if a faster claim took or is taking a
                // chosen seat, it chooses again without those seats.
                let attempts = if matches!(cmd.request, HoldRequest::BestAvailable { .. }) { 8 } else { 1 };
                let retried = async {
                    let mut attempt = 1;
                    let mut avoid: Vec<String> = Vec::new();
                    loop {
                        // Best-available chooses on a read snapshot, outside the write transaction,
                        // so the (whole-category) read never holds the writers up.
                        let mut claiming = None;
                        let chosen = match &cmd.request {
                            HoldRequest::BestAvailable { category, quantity } => {
                                let mut conn = self.pool.acquire().await?;
                                let show_id = cmd.show_id.as_str();
                                let start = self.best_hints.start(show_id, category, *quantity);
                                let mut around = avoid.clone();
                                around.extend(self.best_hints.being_claimed(show_id));
                                let pick = Pick { category, quantity: *quantity, scattered_ok: true, avoid: &around, start_rank: start };
                                // In a layout this process knows, the pick alone: the group checks
                                // the show. Any refusal is given on what the database says now.
                                let known = match self.best_hints.layout(show_id, category) {
                                    Some(layout) => pick_in(&mut *conn, &layout, &pick, cmd.now).await.ok(),
                                    None => None,
                                };
                                let (seats, next_start) = match known {
                                    Some(picked) => picked,
                                    None => {
                                        let show = load_show(&mut *conn, show_id).await?.ok_or(DomainError::NotFound("show"))?;
                                        show.check_on_sale(cmd.now)?;
                                        let layout = layout_of(&mut *conn, &show, category).await?;
                                        self.best_hints.know_layout(show_id, category, &layout);
                                        pick_in(&mut *conn, &layout, &pick, cmd.now).await?
                                    }
                                };
                                self.best_hints.remember(show_id, category, *quantity, next_start);
                                let ids: Vec<String> = seats.iter().map(|s| s.to_string()).collect();
                                match self.best_hints.claim(show_id, &ids) {
                                    Ok(marked) => claiming = Some(marked),
                                    // Another pick here chose one of them meanwhile: choose again.
                                    Err(raced) if attempt < attempts => {
                                        avoid.extend(raced);
                                        attempt += 1;
                                        continue;
                                    }
                                    Err(_) => {}
                                }
                                Some(seats)
                            }
                            _ => None,
                        };
                        let outcome = self.try_create_hold_grouped(&cmd, chosen.as_deref(), idem).await;
                        drop(claiming);
                        match outcome {
                            Err(StoreError::Domain(DomainError::SeatUnavailable { seat_ids })) if attempt < attempts => {
                                avoid.extend(seat_ids);
                                attempt += 1;
                            }
                            other => return other,
                        }
                    }
                };
                once(self, idem, retried).await
            }

            async fn hold(&self, id: &HoldId) -> StoreResult<Option<Hold>> {
                let mut conn = self.pool.acquire().await?;
                load_hold(&mut *conn, id.as_str()).await
            }

            /// A release, grouped with the others arriving meanwhile (group commit); in a group of
            /// its own when its group could not be decided.
            async fn release_hold(&self, id: &HoldId, user_id: &UserId, now: Timestamp) -> StoreResult<Hold> {
                let claim = ReleaseClaim { hold_id: id.clone(), user_id: user_id.clone(), now };
                let store = self.clone();
                let run = move |group: Vec<ReleaseClaim>| {
                    let store = store.clone();
                    async move { store.decide_release_group(&group).await }
                };
                match self.releases_waiting.join(claim, run).await {
                    Some(decided) => decided,
                    // The group failed (a deadlock, a lost connection): once more, as a group of one.
                    None => {
                        let alone = ReleaseClaim { hold_id: id.clone(), user_id: user_id.clone(), now };
                        self.decide_release_group(std::slice::from_ref(&alone)).await?.remove(0)
                    }
                }
            }

            async fn set_area_capacity(&self, show: &ShowId, area: &AreaId, capacity: i64, now: Timestamp) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                sqlx::query(concat!("SELECT id FROM shows WHERE id = $1", $share)).bind(show.to_string()).execute(&mut *conn).await?;
                // Places of lapsed holds still counted as held are retired first, so they do not
                // stand in the way of a smaller capacity (hold rows before area rows).
                retire_lapsed_area_holds(conn, show.as_str(), now).await?;
                let (sold, held): (i64, i64) = sqlx::query_as(concat!(
                    "SELECT sold, held FROM show_areas WHERE show_id = $1 AND area_id = $2",
                    $lock
                ))
                .bind(show.to_string())
                .bind(area.to_string())
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(DomainError::NotFound("area"))?;
                inventory::check_new_capacity(capacity, sold, held)?;
                sqlx::query("UPDATE show_areas SET capacity = $3 WHERE show_id = $1 AND area_id = $2")
                    .bind(show.to_string())
                    .bind(area.to_string())
                    .bind(capacity)
                    .execute(&mut *conn)
                    .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn expire_holds(&self, now: Timestamp, limit: i64) -> StoreResult<Vec<ExpiredHold>> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                // Chosen without locks: retiring is conditional, so two sweepers never count a
                // hold twice.
                let due: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, show_id FROM holds WHERE state = 'active' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
                )
                .bind(now.unix_ms())
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
                if due.is_empty() {
                    return Ok(Vec::new());
                }
                let mut shows: Vec<String> = due.iter().map(|(_, show)| show.clone()).collect();
                shows.sort();
                shows.dedup();
                for show in &shows {
                    sqlx::query(concat!("SELECT id FROM shows WHERE id = $1", $share)).bind(show.clone()).execute(&mut *conn).await?;
                }
                let due: Vec<String> = due.into_iter().map(|(id, _)| id).collect();
                let (ids, returns) = retire_holds(conn, &due, "expired").await?;
                let mut expired: Vec<ExpiredHold> = Vec::with_capacity(ids.len());
                if !ids.is_empty() {
                    let sql = format!(
                        "SELECT hold_id, show_id, seat_id FROM hold_items WHERE hold_id IN ({}) ORDER BY hold_id, position",
                        placeholders(1, ids.len())
                    );
                    let mut query = sqlx::query_as::<_, (String, String, Option<String>)>(AssertSqlSafe(sql));
                    for id in &ids {
                        query = query.bind(id.clone());
                    }
                    for (hold_id, show_id, seat_id) in query.fetch_all(&mut *conn).await? {
                        if expired.last().is_none_or(|e| e.id.as_str() != hold_id) {
                            expired.push(ExpiredHold {
                                id: HoldId::from_trusted(hold_id),
                                show_id: ShowId::from_trusted(show_id),
                                seat_ids: Vec::new(),
                            });
                        }
                        if let (Some(seat), Some(last)) = (seat_id, expired.last_mut()) {
                            last.seat_ids.push(SeatId::from_trusted(seat));
                        }
                    }
                    let listed = placeholders(1, ids.len());
                    let sql = format!(
                        "UPDATE show_seats SET state = 'free', hold_id = NULL, held_until = NULL WHERE state = 'held' AND hold_id IN ({listed}) \
                         AND seat_id IN (SELECT seat_id FROM show_seats WHERE hold_id IN ({listed}) ORDER BY seat_id{})",
                        $lock
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for id in &ids {
                        query = query.bind(id.clone());
                    }
                    query.execute(&mut *conn).await?;
                }
                let mut organizers: BTreeMap<String, String> = BTreeMap::new();
                for hold in &expired {
                    let show = hold.show_id.to_string();
                    if !organizers.contains_key(&show) {
                        let organizer = organizer_of_show(conn, &show).await?;
                        organizers.insert(show.clone(), organizer);
                    }
                    emit(
                        conn,
                        &organizers[&show],
                        EventKind::HoldExpired,
                        hold.id.as_str(),
                        serde_json::json!({ "hold_id": hold.id, "show_id": hold.show_id, "seat_ids": hold.seat_ids }),
                        now,
                    )
                    .await?;
                }
                give_back(conn, returns).await?;
                w.tx.commit().await?;
                for show in &shows {
                    let seats: Vec<String> = expired
                        .iter()
                        .filter(|h| h.show_id.as_str() == show)
                        .flat_map(|h| h.seat_ids.iter().map(|s| s.to_string()))
                        .collect();
                    self.seats_freed(show, &seats).await;
                }
                Ok(expired)
            }

            async fn confirm_hold(&self, cmd: ConfirmHold, idem: Option<&IdempotencyKey>) -> StoreResult<Outcome<Booking>> {
                once(self, idem, self.try_confirm_hold_grouped(cmd, idem)).await
            }

            async fn booking(&self, id: &BookingId) -> StoreResult<Option<Booking>> {
                let mut conn = self.pool.acquire().await?;
                load_booking_by_id(&mut *conn, id.as_str()).await
            }

            async fn bookings_of(&self, user_id: &UserId, after: Option<&BookingId>, limit: i64) -> StoreResult<Vec<Booking>> {
                let mut conn = self.pool.acquire().await?;
                let sql = format!(
                    "SELECT {BOOKING_COLUMNS} FROM bookings WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                );
                let rows: Vec<BookingRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(user_id.to_string())
                    .bind(after.map(|a| a.to_string()).unwrap_or_default())
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                load_bookings(&mut *conn, rows).await
            }

            async fn cancel_booking(
                &self,
                id: &BookingId,
                user_id: &UserId,
                now: Timestamp,
                refund_to: ledger::RefundTo,
                idem: Option<&IdempotencyKey>,
            ) -> StoreResult<Outcome<Booking>> {
                once(self, idem, self.try_cancel_booking(id, user_id, now, refund_to, idem)).await
            }

            async fn saved_response(&self, user_id: &UserId, key: &str) -> StoreResult<Option<SavedResponse>> {
                let mut conn = self.pool.acquire().await?;
                load_saved(&mut *conn, user_id.as_str(), key).await
            }
        }
    };
}

pub(crate) use store_engine;

#[cfg(test)]
mod tests {
    use super::{Insert, Writes};

    const EVENTS: &str = "INSERT INTO outbox (id, kind)";

    fn three_writes<DB: sqlx::Database>(writes: &mut Writes<DB>)
    where
        &'static str: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    {
        writes.insert(EVENTS, |row| {
            row.push_bind("e1").push_bind("paid");
        });
        writes.insert(EVENTS, |row| {
            row.push_bind("e2").push_bind("booked");
        });
        writes.add(|sql| {
            sql.push("UPDATE show_areas SET sold = sold + 1 WHERE area_id = ")
                .push_bind("floor");
        });
        writes.insert(EVENTS, |row| {
            row.push_bind("e3").push_bind("sold_out");
        });
    }

    #[test]
    fn fused_writes_are_one_statement_and_a_tables_rows_one_insert_whatever_came_between() {
        let mut writes = Writes::<sqlx::Postgres>::new(true);
        three_writes(&mut writes);
        let statements = writes.into_statements();
        assert_eq!(statements.len(), 1);
        assert_eq!(
            statements[0].sql().as_str(),
            "WITH w1 AS (UPDATE show_areas SET sold = sold + 1 WHERE area_id = $1), \
             w2 AS (INSERT INTO outbox (id, kind) SELECT id, kind FROM json_populate_recordset(NULL::outbox, CAST($2 AS json)) r) SELECT 1"
        );
    }

    #[test]
    fn unfused_writes_are_statements_in_the_order_added() {
        let mut writes = Writes::<sqlx::Sqlite>::new(false);
        three_writes(&mut writes);
        let sql: Vec<String> = writes
            .into_statements()
            .iter()
            .map(|s| s.sql().as_str().to_owned())
            .collect();
        assert_eq!(
            sql,
            [
                "INSERT INTO outbox (id, kind) VALUES (?, ?), (?, ?)",
                "UPDATE show_areas SET sold = sold + 1 WHERE area_id = ?",
                "INSERT INTO outbox (id, kind) VALUES (?, ?)",
            ]
        );
    }

    fn claim<DB: sqlx::Database>(sql: &mut sqlx::QueryBuilder<DB>) {
        sql.push("UPDATE show_seats SET state = 'held' RETURNING seat_id");
    }

    fn texts<DB: sqlx::Database>(statements: Vec<sqlx::QueryBuilder<DB>>) -> Vec<String> {
        statements
            .iter()
            .map(|s| s.sql().as_str().to_owned())
            .collect()
    }

    #[test]
    fn writes_then_a_statement_of_the_callers_end_with_it() {
        let mut fused = Writes::<sqlx::Postgres>::new(true);
        three_writes(&mut fused);
        let fused: Vec<String> = texts(fused.then(claim));
        assert_eq!(
            fused,
            [
                "WITH w1 AS (UPDATE show_areas SET sold = sold + 1 WHERE area_id = $1), \
              w2 AS (INSERT INTO outbox (id, kind) SELECT id, kind FROM json_populate_recordset(NULL::outbox, CAST($2 AS json)) r) \
              UPDATE show_seats SET state = 'held' RETURNING seat_id"
            ],
            "the writes are the statement's CTEs, and no SELECT 1 ends it"
        );
        let mut unfused = Writes::<sqlx::Sqlite>::new(false);
        three_writes(&mut unfused);
        let unfused: Vec<String> = texts(unfused.then(claim));
        assert_eq!(unfused.len(), 4);
        assert_eq!(
            unfused[3],
            "UPDATE show_seats SET state = 'held' RETURNING seat_id"
        );
        let nothing: Vec<String> = texts(Writes::<sqlx::Postgres>::new(true).then(claim));
        assert_eq!(
            nothing,
            ["UPDATE show_seats SET state = 'held' RETURNING seat_id"],
            "no writes: the statement alone"
        );
    }

    #[test]
    fn an_insert_with_a_tail_ends_with_it_after_its_last_row() {
        let upsert = Insert::into("INSERT INTO counts (id, n)").then("ON CONFLICT (id) DO NOTHING");
        let mut unfused = Writes::<sqlx::Sqlite>::new(false);
        let mut fused = Writes::<sqlx::Postgres>::new(true);
        for id in ["a", "b"] {
            unfused.insert(upsert, |row| {
                row.push_bind(id).push_bind(1_i64);
            });
            fused.insert(upsert, |row| {
                row.push_bind(id).push_bind(1_i64);
            });
        }
        assert_eq!(
            unfused.into_statements()[0].sql().as_str(),
            "INSERT INTO counts (id, n) VALUES (?, ?), (?, ?) ON CONFLICT (id) DO NOTHING"
        );
        assert_eq!(
            fused.into_statements()[0].sql().as_str(),
            "WITH w1 AS (INSERT INTO counts (id, n) SELECT id, n FROM json_populate_recordset(NULL::counts, CAST($1 AS json)) r \
             ON CONFLICT (id) DO NOTHING) SELECT 1"
        );
    }

    #[test]
    fn no_writes_are_no_statements() {
        assert!(
            Writes::<sqlx::Postgres>::new(true)
                .into_statements()
                .is_empty()
        );
        assert!(
            Writes::<sqlx::Sqlite>::new(false)
                .into_statements()
                .is_empty()
        );
    }
}
