//! The navigation helper (`vms.navigation_helper = true`, off by default): one small script
//! added to the VMS's HTML pages that moves the window where the gateway says, so a front end
//! that knows nothing of the gateway still reaches the MFA step.
//!
//! Why: when a page's script (`fetch`, XHR) posts a login or polls on a session that has
//! ended, the gateway cannot answer with a redirect to an HTML page (the script would follow
//! it out of sight and choke on the HTML). It answers `401` with JSON and the place in the
//! `Mfa-Location` header (`http::json_401`). A front end written for the gateway reads that
//! header itself; an old one that cannot be changed gets this script instead. It wraps
//! `fetch` and `XMLHttpRequest` and, on a `401` that carries `Mfa-Location` with a path on
//! this site, moves the window there. Nothing else on the page changes.
//!
//! ```text
//!  navigation GET ──► Accept-Encoding: identity ──► VMS
//!  VMS answer ──► text/html, not encoded? ──no──► unchanged
//!                    │yes
//!                    ▼
//!            CSP allows the script? ──no ('none')──► unchanged
//!                    │yes: its hash added to script-src (or script-src-elem)
//!                    ▼
//!            the page streamed through lol_html until <head…> (or <body…>): the script put
//!            first in <head>, the rest untouched; Content-Length dropped (the length changes)
//! ```
//!
//! * Compressed pages cannot be changed without decompressing them, so the helper asks the
//!   VMS for uncompressed HTML on navigations only (`Accept-Encoding: identity`); scripts,
//!   styles and data keep their compression. A page that arrives compressed anyway is passed
//!   through unchanged.
//! * The VMS's own Content-Security-Policy (and `-Report-Only`) headers get the script's hash,
//!   so the script runs under a strict policy, without `'unsafe-inline'`. A policy that
//!   already allows inline scripts (`'unsafe-inline'` without hashes or nonces) is left as it
//!   is: adding a hash would switch `'unsafe-inline'` off for the VMS's own scripts. A policy
//!   whose scripts are `'none'` gets no script. A policy set by a `<meta>` tag is not changed:
//!   the script comes first in `<head>`, before the tag, where that policy does not reach.
//! * `Mfa-Location` headers of the VMS's own answers are removed, so only the gateway moves
//!   the window; the script also refuses any place that is not a path on this site.

use std::sync::LazyLock;

use http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY,
    CONTENT_SECURITY_POLICY_REPORT_ONLY, CONTENT_TYPE, HeaderValue,
};
use http::{HeaderMap, Method, Response, StatusCode};

use crate::http::MFA_LOCATION;
use crate::http::body::Body;
use crate::http::head_insert::Page;

/// The script. It runs before the page's own scripts (first in `<head>`), so it wraps
/// `fetch` and `XMLHttpRequest` before they are used; it moves the window once at most.
pub const SCRIPT: &str = "(function(){\"use strict\";\
var moved=false;\
function go(status,to){\
if(moved||status!==401||typeof to!==\"string\"||to.charAt(0)!==\"/\")return;\
var u;try{u=new URL(to,window.location.href);}catch(e){return;}\
if(u.origin!==window.location.origin)return;\
moved=true;window.location.assign(u.href);}\
var f=window.fetch;\
if(typeof f===\"function\"){window.fetch=function(){\
return f.apply(this,arguments).then(function(r){\
try{go(r.status,r.headers.get(\"mfa-location\"));}catch(e){}return r;});};}\
var X=window.XMLHttpRequest;\
if(X&&X.prototype){var send=X.prototype.send;X.prototype.send=function(){\
var x=this;x.addEventListener(\"readystatechange\",function(){\
if(x.readyState>=2){try{go(x.status,x.getResponseHeader(\"mfa-location\"));}catch(e){}}});\
return send.apply(x,arguments);};}\
})();";

/// The element inserted into pages.
static TAG: LazyLock<String> = LazyLock::new(|| format!("<script>{SCRIPT}</script>"));

