//! The group half of the SQLite engine: group records, pending group creates and managed
//! memberships. The trait methods of [`Store`](super::super::Store) call these methods (and
//! name nothing else here, so the engine's module does not depend on this one). A list of ids
//! travels as one JSON array parameter that `json_each` unfolds, so a thousand ids are one
//! statement, not a thousand.

use super::super::{GroupRecord, StoreError};
use super::{json_at, SqliteStore};
use rusqlite::{params, OptionalExtension, Row};
use std::collections::HashMap;

pub(super) const SELECT_GROUP: &str =
    "SELECT shadow, managed, created, last_modified FROM groups WHERE tenant = ?1 AND id = ?2";
const SELECT_GROUPS: &str = "SELECT id, shadow, managed, created, last_modified FROM groups \
                             WHERE tenant = ?1 AND id IN (SELECT value FROM json_each(?2))";
pub(super) const SELECT_GROUPS_BY_EXTERNAL_ID: &str =
    "SELECT id FROM groups WHERE tenant = ?1 AND external_id = ?2 ORDER BY id";
const PUT_GROUP: &str =
    "INSERT INTO groups (tenant, id, external_id, shadow, managed, created, last_modified)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (tenant, id) DO UPDATE SET external_id = ?3, shadow = ?4, managed = ?5,
         created = ?6, last_modified = ?7";
const DELETE_GROUP: &str = "DELETE FROM groups WHERE tenant = ?1 AND id = ?2";
/// Every membership of one group (the primary key's prefix).
const FORGET_GROUP_MEMBERS: &str = "DELETE FROM memberships WHERE tenant = ?1 AND group_id = ?2";
const PUT_PENDING_GROUP: &str = "INSERT OR REPLACE INTO pending_group_creates \
                                 (tenant, display_name, shadow, created) VALUES (?1, ?2, ?3, ?4)";
pub(super) const SELECT_PENDING_GROUP: &str = "SELECT shadow, created FROM pending_group_creates \
                                               WHERE tenant = ?1 AND display_name = ?2";
const CLEAR_PENDING_GROUP: &str =
    "DELETE FROM pending_group_creates WHERE tenant = ?1 AND display_name = ?2";
const ADD_MEMBERSHIPS: &str = "INSERT OR IGNORE INTO memberships (tenant, group_id, user_id) \
                               SELECT ?1, ?2, value FROM json_each(?3)";
const REMOVE_MEMBERSHIPS: &str = "DELETE FROM memberships WHERE tenant = ?1 AND group_id = ?2 \
                                  AND user_id IN (SELECT value FROM json_each(?3))";
/// Members in id order: the primary key's order.
pub(super) const SELECT_MEMBERS: &str =
    "SELECT user_id FROM memberships WHERE tenant = ?1 AND group_id = ?2 ORDER BY user_id";
/// Both ids ignoring ASCII case (`NOCASE`), as `memberships_folded` holds them.
pub(super) const IS_MANAGED_MEMBERSHIP: &str = "SELECT 1 FROM memberships WHERE tenant = ?1 \
     AND group_id = ?2 COLLATE NOCASE AND user_id = ?3 COLLATE NOCASE LIMIT 1";

impl SqliteStore {
    /// [`Store::get_group`](super::super::Store::get_group).
    pub(super) async fn group(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<GroupRecord>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.read(move |conn| {
            conn.prepare_cached(SELECT_GROUP)?
                .query_row(params![tenant, id], |row| group_at(row, 0))
                .optional()
        })
        .await
    }

    /// [`Store::get_groups`](super::super::Store::get_groups): one statement.
    pub(super) async fn groups(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<HashMap<String, GroupRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let (tenant, ids) = (tenant.to_string(), json_list(ids));
        self.read(move |conn| {
            conn.prepare_cached(SELECT_GROUPS)?
                .query_map(params![tenant, ids], |row| {
                    Ok((row.get(0)?, group_at(row, 1)?))
                })?
                .collect()
        })
        .await
    }

