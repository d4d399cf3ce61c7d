//! HTTP below the gateway's decisions: the body type every answer uses ([`body`]), the
//! connections to the VMS ([`upstream`]: one hyper stack, pooled per worker thread), header
//! rules of a reverse proxy ([`headers`]: hop-by-hop, `Host`, `Forwarded`), bodies on
//! methods without one ([`body_rules`]), HSTS ([`hsts`]) and upgraded connections
//! ([`upgrade`]), and whether a request is a page load or a script's ([`fetch`]).
//!
//! Nothing here knows about sessions, approvals or MFA: that is `gate` and above.

pub mod body;
pub mod body_rules;
pub mod fetch;
pub mod head_insert;
pub mod headers;
pub mod hsts;
pub mod upgrade;
pub mod upstream;

use std::net::SocketAddr;

use ::http::{Response, StatusCode};

use body::Body;

/// Facts about the client connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
}

/// A gateway page: HTML with the security headers every gateway page carries.
pub fn html_page(status: StatusCode, html: String) -> Response<Body> {
    let mut r = Response::new(Body::from(html));
    *r.status_mut() = status;
    crate::pages::page_headers(r.headers_mut());
    r
}

/// The answer to a script's request that the gateway will not forward: `401` with a small
/// JSON body, `{"mfa":"<what>","location":"<where>"}`, and the place in the `Mfa-Location`
/// header too, so a front end can move the window there. Never an HTML page a script would
/// try to parse, never a redirect it would follow out of sight.
pub fn json_401(what: &str, location: &str) -> Response<Body> {
    let body = serde_json::json!({ "mfa": what, "location": location }).to_string();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    h.insert(
        ::http::header::CONTENT_TYPE,
        ::http::HeaderValue::from_static("application/json"),
    );
    h.insert(
        ::http::header::CACHE_CONTROL,
        ::http::HeaderValue::from_static("no-store"),
    );
    h.insert(
        ::http::header::WWW_AUTHENTICATE,
        ::http::HeaderValue::from_static("MFA realm=\"mfa-gateway\""),
    );
    if let Ok(v) = ::http::HeaderValue::from_str(location) {
        h.insert(MFA_LOCATION, v);
    }
    r
}

/// Where a script's page should go next (see [`json_401`]).
pub const MFA_LOCATION: ::http::HeaderName = ::http::HeaderName::from_static("mfa-location");
