//! The credential the gateway presents on its own backend calls: a fixed header (a token, or
//! HTTP Basic) or an OAuth 2.0 access token, per tenant where a tenant has its own. A call the
//! backend refuses with `401` under an OAuth token is repeated once with a new token. Secrets
//! are read from the environment when the gateway starts or reloads; no `Debug` output, log
//! line or error message carries them.

use super::client::{CallError, Client, Request, Response};
use super::oauth::{ClientCredentialsError, OAuthClient, TokenRequest};
use super::peer::UpstreamPeer;
use crate::backend::settings::{
    BackendAuth, BackendSettings, ClientAuth, HeaderAuth, OAuthSettings,
};
use base64::Engine;
use http::{HeaderName, HeaderValue};
use std::collections::HashMap;
use std::sync::Arc;

/// Why a configured credential cannot be built (the message never holds a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// A secret's environment variable is not set.
    #[error("environment variable {var} ({table}) is not set")]
    EnvUnset {
        /// The variable.
        var: String,
        /// The table that names it (`backend.auth`, `tenant "x"'s auth`).
        table: String,
    },
    /// HTTP Basic credentials that cannot go in a header.
    #[error("{user_env} or {password_env} cannot go in a header")]
    BasicNotHeader {
        /// The user name's variable.
        user_env: String,
        /// The password's variable.
        password_env: String,
    },
    /// A fixed header's secret that cannot go in a header (names its variable).
    #[error("{0} holds characters not allowed in a header")]
    TokenNotHeader(String),
    /// OAuth client credentials that cannot go in a Basic header.
    #[error(transparent)]
    ClientCredentials(#[from] ClientCredentialsError),
}

/// Every tenant's credential: the tenant's own, else the default (`[backend.auth]`).
#[derive(Debug, Default)]
pub struct Credentials {
    default: Option<Credential>,
    tenants: HashMap<String, Credential>,
}

impl Credentials {
    /// Builds the credentials of `[backend.auth]` and every `[tenants.auth]`, reading their
    /// secrets from the environment; `max_calls` bounds each token endpoint's calls.
    pub fn from_config(
        b: &BackendSettings,
        max_calls: usize,
    ) -> Result<Credentials, CredentialError> {
        let build = |a: &BackendAuth, table: &str| Credential::build(a, table, b, max_calls);
        let default = b
            .auth
            .as_ref()
            .map(|a| build(a, "backend.auth"))
            .transpose()?;
        let mut tenants = HashMap::new();
        for (name, a) in &b.tenant_auth {
            tenants.insert(name.clone(), build(a, &format!("tenant {name:?}'s auth"))?);
        }
        Ok(Credentials { default, tenants })
    }

    /// The credential of tenant `name`, if any.
    pub fn of(&self, name: &str) -> Option<&Credential> {
        self.tenants.get(name).or(self.default.as_ref())
    }
}

/// One credential.
pub enum Credential {
    /// A header with a fixed value.
    Fixed(HeaderName, HeaderValue),
    /// `Authorization: Bearer` with an OAuth access token.
    OAuth(Arc<OAuthClient>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Fixed(name, _) => write!(f, "Fixed({name}: <redacted>)"),
            Credential::OAuth(o) => write!(f, "OAuth({o:?})"),
        }
    }
}

impl Credential {
    fn build(
        a: &BackendAuth,
        table: &str,
        b: &BackendSettings,
        max_calls: usize,
    ) -> Result<Credential, CredentialError> {
        match a {
            BackendAuth::Header(h) => fixed_header(h, table),
            BackendAuth::Basic {
                user_env,
                password_env,
            } => {
                let pair = format!("{}:{}", env(user_env, table)?, env(password_env, table)?);
                let value = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                );
                let value = sensitive(&value).ok_or_else(|| CredentialError::BasicNotHeader {
                    user_env: user_env.clone(),
                    password_env: password_env.clone(),
                })?;
                Ok(Credential::Fixed(http::header::AUTHORIZATION, value))
            }
            BackendAuth::OAuth(o) => oauth(o, table, b, max_calls),
        }
    }

    /// Sends `req` with this credential; an OAuth token the backend refuses (`401`) is
    /// replaced once and the call repeated once.
    pub async fn send(&self, client: &Client, mut req: Request) -> Result<Response, CallError> {
        match self {
            Credential::Fixed(name, value) => {
                req.headers.push((name.clone(), value.clone()));
                client.send(&req).await
            }
            Credential::OAuth(o) => {
                let token = o.token().await?;
                let at = req.headers.len();
                req.headers
                    .push((http::header::AUTHORIZATION, token.header.clone()));
                let resp = client.send(&req).await?;
                if resp.status != 401 {
                    return Ok(resp);
                }
                tracing::info!(
                    generation = token.generation,
                    "the backend refused the access token; getting a new one"
                );
                let fresh = o.replace(token.generation).await?;
                req.headers[at].1 = fresh.header.clone();
                client.send(&req).await
            }
        }
    }
}

/// Sends `req` with `credential`, or bare when there is none.
pub async fn send(
    credential: Option<&Credential>,
    client: &Client,
    req: Request,
) -> Result<Response, CallError> {
    match credential {
        // Boxed: the SCIM request's future is already deeply nested (rustc's layout limit).
        Some(c) => Box::pin(c.send(client, req)).await,
        None => client.send(&req).await,
    }
}

fn fixed_header(h: &HeaderAuth, table: &str) -> Result<Credential, CredentialError> {
    let secret = env(&h.token_env, table)?;
    let value = match &h.scheme {
        Some(s) => format!("{s} {secret}"),
        None => secret,
    };
    let value =
        sensitive(&value).ok_or_else(|| CredentialError::TokenNotHeader(h.token_env.clone()))?;
    Ok(Credential::Fixed(h.header.clone(), value))
}

fn oauth(
    o: &OAuthSettings,
    table: &str,
    b: &BackendSettings,
    max_calls: usize,
) -> Result<Credential, CredentialError> {
    let secret = env(&o.client_secret_env, table)?;
    let request = TokenRequest::new(
        &o.path,
        &o.client_id,
        &secret,
        o.scope.as_deref(),
        o.audience.as_deref(),
        o.client_auth == ClientAuth::Body,
    )?;
    let peer = UpstreamPeer::new(o.address, o.resolve.clone(), o.tls.clone());
    let client = Client::new(
        Arc::new(peer),
        &o.host,
        b.connect_timeout,
        b.read_timeout,
        max_calls,
    );
    Ok(Credential::OAuth(Arc::new(OAuthClient::new(
        client, request,
    ))))
}

fn env(var: &str, table: &str) -> Result<String, CredentialError> {
    std::env::var(var).map_err(|_| CredentialError::EnvUnset {
        var: var.to_string(),
        table: table.to_string(),
    })
}

fn sensitive(text: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(text).ok()?;
    v.set_sensitive(true);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_fixed_secrets() {
        let c = Credential::Fixed(
            http::header::AUTHORIZATION,
            sensitive("Basic c2VjcmV0").unwrap(),
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("authorization"), "{shown}");
    }
}
