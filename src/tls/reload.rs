//! A certificate resolver whose certificate can be replaced while the gateway runs.
//!
//! Why: certificates are renewed every few months (every few weeks with ACME). Restarting the
//! gateway for that would cut every open connection, including users half-way through the MFA
//! step. Instead the current certificate sits in an [`ArcSwap`]: each new handshake takes
//! whatever is current (lock-free), and connections that already finished their handshake are
//! untouched because TLS only uses the certificate during the handshake.
//!
//! How a reload happens (from the file watcher, or from SIGHUP through [`ReloadingCert::reload`]):
//!
//! ```text
//!            read both files ── error ──► keep current, return/log error
//!                  │
//!        content hash == current? ── yes ──► nothing to do (Ok(false))
//!                  │ no
//!        parse + validate pair ── error ──► keep current, return/log error
//!                  │ ok
//!        swap into ArcSwap (Ok(true)); new handshakes see it, open connections keep theirs
//! ```
//!
//! Reloads are serialised by a small mutex so that two concurrent reloads (a SIGHUP during a
//! watcher poll) cannot finish in the wrong order and put older file contents back.
//!
//! The watcher polls instead of using file-system notifications: it needs no extra dependency,
//! and it behaves the same for in-place rewrites, `mv` replacements, Kubernetes secret volumes
//! (symlink swaps) and network file systems, where notifications are unreliable. Each poll reads
//! both files and compares a SHA-256 of their contents; modification time and size are not
//! trusted on their own because `cp -p` and symlink swaps can keep the old time, and a renewed
//! EC key has exactly the same size as the old one. The files are a few KiB, so reading them
//! every few seconds costs nothing.
//!
//! A half-finished renewal (new certificate, old key still in place) fails validation; the
//! watcher logs it once and retries on the next change, keeping the old pair meanwhile.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use jiff::Timestamp;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::aead_provider;
use super::error::TlsError;
use super::load::{CertPaths, ContentHash, PemPair, key_readable_by_others};
use super::validity::validity;

/// Shortest poll interval the watcher accepts; shorter values are raised to this.
pub const MIN_WATCH_INTERVAL: Duration = Duration::from_millis(10);

/// One loaded certificate with what we know about it.
struct Loaded {
    certified: Arc<CertifiedKey>,
    hash: ContentHash,
    not_after: Option<Timestamp>,
}

/// Serves the current certificate to rustls and replaces it when the files change.
pub struct ReloadingCert {
    paths: CertPaths,
    provider: CryptoProvider,
    current: ArcSwap<Loaded>,
    reload_lock: Mutex<()>,
}

/// What happened during one watcher poll.
#[derive(Debug)]
enum PollOutcome {
    /// The files hold what is being served.
    Unchanged,
    /// The files hold the same unusable content the previous poll reported.
    StillBad,
    /// A new pair is being served.
    Reloaded { not_after: Option<Timestamp> },
    /// The files changed (or cannot be read) and the new content is unusable.
    Failed {
        hash: Option<ContentHash>,
        error: TlsError,
    },
}

impl ReloadingCert {
    /// Loads and validates the pair at `paths`; fails if it is unusable.
    pub fn load(paths: CertPaths) -> Result<Arc<Self>, TlsError> {
        let provider = aead_provider();
        let pair = PemPair::read(&paths)?;
        let loaded = build(&paths, &pair, &provider)?;
        warn_if_key_exposed(&paths);
        Ok(Arc::new(Self {
            paths,
            provider,
            current: ArcSwap::from_pointee(loaded),
            reload_lock: Mutex::new(()),
        }))
    }

    /// Re-reads the files and swaps in the new pair if it differs and is valid.
    ///
    /// Returns `Ok(true)` when a new certificate is now served, `Ok(false)` when the files
    /// hold what is already served. On error the current certificate stays in place.
    pub fn reload(&self) -> Result<bool, TlsError> {
        match self.poll(None) {
            PollOutcome::Unchanged | PollOutcome::StillBad => Ok(false),
            PollOutcome::Reloaded { .. } => Ok(true),
            PollOutcome::Failed { error, .. } => Err(error),
        }
    }

