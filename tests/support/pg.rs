//! A PostgreSQL database of its own for each test: created as `scimgate_test_<random>` on the
//! server `SCIMGATE_TEST_PG` names (a user with CREATEDB, its password in
//! `SCIMGATE_TEST_PG_PASSWORD`), dropped when the [`TestDb`] is dropped, also when the test
//! fails. `.ci/postgres.sh` brings such a server up and prints both variables.
//!
//! Without `SCIMGATE_TEST_PG`, a PostgreSQL test is skipped and the run says so once, clearly,
//! with how to run it; where `CI` or `SCIMGATE_TEST_PG_REQUIRED` is set (`.ci/run`), it fails.
//!
//! Shared by the test binaries (`#[path = "../support/pg.rs"]`), which use different parts.
#![allow(dead_code)]

use scimgate::store::postgres::PgSettings;
use std::future::Future;
use std::io::Write;
use std::sync::Once;

/// The server's URL, for a user that may create databases.
pub const URL_VAR: &str = "SCIMGATE_TEST_PG";
/// That user's password.
pub const PASSWORD_VAR: &str = "SCIMGATE_TEST_PG_PASSWORD";
/// Makes a missing server a failure (as `CI` does).
pub const REQUIRED_VAR: &str = "SCIMGATE_TEST_PG_REQUIRED";

const HOW: &str = "to run the PostgreSQL tests: `eval \"$(sudo bash .ci/postgres.sh)\"` (starts \
                   a local server and exports SCIMGATE_TEST_PG and SCIMGATE_TEST_PG_PASSWORD), \
                   then cargo test";

/// A database that exists until this is dropped.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Its URL (no password).
    pub url: String,
    server: tokio_postgres::Config,
}

impl TestDb {
    /// A fresh, empty database; `None` when PostgreSQL tests are skipped here (said once).
    pub fn create() -> Option<TestDb> {
        let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) else {
            skip();
            return None;
        };
        let mut server: tokio_postgres::Config = url
            .parse()
            .unwrap_or_else(|e| panic!("{URL_VAR}={url} is not a PostgreSQL URL: {e}"));
        if let Some(password) = password() {
            server.password(password);
        }
        let name = format!("scimgate_test_{:016x}", rand::random::<u64>());
        on_own_runtime(admin(server.clone(), format!("CREATE DATABASE {name}")))
            .unwrap_or_else(|e| panic!("cannot create a test database ({HOW}): {e}"));
        let host = match server.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            other => panic!("{URL_VAR} must name a TCP host, not {other:?}"),
        };
        let port = server.get_ports().first().copied().unwrap_or(5432);
        let user = server.get_user().unwrap_or("postgres");
        Some(TestDb {
            url: format!("postgres://{user}@{host}:{port}/{name}"),
            name,
            server,
        })
    }

    /// The server's address (the URL's host and port).
    pub fn address(&self) -> std::net::SocketAddr {
        let host = match self.server.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            other => panic!("not a TCP host: {other:?}"),
        };
        let port = self.server.get_ports().first().copied().unwrap_or(5432);
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve {host}:{port}"))
    }

    /// Store settings for this database, with every default.
    pub fn settings(&self) -> PgSettings {
        let mut s = PgSettings::new(&self.url);
        s.password_env = password().map(|_| PASSWORD_VAR.to_string());
        s
    }

    /// A connection to this database (driven on the caller's runtime).
    pub async fn client(&self) -> tokio_postgres::Client {
        let mut config = self.server.clone();
        config.dbname(&self.name);
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url));
        tokio::spawn(conn);
        client
    }

    /// Runs `sql` on this database, from any thread (async or not).
    pub fn execute(&self, sql: &str) {
        let mut config = self.server.clone();
        config.dbname(&self.name);
        on_own_runtime(admin(config, sql.to_string())).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The rows `sql` answers on this database, each value as text, from any thread.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut config = self.server.clone();
        config.dbname(&self.name);
        let sql_owned = sql.to_string();
        on_own_runtime(async move {
            let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let messages = client.simple_query(&sql_owned).await?;
            Ok::<_, tokio_postgres::Error>(
                messages
                    .iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_string))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect(),
            )
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let drop_it = admin(
            self.server.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        if let Err(e) = on_own_runtime(drop_it) {
            let _ = writeln!(std::io::stderr(), "cannot drop {}: {e}", self.name);
        }
    }
}

fn password() -> Option<String> {
    std::env::var(PASSWORD_VAR).ok().filter(|p| !p.is_empty())
}

/// No server: a failure where the suite must run, else a skip said once per test binary.
fn skip() {
    let required = ["CI", REQUIRED_VAR]
        .iter()
        .find(|v| std::env::var(v).is_ok_and(|v| !v.is_empty() && v != "false" && v != "0"));
    if let Some(var) = required {
        panic!("{URL_VAR} is not set and {var} requires the PostgreSQL tests; {HOW}");
    }
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        // Straight to stderr: the test harness shows this even for passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** PostgreSQL tests SKIPPED: {URL_VAR} is not set; {HOW} ***\n"
        );
    });
}

/// One statement batch as the server's user.
async fn admin(config: tokio_postgres::Config, sql: String) -> Result<(), tokio_postgres::Error> {
    let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(conn);
    let done = client.batch_execute(&sql).await;
    drop(client);
    let _ = driver.await;
    done
}

/// Runs `work` on a runtime of its own, on a thread of its own: callable from sync tests, async
/// tests and `Drop`.
fn on_own_runtime<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(work)
    })
    .join()
    .expect("the admin thread")
}
