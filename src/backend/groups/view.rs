//! A group in SCIM terms from the backend's native group and the store's record, and the
//! record's shadow (what SCIM wrote) built from a group's attributes.

use super::super::group_spec::GroupApi;
use super::super::mapping;
use super::super::paths::get_path;
use super::super::timestamp;
use crate::scim::error::ScimError;
use crate::scim::group::{Member, ScimGroup};
use crate::store::GroupRecord;
use serde_json::{Map, Value};

/// The shadow of a group: its `displayName`, `externalId` and extension objects.
pub fn shadow(
    display_name: &str,
    external_id: Option<&str>,
    extensions: &Map<String, Value>,
) -> Value {
    let mut out = Map::new();
    out.insert(
        "displayName".into(),
        Value::String(display_name.to_string()),
    );
    if let Some(e) = external_id {
        out.insert("externalId".into(), Value::String(e.to_string()));
    }
    for (urn, attrs) in extensions {
        out.insert(urn.clone(), attrs.clone());
    }
    Value::Object(out)
}

/// The SCIM group of native group `id` and its record, with `members` as given.
pub fn merge(
    api: &GroupApi,
    id: String,
    native: &Value,
    record: Option<&GroupRecord>,
    members: Option<Vec<Member>>,
) -> Result<ScimGroup, ScimError> {
    let resource = mapping::fields_from_native(&api.fields, native, record.map(|r| &r.shadow));
    let display_name = resource
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            ScimError::bad_gateway(format!(
                "group {id} from the user service has no name where [[groups.fields]] maps displayName"
            ))
        })?;
    let extensions = resource
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| k.contains(':') && v.is_object())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let native_time = |f: &Option<Vec<String>>| {
        f.as_ref()
            .and_then(|p| get_path(native, p))
            .and_then(|v| timestamp::to_scim(&api.time_format, v))
    };
    let (created, last_modified) = match record {
        Some(r) => (r.created.clone(), r.last_modified.clone()),
        None => {
            let c =
                native_time(&api.created_field).unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
            let m = native_time(&api.modified_field).unwrap_or_else(|| c.clone());
            (c, m)
        }
    };
    Ok(ScimGroup {
        id,
        display_name,
        external_id: resource
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_string),
        extensions,
        members,
        created,
        last_modified,
    })
}