/// `'sha256-…'` of [`SCRIPT`], for the VMS's CSP.
static HASH: LazyLock<String> = LazyLock::new(|| {
    use base64::Engine as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, SCRIPT.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
});

/// The CSP hash-source of the script (for the docs and tests).
pub fn script_hash() -> &'static str {
    HASH.as_str()
}

/// Before forwarding: a page load (a `GET` navigation) asks for an uncompressed page, which
/// can take the script; whether it is one is returned for [`apply`]. Requests of scripts,
/// styles and images keep their `Accept-Encoding` and never get the script.
pub fn prepare_request(method: &Method, headers: &mut HeaderMap) -> bool {
    let page_load = method == Method::GET && !crate::http::fetch::is_background(headers);
    if page_load {
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    page_load
}

/// After the VMS answered: its own `Mfa-Location` removed, and the script added to the HTML
/// page of a page load when it can take it. Any other answer passes as it came.
pub fn apply(page_load: bool, resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(MFA_LOCATION);
    if !page_load || !takes_script(parts.status, &parts.headers) {
        return Response::from_parts(parts, body);
    }
    let Some(csp) = csp_with_hash(&parts.headers) else {
        return Response::from_parts(parts, body);
    };
    for (name, values) in csp {
        parts.headers.remove(&name);
        for v in values {
            parts.headers.append(name.clone(), v);
        }
    }
    // The page's length changes; it is sent without one (chunked, or by the end of an h2
    // stream). A page without <head> or <body> gets no script, and the hash allows nothing else.
    parts.headers.remove(CONTENT_LENGTH);
    let body = Body::Page(Box::new(Page::new(body, TAG.as_str())));
    Response::from_parts(parts, body)
}

/// A whole HTML page (not empty by status, not a range of one) that is not encoded.
fn takes_script(status: StatusCode, headers: &HeaderMap) -> bool {
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return false;
    }
    let html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/html"));
    let encoded = headers.get_all(CONTENT_ENCODING).iter().any(|v| {
        v.to_str().map_or(true, |s| {
            s.split(',')
                .any(|c| !c.trim().is_empty() && !c.trim().eq_ignore_ascii_case("identity"))
        })
    });
    html && !encoded
}

type CspHeaders = Vec<(http::HeaderName, Vec<HeaderValue>)>;

/// The VMS's CSP headers rewritten to allow the script, or `None` when one of its policies
/// allows no script at all (or a header cannot be read: the page is then left alone).
fn csp_with_hash(headers: &HeaderMap) -> Option<CspHeaders> {
    let mut out = Vec::new();
    for name in [CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY] {
        let mut values = Vec::new();
        for v in headers.get_all(&name) {
            let text = v.to_str().ok()?;
            let policies: Option<Vec<String>> = text.split(',').map(policy_with_hash).collect();
            let joined = policies?.join(",");
            values.push(HeaderValue::from_str(&joined).ok()?);
        }
        if !values.is_empty() {
            out.push((name, values));
        }
    }
    Some(out)
}

