//! Version-checked writes (optimistic concurrency): the version a read answers for a user, and
//! how the update that writes the user back carries it, as `[users.update.version]` says.

use super::paths::{get_path, set_path};
use super::spec::VersionAt;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// A user's version exactly as the backend gave it: a header's text, or a field's JSON value
/// (a number stays a number when it is sent back in the body).
#[derive(Debug, Clone, PartialEq)]
pub struct Version(pub Value);

/// The version a read answered, from its `headers` or from the `user` object.
pub fn read(from: &VersionAt, headers: &HeaderMap, user: &Value) -> Option<Version> {
    match from {
        VersionAt::Header(name) => headers
            .get(name)?
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Version(Value::String(s.to_string()))),
        VersionAt::Field(path) => get_path(user, path)
            .filter(|v| !v.is_null())
            .cloned()
            .map(Version),
    }
}

/// A version that cannot be sent in the configured header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the version {text:?} cannot be sent in the {header} header")]
pub struct VersionHeaderError {
    /// The version's text.
    pub text: String,
    /// The header `users.update.version` names.
    pub header: HeaderName,
}

/// Puts `version` where `to` says: into `body` (a field), or as the header to add to the write.
pub fn send(
    to: &VersionAt,
    version: &Version,
    body: &mut Value,
) -> Result<Option<(HeaderName, HeaderValue)>, VersionHeaderError> {
    match to {
        VersionAt::Header(name) => {
            let text = match &version.0 {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match HeaderValue::from_str(&text) {
                Ok(v) => Ok(Some((name.clone(), v))),
                Err(_) => Err(VersionHeaderError {
                    text,
                    header: name.clone(),
                }),
            }
        }
        VersionAt::Field(path) => {
            set_path(body, path, version.0.clone());
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(path: &str) -> VersionAt {
        VersionAt::Field(path.split('.').map(str::to_string).collect())
    }

    #[test]
    fn reads_a_header_exactly() {
        let mut headers = HeaderMap::new();
        headers.insert("etag", HeaderValue::from_static("W/\"7-abc\""));
        let from = VersionAt::Header(http::header::ETAG);
        assert_eq!(
            read(&from, &headers, &json!({})),
            Some(Version(json!("W/\"7-abc\"")))
        );
        assert_eq!(read(&from, &HeaderMap::new(), &json!({})), None);
    }

    #[test]
    fn reads_a_field_keeping_its_type() {
        let user = json!({"meta": {"rev": 42}, "v": null});
        assert_eq!(
            read(&field("meta.rev"), &HeaderMap::new(), &user),
            Some(Version(json!(42)))
        );
        assert_eq!(read(&field("v"), &HeaderMap::new(), &user), None);
        assert_eq!(read(&field("nope"), &HeaderMap::new(), &user), None);
    }

    #[test]
    fn sends_in_a_header_or_a_field() {
        let mut body = json!({"name": "a"});
        let header = send(
            &VersionAt::Header(http::header::IF_MATCH),
            &Version(json!("\"3\"")),
            &mut body,
        )
        .unwrap();
        assert_eq!(
            header,
            Some((http::header::IF_MATCH, HeaderValue::from_static("\"3\"")))
        );
        assert_eq!(body, json!({"name": "a"}), "a header leaves the body alone");
        let header = send(&field("meta.rev"), &Version(json!(42)), &mut body).unwrap();
        assert_eq!(header, None);
        assert_eq!(body, json!({"name": "a", "meta": {"rev": 42}}));
        let numeric = send(
            &VersionAt::Header(http::header::IF_MATCH),
            &Version(json!(42)),
            &mut body,
        )
        .unwrap();
        assert_eq!(numeric.unwrap().1, HeaderValue::from_static("42"));
        assert!(send(
            &VersionAt::Header(http::header::IF_MATCH),
            &Version(json!("a\nb")),
            &mut body
        )
        .is_err());
    }
}
