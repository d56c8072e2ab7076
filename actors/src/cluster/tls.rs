//! Mutual TLS between nodes (rustls 0.23 with the aws-lc-rs provider, as ractor_cluster
//! 0.16 builds it). Every node presents its certificate and accepts a peer only when the
//! peer's certificate chains to one of the `ca` certificates. A client also checks that the
//! server's certificate names the host it connected to.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::crypto::{aws_lc_rs, CryptoProvider};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::config::TlsFiles;

/// The server and client sides of the TLS settings of one node.
#[derive(Clone)]
pub struct TlsSetup {
    /// Accepts incoming connections, requiring a client certificate.
    pub acceptor: TlsAcceptor,
    /// Opens outgoing connections with this node's certificate.
    pub connector: TlsConnector,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsSetup")
    }
}

impl TlsSetup {
    /// Reads the PEM files and builds both sides. The error names the file and the fault.
    pub fn load(files: &TlsFiles) -> Result<TlsSetup, String> {
        let certs = load_certificates(&files.cert)?;
        let key = load_private_key(&files.key)?;
        let roots = Arc::new(load_roots(&files.ca)?);
        let provider = Arc::new(aws_lc_rs::default_provider());
        let server = server_config(&provider, roots.clone(), certs.clone(), key.clone_key(), &files.cert)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("cannot set up TLS: {error}"))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|error| format!("invalid TLS certificate or key {}: {error}", files.cert.display()))?;
        Ok(TlsSetup { acceptor: TlsAcceptor::from(Arc::new(server)), connector: TlsConnector::from(Arc::new(client)) })
    }
}

fn server_config(
    provider: &Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
) -> Result<ServerConfig, String> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|error| format!("cannot verify client certificates: {error}"))?;
    ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("cannot set up TLS: {error}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|error| format!("invalid TLS certificate or key {}: {error}", cert_path.display()))
}

/// Reads every certificate of a PEM file. Fails when the file cannot be read or contains none.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let unreadable = |error: &dyn std::fmt::Display| format!("cannot read certificates from {}: {error}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|error| unreadable(&error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unreadable(&error))?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate (BEGIN CERTIFICATE) in {}", path.display()));
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| format!("cannot read a private key from {}: {error}", path.display()))
}

fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in load_certificates(path)? {
        roots.add(cert).map_err(|error| format!("invalid CA certificate in {}: {error}", path.display()))?;
    }
    Ok(roots)
}

/// Returns the TLS server name of `HOST:PORT` (a DNS name or an IP address), which the
/// peer's certificate must contain.
pub fn server_name(address: &str) -> Result<ServerName<'static>, String> {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|error| format!("invalid TLS server name {host:?} in {address}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_addresses() {
        assert_eq!(server_name("127.0.0.1:7470").unwrap(), ServerName::try_from("127.0.0.1").unwrap());
        assert_eq!(server_name("[::1]:7470").unwrap(), ServerName::try_from("::1").unwrap());
        assert_eq!(server_name("node-1.example:7470").unwrap(), ServerName::try_from("node-1.example").unwrap());
        assert!(server_name("bad name:1").is_err());
    }

    #[test]
    fn generated_files_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let node_key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let node = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&node_key, &issuer).unwrap();
        let files = TlsFiles { cert: dir.path().join("node.pem"), key: dir.path().join("node.key"), ca: dir.path().join("ca.pem") };
        std::fs::write(&files.cert, node.pem()).unwrap();
        std::fs::write(&files.key, node_key.serialize_pem()).unwrap();
        std::fs::write(&files.ca, ca.pem()).unwrap();
        TlsSetup::load(&files).expect("valid files");
    }

    #[test]
    fn missing_and_empty_files_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let message = load_certificates(&missing).unwrap_err();
        assert!(message.starts_with(&format!("cannot read certificates from {}: ", missing.display())), "{message}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem\n").unwrap();
        assert_eq!(load_certificates(&empty).unwrap_err(), format!("no PEM certificate (BEGIN CERTIFICATE) in {}", empty.display()));
        let message = load_private_key(&empty).unwrap_err();
        assert!(message.starts_with(&format!("cannot read a private key from {}: ", empty.display())), "{message}");
    }
}