/// One policy (the text between commas) with the script's hash where `<script>` elements are
/// governed: `script-src-elem`, else `script-src`, else a `script-src` made from
/// `default-src`. `None` when scripts are `'none'`.
fn policy_with_hash(policy: &str) -> Option<String> {
    let directives: Vec<&str> = policy.split(';').collect();
    let name_of = |d: &str| {
        d.split_ascii_whitespace()
            .next()
            .map(str::to_ascii_lowercase)
            .unwrap_or_default()
    };
    let find = |n: &str| directives.iter().position(|d| name_of(d) == n);
    let (index, from_default) = match find("script-src-elem").or_else(|| find("script-src")) {
        Some(i) => (i, false),
        None => match find("default-src") {
            Some(i) => (i, true),
            None => return Some(policy.to_string()),
        },
    };
    let sources: Vec<&str> = directives[index].split_ascii_whitespace().skip(1).collect();
    let is = |s: &str, w: &str| s.eq_ignore_ascii_case(w);
    if sources.iter().any(|s| is(s, "'none'")) {
        return None;
    }
    let hashes_or_nonces = sources.iter().any(|s| {
        let l = s.to_ascii_lowercase();
        l.starts_with("'sha256-")
            || l.starts_with("'sha384-")
            || l.starts_with("'sha512-")
            || l.starts_with("'nonce-")
            || l == "'strict-dynamic'"
    });
    if sources.iter().any(|s| is(s, "'unsafe-inline'")) && !hashes_or_nonces {
        // Inline scripts are allowed already; a hash would turn that off.
        return Some(policy.to_string());
    }
    let mut directives: Vec<String> = directives.iter().map(|d| d.to_string()).collect();
    if from_default {
        directives.push(format!(" script-src {} {}", sources.join(" "), *HASH));
    } else {
        let d = &mut directives[index];
        let trimmed = d.trim_end().len();
        d.truncate(trimmed);
        d.push(' ');
        d.push_str(&HASH);
    }
    Some(directives.join(";"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use http_body_util::BodyExt;

    /// A page load's answer through the helper (pages split across frames are
    /// `http::head_insert`'s tests).
    async fn page(headers: &[(&str, &str)], chunks: &[&'static str]) -> (Response<Body>, String) {
        let mut b = Response::builder().status(200);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = b.body(Body::from(chunks.concat())).unwrap();
        let resp = apply(true, resp);
        let (parts, body) = resp.into_parts();
        let text = body.collect().await.unwrap().to_bytes();
        let text = String::from_utf8(text.to_vec()).unwrap();
        (Response::from_parts(parts, Body::empty()), text)
    }

    #[tokio::test]
    async fn the_script_goes_first_in_head_and_the_length_is_dropped() {
        let html = "<!DOCTYPE html><html lang=en><HEAD data-x=\"1\"><title>t</title></head><body>x</body></html>";
        let len = html.len().to_string();
        let (r, text) = page(
            &[
                ("content-type", "text/html; charset=utf-8"),
                ("content-length", &len),
            ],
            &[&html[..20], &html[20..]],
        )
        .await;
        let tag = format!("<script>{SCRIPT}</script>");
        assert_eq!(
            text,
            format!(
                "<!DOCTYPE html><html lang=en><HEAD data-x=\"1\">{tag}<title>t</title></head><body>x</body></html>"
            )
        );
        assert!(
            r.headers().get(CONTENT_LENGTH).is_none(),
            "the VMS's length no longer holds"
        );
    }

    #[tokio::test]
    async fn a_page_without_head_gets_it_before_body_and_header_is_not_head() {
        let (_, text) = page(
            &[("content-type", "text/html")],
            &["<!doctype html>\n<html><header>h</header><body>b</body></html>"],
        )
        .await;
        assert!(
            text.ends_with(&format!(
                "<header>h</header><script>{SCRIPT}</script><body>b</body></html>"
            )),
            "{text}"
        );
    }

    #[tokio::test]
    async fn other_answers_pass_unchanged() {
        let cases: &[&[(&str, &str)]] = &[
            &[("content-type", "application/json")],
            &[("content-type", "text/html"), ("content-encoding", "gzip")],
            &[
                ("content-type", "text/html"),
                (
                    "content-security-policy",
                    "default-src 'self'; script-src 'none'",
                ),
            ],
            &[],
        ];
        for h in cases {
            let (r, text) = page(h, &["<html><head></head></html>"]).await;
            assert_eq!(text, "<html><head></head></html>", "{h:?}");
            assert_eq!(r.headers().len(), h.len(), "{h:?}");
        }
        // A script's request for a page: unchanged.
        let resp = Response::builder()
            .header("content-type", "text/html")
            .body(Body::from("<html><head></head></html>"))
            .unwrap();
        let body = apply(false, resp).into_body().collect().await.unwrap();
        assert_eq!(body.to_bytes(), "<html><head></head></html>");
        // The VMS's own Mfa-Location never reaches the page.
        let (r, _) = page(
            &[("content-type", "application/json"), ("mfa-location", "/x")],
            &["{}"],
        )
        .await;
        assert!(r.headers().get(MFA_LOCATION).is_none());
    }

    #[tokio::test]
    async fn a_page_without_head_or_body_is_left_alone() {
        let big = "x".repeat(64 * 1024);
        let big: &'static str = Box::leak(big.into_boxed_str());
        let (_, text) = page(&[("content-type", "text/html")], &["<p>", big, "</p>"]).await;
        assert_eq!(text, format!("<p>{big}</p>"));
    }

    #[test]
    fn the_vms_policy_allows_the_script_and_nothing_more() {
        let h = script_hash();
        let cases = [
            // script-src gets the hash; the rest stays byte for byte.
            (
                "default-src 'self'; script-src 'self' 'sha256-abc='; img-src *",
                format!("default-src 'self'; script-src 'self' 'sha256-abc=' {h}; img-src *"),
            ),
            // script-src-elem governs <script> elements when present.
            (
                "script-src 'self'; script-src-elem 'self'",
                format!("script-src 'self'; script-src-elem 'self' {h}"),
            ),
            // default-src only: a script-src made from it, so styles keep their default-src.
            (
                "default-src 'self'",
                format!("default-src 'self'; script-src 'self' {h}"),
            ),
            // ... unless it allows inline scripts already.
            (
                "default-src 'self' 'unsafe-inline'; report-uri /r",
                "default-src 'self' 'unsafe-inline'; report-uri /r".to_string(),
            ),
            // Inline already allowed: unchanged (a hash would switch 'unsafe-inline' off).
            (
                "script-src 'self' 'unsafe-inline'",
                "script-src 'self' 'unsafe-inline'".to_string(),
            ),
            // With a nonce 'unsafe-inline' is off already: the hash is needed.
            (
                "script-src 'nonce-r4nd' 'unsafe-inline' 'strict-dynamic'",
                format!("script-src 'nonce-r4nd' 'unsafe-inline' 'strict-dynamic' {h}"),
            ),
            // Nothing about scripts: unchanged.
            (
                "frame-ancestors 'none'",
                "frame-ancestors 'none'".to_string(),
            ),
        ];
        for (policy, want) in cases {
            assert_eq!(policy_with_hash(policy).unwrap(), want, "{policy}");
        }
        assert!(policy_with_hash("script-src 'none'").is_none());
        assert!(policy_with_hash("default-src 'NONE'").is_none());
        // Several policies in one header: each is changed.
        let mut m = HeaderMap::new();
        m.append(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("script-src 'self', default-src 'self'"),
        );
        m.append(
            CONTENT_SECURITY_POLICY_REPORT_ONLY,
            HeaderValue::from_static("script-src 'self'"),
        );
        let out = csp_with_hash(&m).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].1[0].to_str().unwrap(),
            format!("script-src 'self' {h}, default-src 'self'; script-src 'self' {h}")
        );
    }

    #[test]
    fn navigations_ask_for_uncompressed_pages_and_scripts_do_not() {
        let mut nav = HeaderMap::new();
        nav.insert("sec-fetch-mode", HeaderValue::from_static("navigate"));
        nav.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, br"));
        assert!(prepare_request(&Method::GET, &mut nav));
        assert_eq!(nav[ACCEPT_ENCODING], "identity");
        let mut head = nav.clone();
        head.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(
            !prepare_request(&Method::HEAD, &mut head),
            "HEAD: no body to change"
        );
        assert_eq!(head[ACCEPT_ENCODING], "gzip");
        let mut script = HeaderMap::new();
        script.insert("sec-fetch-mode", HeaderValue::from_static("cors"));
        script.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, br"));
        assert!(!prepare_request(&Method::GET, &mut script));
        assert_eq!(script[ACCEPT_ENCODING], "gzip, br");
    }
}
