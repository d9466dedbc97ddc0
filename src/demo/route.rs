//! Maps a request path to one of the demo backend's routes.
//!
//! Like many real frameworks, the legacy service is lenient about path spelling: each segment
//! is percent-decoded (so `%2F` stays inside its segment), empty segments (`//`, trailing `/`)
//! and `.` are ignored, `..` drops the previous segment, and ids may have leading zeros.
//! A gateway guarding these routes must canonicalise the same way.

use http::Method;
use percent_encoding::percent_decode_str;

/// A known route of the legacy API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/api/login`
    Login,
    /// `/api/me`
    Me,
    /// `/api/me/password`
    MyPassword,
    /// `/api/me/email`
    MyEmail,
    /// `/api/users/{id}`
    User(i64),
    /// `/api/teams/{team}/members`
    Members(String),
    /// `/api/teams/{team}/members/me`
    LeaveTeam(String),
    /// `/api/teams/{team}/members/{id}`
    Member(String, i64),
    /// `/api/teams/{team}/members/{id}/projects`
    MemberProjects(String, i64),
    /// `/api/teams/{team}/projects`
    Projects(String),
    /// `/api/teams/{team}/projects/{id}`
    Project(String, i64),
    /// `/api/teams/{team}/projects/{id}/members`
    ProjectMembers(String, i64),
    /// `/api/teams/{team}/projects/{id}/members/{member_id}`
    ProjectMember(String, i64, i64),
    /// `/api/projects/{id}/members/me`
    LeaveProject(i64),
}

impl Route {
    /// The route for a request path (without query), or `None` if there is none.
    pub fn parse(path: &str) -> Option<Route> {
        let segments = canonical_segments(path)?;
        let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
        match parts.as_slice() {
            ["api", "login"] => Some(Route::Login),
            ["api", "me"] => Some(Route::Me),
            ["api", "me", "password"] => Some(Route::MyPassword),
            ["api", "me", "email"] => Some(Route::MyEmail),
            ["api", "users", id] => parse_id(id).map(Route::User),
            ["api", "teams", team, "members"] => Some(Route::Members((*team).to_owned())),
            ["api", "teams", team, "members", "me"] => Some(Route::LeaveTeam((*team).to_owned())),
            ["api", "teams", team, "members", id] => {
                parse_id(id).map(|id| Route::Member((*team).to_owned(), id))
            }
            ["api", "teams", team, "members", id, "projects"] => {
                parse_id(id).map(|id| Route::MemberProjects((*team).to_owned(), id))
            }
            ["api", "teams", team, "projects", rest @ ..] => project_route(team, rest),
            ["api", "projects", id, "members", "me"] => parse_id(id).map(Route::LeaveProject),
            _ => None,
        }
    }

