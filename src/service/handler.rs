//! The SCIM service: authenticates the bearer key, routes `/Users`, `/Schemas`, `/ResourceTypes`
//! and `/ServiceProviderConfig`, and answers every failure with an RFC 7644 error body.

use super::cursor_paging::CursorRequest;
use super::directory::{Current, Replacement, UserDirectory};
use super::groups::GroupService;
use super::operation::Operation;
use super::request::{json_body, parse_filter, search_of, Page, Paging, SearchParams};
use crate::auth::{Keyring, Principal, Tenant};
use crate::scim::cursor::{CursorKey, Cursors, DEFAULT_TIMEOUT_SECS};
use crate::scim::discovery;
use crate::scim::error::ScimError;
use crate::scim::filter::Filter;
use crate::scim::message::{list_response, Query, ScimRequest, ScimResponse};
use crate::scim::normalize::{check_core_schema, normalize_user};
use crate::scim::patch;
use crate::scim::projection::Projection;
use crate::scim::resource::{if_match_accepts, render, version, ScimUser};
use crate::scim::schema::ResourceKind;
use crate::store::Held;
use crate::telemetry::Telemetry;
use serde_json::Value;
use std::sync::Arc;

/// The SCIM endpoint for every tenant.
pub struct ScimService {
    directory: Arc<dyn UserDirectory>,
    groups: Option<GroupService>,
    keyring: Keyring,
    max_results: usize,
    cursors: Arc<Cursors>,
    telemetry: Arc<Telemetry>,
}

impl ScimService {
    /// A service over `directory`, accepting the keys of `keyring`; its cursors are signed with
    /// a random key (see [`ScimService::with_cursors`]).
    pub fn new(
        directory: Arc<dyn UserDirectory>,
        keyring: Keyring,
        max_results: usize,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        ScimService {
            directory,
            groups: None,
            keyring,
            max_results,
            cursors: Arc::new(Cursors::new(CursorKey::random(), DEFAULT_TIMEOUT_SECS)),
            telemetry,
        }
    }

    /// The service serving `/Groups` with `groups` too (without, `/Groups` is `404`).
    pub fn with_groups(mut self, groups: GroupService) -> Self {
        self.groups = Some(groups.with_cursors(self.cursors.clone()));
        self
    }

    /// The service issuing and accepting the cursors of `cursors` (a fleet shares one key).
    pub fn with_cursors(mut self, cursors: Cursors) -> Self {
        self.cursors = Arc::new(cursors);
        self.groups = self.groups.map(|g| g.with_cursors(self.cursors.clone()));
        self
    }

    /// Answers one request, routed as `operation` ([`Operation::route`]); `now` is the RFC 3339
    /// time used for `meta` timestamps.
    pub async fn handle(
        &self,
        req: &ScimRequest,
        operation: &Operation,
        now: &str,
    ) -> (ScimResponse, Option<Principal>) {
        let principal = match self.authenticate(req) {
            Ok(p) => p,
            Err(response) => return (response, None),
        };
        let response = match self.route(req, operation, &principal.tenant, now).await {
            Ok(r) => r,
            Err(e) => ScimResponse::error(&e),
        };
        (response, Some(principal))
    }

    /// The principal of a valid key. A failure is counted per client address; past the limit the
    /// answer is 429 instead of 401. A valid key is never refused.
    fn authenticate(&self, req: &ScimRequest) -> Result<Principal, ScimResponse> {
        let headers: Vec<&[u8]> = req.authorization.iter().map(Vec::as_slice).collect();
        match self.keyring.authenticate(&headers) {
            Ok(p) => {
                let unix = time::OffsetDateTime::now_utc().unix_timestamp();
                self.telemetry
                    .metrics
                    .key_used(&p.tenant.name, &p.key_id, unix);
                Ok(p)
            }
            Err(failure) => {
                self.telemetry.metrics.auth_failure(failure.label());
                let wait = req
                    .client
                    .and_then(|ip| self.telemetry.limiter.failed(ip, std::time::Instant::now()));
                Err(match wait {
                    Some(retry_after) => ScimResponse::throttled(retry_after),
                    None => ScimResponse::error(&ScimError::unauthorized(failure.detail())),
                })
            }
        }
    }

