//! The command-line subcommands: `demo`, `run`, `check`, `reload`, `log`, `token new`, the
//! keys' ([`token`]: `token list`, `token revoke`) and the store's ([`store`]: `store migrate`,
//! `store copy`).

pub mod brake;
pub mod store;
pub mod token;

use crate::auth::{self, ApiKey};
use crate::config::{self, Config, ConfigError};
use crate::demo::{legacy_service, DemoError, LegacyBackend};
use crate::gateway::server::{self, BindError};
use crate::gateway::{Gateway, GatewayError};
use crate::guard::jwt::{JwtKey, JwtKeyError, JwtVerifier};
use crate::guard::rules::IdentitySource;
use crate::store::engine::StoreSettings;
use crate::store::rows::CopyError;
use crate::store::OpenError;
use crate::telemetry::provisioning::LogError;
use pingora::server::RunArgs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The demo config shipped in `conf/demo.toml`, embedded so `scimgate demo` runs anywhere.
pub const DEMO_CONFIG: &str = include_str!("../conf/demo.toml");
/// The environment variable `conf/demo.toml` reads the legacy service's credential from.
const DEMO_SERVICE_TOKEN_ENV: &str = "SCIMGATE_DEMO_SERVICE_TOKEN";
/// The pid file `run` writes in its run folder, for `reload`.
const PID_FILE: &str = "scimgate.pid";

/// Why a subcommand failed; `main` prints it once, after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The config file is invalid or unreadable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The gateway cannot start.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// A listen address cannot be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The guard's JWT key files cannot be loaded.
    #[error(transparent)]
    JwtKey(#[from] JwtKeyError),
    /// The provisioning log cannot be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The built-in legacy service cannot start.
    #[error(transparent)]
    Demo(#[from] DemoError),
    /// The embedded demo config lost its tenant.
    #[error("conf/demo.toml has no tenant")]
    DemoWithoutTenant,
    /// A folder cannot be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No temporary folder for the demo's state.
    #[error("cannot create a temporary folder: {0}")]
    TempDir(std::io::Error),
    /// No free loopback port for the demo's legacy service.
    #[error("no free port for the legacy service: {0}")]
    NoFreePort(std::io::Error),
    /// The pid file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    PidFile {
        /// The pid file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `reload` found no pid file.
    #[error("no running gateway found ({}: {source})", path.display())]
    NotRunning {
        /// The pid file looked for.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// `kill` cannot be run.
    #[error("cannot signal the gateway: {0}")]
    Signal(std::io::Error),
    /// `kill` failed for this pid.
    #[error("the gateway (pid {0}) could not be signalled")]
    NotSignalled(String),
    /// `log` on a config without a provisioning log.
    #[error("no provisioning log configured (server.provisioning_log)")]
    NoProvisioningLog,
    /// A `store` command on a config whose store is SQLite.
    #[error(
        "{}: [store] has no url; `scimgate store` commands work on a PostgreSQL store \
         (the SQLite store creates its tables itself)",
        .0.display()
    )]
    NotPostgres(PathBuf),
    /// The PostgreSQL store cannot be opened or migrated.
    #[error(transparent)]
    Store(OpenError),
    /// `store copy` did nothing.
    #[error(transparent)]
    Copy(CopyError),
    /// No async runtime for a store command.
    #[error("cannot start an async runtime: {0}")]
    Runtime(std::io::Error),
    /// `token revoke` of a key the config file holds.
    #[error(
        "key {id} (tenant {tenant:?}) is a config key, not a store key: remove its \
         [[tenants.keys]] entry (id = {id:?}) from {} and reload (scimgate reload --config {})",
        file.display(),
        file.display()
    )]
    ConfigKey {
        /// The key's id.
        id: String,
        /// Its tenant.
        tenant: String,
        /// The config file.
        file: PathBuf,
    },
    /// `token revoke` of a key neither the config nor the store holds.
    #[error("no key with id {0:?} in the config or the store (see scimgate token list)")]
    UnknownKey(String),
    /// A `brake` command naming a tenant neither the config nor the store knows.
    #[error("no tenant {0:?} in the config or the store (see scimgate brake status)")]
    UnknownTenant(String),
}

