//! OAuth 2.0 client credentials (RFC 6749 section 4.4): asks the token endpoint for an access
//! token, keeps it until shortly before it expires, and replaces it when the backend refuses it.
//! Concurrent callers share one token request. Neither the token nor the client secret is ever
//! logged or shown in an error.

use super::client::{CallError, Client, Request};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest time a token is renewed before it expires.
const RENEW_MARGIN: Duration = Duration::from_secs(30);

/// An access token, ready to send.
#[derive(Clone)]
pub struct Token {
    /// `Bearer <token>`, marked sensitive.
    pub header: HeaderValue,
    /// Which token this is (a refusal of an older one does not discard a newer one).
    pub generation: u64,
    renew_at: Option<Instant>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("generation", &self.generation)
            .field("renew_at", &self.renew_at)
            .finish_non_exhaustive()
    }
}

impl Token {
    fn fresh(&self, now: Instant) -> bool {
        self.renew_at.is_none_or(|at| now < at)
    }
}

/// Client credentials that cannot be sent in a Basic header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the client credentials cannot go in a header")]
pub struct ClientCredentialsError;

/// Why a token endpoint's answer gives no usable token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenAnswerError {
    /// The answer is not JSON.
    #[error("the OAuth token endpoint's answer is not JSON")]
    NotJson,
    /// No non-empty `access_token`.
    #[error("the OAuth token endpoint's answer has no access_token")]
    NoAccessToken,
    /// A `token_type` other than bearer (its first 20 characters).
    #[error("the OAuth token endpoint issued a {0:?} token; only bearer tokens are supported")]
    NotBearer(String),
    /// A token that cannot go in a header.
    #[error("the access token holds characters not allowed in a header")]
    NotHeader,
}

/// The token request: where it goes and what it sends (the body and header hold the secret).
pub struct TokenRequest {
    /// Path and query of the token endpoint.
    pub path: String,
    /// `application/x-www-form-urlencoded` body.
    pub form: Bytes,
    /// `Authorization: Basic ...` for `client_secret_basic`.
    pub basic: Option<HeaderValue>,
}

impl TokenRequest {
    /// Builds the request for `client_id`/`secret`; `in_body` puts them in the form
    /// (`client_secret_post`) instead of a Basic header.
    pub fn new(
        path: &str,
        client_id: &str,
        secret: &str,
        scope: Option<&str>,
        audience: Option<&str>,
        in_body: bool,
    ) -> Result<TokenRequest, ClientCredentialsError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(s) = scope {
            form.append_pair("scope", s);
        }
        if let Some(a) = audience {
            form.append_pair("audience", a);
        }
        let basic = if in_body {
            form.append_pair("client_id", client_id);
            form.append_pair("client_secret", secret);
            None
        } else {
            // RFC 6749 section 2.3.1: both parts form-encoded, then Basic.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(client_id), enc(secret));
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            let mut v = HeaderValue::from_str(&value).map_err(|_| ClientCredentialsError)?;
            v.set_sensitive(true);
            Some(v)
        };
        Ok(TokenRequest {
            path: path.to_string(),
            form: Bytes::from(form.finish()),
            basic,
        })
    }
}

/// A client-credentials token source with its cache.
pub struct OAuthClient {
    client: Client,
    request: TokenRequest,
    current: arc_swap::ArcSwapOption<Token>,
    refresh: tokio::sync::Mutex<Option<Failure>>,
    generation: AtomicU64,
}

