//! Validation of `[backend]`, `[backend.tls]`, `[backend.auth]` and `[tenants.auth]`: upstream
//! addresses (`HOST:PORT` or an `http(s)://` URL), TLS files, and credentials.

use super::validator::Validator;
use crate::backend::settings::{
    BackendAuth, BackendSettings, ClientAuth, HeaderAuth, OAuthSettings,
};
use crate::backend::upstream_tls::UpstreamTls;
use crate::config::file::{BackendAuthFile, BackendFile, BackendTlsFile, TenantFile};
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// An upstream as written: `HOST:PORT`, or `http://` / `https://` `HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UpstreamText {
    /// `https://`.
    pub tls: bool,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    /// Port (the scheme's default when not written).
    pub port: u16,
    /// `HOST[:PORT]` as written, for the Host header.
    pub authority: String,
    /// Path and query (`""` when none).
    pub path: String,
}

/// Parses an upstream address; `HOST:PORT` without a scheme is plain HTTP.
pub(super) fn parse_upstream(text: &str) -> Result<UpstreamText, String> {
    let (tls, rest, default_port) = if let Some(r) = text.strip_prefix("https://") {
        (true, r, Some(443))
    } else if let Some(r) = text.strip_prefix("http://") {
        (false, r, Some(80))
    } else if text.contains("://") {
        return Err("only http:// and https:// are supported".into());
    } else {
        (false, text, None)
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed '[' in the address")?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || authority.contains(['@', ' ']) {
        return Err("no usable host".into());
    }
    let port = match (port, default_port) {
        (Some(p), _) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
        (None, Some(d)) => d,
        (None, None) => return Err("a port is required (HOST:PORT)".into()),
    };
    Ok(UpstreamText {
        tls,
        host: host.to_string(),
        port,
        authority: authority.to_string(),
        path: path.to_string(),
    })
}

/// Where a parsed upstream is: its first address, and the name to re-resolve (none for an IP).
fn resolve(u: &UpstreamText) -> Result<(SocketAddr, Option<(String, u16)>), String> {
    if let Ok(ip) = IpAddr::from_str(&u.host) {
        return Ok((SocketAddr::new(ip, u.port), None));
    }
    let first = (u.host.as_str(), u.port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("it resolves to no address")?;
    Ok((first, Some((u.host.clone(), u.port))))
}

/// The keys of `keys` that are set.
fn unused<'a>(keys: &[(&'a str, bool)]) -> Vec<&'a str> {
    keys.iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| *k)
        .collect()
}