impl CommandError {
    /// The process's exit code for this failure: 2 when the operator asked for something this
    /// command does not do (revoking a config key), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::ConfigKey { .. } => 2,
            _ => 1,
        }
    }
}

/// Settings of `scimgate demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the gateway listens.
    pub listen: SocketAddr,
    /// The SCIM key of tenant `acme`.
    pub token: String,
    /// The seeded members' password.
    pub password: String,
    /// Where state lives.
    pub data: PathBuf,
}

/// The demo's config: `conf/demo.toml` with this run's listen address, legacy service address,
/// store folder and SCIM key.
pub fn demo_config(opts: &DemoOptions, legacy: SocketAddr) -> Result<Config, CommandError> {
    let mut config = config::from_str(DEMO_CONFIG, Path::new("conf/demo.toml"))?;
    config.server.listen = vec![opts.listen];
    config.backend.address = legacy;
    config.store = StoreSettings::Sqlite(opts.data.join("scimgate.sqlite"));
    let tenant = config
        .tenants
        .first()
        .cloned()
        .ok_or(CommandError::DemoWithoutTenant)?;
    config.keyring = auth::Keyring::new(vec![ApiKey::from_secret(tenant, &opts.token)]);
    Ok(config)
}

/// Starts the legacy service and the gateway in front of it and serves until stopped.
pub fn demo(opts: DemoOptions) -> Result<(), CommandError> {
    std::fs::create_dir_all(&opts.data).map_err(|source| CommandError::CreateDir {
        path: opts.data.clone(),
        source,
    })?;
    let service_token = auth::generate_key();
    std::env::set_var(DEMO_SERVICE_TOKEN_ENV, &service_token);
    let legacy_addr = server::free_port().map_err(CommandError::NoFreePort)?;
    let legacy = LegacyBackend::open(
        &opts.data.join("legacy.sqlite"),
        &service_token,
        &opts.password,
    )?;
    let config = demo_config(&opts, legacy_addr)?;
    server::check_binds(&config.server.listen)?;
    let conf = server::server_conf(
        config.server.threads,
        config.server.grace_period,
        &opts.data,
    );
    let gateway = Gateway::new(config, None)?;
    let mut srv = server::build(conf);
    srv.add_service(legacy_service(legacy, &legacy_addr.to_string()));
    gateway.add_services(&mut srv)?;
    print_demo_banner(&opts, legacy_addr);
    srv.run(RunArgs::default());
    Ok(())
}

fn print_demo_banner(opts: &DemoOptions, legacy: SocketAddr) {
    let base = format!("http://{}", opts.listen);
    println!("scimgate demo is running (Ctrl-C to stop)\n");
    println!("  Tenant URL     {base}/scim/v2/");
    println!("  Secret Token   {}", opts.token);
    println!(
        "  Legacy app     {base}/api/...  (served by the built-in legacy service on {legacy})"
    );
    println!("  Members        admin@acme.test (team admin), bob@acme.test, carol@acme.test");
    println!("  Password       {}", opts.password);
    println!("  Data           {}\n", opts.data.display());
    println!("Try:\n  curl -H 'Authorization: Bearer {}' '{base}/scim/v2/Users?filter=userName+eq+%22bob@acme.test%22'\n", opts.token);
    print!("{}", team_admin_steps(&base, &opts.password));
}

