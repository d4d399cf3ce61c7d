//! The policy in force, reloaded from its file without a restart.
//!
//! The policy file is polled (modified time, length and content hash) every
//! `policy.watch_interval` and re-read on SIGHUP. A file that fails to load leaves the old
//! policy in force; the failure is logged, counted in metrics and reported by readiness until
//! a good file is loaded again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::metrics::Metrics;
use crate::policy::Policy;

#[derive(Debug)]
pub struct LivePolicy {
    path: PathBuf,
    current: ArcSwap<Policy>,
    fingerprint: std::sync::Mutex<Option<FileFingerprint>>,
    last_reload_ok: AtomicBool,
    audit: std::sync::OnceLock<crate::audit::Audit>,
}

/// What identifies a version of a file without trusting timestamps alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFingerprint {
    modified: Option<std::time::SystemTime>,
    len: u64,
    hash: [u8; 32],
}

impl FileFingerprint {
    pub fn of(path: &std::path::Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        let bytes = std::fs::read(path).ok()?;
        Some(Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            hash: crate::auth::crypto::sha256(&bytes),
        })
    }
}

impl LivePolicy {
    /// Loads the file; at start-up a bad file is an error (the gateway does not start).
    pub fn load(path: PathBuf) -> Result<Arc<Self>, String> {
        let policy = Policy::load(&path).map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            fingerprint: std::sync::Mutex::new(FileFingerprint::of(&path)),
            path,
            current: ArcSwap::from_pointee(policy),
            last_reload_ok: AtomicBool::new(true),
            audit: std::sync::OnceLock::new(),
        }))
    }

    pub fn from_policy(policy: Policy, path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            current: ArcSwap::from_pointee(policy),
            fingerprint: std::sync::Mutex::new(None),
            last_reload_ok: AtomicBool::new(true),
            audit: std::sync::OnceLock::new(),
        })
    }

    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    pub fn healthy(&self) -> bool {
        self.last_reload_ok.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Policy reloads are recorded in this audit trail from now on.
    pub fn set_audit(&self, audit: crate::audit::Audit) {
        let _ = self.audit.set(audit);
    }

    fn audit(&self, event: crate::audit::Event, detail: String) {
        if let Some(a) = self.audit.get() {
            let now = crate::clock::Clock::System.unix();
            a.record_in_background(
                crate::audit::Record::new(event, now, crate::audit::ActorKind::System, "gateway")
                    .detail(detail),
            );
        }
    }

    /// Re-reads the file. On error the old policy stays.
    pub fn reload(&self, metrics: &Metrics) -> Result<(), String> {
        let fp = FileFingerprint::of(&self.path);
        match Policy::load(&self.path) {
            Ok(p) => {
                // Only a policy that decides differently is news: a SIGHUP, a touched file
                // or a changed comment leaves no audit record.
                let changed = *self.current.load_full() != p;
                self.current.store(Arc::new(p));
                let recovered = !self.last_reload_ok.swap(true, Ordering::Relaxed);
                metrics.policy_reload(true);
                if let Ok(mut g) = self.fingerprint.lock() {
                    *g = fp;
                }
                if changed || recovered {
                    tracing::info!(file = %self.path.display(), "policy reloaded");
                    self.audit(
                        crate::audit::Event::PolicyReloaded,
                        format!("file={}", self.path.display()),
                    );
                } else {
                    tracing::debug!(file = %self.path.display(), "policy file read; unchanged");
                }
                Ok(())
            }
            Err(e) => {
                self.last_reload_ok.store(false, Ordering::Relaxed);
                metrics.policy_reload(false);
                if let Ok(mut g) = self.fingerprint.lock() {
                    *g = fp;
                }
                tracing::error!(file = %self.path.display(), error = %e, "policy reload failed; the previous policy stays in force");
                self.audit(
                    crate::audit::Event::PolicyReloadFailed,
                    format!("file={}; {e}", self.path.display()),
                );
                Err(e.to_string())
            }
        }
    }

    /// Reloads when the file changed since the last look.
    pub fn reload_if_changed(&self, metrics: &Metrics) {
        let fp = FileFingerprint::of(&self.path);
        let changed = self.fingerprint.lock().map(|g| *g != fp).unwrap_or(false);
        if changed {
            let _ = self.reload(metrics);
        }
    }

    pub fn spawn_watcher(
        self: &Arc<Self>,
        metrics: Arc<Metrics>,
        every: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        crate::periodic::spawn_every(every, shutdown, move || {
            let (this, metrics) = (Arc::clone(&this), Arc::clone(&metrics));
            // Reading and hashing the file is blocking I/O.
            async move {
                let _ = tokio::task::spawn_blocking(move || this.reload_if_changed(&metrics)).await;
            }
        })
    }
}
