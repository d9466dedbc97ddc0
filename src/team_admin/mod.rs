//! Team admins turn SCIM on for their own team and manage its SCIM API keys in the app, with the
//! app's own session and no operator: [`TeamAdmin`] answers the API under the configured path and
//! serves the page that calls it. Callers are identified as the guard identifies them (whoami,
//! JWT or a trusted header) and must be admins of the team the path names: for a caller of
//! another team the team does not exist (`404`), a member who is not an admin is refused
//! (`403`). Writes must come from the gateway's own origin ([`origin`]). Every enable, disable,
//! key creation and revocation goes to the provisioning log with who did it, and is counted.

pub mod origin;
mod page;
mod response;
pub mod route;

pub use response::AdminResponse;

use crate::auth::store_keys::StoreKeys;
use crate::auth::{generate_key, hash_key, key_id};
use crate::guard::decision::Caller;
use crate::guard::identity::IdentityError;
use crate::store::keys::{now, KeyAdded, Revocation, StoreKey};
use crate::store::{Store, StoreError};
use crate::telemetry::provisioning::ProvisioningEvent;
use crate::telemetry::Telemetry;
use http::{HeaderMap, Method};
use route::AdminOperation;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

/// Longest key label, in characters.
const MAX_LABEL: usize = 100;

/// The `[team_admin]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamAdminSettings {
    /// Where the page is served; the API is under `{path}/api`.
    pub path: String,
    /// The roles (as the identity source names them) that administer a team.
    pub admin_roles: Vec<String>,
}

/// One request to the page or the API.
pub struct AdminRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path after the configured one (`/api/teams/acme`, or empty for the page).
    pub path: &'a str,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The request's body.
    pub body: &'a [u8],
    /// The Tenant URL an identity provider is given for this gateway.
    pub tenant_url: &'a str,
    /// The gateway's request id, for the provisioning log.
    pub request_id: &'a str,
}

/// The team-admin API and page for every team.
pub struct TeamAdmin {
    settings: TeamAdminSettings,
    store: Arc<dyn Store>,
    keys: Arc<StoreKeys>,
    operator_tenants: Vec<String>,
    telemetry: Arc<Telemetry>,
}

impl TeamAdmin {
    /// The API over `store`, changing keys through `keys` (so that a revocation acts here at
    /// once); `operator_tenants` are the teams the config file gives SCIM keys.
    pub fn new(
        settings: TeamAdminSettings,
        store: Arc<dyn Store>,
        keys: Arc<StoreKeys>,
        operator_tenants: Vec<String>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        TeamAdmin {
            settings,
            store,
            keys,
            operator_tenants,
            telemetry,
        }
    }

    /// Where the page is served; the API is under `{path}/api`.
    pub fn path(&self) -> &str {
        &self.settings.path
    }

    /// Whether a request for `path` (after the configured one) goes to the API, whose callers
    /// must be identified.
    pub fn is_api(path: &str) -> bool {
        path == "/api" || path.starts_with("/api/")
    }

