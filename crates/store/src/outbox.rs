//! The outbox side of the store, shared by both engines like `engine.rs`: domain events written
//! in the transaction of the change they describe (`emit`), webhook endpoints, and the
//! deliveries a dispatcher claims under a lease, tries, and records.

use boxoffice_core::Timestamp;
use boxoffice_core::ids::{DeliveryId, MessageId, OrganizerId, WebhookId};
use boxoffice_core::outbox::EventKind;
use serde::Serialize;

/// A domain event as it leaves Boxoffice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub organizer_id: OrganizerId,
    pub kind: EventKind,
    /// The booking, hold or show it is about.
    pub subject: String,
    /// The JSON body receivers get: `{id, type, created_at, organizer_id, data}`.
    pub body: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    pub id: WebhookId,
    #[serde(skip)]
    pub organizer_id: OrganizerId,
    pub url: String,
    /// Signs every delivery (HMAC-SHA256); shown once, when the endpoint is created.
    #[serde(skip)]
    pub secret: String,
    pub event_types: Vec<EventKind>,
    pub created_at: Timestamp,
}

/// A delivery a dispatcher has claimed: where to send what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: DeliveryId,
    /// Attempts made before this one.
    pub attempts: i64,
    pub url: String,
    pub secret: String,
    pub message_id: MessageId,
    pub kind: EventKind,
    pub body: String,
    pub message_created_at: Timestamp,
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's status code, if it answered.
    pub status: Option<u16>,
    /// Why it failed without an answer (timeout, refused connection).
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: DeliveryId,
    pub message_id: MessageId,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// `pending`, `delivered` or `failed` (given up after a day; can be replayed).
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

