//! Trust roots: the built-in Mozilla roots (webpki-roots) plus an optional
//! `caFile` PEM bundle, for both the rustls probe and the ureq agent.
//!
//! webpki-roots ships trust anchors (subject + key), not certificates, while
//! ureq only accepts root certificates. [`anchor_as_cert_der`] re-wraps an
//! anchor into a minimal unsigned certificate carrying exactly the fields a
//! trust anchor is read from (subject, public key, name constraints); the
//! signature and validity of a root are never checked, so this is lossless.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, TrustAnchor};
use rustls::{ClientConfig, RootCertStore};

/// Reads every certificate from a PEM file.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| {
        format!("caFile {shown} cannot be read ({e}): fix the path or the file permissions")
    })?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        let cert = item.map_err(|e| {
            format!("caFile {shown} is not valid PEM ({e}): it must contain -----BEGIN CERTIFICATE----- blocks")
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(format!(
            "caFile {shown} holds no certificate: it must contain -----BEGIN CERTIFICATE----- blocks (PEM)"
        ));
    }
    Ok(certs)
}

/// Mozilla roots plus the certificates of `ca_file`.
pub fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for cert in load_ca_file(path)? {
            store.add(cert).map_err(|e| {
                format!(
                    "caFile {}: a certificate was rejected ({e}): it must be an X.509 CA certificate",
                    path.display()
                )
            })?;
        }
    }
    Ok(store)
}

/// A rustls client config (ring provider) trusting [`root_store`]. Without
/// a `caFile` every caller shares one config (and its root store), built on
/// first use.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    static MOZILLA_ONLY: std::sync::OnceLock<Arc<ClientConfig>> = std::sync::OnceLock::new();
    if ca_file.is_none() {
        if let Some(shared) = MOZILLA_ONLY.get() {
            return Ok(shared.clone());
        }
        let built = build_client_config(None)?;
        return Ok(MOZILLA_ONLY.get_or_init(|| built).clone());
    }
    build_client_config(ca_file)
}

fn build_client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let roots = root_store(ca_file)?;
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Mozilla roots plus `ca_file`, as ureq root certificates. Without a
/// `caFile`, ureq's own reference to the webpki-roots anchors: nothing is
/// copied per agent (a copy of every root as a certificate is about 100 KB
/// of heap for each agent that holds it).
pub fn ureq_root_certs(ca_file: Option<&Path>) -> Result<ureq::tls::RootCerts, String> {
    if ca_file.is_none() {
        return Ok(ureq::tls::RootCerts::WebPki);
    }
    let mut ders: Vec<Vec<u8>> = webpki_roots::TLS_SERVER_ROOTS
        .iter()
        .map(anchor_as_cert_der)
        .collect();
    if let Some(path) = ca_file {
        for cert in load_ca_file(path)? {
            ders.push(cert.as_ref().to_vec());
        }
    }
    let certs: Vec<ureq::tls::Certificate<'static>> = ders
        .iter()
        .map(|d| ureq::tls::Certificate::from_der(d).to_owned())
        .collect();
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// Wraps a trust anchor into a minimal v3 certificate (DER) from which
/// rustls/webpki extract the very same anchor.
pub fn anchor_as_cert_der(anchor: &TrustAnchor<'_>) -> Vec<u8> {
    const SEQ: u8 = 0x30;
    let empty_seq = der(SEQ, &[]);
    let mut tbs = Vec::new();
    tbs.extend(der(0xa0, &der(0x02, &[2]))); // version v3
    tbs.extend(der(0x02, &[1])); // serial
    tbs.extend(&empty_seq); // signature algorithm (unused for roots)
    tbs.extend(der(SEQ, anchor.subject.as_ref())); // issuer
    tbs.extend(&empty_seq); // validity (unused for roots)
    tbs.extend(der(SEQ, anchor.subject.as_ref()));
    tbs.extend(der(SEQ, anchor.subject_public_key_info.as_ref()));
    if let Some(nc) = &anchor.name_constraints {
        // id-ce-nameConstraints 2.5.29.30
        let mut ext = der(0x06, &[0x55, 0x1d, 0x1e]);
        ext.extend(der(0x04, &der(SEQ, nc.as_ref())));
        tbs.extend(der(0xa3, &der(SEQ, &der(SEQ, &ext))));
    }
    let mut cert = der(SEQ, &tbs);
    cert.extend(&empty_seq); // signature algorithm
    cert.extend(der(0x03, &[0])); // empty signature
    der(SEQ, &cert)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend([0x81, len as u8]);
    } else if len <= 0xffff {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend([0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mozilla_anchor_round_trips_through_a_synthetic_certificate() {
        let mut store = RootCertStore::empty();
        let ders: Vec<CertificateDer<'static>> = webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .map(|a| CertificateDer::from(anchor_as_cert_der(a)))
            .collect();
        let (added, ignored) = store.add_parsable_certificates(ders);
        assert_eq!(ignored, 0);
        assert_eq!(added, webpki_roots::TLS_SERVER_ROOTS.len());
        assert_eq!(store.roots, webpki_roots::TLS_SERVER_ROOTS.to_vec());
        assert!(webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .any(|a| a.name_constraints.is_some()));
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der(0x04, &[]), vec![0x04, 0]);
        assert_eq!(der(0x04, &[0; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(der(0x04, &[0; 0x100])[..4], [0x04, 0x82, 0x01, 0x00]);
    }

    #[test]
    fn missing_or_empty_ca_file_says_what_to_do() {
        match load_ca_file(Path::new("/nonexistent/pinch-ca.pem")) {
            Err(e) => assert!(e.contains("fix the path"), "{e}"),
            Ok(_) => panic!("loaded a missing file"),
        }
        let dir = std::env::temp_dir().join(format!("pinch-net-tls-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let empty = dir.join("empty.pem");
        if std::fs::write(&empty, b"not a pem\n").is_ok() {
            match load_ca_file(&empty) {
                Err(e) => assert!(e.contains("BEGIN CERTIFICATE"), "{e}"),
                Ok(_) => panic!("loaded garbage"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
