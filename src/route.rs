//! The first decision for every request on the TLS listener: answered by the gateway itself
//! (under the reserved prefix: `web`) or forwarded to the VMS (`proxy`), after the checks that
//! hold for both (one `Host`, no body on a method without one, no ambiguous path, session
//! ids out of the URL).
//!
//! ```text
//!  request ──► checks ──► classify ──┬─ under the reserved prefix ──► web::handle (health,
//!                                    │                                readiness, metrics,
//!                                    │                                MFA and MSP pages)
//!                                    ├─ a configured VMS login ──────► proxy::login::intercept
//!                                    └─ everything else ─────────────► proxy: gate ──► forward
//! ```
//!
//! Every answer then gets HSTS when asked for, no body for a HEAD, and its metrics.

use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;

use crate::error::{Chain, GatewayError};
use crate::gateway::Gateway;
use crate::http::body::Body;
use crate::http::{ConnInfo, body_rules, headers, hsts};
use crate::metrics::{MfaEvent, Outcome, RequestKind};
use crate::vms_reading::{path, url_session};

/// The answer to a HEAD request for one the gateway made itself: the headers of the GET
/// answer (its length included) and no body. hyper leaves a HEAD answer's body out over
/// HTTP/1.1 but sends it over HTTP/2, where a client must treat it as a protocol error; the
/// VMS's own HEAD answers have no body already.
fn without_body(resp: &mut Response<Body>) {
    use http_body::Body as _;
    if let Some(len) = resp.body().size_hint().exact() {
        resp.headers_mut()
            .entry(header::CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(len));
    }
    *resp.body_mut() = Body::empty();
}

