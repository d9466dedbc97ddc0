//! Route templates such as `/api/teams/{team}/members/{member}`: parsing, matching canonical segments, and deciding whether a request could reach a guarded route at all.

use std::fmt;

use super::canon;

/// Why a route template was refused (the message names the template as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The template does not start with `/`.
    #[error("route template {0:?} must start with '/'")]
    NoLeadingSlash(String),
    /// `//` or a trailing `/`.
    #[error("route template {0:?} has an empty segment (repeated or trailing '/')")]
    EmptySegment(String),
    /// `{name` without its `}`.
    #[error("route template {template:?}: unclosed capture {segment:?}")]
    UnclosedCapture {
        /// The template as written.
        template: String,
        /// The segment holding the capture.
        segment: String,
    },
    /// A capture name that is not letters, digits and `_`.
    #[error("route template {template:?}: capture name {name:?} must be letters, digits and '_' (not starting with a digit)")]
    CaptureName {
        /// The template as written.
        template: String,
        /// The capture's name.
        name: String,
    },
    /// The same capture name twice.
    #[error("route template {template:?}: capture {{{name}}} appears twice")]
    DuplicateCapture {
        /// The template as written.
        template: String,
        /// The repeated name.
        name: String,
    },
    /// A character a literal segment may not hold.
    #[error("route template {template:?}: character {character:?} is not allowed in literal segment {segment:?}")]
    Character {
        /// The template as written.
        template: String,
        /// The character refused.
        character: char,
        /// The segment holding it.
        segment: String,
    },
    /// A literal segment that is a dot segment or ends with a dot.
    #[error("route template {template:?}: literal segment {segment:?} is a dot segment or ends with a dot")]
    DotSegment {
        /// The template as written.
        template: String,
        /// The segment.
        segment: String,
    },
    /// A dot in the last segment, which canonical paths never have.
    #[error("route template {template:?}: the last segment {segment:?} contains a dot, which canonical paths never do")]
    DottedLast {
        /// The template as written.
        template: String,
        /// The last segment.
        segment: String,
    },
}

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// A literal segment, stored lower-case.
    Literal(String),
    /// `{name}`: captures exactly one segment.
    Capture(String),
}

/// A compiled path template like `/api/teams/{team}/members/{member}`. Literal segments
/// compare case-insensitively; `{name}` captures one (non-empty) segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate {
    /// The template as written.
    source: String,
    /// Its segments.
    parts: Vec<Part>,
}

impl RouteTemplate {
    /// Parses a template. It must start with `/`, have no empty segments (no `//`, no trailing
    /// `/` except the root template `/`), and each segment is either `{name}` (name: ASCII
    /// letter or `_`, then letters, digits, `_`; unique) or a literal made of
    /// `A-Za-z0-9-._~!$&'()*,=:@` that is not all dots, does not end in a dot, and has no dot
    /// if it is the last segment (such a literal could never match a canonical path).
    pub fn parse(t: &str) -> Result<Self, RouteError> {
        let body = t
            .strip_prefix('/')
            .ok_or_else(|| RouteError::NoLeadingSlash(t.to_owned()))?;
        let mut parts = Vec::new();
        if !body.is_empty() {
            for seg in body.split('/') {
                parts.push(parse_part(t, seg, &parts)?);
            }
        }
        if let Some(Part::Literal(last)) = parts.last() {
            if last.contains('.') {
                return Err(RouteError::DottedLast {
                    template: t.to_owned(),
                    segment: last.clone(),
                });
            }
        }
        Ok(RouteTemplate {
            source: t.to_owned(),
            parts,
        })
    }

