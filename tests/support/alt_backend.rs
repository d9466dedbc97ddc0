//! "alt": a second in-memory legacy backend for the integration tests, with an API shaped very
//! differently from the built-in demo, to prove that scimgate needs no backend-specific code —
//! only a config file (`tests/fixtures/alt.toml`).
//!
//! What differs from the demo: string ids (`acc_` + 12 hex digits), an `X-Api-Key` header instead
//! of a bearer token, `offset`/`limit` paging with a `{"data": [...], "meta": {...}}` envelope,
//! request bodies wrapped in `{"account": {...}}`, partial updates with `PATCH`, and `active`
//! changed only through separate `deactivate`/`activate` calls.
//!
//! Routes (JSON in and out; `{org}` is any organisation name, each has its own accounts):
//! - `GET /v1/orgs/{org}/accounts?offset=&limit=&login=&team=` → `{"data":[..],"meta":{"total","offset","limit"}}`
//!   (offset 0 and limit 20 by default, limit clamped to 50; `login` matches exactly, ignoring case;
//!   `team` keeps the accounts whose `team_ids` hold that team id; creation order)
//! - `POST /v1/orgs/{org}/accounts` `{"account":{login,given,family,nick,team_ids}}` → 201 `{"data":{..}}`
//! - `GET|PATCH|DELETE /v1/orgs/{org}/accounts/{id}` → `{"data":{..}}` / `{"data":{..}}` / 204
//! - `POST /v1/orgs/{org}/accounts/{id}/deactivate` and `.../activate` → `{"data":{..}}`
//! - the teams of an organisation, in the same style (see the `teams` module):
//!   `GET|POST /v1/orgs/{org}/teams` and `GET|PATCH|DELETE /v1/orgs/{org}/teams/{id}`
//!
//! Team membership is kept twice, independently, so that configs can use either record: a team's
//! `member_ids` (account ids) and an account's `team_ids` (team ids). Only deletions reach across:
//! deleting a team takes its id out of every account's `team_ids`, deleting an account takes its
//! id out of every team's `member_ids`.
//!
//! Errors are `{"errors":[{"code": ...}]}` (with `"data":null` for `unauthenticated` and
//! `not_found`): 401 `unauthenticated`, 404 `not_found`, 409 `duplicate_login` and
//! `title_taken`, 400 `validation`, `unknown_team` and `unknown_member`,
//! 405 `method_not_allowed`, 413 `too_large`, and `injected` for faults set with
//! [`AltBackend::fail_next`]. [`AltBackend::respond_next`] injects any other answer, and
//! [`AltBackend::delay_next`] holds a request back before answering it.
//!
//! [`AltBackend::check_authorization`] makes an organisation check the `Authorization` header
//! instead (HTTP Basic, OAuth bearer tokens, per organisation), and
//! [`AltBackend::tls_service`] serves the API over TLS (with mTLS when the config asks for it).
//!
//! Every response but 204 carries `Content-Length`, and the request body is always read fully
//! before answering, so pooled keep-alive connections stay in sync.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

#[path = "alt_teams.rs"]
mod teams;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use rand::Rng;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The request header carrying the API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Page size when the list call has no `limit`.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest page the list call serves; larger `limit`s are clamped to it.
pub const MAX_LIMIT: usize = 50;
/// Largest accepted request body; larger ones get 413.
const MAX_BODY_BYTES: usize = 1 << 20;

/// The alt backend's state: its API key, the accounts of every organisation, pending injected
/// faults and the log of requests received. Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct AltBackend {
    inner: Arc<Inner>,
}

struct Inner {
    api_key: String,
    state: Mutex<State>,
}

/// Decides whether an `Authorization` header value (`None` when absent) is accepted.
pub type AuthCheck = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

#[derive(Default)]
struct State {
    /// Every organisation's accounts, in creation order.
    accounts: Vec<Account>,
    /// Every organisation's teams, in creation order.
    teams: Vec<teams::Team>,
    /// Pending faults, oldest first.
    faults: Vec<Fault>,
    /// Pending delays, oldest first.
    delays: Vec<Delay>,
    /// Every request received, in order.
    log: Vec<RecordedRequest>,
    /// Organisations (`"*"`: all) that check `Authorization` instead of the API key.
    auth_checks: Vec<(String, AuthCheck)>,
}

