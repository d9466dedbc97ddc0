//! The alt fixture config (`tests/fixtures/alt.toml`) with its `[backend]` part and its tenants
//! replaced, and a gateway started on it: for the tests of how the gateway reaches the backend
//! (TLS) and which credential it presents.

use super::harness::Gateway;
use scimgate::config::Config;
use scimgate::gateway::server;
use std::net::SocketAddr;
use std::time::Duration;

/// `tests/fixtures/alt.toml`: SCIM Groups as teams with their members on the team.
pub const ALT: &str = include_str!("../fixtures/alt.toml");
/// `tests/fixtures/alt-user-groups.toml`: the same with the members kept on the accounts.
pub const ALT_USER_GROUPS: &str = include_str!("../fixtures/alt-user-groups.toml");
/// Where a fixture's mapping parts start (users, then groups): all kept from here on.
const USERS_MARK: &str = "# ---- the alt backend's account API";

/// One tenant: its name, its backend name (the alt organisation), and extra TOML lines inside
/// its `[[tenants]]` entry (e.g. a `[tenants.auth]` table). Each gets a fresh SCIM key.
pub struct TenantSpec<'a> {
    pub name: &'a str,
    pub org: &'a str,
    pub extra: &'a str,
}

/// A tenant's SCIM key.
pub struct TenantKey {
    pub name: String,
    pub token: String,
}

/// The alt config text with `backend` as the whole `[backend]` part and `tenants`, listening
/// on `listen` with its store in `dir`; answers the text and each tenant's SCIM key.
pub fn alt_toml(
    backend: &str,
    tenants: &[TenantSpec<'_>],
    listen: SocketAddr,
    dir: &std::path::Path,
) -> (String, Vec<TenantKey>) {
    alt_toml_from(ALT, backend, tenants, listen, dir)
}

/// Like [`alt_toml`], from the text of another alt fixture (e.g. [`ALT_USER_GROUPS`]): its
/// users and groups parts are kept as they are.
pub fn alt_toml_from(
    fixture: &str,
    backend: &str,
    tenants: &[TenantSpec<'_>],
    listen: SocketAddr,
    dir: &std::path::Path,
) -> (String, Vec<TenantKey>) {
    let head = &fixture[..fixture.find("[backend]").expect("[backend] in the fixture")];
    let users = &fixture[fixture.find(USERS_MARK).expect("users part of the fixture")..];
    let mut keys = Vec::new();
    let mut text = head
        .replace(
            "listen = [\"127.0.0.1:18080\"]",
            &format!("listen = [\"{listen}\"]"),
        )
        .replace(
            "path = \"alt-scimgate.sqlite\"",
            &format!(
                "path = {:?}",
                dir.join("scimgate.sqlite").display().to_string()
            ),
        );
    text.push_str(backend);
    text.push('\n');
    for t in tenants {
        let token = scimgate::auth::generate_key();
        text.push_str(&format!(
            "\n[[tenants]]\nname = {:?}\nbackend = {:?}\nkeys = [{}]\n{}\n",
            t.name,
            t.org,
            scimgate::auth::key_entry(&token),
            t.extra
        ));
        keys.push(TenantKey {
            name: t.name.to_string(),
            token,
        });
    }
    text.push('\n');
    text.push_str(users);
    (text, keys)
}

/// Parses config text written for `dir` (panics with the problems when it is invalid).
pub fn parse(text: &str, dir: &std::path::Path) -> Config {
    scimgate::config::from_str(text, &dir.join("scimgate.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts a gateway on `config` (whose SCIM key is `token`) next to the services `add` puts on
/// the same pingora server, once everything in `wait` listens.
pub fn start(
    config: Config,
    token: &str,
    dir: tempfile::TempDir,
    add: impl FnOnce(&mut pingora::server::Server),
    wait: &[SocketAddr],
) -> Gateway {
    let conf = server::server_conf(config.server.threads, Duration::ZERO, dir.path());
    let mut srv = server::build(conf);
    add(&mut srv);
    Gateway::start(srv, config, token.to_string(), dir, wait)
}
