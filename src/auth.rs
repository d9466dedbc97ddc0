//! SCIM API keys: generation, SHA-256 hashing, constant-time lookup, and the tenant each key is
//! bound to. Several keys per tenant make rotation a matter of adding one and removing the other.
//! Keys come from the config file ([`Keyring`]) and from the store ([`store_keys`]), whose
//! lookups are resolved before a request is authenticated.

pub mod store_keys;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt::Debug;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Every generated key starts with this, so a leaked key is recognisable (secret scanners).
pub const KEY_PREFIX: &str = "scimgate_";

/// A tenant (team): its name in scimgate and the name the backend knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Name used in config and logs.
    pub name: String,
    /// Value substituted for `{tenant}` in backend templates.
    pub backend_name: String,
}

/// One accepted key: its public id, its tenant and the SHA-256 of the secret.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Public identifier, safe to log.
    pub id: String,
    /// The tenant the key acts for.
    pub tenant: Arc<Tenant>,
    /// SHA-256 of the full key.
    pub hash: [u8; 32],
}

impl ApiKey {
    /// The key `secret` acting for `tenant`, its id derived from its hash.
    pub fn from_secret(tenant: Arc<Tenant>, secret: &str) -> ApiKey {
        let hash = hash_key(secret.as_bytes());
        ApiKey {
            id: key_id(&hash),
            tenant,
            hash,
        }
    }
}

/// Who a request authenticated as.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The tenant every backend call is scoped to.
    pub tenant: Arc<Tenant>,
    /// Which key was used (its id, never the secret).
    pub key_id: String,
}

/// Why authentication failed (all answered with 401; the reason is for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// More than one `Authorization` header.
    Duplicate,
    /// Not `Bearer <token>`.
    Malformed,
    /// A well-formed key that matches none configured.
    Unknown,
}

impl AuthFailure {
    /// Short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Duplicate => "duplicate",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Unknown => "unknown_key",
        }
    }

    /// Text for the SCIM error detail.
    pub fn detail(self) -> &'static str {
        match self {
            AuthFailure::Missing => {
                "missing bearer token: send 'Authorization: Bearer <SCIM API key>'"
            }
            AuthFailure::Duplicate => "more than one Authorization header",
            AuthFailure::Malformed => "the Authorization header must be 'Bearer <SCIM API key>'",
            AuthFailure::Unknown => "the SCIM API key is not valid",
        }
    }
}

/// Keys beyond the config's, looked up (by the hash of the presented key) before a request is
/// authenticated, so that authentication itself never waits.
pub trait ResolvedKeys: Send + Sync + Debug {
    /// Who the key with this hash acts as, if a recent lookup found it live.
    fn principal(&self, hash: &[u8; 32]) -> Option<Principal>;
}

/// All configured keys, and the keys resolved beyond them.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<ApiKey>,
    resolved: Option<Arc<dyn ResolvedKeys>>,
}

impl Keyring {
    /// A keyring over `keys`.
    pub fn new(keys: Vec<ApiKey>) -> Self {
        Keyring {
            keys,
            resolved: None,
        }
    }

    /// The same keyring, accepting also the keys `resolved` answers for; a configured key wins.
    pub fn with_resolved(mut self, resolved: Arc<dyn ResolvedKeys>) -> Self {
        self.resolved = Some(resolved);
        self
    }

    /// The configured keys.
    pub fn keys(&self) -> &[ApiKey] {
        &self.keys
    }

    /// The tenant of every key (with repeats).
    pub fn tenant_names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.tenant.name.as_str())
    }

    /// Authenticates the values of the request's `Authorization` headers. Every configured hash
    /// is compared, in constant time, whatever matched; a key no configured one matches is
    /// looked up in the resolved keys.
    pub fn authenticate(&self, headers: &[&[u8]]) -> Result<Principal, AuthFailure> {
        let presented = presented_hash(headers)?;
        if let Some(k) = self.configured(&presented) {
            return Ok(Principal {
                tenant: k.tenant.clone(),
                key_id: k.id.clone(),
            });
        }
        self.resolved
            .as_ref()
            .and_then(|r| r.principal(&presented))
            .ok_or(AuthFailure::Unknown)
    }

    /// The hash of the request's bearer key when it is well formed and no configured key
    /// matches it: the key to resolve before [`Keyring::authenticate`].
    pub fn unconfigured_key(&self, headers: &[&[u8]]) -> Option<[u8; 32]> {
        let presented = presented_hash(headers).ok()?;
        self.configured(&presented).is_none().then_some(presented)
    }

    /// The configured key with this hash, every hash compared in constant time.
    fn configured(&self, presented: &[u8; 32]) -> Option<&ApiKey> {
        let mut found: Option<&ApiKey> = None;
        for key in &self.keys {
            if bool::from(key.hash.ct_eq(presented)) {
                found = Some(key);
            }
        }
        found
    }
}

