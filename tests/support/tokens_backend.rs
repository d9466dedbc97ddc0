//! "tokens": an in-memory account API whose list pages by an opaque continuation token, as many
//! modern services do (no offsets, no page numbers), for the cursor paging tests; its scimgate
//! config is `tests/fixtures/tokens.toml`.
//!
//! Routes (`{org}` is any organisation name, each has its own accounts):
//! - `GET /api/{org}/accounts?limit=&page_token=&handle=` → `{"data":[..],"next_page_token":T}`
//!   in ascending id order; `T` is absent on the last page; a token it did not hand out is 400
//!   `bad_token`; `handle` matches ignoring case; `after=ID` (keyset paging) starts after the
//!   account `ID` instead of at a token
//! - `POST /api/{org}/accounts` `{"handle":..,..}` → 201 `{..}` (the account, with its numeric
//!   `id`); 409 `handle_taken`
//! - `GET|PUT|DELETE /api/{org}/accounts/{id}` → `{..}` / 204; 404 `not_found`
//!
//! Errors are `{"error": code}`.

// Each binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use serde_json::{json, Map, Value};

/// Largest page the list answers.
const MAX_LIMIT: usize = 50;

/// The tokens backend's state. Cheap to clone; clones share the state.
#[derive(Clone, Default)]
pub struct TokensBackend {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Accounts by (org, id).
    accounts: BTreeMap<(String, u64), Map<String, Value>>,
    next_id: u64,
    /// Tokens handed out: the last id of the page each follows.
    tokens: BTreeMap<String, u64>,
    /// `METHOD path?query` of every request, in order.
    log: Vec<String>,
}

impl TokensBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// A pingora service answering the API over plain HTTP on `addr`.
    pub fn service(&self, addr: &str) -> impl pingora::services::Service + 'static {
        let app = HttpServer::new_app(TokensApp {
            backend: self.clone(),
        });
        let mut service = Service::new("tokens backend".to_owned(), app);
        service.add_tcp(addr);
        service
    }

    /// Creates an account as the service itself would; answers its id.
    pub fn seed(&self, org: &str, handle: &str) -> String {
        let mut object = Map::new();
        object.insert("handle".into(), json!(handle));
        object.insert("name".into(), json!(handle));
        insert(&mut self.state(), org, object).to_string()
    }

    /// Deletes account `id` as the service's own app would.
    pub fn remove(&self, org: &str, id: &str) {
        let id: u64 = id.parse().expect("numeric id");
        self.state().accounts.remove(&(org.to_owned(), id));
    }

    /// `METHOD path?query` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state().log.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handle(&self, method: &Method, path: &str, query: &str, body: &[u8]) -> Reply {
        let mut state = self.state();
        state.log.push(format!("{method} {path}?{query}"));
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (&Method::GET, ["api", org, "accounts"]) => list(&mut state, org, query),
            (&Method::POST, ["api", org, "accounts"]) => match object_of(body) {
                Some(object) if taken(&state, org, &object, None) => {
                    Reply::error(StatusCode::CONFLICT, "handle_taken")
                }
                Some(object) => {
                    let id = insert(&mut state, org, object);
                    account(&state, org, id, StatusCode::CREATED)
                }
                None => Reply::error(StatusCode::BAD_REQUEST, "invalid"),
            },
            (m, ["api", org, "accounts", id]) => match id.parse::<u64>() {
                Ok(id) => item(&mut state, m, org, id, body),
                Err(_) => Reply::error(StatusCode::NOT_FOUND, "not_found"),
            },
            _ => Reply::error(StatusCode::NOT_FOUND, "not_found"),
        }
    }
}

fn insert(state: &mut State, org: &str, mut object: Map<String, Value>) -> u64 {
    state.next_id += 1;
    let id = state.next_id;
    object.insert("id".into(), json!(id));
    state.accounts.insert((org.to_owned(), id), object);
    id
}

fn handle_of(object: &Map<String, Value>) -> Option<String> {
    object
        .get("handle")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_lowercase)
}

