//! The SCIM service: routes SCIM requests ([`operation`]) and answers them for every
//! tenant ([`handler`]) over a directory of
//! users ([`directory`], the seam the config-driven backend implements). Knows nothing of
//! pingora, the store engine or the backend's native API.

pub mod directory;
pub mod handler;
pub mod operation;

pub use directory::{Replacement, SearchPage, UserDirectory};
pub use handler::ScimService;
pub use operation::Operation;

#[cfg(test)]
mod tests;
