//! Reads the server certificate chain and private key from PEM files and checks that they
//! form a usable pair.
//!
//! Why a module of its own: both the first start and every hot reload go through exactly the
//! same checks, and a renewal that goes wrong (a truncated copy, the key of the previous
//! certificate, the chain pasted in the wrong order) must be reported precisely and must never
//! replace a working certificate. The checks, in order:
//!
//! ```text
//! read files (size-capped) ──► PEM sections ──► every certificate parses as X.509
//!        │                          │                       │
//!   NotFound / Read /        BadPem / NoCertificates /  InvalidCertificate
//!   TooLarge                 NoPrivateKey
//!                                                           ▼
//!                 provider loads key ──► key matches FIRST certificate ──► CertifiedKey
//!                         │                         │
//!                  UnsupportedKey          KeyMismatch (+ hint when the key belongs to a
//!                                                     later certificate: wrong order)
//! ```
//!
//! Files are read once into memory and parsed from there (`PemObject::pem_slice_iter`), so the
//! content hash the watcher compares is the hash of exactly what was loaded. Key bytes live in
//! `Zeroizing` buffers and are wiped when dropped.

use std::io::Read;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use super::error::{CERT_SETTING, KEY_SETTING, TlsError};

/// Upper bound for a PEM file. Real chains are a few KiB; this stops a misconfigured path
/// such as `/dev/zero` from exhausting memory.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Where the server certificate chain and its private key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// PEM file with the server certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM file with the private key of the first certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// SHA-256 over the certificate file and the key file, identifying what was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentHash([u8; 32]);

/// The raw bytes of one certificate/key pair as read from disk.
pub(crate) struct PemPair {
    cert: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
}

impl PemPair {
    /// Reads both files (each at most [`MAX_PEM_BYTES`]).
    pub(crate) fn read(paths: &CertPaths) -> Result<Self, TlsError> {
        Ok(Self {
            cert: read_capped(CERT_SETTING, &paths.cert)?,
            key: Zeroizing::new(read_capped(KEY_SETTING, &paths.key)?),
        })
    }

    /// Hash of both files; equal hashes mean nothing changed on disk.
    pub(crate) fn content_hash(&self) -> ContentHash {
        let mut ctx = digest::Context::new(&digest::SHA256);
        // Length prefixes keep (cert, key) pairs from colliding when bytes move between files.
        for part in [self.cert.as_slice(), self.key.as_slice()] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        for (dst, src) in out.iter_mut().zip(ctx.finish().as_ref()) {
            *dst = *src;
        }
        ContentHash(out)
    }

    /// Parses and validates the pair into a key rustls can serve.
    pub(crate) fn certified_key(
        &self,
        paths: &CertPaths,
        provider: &CryptoProvider,
    ) -> Result<CertifiedKey, TlsError> {
        let chain = parse_certificates(CERT_SETTING, &paths.cert, &self.cert)?;
        let key = parse_private_key(&paths.key, &self.key)?;
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|source| TlsError::UnsupportedKey {
                path: paths.key.clone(),
                source,
            })?;
        let key_spki = signing_key.public_key().map(|spki| spki.to_vec());
        let position = key_spki.as_deref().and_then(|spki| {
            chain.iter().position(|cert| {
                ParsedCertificate::try_from(cert)
                    .is_ok_and(|parsed| parsed.subject_public_key_info().as_ref() == spki)
            })
        });
        match position {
            Some(0) => Ok(CertifiedKey::new(chain, signing_key)),
            found => Err(TlsError::KeyMismatch {
                cert: paths.cert.clone(),
                key: paths.key.clone(),
                hint: match found {
                    Some(_) => {
                        "; the key belongs to a later certificate in the file: put the server certificate first, then the intermediates"
                    }
                    None if key_spki.is_none() => "; the key type cannot be compared",
                    None => "; was the key of the previous certificate left in place?",
                },
            }),
        }
    }
}

/// Reads, validates and returns the certificate chain and key at `paths`.
pub fn load_certified_key(
    paths: &CertPaths,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    PemPair::read(paths)?.certified_key(paths, provider)
}

/// Reads every certificate from a PEM file (a chain or a CA bundle); at least one is required.
pub fn load_certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_capped(setting, path)?;
    parse_certificates(setting, path, &bytes)
}

/// Reads a whole file, refusing anything larger than [`MAX_PEM_BYTES`].
fn read_capped(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let io_error = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => TlsError::NotFound {
            setting,
            path: path.to_path_buf(),
        },
        _ => TlsError::Read {
            setting,
            path: path.to_path_buf(),
            source,
        },
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            setting,
            path: path.to_path_buf(),
            limit: MAX_PEM_BYTES,
        });
    }
    Ok(bytes)
}

fn parse_certificates(
    setting: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| bad_pem(setting, path, &err))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificates {
            setting,
            path: path.to_path_buf(),
        });
    }
    for (index, cert) in chain.iter().enumerate() {
        ParsedCertificate::try_from(cert).map_err(|err| TlsError::InvalidCertificate {
            setting,
            path: path.to_path_buf(),
            detail: format!("certificate #{} is not valid X.509: {err}", index + 1),
        })?;
    }
    Ok(chain)
}

fn parse_private_key(path: &Path, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|err| match err {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        other => bad_pem(KEY_SETTING, path, &other),
    })
}

fn bad_pem(setting: &'static str, path: &Path, err: &pem::Error) -> TlsError {
    TlsError::BadPem {
        setting,
        path: path.to_path_buf(),
        // The PEM error quotes at most a header line, never the base64 body.
        detail: err.to_string(),
    }
}