    /// The certificate chain and key new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.load().certified)
    }

    /// Expiry of the served certificate, if its validity could be read.
    pub fn not_after(&self) -> Option<Timestamp> {
        self.current.load().not_after
    }

    /// The files this resolver reads.
    pub fn paths(&self) -> &CertPaths {
        &self.paths
    }

    /// Polls the files every `interval` until `shutdown` becomes `true` (or its sender is
    /// dropped), reloading on change. Success is logged at info with the new expiry, failure
    /// at error, each distinct failure once, and reported to `on_failure` once (the caller
    /// counts it: a failure found by the watcher must reach the same metric and alert as one
    /// found by SIGHUP). Must be called from within a Tokio runtime.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
        on_failure: impl Fn() + Send + 'static,
    ) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval.max(MIN_WATCH_INTERVAL));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick fires at once; the files were just loaded, so skip it.
            ticker.tick().await;
            let mut last_failure: Option<(Option<ContentHash>, String)> = None;
            loop {
                if *shutdown.borrow_and_update() {
                    break;
                }
                tokio::select! {
                    _ = ticker.tick() => {}
                    changed = shutdown.changed() => {
                        if changed.is_err() { break; }
                        continue;
                    }
                }
                let poller = Arc::clone(&this);
                let skip = last_failure.as_ref().and_then(|(hash, _)| *hash);
                let outcome = match tokio::task::spawn_blocking(move || poller.poll(skip)).await {
                    Ok(outcome) => outcome,
                    Err(join_error) => {
                        tracing::error!(error = %join_error, "certificate watcher poll did not complete");
                        continue;
                    }
                };
                if this.log_outcome(outcome, &mut last_failure) {
                    on_failure();
                }
            }
            tracing::debug!(cert = %this.paths.cert.display(), "certificate watcher stopped");
        })
    }

    /// Reads the files and swaps if their content is new, valid, and not `known_bad`.
    fn poll(&self, known_bad: Option<ContentHash>) -> PollOutcome {
        // A poisoned lock only means another reload panicked; the guarded data is `()`.
        let _serialised = self
            .reload_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pair = match PemPair::read(&self.paths) {
            Ok(pair) => pair,
            Err(error) => return PollOutcome::Failed { hash: None, error },
        };
        let hash = pair.content_hash();
        if hash == self.current.load().hash {
            return PollOutcome::Unchanged;
        }
        if Some(hash) == known_bad {
            return PollOutcome::StillBad;
        }
        match build(&self.paths, &pair, &self.provider) {
            Ok(loaded) => {
                let not_after = loaded.not_after;
                self.current.store(Arc::new(loaded));
                PollOutcome::Reloaded { not_after }
            }
            Err(error) => PollOutcome::Failed {
                hash: Some(hash),
                error,
            },
        }
    }

    /// Logs a poll's outcome; true for a failure not reported before.
    fn log_outcome(
        &self,
        outcome: PollOutcome,
        last_failure: &mut Option<(Option<ContentHash>, String)>,
    ) -> bool {
        match outcome {
            PollOutcome::StillBad => false,
            PollOutcome::Unchanged => {
                // Back to the served content: a later failure is news again.
                *last_failure = None;
                false
            }
            PollOutcome::Reloaded { not_after } => {
                *last_failure = None;
                warn_if_key_exposed(&self.paths);
                tracing::info!(
                    cert = %self.paths.cert.display(),
                    not_after = %DisplayExpiry(not_after),
                    "TLS certificate reloaded; new connections use it"
                );
                false
            }
            PollOutcome::Failed { hash, error } => {
                let message = error.to_string();
                let repeated = last_failure.as_ref().is_some_and(|(_, m)| *m == message);
                if !repeated {
                    tracing::error!(
                        error = %message,
                        "TLS certificate reload failed; still serving the previous certificate"
                    );
                }
                *last_failure = Some((hash, message));
                !repeated
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.paths.cert)
            .field("key", &self.paths.key)
            .field("not_after", &self.not_after())
            .finish_non_exhaustive()
    }
}

fn build(paths: &CertPaths, pair: &PemPair, provider: &CryptoProvider) -> Result<Loaded, TlsError> {
    let certified = pair.certified_key(paths, provider)?;
    let not_after = certified
        .cert
        .first()
        .and_then(|leaf| validity(leaf).ok())
        .map(|v| v.not_after);
    Ok(Loaded {
        certified: Arc::new(certified),
        hash: pair.content_hash(),
        not_after,
    })
}

