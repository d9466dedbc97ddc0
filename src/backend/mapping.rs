//! Pure translation of one user between its SCIM form and the backend's native JSON, driven by the
//! field mappings of [`UserApi`]. What no field maps stays in the gateway's store ("shadow") and
//! is merged back on read, so every attribute round-trips.

use super::native_list;
use super::paths::{get_path, set_path};
use super::paths::{home_object, home_object_mut, pinned, set_key};
use super::spec::{FieldMap, Piece, ScimTarget, Transform, UserApi, WriteOn};
pub use super::write::{Base, Write};
use crate::scim::discovery::Restrictions;
use crate::scim::error::ScimError;
use crate::scim::schema::{AttrDef, Home, ENTERPRISE_SCHEMA};
use serde_json::{Map, Value};

/// Builds the native user object for a write of the SCIM `resource`, over `base` when the
/// backend's current user is known.
pub fn to_native(
    api: &UserApi,
    resource: &Value,
    write: Write,
    base: Option<Base>,
) -> Result<Value, ScimError> {
    fields_to_native(&api.fields, resource, write, base)
}

/// [`to_native`] over any list of field mappings (a group's, whose SCIM side is the Group
/// schema).
pub fn fields_to_native(
    fields: &[FieldMap],
    resource: &Value,
    write: Write,
    base: Option<Base>,
) -> Result<Value, ScimError> {
    let mut native = Value::Object(Map::new());
    for field in fields {
        let writes = match field.on {
            WriteOn::Always => true,
            WriteOn::Create => write == Write::Create,
            WriteOn::Never => false,
        };
        if !writes {
            continue;
        }
        if let Some(v) = native_value(field, resource, write, base)? {
            set_path(&mut native, &field.native, v);
        }
    }
    Ok(native)
}

fn native_value(
    field: &FieldMap,
    resource: &Value,
    write: Write,
    base: Option<Base>,
) -> Result<Option<Value>, ScimError> {
    let unset = (write == Write::Update).then_some(Value::Null);
    if let Some(pieces) = &field.compose {
        let text = compose(pieces, resource).map(|t| field.convert.normalize_text(&t));
        return Ok(text.map(Value::String).or(unset));
    }
    let Some(target) = &field.scim else {
        return Ok(field.constant.clone());
    };
    if let Some(list) = &field.list {
        return native_list::write(field, list, target, resource, write, base);
    }
    let scim = get_target(resource, target)
        .cloned()
        .or_else(|| field.default.clone());
    match (scim, &field.convert.transform) {
        (Some(v), _) => field.convert.encode(&target.attr.canonical(), &v).map(Some),
        (None, Transform::BoolEnum { .. }) => Ok(None),
        (None, _) => Ok(unset),
    }
}

/// The text of a composed field: the template with each attribute's value (empty when unset);
/// `None` when every attribute is unset.
fn compose(pieces: &[Piece], resource: &Value) -> Option<String> {
    let mut text = String::new();
    let mut any = false;
    for piece in pieces {
        match piece {
            Piece::Literal(l) => text.push_str(l),
            Piece::Attr(target) => match get_target(resource, target) {
                Some(Value::String(s)) => {
                    any = true;
                    text.push_str(s);
                }
                Some(v) => {
                    any = true;
                    text.push_str(&v.to_string());
                }
                None => {}
            },
        }
    }
    any.then_some(text)
}

/// Builds the SCIM view of a native user: `shadow` (what SCIM last wrote) with every mapped
/// attribute replaced by the backend's current value. A value SCIM wrote that the backend holds
/// exactly as it was written (after maps, normalisers and type conversion) reads back as SCIM
/// wrote it. A mapped attribute SCIM left unset and whose backend value is the field's `default`
/// stays unset, so it round-trips. `id` and `meta` are added by the caller.
pub fn from_native(api: &UserApi, native: &Value, shadow: Option<&Value>) -> Value {
    fields_from_native(&api.fields, native, shadow)
}

