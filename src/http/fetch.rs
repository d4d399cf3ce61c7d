//! Navigation or background: whether a request is a page the browser shows, or a script's
//! (`fetch`, XHR, a WebSocket) that would not know what to do with an HTML page.
//!
//! Decided from what browsers send, in order of reliability: `Sec-Fetch-Mode` (`navigate` is
//! a navigation, anything else is not), `Sec-Fetch-Dest` (`document`, `iframe`, `frame` are
//! pages), `X-Requested-With: XMLHttpRequest` (jQuery and older front ends), and last
//! `Accept` (a request that accepts JSON but not HTML). A request that says none of these is
//! taken for a navigation: an old browser's page load then goes through the normal flow, and
//! a script that sends nothing of the kind gets what it got before.

use http::HeaderMap;
use http::header::{ACCEPT, HeaderName};

const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
const SEC_FETCH_DEST: HeaderName = HeaderName::from_static("sec-fetch-dest");
const X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");

/// Whether the request comes from a script rather than a page load.
pub fn is_background(headers: &HeaderMap) -> bool {
    let text = |n: &HeaderName| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(mode) = text(&SEC_FETCH_MODE) {
        return !mode.eq_ignore_ascii_case("navigate");
    }
    if let Some(dest) = text(&SEC_FETCH_DEST) {
        return !["document", "iframe", "frame"]
            .iter()
            .any(|d| dest.eq_ignore_ascii_case(d));
    }
    if text(&X_REQUESTED_WITH).is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest")) {
        return true;
    }
    match text(&ACCEPT) {
        Some(accept) => {
            let a = accept.to_ascii_lowercase();
            !a.contains("text/html") && (a.contains("json") || a.contains("javascript"))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn browsers_and_scripts_are_told_apart() {
        let background = [
            h(&[("sec-fetch-mode", "cors"), ("accept", "text/html")]),
            h(&[("sec-fetch-mode", "no-cors")]),
            h(&[
                ("sec-fetch-mode", "same-origin"),
                ("sec-fetch-dest", "empty"),
            ]),
            h(&[("sec-fetch-mode", "websocket")]),
            h(&[("sec-fetch-dest", "empty")]),
            h(&[("x-requested-with", "XMLHttpRequest"), ("accept", "*/*")]),
            h(&[("accept", "application/json, text/plain, */*")]),
        ];
        for (i, b) in background.iter().enumerate() {
            assert!(is_background(b), "{i}: {b:?}");
        }
        let navigation = [
            h(&[
                ("sec-fetch-mode", "navigate"),
                ("accept", "application/json"),
            ]),
            h(&[("sec-fetch-dest", "document")]),
            h(&[("sec-fetch-dest", "iframe")]),
            h(&[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")]),
            h(&[("accept", "*/*")]),
            h(&[]),
        ];
        for (i, n) in navigation.iter().enumerate() {
            assert!(!is_background(n), "{i}: {n:?}");
        }
    }
}
