//! HTTP below the gateway's decisions: the body type every answer uses ([`body`]), the
//! connections to the VMS ([`upstream`]: one hyper stack, pooled per worker thread), header
//! rules of a reverse proxy ([`headers`]: hop-by-hop, `Host`, `Forwarded`), bodies on
//! methods without one ([`body_rules`]), HSTS ([`hsts`]) and upgraded connections
//! ([`upgrade`]).
//!
//! Nothing here knows about sessions, approvals or MFA: that is `gate` and above.

pub mod body;
pub mod body_rules;
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
