//! scimgate: a SCIM 2.0 gateway on pingora in front of a legacy user service.
//!
//! Three jobs, three modules: [`scim`] speaks SCIM to the identity provider, [`backend`]
//! translates it to the service's own user API (config-driven), and [`guard`] blocks self-service
//! changes to SCIM-managed accounts. [`proxy`] is the thin pingora glue that sends each request
//! its way; [`config`], [`auth`] and [`store`] support them; [`demo`] is a built-in legacy
//! service to try it all on.

// The proxy's request future nests the SCIM handler's backend calls (credentials, pacing,
// read-modify-write) deep enough that rustc's default query depth (128) overflows computing its
// layout in release builds.
#![recursion_limit = "256"]

pub mod admin;
pub mod app;
pub mod auth;
pub mod backend;
pub mod commands;
pub mod config;
pub mod demo;
pub mod forwarded;
pub mod guard;
pub mod proxy;
pub mod runtime;
pub mod scim;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod tls;
