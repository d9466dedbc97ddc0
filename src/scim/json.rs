//! The strict JSON reader behind every body the gateway reads (SCIM requests and guarded
//! self-service requests): one object, no duplicate keys (compared by [`key_form`], since a
//! lenient binder may match keys ignoring case or separators), no escape inside a key (so
//! `"em\u0061il"` cannot hide `email`), bounded nesting. Validated by a scan over the bytes,
//! then parsed with serde_json for the value.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

use super::fold::key_form;

/// Deepest nesting of arrays and objects [`read`] accepts (the top-level object is 1).
pub const MAX_DEPTH: usize = 64;

/// Why a body is not strict JSON; `Display` gives a sentence a client can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not UTF-8.
    NotUtf8,
    /// Not a single valid JSON object (the reason, with a byte offset where useful).
    NotJson(String),
    /// A key appears twice in one object (compared by [`key_form`]).
    DuplicateKey(String),
    /// An object key uses an escape sequence; the text is the key up to the escape.
    EscapedKey(String),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Larger than the caller's cap.
    TooLarge,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::NotUtf8 => f.write_str("the request body must be UTF-8"),
            JsonError::NotJson(why) => {
                write!(f, "the request body is not a single JSON object: {why}")
            }
            JsonError::DuplicateKey(k) => write!(f, "the request body repeats the key {k:?}"),
            JsonError::EscapedKey(k) => {
                write!(
                    f,
                    "the request body key starting {k:?} uses an escape sequence"
                )
            }
            JsonError::TooDeep => {
                write!(f, "the request body nests deeper than {MAX_DEPTH} levels")
            }
            JsonError::TooLarge => f.write_str("the request body is too large"),
        }
    }
}

impl std::error::Error for JsonError {}

/// A strictly read JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictJson {
    /// The top-level keys exactly as sent, in order.
    pub top_level_keys: Vec<String>,
    /// The parsed object.
    pub value: Value,
}

/// Reads `body` (at most `cap` bytes, UTF-8 without BOM) as one strict JSON object.
pub fn read(body: &[u8], cap: usize) -> Result<StrictJson, JsonError> {
    if body.len() > cap {
        return Err(JsonError::TooLarge);
    }
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(JsonError::NotJson(
            "a byte order mark is not allowed".into(),
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| JsonError::NotUtf8)?;
    let top_level_keys = Scanner::new(text).document()?;
    let value = serde_json::from_str(text).map_err(|e| JsonError::NotJson(e.to_string()))?;
    Ok(StrictJson {
        top_level_keys,
        value,
    })
}

/// The value of a strict JSON object of any size.
pub fn parse_strict(body: &[u8]) -> Result<Value, JsonError> {
    read(body, usize::MAX).map(|doc| doc.value)
}

/// A validating JSON scanner over UTF-8 text.
struct Scanner<'a> {
    /// The text.
    text: &'a str,
    /// Its bytes.
    b: &'a [u8],
    /// Current offset.
    i: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    fn new(text: &'a str) -> Self {
        Scanner {
            text,
            b: text.as_bytes(),
            i: 0,
        }
    }

    /// The whole document: one object and trailing whitespace; returns its keys.
    fn document(&mut self) -> Result<Vec<String>, JsonError> {
        self.ws();
        if self.peek() != Some(b'{') {
            return self.fail("the top-level value must be an object");
        }
        let keys = self.object(1)?;
        self.ws();
        if self.i != self.b.len() {
            return self.fail("unexpected data after the object");
        }
        Ok(keys)
    }

    /// The byte at the cursor.
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A `NotJson` error at the cursor.
    fn fail<T>(&self, what: &str) -> Result<T, JsonError> {
        Err(JsonError::NotJson(format!("{what} at byte {}", self.i)))
    }

    /// Skips JSON whitespace.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Consumes `c` or fails.
    fn expect(&mut self, c: u8) -> Result<(), JsonError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.fail(&format!("expected {:?}", char::from(c)))
        }
    }

    /// Any value, where containers would sit at `depth`.
    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(depth).map(drop),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string(false).map(drop),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.fail("expected a value"),
        }
    }

    /// An object at `depth` (cursor on `{`); returns its keys in order.
    fn object(&mut self, depth: usize) -> Result<Vec<String>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.i += 1;
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(keys);
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return self.fail("expected an object key");
            }
            let key = self.string(true)?;
            if !seen.insert(key_form(&key)) {
                return Err(JsonError::DuplicateKey(key));
            }
            keys.push(key);
            self.ws();
            self.expect(b':')?;
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(keys);
                }
                _ => return self.fail("expected ',' or '}'"),
            }
        }
    }

    /// An array at `depth` (cursor on `[`).
    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.fail("expected ',' or ']'"),
            }
        }
    }

    /// A string (cursor on the opening quote); returns its raw text. Keys may not contain
    /// escapes.
    fn string(&mut self, is_key: bool) -> Result<String, JsonError> {
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek() {
                None => return self.fail("unterminated string"),
                Some(b'"') => break,
                Some(b'\\') if is_key => {
                    let head = self.text.get(start..self.i).unwrap_or_default();
                    return Err(JsonError::EscapedKey(head.to_owned()));
                }
                Some(b'\\') => self.escape()?,
                Some(c) if c < 0x20 => return self.fail("control character in string"),
                Some(_) => self.i += 1,
            }
        }
        let raw = self.text.get(start..self.i).unwrap_or_default().to_owned();
        self.i += 1;
        Ok(raw)
    }

    /// One escape sequence in a string value (cursor on the backslash).
    fn escape(&mut self) -> Result<(), JsonError> {
        self.i += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 1;
                Ok(())
            }
            Some(b'u') => {
                let hex = self.b.get(self.i + 1..self.i + 5);
                if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    self.i += 5;
                    Ok(())
                } else {
                    self.fail("bad \\u escape")
                }
            }
            _ => self.fail("bad escape"),
        }
    }

    /// Exactly `word`.
    fn literal(&mut self, word: &str) -> Result<(), JsonError> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(())
        } else {
            self.fail("expected true, false or null")
        }
    }

    /// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.fail("bad number"),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.required_digits()?;
        }
        Ok(())
    }

    /// Zero or more digits.
    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }

    /// One or more digits.
    fn required_digits(&mut self) -> Result<(), JsonError> {
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return self.fail("bad number");
        }
        self.digits();
        Ok(())
    }
}
