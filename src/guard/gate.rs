//! The guard at run time: plans each request from its head (checks, canonical target, matching
//! rule), then, for a guarded route, identifies the caller, asks whether their account is
//! SCIM-managed and decides. No pingora types: the proxy glue does the I/O.

use super::body::{self, BodyKind};
use super::canon;
use super::channels;
use super::decision::{self, Caller, Verdict};
use super::identity::{Identity, IdentityError};
use super::jwt::JwtKeyError;
use super::request;
use super::route::{self, RouteTemplate};
use super::rules::GuardSettings;
use crate::auth::Tenant;
use crate::backend::client::Client;
use crate::service::UserDirectory;
use http::{HeaderMap, Method, Version};
use serde_json::{json, Value};
use std::sync::Arc;

/// The parts of a request the guard looks at before any body.
pub struct Head<'a> {
    /// The method as sent.
    pub method: &'a Method,
    /// The HTTP version.
    pub version: Version,
    /// The raw request target (origin or absolute form).
    pub target: &'a [u8],
    /// All request headers.
    pub headers: &'a HeaderMap,
}

/// Why the guard answers a request itself instead of forwarding it. Status, response body and
/// metric label all derive from this value ([`Refusal::status`], [`Refusal::body`],
/// [`Refusal::metric_label`]); the client's `message` is its `Display`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// A request the guard cannot read unambiguously (headers, target, channels or body).
    #[error("refused on a protected route: {0}")]
    Ambiguous(String),
    /// The caller of a protected route could not be identified.
    #[error("cannot identify the caller of a protected route: {0}")]
    Unauthenticated(String),
    /// The identity source could not be asked right now.
    #[error("cannot identify the caller right now: {0}")]
    IdentityUnavailable(String),
    /// The store could not say whether the caller's account is managed.
    #[error("{0}")]
    StoreUnavailable(String),
    /// A managed account changing itself on a guarded route: the rule's name and request id.
    #[error("This account is managed by your organization's identity provider (SCIM). Its email, password and team membership can only be changed there: ask your IT administrator, or a team admin to remove you from the team.")]
    Blocked {
        /// The name of the rule that matched.
        rule: String,
        /// The request id, echoed so the user can quote it.
        request_id: String,
    },
    /// The body of a guarded route exceeds `guard.max_body_bytes`.
    #[error("the body of a protected route is larger than guard.max_body_bytes")]
    TooLarge,
    /// The body's framing is malformed or the body was cut off.
    #[error("the request body's framing is malformed (or the body was cut off)")]
    MalformedBody,
    /// The body did not arrive within the configured body timeout.
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// Forwarding the checked request to the backend failed; `timed_out` when it did not answer
    /// in time.
    #[error("{detail}")]
    Backend {
        /// Whether the backend timed out (504) rather than failed (502).
        timed_out: bool,
        /// What went wrong.
        detail: String,
    },
    /// The guard itself failed (a panic while checking); the message is safe to show.
    #[error("{0}")]
    Internal(String),
}

impl Refusal {
    /// A request the guard cannot read unambiguously.
    fn ambiguous(why: impl std::fmt::Display) -> Self {
        Refusal::Ambiguous(why.to_string())
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Ambiguous(_) | Refusal::MalformedBody => 400,
            Refusal::Unauthenticated(_) => 401,
            Refusal::Blocked { .. } => 403,
            Refusal::BodyTimeout(_) => 408,
            Refusal::TooLarge => 413,
            Refusal::Internal(_) => 500,
            Refusal::Backend {
                timed_out: false, ..
            } => 502,
            Refusal::IdentityUnavailable(_) | Refusal::StoreUnavailable(_) => 503,
            Refusal::Backend {
                timed_out: true, ..
            } => 504,
        }
    }

    /// The machine-readable `error` code of the body.
    fn code(&self) -> &'static str {
        match self {
            Refusal::Ambiguous(_) => "ambiguous_request",
            Refusal::Unauthenticated(_) => "unauthenticated",
            Refusal::IdentityUnavailable(_) | Refusal::StoreUnavailable(_) => "guard_unavailable",
            Refusal::Blocked { .. } => "managed_by_identity_provider",
            Refusal::TooLarge => "too_large",
            Refusal::MalformedBody => "malformed_body",
            Refusal::BodyTimeout(_) => "timeout",
            Refusal::Backend { .. } => "gateway",
            Refusal::Internal(_) => "internal",
        }
    }

    /// The JSON body sent to the client: `error` and `message`, and for a block the rule's
    /// name and the request id.
    pub fn body(&self) -> Value {
        let mut body = json!({"error": self.code(), "message": self.to_string()});
        if let Refusal::Blocked { rule, request_id } = self {
            body["rule"] = json!(rule);
            body["request_id"] = json!(request_id);
        }
        body
    }

    /// The `rule` label of `scimgate_guard_blocks_total`; `None` for a refusal that is not a
    /// block by a rule (those are not counted there).
    pub fn metric_label(&self) -> Option<&str> {
        match self {
            Refusal::Blocked { rule, .. } => Some(rule),
            _ => None,
        }
    }
}