impl Gateway {
    /// Entry point for every request on the TLS listener.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, conn: ConnInfo) -> Response<Body> {
        let start = Instant::now();
        // Kept (a cheap reference-counted clone) so the language is negotiated only when the
        // gateway answers with a page of its own, not on every proxied request.
        let accept_language = req.headers().get(header::ACCEPT_LANGUAGE).cloned();
        let hsts = hsts::wanted(&req);
        let head = req.method() == http::Method::HEAD;
        let kind = self.request_kind(req.uri().path());
        // For the log line of a failed request only (two reference-counted clones).
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let cookie = req.headers().get(header::COOKIE).cloned();
        let (mut resp, outcome) = match self.route(req, conn, accept_language.as_ref()).await {
            Ok(r) => r,
            Err(e) => {
                let outcome = match &e {
                    GatewayError::Client(_) => Outcome::Rejected,
                    GatewayError::Upstream(_) => Outcome::UpstreamError,
                    GatewayError::Internal(_) => Outcome::Unavailable,
                };
                let kind = e.kind().as_str();
                self.metrics.error_answered(e.kind());
                let path = self.loggable_path(uri.path());
                let status = e.status().as_u16();
                let client = conn.peer.ip();
                let user = self.approved_user(cookie.as_ref());
                let signed_in = user.is_some();
                let user = user.as_deref().unwrap_or("-");
                if matches!(e, GatewayError::Client(_)) {
                    tracing::debug!(kind, status, %method, path, %client, user, error = %Chain(&e), "request refused");
                } else {
                    tracing::warn!(kind, status, %method, path, %client, user, error = %Chain(&e), "request failed");
                }
                (
                    self.error_response_for(&e, self.lang(accept_language.as_ref()), signed_in),
                    outcome,
                )
            }
        };
        if hsts {
            hsts::add(resp.headers_mut());
        }
        if head && outcome != Outcome::Proxied {
            without_body(&mut resp);
        }
        self.metrics.request(kind, outcome, start.elapsed());
        resp
    }

    /// The user of the approved session a `Cookie` header carries, if any: for the log line
    /// of a failed request (checked again there, off the proxied path).
    fn approved_user(&self, cookie: Option<&HeaderValue>) -> Option<String> {
        let mut h = http::HeaderMap::new();
        h.insert(header::COOKIE, cookie?.clone());
        let check = crate::gate::verified::check(
            &self.keys,
            &self.cfg.vms.session_cookies,
            |n| crate::gate::cookies::request_cookie(&h, n),
            || crate::gate::cookies::request_cookie(&h, crate::gate::cookies::APPROVAL_COOKIE),
            self.clock.unix(),
        );
        match check {
            crate::gate::verified::Check::Approved(a) => Some(a.user.clone()),
            _ => None,
        }
    }

    /// A request's path as a log line may show it: without the query, `;` parameters and
    /// cookieless segments, where session ids travel.
    fn loggable_path(&self, path: &str) -> String {
        let path = match self.cfg.vms.url_session_params.strip(path, None) {
            Ok(None) => path.to_string(),
            Ok(Some(stripped)) => stripped,
            Err(url_session::Ambiguous) => return "(ambiguous path)".to_string(),
        };
        let mut out: String = path
            .split('/')
            .map(|seg| seg.split(';').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("/");
        if out.len() > 200 {
            let mut cut = 200;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
        }
        out
    }

    /// What a request is, for the latency histogram (a path under the reserved prefix is the
    /// gateway's; its health, readiness and metrics paths are probes).
    fn request_kind(&self, path: &str) -> RequestKind {
        let p = &self.paths;
        if !path.starts_with(p.prefix.as_str()) {
            RequestKind::Proxied
        } else if path == p.health || path == p.ready || path == p.metrics {
            RequestKind::Probe
        } else {
            RequestKind::Gateway
        }
    }

    async fn route(
        &self,
        mut req: Request<Incoming>,
        conn: ConnInfo,
        accept_language: Option<&HeaderValue>,
    ) -> Result<(Response<Body>, Outcome), GatewayError> {
        // Before anything is forwarded: one host only, and no body where the method has none
        // (request smuggling).
        headers::check_host(req.version(), req.uri(), req.headers())?;
        body_rules::check(&req, &self.cfg.vms.allow_body_on)?;
        match path::classify(req.uri().path(), &self.paths.prefix) {
            path::PathVerdict::Owned => {
                // Boxed, like the login below: the future of every request is as large as its
                // largest branch, and these rare ones would make each proxied request's
                // future (moved into hyper's dispatcher) several kilobytes larger.
                return Box::pin(crate::web::handle(
                    self,
                    req,
                    conn,
                    self.lang(accept_language),
                ))
                .await;
            }
            path::PathVerdict::Refuse => {
                return Err(crate::error::ClientError::BadRequest("ambiguous path").into());
            }
            path::PathVerdict::Forward => {}
        }
        match self
            .cfg
            .vms
            .url_session_params
            .strip(req.uri().path(), req.uri().query())
        {
            Ok(None) => {}
            Ok(Some(stripped)) => self.strip_url_session(&mut req, stripped)?,
            Err(url_session::Ambiguous) => {
                return Err(crate::error::ClientError::BadRequest("ambiguous URL session").into());
            }
        }
        let path = req.uri().path();
        if let Some(route) = self.cfg.vms.login_route(req.method(), path) {
            return Box::pin(crate::proxy::login::intercept(self, req, conn, route)).await;
        }
        let is_logout = self.cfg.vms.is_logout(req.method(), path);
        self.pass_through(req, conn, is_logout)
            .await
            .map(|r| (r, Outcome::Proxied))
    }

    /// Replaces the request's path and query with `stripped` (the same without session
    /// parameters and cookieless segments, see `url_session`). What remains is classified
    /// again: it must still be a path for the VMS.
    #[cold]
    fn strip_url_session(
        &self,
        req: &mut Request<Incoming>,
        stripped: String,
    ) -> Result<(), GatewayError> {
        let bad = || GatewayError::from(crate::error::ClientError::BadRequest("malformed URL"));
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query =
            Some(http::uri::PathAndQuery::try_from(stripped).map_err(|_| bad())?);
        let uri = http::Uri::from_parts(parts).map_err(|_| bad())?;
        if path::classify(uri.path(), &self.paths.prefix) != path::PathVerdict::Forward {
            return Err(crate::error::ClientError::BadRequest("ambiguous path").into());
        }
        *req.uri_mut() = uri;
        self.metrics.mfa(MfaEvent::UrlSessionStripped);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::proxy::testing::gateway;

    #[test]
    fn a_failed_request_is_logged_with_the_user_of_its_approved_session() {
        use crate::gate::approval::{Approval, session_hash};
        use crate::gate::cookies::APPROVAL_COOKIE;
        use crate::proxy::testing::NOW;
        let gw = gateway();
        let names = vec!["VMSSESSION".to_string()];
        let a = Approval {
            issued: NOW - 60,
            expires: NOW + 3600,
            mfa_passed: true,
            state: crate::policy::MfaState::Enforced,
            session_hash: session_hash(&names, |_| Some("s1")).unwrap(),
            role: "customer".into(),
            user: "alice".into(),
            epoch: 0,
            id: Some([3; 16]),
        };
        let cookie = |c: String| http::HeaderValue::from_str(&c).unwrap();
        let good = cookie(format!(
            "VMSSESSION=s1; {APPROVAL_COOKIE}={}",
            a.seal(&gw.keys)
        ));
        assert_eq!(gw.approved_user(Some(&good)).as_deref(), Some("alice"));
        let other = cookie(format!(
            "VMSSESSION=s2; {APPROVAL_COOKIE}={}",
            a.seal(&gw.keys)
        ));
        assert_eq!(
            gw.approved_user(Some(&other)),
            None,
            "another session's approval"
        );
        assert_eq!(
            gw.approved_user(Some(&cookie("VMSSESSION=s1".into()))),
            None
        );
        assert_eq!(gw.approved_user(None), None);
    }

    #[test]
    fn a_logged_path_carries_no_session_id() {
        let gw = gateway();
        for (path, logged) in [
            ("/app/home", "/app/home"),
            ("/app;jsessionid=ABC123/x;v=1", "/app/x"),
            ("/(S(abcdefghijklmnopqrstuvwx))/home.aspx", "/home.aspx"),
            ("/%28S%28abc%29%29x/home", "(ambiguous path)"),
        ] {
            assert_eq!(gw.loggable_path(path), logged, "{path}");
        }
        let long = format!("/{}", "é".repeat(300));
        assert!(gw.loggable_path(&long).chars().count() <= 201);
    }
}
