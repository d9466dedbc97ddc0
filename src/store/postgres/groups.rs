//! The group half of the PostgreSQL engine: group records, pending group creates and managed
//! memberships (schema version 5). The trait methods of [`Store`](super::super::Store) call
//! these methods (and name nothing else here, so the engine's module does not depend on this
//! one; [`GROUP_LOOKUPS`] is re-exported for the query-plan test). Every call is one prepared statement, so one round trip, however many ids it takes:
//! a list of ids is one array parameter (`= ANY($n)`, `unnest($n)`).

use super::super::{GroupRecord, StoreError};
use super::{column, json_at, PostgresStore};
use std::collections::HashMap;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

const SELECT_GROUP: &str =
    "SELECT shadow, managed, created, last_modified FROM groups WHERE tenant = $1 AND id = $2";
const SELECT_GROUPS: &str = "SELECT id, shadow, managed, created, last_modified FROM groups \
                             WHERE tenant = $1 AND id = ANY($2)";
const SELECT_GROUPS_BY_EXTERNAL_ID: &str =
    "SELECT id FROM groups WHERE tenant = $1 AND external_id = $2 ORDER BY id";
/// One statement, so one round trip and atomic: the record, and its create no longer pending.
const PUT_GROUP: &str = "WITH up AS (
    INSERT INTO groups (tenant, id, external_id, shadow, managed, created, last_modified)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (tenant, id) DO UPDATE SET external_id = EXCLUDED.external_id,
        shadow = EXCLUDED.shadow, managed = EXCLUDED.managed, created = EXCLUDED.created,
        last_modified = EXCLUDED.last_modified
) DELETE FROM pending_group_creates WHERE tenant = $1 AND display_name = $8";
/// The group and every membership of it, atomically.
const DELETE_GROUP: &str = "WITH gone AS (
    DELETE FROM memberships WHERE tenant = $1 AND group_id = $2
) DELETE FROM groups WHERE tenant = $1 AND id = $2";
const PUT_PENDING_GROUP: &str = "INSERT INTO pending_group_creates \
                                 (tenant, display_name, shadow, created) VALUES ($1, $2, $3, $4) \
                                 ON CONFLICT (tenant, display_name) \
                                 DO UPDATE SET shadow = EXCLUDED.shadow, created = EXCLUDED.created";
const SELECT_PENDING_GROUP: &str = "SELECT shadow, created FROM pending_group_creates \
                                               WHERE tenant = $1 AND display_name = $2";
const CLEAR_PENDING_GROUP: &str =
    "DELETE FROM pending_group_creates WHERE tenant = $1 AND display_name = $2";
const ADD_MEMBERSHIPS: &str = "INSERT INTO memberships (tenant, group_id, user_id) \
                               SELECT $1::text, $2::text, u FROM unnest($3::text[]) AS u \
                               ON CONFLICT DO NOTHING";
const REMOVE_MEMBERSHIPS: &str =
    "DELETE FROM memberships WHERE tenant = $1 AND group_id = $2 AND user_id = ANY($3)";
/// Members in id order: the primary key's order.
const SELECT_MEMBERS: &str =
    "SELECT user_id FROM memberships WHERE tenant = $1 AND group_id = $2 ORDER BY user_id";
/// `lower` under the "C" collation folds ASCII letters only (the index `memberships_folded`).
const IS_MANAGED_MEMBERSHIP: &str = "SELECT EXISTS (SELECT 1 FROM memberships \
     WHERE tenant = $1 AND lower(group_id) = lower($2::text COLLATE \"C\") \
     AND lower(user_id) = lower($3::text COLLATE \"C\"))";

/// The group lookups by key, each with the index it must search: what the query-plan test
/// checks, with the users' [`LOOKUPS`](super::LOOKUPS).
#[doc(hidden)]
pub const GROUP_LOOKUPS: &[(&str, &str)] = &[
    (SELECT_GROUP, "groups_pkey"),
    (SELECT_GROUPS_BY_EXTERNAL_ID, "groups_external_id_id"),
    (SELECT_PENDING_GROUP, "pending_group_creates_pkey"),
    (SELECT_MEMBERS, "memberships_pkey"),
    (IS_MANAGED_MEMBERSHIP, "memberships_folded"),
];

