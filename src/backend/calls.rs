//! The backend's user operations in native terms (list a page, get, create, delete, deactivate;
//! updates are in [`super::update`]), built from the config's request templates; backend
//! failures become SCIM errors, and a backend that throttles is waited for or passed on as 429.

use super::client::{CallError, Client, Request, Response};
use super::credentials::{self, Credentials};
use super::spec::{ErrorRule, ListOperation, Operation, Paging, Part, Template, UserApi, Var};
use super::throttle::{self, Pacer};
use super::version::{self, Version};
use crate::auth::Tenant;
use crate::scim::error::ScimError;
use crate::telemetry::Telemetry;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The shortest wait before retrying a throttled read, whatever `Retry-After` says.
const MIN_RETRY_WAIT: Duration = Duration::from_millis(50);

/// Characters left as they are in a substituted value: RFC 3986 unreserved.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One page of native users.
#[derive(Debug, Clone, Default)]
pub struct NativePage {
    /// The users, in backend order.
    pub items: Vec<Value>,
    /// The backend's total, when it reports one.
    pub total: Option<usize>,
}

/// Where a list call reads.
#[derive(Debug, Clone, Copy)]
enum ReadAt<'a> {
    /// At an offset (page- and offset-paged lists).
    Offset(usize),
    /// At a continuation (the first page when `None`).
    Continue(Option<&'a str>),
}

/// A user as read, with its version when `[users.update.version]` names one.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The native user object.
    pub user: Value,
    /// Its version.
    pub version: Option<Version>,
}

/// Values substituted into templates.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Vars<'a> {
    /// The tenant's name in scimgate (picks its credential).
    name: &'a str,
    tenant: &'a str,
    id: Option<&'a str>,
    member: Option<&'a str>,
    page: Option<u64>,
    offset: Option<u64>,
    size: Option<u64>,
}

impl<'a> Vars<'a> {
    /// The variables of a call about the whole tenant.
    pub(super) fn tenant(tenant: &'a Tenant) -> Self {
        Vars {
            name: &tenant.name,
            tenant: &tenant.backend_name,
            ..Vars::default()
        }
    }

    /// The variables of a call about one user (or group).
    pub(super) fn user(tenant: &'a Tenant, id: &'a str) -> Self {
        Vars {
            id: Some(id),
            ..Vars::tenant(tenant)
        }
    }

    /// The variables of a call about one member of a group.
    pub(super) fn member(tenant: &'a Tenant, group: &'a str, member: &'a str) -> Self {
        Vars {
            member: Some(member),
            ..Vars::user(tenant, group)
        }
    }

    fn expand(&self, t: &Template) -> String {
        let mut out = String::new();
        for part in &t.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Var(v) => out.extend(utf8_percent_encode(&self.get(*v), UNRESERVED)),
            }
        }
        out
    }

    fn get(&self, v: Var) -> String {
        match v {
            Var::Tenant => self.tenant.to_string(),
            Var::Id => self.id.unwrap_or_default().to_string(),
            Var::Member => self.member.unwrap_or_default().to_string(),
            Var::Page => self.page.map(|n| n.to_string()).unwrap_or_default(),
            Var::Offset => self.offset.map(|n| n.to_string()).unwrap_or_default(),
            Var::Size => self.size.map(|n| n.to_string()).unwrap_or_default(),
        }
    }
}

/// The backend user API: templates plus a pooled client, the service credentials and the
/// metrics every call is measured into.
pub struct Backend {
    pub(super) api: UserApi,
    client: Arc<Client>,
    credentials: Credentials,
    pub(super) telemetry: Arc<Telemetry>,
    pacer: Pacer,
}

/// A paged list call and how to read its answers.
pub(super) struct Listing<'a> {
    /// The call and its paging.
    pub list: &'a ListOperation,
    /// Error translations of its answers.
    pub errors: &'a [ErrorRule],
    /// Metric label.
    pub label: &'static str,
    /// What the call does, for error details.
    pub what: &'static str,
    /// Template variables besides paging.
    pub vars: Vars<'a>,
    /// The field of a listed item holding its id (the `after` of keyset paging).
    pub id_field: &'a [String],
}

/// A page read at a backend continuation, and the continuation of the page after it (`None`
/// after the last page).
#[derive(Debug, Clone, Default)]
pub struct ContinuedPage {
    /// The page.
    pub page: NativePage,
    /// The next page's token (or, for keyset paging, the last id).
    pub next: Option<String>,
}

