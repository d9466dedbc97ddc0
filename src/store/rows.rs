//! A store's rows as every engine holds them (users, groups, pending creates of both, managed
//! memberships, store tenants and their SCIM API keys), and what copying rows from one store into another means: which are missing,
//! alike or different there ([`Plans`]), whether the target now holds them all ([`verify`]),
//! and the counts and errors of a copy.

use super::keys::{StoreKey, StoreTenant};
use super::{OpenError, StoreError};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;

/// One row of the users or the groups table, as both engines hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// The tenant.
    pub tenant: String,
    /// The backend's user or group id.
    pub id: String,
    /// `externalId` (indexed).
    pub external_id: Option<String>,
    /// The SCIM resource as JSON text.
    pub shadow: String,
    /// The SCIM-managed flag.
    pub managed: bool,
    /// `meta.created`.
    pub created: String,
    /// `meta.lastModified`.
    pub last_modified: String,
}

/// One pending create of a user or a group, as both engines hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    /// The tenant.
    pub tenant: String,
    /// The `userName` or group `displayName`, folded to lower case.
    pub name: String,
    /// The SCIM resource as JSON text.
    pub shadow: String,
    /// When it was noted.
    pub created: String,
}

/// One managed membership, as both engines hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRow {
    /// The tenant.
    pub tenant: String,
    /// The backend's group id.
    pub group_id: String,
    /// The backend's user id.
    pub user_id: String,
}

/// Every row of a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    /// The users table.
    pub users: Vec<RecordRow>,
    /// The pending creates of users.
    pub pending: Vec<PendingRow>,
    /// The groups table.
    pub groups: Vec<RecordRow>,
    /// The pending creates of groups.
    pub pending_groups: Vec<PendingRow>,
    /// The managed memberships.
    pub memberships: Vec<MembershipRow>,
    /// The store tenants.
    pub tenants: Vec<StoreTenant>,
    /// The SCIM API keys of store tenants.
    pub keys: Vec<StoreKey>,
}

impl Rows {
    /// Every tenant with a row, each once, in order.
    pub fn tenants(&self) -> Vec<String> {
        let records = self.users.iter().chain(&self.groups).map(|r| &r.tenant);
        let pending = self.pending.iter().chain(&self.pending_groups);
        records
            .chain(pending.map(|p| &p.tenant))
            .chain(self.memberships.iter().map(|m| &m.tenant))
            .chain(self.tenants.iter().map(|t| &t.name))
            .chain(self.keys.iter().map(|k| &k.tenant))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The key of the first row whose resource is not JSON text (`user tenant/id`), if any.
    pub fn first_not_a_record(&self) -> Option<String> {
        let not_json = |shadow: &str| serde_json::from_str::<serde_json::Value>(shadow).is_err();
        let records = [("user", &self.users), ("group", &self.groups)];
        let pending = [
            ("pending create", &self.pending),
            ("pending group create", &self.pending_groups),
        ];
        let record = records.iter().find_map(|(kind, rows)| {
            let row = rows.iter().find(|r| not_json(&r.shadow))?;
            Some(format!("{kind} {}", row.key()))
        });
        record.or_else(|| {
            pending.iter().find_map(|(kind, rows)| {
                let row = rows.iter().find(|r| not_json(&r.shadow))?;
                Some(format!("{kind} {}", row.key()))
            })
        })
    }
}

/// A row with a key unique in its table.
pub trait Keyed {
    /// `tenant/id`, `tenant/name`, `tenant/group/user`, or a store tenant's name or key's id.
    fn key(&self) -> String;
}

impl Keyed for RecordRow {
    fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.id)
    }
}

impl Keyed for PendingRow {
    fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.name)
    }
}

impl Keyed for MembershipRow {
    fn key(&self) -> String {
        format!("{}/{}/{}", self.tenant, self.group_id, self.user_id)
    }
}

impl Keyed for StoreTenant {
    fn key(&self) -> String {
        self.name.clone()
    }
}

/// A key's id is unique in the whole store (its hash is never shown).
impl Keyed for StoreKey {
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// What a copy does to one table, the source compared with the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePlan<R> {
    /// Source rows the target lacks.
    pub missing: Vec<R>,
    /// Source rows the target holds with other data.
    pub differing: Vec<R>,
    /// Source rows the target holds alike.
    pub same: usize,
}

impl<R> TablePlan<R> {
    /// The rows to write: missing ones, then differing ones.
    pub fn to_write(&self) -> Vec<&R> {
        self.missing.iter().chain(&self.differing).collect()
    }
}

/// Compares `source` rows with the `target`'s.
pub fn plan<R: Keyed + PartialEq + Clone>(source: &[R], target: &[R]) -> TablePlan<R> {
    let there: HashMap<String, &R> = target.iter().map(|r| (r.key(), r)).collect();
    let mut plan = TablePlan {
        missing: Vec::new(),
        differing: Vec::new(),
        same: 0,
    };
    for row in source {
        match there.get(&row.key()) {
            None => plan.missing.push(row.clone()),
            Some(t) if *t == row => plan.same += 1,
            Some(_) => plan.differing.push(row.clone()),
        }
    }
    plan
}

