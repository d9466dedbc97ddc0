//! Pure translation of one user between its SCIM form and the backend's native JSON, driven by the
//! field mappings of [`UserApi`]. What no field maps stays in the gateway's store ("shadow") and
//! is merged back on read, so every attribute round-trips.

use super::spec::{FieldMap, NativeType, ScimTarget, Transform, UserApi, WriteOn};
use crate::scim::error::ScimError;
use crate::scim::schema::{AttrDef, AttrType, Home, ENTERPRISE_SCHEMA};
use serde_json::{Map, Value};

/// Which write a native body is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A new user: unset fields are left out.
    Create,
    /// A replacement: unset fields are sent as `null` (cleared).
    Update,
}

/// Builds the native user object for a write of the SCIM `resource`.
pub fn to_native(api: &UserApi, resource: &Value, write: Write) -> Result<Value, ScimError> {
    let mut native = Value::Object(Map::new());
    for field in &api.fields {
        let writes = match field.on {
            WriteOn::Always => true,
            WriteOn::Create => write == Write::Create,
            WriteOn::Never => false,
        };
        if !writes {
            continue;
        }
        if let Some(v) = native_value(field, resource, write)? {
            set_path(&mut native, &field.native, v);
        }
    }
    Ok(native)
}

fn native_value(
    field: &FieldMap,
    resource: &Value,
    write: Write,
) -> Result<Option<Value>, ScimError> {
    let Some(target) = &field.scim else {
        return Ok(field.constant.clone());
    };
    let scim = get_target(resource, target)
        .cloned()
        .or_else(|| field.default.clone());
    match (scim, &field.transform) {
        (Some(v), t) => encode(t, target, &v).map(Some),
        (None, Transform::BoolEnum { .. }) => Ok(None),
        (None, Transform::Direct(_)) => Ok((write == Write::Update).then_some(Value::Null)),
    }
}

fn encode(t: &Transform, target: &ScimTarget, v: &Value) -> Result<Value, ScimError> {
    let name = target.attr.canonical();
    match t {
        Transform::BoolEnum {
            when_true,
            when_false,
            ..
        } => match v.as_bool() {
            Some(true) => Ok(when_true.clone()),
            Some(false) => Ok(when_false.clone()),
            None => Err(ScimError::invalid_value(format!(
                "{name} must be a boolean"
            ))),
        },
        Transform::Direct(ty) => convert(*ty, v).ok_or_else(|| {
            ScimError::invalid_value(format!("{name}: the backend cannot store {v} as {ty:?}"))
        }),
    }
}

