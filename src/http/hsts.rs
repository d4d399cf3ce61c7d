//! `Strict-Transport-Security` on every answer of the TLS listener.
//!
//! The gateway is the only way to the VMS and speaks only HTTPS, so browsers should never try
//! plain HTTP for its host again: HSTS (RFC 6797) makes them upgrade by themselves, which
//! closes the window a network attacker has on the first `http://` request (and on the
//! optional redirect listener). A TLS scan (docs/security.md, "TLS scan") flags its absence.
//!
//! The header is added for one year, without `includeSubDomains` (the gateway cannot know
//! what else runs under its parent domain) and without `preload` (an operator's decision).
//! A header the VMS set itself is left as it is. It is not sent for `localhost` or IP
//! addresses: browsers ignore it for addresses anyway, and on `localhost` (the demo) it would
//! force HTTPS onto every other local development server on the machine for a year.

use http::HeaderMap;
use http::header::{HeaderValue, STRICT_TRANSPORT_SECURITY};

/// One year, the commonly recommended minimum.
pub const HSTS: &str = "max-age=31536000";

/// Whether a request's answer gets the header: from its `Host` (HTTP/1.1) or its authority
/// (HTTP/2).
pub fn wanted<B>(req: &http::Request<B>) -> bool {
    req.headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .is_some_and(applies)
}

/// Adds the header unless the VMS set its own.
pub fn add(headers: &mut HeaderMap) {
    if !headers.contains_key(STRICT_TRANSPORT_SECURITY) {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
}

/// Whether HSTS means something for this host (port allowed): a DNS name, not `localhost`.
fn applies(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(_) => return false, // [IPv6]
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.is_empty()
        && name.parse::<std::net::IpAddr>().is_err()
        && name != "localhost"
        && !name.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_for_names_not_for_addresses_or_localhost() {
        for h in [
            "vms.example.com",
            "vms.example.com:8443",
            "VMS.Example.COM.",
        ] {
            assert!(applies(h), "{h}");
        }
        for h in [
            "localhost",
            "localhost:8443",
            "LOCALHOST.",
            "app.localhost:1",
            "127.0.0.1",
            "127.0.0.1:8443",
            "[::1]:8443",
            "[::1]",
            "",
        ] {
            assert!(!applies(h), "{h}");
        }
    }

    #[test]
    fn keeps_a_header_the_vms_set() {
        let mut h = HeaderMap::new();
        add(&mut h);
        assert_eq!(h[STRICT_TRANSPORT_SECURITY], HSTS);
        let mut h = HeaderMap::new();
        h.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=5; includeSubDomains"),
        );
        add(&mut h);
        assert_eq!(h[STRICT_TRANSPORT_SECURITY], "max-age=5; includeSubDomains");
    }

    #[test]
    fn host_header_first_then_authority() {
        let req = |uri: &str, host: Option<&str>| {
            let mut b = http::Request::builder().uri(uri);
            if let Some(h) = host {
                b = b.header(http::header::HOST, h);
            }
            b.body(()).unwrap_or_default()
        };
        assert!(wanted(&req("/", Some("vms.example.com"))));
        assert!(!wanted(&req("/", Some("localhost:8443"))));
        assert!(wanted(&req("https://vms.example.com/x", None)));
        assert!(!wanted(&req("https://127.0.0.1/x", None)));
        assert!(!wanted(&req("/", None)));
    }
}
