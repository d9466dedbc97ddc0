//! scimgate: a SCIM 2.0 gateway on pingora in front of a legacy user service.
//!
//! Three jobs, three modules: [`service`] answers SCIM requests from the identity provider (on
//! the pure protocol core, [`scim`]), [`backend`] translates them to the service's own user API
//! (config-driven), and [`guard`] blocks self-service changes to SCIM-managed accounts. One
//! running [`Gateway`] holds the [`Parts`] built from the current [`Config`] and serves them
//! through the [`Proxy`], the thin pingora glue that sends each request its way; [`brake`] holds
//! a tenant's deactivations and deletes past a threshold; [`config`],
//! [`auth`], [`store`] and [`telemetry`] support them; [`demo`] is a built-in legacy service to
//! try it all on.
//!
//! # As a pingora plugin
//!
//! Build a [`Gateway`] from a file ([`Gateway::from_file`]) or a [`Config`] ([`Gateway::new`]),
//! take its [`Proxy`] ([`Gateway::proxy`]) and call it from the phases of your own `ProxyHttp`:
//! `request_filter` (SCIM requests and guarded routes are answered there, with metrics and the
//! provisioning log), `fail_to_proxy` (SCIM-shaped error answers) and `logging` (request
//! metrics). Serve your proxy with [`Gateway::service_for`] to keep the whole-head deadline and
//! the head limits. `examples/embed.rs` shows all of it.

// The proxy's request future nests the SCIM handler's backend calls (credentials, pacing,
// read-modify-write) deep enough that rustc's default query depth (128) overflows computing its
// layout in release builds.
#![recursion_limit = "256"]

pub mod auth;
pub mod backend;
pub mod brake;
pub mod commands;
pub mod config;
pub mod demo;
pub mod forwarded;
pub mod gateway;
pub mod guard;
pub mod headers;
pub mod parts;
pub mod proxy;
pub mod scim;
pub mod service;
pub mod store;
pub mod team_admin;
pub mod telemetry;

pub use config::Config;
pub use gateway::Gateway;
pub use parts::Parts;
pub use proxy::{Proxy, RequestCtx};
