//! Revocation of approved sessions across every gateway instance.
//!
//! Approvals are verified locally (see `approval`), so ending one early needs a message to
//! every instance. Each revocation is appended to a feed in the shared store (a Redis stream),
//! and every instance reads the feed from where it left off every `mfa.revocation_poll`
//! (default 2 s) into an in-memory snapshot that the hot path consults without locking:
//!
//! ```text
//!   logout / MSP reset ──► store.revoke(entry) ──► feed (Redis stream, trimmed by age)
//!                                                   │ every poll interval, from last id
//!   request ──► approval ok? ──► snapshot.is_revoked(session, user, issued)? ◄──┘
//! ```
//!
//! Entries expire with the longest possible approval (`mfa.approval_max_age`), so the snapshot
//! stays small. If the store is away, the snapshot keeps what it had (approved sessions keep
//! working; new revocations cannot be made anyway) and the reader catches up when it returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// One session ended (VMS logout).
    Session { hash: String, until: u64 },
    /// Every approval of a user issued before `before` ends (MSP reset, MFA changes).
    User {
        hash: String,
        before: u64,
        until: u64,
    },
}

impl Revocation {
    fn until(&self) -> u64 {
        match self {
            Revocation::Session { until, .. } | Revocation::User { until, .. } => *until,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Snapshot {
    sessions: HashMap<[u8; 16], u64>,
    users: HashMap<[u8; 16], (u64, u64)>,
}

/// The local view of the revocation feed.
#[derive(Debug, Default)]
pub struct Revocations {
    snapshot: ArcSwap<Snapshot>,
    last_id: std::sync::Mutex<String>,
}

fn decode16(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

pub fn hex16(b: &[u8; 16]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Revocations {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            last_id: std::sync::Mutex::new("0".into()),
        })
    }

    /// Whether an approval for this session and user, issued at `issued`, has been revoked.
    pub fn is_revoked(&self, session: &[u8; 16], user: &str, issued: u64) -> bool {
        let snap = self.snapshot.load();
        if snap.sessions.is_empty() && snap.users.is_empty() {
            return false;
        }
        if snap.sessions.contains_key(session) {
            return true;
        }
        if snap.users.is_empty() {
            return false;
        }
        let uh = super::approval::user_hash(user);
        snap.users
            .get(&uh)
            .is_some_and(|(before, _)| issued < *before)
    }

    /// Applies entries locally (used for the instance's own revocations, so they take effect
    /// at once, and by the poller).
    pub fn apply(&self, entries: &[Revocation], now: u64) {
        let mut next: Snapshot = (**self.snapshot.load()).clone();
        next.sessions.retain(|_, until| *until > now);
        next.users.retain(|_, (_, until)| *until > now);
        for e in entries {
            if e.until() <= now {
                continue;
            }
            match e {
                Revocation::Session { hash, until } => {
                    if let Some(h) = decode16(hash) {
                        next.sessions.insert(h, *until);
                    }
                }
                Revocation::User {
                    hash,
                    before,
                    until,
                } => {
                    if let Some(h) = decode16(hash) {
                        let entry = next.users.entry(h).or_insert((*before, *until));
                        entry.0 = entry.0.max(*before);
                        entry.1 = entry.1.max(*until);
                    }
                }
            }
        }
        self.snapshot.store(Arc::new(next));
    }

    /// Reads what is new in the feed. Returns false when the store did not answer.
    pub async fn poll_once(&self, store: &Store, now: u64) -> bool {
        let from = self
            .last_id
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|_| "0".into());
        match store.read_revocations(&from).await {
            Ok((last, entries)) => {
                if !entries.is_empty() || last != from {
                    self.apply(&entries, now);
                    if let Ok(mut g) = self.last_id.lock() {
                        *g = last;
                    }
                } else {
                    self.apply(&[], now);
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "revocation feed unreachable; keeping the last known revocations");
                false
            }
        }
    }

    /// Polls the feed until `shutdown` flips. Each poll is also the gateway's regular look at
    /// Redis: its outcome sets `mfa_gateway_store_up`, so the gauge follows Redis even when
    /// nobody asks for readiness.
    pub fn spawn_poller(
        self: &Arc<Self>,
        store: Store,
        clock: crate::clock::Clock,
        every: Duration,
        metrics: Arc<crate::metrics::Metrics>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        crate::periodic::spawn_every(every, shutdown, move || {
            let (this, store, clock) = (Arc::clone(&this), store.clone(), clock.clone());
            let metrics = Arc::clone(&metrics);
            async move {
                let ok = this.poll_once(&store, clock.unix()).await;
                metrics.store_up(ok);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_and_user_revocations() {
        let r = Revocations::new();
        let s = [3u8; 16];
        assert!(!r.is_revoked(&s, "bob", 100));
        r.apply(
            &[
                Revocation::Session {
                    hash: hex16(&s),
                    until: 1000,
                },
                Revocation::User {
                    hash: hex16(&super::super::approval::user_hash("bob")),
                    before: 500,
                    until: 1000,
                },
            ],
            200,
        );
        assert!(r.is_revoked(&s, "alice", 600));
        assert!(
            r.is_revoked(&[4; 16], "bob", 499),
            "approval issued before the reset"
        );
        assert!(
            !r.is_revoked(&[4; 16], "bob", 500),
            "approval issued after the reset"
        );
        assert!(!r.is_revoked(&[4; 16], "carol", 1));
        r.apply(&[], 1000);
        assert!(
            !r.is_revoked(&s, "alice", 600),
            "entries expire with the longest approval"
        );
    }

    #[test]
    fn malformed_hashes_are_ignored() {
        let r = Revocations::new();
        r.apply(
            &[Revocation::Session {
                hash: "zz".into(),
                until: 10,
            }],
            1,
        );
        assert!(!r.is_revoked(&[0; 16], "a", 0));
    }
}
