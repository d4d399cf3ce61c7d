//! Fuzzes the removal of session ids from forwarded URLs (`vms_reading::url_session`), on raw text
//! and on what `http::Uri` parses from it, as the gateway sees a request target.
//!
//! Invariants: nothing panics; a stripped URL has nothing left to strip (so no session
//! parameter survives, in any case or percent-encoding); what is removed is only session
//! parameters (the result is never longer); a valid request target stays valid.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_gateway::vms_reading::url_session::SessionParams;

fn check(params: &SessionParams, path: &str, query: Option<&str>, parsed: bool) {
    let Some(out) = params.strip(path, query) else {
        return;
    };
    assert!(out.len() <= path.len() + query.map_or(0, |q| q.len() + 1));
    let (p, q) = match out.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (out.as_str(), None),
    };
    assert_eq!(params.strip(p, q), None, "{path:?} {query:?} -> {out:?}");
    // Removing parameters cannot make a valid request target invalid. Checked on what
    // `http::Uri` parsed, as the gateway gets it: raw text may hold a `#` that a parser drops
    // with everything after it, and hyper's paths always start with `/`.
    if !parsed || !path.starts_with('/') {
        return;
    }
    let whole = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    if http::uri::PathAndQuery::try_from(whole.as_str()).is_ok() {
        assert!(http::uri::PathAndQuery::try_from(out.as_str()).is_ok(), "{whole:?} -> {out:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let params = SessionParams::new(["jsessionid", "VMSSESSION", "PHPSESSID"]);
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    check(&params, path, query, false);
    if let Ok(uri) = text.parse::<http::Uri>() {
        check(&params, uri.path(), uri.query(), true);
    }
});
