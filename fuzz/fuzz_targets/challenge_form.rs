//! Fuzzes what the MFA pages do with a posted form: `application/x-www-form-urlencoded`
//! parsing (as `web::flow` does), the CSRF check (`mfa::challenge::csrf_ok`) and reading the
//! typed code (`auth::totp::normalize_code`, then `auth::totp::verify`).
//!
//! Invariants: nothing panics; only the exact token issued for the challenge passes the CSRF
//! check; an accepted code is six ASCII digits.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mfa_gateway::auth::crypto::KeyRing;
use mfa_gateway::auth::totp::{normalize_code, verify};
use mfa_gateway::mfa::challenge::{csrf_ok, csrf_token};

const ID: &str = "fuzzed-challenge-id";
const SECRET: &[u8] = b"12345678901234567890";

fn keys() -> &'static KeyRing {
    static KEYS: OnceLock<KeyRing> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(29) ^ 0xa5).collect();
        KeyRing::new("k1", vec![("k1".into(), zeroize::Zeroizing::new(key))])
            .unwrap_or_else(|e| panic!("test key: {e}"))
    })
}

fn check_csrf(token: &str) {
    let issued = csrf_token(keys(), ID);
    assert_eq!(csrf_ok(keys(), ID, token), token == issued, "{token:?}");
}

fuzz_target!(|data: &[u8]| {
    // The first eight bytes also give a clock reading, as the gateway would pass it.
    let now = data
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes);
    for (name, value) in form_urlencoded::parse(data) {
        match name.as_ref() {
            "csrf" => check_csrf(&value),
            "code" => {
                if let Some(code) = normalize_code(&value) {
                    assert_eq!(code.len(), 6);
                    assert!(code.bytes().all(|b| b.is_ascii_digit()));
                }
                for window in 0..=3 {
                    let _ = verify(SECRET, &value, now, window);
                }
            }
            _ => {}
        }
    }
    check_csrf(&String::from_utf8_lossy(data));
});
