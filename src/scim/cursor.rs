//! RFC 9865 cursors: the opaque `nextCursor` a list answer carries and the next request sends
//! back. A cursor holds where the walk resumes and when it expires, signed with HMAC-SHA256 over
//! what it is bound to (tenant, resource type, filter, projection), so an edited, forged or
//! misapplied cursor is `invalidCursor`; a late one `expiredCursor`. It holds everything a walk
//! needs: any gateway holding the key can continue it. Pure: the time is a parameter.

use super::error::{ScimError, ScimType};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::digest::generic_array::GenericArray;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

/// Seconds a cursor stays valid unless configured (`[scim] cursor_timeout_seconds`).
pub const DEFAULT_TIMEOUT_SECS: u64 = 3600;
/// Fewest bytes a configured cursor key may have.
pub const MIN_KEY_BYTES: usize = 32;
/// Longest cursor text accepted (anything longer was not issued here).
const MAX_CURSOR_CHARS: usize = 4096;
/// Bytes of the signature at the end of a decoded cursor.
const TAG_BYTES: usize = 32;
/// Separates what a cursor signs from what other HMACs of the same key might sign.
const DOMAIN: &[u8] = b"scimgate cursor v1\0";

/// The secret cursors are signed with, ready to sign.
#[derive(Clone)]
pub struct CursorKey(Hmac<Sha256>);

impl CursorKey {
    /// A key of `bytes`; `None` when shorter than [`MIN_KEY_BYTES`].
    pub fn new(bytes: &[u8]) -> Option<CursorKey> {
        if bytes.len() < MIN_KEY_BYTES {
            return None;
        }
        <Hmac<Sha256> as KeyInit>::new_from_slice(bytes)
            .ok()
            .map(CursorKey)
    }

    /// A random key, good for one process (cursors die with it).
    pub fn random() -> CursorKey {
        // An HMAC key shorter than the hash's block is used zero-padded to the block.
        let mut block = [0u8; 64];
        rand::thread_rng().fill_bytes(&mut block[..MIN_KEY_BYTES]);
        CursorKey(<Hmac<Sha256> as KeyInit>::new(
            &GenericArray::clone_from_slice(&block),
        ))
    }
}

impl fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

/// Where a walk resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// After the resource `id` (ids in the walk's order), which was at 0-based `at` of the
    /// list when the cursor was issued (a hint for offset-paged backends).
    #[serde(rename = "a")]
    After {
        /// The last id returned.
        #[serde(rename = "i")]
        id: String,
        /// Its list offset plus one, when issued.
        #[serde(rename = "o")]
        at: u64,
    },
    /// At the backend's own continuation `token`, skipping `skip` items of the page it opens.
    #[serde(rename = "t")]
    Token {
        /// The backend's token.
        #[serde(rename = "t")]
        token: String,
        /// Items of that page already returned.
        #[serde(rename = "s")]
        skip: u64,
    },
}

/// What a cursor is valid for: the tenant and every query parameter but `cursor` and `count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding(Vec<u8>);

impl Binding {
    /// The binding of `parts` (tenant, resource type, filter, ...), each length-prefixed so no
    /// two lists of parts bind alike.
    pub fn new(parts: &[Option<&str>]) -> Binding {
        let mut out = Vec::new();
        for part in parts {
            match part {
                Some(p) => {
                    out.push(1);
                    out.extend((p.len() as u64).to_be_bytes());
                    out.extend(p.as_bytes());
                }
                None => out.push(0),
            }
        }
        Binding(out)
    }
}

/// The signed content of a cursor.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// Unix time after which the cursor is expired.
    #[serde(rename = "e")]
    expires: i64,
    #[serde(rename = "p")]
    position: Position,
}

/// Issues and opens cursors with one key and lifetime.
#[derive(Debug, Clone)]
pub struct Cursors {
    key: CursorKey,
    timeout_secs: u64,
}

impl Cursors {
    /// Cursors signed with `key`, valid `timeout_secs` after they are issued.
    pub fn new(key: CursorKey, timeout_secs: u64) -> Cursors {
        Cursors { key, timeout_secs }
    }

    /// Seconds a cursor stays valid (`cursorTimeout`).
    pub fn timeout_secs(&self) -> u64 {
        self.timeout_secs
    }

