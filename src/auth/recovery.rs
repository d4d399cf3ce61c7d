//! One-time recovery codes: making them, their canonical form, and their keyed, salted and
//! stretched storage records.
//!
//! A user who lost their phone signs in with one of about ten codes shown once at enrollment.
//! Only a record of each code is stored (in Redis, next to the user's TOTP secret), so the
//! records must be worthless to someone who reads or writes Redis:
//!
//! - the code is first keyed with the key ring ([`Purpose::RecoveryCode`], bound to the user),
//!   so a record planted in Redis or copied from another user matches no code;
//! - then salted and stretched with PBKDF2-HMAC-SHA256, so a stolen record together with the
//!   key cannot be reversed by precomputation.
//!
//! The record names the key it was made with, so codes keep working across a key rotation
//! while that key stays in the ring.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::crypto::{CryptoError, KeyRing, Purpose, random_bytes};

/// Digits in a recovery code: 20 decimal digits carry 66 bits of entropy. Digits only, so
/// the same numeric code field (with a numeric keypad on phones) takes a TOTP code or a
/// recovery code; 66 bits are far beyond reach online (the MFA step locks after a few
/// failures) and, salted and stretched below, offline.
const DIGITS: usize = 20;
/// Longest input considered for a recovery code, to bound work on garbage.
const MAX_INPUT: usize = 64;
/// PBKDF2 iterations for recovery codes. A code carries 66 bits of entropy, so the stored
/// hashes cannot be brute-forced offline (2^66 guesses of 10,000 iterations each); the salt
/// rules out precomputation. The count stays modest because a login with a recovery code
/// checks it against each of the user's stored codes (about 10), which must stay within a
/// few milliseconds.
const PBKDF2_ITERATIONS: NonZeroU32 = match NonZeroU32::new(10_000) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};
/// Refuse stored records asking for more work than this (corruption or tampering).
const PBKDF2_MAX_ITERATIONS: u32 = 1_000_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// Keyed records; the unkeyed `pbkdf2-sha256` of earlier versions is no longer accepted.
const HASH_SCHEME: &str = "pbkdf2-sha256-keyed";

/// A new one-time recovery code: 20 random decimal digits in groups of four,
/// e.g. `4821 3905 7112 0086 5530`.
pub fn new_code() -> String {
    let mut out = String::with_capacity(DIGITS + 4);
    let mut produced = 0;
    while produced < DIGITS {
        // Rejection sampling keeps every digit uniform: bytes >= 250 are drawn again.
        for b in random_bytes::<32>() {
            if b >= 250 || produced == DIGITS {
                continue;
            }
            if produced > 0 && produced % 4 == 0 {
                out.push(' ');
            }
            out.push(char::from(b'0' + b % 10));
            produced += 1;
        }
    }
    out
}

/// The canonical form of a typed recovery code (its 20 digits), or `None` if it cannot be
/// one. Spaces and dashes are ignored.
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

/// The key a recovery code is stretched from: HMAC-SHA256 under the key ring's
/// [`Purpose::RecoveryCode`] key `key_id` over the user and the code, so a record made without
/// the key ring (planted in Redis, or copied from another user's record) matches no code.
fn pepper(
    keys: &KeyRing,
    key_id: &str,
    user: &str,
    canonical: &str,
) -> Option<Zeroizing<[u8; 32]>> {
    let mut data = Zeroizing::new(Vec::with_capacity(user.len() + canonical.len() + 1));
    data.extend_from_slice(user.as_bytes());
    data.push(0);
    data.extend_from_slice(canonical.as_bytes());
    keys.mac_under(Purpose::RecoveryCode, key_id, &data)
}

/// Salted PBKDF2-HMAC-SHA256 of a recovery code of `user` for storage, keyed by the key
/// ring's active key (see `pepper`):
/// `pbkdf2-sha256-keyed$<key id>$<iterations>$<salt>$<hash>` (salt and hash base64url).
pub fn hash(keys: &KeyRing, user: &str, code: &str) -> Result<String, CryptoError> {
    let canonical = Zeroizing::new(normalize(code).ok_or(CryptoError::InvalidRecoveryCode)?);
    let key_id = keys.active_id();
    let pepper = pepper(keys, key_id, user, &canonical).ok_or(CryptoError::KeySetup)?;
    let salt = random_bytes::<SALT_LEN>();
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        PBKDF2_ITERATIONS,
        &salt,
        pepper.as_slice(),
        &mut hash,
    );
    Ok(format!(
        "{HASH_SCHEME}${key_id}${}${}${}",
        PBKDF2_ITERATIONS,
        URL_SAFE_NO_PAD.encode(salt),
        URL_SAFE_NO_PAD.encode(hash)
    ))
}

/// Whether a stored record is of the current, keyed kind (records of the unkeyed kind that
/// earlier versions wrote match no code any more).
pub fn is_keyed(stored: &str) -> bool {
    stored
        .split_once('$')
        .is_some_and(|(scheme, _)| scheme == HASH_SCHEME)
}

