//! Native timestamps (`users.created_field` / `modified_field`) read in the backend's format
//! (`users.time_format`) and rendered as SCIM `xsd:dateTime` in UTC, fractions of seconds kept:
//! `1764789356123` (epoch milliseconds) becomes `2025-12-03T19:15:56.123Z`.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::format_description::OwnedFormatItem;
use time::{OffsetDateTime, PrimitiveDateTime};

/// How the backend writes a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339, with or without fraction; without a zone the time is taken as UTC.
    Rfc3339,
    /// Seconds since 1970-01-01T00:00:00Z, as a JSON number (fractions allowed) or numeric text.
    EpochSeconds,
    /// Milliseconds since 1970-01-01T00:00:00Z, as a JSON number or numeric text.
    EpochMillis,
    /// A strftime-like pattern (`%d.%m.%Y %H:%M:%S`); UTC unless it has `%z`.
    Pattern {
        /// The pattern, compiled.
        items: OwnedFormatItem,
        /// True when the pattern reads a zone offset.
        zoned: bool,
    },
}

/// Why `users.time_format` was refused (the message starts with `time_format`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeFormatError {
    /// A `%` directive the pattern language lacks.
    #[error("time_format {pattern:?}: unknown %{directive} (use %Y %m %d %H %M %S %f %z %:z %%, or \"rfc3339\", \"epoch_seconds\", \"epoch_millis\")")]
    UnknownDirective {
        /// The pattern as written.
        pattern: String,
        /// What followed the `%`.
        directive: String,
    },
    /// Neither a named format nor a pattern with a field.
    #[error("time_format {0:?} is not \"rfc3339\", \"epoch_seconds\", \"epoch_millis\" or a %-pattern such as \"%Y-%m-%d %H:%M:%S\"")]
    NoField(String),
    /// The `time` crate refused the translated pattern.
    #[error("time_format {pattern:?}: {source}")]
    Invalid {
        /// The pattern as written.
        pattern: String,
        /// The `time` crate's reason.
        source: time::error::InvalidFormatDescription,
    },
}

impl TimeFormat {
    /// Parses `users.time_format`: `"rfc3339"`, `"epoch_seconds"`, `"epoch_millis"`, or a pattern
    /// of `%Y %m %d %H %M %S %f %z %:z %%` and literal text.
    pub fn parse(text: &str) -> Result<TimeFormat, TimeFormatError> {
        Ok(match text {
            "rfc3339" => TimeFormat::Rfc3339,
            "epoch_seconds" => TimeFormat::EpochSeconds,
            "epoch_millis" => TimeFormat::EpochMillis,
            pattern => {
                let (description, zoned) = translate(pattern)?;
                let items =
                    time::format_description::parse_owned::<2>(&description).map_err(|source| {
                        TimeFormatError::Invalid {
                            pattern: pattern.to_string(),
                            source,
                        }
                    })?;
                TimeFormat::Pattern { items, zoned }
            }
        })
    }
}

/// Turns a strftime-like pattern into a `time` format description; answers whether it has a zone.
fn translate(pattern: &str) -> Result<(String, bool), TimeFormatError> {
    let mut out = String::new();
    let mut zoned = false;
    let mut chars = pattern.chars();
    let mut has_field = false;
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let spec = match chars.next() {
                    Some(':') => match chars.next() {
                        Some('z') => ":z".to_string(),
                        other => format!(":{}", other.map(String::from).unwrap_or_default()),
                    },
                    Some(s) => s.to_string(),
                    None => String::new(),
                };
                let item = match spec.as_str() {
                    "Y" => "[year]",
                    "m" => "[month]",
                    "d" => "[day]",
                    "H" => "[hour]",
                    "M" => "[minute]",
                    "S" => "[second]",
                    "f" => "[subsecond]",
                    "z" => "[offset_hour sign:mandatory][offset_minute]",
                    ":z" => "[offset_hour sign:mandatory]:[offset_minute]",
                    "%" => "%",
                    other => {
                        return Err(TimeFormatError::UnknownDirective {
                            pattern: pattern.to_string(),
                            directive: other.to_string(),
                        })
                    }
                };
                zoned |= spec.ends_with('z');
                has_field |= spec != "%";
                out.push_str(item);
            }
            '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    if !has_field {
        return Err(TimeFormatError::NoField(pattern.to_string()));
    }
    Ok((out, zoned))
}

/// The native value `native` in `format`, as SCIM `xsd:dateTime` in UTC; `None` when it is not
/// a time in that format.
pub fn to_scim(format: &TimeFormat, native: &Value) -> Option<String> {
    render(read(format, native)?)
}

/// Reads a native time.
fn read(format: &TimeFormat, native: &Value) -> Option<OffsetDateTime> {
    match format {
        TimeFormat::EpochSeconds => epoch(native, 1_000_000_000),
        TimeFormat::EpochMillis => epoch(native, 1_000_000),
        TimeFormat::Rfc3339 => {
            let text = native.as_str()?.trim();
            OffsetDateTime::parse(text, &Rfc3339)
                .ok()
                .or_else(|| zoneless(text))
        }
        TimeFormat::Pattern { items, zoned } => {
            let text = native.as_str()?.trim();
            if *zoned {
                OffsetDateTime::parse(text, items).ok()
            } else {
                PrimitiveDateTime::parse(text, items)
                    .ok()
                    .map(PrimitiveDateTime::assume_utc)
            }
        }
    }
}

