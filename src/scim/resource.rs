//! Rendering a stored user as a full SCIM User: `schemas`, `id`, the attributes, and `meta` with
//! `resourceType`, `created`, `lastModified`, `location` and `version` (a weak ETag of the content).

use super::schema::{ENTERPRISE_SCHEMA, USER_SCHEMA};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// A user as SCIM sees it, before `meta.location` and `meta.version` are added.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimUser {
    /// The SCIM id (the backend's native id).
    pub id: String,
    /// The resource without `id` and `meta`.
    pub resource: Value,
    /// `meta.created`.
    pub created: String,
    /// `meta.lastModified`.
    pub last_modified: String,
}

/// The full SCIM resource of `user`, located under `base_url`.
pub fn render(user: &ScimUser, base_url: &str) -> Value {
    let mut out = Map::new();
    let mut schemas = vec![Value::String(USER_SCHEMA.into())];
    if user.resource.get(ENTERPRISE_SCHEMA).is_some() {
        schemas.push(Value::String(ENTERPRISE_SCHEMA.into()));
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(user.id.clone()));
    if let Some(attrs) = user.resource.as_object() {
        for (k, v) in attrs {
            if !matches!(k.as_str(), "schemas" | "id" | "meta") {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    let version = version_of(&Value::Object(out.clone()));
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": user.created,
            "lastModified": user.last_modified,
            "location": format!("{base_url}/Users/{}", user.id),
            "version": version,
        }),
    );
    Value::Object(out)
}

/// The weak ETag of a resource's content (without `meta`).
pub fn version_of(content: &Value) -> String {
    let digest = Sha256::digest(content.to_string().as_bytes());
    format!("W/\"{}\"", hex::encode(&digest[..8]))
}

/// The `meta.version` of a rendered resource.
pub fn version(rendered: &Value) -> String {
    rendered["meta"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Whether an `If-Match` header value accepts the current `version` (`*`, or one of a list;
/// weak and strong forms compare equal).
pub fn if_match_accepts(header: &str, version: &str) -> bool {
    let bare = |s: &str| {
        s.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    header
        .split(',')
        .any(|tag| tag.trim() == "*" || bare(tag) == bare(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> ScimUser {
        ScimUser {
            id: "7".into(),
            resource: json!({"userName": "a", ENTERPRISE_SCHEMA: {"department": "D"}}),
            created: "2026-01-01T00:00:00Z".into(),
            last_modified: "2026-01-02T00:00:00Z".into(),
        }
    }

    #[test]
    fn renders_schemas_id_and_meta() {
        let r = render(&user(), "http://h/scim/v2");
        assert_eq!(r["schemas"], json!([USER_SCHEMA, ENTERPRISE_SCHEMA]));
        assert_eq!(r["id"], "7");
        assert_eq!(r["meta"]["location"], "http://h/scim/v2/Users/7");
        assert_eq!(r["meta"]["resourceType"], "User");
        assert!(version(&r).starts_with("W/\""));
    }

    #[test]
    fn version_changes_with_content() {
        let a = render(&user(), "x");
        let mut u = user();
        u.resource["userName"] = json!("b");
        assert_ne!(version(&a), version(&render(&u, "x")));
    }

    #[test]
    fn if_match_compares_weak_and_strong_and_star() {
        assert!(if_match_accepts("W/\"abc\"", "W/\"abc\""));
        assert!(if_match_accepts("\"abc\"", "W/\"abc\""));
        assert!(if_match_accepts("*", "W/\"abc\""));
        assert!(!if_match_accepts("W/\"abd\"", "W/\"abc\""));
    }
}
