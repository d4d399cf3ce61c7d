//! How a VMS reads a request, as far as the gate depends on it: which spellings of a path
//! reach the same route ([`path`]), which URL parts carry a session id ([`url_session`]) and
//! which methods have no body ([`method_without_body`]).
//!
//! Pure functions of the request's bytes, below the configuration that names routes, so both
//! the configuration's checks and the request path read a request the same way.

pub mod path;
pub mod url_session;

use http::Method;

/// Methods whose requests have no body (RFC 9110 gives them no meaning for one).
const WITHOUT_BODY: [&str; 5] = ["GET", "HEAD", "OPTIONS", "DELETE", "TRACE"];

/// Whether requests of `m` have no body (compared case-insensitively: a lenient VMS reads
/// `get` as `GET`).
pub fn method_without_body(m: &Method) -> bool {
    let m = m.as_str();
    WITHOUT_BODY.iter().any(|w| m.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Method {
        Method::from_bytes(s.as_bytes()).unwrap_or(Method::GET)
    }

    #[test]
    fn methods_without_a_body_in_any_case() {
        for s in [
            "GET", "get", "Get", "HEAD", "head", "OPTIONS", "DELETE", "delete", "TRACE",
        ] {
            assert!(method_without_body(&m(s)), "{s}");
        }
        for s in ["POST", "post", "PUT", "PATCH", "GETX", "PROPFIND"] {
            assert!(!method_without_body(&m(s)), "{s}");
        }
    }
}
