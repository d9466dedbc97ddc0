//! Evaluation of a [`Filter`] against a resource or one element of a multi-valued attribute.
//!
//! Semantics (RFC 7644 §3.4.2.2):
//! * strings compare case-insensitively unless the attribute is `caseExact`; ordering is
//!   lexicographic by code point after case folding;
//! * `dateTime` values that both parse as RFC 3339 compare chronologically (so `…T10:00:00Z` equals
//!   `…T11:00:00+01:00`); otherwise they compare as strings;
//! * numbers compare numerically, exactly for integers;
//! * a boolean attribute compares only with a boolean, where the strings `"true"`/`"false"` (any
//!   case) count as booleans on either side, since Entra sends them;
//! * on a multi-valued attribute a comparison holds when any value satisfies it — `ne` included,
//!   as the RFC words it, so `emails.value ne "a"` holds when some address differs from `a`;
//! * `pr` holds for a non-empty value (not `null`, `""`, `[]`, nor an object or array of such);
//!   `eq null` is its negation and `ne null` its equivalent;
//! * `ne` also holds when the attribute is absent;
//! * anything else that does not fit (wrong JSON type, non-object element) is simply false.

use super::ast::{CompareOp, Filter, Literal};
use crate::scim::schema::{canonical_schema, AttrDef, AttrType, Home, Resolved, ENTERPRISE_SCHEMA};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::cmp::Ordering;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What the paths of a filter are read from.
#[derive(Clone, Copy)]
enum Ctx<'v> {
    /// A whole resource: paths start at its top level (or the enterprise object).
    Resource(&'v Value),
    /// One element of a multi-valued complex attribute: paths name its sub-attributes.
    Element(&'v Value),
}

/// Whether `resource` satisfies `filter`.
pub(super) fn matches(filter: &Filter, resource: &Value) -> bool {
    eval(filter, Ctx::Resource(resource))
}

/// Whether the element `element` satisfies the element filter `filter`.
pub(super) fn matches_element(filter: &Filter, element: &Value) -> bool {
    eval(filter, Ctx::Element(element))
}

fn eval(filter: &Filter, ctx: Ctx<'_>) -> bool {
    match filter {
        Filter::And(a, b) => eval(a, ctx) && eval(b, ctx),
        Filter::Or(a, b) => eval(a, ctx) || eval(b, ctx),
        Filter::Not(inner) => !eval(inner, ctx),
        Filter::Present(path) => present(path, ctx),
        Filter::Compare(path, op, literal) => compare(path, *op, literal, ctx),
        Filter::Element(path, inner) => values(path, ctx)
            .into_iter()
            .any(|element| eval(inner, Ctx::Element(element))),
    }
}

fn present(path: &Resolved, ctx: Ctx<'_>) -> bool {
    values(path, ctx).into_iter().any(is_present)
}

/// A value is present unless it is null, `""`, or an array or object with nothing present in it.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(map) => map.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(path: &Resolved, op: CompareOp, literal: &Literal, ctx: Ctx<'_>) -> bool {
    if *literal == Literal::Null {
        return match op {
            CompareOp::Eq => !present(path, ctx),
            CompareOp::Ne => present(path, ctx),
            _ => false,
        };
    }
    let found = values(path, ctx);
    if op == CompareOp::Ne && found.is_empty() {
        return true;
    }
    let def = path.leaf();
    found
        .into_iter()
        .any(|value| compare_value(value, op, literal, def))
}

/// The non-null values `path` reaches in `ctx`, with arrays opened up (one element per value).
fn values<'v>(path: &Resolved, ctx: Ctx<'v>) -> Vec<&'v Value> {
    let base: Vec<&Value> = match ctx {
        Ctx::Resource(resource) => home_object(resource, path.home)
            .and_then(|home| get_ci(home, path.attr.name))
            .map(open)
            .unwrap_or_default(),
        Ctx::Element(element) => vec![element],
    };
    let leaves = match path.sub {
        None => base,
        Some(sub) => base
            .into_iter()
            .filter_map(|node| get_ci(node, sub.name))
            .flat_map(open)
            .collect(),
    };
    leaves.into_iter().filter(|v| !v.is_null()).collect()
}

/// The elements of an array, or the value itself.
fn open(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// The object holding attributes of `home`: the resource itself, or its enterprise extension
/// (found under any spelling of the URN that [`canonical_schema`] accepts).
fn home_object(resource: &Value, home: Home) -> Option<&Value> {
    match home {
        Home::Core => Some(resource),
        Home::Enterprise => {
            let map = resource.as_object()?;
            map.get(ENTERPRISE_SCHEMA).or_else(|| {
                map.iter()
                    .find(|(k, _)| canonical_schema(k) == Some(ENTERPRISE_SCHEMA))
                    .map(|(_, v)| v)
            })
        }
    }
}

/// `object[key]`, trying the exact key first and then any key equal ignoring ASCII case.
fn get_ci<'v>(object: &'v Value, key: &str) -> Option<&'v Value> {
    let map = object.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// One value against `op literal`, where `def` defines the value's attribute.
fn compare_value(value: &Value, op: CompareOp, literal: &Literal, def: &AttrDef) -> bool {
    if def.ty == AttrType::Boolean || matches!(literal, Literal::Bool(_)) {
        return compare_bools(value, op, literal, def.ty);
    }
    match (value, literal) {
        (Value::String(a), Literal::String(b)) => compare_strings(a, op, b, def),
        (Value::Number(a), Literal::Number(b)) => ordering_holds(op, compare_numbers(a, b)),
        _ => false,
    }
}

/// `"true"`/`"false"` in any case as a boolean.
pub(super) fn bool_text(s: &str) -> Option<bool> {
    crate::scim::normalize::parse_bool(s)
}

fn value_bool(value: &Value, ty: AttrType) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if ty == AttrType::Boolean => bool_text(s),
        _ => None,
    }
}

fn literal_bool(literal: &Literal, ty: AttrType) -> Option<bool> {
    match literal {
        Literal::Bool(b) => Some(*b),
        Literal::String(s) if ty == AttrType::Boolean => bool_text(s),
        _ => None,
    }
}

fn compare_bools(value: &Value, op: CompareOp, literal: &Literal, ty: AttrType) -> bool {
    match (value_bool(value, ty), literal_bool(literal, ty)) {
        (Some(a), Some(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        _ => false,
    }
}

fn compare_strings(value: &str, op: CompareOp, literal: &str, def: &AttrDef) -> bool {
    if def.ty == AttrType::DateTime && !op.is_substring() {
        if let (Some(a), Some(b)) = (parse_date_time(value), parse_date_time(literal)) {
            return ordering_holds(op, Some(a.cmp(&b)));
        }
    }
    let (value, literal) = (fold(value, def), fold(literal, def));
    match op {
        CompareOp::Co => value.contains(literal.as_ref()),
        CompareOp::Sw => value.starts_with(literal.as_ref()),
        CompareOp::Ew => value.ends_with(literal.as_ref()),
        _ => ordering_holds(op, Some(value.cmp(&literal))),
    }
}

/// `s` as compared under `def`: lower-cased unless the attribute is case-exact.
fn fold<'s>(s: &'s str, def: &AttrDef) -> Cow<'s, str> {
    if def.case_exact {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

fn parse_date_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Compares numbers exactly when both are integers, as `f64` otherwise.
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (as_integer(a), as_integer(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn as_integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Whether `ordering` (value against literal) satisfies `op`; `None` (incomparable) never does.
fn ordering_holds(op: CompareOp, ordering: Option<Ordering>) -> bool {
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}
