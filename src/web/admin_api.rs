//! The administration API for automation (service desk tools, scripts).
//!
//! JSON over HTTPS under `<prefix>admin/api/`, authenticated with bearer tokens. The
//! configuration holds only the SHA-256 of each token (`[[admin.tokens]]`), with a name that
//! appears in the audit trail as the actor. A missing or wrong token gets `401` with a JSON
//! error body; every authenticated call is audited.
//!
//! ```text
//!   GET  users?prefix=ali           -> {"users": ["alice", ...]}
//!   GET  users/{user}               -> status
//!   GET  users/{user}/events        -> {"events": [...]}      newest first
//!   POST users/{user}/reset   {"reason": "lost phone, ticket 123"}
//!   POST users/{user}/unlock
//! ```

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::admin::ops::{Actor, OpError, Rank};
use crate::audit::{ActorKind, Event, Record};
use crate::auth::crypto::{ct_eq, sha256};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::http::ConnInfo;
use crate::http::body::{Body, CollectError, collect_limited};
use crate::metrics::Outcome;

const MAX_BODY: usize = 8 * 1024;

fn json(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    json(status, serde_json::json!({ "error": msg }))
}

/// The name of the token the request carries, if it is one of the configured ones.
pub fn token_name(gw: &Gateway, req_headers: &http::HeaderMap) -> Option<String> {
    let value = req_headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 512 {
        return None;
    }
    let digest = sha256(token.trim().as_bytes());
    // Compare with every configured hash in constant time, without stopping early.
    let mut found = None;
    for t in &gw.cfg.admin.tokens {
        if ct_eq(&t.sha256, &digest) && found.is_none() {
            found = Some(t.name.clone());
        }
    }
    found
}

/// A refused change: 403 with the reason, 404 for an unknown user; a store failure stays an
/// error.
fn refused(e: OpError) -> Result<Response<Body>, GatewayError> {
    match e {
        OpError::Store(e) => Err(e.into()),
        OpError::Refused(r) => Ok(error(StatusCode::FORBIDDEN, &r.to_string())),
        OpError::UnknownUser => Ok(error(StatusCode::NOT_FOUND, "unknown user")),
    }
}

pub async fn handle(
    gw: &Gateway,
    req: Request<Incoming>,
    conn: ConnInfo,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let now = gw.clock.unix();
    let client = gw.client_ip(req.headers(), conn).to_string();
    let Some(name) = token_name(gw, req.headers()) else {
        gw.audit
            .record(
                Record::new(Event::AdminAccessDenied, now, ActorKind::Api, "unknown")
                    .client(&client)
                    .detail(format!("path={}", req.uri().path())),
            )
            .await;
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized: a valid bearer token is required",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return Ok((r, Outcome::Rejected));
    };
    let rest = req
        .uri()
        .path()
        .strip_prefix(gw.paths.admin_api.as_str())
        .unwrap_or("")
        .to_string();
    let method = req.method().clone();
    gw.audit
        .record(
            Record::new(Event::AdminApiCall, now, ActorKind::Api, &name)
                .client(&client)
                .detail(format!("{method} {}", req.uri().path())),
        )
        .await;
    let role = gw
        .cfg
        .admin
        .tokens
        .iter()
        .find(|t| t.name == name)
        .map_or_else(String::new, |t| t.role.clone());
    // A token acts in its role (`admin.tokens[].role`); it is no person, so it has no own
    // account to be refused.
    let actor = Actor {
        kind: ActorKind::Api,
        name,
        client: Some(client),
        rank: Rank::Role { role, user: None },
    };
    let ops = gw.ops();
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let norm = |u: &str| crate::config::normalize_username(u, gw.cfg.vms.username_case_sensitive);
    let resp = match (
        method,
        segments
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
    ) {
        (Method::GET, ["users"]) => {
            let prefix = req
                .uri()
                .query()
                .and_then(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "prefix")
                        .map(|(_, v)| v.into_owned())
                })
                .unwrap_or_default();
            let users = gw.store.search_users(&norm(&prefix), 100).await?;
            json(StatusCode::OK, serde_json::json!({ "users": users }))
        }
        (Method::GET, ["users", u]) => {
            let status = ops.status(&norm(u), now).await?;
            if !status.known {
                error(StatusCode::NOT_FOUND, "unknown user")
            } else {
                json(
                    StatusCode::OK,
                    serde_json::to_value(status).unwrap_or_default(),
                )
            }
        }
        (Method::GET, ["users", u, "events"]) => {
            let events = gw.audit.recent_for(&norm(u), 5000, 100).await;
            json(StatusCode::OK, serde_json::json!({ "events": events }))
        }
        (Method::POST, ["users", u, "reset"]) => {
            let body = match collect_limited(req.into_body(), MAX_BODY).await {
                Ok(b) => b,
                Err(CollectError::TooLarge) => {
                    return Ok((
                        error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
                        Outcome::Rejected,
                    ));
                }
                Err(CollectError::Io(_)) => {
                    return Ok((
                        error(StatusCode::BAD_REQUEST, "body could not be read"),
                        Outcome::Rejected,
                    ));
                }
            };
            let reason = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("reason")
                        .and_then(|r| r.as_str())
                        .map(|s| s.trim().to_string())
                })
                .filter(|r| !r.is_empty() && r.len() <= 500);
            match reason {
                None => error(
                    StatusCode::BAD_REQUEST,
                    "a JSON body {\"reason\": \"...\"} (1 to 500 characters) is required",
                ),
                Some(reason) => {
                    let user = norm(u);
                    match ops.reset(&user, &actor, &reason, now).await {
                        Ok(had) => json(
                            StatusCode::OK,
                            serde_json::json!({ "user": user, "reset": true, "was_enrolled": had }),
                        ),
                        Err(e) => refused(e)?,
                    }
                }
            }
        }
        (Method::POST, ["users", u, "unlock"]) => {
            let user = norm(u);
            match ops.unlock(&user, &actor, now).await {
                Ok(was) => json(
                    StatusCode::OK,
                    serde_json::json!({ "user": user, "unlocked": true, "was_locked": was }),
                ),
                Err(e) => refused(e)?,
            }
        }
        (_, ["users"] | ["users", _] | ["users", _, "events" | "reset" | "unlock"]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
    };
    Ok((resp, Outcome::Gateway))
}