/// One call to make: the operation, its variables, and what else goes on the request.
pub(super) struct Call<'a> {
    /// Metric label and, with `what`, the words of error details.
    pub label: &'static str,
    /// What the call does, for error details (`"get user"`).
    pub what: &'static str,
    /// The operation.
    pub op: &'a Operation,
    /// Template variables.
    pub vars: Vars<'a>,
    /// Query parameters besides the operation's own.
    pub query: &'a [(String, String)],
    /// The native body, placed under the operation's `body` pointer.
    pub body: Option<&'a Value>,
    /// Headers besides Accept, Content-Type and the credential.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether a throttled answer is waited for and retried (reads, compensations) rather than
    /// passed on to the SCIM client as 429.
    pub retry: bool,
}

impl<'a> Call<'a> {
    /// A call with no extra query, body or headers that is not retried when throttled.
    pub fn new(label: &'static str, what: &'static str, op: &'a Operation, vars: Vars<'a>) -> Self {
        Call {
            label,
            what,
            op,
            vars,
            query: &[],
            body: None,
            headers: Vec::new(),
            retry: false,
        }
    }

    pub(super) fn body(mut self, body: &'a Value) -> Self {
        self.body = Some(body);
        self
    }
}

impl Backend {
    /// Wraps a client with the API description and the credentials.
    pub fn new(
        api: UserApi,
        client: Arc<Client>,
        credentials: Credentials,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let pacer = Pacer::new(api.throttling.rate, api.throttling.tenant_rate);
        Backend {
            api,
            client,
            credentials,
            telemetry,
            pacer,
        }
    }

    /// The API description.
    pub fn api(&self) -> &UserApi {
        &self.api
    }

    /// The underlying HTTP client (the guard forwards buffered requests with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The user list call of `tenant`.
    fn listing<'a>(&'a self, tenant: &'a Tenant) -> Listing<'a> {
        Listing {
            list: &self.api.list,
            errors: &self.api.errors,
            label: "list",
            what: "list users",
            vars: Vars::tenant(tenant),
            id_field: &self.api.id_field,
        }
    }

    /// Users `[offset, offset + count)` of the list, optionally narrowed by a query parameter.
    pub async fn list(
        &self,
        tenant: &Tenant,
        search: Option<(&str, &str)>,
        offset: usize,
        count: usize,
    ) -> Result<NativePage, ScimError> {
        self.list_pages(&self.listing(tenant), search, offset, count)
            .await
    }

    /// At most `size` users from the backend's continuation `token` (the first page when
    /// `None`), for a backend that pages by continuation ([`Paging::continues`]).
    pub async fn list_from(
        &self,
        tenant: &Tenant,
        token: Option<&str>,
        size: usize,
    ) -> Result<ContinuedPage, ScimError> {
        self.list_continued(&self.listing(tenant), None, token, size)
            .await
    }

    /// Items `[offset, offset + count)` of a paged list call, optionally narrowed by a query
    /// parameter, read a backend page at a time.
    pub(super) async fn list_pages(
        &self,
        listing: &Listing<'_>,
        search: Option<(&str, &str)>,
        offset: usize,
        count: usize,
    ) -> Result<NativePage, ScimError> {
        let size = count.clamp(1, listing.list.max_size);
        if listing.list.paging.continues() {
            return self
                .list_walking(listing, search, offset, count, size)
                .await;
        }
        let mut page = NativePage::default();
        let mut at = offset - offset % size;
        let mut skip = offset % size;
        while page.items.len() < count {
            let (got, _) = self
                .list_call(listing, search, ReadAt::Offset(at), size)
                .await?;
            let n = got.items.len();
            page.total = page.total.or(got.total);
            page.items.extend(
                got.items
                    .into_iter()
                    .skip(skip)
                    .take(count - page.items.len()),
            );
            skip = 0;
            at = at.saturating_add(size);
            let past_end = page.total.is_some_and(|t| at >= t);
            if n < size || past_end {
                break;
            }
        }
        Ok(page)
    }