    /// The cursor resuming at `position` for requests bound as `binding`, issued at `now`
    /// (Unix seconds). Its characters are RFC 3986 unreserved.
    pub fn issue(&self, binding: &Binding, position: Position, now: i64) -> String {
        let timeout = i64::try_from(self.timeout_secs).unwrap_or(i64::MAX);
        let payload = Payload {
            expires: now.saturating_add(timeout),
            position,
        };
        let mut bytes = serde_json::to_vec(&payload).unwrap_or_default();
        let tag = self.tag(binding, &bytes);
        bytes.extend(tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Where the cursor `text` resumes, if this service issued it for `binding` and it has not
    /// expired at `now`: else `400 invalidCursor` or `400 expiredCursor`.
    pub fn open(&self, binding: &Binding, text: &str, now: i64) -> Result<Position, ScimError> {
        if text.len() > MAX_CURSOR_CHARS {
            return Err(invalid("it is longer than any cursor issued"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid("it is not a cursor this service issued"))?;
        let split = bytes
            .len()
            .checked_sub(TAG_BYTES)
            .ok_or_else(|| invalid("it is too short"))?;
        let (payload, tag) = bytes.split_at(split);
        self.mac(binding, payload)
            .verify_slice(tag)
            .map_err(|_| invalid("it was not issued by this service for this query and tenant (send the same filter and attributes as the request that returned it)"))?;
        let payload: Payload =
            serde_json::from_slice(payload).map_err(|_| invalid("its content is unreadable"))?;
        if now > payload.expires {
            return Err(ScimError::bad_request(
                ScimType::ExpiredCursor,
                format!(
                    "the cursor expired (cursors are valid {} s, see cursorTimeout in /ServiceProviderConfig): restart the listing with an empty cursor",
                    self.timeout_secs
                ),
            ));
        }
        Ok(payload.position)
    }

    fn mac(&self, binding: &Binding, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.key.0.clone();
        mac.update(DOMAIN);
        mac.update(&(binding.0.len() as u64).to_be_bytes());
        mac.update(&binding.0);
        mac.update(payload);
        mac
    }

    fn tag(&self, binding: &Binding, payload: &[u8]) -> Vec<u8> {
        self.mac(binding, payload).finalize().into_bytes().to_vec()
    }
}

fn invalid(why: &str) -> ScimError {
    ScimError::bad_request(
        ScimType::InvalidCursor,
        format!("invalid cursor: {why}; send an empty cursor for the first page, then each nextCursor as returned"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn cursors() -> Cursors {
        Cursors::new(CursorKey::new(&[7u8; 32]).unwrap(), 600)
    }

    fn binding(tenant: &str, filter: Option<&str>) -> Binding {
        Binding::new(&[Some(tenant), Some("User"), filter, None, None])
    }

    fn after() -> Position {
        Position::After {
            id: "usr_42".into(),
            at: 42,
        }
    }

    #[test]
    fn a_cursor_round_trips_and_is_unreserved_text() {
        let c = cursors();
        let b = binding("acme", Some("active eq true"));
        for p in [
            after(),
            Position::Token {
                token: "bmV4dA==&x".into(),
                skip: 3,
            },
        ] {
            let text = c.issue(&b, p.clone(), NOW);
            assert!(
                text.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c)),
                "{text}"
            );
            assert_eq!(c.open(&b, &text, NOW + 600), Ok(p));
        }
    }

    #[test]
    fn changing_any_byte_makes_it_invalid() {
        let c = cursors();
        let b = binding("acme", None);
        let text = c.issue(&b, after(), NOW);
        let bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        for i in 0..bytes.len() {
            let mut edited = bytes.clone();
            edited[i] ^= 1;
            let e = c
                .open(&b, &URL_SAFE_NO_PAD.encode(&edited), NOW)
                .unwrap_err();
            assert_eq!(
                (e.status, e.scim_type),
                (400, Some(ScimType::InvalidCursor)),
                "byte {i}"
            );
        }
        for bad in ["", "!!", "abc", &text[..text.len() - 1], &"A".repeat(5000)] {
            let e = c.open(&b, bad, NOW).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidCursor), "{bad:?}");
        }
    }

    #[test]
    fn another_tenant_query_or_key_makes_it_invalid() {
        let c = cursors();
        let text = c.issue(&binding("acme", Some("a")), after(), NOW);
        for other in [
            binding("globex", Some("a")),
            binding("acme", Some("b")),
            binding("acme", None),
            Binding::new(&[Some("acme"), Some("Group"), Some("a"), None, None]),
            Binding::new(&[
                Some("acme"),
                Some("User"),
                Some("a"),
                Some("userName"),
                None,
            ]),
        ] {
            let e = c.open(&other, &text, NOW).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidCursor));
        }
        let other_key = Cursors::new(CursorKey::new(&[8u8; 32]).unwrap(), 600);
        let e = other_key
            .open(&binding("acme", Some("a")), &text, NOW)
            .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidCursor));
    }

    #[test]
    fn a_cursor_past_its_timeout_is_expired() {
        let c = cursors();
        let b = binding("acme", None);
        let text = c.issue(&b, after(), NOW);
        assert!(c.open(&b, &text, NOW + 600).is_ok());
        let e = c.open(&b, &text, NOW + 601).unwrap_err();
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::ExpiredCursor))
        );
    }

    #[test]
    fn keys_shorter_than_32_bytes_are_refused() {
        assert!(CursorKey::new(&[1u8; 31]).is_none());
        assert!(CursorKey::new(&[1u8; 32]).is_some());
        assert_eq!(format!("{:?}", CursorKey::random()), "CursorKey(..)");
    }
}
