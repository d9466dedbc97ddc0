//! The discovery endpoints (RFC 7644 §4): `/ServiceProviderConfig`, `/Schemas` and
//! `/ResourceTypes`, generated from the static schemas. Every attribute advertised round-trips:
//! what the backend cannot hold is kept in the gateway's store.

use super::schema::{
    AttrDef, SchemaDef, ENTERPRISE, ENTERPRISE_SCHEMA, GROUP, GROUP_SCHEMA, USER, USER_SCHEMA,
};
use serde_json::{json, Value};

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// `/ServiceProviderConfig`, with RFC 9865's `pagination`: index paging is the default, cursor
/// paging is served too, cursors stay valid `cursor_timeout` seconds.
pub fn service_provider_config(base_url: &str, max_results: usize, cursor_timeout: u64) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/scimgate/scimgate#readme",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": max_results,
            "maxPageSize": max_results,
            "cursorTimeout": cursor_timeout
        },
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A SCIM API key generated with `scimgate token new`, sent as 'Authorization: Bearer <key>'",
            "primary": true
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base_url}/ServiceProviderConfig")}
    })
}

/// Every resource type served: `User`, and `Group` when groups are configured.
pub fn resource_types(base_url: &str, groups: bool) -> Vec<Value> {
    let mut all = vec![user_resource_type(base_url)];
    if groups {
        all.push(group_resource_type(base_url));
    }
    all
}

/// One served resource type by name (compared ignoring case).
pub fn resource_type(base_url: &str, name: &str, groups: bool) -> Option<Value> {
    resource_types(base_url, groups).into_iter().find(|t| {
        t["id"]
            .as_str()
            .is_some_and(|id| id.eq_ignore_ascii_case(name))
    })
}

/// The `Group` resource type.
fn group_resource_type(base_url: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "Group",
        "schema": GROUP_SCHEMA,
        "schemaExtensions": [],
        "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/Group")}
    })
}

/// The `User` resource type.
fn user_resource_type(base_url: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_SCHEMA,
        "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": false}],
        "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/User")}
    })
}

/// The only values some attributes accept, by canonical path (`userType`, `emails.type`,
/// `urn:...:enterprise:2.0:User:department`): advertised as `canonicalValues`, so `/Schemas`
/// shows what round-trips when the backend refuses other values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restrictions {
    /// `(canonical path, accepted values)`.
    pub canonical_values: Vec<(String, Vec<String>)>,
}

impl Restrictions {
    fn values_of(&self, path: &str) -> Option<&Vec<String>> {
        self.canonical_values
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v)
    }
}

/// The schemas served: User and its enterprise extension, and Group when `groups`.
fn served(groups: bool) -> Vec<&'static SchemaDef> {
    let mut all = vec![&USER, &ENTERPRISE];
    if groups {
        all.push(&GROUP);
    }
    all
}

/// Every schema the gateway serves (Group only when `groups`).
pub fn schemas(base_url: &str, restrictions: &Restrictions, groups: bool) -> Vec<Value> {
    served(groups)
        .into_iter()
        .map(|s| schema(s, base_url, restrictions))
        .collect()
}

/// One served schema by URN.
pub fn schema_by_id(
    base_url: &str,
    id: &str,
    restrictions: &Restrictions,
    groups: bool,
) -> Option<Value> {
    served(groups)
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .map(|s| schema(s, base_url, restrictions))
}

fn schema(s: &SchemaDef, base_url: &str, restrictions: &Restrictions) -> Value {
    let prefix = if s.id == ENTERPRISE_SCHEMA {
        format!("{ENTERPRISE_SCHEMA}:")
    } else {
        String::new()
    };
    let attributes: Vec<Value> = s
        .attributes
        .iter()
        .map(|a| attribute(a, &format!("{prefix}{}", a.name), restrictions))
        .collect();
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base_url}/Schemas/{}", s.id)}
    })
}

/// Whether the gateway refuses a second resource with the attribute's value: a user's
/// `userName`, a group's (required) `displayName`.
fn unique_in_tenant(a: &AttrDef) -> bool {
    a.name == "userName" || (a.name == "displayName" && a.required)
}

