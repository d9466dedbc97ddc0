//! Reading and writing values by path: dotted paths in native JSON, and the object of a SCIM
//! resource that holds a schema's attributes.

use super::convert::json_eq_ci;
use crate::scim::schema::{Home, ENTERPRISE_SCHEMA};
use serde_json::{Map, Value};

/// The object of `resource` that holds attributes of `home`.
pub fn home_object(resource: &Value, home: Home) -> Option<&Map<String, Value>> {
    match home {
        Home::Core => resource.as_object(),
        Home::Enterprise => resource.get(ENTERPRISE_SCHEMA)?.as_object(),
    }
}

/// Like [`home_object`], creating the enterprise extension's object when missing.
pub fn home_object_mut(resource: &mut Value, home: Home) -> Option<&mut Map<String, Value>> {
    let root = resource.as_object_mut()?;
    match home {
        Home::Core => Some(root),
        Home::Enterprise => root
            .entry(ENTERPRISE_SCHEMA)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut(),
    }
}

/// Whether a list element has every pinned sub-attribute value (compared ignoring case).
pub fn pinned(element: &Value, pins: &[(&'static str, Value)]) -> bool {
    pins.iter()
        .all(|(k, v)| element.get(*k).is_some_and(|e| json_eq_ci(e, v)))
}

/// Sets (or, with `None`, removes) one key of an object.
pub fn set_key(obj: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            obj.insert(key.to_string(), v);
        }
        None => {
            obj.remove(key);
        }
    }
}

/// The value at a dotted native path.
pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

/// Removes the value at a dotted native path, keeping the order of the other keys.
pub fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let holder = parents.iter().try_fold(v, |cur, key| cur.get_mut(key));
    if let Some(obj) = holder.and_then(Value::as_object_mut) {
        obj.shift_remove(last);
    }
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