/// One injected fault: the next matching request is answered with `status` and `body`
/// (`{"errors":[{"code":"injected"}]}` when `None`).
struct Fault {
    method: Option<Method>,
    path_contains: String,
    status: u16,
    body: Option<Value>,
}

/// One injected delay: the next matching request is answered `delay` late.
struct Delay {
    path_contains: String,
    delay: Duration,
}

/// One request the backend received, as recorded by [`AltBackend::request_log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The HTTP method (`"PATCH"`).
    pub method: String,
    /// The request path, without the query (`/v1/orgs/globex-org/accounts/acc_0123456789ab`).
    pub path: String,
    /// The raw query string, if any (`offset=0&limit=50&login=ann`).
    pub query: Option<String>,
    /// The route with placeholders (`PATCH /v1/orgs/{org}/accounts/{id}`); the literal path for
    /// requests that match no route.
    pub kind: String,
    /// The status the backend answered.
    pub status: u16,
    /// The `Authorization` header received, if any.
    pub authorization: Option<String>,
}

/// One account.
#[derive(Debug, Clone)]
struct Account {
    id: String,
    org: String,
    login: String,
    given: Option<String>,
    family: Option<String>,
    nick: Option<String>,
    active: bool,
    /// The teams (of the same organisation) the account says it belongs to.
    team_ids: Vec<String>,
    created: String,
    modified: String,
}

impl Account {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "org": self.org,
            "login": self.login,
            "given": self.given,
            "family": self.family,
            "nick": self.nick,
            "active": self.active,
            "team_ids": self.team_ids,
            "created": self.created,
            "modified": self.modified,
        })
    }
}

