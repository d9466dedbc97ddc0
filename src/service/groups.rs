//! `/Groups`: answers group requests over a [`GroupDirectory`], with the same query, projection,
//! ETag and error rules as `/Users`. A PATCH answers `204` unless configured to return the group.

use super::cursor_paging::CursorRequest;
use super::group_directory::GroupDirectory;
use super::operation::GroupOperation;
use super::request::{json_body, parse_filter, search_of, Page, Paging, SearchParams};
use crate::auth::Tenant;
use crate::scim::cursor::{CursorKey, Cursors, DEFAULT_TIMEOUT_SECS};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::filter::Filter;
use crate::scim::group::change::{self, GroupChange};
use crate::scim::group::{input, render, ScimGroup};
use crate::scim::message::{Query, ScimRequest, ScimResponse};
use crate::scim::projection::Projection;
use crate::scim::resource::{if_match_accepts, version};
use crate::scim::schema::ResourceKind;
use std::sync::Arc;

/// How `/Groups` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSettings {
    /// Most member ids one request may name (a POST's or PUT's members, a PATCH's adds,
    /// removes and replacement together); more is `400 tooMany` with nothing applied.
    pub max_members_per_request: usize,
    /// Whether a PATCH answers `200` with the group (members left out) instead of `204`.
    pub patch_returns_group: bool,
}

/// The `/Groups` endpoint for every tenant.
pub struct GroupService {
    directory: Arc<dyn GroupDirectory>,
    settings: GroupSettings,
    max_results: usize,
    cursors: Arc<Cursors>,
}

impl GroupService {
    /// A service over `directory`; lists return at most `max_results` groups.
    pub fn new(
        directory: Arc<dyn GroupDirectory>,
        settings: GroupSettings,
        max_results: usize,
    ) -> Self {
        GroupService {
            directory,
            settings,
            max_results,
            cursors: Arc::new(Cursors::new(CursorKey::random(), DEFAULT_TIMEOUT_SECS)),
        }
    }

    /// The service issuing and accepting the cursors of `cursors` (those of `/Users`).
    pub fn with_cursors(mut self, cursors: Arc<Cursors>) -> Self {
        self.cursors = cursors;
        self
    }

    /// Answers one authenticated group request.
    pub async fn handle(
        &self,
        req: &ScimRequest,
        operation: &GroupOperation,
        tenant: &Tenant,
        now: &str,
    ) -> Result<ScimResponse, ScimError> {
        match operation {
            GroupOperation::Search => {
                let params = SearchParams::from_body(&json_body(req)?, self.max_results)?;
                self.search(req, tenant, params).await
            }
            GroupOperation::List => {
                let params = SearchParams::from_query(&req.query, self.max_results)?;
                self.search(req, tenant, params).await
            }
            GroupOperation::Create => self.create(req, tenant, now).await,
            GroupOperation::Get(id) => self.get(req, tenant, id).await,
            GroupOperation::Replace(id) => self.replace(req, tenant, id, now).await,
            GroupOperation::Patch(id) => self.patch(req, tenant, id, now).await,
            GroupOperation::Delete(id) => self.delete(req, tenant, id).await,
        }
    }

    async fn search(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        params: SearchParams,
    ) -> Result<ScimResponse, ScimError> {
        let filter = parse_filter(ResourceKind::Group, params.filter.as_deref())?;
        let projection = projection(params.attributes.as_deref(), params.excluded.as_deref())?;
        if let Paging::Cursor(cursor) = &params.paging {
            let request = CursorRequest::new(&self.cursors, tenant, ResourceKind::Group, &params);
            let from = request.open(cursor)?;
            let members = projection.returns("members");
            let walk = self
                .directory
                .walk(
                    tenant,
                    filter.as_ref(),
                    from.as_ref(),
                    params.count,
                    members,
                )
                .await?;
            let render = |g: &ScimGroup| render(g, &req.base_url);
            return Ok(request.answer(walk, render, &projection));
        }
        let (start, count) = search_of(&params, self.max_results)?;
        let page = self
            .page(req, tenant, filter.as_ref(), &projection, start - 1, count)
            .await?;
        Ok(page.answer(start))
    }

    /// The groups matching `filter`, skipping `skip` and returning at most `count`, rendered
    /// and projected.
    pub async fn page(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        filter: Option<&Filter>,
        projection: &Projection,
        skip: usize,
        count: usize,
    ) -> Result<Page, ScimError> {
        let members = projection.returns("members");
        let found = self
            .directory
            .search(tenant, filter, skip, count, members)
            .await?;
        let rendered = found.groups.iter().map(|g| render(g, &req.base_url));
        Ok(Page::projected(rendered, found.total, projection))
    }

