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

/// Why a CA bundle or client certificate cannot be used (files named as configured).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamTlsError {
    /// The CA bundle cannot be read or is not PEM.
    #[error("cannot read the CA bundle {file}: {detail}")]
    CaUnreadable {
        /// The bundle.
        file: String,
        /// Why.
        detail: String,
    },
    /// The CA bundle holds no certificate.
    #[error("the CA bundle {0} holds no certificate")]
    CaEmpty(String),
    /// A certificate of the bundle is no usable trust anchor.
    #[error("the CA bundle {file} holds an unusable certificate: {detail}")]
    CaUnusable {
        /// The bundle.
        file: String,
        /// Why.
        detail: String,
    },
    /// A certificate pingora's parser would not read.
    #[error("{file} holds a certificate that cannot be parsed: {detail}")]
    Unparsable {
        /// The file.
        file: String,
        /// Why.
        detail: String,
    },
    /// The client certificate or key cannot be read.
    #[error("cannot read the client certificate {cert} or key {key}: {detail}")]
    ClientUnreadable {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// Why.
        detail: String,
    },
    /// No certificate or no private key in the files.
    #[error("{cert} holds no certificate or {key} no private key")]
    ClientMissing {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
    },
    /// The client key cannot be used.
    #[error("unusable client key {key}: {detail}")]
    ClientKeyUnusable {
        /// The key file.
        key: String,
        /// Why.
        detail: String,
    },
    /// The client key does not belong to the certificate.
    #[error("the client key {key} does not fit the certificate {cert}: {detail}")]
    ClientMismatch {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// Why.
        detail: String,
    },
}

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
    ) -> Result<UpstreamTls, UpstreamTlsError> {
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
fn load_ca(path: &Path) -> Result<Vec<Vec<u8>>, UpstreamTlsError> {
    let file = path.display().to_string();
    let unreadable = |e: std::io::Error| UpstreamTlsError::CaUnreadable {
        file: file.clone(),
        detail: e.to_string(),
    };
    let text = std::fs::read(path).map_err(unreadable)?;
    let certs = rustls_pemfile::certs(&mut text.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(UpstreamTlsError::CaEmpty(file));
    }
    let mut store = RootCertStore::empty();
    for cert in &certs {
        store
            .add(cert.clone())
            .map_err(|e| UpstreamTlsError::CaUnusable {
                file: file.clone(),
                detail: e.to_string(),
            })?;
    }
    let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_vec()).collect();
    parsable(&ders, &file)?;
    Ok(ders)
}

/// pingora parses each certificate again with x509-parser and panics on one it cannot read:
/// refuse such a file here instead.
fn parsable(ders: &[Vec<u8>], file: &str) -> Result<(), UpstreamTlsError> {
    for der in ders {
        x509_parser::parse_x509_certificate(der).map_err(|e| UpstreamTlsError::Unparsable {
            file: file.to_string(),
            detail: e.to_string(),
        })?;
    }
    Ok(())
}

/// The client certificate chain (DER, leaf first) and private key (DER), checked to match.
fn load_client(cert: &Path, key: &Path) -> Result<(Vec<Vec<u8>>, Vec<u8>), UpstreamTlsError> {
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let (chain, private) = load_certs_and_key_files(&c, &k)
        .map_err(|e| UpstreamTlsError::ClientUnreadable {
            cert: c.clone(),
            key: k.clone(),
            detail: e.to_string(),
        })?
        .ok_or_else(|| UpstreamTlsError::ClientMissing {
            cert: c.clone(),
            key: k.clone(),
        })?;
    let der = private.secret_der().to_vec();
    PrivateKeyDer::try_from(der.clone()).map_err(|e| UpstreamTlsError::ClientKeyUnusable {
        key: k.clone(),
        detail: e.to_string(),
    })?;
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(chain.clone(), private)
        .map_err(|e| UpstreamTlsError::ClientMismatch {
            cert: c.clone(),
            key: k.clone(),
            detail: e.to_string(),
        })?;
    let ders: Vec<Vec<u8>> = chain.iter().map(|c| c.to_vec()).collect();
    parsable(&ders, &c)?;
    Ok((ders, der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_ca_bundle_and_makes_verified_https_peers() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.cert.pem()).unwrap();
        let tls = UpstreamTls::load("api.test", Some(&path), None).unwrap();
        let mut peer = HttpPeer::new("127.0.0.1:1", false, String::new());
        tls.apply(&mut peer);
        assert!(peer.is_tls());
        assert_eq!(peer.sni, "api.test");
        assert!(peer.options.verify_cert && peer.options.verify_hostname);
        assert_eq!(peer.options.ca.as_ref().map(|c| c.len()), Some(1));
        assert!(format!("{tls:?}").contains("ca.pem"));
        let again = UpstreamTls::load("api.test", Some(&path), None).unwrap();
        assert_eq!(tls.fingerprint, again.fingerprint, "same files, same pool");
        let other = rcgen::generate_simple_self_signed(vec!["ca2.test".into()]).unwrap();
        std::fs::write(&path, other.cert.pem()).unwrap();
        let renewed = UpstreamTls::load("api.test", Some(&path), None).unwrap();
        assert_ne!(tls.fingerprint, renewed.fingerprint, "new CA, new pool");
    }

    #[test]
    fn refuses_unusable_files_instead_of_panicking_later() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(matches!(
            UpstreamTls::load("h", Some(&garbage), None),
            Err(UpstreamTlsError::CaUnusable { .. } | UpstreamTlsError::Unparsable { .. })
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = UpstreamTls::load("h", Some(&empty), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the CA bundle {} holds no certificate", empty.display())
        );
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            UpstreamTls::load("h", Some(&missing), None),
            Err(UpstreamTlsError::CaUnreadable { .. })
        ));
        let a = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b.test".into()]).unwrap();
        let (cert, key) = (dir.path().join("a.pem"), dir.path().join("b.key"));
        std::fs::write(&cert, a.cert.pem()).unwrap();
        std::fs::write(&key, b.signing_key.serialize_pem()).unwrap();
        let err = UpstreamTls::load("h", None, Some((&cert, &key))).unwrap_err();
        assert!(
            matches!(err, UpstreamTlsError::ClientMismatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("does not fit"), "{err}");
    }
}