impl AltBackend {
    /// An empty backend accepting requests whose `X-Api-Key` header equals `api_key`.
    pub fn new(api_key: &str) -> Self {
        AltBackend {
            inner: Arc::new(Inner {
                api_key: api_key.to_owned(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The API key requests must present.
    pub fn api_key(&self) -> &str {
        &self.inner.api_key
    }

    /// A pingora service answering the alt API over plain HTTP on `addr` (`"127.0.0.1:9191"`).
    ///
    /// pingora binds when the server runs, and a failed bind only panics the service's thread:
    /// pick a free port beforehand.
    pub fn service(&self, addr: &str) -> impl pingora::services::Service + 'static {
        let app = HttpServer::new_app(AltApp {
            backend: self.clone(),
        });
        let mut service = Service::new("alt backend".to_owned(), app);
        service.add_tcp(addr);
        service
    }

    /// The same API over TLS, serving the PEM certificate chain and key; with a verifier,
    /// clients must present a certificate it accepts (mTLS).
    pub fn tls_service(
        &self,
        addr: &str,
        cert: &std::path::Path,
        key: &std::path::Path,
        clients: Option<Arc<dyn pingora::tls::ClientCertVerifier>>,
    ) -> impl pingora::services::Service + 'static {
        let app = HttpServer::new_app(AltApp {
            backend: self.clone(),
        });
        let mut service = Service::new("alt backend (TLS)".to_owned(), app);
        let mut settings = pingora::listeners::tls::TlsSettings::intermediate(
            &cert.display().to_string(),
            &key.display().to_string(),
        )
        .expect("TLS settings");
        if let Some(v) = clients {
            settings.set_client_cert_verifier(v);
        }
        service.add_tls_with_settings(addr, None, settings);
        service
    }

    /// Requests for `org` (`"*"`: every organisation) are accepted when `check` accepts their
    /// `Authorization` header, instead of by API key.
    pub fn check_authorization(
        &self,
        org: &str,
        check: impl Fn(Option<&str>) -> bool + Send + Sync + 'static,
    ) {
        let mut state = self.state();
        state.auth_checks.retain(|(o, _)| o != org);
        state.auth_checks.push((org.to_owned(), Arc::new(check)));
    }

    /// The accounts of `org` as the API shows them, in creation order.
    pub fn accounts(&self, org: &str) -> Vec<Value> {
        self.state()
            .accounts
            .iter()
            .filter(|a| a.org == org)
            .map(Account::to_json)
            .collect()
    }

    /// Creates an account directly, as if `POST /v1/orgs/{org}/accounts` had been called with
    /// `{"account": account}` (for users that exist before the gateway sees them). Answers the
    /// new account, or the error code (`duplicate_login`, `validation`).
    pub fn seed(&self, org: &str, account: Value) -> Result<Value, String> {
        let body = json!({ "account": account }).to_string();
        created(create(&mut self.state(), org, body.as_bytes()))
    }

    /// The teams of `org` as the API shows them, in creation order.
    pub fn teams(&self, org: &str) -> Vec<Value> {
        self.state()
            .teams
            .iter()
            .filter(|t| t.org == org)
            .map(teams::Team::to_json)
            .collect()
    }

    /// Creates a team directly, as if `POST /v1/orgs/{org}/teams` had been called with
    /// `{"team": team}`. Answers the new team, or the error code (`title_taken`, `validation`,
    /// `unknown_member`).
    pub fn seed_team(&self, org: &str, team: Value) -> Result<Value, String> {
        let body = json!({ "team": team }).to_string();
        created(teams::create(&mut self.state(), org, body.as_bytes()))
    }

    /// Makes the next request whose path (without query) contains `path_contains` answer
    /// `status` with `{"errors":[{"code":"injected"}]}`, before authentication and without
    /// touching any account. Faults queue up; each is used once. A `status` outside 200..=599
    /// is answered as 500.
    pub fn fail_next(&self, path_contains: &str, status: u16) {
        self.push_fault(None, path_contains, status, None);
    }

    /// Like [`Self::fail_next`], but only for requests with `method` (`"PATCH"`).
    pub fn fail_next_method(&self, method: &str, path_contains: &str, status: u16) {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).ok();
        self.push_fault(method, path_contains, status, None);
    }

    /// Like [`Self::fail_next`], but the answer carries `body` instead of the `injected` error
    /// (for answers that do not match what the gateway's mapping expects). It queues with the
    /// faults of [`Self::fail_next`].
    pub fn respond_next(&self, path_contains: &str, status: u16, body: Value) {
        self.push_fault(None, path_contains, status, Some(body));
    }

    fn push_fault(
        &self,
        method: Option<Method>,
        path_contains: &str,
        status: u16,
        body: Option<Value>,
    ) {
        self.state().faults.push(Fault {
            method,
            path_contains: path_contains.to_owned(),
            status,
            body,
        });
    }

    /// Makes the next request whose path (without query) contains `path_contains` wait `delay`
    /// after its body was read, then be answered as usual (faults included). Delays queue up;
    /// each is used once.
    pub fn delay_next(&self, path_contains: &str, delay: Duration) {
        self.state().delays.push(Delay {
            path_contains: path_contains.to_owned(),
            delay,
        });
    }

    /// Removes and answers the first pending delay for `path`.
    fn take_delay(&self, path: &str) -> Option<Duration> {
        let mut state = self.state();
        let at = state
            .delays
            .iter()
            .position(|d| path.contains(&d.path_contains))?;
        Some(state.delays.remove(at).delay)
    }

    /// Every request received so far, in order, as `"METHOD /path"` (without the query).
    pub fn requests(&self) -> Vec<String> {
        self.state()
            .log
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// Every request received so far, in order, with query, route kind and answered status.
    pub fn request_log(&self) -> Vec<RecordedRequest> {
        self.state().log.clone()
    }

    /// How many requests each route received, keyed by route kind
    /// (`"POST /v1/orgs/{org}/accounts/{id}/deactivate"`).
    pub fn request_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in &self.state().log {
            *counts.entry(r.kind.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Forgets the requests received so far (pending faults stay).
    pub fn clear_requests(&self) {
        self.state().log.clear();
    }

    /// The state; a panic while it was held does not make it unusable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Answers one request whose body has been read (or failed to read).
    fn handle(&self, req: &Incoming<'_>, body: Result<Vec<u8>, Reply>) -> Reply {
        let mut state = self.state();
        let route = Route::parse(req.path);
        let kind = match &route {
            Some(r) => format!("{} {}", req.method, r.kind()),
            None => format!("{} {}", req.method, req.path),
        };
        let reply = match take_fault(&mut state, req) {
            Some((status, body)) => injected(status, body),
            None => match body {
                Err(reply) => reply,
                Ok(_) if !self.authenticated(&state, req) => {
                    missing(StatusCode::UNAUTHORIZED, "unauthenticated")
                }
                Ok(body) => match route {
                    Some(route) => dispatch(&mut state, req, &route, &body),
                    None => missing(StatusCode::NOT_FOUND, "not_found"),
                },
            },
        };
        state.log.push(RecordedRequest {
            method: req.method.to_string(),
            path: req.path.to_owned(),
            query: req.query.map(str::to_owned),
            kind,
            status: reply.status.as_u16(),
            authorization: req.authorization.map(str::to_owned),
        });
        reply
    }

    /// The request's organisation's `Authorization` check, else the API key.
    fn authenticated(&self, state: &State, req: &Incoming<'_>) -> bool {
        let org = req
            .path
            .strip_prefix("/v1/orgs/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        match state.auth_checks.iter().find(|(o, _)| o == org || o == "*") {
            Some((_, check)) => check(req.authorization),
            None => req.api_key == Some(self.inner.api_key.as_str()),
        }
    }
}

impl std::fmt::Debug for AltBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AltBackend").finish_non_exhaustive()
    }
}

/// The parts of a request the API looks at.
struct Incoming<'a> {
    method: &'a Method,
    path: &'a str,
    query: Option<&'a str>,
    api_key: Option<&'a str>,
    authorization: Option<&'a str>,
}

/// A response before it becomes HTTP.
struct Reply {
    status: StatusCode,
    body: Option<Value>,
    allow: Option<&'static str>,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            allow: None,
        }
    }