/// RFC 3339 without a zone (`2026-12-03T19:15:56.5`, `T` or a space), taken as UTC.
fn zoneless(text: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day][first [T][t][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(text, format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// A count of units since the epoch, `nanos_per_unit` nanoseconds each.
fn epoch(native: &Value, nanos_per_unit: i128) -> Option<OffsetDateTime> {
    let text = match native {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    OffsetDateTime::from_unix_timestamp_nanos(decimal_nanos(&text, nanos_per_unit)?).ok()
}

/// `text` (a decimal such as `-12.5`) times `nanos_per_unit`, exactly.
fn decimal_nanos(text: &str, nanos_per_unit: i128) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || whole.len() > 20 {
        return None;
    }
    let mut nanos = whole.parse::<i128>().ok()? * nanos_per_unit;
    let mut scale = nanos_per_unit;
    for d in fraction.bytes() {
        scale /= 10;
        nanos += i128::from(d - b'0') * scale;
    }
    Some(if negative { -nanos } else { nanos })
}

/// `YYYY-MM-DDThh:mm:ss[.fraction]Z`, the fraction without trailing zeros; `None` for a year
/// `xsd:dateTime` cannot carry in four digits.
pub fn render(t: OffsetDateTime) -> Option<String> {
    let t = t.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return None;
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.nanosecond() > 0 {
        let fraction = format!("{:09}", t.nanosecond());
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scim(format: &str, native: Value) -> Option<String> {
        to_scim(&TimeFormat::parse(format).unwrap(), &native)
    }

    #[test]
    fn epoch_seconds_and_millis_keep_their_fraction() {
        let ms = json!(1764789356123_i64);
        assert_eq!(
            scim("epoch_millis", ms).as_deref(),
            Some("2025-12-03T19:15:56.123Z")
        );
        assert_eq!(
            scim("epoch_millis", json!("1764789356000")).as_deref(),
            Some("2025-12-03T19:15:56Z")
        );
        assert_eq!(
            scim("epoch_seconds", json!(1764789356)).as_deref(),
            Some("2025-12-03T19:15:56Z")
        );
        assert_eq!(
            scim("epoch_seconds", json!(1764789356.25)).as_deref(),
            Some("2025-12-03T19:15:56.25Z")
        );
        assert_eq!(scim("epoch_seconds", json!("soon")), None);
        assert_eq!(scim("epoch_millis", json!(true)), None);
    }

    #[test]
    fn rfc3339_with_or_without_fraction_and_zone_becomes_utc() {
        for (native, want) in [
            ("2026-12-03T19:15:56Z", "2026-12-03T19:15:56Z"),
            ("2026-12-03T20:15:56.120+01:00", "2026-12-03T19:15:56.12Z"),
            ("2026-12-03T19:15:56", "2026-12-03T19:15:56Z"),
            ("2026-12-03 19:15:56.000001", "2026-12-03T19:15:56.000001Z"),
        ] {
            assert_eq!(
                scim("rfc3339", json!(native)).as_deref(),
                Some(want),
                "{native}"
            );
        }
        assert_eq!(scim("rfc3339", json!("yesterday")), None);
        assert_eq!(scim("rfc3339", json!(1764789356)), None);
    }

    #[test]
    fn patterns_read_the_backends_own_layout() {
        assert_eq!(
            scim("%d.%m.%Y %H:%M:%S", json!("03.12.2026 19:15:56")).as_deref(),
            Some("2026-12-03T19:15:56Z")
        );
        assert_eq!(
            scim(
                "%Y/%m/%d %H:%M:%S.%f %z",
                json!("2026/12/03 21:15:56.5 +0200")
            )
            .as_deref(),
            Some("2026-12-03T19:15:56.5Z")
        );
        assert_eq!(
            scim("[%Y-%m-%d %H:%M:%S]", json!("[2026-12-03 19:15:56]")).as_deref(),
            Some("2026-12-03T19:15:56Z")
        );
        assert_eq!(scim("%d.%m.%Y %H:%M:%S", json!("2026-12-03")), None);
    }

    #[test]
    fn bad_formats_are_explained() {
        assert_eq!(
            TimeFormat::parse("%Q").unwrap_err().to_string(),
            r#"time_format "%Q": unknown %Q (use %Y %m %d %H %M %S %f %z %:z %%, or "rfc3339", "epoch_seconds", "epoch_millis")"#
        );
        assert_eq!(
            TimeFormat::parse("epoch").unwrap_err().to_string(),
            r#"time_format "epoch" is not "rfc3339", "epoch_seconds", "epoch_millis" or a %-pattern such as "%Y-%m-%d %H:%M:%S""#
        );
    }
}