/// The last failed token request: callers that were waiting for it share its answer instead of
/// each asking a failing endpoint in turn.
struct Failure {
    at: Instant,
    error: CallError,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("path", &self.request.path)
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// A token source asking `client` (the token endpoint) with `request`.
    pub fn new(client: Client, request: TokenRequest) -> Self {
        OAuthClient {
            client,
            request,
            current: arc_swap::ArcSwapOption::empty(),
            refresh: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }

    /// A token that is not about to expire (fetched when there is none).
    pub async fn token(&self) -> Result<Arc<Token>, CallError> {
        self.token_replacing(None).await
    }

    /// A token other than the one of generation `refused` (which the backend rejected).
    pub async fn replace(&self, refused: u64) -> Result<Arc<Token>, CallError> {
        self.token_replacing(Some(refused)).await
    }

    async fn token_replacing(&self, refused: Option<u64>) -> Result<Arc<Token>, CallError> {
        let usable = |t: &Arc<Token>| t.fresh(Instant::now()) && Some(t.generation) != refused;
        if let Some(t) = self.current.load_full().filter(usable) {
            return Ok(t);
        }
        // One caller asks the endpoint; the others wait here and then use its answer.
        let waited_from = Instant::now();
        let mut last_failure = self.refresh.lock().await;
        if let Some(t) = self.current.load_full().filter(usable) {
            return Ok(t);
        }
        if let Some(f) = last_failure.as_ref().filter(|f| f.at >= waited_from) {
            return Err(f.error.clone());
        }
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        match self.fetch(generation).await {
            Ok(token) => {
                let token = Arc::new(token);
                self.current.store(Some(token.clone()));
                *last_failure = None;
                Ok(token)
            }
            Err(error) => {
                *last_failure = Some(Failure {
                    at: Instant::now(),
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    async fn fetch(&self, generation: u64) -> Result<Token, CallError> {
        let mut headers = vec![
            (
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            ),
            (
                http::header::ACCEPT,
                HeaderValue::from_static("application/json"),
            ),
        ];
        if let Some(b) = &self.request.basic {
            headers.push((http::header::AUTHORIZATION, b.clone()));
        }
        let req = Request {
            method: Method::POST,
            target: self.request.path.clone(),
            headers,
            body: Some(self.request.form.clone()),
        };
        let started = Instant::now();
        let resp =
            self.client.send(&req).await.map_err(|e| {
                CallError::Credential(format!("the OAuth token endpoint failed: {e}"))
            })?;
        if !(200..300).contains(&resp.status) {
            return Err(CallError::Credential(format!(
                "the OAuth token endpoint answered {}{}",
                resp.status,
                oauth_error(&resp.body)
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )));
        }
        let token = parse_token(&resp.body, started, generation)
            .map_err(|e| CallError::Credential(e.to_string()))?;
        tracing::debug!(generation, "obtained a backend access token");
        Ok(token)
    }
}

/// The `error` code of an RFC 6749 error answer (a fixed vocabulary, safe to show).
fn oauth_error(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = v.get("error")?.as_str()?;
    code.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then(|| code.chars().take(64).collect())
}

/// Reads a token answer received at `asked` (the lifetime counts from the request, so a slow
/// endpoint never makes a token outlive its expiry). Without `expires_in` the token is used
/// until the backend refuses it.
pub fn parse_token(
    body: &[u8],
    asked: Instant,
    generation: u64,
) -> Result<Token, TokenAnswerError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| TokenAnswerError::NotJson)?;
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(TokenAnswerError::NoAccessToken)?;
    if let Some(kind) = v.get("token_type").and_then(Value::as_str) {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(TokenAnswerError::NotBearer(kind.chars().take(20).collect()));
        }
    }
    let lifetime = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite() && *s >= 0.0)
    .map(|s| Duration::from_secs_f64(s.min(1e9)));
    let renew_at = lifetime.map(|l| asked + l - (l / 10).min(RENEW_MARGIN));
    let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| TokenAnswerError::NotHeader)?;
    header.set_sensitive(true);
    Ok(Token {
        header,
        generation,
        renew_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_token_answers() {
        let now = Instant::now();
        let t = parse_token(
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
            now,
            1,
        )
        .unwrap();
        assert_eq!(t.header, "Bearer abc");
        assert!(t.header.is_sensitive());
        assert_eq!(t.renew_at, Some(now + Duration::from_secs(3570)));
        assert!(t.fresh(now + Duration::from_secs(3569)));
        assert!(!t.fresh(now + Duration::from_secs(3571)));
        let short = parse_token(br#"{"access_token":"a","expires_in":"2"}"#, now, 1).unwrap();
        assert_eq!(short.renew_at, Some(now + Duration::from_millis(1800)));
        let forever = parse_token(br#"{"access_token":"a"}"#, now, 1).unwrap();
        assert!(forever.fresh(now + Duration::from_secs(1 << 30)));
        let refused = |body: &[u8]| parse_token(body, now, 1).unwrap_err();
        assert_eq!(
            refused(br#"{"token_type":"bearer"}"#),
            TokenAnswerError::NoAccessToken
        );
        assert_eq!(
            refused(br#"{"access_token":"a","token_type":"mac"}"#).to_string(),
            r#"the OAuth token endpoint issued a "mac" token; only bearer tokens are supported"#
        );
        assert_eq!(refused(b"<html>"), TokenAnswerError::NotJson);
    }

    #[test]
    fn debug_never_shows_the_token_or_the_secret() {
        let t = parse_token(br#"{"access_token":"tok-SECRET"}"#, Instant::now(), 1).unwrap();
        assert!(!format!("{t:?}").contains("SECRET"));
        let r = TokenRequest::new("/t", "id", "pw-SECRET", Some("a b"), None, false).unwrap();
        assert!(r.basic.as_ref().unwrap().is_sensitive());
        assert_eq!(format!("{:?}", r.basic.unwrap()), "Sensitive");
        assert_eq!(r.form, "grant_type=client_credentials&scope=a+b");
    }

    #[test]
    fn client_secret_post_and_error_codes() {
        let r = TokenRequest::new("/t", "id 1", "s&x", None, Some("api"), true).unwrap();
        assert!(r.basic.is_none());
        assert_eq!(
            r.form,
            "grant_type=client_credentials&audience=api&client_id=id+1&client_secret=s%26x"
        );
        assert_eq!(
            oauth_error(br#"{"error":"invalid_client","error_description":"x"}"#).as_deref(),
            Some("invalid_client")
        );
        assert_eq!(oauth_error(br#"{"error":"<script>"}"#), None);
    }
}
