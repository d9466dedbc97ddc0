//! "lax": an in-memory backend for the integration tests that does **not** enforce unique emails,
//! so one user per userName is only what the gateway itself guarantees; its scimgate config is
//! `tests/fixtures/lax.toml`. Workspaces count their ids separately, so two tenants share ids
//! and emails (tenant isolation). A `whoami` call and free self-service routes serve the guard,
//! and the tests choose how whoami fails.
//!
//! Routes (`{ws}` is any workspace name):
//! - `GET /v1/{ws}/people?offset=&limit=&email=` → `{"people":[..],"total":N}` (`email` matches
//!   ignoring case; creation order)
//! - `POST /v1/{ws}/people` `{..}` → 201 the person, duplicates accepted; it waits
//!   [`CREATE_DELAY`] first, so concurrent creates overlap
//! - `GET|PATCH|DELETE /v1/{ws}/people/{id}` → the person / the person, top-level keys merged / 204
//! - `GET /v1/whoami` → `{"id","ws"}` of the session in `Authorization: Bearer <session>` (made
//!   with [`LaxBackend::session`]), 401 for any other; or the failure set with
//!   [`LaxBackend::whoami_fails`]
//! - anything else (the self-service routes the guard protects) → 200 `{"ok":true}`
//!
//! Every request is recorded as `"METHOD /path"` ([`LaxBackend::requests`]).

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use serde_json::{json, Map, Value};

/// How long a create waits before it stores the person.
pub const CREATE_DELAY: Duration = Duration::from_millis(30);

/// How whoami answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whoami {
    /// The session's person, or 401.
    Answers,
    /// This status with a JSON error body, whoever asks.
    Status(u16),
    /// Nothing for this long, then the session's person.
    Hangs(Duration),
    /// 200 with a body that is not JSON.
    Garbage,
}

/// The lax backend's state. Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct LaxBackend {
    state: Arc<Mutex<State>>,
}

struct State {
    people: Vec<Person>,
    next_id: HashMap<String, u64>,
    sessions: HashMap<String, (String, String)>,
    whoami: Whoami,
    log: Vec<String>,
}

struct Person {
    ws: String,
    id: String,
    object: Map<String, Value>,
}

impl LaxBackend {
    /// An empty backend whose whoami answers.
    pub fn new() -> Self {
        LaxBackend {
            state: Arc::new(Mutex::new(State {
                people: Vec::new(),
                next_id: HashMap::new(),
                sessions: HashMap::new(),
                whoami: Whoami::Answers,
                log: Vec::new(),
            })),
        }
    }

    /// A pingora service answering the API over plain HTTP on `addr`.
    pub fn service(&self, addr: &str) -> impl pingora::services::Service + 'static {
        let app = HttpServer::new_app(LaxApp {
            backend: self.clone(),
        });
        let mut service = Service::new("lax backend".to_owned(), app);
        service.add_tcp(addr);
        service
    }

    /// Creates a person as the app would; answers its id.
    pub fn seed(&self, ws: &str, object: Value) -> String {
        let Value::Object(object) = object else {
            panic!("seed needs an object");
        };
        insert(&mut self.state(), ws, object)
    }

    /// Every person of `ws`, in creation order.
    pub fn people(&self, ws: &str) -> Vec<Value> {
        self.state()
            .people
            .iter()
            .filter(|p| p.ws == ws)
            .map(|p| Value::Object(p.object.clone()))
            .collect()
    }

    /// The person `id` of `ws`, if there is one.
    pub fn person(&self, ws: &str, id: &str) -> Option<Value> {
        self.state()
            .people
            .iter()
            .find(|p| p.ws == ws && p.id == id)
            .map(|p| Value::Object(p.object.clone()))
    }

    /// A new session of person `id` of `ws`, for `Authorization: Bearer <session>`.
    pub fn session(&self, ws: &str, id: &str) -> String {
        let mut state = self.state();
        let session = format!("session-{ws}-{id}-{}", state.sessions.len());
        state
            .sessions
            .insert(session.clone(), (ws.to_owned(), id.to_owned()));
        session
    }

    /// From now on whoami answers like `how`.
    pub fn whoami_fails(&self, how: Whoami) {
        self.state().whoami = how;
    }

    /// Every request so far, as `"METHOD /path"`.
    pub fn requests(&self) -> Vec<String> {
        self.state().log.clone()
    }

    /// The requests so far whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.split_once(' ')
                    .is_some_and(|(_, p)| p.starts_with(prefix))
            })
            .collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A response before it becomes HTTP.
struct Reply {
    status: StatusCode,
    body: Option<Value>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).expect("status"),
            body: Some(body),
        }
    }

    fn error(status: u16, code: &str) -> Reply {
        Reply::json(status, json!({"error": code}))
    }
}

