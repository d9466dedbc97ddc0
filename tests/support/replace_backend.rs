//! "replace": an in-memory legacy backend for the integration tests whose update is a `PUT` that
//! **replaces the whole user object** and requires optimistic concurrency, and which can limit its
//! callers; its scimgate config is `tests/fixtures/replace.toml`.
//!
//! Users are free-form JSON objects, kept exactly as written (nested objects, arrays, numbers,
//! booleans, nulls, unknown keys, key order); the backend adds only `id`. Every user has a revision,
//! sent as `ETag: "r<rev>"` on every read and write.
//!
//! Routes (`{ws}` is any workspace name, each has its own users):
//! - `GET /api/v2/workspaces/{ws}/users?start=&count=&email=` → `{"items":[..],"total":N}`
//!   (`email` matches ignoring case; creation order)
//! - `POST /api/v2/workspaces/{ws}/users` `{..}` → 201 the user
//! - `GET /api/v2/workspaces/{ws}/users/{id}` → the user
//! - `PUT /api/v2/workspaces/{ws}/users/{id}` `{..}` → the body becomes the whole user (fields it
//!   lacks are gone). `If-Match` is required: 428 without it, 412 when it is not the current ETag.
//! - `DELETE /api/v2/workspaces/{ws}/users/{id}` → 204
//!
//! Errors are `{"errors":[{"code": ..}]}`: 400 `taken` (the email is used in the workspace), 400
//! `invalid` (no email string), 404 `not_found`, 412 `stale`, 428 `if_match_required`, and 429
//! `rate_limited` with `Retry-After: 1` once the per-second quota set by
//! [`ReplaceBackend::limit_per_second`] is used up (a fixed one-second window), or for a request
//! picked with [`ReplaceBackend::throttle_next`] or [`ReplaceBackend::throttle_every`].
//!
//! Test hooks: [`ReplaceBackend::app_update`] changes a user as the app itself would (new
//! revision); [`ReplaceBackend::race_next_put`] makes that change happen when the next `PUT` of a
//! user arrives, between the gateway's read and its write; [`ReplaceBackend::count`] tells how
//! often each outcome happened (`"PUT 412"`, `"POST 201"`, `"429"`, ...).

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MATCH, RETRY_AFTER};
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use serde_json::{json, Map, Value};

/// Largest accepted request body.
const MAX_BODY_BYTES: usize = 1 << 20;

/// The replace backend's state. Cheap to clone; clones share the state.
#[derive(Clone, Default)]
pub struct ReplaceBackend {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    users: Vec<User>,
    next_id: u64,
    /// App-side changes to apply when the next PUT of a user arrives, oldest first.
    races: Vec<(String, Value)>,
    /// Methods whose next request is answered 429, oldest first.
    throttles: Vec<Method>,
    /// Every this-many-th request is answered 429 (none when 0).
    every: usize,
    /// Requests seen, for `every`.
    seen: usize,
    /// Requests allowed per one-second window (unlimited when `None`).
    quota: Option<Quota>,
    /// How often each outcome happened.
    counts: BTreeMap<String, usize>,
}

struct Quota {
    per_second: usize,
    window: Instant,
    used: usize,
}

struct User {
    ws: String,
    id: String,
    rev: u64,
    object: Map<String, Value>,
}

impl User {
    fn etag(&self) -> String {
        format!("\"r{}\"", self.rev)
    }
}

/// A response before it becomes HTTP.
struct Reply {
    status: StatusCode,
    body: Option<Value>,
    etag: Option<String>,
}

impl Reply {
    fn user(status: StatusCode, user: &User) -> Reply {
        Reply {
            status,
            body: Some(Value::Object(user.object.clone())),
            etag: Some(user.etag()),
        }
    }

    fn error(status: StatusCode, code: &str) -> Reply {
        Reply {
            status,
            body: Some(json!({"errors": [{"code": code}]})),
            etag: None,
        }
    }
}

