//! Turns the parsed [`File`] into a [`Config`]: resolves addresses, parses templates and mapping
//! paths, checks every cross-reference, and reports each problem with its line and column.

use super::file::*;
use super::{
    AuthFailureLimit, Config, ConfigError, ProxySettings, ScimSettings, ServerSettings, TlsSettings,
};
use crate::auth::{ApiKey, Keyring, Tenant};
use crate::backend::spec::*;
use crate::forwarded::{Cidr, Forwarding};
use crate::guard::channels;
use crate::guard::jwt::{self, JwtKey, JwtSettings};
use crate::guard::route::RouteTemplate;
use crate::guard::rules::{GuardSettings, IdentitySource, Member, Rule};
use crate::scim::error::ScimType;
use crate::scim::schema;
use serde_spanned::Spanned;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

mod backend;
mod brake;
mod fields;
mod groups;
mod store;
mod team_admin;
mod validator;

use validator::{dotted, toml_to_json, Validator};

pub use fields::parse_scim_target;

/// Parses and validates config text; `path` names the file in errors and anchors relative paths.
pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut v = Validator::new(text);
    let file: File = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            v.report(at, e.message().to_string());
            return Err(v.into_error(path));
        }
    };
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let config = v.config(file, &dir);
    match config {
        Some(c) if v.problems.is_empty() => Ok(c),
        _ => Err(v.into_error(path)),
    }
}

