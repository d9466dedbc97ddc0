//! Users in SCIM terms over the backend and the store: every read merges the backend's native
//! user with what the store kept, every write goes to the backend first and is then recorded.
//! Writes to one user (and creates of one userName) are serialised. A deactivation or delete is
//! counted by the brake on mass deprovisioning ([`Brake`]) before it is sent.

use super::calls::{NativePage, Versioned};
use super::mapping::{self, Base, Write};
use super::native::NativeUsers;
use super::paths;
use super::search::{self, Anchor};
use super::timestamp;
use super::undo;
use super::walks;
use crate::auth::Tenant;
use crate::brake::{Brake, Deprovisioning};
use crate::scim::cursor::Position;
use crate::scim::discovery::Restrictions;
use crate::scim::error::ScimError;
use crate::scim::filter::{self, Filter};
use crate::scim::resource::ScimUser;
use crate::service::walk::{self, Walk};
use crate::service::{Basis, Current, Replacement, SearchPage, UserDirectory};
use crate::store::{Held, ResourceKey, Store, StoreError, UserRecord};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Offsets past this are past the end of any list a backend really holds.
const MAX_OFFSET: usize = 1 << 40;

/// What [`Directory::read_current`] read besides the SCIM view: the [`Basis`] of its write.
struct Read {
    current: Versioned,
    record: Option<UserRecord>,
}

/// SCIM user operations for every tenant, over the backend's native user API and the store.
pub struct Directory {
    backend: Arc<dyn NativeUsers>,
    store: Arc<dyn Store>,
    max_scan: usize,
    brake: Option<Arc<Brake>>,
}

impl Directory {
    /// A directory over `backend` and `store`; gateway-evaluated filters scan at most `max_scan` users.
    pub fn new(backend: Arc<dyn NativeUsers>, store: Arc<dyn Store>, max_scan: usize) -> Self {
        Directory {
            backend,
            store,
            max_scan,
            brake: None,
        }
    }

    /// The directory with deactivations and deletes counted by `brake` before they are sent.
    pub fn with_brake(mut self, brake: Arc<Brake>) -> Self {
        self.brake = Some(brake);
        self
    }

    /// Lets a deprovisioning of `id` through the brake, or refuses it (the tenant is held).
    async fn admit(
        &self,
        tenant: &Tenant,
        what: Deprovisioning,
        id: &str,
    ) -> Result<(), ScimError> {
        match &self.brake {
            Some(brake) => brake.admit(tenant, what, id).await,
            None => Ok(()),
        }
    }

    /// Refuses a create when a user of the tenant already has `user_name` (compared ignoring
    /// case, as SCIM compares userName). Runs under the create's per-userName lock, so two
    /// creates of one name cannot both pass it.
    async fn ensure_user_name_free(
        &self,
        tenant: &Tenant,
        user_name: &str,
    ) -> Result<(), ScimError> {
        let literal = serde_json::to_string(user_name)
            .map_err(|e| ScimError::invalid_value(format!("userName: {e}")))?;
        let taken = filter::parse(&format!("userName eq {literal}"))?;
        if self.search(tenant, Some(&taken), 0, 1).await?.total > 0 {
            return Err(ScimError::uniqueness(format!(
                "a user with userName {user_name:?} already exists"
            )));
        }
        Ok(())
    }

    /// Removes a just-created user after a later step failed, so no half-applied create remains.
    async fn undo_create(
        &self,
        tenant: &Tenant,
        id: &str,
        user_name: &str,
        cause: ScimError,
    ) -> ScimError {
        let undone = self.backend.delete_to_undo(tenant, id).await;
        if undone.is_ok() {
            let _ = self
                .store
                .clear_pending_create(&tenant.name, user_name)
                .await;
        }
        undo::explained(cause, "user", tenant, id, undone)
    }

