//! Property tests for the approval cookie.
//!
//! The approval is what lets a VMS session through, so for any approval (of either payload
//! version): the sealed cookie opens to exactly the same approval, revocation epoch and id
//! included, while it is valid and for the session it names; it
//! does not open after expiry, for another session, under another key, or after any
//! single-character change; and no string, however odd, makes `open` panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use zeroize::Zeroizing;

use super::{Approval, Rejection};
use crate::auth::crypto::KeyRing;
use crate::policy::MfaState;

fn ring(id: &str, fill: u8) -> KeyRing {
    let key: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(31) ^ fill).collect();
    KeyRing::new(id, vec![(id.to_string(), Zeroizing::new(key))]).unwrap()
}

/// Text of at most 255 bytes (the cookie format's limit; login refuses longer user names).
fn short_text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9@._-]{0,64}", ".{0,60}", "[a-z]{255}",]
}

prop_compose! {
    fn approval()(
        issued in 0u64..4_000_000_000,
        life in 1u64..100_000,
        mfa_passed in any::<bool>(),
        state in prop::sample::select(vec![MfaState::None, MfaState::Available, MfaState::Enforced]),
        session_hash in any::<[u8; 16]>(),
        role in short_text(),
        user in short_text(),
        epoch in any::<u64>(),
        id in prop::option::weighted(0.9, any::<[u8; 16]>()),
    ) -> Approval {
        // Version 1 cookies (no id) carry no epoch: they open as epoch 0.
        let epoch = if id.is_some() { epoch } else { 0 };
        Approval { issued, expires: issued + life, mfa_passed, state, session_hash, role, user, epoch, id }
    }
}

const COOKIE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_approval_opens_to_itself_while_valid(a in approval(), into in any::<prop::sample::Index>()) {
        let keys = ring("k1", 1);
        let v = a.seal(&keys);
        let now = a.issued + into.index(usize::try_from(a.expires - a.issued).unwrap()) as u64;
        prop_assert_eq!(Approval::open(&v, &keys, &a.session_hash, now), Ok(a.clone()));
        prop_assert_eq!(Approval::open(&v, &keys, &a.session_hash, a.expires), Err(Rejection::Expired));
        let mut other = a.session_hash;
        other[0] ^= 1;
        prop_assert_eq!(Approval::open(&v, &keys, &other, now), Err(Rejection::OtherSession));
        prop_assert_eq!(Approval::open(&v, &ring("k1", 2), &a.session_hash, now), Err(Rejection::BadMac));
        prop_assert_eq!(Approval::open(&v, &ring("k2", 1), &a.session_hash, now), Err(Rejection::BadMac));
    }

    #[test]
    fn any_changed_character_is_rejected(
        a in approval(),
        at in any::<prop::sample::Index>(),
        with in any::<prop::sample::Index>(),
    ) {
        let keys = ring("k1", 1);
        let v = a.seal(&keys);
        let i = at.index(v.len());
        let old = v.as_bytes()[i];
        let mut new = COOKIE_CHARS[with.index(COOKIE_CHARS.len())];
        if new == old {
            new = if old == b'A' { b'B' } else { b'A' };
        }
        let mut changed = v.clone().into_bytes();
        changed[i] = new;
        let changed = String::from_utf8(changed).unwrap();
        prop_assert!(Approval::open(&changed, &keys, &a.session_hash, a.issued).is_err(), "{} -> {}", v, changed);
        // Cut short or extended.
        prop_assert!(Approval::open(&v[..i], &keys, &a.session_hash, a.issued).is_err());
        let longer = format!("{v}A");
        prop_assert!(Approval::open(&longer, &keys, &a.session_hash, a.issued).is_err());
    }

    #[test]
    fn any_string_is_refused_without_panic(s in ".{0,300}", hash in any::<[u8; 16]>(), now in any::<u64>()) {
        prop_assert!(Approval::open(&s, &ring("k1", 1), &hash, now).is_err());
    }
}
