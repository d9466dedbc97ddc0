//! A store's rows as every engine holds them, and what copying rows from one store into
//! another means: which are missing, alike or different there ([`plan`]), whether the target
//! now holds them all ([`verify`]), and the counts and errors of a copy.

use super::{OpenError, StoreError};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// One row of the users table, as both engines hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The tenant.
    pub tenant: String,
    /// The backend's user id.
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

/// One pending create, as both engines hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    /// The tenant.
    pub tenant: String,
    /// The userName, folded to lower case.
    pub user_name: String,
    /// The SCIM resource as JSON text.
    pub shadow: String,
    /// When it was noted.
    pub created: String,
}

/// Every row of a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    /// The users table.
    pub users: Vec<UserRow>,
    /// The pending creates.
    pub pending: Vec<PendingRow>,
}

/// A row with a key unique in its table.
pub trait Keyed {
    /// `tenant/id` or `tenant/userName`.
    fn key(&self) -> String;
}

impl Keyed for UserRow {
    fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.id)
    }
}

impl Keyed for PendingRow {
    fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.user_name)
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

/// Every source row is in the target with the same data, or what is not.
pub fn verify(source: &Rows, target: &Rows) -> Result<(), String> {
    let users = plan(&source.users, &target.users);
    let pending = plan(&source.pending, &target.pending);
    if users.same == source.users.len() && pending.same == source.pending.len() {
        return Ok(());
    }
    Err(format!(
        "{} of {} users and {} of {} pending creates are missing or different",
        source.users.len() - users.same,
        source.users.len(),
        source.pending.len() - pending.same,
        source.pending.len()
    ))
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
    /// The pending creates.
    pub pending: TableCount,
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (u, p) = (&self.users, &self.pending);
        if u.copied + u.overwritten + p.copied + p.overwritten == 0 {
            return write!(
                f,
                "nothing to do: PostgreSQL already holds every row of the SQLite store \
                 ({} users, {} pending creates)",
                u.source, p.source
            );
        }
        write!(
            f,
            "users: {} copied, {} overwritten, {} already there; pending creates: {} copied, \
             {} overwritten, {} already there\nverified: PostgreSQL holds all {} users and {} \
             pending creates of the SQLite store",
            u.copied,
            u.overwritten,
            u.unchanged,
            p.copied,
            p.overwritten,
            p.unchanged,
            u.source,
            p.source
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

/// The differing rows of two plans as a [`CopyError::Differs`], if any.
pub(crate) fn differences(
    users: &TablePlan<UserRow>,
    pending: &TablePlan<PendingRow>,
) -> Option<CopyError> {
    let keys: Vec<String> = users
        .differing
        .iter()
        .map(|r| format!("user {}", r.key()))
        .chain(
            pending
                .differing
                .iter()
                .map(|r| format!("pending create {}", r.key())),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, shadow: &str) -> UserRow {
        UserRow {
            tenant: "acme".into(),
            id: id.into(),
            external_id: None,
            shadow: shadow.into(),
            managed: true,
            created: "c".into(),
            last_modified: "m".into(),
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
        assert_eq!(
            TableCount::of(&p, false),
            TableCount {
                source: 3,
                copied: 1,
                unchanged: 1,
                overwritten: 0
            }
        );
        let err = differences(&p, &plan(&[], &[])).unwrap().to_string();
        assert!(
            err.contains("user acme/3") && err.contains("--overwrite"),
            "{err}"
        );
    }

    #[test]
    fn verification_names_what_is_missing() {
        let source = Rows {
            users: vec![user("1", "{}"), user("2", "{}")],
            pending: vec![],
        };
        assert_eq!(verify(&source, &source), Ok(()));
        let partial = Rows {
            users: vec![user("1", "{}")],
            pending: vec![],
        };
        let err = verify(&source, &partial).unwrap_err();
        assert!(err.contains("1 of 2 users"), "{err}");
    }
}
