//! The payment side of the store, shared by both engines like `engine.rs`: payment intents, the
//! conditional moves between their states (each with its outbox event, in one transaction),
//! keeping a hold alive while its payment is decided, and provider events already acted on.

use boxoffice_core::ids::{BookingId, HoldId, PaymentId, ShowId, UserId};
use boxoffice_core::payment::PaymentState;
use boxoffice_core::{Money, Timestamp};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: PaymentId,
    pub hold_id: HoldId,
    pub user_id: UserId,
    pub show_id: ShowId,
    /// What the card is charged.
    pub amount: Money,
    /// What the wallet adds when the booking is made.
    pub wallet_minor: i64,
    pub method: String,
    pub card_last4: String,
    pub state: PaymentState,
    /// The provider's id for it.
    #[serde(skip)]
    pub provider_reference: String,
    /// Once it succeeded and the seats were still held.
    pub booking_id: Option<BookingId>,
    pub failure_reason: Option<String>,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

macro_rules! payments_engine {
    ($store:ty, $db:ty, lock = $lock:literal) => {
        use boxoffice_core::payment::PaymentState;
        use $crate::PaymentStore;
        use $crate::payments::Payment;

        type PaymentRow = (String, String, String, String, i64, i64, String, String, String, String, String, Option<String>, Option<String>, Option<String>, i64, i64);

        const PAYMENT_COLUMNS: &str = "id, hold_id, user_id, show_id, amount_minor, wallet_minor, currency, method, card_last4, state, \
             provider_reference, booking_id, failure_reason, idempotency_key, created_at, updated_at";

        fn payment_of(row: PaymentRow) -> StoreResult<Payment> {
            let (id, hold_id, user_id, show_id, amount, wallet, currency, method, last4, state, reference, booking, reason, key, created, updated) = row;
            Ok(Payment {
                id: PaymentId::from_trusted(id),
                hold_id: HoldId::from_trusted(hold_id),
                user_id: UserId::from_trusted(user_id),
                show_id: ShowId::from_trusted(show_id),
                amount: Money::new(amount, boxoffice_core::Currency::from_trusted(currency)),
                wallet_minor: wallet,
                method,
                card_last4: last4,
                state: PaymentState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("bad payment state {state}")))?,
                provider_reference: reference,
                booking_id: booking.map(BookingId::from_trusted),
                failure_reason: reason,
                idempotency_key: key,
                created_at: Timestamp::from_unix_ms(created),
                updated_at: Timestamp::from_unix_ms(updated),
            })
        }

        async fn load_payment(conn: &mut Conn, column: &str, value: &str) -> StoreResult<Option<Payment>> {
            let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE {column} = $1");
            let row: Option<PaymentRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(value.to_owned()).fetch_optional(&mut *conn).await?;
            row.map(payment_of).transpose()
        }

        async fn load_payments_of_hold(conn: &mut Conn, hold: &str) -> StoreResult<Vec<Payment>> {
            let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE hold_id = $1 ORDER BY id");
            let rows: Vec<PaymentRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(hold.to_owned()).fetch_all(&mut *conn).await?;
            rows.into_iter().map(payment_of).collect()
        }

        /// The outbox event for a payment reaching `state`, if that is news to the organizer.
        fn payment_event(state: PaymentState) -> Option<EventKind> {
            match state {
                PaymentState::Succeeded => Some(EventKind::PaymentSucceeded),
                PaymentState::Failed => Some(EventKind::PaymentFailed),
                PaymentState::Refunded => Some(EventKind::PaymentRefunded),
                _ => None,
            }
        }

        /// `organizer`: the show's, when the caller has it at hand; looked up otherwise.
        async fn emit_payment(conn: &mut Conn, payment: &Payment, organizer: Option<&str>, now: Timestamp) -> StoreResult<()> {
            let Some(kind) = payment_event(payment.state) else { return Ok(()) };
            let organizer = match organizer {
                Some(organizer) => organizer.to_owned(),
                None => organizer_of_show(conn, payment.show_id.as_str()).await?,
            };
            emit(conn, &organizer, kind, payment.id.as_str(), serde_json::json!({ "payment": payment }), now).await
        }

        /// Records a payment (and its outbox event when it is already decided) in the caller's
        /// transaction; `organizer` as for `emit_payment`.
        async fn insert_payment_row(conn: &mut Conn, payment: &Payment, organizer: Option<&str>) -> StoreResult<()> {
            let organizer = match (organizer, payment_event(payment.state)) {
                (Some(organizer), _) => organizer.to_owned(),
                (None, Some(_)) => organizer_of_show(conn, payment.show_id.as_str()).await?,
                // No event to address.
                (None, None) => String::new(),
            };
            let mut writes = Writes::<$db>::new(FUSE_WRITES);
            payment_rows_into(&mut writes, payment, &organizer);
            run_writes(conn, writes).await.map_err(|e| match e {
                StoreError::Database(e) if is_unique_violation(&e) => {
                    StoreError::from(DomainError::Conflict("a payment with this Idempotency-Key is under way".into()))
                }
                e => e,
            })
        }

        /// A payment and its outbox event (when it is already decided), as the caller's `writes`.
        /// A second payment under one Idempotency-Key fails the whole statement: `insert_payment_row`
        /// tells it apart.
        fn payment_rows_into(writes: &mut Writes<$db>, payment: &Payment, organizer: &str) {
            payment_row_into(writes, payment);
            payment_event_into(writes, payment, organizer);
        }

        /// The payment's row alone, as one of the caller's `writes`.
        fn payment_row_into(writes: &mut Writes<$db>, payment: &Payment) {
            writes.insert(&format!("INSERT INTO payments ({PAYMENT_COLUMNS})"), |row| {
                row.push_bind(payment.id.to_string())
                    .push_bind(payment.hold_id.to_string())
                    .push_bind(payment.user_id.to_string())
                    .push_bind(payment.show_id.to_string())
                    .push_bind(payment.amount.amount_minor)
                    .push_bind(payment.wallet_minor)
                    .push_bind(payment.amount.currency.to_string())
                    .push_bind(payment.method.clone())
                    .push_bind(payment.card_last4.clone())
                    .push_bind(payment.state.as_str())
                    .push_bind(payment.provider_reference.clone())
                    .push_bind(payment.booking_id.as_ref().map(|b| b.to_string()))
                    .push_bind(payment.failure_reason.clone())
                    .push_bind(payment.idempotency_key.clone())
                    .push_bind(payment.created_at.unix_ms())
                    .push_bind(payment.updated_at.unix_ms());
            });
        }

        /// The outbox event of a payment already decided, as one of the caller's `writes`.
        fn payment_event_into(writes: &mut Writes<$db>, payment: &Payment, organizer: &str) {
            if let Some(kind) = payment_event(payment.state) {
                emit_into(writes, organizer, kind, payment.id.as_str(), serde_json::json!({ "payment": payment }), payment.updated_at);
            }
        }

        /// Marks a payment succeeded with its booking, inside the booking's transaction.
        async fn settle_payment(conn: &mut Conn, payment: &PaymentId, booking: &BookingId, now: Timestamp) -> StoreResult<()> {
            let settled = sqlx::query(
                "UPDATE payments SET state = 'succeeded', booking_id = $2, updated_at = $3 \
                 WHERE id = $1 AND state IN ('requires_action', 'processing')",
            )
            .bind(payment.to_string())
            .bind(booking.to_string())
            .bind(now.unix_ms())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if settled != 1 {
                return Err(DomainError::Conflict("this payment was already decided".into()).into());
            }
            let paid = load_payment(conn, "id", payment.as_str()).await?.ok_or(DomainError::NotFound("payment"))?;
            emit_payment(conn, &paid, None, now).await
        }

        #[async_trait::async_trait]
        impl PaymentStore for $store {
            async fn insert_payment(&self, payment: &Payment) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                insert_payment_row(&mut *w.tx, payment, None).await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn payment(&self, id: &PaymentId) -> StoreResult<Option<Payment>> {
                let mut conn = self.pool.acquire().await?;
                load_payment(&mut *conn, "id", id.as_str()).await
            }

            async fn payment_by_key(&self, user: &UserId, key: &str) -> StoreResult<Option<Payment>> {
                let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE user_id = $1 AND idempotency_key = $2");
                let row: Option<PaymentRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(user.to_string())
                    .bind(key.to_owned())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(payment_of).transpose()
            }

            async fn payments_of_hold(&self, hold: &HoldId) -> StoreResult<Vec<Payment>> {
                let mut conn = self.pool.acquire().await?;
                load_payments_of_hold(&mut *conn, hold.as_str()).await
            }

            async fn hold_to_pay(&self, hold: &HoldId) -> StoreResult<Option<(Hold, Option<PaymentId>)>> {
                let mut conn = self.pool.acquire().await?;
                load_hold_to_pay(&mut *conn, hold.as_str()).await
            }

            async fn payment_by_reference(&self, reference: &str) -> StoreResult<Option<Payment>> {
                let mut conn = self.pool.acquire().await?;
                load_payment(&mut *conn, "provider_reference", reference).await
            }

            async fn move_payment(
                &self,
                id: &PaymentId,
                from: &[PaymentState],
                to: PaymentState,
                reason: Option<&str>,
                now: Timestamp,
            ) -> StoreResult<Option<Payment>> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let sql = format!(
                    "UPDATE payments SET state = $2, failure_reason = COALESCE($3, failure_reason), updated_at = $4 \
                     WHERE id = $1 AND state IN ({})",
                    placeholders(5, from.len().max(1))
                );
                let mut query = sqlx::query(AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .bind(to.as_str())
                    .bind(reason.map(str::to_owned))
                    .bind(now.unix_ms());
                for state in from {
                    query = query.bind(state.as_str());
                }
                if from.is_empty() {
                    query = query.bind("none");
                }
                if query.execute(&mut *conn).await?.rows_affected() != 1 {
                    return Ok(None);
                }
                let moved = load_payment(conn, "id", id.as_str()).await?.ok_or(DomainError::NotFound("payment"))?;
                emit_payment(conn, &moved, None, now).await?;
                w.tx.commit().await?;
                Ok(Some(moved))
            }

            async fn extend_hold(&self, id: &HoldId, now: Timestamp, until: Timestamp) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                // Only a live hold, and only later: an expired hold stays expired (law 3).
                sqlx::query("UPDATE holds SET expires_at = $2 WHERE id = $1 AND state = 'active' AND expires_at > $3 AND expires_at < $2")
                    .bind(id.to_string())
                    .bind(until.unix_ms())
                    .bind(now.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                // Locked in seat-id order (the subquery), like every claim's.
                sqlx::query(concat!(
                    "UPDATE show_seats SET held_until = (SELECT expires_at FROM holds WHERE holds.id = $1) \
                     WHERE hold_id = $1 AND state = 'held' \
                     AND seat_id IN (SELECT seat_id FROM show_seats WHERE hold_id = $1 ORDER BY seat_id",
                    $lock,
                    ")"
                ))
                .bind(id.to_string())
                .execute(&mut *conn)
                .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn first_provider_event(&self, event_id: &str, now: Timestamp) -> StoreResult<bool> {
                let mut w = self.begin_write().await?;
                let inserted = sqlx::query("INSERT INTO provider_events (id, received_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
                    .bind(event_id.to_owned())
                    .bind(now.unix_ms())
                    .execute(&mut *w.tx)
                    .await?
                    .rows_affected();
                w.tx.commit().await?;
                Ok(inserted == 1)
            }

            async fn record_card_refund(
                &self,
                payment: &Payment,
                amount_minor: i64,
                booking: &BookingId,
                now: Timestamp,
            ) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let organizer = organizer_of_show(&mut *w.tx, payment.show_id.as_str()).await?;
                emit(
                    &mut *w.tx,
                    &organizer,
                    EventKind::PaymentRefunded,
                    payment.id.as_str(),
                    serde_json::json!({ "payment": payment, "booking_id": booking, "refunded_minor": amount_minor }),
                    now,
                )
                .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn provider_event_seen(&self, event_id: &str) -> StoreResult<bool> {
                let seen: Option<String> = sqlx::query_scalar("SELECT id FROM provider_events WHERE id = $1")
                    .bind(event_id.to_owned())
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(seen.is_some())
            }
        }
    };
}

pub(crate) use payments_engine;
