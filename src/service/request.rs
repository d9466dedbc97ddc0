//! What a SCIM request carries besides its path: the search parameters of a list or
//! `.search`, and the JSON body of a write, shared by the User and Group handlers.

use crate::scim::error::{ScimError, ScimType};
use crate::scim::filter::{self, Filter};
use crate::scim::json;
use crate::scim::message::{empty_filter, list_response, Query, ScimRequest, ScimResponse};
use crate::scim::projection::Projection;
use crate::scim::schema::ResourceKind;
use serde_json::Value;

/// How a list is paged: by index (RFC 7644, the default) or by cursor (RFC 9865).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// `startIndex` (1-based).
    Index(usize),
    /// `cursor`: empty for the first page, else a `nextCursor` as returned.
    Cursor(String),
}

/// A list or search query, from query parameters or a SearchRequest body.
pub struct SearchParams {
    /// `filter`.
    pub filter: Option<String>,
    /// `startIndex` or `cursor`.
    pub paging: Paging,
    /// `count`, at least 1 for a cursor request.
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
        let paging = match (q.get("cursor")?, q.get("startIndex")?) {
            (Some(_), Some(_)) => return Err(both_pagings()),
            (Some(cursor), None) => Paging::Cursor(cursor.to_string()),
            (None, _) => Paging::Index(q.number("startIndex", 1)?),
        };
        let count = match paging {
            Paging::Cursor(_) => cursor_count(q.get("count")?.map(str::trim), max_results)?,
            Paging::Index(_) => q.number("count", max_results)?,
        };
        Ok(SearchParams {
            filter: q.filter()?.map(str::to_string),
            paging,
            count,
            attributes: q.get("attributes")?.map(str::to_string),
            excluded: q.get("excludedAttributes")?.map(str::to_string),
        })
    }

    /// The query of a `POST .search` body.
    pub fn from_body(body: &Value, max_results: usize) -> Result<SearchParams, ScimError> {
        if body.get("sortBy").is_some_and(|v| !v.is_null()) {
            return Err(sorting_unsupported());
        }
        let present = |key: &str| body.get(key).filter(|v| !v.is_null());
        let paging = match (present("cursor"), present("startIndex")) {
            (Some(_), Some(_)) => return Err(both_pagings()),
            (Some(Value::String(cursor)), None) => Paging::Cursor(cursor.clone()),
            (Some(_), None) => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidCursor,
                    "cursor must be a string",
                ))
            }
            (None, _) => Paging::Index(body_number(body, "startIndex", 1)?),
        };
        let count = match paging {
            Paging::Cursor(_) => {
                let raw = present("count").map(|v| v.to_string());
                cursor_count(raw.as_deref(), max_results)?
            }
            Paging::Index(_) => body_number(body, "count", max_results)?,
        };
        Ok(SearchParams {
            filter: body_text(body, "filter")?,
            paging,
            count,
            attributes: body_text(body, "attributes")?,
            excluded: body_text(body, "excludedAttributes")?,
        })
    }
}

/// The 1-based start and the page size an index-paged search asks for, within `max_results`;
/// a cursor request here (a list that pages by index only) is `400 invalidValue`.
pub fn search_of(params: &SearchParams, max_results: usize) -> Result<(usize, usize), ScimError> {
    match params.paging {
        Paging::Index(start) => Ok((start.max(1), params.count.min(max_results))),
        Paging::Cursor(_) => Err(ScimError::invalid_value(
            "cursor paging is served on /Users and /Groups (and their /.search), not here: page by startIndex",
        )),
    }
}

/// The `count` of a cursor request (RFC 9865): a positive integer, clamped to `max_results`
/// like an index request's; absent is `max_results`; anything else is `400 invalidCount`.
fn cursor_count(raw: Option<&str>, max_results: usize) -> Result<usize, ScimError> {
    let Some(text) = raw else {
        return Ok(max_results);
    };
    let positive = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u64>() {
        Ok(n) if positive && n >= 1 => {
            Ok(usize::try_from(n).unwrap_or(usize::MAX).min(max_results))
        }
        Err(_) if positive => Ok(max_results),
        _ => Err(ScimError::bad_request(
            ScimType::InvalidCount,
            format!(
                "count must be a positive integer (at most {max_results} are returned), got {text}"
            ),
        )),
    }
}

fn both_pagings() -> ScimError {
    ScimError::invalid_value(
        "a request pages by startIndex or by cursor, not both: leave one of them out",
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(raw: &str) -> Result<SearchParams, ScimError> {
        SearchParams::from_query(raw, 100)
    }

    fn scim_type(r: Result<SearchParams, ScimError>) -> Option<ScimType> {
        r.err().and_then(|e| e.scim_type)
    }

    #[test]
    fn an_empty_or_bare_cursor_asks_for_the_first_page() {
        for raw in ["cursor", "cursor=", "cursor=&count=10"] {
            assert_eq!(
                query(raw).unwrap().paging,
                Paging::Cursor(String::new()),
                "{raw}"
            );
        }
        assert_eq!(query("").unwrap().paging, Paging::Index(1));
        let body = SearchParams::from_body(&json!({"cursor": "", "count": 5}), 100).unwrap();
        assert_eq!(
            (body.paging, body.count),
            (Paging::Cursor(String::new()), 5)
        );
    }

    #[test]
    fn a_cursor_count_is_a_positive_integer_clamped_to_the_maximum() {
        assert_eq!(query("cursor&count=7").unwrap().count, 7);
        assert_eq!(query("cursor&count=500").unwrap().count, 100);
        assert_eq!(
            query("cursor&count=99999999999999999999999").unwrap().count,
            100
        );
        assert_eq!(query("cursor").unwrap().count, 100);
        for raw in [
            "cursor&count=0",
            "cursor&count=-1",
            "cursor&count=abc",
            "cursor&count=1.5",
            "cursor&count=",
        ] {
            assert_eq!(scim_type(query(raw)), Some(ScimType::InvalidCount), "{raw}");
        }
        for body in [
            json!({"cursor": "", "count": 0}),
            json!({"cursor": "", "count": "5"}),
        ] {
            let r = SearchParams::from_body(&body, 100);
            assert_eq!(scim_type(r), Some(ScimType::InvalidCount), "{body}");
        }
        assert_eq!(
            query("count=0").unwrap().count,
            0,
            "index paging keeps RFC 7644's count=0"
        );
    }

    #[test]
    fn cursor_and_start_index_together_are_refused() {
        assert_eq!(
            scim_type(query("cursor=&startIndex=1")),
            Some(ScimType::InvalidValue)
        );
        let r = SearchParams::from_body(&json!({"cursor": "", "startIndex": 1}), 100);
        assert_eq!(scim_type(r), Some(ScimType::InvalidValue));
        let r = SearchParams::from_body(&json!({"cursor": 5}), 100);
        assert_eq!(scim_type(r), Some(ScimType::InvalidCursor));
    }
}