    /// The user `id` as the backend holds it now (with its version) merged with `record`, its
    /// record as read under the write's hold.
    async fn read_current(
        &self,
        tenant: &Tenant,
        id: &str,
        record: Option<UserRecord>,
    ) -> Result<Option<Current>, ScimError> {
        let Some(current) = self.backend.get_versioned(tenant, id).await? else {
            return Ok(None);
        };
        let mut records: HashMap<String, UserRecord> =
            record.map(|r| (id.to_string(), r)).into_iter().collect();
        self.record_pending_creates(tenant, std::slice::from_ref(&current.user), &mut records)
            .await?;
        let record = records.remove(id);
        Ok(Some(Current {
            user: self.merge(&current.user, record.as_ref())?,
            managed: record.as_ref().is_some_and(|r| r.managed),
            basis: Basis::new(Read { current, record }),
        }))
    }

    /// Writes a normalised resource over a user as `before` read it: a PUT, or the result of a
    /// PATCH of that read. A native list element SCIM never wrote (the backend added it)
    /// survives a PUT; after a PATCH, one the client saw and the PATCH left out is removed.
    async fn write_over(
        &self,
        tenant: &Tenant,
        before: ScimUser,
        Read { current, record }: Read,
        resource: Value,
        now: &str,
        from: Replacement,
    ) -> Result<ScimUser, ScimError> {
        let api = self.backend.api();
        let id = before.id.as_str();
        let shadow = record.as_ref().map(|r| &r.shadow);
        let seen = (from == Replacement::Patch).then_some(&before.resource);
        let fields = |native: &Value| {
            let base = (!native.is_null()).then_some(Base {
                native,
                shadow,
                seen,
            });
            mapping::to_native(api, &resource, Write::Update, base)
        };
        self.ensure_writable().await?;
        if deactivates(&before.resource, &resource) {
            self.admit(tenant, Deprovisioning::Deactivate, id).await?;
        }
        // Without `active` in the new resource the account's state is left alone: a PUT that
        // omits it must not re-activate a disabled user.
        let active_change = api.deactivate.is_some()
            && active_of(&resource).is_some_and(|a| active_of(&before.resource) != Some(a));
        let only_active = active_change
            && mapping::to_native(api, &before.resource, Write::Update, None).is_ok_and(|was| {
                mapping::to_native(api, &resource, Write::Update, None).is_ok_and(|now| now == was)
            });
        let updated = if only_active {
            // The (de)activate call below is the whole change: no unchanged full update.
            current.user
        } else {
            match self
                .backend
                .update(tenant, id, &fields, Some(current))
                .await?
            {
                Some(updated) => updated,
                None => return Err(not_found(id)),
            }
        };
        let mut shadow = resource;
        let mut failure = None;
        if active_change {
            if let Err(e) = self
                .backend
                .set_active(tenant, id, wants_active(&shadow))
                .await
            {
                copy_active(&before.resource, &mut shadow);
                let detail = format!(
                    "{}; the other attributes were updated, `active` was not",
                    e.detail
                );
                failure = Some(e.with_detail(detail));
            }
        }
        let record = UserRecord {
            shadow,
            managed: true,
            created: record
                .map(|r| r.created)
                .unwrap_or_else(|| before.created.clone()),
            last_modified: now.to_string(),
        };
        if let Err(e) = self.record(tenant, id, &record).await {
            return Err(self.undo_replace(tenant, id, &before.resource, e).await);
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if active_change {
            if let Some(read) = self.read_after_activation(tenant, id).await {
                return self.merge(&read, Some(&record));
            }
        }
        let mut user = self.merge(&updated, Some(&record))?;
        if active_change {
            copy_active(&record.shadow, &mut user.resource);
        }
        Ok(user)
    }

    /// The user as the backend holds it after its (de)activate call (which may change more than
    /// `active`), so that the answer equals the next read. `None` when that read fails: every
    /// write has succeeded by then, so the caller answers the state the update left instead.
    async fn read_after_activation(&self, tenant: &Tenant, id: &str) -> Option<Value> {
        match self.backend.get(tenant, id).await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(tenant = %tenant.name, id, error = %e, "could not read the user back after (de)activating it");
                None
            }
        }
    }

    /// Puts a user's mapped fields back as they were after the gateway could not record an update.
    async fn undo_replace(
        &self,
        tenant: &Tenant,
        id: &str,
        before: &Value,
        cause: ScimError,
    ) -> ScimError {
        let api = self.backend.api();
        let restored = self
            .backend
            .update(
                tenant,
                id,
                &|_| mapping::to_native(api, before, Write::Update, None),
                None,
            )
            .await
            .map(|_| ());
        let detail = match restored {
            Ok(()) => format!(
                "{}; the user service was put back as it was, nothing was applied",
                cause.detail
            ),
            Err(undo) => {
                tracing::error!(tenant = %tenant.name, id, cause = %cause, undo = %undo, "update half-applied");
                format!("{}; the user service was updated but could not be put back ({}): retry the request", cause.detail, undo.detail)
            }
        };
        cause.with_detail(detail)
    }

    /// Refuses a write before any backend call when the store cannot record it (file unwritable,
    /// disk full), so no backend change is left unrecorded.
    async fn ensure_writable(&self) -> Result<(), ScimError> {
        self.store.check_writable().await.map_err(store_error)
    }

    async fn record(
        &self,
        tenant: &Tenant,
        id: &str,
        record: &UserRecord,
    ) -> Result<(), ScimError> {
        self.store
            .put(&tenant.name, id, record)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn list_all(
        &self,
        tenant: &Tenant,
        start: usize,
        count: usize,
    ) -> Result<SearchPage, ScimError> {
        if start > MAX_OFFSET {
            // Past any real list: report the total, return nobody.
            let total = self
                .backend
                .list(tenant, None, 0, 1)
                .await?
                .total
                .unwrap_or(0);
            return Ok(SearchPage {
                users: Vec::new(),
                total,
            });
        }
        let page = if count == 0 {
            self.backend
                .list(tenant, None, start, 1)
                .await
                .map(|p| NativePage {
                    items: vec![],
                    total: p.total,
                })?
        } else {
            self.backend.list(tenant, None, start, count).await?
        };
        let users = self.merge_page(tenant, &page.items).await?;
        let total = page.total.unwrap_or(start + users.len());
        Ok(SearchPage { users, total })
    }

    /// Offers every user that could match `filter` to `matches`, one backend page (or one page
    /// of ids) at a time; a scan that would pass `max_scan` users is refused before it reads them.
    async fn find_matches(
        &self,
        tenant: &Tenant,
        filter: &Filter,
        matches: &mut Matches<'_>,
    ) -> Result<(), ScimError> {
        let Some(anchors) = search::anchors(self.backend.api(), filter) else {
            return self.scan(tenant, None, matches).await;
        };
        for anchor in anchors {
            match anchor {
                Anchor::Backend { param, value } => {
                    self.scan(tenant, Some((&param, &value)), matches).await?
                }
                Anchor::Id(id) => self.offer_ids(tenant, &[id], matches).await?,
                Anchor::ExternalId(ext) => {
                    let ids = self
                        .store
                        .find_by_external_id(&tenant.name, &ext)
                        .await
                        .map_err(store_error)?;
                    self.offer_ids(tenant, &ids, matches).await?;
                }
                Anchor::WorkEmail(email) => {
                    let ids = self
                        .store
                        .find_by_work_email(&tenant.name, &email)
                        .await
                        .map_err(store_error)?;
                    self.offer_ids(tenant, &ids, matches).await?;
                }
                Anchor::Store(term) => self.scan_store(tenant, &term, matches).await?,
            }
        }
        Ok(())
    }

    /// The users a backend page holds when the directory reads a list page by page.
    fn scan_page(&self) -> usize {
        self.backend
            .api()
            .list
            .max_size
            .min(self.max_scan.saturating_add(1))
            .max(1)
    }

    /// Reads the backend's list (narrowed by `search`) page by page, offering each page's users.
    /// Refused as soon as the list is known to be longer than `max_scan`: from the total the
    /// first page reports, or, without one, once the pages read pass it.
    async fn scan(
        &self,
        tenant: &Tenant,
        search: Option<(&str, &str)>,
        matches: &mut Matches<'_>,
    ) -> Result<(), ScimError> {
        let size = self.scan_page();
        let mut read = 0usize;
        loop {
            let page = self.backend.list(tenant, search, read, size).await?;
            if let Some(total) = page.total {
                self.check_scan(total)?;
            }
            let n = page.items.len();
            read += n;
            self.check_scan(read)?;
            for user in self.merge_page(tenant, &page.items).await? {
                matches.offer(user);
            }
            if n < size || page.total.is_some_and(|t| read >= t) {
                return Ok(());
            }
        }
    }

    /// Walks the tenant's store records a page at a time, offering the users whose saved
    /// resource matches `term`. Refused before any is read when the tenant has more records than
    /// `max_scan`.
    async fn scan_store(
        &self,
        tenant: &Tenant,
        term: &Filter,
        matches: &mut Matches<'_>,
    ) -> Result<(), ScimError> {
        let records = self.store.count(&tenant.name).await.map_err(store_error)?;
        self.check_scan(records)?;
        let size = self.scan_page();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .page(&tenant.name, after.as_deref(), size)
                .await
                .map_err(store_error)?;
            let full = page.len() == size;
            after = page.last().map(|(id, _)| id.clone());
            let ids: Vec<String> = page
                .into_iter()
                .filter(|(_, r)| filter::matches(term, &r.shadow))
                .map(|(id, _)| id)
                .collect();
            self.offer_ids(tenant, &ids, matches).await?;
            if !full {
                return Ok(());
            }
        }
    }

    fn check_scan(&self, n: usize) -> Result<(), ScimError> {
        if n > self.max_scan {
            return Err(ScimError::invalid_filter(format!(
                "this filter needs the gateway to examine {n} users, more than scim.max_scan ({}); filter on userName or externalId",
                self.max_scan
            )));
        }
        Ok(())
    }

    /// Fetches the users `ids` names, a page of them at a time, offering each.
    async fn offer_ids(
        &self,
        tenant: &Tenant,
        ids: &[String],
        matches: &mut Matches<'_>,
    ) -> Result<(), ScimError> {
        for chunk in ids.chunks(self.scan_page()) {
            let natives = self.fetch(tenant, chunk).await?;
            for user in self.merge_page(tenant, &natives).await? {
                matches.offer(user);
            }
        }
        Ok(())
    }

    async fn fetch(&self, tenant: &Tenant, ids: &[String]) -> Result<Vec<Value>, ScimError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(n) = self.backend.get(tenant, id).await? {
                out.push(n);
            }
        }
        Ok(out)
    }

    async fn merge_page(
        &self,
        tenant: &Tenant,
        natives: &[Value],
    ) -> Result<Vec<ScimUser>, ScimError> {
        let api = self.backend.api();
        let records = self.records_for(tenant, natives).await?;
        natives
            .iter()
            .map(|n| {
                let id = mapping::native_id(api, n).unwrap_or_default();
                self.merge(n, records.get(&id))
            })
            .collect()
    }

    /// The store records of `natives` to show, by id, with [`Directory::record_pending_creates`].
    async fn records_for(
        &self,
        tenant: &Tenant,
        natives: &[Value],
    ) -> Result<HashMap<String, UserRecord>, ScimError> {
        let api = self.backend.api();
        let ids: Vec<String> = natives
            .iter()
            .filter_map(|n| mapping::native_id(api, n))
            .collect();
        let read = self.store.get_many_to_show(&tenant.name, &ids).await;
        let mut records = read.map_err(store_error)?;
        self.record_pending_creates(tenant, natives, &mut records)
            .await?;
        Ok(records)
    }

    /// Adds to `records` (by id) the record of each user of `natives` that has none but whose
    /// create was noted and never recorded (the gateway stopped in between): that create's
    /// record, now recorded.
    async fn record_pending_creates(
        &self,
        tenant: &Tenant,
        natives: &[Value],
        records: &mut HashMap<String, UserRecord>,
    ) -> Result<(), ScimError> {
        let api = self.backend.api();
        for native in natives {
            let Some(id) = mapping::native_id(api, native).filter(|id| !records.contains_key(id))
            else {
                continue;
            };
            let view = mapping::from_native(api, native, None);
            let Some(user_name) = view.get("userName").and_then(Value::as_str) else {
                continue;
            };
            if let Some(pending) = self
                .store
                .pending_create(&tenant.name, user_name)
                .await
                .map_err(store_error)?
            {
                tracing::info!(tenant = %tenant.name, id, "recording a create the gateway had not recorded");
                self.record(tenant, &id, &pending).await?;
                records.insert(id, pending);
            }
        }
        Ok(())
    }

    fn merge(&self, native: &Value, record: Option<&UserRecord>) -> Result<ScimUser, ScimError> {
        let api = self.backend.api();
        let id = mapping::native_id(api, native).ok_or_else(|| {
            ScimError::bad_gateway(
                "a user from the user service has no id where users.id_field says",
            )
        })?;
        let resource = mapping::from_native(api, native, record.map(|r| &r.shadow));
        let native_time = |f: &Option<Vec<String>>| {
            f.as_ref()
                .and_then(|p| paths::get_path(native, p))
                .and_then(|v| timestamp::to_scim(&api.time_format, v))
        };
        let (created, last_modified) = match record {
            Some(r) => (r.created.clone(), r.last_modified.clone()),
            None => {
                let c = native_time(&api.created_field)
                    .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
                let m = native_time(&api.modified_field).unwrap_or_else(|| c.clone());
                (c, m)
            }
        };
        Ok(ScimUser {
            id,
            resource,
            created,
            last_modified,
        })
    }
}

