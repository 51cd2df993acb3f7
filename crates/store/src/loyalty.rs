//! The loyalty side of the store, shared by both engines like `engine.rs`: the points history,
//! the points live holds keep aside, and scratch cards. Rewards are written in the booking's own
//! transaction and taken back in the cancellation's, so they exist exactly when the booking does.

macro_rules! loyalty_engine {
    ($store:ty, $db:ty) => {
        use boxoffice_core::loyalty::{self, CardState, Loyalty, PointsEntry, PointsKind, Prize, ScratchCard};
        use $crate::LoyaltyStore;

        type CardRow = (String, String, String, String, String, i64, Option<i64>, Option<i64>);
        const CARD_COLUMNS: &str = "id, booking_id, show_id, prize, state, drawn_at, revealed_at, credited_at";

        fn card_of(row: CardRow) -> StoreResult<ScratchCard> {
            let (id, booking_id, show_id, prize, state, drawn_at, revealed_at, credited_at) = row;
            Ok(ScratchCard {
                id: ScratchCardId::from_trusted(id),
                booking_id: BookingId::from_trusted(booking_id),
                show_id: ShowId::from_trusted(show_id),
                state: CardState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("card state {state}")))?,
                prize: Some(serde_json::from_str::<Prize>(&prize).map_err(|e| StoreError::Corrupt(e.to_string()))?),
                drawn_at: Timestamp::from_unix_ms(drawn_at),
                revealed_at: revealed_at.map(Timestamp::from_unix_ms),
                credited_at: credited_at.map(Timestamp::from_unix_ms),
            })
        }

        /// Points a new hold of the customer's may spend: the history's sum less what live holds
        /// keep aside. The caller holds the customer's row.
        async fn points_available(conn: &mut Conn, user_id: &str, now: Timestamp) -> StoreResult<i64> {
            let available: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE((SELECT SUM(points) FROM loyalty_entries WHERE user_id = $1), 0) \
                 - COALESCE((SELECT SUM(points_redeemed) FROM holds WHERE user_id = $1 AND points_redeemed > 0 \
                   AND state = 'active' AND expires_at > $2), 0) AS BIGINT)",
            )
            .bind(user_id.to_owned())
            .bind(now.unix_ms())
            .fetch_one(&mut *conn)
            .await?;
            Ok(available)
        }

        async fn add_points(conn: &mut Conn, user_id: &str, kind: PointsKind, points: i64, booking_id: &str, now: Timestamp) -> StoreResult<()> {
            let mut writes = Writes::<$db>::new(FUSE_WRITES);
            add_points_into(&mut writes, user_id, kind, points, booking_id, now);
            run_writes(conn, writes).await
        }

        fn add_points_into(writes: &mut Writes<$db>, user_id: &str, kind: PointsKind, points: i64, booking_id: &str, now: Timestamp) {
            if points == 0 {
                return;
            }
            writes.insert("INSERT INTO loyalty_entries (user_id, kind, points, booking_id, created_at)", |row| {
                row.push_bind(user_id.to_owned())
                    .push_bind(kind.as_str())
                    .push_bind(points)
                    .push_bind(booking_id.to_owned())
                    .push_bind(now.unix_ms());
            });
        }

        /// The rewards of a booking just confirmed, as the caller's `writes`: points per ticket,
        /// the spending of the points its hold kept aside, and (for a group) a scratch card drawn
        /// at `draw`.
        fn reward_booking(writes: &mut Writes<$db>, booking: &Booking, hold: &Hold, show: &Show, draw: f64, now: Timestamp) -> StoreResult<()> {
            let user = booking.user_id.as_str();
            let tickets = booking.tickets.len() as i64;
            add_points_into(writes, user, PointsKind::Earned, loyalty::points_for(tickets), booking.id.as_str(), now);
            add_points_into(writes, user, PointsKind::Redeemed, -hold.points_redeemed, booking.id.as_str(), now);
            if tickets < loyalty::SCRATCH_CARD_TICKETS {
                return Ok(());
            }
            let id = ScratchCardId::generate();
            // The id's tail is random: a voucher or code nobody can guess.
            let tail: String = id.as_str().chars().rev().take(8).collect::<String>().to_ascii_uppercase();
            let mut promo_id = None;
            let prize = match loyalty::prize_kind(draw) {
                "cashback" => Prize::Cashback {
                    amount_minor: loyalty::cashback_minor(booking.total.amount_minor),
                    currency: booking.total.currency.to_string(),
                },
                "add_on" => Prize::AddOn { description: "A free drink at the bar".into(), voucher: format!("ADD-{tail}") },
                _ => {
                    let code = format!("WIN-{tail}");
                    let promo = PromoId::generate();
                    writes.insert("INSERT INTO promo_codes (id, organizer_id, code, event_id, show_id, discount_kind, discount_value, \
                             valid_from, valid_until, max_uses, max_uses_per_customer, created_at)", |row| {
                        row.push_bind(promo.to_string())
                            .push_bind(show.organizer_id.to_string())
                            .push_bind(code.clone())
                            .push_bind(None::<String>)
                            .push_bind(None::<String>)
                            .push_bind("percent")
                            .push_bind(loyalty::PRIZE_CODE_PERCENT)
                            .push_bind(now.unix_ms())
                            .push_bind(now.plus_minutes(loyalty::PRIZE_CODE_DAYS * 24 * 60).unix_ms())
                            .push_bind(1_i64)
                            .push_bind(1_i64)
                            .push_bind(now.unix_ms());
                    });
                    promo_id = Some(promo.to_string());
                    Prize::DiscountCode { code, percent: loyalty::PRIZE_CODE_PERCENT }
                }
            };
            let kind = match &prize {
                Prize::Cashback { .. } => "cashback",
                Prize::AddOn { .. } => "add_on",
                Prize::DiscountCode { .. } => "discount_code",
            };
            let prize = serde_json::to_string(&prize).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            writes.insert("INSERT INTO scratch_cards (id, booking_id, user_id, show_id, prize_kind, prize, state, promo_id, drawn_at)", |row| {
                row.push_bind(id.to_string())
                    .push_bind(booking.id.to_string())
                    .push_bind(user.to_owned())
                    .push_bind(booking.show_id.to_string())
                    .push_bind(kind)
                    .push_bind(prize.clone())
                    .push_bind("hidden")
                    .push_bind(promo_id.clone())
                    .push_bind(now.unix_ms());
            });
            Ok(())
        }

        /// Takes back what a cancelled booking earned and gives back what it spent; its scratch
        /// card is void (a discount code prize stops working at once).
        async fn revoke_rewards(conn: &mut Conn, booking_id: &str, now: Timestamp) -> StoreResult<()> {
            let sums: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT user_id, kind, CAST(SUM(points) AS BIGINT) FROM loyalty_entries WHERE booking_id = $1 GROUP BY user_id, kind",
            )
            .bind(booking_id.to_owned())
            .fetch_all(&mut *conn)
            .await?;
            for (user, kind, points) in sums {
                match PointsKind::parse(&kind) {
                    Some(PointsKind::Earned) => add_points(conn, &user, PointsKind::Reversed, -points, booking_id, now).await?,
                    Some(PointsKind::Redeemed) => add_points(conn, &user, PointsKind::Restored, -points, booking_id, now).await?,
                    _ => {}
                }
            }
            sqlx::query(
                "UPDATE promo_codes SET valid_until = $2 WHERE id = (SELECT promo_id FROM scratch_cards WHERE booking_id = $1 AND state <> 'revoked')",
            )
            .bind(booking_id.to_owned())
            .bind(now.unix_ms())
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE scratch_cards SET state = 'revoked', revoked_at = $2 WHERE booking_id = $1 AND state <> 'revoked' AND credited_at IS NULL")
                .bind(booking_id.to_owned())
                .bind(now.unix_ms())
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        #[async_trait::async_trait]
        impl LoyaltyStore for $store {
            async fn loyalty_of(&self, user: &UserId, now: Timestamp) -> StoreResult<Loyalty> {
                let mut conn = self.pool.acquire().await?;
                let balance: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM loyalty_entries WHERE user_id = $1")
                    .bind(user.to_string())
                    .fetch_one(&mut *conn)
                    .await?;
                let available = points_available(&mut *conn, user.as_str(), now).await?;
                let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
                    "SELECT kind, points, booking_id, created_at FROM loyalty_entries WHERE user_id = $1 ORDER BY seq DESC LIMIT 100",
                )
                .bind(user.to_string())
                .fetch_all(&mut *conn)
                .await?;
                let history = rows
                    .into_iter()
                    .map(|(kind, points, booking_id, at)| {
                        Ok(PointsEntry {
                            kind: PointsKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("points kind {kind}")))?,
                            points,
                            booking_id: BookingId::from_trusted(booking_id),
                            at: Timestamp::from_unix_ms(at),
                        })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(Loyalty { balance, available, history })
            }

            async fn scratch_cards_of(&self, user: &UserId) -> StoreResult<Vec<ScratchCard>> {
                let sql = format!("SELECT {CARD_COLUMNS} FROM scratch_cards WHERE user_id = $1 ORDER BY drawn_at DESC, id LIMIT 100");
                let rows: Vec<CardRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(user.to_string()).fetch_all(&self.pool).await?;
                rows.into_iter().map(|row| card_of(row).map(ScratchCard::shown)).collect()
            }

            async fn reveal_scratch_card(&self, id: &ScratchCardId, user: &UserId, now: Timestamp) -> StoreResult<ScratchCard> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                sqlx::query("UPDATE scratch_cards SET state = 'revealed', revealed_at = $3 WHERE id = $1 AND user_id = $2 AND state = 'hidden'")
                    .bind(id.to_string())
                    .bind(user.to_string())
                    .bind(now.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                let sql = format!("SELECT {CARD_COLUMNS} FROM scratch_cards WHERE id = $1 AND user_id = $2");
                let row: Option<CardRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .bind(user.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                let card = card_of(row.ok_or(DomainError::NotFound("scratch card"))?)?;
                if card.state == CardState::Revoked {
                    return Err(DomainError::Conflict("this card was revoked: its booking was cancelled".into()).into());
                }
                w.tx.commit().await?;
                Ok(card)
            }

            async fn credit_cashbacks(&self, now: Timestamp, limit: i64) -> StoreResult<usize> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let due: Vec<(String, String, String, String)> = sqlx::query_as(
                    "SELECT c.id, c.user_id, s.organizer_id, c.prize FROM scratch_cards c JOIN shows s ON s.id = c.show_id \
                     WHERE c.prize_kind = 'cashback' AND c.credited_at IS NULL AND c.state <> 'revoked' AND s.starts_at <= $1 \
                     ORDER BY c.drawn_at LIMIT $2",
                )
                .bind(now.unix_ms())
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
                for (id, user, organizer, prize) in &due {
                    let credited = sqlx::query("UPDATE scratch_cards SET credited_at = $2 WHERE id = $1 AND credited_at IS NULL AND state <> 'revoked'")
                        .bind(id.clone())
                        .bind(now.unix_ms())
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                    let Ok(Prize::Cashback { amount_minor, currency }) = serde_json::from_str::<Prize>(prize) else { continue };
                    if credited == 1 {
                        let transfer = boxoffice_core::ledger::Transfer {
                            from: boxoffice_core::ledger::Account::Organizer(OrganizerId::from_trusted(organizer.clone())),
                            to: boxoffice_core::ledger::Account::Wallet(UserId::from_trusted(user.clone())),
                            amount_minor,
                        };
                        post(conn, "scratch_cashback", id, &currency, &[transfer], now).await?;
                    }
                }
                w.tx.commit().await?;
                Ok(due.len())
            }
        }
    };
}

pub(crate) use loyalty_engine;
