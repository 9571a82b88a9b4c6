//! Values parsed once at the edge. Past this point a `Password` is known to fit bcrypt and
//! an `EmailAddress` is normalized, so nothing downstream re-checks them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value was refused, phrased for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// An email address, trimmed and lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(field: &'static str, input: &str) -> Result<Self, ValidationError> {
        let email = input.trim().to_lowercase();
        let invalid =
            || ValidationError::new(field, "Enter an email address like name@example.com.");
        if email.is_empty() {
            return Err(ValidationError::new(field, "Enter your email address."));
        }
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password. bcrypt reads only the first 72 bytes, so a longer one would be silently
/// cut; we refuse it instead of pretending the rest counts.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_BYTES: usize = 72;

    pub fn parse(field: &'static str, input: &str) -> Result<Self, ValidationError> {
        if input.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::new(
                field,
                format!("Use at least {} characters.", Self::MIN_CHARS),
            ));
        }
        if input.len() > Self::MAX_BYTES {
            return Err(ValidationError::new(
                field,
                format!(
                    "Use at most {} bytes (this one has {}): longer passwords would be cut short by bcrypt. Accented letters and emoji take 2 to 4 bytes each.",
                    Self::MAX_BYTES,
                    input.len()
                ),
            ));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

fn parse_display_name(
    field: &'static str,
    input: &str,
    empty_message: &str,
) -> Result<String, ValidationError> {
    let name = input.trim();
    if name.is_empty() {
        return Err(ValidationError::new(field, empty_message));
    }
    if name.chars().count() > 100 {
        return Err(ValidationError::new(field, "Use at most 100 characters."));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "Remove line breaks and control characters.",
        ));
    }
    Ok(name.to_owned())
}

/// A person's display name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(field: &'static str, input: &str) -> Result<Self, ValidationError> {
        parse_display_name(field, input, "Enter your name.").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An organization's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct OrgName(String);

impl OrgName {
    pub fn parse(field: &'static str, input: &str) -> Result<Self, ValidationError> {
        parse_display_name(field, input, "Enter the organization's name.").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized() {
        let email = EmailAddress::parse("email", "  Ada@Example.COM ").expect("valid");
        assert_eq!(email.as_str(), "ada@example.com");
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a b@example.com",
            "ada@exa..mple.com",
            "ada@.com",
        ] {
            assert!(
                EmailAddress::parse("email", bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn password_length_rules() {
        assert!(Password::parse("password", "short").is_err());
        assert!(Password::parse("password", &"a".repeat(10)).is_ok());
        assert!(Password::parse("password", &"a".repeat(72)).is_ok());
        let err = Password::parse("password", &"a".repeat(73)).expect_err("73 bytes");
        assert!(err.message.contains("at most 72 bytes"), "{}", err.message);
        // 25 three-byte characters: few characters, too many bytes.
        assert!(Password::parse("password", &"€".repeat(25)).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            PersonName::parse("name", "  Ada ").expect("valid").as_str(),
            "Ada"
        );
        assert!(PersonName::parse("name", "   ").is_err());
        assert!(OrgName::parse("org", &"x".repeat(101)).is_err());
        assert!(OrgName::parse("org", "Acme\nInc").is_err());
    }
}