/// One attribute's definition; `path` is its canonical path, for its [`Restrictions`].
fn attribute(a: &AttrDef, path: &str, restrictions: &Restrictions) -> Value {
    let mut v = json!({
        "name": a.name,
        "type": a.ty.as_str(),
        "multiValued": a.multi_valued,
        "description": a.description,
        "required": a.required,
        "caseExact": a.case_exact,
        "mutability": a.mutability.as_str(),
        "returned": a.returned.as_str(),
        "uniqueness": if unique_in_tenant(a) { "server" } else { "none" },
    });
    if let Some(o) = v.as_object_mut() {
        if !a.sub_attributes.is_empty() {
            let subs = a
                .sub_attributes
                .iter()
                .map(|s| attribute(s, &format!("{path}.{}", s.name), restrictions));
            o.insert("subAttributes".into(), subs.collect());
        }
        if let Some(values) = restrictions.values_of(path) {
            o.insert("canonicalValues".into(), json!(values));
        } else if !a.canonical_values.is_empty() {
            o.insert("canonicalValues".into(), json!(a.canonical_values));
        }
        if a.ty == super::schema::AttrType::Reference {
            let types = if a.name == "$ref" {
                json!(["User"])
            } else {
                json!(["external"])
            };
            o.insert("referenceTypes".into(), types);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_attributes_advertise_their_canonical_values() {
        let restrictions = Restrictions {
            canonical_values: vec![
                ("userType".into(), vec!["Employee".into()]),
                ("emails.type".into(), vec!["work".into(), "home".into()]),
                (
                    format!("{ENTERPRISE_SCHEMA}:department"),
                    vec!["Ops".into()],
                ),
            ],
        };
        let all = schemas("http://h/scim/v2", &restrictions, false);
        let find = |attrs: &Value, name: &str| {
            attrs
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["name"] == name)
                .cloned()
                .unwrap()
        };
        let core = &all[0]["attributes"];
        assert_eq!(
            find(core, "userType")["canonicalValues"],
            json!(["Employee"])
        );
        let emails = find(core, "emails");
        assert_eq!(
            find(&emails["subAttributes"], "type")["canonicalValues"],
            json!(["work", "home"])
        );
        assert!(find(&emails["subAttributes"], "value")
            .get("canonicalValues")
            .is_none());
        assert!(find(core, "title").get("canonicalValues").is_none());
        assert_eq!(
            find(&all[1]["attributes"], "department")["canonicalValues"],
            json!(["Ops"])
        );
        let unrestricted = schemas("http://h/scim/v2", &Restrictions::default(), false);
        assert!(!unrestricted[0].to_string().contains("canonicalValues"));
    }

    #[test]
    fn schemas_list_user_and_enterprise_with_sub_attributes() {
        let all = schemas("http://h/scim/v2", &Restrictions::default(), false);
        assert_eq!(all.len(), 2);
        let name = all[0]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "name")
            .unwrap();
        assert!(name["subAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "givenName"));
        assert_eq!(all[1]["id"], ENTERPRISE_SCHEMA);
    }

    #[test]
    fn groups_are_advertised_only_when_served() {
        assert_eq!(resource_types("b", false).len(), 1);
        assert!(resource_type("b", "group", false).is_none());
        assert_eq!(
            resource_type("b", "group", true).unwrap()["endpoint"],
            "/Groups"
        );
        let all = schemas("b", &Restrictions::default(), true);
        let group = &all[2];
        assert_eq!(group["id"], GROUP_SCHEMA);
        let attrs = group["attributes"].as_array().unwrap();
        assert_eq!(attrs[0]["name"], "displayName");
        assert_eq!(attrs[0]["uniqueness"], "server");
        assert_eq!(attrs[1]["name"], "members");
        let sub = |name: &str| {
            attrs[1]["subAttributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name)
                .unwrap()
                .clone()
        };
        assert_eq!(sub("display")["returned"], "request");
        assert_eq!(sub("value")["returned"], "default");
        assert_eq!(sub("type")["canonicalValues"], json!(["User"]));
        assert!(sub("value").get("canonicalValues").is_none());
        assert!(schema_by_id("b", GROUP_SCHEMA, &Restrictions::default(), false).is_none());
        let user = &all[0]["attributes"];
        let display = user
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "displayName")
            .unwrap();
        assert_eq!(display["uniqueness"], "none");
    }

    #[test]
    fn spc_advertises_patch_and_filter() {
        let spc = service_provider_config("http://h", 100, 3600);
        assert_eq!(spc["patch"]["supported"], true);
        assert_eq!(spc["filter"]["maxResults"], 100);
        assert_eq!(
            spc["pagination"],
            serde_json::json!({"cursor": true, "index": true, "defaultPaginationMethod": "index",
                "defaultPageSize": 100, "maxPageSize": 100, "cursorTimeout": 3600})
        );
    }
}
