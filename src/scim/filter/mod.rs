//! SCIM filters (RFC 7644 §3.4.2.2): parsing into a [`Filter`] tree resolved against the User
//! schema, evaluation against a resource's JSON, and printing back to filter syntax.
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

mod display;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use crate::scim::error::ScimError;
use crate::scim::schema::{AttrDef, AttrType, Home, Resolved};
use serde_json::Value;

/// Longest filter accepted, in bytes; longer input is rejected before it is tokenised.
pub const MAX_FILTER_LEN: usize = 4096;

/// Deepest nesting accepted. Each `( … )`, `not ( … )` and `attr[ … ]` is one level; the check
/// happens before descending, so the parser's recursion is bounded by this number.
pub const MAX_DEPTH: usize = 16;

/// A comparison operator (RFC 7644 §3.4.2.2, table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal (also true when the attribute is absent).
    Ne,
    /// `co`: contains.
    Co,
    /// `sw`: starts with.
    Sw,
    /// `ew`: ends with.
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CompareOp {
    /// Every operator, in table order.
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The wire spelling (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// The operator spelled `word`, in any case.
    pub fn from_keyword(word: &str) -> Option<CompareOp> {
        CompareOp::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    /// True for `gt`, `ge`, `lt` and `le`.
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }

    /// True for `co`, `sw` and `ew`.
    pub fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

/// A comparison value (`compValue` of the RFC grammar).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A JSON string, escapes already decoded.
    String(String),
    /// A JSON number.
    Number(serde_json::Number),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl Literal {
    /// The literal as a JSON value.
    pub fn to_json(&self) -> Value {
        match self {
            Literal::String(s) => Value::String(s.clone()),
            Literal::Number(n) => Value::Number(n.clone()),
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Null => Value::Null,
        }
    }
}

/// A parsed filter, with every attribute path resolved against the User schema.
///
/// Its [`Display`](std::fmt::Display) form is valid filter syntax with canonical attribute names,
/// and parsing it gives back the same tree.
#[derive(Debug, Clone)]
pub enum Filter {
    /// Both sides match.
    And(Box<Filter>, Box<Filter>),
    /// Either side matches.
    Or(Box<Filter>, Box<Filter>),
    /// The inner filter does not match.
    Not(Box<Filter>),
    /// `attr pr`: the attribute has a non-empty value.
    Present(Resolved),
    /// `attr op value`.
    Compare(Resolved, CompareOp, Literal),
    /// `attr[inner]`: some element of multi-valued complex `attr` satisfies `inner`, whose paths
    /// are sub-attributes of `attr` (their [`Resolved`] has `sub` set). A single-valued complex
    /// attribute counts as its one element.
    Element(Resolved, Box<Filter>),
}

/// Parses a `filter` query parameter (already URL-decoded).
///
/// Errors are `400 invalidFilter`: syntax errors, unknown attributes, operators that cannot apply
/// to the attribute's type, input over [`MAX_FILTER_LEN`] bytes or nested deeper than
/// [`MAX_DEPTH`].
pub fn parse(input: &str) -> Result<Filter, ScimError> {
    parser::parse(input)
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
