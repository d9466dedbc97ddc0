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
    let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_vec()).collect();
    parsable(&ders, &shown.to_string())?;
    Ok(ders)
}

/// pingora parses each certificate again with x509-parser and panics on one it cannot read:
/// refuse such a file here instead.
fn parsable(ders: &[Vec<u8>], file: &str) -> Result<(), String> {
    for der in ders {
        x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("{file} holds a certificate that cannot be parsed: {e}"))?;
    }
    Ok(())
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
        assert!(UpstreamTls::load("h", Some(&garbage), None).is_err());
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = UpstreamTls::load("h", Some(&empty), None).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        let missing = dir.path().join("missing.pem");
        assert!(UpstreamTls::load("h", Some(&missing), None).is_err());
        let a = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b.test".into()]).unwrap();
        let (cert, key) = (dir.path().join("a.pem"), dir.path().join("b.key"));
        std::fs::write(&cert, a.cert.pem()).unwrap();
        std::fs::write(&key, b.signing_key.serialize_pem()).unwrap();
        let err = UpstreamTls::load("h", None, Some((&cert, &key))).unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
    }
}
