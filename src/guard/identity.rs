//! Who is calling a guarded route: a trusted header, a verified JWT claim, or a `whoami` call to
//! the backend with the caller's own credentials (cached briefly by their SHA-256, never by the
//! raw token). Whatever the source, the id must be in its one canonical form
//! ([`caller_id::canonical`]).

use super::caller_id;
use super::decision::Caller;
use super::jwt::{JwtKeyError, JwtVerifier};
use super::rules::IdentitySource;
use crate::backend::client::{Client, Request};
use crate::backend::paths::get_path;
use dashmap::DashMap;
use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Largest number of cached whoami answers; the cache is emptied when it grows past this.
const CACHE_LIMIT: usize = 10_000;

/// Why the caller could not be identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// No usable credentials: answer 401.
    Unauthenticated(String),
    /// The identity source failed: answer 503.
    Unavailable(String),
}

/// Resolves callers according to the configured source.
pub struct Identity {
    source: IdentitySource,
    jwt: Option<JwtVerifier>,
    cache: DashMap<[u8; 32], (Instant, Caller)>,
}

impl Identity {
    /// An identity resolver for `source`; loads the JWT key material, refusing an unset or empty
    /// secret and unreadable key files.
    pub fn new(source: IdentitySource) -> Result<Self, JwtKeyError> {
        let jwt = match &source {
            IdentitySource::Jwt { settings, .. } => Some(JwtVerifier::load(settings)?),
            _ => None,
        };
        Ok(Identity {
            source,
            jwt,
            cache: DashMap::new(),
        })
    }

    /// The headers that carry identity in `header` mode (the id and tenant headers), whatever
    /// the mode: every spelling of them is refused or stripped.
    pub fn identity_headers(&self) -> Vec<&http::HeaderName> {
        match &self.source {
            IdentitySource::Header {
                name, tenant, role, ..
            } => std::iter::once(name)
                .chain(tenant.iter())
                .chain(role.iter())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether clients reach the gateway directly, so that every spelling of the identity
    /// headers must be stripped from every request.
    pub fn strips_identity_headers(&self) -> bool {
        matches!(self.source, IdentitySource::Header { edge: true, .. })
    }

    /// Identifies the caller of a request with `headers`; `client` reaches the backend.
    pub async fn resolve(
        &self,
        headers: &HeaderMap,
        client: &Client,
    ) -> Result<Caller, IdentityError> {
        let caller = self.resolve_raw(headers, client).await?;
        caller_id::canonical(&caller.id)
            .map_err(|e| IdentityError::Unauthenticated(format!("refused {:?}: {e}", caller.id)))?;
        Ok(caller)
    }

    async fn resolve_raw(
        &self,
        headers: &HeaderMap,
        client: &Client,
    ) -> Result<Caller, IdentityError> {
        match &self.source {
            IdentitySource::Header {
                name,
                tenant,
                role,
                edge,
            } => {
                if *edge {
                    return Err(IdentityError::Unauthenticated(format!(
                        "{name} is stripped at the edge and cannot identify callers"
                    )));
                }
                let id = single_header(headers, name)?
                    .ok_or_else(|| IdentityError::Unauthenticated(format!("no {name} header")))?;
                let optional = |h: &Option<http::HeaderName>| match h {
                    Some(h) => single_header(headers, h),
                    None => Ok(None),
                };
                Ok(Caller {
                    id,
                    tenant: optional(tenant)?,
                    role: optional(role)?,
                })
            }
            IdentitySource::Jwt {
                claim,
                tenant_claim,
                role_claim,
                ..
            } => {
                let verifier = self
                    .jwt
                    .as_ref()
                    .ok_or_else(|| IdentityError::Unavailable("no JWT key loaded".into()))?;
                let token = bearer(headers)?;
                let claims = verifier.verify(&token, now_unix()).map_err(|why| {
                    IdentityError::Unauthenticated(format!("invalid token: {why}"))
                })?;
                let id = claims.get(claim).and_then(text).ok_or_else(|| {
                    IdentityError::Unauthenticated(format!(
                        "the token's {claim} claim is missing or not a string or integer"
                    ))
                })?;
                let optional =
                    |c: &Option<String>| c.as_ref().and_then(|c| claims.get(c)).and_then(text);
                Ok(Caller {
                    id,
                    tenant: optional(tenant_claim),
                    role: optional(role_claim),
                })
            }
            IdentitySource::Whoami {
                call,
                id_field,
                tenant_field,
                role_field,
                cache,
            } => {
                let creds = credentials(headers);
                if creds.is_empty() {
                    return Err(IdentityError::Unauthenticated("no credentials".into()));
                }
                let key: [u8; 32] = Sha256::digest(&creds).into();
                if let Some(hit) = self.cache.get(&key).filter(|e| e.0.elapsed() < *cache) {
                    return Ok(hit.1.clone());
                }
                let fields = Fields {
                    id: id_field,
                    tenant: tenant_field.as_deref(),
                    role: role_field.as_deref(),
                };
                let caller = whoami(client, call, headers, &fields).await?;
                if self.cache.len() >= CACHE_LIMIT {
                    self.cache.clear();
                }
                self.cache.insert(key, (Instant::now(), caller.clone()));
                Ok(caller)
            }
        }
    }
}

/// The credential headers whose hash keys the whoami cache.
fn credentials(headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    for name in [AUTHORIZATION, COOKIE] {
        for v in headers.get_all(&name) {
            out.extend_from_slice(name.as_str().as_bytes());
            out.push(0);
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
    }
    out
}

/// Where a whoami answer holds the caller's id, tenant and role.
struct Fields<'a> {
    id: &'a [String],
    tenant: Option<&'a [String]>,
    role: Option<&'a [String]>,
}

async fn whoami(
    client: &Client,
    call: &crate::backend::spec::Operation,
    headers: &HeaderMap,
    fields: &Fields<'_>,
) -> Result<Caller, IdentityError> {
    let target = call
        .path
        .parts
        .iter()
        .map(|p| match p {
            crate::backend::spec::Part::Literal(s) => s.as_str(),
            crate::backend::spec::Part::Var(_) => "",
        })
        .collect::<String>();
    let mut forwarded = Vec::new();
    for name in [AUTHORIZATION, COOKIE] {
        for v in headers.get_all(&name) {
            forwarded.push((name.clone(), v.clone()));
        }
    }
    let req = Request {
        method: call.method.clone(),
        target,
        headers: forwarded,
        body: None,
    };
    let resp = client
        .send(&req)
        .await
        .map_err(|e| IdentityError::Unavailable(format!("whoami: {e}")))?;
    match resp.status {
        200..=299 => {}
        401 | 403 => {
            return Err(IdentityError::Unauthenticated(
                "the user service did not accept the caller's credentials".into(),
            ))
        }
        s => return Err(IdentityError::Unavailable(format!("whoami answered {s}"))),
    }
    let body: Value = serde_json::from_slice(&resp.body).map_err(|_| {
        IdentityError::Unavailable("whoami answered something that is not JSON".into())
    })?;
    let user = body.pointer(&call.result).unwrap_or(&body);
    let id = get_path(user, fields.id).and_then(text).ok_or_else(|| {
        IdentityError::Unavailable(
            "whoami's answer has no id where guard.identity.id_field says".into(),
        )
    })?;
    let optional = |f: Option<&[String]>| f.and_then(|f| get_path(user, f)).and_then(text);
    Ok(Caller {
        id,
        tenant: optional(fields.tenant),
        role: optional(fields.role),
    })
}

/// An id or tenant value: a non-empty string or an integer (a float such as `2.0` is not one).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

fn single_header(
    headers: &HeaderMap,
    name: &http::HeaderName,
) -> Result<Option<String>, IdentityError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(IdentityError::Unauthenticated(format!(
            "more than one {name} header"
        )));
    }
    first
        .map(|v| {
            v.to_str()
                .map(|s| s.trim().to_string())
                .map_err(|_| IdentityError::Unauthenticated(format!("{name} is not text")))
        })
        .transpose()
        .map(|o| o.filter(|s| !s.is_empty()))
}

