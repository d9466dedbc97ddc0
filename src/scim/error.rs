//! SCIM protocol errors (RFC 7644 §3.12): one type that knows its HTTP status and `scimType`,
//! rendered as an error body in exactly one place ([`ScimError::to_json`]).

use serde_json::{json, Value};
use std::fmt;

/// URN of the RFC 7644 error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` detail codes of RFC 7644 §3.12, table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// The filter is malformed or not supported.
    InvalidFilter,
    /// The filter matches more results than the server will return.
    TooMany,
    /// A unique attribute's value is already taken.
    Uniqueness,
    /// The write would change a read-only or immutable attribute.
    Mutability,
    /// The request body is malformed.
    InvalidSyntax,
    /// A PATCH path is malformed.
    InvalidPath,
    /// A PATCH path matches nothing.
    NoTarget,
    /// A value is missing, of the wrong type or not allowed.
    InvalidValue,
    /// The protocol version is not supported.
    InvalidVers,
    /// The request holds sensitive data in its URL.
    Sensitive,
    /// The `cursor` is not one this service issued for the query (RFC 9865).
    InvalidCursor,
    /// The `cursor` is older than `cursorTimeout` (RFC 9865).
    ExpiredCursor,
    /// The `count` of a cursor request is not a positive integer (RFC 9865).
    InvalidCount,
}

impl ScimType {
    /// Every code.
    pub const ALL: [ScimType; 13] = [
        ScimType::InvalidFilter,
        ScimType::TooMany,
        ScimType::Uniqueness,
        ScimType::Mutability,
        ScimType::InvalidSyntax,
        ScimType::InvalidPath,
        ScimType::NoTarget,
        ScimType::InvalidValue,
        ScimType::InvalidVers,
        ScimType::Sensitive,
        ScimType::InvalidCursor,
        ScimType::ExpiredCursor,
        ScimType::InvalidCount,
    ];

    /// The code with this wire spelling.
    pub fn parse(text: &str) -> Option<ScimType> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// The wire spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
            ScimType::InvalidCount => "invalidCount",
        }
    }
}

/// A failed SCIM request: HTTP status, optional `scimType` and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    /// HTTP status code.
    pub status: u16,
    /// RFC 7644 detail code, when one applies.
    pub scim_type: Option<ScimType>,
    /// What went wrong, written for the administrator reading the provisioning log.
    pub detail: String,
    /// For `405`: the methods the endpoint allows (the `Allow` header).
    pub allow: Option<&'static str>,
    /// For `429` and `503`: seconds the client should wait before retrying (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ScimError {
    /// An error with an explicit status and code.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
            allow: None,
            retry_after: None,
        }
    }

    /// `429 Too Many Requests` with `Retry-After` (at least one second).
    pub fn throttled(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(429, None, detail).with_retry_after(retry_after_secs)
    }

    /// The same error, asking the client to retry after `secs` seconds (at least one).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// The same error (status, code, headers) with another detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// `400` with the given `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    /// `400 invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    /// `400 invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    /// `400 invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    /// `400 invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    /// `400 noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    /// `400 mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }

    /// `409 uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// `404` for an unknown resource or endpoint.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// `401` for a missing or wrong bearer key.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }

    /// `405` for a method the endpoint does not support; `allow` lists the ones it does.
    pub fn method_not_allowed(detail: impl Into<String>, allow: &'static str) -> Self {
        ScimError {
            allow: Some(allow),
            ..Self::new(405, None, detail)
        }
    }

    /// `413` for a request body over the configured cap.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }

    /// `412` when `If-Match` does not match the current version.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }

    /// `500` for a fault of the gateway itself.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, None, detail)
    }

    /// `502` when the backend is unreachable or answers something unusable.
    pub fn bad_gateway(detail: impl Into<String>) -> Self {
        Self::new(502, None, detail)
    }

    /// `503` when the gateway cannot serve right now (store unavailable, overload).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, None, detail)
    }

    /// `504` when the backend did not answer in time.
    pub fn gateway_timeout(detail: impl Into<String>) -> Self {
        Self::new(504, None, detail)
    }

    /// The RFC 7644 error body (`status` is a string, as Entra expects).
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(map)) = (self.scim_type, body.as_object_mut()) {
            map.insert("scimType".into(), Value::String(t.as_str().into()));
        }
        body
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type {
            Some(t) => write!(f, "{} {}: {}", self.status, t.as_str(), self.detail),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl std::error::Error for ScimError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_string_status_and_scim_type() {
        let body = ScimError::uniqueness("userName taken").to_json();
        assert_eq!(body["schemas"][0], ERROR_SCHEMA);
        assert_eq!(body["status"], "409");
        assert_eq!(body["scimType"], "uniqueness");
        assert_eq!(body["detail"], "userName taken");
    }

    #[test]
    fn body_omits_scim_type_when_none() {
        let body = ScimError::not_found("no such user").to_json();
        assert!(body.get("scimType").is_none());
        assert_eq!(body["status"], "404");
    }
}