    /// The captures (`(name, value)` in template order) if `segments` (canonical, as in
    /// [`canon::CanonTarget::segments`]) match this template, else `None`.
    pub fn matches(&self, segments: &[String]) -> Option<Vec<(String, String)>> {
        if segments.len() != self.parts.len() {
            return None;
        }
        let mut captures = Vec::new();
        for (part, seg) in self.parts.iter().zip(segments) {
            match part {
                Part::Literal(lit) if lit.eq_ignore_ascii_case(seg) => {}
                Part::Capture(name) if !seg.is_empty() => {
                    captures.push((name.clone(), seg.clone()));
                }
                _ => return None,
            }
        }
        Some(captures)
    }

    /// The literal segments before the first capture, as a canonical path (e.g. `/api/teams`
    /// for `/api/teams/{team}/members/{member}`; `/` if the template starts with a capture).
    pub fn literal_prefix(&self) -> String {
        let lits: Vec<&str> = self
            .parts
            .iter()
            .map_while(|p| match p {
                Part::Literal(l) => Some(l.as_str()),
                Part::Capture(_) => None,
            })
            .collect();
        format!("/{}", lits.join("/"))
    }

    /// Whether a canonical-form `path` (such as a [`canon::lenient_path`] reading) is at or
    /// below [`Self::literal_prefix`], segment-wise (`/api/me` covers `/api/me/email`, not
    /// `/api/meow`).
    pub fn covers(&self, path: &str) -> bool {
        let prefix = self.literal_prefix();
        prefix == "/"
            || path == prefix
            || path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for RouteTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Whether any worst-case reading of `target` ([`canon::lenient_paths`]) falls at or under
/// the literal prefix of one of `templates`. Such a request must pass the strict checks
/// ([`canon::canonicalize`] and the rest) before it is forwarded; any other request cannot
/// reach a guarded route however lenient the backend is about paths.
pub fn may_reach(target: &[u8], templates: &[RouteTemplate]) -> bool {
    if let Some(path) = plain_path(target) {
        return templates.iter().any(|t| t.covers(&path));
    }
    canon::lenient_paths(target)
        .iter()
        .any(|path| templates.iter().any(|t| t.covers(path)))
}

/// The one reading of a target whose path every backend reads the same way: letters, digits,
/// `-`, `_`, `~` and single slashes only (no escapes, dots or parameters). Most traffic is like
/// this, and it skips the search through every lenient reading.
fn plain_path(target: &[u8]) -> Option<String> {
    let path = &target[..target
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(target.len())];
    let plain = path.first() == Some(&b'/')
        && !path.windows(2).any(|w| w == b"//")
        && path
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'~'));
    plain.then(|| {
        let lower = String::from_utf8_lossy(path).to_ascii_lowercase();
        match lower.trim_end_matches('/') {
            "" => "/".to_string(),
            trimmed => trimmed.to_string(),
        }
    })
}

/// Parses one template segment; `seen` holds the parts before it (for duplicate names).
fn parse_part(t: &str, seg: &str, seen: &[Part]) -> Result<Part, RouteError> {
    if seg.is_empty() {
        return Err(RouteError::EmptySegment(t.to_owned()));
    }
    if let Some(inner) = seg.strip_prefix('{') {
        let name = inner
            .strip_suffix('}')
            .ok_or_else(|| RouteError::UnclosedCapture {
                template: t.to_owned(),
                segment: seg.to_owned(),
            })?;
        return parse_capture(t, name, seen);
    }
    parse_literal(t, seg)
}