/// How the demo's team admin turns SCIM on and generates a key, as the product page does it:
/// the page, and the same steps with `curl`.
fn team_admin_steps(base: &str, password: &str) -> String {
    let api = format!("{base}/scim-admin/api/teams/acme");
    let json = "-H 'Content-Type: application/json'";
    format!(
        "As the team admin (admin@acme.test), turn SCIM on and generate a key yourself:\n\
         \x20 Page   {base}/scim-admin/  (paste the session the login below answers)\n\
         \x20 curl   S=$(curl -s {json} -d '{{\"email\":\"admin@acme.test\",\"password\":\"{password}\"}}' {base}/api/login | sed -E 's/.*\"session\":\"([^\"]+)\".*/\\1/')\n\
         \x20        curl -X POST -H \"Authorization: Bearer $S\" {json} {api}/enable\n\
         \x20        curl -X POST -H \"Authorization: Bearer $S\" {json} -d '{{\"label\":\"Entra ID\"}}' {api}/keys\n\n"
    )
}

/// `scimgate run --config FILE [--upgrade]`: serves as configured until SIGTERM (graceful) or
/// SIGINT; SIGHUP reloads the config. With `upgrade`, takes the listening sockets over from the
/// running instance (then send it SIGQUIT).
pub fn run(path: &Path, upgrade: bool) -> Result<(), CommandError> {
    let config = config::load(path)?;
    let run_dir = run_dir(&config, path);
    let conf = server::server_conf(config.server.threads, config.server.grace_period, &run_dir);
    let gateway = Gateway::new(config, Some(path.to_path_buf()))?;
    if !upgrade {
        server::check_binds(&gateway.listen_addresses())?;
    }
    let mut srv = server::build_upgrading(conf, upgrade);
    gateway.add_services(&mut srv)?;
    gateway.reload_on_sighup()?;
    let pid_file = run_dir.join(PID_FILE);
    std::fs::write(&pid_file, std::process::id().to_string()).map_err(|source| {
        CommandError::PidFile {
            path: pid_file.clone(),
            source,
        }
    })?;
    tracing::info!(listen = ?gateway.listen_addresses(), "scimgate listening");
    srv.run(RunArgs::default());
    // After a graceful upgrade the file names the new process: leave it.
    if std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim() == std::process::id().to_string())
    {
        let _ = std::fs::remove_file(&pid_file);
    }
    Ok(())
}

/// `scimgate reload --config FILE`: asks the gateway running with that config to reload it
/// (SIGHUP to the pid in its run folder), after checking the file is valid.
pub fn reload(path: &Path) -> Result<String, CommandError> {
    let config = config::load(path)?;
    let pid_file = run_dir(&config, path).join(PID_FILE);
    let pid = std::fs::read_to_string(&pid_file).map_err(|source| CommandError::NotRunning {
        path: pid_file.clone(),
        source,
    })?;
    let status = std::process::Command::new("kill")
        .args(["-HUP", pid.trim()])
        .status()
        .map_err(CommandError::Signal)?;
    if !status.success() {
        return Err(CommandError::NotSignalled(pid.trim().to_string()));
    }
    Ok(format!(
        "asked pid {} to reload {}",
        pid.trim(),
        path.display()
    ))
}

/// `scimgate log --config FILE [-n N]`: the last provisioning events.
pub fn log(path: &Path, n: usize) -> Result<String, CommandError> {
    let config = config::load(path)?;
    let log = config
        .server
        .provisioning_log
        .ok_or(CommandError::NoProvisioningLog)?;
    Ok(crate::telemetry::provisioning::read_recent(&log, n)?.join("\n"))
}

/// The folder for the pid file and pingora's upgrade socket: the SQLite store's folder, or the
/// config file's with a PostgreSQL store.
fn run_dir(config: &Config, path: &Path) -> PathBuf {
    let beside = match &config.store {
        StoreSettings::Sqlite(file) => file.parent(),
        StoreSettings::Postgres(_) => path.parent(),
    };
    let dir = beside
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&dir).unwrap_or(dir)
}

/// The settings whose unset variable stops `run` at start rather than failing requests.
const STOPS_THE_START: &[&str] = &["guard.identity.jwt_secret_env", "scim.cursor_key_env"];

