//! Request-target canonicalisation: one strict canonical form that rejects every ambiguous spelling, and the worst-case readings a permissive backend might apply.
//!
//! The guard decides on [`canonicalize`]'s result and forwards the original bytes. That is
//! only safe because, for every target `canonicalize` accepts, every lenient reading
//! ([`lenient_paths`]) yields exactly the canonical path: whatever a lenient backend does with
//! the bytes, it lands where the guard looked. Targets where readings could differ are
//! rejected instead of guessed.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::scim::fold::{fold_char, fold_lenient, key_form};

/// Longest request target (bytes) [`canonicalize`] accepts.
pub const MAX_TARGET_LEN: usize = 16 * 1024;

/// Upper bound on decode-and-clean rounds in the lenient reading. A new round is needed only
/// when dropping a control character or folding a look-alike forms a fresh `%`-escape, so real
/// inputs settle in one or two; anything needing more is refused by the strict form anyway.
const MAX_LENIENT_ROUNDS: usize = 16;

/// Bytes written as-is in a canonical path segment; everything else is `%XX` (upper-case hex).
const SEGMENT_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b',')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// Bytes written as-is in a canonical query key or value.
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A request target in strict canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonTarget {
    /// Canonical path: `/` plus the segments joined by `/`, lower-case, no empty, dot or
    /// trailing segments; bytes outside `A-Za-z0-9-._~!$&'()*,=:@` as `%XX` (upper-case hex).
    pub path: String,
    /// Decoded, lower-cased path segments (never empty strings).
    pub segments: Vec<String>,
    /// Decoded query pairs in order (`+` read as space; a key without `=` has an empty value).
    pub query: Vec<(String, String)>,
}

impl CanonTarget {
    /// Whether a query key has the same [`key_form`] as `name` (a lenient
    /// backend may bind `Email`, `e_mail` or ` email` as `email`).
    pub fn has_query_key_ci(&self, name: &str) -> bool {
        let want = key_form(name);
        self.query.iter().any(|(k, _)| key_form(k) == want)
    }

    /// The canonical target as origin-form text (path, then `?` and the re-encoded query if
    /// there is one); [`canonicalize`] maps it back to `self`.
    pub fn to_target(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let pairs: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, QUERY_ENCODE),
                    utf8_percent_encode(v, QUERY_ENCODE)
                )
            })
            .collect();
        format!("{}?{}", self.path, pairs.join("&"))
    }
}

/// Why a request target was refused; `Display` gives a sentence a client can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Not origin-form (`/path?query`): empty, `*`, relative, or an unsupported form.
    NotOriginForm,
    /// Longer than [`MAX_TARGET_LEN`].
    TooLong,
    /// Path starts with `//`, which some URL parsers read as `//authority/path`.
    LeadingDoubleSlash,
    /// A `#fragment`, which clients never send.
    Fragment,
    /// `%2F` inside a segment.
    EncodedSlash,
    /// A raw or encoded (`%5C`) backslash.
    Backslash,
    /// A `.`/`..` segment (raw or `%2e`-encoded) or one made only of dots.
    DotSegment,
    /// A segment ending in `.`, which Windows-style servers strip.
    TrailingDot,
    /// A `.` in the last segment, which suffix-matching frameworks read as a format (`.json`).
    ExtensionSuffix,
    /// Leading or trailing whitespace in a segment, which some routers trim.
    SegmentWhitespace,
    /// A raw or encoded `+` in the path, which some backends read as a space.
    PlusSign,
    /// `%25`: percent-encoding of a percent sign (double encoding).
    DoubleEncoding,
    /// A raw or encoded `;` in the path (matrix/path parameters).
    MatrixParam,
    /// An encoded `?` or `#` in the path.
    EncodedDelimiter,
    /// Bytes that are not UTF-8 after decoding (including overlong forms and surrogates).
    InvalidUtf8,
    /// A non-ASCII character in the path (case folding and compatibility mapping differ).
    NonAscii,
    /// A control character (NUL, CR, LF, TAB, DEL, ...) raw or encoded.
    ControlChar,
    /// A `%` not followed by two hex digits (this includes IIS-style `%u0065`).
    BadPercentEncoding,
    /// A byte that must be percent-encoded appeared raw.
    InvalidChar(u8),
    /// Absolute-form authority differs from the `Host` header (or there is none).
    AbsoluteFormHostMismatch,
    /// Absolute-form target with an unsupported scheme, userinfo, empty host or bad port.
    BadAbsoluteForm,
    /// A `_method` query parameter (method override), in any spelling.
    MethodOverride,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::InvalidChar(b) => write!(
                f,
                "the request target contains the byte 0x{b:02X} ({:?}) unencoded",
                char::from(*b)
            ),
            other => f.write_str(other.message()),
        }
    }
}

impl std::error::Error for Reject {}

