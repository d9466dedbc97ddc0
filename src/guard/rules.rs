//! The guard's validated settings: which self-service routes are guarded, how the caller is
//! identified, and whether every member of a SCIM-enabled tenant counts as managed.

use super::jwt::JwtSettings;
use super::route::RouteTemplate;
use crate::backend::spec::Operation;
use http::{HeaderName, Method};
use std::time::Duration;

/// Who a guarded route affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// The caller (`/api/me/password`).
    Caller,
    /// The member named by a path parameter (`{member}`); the value `me` means the caller.
    Param(String),
}

/// One guarded route.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name used in logs, metrics and the 403 body.
    pub name: String,
    /// Methods it applies to.
    pub methods: Vec<Method>,
    /// The path template.
    pub path: RouteTemplate,
    /// Body or query fields that make a request guarded; empty means every request is.
    pub fields: Vec<String>,
    /// Who the request affects.
    pub member: Member,
    /// The path parameter naming the backend's tenant (team), when the route has one.
    pub tenant: Option<String>,
    /// The path parameter naming a group: the rule then guards the affected member's
    /// membership of that group, blocked only when group push manages it.
    pub group: Option<String>,
}

/// How the caller of a guarded route is identified.
#[derive(Debug, Clone)]
pub enum IdentitySource {
    /// A header set by an upstream authenticator. With `edge`, clients reach the gateway
    /// directly, so a client-sent copy is stripped and never trusted.
    Header {
        /// The header holding the caller's user id.
        name: HeaderName,
        /// The header holding the caller's tenant, if any.
        tenant: Option<HeaderName>,
        /// The header holding the caller's role, if any.
        role: Option<HeaderName>,
        /// Whether clients reach the gateway directly (their copy is stripped).
        edge: bool,
    },
    /// A claim of the JWT the client sends as its bearer token (the backend accepts the same
    /// token); the signature is verified with the configured algorithm and key.
    Jwt {
        /// The claim holding the caller's user id.
        claim: String,
        /// The claim holding the caller's tenant, if any.
        tenant_claim: Option<String>,
        /// The claim holding the caller's role, if any.
        role_claim: Option<String>,
        /// How the token is verified.
        settings: JwtSettings,
    },
    /// A call to the backend with the caller's own credentials, cached by their hash.
    Whoami {
        /// The call, made with the caller's credentials.
        call: Operation,
        /// The answer's field holding the caller's user id.
        id_field: Vec<String>,
        /// The answer's field holding the caller's tenant, if any.
        tenant_field: Option<Vec<String>>,
        /// The answer's field holding the caller's role, if any.
        role_field: Option<Vec<String>>,
        /// How long an answer is reused.
        cache: Duration,
    },
}

/// The `[guard]` section, validated.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Every member of a tenant that has SCIM keys counts as managed.
    pub all_members_managed: bool,
    /// Backend user ids are unique only within a tenant (the same id is another person in
    /// another tenant), so the managed flag is read in the caller's own tenant.
    pub ids_per_tenant: bool,
    /// How callers are identified.
    pub identity: IdentitySource,
    /// Largest body read on a guarded route.
    pub max_body_bytes: usize,
    /// Cookie names that carry a session (a cookie plus an Authorization header is ambiguous).
    pub session_cookies: Vec<String>,
    /// Query parameters the backend may take as credentials (ambiguous next to another one).
    pub credential_params: Vec<String>,
    /// The guarded routes.
    pub rules: Vec<Rule>,
}

impl GuardSettings {
    /// The rule matching a canonical request, with its path parameters.
    pub fn rule_for(
        &self,
        method: &Method,
        segments: &[String],
    ) -> Option<(&Rule, Vec<(String, String)>)> {
        self.rules
            .iter()
            .filter(|r| r.methods.contains(method))
            .find_map(|r| r.path.matches(segments).map(|params| (r, params)))
    }

    /// Every rule's path template.
    pub fn templates(&self) -> Vec<RouteTemplate> {
        self.rules.iter().map(|r| r.path.clone()).collect()
    }
}
