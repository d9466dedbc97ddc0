//! The canonical stored form of a User: turns whatever a client wrote (POST/PUT body, or the result of
//! a PATCH) into one shape, with canonical key case, enterprise attributes under their URN, values of
//! the schema's types, and "not set" values (`null`, `""`, `[]`, `{}`) left out.

use crate::scim::error::ScimError;
use crate::scim::schema::{
    self, AttrDef, AttrType, Home, Mutability, Resolved, Returned, COMMON, ENTERPRISE,
    ENTERPRISE_SCHEMA, USER, USER_SCHEMA,
};
use serde_json::{Map, Value};

/// The enterprise URN as older Entra senders misspell it (no colon before `User`).
const ENTERPRISE_MISSPELT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0User";

/// Sub-attributes of `groups` (all read-only: membership is changed through `/Groups`).
static GROUP_SUBS: &[AttrDef] = &[
    read_only_string("value", "The id of the group."),
    read_only_string("$ref", "The URI of the group."),
    read_only_string("display", "The group's displayName."),
    read_only_string("type", "direct or indirect membership."),
];

/// Core User attributes the static schema leaves out but clients send: `password` (passed through
/// for the caller to strip) and `groups` (read-only, ignored on write).
static EXTRA: &[AttrDef] = &[
    AttrDef {
        name: "password",
        ty: AttrType::String,
        multi_valued: false,
        case_exact: true,
        mutability: Mutability::WriteOnly,
        required: false,
        sub_attributes: &[],
        description: "The user's cleartext password, never returned.",
        returned: Returned::Default,
        canonical_values: &[],
    },
    AttrDef {
        name: "groups",
        ty: AttrType::Complex,
        multi_valued: true,
        case_exact: false,
        mutability: Mutability::ReadOnly,
        required: false,
        sub_attributes: GROUP_SUBS,
        description: "The groups the user belongs to.",
        returned: Returned::Default,
        canonical_values: &[],
    },
];

const fn read_only_string(name: &'static str, description: &'static str) -> AttrDef {
    AttrDef {
        name,
        ty: AttrType::String,
        multi_valued: false,
        case_exact: false,
        mutability: Mutability::ReadOnly,
        required: false,
        sub_attributes: &[],
        description,
        returned: Returned::Default,
        canonical_values: &[],
    }
}

/// What [`normalize_with`] does with read-only top-level attributes (`id`, `meta`, `groups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOnly {
    /// Leave them out: a client wrote the input, and RFC 7644 says they are ignored.
    Drop,
    /// Keep them verbatim: the input is a stored resource being re-normalised.
    Keep,
}

/// Canonical stored form of a User written by a client (POST/PUT body, or the result of a PATCH).
///
/// Keys come out in canonical case and schema order, enterprise attributes inside the object keyed by
/// [`ENTERPRISE_SCHEMA`] (the misspelt URN and URN-qualified top-level keys are accepted), `schemas`
/// rebuilt, unset values removed, read-only attributes dropped and `password` passed through. Type
/// errors are `400 invalidValue`, unknown attributes `400 invalidSyntax`, a missing `userName`
/// `400 invalidValue`.
pub fn normalize_user(input: &Value) -> Result<Value, ScimError> {
    let user = normalize_with(input, ReadOnly::Drop)?;
    check_invariants(&user)?;
    Ok(user)
}

/// Fails with `400 invalidSyntax` unless a User body sent by a client (POST, PUT) has `schemas`
/// naming the core User schema (RFC 7643 §3: `schemas` is required and lists the resource's core
/// schema). URNs and the key compare case-insensitively.
pub fn check_core_schema(input: &Value) -> Result<(), ScimError> {
    let schemas = input.as_object().and_then(|o| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
            .map(|(_, v)| v)
    });
    let names_core = schemas.and_then(Value::as_array).is_some_and(|list| {
        list.iter()
            .filter_map(Value::as_str)
            .any(|s| s.eq_ignore_ascii_case(USER_SCHEMA))
    });
    if names_core {
        return Ok(());
    }
    Err(ScimError::invalid_syntax(match schemas {
        None => format!("'schemas' is required and must list {USER_SCHEMA}"),
        Some(_) => format!("'schemas' must be an array that lists {USER_SCHEMA}"),
    }))
}