    /// [`Store::put_group`](super::super::Store::put_group): the record and its pending create
    /// forgotten, in one transaction.
    pub(super) async fn record_group(
        &self,
        tenant: &str,
        id: &str,
        rec: &GroupRecord,
    ) -> Result<(), StoreError> {
        let (external_id, name) = (rec.external_id(), rec.pending_key());
        let (tenant, id, rec) = (tenant.to_string(), id.to_string(), rec.clone());
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(PUT_GROUP)?.execute(params![
                tenant,
                id,
                external_id,
                rec.shadow.to_string(),
                rec.managed,
                rec.created,
                rec.last_modified
            ])?;
            if let Some(name) = name {
                tx.prepare_cached(CLEAR_PENDING_GROUP)?
                    .execute(params![tenant, name])?;
            }
            tx.commit()
        })
        .await
    }

    /// [`Store::delete_group`](super::super::Store::delete_group): the record and its
    /// memberships, in one transaction.
    pub(super) async fn forget_group(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(FORGET_GROUP_MEMBERS)?
                .execute(params![tenant, id])?;
            tx.prepare_cached(DELETE_GROUP)?
                .execute(params![tenant, id])?;
            tx.commit()
        })
        .await
    }

    /// [`Store::put_pending_group_create`](super::super::Store::put_pending_group_create).
    pub(super) async fn note_group_create(
        &self,
        tenant: &str,
        display_name: &str,
        rec: &GroupRecord,
    ) -> Result<(), StoreError> {
        let (tenant, name) = (tenant.to_string(), display_name.to_lowercase());
        let (shadow, created) = (rec.shadow.to_string(), rec.created.clone());
        self.write(move |conn| {
            conn.prepare_cached(PUT_PENDING_GROUP)?
                .execute(params![tenant, name, shadow, created])
                .map(drop)
        })
        .await
    }

    /// [`Store::pending_group_create`](super::super::Store::pending_group_create).
    pub(super) async fn noted_group_create(
        &self,
        tenant: &str,
        display_name: &str,
    ) -> Result<Option<GroupRecord>, StoreError> {
        let (tenant, name) = (tenant.to_string(), display_name.to_lowercase());
        self.read(move |conn| {
            conn.prepare_cached(SELECT_PENDING_GROUP)?
                .query_row(params![tenant, name], |row| {
                    let created: String = row.get(1)?;
                    Ok(GroupRecord {
                        shadow: json_at(row, 0)?,
                        managed: true,
                        last_modified: created.clone(),
                        created,
                    })
                })
                .optional()
        })
        .await
    }

    /// [`Store::clear_pending_group_create`](super::super::Store::clear_pending_group_create).
    pub(super) async fn forget_group_create(
        &self,
        tenant: &str,
        display_name: &str,
    ) -> Result<(), StoreError> {
        let (tenant, name) = (tenant.to_string(), display_name.to_lowercase());
        self.write(move |conn| {
            conn.prepare_cached(CLEAR_PENDING_GROUP)?
                .execute(params![tenant, name])
                .map(drop)
        })
        .await
    }

    /// [`Store::find_groups_by_external_id`](super::super::Store::find_groups_by_external_id).
    pub(super) async fn group_ids_by_external_id(
        &self,
        tenant: &str,
        external_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.ids_by(SELECT_GROUPS_BY_EXTERNAL_ID, tenant, external_id)
            .await
    }

    /// [`Store::managed_members`](super::super::Store::managed_members).
    pub(super) async fn members_of(
        &self,
        tenant: &str,
        group: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.ids_by(SELECT_MEMBERS, tenant, group).await
    }

    /// [`Store::add_memberships`](super::super::Store::add_memberships).
    pub(super) async fn add_members(
        &self,
        tenant: &str,
        group: &str,
        users: &[String],
    ) -> Result<(), StoreError> {
        self.change_memberships(MembershipChange::Add, tenant, group, users)
            .await
    }

    /// [`Store::remove_memberships`](super::super::Store::remove_memberships).
    pub(super) async fn remove_members(
        &self,
        tenant: &str,
        group: &str,
        users: &[String],
    ) -> Result<(), StoreError> {
        self.change_memberships(MembershipChange::Remove, tenant, group, users)
            .await
    }

    /// Adds or removes `group`'s memberships of `users` in one statement; nothing for no users.
    async fn change_memberships(
        &self,
        change: MembershipChange,
        tenant: &str,
        group: &str,
        users: &[String],
    ) -> Result<(), StoreError> {
        if users.is_empty() {
            return Ok(());
        }
        let sql = match change {
            MembershipChange::Add => ADD_MEMBERSHIPS,
            MembershipChange::Remove => REMOVE_MEMBERSHIPS,
        };
        let (tenant, group, users) = (tenant.to_string(), group.to_string(), json_list(users));
        self.write(move |conn| {
            conn.prepare_cached(sql)?
                .execute(params![tenant, group, users])
                .map(drop)
        })
        .await
    }

    /// [`Store::is_managed_membership`](super::super::Store::is_managed_membership).
    pub(super) async fn membership_is_managed(
        &self,
        tenant: &str,
        group: &str,
        user: &str,
    ) -> Result<bool, StoreError> {
        let (tenant, group, user) = (tenant.to_string(), group.to_string(), user.to_string());
        self.read(move |conn| {
            conn.prepare_cached(IS_MANAGED_MEMBERSHIP)?
                .exists(params![tenant, group, user])
        })
        .await
    }
}

/// Which change [`SqliteStore::change_memberships`] makes.
#[derive(Debug, Clone, Copy)]
enum MembershipChange {
    Add,
    Remove,
}

/// `ids` as a JSON array, one parameter for `json_each`.
fn json_list(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// The group in the columns from `at` on: shadow, managed, created, last_modified.
fn group_at(row: &Row<'_>, at: usize) -> rusqlite::Result<GroupRecord> {
    Ok(GroupRecord {
        shadow: json_at(row, at)?,
        managed: row.get(at + 1)?,
        created: row.get(at + 2)?,
        last_modified: row.get(at + 3)?,
    })
}
