//! Who is calling a guarded route: a trusted header, a verified JWT claim, or a `whoami` call to
//! the backend with the caller's own credentials (cached briefly by their SHA-256, never by the
//! raw token).

use super::decision::Caller;
use super::rules::IdentitySource;
use crate::backend::client::{Client, Request};
use crate::backend::mapping::get_path;
use base64::Engine;
use dashmap::DashMap;
use hmac::{Hmac, Mac};
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
    cache: DashMap<[u8; 32], (Instant, Caller)>,
}

impl Identity {
    /// An identity resolver for `source`.
    pub fn new(source: IdentitySource) -> Self {
        Identity {
            source,
            cache: DashMap::new(),
        }
    }

    /// The header a client must never set itself, when the gateway is the edge.
    pub fn header_to_strip(&self) -> Option<&http::HeaderName> {
        match &self.source {
            IdentitySource::Header {
                name, edge: true, ..
            } => Some(name),
            _ => None,
        }
    }

    /// Identifies the caller of a request with `headers`; `client` reaches the backend.
    pub async fn resolve(
        &self,
        headers: &HeaderMap,
        client: &Client,
    ) -> Result<Caller, IdentityError> {
        match &self.source {
            IdentitySource::Header { name, tenant, edge } => {
                if *edge {
                    return Err(IdentityError::Unauthenticated(format!(
                        "{name} is stripped at the edge and cannot identify callers"
                    )));
                }
                let id = single_header(headers, name)?
                    .ok_or_else(|| IdentityError::Unauthenticated(format!("no {name} header")))?;
                let tenant = match tenant {
                    Some(t) => single_header(headers, t)?,
                    None => None,
                };
                Ok(Caller { id, tenant })
            }
            IdentitySource::Jwt {
                claim,
                tenant_claim,
                secret_env,
            } => {
                let secret = std::env::var(secret_env)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        IdentityError::Unavailable(format!("{secret_env} is not set"))
                    })?;
                let token = bearer(headers)?;
                let claims = verify_hs256(&token, secret.as_bytes(), now_unix())?;
                let id = claim_text(&claims, claim).ok_or_else(|| {
                    IdentityError::Unauthenticated(format!("the token has no {claim} claim"))
                })?;
                let tenant = tenant_claim.as_ref().and_then(|c| claim_text(&claims, c));
                Ok(Caller { id, tenant })
            }
            IdentitySource::Whoami {
                call,
                id_field,
                tenant_field,
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
                let caller =
                    whoami(client, call, headers, id_field, tenant_field.as_deref()).await?;
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

async fn whoami(
    client: &Client,
    call: &crate::backend::spec::Operation,
    headers: &HeaderMap,
    id_field: &[String],
    tenant_field: Option<&[String]>,
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
    let id = get_path(user, id_field).and_then(text).ok_or_else(|| {
        IdentityError::Unavailable(
            "whoami's answer has no id where guard.identity.id_field says".into(),
        )
    })?;
    let tenant = tenant_field.and_then(|f| get_path(user, f)).and_then(text);
    Ok(Caller { id, tenant })
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
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

fn claim_text(claims: &Value, claim: &str) -> Option<String> {
    claims.get(claim).and_then(text)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Verifies an HS256 JWT and returns its claims; `exp` and `nbf` are checked against `now`.
pub fn verify_hs256(token: &str, secret: &[u8], now: u64) -> Result<Value, IdentityError> {
    let bad = |why: &str| IdentityError::Unauthenticated(format!("invalid token: {why}"));
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a JWT"));
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = serde_json::from_slice(&b64.decode(h).map_err(|_| bad("header"))?)
        .map_err(|_| bad("header"))?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(bad("only HS256 is accepted"));
    }
    let signature = b64.decode(s).map_err(|_| bad("signature"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| bad("secret"))?;
    mac.update(format!("{h}.{p}").as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| bad("signature mismatch"))?;
    let claims: Value = serde_json::from_slice(&b64.decode(p).map_err(|_| bad("payload"))?)
        .map_err(|_| bad("payload"))?;
    if claims
        .get("exp")
        .and_then(Value::as_u64)
        .is_some_and(|exp| now >= exp)
    {
        return Err(bad("expired"));
    }
    if claims
        .get("nbf")
        .and_then(Value::as_u64)
        .is_some_and(|nbf| now < nbf)
    {
        return Err(bad("not yet valid"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sign(claims: &Value, secret: &[u8], alg: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let h = b64.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        let p = b64.encode(claims.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", b64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn accepts_a_valid_token_and_reads_claims() {
        let t = sign(
            &json!({"sub": 7, "team": "acme", "exp": 2000}),
            b"k",
            "HS256",
        );
        let c = verify_hs256(&t, b"k", 1000).unwrap();
        assert_eq!(claim_text(&c, "sub").as_deref(), Some("7"));
    }

    #[test]
    fn rejects_forged_expired_and_alg_none() {
        let t = sign(&json!({"sub": "7"}), b"k", "HS256");
        assert!(verify_hs256(&t, b"other", 0).is_err());
        let expired = sign(&json!({"sub": "7", "exp": 10}), b"k", "HS256");
        assert!(verify_hs256(&expired, b"k", 10).is_err());
        let none = sign(&json!({"sub": "7"}), b"k", "none");
        assert!(verify_hs256(&none, b"k", 0).is_err());
        assert!(verify_hs256("a.b", b"k", 0).is_err());
        let mut tampered = t.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(verify_hs256(&tampered, b"k", 0).is_err());
    }

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

    /// An empty secret would let anyone sign tokens: it counts as unset, and a token signed
    /// with it identifies nobody.
    #[tokio::test]
    async fn empty_jwt_secret_identifies_nobody() {
        let var = "SCIMGATE_TEST_EMPTY_JWT_SECRET";
        std::env::set_var(var, "");
        let jwt = Identity::new(IdentitySource::Jwt {
            claim: "sub".into(),
            tenant_claim: None,
            secret_env: var.into(),
        });
        let token = sign(&json!({"sub": "7"}), b"", "HS256");
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let got = jwt.resolve(&h, &unreachable_client()).await;
        assert!(matches!(got, Err(IdentityError::Unavailable(_))), "{got:?}");
    }

    #[tokio::test]
    async fn trusted_header_identifies_unless_edge() {
        let client = unreachable_client();
        let name = http::HeaderName::from_static("x-user-id");
        let mut h = HeaderMap::new();
        h.insert(&name, "42".parse().unwrap());
        let trusted = Identity::new(IdentitySource::Header {
            name: name.clone(),
            tenant: None,
            edge: false,
        });
        assert_eq!(trusted.resolve(&h, &client).await.unwrap().id, "42");
        let edge = Identity::new(IdentitySource::Header {
            name: name.clone(),
            tenant: None,
            edge: true,
        });
        assert!(matches!(
            edge.resolve(&h, &client).await,
            Err(IdentityError::Unauthenticated(_))
        ));
        assert_eq!(edge.header_to_strip(), Some(&name));
    }
}
