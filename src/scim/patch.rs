//! RFC 7644 §3.5.2 PATCH: reads a PatchOp request's operations (for any resource type), and
//! parses and applies them, all or nothing, to a stored User, accepting every shape Entra ID sends (see `shared/azure-ad.md`).

use crate::scim::error::ScimError;
use crate::scim::filter::{eq_constraints, matches_element, parse_element_filter, Filter};
use crate::scim::normalize::{self, coerce_at, is_unset, set_or_remove, ReadOnly};
use crate::scim::schema::{
    self, AttrDef, AttrType, Home, Mutability, Resolved, ENTERPRISE, ENTERPRISE_SCHEMA,
};
use serde_json::{Map, Value};

/// URN of the PATCH request message schema.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most operations accepted in one PATCH request.
pub const MAX_OPERATIONS: usize = 1000;

type Object = Map<String, Value>;

/// The three PATCH operations of RFC 7644 §3.5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `add`: set a single value, append to a multi-valued one, merge into a complex one.
    Add,
    /// `remove`: unset the target (a `path` is required).
    Remove,
    /// `replace`: overwrite the target (merging sub-attributes of a complex one).
    Replace,
}

/// A parsed `path`: `attr`, `attr.sub`, `urn:…:attr`, `attr[filter]` or `attr[filter].sub`.
#[derive(Debug, Clone)]
pub struct PatchPath {
    /// The top-level attribute (its `sub` is always `None`).
    pub attr: Resolved,
    /// The value filter inside `[...]`, for multi-valued attributes.
    pub filter: Option<Filter>,
    /// The sub-attribute after `.`, if any.
    pub sub: Option<&'static AttrDef>,
}

impl PatchPath {
    /// The canonical path without its filter (`name.givenName`, `urn:…:User:manager`).
    fn label(&self) -> String {
        Resolved {
            sub: self.sub,
            ..self.attr
        }
        .canonical()
    }

    /// True when the path targets a read-only attribute or sub-attribute.
    fn is_read_only(&self) -> bool {
        self.attr.attr.mutability == Mutability::ReadOnly
            || self
                .sub
                .is_some_and(|s| s.mutability == Mutability::ReadOnly)
    }
}

/// One PATCH operation.
#[derive(Debug, Clone)]
pub struct PatchOp {
    /// What to do.
    pub op: OpKind,
    /// Where; `None` means the resource itself (add/replace with an object value).
    pub path: Option<PatchPath>,
    /// The value as sent; `Some(Value::Null)` is an explicit `null` ("clear").
    pub value: Option<Value>,
}

/// One operation of a PatchOp request as sent, before its path is resolved.
#[derive(Debug, Clone)]
pub struct RawOp {
    /// What to do.
    pub op: OpKind,
    /// The `path`, trimmed; `None` when absent or `null`.
    pub path: Option<String>,
    /// The value as sent; `Some(Value::Null)` is an explicit `null`.
    pub value: Option<Value>,
}

/// Reads the envelope of a PatchOp request (for any resource type): `schemas` must include
/// [`PATCH_OP_SCHEMA`] (case-insensitive), `Operations` must hold 1 to [`MAX_OPERATIONS`]
/// operations, op names are case-insensitive, `add` and `replace` need a `value`, and extra keys
/// (a top-level `id`, an operation's `name`) are ignored. A failure names the operation's index.
pub fn read_operations(body: &Value) -> Result<Vec<RawOp>, ScimError> {
    let body = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body must be a JSON object"))?;
    check_schemas(body)?;
    let ops = get_ci(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("'Operations' must be an array of operations"))?;
    if ops.is_empty() || ops.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "'Operations' must hold 1 to {MAX_OPERATIONS} operations, not {}",
            ops.len()
        )));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| read_op(op).map_err(|e| at_operation(i, e)))
        .collect()
}

/// `e` as the failure of operation `i`.
pub fn at_operation(i: usize, e: ScimError) -> ScimError {
    ScimError {
        detail: format!("Operations[{i}]: {}", e.detail),
        ..e
    }
}

/// Parses a PatchOp request body for a User ([`read_operations`]). A `path` that is a schema URN
/// becomes a path-less operation (or, for `remove` of the enterprise URN, one remove per
/// attribute).
pub fn parse_request(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    let raw = read_operations(body)?;
    let mut parsed = Vec::with_capacity(raw.len());
    for (i, op) in raw.into_iter().enumerate() {
        parsed.extend(resolve_op(op).map_err(|e| at_operation(i, e))?);
    }
    Ok(parsed)
}

/// Parses a PATCH `path` (`attr`, `attr.sub`, URN-qualified, `attr[filter]`, `attr[filter].sub`).
/// Unknown attributes, a filter on a single-valued attribute, a sub-attribute of a multi-valued
/// attribute without a filter, and malformed text are `400 invalidPath`.
pub fn parse_path(path: &str) -> Result<PatchPath, ScimError> {
    let text = path.trim();
    match text.find('[') {
        None => parse_plain(text),
        Some(open) => parse_filtered(text, open),
    }
}

/// Applies the operations in order to a normalised user and returns the re-normalised result.
/// All or nothing: on error nothing is returned but the error. Read-only attributes of the input
/// (`id`, `meta`) are kept as they are.
pub fn apply(resource: &Value, ops: &[PatchOp]) -> Result<Value, ScimError> {
    let mut doc = Doc::new(normalize::normalize_with(resource, ReadOnly::Keep)?);
    for op in ops {
        apply_op(&mut doc, op)?;
    }
    let user = normalize::normalize_with(&doc.into_user(), ReadOnly::Keep)?;
    normalize::check_invariants(&user)?;
    Ok(user)
}

fn check_schemas(body: &Object) -> Result<(), ScimError> {
    let listed = get_ci(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|schemas| {
            schemas
                .iter()
                .filter_map(Value::as_str)
                .any(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
        });
    if listed {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "'schemas' must contain {PATCH_OP_SCHEMA}"
        )))
    }
}

/// The value of `key`, compared case-insensitively.
fn get_ci<'a>(map: &'a Object, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn read_op(op: &Value) -> Result<RawOp, ScimError> {
    let op = op
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("each operation must be a JSON object"))?;
    let kind = parse_kind(get_ci(op, "op"))?;
    let value = get_ci(op, "value").cloned();
    if kind != OpKind::Remove && value.is_none() {
        return Err(missing_value());
    }
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.trim().is_empty() => {
            return Err(ScimError::invalid_path(
                "'path' is empty: leave it out to patch the resource itself",
            ))
        }
        Some(Value::String(p)) => Some(p.trim().to_string()),
        Some(_) => return Err(ScimError::invalid_path("'path' must be a string")),
    };
    Ok(RawOp {
        op: kind,
        path,
        value,
    })
}