    fn data(status: StatusCode, account: &Account) -> Reply {
        Reply::json(status, json!({ "data": account.to_json() }))
    }
}

/// The created object of a 201 reply, else the reply's error code.
fn created(reply: Reply) -> Result<Value, String> {
    match reply.body {
        Some(v) if reply.status == StatusCode::CREATED => Ok(v["data"].clone()),
        Some(v) => Err(v["errors"][0]["code"].as_str().unwrap_or("").to_owned()),
        None => Err(String::new()),
    }
}

/// An empty 204 reply.
fn no_content() -> Reply {
    Reply {
        status: StatusCode::NO_CONTENT,
        body: None,
        allow: None,
    }
}

/// `{"errors":[{"code": code}]}`.
fn error(status: StatusCode, code: &str) -> Reply {
    Reply::json(status, json!({ "errors": [{ "code": code }] }))
}

/// `{"data":null,"errors":[{"code": code}]}`, for answers about something that is not there.
fn missing(status: StatusCode, code: &str) -> Reply {
    Reply::json(
        status,
        json!({ "data": null, "errors": [{ "code": code }] }),
    )
}

fn validation() -> Reply {
    error(StatusCode::BAD_REQUEST, "validation")
}

fn injected(status: u16, body: Option<Value>) -> Reply {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::NO_CONTENT {
        return no_content();
    }
    match body {
        Some(body) => Reply::json(status, body),
        None => error(status, "injected"),
    }
}

/// Removes and answers the status and body of the first pending fault matching `req`.
fn take_fault(state: &mut State, req: &Incoming<'_>) -> Option<(u16, Option<Value>)> {
    let at = state.faults.iter().position(|f| {
        f.method.as_ref().is_none_or(|m| m == req.method) && req.path.contains(&f.path_contains)
    })?;
    let fault = state.faults.remove(at);
    Some((fault.status, fault.body))
}

/// The API's routes.
enum Route {
    /// `/v1/orgs/{org}/accounts`
    Collection { org: String },
    /// `/v1/orgs/{org}/accounts/{id}`
    Item { org: String, id: String },
    /// `/v1/orgs/{org}/accounts/{id}/deactivate` (`activate` false) or `/activate` (true).
    SetActive {
        org: String,
        id: String,
        activate: bool,
    },
    /// `/v1/orgs/{org}/teams`
    Teams { org: String },
    /// `/v1/orgs/{org}/teams/{id}`
    Team { org: String, id: String },
}