    async fn route(
        &self,
        req: &ScimRequest,
        operation: &Operation,
        tenant: &Tenant,
        now: &str,
    ) -> Result<ScimResponse, ScimError> {
        let base = &req.base_url;
        let groups = self.groups.is_some();
        match operation {
            Operation::ServiceProviderConfig => Ok(ScimResponse::json(
                200,
                &discovery::service_provider_config(
                    base,
                    self.max_results,
                    self.cursors.timeout_secs(),
                ),
            )),
            Operation::Schemas => {
                let all = discovery::schemas(base, &self.directory.restrictions(), groups);
                let n = all.len();
                Ok(ScimResponse::json(200, &list_response(all, n, 1)))
            }
            Operation::Schema(id) => {
                discovery::schema_by_id(base, id, &self.directory.restrictions(), groups)
                    .map(|s| ScimResponse::json(200, &s))
                    .ok_or_else(|| ScimError::not_found(format!("no schema {id:?}")))
            }
            Operation::ResourceTypes => {
                let all = discovery::resource_types(base, groups);
                let n = all.len();
                Ok(ScimResponse::json(200, &list_response(all, n, 1)))
            }
            Operation::ResourceType(id) => discovery::resource_type(base, id, groups)
                .map(|t| ScimResponse::json(200, &t))
                .ok_or_else(|| ScimError::not_found(format!("no resource type {id:?}"))),
            Operation::RootSearch => self.root_search(req, tenant).await,
            Operation::Search => self.post_search(req, tenant).await,
            Operation::List => self.list(req, tenant).await,
            Operation::Create => self.create(req, tenant, now).await,
            Operation::Get(id) => self.get(req, tenant, id).await,
            Operation::Replace(id) => self.replace(req, tenant, id, now).await,
            Operation::Patch(id) => self.patch(req, tenant, id, now).await,
            Operation::Delete(id) => self.delete(req, tenant, id).await,
            Operation::NotAllowed { allowed, .. } => Err(ScimError::method_not_allowed(
                format!("{} is not allowed here (allowed: {allowed})", req.method),
                allowed,
            )),
            Operation::Bulk => Err(ScimError::new(
                501,
                None,
                "Bulk operations are not supported (see /ServiceProviderConfig): send each operation on its own",
            )),
            Operation::Group(op) => match &self.groups {
                Some(service) => service.handle(req, op, tenant, now).await,
                None => Err(ScimError::not_found(
                    "Groups are not provisioned by this gateway: turn off 'Provision Azure Active Directory Groups'",
                )),
            },
            Operation::Unknown => Err(ScimError::not_found(format!(
                "no SCIM endpoint at {:?}",
                req.path
            ))),
        }
    }

    async fn list(&self, req: &ScimRequest, tenant: &Tenant) -> Result<ScimResponse, ScimError> {
        let params = SearchParams::from_query(&req.query, self.max_results)?;
        self.search(req, tenant, params).await
    }

    /// `POST /Users/.search` (RFC 7644 §3.4.3): the query in a JSON body.
    async fn post_search(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
    ) -> Result<ScimResponse, ScimError> {
        let params = SearchParams::from_body(&json_body(req)?, self.max_results)?;
        self.search(req, tenant, params).await
    }

    async fn search(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        s: SearchParams,
    ) -> Result<ScimResponse, ScimError> {
        let filter = parse_filter(ResourceKind::User, s.filter.as_deref())?;
        let projection = Projection::parse(s.attributes.as_deref(), s.excluded.as_deref())?;
        if let Paging::Cursor(cursor) = &s.paging {
            let request = CursorRequest::new(&self.cursors, tenant, ResourceKind::User, &s);
            let from = request.open(cursor)?;
            let walk = self
                .directory
                .walk(tenant, filter.as_ref(), from.as_ref(), s.count)
                .await?;
            let render = |u: &ScimUser| render(u, &req.base_url);
            return Ok(request.answer(walk, render, &projection));
        }
        let (start, count) = search_of(&s, self.max_results)?;
        let page = self
            .user_page(req, tenant, filter.as_ref(), &projection, start - 1, count)
            .await?;
        Ok(page.answer(start))
    }

    /// `POST /.search` (RFC 7644 §3.4.3): one list over Users, then Groups when they are served,
    /// paged by index only.
    /// `filter` applies to each resource type whose schemas know every attribute it names (the
    /// others have no match); every `attributes` path must name an attribute of some type.
    async fn root_search(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
    ) -> Result<ScimResponse, ScimError> {
        let params = SearchParams::from_body(&json_body(req)?, self.max_results)?;
        let Some(groups) = &self.groups else {
            return self.search(req, tenant, params).await;
        };
        let text = params.filter.as_deref();
        let (user_filter, group_filter) = match (
            parse_filter(ResourceKind::User, text),
            parse_filter(ResourceKind::Group, text),
        ) {
            (Err(e), Err(_)) => return Err(e),
            (users, groups) => (users.ok(), groups.ok()),
        };
        let [user_projection, group_projection] = Projection::parse_across(
            [ResourceKind::User, ResourceKind::Group],
            params.attributes.as_deref(),
            params.excluded.as_deref(),
        )?;
        let (start, count) = search_of(&params, self.max_results)?;
        let skip = start - 1;
        let mut page = match &user_filter {
            Some(f) => {
                self.user_page(req, tenant, f.as_ref(), &user_projection, skip, count)
                    .await?
            }
            None => Page {
                resources: Vec::new(),
                total: 0,
            },
        };
        if let Some(f) = &group_filter {
            let left = count - page.resources.len();
            let group_skip = skip.saturating_sub(page.total);
            let g = groups
                .page(req, tenant, f.as_ref(), &group_projection, group_skip, left)
                .await?;
            page.resources.extend(g.resources);
            page.total += g.total;
        }
        Ok(page.answer(start))
    }

