//! SCIM Groups (RFC 7643 §4.2): a group as the gateway holds it and its rendering, what a POST
//! or PUT body asks for ([`input`]) and what a PATCH changes ([`change`]).

pub mod change;
pub mod input;

use super::resource::version_of;
use super::schema::GROUP_SCHEMA;
use serde_json::{json, Map, Value};

/// One member of a group: a user, by SCIM id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's SCIM id (the backend's user id).
    pub value: String,
    /// The member's display name, when the backend gives it with the membership.
    pub display: Option<String>,
}

/// A group as SCIM sees it, before `meta.location` and `meta.version` are added.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimGroup {
    /// The SCIM id (the backend's native id).
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// `externalId`, kept by the store.
    pub external_id: Option<String>,
    /// Extension attributes, by schema URN (kept by the store).
    pub extensions: Map<String, Value>,
    /// The members, or `None` when they were not read (`excludedAttributes=members`).
    pub members: Option<Vec<Member>>,
    /// `meta.created`.
    pub created: String,
    /// `meta.lastModified`.
    pub last_modified: String,
}

/// The full SCIM resource of `group`, located under `base_url`. Its version covers every
/// attribute but `members` and changes with `meta.lastModified`, so it is the same whether or
/// not the members were read.
pub fn render(group: &ScimGroup, base_url: &str) -> Value {
    let mut out = Map::new();
    let mut schemas = vec![Value::String(GROUP_SCHEMA.into())];
    schemas.extend(group.extensions.keys().map(|k| Value::String(k.clone())));
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(group.id.clone()));
    if let Some(external_id) = &group.external_id {
        out.insert("externalId".into(), Value::String(external_id.clone()));
    }
    out.insert(
        "displayName".into(),
        Value::String(group.display_name.clone()),
    );
    for (urn, attrs) in &group.extensions {
        out.insert(urn.clone(), attrs.clone());
    }
    let mut versioned = out.clone();
    versioned.insert(
        "lastModified".into(),
        Value::String(group.last_modified.clone()),
    );
    let version = version_of(&Value::Object(versioned));
    if let Some(members) = &group.members {
        let rendered = members.iter().map(|m| render_member(m, base_url)).collect();
        out.insert("members".into(), Value::Array(rendered));
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": group.created,
            "lastModified": group.last_modified,
            "location": format!("{base_url}/Groups/{}", group.id),
            "version": version,
        }),
    );
    Value::Object(out)
}

fn render_member(member: &Member, base_url: &str) -> Value {
    let mut out = Map::new();
    out.insert("value".into(), Value::String(member.value.clone()));
    out.insert(
        "$ref".into(),
        Value::String(format!("{base_url}/Users/{}", member.value)),
    );
    if let Some(display) = &member.display {
        out.insert("display".into(), Value::String(display.clone()));
    }
    out.insert("type".into(), Value::String("User".into()));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::resource::version;

    fn group(members: Option<Vec<Member>>) -> ScimGroup {
        ScimGroup {
            id: "7".into(),
            display_name: "Launch".into(),
            external_id: Some("e-1".into()),
            extensions: Map::new(),
            members,
            created: "2026-01-01T00:00:00Z".into(),
            last_modified: "2026-01-02T00:00:00Z".into(),
        }
    }

    #[test]
    fn renders_members_with_ref_and_display() {
        let g = group(Some(vec![Member {
            value: "42".into(),
            display: Some("Ann".into()),
        }]));
        let r = render(&g, "https://h/scim/v2");
        assert_eq!(r["schemas"], json!([GROUP_SCHEMA]));
        assert_eq!(r["displayName"], "Launch");
        assert_eq!(r["externalId"], "e-1");
        assert_eq!(
            r["members"],
            json!([{"value": "42", "$ref": "https://h/scim/v2/Users/42", "display": "Ann", "type": "User"}])
        );
        assert_eq!(r["meta"]["location"], "https://h/scim/v2/Groups/7");
        assert_eq!(r["meta"]["resourceType"], "Group");
    }

    #[test]
    fn version_ignores_members_but_follows_last_modified() {
        let with = render(&group(Some(vec![])), "b");
        let without = render(&group(None), "b");
        assert!(without.get("members").is_none());
        assert_eq!(version(&with), version(&without));
        let mut later = group(None);
        later.last_modified = "2026-01-03T00:00:00Z".into();
        assert_ne!(version(&render(&later, "b")), version(&without));
    }

    #[test]
    fn extensions_are_listed_in_schemas() {
        let mut g = group(None);
        g.extensions
            .insert("urn:x:Ext".into(), json!({"color": "blue"}));
        let r = render(&g, "b");
        assert_eq!(r["schemas"], json!([GROUP_SCHEMA, "urn:x:Ext"]));
        assert_eq!(r["urn:x:Ext"]["color"], "blue");
    }
}