    async fn get(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        id: &str,
    ) -> Result<ScimResponse, ScimError> {
        let q = Query::parse(&req.query)?;
        let projection = projection(q.get("attributes")?, q.get("excludedAttributes")?)?;
        let group = self
            .directory
            .get(tenant, id, projection.returns("members"))
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(answer(200, &group, req, &projection))
    }

    async fn create(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        now: &str,
    ) -> Result<ScimResponse, ScimError> {
        let group = input::parse(&json_body(req)?)?;
        self.check_size(group.members.as_ref().map_or(0, Vec::len))?;
        let _name = self
            .directory
            .reserve_display_name(tenant, &group.display_name)
            .await?;
        let created = self.directory.create(tenant, group, now).await?;
        let location = format!("{}/Groups/{}", req.base_url, created.id);
        Ok(answer(
            201,
            &created,
            req,
            &Projection::everything(ResourceKind::Group),
        )
        .with_header("Location", location))
    }

    async fn replace(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        id: &str,
        now: &str,
    ) -> Result<ScimResponse, ScimError> {
        let change = GroupChange::replacing(input::parse(&json_body(req)?)?);
        let group = self.apply(req, tenant, id, &change, now, true).await?;
        Ok(answer(
            200,
            &group,
            req,
            &Projection::everything(ResourceKind::Group),
        ))
    }

    async fn patch(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        id: &str,
        now: &str,
    ) -> Result<ScimResponse, ScimError> {
        let change = change::parse(&json_body(req)?)?;
        let group = self.apply(req, tenant, id, &change, now, false).await?;
        if self.settings.patch_returns_group {
            Ok(answer(
                200,
                &group,
                req,
                &Projection::everything(ResourceKind::Group),
            ))
        } else {
            Ok(ScimResponse::no_content()
                .with_header("ETag", version(&render(&group, &req.base_url))))
        }
    }

    /// Applies `change` under the group's lock (and the new name's reservation), after the
    /// member cap and `If-Match`.
    async fn apply(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        id: &str,
        change: &GroupChange,
        now: &str,
        members: bool,
    ) -> Result<ScimGroup, ScimError> {
        self.check_size(change.members.size())?;
        let _group = self.directory.lock(tenant, id).await?;
        let _name = match &change.display_name {
            Some(name) => Some(self.directory.reserve_display_name(tenant, name).await?),
            None => None,
        };
        if req.if_match.is_some() {
            let current = self
                .directory
                .get(tenant, id, false)
                .await?
                .ok_or_else(|| not_found(id))?;
            check_if_match(req, &current)?;
        }
        self.directory
            .change(tenant, id, change, now, members)
            .await
    }

    async fn delete(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        id: &str,
    ) -> Result<ScimResponse, ScimError> {
        let _group = self.directory.lock(tenant, id).await?;
        if req.if_match.is_some() {
            let current = self
                .directory
                .get(tenant, id, false)
                .await?
                .ok_or_else(|| not_found(id))?;
            check_if_match(req, &current)?;
        }
        self.directory.delete(tenant, id).await?;
        Ok(ScimResponse::no_content())
    }

    fn check_size(&self, members: usize) -> Result<(), ScimError> {
        let cap = self.settings.max_members_per_request;
        if members > cap {
            return Err(ScimError::bad_request(
                ScimType::TooMany,
                format!("the request names {members} members; at most {cap} are accepted in one request: split it"),
            ));
        }
        Ok(())
    }
}

fn projection(attributes: Option<&str>, excluded: Option<&str>) -> Result<Projection, ScimError> {
    Projection::parse_for(ResourceKind::Group, attributes, excluded)
}

fn answer(
    status: u16,
    group: &ScimGroup,
    req: &ScimRequest,
    projection: &Projection,
) -> ScimResponse {
    let rendered = render(group, &req.base_url);
    let etag = version(&rendered);
    ScimResponse::json(status, &projection.apply(rendered)).with_header("ETag", etag)
}

/// `412` unless the request's `If-Match` (if any) accepts the group's current version.
fn check_if_match(req: &ScimRequest, current: &ScimGroup) -> Result<(), ScimError> {
    match &req.if_match {
        Some(tag) if !if_match_accepts(tag, &version(&render(current, &req.base_url))) => Err(
            ScimError::precondition_failed("the group changed since it was read (If-Match)"),
        ),
        _ => Ok(()),
    }
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no group with id {id:?}"))
}
