//! The seam between the SCIM service and whatever holds the groups: SCIM-level operations on
//! one tenant's groups, implemented by the config-driven backend (`backend::groups`).

use super::walk::Walk;
use crate::auth::Tenant;
use crate::scim::cursor::Position;
use crate::scim::error::ScimError;
use crate::scim::filter::Filter;
use crate::scim::group::change::GroupChange;
use crate::scim::group::input::GroupInput;
use crate::scim::group::ScimGroup;
use crate::store::Held;
use async_trait::async_trait;

/// One page of a group search.
#[derive(Debug, Clone)]
pub struct GroupPage {
    /// The groups of the page.
    pub groups: Vec<ScimGroup>,
    /// All matches.
    pub total: usize,
}

/// SCIM group operations for every tenant. `now` is the RFC 3339 time recorded as
/// `meta.lastModified`; `members` says whether the answer must hold the member list (reading it
/// may cost backend calls, and most lookups exclude it).
#[async_trait]
pub trait GroupDirectory: Send + Sync {
    /// Serialises writes to the group `id` until the answer is dropped.
    async fn lock(&self, tenant: &Tenant, id: &str) -> Result<Held, ScimError>;

    /// Serialises creates and renames to `display_name` until the answer is dropped, so two of
    /// them cannot both find the name free.
    async fn reserve_display_name(
        &self,
        tenant: &Tenant,
        display_name: &str,
    ) -> Result<Held, ScimError>;

    /// One group, or `None`.
    async fn get(
        &self,
        tenant: &Tenant,
        id: &str,
        members: bool,
    ) -> Result<Option<ScimGroup>, ScimError>;

    /// Creates a group with its members. A `displayName` another group of the tenant has is
    /// `409 uniqueness`; a member id that names no user is `400 invalidValue`, with nothing
    /// created.
    async fn create(
        &self,
        tenant: &Tenant,
        group: GroupInput,
        now: &str,
    ) -> Result<ScimGroup, ScimError>;

    /// Applies a change to the group `id` (absent: `404`). Every member to add must name a user
    /// (else `400 invalidValue` before anything is written); adding a present member or removing
    /// an absent one changes nothing. The answer holds the members when `members`.
    async fn change(
        &self,
        tenant: &Tenant,
        id: &str,
        change: &GroupChange,
        now: &str,
        members: bool,
    ) -> Result<ScimGroup, ScimError>;

    /// Whether group push made `user` a member of `group` (ids compared ignoring ASCII case, as
    /// a lenient backend reads them), for the guard: read from the store every time.
    async fn is_managed_membership(
        &self,
        tenant: &Tenant,
        group: &str,
        user: &str,
    ) -> Result<bool, ScimError>;

    /// Deletes a group; its memberships stop being managed.
    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<(), ScimError>;

    /// Groups matching `filter` (all when `None`), from `start` (0-based), at most `count`.
    async fn search(
        &self,
        tenant: &Tenant,
        filter: Option<&Filter>,
        start: usize,
        count: usize,
        members: bool,
    ) -> Result<GroupPage, ScimError>;

    /// Up to `count` groups matching `filter` after `from` (from the first when `None`), in
    /// ascending [`super::walk::id_order`] of ids, with where the next page starts.
    async fn walk(
        &self,
        tenant: &Tenant,
        filter: Option<&Filter>,
        from: Option<&Position>,
        count: usize,
        members: bool,
    ) -> Result<Walk<ScimGroup>, ScimError>;
}