#[async_trait]
impl UserDirectory for Directory {
    async fn lock(&self, tenant: &Tenant, id: &str) -> Result<Held, ScimError> {
        self.store
            .serialise(&tenant.name, ResourceKey::User(id))
            .await
            .map_err(store_error)
    }

    async fn reserve_user_name(&self, tenant: &Tenant, user_name: &str) -> Result<Held, ScimError> {
        self.store
            .serialise(&tenant.name, ResourceKey::UserName(user_name))
            .await
            .map_err(store_error)
    }

    async fn is_managed(&self, tenant: &Tenant, id: &str) -> Result<bool, ScimError> {
        // Read from the store every time, not cached: a store shared by a fleet of gateways
        // may have been written through another instance a moment ago.
        if self
            .store
            .is_managed(&tenant.name, id)
            .await
            .map_err(store_error)?
        {
            return Ok(true);
        }
        // A case-insensitive backend reads `USR_BOB` as `usr_bob`.
        if id.bytes().any(|b| b.is_ascii_alphabetic()) {
            return self
                .store
                .is_managed_ignoring_case(&tenant.name, id)
                .await
                .map_err(store_error);
        }
        Ok(false)
    }

    async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<ScimUser>, ScimError> {
        let Some(native) = self.backend.get(tenant, id).await? else {
            return Ok(None);
        };
        let records = self
            .records_for(tenant, std::slice::from_ref(&native))
            .await?;
        Ok(Some(self.merge(&native, records.get(id))?))
    }

