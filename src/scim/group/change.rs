//! What a PATCH asks of a group, folded from its operations in order into one [`GroupChange`]:
//! a new `displayName` or `externalId`, and a membership delta (members to add and to remove, or
//! a whole new member list). Every shape Entra and Okta send is read (see `shared/azure-ad.md`):
//! `add`/`remove` of `members` with a list of values, `remove` of `members[value eq "…"]`,
//! `replace` of `members`, and a path-less `replace` whose value object renames the group.
//! Membership is never read to fold a change, so a PATCH of one member costs one member.

use super::input;
use crate::scim::error::ScimError;
use crate::scim::filter::{self, CompareOp, Filter, Literal};
use crate::scim::patch::{at_operation, read_operations, OpKind, RawOp};
use crate::scim::schema::{Home, GROUP, GROUP_SCHEMA};
use serde_json::{Map, Value};

/// The membership part of a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberChange {
    /// A new member list replacing the current one, when an operation replaced or cleared it.
    pub replace: Option<Vec<String>>,
    /// Members to add (after `replace`, when both are set), in order, without repeats.
    pub add: Vec<String>,
    /// Members to remove, in order, without repeats.
    pub remove: Vec<String>,
}

impl MemberChange {
    /// Whether the membership changes at all.
    pub fn is_empty(&self) -> bool {
        self.replace.is_none() && self.add.is_empty() && self.remove.is_empty()
    }

    /// How many member ids the change names (what the per-request cap counts).
    pub fn size(&self) -> usize {
        self.replace.as_ref().map_or(0, Vec::len) + self.add.len() + self.remove.len()
    }

    fn add(&mut self, ids: Vec<String>) {
        for id in ids {
            self.remove.retain(|r| r != &id);
            let list = self.replace.as_mut().unwrap_or(&mut self.add);
            if !list.contains(&id) {
                list.push(id);
            }
        }
    }

    fn remove(&mut self, ids: Vec<String>) {
        for id in ids {
            self.add.retain(|a| a != &id);
            match self.replace.as_mut() {
                Some(list) => list.retain(|m| m != &id),
                None if !self.remove.contains(&id) => self.remove.push(id),
                None => {}
            }
        }
    }

    fn set(&mut self, ids: Vec<String>) {
        *self = MemberChange {
            replace: Some(ids),
            ..MemberChange::default()
        };
    }
}

/// Everything a PATCH asks of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupChange {
    /// A new `displayName`.
    pub display_name: Option<String>,
    /// A new `externalId` (`Some(None)` removes it).
    pub external_id: Option<Option<String>>,
    /// New extension attributes replacing the current ones (a PUT; a PATCH leaves them).
    pub extensions: Option<Map<String, Value>>,
    /// The membership delta.
    pub members: MemberChange,
}

impl GroupChange {
    /// The change a PUT of `input` makes: every attribute replaced, and the member list too when
    /// the body has `members` (a PUT without `members` leaves them, as clients that never read
    /// members expect).
    pub fn replacing(input: input::GroupInput) -> GroupChange {
        GroupChange {
            display_name: Some(input.display_name),
            external_id: Some(input.external_id),
            extensions: Some(input.extensions),
            members: MemberChange {
                replace: input.members,
                ..MemberChange::default()
            },
        }
    }
}

/// Reads a PatchOp request for a group into one change. Errors are `400` with the RFC's
/// `scimType` and name the operation at fault; nothing is applied on error.
pub fn parse(body: &Value) -> Result<GroupChange, ScimError> {
    let mut change = GroupChange::default();
    for (i, op) in read_operations(body)?.into_iter().enumerate() {
        fold(&mut change, op).map_err(|e| at_operation(i, e))?;
    }
    Ok(change)
}

fn fold(change: &mut GroupChange, op: RawOp) -> Result<(), ScimError> {
    let RawOp { op, path, value } = op;
    let Some(path) = path else {
        return fold_pathless(change, op, value.as_ref());
    };
    let (name, filter) = split_path(&path)?;
    match name.to_ascii_lowercase().as_str() {
        "displayname" if filter.is_none() => match (op, value) {
            (OpKind::Remove, _) => Err(ScimError::invalid_value(
                "displayName is required and cannot be removed",
            )),
            (_, Some(v)) => {
                change.display_name = Some(input::display_name(&v)?);
                Ok(())
            }
            (_, None) => Err(missing_value()),
        },
        "externalid" if filter.is_none() => {
            change.external_id = Some(match (op, value) {
                (OpKind::Remove, _) => None,
                (_, Some(v)) => input::external_id(&v)?,
                (_, None) => return Err(missing_value()),
            });
            Ok(())
        }
        "members" => fold_members(&mut change.members, op, filter, value),
        "id" | "meta" => Err(ScimError::mutability(format!("'{path}' is read-only"))),
        _ => Err(ScimError::invalid_path(format!(
            "'{path}' is not an attribute of a Group that can be patched"
        ))),
    }
}