    /// Items `[offset, offset + count)` of a list paged by continuation: its pages from the
    /// first, `size` items each.
    async fn list_walking(
        &self,
        listing: &Listing<'_>,
        search: Option<(&str, &str)>,
        offset: usize,
        count: usize,
        size: usize,
    ) -> Result<NativePage, ScimError> {
        let mut page = NativePage::default();
        let mut token: Option<String> = None;
        let mut passed = 0usize;
        loop {
            let got = self
                .list_continued(listing, search, token.as_deref(), size)
                .await?;
            page.total = page.total.or(got.page.total);
            for item in got.page.items {
                if passed >= offset && page.items.len() < count {
                    page.items.push(item);
                }
                passed += 1;
            }
            match got.next {
                Some(next) if page.items.len() < count => token = Some(next),
                _ => return Ok(page),
            }
        }
    }

    /// One page of a list paged by continuation, at `token` (the first when `None`).
    pub(super) async fn list_continued(
        &self,
        listing: &Listing<'_>,
        search: Option<(&str, &str)>,
        token: Option<&str>,
        size: usize,
    ) -> Result<ContinuedPage, ScimError> {
        let size = size.clamp(1, listing.list.max_size);
        let (page, json) = self
            .list_call(listing, search, ReadAt::Continue(token), size)
            .await?;
        let next = match &listing.list.paging {
            Paging::Cursor { next, .. } => json
                .pointer(next)
                .and_then(super::mapping::id_text)
                .filter(|t| !t.is_empty()),
            Paging::After { .. } if page.items.len() >= size => page
                .items
                .last()
                .and_then(|item| super::paths::get_path(item, listing.id_field))
                .and_then(super::mapping::id_text),
            _ => None,
        };
        Ok(ContinuedPage { page, next })
    }

