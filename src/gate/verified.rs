//! Approval cookies this thread has already verified, so that a session's every request does
//! not repeat the same cryptography.
//!
//! A browser sends the same two cookies, the VMS session and the approval, with each request
//! of a session. Opening the approval costs a SHA-256 of the session cookie (the binding), a
//! HMAC-SHA256 of the payload, two base64 decodings and the parse. The outcome depends only on
//! those two cookie values and the key ring, so each worker thread remembers the values it has
//! verified:
//!
//! ```text
//!   (session material, approval value) ──► cached? ──yes──► expiry check ──► approval
//!                                              │
//!                                              no ──► session hash, MAC, parse (Approval::open)
//!                                                        ├─ valid ──► remember, approval
//!                                                        └─ invalid ─► rejection (not remembered)
//! ```
//!
//! What is remembered is exactly what the full check would compute again: the entry is found
//! only for byte-identical cookie values, under the same key ring (a ring is identified by
//! [`KeyRing::instance`]). Everything that can change between two requests is still checked
//! on every request by the caller or here: expiry (against `now`), revocation, and the policy
//! for approvals granted without MFA. Only valid approvals are remembered, so cookies an
//! attacker makes up are verified in full each time and cannot fill the cache; a full cache
//! is emptied of expired entries, and if none has expired, emptied.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::auth::crypto::KeyRing;
use crate::gate::approval::{Approval, Rejection, hash_material, session_material};

/// Entries per thread: one per session recently seen by this worker.
const CAPACITY: usize = 4096;

/// Session material longer than this is verified in full each time and not remembered.
const MAX_MATERIAL: usize = 1024;

/// The outcome of checking a request's session cookies against its approval cookie.
#[derive(Debug)]
pub enum Check {
    /// None of the configured session cookies is present.
    NoSession,
    /// The approval cookie verifies for this session and has not expired.
    Approved(Arc<Approval>),
    /// A session cookie is present without an approval that verifies for it.
    Rejected(Option<Rejection>),
}

#[derive(Default)]
struct Cache {
    /// The key ring the entries were verified under.
    ring: u64,
    entries: HashMap<Box<[u8]>, Arc<Approval>>,
    /// Reused for building lookup keys, so a lookup does not allocate.
    scratch: Vec<u8>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// Checks the session cookies that `lookup` finds (by configured name) against the approval
/// cookie value (looked up only when there is a session), remembering approvals that verify.
pub fn check<'a>(
    keys: &KeyRing,
    names: &[String],
    lookup: impl Fn(&str) -> Option<&'a str>,
    approval: impl FnOnce() -> Option<&'a str>,
    now: u64,
) -> Check {
    CACHE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cache) => cache.check(keys, names, lookup, approval, now),
        // Not reachable (nothing here re-enters), but a check must never fail for it: the
        // same check with a cache of its own, forgotten afterwards.
        Err(_) => Cache::default().check(keys, names, lookup, approval, now),
    })
}

impl Cache {
    fn check<'a>(
        &mut self,
        keys: &KeyRing,
        names: &[String],
        lookup: impl Fn(&str) -> Option<&'a str>,
        approval: impl FnOnce() -> Option<&'a str>,
        now: u64,
    ) -> Check {
        if self.ring != keys.instance() {
            self.entries.clear();
            self.ring = keys.instance();
        }
        // Lookup key: the session material, its length, then the approval value. The length
        // keeps two different splits of the same bytes apart.
        let mut key = std::mem::take(&mut self.scratch);
        key.clear();
        session_material(names, lookup, &mut key);
        let material_len = key.len();
        let outcome = if material_len == 0 {
            Check::NoSession
        } else if let Some(value) = approval() {
            key.extend_from_slice(&(material_len as u64).to_le_bytes());
            key.extend_from_slice(value.as_bytes());
            self.lookup_or_open(&key, material_len, value, keys, now)
        } else {
            Check::Rejected(None)
        };
        self.scratch = key;
        outcome
    }

    fn lookup_or_open(
        &mut self,
        key: &[u8],
        material_len: usize,
        value: &str,
        keys: &KeyRing,
        now: u64,
    ) -> Check {
        if let Some(a) = self.entries.get(key) {
            // The same test as `Approval::open`, which is not repeated.
            if now >= a.expires || a.issued > now.saturating_add(300) {
                self.entries.remove(key);
                return Check::Rejected(Some(Rejection::Expired));
            }
            return Check::Approved(Arc::clone(a));
        }
        let material = key.get(..material_len).unwrap_or_default();
        let Some(hash) = hash_material(material) else {
            return Check::NoSession;
        };
        let a = match Approval::open(value, keys, &hash, now) {
            Ok(a) => Arc::new(a),
            Err(r) => return Check::Rejected(Some(r)),
        };
        if material_len <= MAX_MATERIAL {
            if self.entries.len() >= CAPACITY {
                self.entries.retain(|_, e| now < e.expires);
                if self.entries.len() >= CAPACITY {
                    self.entries.clear();
                }
            }
            self.entries.insert(key.into(), Arc::clone(&a));
        }
        Check::Approved(a)
    }
}

