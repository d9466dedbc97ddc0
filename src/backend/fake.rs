//! A backend held in memory, for unit tests of the directory: it speaks the native shapes of the
//! "alt" test backend (`tests/fixtures/alt.toml`: string ids, a partial update, `active` changed
//! only by deactivate/activate calls), logs every call and fails the calls a test chooses.

use super::calls::{ContinuedPage, NativePage, Versioned};
use super::native::{NativeFields, NativeUsers};
use super::spec::UserApi;
use crate::auth::Tenant;
use crate::scim::error::{ScimError, ScimType};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A call of [`NativeUsers`], as logged and as chosen to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Get,
    Create,
    Update,
    SetActive,
    Delete,
    DeleteToUndo,
}

/// A failure planned for a later call.
struct Planned {
    op: Op,
    /// Calls of `op` that pass before the one that fails.
    skip: usize,
    error: ScimError,
}

/// The in-memory backend. Users live per tenant (`backend_name`), keyed by id.
pub struct FakeBackend {
    api: UserApi,
    users: Mutex<BTreeMap<(String, String), Value>>,
    next_id: Mutex<u32>,
    log: Mutex<Vec<(Op, String)>>,
    planned: Mutex<Vec<Planned>>,
    /// Native fields a deactivate or activate call also sets (the backend's own side effects).
    on_set_active: Mutex<Value>,
    /// Whether list pages report the list's total.
    reports_total: Mutex<bool>,
}

