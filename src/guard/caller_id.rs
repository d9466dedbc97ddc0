//! The one written form of a caller's user id that the guard trusts. A lenient backend reads
//! ` 2`, `+2`, `2.0`, `2e0` or a fullwidth `２` as user 2; the guard would compare them as text
//! and miss the match. Such values are refused instead of guessed at: an id is accepted only when
//! no lenient reading can turn it into a different one.

use std::fmt;

/// Why an identity value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdRefusal {
    /// Empty.
    Empty,
    /// Contains whitespace or a control character.
    Whitespace,
    /// Contains a character outside ASCII (fullwidth digits and letters fold to ASCII).
    NonAscii,
    /// Reads as a number only leniently: a sign, a decimal point, an exponent, a hex prefix or
    /// leading zeros.
    LenientNumber,
}

impl fmt::Display for IdRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdRefusal::Empty => "the user id is empty",
            IdRefusal::Whitespace => "the user id contains whitespace or control characters",
            IdRefusal::NonAscii => "the user id contains characters outside ASCII",
            IdRefusal::LenientNumber => {
                "the user id is a number written in a non-canonical form (sign, point, exponent, hex or leading zeros)"
            }
        })
    }
}

/// Accepts `raw` as a user id when it is already in the one form every reading agrees on.
pub fn canonical(raw: &str) -> Result<&str, IdRefusal> {
    if raw.is_empty() {
        return Err(IdRefusal::Empty);
    }
    if !raw.is_ascii() {
        return Err(IdRefusal::NonAscii);
    }
    if raw
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(IdRefusal::Whitespace);
    }
    if lenient_number(raw) {
        return Err(IdRefusal::LenientNumber);
    }
    Ok(raw)
}

/// True when `s` is a number only a lenient parser reads: digits with a sign, a point, an
/// exponent or a hex prefix, or a plain number with leading zeros. Plain decimal digits with no
/// leading zero are canonical.
fn lenient_number(s: &str) -> bool {
    let plain = s.bytes().all(|b| b.is_ascii_digit());
    if plain {
        return s.len() > 1 && s.starts_with('0');
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let hex = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || decimal_like(body)
}

/// Digits with at most one point and an optional exponent (`2.0`, `.5`, `2e0`, `2E+1`): what
/// `parseFloat`, PHP or Python's `float()` read as a number.
fn decimal_like(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int)
        && frac.is_none_or(digits)
        && !(int.is_empty() && frac.is_none_or(str::is_empty));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ids_pass_unchanged() {
        for id in [
            "2", "0", "42", "usr_bob", "USR_BOB", "acc_0a1b", "e5", "2a", "x.y", "-", "0x", "0xg1",
            "v1.2", "1ex", "7e",
        ] {
            assert_eq!(canonical(id), Ok(id), "{id}");
        }
    }

    #[test]
    fn lenient_readings_are_refused() {
        let cases = [
            ("", IdRefusal::Empty),
            (" 2", IdRefusal::Whitespace),
            ("2 ", IdRefusal::Whitespace),
            ("2\t", IdRefusal::Whitespace),
            ("\u{0}2", IdRefusal::Whitespace),
            ("２", IdRefusal::NonAscii),
            ("ｕｓｒ_bob", IdRefusal::NonAscii),
            ("2\u{a0}", IdRefusal::NonAscii),
            ("02", IdRefusal::LenientNumber),
            ("002", IdRefusal::LenientNumber),
            ("+2", IdRefusal::LenientNumber),
            ("-2", IdRefusal::LenientNumber),
            ("2.0", IdRefusal::LenientNumber),
            ("2.", IdRefusal::LenientNumber),
            (".2", IdRefusal::LenientNumber),
            ("2e0", IdRefusal::LenientNumber),
            ("2E+0", IdRefusal::LenientNumber),
            ("0x2", IdRefusal::LenientNumber),
            ("+0X02", IdRefusal::LenientNumber),
        ];
        for (raw, why) in cases {
            assert_eq!(canonical(raw), Err(why.clone()), "{raw:?}");
            assert!(why.to_string().starts_with("the user id "), "{why}");
        }
    }
}