impl ReplaceBackend {
    /// An empty backend without a rate limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// A pingora service answering the API over plain HTTP on `addr`.
    pub fn service(&self, addr: &str) -> impl pingora::services::Service + 'static {
        let app = HttpServer::new_app(ReplaceApp {
            backend: self.clone(),
        });
        let mut service = Service::new("replace backend".to_owned(), app);
        service.add_tcp(addr);
        service
    }

    /// From now on, at most `per_second` requests per one-second window; the rest get 429.
    pub fn limit_per_second(&self, per_second: usize) {
        self.state().quota = Some(Quota {
            per_second,
            window: Instant::now(),
            used: 0,
        });
    }

    /// From now on, every `n`-th request is answered 429 as well, so a test sees throttling
    /// however fast the machine runs (the per-second quota trips only on a fast one).
    pub fn throttle_every(&self, n: usize) {
        self.state().every = n;
    }

    /// Makes the next request with `method` (`"POST"`) answer 429 with `Retry-After: 1`, whatever
    /// the quota. Throttles queue up; each is used once.
    pub fn throttle_next(&self, method: &str) {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        self.state().throttles.push(method);
    }

    /// Creates a user as the app would; answers its id.
    pub fn seed(&self, ws: &str, object: Value) -> String {
        let mut state = self.state();
        let Value::Object(object) = object else {
            panic!("seed needs an object");
        };
        insert(&mut state, ws, object).id.clone()
    }

    /// The user `id` exactly as stored.
    pub fn user(&self, ws: &str, id: &str) -> Value {
        let state = self.state();
        let user = state
            .users
            .iter()
            .find(|u| u.ws == ws && u.id == id)
            .unwrap_or_else(|| panic!("no user {id}"));
        Value::Object(user.object.clone())
    }

    /// Every user of `ws`, in creation order.
    pub fn users(&self, ws: &str) -> Vec<Value> {
        let state = self.state();
        state
            .users
            .iter()
            .filter(|u| u.ws == ws)
            .map(|u| Value::Object(u.object.clone()))
            .collect()
    }

    /// Changes top-level fields of user `id` as the app would (a new revision).
    pub fn app_update(&self, ws: &str, id: &str, change: Value) {
        app_change(&mut self.state(), ws, id, &change);
    }

    /// Makes `change` happen (as [`Self::app_update`]) when the next PUT of user `id` arrives,
    /// before its `If-Match` is checked. Races queue up; each is used once.
    pub fn race_next_put(&self, id: &str, change: Value) {
        self.state().races.push((id.to_owned(), change));
    }

    /// How often `outcome` happened (`"PUT 412"`, `"PUT 428"`, `"POST 201"`, `"429"`, ...).
    pub fn count(&self, outcome: &str) -> usize {
        self.state().counts.get(outcome).copied().unwrap_or(0)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handle(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        if_match: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let mut state = self.state();
        let throttled = match state.throttles.iter().position(|m| m == method) {
            Some(at) => {
                state.throttles.remove(at);
                true
            }
            None => false,
        };
        state.seen += 1;
        let nth = state.every > 0 && state.seen.is_multiple_of(state.every);
        if throttled || nth || over_quota(&mut state) {
            *state.counts.entry("429".into()).or_insert(0) += 1;
            return Reply::error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let reply = match (method, segments.as_slice()) {
            (&Method::GET, ["api", "v2", "workspaces", ws, "users"]) => list(&state, ws, query),
            (&Method::POST, ["api", "v2", "workspaces", ws, "users"]) => {
                create(&mut state, ws, body)
            }
            (m, ["api", "v2", "workspaces", ws, "users", id]) => {
                item(&mut state, m, ws, id, if_match, body)
            }
            _ => Reply::error(StatusCode::NOT_FOUND, "not_found"),
        };
        let key = format!("{method} {}", reply.status.as_u16());
        *state.counts.entry(key).or_insert(0) += 1;
        reply
    }
}

fn over_quota(state: &mut State) -> bool {
    let Some(q) = state.quota.as_mut() else {
        return false;
    };
    if q.window.elapsed().as_secs_f64() >= 1.0 {
        q.window = Instant::now();
        q.used = 0;
    }
    q.used += 1;
    q.used > q.per_second
}

fn insert<'a>(state: &'a mut State, ws: &str, mut object: Map<String, Value>) -> &'a User {
    state.next_id += 1;
    let id = format!("u{}", 1000 + state.next_id);
    object.insert("id".into(), Value::String(id.clone()));
    state.users.push(User {
        ws: ws.to_owned(),
        id,
        rev: 1,
        object,
    });
    &state.users[state.users.len() - 1]
}

fn app_change(state: &mut State, ws: &str, id: &str, change: &Value) {
    let user = state
        .users
        .iter_mut()
        .find(|u| u.ws == ws && u.id == id)
        .unwrap_or_else(|| panic!("no user {id}"));
    if let Some(fields) = change.as_object() {
        for (k, v) in fields {
            user.object.insert(k.clone(), v.clone());
        }
    }
    user.rev += 1;
}

fn email_of(object: &Map<String, Value>) -> Option<String> {
    object
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(str::to_lowercase)
}

