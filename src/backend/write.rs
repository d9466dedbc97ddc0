//! What a write to the backend is: a create or an update ([`Write`]), and what an update is
//! merged over ([`Base`]).

use serde_json::Value;

/// Which write a native body is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A new user: unset fields are left out.
    Create,
    /// A replacement: unset fields are sent as `null` (cleared).
    Update,
}

/// What an update is written over: the user as the backend holds it, and the resource SCIM
/// last wrote. Native lists are merged into it, so that unmapped keys inside elements, their
/// order, and elements the backend added on its own survive.
#[derive(Debug, Clone, Copy)]
pub struct Base<'a> {
    /// The native user as just read.
    pub native: &'a Value,
    /// The resource SCIM last wrote (the store's copy), if any.
    pub shadow: Option<&'a Value>,
    /// For a PATCH, the resource it was applied to (the user as just read): the client saw its
    /// list elements, so one the PATCH left out was removed, even if the backend added it.
    pub seen: Option<&'a Value>,
}
