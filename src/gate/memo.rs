//! The gate's work for one whole `Cookie` header, remembered per worker thread.
//!
//! A browser sends the same `Cookie` header with every request of a page view, byte for
//! byte. For an approved session the gate's answer to that header is always the same: the
//! approval it carries, and the header as the VMS may see it (the gateway's cookies removed,
//! lookalike session cookies dropped). Finding both again is one hash lookup, where working
//! them out means reading the header three times (the session cookies, the approval, the
//! filter) and building a new header.
//!
//! What is remembered is a pure function of the header's bytes, the session cookie names
//! and the key ring, so the memo is emptied when the ring or the names change. What depends
//! on time or on other instances is never remembered: the approval's expiry is checked on
//! every hit, and the caller checks revocations and the policy on every request, as it does
//! on the full path. Only approved sessions are remembered, so a header nobody approved
//! cannot fill the memo; its size is bounded anyway, as are the headers it takes.
//!
//! ```text
//!   Cookie header (one field) ──► memo hit, not expired? ──yes──► approval + VMS header
//!                                        │ no
//!                                        └──► full gate ──approved──► remember
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderValue;

use crate::auth::crypto::KeyRing;
use crate::gate::approval::Approval;

/// Headers remembered per thread (one per approved browser session in use on it).
const CAPACITY: usize = 4096;
/// Longer `Cookie` headers are not remembered (memory stays under about 8 MiB per thread).
const MAX_HEADER: usize = 2048;

/// What the gate decided for a remembered header.
#[derive(Clone)]
pub struct Remembered {
    pub approval: Arc<Approval>,
    /// The `Cookie` header for the VMS; `None` when nothing is left of it.
    pub for_vms: Option<HeaderValue>,
}