fn convert(ty: NativeType, v: &Value) -> Option<Value> {
    match (ty, v) {
        (NativeType::Any, _) => Some(v.clone()),
        (NativeType::String, Value::String(_)) => Some(v.clone()),
        (NativeType::String, Value::Number(n)) => Some(Value::String(n.to_string())),
        (NativeType::String, Value::Bool(b)) => Some(Value::String(b.to_string())),
        (NativeType::Integer, Value::Number(n)) if n.is_i64() => Some(v.clone()),
        (NativeType::Integer, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        (NativeType::Boolean, Value::Bool(_)) => Some(v.clone()),
        (NativeType::Boolean, Value::String(s)) => s.parse::<bool>().ok().map(Value::Bool),
        _ => None,
    }
}

/// Builds the SCIM view of a native user: `shadow` (what SCIM last wrote) with every mapped
/// attribute replaced by the backend's current value. A mapped attribute SCIM left unset and
/// whose backend value is the field's `default` stays unset, so it round-trips. `id` and `meta`
/// are added by the caller.
pub fn from_native(api: &UserApi, native: &Value, shadow: Option<&Value>) -> Value {
    let mut resource = shadow.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    for field in &api.fields {
        let Some(target) = &field.scim else { continue };
        let value = get_path(native, &field.native)
            .and_then(|v| decode(&field.transform, target.attr.leaf(), v));
        let unset_default =
            shadow.is_some_and(|s| get_target(s, target).is_none()) && value == field.default;
        set_target(
            &mut resource,
            target,
            if unset_default { None } else { value },
        );
    }
    resource
}

fn decode(t: &Transform, def: &AttrDef, v: &Value) -> Option<Value> {
    if v.is_null() {
        return None;
    }
    match t {
        Transform::BoolEnum { read, .. } => read
            .iter()
            .find(|(native, _)| json_eq_ci(native, v))
            .map(|(_, b)| Value::Bool(*b)),
        Transform::Direct(_) => match (def.ty, v) {
            (AttrType::Boolean, Value::String(s)) => {
                s.to_ascii_lowercase().parse().ok().map(Value::Bool)
            }
            (AttrType::String | AttrType::Reference, Value::Number(n)) => {
                Some(Value::String(n.to_string()))
            }
            (_, Value::String(s)) if s.is_empty() => None,
            _ => Some(v.clone()),
        },
    }
}

fn json_eq_ci(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}

/// The native id of a native user, as a string.
pub fn native_id(api: &UserApi, native: &Value) -> Option<String> {
    match get_path(native, &api.id_field)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// True when no field maps the top-level attribute `attr`: its value lives only in the store.
pub fn store_only(api: &UserApi, home: Home, attr: &AttrDef) -> bool {
    !api.fields.iter().any(|f| {
        f.scim
            .as_ref()
            .is_some_and(|t| t.attr.home == home && std::ptr::eq(t.attr.attr, attr))
    })
}

/// The object of `resource` that holds attributes of `home`.
fn home_object(resource: &Value, home: Home) -> Option<&Map<String, Value>> {
    match home {
        Home::Core => resource.as_object(),
        Home::Enterprise => resource.get(ENTERPRISE_SCHEMA)?.as_object(),
    }
}

fn home_object_mut(resource: &mut Value, home: Home) -> Option<&mut Map<String, Value>> {
    let root = resource.as_object_mut()?;
    match home {
        Home::Core => Some(root),
        Home::Enterprise => root
            .entry(ENTERPRISE_SCHEMA)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut(),
    }
}

/// The SCIM value at a mapping target.
pub fn get_target<'a>(resource: &'a Value, target: &ScimTarget) -> Option<&'a Value> {
    let attr = home_object(resource, target.attr.home)?.get(target.attr.attr.name)?;
    let holder = match &target.element {
        Some(pins) => attr.as_array()?.iter().find(|e| pinned(e, pins))?,
        None => attr,
    };
    let v = match target.attr.sub {
        Some(sub) => holder.get(sub.name)?,
        None => holder,
    };
    (!v.is_null()).then_some(v)
}

fn pinned(element: &Value, pins: &[(&'static str, Value)]) -> bool {
    pins.iter()
        .all(|(k, v)| element.get(*k).is_some_and(|e| json_eq_ci(e, v)))
}

/// Sets (or, with `None`, removes) the SCIM value at a mapping target.
pub fn set_target(resource: &mut Value, target: &ScimTarget, value: Option<Value>) {
    let name = target.attr.attr.name;
    let Some(home) = home_object_mut(resource, target.attr.home) else {
        return;
    };
    match (&target.element, target.attr.sub) {
        (Some(pins), Some(sub)) => set_element(home, name, pins, sub.name, value),
        (None, Some(sub)) => set_sub(home, name, sub.name, value),
        (_, None) => set_key(home, name, value),
    }
    if target.attr.home == Home::Enterprise {
        drop_if_empty(resource, ENTERPRISE_SCHEMA);
    }
}

fn set_key(obj: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            obj.insert(key.to_string(), v);
        }
        None => {
            obj.remove(key);
        }
    }
}

