//! The listener's STARTTLS certificate, loaded from the PEM files an operator configures
//! (for example the ones certbot writes: `fullchain.pem` and `privkey.pem`).

use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error(
        "the SMTP TLS certificate file holds no certificate: expected PEM starting with \
         -----BEGIN CERTIFICATE-----"
    )]
    NoCertificate,
    #[error("the SMTP TLS certificate file is not valid PEM: {0}")]
    CertificatePem(pem::Error),
    #[error("the SMTP TLS key file holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {0}")]
    PrivateKey(pem::Error),
    #[error("the SMTP TLS certificate and key cannot be used together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A server TLS configuration for [`super::SmtpConfig::tls`] from a PEM certificate chain
/// (leaf first) and its PEM private key.
pub fn tls_config_from_pem(
    certificate_chain_pem: &[u8],
    private_key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let chain = CertificateDer::pem_slice_iter(certificate_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsConfigError::CertificatePem)?;
    if chain.is_empty() {
        return Err(TlsConfigError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(private_key_pem).map_err(TlsConfigError::PrivateKey)?;
    // The one crypto backend the project uses, named explicitly so that no process-wide
    // default has to be installed first.
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_wrong_with_the_files() {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("rcgen generates a certificate");
        let cert = generated.cert.pem();
        let key = generated.signing_key.serialize_pem();
        let other_key = rcgen::KeyPair::generate()
            .expect("rcgen generates a key")
            .serialize_pem();

        assert!(tls_config_from_pem(cert.as_bytes(), key.as_bytes()).is_ok());
        assert!(matches!(
            tls_config_from_pem(b"", key.as_bytes()),
            Err(TlsConfigError::NoCertificate)
        ));
        assert!(matches!(
            tls_config_from_pem(cert.as_bytes(), cert.as_bytes()),
            Err(TlsConfigError::PrivateKey(_))
        ));
        assert!(matches!(
            tls_config_from_pem(cert.as_bytes(), other_key.as_bytes()),
            Err(TlsConfigError::Rustls(_))
        ));
    }
}
