//! SCIM requests and responses as plain data: what the pingora glue hands the SCIM server and
//! what it writes back. No pingora types here.

use super::error::ScimError;
use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

/// Content type of every SCIM response.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";
/// URN of the ListResponse message.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A request under the SCIM base path.
#[derive(Debug, Clone)]
pub struct ScimRequest {
    /// HTTP method.
    pub method: Method,
    /// The path after the base path, e.g. `/Users/7` (may be empty).
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    /// The values of every `Authorization` header.
    pub authorization: Vec<Vec<u8>>,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// `If-Match`, if sent.
    pub if_match: Option<String>,
    /// The client's address (for the authentication-failure limiter).
    pub client: Option<std::net::IpAddr>,
    /// Absolute URL of the SCIM base (`https://gw.example.com/scim/v2`), for `meta.location`.
    pub base_url: String,
    /// The whole body.
    pub body: Bytes,
}

/// A response to write back.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimResponse {
    /// HTTP status.
    pub status: u16,
    /// Extra headers (Content-Type and Content-Length are added by the writer).
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for 204).
    pub body: Bytes,
}

impl ScimResponse {
    /// A JSON body with the given status.
    pub fn json(status: u16, body: &Value) -> Self {
        ScimResponse {
            status,
            headers: Vec::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    /// `204 No Content`.
    pub fn no_content() -> Self {
        ScimResponse {
            status: 204,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The RFC 7644 error response for `e` (401 also carries `WWW-Authenticate`, 405 `Allow`,
    /// a throttling answer `Retry-After`).
    pub fn error(e: &ScimError) -> Self {
        let mut r = ScimResponse::json(e.status, &e.to_json());
        if let Some(secs) = e.retry_after {
            r = r.with_header("Retry-After", secs.to_string());
        }
        match (e.status, e.allow) {
            (401, _) => r.with_header("WWW-Authenticate", "Bearer realm=\"scimgate\"".into()),
            (405, Some(allow)) => r.with_header("Allow", allow.into()),
            _ => r,
        }
    }

    /// `429 Too Many Requests` after too many failed authentications, with `Retry-After`.
    pub fn throttled(retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_secs().max(1);
        ScimResponse::error(&ScimError::throttled(
            format!("too many failed authentications from this address; retry in {secs} s"),
            secs,
        ))
    }
}

/// A ListResponse message.
pub fn list_response(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    })
}

/// A `ListResponse` of a cursor-paged list (RFC 9865): no `startIndex`, `totalResults` when
/// known, `nextCursor` unless this is the last page.
pub fn cursor_list_response(
    resources: Vec<Value>,
    total: Option<usize>,
    next: Option<String>,
) -> Value {
    let mut body = json!({
        "schemas": [LIST_RESPONSE],
        "itemsPerPage": resources.len(),
    });
    if let Some(map) = body.as_object_mut() {
        if let Some(t) = total {
            map.insert("totalResults".into(), json!(t));
        }
        if let Some(n) = next {
            map.insert("nextCursor".into(), Value::String(n));
        }
        map.insert("Resources".into(), Value::Array(resources));
    }
    body
}

/// Query parameters of a SCIM request, decoded (`+` is a space).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string. A name or value whose percent-decoding is not UTF-8 is
    /// `400` (`invalidFilter` for `filter`, `invalidValue` otherwise): decoding it lossily would
    /// answer for a different filter than the one sent.
    pub fn parse(raw: &str) -> Result<Query, ScimError> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name).ok_or_else(|| {
                ScimError::invalid_value("a query parameter name is not UTF-8 once decoded")
            })?;
            let value = decode(value).ok_or_else(|| {
                parameter_error(&name, format!("{name} is not UTF-8 once decoded"))
            })?;
            pairs.push((name, value));
        }
        Ok(Query { pairs })
    }

    /// The value of a parameter (name compared case-insensitively); a repeated parameter is an error.
    pub fn get(&self, name: &str) -> Result<Option<&str>, ScimError> {
        let mut found = self
            .pairs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(parameter_error(
                name,
                format!("query parameter {name} given more than once"),
            ));
        }
        Ok(first)
    }

    /// The `filter` parameter: absent is `None`, present but blank is `400 invalidFilter`.
    pub fn filter(&self) -> Result<Option<&str>, ScimError> {
        match self.get("filter")? {
            Some(text) if text.trim().is_empty() => Err(empty_filter()),
            other => Ok(other),
        }
    }

    /// A non-negative integer parameter (surrounding spaces allowed): `default` when absent,
    /// `0` when negative, saturated when larger than the machine can count, and `400
    /// invalidValue` for anything that is not an integer (`""`, `1.5`, `1e3`, `abc`).
    pub fn number(&self, name: &str, default: usize) -> Result<usize, ScimError> {
        let Some(v) = self.get(name)? else {
            return Ok(default);
        };
        let t = v.trim();
        let digits = t.strip_prefix('-').unwrap_or(t);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ScimError::invalid_value(format!(
                "{name} must be an integer, got {v:?}"
            )));
        }
        Ok(match t.parse::<i64>() {
            Ok(n) if n < 0 => 0,
            Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Err(_) if t.starts_with('-') => 0,
            Err(_) => usize::MAX,
        })
    }
}

