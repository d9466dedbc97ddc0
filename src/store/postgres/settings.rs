//! How the PostgreSQL engine reaches its database and how long it waits: the resolved `[store]`
//! settings, the checks of the URL (`scimgate check` runs them too) and the driver's
//! configuration built from both.

use super::super::OpenError;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};

/// Connections to PostgreSQL a gateway keeps for statements (as many again for holds).
pub const DEFAULT_POOL_SIZE: usize = 8;
/// How long a statement waits for a free connection before failing as busy.
pub const DEFAULT_POOL_WAIT: Duration = Duration::from_millis(2_000);
/// How long opening a connection may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(5_000);
/// How long one statement may run (the server cancels it, the gateway stops waiting).
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_millis(5_000);
/// How long a write waits for another gateway's hold on the same resource.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_millis(10_000);
/// How every store session plans, as `(setting, value)`: what the query-plan tests plan with too
/// ([`PgSettings::driver_config`] says why).
pub const PLANNER: [(&str, &str); 2] = [
    ("plan_cache_mode", "force_generic_plan"),
    ("enable_seqscan", "off"),
];

/// The PostgreSQL store's settings (`[store] url = "postgres://…"` and its companions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// `postgres://USER@HOST:PORT/DB`; never holds a password.
    pub url: String,
    /// The environment variable holding the password, when the server asks for one.
    pub password_env: Option<String>,
    /// Connections kept for statements; holds (see [`crate::store::Store::serialise`]) use a
    /// second pool of the same size.
    pub pool_size: usize,
    /// How long a statement waits for a free connection before [`crate::store::StoreError::Busy`].
    pub pool_wait: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// How long one statement may run.
    pub statement_timeout: Duration,
    /// How long a write waits for a hold on its resource before [`crate::store::StoreError::Busy`].
    pub lock_wait: Duration,
    /// Whether a write waits until the database server flushed it to disk. Off by default:
    /// an acknowledged write then survives a crash of the gateway but not of the database
    /// server itself (which may lose its last fraction of a second of commits, never corrupt
    /// them), the same promise the SQLite engine makes (WAL, `synchronous = NORMAL`), for a
    /// commit that costs a round trip instead of a round trip and a disk flush.
    pub synchronous_commit: bool,
    /// Whether a gateway applies missing schema migrations when it starts.
    pub migrate: Migrate,
    /// Whether a gateway caches the user records it shows (GET, lists, lookups), kept true by
    /// the database's change notifications: a write through another gateway then shows there
    /// as soon as its notification arrives (milliseconds; at most 1.5 s if
    /// notifications stall). Off: every read asks the database. Writes always read fresh.
    pub record_cache: bool,
}

impl PgSettings {
    /// Settings for `url` with every default.
    pub fn new(url: &str) -> PgSettings {
        PgSettings {
            url: url.to_string(),
            password_env: None,
            pool_size: DEFAULT_POOL_SIZE,
            pool_wait: DEFAULT_POOL_WAIT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            lock_wait: DEFAULT_LOCK_WAIT,
            synchronous_commit: false,
            migrate: Migrate::Auto,
            record_cache: true,
        }
    }

    /// The driver's configuration: the URL's target, the password read from the environment
    /// now, the connect timeout, and the statement timeout and commit mode as session settings.
    /// Every statement keeps its generic plan (`plan_cache_mode`): each reads or writes by key,
    /// the query-plan tests check the generic plan of every lookup, and a statement whose custom
    /// plan looks cheaper (a read of an array of ids, planned for the array's length) would
    /// otherwise be planned again at every run. No plan scans a whole table where an index
    /// serves (`enable_seqscan`): a table of few live rows and many dead ones (the pending-create
    /// notes, between two vacuums) looks small to the planner, and a scan of it reads them all.
    pub(super) fn driver_config(
        &self,
        statement_timeout: Duration,
    ) -> Result<tokio_postgres::Config, OpenError> {
        let mut config = check_url(&self.url).map_err(OpenError::Url)?;
        if let Some(var) = &self.password_env {
            match std::env::var(var) {
                Ok(p) if !p.is_empty() => {
                    config.password(p);
                }
                _ => return Err(OpenError::PasswordUnset(var.clone())),
            }
        }
        let planner: String = PLANNER
            .iter()
            .map(|(k, v)| format!(" -c {k}={v}"))
            .collect();
        let options = format!(
            "{} -c statement_timeout={} -c synchronous_commit={}{planner}",
            config.get_options().unwrap_or_default(),
            statement_timeout.as_millis(),
            if self.synchronous_commit { "on" } else { "off" }
        );
        if config.get_application_name().is_none() {
            config.application_name("scimgate");
        }
        config
            .options(options.trim_start())
            .connect_timeout(self.connect_timeout)
            .keepalives_idle(Duration::from_secs(30));
        Ok(config)
    }
}

