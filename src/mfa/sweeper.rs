//! Ending VMS sessions that were withheld and never approved.
//!
//! When `vms.end_session` is configured, every withheld login is also entered in the store's
//! pending set with its expiry. The entry carries the session cookies sealed with the key ring
//! (they are needed to log the session out). On release the entry is removed; when a challenge
//! expires, whichever instance claims the entry first sends the configured request to the VMS
//! with those cookies, so an abandoned login does not leave a live session behind.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::header::{self, HeaderValue};
use http::{Method, Request};

use crate::auth::crypto::Purpose;
use crate::error::{GatewayError, InternalError};
use crate::gateway::Gateway;
use crate::http::body::Body;

const AAD: &[u8] = b"pending-session";

/// The pending-set entry for a challenge: `store-key|sealed cookies`.
pub fn pending_member(
    gw: &Gateway,
    key: &str,
    session: &[(String, String)],
) -> Result<String, GatewayError> {
    let json = serde_json::to_vec(session).map_err(|e| InternalError::Other(e.to_string()))?;
    let sealed = gw
        .keys
        .seal(Purpose::Challenge, AAD, &json)
        .map_err(|e| InternalError::Crypto(e.to_string()))?;
    Ok(format!("{key}|{}", B64.encode(sealed)))
}

fn open_member(gw: &Gateway, member: &str) -> Option<Vec<(String, String)>> {
    let (_, sealed) = member.split_once('|')?;
    let sealed = B64.decode(sealed).ok()?;
    let json = gw.keys.open(Purpose::Challenge, AAD, &sealed).ok()?;
    serde_json::from_slice(&json).ok()
}

/// Sends the configured end-session request for a session, in the background.
pub fn end_upstream_session(
    gw: &Gateway,
    session: Vec<(String, String)>,
    host: Option<HeaderValue>,
) {
    let Some(req) = end_request(gw, &session, host) else {
        return;
    };
    let upstream = gw.upstream.clone();
    let metrics = std::sync::Arc::clone(&gw.metrics);
    tokio::spawn(async move {
        match upstream.send(req, &metrics).await {
            Ok(r) => tracing::info!(status = r.status().as_u16(), "ended a withheld VMS session"),
            Err(e) => tracing::warn!(error = %e, "could not end a withheld VMS session"),
        }
    });
}

/// Sends the configured end-session request for a session and waits for the VMS's answer
/// (for a session that must be gone before anything else happens).
pub async fn end_upstream_session_now(
    gw: &Gateway,
    session: &[(String, String)],
    host: Option<HeaderValue>,
) {
    let Some(req) = end_request(gw, session, host) else {
        return;
    };
    match gw.upstream.send(req, &gw.metrics).await {
        Ok(r) => tracing::info!(status = r.status().as_u16(), "ended a VMS session"),
        Err(e) => tracing::warn!(error = %e, "could not end a VMS session"),
    }
}

/// The configured end-session request for a session; `None` without one.
fn end_request(
    gw: &Gateway,
    session: &[(String, String)],
    host: Option<HeaderValue>,
) -> Option<Request<Body>> {
    let route = gw.cfg.vms.end_session.clone()?;
    let pq = route.path.parse::<http::uri::PathAndQuery>().ok()?;
    let uri = gw.upstream.uri_for(Some(&pq)).ok()?;
    let mut req = Request::new(Body::empty());
    *req.method_mut() = route.method.unwrap_or(Method::GET);
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    let host = host.or_else(|| match &gw.cfg.upstream.host_header {
        crate::config::HostHeader::Fixed(f) => HeaderValue::from_str(f).ok(),
        _ => HeaderValue::from_str(&gw.cfg.upstream.authority).ok(),
    });
    if let Some(host) = host {
        h.insert(header::HOST, host);
    }
    let cookie = session
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    if let Ok(c) = HeaderValue::from_str(&cookie) {
        h.insert(header::COOKIE, c);
    }
    Some(req)
}

/// Forgets a pending entry after its challenge was released.
pub async fn forget(gw: &Gateway, member: Option<&str>) {
    if let Some(m) = member
        && let Err(e) = gw.store.pending_remove(m).await
    {
        tracing::warn!(error = %e, "could not clear a pending entry; it will be swept harmlessly");
    }
}

/// Periodically ends the VMS sessions of expired challenges.
pub fn spawn(
    gw: std::sync::Arc<Gateway>,
    every: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    gw.cfg.vms.end_session.as_ref()?;
    Some(crate::periodic::spawn_every(every, shutdown, move || {
        let gw = std::sync::Arc::clone(&gw);
        async move { sweep_once(&gw).await }
    }))
}

pub async fn sweep_once(gw: &Gateway) {
    let now = gw.clock.unix();
    match gw.store.pending_due(now).await {
        Ok(due) => {
            for m in due {
                match open_member(gw, &m) {
                    Some(session) => {
                        gw.metrics.mfa(crate::metrics::MfaEvent::ChallengeExpired);
                        end_upstream_session(gw, session, None);
                    }
                    None => tracing::warn!(
                        "a withheld VMS session could not be ended: it was sealed with a key no longer in mfa.keys; the VMS lets it expire by itself"
                    ),
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "sweep skipped: store unavailable"),
    }
}
