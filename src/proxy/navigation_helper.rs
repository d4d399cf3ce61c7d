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
//!            first bytes read until <head…> (at most HEAD_SCAN bytes)
//!                    ▼
//!            <script> inserted after it, Content-Length grown by its length, rest streamed
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

use bytes::{Bytes, BytesMut};
use http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY,
    CONTENT_SECURITY_POLICY_REPORT_ONLY, CONTENT_TYPE, HeaderValue,
};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::BodyExt;

use crate::http::MFA_LOCATION;
use crate::http::body::Body;

/// The script. It runs before the page's own scripts (first in `<head>`), so it wraps
/// `fetch` and `XMLHttpRequest` before they are used; it moves the window once at most.
pub const SCRIPT: &str = "(function(){\"use strict\";\
var moved=false;\
function go(status,to){\
if(moved||status!==401||typeof to!==\"string\"||!/^\\/(?![\\/\\\\])/.test(to))return;\
moved=true;window.location.assign(to);}\
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
static TAG: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(format!("<script>{SCRIPT}</script>")));

/// `'sha256-…'` of [`SCRIPT`], for the VMS's CSP.
static HASH: LazyLock<String> = LazyLock::new(|| {
    use base64::Engine as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, SCRIPT.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
});

/// How far into a page `<head>` is looked for. Beyond it the page is sent unchanged.
const HEAD_SCAN: usize = 16 * 1024;

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
pub async fn apply(page_load: bool, resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(MFA_LOCATION);
    if !page_load || !takes_script(parts.status, &parts.headers) {
        return Response::from_parts(parts, body);
    }
    let Some(csp) = csp_with_hash(&parts.headers) else {
        return Response::from_parts(parts, body);
    };
    let (body, inserted) = insert_into(body).await;
    if inserted {
        for (name, values) in csp {
            parts.headers.remove(&name);
            for v in values {
                parts.headers.append(name.clone(), v);
            }
        }
        grow_content_length(&mut parts.headers, TAG.len());
    }
    Response::from_parts(parts, body)
}

/// An HTML page (not empty by status) that is not encoded.
fn takes_script(status: StatusCode, headers: &HeaderMap) -> bool {
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
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

/// Reads the page's first bytes until the end of its `<head…>` tag (or its `<html…>` tag, or
/// doctype) and puts the script after it. `(body, whether the script went in)`; the body
/// carries on streaming after the bytes read.
async fn insert_into(body: Body) -> (Body, bool) {
    let mut body = body;
    let mut head = BytesMut::new();
    let mut held: Option<http_body::Frame<Bytes>> = None;
    let mut ended = false;
    loop {
        if let Some(at) = insertion_point(&head) {
            let mut out = BytesMut::with_capacity(head.len() + TAG.len());
            out.extend_from_slice(&head[..at]);
            out.extend_from_slice(&TAG);
            out.extend_from_slice(&head[at..]);
            return (chain(out.freeze(), held, body, ended), true);
        }
        if ended || held.is_some() || head.len() >= HEAD_SCAN {
            return (chain(head.freeze(), held, body, ended), false);
        }
        match body.frame().await {
            None => ended = true,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => head.extend_from_slice(&data),
                Err(other) => held = Some(other),
            },
            // The VMS's body broke: what was read goes out, then the same error.
            Some(Err(e)) => return (Body::failed_after(head.freeze(), e), false),
        }
    }
}

fn chain(head: Bytes, held: Option<http_body::Frame<Bytes>>, rest: Body, ended: bool) -> Body {
    if ended && held.is_none() {
        return Body::from_bytes(head);
    }
    Body::chain(head, held, rest)
}

/// Where the script goes in the first bytes of a page, if they say yet.
fn insertion_point(page: &[u8]) -> Option<usize> {
    let end_of_tag = |name: &[u8]| -> Option<usize> {
        let start = find_tag(page, name)?;
        let close = page[start..].iter().position(|&b| b == b'>')?;
        Some(start + close + 1)
    };
    if let Some(at) = end_of_tag(b"head") {
        return Some(at);
    }
    // Only once the page is known to have no <head> before its body (or it ends here).
    if find_tag(page, b"body").is_some() || page.len() >= HEAD_SCAN {
        if let Some(at) = end_of_tag(b"html") {
            return Some(at);
        }
        return end_of_tag(b"!doctype");
    }
    None
}

/// Start of the first `<name` tag (case-insensitive, followed by whitespace, `>` or `/`).
fn find_tag(page: &[u8], name: &[u8]) -> Option<usize> {
    let n = name.len() + 1;
    (0..page.len().saturating_sub(n)).find(|&i| {
        page[i] == b'<'
            && page[i + 1..i + n].eq_ignore_ascii_case(name)
            && matches!(
                page[i + n],
                b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'
            )
    })
}

fn grow_content_length(headers: &mut HeaderMap, by: usize) {
    let Some(len) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return;
    };
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len + by as u64));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn page(headers: &[(&str, &str)], chunks: &[&'static str]) -> (Response<Body>, String) {
        let mut b = Response::builder().status(200);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        // One frame per chunk, as a VMS sends them.
        let body = chunks.iter().rev().fold(Body::empty(), |rest, c| {
            Body::chain(Bytes::from_static(c.as_bytes()), None, rest)
        });
        let resp = b.body(body).unwrap();
        let resp = apply(true, resp).await;
        let (parts, body) = resp.into_parts();
        let text = body.collect().await.unwrap().to_bytes();
        let text = String::from_utf8(text.to_vec()).unwrap();
        (Response::from_parts(parts, Body::empty()), text)
    }

    #[tokio::test]
    async fn the_script_goes_first_in_head_and_the_length_grows() {
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
        assert_eq!(
            r.headers()[CONTENT_LENGTH].to_str().unwrap(),
            (html.len() + tag.len()).to_string()
        );
    }

    #[tokio::test]
    async fn a_page_without_head_gets_it_after_html_and_header_is_not_head() {
        let (_, text) = page(
            &[("content-type", "text/html")],
            &["<!doctype html>\n<html><header>h</header><body>b</body></html>"],
        )
        .await;
        assert!(
            text.starts_with(&format!(
                "<!doctype html>\n<html><script>{SCRIPT}</script><header>"
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
        let body = apply(false, resp)
            .await
            .into_body()
            .collect()
            .await
            .unwrap();
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
    async fn a_page_without_any_tag_in_reach_is_left_alone() {
        let big = "x".repeat(HEAD_SCAN + 10);
        let big: &'static str = Box::leak(big.into_boxed_str());
        let (_, text) = page(&[("content-type", "text/html")], &[big, "<head>"]).await;
        assert_eq!(text.len(), HEAD_SCAN + 16);
        assert!(!text.contains("<script>"));
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
