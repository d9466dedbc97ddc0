//! The guard's refusals: why it answers a request itself instead of forwarding it. The HTTP
//! status, the JSON body sent to the client and the label of the blocks metric all derive
//! from one [`Refusal`] value, here and nowhere else.

use serde_json::{json, Value};

/// Why the guard answers a request itself instead of forwarding it. Status, response body and
/// metric label all derive from this value ([`Refusal::status`], [`Refusal::body`],
/// [`Refusal::metric_label`]); the client's `message` is its `Display`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// A request the guard cannot read unambiguously (headers, target, channels or body).
    #[error("refused on a protected route: {0}")]
    Ambiguous(String),
    /// The caller of a protected route could not be identified.
    #[error("cannot identify the caller of a protected route: {0}")]
    Unauthenticated(String),
    /// The identity source could not be asked right now.
    #[error("cannot identify the caller right now: {0}")]
    IdentityUnavailable(String),
    /// The store could not say whether the caller's account is managed.
    #[error("{0}")]
    StoreUnavailable(String),
    /// A managed account changing itself on a guarded route: the rule's name and request id.
    #[error("This account is managed by your organization's identity provider (SCIM). Its email, password and team membership can only be changed there: ask your IT administrator, or a team admin to remove you from the team.")]
    Blocked {
        /// The name of the rule that matched.
        rule: String,
        /// The request id, echoed so the user can quote it.
        request_id: String,
    },
    /// The body of a guarded route exceeds `guard.max_body_bytes`.
    #[error("the body of a protected route is larger than guard.max_body_bytes")]
    TooLarge,
    /// The body's framing is malformed or the body was cut off.
    #[error("the request body's framing is malformed (or the body was cut off)")]
    MalformedBody,
    /// The body did not arrive within the configured body timeout.
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// Forwarding the checked request to the backend failed; `timed_out` when it did not answer
    /// in time.
    #[error("{detail}")]
    Backend {
        /// Whether the backend timed out (504) rather than failed (502).
        timed_out: bool,
        /// What went wrong.
        detail: String,
    },
    /// The guard itself failed (a panic while checking); the message is safe to show.
    #[error("{0}")]
    Internal(String),
}

impl Refusal {
    /// A request the guard cannot read unambiguously.
    pub(super) fn ambiguous(why: impl std::fmt::Display) -> Self {
        Refusal::Ambiguous(why.to_string())
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Ambiguous(_) | Refusal::MalformedBody => 400,
            Refusal::Unauthenticated(_) => 401,
            Refusal::Blocked { .. } => 403,
            Refusal::BodyTimeout(_) => 408,
            Refusal::TooLarge => 413,
            Refusal::Internal(_) => 500,
            Refusal::Backend {
                timed_out: false, ..
            } => 502,
            Refusal::IdentityUnavailable(_) | Refusal::StoreUnavailable(_) => 503,
            Refusal::Backend {
                timed_out: true, ..
            } => 504,
        }
    }

    /// The machine-readable `error` code of the body.
    fn code(&self) -> &'static str {
        match self {
            Refusal::Ambiguous(_) => "ambiguous_request",
            Refusal::Unauthenticated(_) => "unauthenticated",
            Refusal::IdentityUnavailable(_) | Refusal::StoreUnavailable(_) => "guard_unavailable",
            Refusal::Blocked { .. } => "managed_by_identity_provider",
            Refusal::TooLarge => "too_large",
            Refusal::MalformedBody => "malformed_body",
            Refusal::BodyTimeout(_) => "timeout",
            Refusal::Backend { .. } => "gateway",
            Refusal::Internal(_) => "internal",
        }
    }

    /// The JSON body sent to the client: `error` and `message`, and for a block the rule's
    /// name and the request id.
    pub fn body(&self) -> Value {
        let mut body = json!({"error": self.code(), "message": self.to_string()});
        if let Refusal::Blocked { rule, request_id } = self {
            body["rule"] = json!(rule);
            body["request_id"] = json!(request_id);
        }
        body
    }

    /// The `rule` label of `scimgate_guard_blocks_total`; `None` for a refusal that is not a
    /// block by a rule (those are not counted there).
    pub fn metric_label(&self) -> Option<&str> {
        match self {
            Refusal::Blocked { rule, .. } => Some(rule),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_body_explains() {
        let r = Refusal::Blocked {
            rule: "leave-team".into(),
            request_id: "abc".into(),
        };
        assert_eq!(r.status(), 403);
        assert_eq!(r.metric_label(), Some("leave-team"));
        assert_eq!(
            r.body().to_string(),
            json!({
                "error": "managed_by_identity_provider",
                "message": "This account is managed by your organization's identity provider (SCIM). Its email, password and team membership can only be changed there: ask your IT administrator, or a team admin to remove you from the team.",
                "rule": "leave-team",
                "request_id": "abc",
            })
            .to_string()
        );
    }

    #[test]
    fn every_refusal_derives_status_code_and_message() {
        let cases = [
            (
                Refusal::ambiguous("a dot segment"),
                400,
                "ambiguous_request",
                "refused on a protected route: a dot segment",
            ),
            (
                Refusal::Unauthenticated("no token".into()),
                401,
                "unauthenticated",
                "cannot identify the caller of a protected route: no token",
            ),
            (
                Refusal::IdentityUnavailable("down".into()),
                503,
                "guard_unavailable",
                "cannot identify the caller right now: down",
            ),
            (
                Refusal::StoreUnavailable("locked".into()),
                503,
                "guard_unavailable",
                "locked",
            ),
            (
                Refusal::TooLarge,
                413,
                "too_large",
                "the body of a protected route is larger than guard.max_body_bytes",
            ),
            (
                Refusal::MalformedBody,
                400,
                "malformed_body",
                "the request body's framing is malformed (or the body was cut off)",
            ),
            (
                Refusal::BodyTimeout(std::time::Duration::from_secs(2)),
                408,
                "timeout",
                "the request body did not arrive within 2s",
            ),
            (
                Refusal::Backend {
                    timed_out: false,
                    detail: "refused".into(),
                },
                502,
                "gateway",
                "refused",
            ),
            (
                Refusal::Backend {
                    timed_out: true,
                    detail: "slow".into(),
                },
                504,
                "gateway",
                "slow",
            ),
            (Refusal::Internal("bug".into()), 500, "internal", "bug"),
        ];
        for (refusal, status, code, message) in cases {
            assert_eq!(refusal.status(), status, "{refusal:?}");
            assert_eq!(refusal.body(), json!({"error": code, "message": message}));
            assert_eq!(refusal.metric_label(), None, "{refusal:?}");
        }
    }
}