fn bearer(headers: &HeaderMap) -> Result<String, IdentityError> {
    let value = single_header(headers, &AUTHORIZATION)?
        .ok_or_else(|| IdentityError::Unauthenticated("no Authorization header".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(token.trim().to_string())
        }
        _ => Err(IdentityError::Unauthenticated(
            "Authorization is not a bearer token".into(),
        )),
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_key_covers_authorization_and_cookie() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Bearer a".parse().unwrap());
        let a = credentials(&h);
        h.insert(COOKIE, "s=1".parse().unwrap());
        assert_ne!(a, credentials(&h));
        assert!(credentials(&HeaderMap::new()).is_empty());
    }

    /// A client for a backend that is never reached.
    fn unreachable_client() -> Client {
        Client::new(
            std::sync::Arc::new(crate::backend::peer::UpstreamPeer::new(
                "127.0.0.1:1".parse().unwrap(),
                None,
                None,
            )),
            "h",
            Duration::from_millis(50),
            Duration::from_millis(50),
            1,
        )
    }

    #[tokio::test]
    async fn trusted_header_identifies_unless_edge() {
        let client = unreachable_client();
        let name = http::HeaderName::from_static("x-user-id");
        let mut h = HeaderMap::new();
        h.insert(&name, "42".parse().unwrap());
        let role = http::HeaderName::from_static("x-user-role");
        let trusted = Identity::new(IdentitySource::Header {
            name: name.clone(),
            tenant: None,
            role: Some(role.clone()),
            edge: false,
        })
        .unwrap();
        let caller = trusted.resolve(&h, &client).await.unwrap();
        assert_eq!((caller.id.as_str(), caller.role), ("42", None));
        h.insert(&role, "admin".parse().unwrap());
        let caller = trusted.resolve(&h, &client).await.unwrap();
        assert_eq!(caller.role.as_deref(), Some("admin"));
        for lenient in ["042", "4 2", "+42", "42.0", "４２"] {
            let mut h = HeaderMap::new();
            h.insert(
                &name,
                http::HeaderValue::from_bytes(lenient.as_bytes()).unwrap(),
            );
            assert!(
                matches!(
                    trusted.resolve(&h, &client).await,
                    Err(IdentityError::Unauthenticated(_))
                ),
                "{lenient:?}"
            );
        }
        let edge = Identity::new(IdentitySource::Header {
            name: name.clone(),
            tenant: None,
            role: Some(role.clone()),
            edge: true,
        })
        .unwrap();
        assert!(matches!(
            edge.resolve(&h, &client).await,
            Err(IdentityError::Unauthenticated(_))
        ));
        assert!(edge.strips_identity_headers());
        assert_eq!(edge.identity_headers(), vec![&name, &role]);
    }
}
