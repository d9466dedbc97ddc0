//! Password hashing, session tokens and constant-time comparison for the demo backend.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of stored password hashes: `sha256$<salt hex>$<digest hex>`.
const SCHEME: &str = "sha256";

/// Lowercase hex encoding.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// `n` random bytes from the thread-local CSPRNG.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::thread_rng().fill_bytes(&mut buf);
    buf
}

/// A new session token: 32 random bytes, hex encoded (64 characters).
pub(crate) fn new_session_token() -> String {
    to_hex(&random_bytes::<32>())
}

/// The form in which a session token is stored (its SHA-256, hex), so a leaked database
/// does not leak live sessions.
pub(crate) fn token_digest(token: &str) -> String {
    to_hex(&Sha256::digest(token.as_bytes()))
}

fn salted_digest(salt_hex: &str, password: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt_hex.as_bytes());
    hasher.update(b"\0");
    hasher.update(password.as_bytes());
    to_hex(&hasher.finalize())
}

/// Hashes `password` with a fresh random salt.
pub(crate) fn hash_password(password: &str) -> String {
    let salt = to_hex(&random_bytes::<16>());
    let digest = salted_digest(&salt, password);
    format!("{SCHEME}${salt}${digest}")
}

/// Whether `password` matches a hash made by [`hash_password`]. Malformed hashes never match.
pub(crate) fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(SCHEME), Some(salt), Some(digest), None) => {
            ct_eq(salted_digest(salt, password).as_bytes(), digest.as_bytes())
        }
        _ => false,
    }
}

/// Compares two byte strings in time independent of where they differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_encodes_lowercase() {
        assert_eq!(to_hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }

    #[test]
    fn password_roundtrip_and_salting() {
        let a = hash_password("s3cret");
        let b = hash_password("s3cret");
        assert_ne!(a, b, "salt must differ");
        assert!(verify_password(&a, "s3cret"));
        assert!(!verify_password(&a, "s3creT"));
        assert!(!verify_password("garbage", "s3cret"));
        assert!(!verify_password("sha256$aa$bb$cc", "s3cret"));
    }

    #[test]
    fn tokens_are_64_hex_chars_and_unique() {
        let t = new_session_token();
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(t, new_session_token());
        assert_eq!(token_digest(&t).len(), 64);
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
