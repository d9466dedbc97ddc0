//! Translation to the backend: the resolved description of its native user API ([`spec`]), pure
//! mapping between SCIM and native JSON ([`mapping`], one value in [`convert`], lists in
//! [`native_list`]), filter planning ([`search`]), where the
//! backend is and how TLS reaches it ([`peer`], [`upstream_tls`]), the credential it is shown
//! ([`credentials`], [`oauth`]), the HTTP calls ([`client`], [`calls`]), writes back
//! ([`update`], with [`version`] checks), throttling ([`throttle`]), native times ([`timestamp`])
//! and SCIM-level user operations over backend and store ([`directory`], over the
//! backend's calls as [`native`] declares them).

#[cfg(test)]
mod brake_tests;
pub mod calls;
pub mod client;
pub mod convert;
pub mod credentials;
pub mod directory;
#[cfg(test)]
mod directory_tests;
#[cfg(test)]
mod fake;
pub mod group_calls;
pub mod group_spec;
pub mod groups;
pub mod mapping;
pub mod native;
pub mod native_list;
pub mod oauth;
pub mod paths;
pub mod peer;
pub mod search;
pub mod settings;
pub mod spec;
pub mod throttle;
pub mod timestamp;
pub mod undo;
pub mod update;
pub mod upstream_tls;
pub mod version;
pub mod walks;
pub mod write;