    /// Answers one request; `caller` is who sent it (resolved for API requests only).
    pub async fn handle(
        &self,
        req: &AdminRequest<'_>,
        caller: Option<Result<Caller, IdentityError>>,
    ) -> AdminResponse {
        let Some(api_path) = req.path.strip_prefix("/api") else {
            return page::serve(req.method, req.path);
        };
        let operation = AdminOperation::route(req.method, api_path);
        match &operation {
            AdminOperation::Unknown => {
                return AdminResponse::error(404, "not_found", "no such team-admin endpoint")
            }
            AdminOperation::NotAllowed(allow) => {
                let mut r = AdminResponse::error(405, "method_not_allowed", "use another method");
                r.headers.push(("allow", (*allow).to_string()));
                return r;
            }
            _ => {}
        }
        if operation.writes() {
            if let Err(why) = origin::same_origin(req.headers) {
                return AdminResponse::error(403, "cross_site", why.0);
            }
        }
        let caller = match caller {
            Some(Ok(c)) => c,
            Some(Err(IdentityError::Unavailable(why))) => {
                tracing::warn!(error = %why, "team admin: the caller cannot be identified");
                return AdminResponse::error(503, "unavailable", "the app cannot say who you are");
            }
            Some(Err(IdentityError::Unauthenticated(_))) | None => {
                return AdminResponse::error(401, "unauthenticated", "sign in to the app first")
            }
        };
        if let Some(team) = operation.team() {
            if let Err(refusal) = self.authorize(&caller, team) {
                return refusal;
            }
        }
        let started = Instant::now();
        let answer = self.run(&operation, &caller, req, started).await;
        match answer {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "team admin: store failure");
                self.record(req, &caller, &operation, 503, None, started);
                AdminResponse::error(503, "unavailable", "the gateway's store failed: try again")
            }
        }
    }

    /// An admin of `team` may act on it; for anyone else of the team it is forbidden, and for
    /// callers of other teams it does not exist.
    fn authorize(&self, caller: &Caller, team: &str) -> Result<(), AdminResponse> {
        if caller.tenant.as_deref() != Some(team) {
            return Err(AdminResponse::error(404, "not_found", "no such team"));
        }
        if !self.is_admin(caller) {
            return Err(AdminResponse::error(
                403,
                "forbidden",
                "only a team admin can manage SCIM for the team",
            ));
        }
        Ok(())
    }

    fn is_admin(&self, caller: &Caller) -> bool {
        caller
            .role
            .as_deref()
            .is_some_and(|r| self.settings.admin_roles.iter().any(|a| a == r))
    }

    async fn run(
        &self,
        operation: &AdminOperation,
        caller: &Caller,
        req: &AdminRequest<'_>,
        started: Instant,
    ) -> Result<AdminResponse, StoreError> {
        Ok(match operation {
            AdminOperation::Me => AdminResponse::json(
                200,
                &json!({"id": caller.id, "team": caller.tenant, "admin": self.is_admin(caller)}),
            ),
            AdminOperation::State(team) => {
                AdminResponse::json(200, &self.state(team, req.tenant_url).await?)
            }
            AdminOperation::Enable(team) => {
                self.keys.enable_tenant(team, &caller.id).await?;
                self.record(req, caller, operation, 200, None, started);
                AdminResponse::json(200, &self.state(team, req.tenant_url).await?)
            }
            AdminOperation::Disable(team) => {
                let revoked = self.keys.disable_tenant(team).await?;
                self.record(req, caller, operation, 200, None, started);
                let mut state = self.state(team, req.tenant_url).await?;
                state["revoked"] = json!(revoked);
                AdminResponse::json(200, &state)
            }
            AdminOperation::CreateKey(team) => {
                let label = match label(req.body) {
                    Ok(l) => l,
                    Err(why) => return Ok(AdminResponse::error(400, "invalid_label", why)),
                };
                let secret = generate_key();
                let hash = hash_key(secret.as_bytes());
                let key = StoreKey::new(
                    &key_id(&hash),
                    &hex::encode(hash),
                    team,
                    &label,
                    &caller.id,
                    &now(),
                );
                match self.keys.add_key(&key).await? {
                    KeyAdded::Added => {
                        self.record(req, caller, operation, 201, Some(&key.id), started);
                        AdminResponse::json(
                            201,
                            &json!({
                                "id": key.id,
                                "key": secret,
                                "label": key.label,
                                "created_at": key.created_at,
                                "tenant_url": req.tenant_url,
                            }),
                        )
                    }
                    KeyAdded::TenantNotEnabled => AdminResponse::error(
                        409,
                        "scim_disabled",
                        "enable SCIM for the team before generating a key",
                    ),
                    KeyAdded::Taken => AdminResponse::error(
                        503,
                        "unavailable",
                        "try again: the key was not stored",
                    ),
                }
            }
            AdminOperation::RevokeKey(team, id) => {
                match self.keys.revoke_key(id, Some(team)).await? {
                    Revocation::Revoked(_) => {
                        self.record(req, caller, operation, 204, Some(id), started);
                        AdminResponse::empty(204)
                    }
                    Revocation::AlreadyRevoked(_) => AdminResponse::empty(204),
                    Revocation::Unknown => AdminResponse::error(404, "not_found", "no such key"),
                }
            }
            AdminOperation::NotAllowed(_) | AdminOperation::Unknown => {
                AdminResponse::error(404, "not_found", "no such team-admin endpoint")
            }
        })
    }

    /// Whether SCIM is on for `team`, the Tenant URL and the team's keys (never a secret or a
    /// hash).
    async fn state(&self, team: &str, tenant_url: &str) -> Result<Value, StoreError> {
        let stored = self.store.tenant(team).await?;
        let by_operator = self.operator_tenants.iter().any(|t| t == team);
        let keys: Vec<Value> = self
            .store
            .tenant_keys(team)
            .await?
            .into_iter()
            .map(|k| {
                json!({
                    "id": k.id,
                    "label": k.label,
                    "created_at": k.created_at,
                    "created_by": k.created_by,
                    "last_used_at": k.last_used_at,
                    "revoked_at": k.revoked_at,
                })
            })
            .collect();
        Ok(json!({
            "team": team,
            "scim_enabled": stored.as_ref().is_some_and(|t| t.enabled),
            "enabled_by_operator": by_operator,
            "tenant_url": tenant_url,
            "keys": keys,
        }))
    }

    /// One provisioning-log event and one count for a change.
    fn record(
        &self,
        req: &AdminRequest<'_>,
        caller: &Caller,
        operation: &AdminOperation,
        status: u16,
        key: Option<&str>,
        started: Instant,
    ) {
        let (action, logged) = match operation {
            AdminOperation::Enable(_) => ("enable", "scim_enable"),
            AdminOperation::Disable(_) => ("disable", "scim_disable"),
            AdminOperation::CreateKey(_) => ("key_create", "key_create"),
            AdminOperation::RevokeKey(..) => ("key_revoke", "key_revoke"),
            _ => return,
        };
        let result = if status < 400 { "success" } else { "failure" };
        self.telemetry.metrics.team_admin_action(action, result);
        self.telemetry.provisioning.record(&ProvisioningEvent {
            time: now(),
            request_id: req.request_id.to_string(),
            tenant: operation.team().unwrap_or_default().to_string(),
            key_id: key.unwrap_or("-").to_string(),
            operation: logged,
            scim_id: None,
            backend_id: None,
            status,
            result,
            detail: None,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            actor: Some(caller.id.clone()),
        });
    }
}

/// The label of a new key, from a JSON body `{"label": "..."}` (empty body: a default).
fn label(body: &[u8]) -> Result<String, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok("SCIM key".into());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    let label = match value.get("label") {
        None | Some(Value::Null) => "SCIM key",
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err("label must be a string".into()),
    };
    if label.is_empty() || label.chars().count() > MAX_LABEL {
        return Err(format!("label must have 1 to {MAX_LABEL} characters"));
    }
    if label.chars().any(char::is_control) {
        return Err("label must not hold control characters".into());
    }
    Ok(label.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_plain_text() {
        assert_eq!(label(b"").unwrap(), "SCIM key");
        assert_eq!(label(br#"{"label": " Entra "}"#).unwrap(), "Entra");
        assert_eq!(label(br#"{}"#).unwrap(), "SCIM key");
        assert!(label(br#"{"label": 7}"#).is_err());
        assert!(label(br#"{"label": ""}"#).is_err());
        assert!(label(br#"{"label": "a\u0007b"}"#).is_err());
        assert!(label(format!(r#"{{"label": "{}"}}"#, "x".repeat(101)).as_bytes()).is_err());
        assert!(label(b"not json").is_err());
    }
}
