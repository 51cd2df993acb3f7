//! Tickets and the door: a holder's ticket with its QR code, the organizer's public ticket keys
//! (scanners verify codes offline with them), the revocation list scanners sync, and check-in
//! that admits each ticket exactly once, online or from an offline scanner's upload.

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, path_id};
use crate::live::Change;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use boxoffice_core::ids::{OrganizerId, ShowId, TicketId};
use boxoffice_core::ticket::{self, TicketClaims};
use boxoffice_core::{DomainError, Timestamp};
use boxoffice_store::Admission;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(one))
        .routes(routes!(keys))
        .routes(routes!(revocations))
        .routes(routes!(count))
        .routes(routes!(check_in))
        .routes(routes!(check_in_batch))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TicketView {
    pub ticket: boxoffice_core::booking::Ticket,
    pub booking_id: String,
    pub show_id: ShowId,
    /// `confirmed`, or `cancelled` (then the code is revoked).
    pub state: String,
    /// The code as a QR code, an SVG document.
    pub qr_svg: String,
}

/// The QR code of a ticket code, as SVG.
pub fn qr_svg(code: &str) -> Result<String, ApiError> {
    let qr = qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M)
        .map_err(ApiError::internal)?;
    Ok(qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// The ticket, for its holder (or a member of the show's organizer).
pub async fn ticket_view(app: &AppState, auth: &Auth, id: &str) -> ApiResult<TicketView> {
    let id = path_id(id, TicketId::parse, "ticket")?;
    let (ticket, booking) = app
        .store
        .ticket(&id)
        .await?
        .ok_or(DomainError::NotFound("ticket"))?;
    let organizer = app
        .store
        .show(&booking.show_id)
        .await?
        .map(|s| s.organizer_id);
    let mine = booking.user_id == auth.0.user_id;
    let theirs = organizer.is_some_and(|o| auth.0.may_manage(&o));
    if !(mine || theirs) {
        return Err(DomainError::NotFound("ticket").into());
    }
    let qr_svg = qr_svg(&ticket.code)?;
    Ok(TicketView {
        ticket,
        booking_id: booking.id.to_string(),
        show_id: booking.show_id,
        state: booking.state.as_str().to_owned(),
        qr_svg,
    })
}

#[utoipa::path(
    get,
    path = "/tickets/{id}",
    tag = "tickets",
    summary = "A ticket with its QR code",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = TicketView), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// A printable page of it is at `/tickets/{id}` (outside the API).
