//! Identity verification: the customer's server signs its user id with the inbox's secret
//! (HMAC-SHA256, hex), so a visitor cannot claim to be someone else.

use hmac::{Hmac, Mac};
use kaltalk_core::chat::IdentityMode;
use kaltalk_core::values::{Attributes, Text};
use kaltalk_store::contacts::ContactFields;
use serde::Deserialize;
use sha2::Sha256;

use super::WidgetError;

/// The longest user id a contact keeps.
pub const MAX_ID_CHARS: usize = 200;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Identity {
    pub id: Option<Text>,
    pub name: Option<Text>,
    pub email: Option<Text>,
    pub hash: Option<Text>,
    pub attributes: Option<Attributes>,
}

/// The signature the customer's server computes: hex(HMAC-SHA256(secret, user id)).
pub fn sign(secret: &str, user_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn signature_matches(secret: &str, user_id: &str, hash: &str) -> bool {
    let Ok(given) = hex::decode(hash.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(user_id.as_bytes());
    mac.verify_slice(&given).is_ok() // constant time
}

fn clean(value: Option<&Text>, max: usize) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(max).collect())
}

/// What of `identity` the inbox's mode lets us trust. Only a verified id links the visitor
/// to an existing contact (and that contact's conversations); an unverified name or email
/// is kept as what the visitor typed.
pub fn verify(
    mode: IdentityMode,
    secret: &str,
    identity: Option<&Identity>,
) -> Result<ContactFields, WidgetError> {
    let Some(identity) = identity else {
        return match mode {
            IdentityMode::Required => Err(WidgetError::IdentityRequired),
            _ => Ok(ContactFields::default()),
        };
    };
    let email = clean(identity.email.as_ref(), 254)
        .filter(|e| kaltalk_core::EmailAddress::parse("email", e).is_ok());
    let mut fields = ContactFields {
        external_id: None,
        name: clean(identity.name.as_ref(), 100),
        email,
        attributes: identity
            .attributes
            .clone()
            .map(|a| a.0)
            .filter(|a| a.is_object() && a.to_string().len() <= 16 * 1024),
    };
    // The id is checked exactly as the customer's server signed it: cutting or trimming
    // it first would verify one id and store another.
    let id = identity.id.clone().filter(|id| !id.trim().is_empty());
    if let Some(id) = &id
        && mode != IdentityMode::Off
        && id.chars().count() > MAX_ID_CHARS
    {
        return Err(WidgetError::Invalid(
            "identity.id",
            format!("A user id can have at most {MAX_ID_CHARS} characters."),
        ));
    }
    match (mode, id, identity.hash.as_deref()) {
        (IdentityMode::Off, _, _) => {}
        (_, Some(id), Some(hash)) => {
            if !signature_matches(secret, &id, hash) {
                return Err(WidgetError::IdentityInvalid);
            }
            fields.external_id = Some(id.into_string());
        }
        (IdentityMode::Required, _, _) => return Err(WidgetError::IdentityRequired),
        (IdentityMode::Optional, _, _) => {}
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: &str, hash: Option<String>) -> Identity {
        let text = |s: &str| Some(Text::parse("test", s).expect("no NUL"));
        Identity {
            id: text(id),
            name: text("Ada"),
            email: text("ada@example.com"),
            hash: hash.as_deref().and_then(text),
            attributes: None,
        }
    }

    #[test]
    fn a_valid_signature_links_the_user_id() {
        let signed = identity("user-42", Some(sign("s3cret", "user-42")));
        let fields = verify(IdentityMode::Optional, "s3cret", Some(&signed)).expect("valid");
        assert_eq!(fields.external_id.as_deref(), Some("user-42"));
        assert_eq!(fields.email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn a_wrong_signature_is_refused_in_every_checking_mode() {
        let forged = identity("user-42", Some(sign("other", "user-42")));
        assert!(matches!(
            verify(IdentityMode::Optional, "s3cret", Some(&forged)),
            Err(WidgetError::IdentityInvalid)
        ));
        assert!(matches!(
            verify(IdentityMode::Required, "s3cret", Some(&forged)),
            Err(WidgetError::IdentityInvalid)
        ));
        assert!(matches!(
            verify(
                IdentityMode::Required,
                "s3cret",
                Some(&identity("user-42", Some("zz".into())))
            ),
            Err(WidgetError::IdentityInvalid)
        ));
    }

    #[test]
    fn required_mode_refuses_anonymous_and_unsigned_visitors() {
        assert!(matches!(
            verify(IdentityMode::Required, "s", None),
            Err(WidgetError::IdentityRequired)
        ));
        assert!(matches!(
            verify(IdentityMode::Required, "s", Some(&identity("u", None))),
            Err(WidgetError::IdentityRequired)
        ));
    }

    #[test]
    fn a_signed_id_longer_than_the_stored_limit_is_refused_not_cut() {
        let long = "u".repeat(MAX_ID_CHARS + 1);
        let cut = &long[..MAX_ID_CHARS];
        // Signed for the id that cutting would leave: it must not pass as the long one.
        let claimed = identity(&long, Some(sign("s", cut)));
        assert!(matches!(
            verify(IdentityMode::Optional, "s", Some(&claimed)),
            Err(WidgetError::Invalid("identity.id", _))
        ));
        let signed = identity(&long, Some(sign("s", &long)));
        assert!(matches!(
            verify(IdentityMode::Required, "s", Some(&signed)),
            Err(WidgetError::Invalid("identity.id", _))
        ));
        let longest = "u".repeat(MAX_ID_CHARS);
        let fields = verify(
            IdentityMode::Required,
            "s",
            Some(&identity(&longest, Some(sign("s", &longest)))),
        )
        .expect("the longest id that fits");
        assert_eq!(fields.external_id, Some(longest));
    }

    #[test]
    fn without_verification_an_id_is_never_trusted() {
        let claimed = identity("user-42", None);
        let fields = verify(IdentityMode::Optional, "s", Some(&claimed)).expect("ok");
        assert_eq!(fields.external_id, None);
        let off = verify(
            IdentityMode::Off,
            "s",
            Some(&identity("user-42", Some(sign("s", "user-42")))),
        )
        .expect("ok");
        assert_eq!(off.external_id, None, "off means off");
        assert_eq!(off.name.as_deref(), Some("Ada"));
    }
}
