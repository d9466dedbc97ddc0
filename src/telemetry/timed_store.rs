//! The store seam with every call timed into the metrics: latency by operation and failures by
//! kind, whichever engine is behind it.

use super::Telemetry;
use crate::store::brake::{BrakeChange, BrakeOutcome, BrakeState};
use crate::store::keys::{KeyAdded, LiveKey, Revocation, StoreKey, StoreTenant};
use crate::store::{GroupRecord, Held, PoolUse, ResourceKey, Store, StoreError, UserRecord};
use async_trait::async_trait;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// A [`Store`] that reports each call of the store it wraps.
pub struct TimedStore {
    inner: Arc<dyn Store>,
    telemetry: Arc<Telemetry>,
}

impl TimedStore {
    /// `inner`, reporting into `telemetry`'s metrics.
    pub fn new(inner: Arc<dyn Store>, telemetry: Arc<Telemetry>) -> Self {
        TimedStore { inner, telemetry }
    }

    async fn timed<T>(
        &self,
        operation: &str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        let kind = result.as_ref().err().map(|e| match e {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Busy(_) => "busy",
            StoreError::Corrupt(_) => "corrupt",
        });
        self.telemetry
            .metrics
            .store_call(operation, started.elapsed(), kind);
        result
    }
}

#[async_trait]
impl Store for TimedStore {
    async fn get(&self, tenant: &str, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.timed("get", self.inner.get(tenant, id)).await
    }