fn taken(state: &State, ws: &str, email: &str, except: Option<&str>) -> bool {
    state.users.iter().any(|u| {
        u.ws == ws && Some(u.id.as_str()) != except && email_of(&u.object).as_deref() == Some(email)
    })
}

fn list(state: &State, ws: &str, query: &str) -> Reply {
    let (mut start, mut count, mut email) = (0usize, 20usize, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "start" => start = v.parse().unwrap_or(0),
            "count" => count = v.parse::<usize>().unwrap_or(20).min(100),
            "email" => email = Some(v.to_lowercase()),
            _ => {}
        }
    }
    let matching: Vec<&User> = state
        .users
        .iter()
        .filter(|u| u.ws == ws)
        .filter(|u| email.is_none() || email_of(&u.object) == email)
        .collect();
    let items: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(count)
        .map(|u| Value::Object(u.object.clone()))
        .collect();
    Reply {
        status: StatusCode::OK,
        body: Some(json!({"items": items, "total": matching.len()})),
        etag: None,
    }
}

fn create(state: &mut State, ws: &str, body: &[u8]) -> Reply {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Reply::error(StatusCode::BAD_REQUEST, "invalid");
    };
    let Some(email) = email_of(&object) else {
        return Reply::error(StatusCode::BAD_REQUEST, "invalid");
    };
    if taken(state, ws, &email, None) {
        return Reply::error(StatusCode::BAD_REQUEST, "taken");
    }
    Reply::user(StatusCode::CREATED, insert(state, ws, object))
}

fn item(
    state: &mut State,
    method: &Method,
    ws: &str,
    id: &str,
    if_match: Option<&str>,
    body: &[u8],
) -> Reply {
    if *method == Method::PUT {
        if let Some(at) = state.races.iter().position(|(r, _)| r == id) {
            let (_, change) = state.races.remove(at);
            app_change(state, ws, id, &change);
        }
    }
    let Some(at) = state.users.iter().position(|u| u.ws == ws && u.id == id) else {
        return Reply::error(StatusCode::NOT_FOUND, "not_found");
    };
    match *method {
        Method::GET => Reply::user(StatusCode::OK, &state.users[at]),
        Method::DELETE => {
            state.users.remove(at);
            Reply {
                status: StatusCode::NO_CONTENT,
                body: None,
                etag: None,
            }
        }
        Method::PUT => {
            let Some(tag) = if_match else {
                return Reply::error(StatusCode::PRECONDITION_REQUIRED, "if_match_required");
            };
            if tag != state.users[at].etag() {
                return Reply::error(StatusCode::PRECONDITION_FAILED, "stale");
            }
            let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
                return Reply::error(StatusCode::BAD_REQUEST, "invalid");
            };
            let Some(email) = email_of(&object) else {
                return Reply::error(StatusCode::BAD_REQUEST, "invalid");
            };
            if taken(state, ws, &email, Some(id)) {
                return Reply::error(StatusCode::BAD_REQUEST, "taken");
            }
            object.insert("id".into(), Value::String(id.to_owned()));
            let user = &mut state.users[at];
            user.object = object;
            user.rev += 1;
            Reply::user(StatusCode::OK, user)
        }
        _ => Reply::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    }
}

/// The API as a pingora [`ServeHttp`] application.
struct ReplaceApp {
    backend: ReplaceBackend,
}

#[async_trait]
impl ServeHttp for ReplaceApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        let reply = loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_BODY_BYTES => {
                    body.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => {
                    break Some(Reply::error(StatusCode::PAYLOAD_TOO_LARGE, "too_large"))
                }
                Ok(None) => break None,
                Err(_) => break Some(Reply::error(StatusCode::BAD_REQUEST, "invalid")),
            }
        };
        let header = session.req_header();
        let reply = reply.unwrap_or_else(|| {
            let if_match = header.headers.get(IF_MATCH).and_then(|v| v.to_str().ok());
            self.backend.handle(
                &header.method,
                header.uri.path(),
                header.uri.query().unwrap_or(""),
                if_match,
                &body,
            )
        });
        into_response(reply)
    }
}

/// An HTTP response with `Content-Length` (none for 204), `ETag` and, for 429, `Retry-After`.
fn into_response(reply: Reply) -> Response<Vec<u8>> {
    let body = reply
        .body
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_default();
    let len = body.len();
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    if reply.status != StatusCode::NO_CONTENT {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Some(tag) = reply.etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert(ETAG, tag);
    }
    if reply.status == StatusCode::TOO_MANY_REQUESTS {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
