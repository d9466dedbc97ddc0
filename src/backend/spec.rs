//! The resolved description of a backend's native user API, built from `[users]` in the config:
//! request templates, where payloads sit in responses, paging, searchable fields, field mapping
//! and error mapping. Pure data; [`super::calls`] turns it into HTTP requests.

use crate::scim::error::ScimType;
use crate::scim::schema::Resolved;
use http::{HeaderName, Method};
use serde_json::Value;
use std::time::Duration;

/// A variable that a template may reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// The tenant's backend name (`{tenant}`).
    Tenant,
    /// The user's native id (`{id}`).
    Id,
    /// The page number, offset, or page size of a list call.
    Page,
    Offset,
    Size,
}

impl Var {
    /// Parses a placeholder name.
    pub fn parse(name: &str) -> Option<Var> {
        Some(match name {
            "tenant" => Var::Tenant,
            "id" => Var::Id,
            "page" => Var::Page,
            "offset" => Var::Offset,
            "size" => Var::Size,
            _ => return None,
        })
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text copied as is.
    Literal(String),
    /// A placeholder, percent-encoded when expanded.
    Var(Var),
}

/// A string with `{placeholders}`, parsed once at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The pieces in order.
    pub parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; `{name}` must be a known [`Var`].
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in template {text:?}"))?;
            let name = &rest[open + 1..open + close];
            let var = Var::parse(name)
                .ok_or_else(|| format!("unknown placeholder {{{name}}} in template {text:?}"))?;
            parts.push(Part::Var(var));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// True when the template references `var`.
    pub fn uses(&self, var: Var) -> bool {
        self.parts.contains(&Part::Var(var))
    }
}

/// One backend call.
#[derive(Debug, Clone)]
pub struct Operation {
    /// HTTP method.
    pub method: Method,
    /// Path template (`/api/teams/{tenant}/members/{id}`).
    pub path: Template,
    /// Extra query parameters.
    pub query: Vec<(String, Template)>,
    /// JSON pointer to the user object in the response ("" = the whole body).
    pub result: String,
    /// JSON pointer under which the native user is placed in the request body ("" = the body itself).
    pub body: String,
}

/// How the list call pages.
#[derive(Debug, Clone)]
pub enum Paging {
    /// `?page=N&per_page=M`; `first` is the number of the first page (usually 1).
    Page {
        page: String,
        size: String,
        first: u64,
    },
    /// `?offset=N&limit=M`.
    Offset { offset: String, size: String },
}

/// The list/search call.
#[derive(Debug, Clone)]
pub struct ListOperation {
    /// The call itself (its `result` is unused).
    pub call: Operation,
    /// JSON pointer to the array of users.
    pub results: String,
    /// JSON pointer to the total count, if the backend reports one.
    pub total: Option<String>,
    /// How pages are requested.
    pub paging: Paging,
    /// The largest page the backend serves.
    pub max_size: usize,
}

/// The type a native field holds, for converting SCIM strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeType {
    /// Whatever SCIM sends, unchanged.
    Any,
    /// A JSON string.
    String,
    /// A JSON integer.
    Integer,
    /// A JSON boolean.
    Boolean,
}

/// How a value changes on its way between SCIM and the backend.
#[derive(Debug, Clone)]
pub enum Transform {
    /// Copied, converted to the native type.
    Direct(NativeType),
    /// A SCIM boolean stored as one of two native values (`active` ⇄ `status`); `read` lists every
    /// native value that reads back, with its boolean.
    BoolEnum {
        when_true: Value,
        when_false: Value,
        read: Vec<(Value, bool)>,
    },
}

/// When a field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOn {
    /// On create and update.
    Always,
    /// Only on create.
    Create,
    /// Never (read-only projection of a backend field).
    Never,
}

