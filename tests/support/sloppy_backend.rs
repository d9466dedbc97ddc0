//! "sloppy": a deliberately lenient legacy app for the guard's identity tests, the kind of
//! backend scimgate is put in front of. Its scimgate config is `tests/fixtures/sloppy.toml`.
//!
//! How it decides who is calling, first match wins:
//! 1. the gateway's service token (`X-Service-Token`): full access;
//! 2. a trusted `X-User-Id` header in any spelling (`X_User_Id`, `x_user_id`: CGI style);
//! 3. a JWT in the query string (`access_token=` or `token=`);
//! 4. a JWT bearer token in `Authorization` (HS256, the secret of [`JWT_SECRET_ENV`]; `exp` and
//!    `nbf` are not checked; a repeated claim name keeps its **first** value);
//! 5. the `sid` session cookie.
//!
//! User ids are read leniently: trimmed, fullwidth characters folded to ASCII, numbers in any
//! notation (`02`, `+2`, `2.0`, `2e0`) read as the integer, other ids compared ignoring case.
//!
//! Routes (JSON): `GET|POST /api/users` (service only; `?email=` filters), `GET|PATCH|DELETE
//! /api/users/{id}` (PATCH by the service or by the user themself), `GET /api/me`,
//! `PUT /api/me/password` `{"password"}`, `DELETE /api/teams/{team}/members/{member}` (`me`, or
//! an id; by the member themself or an admin of the team), `POST /api/login` `{"email",
//! "password"}` → `{"sid"}`.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE};
use http::{HeaderMap, Method, Response, StatusCode};
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{json, Map, Value};

/// The service token the gateway sends (`[backend.auth]` of the fixture).
pub const SERVICE_TOKEN: &str = "sloppy-service-token";
/// The variable holding the HS256 secret shared by the app and the gateway.
pub const JWT_SECRET_ENV: &str = "SCIMGATE_SLOPPY_JWT_SECRET";
/// Its value in the tests.
pub const JWT_SECRET: &str = "sloppy-jwt-secret-for-tests";

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub password: String,
    pub team: Option<String>,
    pub admin: bool,
    pub active: bool,
    pub given: String,
    pub family: String,
}

impl Account {
    fn json(&self) -> Value {
        json!({"id": self.id, "email": self.email, "team": self.team, "admin": self.admin,
               "active": self.active, "given": self.given, "family": self.family})
    }
}

#[derive(Default)]
struct State {
    accounts: Vec<Account>,
    sessions: BTreeMap<String, String>,
    next_id: u64,
    forced_id: Option<String>,
    /// Header names (as sent) of every request, in order.
    seen_headers: Vec<Vec<String>>,
}

/// The app's state; clones share it.
#[derive(Clone, Default)]
pub struct SloppyBackend {
    state: Arc<Mutex<State>>,
}

impl SloppyBackend {
    /// An app with one team admin (`admin@acme.test`, id `1`, team `acme`).
    pub fn new() -> Self {
        let backend = SloppyBackend::default();
        backend.state().next_id = 1;
        backend.add("admin@acme.test", Some("acme"), true);
        backend
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pingora service answering on `addr`.
    pub fn service(&self, addr: &str) -> impl pingora::services::Service + 'static {
        let app = HttpServer::new_app(SloppyApp {
            backend: self.clone(),
        });
        let mut service = Service::new("sloppy backend".to_owned(), app);
        service.add_tcp(addr);
        service
    }

    /// Adds an account as the app itself would (not SCIM-managed); answers its id.
    pub fn add(&self, email: &str, team: Option<&str>, admin: bool) -> String {
        let mut s = self.state();
        let id = match s.forced_id.take() {
            Some(id) => id,
            None => {
                s.next_id += 1;
                (s.next_id - 1).to_string()
            }
        };
        s.accounts.push(Account {
            id: id.clone(),
            email: email.into(),
            password: "initial".into(),
            team: team.map(str::to_string),
            admin,
            active: true,
            given: String::new(),
            family: String::new(),
        });
        id
    }

    /// The next account created gets this id (`usr_dave`) instead of a number.
    pub fn force_next_id(&self, id: &str) {
        self.state().forced_id = Some(id.into());
    }