/// What a copy does to every table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    /// The users table.
    pub users: TablePlan<RecordRow>,
    /// The pending creates of users.
    pub pending: TablePlan<PendingRow>,
    /// The groups table.
    pub groups: TablePlan<RecordRow>,
    /// The pending creates of groups.
    pub pending_groups: TablePlan<PendingRow>,
    /// The managed memberships.
    pub memberships: TablePlan<MembershipRow>,
    /// The store tenants.
    pub tenants: TablePlan<StoreTenant>,
    /// The SCIM API keys.
    pub keys: TablePlan<StoreKey>,
}

impl Plans {
    /// Every table of `source` compared with the `target`'s.
    pub fn of(source: &Rows, target: &Rows) -> Plans {
        Plans {
            users: plan(&source.users, &target.users),
            pending: plan(&source.pending, &target.pending),
            groups: plan(&source.groups, &target.groups),
            pending_groups: plan(&source.pending_groups, &target.pending_groups),
            memberships: plan(&source.memberships, &target.memberships),
            tenants: plan(&source.tenants, &target.tenants),
            keys: plan(&source.keys, &target.keys),
        }
    }

    /// The counts of the plans carried out (`overwrite`: differing rows were replaced).
    pub fn report(&self, overwrite: bool) -> CopyReport {
        CopyReport {
            users: TableCount::of(&self.users, overwrite),
            pending: TableCount::of(&self.pending, overwrite),
            groups: TableCount::of(&self.groups, overwrite),
            pending_groups: TableCount::of(&self.pending_groups, overwrite),
            memberships: TableCount::of(&self.memberships, overwrite),
            tenants: TableCount::of(&self.tenants, overwrite),
            keys: TableCount::of(&self.keys, overwrite),
        }
    }

    /// The differing rows as a [`CopyError::Differs`], if any.
    pub fn differences(&self) -> Option<CopyError> {
        fn keys<'a, R: Keyed>(
            kind: &'static str,
            plan: &'a TablePlan<R>,
        ) -> impl Iterator<Item = String> + 'a {
            plan.differing
                .iter()
                .map(move |r| format!("{kind} {}", r.key()))
        }
        let keys: Vec<String> = keys("user", &self.users)
            .chain(keys("pending create", &self.pending))
            .chain(keys("group", &self.groups))
            .chain(keys("pending group create", &self.pending_groups))
            .chain(keys("membership", &self.memberships))
            .chain(keys("tenant", &self.tenants))
            .chain(keys("key", &self.keys))
            .collect();
        if keys.is_empty() {
            return None;
        }
        let mut sample = keys.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if keys.len() > 5 {
            sample.push_str(", …");
        }
        Some(CopyError::Differs {
            count: keys.len(),
            sample,
        })
    }
}

/// Every source row is in the target with the same data, or what is not.
pub fn verify(source: &Rows, target: &Rows) -> Result<(), String> {
    let counts = Plans::of(source, target).report(false);
    let short: Vec<String> = counts
        .tables()
        .iter()
        .filter(|(_, c)| c.unchanged < c.source)
        .map(|(name, c)| format!("{} of {} {name}", c.source - c.unchanged, c.source))
        .collect();
    if short.is_empty() {
        return Ok(());
    }
    Err(format!("{} are missing or different", short.join(", ")))
}

/// The counts of one table after a copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCount {
    /// Rows in the source.
    pub source: usize,
    /// Rows written because the target lacked them.
    pub copied: usize,
    /// Rows the target already held alike.
    pub unchanged: usize,
    /// Rows the target held with other data, replaced (`--overwrite`).
    pub overwritten: usize,
}

impl TableCount {
    /// The counts for a plan carried out (`overwrite`: its differing rows were replaced).
    pub fn of<R>(plan: &TablePlan<R>, overwrite: bool) -> TableCount {
        TableCount {
            source: plan.missing.len() + plan.differing.len() + plan.same,
            copied: plan.missing.len(),
            unchanged: plan.same,
            overwritten: if overwrite { plan.differing.len() } else { 0 },
        }
    }
}

/// What a copy did; every source row was verified in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    /// The users table.
    pub users: TableCount,
    /// The pending creates of users.
    pub pending: TableCount,
    /// The groups table.
    pub groups: TableCount,
    /// The pending creates of groups.
    pub pending_groups: TableCount,
    /// The managed memberships.
    pub memberships: TableCount,
    /// The store tenants.
    pub tenants: TableCount,
    /// The SCIM API keys.
    pub keys: TableCount,
}

