//! The SCIM service: routes SCIM requests ([`operation`]) and answers them for every
//! tenant ([`handler`], and [`groups`] for `/Groups`; [`request`] reads their queries and
//! bodies, [`cursor_paging`] and [`walk`] page lists by cursor) over a directory of users
//! ([`directory`]) and one of groups ([`group_directory`]), the seams the config-driven backend
//! implements. Knows nothing of pingora, the store engine or the backend's native API.

pub mod cursor_paging;
pub mod directory;
pub mod group_directory;
pub mod groups;
pub mod handler;
pub mod operation;
pub mod request;
pub mod walk;

pub use directory::{Basis, Current, Replacement, SearchPage, UserDirectory};
pub use group_directory::{GroupDirectory, GroupPage};
pub use groups::{GroupService, GroupSettings};
pub use handler::ScimService;
pub use operation::{GroupOperation, Operation};
pub use walk::Walk;

#[cfg(test)]
mod tests;
