//! SQLite storage of the demo backend: opening and upgrading the database, seed data, members
//! and sessions (projects are in `project_store`).

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::crypto::hash_password;
use super::error::{ApiError, DemoError};
use super::model::{Member, NewMember, Role, Status};
use super::schema::{SCHEMA_VERSION, STEPS};

const COLUMNS: &str =
    "id, team, email, first_name, last_name, display_name, title, status, role, created_at, updated_at";

/// Seeded on first open: (email, first name, last name, role).
const SEED: &[(&str, &str, &str, Role)] = &[
    ("admin@acme.test", "Ada", "Admin", Role::Admin),
    ("bob@acme.test", "Bob", "Builder", Role::Member),
    ("carol@acme.test", "Carol", "Clerk", Role::Member),
];

/// Team of the seeded members.
const SEED_TEAM: &str = "acme";

/// The seeded project of [`SEED_TEAM`]: (name, description, emails of its members).
const SEED_PROJECT: (&str, &str, &[&str]) = (
    "Launch",
    "Product launch planning",
    &["admin@acme.test", "bob@acme.test"],
);

/// Why a write failed.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The email is used by another member (case-insensitively).
    EmailTaken,
    /// The name is used by another project of the team (case-insensitively).
    NameTaken,
    /// Any other database failure.
    Db(rusqlite::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::EmailTaken => f.write_str("email already taken"),
            WriteError::NameTaken => f.write_str("project name already taken"),
            WriteError::Db(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::EmailTaken | WriteError::NameTaken => None,
            WriteError::Db(e) => Some(e),
        }
    }
}

/// Member writes: a unique violation is a taken email.
impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        if is_unique_violation(&e) {
            WriteError::EmailTaken
        } else {
            WriteError::Db(e)
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::EmailTaken => ApiError::email_taken(),
            WriteError::NameTaken => ApiError::name_taken(),
            WriteError::Db(e) => ApiError::from(e),
        }
    }
}

