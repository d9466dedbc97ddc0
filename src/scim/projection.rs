//! `attributes` and `excludedAttributes` (RFC 7644 §3.9): trims a rendered resource to what the
//! client asked for. `id` and `schemas` are always returned.

use super::error::ScimError;
use super::schema::{self, Home, Resolved, ResourceKind, ENTERPRISE_SCHEMA};
use serde_json::{Map, Value};

/// What to return of each resource: what `attributes` or `excludedAttributes` select, less the
/// attributes returned only on request (`returned: "request"`) that the client did not name.
#[derive(Debug, Clone)]
pub struct Projection {
    pick: Pick,
    unrequested: Vec<Resolved>,
}

#[derive(Debug, Clone)]
enum Pick {
    /// Every attribute returned by default.
    All,
    /// Only these (plus the always-returned ones).
    Only(Vec<Resolved>),
    /// All but these.
    Except(Vec<Resolved>),
}

impl Projection {
    /// What a resource of `kind` returns when the client selects nothing: the answer to a write.
    pub fn everything(kind: ResourceKind) -> Projection {
        Projection::of(kind, Pick::All)
    }

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
        let [projection] = Projection::parse_across([kind], attributes, excluded)?;
        Ok(projection)
    }

    /// One projection per kind, for a search across resource types (the root `/.search`): every
    /// path must name an attribute of at least one kind, and selects in the kinds that have it.
    pub fn parse_across<const N: usize>(
        kinds: [ResourceKind; N],
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<[Projection; N], ScimError> {
        let (text, only) = match (attributes, excluded) {
            (Some(a), _) if !a.trim().is_empty() => (a, true),
            (_, Some(e)) if !e.trim().is_empty() => (e, false),
            _ => return Ok(kinds.map(Projection::everything)),
        };
        let paths: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(p) = paths.iter().find(|p| {
            kinds
                .iter()
                .all(|&k| schema::resolve_path_for(k, p).is_none())
        }) {
            return Err(ScimError::invalid_value(format!(
                "unknown attribute {p:?} in attributes or excludedAttributes"
            )));
        }
        Ok(kinds.map(|kind| {
            let resolved = paths
                .iter()
                .filter_map(|p| schema::resolve_path_for(kind, p))
                .collect();
            let pick = if only {
                Pick::Only(resolved)
            } else {
                Pick::Except(resolved)
            };
            Projection::of(kind, pick)
        }))
    }

    fn of(kind: ResourceKind, pick: Pick) -> Projection {
        let named = |r: &Resolved| match &pick {
            Pick::Only(keep) => keep.iter().any(|k| same(k, r)),
            Pick::All | Pick::Except(_) => false,
        };
        let unrequested = schema::returned_on_request(kind)
            .into_iter()
            .filter(|r| !named(r))
            .collect();
        Projection { pick, unrequested }
    }

    /// Whether the answer holds the top-level attribute `name` (or part of it), so that a
    /// costly attribute (a group's `members`) is read only when it is returned.
    pub fn returns(&self, name: &str) -> bool {
        match &self.pick {
            Pick::All => true,
            Pick::Only(keep) => keep.iter().any(|r| r.attr.name == name),
            Pick::Except(drop) => !drop.iter().any(|r| r.attr.name == name && r.sub.is_none()),
        }
    }

    /// Applies the projection to a full resource.
    pub fn apply(&self, resource: Value) -> Value {
        let picked = match &self.pick {
            Pick::All => resource,
            Pick::Only(keep) => only(&resource, keep),
            Pick::Except(drop) => except(resource, drop),
        };
        if self.unrequested.is_empty() {
            picked
        } else {
            except(picked, &self.unrequested)
        }
    }
}

/// Whether two references name the same attribute or sub-attribute.
fn same(a: &Resolved, b: &Resolved) -> bool {
    a.home == b.home && a.attr.name == b.attr.name && a.sub.map(|s| s.name) == b.sub.map(|s| s.name)
}

fn only(resource: &Value, keep: &[Resolved]) -> Value {
    let mut out = Map::new();
    for key in ["schemas", "id"] {
        if let Some(v) = resource.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    for (i, r) in keep.iter().enumerate() {
        let same_attr = |k: &&Resolved| k.home == r.home && k.attr.name == r.attr.name;
        if keep[..i].iter().any(|k| same_attr(&k)) {
            continue;
        }
        let Some(value) = home(resource, r.home).and_then(|src| src.get(r.attr.name)) else {
            continue;
        };
        let wanted: Vec<&Resolved> = keep.iter().filter(same_attr).collect();
        let picked = if wanted.iter().any(|k| k.sub.is_none()) {
            value.clone()
        } else {
            let subs: Vec<&str> = wanted
                .iter()
                .filter_map(|k| k.sub.map(|s| s.name))
                .collect();
            pick_subs(value, &subs)
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
        dest.insert(r.attr.name.to_string(), picked);
    }
    Value::Object(out)
}

/// The named sub-attributes of a complex value, or of each value of a multi-valued one (values
/// holding none of them are left out).
fn pick_subs(value: &Value, subs: &[&str]) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| pick_subs(i, subs))
                .filter(|v| !v.is_null())
                .collect(),
        ),
        Value::Object(o) => {
            let picked: Map<String, Value> = subs
                .iter()
                .filter_map(|&sub| Some((sub.to_string(), o.get(sub)?.clone())))
                .collect();
            if picked.is_empty() {
                Value::Null
            } else {
                Value::Object(picked)
            }
        }
        _ => Value::Null,
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
    fn member_display_is_returned_only_when_named() {
        let group = json!({"schemas": ["g"], "id": "1", "displayName": "D",
            "members": [{"value": "2", "display": "B", "type": "User"}]});
        let p = |a: Option<&str>, e: Option<&str>| {
            Projection::parse_for(ResourceKind::Group, a, e)
                .unwrap()
                .apply(group.clone())
        };
        let bare = json!([{"value": "2", "type": "User"}]);
        assert_eq!(p(None, None)["members"], bare);
        assert_eq!(p(None, Some("displayName"))["members"], bare);
        assert_eq!(p(Some("members"), None)["members"], bare);
        assert_eq!(
            p(Some("members.display"), None)["members"],
            json!([{"display": "B"}])
        );
        assert_eq!(
            p(Some("members.value,members.display"), None)["members"],
            json!([{"value": "2", "display": "B"}])
        );
        assert_eq!(
            Projection::everything(ResourceKind::Group).apply(group.clone())["members"],
            bare
        );
        assert_eq!(
            Projection::everything(ResourceKind::User).apply(user()),
            user()
        );
    }

    #[test]
    fn a_search_across_types_selects_in_the_types_that_know_the_path() {
        let kinds = [ResourceKind::User, ResourceKind::Group];
        let [users, groups] =
            Projection::parse_across(kinds, None, Some("members,emails")).unwrap();
        assert!(users.apply(user()).get("emails").is_none());
        let group = json!({"schemas": ["g"], "id": "1", "displayName": "D", "members": []});
        assert_eq!(
            groups.apply(group),
            json!({"schemas": ["g"], "id": "1", "displayName": "D"})
        );
        let [users, groups] = Projection::parse_across(kinds, Some("userName"), None).unwrap();
        assert_eq!(users.apply(user())["userName"], "a");
        assert!(!groups.returns("members"));
        let err = Projection::parse_across(kinds, Some("userName,nope"), None).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.detail.contains("nope"), "{}", err.detail);
    }

    #[test]
    fn unknown_attribute_is_an_error() {
        assert_eq!(
            Projection::parse(Some("nope"), None).unwrap_err().status,
            400
        );
    }
}
