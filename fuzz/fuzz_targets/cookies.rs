//! Fuzzes the gateway's cookie handling: reading `Cookie` headers (`gate::cookies`), removing
//! the VMS session and the gateway's own cookies before a request goes upstream, reading
//! `Set-Cookie` answers, writing the gateway's cookies, and verifying approval cookies
//! (`gate::approval::Approval::open`). All of it sees raw client or VMS bytes.
//!
//! Invariants: nothing panics; after removal no removed cookie is left and every other
//! cookie is still there, in order; after the upstream filter, even a lenient reading
//! (commas, case, percent-encoding, quotes) finds no session value except one taken from the
//! approved cookie; a made-up approval never verifies.

#![no_main]

use std::sync::OnceLock;

use http::header::{COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use libfuzzer_sys::fuzz_target;
use mfa_gateway::auth::crypto::KeyRing;
use mfa_gateway::gate::approval::{APPROVAL_COOKIE, Approval, session_hash};
use mfa_gateway::gate::cookies::{
    CHALLENGE_COOKIE, filter_for_upstream, gateway_cookie, remove_request_cookies, request_cookie,
    request_cookies, response_cookies,
};

fn keys() -> &'static KeyRing {
    static KEYS: OnceLock<KeyRing> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        KeyRing::new("k1", vec![("k1".into(), zeroize::Zeroizing::new(key))])
            .unwrap_or_else(|e| panic!("test key: {e}"))
    })
}

fn removed(name: &str) -> bool {
    name == "VMSSESSION" || name == APPROVAL_COOKIE || name == CHALLENGE_COOKIE
}

/// Session values a lenient server could find in the request.
fn lenient_sessions(h: &HeaderMap) -> Vec<String> {
    h.get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([';', ',']))
        .filter_map(|part| {
            let (name, value) = part.split_once('=')?;
            let name = name.trim().trim_matches('"');
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            let name = name.trim().trim_matches('"').trim_start_matches('$').trim();
            name.eq_ignore_ascii_case("VMSSESSION")
                .then(|| value.trim().to_string())
        })
        .filter(|v| !v.is_empty())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let mut request = HeaderMap::new();
    let mut response = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            request.append(COOKIE, v.clone());
            response.append(SET_COOKIE, v);
        }
    }

    let names = vec!["VMSSESSION".to_string(), "SID".to_string()];
    let hash = session_hash(&names, |n| request_cookie(&request, n)).unwrap_or([0; 16]);
    for (name, value) in request_cookies(&request) {
        assert!(Approval::open(value, keys(), &hash, 1_700_000_000).is_err());
        let _ = gateway_cookie(name, value, None, cookie::SameSite::Lax);
    }
    assert!(Approval::open(&String::from_utf8_lossy(data), keys(), &hash, 0).is_err());

    let kept: Vec<(String, String)> = request_cookies(&request)
        .filter(|(n, _)| !removed(n))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let mut stripped = request.clone();
    remove_request_cookies(&mut stripped, removed);
    let after: Vec<(String, String)> = request_cookies(&stripped)
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert!(after.iter().all(|(n, _)| !removed(n)), "{after:?}");
    assert_eq!(after, kept);

    let sessions = vec!["VMSSESSION".to_string()];
    let approved = request_cookie(&request, "VMSSESSION")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    for keep in [false, true] {
        let mut upstream = request.clone();
        filter_for_upstream(&mut upstream, &sessions, keep);
        let seen = lenient_sessions(&upstream);
        match (&approved, keep) {
            // Only the approved pair may contribute: its value, or (for a reader that also
            // splits on commas) the part before a comma. A VMS never issues values with
            // commas (RFC 6265), so an approval for such a value cannot be had.
            (Some(v), true) => assert!(
                seen.len() <= 1
                    && seen
                        .iter()
                        .all(|s| s == v || v.split(',').next().map(str::trim) == Some(s.as_str())),
                "{seen:?}"
            ),
            _ => assert!(seen.is_empty(), "{seen:?}"),
        }
        assert!(request_cookie(&upstream, APPROVAL_COOKIE).is_none());
    }

    for c in response_cookies(&response) {
        assert!(!c.removal || c.value.is_empty() || c.name.len() < usize::MAX);
    }
});