/// The hash of the key in the request's one `Authorization: Bearer` header.
fn presented_hash(headers: &[&[u8]]) -> Result<[u8; 32], AuthFailure> {
    let header = match headers {
        [] => return Err(AuthFailure::Missing),
        [one] => *one,
        _ => return Err(AuthFailure::Duplicate),
    };
    bearer_token(header)
        .map(hash_key)
        .ok_or(AuthFailure::Malformed)
}

/// Extracts the token of `Bearer <token>`; the scheme word is case-insensitive.
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim_start();
    let valid = scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && !token.bytes().any(|b| b.is_ascii_whitespace());
    valid.then_some(token.as_bytes())
}

/// SHA-256 of a key.
pub fn hash_key(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// A fresh key: the prefix and 256 bits from the OS random number generator, base64url.
pub fn generate_key() -> String {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    format!("{KEY_PREFIX}{encoded}")
}

/// The entry that lists the key `secret` in a tenant's `keys`: `{ id = "…", sha256 = "…" }`.
pub fn key_entry(secret: &str) -> String {
    let hash = hash_key(secret.as_bytes());
    format!(
        "{{ id = \"{}\", sha256 = \"{}\" }}",
        key_id(&hash),
        hex::encode(hash)
    )
}

/// A short public id for a key, derived from its hash (the first 6 bytes, hex).
pub fn key_id(hash: &[u8; 32]) -> String {
    hex::encode(&hash[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(secret: &str) -> Keyring {
        let tenant = Arc::new(Tenant {
            name: "acme".into(),
            backend_name: "acme".into(),
        });
        let key = ApiKey::from_secret(tenant, secret);
        Keyring::new(vec![ApiKey {
            id: "k1".into(),
            ..key
        }])
    }

    #[test]
    fn accepts_bearer_in_any_case() {
        let r = ring("s3cret");
        for h in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret"] {
            let p = r.authenticate(&[h.as_bytes()]).unwrap();
            assert_eq!(p.tenant.name, "acme");
            assert_eq!(p.key_id, "k1");
        }
    }

    #[test]
    fn rejects_wrong_missing_duplicate_and_malformed() {
        let r = ring("s3cret");
        assert_eq!(r.authenticate(&[]).unwrap_err(), AuthFailure::Missing);
        assert_eq!(
            r.authenticate(&[b"Bearer nope"]).unwrap_err(),
            AuthFailure::Unknown
        );
        assert_eq!(
            r.authenticate(&[b"Bearer s3cret", b"Bearer s3cret"])
                .unwrap_err(),
            AuthFailure::Duplicate
        );
        for bad in ["Basic s3cret", "Bearer", "Bearer s3 cret", "s3cret"] {
            assert_eq!(
                r.authenticate(&[bad.as_bytes()]).unwrap_err(),
                AuthFailure::Malformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn every_key_acts_for_its_own_tenant() {
        let tenant = |name: &str| {
            Arc::new(Tenant {
                name: name.into(),
                backend_name: format!("{name}-ws"),
            })
        };
        let r = Keyring::new(vec![
            ApiKey::from_secret(tenant("acme"), "key-a"),
            ApiKey::from_secret(tenant("globex"), "key-g"),
            ApiKey::from_secret(tenant("globex"), "key-g2"),
        ]);
        for (key, name) in [("key-a", "acme"), ("key-g", "globex"), ("key-g2", "globex")] {
            let p = r
                .authenticate(&[format!("Bearer {key}").as_bytes()])
                .unwrap();
            assert_eq!(p.tenant.name, name, "{key}");
            assert_eq!(p.key_id, key_id(&hash_key(key.as_bytes())));
        }
        let names: Vec<&str> = r.tenant_names().collect();
        assert_eq!(names, ["acme", "globex", "globex"]);
    }

    #[test]
    fn generated_keys_are_prefixed_random_and_long() {
        let a = generate_key();
        let b = generate_key();
        assert!(a.starts_with(KEY_PREFIX));
        assert_ne!(a, b);
        assert!(a.len() - KEY_PREFIX.len() >= 43);
    }
}
