//! TLS toward an upstream (the backend, an OAuth token endpoint): the name its certificate must
//! carry (also sent as SNI), the CA bundle that must have signed it (the system roots when
//! none is configured) and the optional client certificate for mTLS, read from PEM files when
//! the config is loaded, so a reload picks up renewed files.

use pingora::tls::{load_certs_and_key_files, PrivateKeyDer};
use pingora::tls::{ClientConfig, RootCertStore};
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Verified TLS toward one upstream.
#[derive(Clone)]
pub struct UpstreamTls {
    server_name: String,
    ca: Option<Arc<[WrappedX509]>>,
    client: Option<Arc<CertKey>>,
    files: Vec<PathBuf>,
    fingerprint: u64,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("server_name", &self.server_name)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl UpstreamTls {
    /// Loads the CA bundle and the client certificate and key, when given; `server_name` is
    /// the name (or IP address) the upstream's certificate must be valid for.
    pub fn load(
        server_name: &str,
        ca_file: Option<&Path>,
        client: Option<(&Path, &Path)>,
    ) -> Result<UpstreamTls, String> {
        pingora::tls::install_default_crypto_provider();
        let mut hasher = DefaultHasher::new();
        let mut files = Vec::new();
        let ca = match ca_file {
            Some(path) => {
                files.push(path.to_path_buf());
                let certs = load_ca(path)?;
                certs.iter().for_each(|c| c.hash(&mut hasher));
                let wrapped: Vec<WrappedX509> = certs
                    .into_iter()
                    .map(|der| WrappedX509::new(der, parse_x509))
                    .collect();
                Some(Arc::from(wrapped))
            }
            None => None,
        };
        let client = match client {
            Some((cert, key)) => {
                files.extend([cert.to_path_buf(), key.to_path_buf()]);
                let pair = load_client(cert, key)?;
                pair.hash(&mut hasher);
                Some(Arc::new(CertKey::new(pair.0, pair.1)))
            }
            None => None,
        };
        Ok(UpstreamTls {
            server_name: server_name.to_string(),
            ca,
            client,
            files,
            fingerprint: hasher.finish(),
        })
    }

    /// The name the certificate is checked against (and sent as SNI when it is a host name).
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Turns `peer` into an HTTPS peer verifying the certificate against this configuration.
    /// Connections made under another CA or client certificate are never reused for it.
    pub fn apply(&self, peer: &mut HttpPeer) {
        peer.scheme = pingora::upstreams::peer::Scheme::HTTPS;
        peer.sni = self.server_name.clone();
        peer.options.verify_cert = true;
        peer.options.verify_hostname = true;
        peer.options.ca = self.ca.clone();
        peer.client_cert_key = self.client.clone();
        peer.group_key = self.fingerprint;
    }
}

/// Every certificate of a PEM bundle (DER), each checked to be a usable trust anchor.
fn load_ca(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let shown = path.display();
    let text =
        std::fs::read(path).map_err(|e| format!("cannot read the CA bundle {shown}: {e}"))?;
    let certs = rustls_pemfile::certs(&mut text.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read the CA bundle {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("the CA bundle {shown} holds no certificate"));
    }
    let mut store = RootCertStore::empty();
    for cert in &certs {
        store
            .add(cert.clone())
            .map_err(|e| format!("the CA bundle {shown} holds an unusable certificate: {e}"))?;
    }
    Ok(certs.iter().map(|c| c.to_vec()).collect())
}

/// The client certificate chain (DER, leaf first) and private key (DER), checked to match.
fn load_client(cert: &Path, key: &Path) -> Result<(Vec<Vec<u8>>, Vec<u8>), String> {
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let (chain, private) = load_certs_and_key_files(&c, &k)
        .map_err(|e| format!("cannot read the client certificate {c} or key {k}: {e}"))?
        .ok_or_else(|| format!("{c} holds no certificate or {k} no private key"))?;
    let der = private.secret_der().to_vec();
    PrivateKeyDer::try_from(der.clone()).map_err(|e| format!("unusable client key {k}: {e}"))?;
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(chain.clone(), private)
        .map_err(|e| format!("the client key {k} does not fit the certificate {c}: {e}"))?;
    Ok((chain.iter().map(|c| c.to_vec()).collect(), der))
}