impl Reject {
    /// The fixed explanation for every variant without data.
    fn message(&self) -> &'static str {
        match self {
            Reject::NotOriginForm => "the request target must be an absolute path such as /api/me",
            Reject::TooLong => "the request target is too long",
            Reject::LeadingDoubleSlash => "the path must not start with //",
            Reject::Fragment => "the request target must not contain a #fragment",
            Reject::EncodedSlash => "the path must not contain an encoded slash (%2F)",
            Reject::Backslash => "the path must not contain a backslash, raw or encoded (%5C)",
            Reject::DotSegment => "the path must not contain . or .. segments, raw or encoded",
            Reject::TrailingDot => "a path segment must not end with a dot",
            Reject::ExtensionSuffix => {
                "the last path segment must not contain a dot (format suffix)"
            }
            Reject::SegmentWhitespace => "a path segment must not start or end with whitespace",
            Reject::PlusSign => "the path must not contain +, raw or encoded (%2B)",
            Reject::DoubleEncoding => "the path must not contain an encoded percent sign (%25)",
            Reject::MatrixParam => "the path must not contain ; (path parameters), raw or encoded",
            Reject::EncodedDelimiter => "the path must not contain an encoded ? or #",
            Reject::InvalidUtf8 => "the request target does not decode to valid UTF-8",
            Reject::NonAscii => "the path must contain only ASCII characters",
            Reject::ControlChar => "the request target must not contain control characters",
            Reject::BadPercentEncoding => "the request target contains a malformed %-escape",
            Reject::InvalidChar(_) => {
                "the request target contains a character that must be encoded"
            }
            Reject::AbsoluteFormHostMismatch => {
                "the absolute-form request target names a different host than the Host header"
            }
            Reject::BadAbsoluteForm => {
                "the absolute-form request target is not a plain http(s) URL"
            }
            Reject::MethodOverride => "method override (_method) is not accepted on this route",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strict canonical form
// ---------------------------------------------------------------------------------------------

/// Strict canonical form of an origin-form target (`/path?query`).
///
/// Rejects anything ambiguous: `%2F`/`%5C`, raw or encoded backslash, `.`/`..` segments (raw or
/// `%2e`-encoded, any case) and all-dot segments, segments with a trailing dot or edge
/// whitespace, a dot in the last segment, `%25`, `;` and `+` in the path (raw or encoded),
/// encoded `?`/`#`, NUL and other control bytes, invalid UTF-8 after decoding, non-ASCII path
/// characters, bad `%`-escapes, raw bytes that must be encoded, fragments, a leading `//`,
/// and a `_method` query parameter. Collapses repeated slashes, drops a trailing slash,
/// lower-cases the path (a lenient backend routes case-insensitively) and decodes escapes.
pub fn canonicalize(target: &[u8]) -> Result<CanonTarget, Reject> {
    if target.len() > MAX_TARGET_LEN {
        return Err(Reject::TooLong);
    }
    if target.contains(&b'#') {
        return Err(Reject::Fragment);
    }
    let (raw_path, raw_query) = split_query(target);
    let segments = canonical_segments(raw_path)?;
    let query = match raw_query {
        Some(q) => parse_query(q)?,
        None => Vec::new(),
    };
    Ok(CanonTarget {
        path: join_segments(&segments),
        segments,
        query,
    })
}

/// Splits a target at its first `?` into path and optional query.
fn split_query(target: &[u8]) -> (&[u8], Option<&[u8]>) {
    match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], Some(&target[i + 1..])),
        None => (target, None),
    }
}

/// `/` plus the segments, each percent-encoded with [`SEGMENT_ENCODE`].
fn join_segments(segments: &[String]) -> String {
    let mut path = String::with_capacity(segments.iter().map(|s| s.len() + 1).sum::<usize>() + 1);
    for seg in segments {
        path.push('/');
        path.extend(utf8_percent_encode(seg, SEGMENT_ENCODE));
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// The decoded, validated, lower-cased segments of a strict path.
fn canonical_segments(raw_path: &[u8]) -> Result<Vec<String>, Reject> {
    if raw_path.first() != Some(&b'/') {
        return Err(Reject::NotOriginForm);
    }
    if raw_path.starts_with(b"//") {
        return Err(Reject::LeadingDoubleSlash);
    }
    let mut segments = Vec::new();
    for raw in raw_path[1..].split(|&b| b == b'/') {
        if !raw.is_empty() {
            segments.push(decode_segment(raw)?);
        }
    }
    check_segment_shapes(&segments)?;
    Ok(segments)
}

/// Whether `b` may appear unencoded in a canonical path segment.
fn is_raw_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*,=:@".contains(&b)
}

/// Decodes one raw path segment strictly and lower-cases it.
fn decode_segment(raw: &[u8]) -> Result<String, Reject> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let v = hex_pair(raw.get(i + 1..i + 3)).ok_or(Reject::BadPercentEncoding)?;
            check_decoded_path_byte(v)?;
            out.push(v);
            i += 3;
        } else {
            check_raw_path_byte(b)?;
            out.push(b);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| Reject::InvalidUtf8)?;
    if !text.is_ascii() {
        return Err(Reject::NonAscii);
    }
    Ok(text.to_ascii_lowercase())
}

/// The rejection for a raw (unencoded) path byte, if any.
fn check_raw_path_byte(b: u8) -> Result<(), Reject> {
    match b {
        b'\\' => Err(Reject::Backslash),
        b';' => Err(Reject::MatrixParam),
        b'+' => Err(Reject::PlusSign),
        _ if b < 0x20 || b == 0x7f => Err(Reject::ControlChar),
        _ if b >= 0x80 || is_raw_path_byte(b) => Ok(()),
        _ => Err(Reject::InvalidChar(b)),
    }
}

/// The rejection for a byte that arrived `%`-encoded in the path, if any.
fn check_decoded_path_byte(v: u8) -> Result<(), Reject> {
    match v {
        b'/' => Err(Reject::EncodedSlash),
        b'\\' => Err(Reject::Backslash),
        b'%' => Err(Reject::DoubleEncoding),
        b';' => Err(Reject::MatrixParam),
        b'+' => Err(Reject::PlusSign),
        b'?' | b'#' => Err(Reject::EncodedDelimiter),
        _ if v < 0x20 || v == 0x7f => Err(Reject::ControlChar),
        _ => Ok(()),
    }
}

/// Segment-level checks: dot segments, trailing dots, edge whitespace, format suffix.
fn check_segment_shapes(segments: &[String]) -> Result<(), Reject> {
    for seg in segments {
        if seg.bytes().all(|b| b == b'.') {
            return Err(Reject::DotSegment);
        }
        if seg.starts_with(' ') || seg.ends_with(' ') {
            return Err(Reject::SegmentWhitespace);
        }
        if seg.ends_with('.') {
            return Err(Reject::TrailingDot);
        }
    }
    match segments.last() {
        Some(last) if last.contains('.') => Err(Reject::ExtensionSuffix),
        _ => Ok(()),
    }
}

/// The byte two hex digits stand for.
fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    match pair {
        Some(&[h, l]) => Some((hex_val(h)? << 4) | hex_val(l)?),
        _ => None,
    }
}

/// The value of one hex digit.
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Strictly parsed query pairs; rejects `_method` in any reading first.
fn parse_query(raw: &[u8]) -> Result<Vec<(String, String)>, Reject> {
    if query_has_method_override(raw) {
        return Err(Reject::MethodOverride);
    }
    let mut pairs = Vec::new();
    for piece in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match piece.iter().position(|&b| b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &piece[piece.len()..]),
        };
        pairs.push((decode_query_component(k)?, decode_query_component(v)?));
    }
    Ok(pairs)
}

