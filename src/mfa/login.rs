//! Intercepting the VMS login.
//!
//! The login request is read whole (it is small and capped) so the user name can be taken
//! from it, then forwarded. The VMS answer decides:
//!
//! * not a success (status not configured as success, or no session cookie set): passed to
//!   the client untouched, so the VMS shows its own error;
//! * a success: the response is held in memory, the role is found (header, JSON body,
//!   user-info request, or static file; mapped to a policy role), the dated policy is applied,
//!   and the response is either released at once with an approval, or withheld in a
//!   challenge and the client is sent (303) to the MFA page.
//!
//! Everything that goes wrong after the VMS granted a session fails closed: the response is
//! not released, the withheld VMS session is ended if an `end_session` request is configured,
//! and the user sees an error page.

use bytes::Bytes;
use http::header::{self, HeaderValue, LOCATION, SET_COOKIE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::approval::{APPROVAL_COOKIE, Approval, session_hash};
use super::challenge::{Challenge, Step, Withheld};
use super::cookies::{self, CHALLENGE_COOKIE};
use crate::body::{Body, CollectError, collect_limited};
use crate::config::{RoleSource, UsernameIn, normalize_username};
use crate::error::{ClientError, GatewayError, InternalError, UpstreamError};
use crate::gateway::Gateway;
use crate::metrics::{MfaEvent, Outcome};
use crate::policy::MfaState;
use crate::proxy::{ConnInfo, Gate, headers};

/// How long a user who said "not now" to the MFA offer is left alone.
const OFFER_QUIET_SECS: u64 = 30 * 24 * 3600;

pub async fn intercept(
    gw: &Gateway,
    req: Request<Incoming>,
    conn: ConnInfo,
    route_idx: usize,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let vms = &gw.cfg.vms;
    let Some(route) = vms.login.get(route_idx) else {
        return Err(ClientError::NotFound.into());
    };
    let now = gw.clock.unix();
    let (mut parts, body) = req.into_parts();
    let body = collect_limited(body, vms.max_login_body_bytes)
        .await
        .map_err(|e| match e {
            CollectError::TooLarge => ClientError::PayloadTooLarge,
            CollectError::Io(_) => ClientError::BadRequest("login body could not be read"),
        })?;
    let typed_user = extract_username(&route.username, &body);
    let client_addr = gw.client_ip(&parts.headers, conn);
    let _ = gw.gate(&mut parts.headers, now);
    gw.rewrite_request(&mut parts, conn)?;
    let client_host = parts.headers.get(header::HOST).cloned();
    let resp = gw
        .upstream
        .send(Request::from_parts(parts, Body::from(body)), &gw.metrics)
        .await?;
    let (mut rparts, rbody) = resp.into_parts();
    headers::strip_hop_by_hop(&mut rparts.headers);

    let set = cookies::response_cookies(&rparts.headers);
    let session: Vec<(String, String)> = set
        .iter()
        .filter(|c| !c.removal && vms.session_cookies.contains(&c.name))
        .map(|c| (c.name.clone(), c.value.clone()))
        .collect();
    let status_ok =
        route.success_status.is_empty() || route.success_status.contains(&rparts.status.as_u16());
    let cookie_ok = route
        .success_cookie
        .as_ref()
        .is_none_or(|c| session.iter().any(|(n, _)| n == c));
    if !(status_ok && cookie_ok && !session.is_empty()) {
        // A failed login: the VMS's own answer, untouched, unless it tries to set a session
        // cookie anyway, which no client gets without approval.
        let resp = Response::from_parts(rparts, rbody);
        return Ok((gw.respond(resp, &Gate::Anonymous, now), Outcome::Proxied));
    }

    let Some(hash) = session_hash(&vms.session_cookies, |n| {
        session
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    }) else {
        return Err(UpstreamError::Protocol("login response without session value".into()).into());
    };
    let end = EndOnFailure {
        gw,
        session: &session,
        host: client_host.clone(),
    };
    let rbody = match collect_limited(rbody, vms.max_login_response_bytes).await {
        Ok(b) => b,
        Err(_) => {
            end.fire();
            return Err(
                UpstreamError::Protocol("login response too large or unreadable".into()).into(),
            );
        }
    };

    let found = match find_role(gw, &rparts, &rbody, &session, client_host.as_ref(), conn).await {
        Ok(f) => f,
        Err(e) => {
            end.fire();
            return Err(e);
        }
    };
    let Some(raw_user) = typed_user.or(found.user.clone()) else {
        end.fire();
        return Err(UpstreamError::Protocol(
            "no user name in the login request or user info".into(),
        )
        .into());
    };
    let user = normalize_username(&raw_user, vms.username_case_sensitive);
    if user.is_empty() || user.len() > 255 {
        end.fire();
        return Err(ClientError::BadRequest("user name empty or too long").into());
    }
    let mut found_roles = found.roles;
    if let Some(r) = static_role(gw, &user) {
        found_roles.push(r);
    }
    let policy = gw.policy.current();
    let ts = gw.clock.timestamp();
    // Several roles (a list in the VMS answer): the strictest applies.
    let mut decision: Option<(String, crate::policy::Decision)> = None;
    for r in found_roles.iter().filter_map(|r| map_role(gw, r)) {
        if let Some(d) = policy.decide(&r, ts)
            && decision
                .as_ref()
                .is_none_or(|(_, best)| rank(d.state) > rank(best.state))
        {
            decision = Some((r, d));
        }
    }
    let (role, state, grace) = match decision {
        Some((r, d)) => (r, d.state, d.grace),
        None => ("unmapped".to_string(), vms.unmapped, None),
    };
    tracing::info!(user = %user, role = %role, state = %state, "VMS login succeeded");

    let withheld = Withheld::capture(&rparts, &rbody);
    let base = Challenge {
        user: user.clone(),
        role: role.clone(),
        state: state.to_string(),
        step: Step::Verify,
        can_postpone: false,
        created: now,
        expires: now + gw.cfg.mfa.challenge_ttl.as_secs(),
        client: gw
            .cfg
            .mfa
            .bind_challenge_to_address
            .then(|| client_addr.to_string()),
        pending_secret: None,
        pending_member: None,
        session_hash: hash,
        response: withheld,
        recovery_codes: None,
        recovery_remaining: None,
        epoch: gw.revocations.user_epoch(&user),
    };
    if state == MfaState::None {
        note_login_in_background(gw, &user, &role, now);
        return Ok((release(gw, &base, false, now)?, Outcome::Proxied));
    }
    let record = match gw.store.user(&user).await {
        Ok(r) => r,
        Err(e) => {
            gw.metrics.mfa(MfaEvent::StoreError);
            end.fire();
            return Err(e.into());
        }
    };
    let base = Challenge {
        epoch: record.epoch.max(base.epoch),
        ..base
    };
    if let Err(e) = gw.store.note_login(&user, &role, now).await {
        gw.metrics.mfa(MfaEvent::StoreError);
        end.fire();
        return Err(e.into());
    }
    let step = if record.enrolled() {
        Step::Verify
    } else if state == MfaState::Available {
        let declined_recently = record
            .offer_declined
            .is_some_and(|t| now.saturating_sub(t) < OFFER_QUIET_SECS);
        if gw.cfg.mfa.offer_enrollment && !declined_recently {
            Step::Offer
        } else {
            return Ok((release(gw, &base, false, now)?, Outcome::Proxied));
        }
    } else {
        Step::Enroll
    };
    // A reset by the MSP never reopens a grace period.
    let can_postpone = step == Step::Enroll
        && state == MfaState::Enforced
        && record.reset_at.is_none()
        && grace.as_ref().is_some_and(|g| {
            crate::policy::Policy::may_postpone(g, policy.today(ts), record.postponed)
        });
    let mut ch = Challenge {
        step,
        can_postpone,
        ..base
    };
    if step == Step::Enroll {
        ch.pending_secret = Some(new_secret_b64());
    }
    match withhold(gw, ch, &session, now).await {
        Ok(r) => Ok((r, Outcome::Withheld)),
        Err(e) => {
            end.fire();
            Err(e)
        }
    }
}

fn rank(s: MfaState) -> u8 {
    match s {
        MfaState::None => 0,
        MfaState::Available => 1,
        MfaState::Enforced => 2,
    }
}

pub fn new_secret_b64() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(crate::auth::totp::new_secret().as_slice())
}

