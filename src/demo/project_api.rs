//! The project handlers of the legacy API: projects inside a team, their members, a member's
//! projects and leaving a project. Permissions follow the member API: team admins (and the
//! service token) manage projects and memberships; a member may read their own projects and
//! leave a project of their team.

use http::StatusCode;
use serde_json::json;

use super::api::{to_json, ApiReply, Ctx};
use super::error::ApiError;
use super::input::project_fields;
use super::project::Project;
use super::project_store::Join;
use super::query::ListQuery;

impl Ctx<'_> {
    /// The project `id` if it belongs to `team`.
    fn project_in_team(&self, team: &str, id: i64) -> Result<Project, ApiError> {
        self.store
            .project(team, id)?
            .ok_or_else(|| no_project(team, id))
    }

    /// `GET /api/teams/{team}/projects?name=&page=&per_page=`.
    pub(super) fn list_projects(
        &self,
        team: &str,
        query: Option<&str>,
    ) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        let q = ListQuery::parse(query.unwrap_or(""), Some("name"))?;
        let page = self
            .store
            .projects(team, q.filter.as_deref(), q.limit(), q.offset())?;
        Ok(ApiReply::json(
            StatusCode::OK,
            json!({ "projects": to_json(&page.projects)?, "total": page.total, "page": q.page, "per_page": q.per_page }),
        ))
    }

    /// `POST /api/teams/{team}/projects`.
    pub(super) fn create_project(&self, team: &str) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        let fields = project_fields(&self.object()?)?;
        let project = self.store.insert_project(team, &fields)?;
        Ok(ApiReply::json(StatusCode::CREATED, to_json(&project)?))
    }

    /// `GET /api/teams/{team}/projects/{id}`.
    pub(super) fn get_project(&self, team: &str, id: i64) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        let project = self.project_in_team(team, id)?;
        Ok(ApiReply::json(StatusCode::OK, to_json(&project)?))
    }

    /// `PUT /api/teams/{team}/projects/{id}`: rename, and re-describe if `description` is given.
    pub(super) fn put_project(&self, team: &str, id: i64) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        let fields = project_fields(&self.object()?)?;
        let project = self
            .store
            .update_project(team, id, &fields)?
            .ok_or_else(|| no_project(team, id))?;
        Ok(ApiReply::json(StatusCode::OK, to_json(&project)?))
    }

    /// `DELETE /api/teams/{team}/projects/{id}`; the memberships go with the project.
    pub(super) fn delete_project(&self, team: &str, id: i64) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        if !self.store.delete_project(team, id)? {
            return Err(no_project(team, id));
        }
        Ok(ApiReply::no_content())
    }

    /// `GET /api/teams/{team}/projects/{id}/members?page=&per_page=`.
    pub(super) fn list_project_members(
        &self,
        team: &str,
        id: i64,
        query: Option<&str>,
    ) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        let q = ListQuery::parse(query.unwrap_or(""), None)?;
        let project = self.project_in_team(team, id)?;
        let page = self
            .store
            .project_members(project.id, q.limit(), q.offset())?;
        Ok(ApiReply::json(
            StatusCode::OK,
            json!({ "members": to_json(&page.members)?, "total": page.total, "page": q.page, "per_page": q.per_page }),
        ))
    }

    /// `PUT /api/teams/{team}/projects/{id}/members/{member}`: idempotent; the member must be
    /// in the project's team (422 otherwise; 404 is for the project).
    pub(super) fn add_project_member(
        &self,
        team: &str,
        id: i64,
        member: i64,
    ) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        match self.store.add_project_member(team, id, member)? {
            Join::Member => Ok(ApiReply::no_content()),
            Join::NoProject => Err(no_project(team, id)),
            Join::NotInTeam => Err(ApiError::invalid(format!(
                "member {member} is not a member of team {team}, so cannot join its project {id}"
            ))),
        }
    }

    /// `DELETE /api/teams/{team}/projects/{id}/members/{member}`: idempotent.
    pub(super) fn remove_project_member(
        &self,
        team: &str,
        id: i64,
        member: i64,
    ) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        if !self.store.remove_project_member(team, id, member)? {
            return Err(no_project(team, id));
        }
        Ok(ApiReply::no_content())
    }

    /// `GET /api/teams/{team}/members/{id}/projects`: the team's admins or the member.
    pub(super) fn member_projects(&self, team: &str, id: i64) -> Result<ApiReply, ApiError> {
        self.require_self_or_admin(team, id)?;
        let member = self.member_in_team(team, id)?;
        let projects = self.store.member_projects(member.id)?;
        Ok(ApiReply::json(
            StatusCode::OK,
            json!({ "projects": to_json(&projects)? }),
        ))
    }

    /// `DELETE /api/projects/{id}/members/me`: the caller leaves a project of their team
    /// (idempotent).
    pub(super) fn leave_project(&self, id: i64) -> Result<ApiReply, ApiError> {
        let me = self.caller.require_member()?;
        if !self.store.remove_project_member(&me.team, id, me.id)? {
            return Err(ApiError::not_found(format!("no project {id} in your team")));
        }
        Ok(ApiReply::no_content())
    }
}

fn no_project(team: &str, id: i64) -> ApiError {
    ApiError::not_found(format!("no project {id} in team {team}"))
}