    async fn create(
        &self,
        tenant: &Tenant,
        resource: Value,
        now: &str,
    ) -> Result<ScimUser, ScimError> {
        let api = self.backend.api();
        let native = mapping::to_native(api, &resource, Write::Create, None)?;
        let user_name = resource
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !api.reports_duplicates() {
            self.ensure_user_name_free(tenant, &user_name).await?;
        }
        let record = UserRecord {
            shadow: resource,
            managed: true,
            created: now.to_string(),
            last_modified: now.to_string(),
        };
        self.store
            .put_pending_create(&tenant.name, &user_name, &record)
            .await
            .map_err(store_error)?;
        let created = match self.backend.create(tenant, &native).await {
            Ok(c) => c,
            Err(e) => {
                let _ = self
                    .store
                    .clear_pending_create(&tenant.name, &user_name)
                    .await;
                return Err(e);
            }
        };
        let id = mapping::native_id(api, &created).ok_or_else(|| {
            ScimError::bad_gateway("create user: the user service's answer has no id")
        })?;
        if wants_inactive(&record.shadow) {
            if let Err(e) = self.backend.set_active(tenant, &id, false).await {
                return Err(self.undo_create(tenant, &id, &user_name, e).await);
            }
        }
        if let Err(e) = self.record(tenant, &id, &record).await {
            return Err(self.undo_create(tenant, &id, &user_name, e).await);
        }
        let mut user = self.merge(&created, Some(&record))?;
        if api.deactivate.is_some() {
            copy_active(&record.shadow, &mut user.resource);
        }
        Ok(user)
    }