/// Coerces one value to the type an attribute definition expects (shared by normalize and patch).
/// `Ok(None)` means "clear the attribute" (the value was `null`, `""`, `[]` or `{}`).
pub fn coerce(def: &'static AttrDef, value: &Value) -> Result<Option<Value>, ScimError> {
    coerce_at(def, value, def.name)
}

/// Like [`normalize_user`], with a choice of what happens to read-only attributes and without the
/// required-attribute check.
pub(crate) fn normalize_with(input: &Value, read_only: ReadOnly) -> Result<Value, ScimError> {
    let obj = input
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a User must be a JSON object"))?;
    let mut draft = Draft::default();
    for (key, value) in obj {
        draft.take(key, value, read_only)?;
    }
    Ok(draft.finish())
}

/// The checks a User written by a client must pass as a whole: [`check_required`] and
/// [`check_single_primary`].
pub(crate) fn check_invariants(user: &Value) -> Result<(), ScimError> {
    check_required(user)?;
    check_single_primary(user)?;
    check_no_nul(user)
}

/// Fails with `400 invalidValue` when a string (or a name) anywhere in the resource holds the
/// NUL character: JSON can carry it, but no user service field nor store text column can, and
/// a store that refused it mid-write would turn bad input into a `503`.
pub(crate) fn check_no_nul(value: &Value) -> Result<(), ScimError> {
    let has_nul = |s: &str| s.contains('\0');
    let found = match value {
        Value::String(s) => has_nul(s),
        Value::Array(items) => return items.iter().try_for_each(check_no_nul),
        Value::Object(o) => {
            if o.keys().any(|k| has_nul(k)) {
                true
            } else {
                return o.values().try_for_each(check_no_nul);
            }
        }
        _ => false,
    };
    if found {
        return Err(ScimError::invalid_value(
            "a value holds the NUL character (U+0000), which no attribute may contain",
        ));
    }
    Ok(())
}

/// Fails with `400 invalidValue` when one multi-valued attribute has more than one element with
/// `primary: true` (RFC 7643 §2.4: "the primary attribute value true MUST appear no more than
/// once").
pub(crate) fn check_single_primary(user: &Value) -> Result<(), ScimError> {
    for def in USER.attributes.iter().filter(|d| d.multi_valued) {
        let primaries = user
            .get(def.name)
            .and_then(Value::as_array)
            .map_or(0, |items| items.iter().filter(|i| is_primary(i)).count());
        if primaries > 1 {
            return Err(ScimError::invalid_value(format!(
                "'{}' has {primaries} elements with primary true; at most one may be primary",
                def.name
            )));
        }
    }
    Ok(())
}

/// True for an element of a multi-valued attribute marked `primary: true`.
pub(crate) fn is_primary(element: &Value) -> bool {
    element.get("primary") == Some(&Value::Bool(true))
}

/// Fails with `400 invalidValue` when a required attribute (`userName`) is missing.
pub(crate) fn check_required(user: &Value) -> Result<(), ScimError> {
    match USER
        .attributes
        .iter()
        .find(|def| def.required && user.get(def.name).is_none())
    {
        Some(def) => Err(ScimError::invalid_value(format!(
            "'{}' is required",
            def.name
        ))),
        None => Ok(()),
    }
}

