//! The account side of the store, shared by both engines like `engine.rs`: users, organizers
//! and their members, sign-in sessions with rotating refresh tokens.

macro_rules! accounts_engine {
    ($store:ty, $db:ty, lock = $lock:literal) => {
        use boxoffice_core::user::{AccountState, Actor, Invitation, MemberRole, Organizer, Role};
        use $crate::{AccountStore, Refresh, SessionRecord};

        async fn load_user(conn: &mut Conn, filter: &str, value: &str) -> StoreResult<Option<(User, String)>> {
            let sql = format!("{USER_SELECT} WHERE {filter} = $1");
            let row: Option<UserRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(value.to_owned()).fetch_optional(&mut *conn).await?;
            row.map(UserRow::into_user).transpose()
        }

        async fn load_organizer(conn: &mut Conn, id: &str) -> StoreResult<Option<Organizer>> {
            let row: Option<OrganizerRow> = sqlx::query_as("SELECT id, name, state, created_at FROM organizers WHERE id = $1")
                .bind(id.to_owned())
                .fetch_optional(&mut *conn)
                .await?;
            row.map(Organizer::try_from).transpose()
        }

        async fn insert_membership(conn: &mut Conn, user: &UserId, organizer: &OrganizerId, role: MemberRole, now: Timestamp) -> StoreResult<()> {
            let inserted = sqlx::query(
                "INSERT INTO memberships (user_id, organizer_id, role, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user.to_string())
            .bind(organizer.to_string())
            .bind(role.as_str())
            .bind(now.unix_ms())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if inserted != 1 {
                return Err(DomainError::Conflict("this account already works for an organizer".into()).into());
            }
            sqlx::query("UPDATE users SET role = 'organizer' WHERE id = $1 AND role = 'customer'")
                .bind(user.to_string())
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        async fn insert_organizer_row(conn: &mut Conn, organizer: &Organizer) -> StoreResult<()> {
            sqlx::query("INSERT INTO organizers (id, name, state, created_at) VALUES ($1, $2, $3, $4)")
                .bind(organizer.id.to_string())
                .bind(organizer.name.clone())
                .bind(organizer.state.as_str())
                .bind(organizer.created_at.unix_ms())
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        #[async_trait::async_trait]
        impl AccountStore for $store {
            async fn insert_user(&self, user: &User, password_hash: &str, new_organizer: Option<&Organizer>) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let result = sqlx::query(
                    "INSERT INTO users (id, email, name, role, state, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(user.id.to_string())
                .bind(user.email.clone())
                .bind(user.name.clone())
                .bind(user.role.as_str())
                .bind(user.state.as_str())
                .bind(password_hash)
                .bind(user.created_at.unix_ms())
                .execute(&mut *conn)
                .await;
                match result {
                    Err(e) if is_unique_violation(&e) => return Err(DomainError::EmailTaken.into()),
                    other => other?,
                };
                if let Some(organizer) = new_organizer {
                    insert_organizer_row(conn, organizer).await?;
                    insert_membership(conn, &user.id, &organizer.id, MemberRole::Owner, user.created_at).await?;
                }
                w.tx.commit().await?;
                Ok(())
            }

            async fn user(&self, id: &UserId) -> StoreResult<Option<User>> {
                let mut conn = self.pool.acquire().await?;
                Ok(load_user(&mut *conn, "u.id", id.as_str()).await?.map(|(user, _)| user))
            }

            async fn credentials(&self, email: &str) -> StoreResult<Option<(User, String)>> {
                let mut conn = self.pool.acquire().await?;
                load_user(&mut *conn, "u.email", email).await
            }

            async fn user_count(&self) -> StoreResult<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
            }

            async fn users(&self, after: Option<&UserId>, limit: i64) -> StoreResult<Vec<User>> {
                let sql = format!("{USER_SELECT} WHERE u.id > $1 ORDER BY u.id LIMIT $2");
                let rows: Vec<UserRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(after.map(|a| a.to_string()).unwrap_or_default())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(|r| r.into_user().map(|(user, _)| user)).collect()
            }

            async fn set_user_state(&self, id: &UserId, state: AccountState) -> StoreResult<Option<User>> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                sqlx::query("UPDATE users SET state = $2 WHERE id = $1").bind(id.to_string()).bind(state.as_str()).execute(&mut *conn).await?;
                if state != AccountState::Active {
                    sqlx::query("UPDATE sessions SET state = 'revoked' WHERE user_id = $1").bind(id.to_string()).execute(&mut *conn).await?;
                }
                let user = load_user(conn, "u.id", id.as_str()).await?.map(|(user, _)| user);
                w.tx.commit().await?;
                Ok(user)
            }

            async fn insert_organizer(&self, organizer: &Organizer, owner: &UserId) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let (user, _) = load_user(conn, "u.id", owner.as_str()).await?.ok_or(DomainError::NotFound("user"))?;
                if user.role == Role::Admin {
                    return Err(DomainError::invalid("owner_email", "an admin cannot work for an organizer").into());
                }
                insert_organizer_row(conn, organizer).await?;
                insert_membership(conn, owner, &organizer.id, MemberRole::Owner, organizer.created_at).await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn organizer(&self, id: &OrganizerId) -> StoreResult<Option<Organizer>> {
                let mut conn = self.pool.acquire().await?;
                load_organizer(&mut *conn, id.as_str()).await
            }

            async fn organizers(&self, after: Option<&OrganizerId>, limit: i64) -> StoreResult<Vec<Organizer>> {
                let rows: Vec<OrganizerRow> =
                    sqlx::query_as("SELECT id, name, state, created_at FROM organizers WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after.map(|a| a.to_string()).unwrap_or_default())
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(Organizer::try_from).collect()
            }

            async fn set_organizer_state(&self, id: &OrganizerId, state: AccountState) -> StoreResult<Option<Organizer>> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                sqlx::query("UPDATE organizers SET state = $2 WHERE id = $1").bind(id.to_string()).bind(state.as_str()).execute(&mut *conn).await?;
                let organizer = load_organizer(conn, id.as_str()).await?;
                w.tx.commit().await?;
                Ok(organizer)
            }

            async fn add_member(&self, organizer: &OrganizerId, email: &str, role: MemberRole, now: Timestamp) -> StoreResult<User> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let (user, _) = load_user(conn, "u.email", email).await?.ok_or_else(|| {
                    DomainError::invalid("email", "no account has this email; ask them to sign up first")
                })?;
                if user.role == Role::Admin {
                    return Err(DomainError::invalid("email", "an admin cannot work for an organizer").into());
                }
                insert_membership(conn, &user.id, organizer, role, now).await?;
                let (user, _) = load_user(conn, "u.id", user.id.as_str()).await?.ok_or(DomainError::NotFound("user"))?;
                w.tx.commit().await?;
                Ok(user)
            }

            async fn members(&self, organizer: &OrganizerId) -> StoreResult<Vec<User>> {
                let sql = format!("{USER_SELECT} WHERE m.organizer_id = $1 ORDER BY u.id");
                let rows: Vec<UserRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(organizer.to_string()).fetch_all(&self.pool).await?;
                rows.into_iter().map(|r| r.into_user().map(|(user, _)| user)).collect()
            }

            async fn remove_member(&self, organizer: &OrganizerId, user: &UserId) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let roles: Vec<(String, String)> = sqlx::query_as(concat!(
                    "SELECT user_id, role FROM memberships WHERE organizer_id = $1 ORDER BY user_id",
                    $lock
                ))
                .bind(organizer.to_string())
                .fetch_all(&mut *conn)
                .await?;
                let Some((_, role)) = roles.iter().find(|(id, _)| id == user.as_str()) else {
                    return Err(DomainError::NotFound("member").into());
                };
                let owners = roles.iter().filter(|(_, r)| r == "owner").count();
                if role == "owner" && owners == 1 {
                    return Err(DomainError::Conflict("an organizer keeps at least one owner".into()).into());
                }
                sqlx::query("DELETE FROM memberships WHERE user_id = $1").bind(user.to_string()).execute(&mut *conn).await?;
                sqlx::query("UPDATE users SET role = 'customer' WHERE id = $1 AND role = 'organizer'").bind(user.to_string()).execute(&mut *conn).await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn insert_invitation(&self, invitation: &Invitation) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO invitations (id, organizer_id, email, role, state, invited_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(invitation.id.to_string())
                .bind(invitation.organizer_id.to_string())
                .bind(invitation.email.clone())
                .bind(invitation.role.as_str())
                .bind(invitation.state.as_str())
                .bind(invitation.invited_by.to_string())
                .bind(invitation.created_at.unix_ms())
                .execute(&mut *w.tx)
                .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn invitation(&self, id: &InvitationId) -> StoreResult<Option<Invitation>> {
                let sql = format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $1");
                let row: Option<InvitationRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(&self.pool).await?;
                row.map(Invitation::try_from).transpose()
            }

            async fn pending_invitations(&self, email: Option<&str>, organizer: Option<&OrganizerId>) -> StoreResult<Vec<Invitation>> {
                let sql = format!(
                    "SELECT {INVITATION_COLUMNS} FROM invitations WHERE state = 'pending' \
                     AND ($1 = '' OR email = $1) AND ($2 = '' OR organizer_id = $2) ORDER BY id LIMIT 100"
                );
                let rows: Vec<InvitationRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(email.unwrap_or_default().to_owned())
                    .bind(organizer.map(|o| o.to_string()).unwrap_or_default())
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(Invitation::try_from).collect()
            }

            async fn answer_invitation(&self, id: &InvitationId, user: &User, accept: bool, now: Timestamp) -> StoreResult<Invitation> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let sql = format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $1");
                let row: Option<InvitationRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(&mut *conn).await?;
                // Someone else's invitation reads as missing.
                let invitation = row.map(Invitation::try_from).transpose()?.filter(|i| i.email == user.email);
                let invitation = invitation.ok_or(DomainError::NotFound("invitation"))?;
                if invitation.state != boxoffice_core::user::InvitationState::Pending {
                    return Err(DomainError::Conflict("the invitation was already answered".into()).into());
                }
                if accept {
                    if user.role == Role::Admin {
                        return Err(DomainError::Conflict("an admin cannot work for an organizer".into()).into());
                    }
                    insert_membership(conn, &user.id, &invitation.organizer_id, invitation.role, now).await?;
                }
                let state = if accept { "accepted" } else { "declined" };
                let answered = sqlx::query("UPDATE invitations SET state = $2 WHERE id = $1 AND state = 'pending'")
                    .bind(id.to_string())
                    .bind(state)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                if answered != 1 {
                    return Err(DomainError::Conflict("the invitation was already answered".into()).into());
                }
                w.tx.commit().await?;
                let state = boxoffice_core::user::InvitationState::parse(state).expect("a known state");
                Ok(Invitation { state, ..invitation })
            }

            async fn insert_session(&self, session: &SessionRecord, refresh_hash: &str, refresh_expires_at: Timestamp) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                sqlx::query("INSERT INTO sessions (id, user_id, state, created_at, expires_at) VALUES ($1, $2, 'active', $3, $4)")
                    .bind(session.id.to_string())
                    .bind(session.user_id.to_string())
                    .bind(session.created_at.unix_ms())
                    .bind(session.expires_at.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, session_id, state, created_at, expires_at) VALUES ($1, $2, 'active', $3, $4)",
                )
                .bind(refresh_hash)
                .bind(session.id.to_string())
                .bind(session.created_at.unix_ms())
                .bind(refresh_expires_at.unix_ms())
                .execute(&mut *conn)
                .await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn rotate_refresh(&self, presented_hash: &str, next_hash: &str, now: Timestamp, next_expires_at: Timestamp) -> StoreResult<Refresh> {
                let mut w = self.begin_write().await?;
                let conn = &mut *w.tx;
                let token: Option<(String, String, i64)> = sqlx::query_as(concat!(
                    "SELECT session_id, state, expires_at FROM refresh_tokens WHERE token_hash = $1",
                    $lock
                ))
                .bind(presented_hash)
                .fetch_optional(&mut *conn)
                .await?;
                let Some((session_id, state, expires_at)) = token else { return Ok(Refresh::Invalid) };
                if state == "used" {
                    // A used token came back: someone holds a copy. End the whole sign-in.
                    sqlx::query("UPDATE sessions SET state = 'revoked' WHERE id = $1").bind(session_id).execute(&mut *conn).await?;
                    w.tx.commit().await?;
                    return Ok(Refresh::Reused);
                }
                let live: Option<String> = sqlx::query_scalar(
                    "SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.id = $1 AND s.state = 'active' AND s.expires_at > $2 AND u.state = 'active'",
                )
                .bind(session_id.clone())
                .bind(now.unix_ms())
                .fetch_optional(&mut *conn)
                .await?;
                let Some(user_id) = live.filter(|_| expires_at > now.unix_ms()) else { return Ok(Refresh::Invalid) };
                sqlx::query("UPDATE refresh_tokens SET state = 'used' WHERE token_hash = $1").bind(presented_hash).execute(&mut *conn).await?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, session_id, state, created_at, expires_at) VALUES ($1, $2, 'active', $3, $4)",
                )
                .bind(next_hash)
                .bind(session_id.clone())
                .bind(now.unix_ms())
                .bind(next_expires_at.unix_ms())
                .execute(&mut *conn)
                .await?;
                w.tx.commit().await?;
                Ok(Refresh::Rotated { session_id: SessionId::from_trusted(session_id), user_id: UserId::from_trusted(user_id) })
            }

            async fn revoke_session(&self, id: &SessionId) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query("UPDATE sessions SET state = 'revoked' WHERE id = $1").bind(id.to_string()).execute(&mut *w.tx).await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn actor(&self, session: &SessionId, user: &UserId, now: Timestamp) -> StoreResult<Option<Actor>> {
                let row: Option<(String, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT u.role, m.organizer_id, m.role, o.state FROM sessions s JOIN users u ON u.id = s.user_id \
                     LEFT JOIN memberships m ON m.user_id = u.id LEFT JOIN organizers o ON o.id = m.organizer_id \
                     WHERE s.id = $1 AND s.user_id = $2 AND s.state = 'active' AND s.expires_at > $3 AND u.state = 'active'",
                )
                .bind(session.to_string())
                .bind(user.to_string())
                .bind(now.unix_ms())
                .fetch_optional(&self.pool)
                .await?;
                let Some((role, organizer_id, member_role, organizer_state)) = row else { return Ok(None) };
                let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?;
                // A suspended organizer's members keep their account but lose its powers.
                let organizer = membership(organizer_id, member_role)?.filter(|_| organizer_state.as_deref() == Some("active"));
                Ok(Some(Actor { user_id: user.clone(), role, session_id: session.clone(), organizer }))
            }
        }

    };
}

pub(crate) use accounts_engine;
