//! SQLite queries of the demo backend's projects and project memberships (schema version 2).
//! Every project query names the team, so a project of another team reads as absent.

use rusqlite::{params, OptionalExtension, Row};

use super::project::{Project, ProjectFields, ProjectMember, ProjectRef};
use super::store::{is_unique_violation, now_rfc3339, Store, WriteError};

/// Project columns in the order [`project_from_row`] reads them; the member count is a range
/// of `project_members`' primary key.
const PROJECT_COLUMNS: &str = "p.id, p.team, p.name, p.description,
    (SELECT COUNT(*) FROM project_members pm WHERE pm.project_id = p.id),
    p.created_at, p.updated_at";

/// A page of projects and the number of projects matching the query.
#[derive(Debug)]
pub(crate) struct ProjectPage {
    pub projects: Vec<Project>,
    pub total: u64,
}

/// A page of a project's members and the project's member count.
#[derive(Debug)]
pub(crate) struct ProjectMemberPage {
    pub members: Vec<ProjectMember>,
    pub total: u64,
}

/// The outcome of adding a member to a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Join {
    /// The member is in the project now (just added, or already there).
    Member,
    /// The team has no such project.
    NoProject,
    /// The project exists but the member is not in its team.
    NotInTeam,
}

impl Store {
    /// Projects of `team` ordered by id, optionally only the one named `name` (ignoring case).
    pub fn projects(
        &self,
        team: &str,
        name: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> rusqlite::Result<ProjectPage> {
        // Two shapes, so a lookup by name uses the (team, name) index.
        let filter = match name {
            Some(_) => "p.team = ?1 AND p.name = ?2",
            None => "p.team = ?1 AND ?2 IS NULL",
        };
        let total: i64 = self.conn().query_row(
            &format!("SELECT COUNT(*) FROM projects p WHERE {filter}"),
            params![team, name],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p WHERE {filter} ORDER BY p.id LIMIT ?3 OFFSET ?4"
        ))?;
        let projects = stmt
            .query_map(
                params![team, name, limit, sql_offset(offset)],
                project_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ProjectPage {
            projects,
            total: count(total),
        })
    }

