//! End-to-end tests through real sockets: each test starts the gateway and a backend on free
//! loopback ports and talks HTTP to them.

mod alt;
#[path = "../support/alt_backend.rs"]
mod alt_backend;
mod alt_backend_smoke;
mod bypass;
mod crash;
mod entra;
mod guard;
mod harness;
mod hostile;
mod http;
mod ops;
mod races;
mod replace;
#[path = "../support/replace_backend.rs"]
mod replace_backend;
mod scenarios;
mod soak;
mod store_faults;