async fn one(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<TicketView>> {
    Ok(Json(ticket_view(&app, &auth, &id).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
struct PublicKey {
    /// `Ed25519`.
    alg: &'static str,
    /// The 32-byte public key, base64url.
    public_key: String,
}

#[utoipa::path(
    get,
    path = "/organizers/{id}/ticket-keys",
    tag = "tickets",
    summary = "The keys that sign an organizer's tickets",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Vec<PublicKey>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
)]
/// A code is `BO1.<claims>.<signature>` (base64url): the Ed25519 signature covers `BO1.<claims>`,
/// and the claims are JSON `{tkt, shw, org, seat, usr, valid_from, valid_until}`.
async fn keys(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<PublicKey>>> {
    let id = path_id(&id, OrganizerId::parse, "organizer")?;
    app.store
        .organizer(&id)
        .await?
        .ok_or(DomainError::NotFound("organizer"))?;
    let key = app.tickets.of(&*app.store, &id).await?;
    Ok(Json(vec![PublicKey {
        alg: "Ed25519",
        public_key: ticket::public_key_text(&key),
    }]))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Revocations {
    show_id: ShowId,
    /// Tickets of cancelled bookings: refuse them at the door.
    revoked: Vec<TicketId>,
    as_of: Timestamp,
}

/// Revoked tickets listed per show at most.
const MAX_REVOKED: i64 = 100_000;

#[utoipa::path(
    get,
    path = "/shows/{id}/revocations",
    tag = "tickets",
    summary = "Tickets scanners must refuse",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = Revocations), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn revocations(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Revocations>> {
    let show = super::catalog::managed_show(&app, &actor, &id).await?;
    Ok(Json(Revocations {
        revoked: app.store.revoked_tickets(&show.id, MAX_REVOKED).await?,
        show_id: show.id,
        as_of: app.clock.now(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct CheckIns {
    show_id: ShowId,
    checked_in: i64,
}

#[utoipa::path(
    get,
    path = "/shows/{id}/checkins",
    tag = "tickets",
    summary = "How many are in",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = CheckIns), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Live: the show's channel carries `checked_in` events with the same count.
async fn count(
    State(app): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<CheckIns>> {
    let show = super::catalog::managed_show(&app, &actor, &id).await?;
    Ok(Json(CheckIns {
        checked_in: app.store.checked_in(&show.id).await?,
        show_id: show.id,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Scan {
    /// The scanned code.
    code: String,
    /// The gate or scanner (`north-1`).
    gate: String,
    /// When it was scanned; now unless given (an offline scanner gives it).
    #[serde(default)]
    scanned_at: Option<Timestamp>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Admitted {
    result: &'static str,
    ticket: TicketClaims,
    checked_in: i64,
}

/// Checks one scan: the code must be signed by the caller's organizer's key and valid at the
/// scan's time, its booking must stand, and it must not have been admitted before.
async fn scan(app: &AppState, auth: &Auth, scan: &Scan) -> ApiResult<(TicketClaims, Admission)> {
    let organizer = auth.organizer()?;
    if scan.gate.trim().is_empty() || scan.gate.len() > 64 {
        return Err(DomainError::invalid("gate", "must be 1 to 64 characters").into());
    }
    let key = app.tickets.of(&*app.store, &organizer).await?;
    let claims = ticket::verify(&scan.code, &key.verifying_key()).map_err(DomainError::from)?;
    let at = scan.scanned_at.unwrap_or_else(|| app.clock.now());
    ticket::check_window(&claims, at).map_err(DomainError::from)?;
    let admission = app
        .store
        .check_in(
            &claims.ticket_id,
            scan.gate.trim(),
            at,
            &auth.0.user_id,
            app.clock.now(),
        )
        .await?;
    if admission == Admission::Admitted {
        let checked_in = app.store.checked_in(&claims.show_id).await?;
        app.live
            .publish(&claims.show_id, Change::CheckedIn { checked_in })
            .await;
    }
    Ok((claims, admission))
}

/// "already used at gate north-1 at 19:42" in the venue's time.
async fn already_used(app: &AppState, show: &ShowId, gate: &str, at: Timestamp) -> String {
    let zone = match app.store.show(show).await {
        Ok(Some(show)) => app
            .store
            .venue_place(&show.venue_id)
            .await
            .ok()
            .flatten()
            .map(|v| v.timezone),
        _ => None,
    };
    let time = boxoffice_core::schedule::local_moment(at, zone.as_deref().unwrap_or("UTC"))
        .map(|m| m.time)
        .unwrap_or_else(|| at.to_rfc3339());
    format!("already used at gate {gate} at {time}")
}

#[utoipa::path(
    post,
    path = "/checkin",
    tag = "tickets",
    summary = "Admit a scanned ticket",
    request_body = Scan,
    responses((status = 200, description = "Admitted", body = Admitted), (status = "4XX", description = "`already_checked_in` (409), or refused (403): forged, another organizer's, revoked, not valid now", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
async fn check_in(
    State(app): State<AppState>,
    auth: Auth,
    body: ApiJson<Scan>,
) -> ApiResult<Json<Admitted>> {
    let (claims, admission) = scan(&app, &auth, &body.value).await?;
    match admission {
        Admission::Admitted => {
            let checked_in = app.store.checked_in(&claims.show_id).await?;
            Ok(Json(Admitted {
                result: "admitted",
                ticket: claims,
                checked_in,
            }))
        }
        Admission::AlreadyUsed { gate, at } => Err(ApiError::problem(
            StatusCode::CONFLICT,
            "already_checked_in",
            &already_used(&app, &claims.show_id, &gate, at).await,
        )),
        Admission::Revoked => {
            Err(DomainError::Forbidden("this ticket was cancelled (revoked)").into())
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Upload {
    /// At most 500 scans, in the order they were made.
    scans: Vec<Scan>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ScanResult {
    /// `admitted`, `already_checked_in` (a conflict: someone came in on it before) or `refused`.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket_id: Option<TicketId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[utoipa::path(
    post,
    path = "/checkin/batch",
    tag = "tickets",
    summary = "Upload an offline scanner's scans",
    request_body = Upload,
    responses((status = 200, description = "One result per scan", body = Vec<ScanResult>), (status = "4XX", description = "A problem: see the type", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("session_cookie" = []))
)]
/// Each scan is checked as if it arrived online at `scanned_at`; the first admission recorded
/// wins, and a later one of the same ticket is reported as a conflict with where and when.
async fn check_in_batch(
    State(app): State<AppState>,
    auth: Auth,
    body: ApiJson<Upload>,
) -> ApiResult<Json<Vec<ScanResult>>> {
    auth.organizer()?;
    if body.value.scans.len() > 500 {
        return Err(DomainError::invalid("scans", "at most 500 per upload").into());
    }
    let mut results = Vec::with_capacity(body.value.scans.len());
    for one in &body.value.scans {
        let result = match scan(&app, &auth, one).await {
            Ok((claims, Admission::Admitted)) => ScanResult {
                result: "admitted",
                ticket_id: Some(claims.ticket_id),
                detail: None,
            },
            Ok((claims, Admission::AlreadyUsed { gate, at })) => ScanResult {
                result: "already_checked_in",
                detail: Some(already_used(&app, &claims.show_id, &gate, at).await),
                ticket_id: Some(claims.ticket_id),
            },
            Ok((claims, Admission::Revoked)) => ScanResult {
                result: "refused",
                ticket_id: Some(claims.ticket_id),
                detail: Some("this ticket was cancelled (revoked)".into()),
            },
            Err(ApiError::Domain(error)) => ScanResult {
                result: "refused",
                ticket_id: None,
                detail: Some(error.to_string()),
            },
            Err(other) => return Err(other),
        };
        results.push(result);
    }
    Ok(Json(results))
}
