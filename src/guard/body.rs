//! Strict request-body reading for guarded routes: which bodies the guard can read at all, a validating JSON scanner that refuses duplicate and escaped keys, form-urlencoded parsing, and every other reading a lenient backend could make of the same bytes.

use std::collections::HashSet;
use std::fmt;

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::HeaderMap;
use serde_json::{Map, Value};

use super::canon;
use crate::scim::fold::key_form;
use crate::scim::json::{self, JsonError};

/// Why a body was refused; `Display` gives a sentence a client can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyReject {
    /// Not UTF-8.
    NotUtf8,
    /// Not a single valid JSON object (the reason, with a byte offset where useful).
    NotJson(String),
    /// A key appears twice in one object (compared by [`key_form`]).
    DuplicateKey(String),
    /// An object key uses an escape sequence (JSON `\…`, or `%` in a form key); the text is
    /// the key up to the escape.
    EscapedKey(String),
    /// Nested deeper than [`json::MAX_DEPTH`].
    TooDeep,
    /// Larger than the configured cap.
    TooLarge,
    /// A `Content-Encoding` (or transfer coding) other than identity.
    Compressed,
    /// A content type the guard does not read (or none, or several).
    UnsupportedContentType(String),
    /// A form body the guard will not read unambiguously.
    BadForm(String),
}

impl fmt::Display for BodyReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyReject::NotUtf8 => f.write_str("the request body must be UTF-8"),
            BodyReject::NotJson(why) => write!(f, "the request body is not a single JSON object: {why}"),
            BodyReject::DuplicateKey(k) => write!(f, "the request body repeats the key {k:?}"),
            BodyReject::EscapedKey(k) => {
                write!(f, "the request body key starting {k:?} uses an escape sequence")
            }
            BodyReject::TooDeep => write!(f, "the request body nests deeper than {} levels", json::MAX_DEPTH),
            BodyReject::TooLarge => f.write_str("the request body is too large"),
            BodyReject::Compressed => f.write_str("the request body must not be compressed (use identity encoding)"),
            BodyReject::UnsupportedContentType(t) => write!(
                f,
                "unsupported content type {t:?}: send application/json (charset utf-8) or application/x-www-form-urlencoded"
            ),
            BodyReject::BadForm(why) => write!(f, "the form body is ambiguous: {why}"),
        }
    }
}

impl std::error::Error for BodyReject {}

impl From<JsonError> for BodyReject {
    fn from(e: JsonError) -> Self {
        match e {
            JsonError::NotUtf8 => BodyReject::NotUtf8,
            JsonError::NotJson(why) => BodyReject::NotJson(why),
            JsonError::DuplicateKey(k) => BodyReject::DuplicateKey(k),
            JsonError::EscapedKey(k) => BodyReject::EscapedKey(k),
            JsonError::TooDeep => BodyReject::TooDeep,
            JsonError::TooLarge => BodyReject::TooLarge,
        }
    }
}

/// How the guard will read a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json` or `application/*+json`.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// No `Content-Type` and no declared body.
    Empty,
}

/// What a strict scan found.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyScan {
    /// The top-level keys exactly as sent, in order (form keys with `+` read as space).
    pub top_level_keys: Vec<String>,
    /// The parsed body (a form is a flat object of strings).
    pub value: Value,
}

impl BodyScan {
    /// A scan of an empty body: no keys, an empty object.
    pub fn empty() -> Self {
        BodyScan {
            top_level_keys: Vec::new(),
            value: Value::Object(Map::new()),
        }
    }

    /// Whether a top-level key has the same [`key_form`] as `name` (so `Email`, `EMAIL`,
    /// `emaıl`, `e_mail` and ` email` all count as `email`: a lenient backend may bind any of
    /// them).
    pub fn has_key_ci(&self, name: &str) -> bool {
        let want = key_form(name);
        self.top_level_keys.iter().any(|k| key_form(k) == want)
    }

    /// Like [`Self::has_key_ci`], but at any depth (inside nested objects and arrays too).
    pub fn has_key_ci_deep(&self, name: &str) -> bool {
        value_has_key(&self.value, &key_form(name))
    }
}

