//! The demo backend's SQL schema, one step per version: step `n` (1-based) brings a database
//! at `PRAGMA user_version` `n - 1` to version `n`. Steps are never edited once shipped, so a
//! data file written by an older scimgate is upgraded in place by the steps it has not seen.

/// Version 1: members and their login sessions.
const V1_MEMBERS: &str = "
CREATE TABLE IF NOT EXISTS members (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    team          TEXT NOT NULL,
    email         TEXT NOT NULL COLLATE NOCASE UNIQUE,
    password_hash TEXT,
    first_name    TEXT NOT NULL DEFAULT '',
    last_name     TEXT NOT NULL DEFAULT '',
    display_name  TEXT NOT NULL DEFAULT '',
    title         TEXT,
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    role          TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS members_by_team ON members (team, id);
CREATE TABLE IF NOT EXISTS sessions (
    token_digest TEXT PRIMARY KEY,
    member_id    INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_member ON sessions (member_id);
";

/// Version 2: projects inside a team and their members. A name is unique within its team,
/// ignoring ASCII case. Memberships are keyed (project, member) so a project's member listing
/// is a range of the primary key; the second index serves a member's projects and the cascade
/// when a member is deleted.
const V2_PROJECTS: &str = "
CREATE TABLE IF NOT EXISTS projects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    team        TEXT NOT NULL,
    name        TEXT NOT NULL COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (team, name)
);
CREATE INDEX IF NOT EXISTS projects_by_team ON projects (team, id);
CREATE TABLE IF NOT EXISTS project_members (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    member_id  INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    added_at   TEXT NOT NULL,
    PRIMARY KEY (project_id, member_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS project_members_by_member ON project_members (member_id, project_id);
";

/// The steps, oldest first.
pub(crate) const STEPS: &[&str] = &[V1_MEMBERS, V2_PROJECTS];

/// The version of a database that has run every step.
pub(crate) const SCHEMA_VERSION: i64 = STEPS.len() as i64;
