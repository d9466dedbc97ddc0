//! A SCIM multi-valued attribute (`emails`, `phoneNumbers`, `addresses`, ...) stored as a native
//! list: of objects with one native key per mapped sub-attribute, or of scalars (each element's
//! `value`). `primary` is a native flag, or the first native element.
//!
//! Writes go over the backend's current list: an element is matched to the native element it
//! shares the most mapped values with, and only its mapped keys change (unmapped keys and key
//! order stay); a native element that matches nothing SCIM writes now and nothing SCIM wrote
//! before (or, for a PATCH, saw) was added by the backend on its own and stays where it is. Reads show an element
//! exactly as SCIM wrote it while the backend holds it as it was written, so sub-attributes
//! with no native key (`display`) round-trip through the store.

use super::convert::json_eq_ci;
use super::paths::{
    get_path, home_object, home_object_mut, pinned, remove_path, set_key, set_path,
};
use super::spec::{FieldMap, ListMap, ScimTarget};
use super::write::{Base, Write};
use crate::scim::error::ScimError;
use serde_json::{Map, Value};

/// The native list for a write of `resource`, merged over `base`'s list when there is one;
/// `None` on create when SCIM has no element for it.
pub fn write(
    field: &FieldMap,
    list: &ListMap,
    target: &ScimTarget,
    resource: &Value,
    write: Write,
    base: Option<Base>,
) -> Result<Option<Value>, ScimError> {
    let new = encode_all(field, list, target, resource)?;
    let current = base
        .and_then(|b| get_path(b.native, &field.native))
        .and_then(Value::as_array);
    let out = match current {
        Some(current) => {
            let known = base
                .into_iter()
                .flat_map(|b| b.shadow.into_iter().chain(b.seen));
            let previous: Vec<Value> = known
                .filter_map(|r| encode_all(field, list, target, r).ok())
                .flatten()
                .collect();
            merge(list, new, current, &previous)
        }
        None => new,
    };
    if out.is_empty() && write == Write::Create {
        return Ok(None);
    }
    Ok(Some(Value::Array(out)))
}

/// Replaces the elements of `resource` this list holds with the SCIM view of `native`'s list.
pub fn read(
    field: &FieldMap,
    list: &ListMap,
    target: &ScimTarget,
    native: &Value,
    shadow: Option<&Value>,
    resource: &mut Value,
) {
    let held: Vec<&Value> = get_path(native, &field.native)
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let written = shadow.map(|s| elements(s, target)).unwrap_or_default();
    let view = scim_view(field, list, target, &held, &written);
    set_elements(resource, target, view);
}

/// The elements of `resource` a target covers (all, or those matching its pins), in order.
fn elements<'a>(resource: &'a Value, target: &ScimTarget) -> Vec<&'a Value> {
    let pins = target.element.as_deref().unwrap_or(&[]);
    home_object(resource, target.attr.home)
        .and_then(|home| home.get(target.attr.attr.name))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter(|e| pinned(e, pins)).collect())
        .unwrap_or_default()
}

/// The native elements of every SCIM element of `resource` this list holds, in write order
/// (the primary element first when the list says so).
fn encode_all(
    field: &FieldMap,
    list: &ListMap,
    target: &ScimTarget,
    resource: &Value,
) -> Result<Vec<Value>, ScimError> {
    let mut scim = elements(resource, target);
    if list.primary_first {
        scim.sort_by_key(|e| !is_primary(e));
    }
    let mut out = Vec::with_capacity(scim.len());
    for e in scim {
        if let Some(n) = encode(field, list, target, e)? {
            out.push(n);
        }
    }
    Ok(out)
}

fn is_primary(e: &Value) -> bool {
    e.get("primary").and_then(Value::as_bool) == Some(true)
}

/// One SCIM element as a native element; `None` when it holds nothing the list stores.
fn encode(
    field: &FieldMap,
    list: &ListMap,
    target: &ScimTarget,
    e: &Value,
) -> Result<Option<Value>, ScimError> {
    let label = target.attr.canonical();
    let present = |name: &str| e.get(name).filter(|v| !v.is_null());
    if list.subs.is_empty() {
        return present("value")
            .map(|v| field.convert.encode(&format!("{label}.value"), v))
            .transpose();
    }
    let mut out = Value::Object(Map::new());
    let mut holds_data = false;
    for sub in &list.subs {
        let name = sub.sub.name;
        let value = match present(name) {
            Some(v) => v.clone(),
            None if name == "primary" => Value::Bool(false),
            None => continue,
        };
        holds_data |= name != "primary";
        let native = sub.convert.encode(&format!("{label}.{name}"), &value)?;
        set_path(&mut out, &sub.native, native);
    }
    Ok(holds_data.then_some(out))
}