/// A guarded request waiting for its decision.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The matched rule; `None` for another method on a guarded path (body checked only).
    rule: Option<usize>,
    params: Vec<(String, String)>,
    query_keys: Vec<String>,
    /// True when the rule depends on body fields and the request has a body: read it first.
    pub needs_body: bool,
}

/// What to do with a request, from its head alone.
#[derive(Debug, Clone)]
pub enum Plan {
    /// No lenient reading reaches a guarded route: forward untouched.
    Untouched,
    /// Unambiguous and matches no guarded rule: forward untouched.
    Allowed,
    /// Refuse now.
    Refuse(Refusal),
    /// Matches a guarded rule: decide with [`Guard::decide`].
    Guarded(Pending),
}

/// The configured guard.
pub struct Guard {
    settings: GuardSettings,
    templates: Vec<RouteTemplate>,
    identity: Identity,
    /// Folded names of the headers stripped from every request (edge mode), computed once.
    stripped: Vec<String>,
    tenants: Vec<Arc<Tenant>>,
    scim_tenants: Vec<String>,
    directory: Arc<dyn UserDirectory>,
    /// Where identity lookups (`whoami` calls) go.
    backend: Arc<Client>,
}

impl Guard {
    /// A guard over `settings`; `tenants` are all configured tenants, `scim_tenants` the names of
    /// those that have SCIM keys; `directory` says who is managed, `backend` answers identity
    /// lookups. Fails when the identity source's key material is unusable.
    pub fn new(
        settings: GuardSettings,
        tenants: Vec<Arc<Tenant>>,
        scim_tenants: Vec<String>,
        directory: Arc<dyn UserDirectory>,
        backend: Arc<Client>,
    ) -> Result<Self, JwtKeyError> {
        let identity = Identity::new(settings.identity.clone())?;
        let stripped = if identity.strips_identity_headers() {
            let names = identity.identity_headers();
            names
                .iter()
                .map(|n| channels::header_form(n.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Guard {
            templates: settings.templates(),
            identity,
            stripped,
            settings,
            tenants,
            scim_tenants,
            directory,
            backend,
        })
    }

    /// Largest body read on a guarded route.
    pub fn max_body_bytes(&self) -> usize {
        self.settings.max_body_bytes
    }

    /// The headers of a request that clients may not set: every spelling of the identity
    /// headers when the gateway is the edge (CGI-style servers read `X_User_Id` as `X-User-Id`).
    pub fn headers_to_strip(&self, headers: &HeaderMap) -> Vec<http::HeaderName> {
        if self.stripped.is_empty() {
            return Vec::new();
        }
        let mut names: Vec<http::HeaderName> = headers
            .keys()
            .filter(|n| self.stripped.contains(&channels::header_form(n.as_str())))
            .cloned()
            .collect();
        names.dedup();
        names
    }

    /// Plans a request from its head.
    pub fn plan(&self, head: &Head<'_>) -> Plan {
        if let Err(e) = request::check_global(head.headers) {
            return Plan::Refuse(Refusal::ambiguous(e));
        }
        if !route::may_reach(head.target, &self.templates) {
            return Plan::Untouched;
        }
        match self.strict(head) {
            Ok(Some(pending)) => Plan::Guarded(pending),
            Ok(None) => Plan::Allowed,
            Err(r) => Plan::Refuse(r),
        }
    }

    fn strict(&self, head: &Head<'_>) -> Result<Option<Pending>, Refusal> {
        request::check_headers(
            head.method,
            head.version,
            head.headers,
            &self.settings.session_cookies,
        )
        .map_err(Refusal::ambiguous)?;

        let host = head
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok());
        let origin = canon::origin_form(head.target, host).map_err(Refusal::ambiguous)?;
        let target = canon::canonicalize(origin).map_err(Refusal::ambiguous)?;
        let query_keys: Vec<String> = target.query.iter().map(|(k, _)| k.clone()).collect();
        channels::check(
            head.headers,
            &query_keys,
            &self.identity.identity_headers(),
            &self.settings.session_cookies,
            &self.settings.credential_params,
        )
        .map_err(Refusal::ambiguous)?;
        let Some((rule, params)) = self.settings.rule_for(head.method, &target.segments) else {
            // Another method on a guarded path: its body could carry a `_method` override, so
            // such a body is read and checked before the request is forwarded.
            let guarded_path = self
                .settings
                .rules
                .iter()
                .any(|r| r.path.matches(&target.segments).is_some());
            let kind = body::classify(head.headers).map_err(Refusal::ambiguous)?;
            return Ok(
                (guarded_path && kind != BodyKind::Empty).then_some(Pending {
                    rule: None,
                    params: Vec::new(),
                    query_keys,
                    needs_body: true,
                }),
            );
        };
        let index = self
            .settings
            .rules
            .iter()
            .position(|r| std::ptr::eq(r, rule));
        let kind = body::classify(head.headers).map_err(Refusal::ambiguous)?;
        Ok(Some(Pending {
            rule: index,
            params,
            query_keys,
            needs_body: !rule.fields.is_empty() && kind != BodyKind::Empty,
        }))
    }

    /// Decides a guarded request; `body` is the whole body when [`Pending::needs_body`].
    /// `Ok(())` means forward exactly what was checked.
    pub async fn decide(
        &self,
        pending: &Pending,
        head: &Head<'_>,
        body: Option<&[u8]>,
        request_id: &str,
    ) -> Result<(), Refusal> {
        let mut carried = pending.query_keys.clone();
        if let Some(bytes) = body {
            let kind = body::classify(head.headers).map_err(Refusal::ambiguous)?;
            let readings = body::readings(kind, bytes, self.settings.max_body_bytes)
                .map_err(Refusal::ambiguous)?;
            for scan in &readings {
                request::check_params(scan).map_err(Refusal::ambiguous)?;
                collect_keys(&scan.value, &mut carried);
            }
        }
        let Some(rule) = pending.rule.map(|i| &self.settings.rules[i]) else {
            return Ok(());
        };
        if !decision::rule_applies(rule, &carried) {
            return Ok(());
        }
        let caller = self
            .identity
            .resolve(head.headers, &self.backend)
            .await
            .map_err(identity_refusal)?;
        let path_tenant = rule
            .tenant
            .as_ref()
            .and_then(|name| pending.params.iter().find(|(k, _)| k == name))
            .map(|(_, v)| v.as_str());
        let (tenant, managed) = self.managed(&caller, path_tenant).await?;
        match decision::decide(rule, &pending.params, &carried, &caller, managed) {
            Verdict::Pass => Ok(()),
            Verdict::Block => {
                tracing::warn!(
                    target: "scimgate::guard",
                    tenant = tenant.as_deref().unwrap_or("-"),
                    user = %caller.id,
                    rule = %rule.name,
                    request_id,
                    "blocked a self-service change to a SCIM-managed account"
                );
                Err(Refusal::Blocked {
                    rule: rule.name.clone(),
                    request_id: request_id.to_string(),
                })
            }
        }
    }

    /// Whether the caller's account is managed, and the tenant that makes it so. A user id
    /// names one account across tenants unless `ids_per_tenant`, so the store is asked in every
    /// tenant, whatever tenant the caller claims: a claim that names no tenant, or another one,
    /// must not make a managed account look unmanaged. With `ids_per_tenant` the id means
    /// something only in the caller's tenant (and the route's), and a caller whose tenant is
    /// unknown counts as managed. With `all_members_managed`, a member of a SCIM-enabled tenant
    /// (the caller's or the route's) is managed, and so is a caller whose tenant is unknown.
    async fn managed(
        &self,
        caller: &Caller,
        path_tenant: Option<&str>,
    ) -> Result<(Option<String>, bool), Refusal> {
        let named = |b: &str| {
            self.tenants
                .iter()
                .find(|t| t.backend_name.eq_ignore_ascii_case(b))
        };
        let caller_tenant = caller.tenant.as_deref().and_then(named);
        let path_tenant = path_tenant.and_then(named);
        let unknown = caller_tenant.is_none();
        let doubt = self.settings.all_members_managed || self.settings.ids_per_tenant;
        if unknown && doubt {
            return Ok((None, true));
        }
        let own: Vec<&Arc<Tenant>> = caller_tenant.into_iter().chain(path_tenant).collect();
        if self.settings.all_members_managed {
            if let Some(t) = own.iter().find(|t| self.scim_tenants.contains(&t.name)) {
                return Ok((Some(t.name.clone()), true));
            }
        }
        let asked: Vec<&Arc<Tenant>> = if self.settings.ids_per_tenant {
            own
        } else {
            self.tenants.iter().collect()
        };
        for t in asked {
            let managed = self
                .directory
                .is_managed(t, &caller.id)
                .await
                .map_err(|e| Refusal::StoreUnavailable(e.detail))?;
            if managed {
                return Ok((Some(t.name.clone()), true));
            }
        }
        Ok((None, false))
    }
}

/// Every object key of a JSON value, at any depth (a lenient backend may bind nested fields).
fn collect_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                out.push(k.clone());
                collect_keys(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_keys(i, out)),
        _ => {}
    }
}

