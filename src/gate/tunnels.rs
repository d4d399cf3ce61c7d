//! WebSocket tunnels of approved sessions, so that they end with their approval.
//!
//! A tunnel is opened once, with the session's approval checked on its upgrade request, and
//! may then stay open for hours. Without this register, a logout, an MSP reset or the
//! approval's expiry would end every request of the session but not its open WebSockets. Each
//! tunnel of an approved session is registered with its approval; a periodic sweep (every
//! `mfa.revocation_poll`, right after the revocation feed is read) closes those whose
//! approval is no longer good, on every instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::approval::Approval;

/// An open tunnel's approval, and how to close it.
type Open = (Arc<Approval>, oneshot::Sender<()>);

#[derive(Default)]
pub struct Tunnels {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Open>>,
}

/// A registered tunnel: removed from the register when dropped (the tunnel ended).
pub struct Registered {
    id: u64,
    tunnels: Arc<Tunnels>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut open) = self.tunnels.open.lock() {
            open.remove(&self.id);
        }
    }
}

impl Tunnels {
    /// Registers a tunnel of `approval`'s session: the receiver fires when it must close.
    pub fn register(
        self: &Arc<Self>,
        approval: Arc<Approval>,
    ) -> (Registered, oneshot::Receiver<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, (approval, tx));
        }
        (
            Registered {
                id,
                tunnels: Arc::clone(self),
            },
            rx,
        )
    }

    /// Closes every tunnel whose approval `good` no longer accepts; returns how many.
    pub fn sweep(&self, good: impl Fn(&Approval) -> bool) -> usize {
        let Ok(mut open) = self.open.lock() else {
            return 0;
        };
        let ended: Vec<u64> = open
            .iter()
            .filter(|(_, (a, _))| !good(a))
            .map(|(id, _)| *id)
            .collect();
        for id in &ended {
            if let Some((_, close)) = open.remove(id) {
                let _ = close.send(());
            }
        }
        ended.len()
    }

    /// Tunnels registered now.
    pub fn len(&self) -> usize {
        self.open.lock().map_or(0, |o| o.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::policy::MfaState;

    fn approval(user: &str, expires: u64) -> Arc<Approval> {
        Arc::new(Approval {
            issued: 0,
            expires,
            mfa_passed: true,
            state: MfaState::Enforced,
            session_hash: [7; 16],
            role: "customer".into(),
            user: user.into(),
            id: Some([1; 16]),
            epoch: 0,
        })
    }

    #[tokio::test]
    async fn a_sweep_closes_the_tunnels_of_ended_approvals_only() {
        let t = Arc::new(Tunnels::default());
        let (keep, mut keep_rx) = t.register(approval("alice", 100));
        let (_gone, gone_rx) = t.register(approval("bob", 100));
        assert_eq!(t.sweep(|a| a.user != "bob"), 1);
        gone_rx.await.unwrap();
        assert!(keep_rx.try_recv().is_err(), "alice's tunnel stays open");
        assert_eq!(t.len(), 1);
        drop(keep);
        assert!(t.is_empty(), "an ended tunnel leaves the register");
    }
}
