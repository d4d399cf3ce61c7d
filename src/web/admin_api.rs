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
//!   POST users/{user}/enrollment-code                 -> a new one-time enrollment code
//! ```
//!
//! With `admin.reset_requires_enrollment_code` (the default) a reset's answer carries
//! `enrollment_code` ("4821 0937") and `enrollment_code_valid_until` (Unix seconds): the
//! only time the code is shown. The status shows whether one is pending and until when,
//! never the code.

use http::{Response, StatusCode, header};
use hyper::body::Incoming;

use crate::admin::ops::{Actor, OpError, Rank};
use crate::audit::{ActorKind, Event, Record};
use crate::auth::crypto::{ct_eq, sha256};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::http::body::{Body, CollectError, collect_limited};
use crate::metrics::Outcome;
use crate::web::extract::{Answer, Call, Query};
use crate::web::routes::ApiRoute;

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

/// A JSON error body `{"error": msg}` with `status`.
pub fn error(status: StatusCode, msg: &str) -> Response<Body> {
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
        OpError::Enrolled => Ok(error(StatusCode::CONFLICT, &OpError::Enrolled.to_string())),
        OpError::NoKeys => {
            Err(crate::error::InternalError::Other(OpError::NoKeys.to_string()).into())
        }
    }
}

/// An endpoint of the API (the router has checked path and method; see [`crate::web`]).
pub async fn handle(call: &Call<'_>, route: ApiRoute, body: Incoming) -> Answer {
    let gw = call.gw;
    let now = call.now;
    let client = call.client.clone();
    let Some(name) = token_name(gw, &call.headers) else {
        gw.audit
            .record(
                Record::new(Event::AdminAccessDenied, now, ActorKind::Api, "unknown")
                    .client(&client)
                    .detail(format!("path={}", call.path())),
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
    gw.audit
        .record(
            Record::new(Event::AdminApiCall, now, ActorKind::Api, &name)
                .client(&client)
                .detail(format!("{} {}", call.method, call.path())),
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
    let norm = |u: &str| crate::config::normalize_username(u, gw.cfg.vms.username_case_sensitive);
    let resp = match route {
        ApiRoute::Users => {
            let prefix = Query::of(&call.uri)
                .get("prefix")
                .unwrap_or_default()
                .to_string();
            let users = gw.store.search_users(&norm(&prefix), 100).await?;
            json(StatusCode::OK, serde_json::json!({ "users": users }))
        }
        ApiRoute::User(u) => {
            let status = ops.status(&norm(&u), now).await?;
            if !status.known {
                error(StatusCode::NOT_FOUND, "unknown user")
            } else {
                json(
                    StatusCode::OK,
                    serde_json::to_value(status).unwrap_or_default(),
                )
            }
        }
        ApiRoute::Events(u) => {
            let events = gw.audit.recent_for(&norm(&u), 5000, 100).await;
            json(StatusCode::OK, serde_json::json!({ "events": events }))
        }
        ApiRoute::Reset(u) => {
            let body = match collect_limited(body, MAX_BODY).await {
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
                    let user = norm(&u);
                    match ops.reset(&user, &actor, &reason, now).await {
                        Ok(done) => {
                            let mut v = serde_json::json!({
                                "user": user, "reset": true, "was_enrolled": done.had
                            });
                            if let Some(code) = &done.code {
                                v["enrollment_code"] = code.grouped().into();
                                v["enrollment_code_valid_until"] = code.until.into();
                            }
                            json(StatusCode::OK, v)
                        }
                        Err(e) => refused(e)?,
                    }
                }
            }
        }
        ApiRoute::EnrollmentCode(u) => {
            let user = norm(&u);
            match ops.issue_enrollment_code(&user, &actor, now).await {
                Ok(code) => json(
                    StatusCode::OK,
                    serde_json::json!({
                        "user": user,
                        "enrollment_code": code.grouped(),
                        "enrollment_code_valid_until": code.until,
                    }),
                ),
                Err(e) => refused(e)?,
            }
        }
        ApiRoute::Unlock(u) => {
            let user = norm(&u);
            match ops.unlock(&user, &actor, now).await {
                Ok(was) => json(
                    StatusCode::OK,
                    serde_json::json!({ "user": user, "unlocked": true, "was_locked": was }),
                ),
                Err(e) => refused(e)?,
            }
        }
    };
    Ok((resp, Outcome::Gateway))
}
