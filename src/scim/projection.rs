//! `attributes` and `excludedAttributes` (RFC 7644 §3.9): trims a rendered resource to what the
//! client asked for. `id` and `schemas` are always returned.

use super::error::ScimError;
use super::schema::{self, Home, Resolved, ResourceKind, ENTERPRISE_SCHEMA};
use serde_json::{Map, Value};

/// What to return of each resource.
#[derive(Debug, Clone, Default)]
pub enum Projection {
    /// Every attribute returned by default.
    #[default]
    Default,
    /// Only these (plus the always-returned ones).
    Only(Vec<Resolved>),
    /// All but these.
    Except(Vec<Resolved>),
}

impl Projection {
    /// Builds a projection of Users from the two query parameters (comma-separated attribute
    /// paths).
    pub fn parse(
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, ScimError> {
        Projection::parse_for(ResourceKind::User, attributes, excluded)
    }

    /// Builds a projection of resources of `kind` from the two query parameters.
    pub fn parse_for(
        kind: ResourceKind,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, ScimError> {
        let list = |text: &str| -> Result<Vec<Resolved>, ScimError> {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|p| {
                    schema::resolve_path_for(kind, p).ok_or_else(|| {
                        ScimError::invalid_value(format!(
                            "unknown attribute {p:?} in attributes or excludedAttributes"
                        ))
                    })
                })
                .collect()
        };
        Ok(match (attributes, excluded) {
            (Some(a), _) if !a.trim().is_empty() => Projection::Only(list(a)?),
            (_, Some(e)) if !e.trim().is_empty() => Projection::Except(list(e)?),
            _ => Projection::Default,
        })
    }

    /// Whether the answer holds the top-level attribute `name` (or part of it), so that a
    /// costly attribute (a group's `members`) is read only when it is returned.
    pub fn returns(&self, name: &str) -> bool {
        match self {
            Projection::Default => true,
            Projection::Only(keep) => keep.iter().any(|r| r.attr.name == name),
            Projection::Except(drop) => {
                !drop.iter().any(|r| r.attr.name == name && r.sub.is_none())
            }
        }
    }

    /// Applies the projection to a full resource.
    pub fn apply(&self, resource: Value) -> Value {
        match self {
            Projection::Default => resource,
            Projection::Only(keep) => only(&resource, keep),
            Projection::Except(drop) => except(resource, drop),
        }
    }
}

fn only(resource: &Value, keep: &[Resolved]) -> Value {
    let mut out = Map::new();
    for key in ["schemas", "id"] {
        if let Some(v) = resource.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    for r in keep {
        let Some(src) = home(resource, r.home) else {
            continue;
        };
        let Some(value) = src.get(r.attr.name) else {
            continue;
        };
        let picked = match r.sub {
            None => value.clone(),
            Some(sub) => pick_sub(value, sub.name),
        };
        if picked.is_null() {
            continue;
        }
        let dest = match r.home {
            Home::Core => &mut out,
            Home::Enterprise => match out
                .entry(ENTERPRISE_SCHEMA)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
            {
                Some(o) => o,
                None => continue,
            },
        };
        merge_into(dest, r.attr.name, picked);
    }
    Value::Object(out)
}

fn pick_sub(value: &Value, sub: &str) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| pick_sub(i, sub))
                .filter(|v| !v.is_null())
                .collect(),
        ),
        Value::Object(o) => match o.get(sub) {
            Some(v) => {
                let mut m = Map::new();
                m.insert(sub.to_string(), v.clone());
                Value::Object(m)
            }
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

fn merge_into(dest: &mut Map<String, Value>, key: &str, value: Value) {
    match (dest.get_mut(key), value) {
        (Some(Value::Object(existing)), Value::Object(add)) => existing.extend(add),
        (_, v) => {
            dest.insert(key.to_string(), v);
        }
    }
}

fn except(mut resource: Value, drop: &[Resolved]) -> Value {
    for r in drop {
        if r.attr.name == "id" {
            continue;
        }
        let Some(obj) = home_mut(&mut resource, r.home) else {
            continue;
        };
        match r.sub {
            None => {
                obj.remove(r.attr.name);
            }
            Some(sub) => match obj.get_mut(r.attr.name) {
                Some(Value::Object(o)) => {
                    o.remove(sub.name);
                }
                Some(Value::Array(items)) => items
                    .iter_mut()
                    .filter_map(Value::as_object_mut)
                    .for_each(|o| {
                        o.remove(sub.name);
                    }),
                _ => {}
            },
        }
    }
    resource
}

fn home(resource: &Value, h: Home) -> Option<&Map<String, Value>> {
    match h {
        Home::Core => resource.as_object(),
        Home::Enterprise => resource.get(ENTERPRISE_SCHEMA)?.as_object(),
    }
}

fn home_mut(resource: &mut Value, h: Home) -> Option<&mut Map<String, Value>> {
    match h {
        Home::Core => resource.as_object_mut(),
        Home::Enterprise => resource.get_mut(ENTERPRISE_SCHEMA)?.as_object_mut(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({"schemas": ["s"], "id": "1", "userName": "a", "name": {"givenName": "A", "familyName": "B"},
               "emails": [{"value": "a@x", "type": "work"}],
               ENTERPRISE_SCHEMA: {"department": "D", "costCenter": "C"}})
    }

    #[test]
    fn only_keeps_requested_and_always_returned() {
        let p = Projection::parse(Some("userName,name.givenName,emails.value"), None).unwrap();
        assert_eq!(
            p.apply(user()),
            json!({"schemas": ["s"], "id": "1", "userName": "a", "name": {"givenName": "A"}, "emails": [{"value": "a@x"}]})
        );
    }

    #[test]
    fn only_handles_extension_attributes() {
        let p = Projection::parse(Some(&format!("{ENTERPRISE_SCHEMA}:department")), None).unwrap();
        assert_eq!(
            p.apply(user()),
            json!({"schemas": ["s"], "id": "1", ENTERPRISE_SCHEMA: {"department": "D"}})
        );
    }

    #[test]
    fn except_drops_but_never_id() {
        let p = Projection::parse(None, Some("emails,id,name.familyName")).unwrap();
        let out = p.apply(user());
        assert!(out.get("emails").is_none());
        assert_eq!(out["id"], "1");
        assert_eq!(out["name"], json!({"givenName": "A"}));
    }

    #[test]
    fn group_projections_tell_whether_members_are_returned() {
        let kind = ResourceKind::Group;
        let p = |a: Option<&str>, e: Option<&str>| Projection::parse_for(kind, a, e).unwrap();
        assert!(p(None, None).returns("members"));
        assert!(!p(None, Some("members")).returns("members"));
        assert!(p(None, Some("members.display")).returns("members"));
        assert!(!p(Some("displayName"), None).returns("members"));
        assert!(p(Some("members.value"), None).returns("members"));
        let group = serde_json::json!({"schemas": ["g"], "id": "1", "displayName": "D",
            "members": [{"value": "2", "display": "B"}]});
        assert_eq!(
            p(None, Some("MEMBERS")).apply(group.clone()),
            serde_json::json!({"schemas": ["g"], "id": "1", "displayName": "D"})
        );
        assert!(Projection::parse_for(kind, Some("userName"), None).is_err());
    }

    #[test]
    fn unknown_attribute_is_an_error() {
        assert_eq!(
            Projection::parse(Some("nope"), None).unwrap_err().status,
            400
        );
    }
}
