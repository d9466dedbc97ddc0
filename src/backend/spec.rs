//! The resolved description of a backend's native user API, built from `[users]` in the config:
//! request templates, where payloads sit in responses, paging, searchable fields, field mapping
//! and error mapping. Pure data; [`super::calls`] turns it into HTTP requests.

use super::timestamp::TimeFormat;
use crate::scim::error::ScimType;
use crate::scim::schema::{AttrDef, Resolved};
use http::{HeaderName, Method};
use serde_json::Value;
use std::time::Duration;

/// A variable that a template may reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// The tenant's backend name (`{tenant}`).
    Tenant,
    /// The user's (or group's) native id (`{id}`).
    Id,
    /// A member's native user id, in per-member group calls (`{member}`).
    Member,
    /// The page number of a list call.
    Page,
    /// The offset of a list call.
    Offset,
    /// The page size of a list call.
    Size,
}

impl Var {
    /// Parses a placeholder name.
    pub fn parse(name: &str) -> Option<Var> {
        Some(match name {
            "tenant" => Var::Tenant,
            "id" => Var::Id,
            "member" => Var::Member,
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

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` without its `}`.
    #[error("unclosed '{{' in template {0:?}")]
    Unclosed(String),
    /// A placeholder that is not a [`Var`].
    #[error("unknown placeholder {{{name}}} in template {template:?}")]
    UnknownPlaceholder {
        /// The placeholder's name.
        name: String,
        /// The template as written.
        template: String,
    },
}

/// A string with `{placeholders}`, parsed once at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The pieces in order.
    pub parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; `{name}` must be a known [`Var`].
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed(text.to_string()))?;
            let name = &rest[open + 1..open + close];
            let var = Var::parse(name).ok_or_else(|| TemplateError::UnknownPlaceholder {
                name: name.to_string(),
                template: text.to_string(),
            })?;
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
        /// The page number's parameter.
        page: String,
        /// The page size's parameter.
        size: String,
        /// The number of the first page.
        first: u64,
    },
    /// `?offset=N&limit=M`.
    Offset {
        /// The offset's parameter.
        offset: String,
        /// The page size's parameter.
        size: String,
    },
    /// `?cursor=TOKEN&limit=M`: each answer holds the token of the next page at `next` (absent,
    /// `null` or `""` on the last page); the first page is asked for without a token.
    Cursor {
        /// The token's parameter.
        cursor: String,
        /// The page size's parameter.
        size: String,
        /// JSON pointer to the next page's token in an answer.
        next: String,
    },
    /// Keyset paging, `?after=ID&limit=M`: the page after the item with id `ID` (in the list's
    /// ascending id order).
    After {
        /// The last id's parameter.
        after: String,
        /// The page size's parameter.
        size: String,
    },
}

impl Paging {
    /// Whether the backend pages by its own continuation (a token or the last id) rather than
    /// by position.
    pub fn continues(&self) -> bool {
        matches!(self, Paging::Cursor { .. } | Paging::After { .. })
    }
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
        /// Written for `true`.
        when_true: Value,
        /// Written for `false`.
        when_false: Value,
        /// Every native value read back, with its boolean.
        read: Vec<(Value, bool)>,
    },
    /// SCIM words stored as native words (`Employee` ⇄ `EMP`), compared ignoring case.
    Words {
        /// `(native, SCIM)` pairs; a write takes the first pair of its SCIM word.
        pairs: Vec<(String, String)>,
        /// What a word outside `pairs` becomes, both ways.
        otherwise: Otherwise,
    },
}

/// What a word map does with a value it does not list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Otherwise {
    /// A write is refused with `400 invalidValue`; a native word reads as unset.
    Refuse,
    /// Passed through unchanged, both ways.
    Keep,
    /// This native word is written, and an unknown native word reads as this word's SCIM value.
    Native(String),
}

/// A normaliser applied to a SCIM string before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalize {
    /// Folded to lower case.
    Lowercase,
    /// Leading and trailing white space removed.
    Trim,
}

/// How one SCIM value becomes one native value and back.
#[derive(Debug, Clone)]
pub struct Convert {
    /// The value transform.
    pub transform: Transform,
    /// Normalisers, in order, applied to strings before the transform on write.
    pub normalize: Vec<Normalize>,
}

/// One sub-attribute of a list element stored under a native key of the element.
#[derive(Debug, Clone)]
pub struct SubMap {
    /// The SCIM sub-attribute (`value`, `type`, `primary`, ...).
    pub sub: &'static AttrDef,
    /// The native key, as a dotted path inside the native element.
    pub native: Vec<String>,
    /// How its value converts.
    pub convert: Convert,
}

/// A SCIM multi-valued attribute (or its elements matching the target's pins) stored as a native
/// list: of objects with one native key per mapped sub-attribute, or of scalars (each element's
/// `value`, converted by the field's own `convert`).
#[derive(Debug, Clone)]
pub struct ListMap {
    /// The mapped sub-attributes; empty for a list of scalars.
    pub subs: Vec<SubMap>,
    /// The primary element is the first native element (instead of, or without, a native flag).
    pub primary_first: bool,
}

/// One piece of a composed field's template.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Text copied as is.
    Literal(String),
    /// The value of a simple SCIM attribute (empty when unset).
    Attr(ScimTarget),
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
    /// The attribute (and sub-attribute) it names; a multi-valued attribute without `sub` for a
    /// native list.
    pub attr: Resolved,
    /// For `emails[type eq "work"].value` (one element) or `emails[type eq "other"]` (a native
    /// list of those elements): the pinned sub-attributes.
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
    /// The SCIM side; `None` for a constant or a composed field, written to the backend only.
    pub scim: Option<ScimTarget>,
    /// The native field, as a dotted path inside the native object.
    pub native: Vec<String>,
    /// How the value converts (for a list of scalars: each element's value).
    pub convert: Convert,
    /// A constant native value (only when `scim` is `None`).
    pub constant: Option<Value>,
    /// A template over SCIM attributes whose rendering is written (only when `scim` is `None`).
    pub compose: Option<Vec<Piece>>,
    /// The native list shape, when `scim` names a whole multi-valued attribute.
    pub list: Option<ListMap>,
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
    /// Native fields holding creation and modification times, for users the gateway has no
    /// record of.
    pub created_field: Option<Vec<String>>,
    /// The native field holding the modification time.
    pub modified_field: Option<Vec<String>>,
    /// How the backend writes those times.
    pub time_format: TimeFormat,
    /// Lists users (paged, optionally filtered).
    pub list: ListOperation,
    /// Reads one user.
    pub get: Operation,
    /// Creates a user.
    pub create: Operation,
    /// Writes a user back.
    pub update: Update,
    /// Deletes a user.
    pub delete: Operation,
    /// Separate deactivate/reactivate calls, when `active` is not a field.
    pub deactivate: Option<Operation>,
    /// The reactivate call that goes with `deactivate`.
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

impl UserApi {
    /// Whether the backend reports a taken userName itself (a `[[users.errors]]` rule answers
    /// `uniqueness`); otherwise the gateway checks before each create.
    pub fn reports_duplicates(&self) -> bool {
        self.errors
            .iter()
            .any(|rule| rule.scim_type == Some(ScimType::Uniqueness))
    }
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
        assert_eq!(
            Template::parse("/a/{nope}").unwrap_err().to_string(),
            r#"unknown placeholder {nope} in template "/a/{nope}""#
        );
        assert_eq!(
            Template::parse("/a/{id").unwrap_err().to_string(),
            r#"unclosed '{' in template "/a/{id""#
        );
    }
}