/// The alt test backend's user API, optionally without its `uniqueness` error rule (the
/// backend then does not report a taken userName and the gateway checks before creating).
pub fn alt_api(reports_duplicates: bool) -> UserApi {
    let text = include_str!("../../tests/fixtures/alt.toml");
    let mut api = crate::config::from_str(text, std::path::Path::new("alt.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .users;
    if !reports_duplicates {
        api.errors
            .retain(|rule| rule.scim_type != Some(ScimType::Uniqueness));
    }
    api
}

impl FakeBackend {
    /// An empty backend answering as `api` describes.
    pub fn new(api: UserApi) -> Self {
        FakeBackend {
            api,
            users: Mutex::new(BTreeMap::new()),
            next_id: Mutex::new(0),
            log: Mutex::new(Vec::new()),
            planned: Mutex::new(Vec::new()),
            on_set_active: Mutex::new(json!({})),
            reports_total: Mutex::new(true),
        }
    }

    /// Makes the call of `op` after `skip` successful ones fail with `error`.
    pub fn fail(&self, op: Op, skip: usize, error: ScimError) {
        lock(&self.planned).push(Planned { op, skip, error });
    }

    /// Every later deactivate or activate call also writes these native fields.
    pub fn on_set_active(&self, fields: Value) {
        *lock(&self.on_set_active) = fields;
    }

    /// Makes later list pages omit the list's total, as some backends do.
    pub fn hide_total(&self) {
        *lock(&self.reports_total) = false;
    }

    /// Adds a user as the app itself would (not through SCIM); answers its id.
    pub fn insert(&self, tenant: &Tenant, mut native: Value) -> String {
        let id = self.new_id();
        native["id"] = json!(id);
        native["active"] = json!(true);
        lock(&self.users).insert(key(tenant, &id), native);
        id
    }

    /// The native user `id` of `tenant`.
    pub fn user(&self, tenant: &Tenant, id: &str) -> Option<Value> {
        lock(&self.users).get(&key(tenant, id)).cloned()
    }

    /// Every native user of `tenant`.
    pub fn users(&self, tenant: &Tenant) -> Vec<Value> {
        lock(&self.users)
            .iter()
            .filter(|((t, _), _)| *t == tenant.backend_name)
            .map(|(_, u)| u.clone())
            .collect()
    }

    /// The calls made so far, with their argument (id, or what was searched).
    pub fn calls(&self) -> Vec<(Op, String)> {
        lock(&self.log).clone()
    }

    /// The calls that change the backend, in order.
    pub fn writes(&self) -> Vec<(Op, String)> {
        self.calls()
            .into_iter()
            .filter(|(op, _)| !matches!(op, Op::List | Op::Get))
            .collect()
    }

    /// Forgets the calls made so far.
    pub fn clear_calls(&self) {
        lock(&self.log).clear();
    }

    fn new_id(&self) -> String {
        let mut n = lock(&self.next_id);
        *n += 1;
        format!("acc_{n}")
    }

    /// Logs a call and fails it if a failure was planned for it.
    fn enter(&self, op: Op, arg: &str) -> Result<(), ScimError> {
        lock(&self.log).push((op, arg.to_string()));
        let mut planned = lock(&self.planned);
        let Some(at) = planned.iter().position(|p| p.op == op) else {
            return Ok(());
        };
        if planned[at].skip > 0 {
            planned[at].skip -= 1;
            return Ok(());
        }
        Err(planned.remove(at).error)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(tenant: &Tenant, id: &str) -> (String, String) {
    (tenant.backend_name.clone(), id.to_string())
}

/// Writes the top-level members of `fields` over `user`; `null` clears a field.
fn apply(user: &mut Value, fields: &Value) {
    if let (Some(u), Some(f)) = (user.as_object_mut(), fields.as_object()) {
        for (k, v) in f {
            if v.is_null() {
                u.remove(k);
            } else {
                u.insert(k.clone(), v.clone());
            }
        }
    }
}

fn same_login(a: &Value, b: &Value) -> bool {
    let login = |u: &Value| u["login"].as_str().map(str::to_lowercase);
    login(a).is_some() && login(a) == login(b)
}

#[async_trait]
impl NativeUsers for FakeBackend {
    fn api(&self) -> &UserApi {
        &self.api
    }

    async fn list(
        &self,
        tenant: &Tenant,
        search: Option<(&str, &str)>,
        offset: usize,
        count: usize,
    ) -> Result<NativePage, ScimError> {
        self.enter(Op::List, &format!("{search:?}"))?;
        let matching: Vec<Value> = self
            .users(tenant)
            .into_iter()
            .filter(|u| {
                search.is_none_or(|(param, value)| {
                    u[param]
                        .as_str()
                        .is_some_and(|v| v.eq_ignore_ascii_case(value))
                })
            })
            .collect();
        Ok(NativePage {
            total: Some(matching.len()).filter(|_| *lock(&self.reports_total)),
            items: matching.into_iter().skip(offset).take(count).collect(),
        })
    }

    async fn list_from(
        &self,
        tenant: &Tenant,
        token: Option<&str>,
        size: usize,
    ) -> Result<ContinuedPage, ScimError> {
        // The token is the offset of the page, as text.
        let at = token.and_then(|t| t.parse().ok()).unwrap_or(0);
        let page = self.list(tenant, None, at, size).await?;
        let next = (page.items.len() == size).then(|| (at + size).to_string());
        Ok(ContinuedPage { page, next })
    }

    async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Value>, ScimError> {
        self.enter(Op::Get, id)?;
        Ok(self.user(tenant, id))
    }

    async fn get_versioned(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<Versioned>, ScimError> {
        self.enter(Op::Get, id)?;
        Ok(self.user(tenant, id).map(|user| Versioned {
            user,
            version: None,
        }))
    }

    async fn create(&self, tenant: &Tenant, native: &Value) -> Result<Value, ScimError> {
        self.enter(Op::Create, native["login"].as_str().unwrap_or_default())?;
        if self.api.reports_duplicates() && self.users(tenant).iter().any(|u| same_login(u, native))
        {
            return Err(ScimError::uniqueness("an account with this login exists"));
        }
        let mut user = native.clone();
        let id = self.new_id();
        apply(&mut user, &json!({"id": id, "active": true}));
        lock(&self.users).insert(key(tenant, &id), user.clone());
        Ok(user)
    }

    async fn update(
        &self,
        tenant: &Tenant,
        id: &str,
        fields: NativeFields<'_>,
        read: Option<Versioned>,
    ) -> Result<Option<Value>, ScimError> {
        self.enter(Op::Update, id)?;
        let Some(mut user) = self.user(tenant, id) else {
            return Ok(None);
        };
        let seen = read.map_or(Value::Null, |r| r.user);
        apply(&mut user, &fields(&seen)?);
        lock(&self.users).insert(key(tenant, id), user.clone());
        Ok(Some(user))
    }

    async fn set_active(&self, tenant: &Tenant, id: &str, active: bool) -> Result<bool, ScimError> {
        self.enter(Op::SetActive, &format!("{id} {active}"))?;
        let mut users = lock(&self.users);
        let user = users
            .get_mut(&key(tenant, id))
            .ok_or_else(|| ScimError::not_found("no such account"))?;
        apply(user, &json!({ "active": active }));
        apply(user, &lock(&self.on_set_active));
        Ok(true)
    }

    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError> {
        self.enter(Op::Delete, id)?;
        Ok(lock(&self.users).remove(&key(tenant, id)).is_some())
    }

    async fn delete_to_undo(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError> {
        self.enter(Op::DeleteToUndo, id)?;
        Ok(lock(&self.users).remove(&key(tenant, id)).is_some())
    }
}
