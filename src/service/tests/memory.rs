//! A directory of users held in memory, for unit tests of the SCIM service: it keeps SCIM
//! resources as written, refuses a taken userName (ignoring case) and counts writes.

use crate::auth::Tenant;
use crate::scim::cursor::Position;
use crate::scim::discovery::Restrictions;
use crate::scim::error::ScimError;
use crate::scim::filter::{self, Filter};
use crate::scim::resource::ScimUser;
use crate::service::walk::{self, Walk};
use crate::service::{Basis, Current, Replacement, SearchPage, UserDirectory};
use crate::store::Held;
use async_trait::async_trait;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Users per tenant, in memory.
#[derive(Default)]
pub struct MemoryDirectory {
    users: Mutex<BTreeMap<(String, String), ScimUser>>,
    /// Ids (per tenant) the identity provider owns; a seeded user is not among them.
    managed: Mutex<BTreeSet<(String, String)>>,
    next_id: Mutex<u32>,
    writes: Mutex<usize>,
    locked: Mutex<Vec<String>>,
    serial: Arc<tokio::sync::Mutex<()>>,
    restrictions: Restrictions,
}

impl MemoryDirectory {
    /// An empty directory advertising `restrictions`.
    pub fn with_restrictions(restrictions: Restrictions) -> Self {
        MemoryDirectory {
            restrictions,
            ..MemoryDirectory::default()
        }
    }

    /// Adds a user as the application itself made it (not SCIM-managed); answers its id.
    pub fn seed(&self, tenant: &str, resource: Value) -> String {
        let id = self.new_id();
        let user = ScimUser {
            id: id.clone(),
            resource,
            created: "2026-01-01T00:00:00Z".into(),
            last_modified: "2026-01-01T00:00:00Z".into(),
        };
        lock(&self.users).insert((tenant.into(), id.clone()), user);
        id
    }

    /// User `id` of `tenant`, as stored.
    pub fn user(&self, tenant: &str, id: &str) -> Option<ScimUser> {
        lock(&self.users).get(&(tenant.into(), id.into())).cloned()
    }

    /// Every user of `tenant`, by id.
    pub fn users(&self, tenant: &str) -> Vec<ScimUser> {
        lock(&self.users)
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, u)| u.clone())
            .collect()
    }

    /// Writes made so far (creates, replaces, deletes).
    pub fn writes(&self) -> usize {
        *lock(&self.writes)
    }

    /// The keys writes were serialised on, in order.
    pub fn locked(&self) -> Vec<String> {
        lock(&self.locked).clone()
    }

    /// Serialises every write (whatever its key) and logs the key.
    async fn hold(&self, key: String) -> Held {
        lock(&self.locked).push(key);
        Held::new(self.serial.clone().lock_owned().await)
    }

    fn new_id(&self) -> String {
        let mut n = lock(&self.next_id);
        *n += 1;
        format!("u{n}")
    }

    fn wrote(&self) {
        *lock(&self.writes) += 1;
    }

    fn store(
        &self,
        tenant: &Tenant,
        id: &str,
        resource: Value,
        now: &str,
    ) -> Result<ScimUser, ScimError> {
        let key = (tenant.name.clone(), id.to_string());
        let mut users = lock(&self.users);
        let current = users.get_mut(&key).ok_or_else(|| not_found(id))?;
        current.resource = resource;
        current.last_modified = now.to_string();
        let user = current.clone();
        drop(users);
        lock(&self.managed).insert(key);
        self.wrote();
        Ok(user)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no user with id {id:?}"))
}

fn user_name(resource: &Value) -> String {
    resource["userName"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase()
}

/// The resource a filter sees: with `id` and `meta`.
fn filtered_view(u: &ScimUser) -> Value {
    let mut v = u.resource.clone();
    v["id"] = json!(u.id);
    v["meta"] =
        json!({"resourceType": "User", "created": u.created, "lastModified": u.last_modified});
    v
}

#[async_trait]
impl UserDirectory for MemoryDirectory {
    async fn lock(&self, _tenant: &Tenant, id: &str) -> Result<Held, ScimError> {
        Ok(self.hold(format!("user:{id}")).await)
    }

    async fn reserve_user_name(
        &self,
        _tenant: &Tenant,
        user_name: &str,
    ) -> Result<Held, ScimError> {
        Ok(self.hold(format!("userName:{user_name}")).await)
    }

    async fn is_managed(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError> {
        Ok(lock(&self.managed).contains(&(tenant.name.clone(), id.to_string())))
    }

    async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<ScimUser>, ScimError> {
        Ok(self.user(&tenant.name, id))
    }

    async fn create(
        &self,
        tenant: &Tenant,
        resource: Value,
        now: &str,
    ) -> Result<ScimUser, ScimError> {
        let name = user_name(&resource);
        if self
            .users(&tenant.name)
            .iter()
            .any(|u| user_name(&u.resource) == name)
        {
            return Err(ScimError::uniqueness(format!("userName {name:?} is taken")));
        }
        let id = self.new_id();
        let user = ScimUser {
            id: id.clone(),
            resource,
            created: now.to_string(),
            last_modified: now.to_string(),
        };
        lock(&self.users).insert((tenant.name.clone(), id.clone()), user.clone());
        lock(&self.managed).insert((tenant.name.clone(), id));
        self.wrote();
        Ok(user)
    }

    async fn lock_and_read(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<(Held, Option<Current>), ScimError> {
        let held = self.lock(tenant, id).await?;
        Ok((
            held,
            self.user(&tenant.name, id).map(|user| Current {
                managed: lock(&self.managed).contains(&(tenant.name.clone(), id.to_string())),
                user,
                basis: Basis::new(()),
            }),
        ))
    }

    async fn write(
        &self,
        tenant: &Tenant,
        current: Current,
        resource: Value,
        now: &str,
        _from: Replacement,
    ) -> Result<ScimUser, ScimError> {
        self.store(tenant, &current.user.id, resource, now)
    }

    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<(), ScimError> {
        let key = (tenant.name.clone(), id.to_string());
        lock(&self.users)
            .remove(&key)
            .ok_or_else(|| not_found(id))?;
        lock(&self.managed).remove(&key);
        self.wrote();
        Ok(())
    }

    async fn search(
        &self,
        tenant: &Tenant,
        filter: Option<&Filter>,
        start: usize,
        count: usize,
    ) -> Result<SearchPage, ScimError> {
        let matched: Vec<ScimUser> = self
            .users(&tenant.name)
            .into_iter()
            .filter(|u| filter.is_none_or(|f| filter::matches(f, &filtered_view(u))))
            .collect();
        Ok(SearchPage {
            total: matched.len(),
            users: matched.into_iter().skip(start).take(count).collect(),
        })
    }

    async fn walk(
        &self,
        tenant: &Tenant,
        filter: Option<&Filter>,
        from: Option<&Position>,
        count: usize,
    ) -> Result<Walk<ScimUser>, ScimError> {
        let all = self.search(tenant, filter, 0, usize::MAX).await?.users;
        walk::sorted_after(all, |u| u.id.clone(), from, count)
    }

    fn restrictions(&self) -> Restrictions {
        self.restrictions.clone()
    }
}
