//! Secret tokens: session cookies, API keys, email links. 256 random bits, shown once,
//! stored only as their SHA-256 so a leaked database opens nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh secret token with `prefix` (e.g. `kt_live_`), URL-safe.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database keeps of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = generate("kt_");
        let b = generate("kt_");
        assert_ne!(a, b);
        assert!(a.starts_with("kt_"));
        // 32 bytes in unpadded base64 is 43 characters.
        assert_eq!(a.len(), 3 + 43);
    }

    #[test]
    fn hash_is_stable_and_not_the_token() {
        assert_eq!(hash("abc"), hash("abc"));
        assert_ne!(hash("abc"), "abc");
        assert_eq!(hash("abc").len(), 64);
    }
}
