//! A user's work email addresses as the database indexes them (`users.work_email_set`), computed
//! by the gateway so that the database need not parse the resource on every write (migrations 8
//! and 11). Must agree with the SQL function `scimgate_work_email_set` (migration 4), which
//! parses the rows the gateway did not compute: the store tests compare the two.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// The distinct work addresses of `shadow`, folded as the lookup folds them (the Kelvin sign
/// to `k`, then ASCII letters to lower case), in byte order as `array_agg(DISTINCT …)` under
/// the "C" collation gives them: every `emails` element whose `type` folds to `work` and whose
/// `value` is a string.
pub fn set(shadow: &Value) -> Vec<String> {
    let Some(emails) = shadow.get("emails").and_then(Value::as_array) else {
        return Vec::new();
    };
    let distinct: BTreeSet<String> = emails
        .iter()
        .filter(|e| e.get("type").and_then(type_text).as_deref().map(fold) == Some("work".into()))
        .filter_map(|e| e.get("value").and_then(Value::as_str).map(fold))
        .collect();
    distinct.into_iter().collect()
}

/// The SHA-256 of the resource's text, as `sha256(convert_to(shadow, 'UTF8'))` gives it.
pub fn hash(shadow_text: &str) -> Vec<u8> {
    Sha256::digest(shadow_text.as_bytes()).to_vec()
}

/// A `type` as SQL's `->>` reads it: a string unquoted, anything else as its JSON text (which
/// never folds to `work`).
fn type_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn fold(s: &str) -> String {
    s.replace('\u{212A}', "k").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn work_addresses_are_folded_distinct_and_in_byte_order() {
        let shadow = json!({"emails": [
            {"type": "Work", "value": "Zed@X.test"},
            {"type": "wor\u{212A}", "value": "a@x.test"},
            {"type": "WORK", "value": "zed@x.TEST"},
            {"type": "home", "value": "home@x.test"},
            {"value": "untyped@x.test"},
            {"type": "work", "value": 7},
            {"type": "work", "value": "\u{212A}elvin@x.test"},
            "not an object",
        ]});
        assert_eq!(set(&shadow), ["a@x.test", "kelvin@x.test", "zed@x.test"]);
        assert!(set(&json!({"emails": {"type": "work"}})).is_empty());
        assert!(set(&json!({})).is_empty());
        assert_eq!(hash("{}").len(), 32);
    }
}