/// Whether the key file can be read by users other than its owner and group (Unix only).
/// Group read is accepted: a Kubernetes `fsGroup` mounts secrets group-readable, and a
/// service group is how hosts share a key with the service user.
#[cfg(unix)]
pub(crate) fn key_readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o007 != 0)
}

/// Whether the key file can be read by users other than its owner and group (Unix only).
#[cfg(not(unix))]
pub(crate) fn key_readable_by_others(_path: &Path) -> bool {
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::tls::devcert;
    use crate::tls::test_support::{now, provider, write_pair};

    fn paths_in(dir: &Path) -> CertPaths {
        CertPaths {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }

    #[test]
    fn loads_a_good_pair_with_its_chain() {
        let dir = tempfile::tempdir().unwrap();
        let dev = devcert::generate(&[], now()).unwrap();
        let paths = write_pair(dir.path(), &dev.cert_chain_pem, &dev.key_pem);
        let key = load_certified_key(&paths, &provider()).unwrap();
        assert_eq!(key.cert.len(), 2, "leaf and CA");
        let ca = CertificateDer::from_pem_slice(dev.ca_pem.as_bytes()).unwrap();
        assert_eq!(key.cert.get(1), Some(&ca));
    }

    #[test]
    fn missing_files_name_the_setting_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert!(matches!(
            err,
            TlsError::NotFound {
                setting: "tls.cert",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            format!("tls.cert: file not found: {}", paths.cert.display())
        );

        let dev = devcert::generate(&[], now()).unwrap();
        std::fs::write(&paths.cert, &dev.cert_chain_pem).unwrap();
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("tls.key: file not found: {}", paths.key.display())
        );
    }

    #[test]
    fn empty_files_are_reported_as_missing_content() {
        let dir = tempfile::tempdir().unwrap();
        let dev = devcert::generate(&[], now()).unwrap();
        let paths = write_pair(dir.path(), "", &dev.key_pem);
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert!(matches!(
            err,
            TlsError::NoCertificates {
                setting: "tls.cert",
                ..
            }
        ));
        assert!(
            err.to_string()
                .starts_with("tls.cert: no certificate found in ")
        );

        let paths = write_pair(dir.path(), &dev.cert_chain_pem, "");
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey { .. }));
        assert!(err.to_string().starts_with(&format!(
            "tls.key: no private key found in {}",
            paths.key.display()
        )));
    }

    #[test]
    fn garbage_pem_is_rejected_with_the_right_error() {
        let dir = tempfile::tempdir().unwrap();
        let dev = devcert::generate(&[], now()).unwrap();

        // Text without any PEM section.
        let paths = write_pair(dir.path(), "not a certificate\n", &dev.key_pem);
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificates { .. }), "{err}");

        // A section whose body is not base64.
        let broken = "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n";
        let paths = write_pair(dir.path(), broken, &dev.key_pem);
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::BadPem {
                    setting: "tls.cert",
                    ..
                }
            ),
            "{err}"
        );

        // A section that never ends.
        let paths = write_pair(
            dir.path(),
            "-----BEGIN CERTIFICATE-----\nAAAA\n",
            &dev.key_pem,
        );
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert!(matches!(err, TlsError::BadPem { .. }), "{err}");

        // Valid base64 that is not X.509.
        let not_x509 = "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n";
        let paths = write_pair(dir.path(), not_x509, &dev.key_pem);
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert!(matches!(err, TlsError::InvalidCertificate { .. }), "{err}");
        assert!(err.to_string().contains("certificate #1"), "{err}");

        // A key section with garbage inside.
        let bad_key = "-----BEGIN PRIVATE KEY-----\nAAECAwQF\n-----END PRIVATE KEY-----\n";
        let paths = write_pair(dir.path(), &dev.cert_chain_pem, bad_key);
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert!(matches!(err, TlsError::UnsupportedKey { .. }), "{err}");
    }

    #[test]
    fn key_of_another_certificate_is_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let first = devcert::generate(&[], now()).unwrap();
        let second = devcert::generate(&[], now()).unwrap();
        let paths = write_pair(dir.path(), &first.cert_chain_pem, &second.key_pem);
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }));
        assert!(
            err.to_string()
                .starts_with("certificate and key do not match"),
            "{err}"
        );
        assert!(err.to_string().contains("previous certificate"), "{err}");
    }

    #[test]
    fn chain_in_the_wrong_order_gets_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let dev = devcert::generate(&[], now()).unwrap();
        let leaf_only = dev.cert_chain_pem.replace(dev.ca_pem.as_str(), "");
        let reversed = format!("{}{}", dev.ca_pem, leaf_only);
        let paths = write_pair(dir.path(), &reversed, &dev.key_pem);
        let err = load_certified_key(&paths, &provider()).unwrap_err();
        assert!(
            err.to_string().contains("put the server certificate first"),
            "{err}"
        );
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.pem");
        std::fs::write(&path, vec![b'A'; (MAX_PEM_BYTES + 1) as usize]).unwrap();
        let err = load_certificates("tls.cert", &path).unwrap_err();
        assert!(matches!(err, TlsError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn content_hash_changes_with_either_file() {
        let dir = tempfile::tempdir().unwrap();
        let dev = devcert::generate(&[], now()).unwrap();
        let paths = write_pair(dir.path(), &dev.cert_chain_pem, &dev.key_pem);
        let before = PemPair::read(&paths).unwrap().content_hash();
        assert_eq!(before, PemPair::read(&paths).unwrap().content_hash());
        std::fs::write(&paths.key, format!("{}\n", dev.key_pem.as_str())).unwrap();
        assert_ne!(before, PemPair::read(&paths).unwrap().content_hash());
    }
}
