//! What a `POST /Groups` or `PUT /Groups/{id}` body asks for: a strict reading of a Group
//! resource into [`GroupInput`]. Names compare ignoring case; read-only attributes (`id`, `meta`)
//! are ignored; an object keyed by a schema URN the body lists in `schemas` is an extension kept
//! as sent; any other attribute is refused.

use crate::scim::error::ScimError;
use crate::scim::schema::GROUP_SCHEMA;
use serde_json::{Map, Value};

/// A group as a client wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInput {
    /// `displayName`, trimmed, never empty.
    pub display_name: String,
    /// `externalId`.
    pub external_id: Option<String>,
    /// Extension attributes, by schema URN.
    pub extensions: Map<String, Value>,
    /// Member ids in the order given, without repeats; `None` when the body has no `members`.
    pub members: Option<Vec<String>>,
}

/// Reads a Group body. Errors are `400`: `invalidSyntax` for a body that is not a Group (no
/// Group URN in `schemas`, unknown attributes), `invalidValue` for a missing `displayName` or a
/// malformed member.
pub fn parse(body: &Value) -> Result<GroupInput, ScimError> {
    let Some(object) = body.as_object() else {
        return Err(ScimError::invalid_syntax("a Group must be a JSON object"));
    };
    let schemas = schemas_of(object)?;
    let mut input = GroupInput {
        display_name: String::new(),
        external_id: None,
        extensions: Map::new(),
        members: None,
    };
    for (key, value) in object {
        match key.to_ascii_lowercase().as_str() {
            "schemas" | "id" | "meta" => {}
            "displayname" => input.display_name = display_name(value)?,
            "externalid" => input.external_id = external_id(value)?,
            "members" => input.members = members(value)?,
            _ => match schemas.iter().find(|s| s.eq_ignore_ascii_case(key)) {
                Some(urn) => extension(&mut input.extensions, urn, value)?,
                None => {
                    return Err(ScimError::invalid_syntax(format!(
                        "unknown attribute '{key}' of a Group"
                    )))
                }
            },
        }
    }
    if input.display_name.is_empty() {
        return Err(ScimError::invalid_value("displayName is required"));
    }
    Ok(input)
}

/// The URNs in `schemas`, which must list the Group schema.
fn schemas_of(object: &Map<String, Value>) -> Result<Vec<String>, ScimError> {
    let listed = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v);
    let urns: Vec<String> = listed
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if urns.iter().any(|s| s.eq_ignore_ascii_case(GROUP_SCHEMA)) {
        Ok(urns
            .into_iter()
            .filter(|s| !s.eq_ignore_ascii_case(GROUP_SCHEMA))
            .collect())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "'schemas' is required and must list {GROUP_SCHEMA}"
        )))
    }
}

/// A `displayName` value: a non-empty string, trimmed.
pub fn display_name(value: &Value) -> Result<String, ScimError> {
    match value.as_str().map(str::trim) {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        Some(_) => Err(ScimError::invalid_value("displayName must not be empty")),
        None => Err(ScimError::invalid_value("displayName must be a string")),
    }
}

/// An `externalId` value: a string, or `null`/`""` for none.
pub fn external_id(value: &Value) -> Result<Option<String>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ScimError::invalid_value("externalId must be a string")),
    }
}

/// A `members` value: a list of member objects (or `null` for none), as ids without repeats.
pub fn members(value: &Value) -> Result<Option<Vec<String>>, ScimError> {
    let items = match value {
        Value::Null => return Ok(Some(Vec::new())),
        Value::Array(items) => items.as_slice(),
        Value::Object(_) => std::slice::from_ref(value),
        _ => {
            return Err(ScimError::invalid_value(
                "members must be a list of members",
            ))
        }
    };
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let id = member_id(item)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(Some(ids))
}

/// The id of one member object (`{"value": "<user id>"}`; `$ref` and `display` are ignored). A
/// member of `type` `Group` is refused: nested groups are not provisioned. Any other `type`
/// is not trusted either way: the id must name a user of the tenant, which is checked later.
pub fn member_id(item: &Value) -> Result<String, ScimError> {
    let Some(object) = item.as_object() else {
        return Err(ScimError::invalid_value(
            "a member must be an object with a 'value' (the user's id)",
        ));
    };
    let field = |name: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    if let Some(kind) = field("type").and_then(Value::as_str) {
        if kind.eq_ignore_ascii_case("Group") {
            return Err(ScimError::invalid_value(
                "a member of type \"Group\" cannot be provisioned: only users are group members here",
            ));
        }
    }
    match field("value") {
        Some(Value::String(id)) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(ScimError::invalid_value(
            "a member needs a 'value': the id of the user",
        )),
    }
}

fn extension(
    extensions: &mut Map<String, Value>,
    urn: &str,
    value: &Value,
) -> Result<(), ScimError> {
    match value {
        Value::Object(attrs) if attrs.is_empty() => Ok(()),
        Value::Object(_) => {
            extensions.insert(urn.to_string(), value.clone());
            Ok(())
        }
        Value::Null => Ok(()),
        _ => Err(ScimError::invalid_value(format!(
            "'{urn}' must be an object of attributes"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::error::ScimType;
    use serde_json::json;

    #[test]
    fn reads_an_entra_create() {
        let body = json!({
            "schemas": [GROUP_SCHEMA, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": " Group1DisplayName ",
            "meta": {"resourceType": "Group"}
        });
        let g = parse(&body).unwrap();
        assert_eq!(g.display_name, "Group1DisplayName");
        assert_eq!(
            g.external_id.as_deref(),
            Some("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")
        );
        assert_eq!(g.members, None);
    }

    #[test]
    fn reads_members_once_each_in_order() {
        let body = json!({"schemas": [GROUP_SCHEMA], "DISPLAYNAME": "g",
            "members": [{"value": "2", "display": "B"}, {"value": "1", "$ref": null}, {"value": "2"}]});
        assert_eq!(
            parse(&body).unwrap().members,
            Some(vec!["2".to_string(), "1".to_string()])
        );
        let okta = json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "members": []});
        assert_eq!(parse(&okta).unwrap().members, Some(vec![]));
    }

    #[test]
    fn keeps_listed_extensions_and_refuses_unknown_attributes() {
        let body = json!({"schemas": [GROUP_SCHEMA, "urn:x:Ext"], "displayName": "g",
            "urn:x:Ext": {"color": "blue"}});
        assert_eq!(
            parse(&body).unwrap().extensions["urn:x:Ext"]["color"],
            "blue"
        );
        let unknown = json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "colour": "red"});
        assert_eq!(
            parse(&unknown).unwrap_err().scim_type,
            Some(ScimType::InvalidSyntax)
        );
    }

    #[test]
    fn refuses_what_is_not_a_group() {
        for (body, kind) in [
            (json!({"displayName": "g"}), ScimType::InvalidSyntax),
            (json!({"schemas": [GROUP_SCHEMA]}), ScimType::InvalidValue),
            (
                json!({"schemas": [GROUP_SCHEMA], "displayName": "  "}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [GROUP_SCHEMA], "displayName": 3}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [{"display": "x"}]}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [{"value": "9", "type": "Group"}]}),
                ScimType::InvalidValue,
            ),
            (json!([1]), ScimType::InvalidSyntax),
        ] {
            let e = parse(&body).unwrap_err();
            assert_eq!((e.status, e.scim_type), (400, Some(kind)), "{body}");
        }
    }
}
