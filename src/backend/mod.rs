//! Translation to the backend: the resolved description of its native user API ([`spec`]), pure
//! mapping between SCIM and native JSON ([`mapping`]), filter planning ([`search`]), the HTTP
//! calls ([`client`], [`calls`]) and SCIM-level user operations over backend and store
//! ([`directory`]).

pub mod calls;
pub mod client;
pub mod directory;
pub mod mapping;
pub mod search;
pub mod spec;