    /// The users matching `filter`, skipping `skip` and returning at most `count`, rendered and
    /// projected.
    async fn user_page(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        filter: Option<&Filter>,
        projection: &Projection,
        skip: usize,
        count: usize,
    ) -> Result<Page, ScimError> {
        let found = self.directory.search(tenant, filter, skip, count).await?;
        let rendered = found.users.iter().map(|u| render(u, &req.base_url));
        Ok(Page::projected(rendered, found.total, projection))
    }

    async fn get(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        id: &str,
    ) -> Result<ScimResponse, ScimError> {
        let q = Query::parse(&req.query)?;
        let projection = Projection::parse(q.get("attributes")?, q.get("excludedAttributes")?)?;
        let user = self
            .directory
            .get(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(self.answer(200, &user, req, &projection))
    }

    async fn create(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        now: &str,
    ) -> Result<ScimResponse, ScimError> {
        let resource = user_body(req)?;
        let user_name = resource
            .get("userName")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_value("userName is required"))?
            .to_string();
        let _guard = self.directory.reserve_user_name(tenant, &user_name).await?;
        let user = self
            .directory
            .create(tenant, without_password(resource), now)
            .await?;
        let r = self.answer(201, &user, req, &Projection::everything(ResourceKind::User));
        let location = format!("{}/Users/{}", req.base_url, user.id);
        Ok(r.with_header("Location", location))
    }

    async fn replace(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        id: &str,
        now: &str,
    ) -> Result<ScimResponse, ScimError> {
        let resource = user_body(req)?;
        if resource.get("userName").and_then(Value::as_str).is_none() {
            return Err(ScimError::invalid_value("userName is required"));
        }
        let (_guard, current) = self.lock_and_read(tenant, id).await?;
        check_if_match(req, &current.user)?;
        let user = self
            .directory
            .write(
                tenant,
                current,
                without_password(resource),
                now,
                Replacement::Put,
            )
            .await?;
        Ok(self.answer(200, &user, req, &Projection::everything(ResourceKind::User)))
    }

    async fn patch(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        id: &str,
        now: &str,
    ) -> Result<ScimResponse, ScimError> {
        let ops = patch::parse_request(&json_body(req)?)?;
        let (_guard, current) = self.lock_and_read(tenant, id).await?;
        check_if_match(req, &current.user)?;
        let patched = without_password(patch::apply(&current.user.resource, &ops)?);
        let user = if patched == current.user.resource && current.managed {
            current.user
        } else {
            self.directory
                .write(tenant, current, patched, now, Replacement::Patch)
                .await?
        };
        Ok(self.answer(200, &user, req, &Projection::everything(ResourceKind::User)))
    }

    async fn delete(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        id: &str,
    ) -> Result<ScimResponse, ScimError> {
        let _guard = self.directory.lock(tenant, id).await?;
        self.check_version(req, tenant, id).await?;
        self.directory.delete(tenant, id).await?;
        Ok(ScimResponse::no_content())
    }

    /// The hold of the user `id` for a write, and the user as read under it; unknown is `404`.
    async fn lock_and_read(&self, tenant: &Tenant, id: &str) -> Result<(Held, Current), ScimError> {
        let (held, current) = self.directory.lock_and_read(tenant, id).await?;
        Ok((held, current.ok_or_else(|| not_found(id))?))
    }

    async fn check_version(
        &self,
        req: &ScimRequest,
        tenant: &Tenant,
        id: &str,
    ) -> Result<(), ScimError> {
        if req.if_match.is_none() {
            return Ok(());
        }
        let current = self
            .directory
            .get(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        check_if_match(req, &current)
    }

    fn answer(
        &self,
        status: u16,
        user: &ScimUser,
        req: &ScimRequest,
        projection: &Projection,
    ) -> ScimResponse {
        let rendered = render(user, &req.base_url);
        let etag = version(&rendered);
        ScimResponse::json(status, &projection.apply(rendered)).with_header("ETag", etag)
    }
}

/// `412` unless the request's `If-Match` (if any) accepts the user's current version.
fn check_if_match(req: &ScimRequest, current: &ScimUser) -> Result<(), ScimError> {
    match &req.if_match {
        Some(tag) if !if_match_accepts(tag, &version(&render(current, &req.base_url))) => Err(
            ScimError::precondition_failed("the user changed since it was read (If-Match)"),
        ),
        _ => Ok(()),
    }
}

/// The normalised User of a POST or PUT body, which must name the core schema in `schemas`.
fn user_body(req: &ScimRequest) -> Result<Value, ScimError> {
    let body = json_body(req)?;
    check_core_schema(&body)?;
    normalize_user(&body)
}

/// Drops `password`: the gateway never stores it and the User schema it serves has none.
fn without_password(mut resource: Value) -> Value {
    if let Some(o) = resource.as_object_mut() {
        o.remove("password");
    }
    resource
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no user with id {id:?}"))
}
