//! What the team-admin page and API answer.

use serde_json::{json, Value};

/// An answer: JSON from the API, HTML for the page.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Further headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl AdminResponse {
    pub(super) fn json(status: u16, body: &Value) -> Self {
        AdminResponse {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    pub(super) fn empty(status: u16) -> Self {
        AdminResponse {
            body: Vec::new(),
            ..AdminResponse::json(status, &Value::Null)
        }
    }

    /// A JSON error answer: `{"error": error, "detail": detail}`.
    pub fn error(status: u16, error: &str, detail: impl Into<String>) -> Self {
        AdminResponse::json(status, &json!({"error": error, "detail": detail.into()}))
    }
}