fn resolve_op(raw: RawOp) -> Result<Vec<PatchOp>, ScimError> {
    let RawOp { op, path, value } = raw;
    match path {
        None => Ok(vec![PatchOp {
            op,
            path: None,
            value,
        }]),
        Some(p) => match schema::canonical_schema(&p) {
            Some(urn) => schema_ops(op, urn, value),
            None => Ok(vec![PatchOp {
                op,
                path: Some(parse_path(&p)?),
                value,
            }]),
        },
    }
}

fn parse_kind(op: Option<&Value>) -> Result<OpKind, ScimError> {
    let name = op
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_syntax("each operation needs an 'op' string"))?;
    [
        ("add", OpKind::Add),
        ("remove", OpKind::Remove),
        ("replace", OpKind::Replace),
    ]
    .into_iter()
    .find(|(n, _)| n.eq_ignore_ascii_case(name))
    .map(|(_, kind)| kind)
    .ok_or_else(|| ScimError::invalid_syntax(format!("unknown op '{name}'")))
}

/// An operation whose `path` is a whole schema URN.
fn schema_ops(
    kind: OpKind,
    urn: &'static str,
    value: Option<Value>,
) -> Result<Vec<PatchOp>, ScimError> {
    match kind {
        OpKind::Remove if urn == ENTERPRISE_SCHEMA => Ok(ENTERPRISE
            .attributes
            .iter()
            .map(|attr| PatchOp {
                op: OpKind::Remove,
                path: Some(PatchPath {
                    attr: Resolved {
                        home: Home::Enterprise,
                        attr,
                        sub: None,
                    },
                    filter: None,
                    sub: None,
                }),
                value: None,
            })
            .collect()),
        OpKind::Remove => Err(ScimError::invalid_path(
            "the core User schema cannot be removed",
        )),
        _ => {
            let mut wrapped = Map::new();
            wrapped.insert(urn.into(), value.unwrap_or(Value::Null));
            Ok(vec![PatchOp {
                op: kind,
                path: None,
                value: Some(Value::Object(wrapped)),
            }])
        }
    }
}

fn parse_plain(text: &str) -> Result<PatchPath, ScimError> {
    let found = resolve(text)?;
    let path = PatchPath {
        attr: Resolved { sub: None, ..found },
        filter: None,
        sub: found.sub,
    };
    if path.sub.is_some() && found.attr.multi_valued {
        return Err(needs_filter(&path));
    }
    Ok(path)
}

fn parse_filtered(text: &str, open: usize) -> Result<PatchPath, ScimError> {
    let bad = || ScimError::invalid_path(format!("'{text}' is not a valid attribute path"));
    let close = closing_bracket(text, open).ok_or_else(bad)?;
    let (Some(head), Some(inner), Some(tail)) = (
        text.get(..open),
        text.get(open + 1..close),
        text.get(close + 1..),
    ) else {
        return Err(bad());
    };
    let found = resolve(head)?;
    if found.sub.is_some() {
        return Err(bad());
    }
    if !found.attr.multi_valued {
        return Err(ScimError::invalid_path(format!(
            "'{}' is single-valued and cannot take a value filter",
            found.canonical()
        )));
    }
    let sub = match tail {
        "" => None,
        _ => Some(
            tail.strip_prefix('.')
                .and_then(|s| normalize::sub_index(found.attr, s))
                .map(|(_, def)| def)
                .ok_or_else(bad)?,
        ),
    };
    let filter = parse_element_filter(found.attr, found.home, inner)
        .map_err(|e| ScimError::invalid_path(format!("'{text}': {}", e.detail)))?;
    Ok(PatchPath {
        attr: found,
        filter: Some(filter),
        sub,
    })
}

/// The byte index of the `]` that closes the `[` at `open`, skipping quoted strings.
fn closing_bracket(text: &str, open: usize) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.get(open + 1..)?.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ']' if !quoted => return Some(open + 1 + i),
            _ => {}
        }
    }
    None
}

fn resolve(text: &str) -> Result<Resolved, ScimError> {
    normalize::resolve_attr(text)
        .ok_or_else(|| ScimError::invalid_path(format!("unknown attribute path '{text}'")))
}

fn needs_filter(path: &PatchPath) -> ScimError {
    ScimError::invalid_path(format!(
        "'{}' is a sub-attribute of a multi-valued attribute; select elements with a filter, \
         e.g. {}[type eq \"work\"].{}",
        path.label(),
        path.attr.attr.name,
        path.sub.map_or("value", |s| s.name)
    ))
}

fn not_multi_valued(path: &PatchPath) -> ScimError {
    ScimError::invalid_path(format!(
        "'{}' is single-valued and cannot take a value filter",
        path.label()
    ))
}

fn read_only(path: &PatchPath) -> ScimError {
    ScimError::mutability(format!("'{}' is read-only", path.label()))
}

fn missing_value() -> ScimError {
    ScimError::invalid_value("add and replace operations need a 'value'")
}

/// The user being patched, split into its core and enterprise attribute objects.
struct Doc {
    core: Object,
    enterprise: Object,
}

