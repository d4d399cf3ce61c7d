//! Property tests for the crypto core.
//!
//! Every sealed value, for any key, purpose, context and plaintext, must open to exactly
//! what was sealed, and only with that key, purpose and context; any change to a sealed
//! value or a MAC must be detected, and no input, however malformed, may panic. Example
//! tests pin formats; these search the input space.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use zeroize::Zeroizing;

use super::{CryptoError, KeyRing, Purpose, open_with, seal_with};

fn purpose() -> impl Strategy<Value = Purpose> {
    prop::sample::select(&Purpose::ALL[..])
}

fn master() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 32..80)
}

fn key_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,16}"
}

/// Two rings over the same two keys, `a` active in the first and `b` in the second.
fn rings() -> impl Strategy<Value = (KeyRing, KeyRing, KeyRing)> {
    (key_id(), key_id(), master(), master())
        .prop_filter("distinct ids", |(a, b, _, _)| a != b)
        .prop_map(|(a, b, ka, kb)| {
            let both = |active: &str| {
                KeyRing::new(
                    active,
                    vec![
                        (a.clone(), Zeroizing::new(ka.clone())),
                        (b.clone(), Zeroizing::new(kb.clone())),
                    ],
                )
                .unwrap()
            };
            let only_b = KeyRing::new(&b, vec![(b.clone(), Zeroizing::new(kb.clone()))]).unwrap();
            (both(&a), both(&b), only_b)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn sealed_values_open_only_in_their_context(
        (ring_a, ring_b, only_b) in rings(),
        p in purpose(),
        other_p in purpose(),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        other_aad in prop::collection::vec(any::<u8>(), 0..64),
        plain in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let blob = ring_a.seal(p, &aad, &plain).unwrap();
        prop_assert_eq!(ring_a.open(p, &aad, &blob).unwrap().to_vec(), plain.clone());
        // Rotation: the other ring still holds the key that sealed it.
        prop_assert_eq!(ring_b.open(p, &aad, &blob).unwrap().to_vec(), plain.clone());
        prop_assert_eq!(KeyRing::key_id_of(&blob), Some(ring_a.active_id()));
        let removed = only_b.open(p, &aad, &blob);
        let is_unknown_key = matches!(removed, Err(CryptoError::UnknownKeyId { .. }));
        prop_assert!(is_unknown_key);
        if other_p != p {
            prop_assert!(ring_a.open(other_p, &aad, &blob).is_err());
        }
        if other_aad != aad {
            prop_assert!(ring_a.open(p, &other_aad, &blob).is_err());
        }
    }

    #[test]
    fn any_change_to_a_sealed_value_is_detected(
        (ring, _, _) in rings(),
        p in purpose(),
        plain in prop::collection::vec(any::<u8>(), 0..256),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<prop::sample::Index>(),
    ) {
        let blob = ring.seal(p, b"ctx", &plain).unwrap();
        let mut flipped = blob.clone();
        let i = at.index(flipped.len());
        flipped[i] ^= 1 << bit;
        prop_assert!(ring.open(p, b"ctx", &flipped).is_err(), "flip at {}", i);
        let short = &blob[..cut.index(blob.len())];
        prop_assert!(ring.open(p, b"ctx", short).is_err());
        let mut longer = blob.clone();
        longer.push(0);
        prop_assert!(ring.open(p, b"ctx", &longer).is_err());
    }

    #[test]
    fn garbage_never_opens_and_never_panics(
        (ring, _, _) in rings(),
        p in purpose(),
        junk in prop::collection::vec(any::<u8>(), 0..200),
        key in any::<[u8; 32]>(),
    ) {
        prop_assert!(ring.open(p, b"", &junk).is_err());
        prop_assert!(open_with(&key, b"", &junk).is_err());
        let _ = KeyRing::key_id_of(&junk);
    }

    #[test]
    fn derived_key_sealing_round_trips_and_detects_changes(
        key in any::<[u8; 32]>(),
        other in any::<[u8; 32]>(),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        plain in prop::collection::vec(any::<u8>(), 0..1024),
        at in any::<prop::sample::Index>(),
    ) {
        let blob = seal_with(&key, &aad, &plain).unwrap();
        prop_assert_eq!(open_with(&key, &aad, &blob).unwrap().to_vec(), plain.clone());
        if other != key {
            prop_assert!(open_with(&other, &aad, &blob).is_err());
        }
        let mut flipped = blob.clone();
        let i = at.index(flipped.len());
        flipped[i] ^= 0x80;
        prop_assert!(open_with(&key, &aad, &flipped).is_err());
    }

    #[test]
    fn macs_verify_only_unchanged_data(
        (ring_a, ring_b, only_b) in rings(),
        p in purpose(),
        data in prop::collection::vec(any::<u8>(), 0..512),
        at in any::<prop::sample::Index>(),
    ) {
        let (kid, tag) = ring_a.mac(p, &data);
        prop_assert!(ring_a.verify_mac(p, kid, &data, &tag));
        prop_assert!(ring_b.verify_mac(p, kid, &data, &tag), "after rotation");
        prop_assert!(!only_b.verify_mac(p, kid, &data, &tag), "after removal");
        let mut bad_tag = tag;
        bad_tag[at.index(32)] ^= 1;
        prop_assert!(!ring_a.verify_mac(p, kid, &data, &bad_tag));
        prop_assert!(!ring_a.verify_mac(p, kid, &data, &tag[..31]));
        if !data.is_empty() {
            let mut changed = data.clone();
            changed[at.index(data.len())] ^= 1;
            prop_assert!(!ring_a.verify_mac(p, kid, &changed, &tag));
        }
        for other in Purpose::ALL.into_iter().filter(|o| *o != p) {
            prop_assert!(!ring_a.verify_mac(other, kid, &data, &tag));
        }
    }
}
