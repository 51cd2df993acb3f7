//! Accounts and roles. Registration input is parsed here once, so an invalid email or a weak
//! password cannot reach the store.

use crate::Timestamp;
use crate::error::{DomainError, Problems};
use crate::ids::{InvitationId, OrganizerId, SessionId, UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Organizer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Organizer => "organizer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "customer" => Some(Role::Customer),
            "organizer" => Some(Role::Organizer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A suspended or deleted account loses access at once: every request checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Active,
    Suspended,
    Deleted,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::Suspended => "suspended",
            AccountState::Deleted => "deleted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(AccountState::Active),
            "suspended" => Some(AccountState::Suspended),
            "deleted" => Some(AccountState::Deleted),
            _ => None,
        }
    }
}

/// A member's standing in an organizer: owners manage members, staff run the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Owner,
    Staff,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Owner => "owner",
            MemberRole::Staff => "staff",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "owner" => Some(MemberRole::Owner),
            "staff" => Some(MemberRole::Staff),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Membership {
    pub organizer_id: OrganizerId,
    pub role: MemberRole,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvitationState {
    Pending,
    Accepted,
    Declined,
}

impl InvitationState {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationState::Pending => "pending",
            InvitationState::Accepted => "accepted",
            InvitationState::Declined => "declined",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(InvitationState::Pending),
            "accepted" => Some(InvitationState::Accepted),
            "declined" => Some(InvitationState::Declined),
            _ => None,
        }
    }
}

/// An owner's offer to an email address to work for the organizer; nobody joins without
/// accepting it themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: InvitationId,
    pub organizer_id: OrganizerId,
    pub email: String,
    pub role: MemberRole,
    pub state: InvitationState,
    pub invited_by: UserId,
    pub created_at: Timestamp,
}

/// A tenant: owns venues, events and shows; its members act for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Organizer {
    pub id: OrganizerId,
    pub name: String,
    pub state: AccountState,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub state: AccountState,
    /// The organizer this user works for, if any (one at most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizer: Option<Membership>,
    pub created_at: Timestamp,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Who is asking, as checked on this request: an active account in a live session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
    pub session_id: SessionId,
    /// Set only while the organizer itself is active.
    pub organizer: Option<Membership>,
}

impl Actor {
    /// Customer-owned things (holds, bookings): the customer and admins.
    pub fn may_access(&self, owner: &UserId) -> bool {
        self.role == Role::Admin || &self.user_id == owner
    }

    /// Tenant-owned things (venues, events, shows, figures): its members and admins.
    pub fn may_manage(&self, organizer: &OrganizerId) -> bool {
        self.role == Role::Admin
            || self
                .organizer
                .as_ref()
                .is_some_and(|m| &m.organizer_id == organizer)
    }

    pub fn is_owner_of(&self, organizer: &OrganizerId) -> bool {
        self.role == Role::Admin
            || self
                .organizer
                .as_ref()
                .is_some_and(|m| &m.organizer_id == organizer && m.role == MemberRole::Owner)
    }
}

/// A lower-cased email address with one `@` and a dot in its domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Option<Self> {
        let email = raw.trim().to_lowercase();
        let (local, domain) = email.split_once('@')?;
        let ok = !local.is_empty()
            && email.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !email.chars().any(char::is_whitespace);
        ok.then_some(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const PASSWORD_MIN_CHARS: usize = 10;
pub const PASSWORD_MAX_CHARS: usize = 128;
pub const NAME_MAX_CHARS: usize = 100;

/// A validated registration: the password is still in clear, for the hasher only.
#[derive(Debug)]
pub struct Registration {
    pub email: Email,
    pub name: String,
    pub password: String,
    pub role: Role,
}

impl Registration {
    /// Self-service sign-up creates customers or organizers; admins are never self-made.
    pub fn parse(
        email: &str,
        password: &str,
        name: &str,
        role: Option<&str>,
    ) -> Result<Self, DomainError> {
        let mut problems = Problems::default();
        let parsed_email = Email::parse(email);
        problems.check(parsed_email.is_some(), "email", "must be an email address");
        let password_chars = password.chars().count();
        problems.check(
            (PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&password_chars),
            "password",
            format!("must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"),
        );
        let name = name.trim();
        problems.check(
            !name.is_empty() && name.chars().count() <= NAME_MAX_CHARS,
            "name",
            format!("must be 1 to {NAME_MAX_CHARS} characters"),
        );
        let role = match role.unwrap_or("customer") {
            "customer" => Role::Customer,
            "organizer" => Role::Organizer,
            _ => {
                problems.add("role", "must be customer or organizer");
                Role::Customer
            }
        };
        let registration = parsed_email.map(|email| Self {
            email,
            name: name.to_owned(),
            password: password.to_owned(),
            role,
        });
        match registration {
            Some(r) => problems.finish(r),
            None => Err(problems.finish(()).expect_err("email problem was recorded")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(
            Email::parse(" Alice@Example.com ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@c.de",
            "a@.com",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn registration_reports_every_bad_field() {
        let Err(DomainError::Validation(errors)) =
            Registration::parse("x", "short", " ", Some("admin"))
        else {
            panic!("expected validation errors");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "name", "role"]);
    }

    fn actor(role: Role, organizer: Option<(OrganizerId, MemberRole)>) -> Actor {
        Actor {
            user_id: UserId::generate(),
            role,
            session_id: SessionId::generate(),
            organizer: organizer.map(|(organizer_id, role)| Membership { organizer_id, role }),
        }
    }

    #[test]
    fn tenant_wall_lets_only_members_and_admins_through() {
        let tenant = OrganizerId::generate();
        let owner = actor(Role::Organizer, Some((tenant.clone(), MemberRole::Owner)));
        let staff = actor(Role::Organizer, Some((tenant.clone(), MemberRole::Staff)));
        let rival = actor(
            Role::Organizer,
            Some((OrganizerId::generate(), MemberRole::Owner)),
        );
        let admin = actor(Role::Admin, None);
        let customer = actor(Role::Customer, None);
        assert!(
            owner.may_manage(&tenant) && staff.may_manage(&tenant) && admin.may_manage(&tenant)
        );
        assert!(!rival.may_manage(&tenant) && !customer.may_manage(&tenant));
        assert!(owner.is_owner_of(&tenant) && !staff.is_owner_of(&tenant));
        assert!(customer.may_access(&customer.user_id) && !customer.may_access(&owner.user_id));
    }
}