/// Whether `e` is a violated `UNIQUE` constraint.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// The current time as RFC 3339 UTC with second precision, e.g. `2026-11-29T19:22:20Z`.
pub(crate) fn now_rfc3339() -> rusqlite::Result<String> {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
        .format(&Rfc3339)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A page of members and the number of members matching the query.
#[derive(Debug)]
pub(crate) struct MemberPage {
    pub members: Vec<Member>,
    pub total: u64,
}

/// The demo backend's database connection.
pub(crate) struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating, migrating and seeding as needed) the database at `path`.
    pub fn open(path: &Path, seed_password: &str) -> Result<Self, DemoError> {
        let conn = Connection::open(path).map_err(|e| {
            DemoError::with_source(format!("cannot open database {}", path.display()), e)
        })?;
        let mut store = Store { conn };
        store
            .prepare(seed_password)
            .map_err(|e| DemoError::with_source("cannot prepare the demo database", e))?;
        Ok(store)
    }

    fn prepare(&mut self, seed_password: &str) -> rusqlite::Result<()> {
        self.conn.busy_timeout(Duration::from_secs(5))?;
        let _mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        self.conn.pragma_update(None, "foreign_keys", true)?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < SCHEMA_VERSION {
            self.upgrade(version, seed_password)?;
        }
        Ok(())
    }

    /// Runs the schema steps after `from` and seeds what each step introduces, in one
    /// transaction: a fresh database gets the members and the project, a version 1 file gets
    /// the project (with those seeded members it still has).
    fn upgrade(&mut self, from: i64, seed_password: &str) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        for (step, sql) in (1..).zip(STEPS) {
            if step <= from {
                continue;
            }
            tx.execute_batch(sql)?;
            match step {
                1 => seed_members(&tx, seed_password)?,
                2 => seed_project(&tx)?,
                _ => {}
            }
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()
    }

    /// The connection, for the queries of the other tables.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The member with this id.
    pub fn member(&self, id: i64) -> rusqlite::Result<Option<Member>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM members WHERE id = ?1"),
                [id],
                member_from_row,
            )
            .optional()
    }

    /// The member with this email (case-insensitive) and their password hash.
    pub fn member_by_email(
        &self,
        email: &str,
    ) -> rusqlite::Result<Option<(Member, Option<String>)>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS}, password_hash FROM members WHERE email = ?1"),
                [email],
                |row| Ok((member_from_row(row)?, row.get(11)?)),
            )
            .optional()
    }

    /// The password hash of a member (`None` if there is no such member or no password).
    pub fn password_hash(&self, id: i64) -> rusqlite::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT password_hash FROM members WHERE id = ?1",
                [id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Members of `team` ordered by id, optionally only the one with `email`.
    pub fn list(
        &self,
        team: &str,
        email: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> rusqlite::Result<MemberPage> {
        // Two shapes, so a lookup by email uses the email index instead of scanning the team.
        let filter = match email {
            Some(_) => "team = ?1 AND email = ?2",
            None => "team = ?1 AND ?2 IS NULL",
        };
        let total: i64 = self.conn.query_row(
            &format!("SELECT COUNT(*) FROM members WHERE {filter}"),
            params![team, email],
            |r| r.get(0),
        )?;
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM members WHERE {filter} ORDER BY id LIMIT ?3 OFFSET ?4"
        ))?;
        let members = stmt
            .query_map(params![team, email, limit, offset], member_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(MemberPage {
            members,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    /// Creates a member and returns it as stored.
    pub fn insert(&self, new: &NewMember) -> Result<Member, WriteError> {
        let id = insert_row(&self.conn, new)?;
        self.member(id)?
            .ok_or(WriteError::Db(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Writes the updatable fields of `member` (and a fresh `updated_at`); returns the stored
    /// record. Suspending a member drops their sessions.
    pub fn save(&self, member: &Member) -> Result<Member, WriteError> {
        let now = now_rfc3339()?;
        self.conn.execute(
            "UPDATE members SET email = ?2, first_name = ?3, last_name = ?4, display_name = ?5,
                 title = ?6, status = ?7, role = ?8, updated_at = ?9
             WHERE id = ?1",
            params![
                member.id,
                member.email,
                member.first_name,
                member.last_name,
                member.display_name,
                member.title,
                member.status.as_str(),
                member.role.as_str(),
                now,
            ],
        )?;
        if member.status == Status::Suspended {
            self.drop_sessions(member.id)?;
        }
        self.member(member.id)?
            .ok_or(WriteError::Db(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Replaces a member's password hash.
    pub fn set_password(&self, id: i64, password_hash: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE members SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, password_hash, now_rfc3339()?],
        )?;
        Ok(())
    }

    /// Deletes a member, their sessions and (by cascade) their project memberships; `false` if
    /// there was no such member.
    pub fn delete(&self, id: i64) -> rusqlite::Result<bool> {
        self.drop_sessions(id)?;
        Ok(self
            .conn
            .execute("DELETE FROM members WHERE id = ?1", [id])?
            > 0)
    }

    /// Records a session (by token digest) for a member.
    pub fn add_session(&self, member_id: i64, token_digest: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO sessions (token_digest, member_id, created_at) VALUES (?1, ?2, ?3)",
            params![token_digest, member_id, now_rfc3339()?],
        )?;
        Ok(())
    }

    /// The active member owning the session with this token digest.
    pub fn session_member(&self, token_digest: &str) -> rusqlite::Result<Option<Member>> {
        let cols = COLUMNS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.conn
            .query_row(
                &format!(
                    "SELECT {cols} FROM sessions s JOIN members m ON m.id = s.member_id
                     WHERE s.token_digest = ?1 AND m.status = 'active'"
                ),
                [token_digest],
                member_from_row,
            )
            .optional()
    }

    /// Ends every session of a member.
    pub fn drop_sessions(&self, member_id: i64) -> rusqlite::Result<()> {
        self.conn
            .execute("DELETE FROM sessions WHERE member_id = ?1", [member_id])?;
        Ok(())
    }
}

/// Seeds [`SEED`] into an empty members table.
fn seed_members(conn: &Connection, seed_password: &str) -> rusqlite::Result<()> {
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM members", [], |r| r.get(0))?;
    if count > 0 {
        return Ok(());
    }
    for (email, first, last, role) in SEED {
        let new = NewMember {
            team: SEED_TEAM.to_owned(),
            email: (*email).to_owned(),
            first_name: (*first).to_owned(),
            last_name: (*last).to_owned(),
            display_name: format!("{first} {last}"),
            title: None,
            status: Status::Active,
            role: *role,
            password_hash: Some(hash_password(seed_password)),
        };
        insert_row(conn, &new)?;
    }
    Ok(())
}

/// Seeds [`SEED_PROJECT`] unless the team already has a project of that name, with those of
/// its members that are still in the team.
fn seed_project(conn: &Connection) -> rusqlite::Result<()> {
    let (name, description, emails) = SEED_PROJECT;
    let now = now_rfc3339()?;
    let added = conn.execute(
        "INSERT INTO projects (team, name, description, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT DO NOTHING",
        params![SEED_TEAM, name, description, now],
    )?;
    if added == 0 {
        return Ok(());
    }
    let project = conn.last_insert_rowid();
    for email in emails {
        conn.execute(
            "INSERT INTO project_members (project_id, member_id, added_at)
             SELECT ?1, id, ?2 FROM members WHERE email = ?3 AND team = ?4",
            params![project, now, email, SEED_TEAM],
        )?;
    }
    Ok(())
}

fn insert_row(conn: &Connection, new: &NewMember) -> rusqlite::Result<i64> {
    let now = now_rfc3339()?;
    conn.execute(
        "INSERT INTO members (team, email, password_hash, first_name, last_name, display_name,
             title, status, role, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        params![
            new.team,
            new.email,
            new.password_hash,
            new.first_name,
            new.last_name,
            new.display_name,
            new.title,
            new.status.as_str(),
            new.role.as_str(),
            now,
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

fn member_from_row(row: &Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        id: row.get(0)?,
        team: row.get(1)?,
        email: row.get(2)?,
        first_name: row.get(3)?,
        last_name: row.get(4)?,
        display_name: row.get(5)?,
        title: row.get(6)?,
        status: parse_column(row, 7, Status::parse)?,
        role: parse_column(row, 8, Role::parse)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
    })
}

fn parse_column<T>(row: &Row<'_>, idx: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unexpected value {text:?}").into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::crypto::verify_password;
    use crate::demo::model::MemberChanges;

    pub(crate) fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "scimgate-demo-{}-{}-{}",
            name,
            std::process::id(),
            crate::demo::crypto::new_session_token()
        ));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("legacy.db")
    }

    fn open(name: &str) -> Store {
        match Store::open(&temp_db(name), "pw") {
            Ok(s) => s,
            Err(e) => panic!("open: {e}"),
        }
    }

    #[test]
    fn seeds_once_and_survives_reopen() -> Result<(), Box<dyn std::error::Error>> {
        let path = temp_db("seed");
        let store = Store::open(&path, "pw")?;
        let page = store.list("acme", None, 50, 0)?;
        assert_eq!(page.total, 3);
        assert_eq!(page.members[0].email, "admin@acme.test");
        assert_eq!(page.members[0].role, Role::Admin);
        assert_eq!(page.members[0].display_name, "Ada Admin");
        let created = &page.members[0].created_at;
        assert!(created.ends_with('Z') && created.len() == 20, "{created}");
        let bob = page.members[1].id;
        assert!(store.delete(bob)?);
        drop(store);
        let store = Store::open(&path, "other")?;
        assert_eq!(store.list("acme", None, 50, 0)?.total, 2);
        let (_, hash) = store
            .member_by_email("ADMIN@acme.test")?
            .ok_or("admin missing")?;
        assert!(verify_password(&hash.ok_or("no hash")?, "pw"));
        Ok(())
    }

    #[test]
    fn unique_email_is_case_insensitive() -> Result<(), Box<dyn std::error::Error>> {
        let store = open("unique");
        let new = NewMember::from_changes(
            "other",
            "BOB@acme.test".into(),
            MemberChanges::default(),
            None,
        );
        assert!(matches!(store.insert(&new), Err(WriteError::EmailTaken)));
        let mut carol = store.member_by_email("carol@acme.test")?.ok_or("carol")?.0;
        carol.email = "Bob@ACME.test".into();
        assert!(matches!(store.save(&carol), Err(WriteError::EmailTaken)));
        Ok(())
    }

    #[test]
    fn paging_and_filter() -> Result<(), Box<dyn std::error::Error>> {
        let store = open("paging");
        let page = store.list("acme", None, 2, 2)?;
        assert_eq!(page.total, 3);
        assert_eq!(page.members.len(), 1);
        assert_eq!(page.members[0].email, "carol@acme.test");
        let one = store.list("acme", Some("CAROL@acme.test"), 50, 0)?;
        assert_eq!(one.total, 1);
        assert_eq!(store.list("nope", None, 50, 0)?.total, 0);
        assert_eq!(store.list("acme", None, 50, u64::MAX)?.members.len(), 0);
        Ok(())
    }

    #[test]
    fn sessions_stop_for_suspended_and_deleted() -> Result<(), Box<dyn std::error::Error>> {
        let store = open("sessions");
        let mut bob = store.member_by_email("bob@acme.test")?.ok_or("bob")?.0;
        store.add_session(bob.id, "d1")?;
        assert_eq!(store.session_member("d1")?.map(|m| m.id), Some(bob.id));
        bob.status = Status::Suspended;
        store.save(&bob)?;
        assert_eq!(store.session_member("d1")?, None);
        bob.status = Status::Active;
        store.save(&bob)?;
        assert_eq!(store.session_member("d1")?, None, "sessions were dropped");
        store.add_session(bob.id, "d2")?;
        assert!(store.delete(bob.id)?);
        assert_eq!(store.session_member("d2")?, None);
        assert!(!store.delete(bob.id)?);
        Ok(())
    }
}
