//! The seam between the SCIM service and whatever holds the users: SCIM-level operations on one
//! tenant's users, implemented by the config-driven backend (`backend::directory`) and, in
//! tests, by an in-memory directory.

use super::walk::Walk;
use crate::auth::Tenant;
use crate::scim::cursor::Position;
use crate::scim::discovery::Restrictions;
use crate::scim::error::ScimError;
use crate::scim::filter::Filter;
use crate::scim::resource::ScimUser;
use crate::store::Held;
use async_trait::async_trait;
use serde_json::Value;
use std::any::Any;

/// One page of a search.
#[derive(Debug, Clone)]
pub struct SearchPage {
    /// The users of the page.
    pub users: Vec<ScimUser>,
    /// All matches.
    pub total: usize,
}

/// Where a replacing resource comes from, which decides the fate of what the client never saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// A PUT: the client sent the whole resource.
    Put,
    /// A PATCH applied to the user as just read.
    Patch,
}

/// A user as read under its write lock: what a PUT or PATCH writes over, so the write needs
/// no second read.
pub struct Current {
    /// The user as SCIM shows it.
    pub user: ScimUser,
    /// Whether the identity provider owns the account already.
    pub managed: bool,
    /// What the directory read besides, handed back to [`UserDirectory::write`].
    pub basis: Basis,
}

/// A directory's own state of one read, opaque to the service.
pub struct Basis(Box<dyn Any + Send + Sync>);

impl Basis {
    /// Keeps `state` for the directory's write.
    pub fn new<T: Any + Send + Sync>(state: T) -> Self {
        Basis(Box::new(state))
    }

    /// The state, when it is a `T` (it is, when the directory that read it writes it).
    pub fn into<T: Any>(self) -> Option<T> {
        self.0.downcast().ok().map(|b| *b)
    }
}

/// SCIM user operations for every tenant. Resources given to writes are normalised SCIM Users
/// (no `id`, no `meta`); `now` is the RFC 3339 time recorded as `meta.lastModified`.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// Serialises writes to the user `id` until the answer is dropped.
    async fn lock(&self, tenant: &Tenant, id: &str) -> Result<Held, ScimError>;

    /// Serialises creates of `user_name` until the answer is dropped, so two creates of one
    /// name cannot both find it free.
    async fn reserve_user_name(&self, tenant: &Tenant, user_name: &str) -> Result<Held, ScimError>;

    /// Whether the identity provider owns the account.
    async fn is_managed(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError>;

    /// One user, or `None`.
    async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<ScimUser>, ScimError>;

    /// Creates a user.
    async fn create(
        &self,
        tenant: &Tenant,
        resource: Value,
        now: &str,
    ) -> Result<ScimUser, ScimError>;

    /// Serialises writes to the user `id` as [`UserDirectory::lock`] does, and reads it for a
    /// write under that hold; `None` when unknown (the hold is had all the same).
    async fn lock_and_read(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<(Held, Option<Current>), ScimError>;

    /// Replaces the user `current` read with `resource`, the body of a PUT or a PATCH's result
    /// (`from`), still under the hold [`UserDirectory::lock_and_read`] took.
    async fn write(
        &self,
        tenant: &Tenant,
        current: Current,
        resource: Value,
        now: &str,
        from: Replacement,
    ) -> Result<ScimUser, ScimError>;

    /// Deletes a user; it stops being managed.
    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<(), ScimError>;

    /// Users matching `filter` (all when `None`), from `start` (0-based), at most `count`.
    async fn search(
        &self,
        tenant: &Tenant,
        filter: Option<&Filter>,
        start: usize,
        count: usize,
    ) -> Result<SearchPage, ScimError>;

    /// Up to `count` users matching `filter` after `from` (from the first when `None`), in
    /// ascending [`super::walk::id_order`] of ids, with where the next page starts.
    async fn walk(
        &self,
        tenant: &Tenant,
        filter: Option<&Filter>,
        from: Option<&Position>,
        count: usize,
    ) -> Result<Walk<ScimUser>, ScimError>;

    /// The values some attributes are limited to, advertised in `/Schemas`.
    fn restrictions(&self) -> Restrictions;
}
