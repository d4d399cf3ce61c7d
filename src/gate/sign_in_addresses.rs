//! Noticing that every client seems to come from one address.
//!
//! The per-address failure limit (`mfa.max_failures_per_address`) and the audit trail rely on
//! the client address. Behind a load balancer with `server.trusted_proxies = []` every client
//! has the balancer's address, so the limit then stands for "all users" and the audit trail
//! names the balancer. This instance remembers the addresses of its recent successful MFA
//! checks (who, from where, when; at most [`KEEP`] of them) and, every
//! [`CHECK_EVERY`], looks whether at least [`MIN_USERS`] different users signed in over the
//! last [`WINDOW`] and all from one address. If so, and `trusted_proxies` is empty, it says so
//! in the log (a warning naming the address) and in the metric
//! `mfa_gateway_sign_ins_from_one_address` (1; 0 otherwise).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// How many recent sign-ins are remembered.
pub const KEEP: usize = 512;
/// The sign-ins looked at.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Fewer users than this from one address is ordinary (a small office behind one NAT).
pub const MIN_USERS: usize = 3;
/// How often the check runs.
pub const CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// What the check found: every recent sign-in came from `addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneAddress {
    pub addr: String,
    pub sign_ins: usize,
    pub users: usize,
}

/// The recent successful MFA checks of this instance.
#[derive(Debug, Default)]
pub struct SignIns {
    recent: Mutex<VecDeque<(u64, String, String)>>,
}

impl SignIns {
    /// Notes a successful MFA check of `user` from `addr` at `now` (Unix seconds).
    pub fn note(&self, now: u64, user: &str, addr: &str) {
        let Ok(mut recent) = self.recent.lock() else {
            return;
        };
        if recent.len() >= KEEP {
            recent.pop_front();
        }
        recent.push_back((now, user.to_string(), addr.to_string()));
    }

    /// Whether the sign-ins of the last [`WINDOW`] before `now` came from one address, by at
    /// least [`MIN_USERS`] users.
    pub fn one_address(&self, now: u64) -> Option<OneAddress> {
        let recent = self.recent.lock().ok()?;
        let since = now.saturating_sub(WINDOW.as_secs());
        let mut addrs = BTreeSet::new();
        let mut users = BTreeSet::new();
        let mut sign_ins = 0;
        for (_, user, addr) in recent.iter().filter(|(t, ..)| *t >= since) {
            addrs.insert(addr.as_str());
            users.insert(user.as_str());
            sign_ins += 1;
        }
        match (addrs.len(), addrs.first()) {
            (1, Some(addr)) if users.len() >= MIN_USERS => Some(OneAddress {
                addr: (*addr).to_string(),
                sign_ins,
                users: users.len(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_needs_several_users_within_the_window() {
        let s = SignIns::default();
        let day = WINDOW.as_secs();
        s.note(1000, "a", "10.0.0.1");
        s.note(1001, "a", "10.0.0.1");
        s.note(1002, "b", "10.0.0.1");
        assert_eq!(s.one_address(1003), None, "two users are ordinary");
        s.note(1004, "c", "10.0.0.1");
        assert_eq!(
            s.one_address(1005),
            Some(OneAddress {
                addr: "10.0.0.1".into(),
                sign_ins: 4,
                users: 3
            })
        );
        s.note(1006, "d", "10.0.0.2");
        assert_eq!(s.one_address(1007), None, "a second address");
        assert_eq!(s.one_address(1006 + day + 1), None, "all too old");
    }

    #[test]
    fn only_the_latest_are_kept() {
        let s = SignIns::default();
        s.note(1, "x", "10.0.0.9");
        for i in 0..KEEP {
            s.note(2, &format!("u{}", i % 5), "10.0.0.1");
        }
        assert_eq!(s.one_address(3).map(|f| f.sign_ins), Some(KEEP));
    }
}