    async fn list_call(
        &self,
        listing: &Listing<'_>,
        search: Option<(&str, &str)>,
        at: ReadAt<'_>,
        size: usize,
    ) -> Result<(NativePage, Value), ScimError> {
        let list = listing.list;
        let mut vars = Vars {
            size: Some(size as u64),
            ..listing.vars
        };
        let mut query: Vec<(String, String)> = Vec::new();
        let offset = match at {
            ReadAt::Offset(n) => n,
            ReadAt::Continue(_) => 0,
        };
        match &list.paging {
            Paging::Page {
                page,
                size: s,
                first,
            } => {
                let n = first + (offset / size) as u64;
                vars.page = Some(n);
                query.push((page.clone(), n.to_string()));
                query.push((s.clone(), size.to_string()));
            }
            Paging::Offset {
                offset: param,
                size: s,
            } => {
                vars.offset = Some(offset as u64);
                query.push((param.clone(), offset.to_string()));
                query.push((s.clone(), size.to_string()));
            }
            Paging::Cursor {
                cursor: param,
                size: s,
                ..
            }
            | Paging::After {
                after: param,
                size: s,
            } => {
                if let ReadAt::Continue(Some(token)) = at {
                    query.push((param.clone(), token.to_string()));
                }
                query.push((s.clone(), size.to_string()));
            }
        }
        if let Some((param, value)) = search {
            query.push((param.to_string(), value.to_string()));
        }
        let mut call = Call::new(listing.label, listing.what, &list.call, vars);
        call.query = &query;
        call.retry = true;
        let resp = self.call(call).await?;
        let body = expect_success(listing.errors, &resp, listing.what)?;
        let json = parse_json(&body, listing.what)?;
        let items = json
            .pointer(&list.results)
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| mismatch(listing.what, &format!("no array at {:?}", list.results)))?;
        let total = list
            .total
            .as_ref()
            .and_then(|p| json.pointer(p))
            .and_then(Value::as_u64)
            .map(|t| t as usize);
        Ok((NativePage { items, total }, json))
    }

    /// One user by native id; `None` when the backend does not know it.
    pub async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Value>, ScimError> {
        Ok(self.get_versioned(tenant, id).await?.map(|v| v.user))
    }

    /// One user by native id with its version; `None` when the backend does not know it.
    pub async fn get_versioned(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<Versioned>, ScimError> {
        if !valid_id(id) {
            return Ok(None);
        }
        let vars = Vars::user(tenant, id);
        let mut call = Call::new("get", "get user", &self.api.get, vars);
        call.retry = true;
        let resp = self.call(call).await?;
        if resp.status == 404 {
            return Ok(None);
        }
        let user = self.user_from(&self.api.get, &resp, "get user")?;
        let version = self
            .api
            .update
            .version
            .as_ref()
            .and_then(|v| version::read(&v.from, &resp.headers, &user));
        // A lenient backend may answer another spelling of the id (`007` for `7`): the SCIM id
        // is the backend's own spelling, exactly.
        match super::mapping::native_id(&self.api, &user) {
            Some(native) => Ok((native == id).then_some(Versioned { user, version })),
            None => Err(mismatch(
                "get user",
                "the user has no id where users.id_field says",
            )),
        }
    }

    /// Creates a user from its native form; answers the created native user.
    pub async fn create(&self, tenant: &Tenant, native: &Value) -> Result<Value, ScimError> {
        let vars = Vars::tenant(tenant);
        let call = Call::new("create", "create user", &self.api.create, vars).body(native);
        let resp = self.call(call).await?;
        self.user_from(&self.api.create, &resp, "create user")
    }

    /// Deletes a user; `false` when the backend did not know it. A throttled delete is answered
    /// 429 to the SCIM client.
    pub async fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError> {
        self.delete_with(tenant, id, false).await
    }

    /// Deletes a user the gateway just created, to undo a create that failed later: a throttled
    /// delete is waited for (within `users.throttling.max_wait`), not given up.
    pub async fn delete_to_undo(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError> {
        self.delete_with(tenant, id, true).await
    }

    async fn delete_with(&self, tenant: &Tenant, id: &str, retry: bool) -> Result<bool, ScimError> {
        if !valid_id(id) {
            return Ok(false);
        }
        let vars = Vars::user(tenant, id);
        let mut call = Call::new("delete", "delete user", &self.api.delete, vars);
        call.retry = retry;
        let resp = self.call(call).await?;
        if resp.status == 404 {
            return Ok(false);
        }
        expect_success(&self.api.errors, &resp, "delete user").map(|_| true)
    }

    /// Calls the separate deactivate or reactivate operation, when the backend has them.
    /// Answers `false` when it has none (`active` is then an ordinary field).
    pub async fn set_active(
        &self,
        tenant: &Tenant,
        id: &str,
        active: bool,
    ) -> Result<bool, ScimError> {
        let op = if active {
            &self.api.reactivate
        } else {
            &self.api.deactivate
        };
        let Some(op) = op else { return Ok(false) };
        let vars = Vars::user(tenant, id);
        let (label, what) = if active {
            ("reactivate", "reactivate user")
        } else {
            ("deactivate", "deactivate user")
        };
        let resp = self.call(Call::new(label, what, op, vars)).await?;
        expect_success(&self.api.errors, &resp, what).map(|_| true)
    }

    pub(super) fn user_from(
        &self,
        op: &Operation,
        resp: &Response,
        what: &str,
    ) -> Result<Value, ScimError> {
        let body = expect_success(&self.api.errors, resp, what)?;
        let json = parse_json(&body, what)?;
        json.pointer(&op.result)
            .filter(|v| v.is_object())
            .cloned()
            .ok_or_else(|| mismatch(what, &format!("no user object at {:?}", op.result)))
    }

    /// Makes `call`, paced by `users.throttling`. A throttled answer (429, or 503 with
    /// `Retry-After`) is retried after the wait it asks for when the call allows it and the wait
    /// fits in `max_wait`; otherwise the SCIM client gets 429 with `Retry-After`.
    pub(super) async fn call(&self, call: Call<'_>) -> Result<Response, ScimError> {
        let started = Instant::now();
        let max_wait = self.api.throttling.max_wait;
        let metrics = &self.telemetry.metrics;
        loop {
            let left = max_wait.saturating_sub(started.elapsed());
            match self.pacer.reserve(call.vars.tenant, Instant::now(), left) {
                Ok(wait) if wait.is_zero() => {}
                Ok(wait) => tokio::time::sleep(wait).await,
                Err(wait) => {
                    metrics.throttled_answer("gateway_rate");
                    return Err(ScimError::throttled(
                        format!(
                            "{}: the gateway paces its calls to the user service (users.throttling) and this one would wait {} ms",
                            call.what,
                            wait.as_millis()
                        ),
                        throttle::whole_seconds(wait),
                    ));
                }
            }
            let resp = self.send(&call).await?;
            if !throttle::is_throttled(resp.status, &resp.headers) {
                return Ok(resp);
            }
            metrics.backend_throttled(call.label);
            let wait = throttle::retry_after(&resp.headers, SystemTime::now());
            let left = max_wait.saturating_sub(started.elapsed());
            if call.retry && wait <= left {
                tracing::debug!(
                    operation = call.label,
                    ?wait,
                    "the user service throttles; waiting"
                );
                tokio::time::sleep(wait.max(MIN_RETRY_WAIT)).await;
                continue;
            }
            metrics.throttled_answer("backend");
            return Err(ScimError::throttled(
                format!(
                    "{}: the user service is limiting requests (it answered {}); nothing was changed, retry later",
                    call.what, resp.status
                ),
                throttle::whole_seconds(wait),
            ));
        }
    }

    /// Sends `call` once.
    async fn send(&self, call: &Call<'_>) -> Result<Response, ScimError> {
        let Call {
            label,
            op,
            vars,
            query: extra_query,
            body,
            ..
        } = call;
        let mut target = vars.expand(&op.path);
        let query = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, t) in &op.query {
                q.append_pair(k, &vars.expand(t));
            }
            for (k, v) in extra_query.iter() {
                q.append_pair(k, v);
            }
            q.finish()
        };
        if !query.is_empty() {
            target.push('?');
            target.push_str(&query);
        }
        let mut headers = vec![(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        )];
        headers.extend(call.headers.iter().cloned());
        let body = body.map(|b| wrap_body(b, &op.body));
        if body.is_some() {
            headers.push((
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ));
        }
        let req = Request {
            method: op.method.clone(),
            target,
            headers,
            body,
        };
        let started = std::time::Instant::now();
        let credential = self.credentials.of(vars.name);
        let result = credentials::send(credential, &self.client, req).await;
        let error = match &result {
            Err(CallError::Timeout(_)) => Some("timeout"),
            Err(CallError::Unreachable(_)) => Some("unreachable"),
            Err(CallError::Protocol(_)) => Some("protocol"),
            Err(CallError::Credential(_)) => Some("credential"),
            Ok(r) if r.status >= 500 => Some("status_5xx"),
            Ok(_) => None,
        };
        self.telemetry
            .metrics
            .backend_call(label, started.elapsed(), error);
        result.map_err(call_error)
    }
}

