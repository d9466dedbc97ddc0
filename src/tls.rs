//! The HTTPS certificate: loaded from PEM files and served through a resolver that a reload can
//! swap atomically, so a renewed certificate is picked up without a restart. TLS 1.2 and 1.3
//! only (pingora's rustls acceptor offers nothing older).

use arc_swap::ArcSwap;
use pingora::listeners::tls::TlsSettings;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{load_certs_and_key_files, ClientHello, CryptoProvider, ResolvesServerCert};
use std::path::Path;
use std::sync::Arc;

/// The current certificate and key.
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
}

impl CertStore {
    /// Loads the certificate chain and key.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertStore>, String> {
        Ok(Arc::new(CertStore {
            current: ArcSwap::from_pointee(certified_key(cert, key)?),
        }))
    }

    /// Replaces the certificate (new handshakes use it; open connections keep theirs).
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), String> {
        self.current.store(Arc::new(certified_key(cert, key)?));
        Ok(())
    }

    /// Listener settings serving this store's certificate, with HTTP/2 offered by ALPN if asked.
    pub fn listener_settings(
        self: &Arc<Self>,
        cert: &Path,
        key: &Path,
        http2: bool,
    ) -> Result<TlsSettings, String> {
        let mut settings =
            TlsSettings::intermediate(&cert.display().to_string(), &key.display().to_string())
                .map_err(|e| format!("TLS settings: {e}"))?;
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

fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    pingora::tls::install_default_crypto_provider();
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let (chain, private) = load_certs_and_key_files(&c, &k)
        .map_err(|e| format!("cannot read the certificate {c} or key {k}: {e}"))?
        .ok_or_else(|| format!("{c} holds no certificate or {k} no private key"))?;
    let provider = CryptoProvider::get_default().ok_or("no TLS crypto provider installed")?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| format!("unusable private key {k}: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| format!("the key {k} does not match the certificate {c}: {e}"))?;
    Ok(certified)
}