impl CopyReport {
    /// Every table's counts, with the table's name in the report.
    pub fn tables(&self) -> [(&'static str, TableCount); 7] {
        [
            ("users", self.users),
            ("pending creates", self.pending),
            ("groups", self.groups),
            ("pending group creates", self.pending_groups),
            ("memberships", self.memberships),
            ("tenants", self.tenants),
            ("keys", self.keys),
        ]
    }
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tables = self.tables();
        let sources = tables
            .iter()
            .map(|(name, c)| format!("{} {name}", c.source))
            .collect::<Vec<_>>()
            .join(", ");
        if tables.iter().all(|(_, c)| c.copied + c.overwritten == 0) {
            return write!(
                f,
                "nothing to do: PostgreSQL already holds every row of the SQLite store \
                 ({sources})"
            );
        }
        let done = tables
            .iter()
            .map(|(name, c)| {
                format!(
                    "{name}: {} copied, {} overwritten, {} already there",
                    c.copied, c.overwritten, c.unchanged
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        write!(
            f,
            "{done}\nverified: PostgreSQL holds all {sources} of the SQLite store"
        )
    }
}

/// Why a copy did nothing.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source file does not exist.
    #[error("no SQLite store at {}", .0.display())]
    NoSource(PathBuf),
    /// The PostgreSQL store cannot be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A source row is not a record.
    #[error("the SQLite store's row {0} is not a JSON resource; nothing was copied")]
    NotARecord(String),
    /// Rows in PostgreSQL hold other data than the source's.
    #[error(
        "{count} row(s) of the SQLite store are already in PostgreSQL with other data \
         ({sample}); nothing was copied: run again with --overwrite to replace them with the \
         SQLite store's"
    )]
    Differs {
        /// How many.
        count: usize,
        /// The first few keys.
        sample: String,
    },
    /// The rows read back are not the source's.
    #[error("after copying, {0}; nothing was committed")]
    Verify(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, shadow: &str) -> RecordRow {
        RecordRow {
            tenant: "acme".into(),
            id: id.into(),
            external_id: None,
            shadow: shadow.into(),
            managed: true,
            created: "c".into(),
            last_modified: "m".into(),
        }
    }

    fn member(group: &str, user: &str) -> MembershipRow {
        MembershipRow {
            tenant: "acme".into(),
            group_id: group.into(),
            user_id: user.into(),
        }
    }

    #[test]
    fn a_plan_sorts_source_rows_into_missing_same_and_differing() {
        let source = [user("1", "{}"), user("2", "{}"), user("3", "{}")];
        let target = [user("2", "{}"), user("3", "{\"a\":1}"), user("4", "{}")];
        let p = plan(&source, &target);
        assert_eq!(p.missing, [user("1", "{}")]);
        assert_eq!(p.same, 1);
        assert_eq!(p.differing, [user("3", "{}")]);
        assert_eq!(p.to_write(), [&user("1", "{}"), &user("3", "{}")]);
        assert_eq!(
            TableCount::of(&p, false),
            TableCount {
                source: 3,
                copied: 1,
                unchanged: 1,
                overwritten: 0
            }
        );
        let source = Rows {
            groups: source.to_vec(),
            ..Rows::default()
        };
        let target = Rows {
            groups: target.to_vec(),
            ..Rows::default()
        };
        let err = Plans::of(&source, &target)
            .differences()
            .unwrap()
            .to_string();
        assert!(
            err.contains("group acme/3") && err.contains("--overwrite"),
            "{err}"
        );
    }

    #[test]
    fn verification_names_what_is_missing() {
        let source = Rows {
            users: vec![user("1", "{}"), user("2", "{}")],
            memberships: vec![member("g", "1"), member("g", "2")],
            ..Rows::default()
        };
        assert_eq!(verify(&source, &source), Ok(()));
        let partial = Rows {
            users: vec![user("1", "{}")],
            memberships: vec![member("g", "2")],
            ..Rows::default()
        };
        let err = verify(&source, &partial).unwrap_err();
        assert_eq!(
            err,
            "1 of 2 users, 1 of 2 memberships are missing or different"
        );
    }

    #[test]
    fn tenants_and_rows_that_are_not_records_are_found_in_every_table() {
        let mut rows = Rows {
            users: vec![user("1", "{}")],
            memberships: vec![MembershipRow {
                tenant: "zeta".into(),
                ..member("g", "1")
            }],
            ..Rows::default()
        };
        assert_eq!(rows.tenants(), ["acme", "zeta"]);
        assert_eq!(rows.first_not_a_record(), None);
        rows.groups.push(user("g", "{not json"));
        assert_eq!(rows.first_not_a_record().as_deref(), Some("group acme/g"));
    }

    #[test]
    fn a_report_counts_every_table() {
        let source = Rows {
            users: vec![user("1", "{}")],
            memberships: vec![member("g", "1")],
            ..Rows::default()
        };
        let report = Plans::of(&source, &Rows::default()).report(false);
        let text = report.to_string();
        assert!(
            text.contains("memberships: 1 copied, 0 overwritten, 0 already there"),
            "{text}"
        );
        let again = Plans::of(&source, &source).report(false).to_string();
        assert!(
            again.contains("nothing to do")
                && again.contains("0 groups, 0 pending group creates, 1 memberships"),
            "{again}"
        );
    }
}