/// `400 invalidFilter` for a filter that is present but blank.
pub fn empty_filter() -> ScimError {
    ScimError::invalid_filter("the filter is empty: leave it out to list every user")
}

/// A `400` about query parameter `name`: `invalidFilter` for the filter, `invalidValue` otherwise.
fn parameter_error(name: &str, detail: String) -> ScimError {
    if name.eq_ignore_ascii_case("filter") {
        ScimError::invalid_filter(detail)
    } else {
        ScimError::invalid_value(detail)
    }
}

/// Decodes one `application/x-www-form-urlencoded` component; `None` when the bytes are not UTF-8.
fn decode(component: &str) -> Option<String> {
    let spaced = component.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> Query {
        Query::parse(raw).unwrap()
    }

    fn scim_type(e: ScimError) -> &'static str {
        e.scim_type.map_or("", |t| t.as_str())
    }

    #[test]
    fn query_decodes_plus_and_percent() {
        let q = query("filter=userName+eq+%22a%40b.c%22&Count=5");
        assert_eq!(q.get("filter").unwrap(), Some("userName eq \"a@b.c\""));
        assert_eq!(q.number("count", 100).unwrap(), 5);
        assert_eq!(q.number("startIndex", 1).unwrap(), 1);
        assert_eq!(query("count=%205%20").number("count", 1).unwrap(), 5);
    }

    #[test]
    fn query_rejects_repeats_and_garbage_numbers() {
        assert!(query("count=1&count=2").get("count").is_err());
        assert_eq!(query("count=-4").number("count", 1).unwrap(), 0);
        assert_eq!(
            query("count=-99999999999999999999")
                .number("count", 1)
                .unwrap(),
            0
        );
        assert_eq!(
            query("count=99999999999999999999")
                .number("count", 1)
                .unwrap(),
            usize::MAX
        );
        for raw in [
            "count=abc",
            "count=",
            "count=1.5",
            "count=1e3",
            "count=--1",
            "count=-",
            "count=%00",
        ] {
            let e = query(raw).number("count", 1).unwrap_err();
            assert_eq!(scim_type(e), "invalidValue", "{raw}");
        }
    }

    #[test]
    fn filter_must_be_single_and_not_blank() {
        for raw in ["filter=", "filter=+", "filter=%20%09"] {
            assert_eq!(
                scim_type(query(raw).filter().unwrap_err()),
                "invalidFilter",
                "{raw}"
            );
        }
        let repeated = query("filter=a+pr&FILTER=b+pr").filter().unwrap_err();
        assert_eq!(scim_type(repeated), "invalidFilter");
        assert_eq!(query("count=1").filter().unwrap(), None);
    }

    #[test]
    fn non_utf8_decoding_is_refused() {
        let e = Query::parse("filter=userName+eq+%22%FF%22").unwrap_err();
        assert_eq!(scim_type(e), "invalidFilter");
        let e = Query::parse("attributes=%C0%AF").unwrap_err();
        assert_eq!(scim_type(e), "invalidValue");
        let e = Query::parse("%FF=1").unwrap_err();
        assert_eq!(scim_type(e), "invalidValue");
        assert_eq!(query("x=%E2%82%AC").get("x").unwrap(), Some("\u{20ac}"));
    }

    #[test]
    fn unauthorized_carries_www_authenticate() {
        let r = ScimResponse::error(&ScimError::unauthorized("x"));
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| *k == "WWW-Authenticate" && v.starts_with("Bearer")));
    }

    #[test]
    fn throttled_errors_carry_retry_after() {
        let r = ScimResponse::error(&ScimError::throttled("slow down", 0));
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("Retry-After", "1".to_string())));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["status"], "429");
    }
}