/// Decodes one query key or value strictly (`+` is a space).
fn decode_query_component(raw: &[u8]) -> Result<String, Reject> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let (b, step) = match raw[i] {
            b'%' => (
                hex_pair(raw.get(i + 1..i + 3)).ok_or(Reject::BadPercentEncoding)?,
                3,
            ),
            b'+' => (b' ', 1),
            b' ' => return Err(Reject::InvalidChar(b' ')),
            b => (b, 1),
        };
        if b < 0x20 || b == 0x7f {
            return Err(Reject::ControlChar);
        }
        out.push(b);
        i += step;
    }
    String::from_utf8(out).map_err(|_| Reject::InvalidUtf8)
}

/// Whether any lenient reading of a raw query has a `_method` parameter: split on `&` and `;`
/// before or after fully decoding, keys decoded and folded.
fn query_has_method_override(raw: &[u8]) -> bool {
    let split_first = raw
        .split(|&b| b == b'&' || b == b';')
        .any(|piece| key_is_override(&lenient_decode(piece)));
    split_first || {
        let decoded = lenient_decode(raw);
        decoded.split(['&', ';']).any(key_is_override)
    }
}

/// Whether the key part (before `=`, `+` as space) of a decoded pair is a method override.
fn key_is_override(pair: &str) -> bool {
    let key = pair.split('=').next().unwrap_or_default().replace('+', " ");
    is_method_override_param(&key)
}

/// Whether a decoded parameter name is `_method` as some framework might read it: folded and
/// lower-cased ([`canon::fold_lenient`]), cut at `[` (PHP arrays), trailing whitespace
/// dropped, space and `.` read as `_` (PHP's name mangling), with leading whitespace either
/// dropped (PHP) or mangled too.
pub fn is_method_override_param(name: &str) -> bool {
    let folded = fold_lenient(name);
    let head = folded.split('[').next().unwrap_or_default().trim_end();
    [head, head.trim_start()].iter().any(|h| {
        let mangled: String = h
            .chars()
            .map(|c| if c == ' ' || c == '.' { '_' } else { c })
            .collect();
        mangled == "_method"
    })
}

// ---------------------------------------------------------------------------------------------
// Absolute form
// ---------------------------------------------------------------------------------------------

/// Accepts origin-form (`/a/b?q`) and absolute-form (`http://host/a/b?q`) targets and returns
/// the origin-form part. For absolute form the scheme must be http or https, there must be no
/// userinfo, and the authority must equal `host_header` (case-insensitive, default port
/// ignored) or the result is [`Reject::AbsoluteFormHostMismatch`]. `http://host` alone yields
/// `/`. Anything else (`*`, relative paths) is [`Reject::NotOriginForm`].
pub fn origin_form<'a>(target: &'a [u8], host_header: Option<&str>) -> Result<&'a [u8], Reject> {
    if target.first() == Some(&b'/') {
        return Ok(target);
    }
    let (scheme, rest) = split_scheme(target).ok_or(Reject::NotOriginForm)?;
    let default_port = match scheme.to_ascii_lowercase().as_slice() {
        b"http" => 80,
        b"https" => 443,
        _ => return Err(Reject::BadAbsoluteForm),
    };
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = parse_authority(&rest[..end], default_port).ok_or(Reject::BadAbsoluteForm)?;
    let host = host_header
        .and_then(|h| parse_authority(h.trim().as_bytes(), default_port))
        .ok_or(Reject::AbsoluteFormHostMismatch)?;
    if authority != host {
        return Err(Reject::AbsoluteFormHostMismatch);
    }
    match &rest[end..] {
        [] => Ok(b"/"),
        path @ [b'/', ..] => Ok(path),
        _ => Err(Reject::BadAbsoluteForm),
    }
}

/// Splits `scheme://rest`; the scheme is `ALPHA *( ALPHA / DIGIT / + / - / . )`.
fn split_scheme(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = target.iter().position(|&b| b == b':')?;
    let scheme = &target[..colon];
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let rest = target[colon + 1..].strip_prefix(b"//")?;
    valid.then_some((scheme, rest))
}

/// `(lower-case host, port)` of an authority without userinfo; `None` if malformed.
fn parse_authority(auth: &[u8], default_port: u16) -> Option<(String, u16)> {
    let text = std::str::from_utf8(auth).ok()?;
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let close = v6.find(']')?;
        let host = &v6[..close];
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        (valid.then_some(&text[..close + 2])?, &v6[close + 1..])
    } else {
        match text.rfind(':') {
            Some(i) => (&text[..i], &text[i..]),
            None => (text, ""),
        }
    };
    let port = match port {
        "" | ":" => default_port,
        p => {
            let digits = p.strip_prefix(':')?;
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse::<u16>().ok()?
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~')));
    host_ok.then(|| (host.to_ascii_lowercase(), port))
}

// ---------------------------------------------------------------------------------------------
// Lenient (worst-case) readings
// ---------------------------------------------------------------------------------------------

/// Where a lenient backend might stop reading the decoded path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Never: control characters are dropped (as WHATWG URL parsing does with TAB/LF/CR).
    None,
    /// At the first control character (C-string style NUL truncation).
    Control,
    /// At the first decoded `?` or `#` (re-parsing after decoding).
    Delimiter,
    /// At the first `;` (everything after is parameters).
    Semicolon,
    /// At the first of any of the above.
    All,
}

/// How a lenient backend might shape the decoded path into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// A segment of three or more dots pops (`true`) or is ignored (`false`).
    many_dots_pop: bool,
    /// A leading `//x` names an authority, so `x` is not part of the path.
    network_path: bool,
    /// `.ext` in the last segment is a format suffix and is dropped.
    strip_extension: bool,
}

/// The primary reading: no truncation, all-dot segments pop, no authority, format suffix dropped.
const PRIMARY: (Cut, Shape) = (
    Cut::None,
    Shape {
        many_dots_pop: true,
        network_path: false,
        strip_extension: true,
    },
);