/// Entries this thread remembers (for tests).
#[cfg(test)]
fn remembered() -> usize {
    CACHE.with(|c| c.borrow().entries.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::auth::crypto::{generate_key_material, parse_key_material};
    use crate::gate::approval::session_hash;
    use crate::policy::MfaState;

    const NOW: u64 = 1_772_452_800;

    fn ring() -> KeyRing {
        let key = parse_key_material(&generate_key_material()).unwrap();
        KeyRing::new("k1", vec![("k1".into(), key)]).unwrap()
    }

    fn names() -> Vec<String> {
        vec!["VMSSESSION".into()]
    }

    fn sealed(keys: &KeyRing, session: &str, expires: u64) -> String {
        let hash = session_hash(&names(), |_| Some(session)).unwrap();
        Approval {
            issued: NOW - 60,
            expires,
            mfa_passed: true,
            state: MfaState::Enforced,
            session_hash: hash,
            role: "customer".into(),
            user: "alice".into(),
            epoch: 0,
            id: Some([1; 16]),
        }
        .seal(keys)
    }

    fn run(keys: &KeyRing, session: Option<&str>, approval: Option<&str>, now: u64) -> Check {
        check(keys, &names(), |_| session, || approval, now)
    }

    #[test]
    fn a_valid_approval_is_remembered_and_gives_the_same_answer() {
        let keys = ring();
        let value = sealed(&keys, "s1", NOW + 3600);
        let Check::Approved(first) = run(&keys, Some("s1"), Some(&value), NOW) else {
            panic!("not approved");
        };
        assert_eq!(remembered(), 1);
        let Check::Approved(again) = run(&keys, Some("s1"), Some(&value), NOW + 1) else {
            panic!("not approved from the cache");
        };
        assert_eq!(first, again);
        assert_eq!(remembered(), 1);
    }

    #[test]
    fn a_remembered_approval_still_expires() {
        let keys = ring();
        let value = sealed(&keys, "s1", NOW + 10);
        assert!(matches!(
            run(&keys, Some("s1"), Some(&value), NOW),
            Check::Approved(_)
        ));
        assert!(matches!(
            run(&keys, Some("s1"), Some(&value), NOW + 10),
            Check::Rejected(Some(Rejection::Expired))
        ));
        assert_eq!(remembered(), 0);
    }

    #[test]
    fn a_remembered_approval_does_not_cover_another_session() {
        let keys = ring();
        let value = sealed(&keys, "s1", NOW + 3600);
        assert!(matches!(
            run(&keys, Some("s1"), Some(&value), NOW),
            Check::Approved(_)
        ));
        assert!(matches!(
            run(&keys, Some("s2"), Some(&value), NOW),
            Check::Rejected(Some(Rejection::OtherSession))
        ));
        // Nor a session value that is a prefix or extension of the approved one.
        assert!(matches!(
            run(&keys, Some("s1x"), Some(&value), NOW),
            Check::Rejected(Some(_))
        ));
    }

    #[test]
    fn another_key_ring_does_not_see_what_this_one_verified() {
        let keys = ring();
        let value = sealed(&keys, "s1", NOW + 3600);
        assert!(matches!(
            run(&keys, Some("s1"), Some(&value), NOW),
            Check::Approved(_)
        ));
        let other = ring();
        assert!(matches!(
            run(&other, Some("s1"), Some(&value), NOW),
            Check::Rejected(Some(Rejection::BadMac))
        ));
    }

    #[test]
    fn invalid_cookies_are_not_remembered() {
        let keys = ring();
        let value = sealed(&keys, "s1", NOW + 3600);
        let mut forged = value.clone();
        forged.pop();
        forged.push(if value.ends_with('A') { 'B' } else { 'A' });
        for _ in 0..3 {
            assert!(matches!(
                run(&keys, Some("s1"), Some(&forged), NOW),
                Check::Rejected(Some(_))
            ));
        }
        assert_eq!(remembered(), 0);
        assert!(matches!(
            run(&keys, Some("s1"), None, NOW),
            Check::Rejected(None)
        ));
        assert!(matches!(
            run(&keys, None, Some(&value), NOW),
            Check::NoSession
        ));
    }

    #[test]
    fn a_full_cache_is_emptied_not_grown() {
        let keys = ring();
        for i in 0..(CAPACITY + 10) {
            let session = format!("s{i}");
            let value = sealed(&keys, &session, NOW + 3600);
            assert!(matches!(
                run(&keys, Some(&session), Some(&value), NOW),
                Check::Approved(_)
            ));
        }
        assert!(remembered() <= CAPACITY, "{}", remembered());
    }
}