/// Whether `code` is `user`'s code of a record from [`hash`] (constant-time
/// compare), with the record's key still in the ring. Malformed or unkeyed records, records
/// of another user and records of a key no longer in the ring are `false`.
pub fn verify(keys: &KeyRing, user: &str, code: &str, stored: &str) -> bool {
    let Some(canonical) = normalize(code).map(Zeroizing::new) else {
        return false;
    };
    let mut parts = stored.split('$');
    let (Some(scheme), Some(key_id), Some(iterations), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    if scheme != HASH_SCHEME {
        return false;
    }
    let Some(iterations) = iterations
        .parse::<u32>()
        .ok()
        .filter(|&n| n <= PBKDF2_MAX_ITERATIONS)
        .and_then(NonZeroU32::new)
    else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (URL_SAFE_NO_PAD.decode(salt), URL_SAFE_NO_PAD.decode(hash)) else {
        return false;
    };
    if salt.len() != SALT_LEN || hash.len() != HASH_LEN {
        return false;
    }
    let Some(pepper) = pepper(keys, key_id, user, &canonical) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        pepper.as_slice(),
        &hash,
    )
    .is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::auth::crypto::testing;

    #[test]
    fn recovery_code_format() {
        for _ in 0..50 {
            let code = new_code();
            assert_eq!(code.len(), 24, "{code}");
            let groups: Vec<&str> = code.split(' ').collect();
            assert_eq!(groups.len(), 5, "{code}");
            assert!(
                groups
                    .iter()
                    .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit()))
            );
            assert_eq!(normalize(&code).unwrap(), code.replace(' ', ""));
        }
        assert_ne!(new_code(), new_code());
    }

    #[test]
    fn recovery_code_normalization() {
        assert_eq!(
            normalize(" 4821-3905 7112 0086 5530 ").unwrap(),
            "48213905711200865530"
        );
        for bad in [
            "",
            "4821 3905 7112 0086 553",
            "4821 3905 7112 0086 55301",
            "4821 3905 7112 0086 553a",
            "4821_3905_7112_0086_5530",
            "４821 3905 7112 0086 5530",
            &"1".repeat(10_000),
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn recovery_code_hash_and_verify() {
        let keys = testing::ring("k1", &[("k1", 1), ("k0", 2)]);
        let code = new_code();
        let stored = hash(&keys, "alice", &code).unwrap();
        assert!(
            stored.starts_with("pbkdf2-sha256-keyed$k1$10000$"),
            "{stored}"
        );
        assert!(is_keyed(&stored));
        assert!(!stored.contains(&code.replace(' ', "")));
        assert!(verify(&keys, "alice", &code, &stored));
        assert!(verify(&keys, "alice", &code.replace(' ', "-"), &stored));
        assert!(verify(&keys, "alice", &code.replace(' ', ""), &stored));
        // Salted: the same code hashes differently each time.
        assert_ne!(hash(&keys, "alice", &code).unwrap(), stored);

        let other = new_code();
        assert!(!verify(&keys, "alice", &other, &stored));
        assert!(!verify(&keys, "alice", "", &stored));
        assert!(!verify(&keys, "alice", "garbage", &stored));
        assert_eq!(
            hash(&keys, "alice", "garbage").unwrap_err(),
            CryptoError::InvalidRecoveryCode
        );
        // Keyed by user and key ring: another user's record, or a ring without the key (an
        // attacker planting a record in Redis), matches nothing.
        assert!(!verify(&keys, "bob", &code, &stored));
        let foreign = testing::ring("k1", &[("k1", 9)]);
        assert!(!verify(&foreign, "alice", &code, &stored));
        let planted = hash(&foreign, "alice", &code).unwrap();
        assert!(!verify(&keys, "alice", &code, &planted));
        // A record under a key still in the ring (not the active one) verifies; once the key
        // is removed it does not.
        let old_ring = testing::ring("k0", &[("k0", 2)]);
        let under_old = hash(&old_ring, "alice", &code).unwrap();
        assert!(verify(&keys, "alice", &code, &under_old));
        assert!(!verify(&foreign, "alice", &code, &under_old));
        // The unkeyed records of earlier versions: no longer accepted.
        let unkeyed = {
            let salt = random_bytes::<SALT_LEN>();
            let mut hash = [0u8; HASH_LEN];
            let canonical = normalize(&code).unwrap();
            pbkdf2::derive(
                pbkdf2::PBKDF2_HMAC_SHA256,
                PBKDF2_ITERATIONS,
                &salt,
                canonical.as_bytes(),
                &mut hash,
            );
            format!(
                "pbkdf2-sha256$10000${}${}",
                URL_SAFE_NO_PAD.encode(salt),
                URL_SAFE_NO_PAD.encode(hash)
            )
        };
        assert!(!is_keyed(&unkeyed));
        assert!(!verify(&keys, "alice", &code, &unkeyed));

        // Damaged or hostile records are rejected without panicking.
        let parts: Vec<&str> = stored.split('$').collect();
        let with = |i: usize, v: &str| {
            let mut p = parts.clone();
            p[i] = v;
            p.join("$")
        };
        for bad in [
            String::new(),
            "$$$$".to_owned(),
            with(0, "sha1"),
            with(0, "pbkdf2-sha256"),
            with(1, "nokey"),
            with(1, ""),
            with(2, "0"),
            with(2, "99999999"),
            with(2, "ten"),
            with(3, "AAAA"),
            with(3, "!!"),
            with(4, "AAAA"),
            format!("{stored}$extra"),
            stored.replace("$10000$", "$10001$"),
        ] {
            assert!(!verify(&keys, "alice", &code, &bad), "{bad:?}");
        }
    }
}