/// Whether `v` has an object key folding to `want` anywhere.
fn value_has_key(v: &Value, want: &str) -> bool {
    match v {
        Value::Object(map) => map
            .iter()
            .any(|(k, child)| key_form(k) == want || value_has_key(child, want)),
        Value::Array(items) => items.iter().any(|child| value_has_key(child, want)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Content type and encoding
// ---------------------------------------------------------------------------------------------

/// Whether a body's `Content-Type` / `Content-Encoding` is one the guard can read: JSON
/// (`application/json`, `application/*+json`) or form-urlencoded, optionally with
/// `charset=utf-8` and no other parameter, exactly one `Content-Type` header, and identity
/// encoding (a `Content-Encoding` other than `identity`, or a transfer coding other than
/// `chunked`, is [`BodyReject::Compressed`]). No `Content-Type` is [`BodyKind::Empty`] only
/// when no body is declared (no `Transfer-Encoding`, `Content-Length` absent or 0); the
/// caller must still check the received body is empty ([`scan_body`] does).
pub fn classify(headers: &HeaderMap) -> Result<BodyKind, BodyReject> {
    check_encoding(headers)?;
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let Some(value) = types.next() else {
        return if declares_body(headers) {
            Err(BodyReject::UnsupportedContentType("(none)".into()))
        } else {
            Ok(BodyKind::Empty)
        };
    };
    if types.next().is_some() {
        return Err(BodyReject::UnsupportedContentType(
            "(several Content-Type headers)".into(),
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| BodyReject::UnsupportedContentType("(not ASCII)".into()))?;
    media_kind(text)
}

/// Rejects any content coding but identity and any transfer coding but chunked.
fn check_encoding(headers: &HeaderMap) -> Result<(), BodyReject> {
    let identity = headers.get_all(CONTENT_ENCODING).iter().all(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .all(|c| c.trim().eq_ignore_ascii_case("identity"))
        })
    });
    let chunked_only = headers.get_all(TRANSFER_ENCODING).iter().all(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .all(|c| c.trim().eq_ignore_ascii_case("chunked"))
        })
    });
    if identity && chunked_only {
        Ok(())
    } else {
        Err(BodyReject::Compressed)
    }
}

/// Whether the headers announce a body.
fn declares_body(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .any(|v| v.to_str().map_or(true, |s| s.trim() != "0"))
}

/// The kind for one `Content-Type` value.
fn media_kind(text: &str) -> Result<BodyKind, BodyReject> {
    let mut parts = text.split(';');
    let mime = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    for param in parts {
        check_param(param)?;
    }
    let subtype = mime.strip_prefix("application/");
    let kind = match subtype {
        Some("json") => BodyKind::Json,
        Some("x-www-form-urlencoded") => BodyKind::Form,
        Some(sub) if is_json_suffix(sub) => BodyKind::Json,
        _ => return Err(BodyReject::UnsupportedContentType(mime)),
    };
    Ok(kind)
}

/// `something+json` with a plain token before the suffix.
fn is_json_suffix(sub: &str) -> bool {
    sub.strip_suffix("+json").is_some_and(|head| {
        !head.is_empty()
            && head
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.+_".contains(&b))
    })
}

/// Only `charset=utf-8` (quoted or not, any case) is accepted; an empty parameter is ignored.
fn check_param(param: &str) -> Result<(), BodyReject> {
    let param = param.trim();
    if param.is_empty() {
        return Ok(());
    }
    let (name, value) = param.split_once('=').unwrap_or((param, ""));
    let value = value.trim().trim_matches('"');
    if name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8") {
        Ok(())
    } else {
        Err(BodyReject::UnsupportedContentType(format!(
            "(parameter {param:?})"
        )))
    }
}

/// Every reading of `body` a backend behind a guarded route could make, whatever its label says
/// (many frameworks parse JSON whatever the `Content-Type`, some bind form pairs from any body):
///
/// 1. the labelled reading, strict ([`scan_body`]);
/// 2. the JSON reading of a body that [looks like JSON](looks_like_json) but is not labelled
///    JSON, strict too ([`scan_json`]), so a JSON body labelled as a form is checked, or
///    refused, exactly like one labelled JSON;
/// 3. the most lenient form reading of any non-empty body ([`form_reading`]).
///
/// The guard checks the keys of all of them. Labels other than JSON and form never get here:
/// [`classify`] refuses them.
pub fn readings(kind: BodyKind, body: &[u8], cap: usize) -> Result<Vec<BodyScan>, BodyReject> {
    let mut out = vec![scan_body(kind, body, cap)?];
    if body.is_empty() {
        return Ok(out);
    }
    if kind != BodyKind::Json && looks_like_json(body) {
        out.push(scan_json(body, cap)?);
    }
    out.push(form_reading(body));
    Ok(out)
}

