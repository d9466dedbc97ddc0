//! The guard at run time: plans each request from its head (checks, canonical target, matching
//! rule), then, for a guarded route, identifies the caller, asks whether their account is
//! SCIM-managed and decides. No pingora types: the proxy glue does the I/O.

use super::body::{self, BodyKind};
use super::canon;
use super::channels;
use super::decision::{self, Caller, Verdict};
use super::identity::{Identity, IdentityError};
use super::jwt::JwtKeyError;
pub use super::refusal::Refusal;
use super::request;
use super::route::{self, RouteTemplate};
use super::rules::GuardSettings;
use crate::auth::Tenant;
use crate::backend::client::Client;
use crate::service::{GroupDirectory, UserDirectory};
use crate::store::Store;
use http::{HeaderMap, Method, Version};
use serde_json::Value;
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
    /// Says which teams their admins turned SCIM on or off for.
    store: Arc<dyn Store>,
    directory: Arc<dyn UserDirectory>,
    /// Says which memberships group push manages, when groups are served.
    groups: Option<Arc<dyn GroupDirectory>>,
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
        store: Arc<dyn Store>,
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
            store,
            directory,
            groups: None,
            backend,
        })
    }

    /// The same guard, answering membership rules (`group = ...`) from `groups`.
    pub fn with_groups(mut self, groups: Arc<dyn GroupDirectory>) -> Self {
        self.groups = Some(groups);
        self
    }

    /// Identifies the caller of a request with `headers`, as the guard's rules do.
    pub async fn identify(&self, headers: &HeaderMap) -> Result<Caller, IdentityError> {
        self.identity.resolve(headers, &self.backend).await
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
        let group = rule
            .group
            .as_ref()
            .and_then(|name| pending.params.iter().find(|(k, _)| k == name))
            .map(|(_, v)| v.as_str());
        let (tenant, managed) = match (&rule.group, group) {
            (None, _) => self.managed(&caller, path_tenant, None).await?,
            (Some(_), Some(group)) => self.managed(&caller, path_tenant, Some(group)).await?,
            // The route matched without its group parameter: nothing to look up, refuse.
            (Some(_), None) => (None, true),
        };
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
    /// With `group`, what is asked is whether group push manages the caller's membership of that
    /// group (`all_members_managed` does not make every membership managed).
    async fn managed(
        &self,
        caller: &Caller,
        path_tenant: Option<&str>,
        group: Option<&str>,
    ) -> Result<(Option<String>, bool), Refusal> {
        let named = |b: &str| {
            self.tenants
                .iter()
                .find(|t| t.backend_name.eq_ignore_ascii_case(b))
        };
        let caller_tenant = match caller.tenant.as_deref() {
            Some(name) => match named(name) {
                Some(t) => Some(t.clone()),
                None => self.store_tenant(name).await?,
            },
            None => None,
        };
        let path_tenant = path_tenant.and_then(named).cloned();
        let unknown = caller_tenant.is_none();
        let doubt = self.settings.all_members_managed || self.settings.ids_per_tenant;
        if unknown && doubt {
            return Ok((None, true));
        }
        let own: Vec<Arc<Tenant>> = caller_tenant.iter().cloned().chain(path_tenant).collect();
        if self.settings.all_members_managed && group.is_none() {
            for t in &own {
                if self.scim_on(t).await? == Some(true) {
                    return Ok((Some(t.name.clone()), true));
                }
            }
        }
        let asked: Vec<Arc<Tenant>> = if self.settings.ids_per_tenant {
            own
        } else {
            let store_only = caller_tenant.filter(|t| named(&t.backend_name).is_none());
            self.tenants.iter().cloned().chain(store_only).collect()
        };
        for t in &asked {
            let managed = match (group, &self.groups) {
                (None, _) => self.directory.is_managed(t, &caller.id).await,
                (Some(group), Some(groups)) => {
                    // As sent and as the backend reads it (`007` is group 7).
                    let lenient = decision::lenient_id(group);
                    match groups.is_managed_membership(t, group, &caller.id).await {
                        Ok(false) if lenient != group.to_ascii_lowercase() => {
                            groups.is_managed_membership(t, &lenient, &caller.id).await
                        }
                        answer => answer,
                    }
                }
                // Refused at load: a membership rule needs [groups].
                (Some(_), None) => Ok(true),
            }
            .map_err(|e| Refusal::StoreUnavailable(e.detail))?;
            // SCIM turned off by the team's admins frees the accounts it wrote.
            if managed && self.scim_on(t).await? != Some(false) {
                return Ok((Some(t.name.clone()), true));
            }
        }
        Ok((None, false))
    }

    /// Whether SCIM is on for `t`: `Some(true)` when the config gives it keys or its admins
    /// enabled it, `Some(false)` when its admins disabled it, `None` when neither says.
    async fn scim_on(&self, t: &Tenant) -> Result<Option<bool>, Refusal> {
        if self.scim_tenants.contains(&t.name) {
            return Ok(Some(true));
        }
        let stored = self
            .store
            .tenant(&t.backend_name)
            .await
            .map_err(|e| Refusal::StoreUnavailable(e.to_string()))?;
        Ok(stored.map(|s| s.enabled))
    }

    /// The tenant whose team admins turned SCIM on (or off) for team `name`, which the config
    /// does not list.
    async fn store_tenant(&self, name: &str) -> Result<Option<Arc<Tenant>>, Refusal> {
        let stored = self
            .store
            .tenant(name)
            .await
            .map_err(|e| Refusal::StoreUnavailable(e.to_string()))?;
        Ok(stored.map(|s| {
            Arc::new(Tenant {
                name: s.name.clone(),
                backend_name: s.name,
            })
        }))
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
    use serde_json::json;

    #[test]
    fn collects_nested_keys() {
        let mut out = Vec::new();
        collect_keys(
            &json!({"a": 1, "user": {"Email": "x"}, "l": [{"b": 2}]}),
            &mut out,
        );
        assert_eq!(out, vec!["a", "user", "Email", "l", "b"]);
    }
}