fn insert(state: &mut State, ws: &str, mut object: Map<String, Value>) -> String {
    let n = state.next_id.entry(ws.to_owned()).or_insert(0);
    *n += 1;
    let id = n.to_string();
    object.insert("id".into(), Value::String(id.clone()));
    object.entry("active").or_insert(Value::Bool(true));
    state.people.push(Person {
        ws: ws.to_owned(),
        id: id.clone(),
        object,
    });
    id
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn list(state: &State, ws: &str, query: Option<&str>) -> Reply {
    let email = query_param(query, "email");
    let number = |key, default| {
        query_param(query, key)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let matching: Vec<Value> = state
        .people
        .iter()
        .filter(|p| p.ws == ws)
        .filter(|p| {
            email.as_deref().is_none_or(|e| {
                p.object["email"]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(e))
            })
        })
        .map(|p| Value::Object(p.object.clone()))
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(number("offset", 0))
        .take(number("limit", 20).min(100))
        .collect();
    Reply::json(200, json!({"people": page, "total": total}))
}

fn people_route(
    state: &mut State,
    method: &Method,
    rest: &str,
    query: Option<&str>,
    body: &[u8],
) -> Reply {
    let parts: Vec<&str> = rest.split('/').collect();
    let parsed = || serde_json::from_slice::<Map<String, Value>>(body).ok();
    match (method.as_str(), parts.as_slice()) {
        ("GET", [ws, "people"]) => list(state, ws, query),
        ("POST", [ws, "people"]) => match parsed() {
            Some(object) => {
                let id = insert(state, ws, object);
                let person = state.people.iter().find(|p| p.ws == *ws && p.id == id);
                Reply::json(201, Value::Object(person.expect("inserted").object.clone()))
            }
            None => Reply::error(400, "invalid"),
        },
        (m, [ws, "people", id]) => {
            let Some(i) = state.people.iter().position(|p| p.ws == *ws && p.id == *id) else {
                return Reply::error(404, "not_found");
            };
            match m {
                "GET" => Reply::json(200, Value::Object(state.people[i].object.clone())),
                "PATCH" => match parsed() {
                    Some(change) => {
                        let object = &mut state.people[i].object;
                        for (k, v) in change.into_iter().filter(|(k, _)| k != "id") {
                            object.insert(k, v);
                        }
                        Reply::json(200, Value::Object(object.clone()))
                    }
                    None => Reply::error(400, "invalid"),
                },
                "DELETE" => {
                    state.people.remove(i);
                    Reply {
                        status: StatusCode::NO_CONTENT,
                        body: None,
                    }
                }
                _ => Reply::error(405, "method_not_allowed"),
            }
        }
        _ => Reply::error(404, "not_found"),
    }
}

fn whoami(state: &State, authorization: Option<&str>) -> Reply {
    match state.whoami {
        Whoami::Status(s) => return Reply::error(s, "whoami_failed"),
        Whoami::Garbage => {
            return Reply {
                status: StatusCode::OK,
                body: Some(Value::String("<html>".into())),
            }
        }
        Whoami::Answers | Whoami::Hangs(_) => {}
    }
    let session = authorization.and_then(|a| a.strip_prefix("Bearer "));
    match session.and_then(|s| state.sessions.get(s)) {
        Some((ws, id)) => Reply::json(200, json!({"id": id, "ws": ws})),
        None => Reply::error(401, "unauthenticated"),
    }
}

/// The lax API as a pingora [`ServeHttp`] application.
struct LaxApp {
    backend: LaxBackend,
}

#[async_trait]
impl ServeHttp for LaxApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            body.extend_from_slice(&chunk);
        }
        let header = session.req_header();
        let (method, path) = (header.method.clone(), header.uri.path().to_owned());
        let query = header.uri.query().map(str::to_owned);
        let authorization = header
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.backend.state().log.push(format!("{method} {path}"));
        let reply = if path == "/v1/whoami" {
            let hang = match self.backend.state().whoami {
                Whoami::Hangs(d) => Some(d),
                _ => None,
            };
            if let Some(d) = hang {
                tokio::time::sleep(d).await;
            }
            whoami(&self.backend.state(), authorization.as_deref())
        } else if let Some(rest) = path.strip_prefix("/v1/").filter(|r| r.contains("/people")) {
            if method == Method::POST {
                tokio::time::sleep(CREATE_DELAY).await;
            }
            let mut state = self.backend.state();
            people_route(&mut state, &method, rest, query.as_deref(), &body)
        } else {
            Reply::json(200, json!({"ok": true}))
        };
        into_response(reply)
    }
}

/// Turns a reply into an HTTP response with `Content-Type` and `Content-Length` (neither for 204).
fn into_response(reply: Reply) -> Response<Vec<u8>> {
    let body = reply
        .body
        .map(|v| match v {
            Value::String(s) => s.into_bytes(),
            other => other.to_string().into_bytes(),
        })
        .unwrap_or_default();
    let len = body.len();
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    if reply.status != StatusCode::NO_CONTENT {
        let headers = response.headers_mut();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}
