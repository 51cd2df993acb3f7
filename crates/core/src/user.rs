//! Accounts and roles. Registration input is parsed here once, so an invalid email or a weak
//! password cannot reach the store.

use crate::error::{DomainError, Problems};
use crate::{Timestamp, ids::UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Who is asking: enough to decide tenant walls without another database read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
}

impl Actor {
    /// Admins see everything; everyone else only what they own.
    pub fn may_access(&self, owner: &UserId) -> bool {
        self.role == Role::Admin || &self.user_id == owner
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

    #[test]
    fn tenant_wall_lets_only_owner_and_admin_through() {
        let owner = UserId::generate();
        let other = Actor {
            user_id: UserId::generate(),
            role: Role::Organizer,
        };
        let admin = Actor {
            user_id: UserId::generate(),
            role: Role::Admin,
        };
        let me = Actor {
            user_id: owner.clone(),
            role: Role::Organizer,
        };
        assert!(!other.may_access(&owner));
        assert!(admin.may_access(&owner));
        assert!(me.may_access(&owner));
    }
}
