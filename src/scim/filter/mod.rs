//! SCIM filters (RFC 7644 §3.4.2.2): parsing into a [`Filter`] tree resolved against the User
//! (or Group) schema, evaluation against a resource's JSON, and printing back to filter syntax.
//!
//! The grammar accepted is the RFC's, with the leniencies real clients need:
//!
//! * operators, logical keywords and `true`/`false`/`null` in any case; attribute names in any
//!   case, optionally URN-qualified (core or enterprise, including Entra's misspelt enterprise URN);
//! * any amount of whitespace between tokens (none is needed next to brackets and quotes);
//! * `not(` as well as `not (` — but `not` must always be followed by a parenthesised filter;
//! * Entra's `emails[type eq "work"].value eq "a@b.c"`, read as
//!   `emails[type eq "work" and value eq "a@b.c"]`;
//! * a comparison on a complex attribute that has a `value` sub-attribute (`emails eq "x"`,
//!   `manager eq "id"`) compares that sub-attribute.
//!
//! Precedence is `not` > `and` > `or`; `and`/`or` associate to the left. Input is capped at
//! [`MAX_FILTER_LEN`] bytes and [`MAX_DEPTH`] levels of nesting, both checked before any work that
//! could grow with them, so hostile input fails fast and never exhausts the stack.
//!
//! Every failure is `400 invalidFilter` with a detail that names the offending token.

mod ast;
mod display;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

pub use ast::{CompareOp, Filter, Literal, MAX_DEPTH, MAX_FILTER_LEN};

use crate::scim::error::ScimError;
use crate::scim::schema::{AttrDef, AttrType, Home, ResourceKind};
use serde_json::Value;

/// Parses a `filter` query parameter (already URL-decoded).
///
/// Errors are `400 invalidFilter`: syntax errors, unknown attributes, operators that cannot apply
/// to the attribute's type, input over [`MAX_FILTER_LEN`] bytes or nested deeper than
/// [`MAX_DEPTH`].
pub fn parse(input: &str) -> Result<Filter, ScimError> {
    parser::parse(ResourceKind::User, input)
}

/// Parses a `filter` over resources of `kind` (attribute names resolve against its schemas), with
/// the errors of [`parse`].
pub fn parse_for(kind: ResourceKind, input: &str) -> Result<Filter, ScimError> {
    parser::parse(kind, input)
}

/// Evaluates against a SCIM resource in JSON form (canonical key case expected, but keys are
/// looked up case-insensitively).
///
/// Core and common attributes are read from the top level, enterprise ones from the object keyed
/// by the enterprise schema URN. Type mismatches make a comparison false; this never panics.
pub fn matches(filter: &Filter, resource: &Value) -> bool {
    eval::matches(filter, resource)
}

/// A parsed value-path filter for PATCH paths like `emails[type eq "work"]`: parses the text
/// inside the brackets with sub-attribute names resolved relative to `parent`.
///
/// `parent` must be a complex attribute; nested brackets are rejected. The text counts as one
/// level of nesting already (it sits inside the path's brackets).
pub fn parse_element_filter(
    parent: &'static AttrDef,
    home: Home,
    input: &str,
) -> Result<Filter, ScimError> {
    parser::parse_element(parent, home, input)
}

/// Evaluates an element filter (from [`parse_element_filter`] or the inner filter of
/// [`Filter::Element`]) against one element of a multi-valued attribute.
pub fn matches_element(filter: &Filter, element: &Value) -> bool {
    eval::matches_element(filter, element)
}

/// The (sub-attribute, value) pairs a filter pins with `eq` when it is a pure conjunction of `eq`
/// comparisons (used by PATCH to create a missing element: `emails[type eq "work"]` →
/// `[("type", "work")]`); `None` otherwise.
///
/// Names are canonical (the sub-attribute's name for element filters, the attribute's otherwise).
/// `eq null` pins nothing (a new element lacks the attribute anyway) and is skipped; a boolean
/// attribute compared with `"True"`/`"false"` yields a JSON boolean. Two different values pinned
/// to the same name cannot both hold, so they give `None`.
pub fn eq_constraints(filter: &Filter) -> Option<Vec<(&'static str, Value)>> {
    let mut pinned = Vec::new();
    collect_eq(filter, &mut pinned)?;
    Some(pinned)
}

fn collect_eq(filter: &Filter, pinned: &mut Vec<(&'static str, Value)>) -> Option<()> {
    match filter {
        Filter::And(a, b) => {
            collect_eq(a, pinned)?;
            collect_eq(b, pinned)
        }
        Filter::Compare(path, CompareOp::Eq, literal) => {
            let leaf = path.leaf();
            match constraint_value(literal, leaf.ty) {
                Some(value) => pin(pinned, leaf.name, value),
                None => Some(()),
            }
        }
        _ => None,
    }
}

/// The JSON value an `eq` literal pins, `None` for `null`.
fn constraint_value(literal: &Literal, ty: AttrType) -> Option<Value> {
    match literal {
        Literal::Null => None,
        Literal::String(s) if ty == AttrType::Boolean => match eval::bool_text(s) {
            Some(b) => Some(Value::Bool(b)),
            None => Some(literal.to_json()),
        },
        other => Some(other.to_json()),
    }
}

fn pin(pinned: &mut Vec<(&'static str, Value)>, name: &'static str, value: Value) -> Option<()> {
    match pinned.iter().find(|(n, _)| *n == name) {
        Some((_, existing)) if *existing == value => Some(()),
        Some(_) => None,
        None => {
            pinned.push((name, value));
            Some(())
        }
    }
}
