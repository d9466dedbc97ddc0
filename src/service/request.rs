//! What a SCIM request carries besides its path: the search parameters of a list or
//! `.search`, and the JSON body of a write, shared by the User and Group handlers.

use crate::scim::error::ScimError;
use crate::scim::filter::{self, Filter};
use crate::scim::json;
use crate::scim::message::{empty_filter, list_response, Query, ScimRequest, ScimResponse};
use crate::scim::projection::Projection;
use crate::scim::schema::ResourceKind;
use serde_json::Value;

/// A list or search query, from query parameters or a SearchRequest body.
pub struct SearchParams {
    /// `filter`.
    pub filter: Option<String>,
    /// `startIndex` (1-based).
    pub start: usize,
    /// `count`.
    pub count: usize,
    /// `attributes`.
    pub attributes: Option<String>,
    /// `excludedAttributes`.
    pub excluded: Option<String>,
}

impl SearchParams {
    /// The query of a `GET` list; `count` defaults to `max_results`.
    pub fn from_query(raw: &str, max_results: usize) -> Result<SearchParams, ScimError> {
        let q = Query::parse(raw)?;
        if q.get("sortBy")?.is_some() {
            return Err(sorting_unsupported());
        }
        Ok(SearchParams {
            filter: q.filter()?.map(str::to_string),
            start: q.number("startIndex", 1)?,
            count: q.number("count", max_results)?,
            attributes: q.get("attributes")?.map(str::to_string),
            excluded: q.get("excludedAttributes")?.map(str::to_string),
        })
    }

    /// The query of a `POST .search` body.
    pub fn from_body(body: &Value, max_results: usize) -> Result<SearchParams, ScimError> {
        if body.get("sortBy").is_some_and(|v| !v.is_null()) {
            return Err(sorting_unsupported());
        }
        Ok(SearchParams {
            filter: body_text(body, "filter")?,
            start: body_number(body, "startIndex", 1)?,
            count: body_number(body, "count", max_results)?,
            attributes: body_text(body, "attributes")?,
            excluded: body_text(body, "excludedAttributes")?,
        })
    }
}

/// The 1-based start and the page size a search asks for, within `max_results`.
pub fn search_of(params: &SearchParams, max_results: usize) -> (usize, usize) {
    (params.start.max(1), params.count.min(max_results))
}

/// A search's `filter`, parsed against the schemas of `kind`; an empty one is an error.
pub fn parse_filter(kind: ResourceKind, text: Option<&str>) -> Result<Option<Filter>, ScimError> {
    match text {
        Some(t) if t.trim().is_empty() => Err(empty_filter()),
        Some(t) => filter::parse_for(kind, t).map(Some),
        None => Ok(None),
    }
}

/// One page of a search: the rendered, projected resources and the number of all matches.
pub struct Page {
    /// The page's resources.
    pub resources: Vec<Value>,
    /// All matches.
    pub total: usize,
}

impl Page {
    /// A page of `rendered` resources trimmed to what `projection` returns, of `total` matches.
    pub fn projected(
        rendered: impl Iterator<Item = Value>,
        total: usize,
        projection: &Projection,
    ) -> Page {
        Page {
            resources: rendered.map(|r| projection.apply(r)).collect(),
            total,
        }
    }

    /// The `ListResponse` answer, for a page starting at the 1-based `start`.
    pub fn answer(self, start: usize) -> ScimResponse {
        ScimResponse::json(200, &list_response(self.resources, self.total, start))
    }
}

fn sorting_unsupported() -> ScimError {
    ScimError::invalid_value("sorting is not supported (see /ServiceProviderConfig)")
}

/// A string (or list of strings, comma-joined) member of a SearchRequest.
fn body_text(body: &Value, key: &str) -> Result<Option<String>, ScimError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(|v| Some(v.join(",")))
            .ok_or_else(|| ScimError::invalid_value(format!("{key} must be a list of strings"))),
        Some(_) => Err(ScimError::invalid_value(format!(
            "{key} has the wrong type"
        ))),
    }
}

/// An integer member of a SearchRequest.
fn body_number(body: &Value, key: &str, default: usize) -> Result<usize, ScimError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .map(|n| usize::try_from(n.max(0)).unwrap_or(0))
            .ok_or_else(|| ScimError::invalid_value(format!("{key} must be an integer"))),
    }
}

/// The parsed JSON body of a write, checking its content type.
pub fn json_body(req: &ScimRequest) -> Result<Value, ScimError> {
    if let Some(ct) = &req.content_type {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !(mime == "application/json" || mime == "application/scim+json" || mime.is_empty()) {
            return Err(ScimError::new(
                415,
                None,
                format!("unsupported Content-Type {ct:?}: send application/scim+json"),
            ));
        }
    }
    if req.body.is_empty() {
        return Err(ScimError::invalid_syntax("the request body is empty"));
    }
    json::parse_strict(&req.body)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))
}