    async fn lock_and_read(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<(Held, Option<Current>), ScimError> {
        let (held, record) = self
            .store
            .serialise_user_and_get(&tenant.name, id)
            .await
            .map_err(store_error)?;
        Ok((held, self.read_current(tenant, id, record).await?))
    }

    async fn write(
        &self,
        tenant: &Tenant,
        current: Current,
        resource: Value,
        now: &str,
        from: Replacement,
    ) -> Result<ScimUser, ScimError> {
        let read = current.basis.into::<Read>().ok_or_else(|| {
            ScimError::internal("a write was given a read this directory did not make")
        })?;
        self.write_over(tenant, current.user, read, resource, now, from)
            .await
    }

    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<(), ScimError> {
        self.ensure_writable().await?;
        if self.backend.get(tenant, id).await?.is_none() {
            return Err(not_found(id));
        }
        self.admit(tenant, Deprovisioning::Delete, id).await?;
        if !self.backend.delete(tenant, id).await? {
            return Err(not_found(id));
        }
        // The user is gone: a record the store could not drop names nobody and is harmless.
        if let Err(e) = self.store.delete(&tenant.name, id).await {
            tracing::error!(tenant = %tenant.name, id, error = %e, "user deleted; its store record remains");
        }
        Ok(())
    }

    async fn search(
        &self,
        tenant: &Tenant,
        filter: Option<&Filter>,
        start: usize,
        count: usize,
    ) -> Result<SearchPage, ScimError> {
        let Some(filter) = filter else {
            return self.list_all(tenant, start, count).await;
        };
        let mut matches = Matches::new(filter, start, count);
        self.find_matches(tenant, filter, &mut matches).await?;
        Ok(matches.into_page())
    }

    /// A filtered walk pages the filter's matches (found as a search finds them, within
    /// `max_scan`) in id order; an unfiltered one the backend's list, by its own continuation
    /// or, paged by position, resuming after the last id from its offset hint ([`walk::resume`]:
    /// the list must be in ascending id order).
    async fn walk(
        &self,
        tenant: &Tenant,
        filter: Option<&Filter>,
        from: Option<&Position>,
        count: usize,
    ) -> Result<Walk<ScimUser>, ScimError> {
        if let Some(filter) = filter {
            let mut matches = Matches::new(filter, 0, usize::MAX);
            self.find_matches(tenant, filter, &mut matches).await?;
            let users = matches.into_page().users;
            return walk::sorted_after(users, |u| u.id.clone(), from, count);
        }
        let api = self.backend.api();
        let natives = if api.list.paging.continues() {
            walks::by_continuation(from, count, |token, size| async move {
                self.backend.list_from(tenant, token.as_deref(), size).await
            })
            .await?
        } else {
            let size = api.list.max_size;
            let id = |n: &Value| mapping::native_id(api, n);
            walk::resume(from, count, size, id, |lo, n| async move {
                let page = self.backend.list(tenant, None, lo, n).await?;
                Ok((page.items, page.total))
            })
            .await?
        };
        Ok(Walk {
            items: self.merge_page(tenant, &natives.items).await?,
            total: natives.total,
            next: natives.next,
        })
    }

    fn restrictions(&self) -> Restrictions {
        mapping::restrictions(self.backend.api())
    }
}

/// What a filtered search keeps while candidates are offered to it: the ids seen (a user two
/// anchors find counts once), how many matched, and only the matches of the page asked for.
struct Matches<'a> {
    filter: &'a Filter,
    seen: HashSet<String>,
    start: usize,
    count: usize,
    total: usize,
    users: Vec<ScimUser>,
}

