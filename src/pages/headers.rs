//! Response headers for the gateway's own pages, and the function that builds a full response.
//!
//! Gateway pages show pairing codes, recovery codes and CSRF tokens, so they must never be
//! cached (`no-store`), framed (clickjacking on the code form), sniffed as another type, or
//! leak their URL through a `Referer`. The Content-Security-Policy allows only the one
//! inline stylesheet and data images; see [`super::style`].

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, PRAGMA, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::style::content_security_policy;

const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");
const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");

/// Used only if the computed policy were somehow not a valid header value: the pages then
/// lose their styling but keep every other restriction.
const FALLBACK_CSP: &str = "default-src 'none'; img-src data:; form-action 'self'; \
                            frame-ancestors 'none'; base-uri 'none'";

/// Sets the headers every gateway page carries, replacing any already present.
pub fn page_headers(headers: &mut HeaderMap) {
    let csp = HeaderValue::from_str(content_security_policy())
        .unwrap_or_else(|_| HeaderValue::from_static(FALLBACK_CSP));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_SECURITY_POLICY, csp);
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        CROSS_ORIGIN_OPENER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        PERMISSIONS_POLICY,
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
}

/// A complete page response: status, [`page_headers`] and the HTML body.
pub fn html_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    page_headers(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use http_body_util::BodyExt;

    fn get<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
        h.get(name).unwrap().to_str().unwrap()
    }

    #[test]
    fn every_security_header_is_set() {
        let mut h = HeaderMap::new();
        page_headers(&mut h);
        assert_eq!(get(&h, "content-type"), "text/html; charset=utf-8");
        assert_eq!(get(&h, "cache-control"), "no-store");
        assert_eq!(get(&h, "pragma"), "no-cache");
        assert_eq!(get(&h, "x-frame-options"), "DENY");
        assert_eq!(get(&h, "x-content-type-options"), "nosniff");
        assert_eq!(get(&h, "referrer-policy"), "no-referrer");
        assert_eq!(get(&h, "cross-origin-opener-policy"), "same-origin");
        assert_eq!(
            get(&h, "permissions-policy"),
            "camera=(), microphone=(), geolocation=()"
        );
        let csp = get(&h, "content-security-policy");
        assert_eq!(csp, content_security_policy());
        for part in [
            "default-src 'none'",
            "style-src 'sha256-",
            "img-src data:",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{part} missing from {csp}");
        }
    }

    #[test]
    fn headers_replace_upstream_values() {
        let mut h = HeaderMap::new();
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        h.append(CACHE_CONTROL, HeaderValue::from_static("immutable"));
        page_headers(&mut h);
        assert_eq!(h.get_all(CACHE_CONTROL).iter().count(), 1);
        assert_eq!(get(&h, "cache-control"), "no-store");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn response_carries_status_headers_and_body() {
        let r = html_response(StatusCode::BAD_GATEWAY, "<p>hi</p>".into());
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(get(r.headers(), "x-frame-options"), "DENY");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"<p>hi</p>");
    }
}
