//! "shapes": an in-memory people API shaped the way many legacy user services are, for the
//! integration tests and the conformance run (`examples/shapes_backend.rs`); its scimgate config
//! is `tests/fixtures/shapes.toml`.
//!
//! A person is a free-form JSON object kept exactly as written, except what the service owns:
//! `id` (`"p-<n>"`), `created_ms` and `updated_ms` (epoch milliseconds), and a `"verified": false`
//! it adds to every `contacts.emails` element that lacks one. Contacts are lists of objects
//! (`contacts.emails`: `address`, `kind` = `WORK`/`HOME`/`OTHER`, `is_primary`; `contacts.phones`:
//! `number`, `label`), enumerations are words (`kind` = `EMP`/`CON`, `status` =
//! `ACTIVE`/`DISABLED`, `locale` = `en_US`), the name is one `full_name`.
//!
//! Routes (`{org}` is any organisation name, each has its own people):
//! - `GET /v3/orgs/{org}/people?offset=&limit=&login=` → `{"people":[..],"count":N}` (`login`
//!   matches ignoring case; creation order)
//! - `POST /v3/orgs/{org}/people` `{..}` → 201 `{"person":{..}}`
//! - `GET /v3/orgs/{org}/people/{id}` → `{"person":{..}}`
//! - `PUT /v3/orgs/{org}/people/{id}` `{..}` → the body becomes the whole person (fields it lacks
//!   are gone), `{"person":{..}}`
//! - `DELETE /v3/orgs/{org}/people/{id}` → 204
//!
//! Errors are `{"error": code}`: 409 `login_taken`, 400 `invalid` (no `login` string, or a body
//! that is not an object), 404 `not_found`.

// Each binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use serde_json::{json, Map, Value};

/// Largest accepted request body.
const MAX_BODY_BYTES: usize = 1 << 20;

/// The shapes backend's state. Cheap to clone; clones share the state.
#[derive(Clone, Default)]
pub struct ShapesBackend {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    people: Vec<Person>,
    next_id: u64,
    /// The last `updated_ms` handed out, so that every change gets a later time.
    clock_ms: i64,
    /// `METHOD /route/{id}` of every request, in order.
    log: Vec<String>,
}

struct Person {
    org: String,
    object: Map<String, Value>,
}

impl Person {
    fn id(&self) -> &str {
        self.object.get("id").and_then(Value::as_str).unwrap_or("")
    }

    fn login(&self) -> Option<String> {
        login_of(&self.object)
    }
}

impl ShapesBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// A pingora service answering the API over plain HTTP on `addr`.
    pub fn service(&self, addr: &str) -> impl pingora::services::Service + 'static {
        let app = HttpServer::new_app(ShapesApp {
            backend: self.clone(),
        });
        let mut service = Service::new("shapes backend".to_owned(), app);
        service.add_tcp(addr);
        service
    }

    /// Creates a person as the service itself would; answers it as stored.
    pub fn seed(&self, org: &str, object: Value) -> Value {
        let Value::Object(object) = object else {
            panic!("seed needs an object");
        };
        let mut state = self.state();
        let person = insert(&mut state, org, object);
        Value::Object(person.object.clone())
    }

    /// Person `id` exactly as stored.
    pub fn person(&self, org: &str, id: &str) -> Value {
        let state = self.state();
        let person = state
            .people
            .iter()
            .find(|p| p.org == org && p.id() == id)
            .unwrap_or_else(|| panic!("no person {id}"));
        Value::Object(person.object.clone())
    }

    /// Every person of `org`, in creation order.
    pub fn people(&self, org: &str) -> Vec<Value> {
        let state = self.state();
        state
            .people
            .iter()
            .filter(|p| p.org == org)
            .map(|p| Value::Object(p.object.clone()))
            .collect()
    }

    /// Changes person `id` as the service's own app would (a later `updated_ms`, unless `change`
    /// sets one).
    pub fn app_update(&self, org: &str, id: &str, change: impl FnOnce(&mut Map<String, Value>)) {
        let mut state = self.state();
        let now = tick(&mut state);
        let person = state
            .people
            .iter_mut()
            .find(|p| p.org == org && p.id() == id)
            .unwrap_or_else(|| panic!("no person {id}"));
        person.object.insert("updated_ms".into(), json!(now));
        change(&mut person.object);
    }

    /// `METHOD route` of every request so far (`PUT /v3/orgs/{org}/people/{id}`).
    pub fn requests(&self) -> Vec<String> {
        self.state().log.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handle(&self, method: &Method, path: &str, query: &str, body: &[u8]) -> Reply {
        let mut state = self.state();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let route = match segments.as_slice() {
            ["v3", "orgs", _, "people"] => "/v3/orgs/{org}/people",
            ["v3", "orgs", _, "people", _] => "/v3/orgs/{org}/people/{id}",
            _ => "unknown",
        };
        state.log.push(format!("{method} {route}"));
        match (method, segments.as_slice()) {
            (&Method::GET, ["v3", "orgs", org, "people"]) => list(&state, org, query),
            (&Method::POST, ["v3", "orgs", org, "people"]) => match object_of(body) {
                Ok(object) => create(&mut state, org, object),
                Err(reply) => reply,
            },
            (m, ["v3", "orgs", org, "people", id]) => item(&mut state, m, org, id, body),
            _ => Reply::error(StatusCode::NOT_FOUND, "not_found"),
        }
    }
}

