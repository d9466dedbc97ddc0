//! Folding names the way the most permissive reader might: case, Unicode look-alikes,
//! separators and whitespace aside. SCIM attribute names compare case-insensitively (RFC 7643
//! §2.1); the strict JSON reader ([`super::json`]) and the guard go further, so that no lenient
//! binder can read two keys as one or a disguised key as a protected one.

/// The comparison form of a key: [`fold_lenient`], then only letters and digits, so case,
/// look-alikes, separators and whitespace do not matter (`new_password`, `newPassword`,
/// `New-Password` and ` newpassword` compare equal: some binder maps each of them to the same
/// field).
pub fn key_form(k: &str) -> String {
    fold_lenient(k)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Lower-cases and folds look-alikes the way the most permissive backend might: characters
/// whose Unicode upper- or lower-case mapping is ASCII (`ı`, `ſ`, `K` Kelvin, `ß`, ligatures),
/// fullwidth and mathematical letters and digits, enclosed, super- and subscript letters,
/// slash- and dot-like symbols; combining marks and zero-width characters are dropped.
/// Idempotent. Used for paths, body keys, cookie names and parameter names.
pub fn fold_lenient(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// Appends the folded form of one character.
pub fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
    } else if is_ignorable(c) {
        // dropped, as a normaliser that strips marks and zero-width characters would
    } else if let Some(a) = compat_ascii(c) {
        out.push(a);
    } else if let Some(ascii) = ascii_case_mapping(c) {
        out.push_str(&ascii);
    } else {
        for l in c.to_lowercase() {
            if l == c {
                out.push(l);
            } else {
                fold_char(l, out);
            }
        }
    }
}

/// ASCII letters and digits of `c`'s lower- or upper-case mapping, if it has any.
fn ascii_case_mapping(c: char) -> Option<String> {
    let pick = |m: &mut dyn Iterator<Item = char>| -> String {
        m.filter(char::is_ascii_alphanumeric)
            .map(|a| a.to_ascii_lowercase())
            .collect()
    };
    let lower = pick(&mut c.to_lowercase());
    if !lower.is_empty() {
        return Some(lower);
    }
    let upper = pick(&mut c.to_uppercase());
    (!upper.is_empty()).then_some(upper)
}

/// Combining marks, zero-width characters, soft hyphen and variation selectors.
fn is_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2060}'..='\u{2064}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FE20}'..='\u{FE2F}'
            | '\u{FEFF}'
    )
}

/// The ASCII character a compatibility mapping (NFKC, "best fit") turns `c` into, if it is a
/// letter, digit, `/`, `\`, `.`, `-`, `_` or `~` (backslash-likes become `/`).
fn compat_ascii(c: char) -> Option<char> {
    let cp = u32::from(c);
    let mapped = match cp {
        0xFF01..=0xFF5E => char::from_u32(cp - 0xFEE0),
        0x1D400..=0x1D6A3 => Some(alpha_index((cp - 0x1D400) % 52)),
        0x1D7CE..=0x1D7FF => digit((cp - 0x1D7CE) % 10),
        0x24B6..=0x24CF => letter(cp - 0x24B6),
        0x24D0..=0x24E9 => letter(cp - 0x24D0),
        0x2460..=0x2468 => digit(cp - 0x2460 + 1),
        0x2080..=0x2089 => digit(cp - 0x2080),
        0x2074..=0x2079 => digit(cp - 0x2070),
        _ => compat_table(c),
    }?;
    match mapped {
        '\\' => Some('/'),
        m if m.is_ascii_alphanumeric() || "/.-_~".contains(m) => Some(m.to_ascii_lowercase()),
        _ => None,
    }
}

/// Irregular compatibility mappings to ASCII.
fn compat_table(c: char) -> Option<char> {
    const TABLE: &[(char, char)] = &[
        ('\u{00B2}', '2'),
        ('\u{00B3}', '3'),
        ('\u{00B9}', '1'),
        ('\u{2070}', '0'),
        ('\u{2071}', 'i'),
        ('\u{207F}', 'n'),
        ('\u{2090}', 'a'),
        ('\u{2091}', 'e'),
        ('\u{2092}', 'o'),
        ('\u{2093}', 'x'),
        ('\u{2095}', 'h'),
        ('\u{2096}', 'k'),
        ('\u{2097}', 'l'),
        ('\u{2098}', 'm'),
        ('\u{2099}', 'n'),
        ('\u{209A}', 'p'),
        ('\u{209B}', 's'),
        ('\u{209C}', 't'),
        ('\u{24EA}', '0'),
        ('\u{2102}', 'c'),
        ('\u{210A}', 'g'),
        ('\u{210B}', 'h'),
        ('\u{210C}', 'h'),
        ('\u{210D}', 'h'),
        ('\u{210E}', 'h'),
        ('\u{2110}', 'i'),
        ('\u{2111}', 'i'),
        ('\u{2112}', 'l'),
        ('\u{2113}', 'l'),
        ('\u{2115}', 'n'),
        ('\u{2119}', 'p'),
        ('\u{211A}', 'q'),
        ('\u{211B}', 'r'),
        ('\u{211C}', 'r'),
        ('\u{211D}', 'r'),
        ('\u{2124}', 'z'),
        ('\u{2128}', 'z'),
        ('\u{212C}', 'b'),
        ('\u{212D}', 'c'),
        ('\u{212F}', 'e'),
        ('\u{2130}', 'e'),
        ('\u{2131}', 'f'),
        ('\u{2133}', 'm'),
        ('\u{2134}', 'o'),
        ('\u{2139}', 'i'),
        ('\u{2145}', 'd'),
        ('\u{2146}', 'd'),
        ('\u{2147}', 'e'),
        ('\u{2148}', 'i'),
        ('\u{2149}', 'j'),
        ('\u{2160}', 'i'),
        ('\u{2164}', 'v'),
        ('\u{2169}', 'x'),
        ('\u{216C}', 'l'),
        ('\u{216D}', 'c'),
        ('\u{216E}', 'd'),
        ('\u{216F}', 'm'),
        ('\u{2170}', 'i'),
        ('\u{2174}', 'v'),
        ('\u{2179}', 'x'),
        ('\u{217C}', 'l'),
        ('\u{217D}', 'c'),
        ('\u{217E}', 'd'),
        ('\u{217F}', 'm'),
        ('\u{2024}', '.'),
        ('\u{FE52}', '.'),
        ('\u{3002}', '.'),
        ('\u{FF61}', '.'),
        ('\u{2044}', '/'),
        ('\u{2215}', '/'),
        ('\u{29F8}', '/'),
        ('\u{2216}', '/'),
        ('\u{29F5}', '/'),
        ('\u{29F9}', '/'),
        ('\u{FE68}', '/'),
        ('\u{FE63}', '-'),
        ('\u{2010}', '-'),
        ('\u{2011}', '-'),
    ];
    TABLE.iter().find(|(k, _)| *k == c).map(|(_, v)| *v)
}

/// `A`..`Z` for 0..26, `a`..`z` for 26..52.
fn alpha_index(i: u32) -> char {
    let base = if i < 26 {
        u32::from(b'A') + i
    } else {
        u32::from(b'a') + i - 26
    };
    char::from_u32(base).unwrap_or('a')
}

/// `a`..`z` for 0..26.
fn letter(i: u32) -> Option<char> {
    (i < 26).then(|| alpha_index(i + 26))
}

/// `0`..`9` for 0..10.
fn digit(i: u32) -> Option<char> {
    char::from_digit(i, 10)
}