#[derive(Default)]
struct Memo {
    ring: u64,
    /// The session cookie names the entries were made with.
    names: Vec<String>,
    entries: HashMap<Box<[u8]>, Remembered>,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

impl Memo {
    fn sync(&mut self, keys: &KeyRing, names: &[String]) {
        if self.ring != keys.instance() || self.names != names {
            self.entries.clear();
            self.ring = keys.instance();
            self.names = names.to_vec();
        }
    }
}

/// The remembered decision for `cookie`, if there is one and its approval is still valid
/// at `now` (the same test as `gate::verified`'s).
pub fn recall(
    keys: &KeyRing,
    names: &[String],
    cookie: &HeaderValue,
    now: u64,
) -> Option<Remembered> {
    MEMO.with(|cell| {
        let mut memo = cell.try_borrow_mut().ok()?;
        memo.sync(keys, names);
        let hit = memo.entries.get(cookie.as_bytes())?;
        if now >= hit.approval.expires || hit.approval.issued > now.saturating_add(300) {
            memo.entries.remove(cookie.as_bytes());
            return None;
        }
        Some(hit.clone())
    })
}

/// Remembers the decision for an approved `cookie` header.
pub fn remember(
    keys: &KeyRing,
    names: &[String],
    cookie: &HeaderValue,
    decision: Remembered,
    now: u64,
) {
    if cookie.len() > MAX_HEADER {
        return;
    }
    MEMO.with(|cell| {
        let Ok(mut memo) = cell.try_borrow_mut() else {
            return;
        };
        memo.sync(keys, names);
        if memo.entries.len() >= CAPACITY {
            memo.entries.retain(|_, e| now < e.approval.expires);
            if memo.entries.len() >= CAPACITY {
                memo.entries.clear();
            }
        }
        memo.entries.insert(cookie.as_bytes().into(), decision);
    });
}

#[cfg(test)]
pub fn remembered() -> usize {
    MEMO.with(|c| c.borrow().entries.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use http::{HeaderMap, header};

    use super::*;
    use crate::gate::Gate;
    use crate::gate::approval::{APPROVAL_COOKIE, session_hash};
    use crate::gate::revocation::hex16;
    use crate::gateway::Gateway;
    use crate::policy::MfaState;
    use crate::store::revocation::Revocation;

    use crate::proxy::testing::{NOW, gateway};

    const SESSION: &str = "s3ss10n";

    fn approval(user: &str) -> Approval {
        let names = vec!["VMSSESSION".to_string()];
        Approval {
            issued: NOW - 60,
            expires: NOW + 3600,
            mfa_passed: true,
            state: MfaState::Enforced,
            session_hash: session_hash(&names, |_| Some(SESSION)).unwrap(),
            role: "customer".into(),
            user: user.into(),
            epoch: 0,
            id: Some([5; 16]),
        }
    }

    fn request(gw: &Gateway, a: &Approval) -> HeaderMap {
        let mut h = HeaderMap::new();
        let cookie = format!(
            "_ga=1; VMSSESSION={SESSION}; {APPROVAL_COOKIE}={}; vmssession=lookalike",
            a.seal(&gw.keys)
        );
        h.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        h
    }

    fn gate(gw: &Gateway, request: &HeaderMap, now: u64) -> (Gate, Option<HeaderValue>) {
        let mut h = request.clone();
        let g = gw.gate(&mut h, now);
        (g, h.get(header::COOKIE).cloned())
    }

    #[test]
    fn a_remembered_header_gets_the_same_decision_as_the_full_path() {
        let gw = gateway();
        let req = request(&gw, &approval("alice"));
        let before = remembered();
        let (first, vms_first) = gate(&gw, &req, NOW);
        assert!(matches!(first, Gate::Approved(_)));
        assert_eq!(remembered(), before + 1);
        let (second, vms_second) = gate(&gw, &req, NOW + 1);
        assert!(matches!(second, Gate::Approved(ref a) if a.user == "alice"));
        assert_eq!(vms_first, vms_second);
        assert_eq!(vms_second.unwrap(), "_ga=1; VMSSESSION=s3ss10n");
    }

    #[test]
    fn a_logout_or_reset_ends_a_remembered_session() {
        let gw = gateway();
        let a = approval("bob");
        let req = request(&gw, &a);
        assert!(matches!(gate(&gw, &req, NOW).0, Gate::Approved(_)));
        gw.revocations.apply(
            &[Revocation::Session {
                hash: hex16(&a.session_hash),
                until: NOW + 3600,
                approval: a.id.as_ref().map(hex16),
            }],
            NOW,
        );
        let (g, vms) = gate(&gw, &req, NOW + 1);
        assert!(matches!(g, Gate::Ended));
        assert_eq!(vms.unwrap(), "_ga=1");

        let gw = gateway();
        let req = request(&gw, &approval("carol"));
        assert!(matches!(gate(&gw, &req, NOW).0, Gate::Approved(_)));
        gw.revocations.apply(
            &[Revocation::User {
                hash: hex16(&crate::gate::approval::user_hash("carol")),
                before: NOW,
                until: NOW + 3600,
                epoch: Some(1),
            }],
            NOW,
        );
        assert!(matches!(gate(&gw, &req, NOW + 1).0, Gate::Ended));
    }

    #[test]
    fn an_expired_approval_is_not_recalled() {
        let gw = gateway();
        let a = approval("dave");
        let req = request(&gw, &a);
        assert!(matches!(gate(&gw, &req, NOW).0, Gate::Approved(_)));
        let (g, vms) = gate(&gw, &req, a.expires);
        assert!(matches!(g, Gate::Ended));
        assert_eq!(vms.unwrap(), "_ga=1");
    }

    #[test]
    fn another_key_ring_starts_from_an_empty_memo() {
        let gw = gateway();
        let req = request(&gw, &approval("erin"));
        assert!(matches!(gate(&gw, &req, NOW).0, Gate::Approved(_)));
        // The same header before a gateway with other keys: its approval does not open.
        let other = gateway();
        assert!(matches!(gate(&other, &req, NOW).0, Gate::Stripped));
        assert_eq!(remembered(), 0);
    }
}