/// The worst-case (most lenient) reading a permissive backend might apply: an absolute-form
/// prefix is skipped, everything is `%`-decoded repeatedly (IIS `%uXXXX` too), control
/// characters are dropped, Unicode look-alikes are folded to ASCII ([`fold_lenient`]), `+`
/// reads as space, `\` as `/`, `;params` are stripped per segment, edge whitespace and trailing
/// dots are trimmed, dot segments resolve, a `.ext` suffix on the last segment is dropped,
/// slashes collapse and everything is lower-cased. Never fails; idempotent; equal to
/// [`CanonTarget::path`] whenever [`canonicalize`] accepts the target.
pub fn lenient_path(target: &[u8]) -> String {
    let (cut, shape) = PRIMARY;
    shape_path(&lenient_text(path_part(target), cut), shape)
}

/// Every path a permissive backend might route `target` to: [`lenient_path`] plus the
/// variants that truncate at a control character, a decoded `?`/`#` or a `;`, read a leading
/// `//x` as an authority, ignore (rather than pop) `...` segments or keep a `.ext` suffix.
/// Sorted and deduplicated; a single element whenever [`canonicalize`] accepts the target.
pub fn lenient_paths(target: &[u8]) -> Vec<String> {
    let raw = path_part(target);
    let cuts = [
        Cut::None,
        Cut::Control,
        Cut::Delimiter,
        Cut::Semicolon,
        Cut::All,
    ];
    let mut texts: Vec<String> = cuts.iter().map(|&cut| lenient_text(raw, cut)).collect();
    let replaced: Vec<String> = texts
        .iter()
        .flat_map(|t| invalid_byte_readings(t))
        .collect();
    texts.extend(replaced);
    texts.sort();
    texts.dedup();
    let mut out = Vec::new();
    for text in texts {
        for bits in 0..8u8 {
            let shape = Shape {
                many_dots_pop: bits & 1 != 0,
                network_path: bits & 2 != 0,
                strip_extension: bits & 4 != 0,
            };
            out.push(shape_path(&text, shape));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Readings of bytes that were not valid UTF-8 (decoded as U+FFFD): a backend may drop them, or
/// decode an overlong sequence (`%c0%af`, two replacement characters) to `/` or `.`.
fn invalid_byte_readings(text: &str) -> Vec<String> {
    const BAD: char = '\u{FFFD}';
    if !text.contains(BAD) {
        return Vec::new();
    }
    let pair = "\u{FFFD}\u{FFFD}";
    vec![
        text.replace(BAD, ""),
        text.replace(BAD, "/"),
        text.replace(BAD, "."),
        text.replace(pair, "/").replace(BAD, ""),
        text.replace(pair, ".").replace(BAD, ""),
    ]
}

/// The raw path of a target: absolute-form scheme and authority skipped, query and fragment
/// dropped.
fn path_part(target: &[u8]) -> &[u8] {
    let rest = match split_scheme(target) {
        Some((_, rest)) => {
            let end = rest
                .iter()
                .position(|&b| matches!(b, b'/' | b'\\' | b'?' | b'#'))
                .unwrap_or(rest.len());
            &rest[end..]
        }
        None => target,
    };
    let end = rest
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Fully decodes, cleans and folds a raw path until no `%`-escape is left.
fn lenient_text(raw: &[u8], cut: Cut) -> String {
    let mut text = clean(&lenient_decode(raw), cut);
    for _ in 0..MAX_LENIENT_ROUNDS {
        if !has_escape(text.as_bytes()) {
            break;
        }
        text = clean(&lenient_decode(text.as_bytes()), cut);
    }
    text
}

/// Percent-decodes until nothing decodes any more (`%XX` and IIS-style `%uXXXX`), in one
/// linear pass; invalid UTF-8 becomes U+FFFD. Never fails.
pub fn lenient_decode(raw: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for &b in raw {
        out.push(b);
        while reduce_tail(&mut out) {}
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces a `%XX` or `%uXXXX` escape ending the buffer with what it stands for.
fn reduce_tail(out: &mut Vec<u8>) -> bool {
    let n = out.len();
    if n >= 3 && out[n - 3] == b'%' {
        if let Some(v) = hex_pair(out.get(n - 2..)) {
            out.truncate(n - 3);
            out.push(v);
            return true;
        }
    }
    if n >= 6 && out[n - 6] == b'%' && matches!(out[n - 5], b'u' | b'U') {
        if let Some(c) = hex_u16(&out[n - 4..]) {
            out.truncate(n - 6);
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            return true;
        }
    }
    false
}

/// The character four hex digits stand for (U+FFFD for a surrogate).
fn hex_u16(digits: &[u8]) -> Option<char> {
    let mut v: u32 = 0;
    for &d in digits {
        v = (v << 4) | u32::from(hex_val(d)?);
    }
    Some(char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER))
}

/// Whether `bytes` still hold a `%XX` or `%uXXXX` escape.
fn has_escape(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && (hex_pair(bytes.get(i + 1..i + 3)).is_some()
                || (matches!(bytes.get(i + 1), Some(b'u' | b'U'))
                    && bytes.get(i + 2..i + 6).and_then(hex_u16).is_some()))
    })
}

/// Truncates per `cut`, drops control characters, folds look-alikes, maps `+` to space and
/// `\` to `/`.
fn clean(text: &str, cut: Cut) -> String {
    let mut out = String::with_capacity(text.len());
    let mut folded = String::new();
    for c in text.chars() {
        if cuts_at(c, cut) {
            break;
        }
        if c.is_control() {
            continue;
        }
        folded.clear();
        fold_char(c, &mut folded);
        out.extend(folded.chars().map(|d| match d {
            '+' => ' ',
            '\\' => '/',
            d => d,
        }));
    }
    out
}

/// Whether reading stops at `c` under `cut`.
fn cuts_at(c: char, cut: Cut) -> bool {
    let control = c.is_control();
    let delim = c == '?' || c == '#';
    let semi = c == ';';
    match cut {
        Cut::None => false,
        Cut::Control => control,
        Cut::Delimiter => delim,
        Cut::Semicolon => semi,
        Cut::All => control || delim || semi,
    }
}

/// Builds the canonical-form path of cleaned text under `shape`.
fn shape_path(text: &str, shape: Shape) -> String {
    let body = if shape.network_path {
        skip_authority(text)
    } else {
        text
    };
    let mut segments: Vec<String> = Vec::new();
    for raw in body.split('/') {
        push_lenient_segment(&mut segments, raw, shape.many_dots_pop);
    }
    if shape.strip_extension {
        strip_extension(&mut segments);
    }
    join_segments(&segments)
}

/// For a path starting with `//`, the part after the would-be authority.
fn skip_authority(text: &str) -> &str {
    if !text.starts_with("//") {
        return text;
    }
    let rest = text.trim_start_matches('/');
    rest.find('/').map_or("", |i| &rest[i..])
}

/// Applies one raw segment to the stack: params stripped, trimmed, dots resolved.
fn push_lenient_segment(segments: &mut Vec<String>, raw: &str, many_dots_pop: bool) {
    let seg = raw.split(';').next().unwrap_or_default().trim();
    if !seg.is_empty() && seg.chars().all(|c| c == '.') {
        if seg.len() == 2 || (seg.len() > 2 && many_dots_pop) {
            segments.pop();
        }
        return;
    }
    let seg = seg.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    if !seg.is_empty() {
        segments.push(seg.to_owned());
    }
}

/// Drops a `.ext` suffix from the last segment (and segments that were only a suffix).
fn strip_extension(segments: &mut Vec<String>) {
    while let Some(last) = segments.last_mut() {
        match last.find('.') {
            Some(0) => {
                segments.pop();
            }
            Some(i) => {
                last.truncate(i);
                let trimmed_len = last.trim_end().len();
                last.truncate(trimmed_len);
                if last.is_empty() {
                    segments.pop();
                } else {
                    return;
                }
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `(target, Ok(canonical path) | Err(rejection))`.
    type Case = (&'static [u8], Result<&'static str, Reject>);

    const PATH_CASES: &[Case] = &[
        // accepted spellings
        (b"/", Ok("/")),
        (b"/api/me/email", Ok("/api/me/email")),
        (b"/API/Me/EMAIL", Ok("/api/me/email")),
        (b"/api/me/email/", Ok("/api/me/email")),
        (b"/api//me///email", Ok("/api/me/email")),
        (b"/api/me/email//", Ok("/api/me/email")),
        (b"/api/me/%65mail", Ok("/api/me/email")),
        (b"/api/me/%45MAIL", Ok("/api/me/email")),
        (b"/%61%70%69/me/password", Ok("/api/me/password")),
        (
            b"/api/teams/acme/members/me",
            Ok("/api/teams/acme/members/me"),
        ),
        (
            b"/api/teams/ACME/members/ME",
            Ok("/api/teams/acme/members/me"),
        ),
        (
            b"/api/teams/ac%20me/members/me",
            Ok("/api/teams/ac%20me/members/me"),
        ),
        (b"/api/users/42?x=1", Ok("/api/users/42")),
        (b"/api/users/0042", Ok("/api/users/0042")),
        (b"/api/%7euser", Ok("/api/~user")),
        (b"/api/a.b/c", Ok("/api/a.b/c")),
        (b"/api/me/email?", Ok("/api/me/email")),
        (b"/a%2Db", Ok("/a-b")),
        (b"/a/b%22c", Ok("/a/b%22c")),
        (b"/a/@:!$&'()*,=", Ok("/a/@:!$&'()*,=")),
        (b"/a/b%7Bc%7D", Ok("/a/b%7Bc%7D")),
        (b"/api/me/password?next=%2Fx%2F..", Ok("/api/me/password")),
        (
            b"/api/teams/a-b_c~d/members",
            Ok("/api/teams/a-b_c~d/members"),
        ),
        // encoded slashes
        (b"/api/me%2Femail", Err(Reject::EncodedSlash)),
        (b"/api/me%2femail", Err(Reject::EncodedSlash)),
        (b"/api%2F..%2Fme", Err(Reject::EncodedSlash)),
        (b"/api/teams/a%2Fb/members/me", Err(Reject::EncodedSlash)),
        // backslashes
        (b"/api\\me\\email", Err(Reject::Backslash)),
        (b"/api/me%5cemail", Err(Reject::Backslash)),
        (b"/api/me%5Cemail", Err(Reject::Backslash)),
        (b"/\\evil/api/me/email", Err(Reject::Backslash)),
        // dot segments in every encoding
        (b"/api/./me/email", Err(Reject::DotSegment)),
        (b"/api/x/../me/email", Err(Reject::DotSegment)),
        (b"/api/me/email/..", Err(Reject::DotSegment)),
        (b"/api/x/%2e%2e/me/email", Err(Reject::DotSegment)),
        (b"/api/x/%2E%2E/me", Err(Reject::DotSegment)),
        (b"/api/x/.%2e/me", Err(Reject::DotSegment)),
        (b"/api/x/%2e./me", Err(Reject::DotSegment)),
        (b"/api/x/.%2E/me", Err(Reject::DotSegment)),
        (b"/api/%2e/me", Err(Reject::DotSegment)),
        (b"/api/x/.../me", Err(Reject::DotSegment)),
        (b"/api/x/..;/me", Err(Reject::MatrixParam)),
        (b"/api/me./email", Err(Reject::TrailingDot)),
        (b"/api/me%2e/email", Err(Reject::TrailingDot)),
        (b"/api/me/email.", Err(Reject::TrailingDot)),
        (b"/api/me/email.json", Err(Reject::ExtensionSuffix)),
        (
            b"/api/teams/acme/members/me%2ejson",
            Err(Reject::ExtensionSuffix),
        ),
        // double encoding
        (b"/api/x/%252e%252e/me", Err(Reject::DoubleEncoding)),
        (b"/api/me/%2565mail", Err(Reject::DoubleEncoding)),
        (b"/api/me%252femail", Err(Reject::DoubleEncoding)),
        (b"/api/me/email%25", Err(Reject::DoubleEncoding)),
        // matrix parameters
        (b"/api/me;x=1/email", Err(Reject::MatrixParam)),
        (b"/api/me/email;", Err(Reject::MatrixParam)),
        (b"/api/me/email;jsessionid=1", Err(Reject::MatrixParam)),
        (b"/api/me/email%3bx", Err(Reject::MatrixParam)),
        (b"/api/me/email%3Bx", Err(Reject::MatrixParam)),
        // NUL and control bytes
        (b"/api/me/email%00", Err(Reject::ControlChar)),
        (b"/api/me/email\0", Err(Reject::ControlChar)),
        (b"/api/m\0e/email", Err(Reject::ControlChar)),
        (b"/api/me/email%0d%0a", Err(Reject::ControlChar)),
        (b"/api/me/\temail", Err(Reject::ControlChar)),
        (b"/api/me/%09email", Err(Reject::ControlChar)),
        (b"/api/me/email%7f", Err(Reject::ControlChar)),
        // non-UTF-8 and overlong UTF-8
        (b"/api/me/%ff", Err(Reject::InvalidUtf8)),
        (b"/api/me/\xff", Err(Reject::InvalidUtf8)),
        (b"/api/me/%c0%ae%c0%ae", Err(Reject::InvalidUtf8)),
        (b"/api/me/%c0%af", Err(Reject::InvalidUtf8)),
        (b"/api/me/%e0%80%ae", Err(Reject::InvalidUtf8)),
        (b"/api/me/%f0%80%80%af", Err(Reject::InvalidUtf8)),
        (b"/api/me/%ed%a0%80", Err(Reject::InvalidUtf8)),
        (b"/api/me/%c3", Err(Reject::InvalidUtf8)),
        // non-ASCII look-alikes
        (b"/api/me/%c3%a9mail", Err(Reject::NonAscii)),
        (b"/api/me/\xc3\xa9mail", Err(Reject::NonAscii)),
        (b"/api/me/%ef%bc%8femail", Err(Reject::NonAscii)),
        (b"/api/me/ema%c4%b1l", Err(Reject::NonAscii)),
        (b"/api/me/e%cc%81mail", Err(Reject::NonAscii)),
        (b"/api/%e2%80%8bme/email", Err(Reject::NonAscii)),
        // bad escapes
        (b"/api/me/em%zzail", Err(Reject::BadPercentEncoding)),
        (b"/api/me/email%", Err(Reject::BadPercentEncoding)),
        (b"/api/me/email%4", Err(Reject::BadPercentEncoding)),
        (b"/api/me/%u0065mail", Err(Reject::BadPercentEncoding)),
        (b"/api/me/%%36%35mail", Err(Reject::BadPercentEncoding)),
        // delimiters, whitespace, plus, raw specials
        (b"/api/me/email#frag", Err(Reject::Fragment)),
        (b"/api/me/email?x=1#frag", Err(Reject::Fragment)),
        (b"/api/me/email%3f", Err(Reject::EncodedDelimiter)),
        (b"/api/me/email%23", Err(Reject::EncodedDelimiter)),
        (b"/api/me/email%20", Err(Reject::SegmentWhitespace)),
        (b"/api/me/%20email", Err(Reject::SegmentWhitespace)),
        (b"/api/me/email+", Err(Reject::PlusSign)),
        (b"/api/me/email%2b", Err(Reject::PlusSign)),
        (b"/api/me/em ail", Err(Reject::InvalidChar(b' '))),
        (b"/api/me/<x>", Err(Reject::InvalidChar(b'<'))),
        (b"/api/me/a|b", Err(Reject::InvalidChar(b'|'))),
        // forms that are not origin-form
        (b"api/me/email", Err(Reject::NotOriginForm)),
        (b"*", Err(Reject::NotOriginForm)),
        (b"", Err(Reject::NotOriginForm)),
        (b"?x=1", Err(Reject::NotOriginForm)),
        (b"http://gw.test/api/me/email", Err(Reject::NotOriginForm)),
        (b"//api/me/email", Err(Reject::LeadingDoubleSlash)),
        (b"//evil.test/api/me/email", Err(Reject::LeadingDoubleSlash)),
        // query
        (b"/api/me/email?_method=PUT", Err(Reject::MethodOverride)),
        (b"/api/me/email?_METHOD=PUT", Err(Reject::MethodOverride)),
        (b"/api/me/email?%5fmethod=PUT", Err(Reject::MethodOverride)),
        (
            b"/api/me/email?%255fmethod=PUT",
            Err(Reject::MethodOverride),
        ),
        (
            b"/api/me/email?a=1;_method=PUT",
            Err(Reject::MethodOverride),
        ),
        (b"/api/me/email?.method=PUT", Err(Reject::MethodOverride)),
        (b"/api/me/email?+_method=PUT", Err(Reject::MethodOverride)),
        (b"/api/me/email?_method[]=PUT", Err(Reject::MethodOverride)),
        (
            b"/api/me/email?a%26_method%3dput",
            Err(Reject::MethodOverride),
        ),
        (b"/api/me/email?x=%zz", Err(Reject::BadPercentEncoding)),
        (b"/api/me/email?x=%00", Err(Reject::ControlChar)),
        (b"/api/me/email?x=%ff", Err(Reject::InvalidUtf8)),
        (b"/api/me/email?x=a b", Err(Reject::InvalidChar(b' '))),
    ];

    #[test]
    fn path_table() {
        assert!(PATH_CASES.len() >= 60);
        for (target, want) in PATH_CASES {
            let got = canonicalize(target).map(|c| c.path);
            let want = want.clone().map(str::to_owned);
            assert_eq!(got, want, "{}", String::from_utf8_lossy(target));
        }
    }

    #[test]
    fn accepted_paths_agree_with_every_lenient_reading() {
        for (target, want) in PATH_CASES {
            if let Ok(path) = want {
                assert_eq!(lenient_paths(target), vec![path.to_string()]);
            }
        }
    }

    #[test]
    fn segments_and_query() {
        let c = canonicalize(b"/API/Teams/Ac%20me/members/ME?email=Bob%40acme.test&x&y=a+b&&z=")
            .expect("valid");
        assert_eq!(c.segments, ["api", "teams", "ac me", "members", "me"]);
        assert_eq!(
            c.query,
            [
                ("email".to_string(), "Bob@acme.test".to_string()),
                ("x".into(), String::new()),
                ("y".into(), "a b".into()),
                ("z".into(), String::new()),
            ]
        );
        assert!(c.has_query_key_ci("EMAIL"));
        assert!(c.has_query_key_ci("Y"));
        assert!(!c.has_query_key_ci("w"));
        assert_eq!(canonicalize(c.to_target().as_bytes()), Ok(c));
    }

    #[test]
    fn too_long() {
        let mut t = b"/a".to_vec();
        t.resize(MAX_TARGET_LEN + 1, b'a');
        assert_eq!(canonicalize(&t), Err(Reject::TooLong));
    }

    /// `(target, lenient_path)`.
    const LENIENT_CASES: &[(&[u8], &str)] = &[
        (b"/api/me%2femail", "/api/me/email"),
        (b"/api/me/%252e%252e/me/email", "/api/me/email"),
        (b"/API\\ME\\EMAIL", "/api/me/email"),
        (b"/api/x/..;/me/email", "/api/me/email"),
        (b"/api/me;jsessionid=1/email", "/api/me/email"),
        (b"/api/me/email.json", "/api/me/email"),
        (b"/api/me/email.", "/api/me/email"),
        (b"/api/me./email", "/api/me/email"),
        (b"/api/me/email%00", "/api/me/email"),
        (b"/api/m%00e/email", "/api/me/email"),
        (b"/api/%ef%bd%8de/email", "/api/me/email"),
        (b"/api/me/ema%c4%b1l", "/api/me/email"),
        (b"/api/me/%u0065mail", "/api/me/email"),
        (b"/api/me/e%cc%81mail", "/api/me/email"),
        (b"/api/%e2%80%8bme/email", "/api/me/email"),
        (b"/api/me%e2%88%95email", "/api/me/email"),
        (b"/api/me/email+", "/api/me/email"),
        (b"/api/me/email%20", "/api/me/email"),
        (b"http://x.test/api/me/email?y", "/api/me/email"),
        (b"/api/me/%%36%35mail", "/api/me/email"),
        (b"/api/me/%25%36%35mail", "/api/me/email"),
        (b"/api/me/%\xef\xbc\x96\xef\xbc\x95mail", "/api/me/email"),
        (b"/api/x/.../me/email", "/api/me/email"),
        (b"api/me/email", "/api/me/email"),
        (b"", "/"),
        (b"/a/b%22c%3f", "/a/b%22c%3F"),
        (b"/a/%zz", "/a/%25zz"),
        (b"/a/\xff", "/a/%EF%BF%BD"),
    ];

    #[test]
    fn lenient_table() {
        for (target, want) in LENIENT_CASES {
            let got = lenient_path(target);
            assert_eq!(got, *want, "{}", String::from_utf8_lossy(target));
            assert_eq!(lenient_path(got.as_bytes()), got, "idempotent");
        }
    }

    #[test]
    fn lenient_variants() {
        let has = |t: &[u8], p: &str| lenient_paths(t).iter().any(|x| x == p);
        assert!(has(b"/api/me/email%00/../../x", "/api/me/email"));
        assert!(has(b"/api/me/email%3f/../../x", "/api/me/email"));
        assert!(has(b"/api/me/email;/../../x", "/api/me/email"));
        assert!(has(b"//evil/api/me/email", "/api/me/email"));
        assert!(has(b"/\\evil/api/me/email", "/api/me/email"));
        assert!(has(b"/api/me/.../email", "/api/me/email"));
        assert!(has(b"/api/x/.../me/email", "/api/me/email"));
        assert!(has(b"/api/me/email.json", "/api/me/email.json"));
    }

    /// `(target, Host header, Ok(origin form) | Err)`.
    /// `(target, Host header, expected origin form)`.
    type AbsoluteCase = (
        &'static [u8],
        Option<&'static str>,
        Result<&'static [u8], Reject>,
    );

    const ABSOLUTE_CASES: &[AbsoluteCase] = &[
        (b"/api/me", None, Ok(b"/api/me")),
        (
            b"http://gw.test/api/me/email",
            Some("gw.test"),
            Ok(b"/api/me/email"),
        ),
        (
            b"HTTP://GW.Test:80/api/me?x",
            Some("gw.test"),
            Ok(b"/api/me?x"),
        ),
        (b"http://gw.test/a", Some("GW.TEST:80"), Ok(b"/a")),
        (b"https://gw.test:443/x", Some("gw.test"), Ok(b"/x")),
        (b"http://gw.test:8080/x", Some("gw.test:8080"), Ok(b"/x")),
        (b"http://[::1]:8080/x", Some("[::1]:8080"), Ok(b"/x")),
        (b"http://gw.test", Some("gw.test"), Ok(b"/")),
        (b"http://gw.test:/x", Some("gw.test"), Ok(b"/x")),
        (
            b"http://other.test/api/me/email",
            Some("gw.test"),
            Err(Reject::AbsoluteFormHostMismatch),
        ),
        (
            b"http://gw.test:81/x",
            Some("gw.test"),
            Err(Reject::AbsoluteFormHostMismatch),
        ),
        (
            b"https://gw.test/x",
            Some("gw.test:80"),
            Err(Reject::AbsoluteFormHostMismatch),
        ),
        (
            b"http://gw.test/x",
            None,
            Err(Reject::AbsoluteFormHostMismatch),
        ),
        (
            b"http://gw.test/x",
            Some("gw.test:+80"),
            Err(Reject::AbsoluteFormHostMismatch),
        ),
        (
            b"http://user@gw.test/x",
            Some("gw.test"),
            Err(Reject::BadAbsoluteForm),
        ),
        (
            b"http://gw.test?x",
            Some("gw.test"),
            Err(Reject::BadAbsoluteForm),
        ),
        (b"http:///x", Some("gw.test"), Err(Reject::BadAbsoluteForm)),
        (
            b"http://gw.test:99999/x",
            Some("gw.test"),
            Err(Reject::BadAbsoluteForm),
        ),
        (
            b"http://gw.test\\@evil/x",
            Some("gw.test"),
            Err(Reject::BadAbsoluteForm),
        ),
        (
            b"ftp://gw.test/x",
            Some("gw.test"),
            Err(Reject::BadAbsoluteForm),
        ),
        (b"*", Some("gw.test"), Err(Reject::NotOriginForm)),
        (b"gw.test/x", Some("gw.test"), Err(Reject::NotOriginForm)),
        (b"http:/x", Some("gw.test"), Err(Reject::NotOriginForm)),
    ];

    #[test]
    fn absolute_form_table() {
        for (target, host, want) in ABSOLUTE_CASES {
            assert_eq!(
                origin_form(target, *host),
                *want,
                "{}",
                String::from_utf8_lossy(target)
            );
        }
        let t = origin_form(b"http://gw.test/API/me/%65mail", Some("gw.test")).expect("same host");
        assert_eq!(canonicalize(t).map(|c| c.path), Ok("/api/me/email".into()));
    }

    #[test]
    fn every_reject_has_a_message() {
        let all = [
            Reject::NotOriginForm,
            Reject::TooLong,
            Reject::LeadingDoubleSlash,
            Reject::Fragment,
            Reject::EncodedSlash,
            Reject::Backslash,
            Reject::DotSegment,
            Reject::TrailingDot,
            Reject::ExtensionSuffix,
            Reject::SegmentWhitespace,
            Reject::PlusSign,
            Reject::DoubleEncoding,
            Reject::MatrixParam,
            Reject::EncodedDelimiter,
            Reject::InvalidUtf8,
            Reject::NonAscii,
            Reject::ControlChar,
            Reject::BadPercentEncoding,
            Reject::InvalidChar(b'<'),
            Reject::AbsoluteFormHostMismatch,
            Reject::BadAbsoluteForm,
            Reject::MethodOverride,
        ];
        for r in all {
            assert!(r.to_string().len() > 10, "{r:?}");
        }
        assert!(Reject::InvalidChar(b'<').to_string().contains("0x3C"));
    }

    #[test]
    fn fold_examples() {
        assert_eq!(fold_lenient("EMAIL"), "email");
        assert_eq!(fold_lenient("emaıl"), "email");
        assert_eq!(fold_lenient("\u{212A}ey"), "key");
        assert_eq!(fold_lenient("ſtraße"), "strasse");
        assert_eq!(fold_lenient("ＥＭＡＩＬ"), "email");
        assert_eq!(fold_lenient("𝐞𝐦𝐚𝐢𝐥"), "email");
        assert_eq!(fold_lenient("ⓔⓜⓐⓘⓛ"), "email");
        assert_eq!(fold_lenient("e\u{301}mail\u{200b}"), "email");
        assert_eq!(fold_lenient("İ"), "i");
        assert_eq!(fold_lenient("ẞ"), "ss");
        assert_eq!(fold_lenient("Ωmega"), "ωmega");
    }

    #[test]
    fn fold_is_idempotent_for_every_char() {
        for cp in 0..=0x10FFFFu32 {
            if let Some(c) = char::from_u32(cp) {
                let once = fold_lenient(c.encode_utf8(&mut [0; 4]));
                assert_eq!(fold_lenient(&once), once, "U+{cp:04X}");
            }
        }
    }

    /// Fragments that make interesting targets when concatenated.
    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "/",
            "//",
            "/",
            "/",
            ".",
            "..",
            "...",
            "%2e",
            "%2E",
            "%2f",
            "%2F",
            "%5c",
            "\\",
            ";",
            "%3b",
            "%25",
            "%00",
            "%0a",
            "a",
            "B",
            "me",
            "api",
            "email",
            "%41",
            "%65",
            "%c3%a4",
            "ä",
            "?",
            "#",
            "&",
            "=",
            "+",
            " ",
            "%20",
            "~",
            "-",
            "_",
            "%7e",
            "%e2%88%95",
            "%ef%bc%8f",
            "ı",
            "%c4%b1",
            "\u{212a}",
            "%u0041",
            "%",
            "%%",
            "%3",
            "3",
            "5",
            "%3f",
            "%23",
            "_method",
            "json",
            "\0",
            "\t",
            "\u{feff}",
            "%ff",
            "%c0%af",
            ":",
            "@",
        ])
    }

    /// Targets built from [`fragment`]s, mostly starting with `/`.
    fn target() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::bool::weighted(0.9),
            prop::collection::vec(fragment(), 0..12),
        )
            .prop_map(|(slash, parts)| {
                let mut t = if slash { b"/".to_vec() } else { Vec::new() };
                for p in parts {
                    t.extend_from_slice(p.as_bytes());
                }
                t
            })
    }

    /// The properties every target must satisfy.
    fn check_properties(t: &[u8]) -> Result<(), TestCaseError> {
        let lenient = lenient_path(t);
        prop_assert_eq!(
            lenient_path(lenient.as_bytes()),
            lenient.clone(),
            "lenient idempotent"
        );
        let readings = lenient_paths(t);
        prop_assert!(readings.contains(&lenient));
        if let Ok(c) = canonicalize(t) {
            prop_assert_eq!(&lenient, &c.path, "no-bypass: strict == worst case");
            prop_assert_eq!(readings, vec![c.path.clone()], "every reading agrees");
            prop_assert_eq!(
                canonicalize(c.path.as_bytes()).map(|x| x.path),
                Ok(c.path.clone())
            );
            prop_assert_eq!(canonicalize(c.to_target().as_bytes()), Ok(c));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn prop_structured_targets(t in target()) {
            check_properties(&t)?;
        }

        #[test]
        fn prop_arbitrary_bytes(t in prop::collection::vec(any::<u8>(), 0..96)) {
            check_properties(&t)?;
            let mut slashed = b"/".to_vec();
            slashed.extend_from_slice(&t);
            check_properties(&slashed)?;
        }

        #[test]
        fn prop_arbitrary_unicode(s in "\\PC{0,24}") {
            let t = format!("/{s}");
            check_properties(t.as_bytes())?;
        }

        #[test]
        fn prop_origin_form_never_panics(t in prop::collection::vec(any::<u8>(), 0..64), h in "\\PC{0,12}") {
            let _ = origin_form(&t, Some(&h));
            let _ = origin_form(&t, None);
        }

        #[test]
        fn prop_fold_idempotent(s in "\\PC{0,32}") {
            let once = fold_lenient(&s);
            prop_assert_eq!(fold_lenient(&once), once);
        }
    }
}