    async fn get_many(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, UserRecord>, StoreError> {
        self.timed("get_many", self.inner.get_many(tenant, ids))
            .await
    }

    async fn get_many_to_show(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, UserRecord>, StoreError> {
        self.timed("get_many_to_show", self.inner.get_many_to_show(tenant, ids))
            .await
    }

    async fn count(&self, tenant: &str) -> Result<usize, StoreError> {
        self.timed("count", self.inner.count(tenant)).await
    }

    async fn page(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, UserRecord)>, StoreError> {
        self.timed("page", self.inner.page(tenant, after, limit))
            .await
    }

    async fn find_by_external_id(
        &self,
        tenant: &str,
        external_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let call = self.inner.find_by_external_id(tenant, external_id);
        self.timed("find_by_external_id", call).await
    }

    async fn find_by_work_email(
        &self,
        tenant: &str,
        email: &str,
    ) -> Result<Vec<String>, StoreError> {
        let call = self.inner.find_by_work_email(tenant, email);
        self.timed("find_by_work_email", call).await
    }

    async fn put(&self, tenant: &str, id: &str, rec: &UserRecord) -> Result<(), StoreError> {
        self.timed("put", self.inner.put(tenant, id, rec)).await
    }

    async fn delete(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        self.timed("delete", self.inner.delete(tenant, id)).await
    }

    async fn is_managed(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        self.timed("is_managed", self.inner.is_managed(tenant, id))
            .await
    }

    async fn is_managed_ignoring_case(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let call = self.inner.is_managed_ignoring_case(tenant, id);
        self.timed("is_managed_ignoring_case", call).await
    }

    async fn put_pending_create(
        &self,
        tenant: &str,
        user_name: &str,
        rec: &UserRecord,
    ) -> Result<(), StoreError> {
        let call = self.inner.put_pending_create(tenant, user_name, rec);
        self.timed("put_pending_create", call).await
    }

    async fn pending_create(
        &self,
        tenant: &str,
        user_name: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let call = self.inner.pending_create(tenant, user_name);
        self.timed("pending_create", call).await
    }

    async fn clear_pending_create(&self, tenant: &str, user_name: &str) -> Result<(), StoreError> {
        let call = self.inner.clear_pending_create(tenant, user_name);
        self.timed("clear_pending_create", call).await
    }

    async fn get_group(&self, tenant: &str, id: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.timed("get_group", self.inner.get_group(tenant, id))
            .await
    }

    async fn get_groups(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, GroupRecord>, StoreError> {
        self.timed("get_groups", self.inner.get_groups(tenant, ids))
            .await
    }

    async fn find_groups_by_external_id(
        &self,
        tenant: &str,
        external_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let call = self.inner.find_groups_by_external_id(tenant, external_id);
        self.timed("find_groups_by_external_id", call).await
    }

    async fn put_group(&self, tenant: &str, id: &str, rec: &GroupRecord) -> Result<(), StoreError> {
        self.timed("put_group", self.inner.put_group(tenant, id, rec))
            .await
    }

    async fn delete_group(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        self.timed("delete_group", self.inner.delete_group(tenant, id))
            .await
    }

    async fn put_pending_group_create(
        &self,
        tenant: &str,
        display_name: &str,
        rec: &GroupRecord,
    ) -> Result<(), StoreError> {
        let call = self
            .inner
            .put_pending_group_create(tenant, display_name, rec);
        self.timed("put_pending_group_create", call).await
    }

    async fn pending_group_create(
        &self,
        tenant: &str,
        display_name: &str,
    ) -> Result<Option<GroupRecord>, StoreError> {
        let call = self.inner.pending_group_create(tenant, display_name);
        self.timed("pending_group_create", call).await
    }

    async fn clear_pending_group_create(
        &self,
        tenant: &str,
        display_name: &str,
    ) -> Result<(), StoreError> {
        let call = self.inner.clear_pending_group_create(tenant, display_name);
        self.timed("clear_pending_group_create", call).await
    }

    async fn add_memberships(
        &self,
        tenant: &str,
        group: &str,
        users: &[String],
    ) -> Result<(), StoreError> {
        let call = self.inner.add_memberships(tenant, group, users);
        self.timed("add_memberships", call).await
    }

    async fn remove_memberships(
        &self,
        tenant: &str,
        group: &str,
        users: &[String],
    ) -> Result<(), StoreError> {
        let call = self.inner.remove_memberships(tenant, group, users);
        self.timed("remove_memberships", call).await
    }

    async fn managed_members(&self, tenant: &str, group: &str) -> Result<Vec<String>, StoreError> {
        let call = self.inner.managed_members(tenant, group);
        self.timed("managed_members", call).await
    }

    async fn is_managed_membership(
        &self,
        tenant: &str,
        group: &str,
        user: &str,
    ) -> Result<bool, StoreError> {
        let call = self.inner.is_managed_membership(tenant, group, user);
        self.timed("is_managed_membership", call).await
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        self.timed("check_writable", self.inner.check_writable())
            .await
    }

    async fn enable_tenant(&self, name: &str, by: &str, now: &str) -> Result<bool, StoreError> {
        self.timed("enable_tenant", self.inner.enable_tenant(name, by, now))
            .await
    }

    async fn disable_tenant(&self, name: &str, now: &str) -> Result<usize, StoreError> {
        self.timed("disable_tenant", self.inner.disable_tenant(name, now))
            .await
    }

    async fn add_key(&self, key: &StoreKey) -> Result<KeyAdded, StoreError> {
        self.timed("add_key", self.inner.add_key(key)).await
    }

    async fn tenant(&self, name: &str) -> Result<Option<StoreTenant>, StoreError> {
        self.timed("tenant", self.inner.tenant(name)).await
    }

    async fn tenant_keys(&self, tenant: &str) -> Result<Vec<StoreKey>, StoreError> {
        self.timed("tenant_keys", self.inner.tenant_keys(tenant))
            .await
    }

    async fn all_keys(&self) -> Result<Vec<StoreKey>, StoreError> {
        self.timed("all_keys", self.inner.all_keys()).await
    }

    async fn revoke_key(
        &self,
        id: &str,
        tenant: Option<&str>,
        now: &str,
    ) -> Result<Revocation, StoreError> {
        self.timed("revoke_key", self.inner.revoke_key(id, tenant, now))
            .await
    }

    async fn live_key(&self, sha256: &str) -> Result<Option<LiveKey>, StoreError> {
        self.timed("live_key", self.inner.live_key(sha256)).await
    }

    async fn touch_key(&self, id: &str, at: &str) -> Result<(), StoreError> {
        self.timed("touch_key", self.inner.touch_key(id, at)).await
    }

    async fn serialise(&self, tenant: &str, key: ResourceKey<'_>) -> Result<Held, StoreError> {
        self.timed("serialise", self.inner.serialise(tenant, key))
            .await
    }

    async fn serialise_user_and_get(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<(Held, Option<UserRecord>), StoreError> {
        let call = self.inner.serialise_user_and_get(tenant, id);
        self.timed("serialise_user_and_get", call).await
    }

    async fn change_brake(
        &self,
        tenant: &str,
        change: BrakeChange,
        now: i64,
    ) -> Result<BrakeOutcome, StoreError> {
        self.timed("change_brake", self.inner.change_brake(tenant, change, now))
            .await
    }

    async fn brakes(&self, tenant: Option<&str>) -> Result<Vec<(String, BrakeState)>, StoreError> {
        self.timed("brakes", self.inner.brakes(tenant)).await
    }

    fn pools(&self) -> Vec<PoolUse> {
        self.inner.pools()
    }
}
