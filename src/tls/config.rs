//! The rustls configurations: the server side that browsers connect to, and the client side
//! the gateway uses towards `https://` upstreams.
//!
//! Why these choices:
//! - Protocol versions are TLS 1.3 and TLS 1.2 only; rustls cannot speak older versions, and
//!   [`PROTOCOL_VERSIONS`] makes the choice explicit instead of inheriting a default.
//! - Cipher suites come from an allow-list of AEAD suites ([`AEAD_SUITES`]): all TLS 1.3 suites,
//!   and for TLS 1.2 only ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 (forward
//!   secrecy, no CBC). The aws-lc-rs provider is used explicitly and filtered through the list,
//!   so a future provider release that adds a weaker suite does not enable it silently.
//! - ALPN offers `h2` then `http/1.1`; the connection layer serves both.
//! - Session resumption (stateless tickets from a rotating [`Ticketer`], plus a bounded
//!   server-side session cache) saves a full handshake for returning browsers.
//! - 0-RTT early data stays off: it is replayable, and a replayed login or code submission
//!   must be impossible.
//! - The certificate comes from a resolver, so it can be replaced without rebuilding the
//!   configuration (see `reload`).

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs::{self, Ticketer};
use rustls::server::{ResolvesServerCert, ServerSessionMemoryCache};
use rustls::version::{TLS12, TLS13};
use rustls::{CipherSuite, ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::error::{TlsError, UPSTREAM_CA_SETTING};
use super::load::load_certificates;

/// The only protocol versions offered, newest first.
pub static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] = &[&TLS13, &TLS12];

/// The cipher suites allowed, in server preference order: AEAD only, TLS 1.2 only with ECDHE.
pub static AEAD_SUITES: &[CipherSuite] = &[
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// ALPN protocols offered to browsers, in preference order.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Number of TLS 1.2 sessions (and TLS 1.3 stateful resumptions) kept in memory.
pub const SESSION_CACHE_ENTRIES: usize = 4096;

/// Installs aws-lc-rs as the process-wide rustls provider, for code that builds configs with
/// `ClientConfig::builder()` (HTTP clients in tests, libraries). Idempotent: a provider that
/// is already installed is kept.
pub fn install_crypto_provider() {
    // `Err` only means a provider is installed already, which is the desired state.
    let _already_installed = aws_lc_rs::default_provider().install_default();
}

/// The aws-lc-rs provider restricted to [`AEAD_SUITES`], in that order.
pub fn aead_provider() -> CryptoProvider {
    let mut provider = aws_lc_rs::default_provider();
    let offered = std::mem::take(&mut provider.cipher_suites);
    provider.cipher_suites = AEAD_SUITES
        .iter()
        .filter_map(|wanted| offered.iter().find(|s| s.suite() == *wanted).copied())
        .collect();
    provider
}

/// Builds the server configuration around a certificate resolver (usually a
/// [`ReloadingCert`](super::ReloadingCert)).
pub fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(aead_provider()))
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    config.ignore_client_order = true;
    config.max_early_data_size = 0;
    config.ticketer = Ticketer::new().map_err(TlsError::Config)?;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    Ok(Arc::new(config))
}

