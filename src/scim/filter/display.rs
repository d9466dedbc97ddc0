//! Printing a [`Filter`] back to filter syntax: canonical attribute names (URN-qualified for the
//! enterprise extension), lower-case keywords, JSON literals, and parentheses exactly where the
//! tree's shape needs them, so that parsing the text gives back the same tree.

use super::ast::{Filter, Literal};
use crate::scim::schema::Resolved;
use serde_json::Value;
use std::fmt;

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_filter(f, self, false)
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `Value`'s Display writes a JSON string with all needed escapes.
            Literal::String(s) => write!(f, "{}", Value::String(s.clone())),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

/// Writes `filter`; inside `attr[…]` (`in_element`) paths are written as bare sub-attribute names.
fn write_filter(f: &mut fmt::Formatter<'_>, filter: &Filter, in_element: bool) -> fmt::Result {
    match filter {
        Filter::And(a, b) => {
            // `and` binds tighter than `or` and associates to the left.
            write_operand(f, a, in_element, matches!(**a, Filter::Or(..)))?;
            f.write_str(" and ")?;
            write_operand(
                f,
                b,
                in_element,
                matches!(**b, Filter::Or(..) | Filter::And(..)),
            )
        }
        Filter::Or(a, b) => {
            write_operand(f, a, in_element, false)?;
            f.write_str(" or ")?;
            write_operand(f, b, in_element, matches!(**b, Filter::Or(..)))
        }
        Filter::Not(inner) => {
            f.write_str("not ")?;
            write_operand(f, inner, in_element, true)
        }
        Filter::Present(path) => {
            write_path(f, path, in_element)?;
            f.write_str(" pr")
        }
        Filter::Compare(path, op, literal) => {
            write_path(f, path, in_element)?;
            write!(f, " {} {literal}", op.as_str())
        }
        Filter::Element(path, inner) => {
            write_path(f, path, in_element)?;
            f.write_str("[")?;
            write_filter(f, inner, true)?;
            f.write_str("]")
        }
    }
}

/// Writes an operand, in parentheses when `parens`.
fn write_operand(
    f: &mut fmt::Formatter<'_>,
    operand: &Filter,
    in_element: bool,
    parens: bool,
) -> fmt::Result {
    if !parens {
        return write_filter(f, operand, in_element);
    }
    f.write_str("(")?;
    write_filter(f, operand, in_element)?;
    f.write_str(")")
}

fn write_path(f: &mut fmt::Formatter<'_>, path: &Resolved, in_element: bool) -> fmt::Result {
    match path.sub {
        Some(sub) if in_element => f.write_str(sub.name),
        _ => f.write_str(&path.canonical()),
    }
}