impl Route {
    fn parse(path: &str) -> Option<Route> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .filter(|d| !d.is_empty())
                .map(|d| d.into_owned())
        };
        match segments.as_slice() {
            ["v1", "orgs", org, "accounts"] => Some(Route::Collection { org: decode(org)? }),
            ["v1", "orgs", org, "accounts", id] => Some(Route::Item {
                org: decode(org)?,
                id: decode(id)?,
            }),
            ["v1", "orgs", org, "accounts", id, action @ ("deactivate" | "activate")] => {
                Some(Route::SetActive {
                    org: decode(org)?,
                    id: decode(id)?,
                    activate: *action == "activate",
                })
            }
            ["v1", "orgs", org, "teams"] => Some(Route::Teams { org: decode(org)? }),
            ["v1", "orgs", org, "teams", id] => Some(Route::Team {
                org: decode(org)?,
                id: decode(id)?,
            }),
            _ => None,
        }
    }

    /// The route with placeholders, for [`RecordedRequest::kind`].
    fn kind(&self) -> &'static str {
        match self {
            Route::Collection { .. } => "/v1/orgs/{org}/accounts",
            Route::Item { .. } => "/v1/orgs/{org}/accounts/{id}",
            Route::SetActive {
                activate: false, ..
            } => "/v1/orgs/{org}/accounts/{id}/deactivate",
            Route::SetActive { activate: true, .. } => "/v1/orgs/{org}/accounts/{id}/activate",
            Route::Teams { .. } => "/v1/orgs/{org}/teams",
            Route::Team { .. } => "/v1/orgs/{org}/teams/{id}",
        }
    }
}

fn dispatch(state: &mut State, req: &Incoming<'_>, route: &Route, body: &[u8]) -> Reply {
    let method = req.method;
    match route {
        Route::Collection { org } if method == Method::GET => list(state, org, req.query),
        Route::Collection { org } if method == Method::POST => create(state, org, body),
        Route::Collection { .. } => not_allowed("GET, POST"),
        Route::Item { org, id } if method == Method::GET => match find(state, org, id) {
            Some(at) => Reply::data(StatusCode::OK, &state.accounts[at]),
            None => missing(StatusCode::NOT_FOUND, "not_found"),
        },
        Route::Item { org, id } if method == Method::PATCH => update(state, org, id, body),
        Route::Item { org, id } if method == Method::DELETE => match find(state, org, id) {
            Some(at) => {
                state.accounts.remove(at);
                teams::forget_member(state, org, id);
                no_content()
            }
            None => missing(StatusCode::NOT_FOUND, "not_found"),
        },
        Route::Item { .. } => not_allowed("GET, PATCH, DELETE"),
        Route::SetActive { org, id, activate } if method == Method::POST => {
            match find(state, org, id) {
                Some(at) => {
                    let account = &mut state.accounts[at];
                    if account.active != *activate {
                        account.active = *activate;
                        account.modified = now();
                    }
                    Reply::data(StatusCode::OK, account)
                }
                None => missing(StatusCode::NOT_FOUND, "not_found"),
            }
        }
        Route::SetActive { .. } => not_allowed("POST"),
        Route::Teams { org } => teams::collection(state, method, org, req.query, body),
        Route::Team { org, id } => teams::item(state, method, org, id, body),
    }
}

fn not_allowed(allow: &'static str) -> Reply {
    let mut reply = error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    reply.allow = Some(allow);
    reply
}

fn find(state: &State, org: &str, id: &str) -> Option<usize> {
    state
        .accounts
        .iter()
        .position(|a| a.org == org && a.id == id)
}

/// True when another account of `org` (not `except`) has `login`, ignoring case.
fn login_taken(state: &State, org: &str, login: &str, except: Option<&str>) -> bool {
    let login = login.to_lowercase();
    state
        .accounts
        .iter()
        .any(|a| a.org == org && Some(a.id.as_str()) != except && a.login.to_lowercase() == login)
}