fn set_sub(obj: &mut Map<String, Value>, name: &str, sub: &str, value: Option<Value>) {
    let entry = obj
        .entry(name.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(inner) = entry.as_object_mut() {
        set_key(inner, sub, value);
        if inner.is_empty() {
            obj.remove(name);
        }
    }
}

fn set_element(
    obj: &mut Map<String, Value>,
    name: &str,
    pins: &[(&'static str, Value)],
    sub: &str,
    value: Option<Value>,
) {
    let entry = obj
        .entry(name.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(list) = entry.as_array_mut() else {
        return;
    };
    let found = list.iter().position(|e| pinned(e, pins));
    match (found, value) {
        (Some(i), Some(v)) => {
            if let Some(e) = list[i].as_object_mut() {
                e.insert(sub.to_string(), v);
            }
        }
        (None, Some(v)) => {
            let mut e: Map<String, Value> = pins
                .iter()
                .map(|(k, pv)| (k.to_string(), pv.clone()))
                .collect();
            e.insert(sub.to_string(), v);
            list.push(Value::Object(e));
        }
        (Some(i), None) => {
            if let Some(e) = list[i].as_object_mut() {
                e.remove(sub);
            }
            let only_pins = list[i]
                .as_object()
                .is_some_and(|e| e.keys().all(|k| pins.iter().any(|(p, _)| p == k)));
            if only_pins {
                list.remove(i);
            }
        }
        (None, None) => {}
    }
    if list.is_empty() {
        obj.remove(name);
    }
}

fn drop_if_empty(resource: &mut Value, key: &str) {
    if let Some(root) = resource.as_object_mut() {
        if root
            .get(key)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            root.remove(key);
        }
    }
}

/// The native paths an update writes (every field written on update).
pub fn update_paths(api: &UserApi) -> Vec<&[String]> {
    api.fields
        .iter()
        .filter(|f| f.on == WriteOn::Always)
        .map(|f| f.native.as_slice())
        .collect()
}

/// The whole native object to write back: `current` exactly as the backend returned it, with the
/// value at each of `paths` taken from `written` where `written` holds one. Every other field
/// (nested objects, arrays, unknown keys, number types, key order) stays as read.
pub fn overlay(current: &Value, written: &Value, paths: &[&[String]]) -> Value {
    let mut out = current.clone();
    for path in paths {
        if let Some(v) = get_path(written, path) {
            set_path(&mut out, path, v.clone());
        }
    }
    out
}

/// The value at a dotted native path.
pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

/// Sets the value at a dotted native path, creating objects on the way.
pub fn set_path(v: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for key in parents {
        let Some(obj) = cur.as_object_mut() else {
            return;
        };
        cur = obj
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.insert(last.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::spec::{FieldMap, Transform};
    use crate::config::validate::parse_scim_target;
    use serde_json::json;

    fn demo_api() -> UserApi {
        let text = include_str!("../../conf/demo.toml");
        crate::config::from_str(text, std::path::Path::new("demo.toml"))
            .expect("demo config")
            .users
    }

    fn field(scim: &str, native: &str) -> FieldMap {
        FieldMap {
            scim: Some(parse_scim_target(scim).unwrap()),
            native: native.split('.').map(str::to_string).collect(),
            transform: Transform::Direct(NativeType::Any),
            constant: None,
            default: None,
            on: WriteOn::Always,
        }
    }

    #[test]
    fn to_native_maps_transforms_constants_and_defaults() {
        let api = demo_api();
        let user = json!({"userName": "a@b.c", "name": {"givenName": "A", "familyName": "B"}, "active": false});
        let native = to_native(&api, &user, Write::Create).unwrap();
        assert_eq!(
            native,
            json!({"email": "a@b.c", "first_name": "A", "last_name": "B", "status": "suspended", "role": "member"})
        );
        let native = to_native(&api, &json!({"userName": "a@b.c"}), Write::Update).unwrap();
        assert_eq!(
            native["status"], "active",
            "default applies when SCIM leaves active unset"
        );
        assert_eq!(
            native["first_name"],
            Value::Null,
            "unset fields are cleared on update"
        );
        assert!(
            native.get("role").is_none(),
            "on = create fields are not updated"
        );
    }

    #[test]
    fn from_native_merges_backend_truth_over_the_shadow() {
        let api = demo_api();
        let shadow = json!({"userName": "old@b.c", "externalId": "e1", "name": {"givenName": "Old", "formatted": "Old B"}});
        let native = json!({"id": 7, "email": "new@b.c", "first_name": "New", "last_name": null, "display_name": "",
                            "status": "SUSPENDED", "title": null});
        let scim = from_native(&api, &native, Some(&shadow));
        assert_eq!(
            scim,
            json!({"userName": "new@b.c", "externalId": "e1", "name": {"givenName": "New", "formatted": "Old B"}, "active": false})
        );
        assert_eq!(native_id(&api, &native).as_deref(), Some("7"));
    }

    #[test]
    fn unset_attribute_with_default_value_stays_unset() {
        let api = demo_api();
        let native = json!({"id": 1, "email": "a@b.c", "status": "active"});
        let with_shadow = from_native(&api, &native, Some(&json!({"userName": "a@b.c"})));
        assert!(with_shadow.get("active").is_none());
        let never_written = from_native(&api, &native, None);
        assert_eq!(never_written["active"], true);
    }

    #[test]
    fn element_targets_pin_one_element() {
        let f = field("phoneNumbers[type eq \"work\"].value", "phone");
        let api = UserApi {
            fields: vec![f],
            ..demo_api()
        };
        let user = json!({"userName": "u", "phoneNumbers": [{"type": "mobile", "value": "1"}, {"type": "work", "value": "2"}]});
        assert_eq!(
            to_native(&api, &user, Write::Create).unwrap(),
            json!({"phone": "2"})
        );
        let back = from_native(&api, &json!({"phone": "3"}), Some(&user));
        assert_eq!(
            back["phoneNumbers"],
            json!([{"type": "mobile", "value": "1"}, {"type": "work", "value": "3"}])
        );
        let created = from_native(&api, &json!({"phone": "4"}), None);
        assert_eq!(
            created["phoneNumbers"],
            json!([{"type": "work", "value": "4"}])
        );
        let cleared = from_native(&api, &json!({"phone": null}), Some(&user));
        assert_eq!(
            cleared["phoneNumbers"],
            json!([{"type": "mobile", "value": "1"}])
        );
    }

    #[test]
    fn nested_native_paths_and_enterprise_targets() {
        let f = field(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "org.dept",
        );
        let api = UserApi {
            fields: vec![f],
            ..demo_api()
        };
        let user = json!({ENTERPRISE_SCHEMA: {"department": "Ops"}});
        assert_eq!(
            to_native(&api, &user, Write::Create).unwrap(),
            json!({"org": {"dept": "Ops"}})
        );
        let back = from_native(&api, &json!({"org": {"dept": null}}), Some(&user));
        assert!(
            back.get(ENTERPRISE_SCHEMA).is_none(),
            "an emptied extension disappears: {back}"
        );
    }

    #[test]
    fn overlay_keeps_every_unmapped_field_exactly() {
        let api = demo_api();
        let text = r#"{"id":7,"email":"old@b.c","first_name":"Old","prefs":{"theme":"dark","tags":["a",1,2.50,true,null]},"score":1e3,"admin":true,"plan":null,"role":"owner","zz":[{"k":{}}]}"#;
        let current: Value = serde_json::from_str(text).unwrap();
        let written = to_native(
            &api,
            &json!({"userName": "new@b.c", "name": {"givenName": "New"}}),
            Write::Update,
        )
        .unwrap();
        let out = overlay(&current, &written, &update_paths(&api));
        assert_eq!(out["email"], "new@b.c");
        assert_eq!(out["first_name"], "New");
        assert_eq!(
            out["last_name"],
            Value::Null,
            "an unset mapped field is cleared"
        );
        assert_eq!(
            out["role"], "owner",
            "on = create fields are not overwritten on update"
        );
        let mut unmapped = out.clone();
        let mut expected = current.clone();
        for path in update_paths(&api) {
            for v in [&mut unmapped, &mut expected] {
                v.as_object_mut().unwrap().shift_remove(&path[0]);
            }
        }
        assert_eq!(
            unmapped.to_string(),
            expected.to_string(),
            "byte for byte, in order"
        );
        assert!(out["score"].is_f64(), "a float stays a float");
        assert_eq!(
            out["prefs"].to_string(),
            r#"{"theme":"dark","tags":["a",1,2.5,true,null]}"#
        );
    }

    #[test]
    fn overlay_creates_nested_paths_through_null() {
        let current = json!({"org": null, "keep": 1});
        let path = ["org".to_string(), "dept".to_string()];
        let out = overlay(&current, &json!({"org": {"dept": "Ops"}}), &[&path[..]]);
        assert_eq!(out, json!({"org": {"dept": "Ops"}, "keep": 1}));
        let untouched = overlay(&current, &json!({}), &[&path[..]]);
        assert_eq!(
            untouched, current,
            "a path the write does not hold is left alone"
        );
    }

    #[test]
    fn type_conversions_reject_what_the_backend_cannot_store() {
        let mut f = field("title", "level");
        f.transform = Transform::Direct(NativeType::Integer);
        let api = UserApi {
            fields: vec![f],
            ..demo_api()
        };
        assert_eq!(
            to_native(&api, &json!({"title": "42"}), Write::Create).unwrap(),
            json!({"level": 42})
        );
        let err = to_native(&api, &json!({"title": "forty"}), Write::Create).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(
            from_native(&api, &json!({"level": 42}), None)["title"],
            "42"
        );
    }
}
