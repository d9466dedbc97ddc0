//! A PostgreSQL server of the test's own (initdb in a temporary folder, a free port, trust
//! authentication on loopback), so that a test can stop and restart it under traffic without
//! disturbing the tests that share the machine's server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running private PostgreSQL server; stopped (immediately) when dropped.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PgCluster {
    /// Creates and starts a server. Needs PostgreSQL's server binaries (`.ci/postgres.sh`
    /// installs them); run as root, it runs the server as the `postgres` user.
    pub fn start() -> PgCluster {
        let bin = server_bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        if as_root() {
            run(Command::new("chown").args(["postgres:postgres", &path_str(dir.path())]));
        }
        let port = scimgate::gateway::server::free_port().expect("port").port();
        let cluster = PgCluster { dir, bin, port };
        run(cluster.command("initdb").args([
            "-D",
            &cluster.data(),
            "--auth=trust",
            "-U",
            "postgres",
            "--no-sync",
        ]));
        cluster.up();
        cluster
    }

    /// The store URL of its `postgres` database (no password: trust authentication).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server the way a restart does (`fast`: sessions are ended) and starts it again
    /// after `down` has passed.
    pub fn restart(&self, down: Duration) {
        run(&mut self.pg_ctl(&["stop", "-m", "fast", "-w"]));
        std::thread::sleep(down);
        self.up();
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data()
        );
        let log = format!("{}/server.log", path_str(self.dir.path()));
        run(&mut self.pg_ctl(&["start", "-w", "-o", &options, "-l", &log]));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the private PostgreSQL did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn data(&self) -> String {
        format!("{}/data", path_str(self.dir.path()))
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut c = self.command("pg_ctl");
        c.args(["-D", &self.data()]).args(args);
        c
    }

    /// A server program, run as `postgres` when the test runs as root (initdb refuses root).
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl(&["stop", "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The newest installed PostgreSQL's server programs.
fn server_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server is not installed (run .ci/postgres.sh)")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("no PostgreSQL server programs").1
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn run(c: &mut Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