/// True for the values that mean "not set": `null`, `""`, `[]` and `{}`.
pub(crate) fn is_unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Resolves a case-insensitive, possibly dotted and URN-qualified attribute name (core, enterprise,
/// the misspelt enterprise URN, plus `password` and `groups`). Unknown names give `None`.
pub(crate) fn resolve_attr(path: &str) -> Option<Resolved> {
    let (urn, rest) = split_known_urn(path)?;
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    if let Some(found) = schema::resolve(urn, name, sub) {
        return Some(found);
    }
    if urn.is_some_and(|u| u != USER_SCHEMA) {
        return None;
    }
    let attr = EXTRA.iter().find(|a| a.name.eq_ignore_ascii_case(name))?;
    let sub = match sub {
        Some(s) => Some(attr.sub(s)?),
        None => None,
    };
    Some(Resolved {
        home: Home::Core,
        attr,
        sub,
    })
}

/// Splits off a known schema URN prefix (`<urn>:`), returning its canonical spelling. A path that
/// starts with `urn:` but no known schema gives `None`.
fn split_known_urn(path: &str) -> Option<(Option<&'static str>, &str)> {
    const KNOWN: [(&str, &str); 3] = [
        (ENTERPRISE_SCHEMA, ENTERPRISE_SCHEMA),
        (ENTERPRISE_MISSPELT, ENTERPRISE_SCHEMA),
        (USER_SCHEMA, USER_SCHEMA),
    ];
    for (prefix, canonical) in KNOWN {
        if let Some(rest) = strip_prefix_ci(path, prefix).and_then(|r| r.strip_prefix(':')) {
            return Some((Some(canonical), rest));
        }
    }
    match strip_prefix_ci(path, "urn:") {
        Some(_) => None,
        None => Some((None, path)),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// The attributes collected so far, by where they live.
#[derive(Default)]
struct Draft {
    core: Map<String, Value>,
    enterprise: Map<String, Value>,
    kept: Map<String, Value>,
}

impl Draft {
    /// Takes one top-level key of the input.
    fn take(&mut self, key: &str, value: &Value, read_only: ReadOnly) -> Result<(), ScimError> {
        if key.eq_ignore_ascii_case("schemas") {
            return Ok(());
        }
        if let Some(urn) = schema::canonical_schema(key) {
            return self.take_extension(urn, key, value, read_only);
        }
        let found = resolve_attr(key)
            .ok_or_else(|| ScimError::invalid_syntax(format!("unknown attribute '{key}'")))?;
        self.put(found, value, read_only)
    }

    /// Takes an object keyed by a schema URN: each of its keys is an attribute of that schema.
    fn take_extension(
        &mut self,
        urn: &str,
        key: &str,
        value: &Value,
        read_only: ReadOnly,
    ) -> Result<(), ScimError> {
        let attrs = match value {
            Value::Object(attrs) => attrs,
            Value::Null => return Ok(()),
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "'{key}' must be an object of attributes"
                )))
            }
        };
        for (name, v) in attrs {
            let qualified = format!("{urn}:{name}");
            let found = resolve_attr(&qualified).ok_or_else(|| {
                ScimError::invalid_syntax(format!("unknown attribute '{qualified}'"))
            })?;
            self.put(found, v, read_only)?;
        }
        Ok(())
    }

    /// Stores one resolved attribute (or sub-attribute) value.
    fn put(&mut self, found: Resolved, raw: &Value, read_only: ReadOnly) -> Result<(), ScimError> {
        let label = found.canonical();
        let leaf_read_only = found.leaf().mutability == Mutability::ReadOnly;
        if found.attr.mutability == Mutability::ReadOnly || leaf_read_only {
            if read_only == ReadOnly::Keep && found.sub.is_none() && !raw.is_null() {
                self.kept.insert(found.attr.name.into(), raw.clone());
            }
            return Ok(());
        }
        let Some(sub) = found.sub else {
            let value = coerce_at(found.attr, raw, &label)?;
            set_or_remove(self.home(found.home), found.attr.name, value);
            return Ok(());
        };
        if found.attr.multi_valued {
            return Err(ScimError::invalid_syntax(format!(
                "'{label}': a sub-attribute of a multi-valued attribute cannot be set on its own"
            )));
        }
        let value = coerce_at(sub, raw, &label)?;
        let home = self.home(found.home);
        let mut parent = match home.remove(found.attr.name) {
            Some(Value::Object(parent)) => parent,
            _ => Map::new(),
        };
        set_or_remove(&mut parent, sub.name, value);
        let merged = coerce_at(found.attr, &Value::Object(parent), &label)?;
        set_or_remove(home, found.attr.name, merged);
        Ok(())
    }

    fn home(&mut self, home: Home) -> &mut Map<String, Value> {
        match home {
            Home::Core => &mut self.core,
            Home::Enterprise => &mut self.enterprise,
        }
    }

    /// The finished resource: `schemas`, `id`, core attributes in schema order, the enterprise
    /// object, then the other kept read-only attributes.
    fn finish(mut self) -> Value {
        let mut out = Map::new();
        let mut schemas = vec![Value::from(USER_SCHEMA)];
        if !self.enterprise.is_empty() {
            schemas.push(Value::from(ENTERPRISE_SCHEMA));
        }
        out.insert("schemas".into(), Value::Array(schemas));
        if let Some(id) = self.kept.remove("id") {
            out.insert("id".into(), id);
        }
        let core_defs = COMMON.iter().chain(USER.attributes).chain(EXTRA);
        take_in_order(&mut out, &mut self.core, core_defs);
        let mut enterprise = Map::new();
        take_in_order(&mut enterprise, &mut self.enterprise, ENTERPRISE.attributes);
        if !enterprise.is_empty() {
            out.insert(ENTERPRISE_SCHEMA.into(), Value::Object(enterprise));
        }
        out.extend(self.kept);
        Value::Object(out)
    }
}