fn taken(state: &State, org: &str, object: &Map<String, Value>, except: Option<u64>) -> bool {
    let handle = handle_of(object);
    state
        .accounts
        .iter()
        .any(|((o, id), a)| o == org && Some(*id) != except && handle_of(a) == handle)
}

fn object_of(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) if handle_of(&o).is_some() => Some(o),
        _ => None,
    }
}

fn list(state: &mut State, org: &str, query: &str) -> Reply {
    let (mut limit, mut after, mut handle) = (20usize, 0u64, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "limit" => limit = v.parse::<usize>().unwrap_or(20).clamp(1, MAX_LIMIT),
            "page_token" => match state.tokens.get(v.as_ref()) {
                Some(last) => after = *last,
                None => return Reply::error(StatusCode::BAD_REQUEST, "bad_token"),
            },
            "after" => after = v.parse().unwrap_or(0),
            "handle" => handle = Some(v.to_lowercase()),
            _ => {}
        }
    }
    let matching: Vec<(u64, &Map<String, Value>)> = state
        .accounts
        .range((org.to_owned(), after + 1)..=(org.to_owned(), u64::MAX))
        .filter(|(_, a)| handle.is_none() || handle_of(a) == handle)
        .map(|((_, id), a)| (*id, a))
        .take(limit + 1)
        .collect();
    let more = matching.len() > limit;
    let page: Vec<Value> = matching
        .iter()
        .take(limit)
        .map(|(_, a)| Value::Object((*a).clone()))
        .collect();
    let mut body = json!({ "data": page });
    if more {
        let last = matching[limit - 1].0;
        let token = format!("pt{:016x}", (last ^ 0x5a5a_5a5a).wrapping_mul(0x9e37_79b9));
        state.tokens.insert(token.clone(), last);
        body["next_page_token"] = json!(token);
    }
    Reply::ok(body)
}

fn account(state: &State, org: &str, id: u64, status: StatusCode) -> Reply {
    match state.accounts.get(&(org.to_owned(), id)) {
        Some(a) => Reply {
            status,
            body: Some(Value::Object(a.clone())),
        },
        None => Reply::error(StatusCode::NOT_FOUND, "not_found"),
    }
}

fn item(state: &mut State, method: &Method, org: &str, id: u64, body: &[u8]) -> Reply {
    let key = (org.to_owned(), id);
    if !state.accounts.contains_key(&key) {
        return Reply::error(StatusCode::NOT_FOUND, "not_found");
    }
    match *method {
        Method::GET => account(state, org, id, StatusCode::OK),
        Method::DELETE => {
            state.accounts.remove(&key);
            Reply {
                status: StatusCode::NO_CONTENT,
                body: None,
            }
        }
        Method::PUT => {
            let Some(mut object) = object_of(body) else {
                return Reply::error(StatusCode::BAD_REQUEST, "invalid");
            };
            if taken(state, org, &object, Some(id)) {
                return Reply::error(StatusCode::CONFLICT, "handle_taken");
            }
            object.insert("id".into(), json!(id));
            state.accounts.insert(key, object);
            account(state, org, id, StatusCode::OK)
        }
        _ => Reply::error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    }
}

/// A response before it becomes HTTP.
struct Reply {
    status: StatusCode,
    body: Option<Value>,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Some(body),
        }
    }

    fn error(status: StatusCode, code: &str) -> Reply {
        Reply {
            status,
            body: Some(json!({ "error": code })),
        }
    }
}

/// The API as a pingora [`ServeHttp`] application.
struct TokensApp {
    backend: TokensBackend,
}

#[async_trait]
impl ServeHttp for TokensApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            body.extend_from_slice(&chunk);
        }
        let header = session.req_header();
        let reply = self.backend.handle(
            &header.method,
            header.uri.path(),
            header.uri.query().unwrap_or(""),
            &body,
        );
        let bytes = reply
            .body
            .map(|v| v.to_string().into_bytes())
            .unwrap_or_default();
        let len = bytes.len();
        let mut response = Response::new(bytes);
        *response.status_mut() = reply.status;
        if reply.status != StatusCode::NO_CONTENT {
            let headers = response.headers_mut();
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        response
    }
}
