//! Groups in SCIM terms over the backend's native group API and the store: reads merge the
//! native group with the store's record (externalId, extension attributes, `meta`); writes go
//! to the backend first and are then recorded, with the memberships SCIM manages. A member id
//! that names no user, or a name another group has, is refused before anything is written.

mod members;
mod view;

use super::directory::store_error;
use super::group_calls::GroupBackend;
use super::mapping::{self, Write};
use super::undo;
use super::walks;
use crate::auth::Tenant;
use crate::scim::cursor::Position;
use crate::scim::error::ScimError;
use crate::scim::filter::{self, Filter};
use crate::scim::group::change::GroupChange;
use crate::scim::group::input::GroupInput;
use crate::scim::group::{render, Member, ScimGroup};
use crate::service::walk::{self, Walk};
use crate::service::{GroupDirectory, GroupPage};
use crate::store::{GroupRecord, Held, ResourceKey, Store};
use async_trait::async_trait;
use members::{Applied, Listed};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// How many unknown member ids an error names before it summarises.
const NAMED_IN_ERRORS: usize = 10;

/// SCIM group operations for every tenant, over the backend's native group API and the store.
pub struct Groups {
    native: GroupBackend,
    store: Arc<dyn Store>,
    max_scan: usize,
}

impl Groups {
    /// A directory over `native` and `store`; filters the backend cannot answer scan at most
    /// `max_scan` groups.
    pub fn new(native: GroupBackend, store: Arc<dyn Store>, max_scan: usize) -> Self {
        Groups {
            native,
            store,
            max_scan,
        }
    }

    /// The SCIM views of listed native groups, with their records.
    async fn views(
        &self,
        tenant: &Tenant,
        natives: &[Value],
        members: bool,
    ) -> Result<Vec<ScimGroup>, ScimError> {
        let ids: Vec<String> = natives
            .iter()
            .filter_map(|n| self.native.id_of(n))
            .collect();
        let records = self
            .store
            .get_groups(&tenant.name, &ids)
            .await
            .map_err(store_error)?;
        let mut groups = Vec::with_capacity(natives.len());
        for native in natives {
            let record = self.native.id_of(native).and_then(|id| records.get(&id));
            groups.push(self.view(tenant, native, record, members).await?);
        }
        Ok(groups)
    }