/// [`from_native`] over any list of field mappings.
pub fn fields_from_native(fields: &[FieldMap], native: &Value, shadow: Option<&Value>) -> Value {
    let mut resource = shadow.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    for field in fields {
        let Some(target) = &field.scim else { continue };
        if let Some(list) = &field.list {
            native_list::read(field, list, target, native, shadow, &mut resource);
            continue;
        }
        let held = get_path(native, &field.native);
        let written = shadow.and_then(|s| get_target(s, target));
        let value = match (written, held) {
            (Some(w), Some(n)) if field.convert.stores_as(w, n) => Some(w.clone()),
            (_, n) => n.and_then(|v| field.convert.decode(target.attr.leaf(), v)),
        };
        let unset_default = shadow.is_some() && written.is_none() && value == field.default;
        set_target(
            &mut resource,
            target,
            if unset_default { None } else { value },
        );
    }
    resource
}

/// The values each attribute accepts when a refusing word map limits it (`/Schemas`
/// `canonicalValues`). A map on a pinned element (`emails[type eq "work"].value`) limits only
/// that element, so it is not advertised.
pub fn restrictions(api: &UserApi) -> Restrictions {
    let mut canonical_values = Vec::new();
    for field in &api.fields {
        let Some(target) = field.scim.as_ref().filter(|t| t.element.is_none()) else {
            continue;
        };
        let path = target.attr.canonical();
        let mut add = |path: String, values: Option<Vec<String>>| {
            if let Some(v) = values {
                canonical_values.push((path, v));
            }
        };
        match &field.list {
            Some(list) if list.subs.is_empty() => {
                add(format!("{path}.value"), field.convert.canonical_values())
            }
            Some(list) => {
                for sub in &list.subs {
                    add(
                        format!("{path}.{}", sub.sub.name),
                        sub.convert.canonical_values(),
                    );
                }
            }
            None => add(path, field.convert.canonical_values()),
        }
    }
    Restrictions { canonical_values }
}

/// The native id of a native user, as a string.
pub fn native_id(api: &UserApi, native: &Value) -> Option<String> {
    get_path(native, &api.id_field)
        .and_then(id_text)
        .filter(|id| !id.is_empty())
}

/// The text of a native id value (a string or a number), whatever object holds it.
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::backend::spec::{Convert, FieldMap, NativeType, Transform};
    use crate::config::validate::parse_scim_target;
    use serde_json::json;

    /// The demo's user API with `fields` (TOML `[[users.fields]]` entries) as its only mappings.
    pub(crate) fn api_with_fields(fields: &str) -> UserApi {
        let demo = include_str!("../../conf/demo.toml");
        let head = &demo[..demo.find("[[users.fields]]").expect("demo fields")];
        crate::config::from_str(&format!("{head}{fields}"), std::path::Path::new("t.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
            .users
    }

    /// A plain copy (no map, no normaliser).
    fn direct(ty: NativeType) -> Convert {
        Convert {
            transform: Transform::Direct(ty),
            normalize: Vec::new(),
        }
    }

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
            convert: direct(NativeType::Any),
            constant: None,
            compose: None,
            list: None,
            default: None,
            on: WriteOn::Always,
        }
    }

    #[test]
    fn to_native_maps_transforms_constants_and_defaults() {
        let api = demo_api();
        let user = json!({"userName": "a@b.c", "name": {"givenName": "A", "familyName": "B"}, "active": false});
        let native = to_native(&api, &user, Write::Create, None).unwrap();
        assert_eq!(
            native,
            json!({"email": "a@b.c", "first_name": "A", "last_name": "B", "status": "suspended", "role": "member"})
        );
        let native = to_native(&api, &json!({"userName": "a@b.c"}), Write::Update, None).unwrap();
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
            to_native(&api, &user, Write::Create, None).unwrap(),
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
            to_native(&api, &user, Write::Create, None).unwrap(),
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
            None,
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
        f.convert = direct(NativeType::Integer);
        let api = UserApi {
            fields: vec![f],
            ..demo_api()
        };
        assert_eq!(
            to_native(&api, &json!({"title": "42"}), Write::Create, None).unwrap(),
            json!({"level": 42})
        );
        let err = to_native(&api, &json!({"title": "forty"}), Write::Create, None).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(
            from_native(&api, &json!({"level": 42}), None)["title"],
            "42"
        );
    }
}

#[cfg(test)]
mod shape_tests {
    use super::tests::api_with_fields;
    use super::*;
    use serde_json::json;

    const SHAPES: &str = r#"
[[users.fields]]
scim = "userName"
native = "login"
normalize = ["trim", "lowercase"]

[[users.fields]]
scim = "userType"
native = "kind"
map = { EMP = "Employee", CON = "Contractor" }
otherwise = "CON"

[[users.fields]]
scim = "locale"
native = "locale"
map = { en_US = "en-US", nb_NO = "nb-NO" }

[[users.fields]]
compose = "{name.givenName} {name.familyName}"
native = "full_name"
normalize = ["trim"]
"#;

