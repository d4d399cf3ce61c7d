//! Fuzzes reading the user name from a login body (`proxy::login::extract_username`), form
//! field or JSON pointer. Anyone can send a login request, and the gateway parses its body
//! before the VMS has said a word, so no body may panic it, and whatever comes out must be a
//! usable name: not empty, at most 255 bytes, trimmed, no control characters.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_gateway::config::UsernameIn;
use mfa_gateway::proxy::login::extract_username;

fn check(name: &str) {
    assert!(!name.is_empty(), "empty name");
    assert!(name.len() <= 255, "name of {} bytes", name.len());
    assert_eq!(name.trim(), name, "untrimmed name");
    assert!(!name.chars().any(char::is_control), "control character");
}

fuzz_target!(|data: &[u8]| {
    // The first line doubles as a configured field name or pointer, the rest as the body.
    let (first, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let first = String::from_utf8_lossy(first).into_owned();
    let specs = [
        UsernameIn::FormField("username".into()),
        UsernameIn::FormField(first.clone()),
        UsernameIn::JsonPointer("/user/name".into()),
        UsernameIn::JsonPointer(first),
    ];
    for spec in &specs {
        for input in [body, data] {
            if let Some(name) = extract_username(spec, input) {
                check(&name);
            }
        }
    }
});
