//! Splits filter text into tokens: brackets, JSON string literals and words (attribute paths,
//! keywords, numbers). Iterative, so its cost is linear in the (already length-capped) input.

use crate::scim::error::ScimError;
use std::fmt;

/// Longest piece of client input quoted back in an error detail, in characters.
const QUOTE_LIMIT: usize = 64;

/// `s`, cut to [`QUOTE_LIMIT`] characters for quoting in an error detail.
pub(super) fn shorten(s: &str) -> String {
    match s.char_indices().nth(QUOTE_LIMIT) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or("")),
        None => s.to_string(),
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok<'a> {
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// A string literal, decoded.
    Str(String),
    /// A maximal run of characters that are neither whitespace, brackets nor `"`.
    Word(&'a str),
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone)]
pub(super) struct Token<'a> {
    /// The token.
    pub tok: Tok<'a>,
    /// Byte offset in the input.
    pub pos: usize,
}

impl fmt::Display for Tok<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::LBracket => f.write_str("'['"),
            Tok::RBracket => f.write_str("']'"),
            Tok::Str(s) => write!(f, "string {}", shorten(&format!("{s:?}"))),
            Tok::Word(w) => write!(f, "'{}'", shorten(w)),
        }
    }
}

/// Tokenises `input`. Fails only on a malformed string literal.
pub(super) fn tokenize(input: &str) -> Result<Vec<Token<'_>>, ScimError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    while let Some(c) = input.get(pos..).and_then(|rest| rest.chars().next()) {
        let (tok, len) = match c {
            c if c.is_whitespace() => {
                pos += c.len_utf8();
                continue;
            }
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            '"' => string_token(input, pos)?,
            _ => word_token(input, pos),
        };
        tokens.push(Token { tok, pos });
        pos += len;
    }
    Ok(tokens)
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

/// The word starting at `start` and its length in bytes.
fn word_token(input: &str, start: usize) -> (Tok<'_>, usize) {
    let rest = input.get(start..).unwrap_or("");
    let len = rest.find(is_delimiter).unwrap_or(rest.len());
    (Tok::Word(rest.get(..len).unwrap_or("")), len)
}

/// The string literal whose opening quote is at `start`, decoded as JSON, and its length in bytes
/// including both quotes.
fn string_token(input: &str, start: usize) -> Result<(Tok<'_>, usize), ScimError> {
    let rest = input.get(start..).unwrap_or("");
    let len = quoted_len(rest).ok_or_else(|| {
        ScimError::invalid_filter(format!("unterminated string starting at offset {start}"))
    })?;
    let quoted = rest.get(..len).unwrap_or("");
    let decoded: String = serde_json::from_str(quoted).map_err(|e| {
        ScimError::invalid_filter(format!("invalid string literal at offset {start}: {e}"))
    })?;
    Ok((Tok::Str(decoded), len))
}

/// Length of the quoted run at the start of `s` (which begins with `"`), through the first
/// unescaped closing quote; `None` when there is none.
fn quoted_len(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}
