//! The HTTPS certificate: loaded from PEM files and served through a resolver that a reload can
//! swap atomically, so a renewed certificate is picked up without a restart. TLS 1.2 and 1.3
//! only (pingora's rustls acceptor offers nothing older).

use arc_swap::ArcSwap;
use pingora::listeners::tls::TlsSettings;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{load_certs_and_key_files, ClientHello, CryptoProvider, ResolvesServerCert};
use std::path::Path;
use std::sync::Arc;

/// Why the HTTPS certificate or key cannot be served (files named as configured).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The certificate or key file cannot be read.
    #[error("cannot read the certificate {cert} or key {key}: {detail}")]
    Unreadable {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// Why.
        detail: String,
    },
    /// No certificate or no private key in the files.
    #[error("{cert} holds no certificate or {key} no private key")]
    Missing {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
    },
    /// No rustls crypto provider is installed.
    #[error("no TLS crypto provider installed")]
    NoProvider,
    /// The private key cannot be used for signing.
    #[error("unusable private key {key}: {detail}")]
    KeyUnusable {
        /// The key file.
        key: String,
        /// Why.
        detail: String,
    },
    /// The key does not belong to the certificate.
    #[error("the key {key} does not match the certificate {cert}: {detail}")]
    Mismatch {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// Why.
        detail: String,
    },
    /// pingora refused the listener settings.
    #[error("TLS settings: {0}")]
    Settings(String),
}

/// The current certificate and key.
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
}

impl CertStore {
    /// Loads the certificate chain and key.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertStore>, TlsError> {
        Ok(Arc::new(CertStore {
            current: ArcSwap::from_pointee(certified_key(cert, key)?),
        }))
    }

    /// Replaces the certificate (new handshakes use it; open connections keep theirs).
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        self.current.store(Arc::new(certified_key(cert, key)?));
        Ok(())
    }

    /// Listener settings serving this store's certificate, with HTTP/2 offered by ALPN if asked.
    pub fn listener_settings(
        self: &Arc<Self>,
        cert: &Path,
        key: &Path,
        http2: bool,
    ) -> Result<TlsSettings, TlsError> {
        let mut settings =
            TlsSettings::intermediate(&cert.display().to_string(), &key.display().to_string())
                .map_err(|e| TlsError::Settings(e.to_string()))?;
        settings.set_cert_resolver(self.clone());
        if http2 {
            settings.enable_h2();
        }
        Ok(settings)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    pingora::tls::install_default_crypto_provider();
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let (chain, private) = load_certs_and_key_files(&c, &k)
        .map_err(|e| TlsError::Unreadable {
            cert: c.clone(),
            key: k.clone(),
            detail: e.to_string(),
        })?
        .ok_or_else(|| TlsError::Missing {
            cert: c.clone(),
            key: k.clone(),
        })?;
    let provider = CryptoProvider::get_default().ok_or(TlsError::NoProvider)?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| TlsError::KeyUnusable {
            key: k.clone(),
            detail: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| TlsError::Mismatch {
        cert: c.clone(),
        key: k.clone(),
        detail: e.to_string(),
    })?;
    Ok(certified)
}