    /// The account `id`, exactly as stored.
    pub fn account(&self, id: &str) -> Account {
        self.state()
            .accounts
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("no account {id}"))
    }

    /// Opens a session for `id`; answers the `sid` cookie value.
    pub fn session_for(&self, id: &str) -> String {
        let sid = format!("sid-{id}-{}", self.state().sessions.len());
        self.state().sessions.insert(sid.clone(), id.into());
        sid
    }

    /// The header names of every request received since the last call.
    pub fn take_seen_headers(&self) -> Vec<Vec<String>> {
        std::mem::take(&mut self.state().seen_headers)
    }

    fn handle(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let mut s = self.state();
        s.seen_headers
            .push(headers.keys().map(|k| k.as_str().to_string()).collect());
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let caller = caller(&s, headers, query);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let err = |status: StatusCode, code: &str| (status, json!({"error": code}));
        let Some(caller) = caller else {
            return err(StatusCode::UNAUTHORIZED, "unauthenticated");
        };
        let service = matches!(caller, Caller::Service);
        let me = match &caller {
            Caller::User(id) => Some(id.clone()),
            Caller::Service => None,
        };
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["api", "users"]) if service => {
                let email = form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "email")
                    .map(|(_, v)| v.to_lowercase());
                let users: Vec<Value> = s
                    .accounts
                    .iter()
                    .filter(|a| email.as_ref().is_none_or(|e| a.email.to_lowercase() == *e))
                    .map(Account::json)
                    .collect();
                (
                    StatusCode::OK,
                    json!({"users": users, "total": users.len()}),
                )
            }
            ("POST", ["api", "users"]) if service => {
                let email = body["email"].as_str().unwrap_or_default().to_string();
                if s.accounts
                    .iter()
                    .any(|a| a.email.eq_ignore_ascii_case(&email))
                {
                    return err(StatusCode::CONFLICT, "taken");
                }
                drop(s);
                let id = self.add(&email, Some("acme"), false);
                let mut s = self.state();
                let a = s.accounts.iter_mut().find(|a| a.id == id).expect("added");
                apply(a, &body);
                (StatusCode::CREATED, a.json())
            }
            (m, ["api", "users", id]) => {
                let target = lenient_id(id);
                let Some(index) = s
                    .accounts
                    .iter()
                    .position(|a| a.id.to_lowercase() == target)
                else {
                    return err(StatusCode::NOT_FOUND, "not_found");
                };
                let own = me.as_deref() == Some(s.accounts[index].id.as_str());
                match m {
                    "GET" if service || own => (StatusCode::OK, s.accounts[index].json()),
                    "PATCH" if service || own => {
                        apply(&mut s.accounts[index], &body);
                        (StatusCode::OK, s.accounts[index].json())
                    }
                    "DELETE" if service => {
                        s.accounts.remove(index);
                        (StatusCode::NO_CONTENT, Value::Null)
                    }
                    _ => err(StatusCode::FORBIDDEN, "forbidden"),
                }
            }
            ("GET", ["api", "me"]) => {
                match me.and_then(|id| s.accounts.iter().find(|a| a.id == id)) {
                    Some(a) => (StatusCode::OK, a.json()),
                    None => err(StatusCode::UNAUTHORIZED, "unauthenticated"),
                }
            }
            ("PUT", ["api", "me", "password"]) => {
                let Some(a) = me.and_then(|id| s.accounts.iter_mut().find(|a| a.id == id)) else {
                    return err(StatusCode::FORBIDDEN, "forbidden");
                };
                a.password = body["password"].as_str().unwrap_or_default().to_string();
                (StatusCode::NO_CONTENT, Value::Null)
            }
            ("DELETE", ["api", "teams", team, "members", member]) => {
                let target = if member.eq_ignore_ascii_case("me") {
                    me.clone().unwrap_or_default()
                } else {
                    lenient_id(member)
                };
                let admin = service
                    || me.as_ref().is_some_and(|id| {
                        s.accounts
                            .iter()
                            .any(|a| &a.id == id && a.admin && a.team.as_deref() == Some(*team))
                    });
                let Some(a) = s
                    .accounts
                    .iter_mut()
                    .find(|a| a.id.to_lowercase() == target && a.team.as_deref() == Some(*team))
                else {
                    return err(StatusCode::NOT_FOUND, "not_found");
                };
                if !(admin || me.as_deref() == Some(a.id.as_str())) {
                    return err(StatusCode::FORBIDDEN, "forbidden");
                }
                a.team = None;
                (StatusCode::NO_CONTENT, Value::Null)
            }
            _ => err(StatusCode::NOT_FOUND, "not_found"),
        }
    }
}