    /// The methods this route answers.
    pub fn methods(&self) -> &'static [Method] {
        match self {
            Route::Login => &[Method::POST],
            Route::Me => &[Method::GET],
            Route::MyPassword | Route::MyEmail => &[Method::PUT],
            Route::User(_) => &[Method::PATCH],
            Route::Members(_) => &[Method::GET, Method::POST],
            Route::LeaveTeam(_) => &[Method::DELETE],
            Route::Member(..) | Route::Project(..) => &[Method::GET, Method::PUT, Method::DELETE],
            Route::MemberProjects(..) | Route::ProjectMembers(..) => &[Method::GET],
            Route::Projects(_) => &[Method::GET, Method::POST],
            Route::ProjectMember(..) => &[Method::PUT, Method::DELETE],
            Route::LeaveProject(_) => &[Method::DELETE],
        }
    }

    /// The value of an `Allow` header for this route.
    pub fn allow_header(&self) -> String {
        self.methods()
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The routes under `/api/teams/{team}/projects`; `rest` is what follows `projects`.
fn project_route(team: &str, rest: &[&str]) -> Option<Route> {
    let team = team.to_owned();
    match rest {
        [] => Some(Route::Projects(team)),
        [id] => parse_id(id).map(|id| Route::Project(team, id)),
        [id, "members"] => parse_id(id).map(|id| Route::ProjectMembers(team, id)),
        [id, "members", member] => {
            let (id, member) = (parse_id(id)?, parse_id(member)?);
            Some(Route::ProjectMember(team, id, member))
        }
        _ => None,
    }
}

/// Decoded path segments after removing empty and dot segments; `None` if a segment does not
/// decode to UTF-8.
fn canonical_segments(path: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for raw in path.split('/') {
        let segment = percent_decode_str(raw).decode_utf8().ok()?;
        match segment.as_ref() {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(segment.into_owned()),
        }
    }
    Some(out)
}

/// A positive decimal id (leading zeros allowed).
fn parse_id(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_routes() {
        let cases = [
            ("/api/login", Some(Route::Login)),
            ("/api/me", Some(Route::Me)),
            ("/api/me/password", Some(Route::MyPassword)),
            ("/api/me/email", Some(Route::MyEmail)),
            ("/api/users/12", Some(Route::User(12))),
            (
                "/api/teams/acme/members",
                Some(Route::Members("acme".into())),
            ),
            (
                "/api/teams/acme/members/me",
                Some(Route::LeaveTeam("acme".into())),
            ),
            (
                "/api/teams/acme/members/3",
                Some(Route::Member("acme".into(), 3)),
            ),
            (
                "/api/teams/acme/members/3/projects",
                Some(Route::MemberProjects("acme".into(), 3)),
            ),
            (
                "/api/teams/acme/projects",
                Some(Route::Projects("acme".into())),
            ),
            (
                "/api/teams/acme/projects/4",
                Some(Route::Project("acme".into(), 4)),
            ),
            (
                "/api/teams/acme/projects/4/members",
                Some(Route::ProjectMembers("acme".into(), 4)),
            ),
            (
                "/api/teams/acme/projects/4/members/2",
                Some(Route::ProjectMember("acme".into(), 4, 2)),
            ),
            ("/api/projects/4/members/me", Some(Route::LeaveProject(4))),
        ];
        for (path, want) in cases {
            assert_eq!(Route::parse(path), want, "{path}");
        }
    }

    #[test]
    fn unknown_routes() {
        for path in [
            "/",
            "/api",
            "/api/users/abc",
            "/api/users/0",
            "/api/users/-1",
            "/api/users/99999999999999999999",
            "/api/teams/acme/members/x",
            "/api/teams/acme",
            "/api/teams/acme/projects/x",
            "/api/teams/acme/projects/1/members/me",
            "/api/teams/acme/projects/1/members/2/x",
            "/api/teams/acme/projects/1/owners",
            "/api/projects/1",
            "/api/projects/1/members/2",
            "/API/me",
            "/api/me/%FF",
        ] {
            assert_eq!(Route::parse(path), None, "{path}");
        }
    }

    #[test]
    fn lenient_spellings() {
        assert_eq!(Route::parse("//api/me/"), Some(Route::Me));
        assert_eq!(Route::parse("/api/./me/%65mail"), Some(Route::MyEmail));
        assert_eq!(Route::parse("/api/x/../me"), Some(Route::Me));
        assert_eq!(Route::parse("/api/users/007"), Some(Route::User(7)));
        assert_eq!(
            Route::parse("/api/teams/a%2Fb/members"),
            Some(Route::Members("a/b".into()))
        );
        assert_eq!(
            Route::parse("/api/projects/01/./members/x/../me/"),
            Some(Route::LeaveProject(1))
        );
    }

    #[test]
    fn methods_and_allow() {
        let r = Route::Member("t".into(), 1);
        assert!(r.methods().contains(&Method::PUT));
        assert!(!r.methods().contains(&Method::POST));
        assert_eq!(r.allow_header(), "GET, PUT, DELETE");
    }
}
