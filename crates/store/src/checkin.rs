//! The door side of the store, shared by both engines like `engine.rs`: tickets with their
//! booking, admitting a ticket exactly once (the first recorded scan wins, in one conditional
//! insert), the revocation list of a show, and how many are in.

use boxoffice_core::Timestamp;
use serde::Serialize;

/// What a scan came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Admission {
    Admitted,
    /// Used before: where and when.
    AlreadyUsed {
        gate: String,
        at: Timestamp,
    },
    /// Its booking was cancelled.
    Revoked,
}

macro_rules! checkin_engine {
    ($store:ty, $db:ty, share = $share:literal) => {
        use $crate::TicketStore;
        use $crate::checkin::Admission;

        #[async_trait::async_trait]
        impl TicketStore for $store {
            async fn ticket(&self, id: &TicketId) -> StoreResult<Option<(boxoffice_core::booking::Ticket, boxoffice_core::booking::Booking)>> {
                let mut conn = self.pool.acquire().await?;
                let booking: Option<String> = sqlx::query_scalar("SELECT booking_id FROM tickets WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(booking) = booking else { return Ok(None) };
                let Some(booking) = load_booking_by_id(&mut *conn, &booking).await? else { return Ok(None) };
                let ticket = booking.tickets.iter().find(|t| &t.id == id).cloned();
                Ok(ticket.map(|t| (t, booking)))
            }

            async fn check_in(
                &self,
                ticket: &TicketId,
                gate: &str,
                scanned_at: Timestamp,
                staff: &UserId,
                now: Timestamp,
            ) -> StoreResult<Admission> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                // Shared with a cancellation, which takes the booking row exclusively: a ticket is
                // either revoked or admitted, never both.
                let sql = format!(
                    "SELECT b.state, b.show_id FROM tickets t JOIN bookings b ON b.id = t.booking_id WHERE t.id = $1{}",
                    $share
                );
                let row: Option<(String, String)> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(ticket.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some((state, show)) = row else { return Err(DomainError::NotFound("ticket").into()) };
                if state != "confirmed" {
                    return Ok(Admission::Revoked);
                }
                let admitted = sqlx::query(
                    "INSERT INTO checkins (ticket_id, show_id, gate, scanned_at, recorded_at, staff_id) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ticket_id) DO NOTHING",
                )
                .bind(ticket.to_string())
                .bind(show)
                .bind(gate.to_owned())
                .bind(scanned_at.unix_ms())
                .bind(now.unix_ms())
                .bind(staff.to_string())
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if admitted == 1 {
                    w.tx.commit().await?;
                    return Ok(Admission::Admitted);
                }
                let (gate, at): (String, i64) = sqlx::query_as("SELECT gate, scanned_at FROM checkins WHERE ticket_id = $1")
                    .bind(ticket.to_string())
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(Admission::AlreadyUsed { gate, at: Timestamp::from_unix_ms(at) })
            }

            async fn revoked_tickets(&self, show: &ShowId, limit: i64) -> StoreResult<Vec<TicketId>> {
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT t.id FROM tickets t JOIN bookings b ON b.id = t.booking_id \
                     WHERE b.show_id = $1 AND b.state = 'cancelled' ORDER BY t.id LIMIT $2",
                )
                .bind(show.to_string())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(ids.into_iter().map(TicketId::from_trusted).collect())
            }

            async fn checked_in(&self, show: &ShowId) -> StoreResult<i64> {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkins WHERE show_id = $1")
                    .bind(show.to_string())
                    .fetch_one(&self.pool)
                    .await?;
                Ok(count)
            }
        }
    };
}

pub(crate) use checkin_engine;
