//! Fuzzes the routing decision on request paths (`vms_reading::path::classify`): which paths the
//! gateway answers, forwards or refuses. The invariant is the security property itself:
//! nothing forwarded can be read, even by a lenient server, as a path under the reserved
//! prefix, and only paths under the prefix as written reach a gateway handler.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_gateway::vms_reading::path::{PathVerdict, classify, lenient_reading};

const PREFIX: &str = "/.mfa/";

fn check(path: &str) {
    let lenient = lenient_reading(path);
    match classify(path, PREFIX) {
        PathVerdict::Owned => assert!(path.starts_with(PREFIX) || path == "/.mfa"),
        PathVerdict::Forward => {
            assert!(path.starts_with('/'));
            assert!(
                !lenient.starts_with(PREFIX) && lenient != "/.mfa",
                "{path:?} -> {lenient:?}"
            );
        }
        PathVerdict::Refuse => assert!(!path.starts_with(PREFIX)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(text);
    // As hyper hands it over after parsing a request target.
    if let Ok(uri) = text.parse::<http::Uri>() {
        check(uri.path());
    }
});
