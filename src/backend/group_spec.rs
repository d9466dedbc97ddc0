//! The resolved description of a backend's native group API, built from `[groups]` in the
//! config: the calls, the field mapping of the group object (over the Group schema), and the
//! membership model, which says where the backend keeps who is in a group. Pure data.

use super::spec::{ErrorRule, FieldMap, ListOperation, NativeType, Operation, SearchParam};
use super::timestamp::TimeFormat;

/// Where the backend keeps a group's members.
#[derive(Debug, Clone)]
pub enum Membership {
    /// Per-member calls: one call adds a member, one removes it, a list call reads them
    /// (boxed: by far the largest model).
    Calls(Box<MemberCalls>),
    /// A list of member ids on the group object, read and written back whole (serialised per
    /// group).
    OnGroup {
        /// The group's field holding the list.
        field: Vec<String>,
        /// The key of the user id when the elements are objects; `None` for a list of ids.
        key: Option<Vec<String>>,
        /// How ids are written into the list.
        id_type: NativeType,
    },
    /// A list of group ids on each user object: membership changes are user updates
    /// (serialised per user).
    OnUser {
        /// The user's field holding the list of group ids.
        field: Vec<String>,
        /// How group ids are written into the list.
        id_type: NativeType,
        /// The users list's query parameter that finds a group's members.
        search: String,
    },
}

/// The calls of the per-member model.
#[derive(Debug, Clone)]
pub struct MemberCalls {
    /// Adds member `{member}` to group `{id}`.
    pub add: Operation,
    /// Removes member `{member}` from group `{id}`.
    pub remove: Operation,
    /// Lists the members of group `{id}`, paged.
    pub list: ListOperation,
    /// The field of a listed member holding the user's id.
    pub value: Vec<String>,
    /// The field of a listed member holding a display name, if any.
    pub display: Option<Vec<String>>,
}

impl Membership {
    /// The model's name as the config spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Membership::Calls(_) => "calls",
            Membership::OnGroup { .. } => "group_field",
            Membership::OnUser { .. } => "user_field",
        }
    }
}

/// The whole native group API.
#[derive(Debug, Clone)]
pub struct GroupApi {
    /// The native field holding the id.
    pub id_field: Vec<String>,
    /// The native field holding the creation time, for groups the gateway has no record of.
    pub created_field: Option<Vec<String>>,
    /// The native field holding the modification time.
    pub modified_field: Option<Vec<String>>,
    /// How the backend writes those times.
    pub time_format: TimeFormat,
    /// Lists groups (paged, optionally filtered).
    pub list: ListOperation,
    /// Reads one group.
    pub get: Operation,
    /// Creates a group.
    pub create: Operation,
    /// Writes a group's mapped fields (a rename); the whole object when members live on it.
    pub update: Operation,
    /// Deletes a group.
    pub delete: Operation,
    /// SCIM attributes searchable with `eq` through a list query parameter.
    pub filters: Vec<SearchParam>,
    /// Field mappings over the Group schema, in file order.
    pub fields: Vec<FieldMap>,
    /// Error translations, first match wins (then those of `[users]`).
    pub errors: Vec<ErrorRule>,
    /// Where members are kept.
    pub members: Membership,
    /// Most member ids one SCIM request may name.
    pub max_members_per_request: usize,
    /// Most member calls in flight for one SCIM request.
    pub member_calls_at_once: usize,
    /// Whether a PATCH answers `200` with the group instead of `204`.
    pub patch_returns_group: bool,
}
