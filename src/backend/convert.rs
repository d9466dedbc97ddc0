//! One value between SCIM and the backend: normalisers and native types on write, boolean and
//! word maps both ways, and the loose readings of native values (numbers into strings, `"true"`
//! into booleans, empty text as unset).

use super::spec::{Convert, NativeType, Normalize, Otherwise, Transform};
use crate::scim::error::ScimError;
use crate::scim::schema::{AttrDef, AttrType};
use serde_json::Value;

impl Convert {
    /// The native value of SCIM value `v`; `label` names the attribute in errors (`400
    /// invalidValue` for a value the backend cannot hold or a word outside a refusing map).
    pub fn encode(&self, label: &str, v: &Value) -> Result<Value, ScimError> {
        let normalized = self.normalized(v);
        let v = &normalized;
        match &self.transform {
            Transform::BoolEnum {
                when_true,
                when_false,
                ..
            } => match v.as_bool() {
                Some(true) => Ok(when_true.clone()),
                Some(false) => Ok(when_false.clone()),
                None => Err(ScimError::invalid_value(format!(
                    "{label} must be a boolean"
                ))),
            },
            Transform::Words { pairs, otherwise } => {
                let word = v
                    .as_str()
                    .ok_or_else(|| ScimError::invalid_value(format!("{label} must be a string")))?;
                if let Some((native, _)) = pairs.iter().find(|(_, s)| s.eq_ignore_ascii_case(word))
                {
                    return Ok(Value::String(native.clone()));
                }
                match otherwise {
                    Otherwise::Keep => Ok(v.clone()),
                    Otherwise::Native(native) => Ok(Value::String(native.clone())),
                    Otherwise::Refuse => Err(ScimError::invalid_value(format!(
                        "{label}: {word:?} is not one of {}; nothing was written",
                        scim_words(pairs).join(", ")
                    ))),
                }
            }
            Transform::Direct(ty) => convert(*ty, v).ok_or_else(|| {
                ScimError::invalid_value(format!("{label}: the backend cannot store {v} as {ty:?}"))
            }),
        }
    }

    /// The SCIM value of native value `v` for an attribute defined by `def`; `None` when it
    /// reads as unset.
    pub fn decode(&self, def: &AttrDef, v: &Value) -> Option<Value> {
        if v.is_null() {
            return None;
        }
        match &self.transform {
            Transform::BoolEnum { read, .. } => read
                .iter()
                .find(|(native, _)| json_eq_ci(native, v))
                .map(|(_, b)| Value::Bool(*b)),
            Transform::Words { pairs, otherwise } => {
                let word = native_text(v)?;
                let scim_of = |w: &str| {
                    pairs
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(w))
                        .map(|(_, s)| Value::String(s.clone()))
                };
                scim_of(&word).or_else(|| match otherwise {
                    Otherwise::Refuse => None,
                    Otherwise::Keep => (!word.is_empty()).then(|| Value::String(word.clone())),
                    Otherwise::Native(default) => scim_of(default),
                })
            }
            Transform::Direct(_) => match (def.ty, v) {
                (AttrType::Boolean, Value::String(s)) => {
                    s.to_ascii_lowercase().parse().ok().map(Value::Bool)
                }
                (AttrType::String | AttrType::Reference, Value::Number(n)) => {
                    Some(Value::String(n.to_string()))
                }
                (_, Value::String(s)) if s.is_empty() => None,
                _ => Some(v.clone()),
            },
        }
    }

    /// True when SCIM value `written` is stored as exactly `native`: the backend holds what SCIM
    /// wrote, so it reads back as written (case, spelling, `"004411"`, a word outside a map).
    pub fn stores_as(&self, written: &Value, native: &Value) -> bool {
        self.encode("", written).is_ok_and(|n| &n == native)
    }

    fn normalized(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.normalize_text(s)),
            _ => v.clone(),
        }
    }

    /// `text` with every normaliser applied.
    pub fn normalize_text(&self, text: &str) -> String {
        self.normalize
            .iter()
            .fold(text.to_string(), |t, n| match n {
                Normalize::Lowercase => t.to_lowercase(),
                Normalize::Trim => t.trim().to_string(),
            })
    }

    /// The SCIM words a refusing word map accepts (what `/Schemas` advertises as
    /// `canonicalValues`), `None` when any value is accepted.
    pub fn canonical_values(&self) -> Option<Vec<String>> {
        match &self.transform {
            Transform::Words {
                pairs,
                otherwise: Otherwise::Refuse,
            } => Some(scim_words(pairs)),
            _ => None,
        }
    }
}