    /// The native group and its record; a group with no record whose create was noted but never
    /// recorded gets that record, now recorded.
    async fn read(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<(Value, Option<GroupRecord>)>, ScimError> {
        let Some(native) = self.native.get(tenant, id).await? else {
            return Ok(None);
        };
        let record = self
            .store
            .get_group(&tenant.name, id)
            .await
            .map_err(store_error)?;
        let record = match record {
            Some(r) => Some(r),
            None => self.recover_pending(tenant, id, &native).await?,
        };
        Ok(Some((native, record)))
    }

    async fn recover_pending(
        &self,
        tenant: &Tenant,
        id: &str,
        native: &Value,
    ) -> Result<Option<GroupRecord>, ScimError> {
        let view = mapping::fields_from_native(&self.native.api().fields, native, None);
        let Some(name) = view.get("displayName").and_then(Value::as_str) else {
            return Ok(None);
        };
        let pending = self
            .store
            .pending_group_create(&tenant.name, name)
            .await
            .map_err(store_error)?;
        if let Some(record) = &pending {
            tracing::info!(tenant = %tenant.name, id, "recording a group create the gateway had not recorded");
            self.store
                .put_group(&tenant.name, id, record)
                .await
                .map_err(store_error)?;
        }
        Ok(pending)
    }

    /// The SCIM view of a native group, with its members when `members`.
    async fn view(
        &self,
        tenant: &Tenant,
        native: &Value,
        record: Option<&GroupRecord>,
        members: bool,
    ) -> Result<ScimGroup, ScimError> {
        let id = self.native.id_of(native).ok_or_else(|| {
            ScimError::bad_gateway(
                "a group from the user service has no id where groups.id_field says",
            )
        })?;
        let listed = if members {
            let listed = self.native.members(tenant, &id, native).await?;
            Some(self.with_display(tenant, listed).await?)
        } else {
            None
        };
        view::merge(self.native.api(), id, native, record, listed)
    }

    /// Members with a display name: the backend's, or else the name SCIM last wrote for the user
    /// (one store read for all of them, never a backend call per member).
    async fn with_display(
        &self,
        tenant: &Tenant,
        listed: Vec<Listed>,
    ) -> Result<Vec<Member>, ScimError> {
        let missing: Vec<String> = listed
            .iter()
            .filter(|m| m.display.is_none())
            .map(|m| m.id.clone())
            .collect();
        let records = if missing.is_empty() {
            Default::default()
        } else {
            self.store
                .get_many(&tenant.name, &missing)
                .await
                .map_err(store_error)?
        };
        Ok(listed
            .into_iter()
            .map(|m| {
                let display = m.display.or_else(|| {
                    let shadow = &records.get(&m.id)?.shadow;
                    shadow
                        .get("displayName")
                        .or_else(|| shadow.get("userName"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
                Member {
                    value: m.id,
                    display,
                }
            })
            .collect())
    }

    /// Refuses `ids` that name no user: `400 invalidValue`, before anything is written.
    async fn check_members(&self, tenant: &Tenant, ids: &[String]) -> Result<(), ScimError> {
        if ids.is_empty() {
            return Ok(());
        }
        let unknown = self.native.unknown_users(tenant, ids).await?;
        if unknown.is_empty() {
            return Ok(());
        }
        let named: Vec<&str> = unknown
            .iter()
            .take(NAMED_IN_ERRORS)
            .map(String::as_str)
            .collect();
        let more = unknown.len().saturating_sub(NAMED_IN_ERRORS);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        Err(ScimError::invalid_value(format!(
            "no user has the member id {}{tail}: nothing was changed",
            named.join(", ")
        )))
    }

    /// Refuses `name` when another group of the tenant (not `except`) has it, ignoring case.
    async fn ensure_name_free(
        &self,
        tenant: &Tenant,
        name: &str,
        except: Option<&str>,
    ) -> Result<(), ScimError> {
        let literal = serde_json::to_string(name)
            .map_err(|e| ScimError::invalid_value(format!("displayName: {e}")))?;
        let taken = filter::parse_for(
            crate::scim::schema::ResourceKind::Group,
            &format!("displayName eq {literal}"),
        )?;
        let found = self.candidates(tenant, &taken).await?;
        for native in found {
            let Some(id) = self.native.id_of(&native) else {
                continue;
            };
            if Some(id.as_str()) == except {
                continue;
            }
            let view = mapping::fields_from_native(&self.native.api().fields, &native, None);
            let same = view
                .get("displayName")
                .and_then(Value::as_str)
                .is_some_and(|n| {
                    n.eq_ignore_ascii_case(name) || n.to_lowercase() == name.to_lowercase()
                });
            if same {
                return Err(ScimError::uniqueness(format!(
                    "a group with displayName {name:?} already exists (id {id})"
                )));
            }
        }
        Ok(())
    }

    /// The native groups a filter can match: one read for `id eq`, the store's index for
    /// `externalId eq`, the backend's search for a searchable attribute, else every group when
    /// the tenant has at most `max_scan` of them.
    async fn candidates(&self, tenant: &Tenant, filter: &Filter) -> Result<Vec<Value>, ScimError> {
        let pinned = filter::eq_constraints(filter).unwrap_or_default();
        let pin = |name: &str| {
            pinned
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.as_str())
        };
        if let Some(id) = pin("id") {
            return Ok(self.native.get(tenant, id).await?.into_iter().collect());
        }
        if let Some(external) = pin("externalId") {
            let ids = self
                .store
                .find_groups_by_external_id(&tenant.name, external)
                .await
                .map_err(store_error)?;
            let mut found = Vec::new();
            for id in ids {
                found.extend(self.native.get(tenant, &id).await?);
            }
            return Ok(found);
        }
        let api = self.native.api();
        let searchable = api.filters.iter().find_map(|f| {
            let value = pin(f.target.attr.attr.name).filter(|_| f.target.element.is_none())?;
            Some((f.param.as_str(), value))
        });
        if let Some((param, value)) = searchable {
            let page = self
                .native
                .list(tenant, Some((param, value)), 0, self.max_scan)
                .await?;
            return Ok(page.items);
        }
        let first = self.native.list(tenant, None, 0, 1).await?;
        let total = first.total.unwrap_or(0);
        if total > self.max_scan {
            return Err(ScimError::bad_request(
                crate::scim::error::ScimType::TooMany,
                format!(
                    "this filter would read all {total} groups (more than scim.max_scan = {}): filter by id, externalId or a searchable attribute",
                    self.max_scan
                ),
            ));
        }
        Ok(self
            .native
            .list(tenant, None, 0, self.max_scan)
            .await?
            .items)
    }

    /// Records a write: the group's record and the memberships it added and removed.
    async fn record(
        &self,
        tenant: &Tenant,
        id: &str,
        record: &GroupRecord,
        applied: &Applied,
    ) -> Result<(), ScimError> {
        let store = &self.store;
        store
            .put_group(&tenant.name, id, record)
            .await
            .map_err(store_error)?;
        store
            .add_memberships(&tenant.name, id, &applied.added)
            .await
            .map_err(store_error)?;
        store
            .remove_memberships(&tenant.name, id, &applied.removed)
            .await
            .map_err(store_error)
    }

    /// Removes a group just created after a later step failed, so no half-applied create
    /// remains.
    async fn undo_create(
        &self,
        tenant: &Tenant,
        id: &str,
        name: &str,
        cause: ScimError,
    ) -> ScimError {
        let undone = self.native.delete(tenant, id).await;
        if undone.is_ok() {
            let _ = self
                .store
                .clear_pending_group_create(&tenant.name, name)
                .await;
        }
        undo::explained(cause, "group", tenant, id, undone)
    }
}

/// The error of a membership change that stopped part way, saying what was applied.
fn partial(id: &str, applied: &Applied) -> Option<ScimError> {
    if applied.group_gone {
        return Some(not_found(id));
    }
    let (member, cause) = applied.failed.as_ref()?;
    let detail = format!(
        "{} (member {member}); applied before it stopped: {} added, {} removed; retry the request to finish",
        cause.detail,
        applied.added.len(),
        applied.removed.len()
    );
    Some(cause.clone().with_detail(detail))
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no group with id {id:?}"))
}

/// `list` without the ids of `remove`, in order.
fn without(list: &[String], remove: &HashSet<&String>) -> Vec<String> {
    list.iter()
        .filter(|m| !remove.contains(m))
        .cloned()
        .collect()
}

#[async_trait]
impl GroupDirectory for Groups {
    async fn lock(&self, tenant: &Tenant, id: &str) -> Result<Held, ScimError> {
        self.store
            .serialise(&tenant.name, ResourceKey::Group(id))
            .await
            .map_err(store_error)
    }

    async fn reserve_display_name(
        &self,
        tenant: &Tenant,
        display_name: &str,
    ) -> Result<Held, ScimError> {
        self.store
            .serialise(&tenant.name, ResourceKey::GroupName(display_name))
            .await
            .map_err(store_error)
    }

    async fn get(
        &self,
        tenant: &Tenant,
        id: &str,
        members: bool,
    ) -> Result<Option<ScimGroup>, ScimError> {
        match self.read(tenant, id).await? {
            Some((native, record)) => Ok(Some(
                self.view(tenant, &native, record.as_ref(), members).await?,
            )),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        tenant: &Tenant,
        group: GroupInput,
        now: &str,
    ) -> Result<ScimGroup, ScimError> {
        let members = group.members.clone().unwrap_or_default();
        self.check_members(tenant, &members).await?;
        self.ensure_name_free(tenant, &group.display_name, None)
            .await?;
        self.store.check_writable().await.map_err(store_error)?;
        let shadow = view::shadow(
            &group.display_name,
            group.external_id.as_deref(),
            &group.extensions,
        );
        let record = GroupRecord {
            shadow,
            managed: true,
            created: now.to_string(),
            last_modified: now.to_string(),
        };
        let name = &group.display_name;
        self.store
            .put_pending_group_create(&tenant.name, name, &record)
            .await
            .map_err(store_error)?;
        let api = self.native.api();
        let body = mapping::fields_to_native(&api.fields, &record.shadow, Write::Create, None)?;
        let created = match self.native.create(tenant, &body).await {
            Ok(c) => c,
            Err(e) => {
                let _ = self
                    .store
                    .clear_pending_group_create(&tenant.name, name)
                    .await;
                return Err(e);
            }
        };
        let Some(id) = self.native.id_of(&created) else {
            let _ = self
                .store
                .clear_pending_group_create(&tenant.name, name)
                .await;
            return Err(ScimError::bad_gateway(
                "create group: the created group has no id where groups.id_field says",
            ));
        };
        let applied = self
            .native
            .apply_members(tenant, &id, &created, &members, &[])
            .await;
        if let Some(e) = partial(&id, &applied) {
            return Err(self.undo_create(tenant, &id, name, e).await);
        }
        if let Err(e) = self.record(tenant, &id, &record, &applied).await {
            return Err(self.undo_create(tenant, &id, name, e).await);
        }
        let listed = members
            .into_iter()
            .map(|id| Listed { id, display: None })
            .collect();
        let members = self.with_display(tenant, listed).await?;
        view::merge(api, id, &created, Some(&record), Some(members))
    }

    async fn change(
        &self,
        tenant: &Tenant,
        id: &str,
        change: &GroupChange,
        now: &str,
        members: bool,
    ) -> Result<ScimGroup, ScimError> {
        let (native, record) = self.read(tenant, id).await?.ok_or_else(|| not_found(id))?;
        let current = self.view(tenant, &native, record.as_ref(), false).await?;
        let name = change
            .display_name
            .clone()
            .unwrap_or_else(|| current.display_name.clone());
        if name != current.display_name
            && name.to_lowercase() != current.display_name.to_lowercase()
        {
            self.ensure_name_free(tenant, &name, Some(id)).await?;
        }
        let external_id = match &change.external_id {
            Some(e) => e.clone(),
            None => current.external_id.clone(),
        };
        let extensions = change
            .extensions
            .clone()
            .unwrap_or_else(|| current.extensions.clone());
        let (add, remove) = match &change.members.replace {
            Some(target) => {
                let present: Vec<String> = self
                    .native
                    .members(tenant, id, &native)
                    .await?
                    .into_iter()
                    .map(|m| m.id)
                    .collect();
                let target_set: HashSet<&String> = target.iter().collect();
                let present_set: HashSet<&String> = present.iter().collect();
                (
                    without(target, &present_set),
                    without(&present, &target_set),
                )
            }
            None => (change.members.add.clone(), change.members.remove.clone()),
        };
        self.check_members(tenant, &add).await?;
        self.store.check_writable().await.map_err(store_error)?;
        let shadow = view::shadow(&name, external_id.as_deref(), &extensions);
        let api = self.native.api();
        let before = mapping::fields_to_native(
            &api.fields,
            &view::shadow(
                &current.display_name,
                current.external_id.as_deref(),
                &current.extensions,
            ),
            Write::Update,
            None,
        )?;
        let after = mapping::fields_to_native(&api.fields, &shadow, Write::Update, None)?;
        let native = if before == after {
            native
        } else {
            self.native
                .update(tenant, id, &after)
                .await?
                .ok_or_else(|| not_found(id))?
        };
        let applied = if add.is_empty() && remove.is_empty() {
            Applied::default()
        } else {
            self.native
                .apply_members(tenant, id, &native, &add, &remove)
                .await
        };
        let record = GroupRecord {
            shadow,
            managed: true,
            created: record
                .map(|r| r.created)
                .unwrap_or_else(|| current.created.clone()),
            last_modified: now.to_string(),
        };
        self.record(tenant, id, &record, &applied).await?;
        if let Some(e) = partial(id, &applied) {
            return Err(e);
        }
        let native = if members
            && matches!(api.members, super::group_spec::Membership::OnGroup { .. })
            && !(add.is_empty() && remove.is_empty())
        {
            self.native
                .get(tenant, id)
                .await?
                .ok_or_else(|| not_found(id))?
        } else {
            native
        };
        self.view(tenant, &native, Some(&record), members).await
    }

    async fn is_managed_membership(
        &self,
        tenant: &Tenant,
        group: &str,
        user: &str,
    ) -> Result<bool, ScimError> {
        self.store
            .is_managed_membership(&tenant.name, group, user)
            .await
            .map_err(store_error)
    }

    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<(), ScimError> {
        self.store.check_writable().await.map_err(store_error)?;
        if !self.native.delete(tenant, id).await? {
            return Err(not_found(id));
        }
        self.store
            .delete_group(&tenant.name, id)
            .await
            .map_err(store_error)
    }

    async fn search(
        &self,
        tenant: &Tenant,
        filter: Option<&Filter>,
        start: usize,
        count: usize,
        members: bool,
    ) -> Result<GroupPage, ScimError> {
        let Some(filter) = filter else {
            // `count = 0` still reads one group: the list call is what reports the total.
            let mut page = self.native.list(tenant, None, start, count.max(1)).await?;
            page.items.truncate(count);
            let groups = self.views(tenant, &page.items, members).await?;
            let total = page.total.unwrap_or(start + groups.len());
            return Ok(GroupPage { groups, total });
        };
        let needs_members = members || filter.to_string().contains("members");
        let mut matched = Vec::new();
        let mut seen = HashSet::new();
        for native in self.candidates(tenant, filter).await? {
            let Some(id) = self.native.id_of(&native) else {
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            let record = self
                .store
                .get_group(&tenant.name, &id)
                .await
                .map_err(store_error)?;
            let group = self
                .view(tenant, &native, record.as_ref(), needs_members)
                .await?;
            if filter::matches(filter, &render(&group, "")) {
                matched.push(group);
            }
        }
        let total = matched.len();
        let mut groups: Vec<ScimGroup> = matched.into_iter().skip(start).take(count).collect();
        if !members {
            groups.iter_mut().for_each(|g| g.members = None);
        }
        Ok(GroupPage { groups, total })
    }

    /// A filtered walk pages the filter's matches (found as a search finds them) in id order;
    /// an unfiltered one the backend's list, by its own continuation or, paged by position,
    /// resuming after the last id from its offset hint (the list in ascending id order).
    async fn walk(
        &self,
        tenant: &Tenant,
        filter: Option<&Filter>,
        from: Option<&Position>,
        count: usize,
        members: bool,
    ) -> Result<Walk<ScimGroup>, ScimError> {
        if let Some(filter) = filter {
            let all = self
                .search(tenant, Some(filter), 0, usize::MAX, members)
                .await?;
            return walk::sorted_after(all.groups, |g| g.id.clone(), from, count);
        }
        let list = &self.native.api().list;
        let natives = if list.paging.continues() {
            walks::by_continuation(from, count, |token, size| async move {
                self.native.list_from(tenant, token.as_deref(), size).await
            })
            .await?
        } else {
            let size = list.max_size;
            let id = |n: &Value| self.native.id_of(n);
            walk::resume(from, count, size, id, |lo, n| async move {
                let page = self.native.list(tenant, None, lo, n).await?;
                Ok((page.items, page.total))
            })
            .await?
        };
        Ok(Walk {
            items: self.views(tenant, &natives.items, members).await?,
            total: natives.total,
            next: natives.next,
        })
    }
}
