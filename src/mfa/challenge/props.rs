//! Property tests for the sealed challenge record.
//!
//! A challenge holds a withheld VMS session, so for any challenge: it opens to exactly what
//! was sealed, only under its own id and key; any change to the stored record is detected;
//! arbitrary bytes never open and never panic; and the withheld response is rebuilt byte
//! for byte, every header and body byte included.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use zeroize::Zeroizing;

use super::{Challenge, Step, Withheld, new_id};
use crate::auth::crypto::KeyRing;

fn ring(fill: u8) -> KeyRing {
    let key: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(13) ^ fill).collect();
    KeyRing::new("k1", vec![("k1".to_string(), Zeroizing::new(key))]).unwrap()
}

/// A response head and body as the VMS might send them: any status, repeated headers,
/// header values with obs-text bytes, any body bytes.
fn response() -> impl Strategy<Value = (http::response::Parts, Vec<u8>)> {
    let header = (
        "[a-z][a-z0-9-]{0,20}",
        prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')], 0..60),
    );
    (
        100u16..1000,
        prop::collection::vec(header, 0..12),
        prop::collection::vec(any::<u8>(), 0..2048),
    )
        .prop_map(|(status, headers, body)| {
            let mut b = http::Response::builder().status(status);
            for (n, v) in headers {
                b = b.header(n, http::HeaderValue::from_bytes(&v).unwrap());
            }
            (b.body(()).unwrap().into_parts().0, body)
        })
}

fn challenge() -> impl Strategy<Value = Challenge> {
    (
        (
            ".{0,40}",
            "[a-z-]{0,32}",
            prop::sample::select(vec!["none", "available", "enforced"]),
        ),
        prop::sample::select(vec![
            Step::Verify,
            Step::Enroll,
            Step::EnrollmentCode,
            Step::Offer,
            Step::Recovery,
            Step::Notice,
            Step::Passkey,
        ]),
        (any::<bool>(), any::<u64>(), any::<u64>(), any::<u64>()),
        (
            prop::option::of("[0-9a-f.:]{1,39}"),
            prop::option::of("[A-Za-z0-9_-]{27}"),
            prop::option::of(".{0,80}"),
        ),
        any::<[u8; 16]>(),
        response(),
    )
        .prop_map(
            |(
                (user, role, state),
                step,
                (can_postpone, created, expires, epoch),
                (client, secret, member),
                hash,
                (parts, body),
            )| Challenge {
                user,
                role,
                state: state.to_string(),
                step,
                can_postpone,
                created,
                expires,
                client,
                pending_secret: secret,
                pending_member: member,
                session_hash: hash,
                response: Withheld::capture(&parts, &body),
                recovery_codes: None,
                recovery_remaining: None,
                epoch,
                pending_replaced: false,
                landing: None,
                enrollment_ticket: None,
                methods: crate::policy::MfaMethods::TOTP,
                code_in_grace: false,
                email_check: None,
            },
        )
}

fn same(a: &Challenge, b: &Challenge) -> bool {
    serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_challenge_opens_only_under_its_id_and_key(ch in challenge()) {
        let keys = ring(1);
        let id = new_id();
        let blob = ch.seal(&keys, &id).unwrap();
        prop_assert!(same(&Challenge::open(&keys, &id, &blob).unwrap(), &ch));
        prop_assert!(Challenge::open(&keys, &new_id(), &blob).is_err());
        prop_assert!(Challenge::open(&ring(2), &id, &blob).is_err());
    }

    #[test]
    fn any_change_to_the_record_is_detected(
        ch in challenge(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<prop::sample::Index>(),
    ) {
        let keys = ring(1);
        let id = new_id();
        let blob = ch.seal(&keys, &id).unwrap();
        let mut flipped = blob.clone();
        let i = at.index(flipped.len());
        flipped[i] ^= 1 << bit;
        prop_assert!(Challenge::open(&keys, &id, &flipped).is_err(), "flip at {}", i);
        prop_assert!(Challenge::open(&keys, &id, &blob[..cut.index(blob.len())]).is_err());
    }

    #[test]
    fn garbage_never_opens(junk in prop::collection::vec(any::<u8>(), 0..300), id in ".{0,50}") {
        prop_assert!(Challenge::open(&ring(1), &id, &junk).is_err());
    }

    #[test]
    fn the_withheld_response_is_rebuilt_byte_for_byte((parts, body) in response()) {
        let w = Withheld::capture(&parts, &body);
        let (status, headers, rebuilt) = w.rebuild().unwrap();
        prop_assert_eq!(status, parts.status);
        prop_assert_eq!(headers, parts.headers);
        prop_assert_eq!(rebuilt, body);
    }
}