/// The distinct SCIM words of a map, in map order.
fn scim_words(pairs: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, s) in pairs {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
            out.push(s.clone());
        }
    }
    out
}

fn native_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn convert(ty: NativeType, v: &Value) -> Option<Value> {
    match (ty, v) {
        (NativeType::Any, _) => Some(v.clone()),
        (NativeType::String, Value::String(_)) => Some(v.clone()),
        (NativeType::String, Value::Number(n)) => Some(Value::String(n.to_string())),
        (NativeType::String, Value::Bool(b)) => Some(Value::String(b.to_string())),
        (NativeType::Integer, Value::Number(n)) if n.is_i64() => Some(v.clone()),
        (NativeType::Integer, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        (NativeType::Boolean, Value::Bool(_)) => Some(v.clone()),
        (NativeType::Boolean, Value::String(s)) => s.parse::<bool>().ok().map(Value::Bool),
        _ => None,
    }
}

/// JSON equality, ignoring the case of strings.
pub fn json_eq_ci(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::resolve_path;
    use serde_json::json;

    fn words(otherwise: Otherwise) -> Convert {
        Convert {
            transform: Transform::Words {
                pairs: vec![
                    ("CON".into(), "Contractor".into()),
                    ("EMP".into(), "Employee".into()),
                    ("STAFF".into(), "Employee".into()),
                ],
                otherwise,
            },
            normalize: Vec::new(),
        }
    }

    fn user_type() -> &'static AttrDef {
        resolve_path("userType").unwrap().leaf()
    }

    #[test]
    fn word_maps_write_the_first_native_word_and_read_ignoring_case() {
        let c = words(Otherwise::Refuse);
        assert_eq!(c.encode("userType", &json!("employee")).unwrap(), "EMP");
        assert_eq!(c.encode("userType", &json!("Contractor")).unwrap(), "CON");
        for native in ["EMP", "emp", "Staff"] {
            assert_eq!(
                c.decode(user_type(), &json!(native)),
                Some(json!("Employee")),
                "{native}"
            );
        }
    }

    #[test]
    fn a_value_outside_the_map_is_refused_kept_or_defaulted() {
        let refuse = words(Otherwise::Refuse);
        let err = refuse.encode("userType", &json!("Intern")).unwrap_err();
        assert_eq!(
            (err.status, err.scim_type.map(|t| t.as_str())),
            (400, Some("invalidValue"))
        );
        assert!(
            err.detail
                .contains("\"Intern\" is not one of Contractor, Employee"),
            "{}",
            err.detail
        );
        assert_eq!(refuse.decode(user_type(), &json!("TEMP")), None);
        assert_eq!(
            refuse.canonical_values(),
            Some(vec!["Contractor".into(), "Employee".into()])
        );

        let keep = words(Otherwise::Keep);
        assert_eq!(keep.encode("userType", &json!("Intern")).unwrap(), "Intern");
        assert_eq!(
            keep.decode(user_type(), &json!("TEMP")),
            Some(json!("TEMP"))
        );
        assert_eq!(keep.canonical_values(), None);

        let default = words(Otherwise::Native("CON".into()));
        assert_eq!(default.encode("userType", &json!("Intern")).unwrap(), "CON");
        assert_eq!(
            default.decode(user_type(), &json!("TEMP")),
            Some(json!("Contractor"))
        );
        assert!(
            default.stores_as(&json!("Intern"), &json!("CON")),
            "reads back as written"
        );
        assert!(!default.stores_as(&json!("Intern"), &json!("EMP")));
    }

    #[test]
    fn normalisers_apply_in_order_before_the_transform() {
        let c = Convert {
            transform: Transform::Direct(NativeType::Any),
            normalize: vec![Normalize::Trim, Normalize::Lowercase],
        };
        assert_eq!(
            c.encode("userName", &json!("  Ann@X.Test ")).unwrap(),
            "ann@x.test"
        );
        assert!(c.stores_as(&json!(" Ann@X.Test"), &json!("ann@x.test")));
        assert_eq!(
            c.encode("x", &json!(5)).unwrap(),
            5,
            "only strings are normalised"
        );
    }
}
