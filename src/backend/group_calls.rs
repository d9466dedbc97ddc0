//! The backend's group operations in native terms, built from `[groups]`: list, get, create,
//! update and delete a group, and, for per-member backends, add, remove and list its members.
//! They share the user calls' client, credentials, pacing and metrics ([`Backend::call`]).

use super::calls::{
    expect_success, mismatch, valid_id, Backend, Call, ContinuedPage, Listing, NativePage, Vars,
};
use super::client::Response;
use super::group_spec::{GroupApi, Membership};
use super::mapping::id_text;
use super::paths::get_path;
use super::spec::{ErrorRule, Operation};
use crate::auth::Tenant;
use crate::scim::error::ScimError;
use serde_json::Value;
use std::sync::Arc;

/// The native group API of one backend.
pub struct GroupBackend {
    backend: Arc<Backend>,
    api: GroupApi,
    /// `[[groups.errors]]`, then `[[users.errors]]`.
    errors: Vec<ErrorRule>,
}

/// What a per-member call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberCall {
    /// The backend did what was asked (or it was already so).
    Done,
    /// The backend does not know the group.
    NoGroup,
}

impl GroupBackend {
    /// The group API of `backend`.
    pub fn new(backend: Arc<Backend>, api: GroupApi) -> Self {
        let errors = api
            .errors
            .iter()
            .chain(&backend.api().errors)
            .cloned()
            .collect();
        GroupBackend {
            backend,
            api,
            errors,
        }
    }

    /// The API description.
    pub fn api(&self) -> &GroupApi {
        &self.api
    }

    /// The user API's backend (for membership held on users).
    pub fn users(&self) -> &Backend {
        &self.backend
    }

    /// The native id of a native group.
    pub fn id_of(&self, native: &Value) -> Option<String> {
        get_path(native, &self.api.id_field).and_then(id_text)
    }

    /// The group list call of `tenant`.
    fn listing<'a>(&'a self, tenant: &'a Tenant) -> Listing<'a> {
        Listing {
            list: &self.api.list,
            errors: &self.errors,
            label: "group_list",
            what: "list groups",
            vars: Vars::tenant(tenant),
            id_field: &self.api.id_field,
        }
    }

    /// Groups `[offset, offset + count)` of the list, optionally narrowed by a query parameter.
    pub async fn list(
        &self,
        tenant: &Tenant,
        search: Option<(&str, &str)>,
        offset: usize,
        count: usize,
    ) -> Result<NativePage, ScimError> {
        self.backend
            .list_pages(&self.listing(tenant), search, offset, count)
            .await
    }

    /// At most `size` groups from the backend's continuation `token` (the first page when
    /// `None`), for a backend that pages by continuation.
    pub async fn list_from(
        &self,
        tenant: &Tenant,
        token: Option<&str>,
        size: usize,
    ) -> Result<ContinuedPage, ScimError> {
        self.backend
            .list_continued(&self.listing(tenant), None, token, size)
            .await
    }

    /// One group by native id; `None` when the backend does not know it.
    pub async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Value>, ScimError> {
        if !valid_id(id) {
            return Ok(None);
        }
        let mut call = Call::new(
            "group_get",
            "get group",
            &self.api.get,
            Vars::user(tenant, id),
        );
        call.retry = true;
        let resp = self.backend.call(call).await?;
        if resp.status == 404 {
            return Ok(None);
        }
        let group = self.group_from(&self.api.get, &resp, "get group")?;
        match self.id_of(&group) {
            Some(native) => Ok((native == id).then_some(group)),
            None => Err(mismatch(
                "get group",
                "the group has no id where groups.id_field says",
            )),
        }
    }

    /// Creates a group from its native form; answers the created native group.
    pub async fn create(&self, tenant: &Tenant, native: &Value) -> Result<Value, ScimError> {
        let call = Call::new(
            "group_create",
            "create group",
            &self.api.create,
            Vars::tenant(tenant),
        )
        .body(native);
        let resp = self.backend.call(call).await?;
        self.group_from(&self.api.create, &resp, "create group")
    }

    /// Writes `native` to group `id`; answers the group as the backend holds it afterwards
    /// (read again when the update answers no group), or `None` when the backend does not know
    /// the group.
    pub async fn update(
        &self,
        tenant: &Tenant,
        id: &str,
        native: &Value,
    ) -> Result<Option<Value>, ScimError> {
        if !valid_id(id) {
            return Ok(None);
        }
        let vars = Vars::user(tenant, id);
        let call = Call::new("group_update", "update group", &self.api.update, vars).body(native);
        let resp = self.backend.call(call).await?;
        if resp.status == 404 {
            return Ok(None);
        }
        let body = expect_success(&self.errors, &resp, "update group")?;
        let answered = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|j| j.pointer(&self.api.update.result).cloned())
            .filter(|g| self.id_of(g).as_deref() == Some(id));
        match answered {
            Some(group) => Ok(Some(group)),
            None => self.get(tenant, id).await,
        }
    }

    /// Deletes a group; `false` when the backend did not know it.
    pub async fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError> {
        if !valid_id(id) {
            return Ok(false);
        }
        let vars = Vars::user(tenant, id);
        let resp = self
            .backend
            .call(Call::new(
                "group_delete",
                "delete group",
                &self.api.delete,
                vars,
            ))
            .await?;
        if resp.status == 404 {
            return Ok(false);
        }
        expect_success(&self.errors, &resp, "delete group").map(|_| true)
    }

    /// Adds (`add`) or removes a member with the per-member calls of `[groups.members]`.
    pub async fn member_call(
        &self,
        tenant: &Tenant,
        group: &str,
        member: &str,
        add: bool,
    ) -> Result<MemberCall, ScimError> {
        let Membership::Calls(calls) = &self.api.members else {
            return Err(ScimError::internal("no per-member calls are configured"));
        };
        let (op, label, what): (&Operation, _, _) = if add {
            (&calls.add, "group_member_add", "add group member")
        } else {
            (&calls.remove, "group_member_remove", "remove group member")
        };
        let vars = Vars::member(tenant, group, member);
        let mut call = Call::new(label, what, op, vars);
        call.retry = true;
        let resp = self.backend.call(call).await?;
        if resp.status == 404 {
            return Ok(MemberCall::NoGroup);
        }
        expect_success(&self.errors, &resp, what).map(|_| MemberCall::Done)
    }

    /// Members `[offset, offset + count)` of group `id`, with the per-member list call.
    pub async fn list_members(
        &self,
        tenant: &Tenant,
        id: &str,
        offset: usize,
        count: usize,
    ) -> Result<NativePage, ScimError> {
        let Membership::Calls(calls) = &self.api.members else {
            return Err(ScimError::internal("no member list call is configured"));
        };
        let listing = Listing {
            list: &calls.list,
            errors: &self.errors,
            label: "group_member_list",
            what: "list group members",
            vars: Vars::user(tenant, id),
            id_field: &calls.value,
        };
        self.backend.list_pages(&listing, None, offset, count).await
    }

    fn group_from(&self, op: &Operation, resp: &Response, what: &str) -> Result<Value, ScimError> {
        let body = expect_success(&self.errors, resp, what)?;
        let json: Value = serde_json::from_slice(&body)
            .map_err(|e| mismatch(what, &format!("the body is not JSON ({e})")))?;
        json.pointer(&op.result)
            .filter(|v| v.is_object())
            .cloned()
            .ok_or_else(|| mismatch(what, &format!("no group object at {:?}", op.result)))
    }
}
