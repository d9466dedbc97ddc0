//! The SCIM service: answers SCIM requests for every tenant ([`handler`]) over a directory of
//! users ([`directory`], the seam the config-driven backend implements). Knows nothing of
//! pingora, the store engine or the backend's native API.

pub mod directory;
pub mod handler;

pub use directory::{SearchPage, UserDirectory, WriteLock};
pub use handler::ScimService;

#[cfg(test)]
mod tests;
