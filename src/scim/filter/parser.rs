//! Recursive-descent parser from tokens to a [`Filter`], resolving attribute paths as it goes.
//!
//! ```text
//! expression = term *("or" term)
//! term       = factor *("and" factor)
//! factor     = "(" expression ")" / "not" "(" expression ")" / attrExpr
//! attrExpr   = path "pr" / path op value / path "[" expression "]" ["." sub (op value / "pr")]
//! ```
//!
//! Every descent into `(`, `not (` or `[` goes through [`deeper`], which refuses to pass
//! [`MAX_DEPTH`]; `and`/`or` chains are built in loops. So recursion is bounded by `MAX_DEPTH`.

use super::ast::{CompareOp, Filter, Literal, MAX_DEPTH, MAX_FILTER_LEN};
use super::lexer::{shorten, tokenize, Tok, Token};
use crate::scim::error::ScimError;
use crate::scim::schema::{self, AttrDef, AttrType, Home, Resolved, ResourceKind};
use std::iter::Peekable;
use std::vec::IntoIter;

type Result<T> = std::result::Result<T, ScimError>;

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::invalid_filter(detail)
}

/// Where attribute names are resolved.
#[derive(Clone, Copy)]
enum Scope {
    /// Against the schemas of a resource type (top level of a filter).
    Top(ResourceKind),
    /// As sub-attributes of a complex attribute (inside `attr[…]`).
    Within(Home, &'static AttrDef),
}

/// Parses a complete filter over resources of `kind`.
pub(super) fn parse(kind: ResourceKind, input: &str) -> Result<Filter> {
    run(input, 0, Scope::Top(kind))
}

/// Parses the inside of `parent[…]`.
pub(super) fn parse_element(parent: &'static AttrDef, home: Home, input: &str) -> Result<Filter> {
    if parent.ty != AttrType::Complex {
        return Err(invalid(format!(
            "'{}' is not a complex attribute, so it cannot take a [filter]",
            parent.name
        )));
    }
    run(input, 1, Scope::Within(home, parent))
}

fn run(input: &str, depth: usize, scope: Scope) -> Result<Filter> {
    if input.len() > MAX_FILTER_LEN {
        return Err(invalid(format!(
            "filter is {} bytes long; the limit is {MAX_FILTER_LEN}",
            input.len()
        )));
    }
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(invalid("empty filter"));
    }
    let mut parser = Parser {
        tokens: tokens.into_iter().peekable(),
    };
    let filter = parser.expression(depth, scope)?;
    match parser.tokens.next() {
        Some(t) => Err(invalid(format!(
            "unexpected {} at offset {} after a complete filter",
            t.tok, t.pos
        ))),
        None => Ok(filter),
    }
}

/// One level deeper, or an error when that would pass [`MAX_DEPTH`].
fn deeper(depth: usize) -> Result<usize> {
    if depth >= MAX_DEPTH {
        Err(invalid(format!(
            "filter nests deeper than {MAX_DEPTH} levels"
        )))
    } else {
        Ok(depth + 1)
    }
}

struct Parser<'a> {
    tokens: Peekable<IntoIter<Token<'a>>>,
}