/// Builds the client configuration for `https://` upstreams.
///
/// With `custom_ca`, only the certificates in that PEM bundle are trusted (typical for an
/// internal VMS behind a private CA). Without it, the operating system's trust store is used.
/// No ALPN is set: the HTTPS connector decides which protocols to offer.
pub fn upstream_client_config(custom_ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let roots = match custom_ca {
        Some(path) => custom_roots(path)?,
        None => system_roots()?,
    };
    Ok(
        ClientConfig::builder_with_provider(Arc::new(aead_provider()))
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .map_err(TlsError::Config)?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn custom_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (index, cert) in load_certificates(UPSTREAM_CA_SETTING, path)?
        .into_iter()
        .enumerate()
    {
        roots
            .add(cert)
            .map_err(|err| TlsError::InvalidCertificate {
                setting: UPSTREAM_CA_SETTING,
                path: path.to_path_buf(),
                detail: format!("certificate #{} cannot be a trust anchor: {err}", index + 1),
            })?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    let problems = found
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if added == 0 {
        return Err(TlsError::NoSystemRoots {
            detail: if problems.is_empty() {
                "no certificates found".to_string()
            } else {
                problems
            },
        });
    }
    if ignored > 0 || !problems.is_empty() {
        tracing::warn!(
            added,
            ignored,
            problems = %problems,
            "some system root certificates could not be used for upstream TLS"
        );
    }
    Ok(roots)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::tls::ReloadingCert;
    use crate::tls::devcert;
    use crate::tls::test_support::{
        client_config, connect, leaf_der, legacy_client_hello, now, raw_server_reply, write_pair,
    };
    use rustls::{HandshakeKind, PeerIncompatible, ProtocolVersion, SupportedCipherSuite};

    #[test]
    fn only_aead_suites_remain_and_both_versions_are_covered() {
        let provider = aead_provider();
        let suites: Vec<_> = provider.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(
            suites,
            AEAD_SUITES.to_vec(),
            "every allowed suite is provided"
        );
        let tls12 = provider
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .count();
        assert_eq!(tls12, 6);
        for suite in &suites {
            let name = format!("{suite:?}");
            assert!(
                name.contains("GCM") || name.contains("CHACHA20_POLY1305"),
                "{name}"
            );
            assert!(
                name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_"),
                "{name}"
            );
        }
    }

    #[test]
    fn protocol_versions_are_tls13_and_tls12_only() {
        let versions: Vec<ProtocolVersion> = PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
        assert_eq!(
            versions,
            vec![ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2]
        );
    }

    #[test]
    fn a_tls11_client_hello_is_refused_with_a_protocol_version_alert() {
        let dir = tempfile::tempdir().unwrap();
        let dev = devcert::generate(&[], now()).unwrap();
        let resolver =
            ReloadingCert::load(write_pair(dir.path(), &dev.cert_chain_pem, &dev.key_pem)).unwrap();
        let config = server_config(resolver).unwrap();

        let (result, reply) = raw_server_reply(Arc::clone(&config), &legacy_client_hello([3, 2]));
        assert_eq!(
            result,
            Err(rustls::Error::PeerIncompatible(
                PeerIncompatible::Tls12NotOffered
            ))
        );
        // Alert record, fatal (2), protocol_version (70).
        assert_eq!(reply.first(), Some(&21u8), "reply: {reply:02x?}");
        assert_eq!(reply.get(5..7), Some(&[2u8, 70][..]), "reply: {reply:02x?}");

        // Control: the very same hello claiming TLS 1.2 gets a ServerHello (handshake record),
        // so the refusal above is about the version and nothing else.
        let (result, reply) = raw_server_reply(config, &legacy_client_hello([3, 3]));
        assert_eq!(result, Ok(()));
        assert_eq!(reply.first(), Some(&22u8), "reply: {reply:02x?}");
    }

    #[tokio::test]
    async fn handshake_negotiates_h2_with_the_dev_ca() {
        let dir = tempfile::tempdir().unwrap();
        let dev = devcert::generate(&[], now()).unwrap();
        let resolver =
            ReloadingCert::load(write_pair(dir.path(), &dev.cert_chain_pem, &dev.key_pem)).unwrap();
        let config = server_config(resolver).unwrap();
        let client = client_config(&dev.ca_pem, &[&TLS13]);
        let conn = connect(&config, &client, "localhost").await.unwrap();
        let (_, session) = conn.client.get_ref();
        assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(session.protocol_version(), Some(ProtocolVersion::TLSv1_3));
        assert_eq!(
            session
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec()),
            Some(leaf_der(&dev))
        );
    }

    #[tokio::test]
    async fn tls12_handshake_uses_an_allowed_suite_and_ip_names_verify() {
        let dir = tempfile::tempdir().unwrap();
        let dev = devcert::generate(&[], now()).unwrap();
        let resolver =
            ReloadingCert::load(write_pair(dir.path(), &dev.cert_chain_pem, &dev.key_pem)).unwrap();
        let config = server_config(resolver).unwrap();
        let client = client_config(&dev.ca_pem, &[&TLS12]);
        for name in ["127.0.0.1", "::1"] {
            let conn = connect(&config, &client, name).await.unwrap();
            let (_, session) = conn.client.get_ref();
            assert_eq!(session.protocol_version(), Some(ProtocolVersion::TLSv1_2));
            let suite = session.negotiated_cipher_suite().unwrap().suite();
            assert!(AEAD_SUITES.contains(&suite), "{suite:?}");
        }
        let err = connect(&config, &client, "other.example")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
    }

    #[tokio::test]
    async fn returning_clients_resume_their_session() {
        let dir = tempfile::tempdir().unwrap();
        let dev = devcert::generate(&[], now()).unwrap();
        let resolver =
            ReloadingCert::load(write_pair(dir.path(), &dev.cert_chain_pem, &dev.key_pem)).unwrap();
        let config = server_config(resolver).unwrap();
        for version in [&TLS13, &TLS12] {
            let client = client_config(&dev.ca_pem, &[version]);
            let mut first = connect(&config, &client, "localhost").await.unwrap();
            // TLS 1.3 tickets arrive after the handshake; a round trip makes the client read them.
            first.round_trip(b"ping").await.unwrap();
            assert_eq!(
                first.client.get_ref().1.handshake_kind(),
                Some(HandshakeKind::Full)
            );
            let second = connect(&config, &client, "localhost").await.unwrap();
            assert_eq!(
                second.client.get_ref().1.handshake_kind(),
                Some(HandshakeKind::Resumed),
                "{:?}",
                version.version
            );
        }
    }

    #[tokio::test]
    async fn upstream_config_trusts_only_the_custom_ca() {
        let dir = tempfile::tempdir().unwrap();
        let dev = devcert::generate(&[], now()).unwrap();
        let other = devcert::generate(&[], now()).unwrap();
        let resolver =
            ReloadingCert::load(write_pair(dir.path(), &dev.cert_chain_pem, &dev.key_pem)).unwrap();
        let server = server_config(resolver).unwrap();

        let good_ca = dir.path().join("good-ca.pem");
        std::fs::write(&good_ca, &dev.ca_pem).unwrap();
        let trusted = Arc::new(upstream_client_config(Some(&good_ca)).unwrap());
        connect(&server, &trusted, "localhost").await.unwrap();

        let other_ca = dir.path().join("other-ca.pem");
        std::fs::write(&other_ca, &other.ca_pem).unwrap();
        let untrusted = Arc::new(upstream_client_config(Some(&other_ca)).unwrap());
        let err = connect(&server, &untrusted, "localhost").await.unwrap_err();
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    }

    #[test]
    fn upstream_ca_errors_name_the_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = upstream_client_config(Some(&missing)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("upstream CA bundle: file not found: {}", missing.display())
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = upstream_client_config(Some(&empty)).unwrap_err();
        assert!(matches!(
            err,
            TlsError::NoCertificates {
                setting: "upstream CA bundle",
                ..
            }
        ));
    }
}
