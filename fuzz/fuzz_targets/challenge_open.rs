//! Fuzzes opening a stored challenge (`mfa::challenge::Challenge::open`) with the id from a
//! client's cookie. The record comes from Redis and the id from the client, so neither may
//! panic the gateway, and a real record changed in any byte must not open.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mfa_gateway::auth::crypto::KeyRing;
use mfa_gateway::mfa::challenge::{Challenge, Step, Withheld, store_key};

const ID: &str = "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn keys() -> &'static KeyRing {
    static KEYS: OnceLock<KeyRing> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(17) ^ 0x3c).collect();
        KeyRing::new("k1", vec![("k1".into(), zeroize::Zeroizing::new(key))])
            .unwrap_or_else(|e| panic!("test key: {e}"))
    })
}

fn sealed() -> &'static [u8] {
    static BLOB: OnceLock<Vec<u8>> = OnceLock::new();
    BLOB.get_or_init(|| {
        let ch = Challenge {
            user: "alice".into(),
            role: "msp".into(),
            state: "enforced".into(),
            step: Step::Verify,
            can_postpone: false,
            created: 1,
            expires: 301,
            client: None,
            pending_secret: None,
            pending_member: None,
            session_hash: [7; 16],
            response: Withheld {
                status: 302,
                headers: vec![("set-cookie".into(), "Uz0x".into())],
                body: String::new(),
            },
        };
        ch.seal(keys(), ID)
            .unwrap_or_else(|e| panic!("sealing the sample: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    // Arbitrary id and record.
    let split = data
        .first()
        .map_or(0, |b| usize::from(*b) % 80)
        .min(data.len());
    let (id, blob) = data.split_at(split);
    let id = String::from_utf8_lossy(id);
    let _ = store_key(&id);
    let _ = Challenge::open(keys(), &id, blob);
    // Use any opened record the way the gateway does.
    if let Ok(ch) = Challenge::open(keys(), &id, blob) {
        let _ = ch.response.rebuild();
    }

    // The real record with the input XORed over it: opens only if nothing changed.
    let mut changed = sealed().to_vec();
    let mut any = false;
    for (b, x) in changed.iter_mut().zip(data) {
        *b ^= x;
        any |= *x != 0;
    }
    assert_eq!(Challenge::open(keys(), ID, &changed).is_ok(), !any);
});
