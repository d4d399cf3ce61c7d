//! Requests under the reserved prefix, answered by the gateway itself and never forwarded:
//! liveness (`health`), readiness (`ready`), Prometheus `metrics`, the MFA pages of a
//! sign-in, the user's account page, the MSP's pages and the JSON API.
//!
//! Why a table: these pages are few and security-relevant, so where a request goes, which
//! methods it may use there, and what it must bring (a form, a token, a signed-in session)
//! are each written once, not re-checked in every handler. [`routes::resolve`] finds the
//! request's route in one table ([`routes::table`], built from the configured paths); an
//! unknown path is a `404`, a known one with another method a `405` with `Allow`, before
//! any handler runs. Handlers then take what they need through the extractors of
//! [`extract`] (form, query, CSRF token, signed-in user or administrator). No framework:
//! the proxied hot path never comes here, and a few dozen lines of typed table keep these
//! rare requests off it.
//!
//! ```text
//!  path under the prefix        methods            route                  handler
//!  ─────────────────────────────────────────────────────────────────────────────────────
//!  health                       GET HEAD           Health                 here
//!  ready                        GET HEAD           Ready                  here
//!  metrics (if served here)     GET HEAD           Metrics                here
//!  verify                       GET HEAD POST      Step(Verify)           flow
//!  enroll                       GET HEAD POST      Step(Enroll)           flow
//!  offer                        GET HEAD POST      Step(Offer)            flow
//!  recovery-codes               GET HEAD POST      Step(Recovery)         flow
//!  notice                       GET HEAD POST      Step(Notice)           flow
//!  passkey                      GET HEAD POST      Step(Passkey)          flow, passkey
//!  account                      GET HEAD POST      Account                account  (user)
//!  account/enroll               GET HEAD POST      AccountEnroll          account  (user)
//!  account/set-up               POST               AccountSetUp           account  (user)
//!  account/replace-phone        POST               AccountReplacePhone    account  (user)
//!  account/recovery-codes       POST               AccountRecoveryCodes   account  (user)
//!  account/disable              POST               AccountDisable         account  (user)
//!  account/forget-browsers      POST               AccountForgetBrowsers  account  (user)
//!  account/passkey              GET HEAD POST      AccountPasskey         passkey  (user)
//!  account/passkey/rename       POST               AccountPasskeyRename   passkey  (user)
//!  account/passkey/remove       POST               AccountPasskeyRemove   passkey  (user)
//!  admin/                       GET HEAD           AdminSearch            admin    (admin)
//!  admin/user                   GET HEAD           AdminUser              admin    (admin)
//!  admin/reset                  POST               AdminReset             admin    (admin)
//!  admin/unlock                 POST               AdminUnlock            admin    (admin)
//!  admin/forget-browsers        POST               AdminForgetBrowsers    admin    (admin)
//!  admin/api/users              GET HEAD           Api(Users)             admin_api (token)
//!  admin/api/users/{user}       GET HEAD           Api(User)              admin_api (token)
//!  admin/api/users/{user}/events GET HEAD          Api(Events)            admin_api (token)
//!  admin/api/users/{user}/reset POST               Api(Reset)             admin_api (token)
//!  admin/api/users/{user}/unlock POST              Api(Unlock)            admin_api (token)
//!  anything else                                   404 (JSON below admin/api/)
//!  a listed path, other method                     405 + Allow (JSON below admin/api/)
//! ```
//!
//! Every `POST` of a page checks its CSRF token ([`extract::Csrf`]): the challenge's on the
//! MFA pages, the signed-in session's on account and admin pages.

pub mod account;
pub mod admin;
pub mod admin_api;
pub mod email_code;
pub mod extract;
pub mod flow;
pub mod passkey;
pub mod routes;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::error::{ClientError, GatewayError};
use crate::gateway::Gateway;
use crate::http::ConnInfo;
use crate::http::body::Body;
use crate::metrics::Outcome;
use crate::pages::{self, Lang};
use extract::{Call, Halt};
use routes::{Methods, Resolved, Route};