/// `scimgate check --config FILE`: validates and reports; `Ok` only when valid. A valid file
/// whose secrets are missing from this environment (an environment variable it names is unset
/// or empty) is still valid, but each such variable gets a warning at its position: `run` in
/// this environment would fail the first request that needs it, or refuse to start (a JWT
/// secret or the cursor key). JWT key files are loaded, and a file that cannot be used is an
/// error.
pub fn check(path: &Path) -> Result<String, CommandError> {
    let config = config::load(path)?;
    let mut notes = vec![format!("{}: ok", path.display())];
    for var in &config.env_vars {
        if std::env::var_os(&var.name).is_none_or(|v| v.is_empty()) {
            let effect = if STOPS_THE_START.contains(&var.setting.as_str()) {
                "`run` here would refuse to start"
            } else {
                "`run` here would fail every request that needs it"
            };
            notes.push(format!(
                "{}:{}:{}: warning: {} names {}, which is not set in this environment; {effect}",
                path.display(),
                var.line,
                var.column,
                var.setting,
                var.name
            ));
        }
    }
    if matches!(config.store, StoreSettings::Postgres(_)) && config.scim.cursor_key_env.is_none() {
        notes.push(format!(
            "{}: warning: [store] is shared PostgreSQL, a fleet, but scim.cursor_key_env is unset: \
             each instance signs cursors with its own random key, so a cursor paging client \
             sent to another instance gets 400 invalidCursor; give every instance one key",
            path.display()
        ));
    }
    // The secret variable is warned about above; key files must load now.
    if let Some(IdentitySource::Jwt { settings, .. }) = config.guard.as_ref().map(|g| &g.identity) {
        if !matches!(settings.key, JwtKey::SecretEnv(_)) {
            JwtVerifier::load(settings)?;
        }
    }
    let or_admins = match &config.team_admin {
        Some(t) => format!(", or its team admins enable SCIM at {}", t.path),
        None => String::new(),
    };
    for t in &config.tenants {
        if !config.keyring_has_tenant(&t.name) {
            notes.push(format!(
                "note: tenant {:?} has no SCIM key in the config (scimgate token new --tenant {}{or_admins})",
                t.name, t.name
            ));
        }
    }
    if !config.brake.any() {
        notes.push(
            "note: no [deprovision_brake]: a mass deactivation or delete from the identity \
             provider reaches the backend unchecked (see README, \"A brake on mass deprovisioning\")"
                .into(),
        );
    }
    Ok(notes.join("\n"))
}

