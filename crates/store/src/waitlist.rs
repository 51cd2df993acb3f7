//! The waitlist side of the store, shared by both engines like `engine.rs`: entries in joining
//! order, and the matching round that offers what came back to the first entries it can serve.
//!
//! A round runs in one transaction holding the show's row exclusively, so claims for the show
//! wait for it and two rounds (on any instance) never run at once: no seat is offered twice and
//! no entry gets two offers. Whatever frees places takes the show's row shared first, so a round
//! sees one state of the show from start to end (an entry is never judged unservable just before
//! places come back and overtaken by the next one just after).

macro_rules! waitlist_engine {
    ($store:ty, $db:ty, lock = $lock:literal, share = $share:literal) => {
        use boxoffice_core::waitlist::{self, EntryState, WaitlistEntry};
        use $crate::{WaitlistOffer, WaitlistStore};

        type EntryRow = (String, String, String, Option<String>, i64, bool, String, i64, Option<String>, Option<i64>, i64, Option<i64>);

        /// Entries as they stand at `$1` (now): an offer whose hold became a booking reads as
        /// booked, one whose hold ran out as lapsed, before any round has written that down.
        const ENTRY_SELECT: &str = "SELECT e.id, e.show_id, e.user_id, e.category, e.quantity, e.together, \
             CASE WHEN e.state = 'offered' AND h.state = 'converted' THEN 'booked' \
                  WHEN e.state = 'offered' AND (h.state IN ('expired', 'released') OR h.expires_at <= $1) THEN 'lapsed' \
                  ELSE e.state END, \
             e.passes, e.hold_id, h.expires_at, e.created_at, \
             CASE WHEN e.state = 'waiting' THEN (SELECT COUNT(*) FROM waitlist_entries o \
                  WHERE o.show_id = e.show_id AND o.state = 'waiting' AND o.position <= e.position) END \
             FROM waitlist_entries e LEFT JOIN holds h ON h.id = e.hold_id";

        fn entry_of(row: EntryRow) -> StoreResult<WaitlistEntry> {
            let (id, show_id, user_id, category, quantity, together, state, passes, hold_id, offer_expires_at, created_at, place) = row;
            Ok(WaitlistEntry {
                id: WaitlistEntryId::from_trusted(id),
                show_id: ShowId::from_trusted(show_id),
                user_id: UserId::from_trusted(user_id),
                category,
                quantity,
                together,
                state: EntryState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("waitlist state {state}")))?,
                passes,
                hold_id: hold_id.map(HoldId::from_trusted),
                offer_expires_at: offer_expires_at.map(Timestamp::from_unix_ms),
                created_at: Timestamp::from_unix_ms(created_at),
                place,
            })
        }

        async fn entries_where(conn: &mut Conn, condition: &str, binds: &[&str], now: Timestamp) -> StoreResult<Vec<WaitlistEntry>> {
            let sql = format!("{ENTRY_SELECT} WHERE {condition} ORDER BY e.position LIMIT 1000");
            let mut query = sqlx::query_as::<_, EntryRow>(AssertSqlSafe(sql)).bind(now.unix_ms());
            for bind in binds {
                query = query.bind(bind.to_string());
            }
            query.fetch_all(&mut *conn).await?.into_iter().map(entry_of).collect()
        }

        /// Writes down what became of the show's offers (booked, or lapsed so the places pass on).
        async fn settle_offers(conn: &mut Conn, show_id: &str, now: Timestamp) -> StoreResult<()> {
            sqlx::query(
                "UPDATE waitlist_entries SET state = 'booked', updated_at = $2 WHERE show_id = $1 AND state = 'offered' \
                 AND hold_id IN (SELECT id FROM holds WHERE show_id = $1 AND state = 'converted')",
            )
            .bind(show_id.to_owned())
            .bind(now.unix_ms())
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE waitlist_entries SET state = 'lapsed', updated_at = $2 WHERE show_id = $1 AND state = 'offered' \
                 AND hold_id IN (SELECT id FROM holds WHERE show_id = $1 \
                   AND (state IN ('expired', 'released') OR (state = 'active' AND expires_at <= $2)))",
            )
            .bind(show_id.to_owned())
            .bind(now.unix_ms())
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Tries to make the entry an offer from what is free now: its category (or each of the
        /// show's that is not locked behind a code, cheapest first), seats side by side when asked. `None` when nothing fits, or
        /// the customer cannot take a hold now (one open already, or the ticket limit reached).
        async fn offer_to(conn: &mut Conn, show: &Show, entry: &WaitlistEntry, now: Timestamp) -> StoreResult<Option<Hold>> {
            let standing = customer_standing(conn, entry.user_id.as_str(), show.id.as_str(), now).await?;
            if standing.active > 0 || show.check_ticket_limits(entry.quantity, standing.tickets).is_err() {
                return Ok(None);
            }
            let categories: Vec<String> = match &entry.category {
                Some(category) => vec![category.clone()],
                None => {
                    let mut by_price: Vec<(&String, &i64)> =
                        show.prices.iter().filter(|(name, _)| !show.locked_categories.contains(*name)).collect();
                    by_price.sort_by_key(|(name, price)| (**price, (*name).clone()));
                    by_price.into_iter().map(|(name, _)| name.clone()).collect()
                }
            };
            let hold_id = HoldId::generate();
            let expires_at = waitlist::offer_deadline(show, now);
            for category in categories {
                let areas: Vec<String> = sqlx::query_scalar(
                    "SELECT a.id FROM show_areas sa JOIN areas a ON a.id = sa.area_id \
                     WHERE sa.show_id = $1 AND a.category = $2 ORDER BY a.position",
                )
                .bind(show.id.to_string())
                .bind(category.clone())
                .fetch_all(&mut *conn)
                .await?;
                let mut items = None;
                if areas.is_empty() {
                    match pick_best_available(conn, show, &Pick { category: &category, quantity: entry.quantity, scattered_ok: !entry.together, avoid: &[], start_rank: 0 }, now).await {
                        Ok((seats, _)) => match claim_seats(conn, show, &seats, Busy::Wait, &hold_id, expires_at, now).await {
                            Ok(claimed) => items = Some(claimed),
                            Err(StoreError::Domain(_)) => {}
                            Err(other) => return Err(other),
                        },
                        Err(StoreError::Domain(_)) => {}
                        Err(other) => return Err(other),
                    }
                } else {
                    for area in areas {
                        let wanted = [AreaQuantity { area_id: AreaId::from_trusted(area), quantity: entry.quantity }];
                        match claim_areas(conn, show, &wanted, now).await {
                            Ok(claimed) => {
                                items = Some(claimed);
                                break;
                            }
                            Err(StoreError::Domain(_)) => {}
                            Err(other) => return Err(other),
                        }
                    }
                }
                let Some(items) = items else { continue };
                let hold = Hold {
                    id: hold_id,
                    show_id: show.id.clone(),
                    user_id: entry.user_id.clone(),
                    state: HoldState::Active,
                    total: Money::new(total_of(&items), show.currency.clone()),
                    discount_minor: 0,
                    points_redeemed: 0,
                    promo_code: None,
                    items,
                    created_at: now,
                    expires_at,
                };
                insert_hold_rows(conn, &hold, None).await?;
                return Ok(Some(hold));
            }
            Ok(None)
        }

        #[async_trait::async_trait]
        impl WaitlistStore for $store {
            async fn join_waitlist(&self, entry: &WaitlistEntry) -> StoreResult<WaitlistEntry> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                // The show's row before any entry's: a round holds it while it updates entries,
                // and the new entry's reference to the show would otherwise wait for the round
                // while holding an entry the round wants (a deadlock PostgreSQL breaks with 500).
                sqlx::query(concat!("SELECT id FROM shows WHERE id = $1", $share))
                    .bind(entry.show_id.to_string())
                    .execute(&mut *conn)
                    .await?;
                settle_offers(conn, entry.show_id.as_str(), entry.created_at).await?;
                sqlx::query(
                    "INSERT INTO waitlist_entries (id, show_id, user_id, category, quantity, together, state, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'waiting', $7, $7)",
                )
                .bind(entry.id.to_string())
                .bind(entry.show_id.to_string())
                .bind(entry.user_id.to_string())
                .bind(entry.category.clone())
                .bind(entry.quantity)
                .bind(entry.together)
                .bind(entry.created_at.unix_ms())
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::from(DomainError::Conflict("you are already on this show's waitlist".into()))
                    } else {
                        e.into()
                    }
                })?;
                let joined = entries_where(conn, "e.id = $2", &[entry.id.as_str()], entry.created_at).await?;
                w.tx.commit().await?;
                joined.into_iter().next().ok_or_else(|| StoreError::Corrupt("the entry vanished".into()))
            }

            async fn waitlist_entry(&self, id: &WaitlistEntryId, now: Timestamp) -> StoreResult<Option<WaitlistEntry>> {
                let mut conn = self.pool.acquire().await?;
                Ok(entries_where(&mut *conn, "e.id = $2", &[id.as_str()], now).await?.into_iter().next())
            }

            async fn waitlist_entries_of(&self, show: Option<&ShowId>, user: &UserId, now: Timestamp) -> StoreResult<Vec<WaitlistEntry>> {
                let mut conn = self.pool.acquire().await?;
                match show {
                    Some(show) => entries_where(&mut *conn, "e.user_id = $2 AND e.show_id = $3", &[user.as_str(), show.as_str()], now).await,
                    None => entries_where(&mut *conn, "e.user_id = $2", &[user.as_str()], now).await,
                }
            }

            async fn waitlist_of(&self, show: &ShowId, now: Timestamp) -> StoreResult<Vec<WaitlistEntry>> {
                let mut conn = self.pool.acquire().await?;
                entries_where(&mut *conn, "e.show_id = $2", &[show.as_str()], now).await
            }

            async fn leave_waitlist(&self, id: &WaitlistEntryId, user: &UserId, now: Timestamp) -> StoreResult<WaitlistEntry> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let left = sqlx::query(
                    "UPDATE waitlist_entries SET state = 'left', updated_at = $3 WHERE id = $1 AND user_id = $2 AND state = 'waiting'",
                )
                .bind(id.to_string())
                .bind(user.to_string())
                .bind(now.unix_ms())
                .execute(&mut *conn)
                .await?
                .rows_affected();
                let entry = entries_where(conn, "e.id = $2 AND e.user_id = $3", &[id.as_str(), user.as_str()], now)
                    .await?
                    .into_iter()
                    .next()
                    .ok_or(DomainError::NotFound("waitlist entry"))?;
                if left == 0 {
                    return Err(DomainError::Conflict(match entry.state {
                        EntryState::Offered => "this entry has an open offer: release its hold to turn it down".into(),
                        state => format!("this entry is {} already", state.as_str()),
                    })
                    .into());
                }
                w.tx.commit().await?;
                Ok(entry)
            }

            async fn shows_with_open_waitlists(&self, limit: i64) -> StoreResult<Vec<ShowId>> {
                let shows: Vec<String> = sqlx::query_scalar(
                    "SELECT DISTINCT show_id FROM waitlist_entries WHERE state IN ('waiting', 'offered') LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(shows.into_iter().map(ShowId::from_trusted).collect())
            }

            async fn serve_waitlist(&self, show_id: &ShowId, clock: &dyn boxoffice_core::Clock) -> StoreResult<Vec<WaitlistOffer>> {
                // A look without the lock first: most shows have nobody waiting.
                let open: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM waitlist_entries WHERE show_id = $1 AND state IN ('waiting', 'offered')",
                )
                .bind(show_id.to_string())
                .fetch_one(&self.pool)
                .await?;
                if open == 0 {
                    return Ok(Vec::new());
                }
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                sqlx::query(concat!("SELECT id FROM shows WHERE id = $1", $lock))
                    .bind(show_id.to_string())
                    .execute(&mut *conn)
                    .await?;
                // The time of the decision is once the lock is ours: a round that waited for it
                // must not judge (and date offers) by the moment it began to wait.
                let now = clock.now();
                let show = load_show(conn, show_id.as_str()).await?.ok_or(DomainError::NotFound("show"))?;
                settle_offers(conn, show_id.as_str(), now).await?;
                if show.state != boxoffice_core::catalog::ShowState::Scheduled || now >= show.off_sale_at {
                    sqlx::query("UPDATE waitlist_entries SET state = 'closed', updated_at = $2 WHERE show_id = $1 AND state = 'waiting'")
                        .bind(show_id.to_string())
                        .bind(now.unix_ms())
                        .execute(&mut *conn)
                        .await?;
                    w.tx.commit().await?;
                    return Ok(Vec::new());
                }
                if show.check_on_sale(now).is_err() {
                    w.tx.commit().await?;
                    return Ok(Vec::new());
                }
                let waiting = entries_where(conn, "e.show_id = $2 AND e.state = 'waiting'", &[show_id.as_str()], now).await?;
                let mut walk = waitlist::Walk::default();
                let mut offers = Vec::new();
                for (index, entry) in waiting.iter().enumerate() {
                    if !walk.goes_on() {
                        break;
                    }
                    let Some(hold) = offer_to(conn, &show, entry, now).await? else {
                        walk.unserved(index, entry.passes);
                        continue;
                    };
                    walk.served(index);
                    sqlx::query("UPDATE waitlist_entries SET state = 'offered', hold_id = $2, updated_at = $3 WHERE id = $1")
                        .bind(entry.id.to_string())
                        .bind(hold.id.to_string())
                        .bind(now.unix_ms())
                        .execute(&mut *conn)
                        .await?;
                    let offered = WaitlistEntry {
                        state: EntryState::Offered,
                        hold_id: Some(hold.id.clone()),
                        offer_expires_at: Some(hold.expires_at),
                        place: None,
                        ..entry.clone()
                    };
                    emit(
                        conn,
                        show.organizer_id.as_str(),
                        EventKind::WaitlistOffered,
                        offered.id.as_str(),
                        serde_json::json!({ "entry": offered, "hold": hold }),
                        now,
                    )
                    .await?;
                    offers.push(WaitlistOffer { entry: offered, hold });
                }
                for index in walk.overtaken() {
                    sqlx::query("UPDATE waitlist_entries SET passes = passes + 1, updated_at = $2 WHERE id = $1")
                        .bind(waiting[index].id.to_string())
                        .bind(now.unix_ms())
                        .execute(&mut *conn)
                        .await?;
                }
                w.tx.commit().await?;
                Ok(offers)
            }
        }
    };
}

pub(crate) use waitlist_engine;