/// For roles without MFA the login must not depend on Redis: the user is noted for the
/// administrators' search on a best-effort basis.
fn note_login_in_background(gw: &Gateway, user: &str, role: &str, now: u64) {
    let store = gw.store.clone();
    let (user, role) = (user.to_string(), role.to_string());
    tokio::spawn(async move {
        if let Err(e) = store.note_login(&user, &role, now).await {
            tracing::debug!(error = %e, "login not noted for search");
        }
    });
}

/// Takes the user name from the login body: a form field or a JSON pointer.
pub fn extract_username(spec: &UsernameIn, body: &[u8]) -> Option<String> {
    let value = match spec {
        UsernameIn::FormField(f) => form_urlencoded::parse(body)
            .find(|(k, _)| k == f)
            .map(|(_, v)| v.into_owned()),
        UsernameIn::JsonPointer(p) => {
            let v: serde_json::Value = serde_json::from_slice(body).ok()?;
            v.pointer(p).and_then(json_scalar)
        }
    }?;
    let t = value.trim();
    (!t.is_empty() && t.len() <= 255 && !t.chars().any(char::is_control)).then(|| t.to_string())
}

fn json_scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn json_roles(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Array(a) => a.iter().filter_map(json_scalar).collect(),
        other => json_scalar(other).into_iter().collect(),
    }
}