/// A list call's query: its page and its other parameters.
struct ListQuery {
    offset: usize,
    limit: usize,
    /// The parameters other than `offset` and `limit`, in order.
    params: Vec<(String, String)>,
}

impl ListQuery {
    /// Reads `offset` (default 0) and `limit` (default [`DEFAULT_LIMIT`], clamped to
    /// [`MAX_LIMIT`]); `None` when either is not a number.
    fn parse(query: Option<&str>) -> Option<ListQuery> {
        let mut q = ListQuery {
            offset: 0,
            limit: DEFAULT_LIMIT,
            params: Vec::new(),
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "offset" | "limit" if value.is_empty() => {}
                "offset" => q.offset = value.parse().ok()?,
                "limit" => q.limit = value.parse::<usize>().ok()?.min(MAX_LIMIT),
                _ => q.params.push((key.into_owned(), value.into_owned())),
            }
        }
        Some(q)
    }

    /// The last value of parameter `key`.
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The page of `matching` this query asks for, in the list envelope.
    fn page(&self, matching: &[Value]) -> Reply {
        let data: Vec<&Value> = matching.iter().skip(self.offset).take(self.limit).collect();
        Reply::json(
            StatusCode::OK,
            json!({
                "data": data,
                "meta": { "total": matching.len(), "offset": self.offset, "limit": self.limit },
            }),
        )
    }
}

fn list(state: &State, org: &str, query: Option<&str>) -> Reply {
    let Some(q) = ListQuery::parse(query) else {
        return validation();
    };
    let login = q.param("login").map(str::to_lowercase);
    let team = q.param("team");
    let matching: Vec<Value> = state
        .accounts
        .iter()
        .filter(|a| a.org == org)
        .filter(|a| login.as_ref().is_none_or(|l| a.login.to_lowercase() == *l))
        .filter(|a| team.is_none_or(|t| a.team_ids.iter().any(|id| id == t)))
        .map(Account::to_json)
        .collect();
    q.page(&matching)
}

/// The `account` object of a create or update body.
fn account_input(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(mut o) => match o.remove("account")? {
            Value::Object(account) => Some(account),
            _ => None,
        },
        _ => None,
    }
}

/// A login: a non-blank string.
fn login_value(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// A list of ids: an array of non-empty strings, kept in order without repeats.
fn id_list(v: &Value) -> Option<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for item in v.as_array()? {
        let id = item.as_str().filter(|s| !s.is_empty())?;
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    }
    Some(ids)
}

/// Checks an account's `team_ids` input: `Err` is the reply refusing it (`validation` when it is
/// not a list of ids, `unknown_team` when one is not a team of `org`).
fn team_ids_input(state: &State, org: &str, v: &Value) -> Result<Vec<String>, Reply> {
    let ids = id_list(v).ok_or_else(validation)?;
    if ids.iter().all(|id| teams::find(state, org, id).is_some()) {
        Ok(ids)
    } else {
        Err(error(StatusCode::BAD_REQUEST, "unknown_team"))
    }
}

/// An optional text field: `Ok(None)` for null, `Err` for anything but a string or null.
fn text_value(v: &Value) -> Result<Option<String>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(()),
    }
}

/// The optional text field `key` of `input`: absent and null both read as `None`.
fn optional_text(input: &Map<String, Value>, key: &str) -> Result<Option<String>, ()> {
    input.get(key).map_or(Ok(None), text_value)
}

fn create(state: &mut State, org: &str, body: &[u8]) -> Reply {
    let Some(input) = account_input(body) else {
        return validation();
    };
    let Some(login) = input.get("login").and_then(login_value) else {
        return validation();
    };
    let (Ok(given), Ok(family), Ok(nick)) = (
        optional_text(&input, "given"),
        optional_text(&input, "family"),
        optional_text(&input, "nick"),
    ) else {
        return validation();
    };
    let team_ids = match input.get("team_ids") {
        Some(v) => match team_ids_input(state, org, v) {
            Ok(ids) => ids,
            Err(reply) => return reply,
        },
        None => Vec::new(),
    };
    if login_taken(state, org, &login, None) {
        return error(StatusCode::CONFLICT, "duplicate_login");
    }
    let id = new_id("acc", |id| state.accounts.iter().any(|a| a.id == id));
    let now = now();
    let account = Account {
        id,
        org: org.to_owned(),
        login,
        given,
        family,
        nick,
        active: true,
        team_ids,
        created: now.clone(),
        modified: now,
    };
    let reply = Reply::data(StatusCode::CREATED, &account);
    state.accounts.push(account);
    reply
}

