//! Parsing and validation of the demo backend's JSON request bodies.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::model::{MemberChanges, Role, Status};
use super::project::ProjectFields;

/// Longest accepted text field, in characters.
const MAX_FIELD_CHARS: usize = 512;
/// Longest accepted email address (RFC 5321 path limit).
const MAX_EMAIL_CHARS: usize = 254;

/// A JSON object body.
pub(crate) type Object = Map<String, Value>;

/// An updatable member field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Email,
    FirstName,
    LastName,
    DisplayName,
    Title,
    Status,
    Role,
}

/// Fields a team admin may set (create and `PUT`).
pub(crate) const ADMIN_FIELDS: &[Field] = &[
    Field::Email,
    Field::FirstName,
    Field::LastName,
    Field::DisplayName,
    Field::Title,
    Field::Status,
    Field::Role,
];

/// Fields of the self-service profile update (`PATCH /api/users/{id}`).
pub(crate) const PROFILE_FIELDS: &[Field] = &[
    Field::Email,
    Field::FirstName,
    Field::LastName,
    Field::DisplayName,
    Field::Title,
];

/// Parses a request body that must be a JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Object, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_json("the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_json(format!("malformed JSON: {e}"))),
    }
}

/// Reads the `allowed` fields present in `obj`; other keys are ignored.
pub(crate) fn parse_changes(obj: &Object, allowed: &[Field]) -> Result<MemberChanges, ApiError> {
    let mut changes = MemberChanges::default();
    for field in allowed {
        read_field(obj, *field, &mut changes)?;
    }
    Ok(changes)
}

fn read_field(obj: &Object, field: Field, changes: &mut MemberChanges) -> Result<(), ApiError> {
    match field {
        Field::Email => changes.email = optional_email(obj, "email")?,
        Field::FirstName => changes.first_name = clearable_text(obj, "first_name")?,
        Field::LastName => changes.last_name = clearable_text(obj, "last_name")?,
        Field::DisplayName => changes.display_name = clearable_text(obj, "display_name")?,
        Field::Title => changes.title = nullable_text(obj, "title")?,
        Field::Status => changes.status = optional_enum(obj, "status", Status::parse)?,
        Field::Role => changes.role = optional_enum(obj, "role", Role::parse)?,
    }
    Ok(())
}

/// The body of a project create or `PUT`: `name` is required and not blank, `description` is
/// optional (`null` clears it); other keys are ignored.
pub(crate) fn project_fields(obj: &Object) -> Result<ProjectFields, ApiError> {
    let name = check_length("name", required_string(obj, "name")?)?;
    if name.trim().is_empty() {
        return Err(ApiError::invalid("name must not be empty"));
    }
    Ok(ProjectFields {
        name,
        description: clearable_text(obj, "description")?,
    })
}

/// A string field that may be absent but not null.
pub(crate) fn optional_string(obj: &Object, key: &str) -> Result<Option<String>, ApiError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("{key} must be a string"))),
    }
}

/// A string field that must be present.
pub(crate) fn required_string(obj: &Object, key: &str) -> Result<String, ApiError> {
    optional_string(obj, key)?.ok_or_else(|| ApiError::invalid(format!("{key} is required")))
}

fn optional_text(obj: &Object, key: &str) -> Result<Option<String>, ApiError> {
    optional_string(obj, key)?
        .map(|s| check_length(key, s))
        .transpose()
}

/// A name field: absent keeps it, `null` clears it to the empty string.
fn clearable_text(obj: &Object, key: &str) -> Result<Option<String>, ApiError> {
    match obj.get(key) {
        Some(Value::Null) => Ok(Some(String::new())),
        _ => optional_text(obj, key),
    }
}

fn nullable_text(obj: &Object, key: &str) -> Result<Option<Option<String>>, ApiError> {
    match obj.get(key) {
        Some(Value::Null) => Ok(Some(None)),
        _ => Ok(optional_text(obj, key)?.map(Some)),
    }
}

fn check_length(key: &str, s: String) -> Result<String, ApiError> {
    if s.chars().count() > MAX_FIELD_CHARS {
        return Err(ApiError::invalid(format!(
            "{key} is longer than {MAX_FIELD_CHARS} characters"
        )));
    }
    Ok(s)
}

