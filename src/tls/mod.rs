//! TLS for the gateway: terminating browser connections, renewing the certificate without a
//! restart, trusting `https://` upstreams, and development certificates.
//!
//! The gateway is the only TLS endpoint between browsers and the VMS, so this module decides
//! what browsers can negotiate (TLS 1.3/1.2, AEAD suites, ALPN `h2`/`http/1.1`) and keeps the
//! certificate fresh. The pieces:
//!
//! ```text
//!  certs on disk ──► load (parse + validate pair) ──► ReloadingCert (ArcSwap) ──► server_config
//!        ▲                                                  ▲    │ resolve() per handshake
//!        │ replaced by the operator                         │    ▼
//!        └──────── watcher polls every interval ────────────┘  rustls ServerConfig
//!                  SIGHUP (elsewhere) calls reload()
//!
//!  upstream_client_config(custom CA | system roots) ──► rustls ClientConfig for the VMS
//!  devcert: local CA + server certificate for development and tests
//! ```
//!
//! Submodules: [`config`] (rustls configurations), [`load`] (PEM files to a validated key),
//! [`reload`] (hot-reloading resolver and watcher), [`devcert`], [`validity`] (certificate
//! dates), [`error`].

pub mod config;
pub mod devcert;
pub mod error;
pub mod load;
pub mod reload;
pub mod validity;

pub use config::{
    AEAD_SUITES, ALPN_PROTOCOLS, PROTOCOL_VERSIONS, aead_provider, install_crypto_provider,
    server_config, upstream_client_config,
};
pub use error::TlsError;
pub use load::{CertPaths, load_certified_key};
pub use reload::ReloadingCert;

/// Test fixtures shared by the TLS modules: certificate files and in-memory handshakes.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod test_support {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use jiff::Timestamp;
    use rustls::{
        ClientConfig, RootCertStore, ServerConfig, ServerConnection, SupportedProtocolVersion,
    };
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

    use super::devcert::DevCert;
    use super::{CertPaths, aead_provider};

    /// The real current time: handshakes in tests verify against the system clock.
    pub(crate) fn now() -> Timestamp {
        Timestamp::now()
    }

    pub(crate) fn provider() -> rustls::crypto::CryptoProvider {
        aead_provider()
    }

    /// Writes `server.pem` and `server.key` into `dir`.
    pub(crate) fn write_pair(dir: &Path, cert: &str, key: &str) -> CertPaths {
        let paths = CertPaths {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        std::fs::write(&paths.cert, cert).unwrap();
        std::fs::write(&paths.key, key).unwrap();
        paths
    }

    /// DER of the server (first) certificate of a development certificate.
    pub(crate) fn leaf_der(dev: &DevCert) -> Vec<u8> {
        CertificateDer::from_pem_slice(dev.cert_chain_pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    /// A client that trusts only `ca_pem`, offers `h2` and `http/1.1` and the given versions.
    pub(crate) fn client_config(
        ca_pem: &str,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Both ends of a TLS connection over an in-memory pipe.
    #[derive(Debug)]
    pub(crate) struct Conn {
        pub(crate) client: client::TlsStream<DuplexStream>,
        pub(crate) server: server::TlsStream<DuplexStream>,
    }

    impl Conn {
        /// Client sends `msg`, server echoes it, client returns what came back.
        pub(crate) async fn round_trip(&mut self, msg: &[u8]) -> std::io::Result<Vec<u8>> {
            self.client.write_all(msg).await?;
            self.client.flush().await?;
            let mut buf = vec![0u8; msg.len()];
            self.server.read_exact(&mut buf).await?;
            self.server.write_all(&buf).await?;
            self.server.flush().await?;
            let mut back = vec![0u8; msg.len()];
            self.client.read_exact(&mut back).await?;
            Ok(back)
        }
    }

    /// Runs a handshake between `server` and `client` for `name`; the client's error wins.
    pub(crate) async fn connect(
        server: &Arc<ServerConfig>,
        client: &Arc<ClientConfig>,
        name: &str,
    ) -> std::io::Result<Conn> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        let accept = TlsAcceptor::from(Arc::clone(server)).accept(server_io);
        let connect = TlsConnector::from(Arc::clone(client)).connect(server_name, client_io);
        let both = async { tokio::join!(connect, accept) };
        match tokio::time::timeout(Duration::from_secs(5), both).await {
            Ok((Ok(client), Ok(server))) => Ok(Conn { client, server }),
            Ok((Err(e), _)) | Ok((Ok(_), Err(e))) => Err(e),
            Err(_) => Err(std::io::Error::other("handshake timed out")),
        }
    }

    /// Feeds raw client bytes to a server connection; returns its verdict and its reply.
    pub(crate) fn raw_server_reply(
        config: Arc<ServerConfig>,
        client_bytes: &[u8],
    ) -> (Result<(), rustls::Error>, Vec<u8>) {
        let mut conn = ServerConnection::new(config).unwrap();
        let mut input = client_bytes;
        conn.read_tls(&mut input).unwrap();
        let result = conn.process_new_packets().map(|_| ());
        let mut reply = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut reply).unwrap();
        }
        (result, reply)
    }

    /// A minimal ClientHello without the `supported_versions` extension, so `legacy_version`
    /// alone states the highest version offered (`[3, 2]` is TLS 1.1, `[3, 3]` TLS 1.2). It
    /// offers TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA and TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    /// ECDSA P-256 and RSA-PSS signatures, and the x25519 and P-256 groups.
    pub(crate) fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
        let extensions: &[u8] = &[
            0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08,
            0x04, // signature_algorithms
            0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // supported_groups
            0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
        ];
        let mut body = version.to_vec();
        body.extend_from_slice(&[0x42; 32]); // random
        body.push(0x00); // empty session id
        body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0xc0, 0x2b]); // cipher suites
        body.extend_from_slice(&[0x01, 0x00]); // null compression
        body.extend_from_slice(&[0x00, u8::try_from(extensions.len()).unwrap()]);
        body.extend_from_slice(extensions);
        let body_len = u8::try_from(body.len()).unwrap();
        let mut handshake = vec![0x01, 0x00, 0x00, body_len];
        handshake.extend_from_slice(&body);
        let handshake_len = u8::try_from(handshake.len()).unwrap();
        let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake_len];
        record.extend_from_slice(&handshake);
        record
    }
}