/// The next `updated_ms`: now, or one past the last one handed out.
fn tick(state: &mut State) -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    state.clock_ms = (now as i64).max(state.clock_ms + 1);
    state.clock_ms
}

/// Adds what the service owns to a person it is about to store.
fn stamp(object: &mut Map<String, Value>, now: i64) {
    object.insert("updated_ms".into(), json!(now));
    let emails = object
        .get_mut("contacts")
        .and_then(|c| c.get_mut("emails"))
        .and_then(Value::as_array_mut);
    for email in emails.into_iter().flatten() {
        if let Some(e) = email.as_object_mut() {
            e.entry("verified").or_insert(Value::Bool(false));
        }
    }
}

fn insert<'a>(state: &'a mut State, org: &str, mut object: Map<String, Value>) -> &'a Person {
    state.next_id += 1;
    let now = tick(state);
    let id = format!("p-{}", state.next_id);
    object.insert("id".into(), Value::String(id));
    object.insert("created_ms".into(), json!(now));
    stamp(&mut object, now);
    state.people.push(Person {
        org: org.to_owned(),
        object,
    });
    &state.people[state.people.len() - 1]
}

fn login_of(object: &Map<String, Value>) -> Option<String> {
    object
        .get("login")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .map(str::to_lowercase)
}

fn taken(state: &State, org: &str, login: &str, except: Option<&str>) -> bool {
    state
        .people
        .iter()
        .any(|p| p.org == org && Some(p.id()) != except && p.login().as_deref() == Some(login))
}

fn object_of(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) if login_of(&o).is_some() => Ok(o),
        _ => Err(Reply::error(StatusCode::BAD_REQUEST, "invalid")),
    }
}

fn list(state: &State, org: &str, query: &str) -> Reply {
    let (mut offset, mut limit, mut login) = (0usize, 25usize, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "offset" => offset = v.parse().unwrap_or(0),
            "limit" => limit = v.parse::<usize>().unwrap_or(25).min(100),
            "login" => login = Some(v.to_lowercase()),
            _ => {}
        }
    }
    let matching: Vec<&Person> = state
        .people
        .iter()
        .filter(|p| p.org == org && (login.is_none() || p.login() == login))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|p| Value::Object(p.object.clone()))
        .collect();
    Reply::ok(json!({"people": page, "count": matching.len()}))
}

fn create(state: &mut State, org: &str, object: Map<String, Value>) -> Reply {
    let login = login_of(&object).unwrap_or_default();
    if taken(state, org, &login, None) {
        return Reply::error(StatusCode::CONFLICT, "login_taken");
    }
    let person = insert(state, org, object);
    Reply::person(StatusCode::CREATED, person)
}

fn item(state: &mut State, method: &Method, org: &str, id: &str, body: &[u8]) -> Reply {
    let Some(at) = state
        .people
        .iter()
        .position(|p| p.org == org && p.id() == id)
    else {
        return Reply::error(StatusCode::NOT_FOUND, "not_found");
    };
    match *method {
        Method::GET => Reply::person(StatusCode::OK, &state.people[at]),
        Method::DELETE => {
            state.people.remove(at);
            Reply {
                status: StatusCode::NO_CONTENT,
                body: None,
            }
        }
        Method::PUT => {
            let mut object = match object_of(body) {
                Ok(o) => o,
                Err(reply) => return reply,
            };
            if taken(state, org, &login_of(&object).unwrap_or_default(), Some(id)) {
                return Reply::error(StatusCode::CONFLICT, "login_taken");
            }
            let now = tick(state);
            let created = state.people[at].object.get("created_ms").cloned();
            object.insert("id".into(), Value::String(id.to_owned()));
            object.insert("created_ms".into(), created.unwrap_or(json!(now)));
            stamp(&mut object, now);
            state.people[at].object = object;
            Reply::person(StatusCode::OK, &state.people[at])
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

    fn person(status: StatusCode, person: &Person) -> Reply {
        Reply {
            status,
            body: Some(json!({"person": person.object})),
        }
    }

    fn error(status: StatusCode, code: &str) -> Reply {
        Reply {
            status,
            body: Some(json!({"error": code})),
        }
    }
}

/// The API as a pingora [`ServeHttp`] application.
struct ShapesApp {
    backend: ShapesBackend,
}

#[async_trait]
impl ServeHttp for ShapesApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        let failed = loop {
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
        let reply = failed.unwrap_or_else(|| {
            self.backend.handle(
                &header.method,
                header.uri.path(),
                header.uri.query().unwrap_or(""),
                &body,
            )
        });
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