/// Whether a lenient JSON parser might read `body` as an object or array: its first byte
/// after byte order marks, NULs (UTF-16 and UTF-32 text) and whitespace is `{` or `[`.
pub fn looks_like_json(body: &[u8]) -> bool {
    let rest = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    rest.iter()
        .find(|&&b| {
            !matches!(
                b,
                0 | 0xFE | 0xFF | b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C
            )
        })
        .is_some_and(|&b| b == b'{' || b == b'[')
}

/// The form reading the most lenient binder could make of any body: pairs split on `&` and
/// `;`, names and values percent-decoded until nothing decodes ([`canon::lenient_decode`],
/// `+` read as space), and each name read whole and as its parts, split at brackets and dots
/// (`user[email]` and `user.email` also name `email`). Never fails; the value is a flat
/// object of every name.
pub fn form_reading(body: &[u8]) -> BodyScan {
    let text = String::from_utf8_lossy(body);
    let mut keys = Vec::new();
    let mut map = Map::new();
    for pair in text.split(['&', ';']).filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |raw: &str| canon::lenient_decode(raw.replace('+', " ").as_bytes());
        let (name, value) = (decode(raw_name), decode(raw_value));
        let parts = name
            .split(['[', ']', '.'])
            .filter(|p| !p.is_empty() && *p != name);
        for key in std::iter::once(name.as_str()).chain(parts) {
            map.insert(key.to_owned(), Value::String(value.clone()));
            keys.push(key.to_owned());
        }
    }
    BodyScan {
        top_level_keys: keys,
        value: Value::Object(map),
    }
}