/// Validates a capture name.
fn parse_capture(t: &str, name: &str, seen: &[Part]) -> Result<Part, RouteError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(RouteError::CaptureName {
            template: t.to_owned(),
            name: name.to_owned(),
        });
    }
    if seen
        .iter()
        .any(|p| matches!(p, Part::Capture(n) if n == name))
    {
        return Err(RouteError::DuplicateCapture {
            template: t.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(Part::Capture(name.to_owned()))
}

/// Validates a literal segment and lower-cases it.
fn parse_literal(t: &str, seg: &str) -> Result<Part, RouteError> {
    if let Some(bad) = seg
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*,=:@".contains(c)))
    {
        return Err(RouteError::Character {
            template: t.to_owned(),
            character: bad,
            segment: seg.to_owned(),
        });
    }
    if seg.ends_with('.') {
        return Err(RouteError::DotSegment {
            template: t.to_owned(),
            segment: seg.to_owned(),
        });
    }
    Ok(Part::Literal(seg.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_read_as_every_lenient_reading_does() {
        for t in [
            "/api/me/password",
            "/API/Me/Password/",
            "/",
            "/api/users/007?x=1",
            "/a-b_c~d",
        ] {
            let fast = plain_path(t.as_bytes()).unwrap();
            assert_eq!(canon::lenient_paths(t.as_bytes()), vec![fast], "{t}");
        }
        for t in ["/api/me/%70assword", "//api", "/api/./me", "/a;b", "api"] {
            assert!(plain_path(t.as_bytes()).is_none(), "{t}");
        }
    }
    use crate::guard::canon::canonicalize;

    fn t(s: &str) -> RouteTemplate {
        RouteTemplate::parse(s).expect("valid template")
    }

    fn segs(target: &str) -> Vec<String> {
        canonicalize(target.as_bytes()).expect("canonical").segments
    }

    #[test]
    fn parse_errors() {
        let bad = [
            ("", r#"route template "" must start with '/'"#),
            ("api/me", r#"route template "api/me" must start with '/'"#),
            (
                "/api//me",
                r#"route template "/api//me" has an empty segment (repeated or trailing '/')"#,
            ),
            (
                "/api/me/",
                r#"route template "/api/me/" has an empty segment (repeated or trailing '/')"#,
            ),
            ("/api/{", r#"route template "/api/{": unclosed capture "{""#),
            (
                "/api/{}",
                r#"route template "/api/{}": capture name "" must be letters, digits and '_' (not starting with a digit)"#,
            ),
            (
                "/api/{1x}",
                r#"route template "/api/{1x}": capture name "1x" must be letters, digits and '_' (not starting with a digit)"#,
            ),
            (
                "/api/{a-b}",
                r#"route template "/api/{a-b}": capture name "a-b" must be letters, digits and '_' (not starting with a digit)"#,
            ),
            (
                "/api/{x}/y/{x}",
                r#"route template "/api/{x}/y/{x}": capture {x} appears twice"#,
            ),
            (
                "/api/x{y}",
                r#"route template "/api/x{y}": character '{' is not allowed in literal segment "x{y}""#,
            ),
            (
                "/api/%2F",
                r#"route template "/api/%2F": character '%' is not allowed in literal segment "%2F""#,
            ),
            (
                "/api/a;b",
                r#"route template "/api/a;b": character ';' is not allowed in literal segment "a;b""#,
            ),
            (
                "/api/a b",
                r#"route template "/api/a b": character ' ' is not allowed in literal segment "a b""#,
            ),
            (
                "/api/./x",
                r#"route template "/api/./x": literal segment "." is a dot segment or ends with a dot"#,
            ),
            (
                "/api/../x",
                r#"route template "/api/../x": literal segment ".." is a dot segment or ends with a dot"#,
            ),
            (
                "/api/x./y",
                r#"route template "/api/x./y": literal segment "x." is a dot segment or ends with a dot"#,
            ),
            (
                "/api/me/email.json",
                r#"route template "/api/me/email.json": the last segment "email.json" contains a dot, which canonical paths never do"#,
            ),
            (
                "/api/É",
                r#"route template "/api/É": character 'É' is not allowed in literal segment "É""#,
            ),
        ];
        for (s, message) in bad {
            let err = RouteTemplate::parse(s).expect_err(s);
            assert_eq!(err.to_string(), message, "{s}");
        }
    }

    #[test]
    fn match_table() {
        type Case = (
            &'static str,
            &'static str,
            Option<&'static [(&'static str, &'static str)]>,
        );
        let cases: &[Case] = &[
            ("/api/me/email", "/api/me/email", Some(&[])),
            ("/api/me/email", "/API/ME/Email/", Some(&[])),
            ("/API/Me/Email", "/api/me/email", Some(&[])),
            ("/api/me/email", "/api/me", None),
            ("/api/me/email", "/api/me/email/x", None),
            ("/api/me/email", "/api/me/password", None),
            ("/api/users/{id}", "/api/users/42", Some(&[("id", "42")])),
            (
                "/api/users/{id}",
                "/api/users/0042",
                Some(&[("id", "0042")]),
            ),
            ("/api/users/{id}", "/api/users", None),
            (
                "/api/teams/{team}/members/{member}",
                "/api/teams/Acme/members/ME",
                Some(&[("team", "acme"), ("member", "me")]),
            ),
            (
                "/api/teams/{team}/members/{member}",
                "/api/teams/a%20b/members/7",
                Some(&[("team", "a b"), ("member", "7")]),
            ),
            (
                "/api/teams/{team}/members/{member}",
                "/api/teams/acme/members",
                None,
            ),
            (
                "/api/teams/{team}/members/me",
                "/api/teams/acme/members/me",
                Some(&[("team", "acme")]),
            ),
            (
                "/api/teams/{team}/members/me",
                "/api/teams/acme/members/7",
                None,
            ),
            ("/", "/", Some(&[])),
            ("/", "/x", None),
            ("/{any}", "/x", Some(&[("any", "x")])),
        ];
        for (template, target, want) in cases {
            let got = t(template).matches(&segs(target));
            let want: Option<Vec<(String, String)>> = want.map(|w| {
                w.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            });
            assert_eq!(got, want, "{template} vs {target}");
        }
    }

    #[test]
    fn prefixes_and_cover() {
        let teams = t("/api/teams/{team}/members/{member}");
        assert_eq!(teams.literal_prefix(), "/api/teams");
        assert_eq!(t("/API/Me/Email").literal_prefix(), "/api/me/email");
        assert_eq!(t("/{x}/y").literal_prefix(), "/");
        assert_eq!(t("/").literal_prefix(), "/");
        assert!(teams.covers("/api/teams"));
        assert!(teams.covers("/api/teams/acme/members/me"));
        assert!(!teams.covers("/api/teamsx"));
        assert!(!teams.covers("/api"));
        assert!(t("/{x}").covers("/anything"));
        assert_eq!(teams.as_str(), "/api/teams/{team}/members/{member}");
        assert_eq!(teams.to_string(), teams.as_str());
    }

    #[test]
    fn may_reach_table() {
        let guarded = [
            t("/api/me/password"),
            t("/api/me/email"),
            t("/api/users/{id}"),
            t("/api/teams/{team}/members/{member}"),
        ];
        let reach: &[&[u8]] = &[
            b"/api/me/email",
            b"/API/ME/EMAIL",
            b"/api/me%2Femail",
            b"/api/x/..%2fme/email",
            b"/api/me/email%00/../../x",
            b"/api/me/email%3f/../../x",
            b"/api/me/email;/../../x",
            b"//evil/api/me/email",
            b"/api/x/.../me/email",
            b"/api/me/%ef%bd%85mail",
            b"/api/me/email.json",
            b"/api/users/1",
            b"/api/teams",
            b"http://gw.test/api/teams/acme/members/me",
            b"/api/%2574eams/x",
        ];
        for target in reach {
            assert!(
                may_reach(target, &guarded),
                "{}",
                String::from_utf8_lossy(target)
            );
        }
        let not_reach: &[&[u8]] = &[
            b"/",
            b"/api/me",
            b"/api/login",
            b"/api/me/emails",
            b"/scim/v2/Users",
            b"/api/teamsx/a",
            b"/static/app.js?x=/api/me/email",
        ];
        for target in not_reach {
            assert!(
                !may_reach(target, &guarded),
                "{}",
                String::from_utf8_lossy(target)
            );
        }
    }
}