macro_rules! outbox_engine {
    ($store:ty, $db:ty, lock = $lock:literal, skip_locked = $skip_locked:literal) => {
        use boxoffice_core::outbox::EventKind;
        use $crate::outbox::{Attempt, DeliveryView, DueDelivery, Message, WebhookEndpoint};
        use $crate::OutboxStore;

        /// Writes a domain event in the caller's transaction, so the event exists exactly when
        /// the change does.
        async fn emit(
            conn: &mut Conn,
            organizer_id: &str,
            kind: EventKind,
            subject: &str,
            data: serde_json::Value,
            now: Timestamp,
        ) -> StoreResult<()> {
            let mut writes = Writes::<$db>::new(FUSE_WRITES);
            emit_into(&mut writes, organizer_id, kind, subject, data, now);
            run_writes(conn, writes).await
        }

        /// `emit`, as one of the caller's `writes`.
        fn emit_into(
            writes: &mut Writes<$db>,
            organizer_id: &str,
            kind: EventKind,
            subject: &str,
            data: serde_json::Value,
            now: Timestamp,
        ) {
            let id = MessageId::generate();
            let body = serde_json::json!({
                "id": id, "type": kind.as_str(), "created_at": now, "organizer_id": organizer_id, "data": data,
            })
            .to_string();
            // Sent already on the channels that never carry this kind.
            let not_carried = |channel: $crate::Channel| (!channel.carries(kind)).then_some(now.unix_ms());
            const HEAD: &str = "INSERT INTO outbox (id, organizer_id, kind, subject, body, created_at, card_refunded_at, fanned_out_at)";
            // Fanned out already when its organizer has no endpoint: there is nobody to deliver
            // it to, and marking it later rewrote every event of a sale. An endpoint receives the
            // events of changes made after it was created.
            const SELECT: &str = "id, organizer_id, kind, subject, body, created_at, card_refunded_at, \
                 CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.organizer_id = r.organizer_id AND e.deleted_at IS NULL) \
                 THEN NULL ELSE r.created_at END";
            writes.insert(Insert::into(HEAD).selecting(SELECT), |row| {
                row.push_bind(id.to_string())
                    .push_bind(organizer_id.to_owned())
                    .push_bind(kind.as_str())
                    .push_bind(subject.to_owned())
                    .push_bind(body)
                    .push_bind(now.unix_ms())
                    .push_bind(not_carried($crate::Channel::CardRefunds))
                    .push_computed(|values| {
                        values
                            .push("CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.organizer_id = ")
                            .push_bind_unseparated(organizer_id.to_owned())
                            .push_unseparated(" AND e.deleted_at IS NULL) THEN NULL ELSE ")
                            .push_bind_unseparated(now.unix_ms())
                            .push_unseparated(" END");
                    });
            });
            for channel in $crate::Channel::ALL.into_iter().filter(|channel| channel.carries(kind)) {
                if let $crate::Backlog::Table(table) = channel.backlog() {
                    let head = format!("INSERT INTO {table} (message_id, kind, subject)");
                    writes.insert(&head, |row| {
                        row.push_bind(id.to_string()).push_bind(kind.as_str()).push_bind(subject.to_owned());
                    });
                }
            }
        }

        /// The organizer a show belongs to, for events about it and its bookings and holds.
        async fn organizer_of_show(conn: &mut Conn, show_id: &str) -> StoreResult<String> {
            let organizer: Option<String> = sqlx::query_scalar("SELECT organizer_id FROM shows WHERE id = $1")
                .bind(show_id.to_owned())
                .fetch_optional(&mut *conn)
                .await?;
            organizer.ok_or_else(|| StoreError::Corrupt(format!("show {show_id} has no organizer")))
        }

        fn kinds_text(kinds: &[EventKind]) -> String {
            kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" ")
        }

        fn kinds_of(text: &str) -> StoreResult<Vec<EventKind>> {
            text.split_whitespace()
                .map(|k| EventKind::parse(k).ok_or_else(|| StoreError::Corrupt(format!("unknown event kind {k}"))))
                .collect()
        }

        fn kind_of(text: &str) -> StoreResult<EventKind> {
            EventKind::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown event kind {text}")))
        }

        type EndpointRow = (String, String, String, String, String, i64);

        fn endpoint_of(row: EndpointRow) -> StoreResult<WebhookEndpoint> {
            let (id, organizer_id, url, secret, kinds, created_at) = row;
            Ok(WebhookEndpoint {
                id: WebhookId::from_trusted(id),
                organizer_id: OrganizerId::from_trusted(organizer_id),
                url,
                secret,
                event_types: kinds_of(&kinds)?,
                created_at: Timestamp::from_unix_ms(created_at),
            })
        }

        const ENDPOINT_COLUMNS: &str = "id, organizer_id, url, secret, event_types, created_at";

        #[async_trait::async_trait]
        impl OutboxStore for $store {
            async fn insert_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM webhook_endpoints WHERE organizer_id = $1 AND deleted_at IS NULL",
                )
                .bind(endpoint.organizer_id.to_string())
                .fetch_one(&mut *conn)
                .await?;
                if count >= boxoffice_core::outbox::MAX_WEBHOOKS_PER_ORGANIZER as i64 {
                    return Err(DomainError::Conflict(format!(
                        "an organizer may have at most {} webhook endpoints",
                        boxoffice_core::outbox::MAX_WEBHOOKS_PER_ORGANIZER
                    ))
                    .into());
                }
                sqlx::query(
                    "INSERT INTO webhook_endpoints (id, organizer_id, url, secret, event_types, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(endpoint.id.to_string())
                .bind(endpoint.organizer_id.to_string())
                .bind(endpoint.url.clone())
                .bind(endpoint.secret.clone())
                .bind(kinds_text(&endpoint.event_types))
                .bind(endpoint.created_at.unix_ms())
                .execute(&mut *conn)
                .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn webhooks_of(&self, organizer: &OrganizerId) -> StoreResult<Vec<WebhookEndpoint>> {
                let sql = format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE organizer_id = $1 AND deleted_at IS NULL ORDER BY id"
                );
                let rows: Vec<EndpointRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(organizer.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(endpoint_of).collect()
            }

            async fn webhook(&self, id: &WebhookId) -> StoreResult<Option<WebhookEndpoint>> {
                let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL");
                let row: Option<EndpointRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(endpoint_of).transpose()
            }

            async fn delete_webhook(&self, id: &WebhookId, now: Timestamp) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                sqlx::query("UPDATE webhook_endpoints SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
                    .bind(id.to_string())
                    .bind(now.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                // Nothing more goes to a deleted endpoint.
                sqlx::query("UPDATE webhook_deliveries SET state = 'failed', last_error = 'endpoint deleted' WHERE endpoint_id = $1 AND state = 'pending'")
                    .bind(id.to_string())
                    .execute(&mut *conn)
                    .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn messages_of(&self, organizer: &OrganizerId, limit: i64) -> StoreResult<Vec<Message>> {
                let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
                    "SELECT id, organizer_id, kind, subject, body, created_at FROM outbox WHERE organizer_id = $1 ORDER BY seq LIMIT $2",
                )
                .bind(organizer.to_string())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(message_of).collect()
            }

            async fn fan_out(&self, now: Timestamp, limit: i64) -> StoreResult<usize> {
                // Looked at first without a write transaction: on SQLite every write transaction
                // takes the one writer from the sale.
                let waiting: Option<i64> = sqlx::query_scalar("SELECT seq FROM outbox WHERE fanned_out_at IS NULL LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
                if waiting.is_none() {
                    return Ok(0);
                }
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let sql = format!(
                    "SELECT seq, id, organizer_id, kind, subject FROM outbox WHERE fanned_out_at IS NULL ORDER BY seq LIMIT $1{}",
                    $lock
                );
                let due: Vec<(i64, String, String, String, String)> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                // Each organizer's endpoints are read once per round, and the round's events are
                // marked in one statement (a busy sale writes hundreds of events a second).
                let mut endpoints_of: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
                for (seq, id, organizer_id, kind, subject) in &due {
                    if !endpoints_of.contains_key(organizer_id) {
                        let endpoints: Vec<(String, String)> = sqlx::query_as(
                            "SELECT id, event_types FROM webhook_endpoints WHERE organizer_id = $1 AND deleted_at IS NULL",
                        )
                        .bind(organizer_id.clone())
                        .fetch_all(&mut *conn)
                        .await?;
                        endpoints_of.insert(organizer_id.clone(), endpoints);
                    }
                    for (endpoint_id, kinds) in &endpoints_of[organizer_id] {
                        if !kinds.split_whitespace().any(|k| k == kind) {
                            continue;
                        }
                        sqlx::query(
                            "INSERT INTO webhook_deliveries (id, endpoint_id, message_id, seq, subject, state, attempts, next_attempt_at, created_at) \
                             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) ON CONFLICT (endpoint_id, message_id) DO NOTHING",
                        )
                        .bind(DeliveryId::generate().to_string())
                        .bind(endpoint_id.clone())
                        .bind(id.clone())
                        .bind(*seq)
                        .bind(subject.clone())
                        .bind(now.unix_ms())
                        .execute(&mut *conn)
                        .await?;
                    }
                }
                if !due.is_empty() {
                    let sql = format!("UPDATE outbox SET fanned_out_at = $1 WHERE seq IN ({})", placeholders(2, due.len()));
                    let mut update = sqlx::query(AssertSqlSafe(sql)).bind(now.unix_ms());
                    for (seq, ..) in &due {
                        update = update.bind(*seq);
                    }
                    update.execute(&mut *conn).await?;
                }
                w.tx.commit().await?;
                Ok(due.len())
            }

            async fn unsent_count(&self, channel: $crate::Channel) -> StoreResult<i64> {
                let sql = match channel.backlog() {
                    $crate::Backlog::Column(column) => format!("SELECT COUNT(*) FROM outbox WHERE {column} IS NULL"),
                    $crate::Backlog::Table(table) => format!("SELECT COUNT(*) FROM {table}"),
                };
                Ok(sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&self.pool).await?)
            }

            async fn unsent(&self, channel: $crate::Channel, limit: i64) -> StoreResult<Vec<Message>> {
                let sql = match channel.backlog() {
                    $crate::Backlog::Column(column) => format!(
                        "SELECT id, organizer_id, kind, subject, body, created_at FROM outbox WHERE {column} IS NULL ORDER BY seq LIMIT $1"
                    ),
                    // The oldest unsent events by id (ids are ordered by creation, in every
                    // process), each then read by its id: joined to the whole outbox instead,
                    // PostgreSQL hashed the unsent rows against a scan of every event (6 ms a
                    // round with a sale's 20,000 events, and growing with them).
                    $crate::Backlog::Table(table) => format!(
                        "SELECT o.id, o.organizer_id, o.kind, o.subject, o.body, o.created_at FROM outbox o \
                         WHERE o.id IN (SELECT message_id FROM {table} ORDER BY message_id LIMIT $1) ORDER BY o.id"
                    ),
                };
                let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(message_of).collect()
            }

            async fn mark_sent(&self, channel: $crate::Channel, ids: &[MessageId], now: Timestamp) -> StoreResult<()> {
                if ids.is_empty() {
                    return Ok(());
                }
                let mut w = self.begin_write().await?;
                let mut query = match channel.backlog() {
                    $crate::Backlog::Column(column) => sqlx::query(AssertSqlSafe(format!(
                        "UPDATE outbox SET {column} = $1 WHERE id IN ({})",
                        placeholders(2, ids.len())
                    )))
                    .bind(now.unix_ms()),
                    $crate::Backlog::Table(table) => sqlx::query(AssertSqlSafe(format!(
                        "DELETE FROM {table} WHERE message_id IN ({})",
                        placeholders(1, ids.len())
                    ))),
                };
                for id in ids {
                    query = query.bind(id.to_string());
                }
                query.execute(&mut *w.tx).await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn mark_told(&self, events: &[(EventKind, String)], _now: Timestamp) -> StoreResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                let mut w = self.begin_write().await?;
                // The untold rows are found by subject in one index scan (with the pairs alone,
                // PostgreSQL made one index scan per pair); the pairs then pick the very events,
                // as a subject has several in its life, as a list of rows (as 200 `OR`-ed pairs
                // every candidate row was tested against each pair in turn: 10 ms a statement
                // under a sale).
                for chunk in events.chunks(200) {
                    let subjects = placeholders(1, chunk.len());
                    let pairs = (0..chunk.len())
                        .map(|i| format!("(${}, ${})", chunk.len() + i + 1, 1 + i))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!(
                        "DELETE FROM outbox_untold WHERE subject IN ({subjects}) AND (kind, subject) IN (VALUES {pairs})"
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for (_, subject) in chunk {
                        query = query.bind(subject.clone());
                    }
                    for (kind, _) in chunk {
                        query = query.bind(kind.as_str());
                    }
                    query.execute(&mut *w.tx).await?;
                }
                w.tx.commit().await?;
                Ok(())
            }

            async fn booking_holders(&self, show: &ShowId, limit: i64) -> StoreResult<Vec<UserId>> {
                let users: Vec<String> = sqlx::query_scalar(
                    "SELECT DISTINCT user_id FROM bookings WHERE show_id = $1 AND state = 'confirmed' ORDER BY user_id LIMIT $2",
                )
                .bind(show.to_string())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(users.into_iter().map(UserId::from_trusted).collect())
            }

            async fn claim_deliveries(&self, now: Timestamp, lease_ms: i64, limit: i64) -> StoreResult<Vec<DueDelivery>> {
                let due: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 LIMIT 1",
                )
                .bind(now.unix_ms())
                .fetch_optional(&self.pool)
                .await?;
                if due.is_none() {
                    return Ok(Vec::new());
                }
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                // Due, not leased by a live dispatcher, and first in line for its endpoint and
                // subject: a booking's events reach each receiver in the order they happened.
                let sql = format!(
                    "SELECT d.id FROM webhook_deliveries d WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
                     AND (d.lease_until IS NULL OR d.lease_until <= $1) \
                     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.endpoint_id = d.endpoint_id \
                       AND e.subject = d.subject AND e.state = 'pending' AND e.seq < d.seq) \
                     ORDER BY d.seq LIMIT $2{}",
                    $skip_locked
                );
                let ids: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
                    .bind(now.unix_ms())
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                let mut claimed = Vec::with_capacity(ids.len());
                for id in ids {
                    // Conditional, so of two dispatchers that chose the same row only one wins it.
                    let won = sqlx::query(
                        "UPDATE webhook_deliveries SET lease_until = $2 WHERE id = $1 AND state = 'pending' \
                         AND (lease_until IS NULL OR lease_until <= $3)",
                    )
                    .bind(id.clone())
                    .bind(now.unix_ms() + lease_ms)
                    .bind(now.unix_ms())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if won != 1 {
                        continue;
                    }
                    let row: (String, i64, String, String, String, String, String, i64) = sqlx::query_as(
                        "SELECT d.id, d.attempts, e.url, e.secret, o.id, o.kind, o.body, o.created_at FROM webhook_deliveries d \
                         JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN outbox o ON o.id = d.message_id WHERE d.id = $1",
                    )
                    .bind(id)
                    .fetch_one(&mut *conn)
                    .await?;
                    let (id, attempts, url, secret, message_id, kind, body, created_at) = row;
                    claimed.push(DueDelivery {
                        id: DeliveryId::from_trusted(id),
                        attempts,
                        url,
                        secret,
                        message_id: MessageId::from_trusted(message_id),
                        kind: kind_of(&kind)?,
                        body,
                        message_created_at: Timestamp::from_unix_ms(created_at),
                    });
                }
                w.tx.commit().await?;
                Ok(claimed)
            }

            async fn record_attempt(
                &self,
                id: &DeliveryId,
                attempt: &Attempt,
                now: Timestamp,
                retry_at: Option<Timestamp>,
            ) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let attempts: Option<i64> = sqlx::query_scalar("SELECT attempts FROM webhook_deliveries WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(attempts) = attempts else { return Err(DomainError::NotFound("delivery").into()) };
                let number = attempts + 1;
                sqlx::query(
                    "INSERT INTO webhook_attempts (delivery_id, attempt, at, status, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.to_string())
                .bind(number)
                .bind(now.unix_ms())
                .bind(attempt.status.map(i64::from))
                .bind(attempt.error.clone())
                .bind(attempt.duration_ms)
                .execute(&mut *conn)
                .await?;
                let (state, next) = match (attempt.succeeded(), retry_at) {
                    (true, _) => ("delivered", now),
                    (false, Some(at)) => ("pending", at),
                    (false, None) => ("failed", now),
                };
                sqlx::query(
                    "UPDATE webhook_deliveries SET state = $2, attempts = $3, next_attempt_at = $4, lease_until = NULL, \
                     last_status = $5, last_error = $6, delivered_at = CASE WHEN $2 = 'delivered' THEN $7 ELSE delivered_at END \
                     WHERE id = $1",
                )
                .bind(id.to_string())
                .bind(state)
                .bind(number)
                .bind(next.unix_ms())
                .bind(attempt.status.map(i64::from))
                .bind(attempt.error.clone())
                .bind(now.unix_ms())
                .execute(&mut *conn)
                .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn deliveries_of(&self, endpoint: &WebhookId, limit: i64) -> StoreResult<Vec<DeliveryView>> {
                let rows: Vec<(String, String, String, String, i64, Option<i64>, Option<String>, i64, Option<i64>, i64)> = sqlx::query_as(
                    "SELECT d.id, d.message_id, o.kind, d.state, d.attempts, d.last_status, d.last_error, d.next_attempt_at, \
                     d.delivered_at, d.created_at FROM webhook_deliveries d JOIN outbox o ON o.id = d.message_id \
                     WHERE d.endpoint_id = $1 ORDER BY d.seq DESC LIMIT $2",
                )
                .bind(endpoint.to_string())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(id, message_id, kind, state, attempts, last_status, last_error, next, delivered_at, created_at)| {
                        Ok(DeliveryView {
                            id: DeliveryId::from_trusted(id),
                            message_id: MessageId::from_trusted(message_id),
                            kind: kind_of(&kind)?,
                            next_attempt_at: (state == "pending").then(|| Timestamp::from_unix_ms(next)),
                            state,
                            attempts,
                            last_status,
                            last_error,
                            delivered_at: delivered_at.map(Timestamp::from_unix_ms),
                            created_at: Timestamp::from_unix_ms(created_at),
                        })
                    })
                    .collect()
            }

            async fn replay_delivery(&self, endpoint: &WebhookId, id: &DeliveryId, now: Timestamp) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let replayed = sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $3, lease_until = NULL \
                     WHERE id = $1 AND endpoint_id = $2 AND state <> 'pending'",
                )
                .bind(id.to_string())
                .bind(endpoint.to_string())
                .bind(now.unix_ms())
                .execute(&mut *w.tx)
                .await?
                .rows_affected();
                if replayed == 1 {
                    w.tx.commit().await?;
                    return Ok(());
                }
                let pending: Option<String> =
                    sqlx::query_scalar("SELECT state FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2")
                        .bind(id.to_string())
                        .bind(endpoint.to_string())
                        .fetch_optional(&mut *w.tx)
                        .await?;
                Err(match pending {
                    Some(_) => DomainError::Conflict("this delivery is still being tried".into()),
                    None => DomainError::NotFound("delivery"),
                }
                .into())
            }
        }

        fn message_of(row: (String, String, String, String, String, i64)) -> StoreResult<Message> {
            let (id, organizer_id, kind, subject, body, created_at) = row;
            Ok(Message {
                id: MessageId::from_trusted(id),
                organizer_id: OrganizerId::from_trusted(organizer_id),
                kind: kind_of(&kind)?,
                subject,
                body,
                created_at: Timestamp::from_unix_ms(created_at),
            })
        }
    };
}

pub(crate) use outbox_engine;
