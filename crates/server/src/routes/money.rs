//! The books as people see them: a customer's wallet (`/me/wallet`), a show's refund policy
//! (`/shows/{id}/refund-policy`), and the platform admin's ledger with its check.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{ApiJson, page_limit, path_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use boxoffice_core::DomainError;
use boxoffice_core::ids::ShowId;
use boxoffice_core::ledger::RefundPolicy;
use boxoffice_store::{LedgerCheck, LedgerTransaction};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(wallet))
        .routes(routes!(refund_policy, put_refund_policy))
        .routes(routes!(ledger))
        .routes(routes!(check))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct WalletQuery {
    /// ISO 4217, `EUR` unless given.
    currency: Option<String>,
    /// Movements to list, at most 100.
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Wallet {
    currency: String,
    /// What the customer can spend: the sum of the wallet's entries.
    balance_minor: i64,
    /// Latest movements first.
    transactions: Vec<LedgerTransaction>,
}

#[utoipa::path(
    get,
    path = "/me/wallet",
    tag = "orders",
    summary = "My wallet: balance and movements",
    params(WalletQuery),
    responses((status = 200, description = "Success", body = Wallet), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Refunds sent to the wallet land here; pay with it by `payment.method = "wallet"`, or split
/// with a card through `payment.wallet_minor`.
async fn wallet(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Query(query): Query<WalletQuery>,
) -> ApiResult<Json<Wallet>> {
    let currency = query.currency.unwrap_or_else(|| "EUR".into());
    let currency = boxoffice_core::Currency::parse(&currency)
        .ok_or(DomainError::invalid("currency", "must be an ISO 4217 code"))?;
    let limit = page_limit(query.limit)?;
    let (balance_minor, transactions) = app
        .store
        .wallet(&actor.user_id, currency.as_str(), limit)
        .await?;
    Ok(Json(Wallet {
        currency: currency.to_string(),
        balance_minor,
        transactions,
    }))
}

#[utoipa::path(
    get,
    path = "/shows/{id}/refund-policy",
    tag = "shows",
    summary = "How much comes back on cancelling",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = RefundPolicy), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
/// A full refund until `full_until_hours_before` the start, `partial_percent` after that,
/// nothing once it has started; a show the organizer cancels is refunded in full.
async fn refund_policy(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RefundPolicy>> {
    let id = path_id(&id, ShowId::parse, "show")?;
    app.store
        .show(&id)
        .await?
        .ok_or(DomainError::NotFound("show"))?;
    Ok(Json(app.store.refund_policy(&id).await?))
}

#[utoipa::path(
    put,
    path = "/shows/{id}/refund-policy",
    tag = "shows",
    summary = "Set the show's refund policy",
    params(("id" = String, Path)),
    request_body = RefundPolicy,
    responses((status = 200, description = "Success", body = RefundPolicy), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn put_refund_policy(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    body: ApiJson<RefundPolicy>,
) -> ApiResult<Json<RefundPolicy>> {
    let show = super::catalog::managed_show(&app, &actor, &id).await?;
    let policy = body.value.parse()?;
    app.store.put_refund_policy(&show.id, &policy).await?;
    Ok(Json(policy))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct LedgerQuery {
    /// Only transactions touching this account (`wallet:usr_…:EUR`, `organizer:org_…:EUR`,
    /// `cards:EUR`).
    account: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/ledger",
    tag = "admin",
    summary = "Every movement of money, newest first",
    params(LedgerQuery),
    responses((status = 200, description = "Success", body = Vec<LedgerTransaction>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn ledger(
    State(app): State<AppState>,
    auth: Auth,
    Query(query): Query<LedgerQuery>,
) -> ApiResult<Json<Vec<LedgerTransaction>>> {
    auth.admin()?;
    let limit = page_limit(query.limit)?;
    Ok(Json(
        app.store.ledger(query.account.as_deref(), limit).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/admin/ledger/check",
    tag = "admin",
    summary = "Check that the books balance",
    responses((status = 200, description = "Success", body = LedgerCheck), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Every transaction sums to zero, every currency's entries sum to zero, and no wallet is below
/// zero: `balanced` says all three hold.
async fn check(State(app): State<AppState>, auth: Auth) -> ApiResult<Json<LedgerCheck>> {
    auth.admin()?;
    Ok(Json(app.store.check_ledger().await?))
}