/// Where a mapped value sits in the SCIM resource.
#[derive(Debug, Clone)]
pub struct ScimTarget {
    /// The attribute (and sub-attribute) it names.
    pub attr: Resolved,
    /// For `emails[type eq "work"].value`: the pinned sub-attributes of the element.
    pub element: Option<Vec<(&'static str, Value)>>,
}

/// One `[users.filters]` entry: the list call's query parameter that searches a SCIM attribute
/// (or the pinned element of one, `emails[type eq "work"].value`) with `eq`.
#[derive(Debug, Clone)]
pub struct SearchParam {
    /// The attribute searched.
    pub target: ScimTarget,
    /// The query parameter.
    pub param: String,
}

impl ScimTarget {
    /// True when both name the same attribute and pin the same element.
    pub fn same_as(&self, other: &ScimTarget) -> bool {
        self.attr.canonical() == other.attr.canonical() && self.element == other.element
    }
}

/// One mapped field.
#[derive(Debug, Clone)]
pub struct FieldMap {
    /// The SCIM side; `None` for a constant written to the backend only.
    pub scim: Option<ScimTarget>,
    /// The native field, as a dotted path inside the native object.
    pub native: Vec<String>,
    /// The value transform.
    pub transform: Transform,
    /// A constant native value (only when `scim` is `None`).
    pub constant: Option<Value>,
    /// The SCIM value assumed when the client sent none (on create and on update), and that reads
    /// back as unset when SCIM never set it.
    pub default: Option<Value>,
    /// When it is written.
    pub on: WriteOn,
}

/// How an update writes a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStyle {
    /// The backend merges: only the mapped fields are sent.
    Partial,
    /// The backend replaces the whole object: the gateway reads it, overlays the mapped fields and
    /// writes every field back (read-modify-write).
    Replace,
}

/// Where a version lives, or where it is sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionAt {
    /// A header (`ETag` on reads, `If-Match` on writes).
    Header(HeaderName),
    /// A native field (dotted path inside the user object).
    Field(Vec<String>),
}

/// Optimistic concurrency: the version read with a user and sent back with its update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioning {
    /// Where a read answers the version.
    pub from: VersionAt,
    /// Where the update sends it back.
    pub send: VersionAt,
    /// Writes tried when the backend answers 412 (each after a fresh read), at least 1.
    pub max_attempts: u32,
}

/// The update call and how it writes.
#[derive(Debug, Clone)]
pub struct Update {
    /// The call itself.
    pub call: Operation,
    /// Partial or whole-object writes.
    pub style: UpdateStyle,
    /// Version-checked writes, when configured.
    pub version: Option<Versioning>,
}

/// A request rate: calls per second with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained calls per second.
    pub per_second: f64,
    /// Calls allowed at once after a quiet period.
    pub burst: u32,
}

/// How the gateway treats a backend that limits its callers.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttling {
    /// How long one backend call may wait for the backend's `Retry-After` (reads) or for the
    /// gateway's own pacing before the SCIM client is answered 429.
    pub max_wait: Duration,
    /// Calls per second toward the backend, overall.
    pub rate: Option<Rate>,
    /// Calls per second toward the backend, per tenant.
    pub tenant_rate: Option<Rate>,
}

impl Default for Throttling {
    fn default() -> Self {
        Throttling {
            max_wait: Duration::from_secs(5),
            rate: None,
            tenant_rate: None,
        }
    }
}

/// A backend error translated to a SCIM error.
#[derive(Debug, Clone)]
pub struct ErrorRule {
    /// The backend's HTTP status.
    pub status: u16,
    /// Only when the body contains this text.
    pub body_contains: Option<String>,
    /// Only when the JSON body holds this value at this JSON pointer.
    pub body_field: Option<(String, Value)>,
    /// The SCIM status to answer.
    pub scim_status: u16,
    /// The SCIM error code.
    pub scim_type: Option<ScimType>,
    /// The detail, or the backend's own text when `None`.
    pub detail: Option<String>,
}

/// The whole native user API.
#[derive(Debug, Clone)]
pub struct UserApi {
    /// The native field holding the id.
    pub id_field: Vec<String>,
    /// Native fields holding creation and modification times (RFC 3339), for users the gateway
    /// has no record of.
    pub created_field: Option<Vec<String>>,
    pub modified_field: Option<Vec<String>>,
    pub list: ListOperation,
    pub get: Operation,
    pub create: Operation,
    pub update: Update,
    pub delete: Operation,
    /// Separate deactivate/reactivate calls, when `active` is not a field.
    pub deactivate: Option<Operation>,
    pub reactivate: Option<Operation>,
    /// SCIM attributes searchable with `eq` through a list query parameter.
    pub filters: Vec<SearchParam>,
    /// Field mappings in file order.
    pub fields: Vec<FieldMap>,
    /// Error translations, first match wins.
    pub errors: Vec<ErrorRule>,
    /// Backend rate limits and the gateway's own pacing.
    pub throttling: Throttling,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_templates() {
        let t = Template::parse("/api/teams/{tenant}/members/{id}").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Literal("/api/teams/".into()),
                Part::Var(Var::Tenant),
                Part::Literal("/members/".into()),
                Part::Var(Var::Id),
            ]
        );
        assert!(t.uses(Var::Id));
        assert!(!t.uses(Var::Page));
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(Template::parse("/a/{nope}").is_err());
        assert!(Template::parse("/a/{id").is_err());
    }
}