fn fold_members(
    members: &mut MemberChange,
    op: OpKind,
    filter: Option<&str>,
    value: Option<Value>,
) -> Result<(), ScimError> {
    match (op, filter) {
        (OpKind::Remove, Some(text)) => {
            members.remove(selected_ids(text)?);
            Ok(())
        }
        (_, Some(_)) => Err(ScimError::invalid_path(
            "a filter on members selects members to remove; add or replace members with a list of values",
        )),
        (OpKind::Remove, None) => {
            match value {
                None | Some(Value::Null) => members.set(Vec::new()),
                Some(v) => members.remove(listed(&v)?),
            }
            Ok(())
        }
        (OpKind::Add, None) => {
            members.add(listed(&value.unwrap_or(Value::Null))?);
            Ok(())
        }
        (OpKind::Replace, None) => {
            members.set(listed(&value.unwrap_or(Value::Null))?);
            Ok(())
        }
    }
}

/// A path-less `add` or `replace`: an object of attributes (Okta renames with
/// `{"id": "…", "displayName": "…"}`).
fn fold_pathless(
    change: &mut GroupChange,
    op: OpKind,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if op == OpKind::Remove {
        return Err(ScimError::no_target("remove needs a 'path'"));
    }
    let Some(Value::Object(attrs)) = value else {
        return Err(ScimError::invalid_value(
            "an operation without a path needs an object of attributes as its value",
        ));
    };
    for (key, v) in flatten_group_urn(attrs) {
        match key.to_ascii_lowercase().as_str() {
            "displayname" => change.display_name = Some(input::display_name(v)?),
            "externalid" => change.external_id = Some(input::external_id(v)?),
            "members" => {
                let ids = listed(v)?;
                if op == OpKind::Add {
                    change.members.add(ids);
                } else {
                    change.members.set(ids);
                }
            }
            "id" | "schemas" | "meta" => {}
            _ => {
                return Err(ScimError::invalid_path(format!(
                    "'{key}' is not an attribute of a Group that can be patched"
                )))
            }
        }
    }
    Ok(())
}

/// The attributes of a value object, with those under the Group URN key lifted to the top.
fn flatten_group_urn(attrs: &Map<String, Value>) -> Vec<(&str, &Value)> {
    let mut out = Vec::new();
    for (key, v) in attrs {
        match v.as_object() {
            Some(inner) if key.eq_ignore_ascii_case(GROUP_SCHEMA) => {
                out.extend(inner.iter().map(|(k, v)| (k.as_str(), v)));
            }
            _ => out.push((key.as_str(), v)),
        }
    }
    out
}

/// Splits `members[filter]` (optionally URN-qualified) into the name and the filter text.
fn split_path(path: &str) -> Result<(&str, Option<&str>), ScimError> {
    let unqualified = match path.get(..GROUP_SCHEMA.len()) {
        Some(head) if head.eq_ignore_ascii_case(GROUP_SCHEMA) => path
            .get(GROUP_SCHEMA.len()..)
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or_else(|| ScimError::invalid_path(format!("'{path}' names no attribute")))?,
        _ => path,
    };
    let Some(open) = unqualified.find('[') else {
        return Ok((unqualified, None));
    };
    let inner = unqualified[open + 1..].strip_suffix(']').ok_or_else(|| {
        ScimError::invalid_path(format!(
            "'{path}': a member filter must end the path (members[value eq \"id\"])"
        ))
    })?;
    Ok((&unqualified[..open], Some(inner)))
}

/// The member ids a `members[…]` filter selects: `value eq "id"`, or several joined by `or`.
fn selected_ids(text: &str) -> Result<Vec<String>, ScimError> {
    let members = GROUP
        .attr("members")
        .ok_or_else(|| ScimError::internal("the Group schema lacks members"))?;
    let parsed = filter::parse_element_filter(members, Home::Core, text)?;
    let mut ids = Vec::new();
    collect_ids(&parsed, &mut ids).then_some(ids).ok_or_else(|| {
        ScimError::invalid_filter(format!(
            "members[{text}]: select members by id, as members[value eq \"id\"] (several joined by or)"
        ))
    })
}

