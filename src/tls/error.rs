//! Errors of the TLS layer.
//!
//! Certificates are the part of a deployment that operators change most often and under time
//! pressure (renewals), so every message names the setting it concerns (`tls.cert`,
//! `tls.key`, the upstream CA bundle) and the file path, and says what was expected. The
//! messages never contain key material: PEM errors only ever quote a section header line.

use std::path::PathBuf;

/// Name of the setting that holds the server certificate chain, used in messages.
pub const CERT_SETTING: &str = "tls.cert";
/// Name of the setting that holds the server private key, used in messages.
pub const KEY_SETTING: &str = "tls.key";
/// Label of the optional CA bundle for `https://` upstreams, used in messages.
pub const UPSTREAM_CA_SETTING: &str = "upstream CA bundle";

/// Everything that can go wrong while loading certificates or building TLS configurations.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The configured file does not exist.
    #[error("{setting}: file not found: {}", path.display())]
    NotFound {
        /// Setting the path came from.
        setting: &'static str,
        /// The missing file.
        path: PathBuf,
    },

    /// The file exists but cannot be read (permissions, a directory, I/O error).
    #[error("{setting}: cannot read {}: {source}", path.display())]
    Read {
        /// Setting the path came from.
        setting: &'static str,
        /// The unreadable file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The file is implausibly large for PEM material (guards against `/dev/zero` and the like).
    #[error("{setting}: {} is larger than {limit} bytes; is it really a PEM file?", path.display())]
    TooLarge {
        /// Setting the path came from.
        setting: &'static str,
        /// The oversized file.
        path: PathBuf,
        /// The size limit in bytes.
        limit: u64,
    },

    /// The file contains a malformed PEM section.
    #[error("{setting}: invalid PEM in {}: {detail}", path.display())]
    BadPem {
        /// Setting the path came from.
        setting: &'static str,
        /// The file with the malformed section.
        path: PathBuf,
        /// What the PEM parser reported (never key material).
        detail: String,
    },

    /// The file contains no `CERTIFICATE` section at all.
    #[error(
        "{setting}: no certificate found in {} (expected one or more \"-----BEGIN CERTIFICATE-----\" sections)",
        path.display()
    )]
    NoCertificates {
        /// Setting the path came from.
        setting: &'static str,
        /// The file without certificates.
        path: PathBuf,
    },

    /// The key file contains no private key section.
    #[error(
        "tls.key: no private key found in {} (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" section)",
        path.display()
    )]
    NoPrivateKey {
        /// The key file.
        path: PathBuf,
    },

    /// The private key was found but the crypto provider cannot use it.
    #[error("tls.key: unsupported or invalid private key in {}: {source}", path.display())]
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
        /// Why the provider rejected it.
        source: rustls::Error,
    },

    /// A certificate in the file is not valid X.509.
    #[error("{setting}: invalid certificate in {}: {detail}", path.display())]
    InvalidCertificate {
        /// Setting the path came from.
        setting: &'static str,
        /// The file with the bad certificate.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },

    /// The private key does not belong to the first certificate of the chain.
    #[error(
        "certificate and key do not match: the key in {} is not the key of the first certificate in {}{hint}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Extra advice, empty or starting with "; ".
        hint: &'static str,
    },

    /// No trusted root certificate could be loaded for upstream connections.
    #[error(
        "no trusted root certificates for https:// upstreams: the system store is empty or unreadable ({detail}); configure an upstream CA bundle"
    )]
    NoSystemRoots {
        /// Errors reported while reading the system store, if any.
        detail: String,
    },

    /// rustls rejected a configuration value.
    #[error("TLS configuration rejected: {0}")]
    Config(#[source] rustls::Error),

    /// Creating a development certificate failed.
    #[error("development certificate: {0}")]
    DevCert(String),

    /// Writing a development certificate file failed.
    #[error("development certificate: cannot write {}: {source}", path.display())]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}