/// When schema migrations run (`[store] migrate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrate {
    /// Every gateway applies missing migrations when it starts (one at a time).
    Auto,
    /// Only `scimgate store migrate` applies them; a gateway whose database lags refuses to start.
    Manual,
}

impl FromStr for Migrate {
    type Err = String;

    fn from_str(s: &str) -> Result<Migrate, String> {
        match s {
            "auto" => Ok(Migrate::Auto),
            "manual" => Ok(Migrate::Manual),
            other => Err(format!(
                "store.migrate {other:?} is not \"auto\" or \"manual\""
            )),
        }
    }
}

/// Checks a store URL and parses it: `postgres://USER@HOST[:PORT]/DB`, with no password (the
/// password comes from the variable `store.password_env` names) and no demand for TLS (this
/// engine speaks plain TCP: keep the database on a private network or behind a TLS tunnel).
pub fn check_url(url: &str) -> Result<tokio_postgres::Config, String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("store.url must be a URL like postgres://USER@HOST:5432/DB".into());
    }
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|e| format!("store.url is not a PostgreSQL URL: {e}"))?;
    if config.get_password().is_some() {
        return Err(
            "store.url must not contain a password: put it in an environment \
                    variable and name that variable in store.password_env"
                .into(),
        );
    }
    if config.get_user().is_none_or(str::is_empty) {
        return Err("store.url names no user (postgres://USER@HOST:5432/DB)".into());
    }
    let hosts = config.get_hosts();
    if hosts.is_empty()
        || hosts
            .iter()
            .any(|h| matches!(h, Host::Tcp(h) if h.is_empty()))
    {
        return Err("store.url names no host (postgres://USER@HOST:5432/DB)".into());
    }
    if config.get_dbname().is_none_or(str::is_empty) {
        return Err("store.url names no database (postgres://USER@HOST:5432/DB)".into());
    }
    if config.get_ssl_mode() == SslMode::Require {
        return Err(
            "store.url asks for sslmode=require, but this engine connects without \
                    TLS: reach the database over a private network or a TLS tunnel"
                .into(),
        );
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_user_host_and_database_and_no_password() {
        let c = check_url("postgres://scim@db.internal:6432/scimgate").unwrap();
        assert_eq!(c.get_user(), Some("scim"));
        assert_eq!(c.get_dbname(), Some("scimgate"));
        assert_eq!(c.get_ports(), [6432]);
        assert!(check_url("postgresql://scim@127.0.0.1/scimgate").is_ok());
        for (bad, want) in [
            (
                "postgres://scim:s3cret@db/scimgate",
                "must not contain a password",
            ),
            ("postgres://db.internal/scimgate", "names no user"),
            ("postgres://scim@db.internal", "names no database"),
            ("host=db user=scim dbname=x", "must be a URL"),
            ("mysql://scim@db/x", "must be a URL"),
            ("postgres://scim@db/x?sslmode=require", "without TLS"),
        ] {
            let err = check_url(bad).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
            assert!(
                !err.contains("s3cret"),
                "the password is never repeated: {err}"
            );
        }
    }

    #[test]
    fn the_password_comes_from_the_named_variable() {
        let mut s = PgSettings::new("postgres://scim@127.0.0.1:5432/scimgate");
        s.password_env = Some("SCIMGATE_TEST_UNSET_PG_PASSWORD".into());
        let err = s.driver_config(DEFAULT_STATEMENT_TIMEOUT).unwrap_err();
        assert!(
            matches!(err, OpenError::PasswordUnset(ref v) if v == "SCIMGATE_TEST_UNSET_PG_PASSWORD")
        );
        std::env::set_var("SCIMGATE_TEST_SET_PG_PASSWORD", "pw");
        s.password_env = Some("SCIMGATE_TEST_SET_PG_PASSWORD".into());
        let c = s.driver_config(Duration::from_millis(1500)).unwrap();
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        assert_eq!(
            c.get_options(),
            Some(
                "-c statement_timeout=1500 -c synchronous_commit=off \
                 -c plan_cache_mode=force_generic_plan -c enable_seqscan=off"
            )
        );
        s.synchronous_commit = true;
        let c = s.driver_config(Duration::ZERO).unwrap();
        assert_eq!(
            c.get_options(),
            Some(
                "-c statement_timeout=0 -c synchronous_commit=on \
                 -c plan_cache_mode=force_generic_plan -c enable_seqscan=off"
            )
        );
        assert_eq!(c.get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
    }

    #[test]
    fn migrate_is_auto_or_manual() {
        assert_eq!("auto".parse(), Ok(Migrate::Auto));
        assert_eq!("manual".parse(), Ok(Migrate::Manual));
        assert!("never"
            .parse::<Migrate>()
            .unwrap_err()
            .contains("\"auto\" or \"manual\""));
    }
}