/// `n` reduced to the keys the list maps (the element itself for a list of scalars).
fn project(list: &ListMap, n: &Value) -> Value {
    if list.subs.is_empty() {
        return n.clone();
    }
    let mut out = Value::Object(Map::new());
    for sub in &list.subs {
        if let Some(v) = get_path(n, &sub.native) {
            set_path(&mut out, &sub.native, v.clone());
        }
    }
    out
}

/// How many mapped values (other than `primary`) two native elements share, ignoring case.
fn shared(list: &ListMap, a: &Value, b: &Value) -> usize {
    if list.subs.is_empty() {
        return usize::from(json_eq_ci(a, b));
    }
    list.subs
        .iter()
        .filter(|s| s.sub.name != "primary")
        .filter(|s| match (get_path(a, &s.native), get_path(b, &s.native)) {
            (Some(x), Some(y)) => !x.is_null() && json_eq_ci(x, y),
            _ => false,
        })
        .count()
}

/// True when two native elements hold the same mapped values (other than `primary`).
fn same(list: &ListMap, a: &Value, b: &Value) -> bool {
    let mut x = project(list, a);
    let mut y = project(list, b);
    for sub in list.subs.iter().filter(|s| s.sub.name == "primary") {
        remove_path(&mut x, &sub.native);
        remove_path(&mut y, &sub.native);
    }
    x == y
}

/// The list to write: `new` over `current` (each new element on the current element it shares
/// most with), plus the current elements the backend added on its own (in neither `new` nor
/// `previous`, what SCIM wrote before), each at its own position.
fn merge(list: &ListMap, new: Vec<Value>, current: &[Value], previous: &[Value]) -> Vec<Value> {
    let mut used = vec![false; current.len()];
    let mut out = Vec::with_capacity(new.len());
    for n in new {
        let best = (0..current.len())
            .filter(|i| !used[*i])
            .map(|i| (shared(list, &current[i], &n), i))
            .filter(|(score, _)| *score > 0)
            .max_by(|(a, i), (b, j)| a.cmp(b).then(j.cmp(i)));
        match best {
            Some((_, i)) => {
                used[i] = true;
                out.push(overlay(list, &current[i], n));
            }
            None => out.push(n),
        }
    }
    for (i, c) in current.iter().enumerate() {
        if !used[i] && !previous.iter().any(|p| same(list, p, c)) {
            out.insert(i.min(out.len()), c.clone());
        }
    }
    out
}

/// `current` with the mapped keys of `new` (a mapped key `new` lacks is removed).
fn overlay(list: &ListMap, current: &Value, new: Value) -> Value {
    if list.subs.is_empty() || !current.is_object() {
        return new;
    }
    let mut out = current.clone();
    for sub in &list.subs {
        match get_path(&new, &sub.native) {
            Some(v) => set_path(&mut out, &sub.native, v.clone()),
            None => remove_path(&mut out, &sub.native),
        }
    }
    out
}

/// The SCIM elements of the native list `held`: as SCIM wrote them (`written`) when the backend
/// holds the whole list as written, else element by element, each as written when the backend
/// holds it unchanged.
fn scim_view(
    field: &FieldMap,
    list: &ListMap,
    target: &ScimTarget,
    held: &[&Value],
    written: &[&Value],
) -> Vec<Value> {
    let projected: Vec<Value> = held.iter().map(|n| project(list, n)).collect();
    let decoder = Decoder {
        field,
        list,
        target,
    };
    if let Ok(encoded) = encode_all(field, list, target, &as_resource(target, written)) {
        if encoded == projected {
            return written.iter().map(|w| (*w).clone()).collect();
        }
    }
    let encoded: Vec<Option<Value>> = written
        .iter()
        .map(|w| encode(field, list, target, w).ok().flatten())
        .collect();
    let mut used = vec![false; written.len()];
    let mut out = Vec::new();
    for (i, p) in projected.iter().enumerate() {
        let unchanged = (0..written.len()).find(|j| !used[*j] && encoded[*j].as_ref() == Some(p));
        match unchanged {
            Some(j) => {
                used[j] = true;
                out.push(written[j].clone());
            }
            None => out.extend(decoder.decode(held[i], i == 0)),
        }
    }
    out
}

