//! The backend's native user calls as the directory makes them: the seam between
//! [`super::directory::Directory`] (SCIM semantics, compensations) and [`Backend`] (HTTP), so the
//! directory's undo logic can run against a fake backend in unit tests.

use super::calls::{Backend, ContinuedPage, NativePage, Versioned};
use super::spec::UserApi;
use crate::auth::Tenant;
use crate::scim::error::ScimError;
use async_trait::async_trait;
use serde_json::Value;

/// Computes the native fields to write from the native user as read (`null` when nothing was
/// read); see [`Backend::update`].
pub type NativeFields<'a> = &'a (dyn Fn(&Value) -> Result<Value, ScimError> + Send + Sync);

/// The native user operations of one backend, for every tenant.
#[async_trait]
pub trait NativeUsers: Send + Sync {
    /// The API description (field mapping, ids, optional operations).
    fn api(&self) -> &UserApi;

    /// Users `[offset, offset + count)` of the list, optionally narrowed by a query parameter.
    async fn list(
        &self,
        tenant: &Tenant,
        search: Option<(&str, &str)>,
        offset: usize,
        count: usize,
    ) -> Result<NativePage, ScimError>;

    /// At most `size` users from the backend's continuation `token` (the first page when
    /// `None`), for a backend that pages by continuation.
    async fn list_from(
        &self,
        tenant: &Tenant,
        token: Option<&str>,
        size: usize,
    ) -> Result<ContinuedPage, ScimError>;

    /// One user by native id; `None` when the backend does not know it.
    async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Value>, ScimError>;

    /// One user by native id with its version; `None` when the backend does not know it.
    async fn get_versioned(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<Versioned>, ScimError>;

    /// Creates a user from its native form; answers the created native user.
    async fn create(&self, tenant: &Tenant, native: &Value) -> Result<Value, ScimError>;

    /// Writes the fields `fields` computes to user `id`; `read` is the user as just read, if the
    /// caller has it. `None` when the backend does not know the user.
    async fn update(
        &self,
        tenant: &Tenant,
        id: &str,
        fields: NativeFields<'_>,
        read: Option<Versioned>,
    ) -> Result<Option<Value>, ScimError>;

    /// Calls the separate deactivate or reactivate operation; `false` when the backend has none.
    async fn set_active(&self, tenant: &Tenant, id: &str, active: bool) -> Result<bool, ScimError>;

    /// Deletes a user; `false` when the backend did not know it.
    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError>;

    /// Deletes a user the gateway just created, to undo a create that failed later.
    async fn delete_to_undo(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError>;
}

#[async_trait]
impl NativeUsers for Backend {
    fn api(&self) -> &UserApi {
        Backend::api(self)
    }

    async fn list(
        &self,
        tenant: &Tenant,
        search: Option<(&str, &str)>,
        offset: usize,
        count: usize,
    ) -> Result<NativePage, ScimError> {
        Backend::list(self, tenant, search, offset, count).await
    }

    async fn list_from(
        &self,
        tenant: &Tenant,
        token: Option<&str>,
        size: usize,
    ) -> Result<ContinuedPage, ScimError> {
        Backend::list_from(self, tenant, token, size).await
    }

    async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Value>, ScimError> {
        Backend::get(self, tenant, id).await
    }

    async fn get_versioned(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<Versioned>, ScimError> {
        Backend::get_versioned(self, tenant, id).await
    }

    async fn create(&self, tenant: &Tenant, native: &Value) -> Result<Value, ScimError> {
        Backend::create(self, tenant, native).await
    }

    async fn update(
        &self,
        tenant: &Tenant,
        id: &str,
        fields: NativeFields<'_>,
        read: Option<Versioned>,
    ) -> Result<Option<Value>, ScimError> {
        Backend::update(self, tenant, id, fields, read).await
    }

    async fn set_active(&self, tenant: &Tenant, id: &str, active: bool) -> Result<bool, ScimError> {
        Backend::set_active(self, tenant, id, active).await
    }

    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError> {
        Backend::delete(self, tenant, id).await
    }

    async fn delete_to_undo(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError> {
        Backend::delete_to_undo(self, tenant, id).await
    }
}
