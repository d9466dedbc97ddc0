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

/// Query parameters of a SCIM request, decoded (`+` is a space).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: &str) -> Query {
        Query {
            pairs: form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    /// The value of a parameter (name compared case-insensitively); a repeated parameter is an error.
    pub fn get(&self, name: &str) -> Result<Option<&str>, ScimError> {
        let mut found = self
            .pairs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(ScimError::invalid_value(format!(
                "query parameter {name} given more than once"
            )));
        }
        Ok(first)
    }

    /// A non-negative integer parameter: `default` when absent or not an integer (`1.5`, `1e3`),
    /// `0` when negative, saturated when larger than the machine can count.
    pub fn number(&self, name: &str, default: usize) -> Result<usize, ScimError> {
        match self.get(name)? {
            None | Some("") => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n < 0 => Ok(0),
                Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                Err(_) if v.trim().bytes().all(|b| b.is_ascii_digit()) => Ok(usize::MAX),
                Err(_) if v.trim().parse::<f64>().is_ok() => Ok(default),
                Err(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an integer, got {v:?}"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decodes_plus_and_percent() {
        let q = Query::parse("filter=userName+eq+%22a%40b.c%22&Count=5");
        assert_eq!(q.get("filter").unwrap(), Some("userName eq \"a@b.c\""));
        assert_eq!(q.number("count", 100).unwrap(), 5);
        assert_eq!(q.number("startIndex", 1).unwrap(), 1);
    }

    #[test]
    fn query_rejects_repeats_and_garbage_numbers() {
        assert!(Query::parse("count=1&count=2").get("count").is_err());
        assert!(Query::parse("count=abc").number("count", 1).is_err());
        assert_eq!(Query::parse("count=-4").number("count", 1).unwrap(), 0);
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
