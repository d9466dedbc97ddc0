//! A local OAuth 2.0 token endpoint (client credentials grant) for the backend-credential tests:
//! it checks the client's id and secret, issues `tok-<n>-<random>` tokens with a configurable
//! lifetime, counts the requests, and tells the backend fixture which tokens are valid (a
//! token can be revoked to make the backend answer 401).

use async_trait::async_trait;
use base64::Engine;
use http::{Response, StatusCode};
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

/// The endpoint's path.
pub const TOKEN_PATH: &str = "/oauth2/token";

/// The endpoint's state; clones share it.
#[derive(Clone)]
pub struct TokenEndpoint {
    inner: Arc<Inner>,
}

struct Inner {
    client_id: String,
    secret: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    requests: usize,
    issued: usize,
    expires_in: Option<u64>,
    valid: HashSet<String>,
    all: Vec<String>,
    forms: Vec<BTreeMap<String, String>>,
}

impl TokenEndpoint {
    /// An endpoint accepting `client_id`/`secret` (Basic or in the form), issuing tokens
    /// that live an hour.
    pub fn new(client_id: &str, secret: &str) -> TokenEndpoint {
        TokenEndpoint {
            inner: Arc::new(Inner {
                client_id: client_id.into(),
                secret: secret.into(),
                state: Mutex::new(State {
                    expires_in: Some(3600),
                    ..State::default()
                }),
            }),
        }
    }

    /// The plain-HTTP service on `addr`.
    pub fn service(&self, addr: &str) -> impl pingora::services::Service + 'static {
        let mut service = Service::new(
            "token endpoint".to_owned(),
            HttpServer::new_app(self.clone()),
        );
        service.add_tcp(addr);
        service
    }

    /// Lifetime (`expires_in`) of the tokens issued from now on; `None` leaves it out.
    pub fn set_expires_in(&self, seconds: Option<u64>) {
        self.state().expires_in = seconds;
    }

    /// Token requests received (good or bad).
    pub fn requests(&self) -> usize {
        self.state().requests
    }

    /// The form fields of every good token request.
    pub fn forms(&self) -> Vec<BTreeMap<String, String>> {
        self.state().forms.clone()
    }

    /// Every token issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.state().all.clone()
    }

    /// Makes every token issued so far invalid.
    pub fn revoke_all(&self) {
        self.state().valid.clear();
    }

    /// Whether `authorization` (`Bearer <token>`) carries a valid token.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| self.state().valid.contains(t))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answer(&self, basic: Option<&str>, body: &[u8]) -> (StatusCode, Value) {
        let mut state = self.state();
        state.requests += 1;
        let form: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let (id, secret) = match basic.and_then(|b| b.strip_prefix("Basic ")) {
            Some(b64) => {
                let pair = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default();
                let (i, s) = pair.split_once(':').unwrap_or_default();
                let dec = |t: &str| {
                    form_urlencoded::parse(format!("x={t}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (dec(i), dec(s))
            }
            None => (
                form.get("client_id").cloned().unwrap_or_default(),
                form.get("client_secret").cloned().unwrap_or_default(),
            ),
        };
        if id != self.inner.client_id || secret != self.inner.secret {
            return (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_client", "error_description": "bad client credentials"}),
            );
        }
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": "unsupported_grant_type"}),
            );
        }
        state.issued += 1;
        let token = format!("tok-{}-{:016x}", state.issued, rand::random::<u64>());
        state.valid.insert(token.clone());
        state.all.push(token.clone());
        state.forms.push(form);
        let mut answer = json!({"access_token": token, "token_type": "Bearer"});
        if let Some(e) = state.expires_in {
            answer["expires_in"] = json!(e);
        }
        (StatusCode::OK, answer)
    }
}

#[async_trait]
impl ServeHttp for TokenEndpoint {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            body.extend_from_slice(&chunk);
        }
        let header = session.req_header();
        let (status, value) =
            if header.method != http::Method::POST || header.uri.path() != TOKEN_PATH {
                (StatusCode::NOT_FOUND, json!({"error": "not_found"}))
            } else {
                let basic = header
                    .headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                self.answer(basic, &body)
            };
        let bytes = value.to_string().into_bytes();
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CONTENT_LENGTH, bytes.len())
            .header(http::header::CACHE_CONTROL, "no-store")
            .body(bytes)
            .expect("response")
    }
}
