//! The store seam: what the gateway keeps beside the backend, per tenant and backend user or
//! group id — the SCIM resource as last written (so attributes the backend cannot hold
//! round-trip), `externalId`, the SCIM-managed flag, the `meta` timestamps and notes of creates
//! in flight, and which group memberships the identity provider made — the tenants and SCIM API
//! keys kept beside the config's ([`keys`]), and the exclusive holds that serialise writes to one
//! resource, and each tenant's brake on mass deprovisioning ([`brake`]). Every operation is async from
//! the caller's side; an engine decides how it waits: [`sqlite`] for one gateway, [`postgres`]
//! for a fleet of gateways sharing one database. [`engine`] opens the engine a config names;
//! [`copy`] moves a SQLite store's [`rows`] into PostgreSQL.

pub mod brake;
pub mod copy;
pub mod engine;
mod key_locks;
pub mod keys;
pub mod postgres;
pub mod rows;
pub mod sqlite;

use async_trait::async_trait;
use brake::{BrakeChange, BrakeOutcome, BrakeState};
use keys::{KeyAdded, LiveKey, Revocation, StoreKey, StoreTenant};
use serde_json::Value;
use std::collections::HashMap;

/// Why a store cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The engine failed (unreachable, refused, corrupt).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The URL cannot be used (checked by `scimgate check` too).
    #[error("{0}")]
    Url(String),
    /// The variable `store.password_env` names is not set.
    #[error("the environment variable {0} (store.password_env) is not set")]
    PasswordUnset(String),
    /// The database was migrated by a newer scimgate.
    #[error(
        "the store's schema is at version {found}, newer than this scimgate knows (version \
         {known}): run a scimgate at least as new as the one that migrated it"
    )]
    SchemaTooNew {
        /// The database's schema version.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },
    /// The database needs migrations this gateway was told not to apply.
    #[error(
        "the store's schema is at version {found} and this scimgate needs version {known}; \
         with [store] migrate = \"manual\", run `scimgate store migrate --config FILE` first"
    )]
    SchemaBehind {
        /// The database's schema version.
        found: i32,
        /// The version this build needs.
        known: i32,
    },
}

/// What the store knows of one user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// The SCIM resource as last written through the gateway (no `id`, no `meta`).
    pub shadow: Value,
    /// True while the identity provider owns the account.
    pub managed: bool,
    /// `meta.created`.
    pub created: String,
    /// `meta.lastModified`.
    pub last_modified: String,
}

impl UserRecord {
    /// The resource's `externalId`, which engines index.
    pub fn external_id(&self) -> Option<String> {
        self.shadow
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The resource's `userName` as pending-create notes key it (lower case), whose note a
    /// recorded user makes obsolete.
    pub fn pending_key(&self) -> Option<String> {
        self.shadow
            .get("userName")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
    }
}

/// What the store knows of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    /// The SCIM group as last written through the gateway: `displayName`, `externalId`,
    /// extension attributes; no `id`, `meta` or `members` (memberships are kept apart).
    pub shadow: Value,
    /// True while the identity provider owns the group.
    pub managed: bool,
    /// `meta.created`.
    pub created: String,
    /// `meta.lastModified`.
    pub last_modified: String,
}

impl GroupRecord {
    /// The group's `externalId`, which engines index.
    pub fn external_id(&self) -> Option<String> {
        self.shadow
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The group's `displayName` as pending group creates key it (lower case), whose note a
    /// recorded group makes obsolete.
    pub fn pending_key(&self) -> Option<String> {
        self.shadow
            .get("displayName")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
    }
}

/// A store failure, by what failed. The text is the engine's own account of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be opened, read or written right now: its file or server is unreachable,
    /// refuses or does not answer in time, is read-only, the disk is full, or the engine's worker
    /// has stopped.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Others hold what a request needs longer than the engine waits: a locked database, a
    /// resource another gateway holds, every connection of the pool in use.
    #[error("store busy: {0}")]
    Busy(String),
    /// What the store holds cannot be decoded (a damaged file, a row that is not a record).
    #[error("store corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The engine's account of the failure, without its kind.
    pub fn detail(&self) -> &str {
        match self {
            StoreError::Unavailable(d) | StoreError::Busy(d) | StoreError::Corrupt(d) => d,
        }
    }
}

