//! End-to-end tests through real sockets: each test starts the gateway and a backend on free
//! loopback ports and talks HTTP to them.

mod entra;
mod harness;
mod http;
