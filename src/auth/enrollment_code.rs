//! One-time enrollment codes: the code an MSP reads to a user over the phone after a reset,
//! which the user types before a new authenticator app can be paired.
//!
//! A code is 8 random decimal digits from the CSPRNG, shown in two groups of four
//! (`4821 0937`). Only a keyed hash of it is stored: HMAC-SHA256 under the key ring
//! ([`Purpose::EnrollmentCode`]) over the user name and the digits, so a value read from Redis
//! reveals nothing without the key and a value copied to another user matches no code. The
//! stored form names the key it was made with (`<key id>.<64 hex digits>`), so a code stays
//! valid across a key rotation while that key is in the ring.
//!
//! 8 digits are 26.6 bits: far beyond reach online, because every attempt counts toward the
//! same lock as a wrong TOTP code, and a code lives a few days at most.

use super::crypto::{KeyRing, Purpose, random_bytes, random_token, sha256};

/// Digits in an enrollment code.
pub const DIGITS: usize = 8;
/// Longest input considered, to bound work on garbage.
const MAX_INPUT: usize = 32;

/// A new enrollment code: 8 uniform random digits (no grouping).
pub fn new_code() -> String {
    let mut out = String::with_capacity(DIGITS);
    while out.len() < DIGITS {
        // Rejection sampling keeps every digit uniform: bytes >= 250 are drawn again.
        for b in random_bytes::<16>() {
            if b < 250 && out.len() < DIGITS {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    out
}

/// The code as it is shown and read out: two groups of four digits (`4821 0937`).
pub fn grouped(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 1);
    for (i, c) in code.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The canonical form of a typed code (its 8 digits), or `None` if it cannot be one. Spaces
/// and dashes are ignored.
pub fn normalize(input: &str) -> Option<String> {
    if input.len() > MAX_INPUT {
        return None;
    }
    let mut out = String::with_capacity(DIGITS);
    for c in input.chars() {
        match c {
            ' ' | '-' | '\t' => continue,
            c if c.is_ascii_digit() => out.push(c),
            _ => return None,
        }
    }
    (out.len() == DIGITS).then_some(out)
}

/// What the MAC covers: the purpose's own prefix, the user, the digits.
fn mac_input(user: &str, code: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(user.len() + code.len() + 1);
    data.extend_from_slice(user.as_bytes());
    data.push(0);
    data.extend_from_slice(code.as_bytes());
    data
}

fn hex(tag: &[u8]) -> String {
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored form of `code` (canonical digits) for `user`, under the active key.
pub fn hash(keys: &KeyRing, user: &str, code: &str) -> String {
    let (kid, tag) = keys.mac(Purpose::EnrollmentCode, &mac_input(user, code));
    format!("{kid}.{}", hex(&tag))
}

/// The stored form `code` would have under the key that made `stored`, for an atomic compare
/// in the store; `None` if that key is no longer in the ring (no code can match then).
pub fn hash_like(keys: &KeyRing, stored: &str, user: &str, code: &str) -> Option<String> {
    let (kid, _) = stored.split_once('.')?;
    let tag = keys.mac_under(Purpose::EnrollmentCode, kid, &mac_input(user, code))?;
    Some(format!("{kid}.{}", hex(tag.as_slice())))
}

/// A new ticket for the sign-in that typed the right code (kept sealed in its challenge).
pub fn new_ticket() -> String {
    random_token()
}

/// What the store keeps of a ticket: its SHA-256, hex.
pub fn ticket_hash(ticket: &str) -> String {
    hex(&sha256(ticket.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::auth::crypto::testing as test_keys;

    #[test]
    fn codes_are_eight_uniform_digits_shown_in_two_groups() {
        let mut counts = [0u32; 10];
        for _ in 0..2000 {
            let c = new_code();
            assert_eq!(c.len(), DIGITS);
            for d in c.bytes() {
                assert!(d.is_ascii_digit());
                counts[usize::from(d - b'0')] += 1;
            }
        }
        // 16,000 digits: each about 1,600; a biased generator would stray far.
        assert!(
            counts.iter().all(|&n| (1300..1900).contains(&n)),
            "{counts:?}"
        );
        assert_ne!(new_code(), new_code());
        assert_eq!(grouped("48210937"), "4821 0937");
    }

    #[test]
    fn typed_codes_are_normalised_and_anything_else_refused() {
        assert_eq!(normalize("4821 0937").as_deref(), Some("48210937"));
        assert_eq!(normalize(" 4821-0937 ").as_deref(), Some("48210937"));
        assert_eq!(normalize("48210937").as_deref(), Some("48210937"));
        for bad in [
            "",
            "4821093",
            "482109371",
            "4821 093a",
            "123456",
            &"1".repeat(40),
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_stored_hash_is_keyed_bound_to_the_user_and_never_the_code() {
        let k1 = test_keys::ring("k1", &[("k1", 1)]);
        let h = hash(&k1, "alice", "48210937");
        assert!(h.starts_with("k1."), "{h}");
        assert_eq!(h.len(), 3 + 64);
        assert!(!h.contains("48210937"));
        assert_eq!(
            h,
            hash(&k1, "alice", "48210937"),
            "deterministic for the compare"
        );
        assert_ne!(h, hash(&k1, "bob", "48210937"), "bound to the user");
        assert_ne!(h, hash(&k1, "alice", "48210938"));
        let other = test_keys::ring("k1", &[("k1", 2)]);
        assert_ne!(h, hash(&other, "alice", "48210937"), "keyed");
        // After a rotation the code is still compared under the key that made it.
        let rotated = test_keys::ring("k2", &[("k1", 1), ("k2", 3)]);
        assert_eq!(
            hash_like(&rotated, &h, "alice", "48210937"),
            Some(h.clone())
        );
        assert_ne!(
            hash_like(&rotated, &h, "alice", "00000000"),
            Some(h.clone())
        );
        let gone = test_keys::ring("k2", &[("k2", 3)]);
        assert_eq!(hash_like(&gone, &h, "alice", "48210937"), None);
        assert_eq!(hash_like(&k1, "garbage", "alice", "48210937"), None);
    }
}