/// Ids that cannot name a user: empty, dot segments, or control characters.
pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && !id.chars().any(char::is_control)
        && id.len() <= 256
}

fn wrap_body(native: &Value, pointer: &str) -> Bytes {
    let mut wrapped = native.clone();
    for key in pointer
        .split('/')
        .skip(1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let mut obj = serde_json::Map::new();
        obj.insert(key.replace("~1", "/").replace("~0", "~"), wrapped);
        wrapped = Value::Object(obj);
    }
    Bytes::from(wrapped.to_string())
}

/// Translates a backend transport failure into the SCIM error the client sees.
pub fn call_error(e: CallError) -> ScimError {
    match e {
        CallError::Timeout(m) => {
            ScimError::gateway_timeout(format!("the user service did not answer in time ({m})"))
        }
        CallError::Unreachable(m) => {
            ScimError::bad_gateway(format!("the user service is unreachable ({m})"))
        }
        CallError::Protocol(m) => ScimError::bad_gateway(format!(
            "the user service sent an invalid HTTP answer ({m})"
        )),
        CallError::Credential(m) => ScimError::bad_gateway(format!(
            "the gateway could not obtain its credential for the user service ({m})"
        )),
    }
}

/// The body of a 2xx answer, or the SCIM error the answer maps to.
pub(super) fn expect_success(
    rules: &[ErrorRule],
    resp: &Response,
    what: &str,
) -> Result<Bytes, ScimError> {
    if (200..300).contains(&resp.status) {
        return Ok(resp.body.clone());
    }
    let text = String::from_utf8_lossy(&resp.body);
    let snippet: String = text.chars().take(200).collect();
    let json: Option<Value> = rules
        .iter()
        .any(|r| r.body_field.is_some())
        .then(|| serde_json::from_slice(&resp.body).ok())
        .flatten();
    if let Some(rule) = rules
        .iter()
        .find(|r| rule_matches(r, resp.status, &text, json.as_ref()))
    {
        let detail = rule.detail.clone().unwrap_or_else(|| {
            format!(
                "{what}: the user service answered {}: {snippet}",
                resp.status
            )
        });
        return Err(ScimError::new(rule.scim_status, rule.scim_type, detail));
    }
    let detail = format!(
        "{what}: the user service answered {}: {snippet}",
        resp.status
    );
    Err(match resp.status {
        401 | 403 => ScimError::bad_gateway(format!(
            "{detail} (check backend.auth: the gateway's own credential was refused)"
        )),
        404 => ScimError::not_found(detail),
        409 => ScimError::uniqueness(detail),
        400..=499 => ScimError::invalid_value(detail),
        _ => ScimError::bad_gateway(detail),
    })
}

