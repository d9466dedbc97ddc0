//! Cursor paging of `/Users` and `/Groups` (RFC 9865): binds a request's cursor to its tenant
//! and query, opens it, and answers a walk's page with the `nextCursor` that continues it.

use super::request::SearchParams;
use super::walk::Walk;
use crate::auth::Tenant;
use crate::scim::cursor::{Binding, Cursors, Position};
use crate::scim::error::ScimError;
use crate::scim::message::{cursor_list_response, ScimResponse};
use crate::scim::projection::Projection;
use crate::scim::schema::ResourceKind;
use serde_json::Value;

/// One cursor request: its binding and the time it is served at.
pub struct CursorRequest<'a> {
    cursors: &'a Cursors,
    binding: Binding,
    now: i64,
}

impl<'a> CursorRequest<'a> {
    /// A cursor request of `tenant` for resources of `kind` with the query `params`.
    pub fn new(
        cursors: &'a Cursors,
        tenant: &Tenant,
        kind: ResourceKind,
        params: &SearchParams,
    ) -> Self {
        let kind = match kind {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        };
        let binding = Binding::new(&[
            Some(&tenant.name),
            Some(kind),
            params.filter.as_deref(),
            params.attributes.as_deref(),
            params.excluded.as_deref(),
        ]);
        CursorRequest {
            cursors,
            binding,
            now: time::OffsetDateTime::now_utc().unix_timestamp(),
        }
    }

    /// Where the walk resumes: `None` for an empty cursor (the first page).
    pub fn open(&self, cursor: &str) -> Result<Option<Position>, ScimError> {
        if cursor.is_empty() {
            return Ok(None);
        }
        self.cursors.open(&self.binding, cursor, self.now).map(Some)
    }

    /// The `ListResponse` of a walk's page: each item rendered, then trimmed to what
    /// `projection` returns.
    pub fn answer<T>(
        &self,
        walk: Walk<T>,
        render: impl Fn(&T) -> Value,
        projection: &Projection,
    ) -> ScimResponse {
        let resources = walk
            .items
            .iter()
            .map(|item| projection.apply(render(item)))
            .collect();
        let next = walk
            .next
            .map(|p| self.cursors.issue(&self.binding, p, self.now));
        ScimResponse::json(200, &cursor_list_response(resources, walk.total, next))
    }
}
