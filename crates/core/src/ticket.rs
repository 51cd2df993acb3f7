//! Ticket codes a door scanner can check without asking anyone: what the ticket is for
//! (ticket, show, seat, holder, validity), signed with the organizer's Ed25519 key. A code is
//! `BO1.<claims>.<signature>`, both parts base64url; the organizer's public keys are published,
//! and cancelled tickets go on a revocation list the scanners sync.

use crate::Timestamp;
use crate::error::DomainError;
use crate::ids::{OrganizerId, ShowId, TicketId, UserId};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "BO1";

/// What a ticket code vouches for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketClaims {
    #[serde(rename = "tkt")]
    pub ticket_id: TicketId,
    #[serde(rename = "shw")]
    pub show_id: ShowId,
    #[serde(rename = "org")]
    pub organizer_id: OrganizerId,
    /// The seat (`A12`) or the standing area's name.
    pub seat: String,
    #[serde(rename = "usr")]
    pub holder: UserId,
    /// The door opens for it from here…
    pub valid_from: Timestamp,
    /// …until here.
    pub valid_until: Timestamp,
}

/// The door opens this long before a show starts, and stays open for the ticket this long
/// after it ends.
pub const DOORS_OPEN_HOURS: i64 = 6;
pub const VALID_AFTER_END_HOURS: i64 = 6;

/// Why a code is not a ticket that may come in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a code, or not signed by this key (a byte changed, another organizer's key).
    Forged,
    /// Signed, but not for now.
    NotValidNow {
        valid_from: Timestamp,
        valid_until: Timestamp,
    },
}

impl From<Refusal> for DomainError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Forged => {
                DomainError::Forbidden("this is not a valid ticket of this organizer")
            }
            Refusal::NotValidNow { .. } => {
                DomainError::Forbidden("this ticket is not valid at this time")
            }
        }
    }
}

/// A signing key from its 32 secret bytes.
pub fn signing_key(secret: &[u8; 32]) -> SigningKey {
    SigningKey::from_bytes(secret)
}

/// The public half, as published: base64url of the 32 bytes.
pub fn public_key_text(key: &SigningKey) -> String {
    URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes())
}

pub fn verifying_key(text: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// The signed code of `claims`.
pub fn sign(claims: &TicketClaims, key: &SigningKey) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signed = format!("{PREFIX}.{body}");
    let signature = key.sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// The claims of a code, if `key` signed exactly these bytes. Reads nothing else: a scanner
/// offline does the same with the published key.
pub fn verify(code: &str, key: &VerifyingKey) -> Result<TicketClaims, Refusal> {
    let (signed, signature) = code.trim().rsplit_once('.').ok_or(Refusal::Forged)?;
    let (prefix, body) = signed.split_once('.').ok_or(Refusal::Forged)?;
    if prefix != PREFIX {
        return Err(Refusal::Forged);
    }
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(Refusal::Forged)?;
    key.verify(signed.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| Refusal::Forged)?;
    let claims = URL_SAFE_NO_PAD.decode(body).map_err(|_| Refusal::Forged)?;
    serde_json::from_slice(&claims).map_err(|_| Refusal::Forged)
}

/// The organizer a code claims to be from, read without checking it (to pick the key).
pub fn claimed_organizer(code: &str) -> Option<OrganizerId> {
    let body = code.trim().split('.').nth(1)?;
    let claims: TicketClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    Some(claims.organizer_id)
}

/// Whether the door is open for these claims at `at`.
pub fn check_window(claims: &TicketClaims, at: Timestamp) -> Result<(), Refusal> {
    if at < claims.valid_from || at > claims.valid_until {
        return Err(Refusal::NotValidNow {
            valid_from: claims.valid_from,
            valid_until: claims.valid_until,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TicketClaims {
        TicketClaims {
            ticket_id: TicketId::generate(),
            show_id: ShowId::generate(),
            organizer_id: OrganizerId::generate(),
            seat: "F12".into(),
            holder: UserId::generate(),
            valid_from: Timestamp::from_unix_ms(1_000),
            valid_until: Timestamp::from_unix_ms(9_000),
        }
    }

    #[test]
    fn a_signed_code_verifies_and_nothing_else_does() {
        let key = signing_key(&[7; 32]);
        let other = signing_key(&[8; 32]);
        let claims = claims();
        let code = sign(&claims, &key);
        assert!(code.starts_with("BO1."));
        let public = verifying_key(&public_key_text(&key)).unwrap();
        assert_eq!(verify(&code, &public), Ok(claims.clone()));
        assert_eq!(claimed_organizer(&code), Some(claims.organizer_id.clone()));
        // Another organizer's key.
        let theirs = verifying_key(&public_key_text(&other)).unwrap();
        assert_eq!(verify(&code, &theirs), Err(Refusal::Forged));
        // Any single byte changed, anywhere.
        for position in 0..code.len() {
            let mut bytes = code.clone().into_bytes();
            bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            if changed != code {
                assert!(
                    verify(&changed, &public).is_err(),
                    "byte {position} changed"
                );
            }
        }
        assert_eq!(verify("garbage", &public), Err(Refusal::Forged));
        // The window.
        assert!(check_window(&claims, Timestamp::from_unix_ms(5_000)).is_ok());
        assert!(check_window(&claims, Timestamp::from_unix_ms(999)).is_err());
        assert!(check_window(&claims, Timestamp::from_unix_ms(9_001)).is_err());
    }
}