impl<'a> Matches<'a> {
    /// Keeps matches `[start, start + count)` of `filter`, in the order offered.
    fn new(filter: &'a Filter, start: usize, count: usize) -> Self {
        Matches {
            filter,
            seen: HashSet::new(),
            start,
            count,
            total: 0,
            users: Vec::new(),
        }
    }

    /// Counts `user` if it is new and matches, keeping it if it falls in the page.
    fn offer(&mut self, user: ScimUser) {
        if !self.seen.insert(user.id.clone()) || !filter::matches(self.filter, &with_id(&user)) {
            return;
        }
        if self.total >= self.start && self.users.len() < self.count {
            self.users.push(user);
        }
        self.total += 1;
    }

    fn into_page(self) -> SearchPage {
        SearchPage {
            users: self.users,
            total: self.total,
        }
    }
}

/// The resource a filter is evaluated against: with `id` and the `meta` timestamps.
fn with_id(u: &ScimUser) -> Value {
    let mut v = u.resource.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), Value::String(u.id.clone()));
        let meta = serde_json::json!({"resourceType": "User", "created": u.created, "lastModified": u.last_modified});
        o.insert("meta".into(), meta);
    }
    v
}

fn active_of(resource: &Value) -> Option<bool> {
    resource.get("active").and_then(Value::as_bool)
}