fn warn_if_key_exposed(paths: &CertPaths) {
    if key_readable_by_others(&paths.key) {
        tracing::warn!(
            key = %paths.key.display(),
            "tls.key can be read by every user on this host; restrict it (chmod o-rwx, e.g. mode 0640 or 0600)"
        );
    }
}

/// Formats an optional expiry for logs.
struct DisplayExpiry(Option<Timestamp>);

impl fmt::Display for DisplayExpiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ts) => write!(f, "{ts}"),
            None => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tls::devcert::{self, DevCert};
    use crate::tls::server_config;
    use crate::tls::test_support::{client_config, connect, leaf_der, now, write_pair};
    use rustls::version::TLS13;

    fn served_leaf(resolver: &ReloadingCert) -> Vec<u8> {
        resolver.current().cert.first().unwrap().to_vec()
    }

    fn fresh() -> DevCert {
        devcert::generate(&[], now()).unwrap()
    }

    #[test]
    fn reload_swaps_to_new_files_and_reports_change() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (fresh(), fresh());
        let paths = write_pair(dir.path(), &a.cert_chain_pem, &a.key_pem);
        let resolver = ReloadingCert::load(paths).unwrap();
        assert_eq!(served_leaf(&resolver), leaf_der(&a));
        assert!(!resolver.reload().unwrap(), "same files: no change");

        write_pair(dir.path(), &b.cert_chain_pem, &b.key_pem);
        assert!(resolver.reload().unwrap());
        assert_eq!(served_leaf(&resolver), leaf_der(&b));
        assert!(resolver.not_after().unwrap() > now());
    }

    #[test]
    fn reload_keeps_the_old_pair_when_new_files_are_bad() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (fresh(), fresh());
        let paths = write_pair(dir.path(), &a.cert_chain_pem, &a.key_pem);
        let resolver = ReloadingCert::load(paths.clone()).unwrap();

        // Half-finished renewal: new certificate, old key.
        std::fs::write(&paths.cert, &b.cert_chain_pem).unwrap();
        let err = resolver.reload().unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
        assert_eq!(served_leaf(&resolver), leaf_der(&a));

        std::fs::write(&paths.cert, "garbage").unwrap();
        assert!(matches!(
            resolver.reload(),
            Err(TlsError::NoCertificates { .. })
        ));
        std::fs::remove_file(&paths.key).unwrap();
        assert!(matches!(resolver.reload(), Err(TlsError::NotFound { .. })));
        assert_eq!(served_leaf(&resolver), leaf_der(&a));

        // Completing the renewal recovers.
        write_pair(dir.path(), &b.cert_chain_pem, &b.key_pem);
        assert!(resolver.reload().unwrap());
        assert_eq!(served_leaf(&resolver), leaf_der(&b));
    }

    #[test]
    fn load_fails_on_an_unusable_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (fresh(), fresh());
        let paths = write_pair(dir.path(), &a.cert_chain_pem, &b.key_pem);
        assert!(matches!(
            ReloadingCert::load(paths),
            Err(TlsError::KeyMismatch { .. })
        ));
    }

    #[test]
    fn debug_output_shows_paths_but_no_key_material() {
        let dir = tempfile::tempdir().unwrap();
        let a = fresh();
        let resolver =
            ReloadingCert::load(write_pair(dir.path(), &a.cert_chain_pem, &a.key_pem)).unwrap();
        let debug = format!("{resolver:?}");
        assert!(debug.contains("server.key"), "{debug}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
    }

    #[tokio::test]
    async fn new_handshakes_see_the_new_certificate_and_old_connections_keep_working() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (fresh(), fresh());
        let resolver =
            ReloadingCert::load(write_pair(dir.path(), &a.cert_chain_pem, &a.key_pem)).unwrap();
        let config = server_config(resolver.clone()).unwrap();

        let mut before = connect(&config, &client_config(&a.ca_pem, &[&TLS13]), "localhost")
            .await
            .unwrap();
        let peer = |c: &crate::tls::test_support::Conn| {
            c.client
                .get_ref()
                .1
                .peer_certificates()
                .unwrap()
                .first()
                .unwrap()
                .to_vec()
        };
        assert_eq!(peer(&before), leaf_der(&a));

        write_pair(dir.path(), &b.cert_chain_pem, &b.key_pem);
        assert!(resolver.reload().unwrap());

        let after = connect(&config, &client_config(&b.ca_pem, &[&TLS13]), "localhost")
            .await
            .unwrap();
        assert_eq!(peer(&after), leaf_der(&b));
        // A client that only trusts the old CA is now refused: the swap really happened.
        assert!(
            connect(&config, &client_config(&a.ca_pem, &[&TLS13]), "localhost")
                .await
                .is_err()
        );

        // The connection opened before the reload still carries data.
        assert_eq!(
            before.round_trip(b"still here").await.unwrap(),
            b"still here"
        );
        assert_eq!(peer(&before), leaf_der(&a));
    }

    async fn wait_for_leaf(resolver: &ReloadingCert, leaf: &[u8]) -> bool {
        for _ in 0..500 {
            if served_leaf(resolver) == leaf {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn watcher_picks_up_changes_skips_bad_files_and_stops_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (fresh(), fresh(), fresh());
        let paths = write_pair(dir.path(), &a.cert_chain_pem, &a.key_pem);
        let resolver = ReloadingCert::load(paths.clone()).unwrap();
        let (stop, shutdown) = watch::channel(false);
        let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Arc::clone(&failures);
        let handle = resolver.spawn_watcher(Duration::from_millis(20), shutdown, move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        let failures_seen = || failures.load(std::sync::atomic::Ordering::Relaxed);

        write_pair(dir.path(), &b.cert_chain_pem, &b.key_pem);
        assert!(
            wait_for_leaf(&resolver, &leaf_der(&b)).await,
            "watcher missed the change"
        );

        // A broken file is ignored; the served certificate stays.
        std::fs::write(&paths.cert, "garbage").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(served_leaf(&resolver), leaf_der(&b));
        // Counted once, however many polls see the same bad files.
        assert_eq!(failures_seen(), 1, "the watcher's failure is counted once");

        write_pair(dir.path(), &c.cert_chain_pem, &c.key_pem);
        assert!(
            wait_for_leaf(&resolver, &leaf_der(&c)).await,
            "watcher did not recover"
        );

        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .expect("watcher did not stop")
            .unwrap();
    }

    #[tokio::test]
    async fn watcher_stops_when_the_shutdown_sender_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let a = fresh();
        let resolver =
            ReloadingCert::load(write_pair(dir.path(), &a.cert_chain_pem, &a.key_pem)).unwrap();
        let (stop, shutdown) = watch::channel(false);
        let handle = resolver.spawn_watcher(Duration::ZERO, shutdown, || {});
        drop(stop);
        tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .expect("watcher did not stop")
            .unwrap();
    }

    #[test]
    fn failure_memory_is_kept_while_bad_and_cleared_when_files_are_fine_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = fresh();
        let paths = write_pair(dir.path(), &a.cert_chain_pem, &a.key_pem);
        let resolver = ReloadingCert::load(paths.clone()).unwrap();
        let mut memory = None;

        std::fs::remove_file(&paths.cert).unwrap();
        resolver.log_outcome(resolver.poll(None), &mut memory);
        let (hash, message) = memory.clone().unwrap();
        assert_eq!(hash, None, "a missing file has no content hash");
        assert!(message.starts_with("tls.cert: file not found"), "{message}");

        resolver.log_outcome(PollOutcome::StillBad, &mut memory);
        assert!(memory.is_some());

        std::fs::write(&paths.cert, &a.cert_chain_pem).unwrap();
        resolver.log_outcome(resolver.poll(None), &mut memory);
        assert!(memory.is_none(), "restored files clear the failure");
    }

    #[test]
    fn repeated_failures_are_remembered_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (fresh(), fresh());
        let paths = write_pair(dir.path(), &a.cert_chain_pem, &a.key_pem);
        let resolver = ReloadingCert::load(paths.clone()).unwrap();
        std::fs::write(&paths.cert, &b.cert_chain_pem).unwrap();
        let PollOutcome::Failed {
            hash: Some(bad), ..
        } = resolver.poll(None)
        else {
            panic!("mismatched pair must fail with a content hash");
        };
        assert!(matches!(resolver.poll(Some(bad)), PollOutcome::StillBad));
        assert!(matches!(resolver.poll(None), PollOutcome::Failed { .. }));
        std::fs::write(&paths.key, b.key_pem.as_bytes()).unwrap();
        assert!(matches!(
            resolver.poll(Some(bad)),
            PollOutcome::Reloaded { .. }
        ));
    }
}