    #[test]
    fn word_maps_write_native_words_and_read_back_what_scim_wrote() {
        let api = api_with_fields(SHAPES);
        let user =
            json!({"userName": " Ann.Lee@X.test", "userType": "employee", "locale": "en-US"});
        let native = to_native(&api, &user, Write::Create, None).unwrap();
        assert_eq!(native["login"], "ann.lee@x.test");
        assert_eq!(native["kind"], "EMP");
        assert_eq!(native["locale"], "en_US");
        let back = from_native(&api, &native, Some(&user));
        assert_eq!(
            back, user,
            "the backend holds what SCIM wrote: it reads back exactly"
        );
        let seeded = from_native(
            &api,
            &json!({"login": "bo@x.test", "kind": "emp", "locale": "NB_no"}),
            None,
        );
        assert_eq!(
            seeded,
            json!({"userName": "bo@x.test", "userType": "Employee", "locale": "nb-NO"})
        );
        let changed = from_native(
            &api,
            &json!({"login": "ann.lee@x.test", "kind": "CON"}),
            Some(&user),
        );
        assert_eq!(changed["userType"], "Contractor", "a backend change wins");
        assert!(changed.get("locale").is_none());
    }

    #[test]
    fn a_value_outside_a_map_is_refused_or_becomes_the_default_word() {
        let api = api_with_fields(SHAPES);
        let err = to_native(
            &api,
            &json!({"userName": "a", "locale": "fr-FR"}),
            Write::Create,
            None,
        )
        .unwrap_err();
        assert_eq!(
            (err.status, err.scim_type.map(|t| t.as_str())),
            (400, Some("invalidValue"))
        );
        assert!(
            err.detail
                .starts_with("locale: \"fr-FR\" is not one of en-US, nb-NO"),
            "{}",
            err.detail
        );
        let intern = json!({"userName": "a", "userType": "Intern"});
        let native = to_native(&api, &intern, Write::Create, None).unwrap();
        assert_eq!(native["kind"], "CON", "otherwise = \"CON\"");
        assert_eq!(
            from_native(&api, &native, Some(&intern))["userType"],
            "Intern"
        );
        assert_eq!(
            from_native(&api, &json!({"kind": "TEMP"}), None)["userType"],
            "Contractor"
        );
    }

    #[test]
    fn only_refusing_maps_restrict_what_schemas_advertise() {
        let api = api_with_fields(&format!(
            "{SHAPES}{}",
            r#"
[[users.fields]]
scim = "emails"
native = "mails"
  [[users.fields.elements]]
  scim = "type"
  native = "k"
  map = { W = "work" }
[[users.fields]]
scim = "phoneNumbers[type eq \"work\"].value"
native = "phone"
map = { X = "x" }
"#
        ));
        assert_eq!(
            restrictions(&api).canonical_values,
            vec![
                (
                    "locale".to_string(),
                    vec!["en-US".to_string(), "nb-NO".to_string()]
                ),
                ("emails.type".to_string(), vec!["work".to_string()]),
            ],
            "userType's map keeps other words, a pinned element limits only itself"
        );
    }

    #[test]
    fn composed_fields_write_the_template_and_keep_the_parts_in_the_store() {
        let api = api_with_fields(SHAPES);
        let user = json!({"userName": "a", "name": {"givenName": "Ann", "familyName": "Lee"}});
        let native = to_native(&api, &user, Write::Create, None).unwrap();
        assert_eq!(native["full_name"], "Ann Lee");
        assert_eq!(
            from_native(&api, &native, Some(&user)),
            user,
            "the parts come from the store"
        );
        let given_only = json!({"userName": "a", "name": {"givenName": "Ann"}});
        assert_eq!(
            to_native(&api, &given_only, Write::Update, None).unwrap()["full_name"],
            "Ann"
        );
        let nameless = to_native(&api, &json!({"userName": "a"}), Write::Update, None).unwrap();
        assert_eq!(
            nameless["full_name"],
            Value::Null,
            "no part set: cleared on update"
        );
        let created = to_native(&api, &json!({"userName": "a"}), Write::Create, None).unwrap();
        assert!(created.get("full_name").is_none(), "and left out on create");
    }
}