/// A stand-in resource holding just `elements` under the target's attribute.
fn as_resource(target: &ScimTarget, elements: &[&Value]) -> Value {
    let mut resource = Value::Object(Map::new());
    let list: Vec<Value> = elements.iter().map(|e| (*e).clone()).collect();
    if let Some(home) = home_object_mut(&mut resource, target.attr.home) {
        home.insert(target.attr.attr.name.to_string(), Value::Array(list));
    }
    resource
}

/// What a read needs to decode one native element.
struct Decoder<'a> {
    field: &'a FieldMap,
    list: &'a ListMap,
    target: &'a ScimTarget,
}

impl Decoder<'_> {
    /// One native element as a SCIM element, with the target's pins; `None` when it holds no
    /// value SCIM can show.
    fn decode(&self, n: &Value, first: bool) -> Option<Value> {
        let attr = self.target.attr.attr;
        let mut out = Map::new();
        if self.list.subs.is_empty() {
            let value = self.field.convert.decode(attr.sub("value")?, n)?;
            out.insert("value".into(), value);
        }
        for sub in &self.list.subs {
            let Some(v) = get_path(n, &sub.native).and_then(|v| sub.convert.decode(sub.sub, v))
            else {
                continue;
            };
            if sub.sub.name != "primary" || v == Value::Bool(true) {
                out.insert(sub.sub.name.to_string(), v);
            }
        }
        if !out.keys().any(|k| k != "primary") {
            return None;
        }
        if self.list.primary_first && first {
            out.entry("primary").or_insert(Value::Bool(true));
        }
        for (k, v) in self.target.element.as_deref().unwrap_or(&[]) {
            out.entry(k.to_string()).or_insert_with(|| v.clone());
        }
        Some(Value::Object(out))
    }
}

/// Puts `view` in place of the elements of `resource` the target covers (where the first of
/// them was, else at the end); an attribute left empty is removed.
fn set_elements(resource: &mut Value, target: &ScimTarget, view: Vec<Value>) {
    let name = target.attr.attr.name;
    let Some(home) = home_object_mut(resource, target.attr.home) else {
        return;
    };
    let pins = target.element.as_deref().unwrap_or(&[]);
    let existing = home
        .get(name)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::with_capacity(existing.len() + view.len());
    let mut at = None;
    for e in existing {
        if pinned(&e, pins) {
            at.get_or_insert(out.len());
        } else {
            out.push(e);
        }
    }
    let at = at.unwrap_or(out.len());
    out.splice(at..at, view);
    set_key(home, name, (!out.is_empty()).then_some(Value::Array(out)));
}

#[cfg(test)]
mod tests {
    use crate::backend::mapping::tests::api_with_fields;
    use crate::backend::mapping::{from_native, to_native, Base, Write};
    use crate::backend::spec::UserApi;
    use serde_json::{json, Value};

    const CONTACTS: &str = r#"
[[users.fields]]
scim = "userName"
native = "login"

[[users.fields]]
scim = "emails"
native = "contact.emails"

  [[users.fields.elements]]
  scim = "value"
  native = "address"

  [[users.fields.elements]]
  scim = "type"
  native = "kind"
  map = { WORK = "work", HOME = "home", OTHER = "other" }
  otherwise = "OTHER"

  [[users.fields.elements]]
  scim = "primary"
  native = "is_primary"

[[users.fields]]
scim = "phoneNumbers"
native = "phones"
primary = "first"

  [[users.fields.elements]]
  scim = "value"
  native = "number"

  [[users.fields.elements]]
  scim = "type"
  native = "label"
  map = { mobile = "mobile", work = "work" }

[[users.fields]]
scim = "ims[type eq \"xmpp\"]"
native = "aliases"
"#;

    fn api() -> UserApi {
        api_with_fields(CONTACTS)
    }

    fn ann() -> Value {
        json!({"userName": "ann",
            "emails": [{"value": "ann@work.test", "type": "work", "primary": true, "display": "Ann at work"},
                       {"value": "ann@home.test", "type": "home"}],
            "phoneNumbers": [{"value": "1", "type": "work"}, {"value": "2", "type": "mobile", "primary": true}],
            "ims": [{"value": "ann@chat", "type": "aim"}, {"value": "ann@jabber", "type": "xmpp"}]})
    }