/// Who the app thinks is calling.
enum Caller {
    Service,
    User(String),
}

fn caller(s: &State, headers: &HeaderMap, query: &str) -> Option<Caller> {
    if headers.get("x-service-token").and_then(|v| v.to_str().ok()) == Some(SERVICE_TOKEN) {
        return Some(Caller::Service);
    }
    let known = |raw: &str| {
        let id = lenient_id(raw);
        s.accounts
            .iter()
            .find(|a| a.id.to_lowercase() == id)
            .map(|a| Caller::User(a.id.clone()))
    };
    let trusted = headers
        .iter()
        .filter(|(k, _)| k.as_str().replace('_', "-") == "x-user-id")
        .filter_map(|(_, v)| v.to_str().ok())
        .last();
    if let Some(raw) = trusted {
        return known(raw);
    }
    let in_query = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "access_token" || k == "token")
        .map(|(_, v)| v.into_owned());
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    if let Some(token) = in_query.or(bearer) {
        return jwt_subject(&token).and_then(|sub| known(&sub));
    }
    let cookies = headers
        .get(COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    cookies
        .split(';')
        .filter_map(|c| c.trim().strip_prefix("sid="))
        .find_map(|sid| s.sessions.get(sid))
        .map(|id| Caller::User(id.clone()))
}

/// The `sub` of an HS256 token signed with the shared secret; times are not checked, and a
/// repeated claim keeps its first value.
fn jwt_subject(token: &str) -> Option<String> {
    use base64::Engine;
    let (message, signature) = token.rsplit_once('.')?;
    let payload = message.split('.').nth(1)?;
    let secret = std::env::var(JWT_SECRET_ENV).ok()?;
    let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
    let valid = jsonwebtoken::crypto::verify(
        signature,
        message.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::HS256,
    )
    .ok()?;
    if !valid {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let FirstWins(claims) = serde_json::from_slice(&bytes).ok()?;
    match claims.get("sub")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A JSON object whose repeated names keep their first value.
struct FirstWins(Map<String, Value>);

impl<'de> Deserialize<'de> for FirstWins {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FirstWins;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FirstWins, A::Error> {
                let mut out = Map::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    let k = k.to_lowercase();
                    out.entry(k).or_insert(v);
                }
                Ok(FirstWins(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// An id as a lenient app reads it: trimmed, fullwidth folded, any number notation read as the
/// integer, otherwise lower case.
pub fn lenient_id(raw: &str) -> String {
    let folded: String = raw
        .trim()
        .chars()
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect();
    match folded.parse::<f64>() {
        Ok(n) if n.fract() == 0.0 && n >= 0.0 => (n as u64).to_string(),
        _ => folded.to_lowercase(),
    }
}

fn apply(a: &mut Account, body: &Value) {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(v) = text("email") {
        a.email = v;
    }
    if let Some(v) = text("given") {
        a.given = v;
    }
    if let Some(v) = text("family") {
        a.family = v;
    }
    if let Some(v) = body.get("active").and_then(Value::as_bool) {
        a.active = v;
    }
}

struct SloppyApp {
    backend: SloppyBackend,
}

#[async_trait]
impl ServeHttp for SloppyApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            body.extend_from_slice(&chunk);
        }
        let header = session.req_header();
        let (status, value) = self.backend.handle(
            &header.method,
            header.uri.path(),
            header.uri.query().unwrap_or(""),
            &header.headers,
            &body,
        );
        let bytes = if status == StatusCode::NO_CONTENT {
            Vec::new()
        } else {
            value.to_string().into_bytes()
        };
        let len = bytes.len();
        let mut response = Response::new(bytes);
        *response.status_mut() = status;
        if status != StatusCode::NO_CONTENT {
            let h = response.headers_mut();
            h.insert(CONTENT_LENGTH, HeaderValue::from(len));
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        response
    }
}