/// Which change [`PostgresStore::change_memberships`] makes.
#[derive(Debug, Clone, Copy)]
enum MembershipChange {
    Add,
    Remove,
}

impl PostgresStore {
    /// [`Store::get_group`](super::super::Store::get_group).
    pub(super) async fn group(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<GroupRecord>, StoreError> {
        let rows = self.db.read(SELECT_GROUP, &[&tenant, &id]).await?;
        rows.first().map(|r| group_at(r, 0)).transpose()
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
        let rows = self.db.read(SELECT_GROUPS, &[&tenant, &ids]).await?;
        rows.iter()
            .map(|r| Ok((column(r, 0)?, group_at(r, 1)?)))
            .collect()
    }

    /// [`Store::put_group`](super::super::Store::put_group).
    pub(super) async fn record_group(
        &self,
        tenant: &str,
        id: &str,
        rec: &GroupRecord,
    ) -> Result<(), StoreError> {
        let (external_id, name) = (rec.external_id(), rec.pending_key());
        let shadow = rec.shadow.to_string();
        let params: [&(dyn ToSql + Sync); 8] = [
            &tenant,
            &id,
            &external_id,
            &shadow,
            &rec.managed,
            &rec.created,
            &rec.last_modified,
            &name,
        ];
        self.db.write(PUT_GROUP, &params).await.map(drop)
    }

    /// [`Store::delete_group`](super::super::Store::delete_group).
    pub(super) async fn forget_group(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        self.write_by(DELETE_GROUP, tenant, id).await
    }

    /// [`Store::put_pending_group_create`](super::super::Store::put_pending_group_create).
    pub(super) async fn note_group_create(
        &self,
        tenant: &str,
        display_name: &str,
        rec: &GroupRecord,
    ) -> Result<(), StoreError> {
        let (name, shadow) = (display_name.to_lowercase(), rec.shadow.to_string());
        self.db
            .write(PUT_PENDING_GROUP, &[&tenant, &name, &shadow, &rec.created])
            .await
            .map(drop)
    }

    /// [`Store::pending_group_create`](super::super::Store::pending_group_create).
    pub(super) async fn noted_group_create(
        &self,
        tenant: &str,
        display_name: &str,
    ) -> Result<Option<GroupRecord>, StoreError> {
        let name = display_name.to_lowercase();
        let rows = self
            .db
            .read(SELECT_PENDING_GROUP, &[&tenant, &name])
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let created: String = column(row, 1)?;
        Ok(Some(GroupRecord {
            shadow: json_at(row, 0)?,
            managed: true,
            last_modified: created.clone(),
            created,
        }))
    }

    /// [`Store::clear_pending_group_create`](super::super::Store::clear_pending_group_create).
    pub(super) async fn forget_group_create(
        &self,
        tenant: &str,
        display_name: &str,
    ) -> Result<(), StoreError> {
        self.write_by(CLEAR_PENDING_GROUP, tenant, &display_name.to_lowercase())
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
        self.db
            .write(sql, &[&tenant, &group, &users])
            .await
            .map(drop)
    }

    /// [`Store::is_managed_membership`](super::super::Store::is_managed_membership). An id
    /// holding NUL is no member: no stored id holds one, and PostgreSQL refuses NUL in text.
    pub(super) async fn membership_is_managed(
        &self,
        tenant: &str,
        group: &str,
        user: &str,
    ) -> Result<bool, StoreError> {
        if group.contains('\0') || user.contains('\0') {
            return Ok(false);
        }
        self.db
            .read_bool(IS_MANAGED_MEMBERSHIP, &[&tenant, &group, &user])
            .await
    }
}

/// The group in the columns from `at` on: shadow, managed, created, last_modified.
fn group_at(row: &Row, at: usize) -> Result<GroupRecord, StoreError> {
    Ok(GroupRecord {
        shadow: json_at(row, at)?,
        managed: column(row, at + 1)?,
        created: column(row, at + 2)?,
        last_modified: column(row, at + 3)?,
    })
}