pub async fn handle(
    gw: &Gateway,
    req: Request<Incoming>,
    conn: ConnInfo,
    lang: Lang,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let route = match routes::resolve(gw, req.method(), req.uri().path()) {
        Resolved::Found(r) => r,
        Resolved::NotFound { api: false } => return Err(ClientError::NotFound.into()),
        Resolved::NotFound { api: true } => {
            let r = admin_api::error(StatusCode::NOT_FOUND, "no such endpoint");
            return Ok((r, Outcome::Rejected));
        }
        Resolved::MethodNotAllowed { allow, api } => {
            return Ok((method_not_allowed(gw, lang, allow, api), Outcome::Rejected));
        }
    };
    let (parts, body) = req.into_parts();
    let call = Call {
        gw,
        lang,
        now: gw.clock.unix(),
        client: gw.client_ip(&parts.headers, conn).to_string(),
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
    };
    let answer = match route {
        Route::Health => Ok((
            text(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ok\n".to_string(),
            ),
            Outcome::Gateway,
        )),
        Route::Ready => {
            let (ok, body) = readiness(gw).await;
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Ok((text(status, "application/json", body), Outcome::Gateway))
        }
        Route::Metrics => Ok((
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                gw.metrics.render(),
            ),
            Outcome::Gateway,
        )),
        Route::Step(step) => flow::handle(&call, step, body).await,
        Route::Account
        | Route::AccountEnroll
        | Route::AccountSetUp
        | Route::AccountReplacePhone
        | Route::AccountRecoveryCodes
        | Route::AccountDisable
        | Route::AccountForgetBrowsers => account::handle(&call, &route, body).await,
        Route::AccountPasskey | Route::AccountPasskeyRename | Route::AccountPasskeyRemove => {
            passkey::account(&call, &route, body).await
        }
        Route::AdminSearch
        | Route::AdminUser
        | Route::AdminReset
        | Route::AdminUnlock
        | Route::AdminForgetBrowsers
        | Route::AdminEnrollmentCode => admin::handle(&call, &route, body).await,
        Route::Api(api) => admin_api::handle(&call, api, body).await,
    };
    match answer {
        Ok(a) => Ok(a),
        Err(Halt::Refused(page)) => Ok((*page, Outcome::Rejected)),
        Err(Halt::Failed(e)) => Err(e),
    }
}

/// `405` with the route's methods in `Allow` (RFC 9110 §15.5.6): the bad-request page, or a
/// JSON error below the API.
fn method_not_allowed(gw: &Gateway, lang: Lang, allow: Methods, api: bool) -> Response<Body> {
    let mut r = if api {
        admin_api::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    } else {
        gw.page_response(pages::ErrorPage::BadRequest, lang)
    };
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r.headers_mut().insert(
        header::ALLOW,
        header::HeaderValue::from_static(allow.allow_header()),
    );
    r
}

/// Formats Unix seconds for people, in the policy's time zone (the one its dates are read
/// in, so users and administrators see the times of their own clocks): `2026-11-27 15:03 CET`.
pub fn fmt_time(gw: &Gateway, t: u64) -> String {
    gw.policy.current().local_time(t)
}

/// `303 See Other` to a path of the gateway.
pub fn redirect(to: &str) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = header::HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// Checks the upstream (any HTTP answer counts), the store and the policy file's last load,
/// and reports all three; ready when those that `server.ready_requires` names work (by
/// default the upstream only: see [`crate::config::ReadyRequires`]).
pub async fn readiness(gw: &Gateway) -> (bool, String) {
    let upstream_ok = check_upstream(gw).await;
    let store_ok = tokio::time::timeout(std::time::Duration::from_secs(2), gw.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    gw.metrics.store_up(store_ok);
    let policy_ok = gw.policy.healthy();
    let requires = gw.cfg.server.ready_requires;
    let ok = (upstream_ok || !requires.upstream)
        && (store_ok || !requires.store)
        && (policy_ok || !requires.policy);
    let body = serde_json::json!({
        "ready": ok,
        "requires": requires.names(),
        "upstream": if upstream_ok { "ok" } else { "unreachable" },
        "store": { "kind": gw.store.kind(), "status": if store_ok { "ok" } else { "unreachable" } },
        "policy": if policy_ok { "ok" } else { "last reload failed; previous policy in force" },
    });
    (ok, body.to_string())
}

pub async fn check_upstream(gw: &Gateway) -> bool {
    let Ok(pq) = gw
        .cfg
        .upstream
        .readiness_path
        .parse::<http::uri::PathAndQuery>()
    else {
        return false;
    };
    let Ok(uri) = gw.upstream.uri_for(Some(&pq)) else {
        return false;
    };
    let Ok(host) = header::HeaderValue::from_str(&gw.cfg.upstream.authority) else {
        return false;
    };
    let mut req = Request::new(Body::empty());
    *req.method_mut() = Method::GET;
    *req.uri_mut() = uri;
    req.headers_mut().insert(header::HOST, host);
    let fut = gw.upstream.probe(req);
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(3), fut).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::proxy::testing::gateway;

    #[test]
    fn a_405_names_the_route_s_methods_in_allow() {
        let gw = gateway();
        for (allow, api, want, json) in [
            (Methods::Get, false, "GET, HEAD", false),
            (Methods::Post, false, "POST", false),
            (Methods::GetPost, false, "GET, HEAD, POST", false),
            (Methods::Post, true, "POST", true),
        ] {
            let r = method_not_allowed(&gw, Lang::En, allow, api);
            assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(r.headers()[header::ALLOW], want);
            let ct = r.headers()[header::CONTENT_TYPE].to_str().unwrap();
            assert_eq!(ct == "application/json", json, "{ct}");
        }
    }
}