fn collect_ids(f: &Filter, ids: &mut Vec<String>) -> bool {
    match f {
        Filter::Or(a, b) => collect_ids(a, ids) && collect_ids(b, ids),
        Filter::Compare(path, CompareOp::Eq, Literal::String(id))
            if path.leaf().name == "value" =>
        {
            ids.push(id.clone());
            true
        }
        _ => false,
    }
}

/// The ids of a list of members; one member object alone counts as a list of one.
fn listed(value: &Value) -> Result<Vec<String>, ScimError> {
    Ok(input::members(value)?.unwrap_or_default())
}

fn missing_value() -> ScimError {
    ScimError::invalid_value("this operation needs a 'value'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::error::ScimType;
    use serde_json::json;

    fn patch(ops: Value) -> Result<GroupChange, ScimError> {
        parse(
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
        )
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn entra_rename_and_member_adds() {
        let c = patch(json!([
            {"op": "Replace", "path": "displayName", "value": "New"},
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "1"}, {"$ref": null, "value": "2"}]}
        ]))
        .unwrap();
        assert_eq!(c.display_name.as_deref(), Some("New"));
        assert_eq!(c.members.add, ids(&["1", "2"]));
        assert!(c.members.remove.is_empty() && c.members.replace.is_none());
    }

    #[test]
    fn both_entra_remove_dialects_remove_only_those_listed() {
        let default =
            patch(json!([{"op": "Remove", "path": "members", "value": [{"value": "1"}]}])).unwrap();
        let compliant =
            patch(json!([{"op": "remove", "path": "members[value eq \"1\"]"}])).unwrap();
        for c in [default, compliant] {
            assert_eq!(c.members.remove, ids(&["1"]));
            assert_eq!(c.members.replace, None);
        }
        let several =
            patch(json!([{"op": "remove", "path": "members[value eq \"1\" or value eq \"2\"]"}]))
                .unwrap();
        assert_eq!(several.members.remove, ids(&["1", "2"]));
    }

    #[test]
    fn okta_shapes() {
        let rename =
            patch(json!([{"op": "replace", "value": {"id": "9", "displayName": "Ops"}}])).unwrap();
        assert_eq!(rename.display_name.as_deref(), Some("Ops"));
        assert!(rename.members.is_empty());
        let mixed = patch(json!([
            {"op": "remove", "path": "members[value eq \"1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "2", "display": "B"}]}
        ]))
        .unwrap();
        assert_eq!(
            (mixed.members.remove, mixed.members.add),
            (ids(&["1"]), ids(&["2"]))
        );
        let full = patch(json!([{"op": "replace", "path": "members", "value": [{"value": "3"}]}]))
            .unwrap();
        assert_eq!(full.members.replace, Some(ids(&["3"])));
    }

    #[test]
    fn later_operations_win_over_earlier_ones() {
        let c = patch(json!([
            {"op": "add", "path": "members", "value": [{"value": "1"}]},
            {"op": "remove", "path": "members", "value": [{"value": "1"}, {"value": "2"}]},
            {"op": "add", "path": "members", "value": [{"value": "2"}]}
        ]))
        .unwrap();
        assert_eq!(
            (c.members.add, c.members.remove),
            (ids(&["2"]), ids(&["1"]))
        );
        let c = patch(json!([
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "members", "value": [{"value": "5"}]}
        ]))
        .unwrap();
        assert_eq!(c.members.replace, Some(ids(&["5"])));
        assert_eq!(c.members.size(), 1);
    }

    #[test]
    fn external_id_and_urn_qualified_paths() {
        let c = patch(json!([
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:displayName", "value": "X"},
            {"op": "remove", "path": "externalId"}
        ]))
        .unwrap();
        assert_eq!(c.display_name.as_deref(), Some("X"));
        assert_eq!(c.external_id, Some(None));
    }

    #[test]
    fn refusals_name_the_rfc_type() {
        for (ops, kind) in [
            (
                json!([{"op": "remove", "path": "displayName"}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "replace", "path": "owner", "value": "x"}]),
                ScimType::InvalidPath,
            ),
            (json!([{"op": "remove"}]), ScimType::NoTarget),
            (
                json!([{"op": "remove", "path": "members[display eq \"A\"]"}]),
                ScimType::InvalidFilter,
            ),
            (
                json!([{"op": "add", "path": "members[value eq \"1\"]", "value": {}}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "add", "path": "members", "value": [{"value": "1", "type": "Group"}]}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "replace", "path": "id", "value": "2"}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "value": "plain"}]),
                ScimType::InvalidValue,
            ),
        ] {
            let e = patch(ops.clone()).unwrap_err();
            assert_eq!((e.status, e.scim_type), (400, Some(kind)), "{ops}");
            assert!(e.detail.starts_with("Operations[0]"), "{}", e.detail);
        }
    }
}
