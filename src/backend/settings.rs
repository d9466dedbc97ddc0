//! `[backend]` as validated: where the backend is, how TLS reaches it, and the credential the
//! gateway presents on its own calls (secrets stay in the environment; only variable names are
//! kept here).

use super::upstream_tls::UpstreamTls;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// `[backend]`.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// Socket address resolved when the config was loaded.
    pub address: SocketAddr,
    /// Host name and port re-resolved as DNS changes; `None` when `address` is an IP address.
    pub resolve: Option<(String, u16)>,
    /// TLS to the backend (an `https://` address), if any.
    pub tls: Option<UpstreamTls>,
    /// `Host` header sent to the backend.
    pub host: String,
    /// TCP connect timeout (the TLS handshake included).
    pub connect_timeout: Duration,
    /// Read timeout per backend response.
    pub read_timeout: Duration,
    /// The service credential, if any.
    pub auth: Option<BackendAuth>,
    /// Tenants (by name) that present their own credential instead of `auth`.
    pub tenant_auth: BTreeMap<String, BackendAuth>,
}

/// A service credential the gateway presents on its own backend calls. Secrets stay in the
/// environment: only the variable names are kept here.
#[derive(Debug, Clone)]
pub enum BackendAuth {
    /// A fixed secret in a header.
    Header(HeaderAuth),
    /// HTTP Basic: user and password.
    Basic {
        /// Environment variable holding the user name.
        user_env: String,
        /// Environment variable holding the password.
        password_env: String,
    },
    /// OAuth 2.0 client credentials: a bearer token from a token endpoint.
    OAuth(Box<OAuthSettings>),
}

/// A fixed secret sent in a header: header name, optional scheme word, and the environment
/// variable that holds the secret.
#[derive(Debug, Clone)]
pub struct HeaderAuth {
    /// Header to send (`Authorization`).
    pub header: http::HeaderName,
    /// Scheme word put before the secret (`Bearer`), if any.
    pub scheme: Option<String>,
    /// Environment variable holding the secret.
    pub token_env: String,
}

/// OAuth 2.0 client credentials grant (RFC 6749 section 4.4).
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// The token endpoint's address, resolved like the backend's.
    pub address: SocketAddr,
    /// Host name and port re-resolved as DNS changes, for a host name.
    pub resolve: Option<(String, u16)>,
    /// TLS to the token endpoint (an `https://` URL).
    pub tls: Option<UpstreamTls>,
    /// `Host` header of the token request.
    pub host: String,
    /// Path and query of the token endpoint.
    pub path: String,
    /// The client id.
    pub client_id: String,
    /// Environment variable holding the client secret.
    pub client_secret_env: String,
    /// `scope` parameter, if any.
    pub scope: Option<String>,
    /// `audience` parameter, if any (Auth0 and others).
    pub audience: Option<String>,
    /// How the client authenticates to the token endpoint.
    pub client_auth: ClientAuth,
}

/// Where the client id and secret go in the token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic header (`client_secret_basic`).
    Basic,
    /// Form fields `client_id` and `client_secret` (`client_secret_post`).
    Body,
}