    /// The project `id` if it belongs to `team`.
    pub fn project(&self, team: &str, id: i64) -> rusqlite::Result<Option<Project>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.id = ?1 AND p.team = ?2"
                ),
                params![id, team],
                project_from_row,
            )
            .optional()
    }

    /// Creates a project in `team` (empty description unless given) and returns it as stored.
    pub fn insert_project(
        &self,
        team: &str,
        fields: &ProjectFields,
    ) -> Result<Project, WriteError> {
        let now = now_rfc3339()?;
        self.conn()
            .execute(
                "INSERT INTO projects (team, name, description, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![
                    team,
                    fields.name,
                    fields.description.as_deref().unwrap_or(""),
                    now
                ],
            )
            .map_err(name_conflict)?;
        let id = self.conn().last_insert_rowid();
        self.project(team, id)?
            .ok_or(WriteError::Db(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Writes a project's name and (if given) description with a fresh `updated_at`; `None`
    /// if the team has no such project.
    pub fn update_project(
        &self,
        team: &str,
        id: i64,
        fields: &ProjectFields,
    ) -> Result<Option<Project>, WriteError> {
        let now = now_rfc3339()?;
        let changed = self
            .conn()
            .execute(
                "UPDATE projects SET name = ?3, description = COALESCE(?4, description),
                     updated_at = ?5
                 WHERE id = ?1 AND team = ?2",
                params![id, team, fields.name, fields.description, now],
            )
            .map_err(name_conflict)?;
        if changed == 0 {
            return Ok(None);
        }
        Ok(self.project(team, id)?)
    }

    /// Deletes a project of `team` and its memberships; `false` if there was none.
    pub fn delete_project(&self, team: &str, id: i64) -> rusqlite::Result<bool> {
        let deleted = self.conn().execute(
            "DELETE FROM projects WHERE id = ?1 AND team = ?2",
            params![id, team],
        )?;
        Ok(deleted > 0)
    }

    /// Members of a project ordered by member id (the caller has checked the project's team).
    pub fn project_members(
        &self,
        project_id: i64,
        limit: u32,
        offset: u64,
    ) -> rusqlite::Result<ProjectMemberPage> {
        let total: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM project_members WHERE project_id = ?1",
            [project_id],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn().prepare(
            "SELECT pm.member_id, m.email, m.display_name, pm.added_at
             FROM project_members pm JOIN members m ON m.id = pm.member_id
             WHERE pm.project_id = ?1 ORDER BY pm.member_id LIMIT ?2 OFFSET ?3",
        )?;
        let members = stmt
            .query_map(params![project_id, limit, sql_offset(offset)], |row| {
                Ok(ProjectMember {
                    member_id: row.get(0)?,
                    email: row.get(1)?,
                    display_name: row.get(2)?,
                    added_at: row.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ProjectMemberPage {
            members,
            total: count(total),
        })
    }

    /// Adds member `member_id` to project `project_id` of `team`. Adding is one statement; only
    /// when it adds nothing does a second one tell "already a member" from the two refusals.
    pub fn add_project_member(
        &self,
        team: &str,
        project_id: i64,
        member_id: i64,
    ) -> rusqlite::Result<Join> {
        let added = self
            .conn()
            .prepare_cached(
                "INSERT INTO project_members (project_id, member_id, added_at)
                 SELECT p.id, m.id, ?4
                 FROM projects p JOIN members m ON m.id = ?3 AND m.team = p.team
                 WHERE p.id = ?1 AND p.team = ?2
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![project_id, team, member_id, now_rfc3339()?])?;
        if added > 0 {
            return Ok(Join::Member);
        }
        let (project, member): (bool, bool) = self
            .conn()
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM projects WHERE id = ?1 AND team = ?2),
                        EXISTS (SELECT 1 FROM members WHERE id = ?3 AND team = ?2)",
            )?
            .query_row(params![project_id, team, member_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(match (project, member) {
            (false, _) => Join::NoProject,
            (true, false) => Join::NotInTeam,
            (true, true) => Join::Member,
        })
    }

    /// Removes member `member_id` from project `project_id` of `team` if they are in it;
    /// `false` if the team has no such project. One statement when a membership goes.
    pub fn remove_project_member(
        &self,
        team: &str,
        project_id: i64,
        member_id: i64,
    ) -> rusqlite::Result<bool> {
        let removed = self
            .conn()
            .prepare_cached(
                "DELETE FROM project_members
                 WHERE project_id = ?1 AND member_id = ?3
                   AND EXISTS (SELECT 1 FROM projects WHERE id = ?1 AND team = ?2)",
            )?
            .execute(params![project_id, team, member_id])?;
        if removed > 0 {
            return Ok(true);
        }
        self.conn()
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM projects WHERE id = ?1 AND team = ?2)")?
            .query_row(params![project_id, team], |r| r.get(0))
    }

    /// The projects a member belongs to, ordered by project id.
    pub fn member_projects(&self, member_id: i64) -> rusqlite::Result<Vec<ProjectRef>> {
        let mut stmt = self.conn().prepare(
            "SELECT p.id, p.name FROM project_members pm JOIN projects p ON p.id = pm.project_id
             WHERE pm.member_id = ?1 ORDER BY pm.project_id",
        )?;
        let projects = stmt
            .query_map([member_id], |row| {
                Ok(ProjectRef {
                    id: row.get(0)?,
                    name: row.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(projects)
    }
}

/// Project writes: a unique violation is a taken name.
fn name_conflict(e: rusqlite::Error) -> WriteError {
    if is_unique_violation(&e) {
        WriteError::NameTaken
    } else {
        WriteError::Db(e)
    }
}

fn sql_offset(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn project_from_row(row: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: row.get(0)?,
        team: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        member_count: count(row.get(4)?),
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::schema::SCHEMA_VERSION;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "scimgate-demo-projects-{name}-{}-{}",
            std::process::id(),
            crate::demo::crypto::new_session_token()
        ));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("legacy.db")
    }

    fn names(store: &Store, member: i64) -> rusqlite::Result<Vec<String>> {
        Ok(store
            .member_projects(member)?
            .into_iter()
            .map(|p| p.name)
            .collect())
    }

    #[test]
    fn join_outcomes() -> TestResult {
        let store = Store::open(&temp_db("join"), "pw")?;
        assert_eq!(store.add_project_member("acme", 1, 3)?, Join::Member);
        assert_eq!(store.add_project_member("acme", 1, 3)?, Join::Member);
        assert_eq!(store.add_project_member("acme", 9, 3)?, Join::NoProject);
        assert_eq!(store.add_project_member("other", 1, 3)?, Join::NoProject);
        assert_eq!(store.add_project_member("acme", 1, 99)?, Join::NotInTeam);
        assert_eq!(store.project_members(1, 50, 0)?.total, 3);
        assert!(store.remove_project_member("acme", 1, 3)?);
        assert!(store.remove_project_member("acme", 1, 3)?);
        assert!(!store.remove_project_member("other", 1, 2)?);
        assert_eq!(names(&store, 2)?, vec!["Launch"]);
        Ok(())
    }

    #[test]
    fn names_are_unique_per_team_ignoring_case() -> TestResult {
        let store = Store::open(&temp_db("names"), "pw")?;
        let fields = |name: &str| ProjectFields {
            name: name.into(),
            description: None,
        };
        let taken = store.insert_project("acme", &fields("launch"));
        assert!(matches!(taken, Err(WriteError::NameTaken)));
        let other = store.insert_project("beta", &fields("launch"))?;
        assert_eq!((other.team.as_str(), other.member_count), ("beta", 0));
        let second = store.insert_project("acme", &fields("Second"))?;
        let clash = store.update_project("acme", second.id, &fields("LAUNCH"));
        assert!(matches!(clash, Err(WriteError::NameTaken)));
        assert!(store
            .update_project("acme", other.id, &fields("x"))?
            .is_none());
        assert_eq!(store.projects("acme", Some("SECOND"), 50, 0)?.total, 1);
        Ok(())
    }

    #[test]
    fn member_deletion_cascades() -> TestResult {
        let store = Store::open(&temp_db("cascade"), "pw")?;
        assert!(store.delete(2)?);
        let left = store.project_members(1, 50, 0)?;
        assert_eq!((left.total, left.members[0].member_id), (1, 1));
        assert!(store.delete_project("acme", 1)?);
        assert!(names(&store, 1)?.is_empty());
        Ok(())
    }

    /// A data file of schema version 1 (members and sessions only) gains the project tables
    /// and the seeded project, with those seeded members it still has.
    #[test]
    fn upgrades_a_version_1_file() -> TestResult {
        let path = temp_db("upgrade");
        drop(Store::open(&path, "pw")?);
        {
            let conn = rusqlite::Connection::open(&path)?;
            conn.execute_batch(
                "DROP TABLE project_members; DROP TABLE projects;
                 DELETE FROM members WHERE email = 'bob@acme.test';
                 PRAGMA user_version = 1;",
            )?;
        }
        let store = Store::open(&path, "other")?;
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(version, SCHEMA_VERSION);
        let page = store.projects("acme", None, 50, 0)?;
        assert_eq!(page.total, 1);
        assert_eq!(page.projects[0].name, "Launch");
        assert_eq!(page.projects[0].member_count, 1, "bob is gone");
        assert_eq!(
            store.list("acme", None, 50, 0)?.total,
            2,
            "no member re-seeded"
        );
        drop(store);
        let store = Store::open(&path, "pw")?;
        assert_eq!(store.projects("acme", None, 50, 0)?.total, 1, "seeded once");
        Ok(())
    }
}