impl Validator<'_> {
    fn config(&mut self, file: File, dir: &Path) -> Option<Config> {
        let server = self.server(&file.server, dir);
        let scim = self.scim(&file.scim);
        let backend = self.backend(&file.backend, dir);
        let (tenants, keyring) = self.tenants(&file.tenants);
        let backend = backend.map(|mut b| {
            b.tenant_auth = self.tenant_auth(&file.tenants, dir);
            b
        });
        let users = self.users(&file.users);
        let groups = match &file.groups {
            Some(g) => Some(self.groups(g)?),
            None => None,
        };
        let proxy = self.proxy(&file.proxy);
        let guard = match &file.guard {
            Some(g) => Some(self.guard(g, dir)?),
            None => None,
        };
        if file.groups.is_none() {
            let rules = file.guard.iter().flat_map(|g| &g.rules);
            for group in rules.filter_map(|r| r.group.as_ref()) {
                self.at(
                    group,
                    "a rule with group = ... guards memberships that group push manages, which needs a [groups] section".into(),
                );
            }
        }
        let store = self.store(&file.store, dir);
        let team_admin = file
            .team_admin
            .as_ref()
            .and_then(|t| self.team_admin(t, file.guard.as_ref(), &scim.base_path));
        let brake = self.brake(file.deprovision_brake.as_ref(), &file.tenants);
        Some(Config {
            server: server?,
            scim,
            store: store?,
            backend: backend?,
            tenants,
            keyring,
            users: users?,
            groups,
            guard,
            team_admin,
            brake,
            proxy,
            env_vars: std::mem::take(&mut self.env_vars),
        })
    }

    fn proxy(&mut self, p: &ProxyFile) -> ProxySettings {
        let trusted = p
            .trusted_proxies
            .iter()
            .filter_map(|c| match c.get_ref().parse::<Cidr>() {
                Ok(cidr) => Some(cidr),
                Err(e) => {
                    self.at(c, format!("proxy.trusted_proxies: {e}"));
                    None
                }
            })
            .collect();
        let limit = |ms: Option<u64>, default: u64| {
            Some(ms.unwrap_or(default))
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
        };
        ProxySettings {
            read_timeout: limit(p.read_timeout_ms, 60_000),
            upgrade_idle_timeout: limit(p.upgrade_idle_timeout_ms, 3_600_000),
            forwarded: p
                .forwarded_headers
                .unwrap_or(true)
                .then(|| Forwarding::new(trusted)),
        }
    }

    fn guard(&mut self, g: &GuardFile, dir: &Path) -> Option<GuardSettings> {
        let identity = self.identity(&g.identity, dir);
        let tenant_known = g.identity.tenant_header.is_some()
            || g.identity.tenant_claim.is_some()
            || g.identity.tenant_field.is_some();
        for (on, key) in [
            (g.all_members_managed, "all_members_managed"),
            (g.ids_per_tenant, "ids_per_tenant"),
        ] {
            if on && !tenant_known {
                self.at(
                    &g.identity.source,
                    format!("{key} needs the caller's tenant: set tenant_header, tenant_claim or tenant_field"),
                );
            }
        }
        let rules: Vec<Option<Rule>> = g.rules.iter().map(|r| self.rule(r)).collect();
        if g.rules.is_empty() {
            self.at(
                &g.identity.source,
                "[guard] has no rules: add [[guard.rules]] or remove [guard]".into(),
            );
        }
        Some(GuardSettings {
            all_members_managed: g.all_members_managed,
            ids_per_tenant: g.ids_per_tenant,
            identity: identity?,
            max_body_bytes: g.max_body_bytes.unwrap_or(64 << 10),
            session_cookies: g.session_cookies.clone(),
            credential_params: g.credential_params.clone().unwrap_or_else(|| {
                channels::DEFAULT_CREDENTIAL_PARAMS
                    .iter()
                    .map(|p| p.to_string())
                    .collect()
            }),
            rules: rules.into_iter().collect::<Option<_>>()?,
        })
    }

    fn identity(&mut self, i: &IdentityFile, dir: &Path) -> Option<IdentitySource> {
        let header_name = |v: &mut Self, name: &str| match http::HeaderName::from_str(name) {
            Ok(n) => Some(n),
            Err(_) => {
                v.at(&i.source, format!("{name:?} is not a valid header name"));
                None
            }
        };
        match i.source.get_ref().as_str() {
            "header" => {
                let Some(name) = i.header.as_deref() else {
                    self.at(
                        &i.source,
                        "source = \"header\" needs `header` (the trusted header's name)".into(),
                    );
                    return None;
                };
                let mut optional = |h: Option<&str>| match h {
                    Some(h) => header_name(self, h).map(Some),
                    None => Some(None),
                };
                let tenant = optional(i.tenant_header.as_deref())?;
                let role = optional(i.role_header.as_deref())?;
                Some(IdentitySource::Header {
                    name: header_name(self, name)?,
                    tenant,
                    role,
                    edge: i.edge,
                })
            }
            "jwt" => Some(IdentitySource::Jwt {
                claim: i.claim.clone().unwrap_or_else(|| "sub".into()),
                tenant_claim: i.tenant_claim.clone(),
                role_claim: i.role_claim.clone(),
                settings: self.jwt(i, dir)?,
            }),
            "whoami" => {
                let Some(op) = &i.whoami else {
                    self.at(
                        &i.source,
                        "source = \"whoami\" needs [guard.identity.whoami] (method and path)"
                            .into(),
                    );
                    return None;
                };
                Some(IdentitySource::Whoami {
                    call: self.operation(op, &[])?,
                    id_field: dotted(i.id_field.as_deref().unwrap_or("id")),
                    tenant_field: i.tenant_field.as_deref().map(dotted),
                    role_field: i.role_field.as_deref().map(dotted),
                    cache: Duration::from_secs(i.cache_seconds.unwrap_or(30)),
                })
            }
            other => {
                self.at(
                    &i.source,
                    format!("identity source {other:?} is not \"header\", \"jwt\" or \"whoami\""),
                );
                None
            }
        }
    }

    /// The algorithm (HS256 by default) and exactly one key source that suits it.
    fn jwt(&mut self, i: &IdentityFile, dir: &Path) -> Option<JwtSettings> {
        let algorithm = match &i.jwt_algorithm {
            None => jsonwebtoken::Algorithm::HS256,
            Some(name) => match jwt::parse_algorithm(name.get_ref()) {
                Some(a) => a,
                None => {
                    self.at(
                        name,
                        format!("jwt_algorithm {:?} is not one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA", name.get_ref()),
                    );
                    return None;
                }
            },
        };
        let files = [&i.jwt_public_key_file, &i.jwt_jwks_file];
        let key = match (&i.jwt_secret_env, files) {
            (Some(var), [None, None]) if jwt::is_hmac(algorithm) => {
                JwtKey::SecretEnv(self.env_var(var, "guard.identity.jwt_secret_env".into())?)
            }
            (None, [Some(pem), None]) if !jwt::is_hmac(algorithm) => {
                JwtKey::PublicKeyFile(dir.join(pem.get_ref()))
            }
            (None, [None, Some(set)]) if !jwt::is_hmac(algorithm) => {
                JwtKey::JwksFile(dir.join(set.get_ref()))
            }
            _ => {
                let need = if jwt::is_hmac(algorithm) {
                    "`jwt_secret_env` (the variable holding the secret), and no key file"
                } else {
                    "one of `jwt_public_key_file` (PEM) or `jwt_jwks_file`, and no jwt_secret_env"
                };
                let anchor = i.jwt_algorithm.as_ref().unwrap_or(&i.source);
                self.at(
                    anchor,
                    format!("source = \"jwt\" with {algorithm:?} needs {need}"),
                );
                return None;
            }
        };
        Some(JwtSettings { algorithm, key })
    }

    fn rule(&mut self, r: &RuleFile) -> Option<Rule> {
        let path = match RouteTemplate::parse(r.path.get_ref()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.at(&r.path, e.to_string());
                None
            }
        };
        let mut methods = Vec::new();
        for m in &r.methods {
            match http::Method::from_str(&m.get_ref().to_ascii_uppercase()) {
                Ok(method) => methods.push(method),
                Err(_) => self.at(m, format!("{:?} is not an HTTP method", m.get_ref())),
            }
        }
        let tenant = r.tenant.as_ref().map(|t| self.path_param(r, t, "tenant"));
        let group = r.group.as_ref().map(|g| self.path_param(r, g, "group"));
        let member = match r.member.as_ref() {
            None => Member::Caller,
            Some(m) if m.get_ref() == "me" => Member::Caller,
            Some(m) => Member::Param(self.path_param(r, m, "member")),
        };
        Some(Rule {
            name: r.name.get_ref().clone(),
            methods,
            path: path?,
            fields: r.fields.clone(),
            member,
            tenant,
            group,
        })
    }

    /// The name of the path parameter `key = "{name}"` of rule `r` refers to (braces optional),
    /// reported when the rule's path has no such parameter.
    fn path_param(&mut self, r: &RuleFile, value: &Spanned<String>, key: &str) -> String {
        let name = value
            .get_ref()
            .trim_start_matches('{')
            .trim_end_matches('}');
        if !r.path.get_ref().contains(&format!("{{{name}}}")) {
            self.at(
                value,
                format!("{key} = {name:?} is not a {{parameter}} of the rule's path"),
            );
        }
        name.to_string()
    }

    fn addresses(&mut self, list: &[Spanned<String>]) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for addr in list {
            match SocketAddr::from_str(addr.get_ref()) {
                Ok(a) => out.push(a),
                Err(_) => self.at(
                    addr,
                    format!("listen address {:?} is not IP:PORT", addr.get_ref()),
                ),
            }
        }
        out
    }

    fn server(&mut self, s: &ServerFile, dir: &Path) -> Option<ServerSettings> {
        let listen = self.addresses(&s.listen);
        let tls = s.tls.as_ref().map(|t| TlsSettings {
            listen: self.addresses(&t.listen),
            cert: dir.join(t.cert.get_ref()),
            key: dir.join(t.key.get_ref()),
            http2: t.http2.unwrap_or(true),
        });
        if s.listen.is_empty() && tls.as_ref().is_none_or(|t| t.listen.is_empty()) {
            self.report(
                0,
                "server.listen (or server.tls.listen) needs at least one address".into(),
            );
        }
        let admin_listen = s
            .admin_listen
            .as_ref()
            .and_then(|a| self.addresses(std::slice::from_ref(a)).pop());
        let auth_failures = match &s.auth_failures {
            Some(a) => AuthFailureLimit {
                max: a.max.max(1),
                window: Duration::from_secs(a.window_seconds.max(1)),
            },
            None => AuthFailureLimit {
                max: 20,
                window: Duration::from_secs(60),
            },
        };
        Some(ServerSettings {
            listen,
            threads: s.threads.unwrap_or(2).max(1),
            grace_period: Duration::from_secs(s.grace_period_seconds.unwrap_or(10)),
            max_body_bytes: s.max_body_bytes.unwrap_or(1 << 20),
            header_timeout: Duration::from_millis(s.header_timeout_ms.unwrap_or(10_000)),
            body_timeout: Duration::from_millis(s.body_timeout_ms.unwrap_or(30_000)),
            max_backend_calls: s.max_backend_calls.unwrap_or(64).max(1),
            admin_listen,
            tls,
            auth_failures,
            provisioning_log: s.provisioning_log.as_ref().map(|p| dir.join(p)),
        })
    }

    fn scim(&mut self, s: &ScimFile) -> ScimSettings {
        let base = match &s.base_path {
            Some(b) => {
                let p = b.get_ref().trim_end_matches('/').to_string();
                if !p.starts_with('/') || p.contains(['?', '#', '%', '\\']) {
                    self.at(
                        b,
                        format!(
                            "scim.base_path {:?} must be an absolute path like /scim/v2",
                            b.get_ref()
                        ),
                    );
                }
                p
            }
            None => "/scim/v2".to_string(),
        };
        let public_url = s.public_url.as_ref().map(|u| {
            let text = u.get_ref().trim_end_matches('/').to_string();
            if !(text.starts_with("https://") || text.starts_with("http://")) {
                self.at(
                    u,
                    format!("scim.public_url {text:?} must start with https:// or http://"),
                );
            }
            text
        });
        let cursor_key_env = s
            .cursor_key_env
            .as_ref()
            .and_then(|v| self.env_var(v, "scim.cursor_key_env".into()));
        let cursor_timeout_secs = match &s.cursor_timeout_seconds {
            Some(t) if *t.get_ref() == 0 => {
                self.at(t, "scim.cursor_timeout_seconds must be at least 1".into());
                1
            }
            Some(t) => *t.get_ref(),
            None => crate::scim::cursor::DEFAULT_TIMEOUT_SECS,
        };
        ScimSettings {
            base_path: base,
            public_url,
            max_results: s.max_results.unwrap_or(100).max(1),
            max_scan: s.max_scan.unwrap_or(10_000),
            cursor_key_env,
            cursor_timeout_secs,
        }
    }

    fn tenants(&mut self, files: &[TenantFile]) -> (Vec<Arc<Tenant>>, Keyring) {
        let mut tenants: Vec<Arc<Tenant>> = Vec::new();
        let mut keys: Vec<ApiKey> = Vec::new();
        for t in files {
            let name = t.name.get_ref().clone();
            if tenants.iter().any(|o| o.name == name) {
                self.at(&t.name, format!("tenant {name:?} is defined twice"));
            }
            let tenant = Arc::new(Tenant {
                backend_name: t.backend.clone().unwrap_or_else(|| name.clone()),
                name,
            });
            for k in &t.keys {
                if keys.iter().any(|o| &o.id == k.id.get_ref()) {
                    self.at(&k.id, format!("key id {:?} is used twice", k.id.get_ref()));
                }
                if parse_hash(k.sha256.get_ref()).is_some_and(|h| keys.iter().any(|o| o.hash == h))
                {
                    self.at(
                        &k.sha256,
                        "this key hash is listed twice; a key belongs to one tenant".into(),
                    );
                }
                match parse_hash(k.sha256.get_ref()) {
                    Some(hash) => keys.push(ApiKey {
                        id: k.id.get_ref().clone(),
                        tenant: tenant.clone(),
                        hash,
                    }),
                    None => self.at(
                        &k.sha256,
                        "sha256 must be 64 hex digits (use `scimgate token new`)".into(),
                    ),
                }
            }
            tenants.push(tenant);
        }
        (tenants, Keyring::new(keys))
    }

    fn users(&mut self, u: &UsersFile) -> Option<UserApi> {
        let list = self.list(&u.list, &[Var::Tenant]);
        let get = self.operation(&u.get, &[Var::Tenant, Var::Id]);
        let create = self.operation(&u.create, &[Var::Tenant]);
        let update = self.update(&u.update);
        let delete = self.operation(&u.delete, &[Var::Tenant, Var::Id]);
        let deactivate = u
            .deactivate
            .as_ref()
            .map(|o| self.operation(o, &[Var::Tenant, Var::Id]));
        let reactivate = u
            .reactivate
            .as_ref()
            .map(|o| self.operation(o, &[Var::Tenant, Var::Id]));
        if deactivate.is_some() != reactivate.is_some() {
            self.report(
                0,
                "users.deactivate and users.reactivate go together".into(),
            );
        }
        let time_format = self.time_format(u.time_format.as_ref(), "users");
        let fields: Vec<Option<FieldMap>> = u.fields.iter().map(|f| self.field(f)).collect();
        let filters = self.filters(&u.filters, &fields);
        let errors: Vec<Option<ErrorRule>> = u.errors.iter().map(|e| self.error_rule(e)).collect();
        let throttling = u
            .throttling
            .as_ref()
            .map(|t| self.throttling(t))
            .unwrap_or_default();
        Some(UserApi {
            id_field: dotted(u.id_field.as_deref().unwrap_or("id")),
            created_field: u.created_field.as_deref().map(dotted),
            modified_field: u.modified_field.as_deref().map(dotted),
            time_format: time_format?,
            list: list?,
            get: get?,
            create: create?,
            update: update?,
            delete: delete?,
            deactivate: deactivate.flatten(),
            reactivate: reactivate.flatten(),
            filters,
            fields: fields.into_iter().collect::<Option<_>>()?,
            errors: errors.into_iter().collect::<Option<_>>()?,
            throttling,
        })
    }

    fn update(&mut self, u: &UpdateFile) -> Option<Update> {
        let op = OperationFile {
            method: u.method.clone(),
            path: u.path.clone(),
            query: u.query.clone(),
            result: u.result.clone(),
            body: u.body.clone(),
        };
        let call = self.operation(&op, &[Var::Tenant, Var::Id]);
        let style = match u.style.as_ref().map(|s| (s, s.get_ref().as_str())) {
            None | Some((_, "partial")) => UpdateStyle::Partial,
            Some((_, "replace")) => UpdateStyle::Replace,
            Some((s, other)) => {
                self.at(
                    s,
                    format!("users.update.style {other:?} is not \"partial\" or \"replace\""),
                );
                UpdateStyle::Partial
            }
        };
        let version = match &u.version {
            Some(v) => Some(self.versioning(v)?),
            None => None,
        };
        Some(Update {
            call: call?,
            style,
            version,
        })
    }

    fn versioning(&mut self, v: &Spanned<VersionFile>) -> Option<Versioning> {
        let f = v.get_ref();
        let from = match (&f.from_header, &f.from_field) {
            (Some(h), None) => VersionAt::Header(self.header_name(v, h)?),
            (None, Some(field)) => VersionAt::Field(dotted(field)),
            _ => {
                self.at(
                    v,
                    "users.update.version needs exactly one of from_header (e.g. \"ETag\") or from_field".into(),
                );
                return None;
            }
        };
        let send = match (&f.send_header, &f.send_field) {
            (Some(h), None) => VersionAt::Header(self.header_name(v, h)?),
            (None, Some(field)) => VersionAt::Field(dotted(field)),
            (None, None) => match &from {
                VersionAt::Header(_) => VersionAt::Header(http::header::IF_MATCH),
                VersionAt::Field(path) => VersionAt::Field(path.clone()),
            },
            (Some(_), Some(_)) => {
                self.at(
                    v,
                    "users.update.version takes send_header or send_field, not both".into(),
                );
                return None;
            }
        };
        Some(Versioning {
            from,
            send,
            max_attempts: f.max_attempts.unwrap_or(3).clamp(1, 20),
        })
    }

    fn header_name<T>(&mut self, at: &Spanned<T>, name: &str) -> Option<http::HeaderName> {
        match http::HeaderName::from_str(name) {
            Ok(n) => Some(n),
            Err(_) => {
                self.at(at, format!("{name:?} is not a valid header name"));
                None
            }
        }
    }

    fn throttling(&mut self, t: &ThrottlingFile) -> Throttling {
        let defaults = Throttling::default();
        Throttling {
            max_wait: t
                .max_wait_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.max_wait),
            rate: self.rate(t.rate.as_ref(), t.burst),
            tenant_rate: self.rate(t.tenant_rate.as_ref(), t.tenant_burst),
        }
    }

    fn rate(&mut self, rate: Option<&Spanned<f64>>, burst: Option<u32>) -> Option<Rate> {
        let r = rate?;
        let per_second = *r.get_ref();
        if !(per_second.is_finite() && per_second > 0.0) {
            self.at(
                r,
                format!("a rate must be a positive number of calls per second, not {per_second}"),
            );
            return None;
        }
        Some(Rate {
            per_second,
            burst: burst.unwrap_or_else(|| per_second.ceil() as u32).max(1),
        })
    }

    pub(super) fn template(&mut self, t: &Spanned<String>, allowed: &[Var]) -> Option<Template> {
        match Template::parse(t.get_ref()) {
            Ok(tpl) => {
                for part in &tpl.parts {
                    if let Part::Var(var) = part {
                        if !allowed.contains(var) {
                            self.at(t, format!("placeholder {var:?} cannot be used here (allowed: {allowed:?})"));
                        }
                    }
                }
                Some(tpl)
            }
            Err(e) => {
                self.at(t, e.to_string());
                None
            }
        }
    }

    pub(super) fn pointer(&mut self, p: Option<&Spanned<String>>) -> String {
        match p {
            Some(s) if !s.get_ref().is_empty() && !s.get_ref().starts_with('/') => {
                self.at(
                    s,
                    format!(
                        "{:?} must be a JSON pointer (\"\" or starting with '/')",
                        s.get_ref()
                    ),
                );
                String::new()
            }
            Some(s) => s.get_ref().clone(),
            None => String::new(),
        }
    }

    pub(super) fn operation(&mut self, o: &OperationFile, allowed: &[Var]) -> Option<Operation> {
        let method = match http::Method::from_str(&o.method.get_ref().to_ascii_uppercase()) {
            Ok(m) => Some(m),
            Err(_) => {
                self.at(
                    &o.method,
                    format!("{:?} is not an HTTP method", o.method.get_ref()),
                );
                None
            }
        };
        let path = self.template(&o.path, allowed);
        if !o.path.get_ref().starts_with('/') {
            self.at(&o.path, "a backend path must start with '/'".into());
        }
        let mut query = Vec::new();
        for (k, v) in &o.query {
            match Template::parse(v) {
                Ok(t) => query.push((k.clone(), t)),
                Err(e) => self.at(&o.path, format!("query parameter {k}: {e}")),
            }
        }
        let result = self.pointer(o.result.as_ref());
        let body = self.pointer(o.body.as_ref());
        Some(Operation {
            method: method?,
            path: path?,
            query,
            result,
            body,
        })
    }

    pub(super) fn list(&mut self, l: &ListFile, allowed: &[Var]) -> Option<ListOperation> {
        let op = OperationFile {
            method: l.method.clone(),
            path: l.path.clone(),
            query: l.query.clone(),
            result: None,
            body: None,
        };
        let call = self.operation(&op, allowed);
        let results = self.pointer(Some(&l.results));
        let total = l.total.as_ref().map(|t| self.pointer(Some(t)));
        let p = &l.paging;
        let size = p.size.clone().unwrap_or_else(|| "per_page".into());
        let paging = match p.style.get_ref().as_str() {
            "page" => Some(Paging::Page {
                page: p.page.clone().unwrap_or_else(|| "page".into()),
                size,
                first: p.first_page.unwrap_or(1),
            }),
            "offset" => Some(Paging::Offset {
                offset: p.offset.clone().unwrap_or_else(|| "offset".into()),
                size,
            }),
            "cursor" => match &p.next {
                Some(next) => Some(Paging::Cursor {
                    cursor: p.cursor.clone().unwrap_or_else(|| "cursor".into()),
                    size,
                    next: self.pointer(Some(next)),
                }),
                None => {
                    self.at(
                        &p.style,
                        "paging style \"cursor\" needs `next`, the JSON pointer of the next page's token in a list answer".into(),
                    );
                    None
                }
            },
            "after" => Some(Paging::After {
                after: p.after.clone().unwrap_or_else(|| "after".into()),
                size,
            }),
            other => {
                self.at(
                    &p.style,
                    format!("paging style {other:?} is not \"page\", \"offset\", \"cursor\" or \"after\""),
                );
                None
            }
        };
        Some(ListOperation {
            call: call?,
            results,
            total,
            paging: paging?,
            max_size: p.max_size.unwrap_or(100).max(1),
        })
    }

    /// `[users.filters]`: string attributes, or an element pinned as a field mapping pins it
    /// (`'emails[type eq "work"].value' = "mail"` needs a field mapping that exact element).
    pub(super) fn filters(
        &mut self,
        f: &std::collections::BTreeMap<String, Spanned<String>>,
        fields: &[Option<FieldMap>],
    ) -> Vec<SearchParam> {
        let mut out = Vec::new();
        for (attr, param) in f {
            match search_target(self.kind, attr, fields) {
                Ok(target) => out.push(SearchParam {
                    target,
                    param: param.get_ref().clone(),
                }),
                Err(e) => self.at(param, format!("users.filters: {e}")),
            }
        }
        out
    }

    pub(super) fn error_rule(&mut self, e: &ErrorFile) -> Option<ErrorRule> {
        let bad_status = |s: u16| !(100..=599).contains(&s);
        if bad_status(e.status) || e.scim_status.is_some_and(|s| !(400..=599).contains(&s)) {
            let at = e.scim_type.as_ref().map(|t| t.span().start).unwrap_or(0);
            self.report(at, format!("users.errors: status {} / scim_status {:?} out of range (backend 100-599, SCIM 400-599)", e.status, e.scim_status));
        }
        let scim_type = match &e.scim_type {
            Some(t) => match ScimType::parse(t.get_ref()) {
                Some(st) => Some(st),
                None => {
                    self.at(t, format!("{:?} is not an RFC 7644 scimType", t.get_ref()));
                    return None;
                }
            },
            None => None,
        };
        let body_field = match (&e.body_field, &e.equals) {
            (Some(p), Some(v)) => Some((self.pointer(Some(p)), toml_to_json(v))),
            (None, None) => None,
            (Some(p), None) => {
                self.at(
                    p,
                    "users.errors: body_field needs `equals` (the value to match)".into(),
                );
                None
            }
            (None, Some(_)) => {
                let at = e.scim_type.as_ref().map(|t| t.span().start).unwrap_or(0);
                self.report(
                    at,
                    "users.errors: `equals` needs body_field (a JSON pointer into the error body)"
                        .into(),
                );
                None
            }
        };
        if body_field.as_ref().is_some_and(|(p, _)| p.is_empty()) {
            if let Some(p) = &e.body_field {
                self.at(
                    p,
                    "users.errors: body_field must point into the body (\"/errors/0/code\")".into(),
                );
            }
        }
        Some(ErrorRule {
            status: e.status,
            body_contains: e.body_contains.clone(),
            body_field,
            scim_status: e.scim_status.unwrap_or(e.status),
            scim_type,
            detail: e.detail.clone(),
        })
    }
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

