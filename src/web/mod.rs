//! Requests under the reserved prefix, answered by the gateway itself and never forwarded:
//! liveness (`health`), readiness (`ready`), Prometheus `metrics`, and the MFA pages.

pub mod account;
pub mod admin;
pub mod admin_api;
pub mod flow;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::error::{ClientError, GatewayError};
use crate::gateway::Gateway;
use crate::http::ConnInfo;
use crate::http::body::Body;
use crate::metrics::Outcome;
use crate::pages::Lang;

pub async fn handle(
    gw: &Gateway,
    req: Request<Incoming>,
    conn: ConnInfo,
    lang: Lang,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let path = req.uri().path();
    let p = &gw.paths;
    if path == p.health {
        only_get(&req)?;
        return Ok((
            text(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ok\n".to_string(),
            ),
            Outcome::Gateway,
        ));
    }
    if path == p.ready {
        only_get(&req)?;
        let (ok, body) = readiness(gw).await;
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Ok((text(status, "application/json", body), Outcome::Gateway));
    }
    if path == p.metrics && gw.cfg.metrics.enabled && gw.cfg.metrics.listen.is_none() {
        only_get(&req)?;
        return Ok((
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                gw.metrics.render(),
            ),
            Outcome::Gateway,
        ));
    }
    if path == p.verify
        || path == p.enroll
        || path == p.offer
        || path == p.recovery
        || path == p.notice
    {
        return crate::web::flow::handle(gw, req, conn, lang).await;
    }
    if path.starts_with(p.admin_api.as_str()) {
        return crate::web::admin_api::handle(gw, req, conn).await;
    }
    if path.starts_with(p.admin.as_str()) || path == p.admin.trim_end_matches('/') {
        return crate::web::admin::handle(gw, req, conn, lang).await;
    }
    if path == p.account || path.starts_with(&format!("{}/", p.account)) {
        return crate::web::account::handle(gw, req, conn, lang).await;
    }
    Err(ClientError::NotFound.into())
}

fn only_get(req: &Request<Incoming>) -> Result<(), GatewayError> {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        Ok(())
    } else {
        Err(ClientError::MethodNotAllowed.into())
    }
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
