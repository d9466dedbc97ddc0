//! The filter tree: comparison operators, literals and the [`Filter`] a parse produces.

use crate::scim::schema::Resolved;
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

/// A parsed filter, with every attribute path resolved against the schemas of one resource type.
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