/// The SCIM side of a `[users.filters]` entry: a string attribute, or an element pinned exactly
/// as a field mapping pins it.
fn search_target(
    kind: schema::ResourceKind,
    attr: &str,
    fields: &[Option<FieldMap>],
) -> Result<ScimTarget, String> {
    let not_string = || format!("{attr:?} is not a string attribute of the {kind:?} schema");
    if !attr.contains('[') {
        return match schema::resolve_path_for(kind, attr) {
            Some(r) if r.leaf().ty == schema::AttrType::String => Ok(ScimTarget {
                attr: r,
                element: None,
            }),
            _ => Err(not_string()),
        };
    }
    let target = fields::parse_scim_target_for(kind, attr).map_err(|e| e.to_string())?;
    if target.attr.leaf().ty != schema::AttrType::String {
        return Err(not_string());
    }
    let mapped = fields
        .iter()
        .flatten()
        .filter_map(|f| f.scim.as_ref())
        .any(|s| s.same_as(&target));
    if !mapped {
        return Err(format!(
            "{attr:?} pins an element that no [[users.fields]] maps: the backend's parameter \
             can only search the element a field mapping pins the same way"
        ));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::timestamp::TimeFormat;
    use crate::config::Problem;
    use serde_json::Value;

    const DEMO: &str = include_str!("../../conf/demo.toml");

    fn problems(text: &str) -> Vec<Problem> {
        from_str(text, Path::new("t.toml")).unwrap_err().problems
    }

    #[test]
    fn the_demo_config_is_valid() {
        let c = from_str(DEMO, Path::new("conf/demo.toml")).unwrap();
        assert_eq!(c.scim.base_path, "/scim/v2");
        let filters: Vec<(String, &str)> = c
            .users
            .filters
            .iter()
            .map(|f| (f.target.attr.canonical(), f.param.as_str()))
            .collect();
        assert_eq!(filters, [("userName".to_string(), "email")]);
        let rules = c.guard.unwrap().rules;
        assert_eq!(rules.len(), 6);
        assert_eq!(rules[4].group.as_deref(), Some("project"));
        assert!(c.groups.is_some());
    }

    #[test]
    fn a_membership_rule_needs_groups_and_a_group_parameter() {
        let start = DEMO.find("[groups]").unwrap();
        let end = DEMO.find("# ---- the guard").unwrap();
        let without_groups = format!("{}{}", &DEMO[..start], &DEMO[end..]);
        let found = problems(&without_groups);
        assert!(
            found
                .iter()
                .any(|p| p.message.contains("needs a [groups] section")),
            "{found:?}"
        );
        let wrong_param = DEMO.replacen("group = \"project\"", "group = \"proj\"", 1);
        let found = problems(&wrong_param);
        assert!(
            found
                .iter()
                .any(|p| p.message.contains("group = \"proj\" is not a {parameter}")),
            "{found:?}"
        );
    }

    /// `[users.filters]` with the pinned element `emails[type eq "work"].value`, and (when
    /// `mapped`) a field mapping that pins `field_pin`.
    fn pinned_filter(field_pin: Option<&str>) -> String {
        let mut text = DEMO.replacen(
            "userName = \"email\"",
            "userName = \"email\"\n'emails[type eq \"work\"].value' = \"work_email\"",
            1,
        );
        if let Some(pin) = field_pin {
            text.push_str(&format!(
                "\n[[users.fields]]\nscim = '{pin}'\nnative = \"work_email\"\n"
            ));
        }
        text
    }

    #[test]
    fn a_pinned_filter_needs_a_field_that_pins_the_same_element() {
        let c = from_str(
            &pinned_filter(Some("emails[type eq \"work\"].value")),
            Path::new("t.toml"),
        )
        .unwrap();
        let pinned = c
            .users
            .filters
            .iter()
            .find(|f| f.target.element.is_some())
            .expect("the pinned filter");
        assert_eq!(pinned.target.attr.canonical(), "emails.value");
        assert_eq!(
            pinned.target.element,
            Some(vec![("type", serde_json::json!("work"))])
        );
        assert_eq!(pinned.param, "work_email");
        for text in [
            pinned_filter(None),
            pinned_filter(Some("emails[type eq \"home\"].value")),
            pinned_filter(Some("phoneNumbers[type eq \"work\"].value")),
        ] {
            let p = problems(&text);
            let line = text
                .lines()
                .position(|l| l.starts_with("'emails[type eq"))
                .unwrap()
                + 1;
            assert!(
                p.iter()
                    .any(|p| p.line == line && p.message.contains("pins an element")),
                "{p:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_errors_with_their_position() {
        let text = DEMO.replacen("threads = 2", "threads = 2\nthreadz = 3", 1);
        let p = problems(&text);
        let line = text.lines().position(|l| l.starts_with("threadz")).unwrap() + 1;
        assert_eq!((p[0].line, p[0].column), (line, 1), "{p:?}");
        assert!(p[0].message.contains("threadz"), "{p:?}");
    }

    #[test]
    fn continuation_paging_styles_and_cursor_settings_are_read() {
        let demo_paging =
            r#"paging = { style = "page", page = "page", size = "per_page", max_size = 200 }"#;
        assert!(DEMO.contains(demo_paging), "conf/demo.toml changed shape");
        let with = |paging: &str| DEMO.replacen(demo_paging, paging, 1);
        let c = from_str(
            &with(r#"paging = { style = "cursor", cursor = "tok", size = "n", next = "/next/token" }"#)
                .replace("[scim]\n", "[scim]\ncursor_key_env = \"K\"\ncursor_timeout_seconds = 60\n"),
            Path::new("t.toml"),
        )
        .unwrap();
        assert!(matches!(&c.users.list.paging,
            Paging::Cursor { cursor, size, next } if cursor == "tok" && size == "n" && next == "/next/token"));
        assert_eq!(
            (c.scim.cursor_key_env.as_deref(), c.scim.cursor_timeout_secs),
            (Some("K"), 60)
        );
        let c = from_str(
            &with(r#"paging = { style = "after", size = "n" }"#),
            Path::new("t.toml"),
        )
        .unwrap();
        assert!(matches!(&c.users.list.paging, Paging::After { after, .. } if after == "after"));
        assert_eq!(
            (c.scim.cursor_key_env, c.scim.cursor_timeout_secs),
            (None, 3600)
        );
        let p = problems(&with(r#"paging = { style = "cursor" }"#));
        assert!(p[0].message.contains("needs `next`"), "{p:?}");
        let p = problems(&DEMO.replace("[scim]\n", "[scim]\ncursor_timeout_seconds = 0\n"));
        assert!(
            p[0].message
                .contains("cursor_timeout_seconds must be at least 1"),
            "{p:?}"
        );
    }

    #[test]
    fn semantic_problems_are_all_reported_with_positions() {
        let text = DEMO
            .replacen(
                "path = \"/api/teams/{tenant}/members/{id}\"",
                "path = \"/api/teams/{tenant}/members/{nope}\"",
                1,
            )
            .replacen("scim = \"name.givenName\"", "scim = \"name.nosuch\"", 1)
            .replacen("scim_type = \"uniqueness\"", "scim_type = \"unique\"", 1);
        let p = problems(&text);
        assert_eq!(p.len(), 3, "{p:?}");
        let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert_eq!(p[0].line, line_of("{nope}"));
        assert!(p[0].message.contains("unknown placeholder"));
        assert_eq!(p[1].line, line_of("name.nosuch"));
        assert_eq!(p[2].line, line_of("\"unique\""));
        let rendered = from_str(&text, Path::new("conf/x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            rendered.starts_with(&format!("conf/x.toml:{}:", p[0].line)),
            "{rendered}"
        );
    }

    #[test]
    fn update_style_version_throttling_and_structured_errors() {
        let text = DEMO
            .replacen(
                "[users.update]\n",
                "[users.update]\nstyle = \"replace\"\n",
                1,
            )
            .replacen(
                "[users.delete]",
                "[users.update.version]\nfrom_header = \"ETag\"\nmax_attempts = 5\n\n[users.throttling]\nmax_wait_ms = 1500\nrate = 20.0\ntenant_rate = 5.0\ntenant_burst = 2\n\n[users.delete]",
                1,
            )
            + "\n[[users.errors]]\nstatus = 400\nbody_field = \"/errors/0/code\"\nequals = \"taken\"\nscim_status = 409\n";
        let c = from_str(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
        let u = &c.users.update;
        assert_eq!(u.style, UpdateStyle::Replace);
        assert_eq!(
            u.version,
            Some(Versioning {
                from: VersionAt::Header(http::header::ETAG),
                send: VersionAt::Header(http::header::IF_MATCH),
                max_attempts: 5,
            })
        );
        let t = &c.users.throttling;
        assert_eq!(t.max_wait, Duration::from_millis(1500));
        assert_eq!(
            t.rate,
            Some(Rate {
                per_second: 20.0,
                burst: 20
            })
        );
        assert_eq!(
            t.tenant_rate,
            Some(Rate {
                per_second: 5.0,
                burst: 2
            })
        );
        let last = c.users.errors.last().unwrap();
        assert_eq!(
            last.body_field,
            Some(("/errors/0/code".into(), Value::String("taken".into())))
        );
        assert_eq!(last.scim_status, 409);
        let defaults = from_str(DEMO, Path::new("t.toml")).unwrap().users;
        assert_eq!(defaults.update.style, UpdateStyle::Partial);
        assert_eq!(defaults.update.version, None);
        assert_eq!(defaults.throttling, Throttling::default());
    }

    #[test]
    fn rejects_bad_update_styles_versions_rates_and_error_fields() {
        let text = DEMO
            .replacen("[users.update]\n", "[users.update]\nstyle = \"merge\"\n", 1)
            .replacen(
                "[users.delete]",
                "[users.update.version]\nfrom_header = \"ETag\"\nfrom_field = \"v\"\n\n[users.throttling]\nrate = 0.0\n\n[users.delete]",
                1,
            )
            + "\n[[users.errors]]\nstatus = 400\nbody_field = \"errors.0\"\nequals = 1\n";
        let messages: Vec<String> = problems(&text).into_iter().map(|p| p.message).collect();
        for want in [
            "is not \"partial\" or \"replace\"",
            "exactly one of from_header",
            "positive number of calls per second",
            "must be a JSON pointer",
        ] {
            assert!(
                messages.iter().any(|m| m.contains(want)),
                "{want}: {messages:?}"
            );
        }
    }

    #[test]
    fn time_formats_and_their_mistakes() {
        let with = |format: &str| {
            DEMO.replacen(
                "modified_field = \"updated_at\"\n",
                &format!("modified_field = \"updated_at\"\ntime_format = \"{format}\"\n"),
                1,
            )
        };
        let c = from_str(&with("epoch_millis"), Path::new("t.toml")).unwrap();
        assert_eq!(c.users.time_format, TimeFormat::EpochMillis);
        assert_eq!(
            from_str(DEMO, Path::new("t.toml"))
                .unwrap()
                .users
                .time_format,
            TimeFormat::Rfc3339
        );
        for (bad, want) in [("%Y-%q", "unknown %q"), ("millis", "\"epoch_millis\"")] {
            let text = with(bad);
            let p = problems(&text);
            let line = text.lines().position(|l| l.contains(bad)).unwrap() + 1;
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!((p[0].line, p[0].column), (line, 15), "{p:?}");
            assert!(p[0].message.starts_with("users.time_format"), "{p:?}");
            assert!(p[0].message.contains(want), "{p:?}");
        }
    }

    #[test]
    fn rejects_bad_addresses_hashes_and_guard_members() {
        let text = DEMO
            .replacen(
                "listen = [\"127.0.0.1:8080\"]",
                "listen = [\"localhost\"]",
                1,
            )
            .replacen(
                "# keys = [{ id = \"entra-2026-11\", sha256 = \"…\" }]",
                "keys = [{ id = \"k\", sha256 = \"abc\" }]",
                1,
            )
            .replacen("member = \"member\"", "member = \"who\"", 1);
        let messages: Vec<String> = problems(&text).into_iter().map(|p| p.message).collect();
        assert!(
            messages.iter().any(|m| m.contains("is not IP:PORT")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("64 hex digits")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("not a {parameter}")),
            "{messages:?}"
        );
    }

    #[test]
    fn proxy_section_defaults_values_and_bad_blocks() {
        let c = from_str(DEMO, Path::new("conf/demo.toml")).unwrap();
        assert_eq!(c.proxy.read_timeout, Some(Duration::from_secs(60)));
        assert_eq!(
            c.proxy.upgrade_idle_timeout,
            Some(Duration::from_secs(3600))
        );
        assert_eq!(c.proxy.forwarded, Some(Forwarding::default()));

        let text = format!(
            "{DEMO}\n[proxy]\nread_timeout_ms = 0\nupgrade_idle_timeout_ms = 2500\n\
             trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n"
        );
        let c = from_str(&text, Path::new("t.toml")).unwrap();
        assert_eq!(c.proxy.read_timeout, None, "0 is no limit");
        assert_eq!(
            c.proxy.upgrade_idle_timeout,
            Some(Duration::from_millis(2500))
        );
        let trusted = c.proxy.forwarded.unwrap();
        assert!(trusted.trusts(Some("10.9.8.7".parse().unwrap())));
        assert!(trusted.trusts(Some("::1".parse().unwrap())));
        assert!(!trusted.trusts(Some("192.0.2.1".parse().unwrap())));

        let off = format!("{DEMO}\n[proxy]\nforwarded_headers = false\n");
        assert_eq!(
            from_str(&off, Path::new("t.toml")).unwrap().proxy.forwarded,
            None
        );

        let bad = format!("{DEMO}\n[proxy]\ntrusted_proxies = [\"10.0.0.1/8\", \"lb\"]\n");
        let p = problems(&bad);
        let line = bad
            .lines()
            .position(|l| l.starts_with("trusted_proxies"))
            .unwrap()
            + 1;
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().all(|p| p.line == line), "{p:?}");
        assert!(p[0].message.contains("host bits"), "{p:?}");
        assert!(p[1].message.contains("not an IP address"), "{p:?}");
    }
}