fn update(state: &mut State, org: &str, id: &str, body: &[u8]) -> Reply {
    let Some(at) = find(state, org, id) else {
        return missing(StatusCode::NOT_FOUND, "not_found");
    };
    let Some(input) = account_input(body) else {
        return validation();
    };
    let mut next = state.accounts[at].clone();
    if let Some(v) = input.get("login") {
        let Some(login) = login_value(v) else {
            return validation();
        };
        next.login = login;
    }
    for (key, slot) in [
        ("given", &mut next.given),
        ("family", &mut next.family),
        ("nick", &mut next.nick),
    ] {
        if let Some(v) = input.get(key) {
            match text_value(v) {
                Ok(text) => *slot = text,
                Err(()) => return validation(),
            }
        }
    }
    if let Some(v) = input.get("team_ids") {
        match team_ids_input(state, org, v) {
            Ok(ids) => next.team_ids = ids,
            Err(reply) => return reply,
        }
    }
    if login_taken(state, org, &next.login, Some(id)) {
        return error(StatusCode::CONFLICT, "duplicate_login");
    }
    let current = &mut state.accounts[at];
    let changed = (
        &next.login,
        &next.given,
        &next.family,
        &next.nick,
        &next.team_ids,
    ) != (
        &current.login,
        &current.given,
        &current.family,
        &current.nick,
        &current.team_ids,
    );
    if changed {
        next.modified = now();
        *current = next;
    }
    Reply::data(StatusCode::OK, current)
}

/// A fresh `{prefix}_` + 12 hex digits id that `taken` does not know.
fn new_id(prefix: &str, taken: impl Fn(&str) -> bool) -> String {
    loop {
        let bytes: [u8; 6] = rand::thread_rng().gen();
        let id = format!("{prefix}_{}", hex::encode(bytes));
        if !taken(&id) {
            return id;
        }
    }
}

/// The current time, RFC 3339 in UTC.
fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// The alt API as a pingora [`ServeHttp`] application.
struct AltApp {
    backend: AltBackend,
}

#[async_trait]
impl ServeHttp for AltApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let body = read_body(session).await;
        if let Some(delay) = self.backend.take_delay(session.req_header().uri.path()) {
            tokio::time::sleep(delay).await;
        }
        let header = session.req_header();
        let req = Incoming {
            method: &header.method,
            path: header.uri.path(),
            query: header.uri.query(),
            api_key: header
                .headers
                .get(API_KEY_HEADER)
                .and_then(|v| v.to_str().ok()),
            authorization: header
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        };
        into_response(self.backend.handle(&req, body))
    }
}

/// Reads the whole request body, refusing more than [`MAX_BODY_BYTES`].
async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, Reply> {
    let too_large = || error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let declared = session
        .get_header(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let expects_continue = session
        .get_header(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        // Without this pingora closes the connection after a response that starts before
        // the body was read.
        session.set_close_on_response_before_downstream_finish(false);
        let sent = session.write_continue_response().await;
        session.set_close_on_response_before_downstream_finish(true);
        if sent.is_err() {
            return Err(validation());
        }
    }
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_BODY_BYTES => return Err(too_large()),
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => return Ok(body),
            Err(_) => return Err(validation()),
        }
    }
}

/// Turns a reply into an HTTP response with `Content-Type` and `Content-Length` (neither for
/// 204, which has no body and must not declare a length).
fn into_response(reply: Reply) -> Response<Vec<u8>> {
    let body = reply.body.map(|v| v.to_string().into_bytes());
    let has_body = body.is_some();
    let body = body.unwrap_or_default();
    let len = body.len();
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if reply.status != StatusCode::NO_CONTENT {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        if has_body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
    }
    if let Some(allow) = reply.allow {
        headers.insert(ALLOW, HeaderValue::from_static(allow));
    }
    response
}