/// Scans `body` as `kind` says. An empty body of any kind is an empty scan (a backend reads
/// no fields from it); a non-empty body of kind [`BodyKind::Empty`] is refused.
pub fn scan_body(kind: BodyKind, body: &[u8], cap: usize) -> Result<BodyScan, BodyReject> {
    if body.is_empty() {
        return Ok(BodyScan::empty());
    }
    match kind {
        BodyKind::Json => scan_json(body, cap),
        BodyKind::Form => scan_form(body, cap),
        BodyKind::Empty => Err(BodyReject::UnsupportedContentType("(none)".into())),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// The strict JSON reading of `body` ([`json::read`]) with its top-level keys.
pub fn scan_json(body: &[u8], cap: usize) -> Result<BodyScan, BodyReject> {
    let doc = json::read(body, cap)?;
    Ok(BodyScan {
        top_level_keys: doc.top_level_keys,
        value: doc.value,
    })
}

// ---------------------------------------------------------------------------------------------
// Form
// ---------------------------------------------------------------------------------------------

/// Strict `application/x-www-form-urlencoded`: at most `cap` bytes, UTF-8, pairs split on `&`
/// only (a raw `;`, which some parsers also split on, is refused), keys without `%`-escapes
/// and without `[`/`]` (array/nested syntax), no duplicate keys (by [`key_form`]), values
/// decoded (`+` is space) to valid UTF-8. Yields the keys as a flat object of strings.
pub fn scan_form(body: &[u8], cap: usize) -> Result<BodyScan, BodyReject> {
    if body.len() > cap {
        return Err(BodyReject::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| BodyReject::NotUtf8)?;
    if text.contains(';') {
        return Err(BodyReject::BadForm(
            "';' is not a pair separator here".into(),
        ));
    }
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    let mut map = Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = form_key(raw_key)?;
        if !seen.insert(key_form(&key)) {
            return Err(BodyReject::DuplicateKey(key));
        }
        map.insert(key.clone(), Value::String(form_value(raw_value)?));
        keys.push(key);
    }
    Ok(BodyScan {
        top_level_keys: keys,
        value: Value::Object(map),
    })
}

/// A form key: no escapes, no brackets, `+` as space.
fn form_key(raw: &str) -> Result<String, BodyReject> {
    if let Some(i) = raw.find('%') {
        return Err(BodyReject::EscapedKey(raw[..i].to_owned()));
    }
    if raw.contains(['[', ']']) {
        return Err(BodyReject::BadForm(format!(
            "bracketed key {raw:?} (arrays and nested keys are not read)"
        )));
    }
    Ok(raw.replace('+', " "))
}

/// A form value decoded strictly (`+` is space).
fn form_value(raw: &str) -> Result<String, BodyReject> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let v = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| BodyReject::BadForm("malformed %-escape".into()))?;
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| BodyReject::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    const CAP: usize = 1024;

    /// `(body, Ok(top-level keys) | Err(rejection))`.
    type Case = (&'static str, Result<&'static [&'static str], BodyReject>);

    fn json_cases() -> Vec<Case> {
        let nj = |s: &str| Err(BodyReject::NotJson(s.to_owned()));
        vec![
            (r#"{}"#, Ok(&[])),
            (r#"{"email":"a@b.test"}"#, Ok(&["email"])),
            (
                r#" {"Email" : "x", "name": {"a": [1, 2.5e3, -0.1, true, false, null]}} "#,
                Ok(&["Email", "name"]),
            ),
            (r#"{"s":"esc \" \\ \/ \b \f \n \r \t \u00e9"}"#, Ok(&["s"])),
            (r#"{"a":{"a":{"a":1}}}"#, Ok(&["a"])),
            (r#"{"a":1,"b":{"a":2}}"#, Ok(&["a", "b"])),
            (
                r#"{"email":1,"email":2}"#,
                Err(BodyReject::DuplicateKey("email".into())),
            ),
            (
                r#"{"email":1,"EMAIL":2}"#,
                Err(BodyReject::DuplicateKey("EMAIL".into())),
            ),
            (
                r#"{"email":1,"emaıl":2}"#,
                Err(BodyReject::DuplicateKey("emaıl".into())),
            ),
            (
                r#"{"email":1," email":2}"#,
                Err(BodyReject::DuplicateKey(" email".into())),
            ),
            (
                r#"{"new_password":1,"newPassword":2}"#,
                Err(BodyReject::DuplicateKey("newPassword".into())),
            ),
            (
                r#"{"x":{"a":1,"a":2}}"#,
                Err(BodyReject::DuplicateKey("a".into())),
            ),
            (
                r#"{"x":[{"a":1,"A":2}]}"#,
                Err(BodyReject::DuplicateKey("A".into())),
            ),
            (
                r#"{"em\u0061il":"x"}"#,
                Err(BodyReject::EscapedKey("em".into())),
            ),
            (
                r#"{"x":{"\u0065mail":"x"}}"#,
                Err(BodyReject::EscapedKey(String::new())),
            ),
            (r#"{"a\"b":1}"#, Err(BodyReject::EscapedKey("a".into()))),
            ("", nj("the top-level value must be an object at byte 0")),
            ("[]", nj("the top-level value must be an object at byte 0")),
            (
                r#""email""#,
                nj("the top-level value must be an object at byte 0"),
            ),
            (
                r#"{"a":1}{"b":2}"#,
                nj("unexpected data after the object at byte 7"),
            ),
            (r#"{"a":1,}"#, nj("expected an object key at byte 7")),
            (r#"{"a":01}"#, nj("expected ',' or '}' at byte 6")),
            (r#"{"a":1.}"#, nj("bad number at byte 7")),
            (r#"{"a":-}"#, nj("bad number at byte 6")),
            (r#"{"a":tru}"#, nj("expected true, false or null at byte 5")),
            (r#"{"a":'x'}"#, nj("expected a value at byte 5")),
            (r#"{a:1}"#, nj("expected an object key at byte 1")),
            (r#"{"a" 1}"#, nj("expected ':' at byte 5")),
            (r#"{"a":"\x"}"#, nj("bad escape at byte 7")),
            (r#"{"a":"\u12"}"#, nj("bad \\u escape at byte 7")),
            (
                "{\"a\":\"tab\there\"}",
                nj("control character in string at byte 9"),
            ),
            (
                r#"{"a":"unterminated}"#,
                nj("unterminated string at byte 19"),
            ),
            (r#"{"a":[1,]}"#, nj("expected a value at byte 8")),
            (r#"{"a":1 /* c */}"#, nj("expected ',' or '}' at byte 7")),
            ("\u{feff}{}", nj("a byte order mark is not allowed")),
        ]
    }

    #[test]
    fn json_table() {
        for (body, want) in json_cases() {
            let got = scan_json(body.as_bytes(), CAP).map(|s| s.top_level_keys);
            let want = want.map(|k| k.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn json_limits_and_encoding() {
        assert_eq!(
            scan_json(b"{\"a\":\"\xff\"}", CAP),
            Err(BodyReject::NotUtf8)
        );
        assert_eq!(scan_json(&[b' '; 10], 9), Err(BodyReject::TooLarge));
        let nested = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        assert!(scan_json(nested(json::MAX_DEPTH - 1).as_bytes(), 1 << 20).is_ok());
        assert_eq!(
            scan_json(nested(json::MAX_DEPTH + 1).as_bytes(), 1 << 20),
            Err(BodyReject::TooDeep)
        );
        let arrays = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            scan_json(arrays.as_bytes(), 1 << 20),
            Err(BodyReject::TooDeep)
        );
        let lone = scan_json(br#"{"a":"\ud800"}"#, CAP);
        assert!(matches!(lone, Err(BodyReject::NotJson(_))), "{lone:?}");
    }

    #[test]
    fn key_lookup() {
        let s = scan_json(
            r#"{"Email":"x","profile":{"emaıl":"y","list":[{"PassWord":1}]}}"#.as_bytes(),
            CAP,
        )
        .expect("valid");
        assert!(s.has_key_ci("email"));
        assert!(s.has_key_ci("EMAIL"));
        assert!(s.has_key_ci("e_mail"));
        assert!(!s.has_key_ci("mail"));
        assert!(!s.has_key_ci("password"));
        assert!(s.has_key_ci_deep("password"));
        assert!(!s.has_key_ci_deep("new_password"));
        assert_eq!(s.value["profile"]["emaıl"], "y");
        assert!(!BodyScan::empty().has_key_ci("email"));
    }

    /// `(body, Ok(pairs) | Err)`.
    type FormCase = (
        &'static str,
        Result<&'static [(&'static str, &'static str)], BodyReject>,
    );

    #[test]
    fn form_table() {
        let cases: &[FormCase] = &[
            ("", Ok(&[])),
            ("email=a%40b.test", Ok(&[("email", "a@b.test")])),
            ("a=1&&b=x+y&c", Ok(&[("a", "1"), ("b", "x y"), ("c", "")])),
            ("a=%C3%A9", Ok(&[("a", "é")])),
            ("new+password=x", Ok(&[("new password", "x")])),
            (
                "email=a&email=b",
                Err(BodyReject::DuplicateKey("email".into())),
            ),
            (
                "email=a&EMAIL=b",
                Err(BodyReject::DuplicateKey("EMAIL".into())),
            ),
            ("em%61il=x", Err(BodyReject::EscapedKey("em".into()))),
            (
                "a=1;email=x",
                Err(BodyReject::BadForm(
                    "';' is not a pair separator here".into(),
                )),
            ),
            (
                "email[]=x",
                Err(BodyReject::BadForm(
                    "bracketed key \"email[]\" (arrays and nested keys are not read)".into(),
                )),
            ),
            (
                "user[email]=x",
                Err(BodyReject::BadForm(
                    "bracketed key \"user[email]\" (arrays and nested keys are not read)".into(),
                )),
            ),
            (
                "a=%zz",
                Err(BodyReject::BadForm("malformed %-escape".into())),
            ),
            (
                "a=%4",
                Err(BodyReject::BadForm("malformed %-escape".into())),
            ),
            ("a=%ff", Err(BodyReject::NotUtf8)),
        ];
        for (body, want) in cases {
            let got = scan_form(body.as_bytes(), CAP).map(|s| {
                s.top_level_keys
                    .iter()
                    .map(|k| {
                        (
                            k.clone(),
                            s.value[k].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect::<Vec<_>>()
            });
            let want = want.clone().map(|w| {
                w.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>()
            });
            assert_eq!(got, want, "{body}");
        }
        assert_eq!(scan_form(b"a=\xff", CAP), Err(BodyReject::NotUtf8));
        assert_eq!(scan_form(b"a=12345", 3), Err(BodyReject::TooLarge));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    /// `(headers, expected kind)`.
    type ClassifyCase = (
        Vec<(&'static str, &'static str)>,
        Result<BodyKind, BodyReject>,
    );

    #[test]
    fn classify_table() {
        let unsupported = |s: &str| Err(BodyReject::UnsupportedContentType(s.to_owned()));
        let cases: Vec<ClassifyCase> = vec![
            (vec![], Ok(BodyKind::Empty)),
            (vec![("content-length", "0")], Ok(BodyKind::Empty)),
            (vec![("content-length", "5")], unsupported("(none)")),
            (
                vec![("transfer-encoding", "chunked")],
                unsupported("(none)"),
            ),
            (
                vec![("content-type", "application/json")],
                Ok(BodyKind::Json),
            ),
            (
                vec![("content-type", "Application/JSON; charset=UTF-8")],
                Ok(BodyKind::Json),
            ),
            (
                vec![("content-type", "application/json;charset=\"utf-8\"")],
                Ok(BodyKind::Json),
            ),
            (
                vec![("content-type", "application/json;")],
                Ok(BodyKind::Json),
            ),
            (
                vec![("content-type", "application/merge-patch+json")],
                Ok(BodyKind::Json),
            ),
            (
                vec![("content-type", "application/scim+json")],
                Ok(BodyKind::Json),
            ),
            (
                vec![("content-type", "application/x-www-form-urlencoded")],
                Ok(BodyKind::Form),
            ),
            (
                vec![("content-type", "application/json; charset=utf-16")],
                unsupported("(parameter \"charset=utf-16\")"),
            ),
            (
                vec![("content-type", "application/json; boundary=x")],
                unsupported("(parameter \"boundary=x\")"),
            ),
            (
                vec![("content-type", "text/plain")],
                unsupported("text/plain"),
            ),
            (
                vec![("content-type", "text/json")],
                unsupported("text/json"),
            ),
            (
                vec![("content-type", "multipart/form-data; boundary=x")],
                unsupported("(parameter \"boundary=x\")"),
            ),
            (
                vec![("content-type", "application/+json")],
                unsupported("application/+json"),
            ),
            (
                vec![("content-type", "application/json, text/plain")],
                unsupported("application/json, text/plain"),
            ),
            (
                vec![
                    ("content-type", "application/json"),
                    ("content-type", "application/json"),
                ],
                unsupported("(several Content-Type headers)"),
            ),
            (
                vec![
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                ],
                Err(BodyReject::Compressed),
            ),
            (
                vec![
                    ("content-type", "application/json"),
                    ("content-encoding", "identity"),
                ],
                Ok(BodyKind::Json),
            ),
            (
                vec![
                    ("content-type", "application/json"),
                    ("content-encoding", "identity, br"),
                ],
                Err(BodyReject::Compressed),
            ),
            (
                vec![
                    ("content-type", "application/json"),
                    ("transfer-encoding", "gzip, chunked"),
                ],
                Err(BodyReject::Compressed),
            ),
            (
                vec![
                    ("content-type", "application/json"),
                    ("transfer-encoding", "chunked"),
                ],
                Ok(BodyKind::Json),
            ),
        ];
        for (h, want) in cases {
            assert_eq!(classify(&headers(&h)), want, "{h:?}");
        }
    }

    #[test]
    fn scan_body_dispatch() {
        assert_eq!(scan_body(BodyKind::Json, b"", CAP), Ok(BodyScan::empty()));
        assert_eq!(scan_body(BodyKind::Empty, b"", CAP), Ok(BodyScan::empty()));
        assert_eq!(
            scan_body(BodyKind::Empty, b"{}", CAP),
            Err(BodyReject::UnsupportedContentType("(none)".into()))
        );
        assert!(scan_body(BodyKind::Form, b"email=x", CAP).is_ok_and(|s| s.has_key_ci("Email")));
        assert!(
            scan_body(BodyKind::Json, b"{\"email\":1}", CAP).is_ok_and(|s| s.has_key_ci("email"))
        );
    }

    /// Whether any reading of `body` labelled `kind` carries a key folding to `name`.
    /// `Err(())` when some reading refuses the body.
    fn any_reading_has(kind: BodyKind, body: &str, name: &str) -> Result<bool, ()> {
        let all = readings(kind, body.as_bytes(), CAP).map_err(drop)?;
        Ok(all.iter().any(|s| s.has_key_ci_deep(name)))
    }

    /// Every reading a lenient backend could make is checked, whatever the label: a JSON body
    /// labelled as a form, form pairs hidden in a JSON string, nested form names.
    #[test]
    fn readings_table() {
        use BodyKind::{Form, Json};
        let cases: &[(BodyKind, &str, Result<bool, ()>)] = &[
            (Json, r#"{"first_name":"x"}"#, Ok(false)),
            (Json, r#"{"email":"x"}"#, Ok(true)),
            (Form, "first_name=x", Ok(false)),
            (Form, "email=x", Ok(true)),
            // a JSON body labelled as a form is read as JSON too
            (Form, r#"{"email":"x"}"#, Ok(true)),
            (
                Form,
                "\r\n\t {\"first_name\":\"x\",\"email\":\"y\"}",
                Ok(true),
            ),
            (Form, r#"[{"email":"x"}]"#, Err(())),
            (Form, r#"{"email":"a","email":"b"}"#, Err(())),
            (Form, r#"{"em\u0061il":"x"}"#, Err(())),
            (Form, r#"{"first_name":"x"}"#, Ok(false)),
            // form pairs inside a JSON value, for a backend that binds form pairs from any body
            (Json, r#"{"bio":"x&email=y"}"#, Ok(true)),
            (Json, r#"{"bio":"x;em%61il=y"}"#, Ok(true)),
            (Json, r#"{"bio":"a.b@c.test & more"}"#, Ok(false)),
            // nested form names, as Spring or PHP bind them
            (Form, "user.email=x", Ok(true)),
            (Json, r#"{"bio":"&user[email]=y"}"#, Ok(true)),
        ];
        for (kind, body, want) in cases {
            assert_eq!(
                &any_reading_has(*kind, body, "email"),
                want,
                "{kind:?} {body}"
            );
        }
    }

    #[test]
    fn what_looks_like_json() {
        for yes in [
            &b"{}"[..],
            b" [1]",
            b"\xEF\xBB\xBF{",
            b"\xFF\xFE{\0\"\0",
            b"\0{\0",
            b"\x0C{",
        ] {
            assert!(looks_like_json(yes), "{yes:?}");
        }
        for no in [&b""[..], b"email={", b"\"x\"", b"1", b"a{"] {
            assert!(!looks_like_json(no), "{no:?}");
        }
        let utf16: Vec<u8> = r#"{"email":"x"}"#.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert!(
            readings(BodyKind::Form, &utf16, CAP).is_err(),
            "UTF-16 JSON labelled as a form"
        );
    }

    #[test]
    fn lenient_form_reading() {
        let r = form_reading(b"a=1;b%255Bc%255D=2&+em%61il+=x&&user[e.f]=3");
        assert_eq!(
            r.top_level_keys,
            [
                "a",
                "b[c]",
                "b",
                "c",
                " email ",
                "user[e.f]",
                "user",
                "e",
                "f"
            ]
        );
        assert_eq!(r.value["c"], "2");
        assert!(r.has_key_ci("email"));
        assert!(form_reading(b"").top_level_keys.is_empty());
    }

    #[test]
    fn messages() {
        let all = [
            BodyReject::NotUtf8,
            BodyReject::NotJson("x".into()),
            BodyReject::DuplicateKey("k".into()),
            BodyReject::EscapedKey("k".into()),
            BodyReject::TooDeep,
            BodyReject::TooLarge,
            BodyReject::Compressed,
            BodyReject::UnsupportedContentType("t".into()),
            BodyReject::BadForm("f".into()),
        ];
        for r in all {
            assert!(r.to_string().len() > 15, "{r:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn prop_json_never_panics(b in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = scan_json(&b, CAP);
            let _ = scan_form(&b, CAP);
            let _ = readings(BodyKind::Json, &b, CAP);
            let _ = readings(BodyKind::Form, &b, CAP);
        }

        /// The scanner accepts exactly what serde_json accepts, for objects without escaped
        /// or folded-duplicate keys.
        #[test]
        fn prop_agrees_with_serde(v in json_object()) {
            let text = serde_json::to_string(&v).unwrap_or_default();
            let scan = scan_json(text.as_bytes(), 1 << 20);
            prop_assert_eq!(scan.map(|s| s.value), Ok(v));
        }

        #[test]
        fn prop_structured_json_never_panics(s in "[{}\\[\\]\":,a-c0-9eE.+\\- \\\\u]{0,40}") {
            if let Ok(scan) = scan_json(s.as_bytes(), CAP) {
                let serde: Result<Value, _> = serde_json::from_str(&s);
                prop_assert_eq!(serde.ok(), Some(scan.value));
            }
        }
    }

    /// JSON objects with distinct lower-case keys.
    fn json_object() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop::collection::btree_map("[a-z]{1,4}", value, 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }
}