/// Moves the attributes of `from` into `to` in the order of `defs`.
fn take_in_order<'a>(
    to: &mut Map<String, Value>,
    from: &mut Map<String, Value>,
    defs: impl IntoIterator<Item = &'a AttrDef>,
) {
    for def in defs {
        if let Some(v) = from.remove(def.name) {
            to.insert(def.name.into(), v);
        }
    }
}

/// Sets `key` to `value`, or removes it when `value` is `None`.
pub(crate) fn set_or_remove(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            map.insert(key.into(), v);
        }
        None => {
            map.remove(key);
        }
    }
}

/// [`coerce`], naming the attribute `label` in errors.
pub(crate) fn coerce_at(
    def: &'static AttrDef,
    raw: &Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    if is_unset(raw) {
        Ok(None)
    } else if def.multi_valued {
        coerce_multi(def, raw, label)
    } else if def.ty == AttrType::Complex {
        coerce_complex(def, raw, label)
    } else {
        coerce_simple(def, raw, label).map(Some)
    }
}

/// A multi-valued attribute: an array, or a string holding a JSON array or object (Entra's
/// `roles`). A bare object or scalar is `400 invalidValue` (RFC 7643 §2.4: multi-valued attributes
/// are arrays). Unset elements are dropped.
fn coerce_multi(
    def: &'static AttrDef,
    raw: &Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    let items = match raw {
        Value::Array(items) => items.clone(),
        Value::String(s) => match decode_json(s) {
            Some(Value::Array(items)) => items,
            Some(one @ Value::Object(_)) => vec![one],
            _ if def.ty == AttrType::Complex => return Err(not_complex(label)),
            _ => vec![raw.clone()],
        },
        _ => {
            return Err(ScimError::invalid_value(format!(
                "'{label}' is multi-valued: send an array of values"
            )))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let value = match def.ty {
            AttrType::Complex => coerce_element(def, item, label)?.map(Value::Object),
            _ if is_unset(item) => None,
            _ => Some(coerce_simple(def, item, label)?),
        };
        out.extend(value);
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// One element of a multi-valued complex attribute, as an object of canonical sub-attributes.
/// An element given as a JSON-encoded string, or as `{"value": "<JSON object>"}` (Entra's
/// AppRoleAssignmentsComplex), is decoded, and keys the schema does not know are then dropped.
pub(crate) fn coerce_element(
    def: &'static AttrDef,
    item: &Value,
    label: &str,
) -> Result<Option<Map<String, Value>>, ScimError> {
    match item {
        _ if is_unset(item) => Ok(None),
        Value::String(s) => match decode_json(s) {
            Some(Value::Object(decoded)) => complex_map(def, &decoded, label, Unknown::Drop),
            _ => Err(not_complex(label)),
        },
        Value::Object(map) => match unwrap_encoded(map) {
            Some(decoded) => complex_map(def, &decoded, label, Unknown::Drop),
            None => complex_map(def, map, label, Unknown::Reject),
        },
        _ => Err(not_complex(label)),
    }
}

/// A single-valued complex attribute (`name`, `manager`). A one-element array is unwrapped, and
/// `manager` may be a bare id.
fn coerce_complex(
    def: &'static AttrDef,
    raw: &Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    match raw {
        Value::Object(map) => Ok(complex_map(def, map, label, Unknown::Reject)?.map(Value::Object)),
        Value::Array(items) => {
            let set: Vec<&Value> = items.iter().filter(|v| !is_unset(v)).collect();
            match set.as_slice() {
                [] => Ok(None),
                [one] if is_manager(def) => {
                    Ok(coerce_complex(def, one, label)?.map(manager_value_only))
                }
                [one] => coerce_complex(def, one, label),
                _ => Err(ScimError::invalid_value(format!(
                    "'{label}' is single-valued but was given several values"
                ))),
            }
        }
        Value::String(id) if is_manager(def) => {
            let mut map = Map::new();
            map.insert("value".into(), Value::String(id.clone()));
            Ok(Some(Value::Object(map)))
        }
        _ => Err(not_complex(label)),
    }
}

/// What [`complex_map`] does with a key that is not a sub-attribute.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unknown {
    Reject,
    Drop,
}

/// Coerces the sub-attributes of one complex value; read-only ones are dropped, and `manager`
/// keeps only `value`. Returns `None` when nothing is left.
fn complex_map(
    def: &'static AttrDef,
    map: &Map<String, Value>,
    label: &str,
    unknown: Unknown,
) -> Result<Option<Map<String, Value>>, ScimError> {
    let mut values: Vec<Option<Value>> = vec![None; def.sub_attributes.len()];
    for (key, raw) in map {
        let Some((index, sub)) = sub_index(def, key) else {
            if unknown == Unknown::Drop {
                continue;
            }
            return Err(ScimError::invalid_syntax(format!(
                "unknown attribute '{label}.{key}'"
            )));
        };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let value = coerce_at(sub, raw, &format!("{label}.{}", sub.name))?;
        if let Some(slot) = values.get_mut(index) {
            *slot = value;
        }
    }
    let mut out = Map::new();
    for (sub, value) in def.sub_attributes.iter().zip(values) {
        if let Some(v) = value {
            out.insert(sub.name.into(), v);
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// The sub-attribute called `key` and its position; `displayName` is accepted for `display` in
/// multi-valued attributes (Entra's role objects carry it).
pub(crate) fn sub_index(def: &'static AttrDef, key: &str) -> Option<(usize, &'static AttrDef)> {
    let key = if def.multi_valued && key.eq_ignore_ascii_case("displayName") {
        "display"
    } else {
        key
    };
    def.sub_attributes
        .iter()
        .enumerate()
        .find(|(_, sub)| sub.name.eq_ignore_ascii_case(key))
}

/// A simple (non-complex) value of the attribute's type; booleans also as `"true"`/`"false"` in any
/// case.
fn coerce_simple(def: &AttrDef, raw: &Value, label: &str) -> Result<Value, ScimError> {
    let ok = match (def.ty, raw) {
        (AttrType::Boolean, Value::Bool(_)) => Some(raw.clone()),
        (AttrType::Boolean, Value::String(s)) => parse_bool(s).map(Value::Bool),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Some(raw.clone()),
        (AttrType::Decimal, Value::Number(_)) => Some(raw.clone()),
        (
            AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary,
            Value::String(_),
        ) => Some(raw.clone()),
        _ => None,
    };
    ok.ok_or_else(|| ScimError::invalid_value(format!("'{label}' must be {}", expected(def.ty))))
}

/// `"true"`/`"false"` in any case as a boolean (how Entra sends booleans).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn expected(ty: AttrType) -> &'static str {
    match ty {
        AttrType::Boolean => "a boolean",
        AttrType::Integer => "an integer",
        AttrType::Decimal => "a number",
        AttrType::Complex => "an object",
        _ => "a string",
    }
}

fn not_complex(label: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "'{label}' must be an object (or an array of objects)"
    ))
}

/// Entra's array form of `manager` (`[{"$ref": …, "value": id}]`) reads back as `{"value": id}`.
fn manager_value_only(manager: Value) -> Value {
    match manager {
        Value::Object(mut map) => {
            map.retain(|k, _| k == "value");
            Value::Object(map)
        }
        other => other,
    }
}

fn is_manager(def: &AttrDef) -> bool {
    def.name == "manager" && !def.multi_valued
}

/// Parses a string that holds a JSON array or object; anything else gives `None`.
fn decode_json(s: &str) -> Option<Value> {
    let t = s.trim_start();
    if !(t.starts_with('[') || t.starts_with('{')) {
        return None;
    }
    serde_json::from_str(s).ok()
}

/// Entra's AppRoleAssignmentsComplex PATCH element `{"value": "{\"id\":…,\"value\":\"Admin\",…}"}`:
/// the decoded object, when its own `value` is a plain string (so decoding happens only once).
fn unwrap_encoded(map: &Map<String, Value>) -> Option<Map<String, Value>> {
    let (key, value) = match map.iter().collect::<Vec<_>>().as_slice() {
        [(key, value)] => (*key, *value),
        _ => return None,
    };
    if !key.eq_ignore_ascii_case("value") {
        return None;
    }
    let Value::Object(decoded) = decode_json(value.as_str()?)? else {
        return None;
    };
    let inner = decoded
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("value"))?
        .1
        .as_str()?;
    decode_json(inner).is_none().then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(v: Value) -> Value {
        normalize_user(&v).unwrap()
    }

    fn err(v: Value) -> ScimError {
        normalize_user(&v).unwrap_err()
    }

    #[test]
    fn a_nul_character_anywhere_is_an_invalid_value() {
        for user in [
            json!({"userName": "bob\u{0}@x.test"}),
            json!({"userName": "bob", "emails": [{"value": "b\u{0}@x.test"}]}),
            json!({"userName": "bob", "name": {"givenName": "B\u{0}b"}}),
        ] {
            let e = err(user.clone());
            assert_eq!((e.status, scim_type(&e)), (400, "invalidValue"), "{user}");
        }
        assert!(normalize_user(&json!({"userName": "bob@x.test"})).is_ok());
    }

    fn scim_type(e: &ScimError) -> &'static str {
        e.scim_type.map(|t| t.as_str()).unwrap_or("")
    }

    #[test]
    fn typical_entra_create_body() {
        let out = norm(json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "externalId": "0a21f0f2", "userName": "alice@contoso.com", "active": true,
            "displayName": "Alice Smith",
            "emails": [{"primary": true, "type": "work", "value": "alice@contoso.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
            "roles": [],
            ENTERPRISE_SCHEMA: {"department": "Sales", "employeeNumber": "701984"}
        }));
        let expected = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "externalId": "0a21f0f2", "userName": "alice@contoso.com",
            "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
            "displayName": "Alice Smith", "active": true,
            "emails": [{"value": "alice@contoso.com", "type": "work", "primary": true}],
            ENTERPRISE_SCHEMA: {"employeeNumber": "701984", "department": "Sales"}
        });
        assert_eq!(out, expected);
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys[..3], ["schemas", "externalId", "userName"]);
    }

    #[test]
    fn keys_become_canonical_case() {
        let out =
            norm(json!({"USERNAME": "a", "Name": {"GIVENNAME": "A"}, "EMAILS": [{"VALUE": "x"}]}));
        assert_eq!(
            out,
            json!({"schemas": [USER_SCHEMA], "userName": "a", "name": {"givenName": "A"},
                   "emails": [{"value": "x"}]})
        );
    }

    #[test]
    fn enterprise_urn_forms_are_accepted() {
        let misspelt = norm(json!({"userName": "a", ENTERPRISE_MISSPELT: {"Department": "D"}}));
        let qualified = norm(
            json!({"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "D"}),
        );
        let expected = json!({"schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA], "userName": "a",
                              ENTERPRISE_SCHEMA: {"department": "D"}});
        assert_eq!(misspelt, expected);
        assert_eq!(qualified, expected);
        let core = norm(json!({"urn:ietf:params:scim:schemas:core:2.0:User:userName": "a"}));
        assert_eq!(core["userName"], "a");
    }

    #[test]
    fn unset_values_are_removed() {
        let out = norm(
            json!({"userName": "a", "addresses": null, "displayName": "", "roles": [],
            "name": {}, "emails": [null, {}], ENTERPRISE_SCHEMA: {"manager": null}}),
        );
        assert_eq!(out, json!({"schemas": [USER_SCHEMA], "userName": "a"}));
    }

    #[test]
    fn booleans_accept_strings() {
        for (given, want) in [
            ("True", true),
            ("False", false),
            ("true", true),
            ("false", false),
        ] {
            let out = norm(
                json!({"userName": "a", "active": given, "emails": [{"value": "x", "primary": given}]}),
            );
            assert_eq!(out["active"], want);
            assert_eq!(out["emails"][0]["primary"], want);
        }
        assert_eq!(
            scim_type(&err(json!({"userName": "a", "active": "yes"}))),
            "invalidValue"
        );
        assert_eq!(
            scim_type(&err(json!({"userName": "a", "active": 1}))),
            "invalidValue"
        );
    }

    #[test]
    fn manager_shapes_become_value_object() {
        for manager in [
            json!("m1"),
            json!({"value": "m1", "displayName": "Boss"}),
            json!([{"$ref": "../Users/m1", "value": "m1"}]),
        ] {
            let out = norm(json!({"userName": "a", ENTERPRISE_SCHEMA: {"manager": manager}}));
            assert_eq!(out[ENTERPRISE_SCHEMA]["manager"], json!({"value": "m1"}));
        }
        let e = err(
            json!({"userName": "a", ENTERPRISE_SCHEMA: {"manager": [{"value": "a"}, {"value": "b"}]}}),
        );
        assert_eq!(scim_type(&e), "invalidValue");
    }

    #[test]
    fn json_encoded_multi_values_are_parsed() {
        let roles =
            r#"[{"primary":true,"type":"WindowsAzureActiveDirectoryRole","value":"Admin"}]"#;
        let out = norm(json!({"userName": "a", "roles": roles}));
        assert_eq!(
            out["roles"],
            json!([{"value": "Admin", "type": "WindowsAzureActiveDirectoryRole", "primary": true}])
        );
        let out =
            norm(json!({"userName": "a", "roles": [r#"{"value":"Admin","displayName":"Admin"}"#]}));
        assert_eq!(
            out["roles"],
            json!([{"value": "Admin", "display": "Admin"}])
        );
    }

    #[test]
    fn entra_role_object_in_value_is_unwrapped() {
        let encoded = r#"{"id":"827f","value":"Admin","displayName":"Admin"}"#;
        let out = norm(json!({"userName": "a", "roles": [{"value": encoded}]}));
        assert_eq!(
            out["roles"],
            json!([{"value": "Admin", "display": "Admin"}])
        );
        let again = norm(out.clone());
        assert_eq!(again, out);
    }

    #[test]
    fn multi_valued_attributes_must_be_arrays() {
        for emails in [
            json!({"value": "x", "type": "work"}),
            json!(7),
            json!(true),
            json!("x@y"),
        ] {
            let e = err(json!({"userName": "a", "emails": emails}));
            assert_eq!(scim_type(&e), "invalidValue", "{emails}");
            assert!(e.detail.contains("emails"), "{e}");
        }
        let out = norm(json!({"userName": "a", "emails": [{"value": "x", "type": "work"}]}));
        assert_eq!(out["emails"], json!([{"value": "x", "type": "work"}]));
    }

    #[test]
    fn at_most_one_primary_per_attribute() {
        let two = json!([{"value": "x", "primary": true}, {"value": "y", "primary": "True"}]);
        let e = err(json!({"userName": "a", "emails": two}));
        assert_eq!(scim_type(&e), "invalidValue");
        assert!(e.detail.contains("emails"), "{e}");
        let one_each = norm(json!({"userName": "a",
            "emails": [{"value": "x", "primary": true}, {"value": "y", "primary": false}],
            "phoneNumbers": [{"value": "1", "primary": true}]}));
        assert_eq!(one_each["emails"][0]["primary"], true);
    }

    #[test]
    fn core_schema_must_be_named() {
        assert!(check_core_schema(&json!({"schemas": [USER_SCHEMA], "userName": "a"})).is_ok());
        assert!(check_core_schema(&json!({"SCHEMAS": [USER_SCHEMA.to_uppercase()]})).is_ok());
        for body in [
            json!({"userName": "a"}),
            json!({"schemas": [], "userName": "a"}),
            json!({"schemas": [ENTERPRISE_SCHEMA], "userName": "a"}),
            json!({"schemas": USER_SCHEMA, "userName": "a"}),
            json!({"schemas": null, "userName": "a"}),
            json!([USER_SCHEMA]),
        ] {
            let e = check_core_schema(&body).unwrap_err();
            assert_eq!(scim_type(&e), "invalidSyntax", "{body}");
        }
    }

    #[test]
    fn read_only_attributes_are_dropped() {
        let out = norm(
            json!({"id": "abc", "userName": "a", "meta": {"created": "x"},
            "groups": [{"value": "g"}], ENTERPRISE_SCHEMA: {"manager": {"value": "m", "displayName": "B"}}}),
        );
        assert_eq!(
            out,
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA], "userName": "a",
                   ENTERPRISE_SCHEMA: {"manager": {"value": "m"}}})
        );
    }

    #[test]
    fn read_only_attributes_are_kept_on_request() {
        let out = normalize_with(
            &json!({"meta": {"created": "t"}, "userName": "a", "id": "abc"}),
            ReadOnly::Keep,
        )
        .unwrap();
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["schemas", "id", "userName", "meta"]);
    }

    #[test]
    fn password_passes_through() {
        let out = norm(json!({"userName": "a", "Password": "s3cret"}));
        assert_eq!(out["password"], "s3cret");
        assert_eq!(
            scim_type(&err(json!({"userName": "a", "password": 5}))),
            "invalidValue"
        );
    }

    #[test]
    fn type_errors_name_the_attribute() {
        let cases = [
            (json!({"userName": 5}), "userName"),
            (json!({"userName": "a", "name": "Alice"}), "name"),
            (
                json!({"userName": "a", "name": {"givenName": 1}}),
                "name.givenName",
            ),
            (json!({"userName": "a", "emails": ["x@y"]}), "emails"),
            (json!({"userName": "a", "emails": "x@y"}), "emails"),
            (
                json!({"userName": "a", ENTERPRISE_SCHEMA: "Sales"}),
                ENTERPRISE_SCHEMA,
            ),
            (
                json!({"userName": "a", ENTERPRISE_SCHEMA: {"department": true}}),
                "department",
            ),
        ];
        for (input, name) in cases {
            let e = err(input);
            assert_eq!(scim_type(&e), "invalidValue", "{e}");
            assert!(e.detail.contains(name), "{e}");
        }
    }

    #[test]
    fn unknown_attributes_are_invalid_syntax() {
        for (input, name) in [
            (
                json!({"userName": "a", "favouriteColour": "red"}),
                "favouriteColour",
            ),
            (json!({"userName": "a", "name": {"nick": "A"}}), "name.nick"),
            (
                json!({"userName": "a", ENTERPRISE_SCHEMA: {"shoeSize": "9"}}),
                "shoeSize",
            ),
            (
                json!({"userName": "a", "urn:example:ext:1.0:User:x": "y"}),
                "urn:example",
            ),
        ] {
            let e = err(input);
            assert_eq!(scim_type(&e), "invalidSyntax", "{e}");
            assert!(e.detail.contains(name), "{e}");
        }
    }

    #[test]
    fn schemas_key_is_rebuilt_and_user_name_required() {
        let out = norm(json!({"SCHEMAS": ["whatever"], "userName": "a"}));
        assert_eq!(out["schemas"], json!([USER_SCHEMA]));
        let e = err(json!({"displayName": "x"}));
        assert_eq!(scim_type(&e), "invalidValue");
        assert!(e.detail.contains("userName"));
        assert_eq!(
            scim_type(&err(json!(["not", "an", "object"]))),
            "invalidSyntax"
        );
    }

    #[test]
    fn dotted_keys_merge_into_complex_attributes() {
        let out =
            norm(json!({"userName": "a", "name": {"familyName": "S"}, "name.givenName": "A"}));
        assert_eq!(out["name"], json!({"familyName": "S", "givenName": "A"}));
        let e = err(json!({"userName": "a", "emails.value": "x"}));
        assert_eq!(scim_type(&e), "invalidSyntax");
    }

    #[test]
    fn coerce_reports_clear_as_none() {
        let def = USER.attr("displayName").unwrap();
        assert_eq!(coerce(def, &json!("")).unwrap(), None);
        assert_eq!(coerce(def, &Value::Null).unwrap(), None);
        assert_eq!(coerce(def, &json!("x")).unwrap(), Some(json!("x")));
    }

    #[test]
    fn resolve_attr_handles_urns_and_extras() {
        let r = resolve_attr(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(r.home, Home::Enterprise);
        assert_eq!(r.leaf().name, "value");
        assert_eq!(resolve_attr("GROUPS").unwrap().attr.name, "groups");
        assert!(resolve_attr("urn:example:x:password").is_none());
        assert!(resolve_attr(&format!("{ENTERPRISE_SCHEMA}:password")).is_none());
    }
}
