//! The project records of the demo backend: projects inside a team, their members, and the
//! fields a client may set on a project.

use serde::Serialize;

/// A project as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Project {
    pub id: i64,
    pub team: String,
    pub name: String,
    pub description: String,
    pub member_count: u64,
    pub created_at: String,
    /// Changes when the name or description does; membership changes do not touch it.
    pub updated_at: String,
}

/// One member of a project, as the project's member listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ProjectMember {
    pub member_id: i64,
    pub email: String,
    pub display_name: String,
    pub added_at: String,
}

/// A project as a member's project listing names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ProjectRef {
    pub id: i64,
    pub name: String,
}

/// The fields of a project create or `PUT` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProjectFields {
    /// Never blank.
    pub name: String,
    /// `None` keeps the current description (empty on create).
    pub description: Option<String>,
}