/// `scimgate token new --tenant NAME`: a new key, shown once, and the line to paste.
pub fn token_new(tenant: &str) -> String {
    let key = auth::generate_key();
    format!(
        "New SCIM API key for tenant {tenant:?} (shown once; paste it into Entra's Secret Token field):\n\n  {key}\n\n\
         Add this line to the [[tenants]] entry named {tenant:?} (keys = [ ... ]), then reload:\n\n  {}\n",
        auth::key_entry(&key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `conf/demo.toml` with JWT identity and a tenant credential; its secrets named by
    /// variables no test sets.
    fn config_naming_unset_secrets() -> String {
        DEMO_CONFIG
            .replace(DEMO_SERVICE_TOKEN_ENV, "SCIMGATE_TEST_UNSET_BACKEND_TOKEN")
            .replace(
                "backend = \"acme\"\n",
                "backend = \"acme\"\n[tenants.auth]\ntype = \"basic\"\nuser_env = \"SCIMGATE_TEST_UNSET_TENANT_USER\"\npassword_env = \"SCIMGATE_TEST_UNSET_TENANT_PASSWORD\"\n",
            )
            .replace(
                "source = \"whoami\"\nwhoami = { method = \"GET\", path = \"/api/me\" }\nid_field = \"id\"\ntenant_field = \"team\"\nrole_field = \"role\"\ncache_seconds = 30\n",
                "source = \"jwt\"\njwt_secret_env = \"SCIMGATE_TEST_UNSET_JWT_SECRET\"\ntenant_claim = \"team\"\nrole_claim = \"role\"\n",
            )
    }

    /// Every secret the config names and this environment lacks gets a warning at the
    /// variable's position; the file stays valid.
    #[test]
    fn check_warns_about_each_unset_secret_where_it_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("gw.toml");
        let text = config_naming_unset_secrets();
        for var in [
            "SCIMGATE_TEST_UNSET_JWT_SECRET",
            "SCIMGATE_TEST_UNSET_TENANT_USER",
        ] {
            assert!(text.contains(var), "conf/demo.toml changed shape: no {var}");
        }
        std::fs::write(&path, &text).expect("write config");
        let report = check(&path).expect("still a valid config");
        let at = |var: &str| {
            let line = text.lines().position(|l| l.contains(var)).expect("named") + 1;
            let column = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.find(var))
                .expect("named");
            format!("{}:{line}:{}: warning:", path.display(), column)
        };
        for (var, setting) in [
            (
                "SCIMGATE_TEST_UNSET_BACKEND_TOKEN",
                "backend.auth.token_env",
            ),
            ("SCIMGATE_TEST_UNSET_TENANT_USER", "tenants.auth.user_env"),
            (
                "SCIMGATE_TEST_UNSET_TENANT_PASSWORD",
                "tenants.auth.password_env",
            ),
            (
                "SCIMGATE_TEST_UNSET_JWT_SECRET",
                "guard.identity.jwt_secret_env",
            ),
        ] {
            let line = report
                .lines()
                .find(|l| l.contains(var))
                .unwrap_or_else(|| panic!("no warning about {var}:\n{report}"));
            assert!(line.starts_with(&at(var)), "{line}");
            assert!(line.contains(setting), "{line}");
        }
        std::env::set_var("SCIMGATE_TEST_SET_JWT_SECRET", "s3cret");
        let set = text.replace(
            "SCIMGATE_TEST_UNSET_JWT_SECRET",
            "SCIMGATE_TEST_SET_JWT_SECRET",
        );
        std::fs::write(&path, set).expect("write config");
        let report = check(&path).expect("valid");
        assert!(!report.contains("JWT_SECRET"), "{report}");
    }

    #[test]
    fn an_empty_secret_variable_name_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("gw.toml");
        let text = config_naming_unset_secrets().replace("SCIMGATE_TEST_UNSET_JWT_SECRET", "");
        std::fs::write(&path, text).expect("write config");
        let err = check(&path).expect_err("invalid").to_string();
        assert!(
            err.contains("jwt_secret_env must name an environment variable"),
            "{err}"
        );
    }

    /// A fleet's store (PostgreSQL) without a shared cursor key is warned about; with one, or
    /// with a SQLite store (one instance), it is not.
    #[test]
    fn check_warns_about_a_fleet_without_a_cursor_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("gw.toml");
        let pg = DEMO_CONFIG.replace(
            "[store]\npath = \"scimgate.sqlite\"\n",
            "[store]\nurl = \"postgres://gw@db/scimgate\"\n",
        );
        assert_ne!(pg, DEMO_CONFIG, "conf/demo.toml changed shape");
        let keyed = pg.replace(
            "[scim]\n",
            "[scim]\ncursor_key_env = \"SCIMGATE_TEST_CURSOR_KEY\"\n",
        );
        assert_ne!(keyed, pg, "conf/demo.toml changed shape");
        for (text, warned) in [
            (&pg, true),
            (&keyed, false),
            (&DEMO_CONFIG.to_string(), false),
        ] {
            std::fs::write(&path, text).expect("write config");
            let report = check(&path).expect("valid");
            assert_eq!(
                report.contains("scim.cursor_key_env is unset"),
                warned,
                "{report}"
            );
        }
    }
}
