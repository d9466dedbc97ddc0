//! End-to-end tests through real sockets: each test starts the gateway and a backend on free
//! loopback ports and talks HTTP to them.

// Test code: a failed unwrap, expect or panic is a failed test (the lints in Cargo.toml keep
// them out of the library).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod alt;
#[path = "../support/alt_backend.rs"]
mod alt_backend;
mod alt_teams;
mod alt_upstream;
mod backend_auth;
mod backend_tls;
mod brake;
mod bypass;
mod crash;
mod cursor;
#[path = "../support/cutter.rs"]
mod cutter;
mod docs;
mod entra;
mod fail_closed;
mod fixtures;
mod fleet;
mod fleet_processes;
mod group_scenarios;
mod groups;
mod guard;
mod guard_groups;
mod harness;
mod hostile;
mod http;
mod identity;
mod lax;
#[path = "../support/lax_backend.rs"]
mod lax_backend;
mod ops;
#[path = "../support/pg.rs"]
mod pg;
mod pg_cluster;
mod pg_store;
mod pki;
mod races;
mod replace;
#[path = "../support/replace_backend.rs"]
mod replace_backend;
#[path = "../support/rough_upstream.rs"]
mod rough_upstream;
mod scenarios;
mod scim_input;
mod shapes;
#[path = "../support/shapes_backend.rs"]
mod shapes_backend;
#[path = "../support/sloppy_backend.rs"]
mod sloppy_backend;
mod soak;
mod store_faults;
mod store_keys;
mod team_admin;
mod tenants;
mod token_endpoint;
#[path = "../support/tokens_backend.rs"]
mod tokens_backend;
mod transparent;
mod uniqueness;
