//! The promo side of the store, shared by both engines like `engine.rs`: an organizer's codes,
//! and applying one to a hold inside the hold's transaction, where the code's row is locked
//! while its uses are counted, so no code is used more often than it allows.

macro_rules! promo_engine {
    ($store:ty, $db:ty, lock = $lock:literal) => {
        use boxoffice_core::promo::{Discount, Promo};
        use $crate::PromoStore;

        type PromoRow = (String, String, String, Option<String>, Option<String>, String, i64, Option<i64>, Option<i64>, i64, i64, i64, Option<String>);

        const PROMO_COLUMNS: &str = "id, organizer_id, code, event_id, show_id, discount_kind, discount_value, valid_from, \
             valid_until, max_uses, max_uses_per_customer, created_at, unlocks_category";

        fn promo_of(row: PromoRow) -> StoreResult<Promo> {
            let (id, organizer, code, event, show, kind, value, from, until, max_uses, per_customer, created, unlocks) = row;
            Ok(Promo {
                id: PromoId::from_trusted(id),
                organizer_id: OrganizerId::from_trusted(organizer),
                code,
                event_id: event.map(EventId::from_trusted),
                show_id: show.map(ShowId::from_trusted),
                discount: match kind.as_str() {
                    "percent" => Discount::Percent(value),
                    "amount" => Discount::Amount(value),
                    "unlock" => Discount::Unlock(unlocks.ok_or_else(|| StoreError::Corrupt("an unlock code without a category".into()))?),
                    other => return Err(StoreError::Corrupt(format!("bad discount kind {other}"))),
                },
                valid_from: from.map(Timestamp::from_unix_ms),
                valid_until: until.map(Timestamp::from_unix_ms),
                max_uses,
                max_uses_per_customer: per_customer,
                created_at: Timestamp::from_unix_ms(created),
            })
        }

        /// Applies the organizer's code `code` to a hold of `user` for `show` being made in this
        /// transaction: the code's row stays locked until commit, so concurrent holds count
        /// each other's uses. Returns the code and the discount on `subtotal_minor`.
        async fn apply_promo(
            conn: &mut Conn,
            show: &Show,
            user: &str,
            code: &str,
            subtotal_minor: i64,
            now: Timestamp,
        ) -> StoreResult<(Promo, i64)> {
            let sql = format!("SELECT {PROMO_COLUMNS} FROM promo_codes WHERE organizer_id = $1 AND code = $2{}", $lock);
            let row: Option<PromoRow> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(show.organizer_id.to_string())
                .bind(boxoffice_core::promo::normalize(code))
                .fetch_optional(&mut *conn)
                .await?;
            let promo = promo_of(row.ok_or_else(|| DomainError::invalid("promo_code", "no such code"))?)?;
            let (uses, mine): (i64, i64) = sqlx::query_as(
                "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(CASE WHEN user_id = $2 THEN 1 ELSE 0 END), 0) AS BIGINT) \
                 FROM holds WHERE promo_id = $1 AND (state = 'converted' OR (state = 'active' AND expires_at > $3))",
            )
            .bind(promo.id.to_string())
            .bind(user.to_owned())
            .bind(now.unix_ms())
            .fetch_one(&mut *conn)
            .await?;
            promo.check(show, now, uses, mine)?;
            let discount = promo.discount_minor(subtotal_minor);
            Ok((promo, discount))
        }

        #[async_trait::async_trait]
        impl PromoStore for $store {
            async fn insert_promo(&self, promo: &Promo) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let (kind, value, unlocks) = match &promo.discount {
                    Discount::Percent(p) => ("percent", *p, None),
                    Discount::Amount(a) => ("amount", *a, None),
                    Discount::Unlock(category) => ("unlock", 0, Some(category.clone())),
                };
                let sql = format!("INSERT INTO promo_codes ({PROMO_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)");
                sqlx::query(AssertSqlSafe(sql))
                    .bind(promo.id.to_string())
                    .bind(promo.organizer_id.to_string())
                    .bind(promo.code.clone())
                    .bind(promo.event_id.as_ref().map(|e| e.to_string()))
                    .bind(promo.show_id.as_ref().map(|s| s.to_string()))
                    .bind(kind)
                    .bind(value)
                    .bind(promo.valid_from.map(|t| t.unix_ms()))
                    .bind(promo.valid_until.map(|t| t.unix_ms()))
                    .bind(promo.max_uses)
                    .bind(promo.max_uses_per_customer)
                    .bind(promo.created_at.unix_ms())
                    .bind(unlocks)
                    .execute(&mut *w.tx)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            StoreError::from(DomainError::Conflict("the organizer already has this code".into()))
                        } else {
                            e.into()
                        }
                    })?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn promos_of(&self, organizer: &OrganizerId) -> StoreResult<Vec<(Promo, i64)>> {
                let sql = format!(
                    "SELECT {PROMO_COLUMNS} FROM promo_codes WHERE organizer_id = $1 ORDER BY code LIMIT 1000"
                );
                let rows: Vec<PromoRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(organizer.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let promo = promo_of(row)?;
                    let used: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM holds WHERE promo_id = $1 AND state = 'converted'",
                    )
                    .bind(promo.id.to_string())
                    .fetch_one(&self.pool)
                    .await?;
                    out.push((promo, used));
                }
                Ok(out)
            }
        }
    };
}

pub(crate) use promo_engine;
