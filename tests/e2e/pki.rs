//! A throw-away certificate authority for the HTTPS-to-the-backend tests: a CA, server and client
//! certificates it signs, written as PEM files, and the client-certificate verifier of an mTLS backend.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A test CA.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

/// A certificate and its key as PEM files.
pub struct Leaf {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Ca {
    /// A new CA called `name`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes the CA certificate to `dir/<file>`; answers the path.
    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, &self.pem).expect("write CA");
        path
    }

    /// A server certificate for `names` (host names or IP addresses).
    pub fn server(&self, dir: &Path, stem: &str, names: &[&str]) -> Leaf {
        self.leaf(dir, stem, names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (for mTLS).
    pub fn client(&self, dir: &Path, stem: &str) -> Leaf {
        self.leaf(dir, stem, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, dir: &Path, stem: &str, names: &[&str], eku: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, stem);
        params.extended_key_usages = vec![eku];
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        let cert_file = dir.join(format!("{stem}.pem"));
        let key_file = dir.join(format!("{stem}.key"));
        std::fs::write(&cert_file, cert.pem()).expect("write cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        Leaf {
            cert_file,
            key_file,
        }
    }

    /// A verifier accepting client certificates this CA signed (for an mTLS backend).
    pub fn client_verifier(&self) -> Arc<dyn rustls::server::danger::ClientCertVerifier> {
        pingora::tls::install_default_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("client CA");
        rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .expect("client verifier")
    }
}
