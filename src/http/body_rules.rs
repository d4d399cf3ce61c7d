//! No body where the method has none.
//!
//! A body on a GET, HEAD, OPTIONS, DELETE or TRACE request has no defined meaning (RFC 9110
//! 9.3), and servers disagree about it: some read it as the request's body, others never
//! read it and take its bytes for the *next* request on the connection. Behind a gateway
//! that second reading is request smuggling: a request hidden in a GET's body reaches the
//! VMS without passing the session gate, the login interception or the URL session
//! stripping, and its answer, queued on the connection, may be handed to another client.
//!
//! So a request of such a method that carries a body is refused with `400` before anything
//! is forwarded. "Carries a body" is read from everything that can announce one: a
//! `Transfer-Encoding` (any), a `Content-Length` other than `0`, or (over HTTP/2, where
//! neither is needed) a request stream that did not end with its headers. Methods are
//! compared case-insensitively, because a lenient VMS reads `get` as `GET`.
//!
//! An operator whose VMS really expects a body on such a request (a `DELETE` with a JSON
//! body, say) lists the method and path in `vms.allow_body_on`. Those requests pass; the
//! VMS connection (`http::upstream`) sends them with `Connection: close` and never reuses
//! their connection, so a body the VMS did not read cannot become another request.

use http::{HeaderMap, Request, header};
use http_body::Body;

use crate::config::BodyAllowed;
use crate::error::ClientError;
use crate::vms_reading::method_without_body;

/// Refuses a request of a method without a body that carries one, unless its method and
/// path are allowed by the operator.
pub fn check<B: Body>(req: &Request<B>, allowed: &[BodyAllowed]) -> Result<(), ClientError> {
    let method = req.method();
    if !method_without_body(method) || !carries_body(req.headers(), req.body()) {
        return Ok(());
    }
    let path = req.uri().path();
    let listed = allowed
        .iter()
        .any(|a| a.path == path && a.method.as_str().eq_ignore_ascii_case(method.as_str()));
    if listed {
        Ok(())
    } else {
        Err(ClientError::BadRequest("a body on a method without one"))
    }
}

/// Whether a request announces a body: any `Transfer-Encoding`, a `Content-Length` that is
/// not `0`, or a body not known to be empty.
fn carries_body<B: Body>(headers: &HeaderMap, body: &B) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    let nonzero_length = headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .any(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) != Some(0));
    nonzero_length || !(body.is_end_stream() || body.size_hint().exact() == Some(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use bytes::Bytes;
    use http::{HeaderValue, Method};
    use http_body_util::{Empty, Full, StreamBody};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    fn m(s: &str) -> Method {
        Method::from_bytes(s.as_bytes()).unwrap()
    }

    /// `check` for a request of `method` on `path` with `headers` and `body`.
    fn check<B: Body>(
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: B,
        allowed: &[BodyAllowed],
    ) -> Result<(), ClientError> {
        let mut req = Request::new(body);
        *req.method_mut() = method.clone();
        *req.uri_mut() = path.parse().unwrap();
        *req.headers_mut() = headers.clone();
        super::check(&req, allowed)
    }

    fn allow(method: &str, path: &str) -> BodyAllowed {
        BodyAllowed {
            method: m(method),
            path: path.into(),
        }
    }

    fn empty() -> Empty<Bytes> {
        Empty::new()
    }

    fn full(s: &'static str) -> Full<Bytes> {
        Full::new(Bytes::from_static(s.as_bytes()))
    }

    /// A body of unknown length (an HTTP/2 stream that did not end with its headers).
    fn unknown() -> StreamBody<
        futures_util::stream::Empty<Result<http_body::Frame<Bytes>, std::convert::Infallible>>,
    > {
        StreamBody::new(futures_util::stream::empty())
    }

    #[test]
    fn a_get_with_a_length_or_a_transfer_coding_is_refused() {
        for (h, what) in [
            (headers(&[("content-length", "5")]), "length"),
            (headers(&[("transfer-encoding", "chunked")]), "chunked"),
            (headers(&[("transfer-encoding", "gzip")]), "other coding"),
            (
                headers(&[("content-length", "0"), ("transfer-encoding", "chunked")]),
                "zero length and chunked",
            ),
            (
                headers(&[("content-length", "0"), ("content-length", "7")]),
                "a second length",
            ),
            (headers(&[("content-length", "x")]), "unreadable length"),
        ] {
            for method in ["GET", "get", "HEAD", "OPTIONS", "DELETE", "TRACE"] {
                let r = check(&m(method), "/a", &h, empty(), &[]);
                assert!(
                    matches!(r, Err(ClientError::BadRequest(_))),
                    "{method} with {what}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn a_get_whose_body_is_not_known_to_be_empty_is_refused() {
        let r = check(&m("GET"), "/a", &HeaderMap::new(), unknown(), &[]);
        assert!(r.is_err());
        let r = check(&m("GET"), "/a", &HeaderMap::new(), full("x"), &[]);
        assert!(r.is_err());
    }

    #[test]
    fn requests_without_a_body_and_methods_with_one_pass() {
        let none = HeaderMap::new();
        assert!(check(&m("GET"), "/a", &none, empty(), &[]).is_ok());
        let zero = headers(&[("content-length", "0")]);
        assert!(check(&m("GET"), "/a", &zero, empty(), &[]).is_ok());
        let h = headers(&[("content-length", "3")]);
        for method in ["POST", "PUT", "PATCH", "post"] {
            assert!(check(&m(method), "/a", &h, full("abc"), &[]).is_ok());
        }
        let chunked = headers(&[("transfer-encoding", "chunked")]);
        assert!(check(&m("POST"), "/a", &chunked, unknown(), &[]).is_ok());
    }

    #[test]
    fn only_listed_method_and_path_pairs_may_carry_a_body() {
        let allowed = [allow("DELETE", "/api/items")];
        let h = headers(&[("content-length", "2")]);
        assert!(check(&m("DELETE"), "/api/items", &h, full("{}"), &allowed).is_ok());
        assert!(check(&m("delete"), "/api/items", &h, full("{}"), &allowed).is_ok());
        for (method, path) in [
            ("GET", "/api/items"),
            ("DELETE", "/api/items/"),
            ("DELETE", "/API/items"),
            ("DELETE", "/api/other"),
        ] {
            let r = check(&m(method), path, &h, full("{}"), &allowed);
            assert!(r.is_err(), "{method} {path}");
        }
    }
}