/// Role strings (as the VMS names them) and, from a user-info answer, the user name.
#[derive(Debug, Default)]
pub struct Found {
    pub roles: Vec<String>,
    pub user: Option<String>,
}

async fn find_role(
    gw: &Gateway,
    rparts: &http::response::Parts,
    rbody: &Bytes,
    session: &[(String, String)],
    host: Option<&HeaderValue>,
    conn: ConnInfo,
) -> Result<Found, GatewayError> {
    Ok(match &gw.cfg.vms.role_source {
        RoleSource::Header(h) => Found {
            roles: rparts
                .headers
                .get_all(h)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            user: None,
        },
        RoleSource::JsonBody(p) => {
            let v: Option<serde_json::Value> = serde_json::from_slice(rbody).ok();
            Found {
                roles: v
                    .as_ref()
                    .and_then(|v| v.pointer(p))
                    .map(json_roles)
                    .unwrap_or_default(),
                user: None,
            }
        }
        RoleSource::UserInfo {
            path,
            user_pointer,
            role_pointer,
        } => {
            userinfo(
                gw,
                path,
                user_pointer.as_deref(),
                role_pointer,
                session,
                host,
                conn,
            )
            .await?
        }
        RoleSource::Static { .. } => Found::default(),
    })
}

/// Asks the VMS who the fresh session belongs to, with the session cookie it just set.
async fn userinfo(
    gw: &Gateway,
    path: &str,
    user_pointer: Option<&str>,
    role_pointer: &str,
    session: &[(String, String)],
    host: Option<&HeaderValue>,
    conn: ConnInfo,
) -> Result<Found, GatewayError> {
    let pq: http::uri::PathAndQuery = path
        .parse()
        .map_err(|_| InternalError::Other("bad userinfo path".into()))?;
    let mut req = Request::new(Body::empty());
    *req.uri_mut() = gw.upstream.uri_for(Some(&pq))?;
    let h = req.headers_mut();
    if let Some(host) = host {
        h.insert(header::HOST, host.clone());
    } else if let Ok(a) = HeaderValue::from_str(&gw.cfg.upstream.authority) {
        h.insert(header::HOST, a);
    }
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let cookie = session
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    if let Ok(c) = HeaderValue::from_str(&cookie) {
        h.insert(header::COOKIE, c);
    }
    headers::set_forwarded(h, conn.peer.ip(), &gw.cfg.server.trusted_proxies, host);
    let resp = gw.upstream.send(req, &gw.metrics).await?;
    if !resp.status().is_success() {
        return Err(
            UpstreamError::Protocol(format!("user info answered {}", resp.status())).into(),
        );
    }
    let body = collect_limited(resp.into_body(), 256 * 1024)
        .await
        .map_err(|e| UpstreamError::Protocol(format!("user info body: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| UpstreamError::Protocol("user info is not JSON".into()))?;
    Ok(Found {
        roles: v.pointer(role_pointer).map(json_roles).unwrap_or_default(),
        user: user_pointer
            .and_then(|p| v.pointer(p))
            .and_then(json_scalar),
    })
}

/// A VMS role string -> policy role: the mapping table first, then the policy's own role
/// names (case-insensitive). `None` when nothing matches.
pub fn map_role(gw: &Gateway, vms_role: &str) -> Option<String> {
    if let Some(r) = gw.cfg.vms.role_map.get(vms_role) {
        return Some(r.clone());
    }
    if let Some((_, r)) = gw
        .cfg
        .vms
        .role_map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(vms_role))
    {
        return Some(r.clone());
    }
    let policy = gw.policy.current();
    policy
        .roles()
        .iter()
        .find(|r| r.eq_ignore_ascii_case(vms_role))
        .cloned()
}

/// Role lookup for the static source happens here, where the user name is known.
pub fn static_role(gw: &Gateway, user: &str) -> Option<String> {
    match &gw.cfg.vms.role_source {
        RoleSource::Static { users, .. } => users.get(user).cloned(),
        _ => None,
    }
}

/// Stores the challenge and sends the client to its page.
async fn withhold(
    gw: &Gateway,
    mut ch: Challenge,
    session: &[(String, String)],
    now: u64,
) -> Result<Response<Body>, GatewayError> {
    let id = super::challenge::new_id();
    let key = super::challenge::store_key(&id);
    if gw.cfg.vms.end_session.is_some() {
        let member = super::sweeper::pending_member(gw, &key, session)?;
        gw.store.pending_add(&member, ch.expires).await?;
        ch.pending_member = Some(member);
    }
    let blob = ch
        .seal(&gw.keys, &id)
        .map_err(|e| InternalError::Crypto(e.to_string()))?;
    gw.store
        .put_challenge(&key, &blob, gw.cfg.mfa.challenge_ttl)
        .await?;
    gw.metrics.mfa(match ch.step {
        Step::Enroll => MfaEvent::EnrollmentStarted,
        _ => MfaEvent::ChallengeIssued,
    });
    let _ = now;
    let target = super::flow::step_path(gw, ch.step);
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    h.insert(
        LOCATION,
        HeaderValue::from_str(target).map_err(|_| InternalError::Other("bad prefix".into()))?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.append(
        SET_COOKIE,
        cookies::gateway_cookie(
            CHALLENGE_COOKIE,
            &id,
            Some(gw.cfg.mfa.challenge_ttl),
            cookie::SameSite::Strict,
        ),
    );
    Ok(resp)
}

/// Releases a withheld response: byte for byte as the VMS sent it, plus the approval cookie
/// (and the removal of the challenge cookie).
pub fn release(
    gw: &Gateway,
    ch: &Challenge,
    mfa_passed: bool,
    now: u64,
) -> Result<Response<Body>, GatewayError> {
    let (status, headers, body) = ch
        .response
        .rebuild()
        .ok_or_else(|| InternalError::Other("withheld response does not rebuild".into()))?;
    let state = ch.state.parse::<MfaState>().unwrap_or(MfaState::Enforced);
    let approval = Approval {
        issued: now,
        expires: now + gw.cfg.mfa.approval_max_age.as_secs(),
        mfa_passed,
        state,
        session_hash: ch.session_hash,
        role: ch.role.clone(),
        user: ch.user.clone(),
        epoch: ch.epoch,
        id: Some(crate::auth::crypto::random_bytes()),
    };
    let mut resp = Response::new(Body::from(Bytes::from(body)));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    let h = resp.headers_mut();
    h.append(
        SET_COOKIE,
        cookies::gateway_cookie(
            APPROVAL_COOKIE,
            &approval.seal(&gw.keys),
            Some(gw.cfg.mfa.approval_max_age),
            cookie::SameSite::Lax,
        ),
    );
    gw.metrics.mfa(MfaEvent::Released);
    Ok(resp)
}

/// Ends the withheld VMS session when the login cannot be completed.
struct EndOnFailure<'a> {
    gw: &'a Gateway,
    session: &'a [(String, String)],
    host: Option<HeaderValue>,
}

impl EndOnFailure<'_> {
    fn fire(&self) {
        super::sweeper::end_upstream_session(self.gw, self.session.to_vec(), self.host.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_from_form_and_json() {
        let f = UsernameIn::FormField("username".into());
        assert_eq!(
            extract_username(&f, b"username=Alice%40x.nl&password=p"),
            Some("Alice@x.nl".into())
        );
        assert_eq!(extract_username(&f, b"user=alice"), None);
        assert_eq!(extract_username(&f, b"username=++"), None);
        assert_eq!(
            extract_username(&f, b"username=%00x"),
            None,
            "control characters refused"
        );
        assert_eq!(extract_username(&f, &[0xff, 0xfe, b'=', 0x80]), None);
        let j = UsernameIn::JsonPointer("/auth/user".into());
        assert_eq!(
            extract_username(&j, br#"{"auth":{"user":"bob"}}"#),
            Some("bob".into())
        );
        assert_eq!(
            extract_username(&j, br#"{"auth":{"user":42}}"#),
            Some("42".into())
        );
        assert_eq!(extract_username(&j, br#"{"auth":{"user":["x"]}}"#), None);
        assert_eq!(extract_username(&j, b"not json"), None);
        let long = format!("username={}", "a".repeat(300));
        assert_eq!(extract_username(&f, long.as_bytes()), None);
    }

    #[test]
    fn roles_from_json_scalars_and_lists() {
        assert_eq!(json_roles(&serde_json::json!("Msp")), vec!["Msp"]);
        assert_eq!(
            json_roles(&serde_json::json!(["Customer", "MSP", {"x":1}])),
            vec!["Customer", "MSP"]
        );
        assert!(json_roles(&serde_json::json!(null)).is_empty());
    }
}