/// True when `rule` applies to an answer with `status`, body `text` and (when it is JSON) `json`.
fn rule_matches(rule: &ErrorRule, status: u16, text: &str, json: Option<&Value>) -> bool {
    rule.status == status
        && rule
            .body_contains
            .as_ref()
            .is_none_or(|s| text.contains(s.as_str()))
        && rule
            .body_field
            .as_ref()
            .is_none_or(|(pointer, want)| json.and_then(|j| j.pointer(pointer)) == Some(want))
}

fn parse_json(body: &[u8], what: &str) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|e| mismatch(what, &format!("the body is not JSON ({e})")))
}

pub(super) fn mismatch(what: &str, why: &str) -> ScimError {
    ScimError::bad_gateway(format!(
        "{what}: the user service's answer does not match the configured mapping: {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_encodes_placeholders() {
        let t = Template::parse("/t/{tenant}/m/{id}").unwrap();
        let v = Vars {
            tenant: "a b",
            id: Some("../x?y"),
            ..Vars::default()
        };
        assert_eq!(v.expand(&t), "/t/a%20b/m/..%2Fx%3Fy");
    }

    #[test]
    fn rejects_dot_ids() {
        assert!(!valid_id(".."));
        assert!(!valid_id(""));
        assert!(!valid_id("a\0"));
        assert!(valid_id("usr_1"));
    }

    #[test]
    fn wraps_bodies_under_a_pointer() {
        let v = serde_json::json!({"a": 1});
        assert_eq!(wrap_body(&v, ""), Bytes::from(r#"{"a":1}"#));
        assert_eq!(
            wrap_body(&v, "/data/user"),
            Bytes::from(r#"{"data":{"user":{"a":1}}}"#)
        );
    }

    #[test]
    fn maps_backend_statuses() {
        let resp = |status| Response {
            status,
            headers: Default::default(),
            body: Bytes::from_static(b"{\"error\":\"x\"}"),
        };
        assert_eq!(
            expect_success(&[], &resp(409), "w").unwrap_err().status,
            409
        );
        assert_eq!(
            expect_success(&[], &resp(500), "w").unwrap_err().status,
            502
        );
        assert_eq!(
            expect_success(&[], &resp(401), "w").unwrap_err().status,
            502
        );
        assert_eq!(
            expect_success(&[], &resp(422), "w").unwrap_err().status,
            400
        );
        assert!(expect_success(&[], &resp(201), "w").is_ok());
    }

    #[test]
    fn error_rules_match_a_field_of_a_json_body() {
        let rule = |code: &str, scim_status| ErrorRule {
            status: 400,
            body_contains: None,
            body_field: Some(("/errors/0/code".into(), Value::String(code.into()))),
            scim_status,
            scim_type: None,
            detail: Some(code.into()),
        };
        let rules = [rule("taken", 409), rule("invalid_email", 400)];
        let resp = |body: &'static str| Response {
            status: 400,
            headers: Default::default(),
            body: Bytes::from_static(body.as_bytes()),
        };
        let taken = expect_success(&rules, &resp(r#"{"errors":[{"code":"taken"}]}"#), "w");
        assert_eq!(taken.unwrap_err().status, 409);
        let email = expect_success(
            &rules,
            &resp(r#"{"errors":[{"code":"invalid_email","msg":"taken"}]}"#),
            "w",
        )
        .unwrap_err();
        assert_eq!(
            email.detail, "invalid_email",
            "the field, not a substring, decides"
        );
        for other in [
            r#"{"errors":[{"code":"other"}]}"#,
            r#"{"errors":[]}"#,
            "taken",
            r#"{"errors":[{"code":["taken"]}]}"#,
        ] {
            let e = expect_success(&rules, &resp(other), "w").unwrap_err();
            assert!(
                e.detail.starts_with("w: the user service answered 400"),
                "{other}: {e}"
            );
        }
    }
}
