//! The team-admin API's routes, under the configured path: what a request asks for, by method and
//! the path after the prefix. Team names and key ids are single path segments.

use http::Method;
use percent_encoding::percent_decode_str;

/// What a request to the team-admin API asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOperation {
    /// `GET /api/me`: the caller's team and whether they administer it.
    Me,
    /// `GET /api/teams/{team}`: whether SCIM is on, the Tenant URL and the keys.
    State(String),
    /// `POST /api/teams/{team}/enable`.
    Enable(String),
    /// `POST /api/teams/{team}/disable`: every key revoked.
    Disable(String),
    /// `POST /api/teams/{team}/keys`: a new key, shown once.
    CreateKey(String),
    /// `DELETE /api/teams/{team}/keys/{id}`.
    RevokeKey(String, String),
    /// A path of the API with a method it does not take.
    NotAllowed(&'static str),
    /// No such route.
    Unknown,
}

impl AdminOperation {
    /// Routes `method` on `path`, the part after `/api`.
    pub fn route(method: &Method, path: &str) -> AdminOperation {
        let decoded: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
        let only = |wanted: Method, op: AdminOperation, allow: &'static str| {
            if *method == wanted {
                op
            } else {
                AdminOperation::NotAllowed(allow)
            }
        };
        match segments.as_slice() {
            ["me"] => only(Method::GET, AdminOperation::Me, "GET"),
            ["teams", team] => only(Method::GET, AdminOperation::State(team.to_string()), "GET"),
            ["teams", team, "enable"] => only(
                Method::POST,
                AdminOperation::Enable(team.to_string()),
                "POST",
            ),
            ["teams", team, "disable"] => only(
                Method::POST,
                AdminOperation::Disable(team.to_string()),
                "POST",
            ),
            ["teams", team, "keys"] => only(
                Method::POST,
                AdminOperation::CreateKey(team.to_string()),
                "POST",
            ),
            ["teams", team, "keys", id] => only(
                Method::DELETE,
                AdminOperation::RevokeKey(team.to_string(), id.to_string()),
                "DELETE",
            ),
            _ => AdminOperation::Unknown,
        }
    }

    /// Whether the operation changes anything (and so must come from the page's own origin).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            AdminOperation::Enable(_)
                | AdminOperation::Disable(_)
                | AdminOperation::CreateKey(_)
                | AdminOperation::RevokeKey(..)
        )
    }

    /// The team the operation acts on.
    pub fn team(&self) -> Option<&str> {
        match self {
            AdminOperation::State(t)
            | AdminOperation::Enable(t)
            | AdminOperation::Disable(t)
            | AdminOperation::CreateKey(t)
            | AdminOperation::RevokeKey(t, _) => Some(t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_method_and_path() {
        let r = AdminOperation::route;
        assert_eq!(r(&Method::GET, "/me"), AdminOperation::Me);
        assert_eq!(
            r(&Method::GET, "/teams/acme"),
            AdminOperation::State("acme".into())
        );
        assert_eq!(
            r(&Method::POST, "/teams/acme/enable"),
            AdminOperation::Enable("acme".into())
        );
        assert_eq!(
            r(&Method::DELETE, "/teams/acme/keys/ab12"),
            AdminOperation::RevokeKey("acme".into(), "ab12".into())
        );
        assert_eq!(
            r(&Method::GET, "/teams/acme/enable"),
            AdminOperation::NotAllowed("POST")
        );
        assert_eq!(r(&Method::GET, "/teams"), AdminOperation::Unknown);
        assert_eq!(
            r(&Method::GET, "/teams/big%20co"),
            AdminOperation::State("big co".into())
        );
        assert!(r(&Method::POST, "/teams/acme/keys").writes());
        assert!(!r(&Method::GET, "/teams/acme").writes());
        assert_eq!(r(&Method::POST, "/teams/acme/disable").team(), Some("acme"));
    }
}
