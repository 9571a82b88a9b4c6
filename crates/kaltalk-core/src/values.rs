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

/// What a person is told when their text holds a NUL character.
pub const NUL_REFUSED: &str = "Remove the NUL character (U+0000): text with one cannot be stored.";

/// Removes every NUL character, for text we must keep whatever it holds (received email).
pub fn strip_nul(text: &mut String) {
    if text.contains('\0') {
        text.retain(|c| c != '\0');
    }
}

/// Free text that can be stored as it is: no NUL characters. PostgreSQL refuses U+0000 in
/// `text` and `jsonb` (a query holding one fails), while SQLite keeps it, so without this
/// check the same input would be a 500 on one backend and stored on the other. Every text
/// field that reaches the database from a request is read through this type (or one
/// built on it), so a NUL is refused at the edge, naming the field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct Text(String);

impl Text {
    pub fn parse(field: &'static str, input: impl Into<String>) -> Result<Self, ValidationError> {
        let text = input.into();
        if text.contains('\0') {
            return Err(ValidationError::new(field, NUL_REFUSED));
        }
        Ok(Self(text))
    }

    /// The text with its NULs removed, never refused.
    pub fn stripped(input: impl Into<String>) -> Self {
        let mut text = input.into();
        strip_nul(&mut text);
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// Deserializing refuses a NUL; the error names the field when the caller reads through
/// `serde_path_to_error` (as axum's `Json` and `Query` do).
impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.contains('\0') {
            return Err(serde::de::Error::custom(NUL_REFUSED));
        }
        Ok(Self(text))
    }
}

/// Refuses a JSON value (e.g. a contact's attributes) with a NUL in any key or string.
pub fn refuse_nul_in_json(
    field: &'static str,
    value: &serde_json::Value,
) -> Result<(), ValidationError> {
    use serde_json::Value;
    let holds_nul = match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => return items.iter().try_for_each(|v| refuse_nul_in_json(field, v)),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                true
            } else {
                return map.values().try_for_each(|v| refuse_nul_in_json(field, v));
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    };
    if holds_nul {
        return Err(ValidationError::new(field, NUL_REFUSED));
    }
    Ok(())
}

/// A contact's custom attributes as sent: any JSON without a NUL character in a key or a
/// string (see [`Text`]); the shape and size are the caller's to check.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Attributes(pub serde_json::Value);

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        refuse_nul_in_json("attributes", &value)
            .map_err(|e| serde::de::Error::custom(e.message))?;
        Ok(Self(value))
    }
}

/// A message's text as someone wrote it (widget, dashboard composer, API): trimmed, no NUL
/// (see [`Text`]), at most [`MessageText::MAX_CHARS`] characters. It may be empty: a
/// message can be a file alone, and each channel says what it needs when it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct MessageText(String);

impl MessageText {
    pub const MAX_CHARS: usize = 10_000;

    pub fn parse(field: &'static str, input: &str) -> Result<Self, ValidationError> {
        let text = Text::parse(field, input.trim())?;
        if text.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                field,
                format!("A message can have at most {} characters.", Self::MAX_CHARS),
            ));
        }
        Ok(Self(text.into_string()))
    }

    /// Text that arrived rather than was typed (an email's body): kept whatever it holds,
    /// trimmed and with its NULs removed, never refused. The channel bounds its length
    /// (the email channel shortens a long body and tells the agent).
    pub fn received(input: &str) -> Self {
        Self(Text::stripped(input.trim()).into_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for MessageText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        MessageText::parse("text", &text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_a_nul_is_refused_naming_the_field() {
        let err = Text::parse("name", "Ada\0").expect_err("a NUL");
        assert_eq!(err.field, "name");
        assert_eq!(Text::parse("name", "Ada").expect("valid").as_str(), "Ada");
        assert_eq!(Text::stripped("A\0d\0a").as_str(), "Ada");
        let err = serde_json::from_str::<Text>("\"a\\u0000b\"").expect_err("a NUL");
        assert!(err.to_string().contains("U+0000"), "{err}");
    }

    #[test]
    fn json_with_a_nul_anywhere_is_refused() {
        let ok = serde_json::json!({"plan": "pro", "tags": ["a", 1, null]});
        assert!(refuse_nul_in_json("attributes", &ok).is_ok());
        for bad in [
            serde_json::json!({"plan": "p\u{0}ro"}),
            serde_json::json!({"p\u{0}lan": "pro"}),
            serde_json::json!({"deep": [{"x": ["\u{0}"]}]}),
        ] {
            let err = refuse_nul_in_json("attributes", &bad).expect_err("a NUL");
            assert_eq!(err.field, "attributes");
        }
    }

    #[test]
    fn message_text_is_trimmed_bounded_and_without_nul() {
        assert_eq!(
            MessageText::parse("text", "  Hi ").expect("valid").as_str(),
            "Hi"
        );
        assert!(
            MessageText::parse("text", "")
                .expect("empty is allowed")
                .is_empty()
        );
        assert!(MessageText::parse("text", "Hi\0").is_err());
        assert!(MessageText::parse("text", &"x".repeat(MessageText::MAX_CHARS)).is_ok());
        assert!(MessageText::parse("text", &"x".repeat(MessageText::MAX_CHARS + 1)).is_err());
    }

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