/// What a write holds to itself while it runs (see [`Store::serialise`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKey<'a> {
    /// Writes to one user, by id; compared ignoring case, as a case-insensitive backend reads
    /// `USR_BOB` as `usr_bob`.
    User(&'a str),
    /// Creates of one userName, compared ignoring case as SCIM compares userName. Held while a
    /// create checks that the name is free and takes it, it reserves the name.
    UserName(&'a str),
    /// Writes to one group, by id; compared ignoring case, as [`ResourceKey::User`].
    Group(&'a str),
    /// Creates of one group `displayName`, compared ignoring case. Held while a create checks
    /// that the name is free and takes it, it reserves the name.
    GroupName(&'a str),
}

impl ResourceKey<'_> {
    /// The key in one spelling: equal for exactly the keys that exclude each other.
    pub fn folded(&self) -> String {
        match self {
            ResourceKey::User(id) => format!("user:{}", id.to_lowercase()),
            ResourceKey::UserName(name) => format!("userName:{}", name.to_lowercase()),
            ResourceKey::Group(id) => format!("group:{}", id.to_lowercase()),
            ResourceKey::GroupName(name) => format!("groupName:{}", name.to_lowercase()),
        }
    }
}

/// An exclusive hold on one [`ResourceKey`]; the hold ends when this is dropped.
#[must_use = "the hold ends as soon as this value is dropped"]
pub struct Held {
    _release_on_drop: Box<dyn Send>,
}

impl Held {
    /// A hold that lasts as long as `release_on_drop` (an engine's lock guard) lives.
    pub fn new(release_on_drop: impl Send + 'static) -> Held {
        Held {
            _release_on_drop: Box::new(release_on_drop),
        }
    }
}

/// The operations the gateway needs from a store engine.
#[async_trait]
pub trait Store: Send + Sync {
    /// The record of one user.
    async fn get(&self, tenant: &str, id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// The records of several users, keyed by id (missing ones are absent).
    async fn get_many(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, UserRecord>, StoreError>;

    /// [`Store::get_many`] for reads that only show users (GET, lists, lookups). An engine
    /// serving a fleet may answer from a cache that change notifications keep true, so a write
    /// through another gateway may show a moment late; a write's own read uses `get_many`.
    async fn get_many_to_show(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, UserRecord>, StoreError> {
        self.get_many(tenant, ids).await
    }

    /// How many users of a tenant have a record: what a walk over them would examine.
    async fn count(&self, tenant: &str) -> Result<usize, StoreError>;

    /// One page of a walk over a tenant's records in id order: up to `limit` records whose ids
    /// sort after `after` (from the first when `None`). Filters evaluated in the gateway read
    /// the records this way, so a walk holds one page in memory at a time.
    async fn page(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, UserRecord)>, StoreError>;

    /// Every record of a tenant, ordered by id, read a page at a time (for tools and tests: it
    /// holds the whole tenant in memory).
    async fn all(&self, tenant: &str) -> Result<Vec<(String, UserRecord)>, StoreError> {
        const PAGE: usize = 1000;
        let mut every: Vec<(String, UserRecord)> = Vec::new();
        loop {
            let after = every.last().map(|(id, _)| id.as_str());
            let page = self.page(tenant, after, PAGE).await?;
            let full = page.len() == PAGE;
            every.extend(page);
            if !full {
                return Ok(every);
            }
        }
    }

    /// Ids of the tenant's users whose `externalId` is `external_id` (case-exact), ordered.
    async fn find_by_external_id(
        &self,
        tenant: &str,
        external_id: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// Ids of the tenant's users whose resource holds `email` as an address of type `work`
    /// (both compared ignoring ASCII case), ordered. The engine keeps this index within the
    /// write of every record, so it never disagrees with the records.
    async fn find_by_work_email(
        &self,
        tenant: &str,
        email: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// Inserts or replaces a user's record, and forgets a pending create of its userName.
    async fn put(&self, tenant: &str, id: &str, rec: &UserRecord) -> Result<(), StoreError>;

    /// Forgets a user (after SCIM deleted it), with its managed memberships in every group of
    /// the tenant.
    async fn delete(&self, tenant: &str, id: &str) -> Result<(), StoreError>;

    /// Whether the identity provider owns the account `id`.
    async fn is_managed(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;

    /// Whether the identity provider owns an account whose id equals `id` ignoring ASCII case,
    /// as a case-insensitive backend resolves `USR_BOB` to `usr_bob`.
    async fn is_managed_ignoring_case(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;

    /// Notes a create before it is sent to the backend, so its attributes survive a crash
    /// between the backend's write and [`Store::put`]. `user_name` is compared ignoring case.
    /// Once this returns, the note is durable and ordered before every later write.
    async fn put_pending_create(
        &self,
        tenant: &str,
        user_name: &str,
        rec: &UserRecord,
    ) -> Result<(), StoreError>;

    /// The resource of a create that reached the backend but was never recorded (the gateway
    /// stopped in between), by userName.
    async fn pending_create(
        &self,
        tenant: &str,
        user_name: &str,
    ) -> Result<Option<UserRecord>, StoreError>;

    /// Forgets a pending create (the backend refused it, or it was undone).
    async fn clear_pending_create(&self, tenant: &str, user_name: &str) -> Result<(), StoreError>;

    /// The record of one group.
    async fn get_group(&self, tenant: &str, id: &str) -> Result<Option<GroupRecord>, StoreError>;

    /// The records of several groups, keyed by id (missing ones are absent); one statement
    /// or a few, however many ids.
    async fn get_groups(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, GroupRecord>, StoreError>;

    /// Ids of the tenant's groups whose `externalId` is `external_id` (case-exact), ordered.
    async fn find_groups_by_external_id(
        &self,
        tenant: &str,
        external_id: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// Inserts or replaces a group's record, and forgets a pending group create of its
    /// `displayName`. Memberships are left as they are.
    async fn put_group(&self, tenant: &str, id: &str, rec: &GroupRecord) -> Result<(), StoreError>;

    /// Forgets a group (after SCIM deleted it), with every managed membership of it.
    async fn delete_group(&self, tenant: &str, id: &str) -> Result<(), StoreError>;

    /// Notes a group create before it is sent to the backend, as [`Store::put_pending_create`]
    /// does for users; `display_name` is compared ignoring case.
    async fn put_pending_group_create(
        &self,
        tenant: &str,
        display_name: &str,
        rec: &GroupRecord,
    ) -> Result<(), StoreError>;

    /// The group of a create that reached the backend but was never recorded, by
    /// `displayName` (compared ignoring case).
    async fn pending_group_create(
        &self,
        tenant: &str,
        display_name: &str,
    ) -> Result<Option<GroupRecord>, StoreError>;

    /// Forgets a pending group create (the backend refused it, or it was undone).
    async fn clear_pending_group_create(
        &self,
        tenant: &str,
        display_name: &str,
    ) -> Result<(), StoreError>;

    /// Notes that SCIM made `users` members of `group`: managed memberships. Members already
    /// noted stay as they are; one statement or a few, however many users.
    async fn add_memberships(
        &self,
        tenant: &str,
        group: &str,
        users: &[String],
    ) -> Result<(), StoreError>;

    /// Forgets the managed memberships of `users` in `group`; users without one are passed
    /// over. One statement or a few, however many users.
    async fn remove_memberships(
        &self,
        tenant: &str,
        group: &str,
        users: &[String],
    ) -> Result<(), StoreError>;

    /// The users whose membership of `group` SCIM made, ordered by id.
    async fn managed_members(&self, tenant: &str, group: &str) -> Result<Vec<String>, StoreError>;

    /// Whether SCIM made `user` a member of `group`, both ids compared ignoring ASCII case (as
    /// [`Store::is_managed_ignoring_case`] compares them), for the guard.
    async fn is_managed_membership(
        &self,
        tenant: &str,
        group: &str,
        user: &str,
    ) -> Result<bool, StoreError>;

    /// Checks the store can be written now, before a write reaches the backend. SQLite proves it
    /// with a committed write (so a full disk shows); PostgreSQL asks the server whether it takes
    /// writes (not a standby, not read-only), without writing (every write through every gateway
    /// checks, and a shared probe row would be their hottest contention), and trusts a yes for
    /// a second.
    async fn check_writable(&self) -> Result<(), StoreError>;

    /// Waits until no other holder of `key` in `tenant` remains, then holds it until the answer
    /// is dropped. Holders of different keys never wait for each other, so one request may hold
    /// several keys at once (a group rename holds the group and its new name); an engine serving
    /// a fleet of gateways holds the key for all of them.
    async fn serialise(&self, tenant: &str, key: ResourceKey<'_>) -> Result<Held, StoreError>;

    /// Holds the user `id` as [`Store::serialise`] does, then reads its record as
    /// [`Store::get`] does: the start of a write, whose read must follow the hold. An engine
    /// may take both in one exchange with its database.
    async fn serialise_user_and_get(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<(Held, Option<UserRecord>), StoreError> {
        let held = self.serialise(tenant, ResourceKey::User(id)).await?;
        let record = self.get(tenant, id).await?;
        Ok((held, record))
    }

    /// Enables the store tenant `name` (the backend's team), creating it as enabled by `by` at
    /// `now` if new. True when it was not enabled before; enabling an enabled tenant changes
    /// nothing.
    async fn enable_tenant(&self, name: &str, by: &str, now: &str) -> Result<bool, StoreError>;

    /// Disables the store tenant `name` and revokes every live key of it at `now`, in one
    /// transaction; answers how many keys it revoked (none for an unknown tenant).
    async fn disable_tenant(&self, name: &str, now: &str) -> Result<usize, StoreError>;

    /// Stores `key` (as given, with no last use and not revoked) if its tenant is an enabled
    /// store tenant and no stored key has its id or hash.
    async fn add_key(&self, key: &StoreKey) -> Result<KeyAdded, StoreError>;

    /// The store tenant `name`, enabled or not; none when SCIM was never enabled for it.
    async fn tenant(&self, name: &str) -> Result<Option<StoreTenant>, StoreError>;

    /// The keys of the store tenant `tenant`, revoked ones included, ordered by id.
    async fn tenant_keys(&self, tenant: &str) -> Result<Vec<StoreKey>, StoreError>;

    /// Every stored key, revoked ones included, ordered by tenant and id.
    async fn all_keys(&self) -> Result<Vec<StoreKey>, StoreError>;

    /// Revokes the key `id` at `now`; with `tenant`, only a key of that tenant.
    async fn revoke_key(
        &self,
        id: &str,
        tenant: Option<&str>,
        now: &str,
    ) -> Result<Revocation, StoreError>;

    /// The live key whose hash is `sha256` (hex): not revoked, its tenant enabled.
    async fn live_key(&self, sha256: &str) -> Result<Option<LiveKey>, StoreError>;

    /// Notes that the key `id` authenticated a request at `at` (a later time is never
    /// replaced by an earlier one).
    async fn touch_key(&self, id: &str, at: &str) -> Result<(), StoreError>;

    /// Applies `change` at `now` (Unix seconds) to the brake of `tenant` with [`brake::apply`],
    /// in one transaction that holds the tenant's brake row (and counts its managed users when
    /// the change needs them): concurrent changes through any gateway sharing the store apply one
    /// after the other, so no window lets more through than its threshold.
    async fn change_brake(
        &self,
        tenant: &str,
        change: BrakeChange,
        now: i64,
    ) -> Result<BrakeOutcome, StoreError>;

    /// The brakes the store keeps, by tenant name: of `tenant` only, or every tenant's.
    async fn brakes(&self, tenant: Option<&str>) -> Result<Vec<(String, BrakeState)>, StoreError>;

    /// How the engine's connection pools are used now, for metrics; none for an engine
    /// without pools.
    fn pools(&self) -> Vec<PoolUse> {
        Vec::new()
    }
}

/// The use of one connection pool of an engine at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// Which pool (`statements`, `holds`, `reads`, `writes`, `notifications`).
    pub pool: &'static str,
    /// Connections it may open.
    pub max: usize,
    /// Connections open now.
    pub open: usize,
    /// Open connections not in use.
    pub idle: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
}