fn identity_refusal(e: IdentityError) -> Refusal {
    match e {
        IdentityError::Unauthenticated(m) => Refusal::Unauthenticated(m),
        IdentityError::Unavailable(m) => Refusal::IdentityUnavailable(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_nested_keys() {
        let mut out = Vec::new();
        collect_keys(
            &json!({"a": 1, "user": {"Email": "x"}, "l": [{"b": 2}]}),
            &mut out,
        );
        assert_eq!(out, vec!["a", "user", "Email", "l", "b"]);
    }

    #[test]
    fn blocked_body_explains() {
        let r = Refusal::Blocked {
            rule: "leave-team".into(),
            request_id: "abc".into(),
        };
        assert_eq!(r.status(), 403);
        assert_eq!(r.metric_label(), Some("leave-team"));
        assert_eq!(
            r.body().to_string(),
            json!({
                "error": "managed_by_identity_provider",
                "message": "This account is managed by your organization's identity provider (SCIM). Its email, password and team membership can only be changed there: ask your IT administrator, or a team admin to remove you from the team.",
                "rule": "leave-team",
                "request_id": "abc",
            })
            .to_string()
        );
    }

    #[test]
    fn every_refusal_derives_status_code_and_message() {
        let cases = [
            (
                Refusal::ambiguous("a dot segment"),
                400,
                "ambiguous_request",
                "refused on a protected route: a dot segment",
            ),
            (
                Refusal::Unauthenticated("no token".into()),
                401,
                "unauthenticated",
                "cannot identify the caller of a protected route: no token",
            ),
            (
                Refusal::IdentityUnavailable("down".into()),
                503,
                "guard_unavailable",
                "cannot identify the caller right now: down",
            ),
            (
                Refusal::StoreUnavailable("locked".into()),
                503,
                "guard_unavailable",
                "locked",
            ),
            (
                Refusal::TooLarge,
                413,
                "too_large",
                "the body of a protected route is larger than guard.max_body_bytes",
            ),
            (
                Refusal::MalformedBody,
                400,
                "malformed_body",
                "the request body's framing is malformed (or the body was cut off)",
            ),
            (
                Refusal::BodyTimeout(std::time::Duration::from_secs(2)),
                408,
                "timeout",
                "the request body did not arrive within 2s",
            ),
            (
                Refusal::Backend {
                    timed_out: false,
                    detail: "refused".into(),
                },
                502,
                "gateway",
                "refused",
            ),
            (
                Refusal::Backend {
                    timed_out: true,
                    detail: "slow".into(),
                },
                504,
                "gateway",
                "slow",
            ),
            (Refusal::Internal("bug".into()), 500, "internal", "bug"),
        ];
        for (refusal, status, code, message) in cases {
            assert_eq!(refusal.status(), status, "{refusal:?}");
            assert_eq!(refusal.body(), json!({"error": code, "message": message}));
            assert_eq!(refusal.metric_label(), None, "{refusal:?}");
        }
    }
}