    #[test]
    fn lists_of_objects_and_scalars_are_written_with_native_keys_and_words() {
        let native = to_native(&api(), &ann(), Write::Create, None).unwrap();
        assert_eq!(
            native["contact"]["emails"],
            json!([{"address": "ann@work.test", "kind": "WORK", "is_primary": true},
                   {"address": "ann@home.test", "kind": "HOME", "is_primary": false}])
        );
        assert_eq!(
            native["phones"],
            json!([{"number": "2", "label": "mobile"}, {"number": "1", "label": "work"}]),
            "the primary phone is the first"
        );
        assert_eq!(
            native["aliases"],
            json!(["ann@jabber"]),
            "only the pinned elements"
        );
        let back = from_native(&api(), &native, Some(&ann()));
        assert_eq!(
            back,
            ann(),
            "read back exactly, `display` and order included"
        );
    }

    #[test]
    fn a_backend_only_list_reads_with_pins_words_and_the_first_as_primary() {
        let native = json!({"login": "bo", "contact": {"emails": [{"address": "b@x", "kind": "home", "is_primary": false},
                                                                 {"address": "c@x", "kind": "FAX", "is_primary": true}]},
                            "phones": [{"number": "9", "label": "work"}, {"number": "8"}],
                            "aliases": ["bo@jabber"]});
        assert_eq!(
            from_native(&api(), &native, None),
            json!({"userName": "bo",
                "emails": [{"value": "b@x", "type": "home"}, {"value": "c@x", "type": "other", "primary": true}],
                "phoneNumbers": [{"value": "9", "type": "work", "primary": true}, {"value": "8"}],
                "ims": [{"value": "bo@jabber", "type": "xmpp"}]})
        );
    }

    #[test]
    fn an_update_keeps_order_unmapped_keys_and_elements_the_backend_added() {
        let api = api();
        let created = to_native(&api, &ann(), Write::Create, None).unwrap();
        // The backend stores extra keys in each element and adds an element of its own.
        let current = json!({"login": "ann", "contact": {"emails": [
            {"id": 11, "address": "ann@work.test", "kind": "WORK", "is_primary": true, "verified": true},
            {"id": 12, "address": "sso@corp.test", "kind": "OTHER", "is_primary": false, "source": "sso"},
            {"id": 13, "address": "ann@home.test", "kind": "HOME", "is_primary": false}]},
            "phones": created["phones"].clone(), "aliases": created["aliases"].clone()});
        let mut changed = ann();
        changed["emails"] = json!([{"value": "ann@work.test", "type": "work", "primary": true},
                                   {"value": "ann@new-home.test", "type": "home"}]);
        let shadow = ann();
        let base = Base {
            native: &current,
            shadow: Some(&shadow),
            seen: None,
        };
        let native = to_native(&api, &changed, Write::Update, Some(base)).unwrap();
        assert_eq!(
            native["contact"]["emails"].to_string(),
            json!([{"id": 11, "address": "ann@work.test", "kind": "WORK", "is_primary": true, "verified": true},
                   {"id": 12, "address": "sso@corp.test", "kind": "OTHER", "is_primary": false, "source": "sso"},
                   {"id": 13, "address": "ann@new-home.test", "kind": "HOME", "is_primary": false}]).to_string(),
            "keys and order kept; the backend's own element survives"
        );
        // An element SCIM wrote before and leaves out now is removed.
        changed["emails"] = json!([{"value": "ann@work.test", "type": "work", "primary": true}]);
        let native = to_native(&api, &changed, Write::Update, Some(base)).unwrap();
        let kept: Vec<&str> = native["contact"]["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["address"].as_str().unwrap())
            .collect();
        assert_eq!(kept, ["ann@work.test", "sso@corp.test"]);
        // A PATCH was applied to the view that showed the backend's element: leaving it out
        // removes it.
        let view = from_native(&api, &current, Some(&ann()));
        let patched = Base {
            seen: Some(&view),
            ..base
        };
        let native = to_native(&api, &changed, Write::Update, Some(patched)).unwrap();
        assert_eq!(native["contact"]["emails"].as_array().unwrap().len(), 1);
        // The SCIM view shows the backend's element among what SCIM wrote.
        let view = from_native(&api, &current, Some(&ann()));
        assert_eq!(
            view["emails"][1],
            json!({"value": "sso@corp.test", "type": "other"})
        );
        assert_eq!(
            view["emails"][0]["display"], "Ann at work",
            "unchanged elements read as written"
        );
    }

    #[test]
    fn an_element_value_outside_its_map_is_refused() {
        let mut user = ann();
        user["phoneNumbers"] = json!([{"value": "3", "type": "pager"}]);
        let err = to_native(&api(), &user, Write::Create, None).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.detail.starts_with("phoneNumbers.type: \"pager\""),
            "{}",
            err.detail
        );
    }
}
