//! The "shapes" test backend (`tests/support/shapes_backend.rs`) as a program, so that the SCIM
//! conformance run can start it with `scimgate run --config tests/fixtures/shapes.toml` in front
//! (`.ci/shapes-server.sh`). It keeps everything in memory and stops on SIGTERM or SIGINT.
//!
//! Run: `cargo run --example shapes_backend -- [ADDR (127.0.0.1:19092)] [RUN_DIR (temp dir)]`.

// Test code: a failed unwrap, expect or panic is a failed test (the lints in Cargo.toml keep
// them out of the library).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/shapes_backend.rs"]
mod shapes_backend;

use pingora::server::RunArgs;
use std::path::PathBuf;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:19092".into());
    let run_dir = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let conf = scimgate::server::server_conf(1, Duration::ZERO, &run_dir);
    let mut server = scimgate::server::build(conf);
    server.add_service(shapes_backend::ShapesBackend::new().service(&addr));
    server.run(RunArgs::default());
}