impl Doc {
    fn new(user: Value) -> Self {
        let mut core = match user {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let enterprise = match core.remove(ENTERPRISE_SCHEMA) {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        Doc { core, enterprise }
    }

    fn into_user(self) -> Value {
        let mut user = self.core;
        if !self.enterprise.is_empty() {
            user.insert(ENTERPRISE_SCHEMA.into(), Value::Object(self.enterprise));
        }
        Value::Object(user)
    }

    fn home(&mut self, home: Home) -> &mut Object {
        match home {
            Home::Core => &mut self.core,
            Home::Enterprise => &mut self.enterprise,
        }
    }
}

fn apply_op(doc: &mut Doc, op: &PatchOp) -> Result<(), ScimError> {
    match (&op.path, op.op) {
        (None, OpKind::Remove) => Err(ScimError::no_target("a remove operation needs a 'path'")),
        (None, kind) => apply_pathless(doc, kind, op.value.as_ref().ok_or_else(missing_value)?),
        (Some(path), kind) => {
            if path.is_read_only() {
                return Err(read_only(path));
            }
            match (kind, op.value.as_ref()) {
                (OpKind::Remove, value) => remove(doc, path, value),
                (_, Some(value)) => set(doc, path, kind, value),
                (_, None) => Err(missing_value()),
            }
        }
    }
}

/// An add or replace without a path: each key of the value object is applied as its own operation
/// (plain, dotted, URN-qualified or filtered keys, or a schema URN with an object of attributes).
/// A read-only key (`id`, `meta`, `groups`) is `400 mutability`, as it is with a path (RFC 7644
/// §3.5.2: a PATCH may not modify read-only attributes).
fn apply_pathless(doc: &mut Doc, kind: OpKind, value: &Value) -> Result<(), ScimError> {
    let attrs = value.as_object().ok_or_else(|| {
        ScimError::invalid_value("an add or replace without 'path' needs an object value")
    })?;
    for (key, v) in attrs {
        pathless_key(doc, kind, key, v)?;
    }
    Ok(())
}

fn pathless_key(doc: &mut Doc, kind: OpKind, key: &str, value: &Value) -> Result<(), ScimError> {
    if key.eq_ignore_ascii_case("schemas") {
        return Ok(());
    }
    if let Some(urn) = schema::canonical_schema(key) {
        return pathless_schema(doc, kind, urn, key, value);
    }
    let path = parse_path(key)?;
    if path.is_read_only() {
        return Err(read_only(&path));
    }
    set(doc, &path, kind, value)
}

/// A path-less value keyed by a schema URN: an object of that schema's attributes, or "unset"
/// (which clears the enterprise extension on replace).
fn pathless_schema(
    doc: &mut Doc,
    kind: OpKind,
    urn: &str,
    key: &str,
    value: &Value,
) -> Result<(), ScimError> {
    match value {
        Value::Object(attrs) => {
            for (name, v) in attrs
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("schemas"))
            {
                pathless_key(doc, kind, &format!("{urn}:{name}"), v)?;
            }
            Ok(())
        }
        _ if is_unset(value) => {
            if kind == OpKind::Replace && urn == ENTERPRISE_SCHEMA {
                doc.enterprise.clear();
            }
            Ok(())
        }
        _ => Err(ScimError::invalid_value(format!(
            "'{key}' must be an object of attributes"
        ))),
    }
}

/// Add or replace at a path.
fn set(doc: &mut Doc, path: &PatchPath, kind: OpKind, value: &Value) -> Result<(), ScimError> {
    let attr = path.attr.attr;
    match (&path.filter, path.sub) {
        (Some(filter), _) => set_filtered(doc, path, filter, kind, value),
        (None, Some(sub)) => set_sub(doc, path, sub, value),
        (None, None) if attr.multi_valued => set_multi(doc, path, kind, value),
        (None, None) if attr.ty == AttrType::Complex => merge_complex(doc, path, value),
        (None, None) => {
            let coerced = coerce_at(attr, value, &path.label())?;
            set_or_remove(doc.home(path.attr.home), attr.name, coerced);
            Ok(())
        }
    }
}

/// `name.givenName`, `manager.value`: one sub-attribute of a single-valued complex attribute.
fn set_sub(
    doc: &mut Doc,
    path: &PatchPath,
    sub: &'static AttrDef,
    value: &Value,
) -> Result<(), ScimError> {
    let attr = path.attr.attr;
    if attr.multi_valued {
        return Err(needs_filter(path));
    }
    let coerced = coerce_at(sub, value, &path.label())?;
    let home = doc.home(path.attr.home);
    let mut parent = take_object(home, attr.name);
    set_or_remove(&mut parent, sub.name, coerced);
    put_object(home, attr.name, parent);
    Ok(())
}

/// A single-valued complex attribute: the sub-attributes given replace the current ones, the
/// others stay; an unset value clears the attribute.
fn merge_complex(doc: &mut Doc, path: &PatchPath, value: &Value) -> Result<(), ScimError> {
    let attr = path.attr.attr;
    let coerced = coerce_at(attr, value, &path.label())?;
    let home = doc.home(path.attr.home);
    let mut current = take_object(home, attr.name);
    match value.as_object() {
        Some(raw) => forget_mentioned(&mut current, attr, raw),
        None if coerced.is_none() => current.clear(),
        None => {}
    }
    if let Some(Value::Object(new)) = coerced {
        current.extend(new);
    }
    put_object(home, attr.name, current);
    Ok(())
}

/// A multi-valued attribute without filter: add appends the elements not already present (an
/// element is present when an existing one has all its sub-attributes), replace swaps the array.
fn set_multi(
    doc: &mut Doc,
    path: &PatchPath,
    kind: OpKind,
    value: &Value,
) -> Result<(), ScimError> {
    let attr = path.attr.attr;
    let items = match coerce_at(attr, value, &path.label())? {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let home = doc.home(path.attr.home);
    let merged = match kind {
        OpKind::Replace => items,
        _ => {
            let current = take_array(home, attr.name);
            let kept = current.len();
            let mut merged = items.into_iter().fold(current, |mut acc, item| {
                if !acc.iter().any(|have| contains(have, &item)) {
                    acc.push(item);
                }
                acc
            });
            demote_others(&mut merged, |i| i >= kept);
            merged
        }
    };
    put_array(home, attr.name, merged);
    Ok(())
}

/// RFC 7644 §3.5.2: an operation that makes an element primary sets `primary` to false on every
/// other element. `written` tells the elements the operation wrote.
fn demote_others(items: &mut [Value], written: impl Fn(usize) -> bool) {
    let promoted = items
        .iter()
        .enumerate()
        .any(|(i, item)| written(i) && normalize::is_primary(item));
    if !promoted {
        return;
    }
    for (i, item) in items.iter_mut().enumerate() {
        if let (false, Value::Object(element)) = (written(i), item) {
            if element.contains_key("primary") {
                element.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// `emails[type eq "work"]` or `emails[type eq "work"].value`: updates every matching element.
/// When none matches, `add` creates one from the filter's `eq` constraints; `replace` is `400
/// noTarget` (RFC 7644 §3.5.2.3) except in the shape Entra uses to fill a typed slot
/// ([`fills_typed_slot`]), which creates the element too. An unset value without
/// sub-attribute removes the matching elements. Making an element primary demotes the others.
fn set_filtered(
    doc: &mut Doc,
    path: &PatchPath,
    filter: &Filter,
    kind: OpKind,
    value: &Value,
) -> Result<(), ScimError> {
    let attr = path.attr.attr;
    if !attr.multi_valued {
        return Err(not_multi_valued(path));
    }
    let (label, sub) = (path.label(), path.sub);
    let home = doc.home(path.attr.home);
    let mut items = take_array(home, attr.name);
    if sub.is_none() && is_unset(value) {
        items.retain(|item| !matches_element(filter, item));
    } else {
        let mut written = vec![false; items.len()];
        for (item, hit) in items.iter_mut().zip(written.iter_mut()) {
            if let (true, Value::Object(element)) = (matches_element(filter, item), item) {
                update_element(element, attr, sub, value, &label)?;
                *hit = true;
            }
        }
        if !written.contains(&true) && !is_unset(value) {
            if kind == OpKind::Replace && !fills_typed_slot(filter, sub) {
                return Err(ScimError::no_target(format!(
                    "no element of '{label}' matches the filter of the replace"
                )));
            }
            items.push(Value::Object(new_element(
                attr, filter, sub, value, &label,
            )?));
            written.push(true);
        }
        demote_others(&mut items, |i| written.get(i) == Some(&true));
    }
    items.retain(|item| !is_unset(item));
    put_array(home, attr.name, items);
    Ok(())
}

/// True for Entra's way of setting one sub-attribute of the element in a slot, which creates the
/// element when the user has none there: `emails[type eq "work"].value`,
/// `phoneNumbers[type eq "mobile"].value`, `addresses[type eq "work"].locality`,
/// `roles[primary eq "True"].value`: a sub-attribute, and a filter that only pins the slot
/// (`type`, `primary`) with `eq`, never the element's own value.
fn fills_typed_slot(filter: &Filter, sub: Option<&'static AttrDef>) -> bool {
    sub.is_some()
        && eq_constraints(filter).is_some_and(|pinned| {
            !pinned.is_empty()
                && pinned
                    .iter()
                    .all(|(name, _)| matches!(*name, "type" | "primary"))
        })
}

/// Sets one sub-attribute of an element, or merges an object value into it.
fn update_element(
    element: &mut Object,
    attr: &'static AttrDef,
    sub: Option<&'static AttrDef>,
    value: &Value,
    label: &str,
) -> Result<(), ScimError> {
    match sub {
        Some(sub) => {
            let coerced = coerce_at(sub, value, label)?;
            set_or_remove(element, sub.name, coerced);
        }
        None => {
            let coerced = normalize::coerce_element(attr, value, label)?;
            if let Some(raw) = value.as_object() {
                forget_mentioned(element, attr, raw);
            }
            element.extend(coerced.unwrap_or_default());
        }
    }
    Ok(())
}

/// A new element built from the filter's `eq` constraints plus the value; `400 noTarget` when
/// the filter is not a conjunction of equalities.
fn new_element(
    attr: &'static AttrDef,
    filter: &Filter,
    sub: Option<&'static AttrDef>,
    value: &Value,
    label: &str,
) -> Result<Object, ScimError> {
    let no_target = || {
        ScimError::no_target(format!(
            "no element of '{label}' matches the filter, and the filter does not describe a new one"
        ))
    };
    let mut element = Map::new();
    for (name, literal) in eq_constraints(filter).ok_or_else(no_target)? {
        let (_, def) = normalize::sub_index(attr, name).ok_or_else(no_target)?;
        let coerced = coerce_at(def, &literal, label)?;
        set_or_remove(&mut element, def.name, coerced);
    }
    update_element(&mut element, attr, sub, value, label)?;
    Ok(element)
}

/// Remove at a path; removing something absent succeeds.
fn remove(doc: &mut Doc, path: &PatchPath, value: Option<&Value>) -> Result<(), ScimError> {
    let attr = path.attr.attr;
    match (&path.filter, path.sub) {
        (Some(filter), sub) => remove_filtered(doc, path, filter, sub),
        (None, Some(_)) if attr.multi_valued => Err(needs_filter(path)),
        (None, Some(sub)) => {
            let home = doc.home(path.attr.home);
            let mut parent = take_object(home, attr.name);
            parent.remove(sub.name);
            put_object(home, attr.name, parent);
            Ok(())
        }
        (None, None) => match value {
            Some(listed) if attr.multi_valued && !is_unset(listed) => {
                remove_listed(doc, path, listed)
            }
            _ => {
                doc.home(path.attr.home).remove(attr.name);
                Ok(())
            }
        },
    }
}

/// Removes the matching elements, or their sub-attribute (elements left empty go too).
fn remove_filtered(
    doc: &mut Doc,
    path: &PatchPath,
    filter: &Filter,
    sub: Option<&'static AttrDef>,
) -> Result<(), ScimError> {
    let attr = path.attr.attr;
    if !attr.multi_valued {
        return Err(not_multi_valued(path));
    }
    let home = doc.home(path.attr.home);
    let mut items = take_array(home, attr.name);
    match sub {
        None => items.retain(|item| !matches_element(filter, item)),
        Some(sub) => {
            for item in items.iter_mut() {
                if !matches_element(filter, item) {
                    continue;
                }
                if let Value::Object(element) = item {
                    element.remove(sub.name);
                }
            }
        }
    }
    items.retain(|item| !is_unset(item));
    put_array(home, attr.name, items);
    Ok(())
}

/// `{"op":"remove","path":"roles","value":[{"value":"x"}]}`: removes only the listed elements,
/// matched by `value` (or by all given sub-attributes when an element has no `value`).
fn remove_listed(doc: &mut Doc, path: &PatchPath, listed: &Value) -> Result<(), ScimError> {
    let attr = path.attr.attr;
    let gone = match coerce_at(attr, listed, &path.label())? {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let home = doc.home(path.attr.home);
    let mut items = take_array(home, attr.name);
    items.retain(|item| !gone.iter().any(|g| same_element(item, g)));
    put_array(home, attr.name, items);
    Ok(())
}

fn same_element(have: &Value, gone: &Value) -> bool {
    match gone.get("value") {
        Some(v) => have.get("value") == Some(v),
        None => contains(have, gone),
    }
}

/// True when `have` holds `want`: equal, or for objects every key of `want` with the same value.
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(have), Value::Object(want)) => {
            want.iter().all(|(k, v)| have.get(k) == Some(v))
        }
        _ => have == want,
    }
}

/// Drops from `current` every sub-attribute named in `raw`, so a merge replaces them (and an unset
/// value clears them).
fn forget_mentioned(current: &mut Object, attr: &'static AttrDef, raw: &Object) {
    for key in raw.keys() {
        if let Some((_, sub)) = normalize::sub_index(attr, key) {
            current.remove(sub.name);
        }
    }
}

fn take_object(map: &mut Object, name: &str) -> Object {
    match map.remove(name) {
        Some(Value::Object(obj)) => obj,
        _ => Map::new(),
    }
}

fn put_object(map: &mut Object, name: &str, obj: Object) {
    set_or_remove(map, name, (!obj.is_empty()).then_some(Value::Object(obj)));
}

fn take_array(map: &mut Object, name: &str) -> Vec<Value> {
    match map.remove(name) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

fn put_array(map: &mut Object, name: &str, items: Vec<Value>) {
    set_or_remove(
        map,
        name,
        (!items.is_empty()).then_some(Value::Array(items)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::USER_SCHEMA;
    use serde_json::json;

    const ENT: &str = ENTERPRISE_SCHEMA;

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
    }

    fn user() -> Value {
        normalize::normalize_user(&json!({
            "userName": "alice@contoso.com", "active": true, "displayName": "Alice Smith",
            "emails": [{"primary": true, "type": "work", "value": "alice@contoso.com"}],
            "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
            ENT: {"department": "Sales", "employeeNumber": "701984"}
        }))
        .unwrap()
    }

    fn patch(resource: &Value, ops: Value) -> Result<Value, ScimError> {
        apply(resource, &parse_request(&body(ops))?)
    }

    fn ok(resource: &Value, ops: Value) -> Value {
        patch(resource, ops).unwrap()
    }

    fn fails(resource: &Value, ops: Value) -> &'static str {
        let e = patch(resource, ops).unwrap_err();
        assert_eq!(e.status, 400);
        e.scim_type.map(|t| t.as_str()).unwrap_or("")
    }

    #[test]
    fn op_names_in_any_case() {
        for op in ["Replace", "replace", "REPLACE", "Add", "ADD", "add"] {
            let out = ok(
                &user(),
                json!([{"op": op, "path": "displayName", "value": "X"}]),
            );
            assert_eq!(out["displayName"], "X", "{op}");
        }
        let out = ok(&user(), json!([{"op": "REMOVE", "path": "displayName"}]));
        assert!(out.get("displayName").is_none());
        assert_eq!(
            fails(
                &user(),
                json!([{"op": "merge", "path": "displayName", "value": "X"}])
            ),
            "invalidSyntax"
        );
    }

    #[test]
    fn request_envelope_is_checked_and_extra_keys_ignored() {
        let op = json!({"op": "replace", "path": "displayName", "value": "X", "name": "ignored"});
        let parsed = parse_request(
            &json!({"schemas": [PATCH_OP_SCHEMA.to_uppercase()], "id": "abc",
            "operations": [op.clone()]}),
        )
        .unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].op, OpKind::Replace);
        for bad in [
            json!({"Operations": [op.clone()]}),
            json!({"schemas": [USER_SCHEMA], "Operations": [op.clone()]}),
            json!({"schemas": [PATCH_OP_SCHEMA]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "add"}}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ["add"]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"path": "displayName", "value": "x"}]}),
            json!("nope"),
        ] {
            let e = parse_request(&bad).unwrap_err();
            assert_eq!(e.scim_type.unwrap().as_str(), "invalidSyntax", "{bad}");
        }
        let too_many = vec![op; MAX_OPERATIONS + 1];
        assert!(parse_request(&body(json!(too_many))).is_err());
    }

    #[test]
    fn paths_of_every_shape_parse() {
        let p = parse_path("name.givenName").unwrap();
        assert_eq!(
            (p.attr.attr.name, p.sub.unwrap().name),
            ("name", "givenName")
        );
        let p = parse_path(&format!("{ENT}:manager.value")).unwrap();
        assert_eq!(
            (p.attr.home, p.label()),
            (Home::Enterprise, format!("{ENT}:manager.value"))
        );
        let p = parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0User:department")
            .unwrap();
        assert_eq!(p.attr.attr.name, "department");
        let p = parse_path("EMAILS[type eq \"work\"]").unwrap();
        assert!(p.filter.is_some() && p.sub.is_none());
        let p = parse_path("emails[type eq \"a]b\"].Value").unwrap();
        assert_eq!(p.sub.unwrap().name, "value");
        for bad in [
            "nosuch",
            "name.nosuch",
            "emails[type eq \"work\"",
            "emails[type eq \"work\"]value",
            "emails[type eq \"work\"].nosuch",
            "name[givenName eq \"A\"]",
            "emails.value",
            "urn:example:other:1.0:User:x",
            "emails[type eq]",
        ] {
            let e = parse_path(bad).unwrap_err();
            assert_eq!(e.scim_type.unwrap().as_str(), "invalidPath", "{bad}");
        }
    }

    #[test]
    fn pathless_replace_with_plain_dotted_and_urn_keys() {
        let out = ok(
            &user(),
            json!([{"op": "replace", "value": {
            "displayName": "Alice S", "name.givenName": "Alicia",
            format!("{ENT}:employeeNumber"): "42", "active": false}}]),
        );
        assert_eq!(out["displayName"], "Alice S");
        assert_eq!(
            out["name"],
            json!({"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alicia"})
        );
        assert_eq!(
            out[ENT],
            json!({"employeeNumber": "42", "department": "Sales"})
        );
        assert_eq!(out["active"], false);
    }

    #[test]
    fn pathless_value_with_extension_object_and_filtered_key() {
        let out = ok(
            &user(),
            json!([{"op": "add", "value": {
            ENT: {"costCenter": "CC1", "manager": "m1"},
            "emails[type eq \"home\"].value": "a@home.example",
            "schemas": ["ignored"]}}]),
        );
        assert_eq!(out[ENT]["costCenter"], "CC1");
        assert_eq!(out[ENT]["manager"], json!({"value": "m1"}));
        assert_eq!(
            out["emails"][1],
            json!({"value": "a@home.example", "type": "home"})
        );
        let out = ok(&out, json!([{"op": "replace", "value": {ENT: null}}]));
        assert!(out.get(ENT).is_none());
        assert_eq!(out["schemas"], json!([USER_SCHEMA]));
    }

    #[test]
    fn string_booleans_and_active_set_with_add() {
        let out = ok(
            &user(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        );
        assert_eq!(out["active"], false);
        let out = ok(
            &out,
            json!([{"op": "Add", "path": "active", "value": "True"}]),
        );
        assert_eq!(out["active"], true);
        let out = ok(
            &out,
            json!([{"op": "add", "path": "active", "value": false}]),
        );
        assert_eq!(out["active"], false);
    }

    #[test]
    fn replace_with_empty_or_null_clears() {
        for empty in [json!(""), Value::Null] {
            let out = ok(
                &user(),
                json!([
                {"op": "Replace", "path": "displayName", "value": empty},
                {"op": "Replace", "path": "name.givenName", "value": empty},
                {"op": "Replace", "path": format!("{ENT}:department"), "value": empty},
                {"op": "Replace", "path": "emails", "value": empty}]),
            );
            assert!(out.get("displayName").is_none());
            assert!(out["name"].get("givenName").is_none());
            assert_eq!(out[ENT], json!({"employeeNumber": "701984"}));
            assert!(out.get("emails").is_none());
        }
        let out = ok(
            &user(),
            json!([{"op": "replace", "value": {"displayName": null, "name": ""}}]),
        );
        assert!(out.get("displayName").is_none() && out.get("name").is_none());
    }

    #[test]
    fn add_appends_without_duplicates_and_replace_swaps_array() {
        let home = json!({"value": "a@home.example", "type": "home"});
        let out = ok(
            &user(),
            json!([{"op": "add", "path": "emails", "value": [home.clone()]}]),
        );
        let out = ok(
            &out,
            json!([{"op": "add", "path": "emails", "value": [home.clone(), {"value": "alice@contoso.com"}]}]),
        );
        assert_eq!(out["emails"].as_array().unwrap().len(), 2);
        assert_eq!(out["emails"][1], home);
        let out = ok(
            &out,
            json!([{"op": "replace", "path": "emails", "value": [{"value": "only@x"}]}]),
        );
        assert_eq!(out["emails"], json!([{"value": "only@x"}]));
    }

    #[test]
    fn multi_valued_values_must_be_arrays() {
        for op in ["add", "replace"] {
            for value in [json!({"value": "only@x"}), json!("only@x"), json!(3)] {
                let e = fails(
                    &user(),
                    json!([{"op": op, "path": "emails", "value": value}]),
                );
                assert_eq!(e, "invalidValue", "{op} {value}");
                let e = fails(&user(), json!([{"op": op, "value": {"emails": value}}]));
                assert_eq!(e, "invalidValue", "path-less {op} {value}");
            }
        }
    }

    #[test]
    fn making_an_element_primary_demotes_the_others() {
        let home = json!({"value": "a@home", "type": "home", "primary": true});
        let out = ok(
            &user(),
            json!([{"op": "add", "path": "emails", "value": [home]}]),
        );
        assert_eq!(out["emails"][0]["primary"], false);
        assert_eq!(out["emails"][1]["primary"], true);
        let out = ok(
            &out,
            json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true}]),
        );
        assert_eq!(out["emails"][0]["primary"], true);
        assert_eq!(out["emails"][1]["primary"], false);
        let two = json!([{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]);
        for op in ["add", "replace"] {
            let e = fails(&user(), json!([{"op": op, "path": "emails", "value": two}]));
            assert_eq!(e, "invalidValue", "{op}");
        }
    }

    #[test]
    fn pathless_read_only_keys_are_mutability_errors() {
        for value in [
            json!({"id": "other"}),
            json!({"meta": {"created": "x"}}),
            json!({"displayName": "New", "ID": "abc"}),
            json!({"groups": [{"value": "g"}]}),
            json!({ENT: {"manager": {"value": "m"}}, "meta.lastModified": "x"}),
        ] {
            for op in ["add", "replace"] {
                let e = fails(&user(), json!([{"op": op, "value": value}]));
                assert_eq!(e, "mutability", "{op} {value}");
            }
        }
    }

    #[test]
    fn unqualified_extension_paths_resolve_to_the_extension() {
        let out = ok(
            &user(),
            json!([{"op": "Replace", "path": "department", "value": "Ops"},
            {"op": "Add", "path": "manager", "value": "m1"},
            {"op": "replace", "path": "EmployeeNumber", "value": "7"},
            {"op": "replace", "value": {"costCenter": "CC", "manager.value": "m2"}}]),
        );
        assert_eq!(
            out[ENT],
            json!({"employeeNumber": "7", "costCenter": "CC", "department": "Ops", "manager": {"value": "m2"}})
        );
        let out = ok(&out, json!([{"op": "remove", "path": "manager"}]));
        assert!(out[ENT].get("manager").is_none());
        assert_eq!(
            fails(
                &user(),
                json!([{"op": "add", "path": format!("{USER_SCHEMA}:department"), "value": "x"}])
            ),
            "invalidPath"
        );
    }

    #[test]
    fn empty_path_is_invalid_path() {
        for path in ["", "  "] {
            let e = parse_request(&body(
                json!([{"op": "replace", "path": path, "value": {"displayName": "x"}}]),
            ))
            .unwrap_err();
            assert_eq!(e.scim_type.unwrap().as_str(), "invalidPath", "{path:?}");
        }
    }

    #[test]
    fn replace_matching_nothing_is_no_target_unless_it_fills_a_slot() {
        for path in [
            "emails[type eq \"home\"]",
            "emails[value eq \"nobody@x\"].type",
            "emails[value eq \"nobody@x\"]",
            "emails[type eq \"home\" and value eq \"a@x\"].display",
            "addresses[type sw \"h\"].locality",
        ] {
            let value = match path.ends_with(']') {
                true => json!({"value": "v@x", "type": "home"}),
                false => json!("v"),
            };
            let e = fails(
                &user(),
                json!([{"op": "replace", "path": path, "value": value}]),
            );
            assert_eq!(e, "noTarget", "{path}");
        }
        for (path, field) in [
            ("phoneNumbers[type eq \"mobile\"].value", "phoneNumbers"),
            ("addresses[type eq \"work\"].locality", "addresses"),
            ("emails[type eq \"home\"].display", "emails"),
            ("roles[primary eq \"True\"].value", "roles"),
        ] {
            let out = ok(
                &user(),
                json!([{"op": "replace", "path": path, "value": "v"}]),
            );
            assert!(
                out[field].as_array().is_some_and(|a| !a.is_empty()),
                "{path}"
            );
        }
        let out = ok(
            &user(),
            json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"value": "h@x"}}]),
        );
        assert_eq!(out["emails"][1], json!({"value": "h@x", "type": "home"}));
    }

    #[test]
    fn complex_attributes_merge_sub_attributes() {
        let out = ok(
            &user(),
            json!([{"op": "replace", "path": "name", "value": {"familyName": "Smyth", "middleName": "B"}}]),
        );
        assert_eq!(
            out["name"],
            json!({"formatted": "Alice Smith", "familyName": "Smyth", "givenName": "Alice", "middleName": "B"})
        );
        let out = ok(
            &out,
            json!([{"op": "add", "path": "name", "value": {"givenName": "Al", "middleName": null}}]),
        );
        assert_eq!(
            out["name"],
            json!({"formatted": "Alice Smith", "familyName": "Smyth", "givenName": "Al"})
        );
        let out = ok(
            &out,
            json!([{"op": "add", "path": format!("{ENT}:manager"), "value": {"value": "m1"}},
            {"op": "replace", "path": format!("{ENT}:manager"), "value": {"value": "m2", "displayName": "Bob"}}]),
        );
        assert_eq!(out[ENT]["manager"], json!({"value": "m2"}));
    }

    #[test]
    fn filtered_sub_attribute_updates_or_creates() {
        let out = ok(
            &user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "new@contoso.com", "type": "work", "primary": true}])
        );
        for op in ["add", "replace"] {
            let out = ok(
                &user(),
                json!([{"op": op, "path": "emails[type eq \"home\"].value", "value": "a@home"}]),
            );
            assert_eq!(
                out["emails"][1],
                json!({"value": "a@home", "type": "home"}),
                "{op}"
            );
            let out = ok(
                &user(),
                json!([{"op": op, "path": "roles[primary eq \"True\"].value", "value": "Admin"}]),
            );
            assert_eq!(
                out["roles"],
                json!([{"value": "Admin", "primary": true}]),
                "{op}"
            );
            let again = ok(
                &out,
                json!([{"op": op, "path": "roles[primary eq \"True\"].value", "value": "Admin"}]),
            );
            assert_eq!(again, out, "{op} is idempotent");
        }
        let e = fails(
            &user(),
            json!([{"op": "replace", "path": "emails[type ne \"work\"].value", "value": "x"}]),
        );
        assert_eq!(e, "noTarget");
        let out = ok(
            &user(),
            json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": ""}]),
        );
        assert_eq!(out, user());
    }

    #[test]
    fn filtered_object_value_merges_or_creates() {
        let out = ok(
            &user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "w@x", "primary": false}}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "w@x", "type": "work", "primary": false}])
        );
        let out = ok(
            &user(),
            json!([{"op": "add", "path": "phoneNumbers[type eq \"mobile\"]", "value": {"value": "+1 555"}}]),
        );
        assert_eq!(
            out["phoneNumbers"],
            json!([{"value": "+1 555", "type": "mobile"}])
        );
        let out = ok(
            &user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": null}]),
        );
        assert!(out.get("emails").is_none());
    }

    #[test]
    fn remove_semantics() {
        assert_eq!(fails(&user(), json!([{"op": "remove"}])), "noTarget");
        assert_eq!(
            fails(
                &user(),
                json!([{"op": "remove", "value": {"displayName": "x"}}])
            ),
            "noTarget"
        );
        assert_eq!(
            ok(&user(), json!([{"op": "remove", "path": "nickName"}])),
            user()
        );
        assert_eq!(
            ok(
                &user(),
                json!([{"op": "remove", "path": "emails[type eq \"home\"]"}])
            ),
            user()
        );
        let two = ok(
            &user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "h@x", "type": "home"}]}]),
        );
        let out = ok(
            &two,
            json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
        );
        assert_eq!(out["emails"], json!([{"value": "h@x", "type": "home"}]));
        let out = ok(
            &two,
            json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
        );
        assert_eq!(
            out["emails"][0],
            json!({"value": "alice@contoso.com", "type": "work"})
        );
        let out = ok(
            &two,
            json!([{"op": "remove", "path": "emails[type eq \"home\"].value"},
            {"op": "remove", "path": "emails[type eq \"home\"].type"}]),
        );
        assert_eq!(out["emails"].as_array().unwrap().len(), 1);
        let out = ok(
            &two,
            json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": format!("{ENT}:department")}]),
        );
        assert!(out["name"].get("givenName").is_none());
        assert!(out[ENT].get("department").is_none());
    }

    #[test]
    fn remove_with_value_list_removes_only_those() {
        let roles = json!([{"value": "r1"}, {"value": "r2", "display": "Two"}, {"value": "r3"}]);
        let start = ok(
            &user(),
            json!([{"op": "add", "path": "roles", "value": roles}]),
        );
        let out = ok(
            &start,
            json!([{"op": "Remove", "path": "roles", "value": [{"value": "r2"}, {"value": "nope"}]}]),
        );
        assert_eq!(out["roles"], json!([{"value": "r1"}, {"value": "r3"}]));
        let out = ok(&start, json!([{"op": "Remove", "path": "roles"}]));
        assert!(out.get("roles").is_none());
    }

    #[test]
    fn manager_shapes_all_store_value_object() {
        let path = format!("{ENT}:manager");
        for value in [
            json!("m1"),
            json!({"value": "m1"}),
            json!([{"$ref": "../Users/m1", "value": "m1"}]),
        ] {
            for op in ["Add", "replace"] {
                let out = ok(&user(), json!([{"op": op, "path": path, "value": value}]));
                assert_eq!(out[ENT]["manager"], json!({"value": "m1"}), "{op} {value}");
            }
        }
        let out = ok(
            &user(),
            json!([{"op": "add", "path": format!("{path}.value"), "value": "m9"}]),
        );
        assert_eq!(out[ENT]["manager"], json!({"value": "m9"}));
        let out = ok(&out, json!([{"op": "remove", "path": path}]));
        assert!(out[ENT].get("manager").is_none());
    }

    #[test]
    fn roles_as_json_encoded_strings() {
        let encoded =
            r#"[{"primary":true,"type":"WindowsAzureActiveDirectoryRole","value":"Admin"}]"#;
        let out = ok(
            &user(),
            json!([{"op": "replace", "path": "roles", "value": encoded}]),
        );
        assert_eq!(
            out["roles"],
            json!([{"value": "Admin", "type": "WindowsAzureActiveDirectoryRole", "primary": true}])
        );
        let entra = json!([{"value": r#"{"id":"827f","value":"Admin","displayName":"Admin"}"#},
                           {"value": r#"{"id":"8ae0","value":"Reader","displayName":"Reader"}"#}]);
        let out = ok(
            &out,
            json!([{"op": "Add", "path": "roles", "value": entra}]),
        );
        assert_eq!(out["roles"].as_array().unwrap().len(), 3);
        assert_eq!(
            out["roles"][2],
            json!({"value": "Reader", "display": "Reader"})
        );
    }

    #[test]
    fn patch_that_changes_nothing_succeeds() {
        let out = ok(
            &user(),
            json!([{"op": "replace", "path": "active", "value": true},
            {"op": "add", "path": "emails", "value": [{"value": "alice@contoso.com", "type": "work"}]}]),
        );
        assert_eq!(out, user());
    }

    #[test]
    fn read_only_targets_are_mutability_errors() {
        for path in [
            "id",
            "meta",
            "meta.lastModified",
            "groups",
            "groups[value eq \"g\"]",
            &format!("{ENT}:manager.displayName"),
        ] {
            for op in ["add", "replace", "remove"] {
                let e = fails(&user(), json!([{"op": op, "path": path, "value": "x"}]));
                assert_eq!(e, "mutability", "{op} {path}");
            }
        }
    }

    #[test]
    fn unknown_attributes_are_invalid_path() {
        assert_eq!(
            fails(
                &user(),
                json!([{"op": "add", "path": "shoeSize", "value": "9"}])
            ),
            "invalidPath"
        );
        assert_eq!(
            fails(&user(), json!([{"op": "add", "value": {"shoeSize": "9"}}])),
            "invalidPath"
        );
        assert_eq!(
            fails(
                &user(),
                json!([{"op": "add", "value": {ENT: {"shoeSize": "9"}}}])
            ),
            "invalidPath"
        );
        assert_eq!(
            fails(&user(), json!([{"op": "add", "path": 5, "value": "9"}])),
            "invalidPath"
        );
    }

    #[test]
    fn add_or_replace_without_value_is_invalid_value() {
        assert_eq!(
            fails(&user(), json!([{"op": "add", "path": "displayName"}])),
            "invalidValue"
        );
        assert_eq!(fails(&user(), json!([{"op": "replace"}])), "invalidValue");
        let op = PatchOp {
            op: OpKind::Add,
            path: Some(parse_path("displayName").unwrap()),
            value: None,
        };
        let e = apply(&user(), &[op]).unwrap_err();
        assert_eq!(e.scim_type.unwrap().as_str(), "invalidValue");
    }

    #[test]
    fn wrong_value_types_are_invalid_value() {
        for (path, value) in [
            ("userName", json!(5)),
            ("active", json!("maybe")),
            ("name", json!("Alice")),
            ("name.givenName", json!({"a": 1})),
            ("emails", json!(["x@y"])),
            ("emails", json!(7)),
            ("emails[type eq \"work\"].primary", json!("yes")),
            ("emails[type eq \"work\"]", json!("x")),
        ] {
            let e = fails(
                &user(),
                json!([{"op": "replace", "path": path, "value": value}]),
            );
            assert_eq!(e, "invalidValue", "{path} {value}");
        }
        assert_eq!(
            fails(
                &user(),
                json!([{"op": "replace", "value": "not an object"}])
            ),
            "invalidValue"
        );
        assert_eq!(
            fails(&user(), json!([{"op": "replace", "value": {ENT: "Sales"}}])),
            "invalidValue"
        );
        assert_eq!(
            fails(&user(), json!([{"op": "remove", "path": "userName"}])),
            "invalidValue"
        );
    }

    #[test]
    fn filter_on_single_valued_attribute_is_invalid_path() {
        let e = fails(
            &user(),
            json!([{"op": "replace", "path": "name[givenName eq \"Alice\"].familyName", "value": "x"}]),
        );
        assert_eq!(e, "invalidPath");
        let e = fails(
            &user(),
            json!([{"op": "remove", "path": format!("{ENT}:manager[value eq \"m\"]")}]),
        );
        assert_eq!(e, "invalidPath");
    }

    #[test]
    fn schema_urn_as_path() {
        let out = ok(
            &user(),
            json!([{"op": "replace", "path": ENT, "value": {"division": "D1"}}]),
        );
        assert_eq!(out[ENT]["division"], "D1");
        assert_eq!(out[ENT]["department"], "Sales");
        let out = ok(&out, json!([{"op": "remove", "path": ENT}]));
        assert!(out.get(ENT).is_none());
        assert_eq!(
            fails(&user(), json!([{"op": "remove", "path": USER_SCHEMA}])),
            "invalidPath"
        );
    }

    #[test]
    fn all_or_nothing_and_read_only_kept() {
        let mut stored = user();
        stored["id"] = json!("abc");
        stored["meta"] = json!({"resourceType": "User", "version": "W/\"1\""});
        let e = patch(
            &stored,
            json!([{"op": "replace", "path": "displayName", "value": "New"},
            {"op": "replace", "path": "active", "value": "nope"}]),
        );
        assert!(e.is_err());
        let out = ok(
            &stored,
            json!([{"op": "replace", "path": "displayName", "value": "New"}]),
        );
        assert_eq!(out["id"], "abc");
        assert_eq!(out["meta"], stored["meta"]);
        assert_eq!(out["displayName"], "New");
    }

    /// The typical create body and both PATCH shapes from `shared/azure-ad.md`, verbatim.
    #[test]
    fn entra_documented_bodies() {
        let create: Value = serde_json::from_str(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
 "externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"alice@contoso.com","active":true,
 "displayName":"Alice Smith",
 "emails":[{"primary":true,"type":"work","value":"alice@contoso.com"}],
 "meta":{"resourceType":"User"},
 "name":{"formatted":"Alice Smith","familyName":"Smith","givenName":"Alice"},
 "roles":[],
 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","employeeNumber":"701984"}}"#).unwrap();
        let stored = normalize::normalize_user(&create).unwrap();
        let default_mode: Value = serde_json::from_str(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
 "Operations":[
  {"op":"Replace","path":"emails[type eq \"work\"].value","value":"new@contoso.com"},
  {"op":"Replace","path":"name.familyName","value":"Smyth"},
  {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Ops"},
  {"op":"Replace","path":"active","value":"False"},
  {"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"<manager id>"}]}"#).unwrap();
        let out = apply(&stored, &parse_request(&default_mode).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({
                "schemas": [USER_SCHEMA, ENT],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "userName": "alice@contoso.com",
                "name": {"formatted": "Alice Smith", "familyName": "Smyth", "givenName": "Alice"},
                "displayName": "Alice Smith", "active": false,
                "emails": [{"value": "new@contoso.com", "type": "work", "primary": true}],
                ENT: {"employeeNumber": "701984", "department": "Ops", "manager": {"value": "<manager id>"}}
            })
        );
        let opt: Value = serde_json::from_str(r#"{"op":"replace","value":{"displayName":"Alice S","name.givenName":"Alice","name.familyName":"Smyth",
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"42","active":false}}"#).unwrap();
        let out = apply(&stored, &parse_request(&body(json!([opt]))).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({
                "schemas": [USER_SCHEMA, ENT],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "userName": "alice@contoso.com",
                "name": {"formatted": "Alice Smith", "familyName": "Smyth", "givenName": "Alice"},
                "displayName": "Alice S", "active": false,
                "emails": [{"value": "alice@contoso.com", "type": "work", "primary": true}],
                ENT: {"employeeNumber": "42", "department": "Sales"}
            })
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                prop_oneof![
                    Just("".to_string()),
                    Just("True".to_string()),
                    Just("work".to_string()),
                    Just("[{\"value\":\"x\"}]".to_string()),
                    Just("{\"value\":\"y\"}".to_string()),
                    "[a-zA-Z0-9 ]{0,8}"
                ]
                .prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec((key(), inner), 0..4)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("value".to_string()),
                Just("type".to_string()),
                Just("primary".to_string()),
                Just("givenName".to_string()),
                Just("displayName".to_string()),
                Just("$ref".to_string()),
                "[a-z]{1,6}",
            ]
        }

        fn path() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("userName"),
                Just("active"),
                Just("displayName"),
                Just("name"),
                Just("name.givenName"),
                Just("emails"),
                Just("emails[type eq \"work\"]"),
                Just("emails[type eq \"work\"].value"),
                Just("emails[type eq \"work\" or primary eq true].value"),
                Just("roles"),
                Just("roles[primary eq \"True\"].value"),
                Just("phoneNumbers[not (type eq \"x\")]"),
                Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
                Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
                Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
                Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
                Just("id"),
                Just("meta.created"),
                Just("password"),
                Just("emails.value"),
                Just(""),
            ]
            .prop_map(str::to_string)
        }

        fn op() -> impl Strategy<Value = Value> {
            (
                prop_oneof![4 => Just("add"), 4 => Just("Replace"), 2 => Just("REMOVE"), 1 => Just("bogus")],
                prop::option::weighted(0.8, prop_oneof![9 => path(), 1 => "[a-zA-Z.\\[\\]\" ]{0,12}"]),
                prop::option::weighted(0.9, prop_oneof![
                    2 => prop_oneof![Just("x"), Just("False"), Just("m1"), Just("")].prop_map(Value::from),
                    1 => json_value(),
                ]),
            )
                .prop_map(|(op, path, value)| {
                    let mut m = Map::new();
                    m.insert("op".into(), json!(op));
                    if let Some(p) = path {
                        m.insert("path".into(), json!(p));
                    }
                    if let Some(v) = value {
                        m.insert("value".into(), v);
                    }
                    Value::Object(m)
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn apply_never_panics(ops in prop::collection::vec(op(), 1..6), extra in json_value()) {
                let mut start = user();
                if let Value::Object(e) = &extra {
                    for (k, v) in e {
                        start[k.as_str()] = v.clone();
                    }
                }
                if let Ok(parsed) = parse_request(&body(Value::Array(ops))) {
                    for resource in [&user(), &start, &extra] {
                        if let Ok(out) = apply(resource, &parsed) {
                            // The result is already in canonical form.
                            prop_assert_eq!(normalize::normalize_with(&out, ReadOnly::Keep).unwrap(), out);
                        }
                    }
                }
            }

            #[test]
            fn parse_request_never_panics(b in json_value()) {
                let _ = parse_request(&b);
                let _ = parse_request(&json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [b]}));
            }

            #[test]
            fn normalize_is_idempotent(extra in json_value(), keys in prop::collection::vec((path(), json_value()), 0..5)) {
                let mut input = user();
                for (k, v) in keys {
                    input[k.as_str()] = v;
                }
                if let Value::Object(e) = extra {
                    input[ENT] = Value::Object(e);
                }
                if let Ok(once) = normalize::normalize_user(&input) {
                    prop_assert_eq!(normalize::normalize_user(&once).unwrap(), once);
                }
            }
        }
    }
}