impl<'a> Parser<'a> {
    /// `term *("or" term)`, left-associative.
    fn expression(&mut self, depth: usize, scope: Scope) -> Result<Filter> {
        let mut left = self.term(depth, scope)?;
        while self.eat_keyword("or") {
            let right = self.term(depth, scope)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `factor *("and" factor)`, left-associative.
    fn term(&mut self, depth: usize, scope: Scope) -> Result<Filter> {
        let mut left = self.factor(depth, scope)?;
        while self.eat_keyword("and") {
            let right = self.factor(depth, scope)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// A parenthesised group, a `not (…)` or an attribute expression.
    fn factor(&mut self, depth: usize, scope: Scope) -> Result<Filter> {
        let Some(token) = self.tokens.next() else {
            return Err(invalid("filter ends where an expression was expected"));
        };
        match token.tok {
            Tok::LParen => self.group(depth, scope),
            Tok::Word(w) if w.eq_ignore_ascii_case("not") => {
                self.expect(&Tok::LParen, "'(' after 'not'")?;
                Ok(Filter::Not(Box::new(self.group(depth, scope)?)))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or") => {
                Err(invalid(format!(
                    "missing expression before '{w}' at offset {}",
                    token.pos
                )))
            }
            Tok::Word(w) => self.attribute_expression(w, depth, scope),
            other => Err(invalid(format!(
                "expected an expression at offset {}, found {other}",
                token.pos
            ))),
        }
    }

    /// The rest of `( expression )` once the `(` is consumed.
    fn group(&mut self, depth: usize, scope: Scope) -> Result<Filter> {
        let depth = deeper(depth)?;
        let inner = self.expression(depth, scope)?;
        self.expect(&Tok::RParen, "')'")?;
        Ok(inner)
    }

    /// What follows an attribute path: `pr`, `op value`, or `[filter]` with Entra's optional
    /// `.sub op value` tail.
    fn attribute_expression(&mut self, word: &str, depth: usize, scope: Scope) -> Result<Filter> {
        let path = resolve_path(word, scope)?;
        let Some(bracket) = self.eat(&Tok::LBracket) else {
            return self.condition(path, word);
        };
        if let Scope::Within(..) = scope {
            return Err(invalid(format!(
                "nested '[' at offset {bracket}: a value filter cannot contain another"
            )));
        }
        let parent = element_parent(path, word)?;
        let depth = deeper(depth)?;
        let inner = self.expression(depth, Scope::Within(parent.home, parent.attr))?;
        self.expect(&Tok::RBracket, "']'")?;
        let inner = match self.eat_sub_attribute() {
            Some(sub) => {
                let path = resolve_sub(parent.home, parent.attr, sub)?;
                let tail = self.condition(path, sub)?;
                Filter::And(Box::new(inner), Box::new(tail))
            }
            None => inner,
        };
        Ok(Filter::Element(parent, Box::new(inner)))
    }

    /// `pr` or `op value` after the attribute path `path` (spelt `word` by the client).
    fn condition(&mut self, path: Resolved, word: &str) -> Result<Filter> {
        let Some(token) = self.tokens.next() else {
            return Err(invalid(format!(
                "expected an operator after '{}'",
                shorten(word)
            )));
        };
        let op_word = match token.tok {
            Tok::Word(w) => w,
            other => {
                return Err(invalid(format!(
                    "expected an operator after '{}' at offset {}, found {other}",
                    shorten(word),
                    token.pos
                )))
            }
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::from_keyword(op_word).ok_or_else(|| {
            invalid(format!(
                "unknown operator '{}' at offset {}",
                shorten(op_word),
                token.pos
            ))
        })?;
        let literal = self.literal(op)?;
        let path = check_comparison(path, op, &literal)?;
        Ok(Filter::Compare(path, op, literal))
    }

    /// The comparison value after `op`.
    fn literal(&mut self, op: CompareOp) -> Result<Literal> {
        let Some(token) = self.tokens.next() else {
            return Err(invalid(format!("expected a value after '{}'", op.as_str())));
        };
        let found = match token.tok {
            Tok::Str(s) => return Ok(Literal::String(s)),
            Tok::Word(w) => match word_literal(w) {
                Some(literal) => return Ok(literal),
                None => Tok::Word(w),
            },
            other => other,
        };
        Err(invalid(format!(
            "expected a value after '{}' at offset {}, found {found}",
            op.as_str(),
            token.pos
        )))
    }

    /// Consumes the next token when it is `tok`, giving its offset.
    fn eat(&mut self, tok: &Tok<'_>) -> Option<usize> {
        let pos = self.tokens.peek().filter(|t| t.tok == *tok)?.pos;
        self.tokens.next();
        Some(pos)
    }

    /// Consumes the next token when it is the word `keyword` in any case.
    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = matches!(
            self.tokens.peek(),
            Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(keyword)
        );
        if found {
            self.tokens.next();
        }
        found
    }

    /// Consumes a `.sub` word (as after Entra's `emails[…]`), giving `sub`.
    fn eat_sub_attribute(&mut self) -> Option<&'a str> {
        let sub = match self.tokens.peek() {
            Some(Token {
                tok: Tok::Word(w), ..
            }) => w.strip_prefix('.')?,
            _ => return None,
        };
        self.tokens.next();
        Some(sub)
    }

    /// Consumes `tok` (described as `what`) or fails.
    fn expect(&mut self, tok: &Tok<'_>, what: &str) -> Result<()> {
        match self.tokens.next() {
            Some(t) if t.tok == *tok => Ok(()),
            Some(t) => Err(invalid(format!(
                "expected {what} at offset {}, found {}",
                t.pos, t.tok
            ))),
            None => Err(invalid(format!("missing {what} at end of filter"))),
        }
    }
}

/// `true`, `false`, `null` (any case) or a JSON number.
fn word_literal(word: &str) -> Option<Literal> {
    if word.eq_ignore_ascii_case("true") {
        Some(Literal::Bool(true))
    } else if word.eq_ignore_ascii_case("false") {
        Some(Literal::Bool(false))
    } else if word.eq_ignore_ascii_case("null") {
        Some(Literal::Null)
    } else {
        serde_json::from_str::<serde_json::Number>(word)
            .ok()
            .map(Literal::Number)
    }
}

fn resolve_path(word: &str, scope: Scope) -> Result<Resolved> {
    match scope {
        Scope::Top(kind) => resolve_top(kind, word),
        Scope::Within(home, parent) => resolve_sub(home, parent, word),
    }
}

/// Resolves `[urn:]attr[.sub]` against the schemas of `kind`.
fn resolve_top(kind: ResourceKind, word: &str) -> Result<Resolved> {
    let (urn, rest) = split_urn(word);
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    schema::resolve_for(kind, urn, name, sub)
        .ok_or_else(|| invalid(format!("unknown attribute '{}'", shorten(word))))
}

/// Splits `urn:…:attr.sub` into the URN and `attr.sub`.
///
/// Attribute names never contain `:`, so the URN is everything before the last one. (Splitting at
/// the first `.` instead would cut inside the `2.0` that every SCIM schema URN contains.)
fn split_urn(word: &str) -> (Option<&str>, &str) {
    let is_urn = word
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    match word.rsplit_once(':') {
        Some((urn, rest)) if is_urn => (Some(urn), rest),
        _ => (None, word),
    }
}

/// Resolves `word` as a sub-attribute of `parent`.
fn resolve_sub(home: Home, parent: &'static AttrDef, word: &str) -> Result<Resolved> {
    let sub = parent.sub(word).ok_or_else(|| {
        invalid(format!(
            "unknown sub-attribute '{}' of '{}'",
            shorten(word),
            parent.name
        ))
    })?;
    Ok(Resolved {
        home,
        attr: parent,
        sub: Some(sub),
    })
}

/// `path` as the parent of a `[filter]`: a complex attribute named without a sub-attribute.
fn element_parent(path: Resolved, word: &str) -> Result<Resolved> {
    if path.sub.is_some() || path.attr.ty != AttrType::Complex {
        return Err(invalid(format!(
            "'{}' is not a complex attribute, so it cannot take a [filter]",
            shorten(word)
        )));
    }
    Ok(path)
}

/// Checks that `op literal` can apply to `path`, redirecting a comparison on a complex attribute
/// to its `value` sub-attribute.
fn check_comparison(path: Resolved, op: CompareOp, literal: &Literal) -> Result<Resolved> {
    let path = compared_path(path, op, literal)?;
    let leaf = path.leaf();
    if op.is_ordering() {
        check_ordering(leaf, op, literal)?;
    }
    if op.is_substring() {
        check_substring(leaf, op, literal)?;
    }
    Ok(path)
}

/// The path a comparison really reads: `path` itself, or `path.value` for a complex attribute.
/// Only `eq null`/`ne null` apply to a complex attribute as a whole.
fn compared_path(path: Resolved, op: CompareOp, literal: &Literal) -> Result<Resolved> {
    let leaf = path.leaf();
    if leaf.ty != AttrType::Complex
        || (*literal == Literal::Null && matches!(op, CompareOp::Eq | CompareOp::Ne))
    {
        return Ok(path);
    }
    if op.is_ordering() {
        return Err(invalid(format!(
            "'{}' cannot compare the complex attribute '{}'",
            op.as_str(),
            path.canonical()
        )));
    }
    match leaf.sub("value") {
        Some(value) => Ok(Resolved {
            sub: Some(value),
            ..path
        }),
        None => Err(invalid(format!(
            "the complex attribute '{}' cannot be compared; name one of its sub-attributes",
            path.canonical()
        ))),
    }
}

/// `gt`/`ge`/`lt`/`le` need an orderable attribute and a string or number value.
fn check_ordering(leaf: &AttrDef, op: CompareOp, literal: &Literal) -> Result<()> {
    if matches!(leaf.ty, AttrType::Boolean | AttrType::Binary) {
        return Err(invalid(format!(
            "'{}' cannot compare the {} attribute '{}'",
            op.as_str(),
            leaf.ty.as_str(),
            leaf.name
        )));
    }
    match literal {
        Literal::String(_) | Literal::Number(_) => Ok(()),
        _ => Err(invalid(format!(
            "'{}' needs a string or number value",
            op.as_str()
        ))),
    }
}

/// `co`/`sw`/`ew` need a string value and a non-boolean attribute.
fn check_substring(leaf: &AttrDef, op: CompareOp, literal: &Literal) -> Result<()> {
    if leaf.ty == AttrType::Boolean {
        return Err(invalid(format!(
            "'{}' cannot compare the boolean attribute '{}'",
            op.as_str(),
            leaf.name
        )));
    }
    match literal {
        Literal::String(_) => Ok(()),
        _ => Err(invalid(format!("'{}' needs a string value", op.as_str()))),
    }
}