fn optional_enum<T>(
    obj: &Object,
    key: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    optional_string(obj, key)?
        .map(|s| parse(&s).ok_or_else(|| ApiError::invalid(format!("{key} has an unknown value"))))
        .transpose()
}

fn optional_email(obj: &Object, key: &str) -> Result<Option<String>, ApiError> {
    optional_string(obj, key)?.map(validate_email).transpose()
}

/// The `email` field, which must be present and valid.
pub(crate) fn required_email(obj: &Object) -> Result<String, ApiError> {
    validate_email(required_string(obj, "email")?)
}

/// Accepts any sign-in handle without whitespace or control characters. Like many legacy
/// services, the workspace calls the field `email` but keys members by it without checking the
/// address's shape (identity providers send UPNs, and conformance suites send opaque strings).
pub(crate) fn validate_email(email: String) -> Result<String, ApiError> {
    let clean = !email.is_empty() && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if clean && email.chars().count() <= MAX_EMAIL_CHARS {
        Ok(email)
    } else {
        Err(ApiError::invalid(
            "email must be a non-empty sign-in name without spaces",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            _ => Object::new(),
        }
    }

    #[test]
    fn bad_json_and_non_objects() {
        assert_eq!(parse_object(b"{").map_err(|e| e.code), Err("bad_json"));
        assert_eq!(parse_object(b"[1]").map_err(|e| e.code), Err("bad_json"));
        assert_eq!(parse_object(b"").map_err(|e| e.code), Err("bad_json"));
        assert!(parse_object(br#"{"a":1}"#).is_ok());
    }

    #[test]
    fn changes_respect_allowed_fields_and_null() {
        let o = obj(json!({"role": "admin", "title": null, "first_name": "Z", "x": 1}));
        let admin = parse_changes(&o, ADMIN_FIELDS).map_err(|e| e.message);
        assert_eq!(
            admin,
            Ok(MemberChanges {
                role: Some(Role::Admin),
                title: Some(None),
                first_name: Some("Z".into()),
                ..Default::default()
            })
        );
        let profile = parse_changes(&o, PROFILE_FIELDS).map_err(|e| e.message);
        assert_eq!(profile.map(|c| c.role), Ok(None));
    }

    #[test]
    fn rejects_bad_values() {
        for body in [
            json!({"status": "gone"}),
            json!({"role": 3}),
            json!({"first_name": 7}),
            json!({"email": "no pe"}),
            json!({"email": null}),
            json!({"title": 5}),
            json!({"last_name": "x".repeat(MAX_FIELD_CHARS + 1)}),
        ] {
            let r = parse_changes(&obj(body.clone()), ADMIN_FIELDS);
            assert_eq!(r.map_err(|e| e.code), Err("invalid"), "{body}");
        }
    }

    #[test]
    fn project_fields_need_a_name() {
        let fields = project_fields(&obj(json!({"name": "Apollo", "x": 1})));
        assert_eq!(
            fields.map_err(|e| e.message),
            Ok(ProjectFields {
                name: "Apollo".into(),
                description: None
            })
        );
        let cleared = project_fields(&obj(json!({"name": "A", "description": null})));
        assert_eq!(
            cleared.ok().and_then(|f| f.description),
            Some(String::new())
        );
        for body in [
            json!({}),
            json!({"name": ""}),
            json!({"name": "  "}),
            json!({"name": null}),
            json!({"name": 3}),
            json!({"name": "A", "description": 3}),
            json!({"name": "x".repeat(MAX_FIELD_CHARS + 1)}),
        ] {
            let r = project_fields(&obj(body.clone()));
            assert_eq!(r.map_err(|e| e.code), Err("invalid"), "{body}");
        }
    }

    #[test]
    fn email_validation() {
        for ok in [
            "a@b",
            "first.last+tag@example.co.uk",
            "ÿ@exämple.test",
            "5f0c1e9a-opaque",
        ] {
            assert!(validate_email(ok.into()).is_ok(), "{ok}");
        }
        for bad in ["", "a b@c", "a@b\n", "\u{7}x"] {
            assert!(validate_email(bad.into()).is_err(), "{bad:?}");
        }
        assert_eq!(
            required_email(&obj(json!({}))).map_err(|e| e.code),
            Err("invalid")
        );
    }
}
