//! Translation to the backend: the resolved description of its native user API ([`spec`]), pure
//! mapping between SCIM and native JSON ([`mapping`]), filter planning ([`search`]), the HTTP
//! calls ([`client`], [`calls`]), writes back ([`update`], with [`version`] checks), throttling
//! ([`throttle`]) and SCIM-level user operations over backend and store ([`directory`]).

pub mod calls;
pub mod client;
pub mod directory;
pub mod mapping;
pub mod search;
pub mod spec;
pub mod throttle;
pub mod update;
pub mod version;