impl Validator<'_> {
    pub(super) fn backend(&mut self, b: &BackendFile, dir: &Path) -> Option<BackendSettings> {
        let text = b.address.get_ref();
        let parsed = match parse_upstream(text) {
            Ok(u) if !u.path.is_empty() && u.path != "/" => {
                self.at(&b.address, "backend.address takes no path".into());
                None
            }
            Ok(u) => Some(u),
            Err(e) => {
                self.at(&b.address, format!("backend.address {text:?}: {e}"));
                None
            }
        }?;
        let located = match resolve(&parsed) {
            Ok(a) => Some(a),
            Err(e) => {
                self.at(
                    &b.address,
                    format!("backend.address {text:?} does not resolve: {e}"),
                );
                None
            }
        };
        let tls = match (&b.tls, parsed.tls) {
            (Some(_), false) => {
                self.at(
                    &b.address,
                    "[backend.tls] needs an https:// backend.address".into(),
                );
                None
            }
            (t, true) => self.backend_tls(t.as_ref(), &parsed.host, dir),
            (None, false) => None,
        };
        let auth = b
            .auth
            .as_ref()
            .and_then(|a| self.auth(a, "backend.auth", dir));
        let (address, resolve) = located?;
        Some(BackendSettings {
            address,
            resolve,
            tls,
            host: b.host.clone().unwrap_or(parsed.authority),
            connect_timeout: Duration::from_millis(b.connect_timeout_ms.unwrap_or(2_000)),
            read_timeout: Duration::from_millis(b.read_timeout_ms.unwrap_or(10_000)),
            auth,
            tenant_auth: BTreeMap::new(),
        })
    }

    /// `[backend.tls]` (all defaults when absent), loaded now so `check` catches bad files.
    fn backend_tls(
        &mut self,
        t: Option<&BackendTlsFile>,
        host: &str,
        dir: &Path,
    ) -> Option<UpstreamTls> {
        let named = t.and_then(|t| t.server_name.as_ref());
        if let Some(n) = named.filter(|n| n.get_ref().trim().is_empty()) {
            // An empty name would turn certificate verification off in pingora.
            self.at(n, "backend.tls.server_name must not be empty".into());
            return None;
        }
        let server_name = named.map_or(host, |s| s.get_ref().as_str());
        let ca = t.and_then(|t| t.ca_file.as_ref());
        let client = match t.map(|t| (&t.client_cert, &t.client_key)) {
            Some((Some(c), Some(k))) => Some((c, k)),
            Some((Some(only), None)) | Some((None, Some(only))) => {
                self.at(
                    only,
                    "backend.tls needs both client_cert and client_key".into(),
                );
                return None;
            }
            _ => None,
        };
        self.tls_files(server_name, ca, client, dir)
    }

    fn tls_files(
        &mut self,
        server_name: &str,
        ca: Option<&Spanned<String>>,
        client: Option<(&Spanned<String>, &Spanned<String>)>,
        dir: &Path,
    ) -> Option<UpstreamTls> {
        let ca_path = ca.map(|c| dir.join(c.get_ref()));
        let client_paths = client.map(|(c, k)| (dir.join(c.get_ref()), dir.join(k.get_ref())));
        let loaded = UpstreamTls::load(
            server_name,
            ca_path.as_deref(),
            client_paths
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path())),
        );
        match loaded {
            Ok(t) => Some(t),
            Err(e) => {
                let at = ca.or(client.map(|(c, _)| c));
                match at {
                    Some(s) => self.at(s, e.to_string()),
                    None => self.report(0, e.to_string()),
                }
                None
            }
        }
    }

    /// `[[tenants]]` entries with their own `[tenants.auth]`.
    pub(super) fn tenant_auth(
        &mut self,
        tenants: &[TenantFile],
        dir: &Path,
    ) -> BTreeMap<String, BackendAuth> {
        let mut out = BTreeMap::new();
        for t in tenants {
            if let Some(a) = &t.auth {
                if let Some(auth) = self.auth(a, "tenants.auth", dir) {
                    out.insert(t.name.get_ref().clone(), auth);
                }
            }
        }
        out
    }

    /// One credential table; `table` names it in messages.
    fn auth(
        &mut self,
        a: &Spanned<BackendAuthFile>,
        table: &str,
        dir: &Path,
    ) -> Option<BackendAuth> {
        let kind = a.get_ref().kind.as_ref();
        let f = a.get_ref();
        let header_keys = [
            ("header", f.header.is_some()),
            ("scheme", f.scheme.is_some()),
            ("token_env", f.token_env.is_some()),
        ];
        let basic_keys = [
            ("user_env", f.user_env.is_some()),
            ("password_env", f.password_env.is_some()),
        ];
        let oauth_keys = [
            ("token_url", f.token_url.is_some()),
            ("client_id", f.client_id.is_some()),
            ("client_secret_env", f.client_secret_env.is_some()),
            ("scope", f.scope.is_some()),
            ("audience", f.audience.is_some()),
            ("client_auth", f.client_auth.is_some()),
            ("ca_file", f.ca_file.is_some()),
        ];
        let kind_text = kind.map_or("header", |k| k.get_ref().as_str());
        let foreign: Vec<&str> = match kind_text {
            "header" => [unused(&basic_keys), unused(&oauth_keys)].concat(),
            "basic" => [unused(&header_keys), unused(&oauth_keys)].concat(),
            "oauth2" => [unused(&header_keys), unused(&basic_keys)].concat(),
            other => {
                let msg = format!(
                    "{table}.type {other:?} is not one of \"header\", \"basic\", \"oauth2\""
                );
                match kind {
                    Some(k) => self.at(k, msg),
                    None => self.at(a, msg),
                }
                return None;
            }
        };
        if !foreign.is_empty() {
            self.at(
                a,
                format!(
                    "{table} of type {kind_text:?} does not take {}",
                    foreign.join(", ")
                ),
            );
            return None;
        }
        match kind_text {
            "basic" => Some(BackendAuth::Basic {
                user_env: self.env_name(a, f.user_env.as_ref(), table, "user_env")?,
                password_env: self.env_name(a, f.password_env.as_ref(), table, "password_env")?,
            }),
            "oauth2" => self
                .oauth(a, table, dir)
                .map(|o| BackendAuth::OAuth(Box::new(o))),
            _ => self.header_auth(a, table).map(BackendAuth::Header),
        }
    }

    fn header_auth(&mut self, a: &Spanned<BackendAuthFile>, table: &str) -> Option<HeaderAuth> {
        let f = a.get_ref();
        let header = match &f.header {
            Some(h) => match http::HeaderName::from_str(h.get_ref()) {
                Ok(n) => n,
                Err(_) => {
                    self.at(h, format!("{:?} is not a valid header name", h.get_ref()));
                    return None;
                }
            },
            None => http::header::AUTHORIZATION,
        };
        Some(HeaderAuth {
            header,
            scheme: f.scheme.clone(),
            token_env: self.env_name(a, f.token_env.as_ref(), table, "token_env")?,
        })
    }

    fn oauth(
        &mut self,
        a: &Spanned<BackendAuthFile>,
        table: &str,
        dir: &Path,
    ) -> Option<OAuthSettings> {
        let f = a.get_ref();
        let secret = self.env_name(a, f.client_secret_env.as_ref(), table, "client_secret_env");
        let client_id = match &f.client_id {
            Some(c) if !c.get_ref().is_empty() => Some(c.get_ref().clone()),
            Some(c) => {
                self.at(c, format!("{table}.client_id must not be empty"));
                None
            }
            None => {
                self.at(a, format!("{table} of type \"oauth2\" needs client_id"));
                None
            }
        };
        let client_auth = match f.client_auth.as_ref().map(|c| (c, c.get_ref().as_str())) {
            None | Some((_, "basic")) => Some(ClientAuth::Basic),
            Some((_, "body")) => Some(ClientAuth::Body),
            Some((c, other)) => {
                self.at(
                    c,
                    format!("{table}.client_auth {other:?} is not \"basic\" or \"body\""),
                );
                None
            }
        };
        let Some(url) = &f.token_url else {
            self.at(a, format!("{table} of type \"oauth2\" needs token_url"));
            return None;
        };
        let parsed = match parse_upstream(url.get_ref()) {
            Ok(u) if url.get_ref().contains("://") => u,
            Ok(_) => {
                self.at(url, format!("{table}.token_url must be an https:// URL"));
                return None;
            }
            Err(e) => {
                self.at(url, format!("{table}.token_url {:?}: {e}", url.get_ref()));
                return None;
            }
        };
        let (address, resolve) = match resolve(&parsed) {
            Ok(a) => a,
            Err(e) => {
                self.at(url, format!("{table}.token_url does not resolve: {e}"));
                return None;
            }
        };
        let tls = if parsed.tls {
            Some(self.tls_files(&parsed.host, f.ca_file.as_ref(), None, dir)?)
        } else {
            if let Some(c) = &f.ca_file {
                self.at(c, format!("{table}.ca_file needs an https:// token_url"));
            }
            None
        };
        Some(OAuthSettings {
            address,
            resolve,
            tls,
            host: parsed.authority,
            path: if parsed.path.is_empty() {
                "/".into()
            } else {
                parsed.path
            },
            client_id: client_id?,
            client_secret_env: secret?,
            scope: f.scope.clone(),
            audience: f.audience.clone(),
            client_auth: client_auth?,
        })
    }

    /// A required, non-empty environment variable name.
    fn env_name(
        &mut self,
        table_at: &Spanned<BackendAuthFile>,
        v: Option<&Spanned<String>>,
        table: &str,
        key: &str,
    ) -> Option<String> {
        match v {
            Some(v) => self.env_var(v, format!("{table}.{key}")),
            None => {
                self.at(table_at, format!("{table} needs {key}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_forms() {
        let u = parse_upstream("10.0.0.5:8080").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "10.0.0.5", 8080));
        let u = parse_upstream("https://api.example.com").unwrap();
        assert_eq!(
            (u.tls, u.port, u.authority.as_str()),
            (true, 443, "api.example.com")
        );
        let u = parse_upstream("https://[::1]:8443/oauth/token?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8443));
        assert_eq!(u.path, "/oauth/token?x=1");
        assert_eq!(parse_upstream("http://h").unwrap().port, 80);
        assert!(parse_upstream("localhost").is_err());
        assert!(parse_upstream("ftp://h:1").is_err());
        assert!(parse_upstream("https://u@h:1").is_err());
        assert!(parse_upstream("https://h:99999").is_err());
    }

    #[test]
    fn ip_addresses_are_not_re_resolved_and_names_are() {
        let ip = parse_upstream("127.0.0.1:9").unwrap();
        assert_eq!(
            resolve(&ip).unwrap(),
            ("127.0.0.1:9".parse().unwrap(), None)
        );
        let name = parse_upstream("https://localhost:9").unwrap();
        let (_, again) = resolve(&name).unwrap();
        assert_eq!(again, Some(("localhost".to_string(), 9)));
    }

    const DEMO: &str = include_str!("../../../conf/demo.toml");
    const DEMO_AUTH: &str = "[backend.auth]\nheader = \"Authorization\"\nscheme = \"Bearer\"\ntoken_env = \"SCIMGATE_DEMO_SERVICE_TOKEN\"\n";

    fn with_auth(auth: &str) -> String {
        assert!(DEMO.contains(DEMO_AUTH));
        DEMO.replacen(DEMO_AUTH, auth, 1)
    }

    fn problems(text: &str) -> Vec<String> {
        match crate::config::from_str(text, Path::new("t.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .into_iter()
                .map(|p| format!("{}: {}", p.line, p.message))
                .collect(),
        }
    }

    #[test]
    fn reads_every_kind_of_credential_and_tenant_credentials() {
        let text = with_auth(
            "[backend.auth]\ntype = \"oauth2\"\ntoken_url = \"http://127.0.0.1:9/oauth/token\"\n\
             client_id = \"gw\"\nclient_secret_env = \"S\"\nscope = \"a b\"\nclient_auth = \"body\"\n",
        )
        .replacen(
            "backend = \"acme\"",
            "backend = \"acme\"\n[tenants.auth]\ntype = \"basic\"\nuser_env = \"U\"\npassword_env = \"P\"",
            1,
        );
        let c = crate::config::from_str(&text, Path::new("t.toml")).unwrap();
        let Some(BackendAuth::OAuth(o)) = &c.backend.auth else {
            panic!("{:?}", c.backend.auth)
        };
        assert_eq!(o.path, "/oauth/token");
        assert_eq!(o.host, "127.0.0.1:9");
        assert_eq!(o.client_auth, ClientAuth::Body);
        assert!(o.tls.is_none() && o.resolve.is_none());
        assert!(matches!(
            c.backend.tenant_auth.get("acme"),
            Some(BackendAuth::Basic { user_env, .. }) if user_env == "U"
        ));
    }

    #[test]
    fn credential_mistakes_are_reported_with_their_line() {
        let line_of =
            |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let text = with_auth("[backend.auth]\ntype = \"kerberos\"\n");
        let p = problems(&text);
        assert_eq!(p, vec![format!("{}: backend.auth.type \"kerberos\" is not one of \"header\", \"basic\", \"oauth2\"", line_of(&text, "kerberos"))]);
        let text =
            with_auth("[backend.auth]\ntype = \"basic\"\nuser_env = \"U\"\ntoken_env = \"T\"\n");
        let p = problems(&text);
        assert!(p[0].contains("does not take token_env"), "{p:?}");
        let text = with_auth(
            "[backend.auth]\ntype = \"oauth2\"\nclient_id = \"x\"\nclient_secret_env = \"S\"\n",
        );
        assert!(problems(&text)[0].contains("needs token_url"));
        let text = with_auth("[backend.auth]\ntype = \"oauth2\"\ntoken_url = \"127.0.0.1:9\"\nclient_id = \"x\"\nclient_secret_env = \"S\"\n");
        let p = problems(&text);
        assert_eq!(
            p,
            vec![format!(
                "{}: backend.auth.token_url must be an https:// URL",
                line_of(&text, "token_url")
            )]
        );
        let text = with_auth("[backend.auth]\ntoken_env = \"\"\n");
        assert!(problems(&text)[0].contains("must name an environment variable"));
    }
}