/// Whether writing `after` over `before` deactivates the user: `active` becomes false on a user
/// that was not inactive. What the backend does with `active` does not matter here: the brake
/// counts what the identity provider asked for.
fn deactivates(before: &Value, after: &Value) -> bool {
    wants_inactive(after) && !wants_inactive(before)
}

fn wants_active(resource: &Value) -> bool {
    active_of(resource) != Some(false)
}

fn wants_inactive(resource: &Value) -> bool {
    active_of(resource) == Some(false)
}

fn copy_active(from: &Value, to: &mut Value) {
    if let (Some(a), Some(o)) = (active_of(from), to.as_object_mut()) {
        o.insert("active".into(), Value::Bool(a));
    }
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no user with id {id:?}"))
}

/// A store failure as the SCIM client sees it: `503`, with a `Retry-After` when waiting helps
/// (a busy store in a second, an unreachable one in a few, as it restarts or fails over).
pub fn store_error(e: StoreError) -> ScimError {
    tracing::error!(error = %e, "store failure");
    let answer = ScimError::unavailable(format!("the gateway's store failed: {}", e.detail()));
    match e {
        StoreError::Busy(_) => answer.with_retry_after(1),
        StoreError::Unavailable(_) => answer.with_retry_after(5),
        StoreError::Corrupt(_) => answer,
    }
}
