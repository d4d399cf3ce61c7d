//! Every new VMS session is a login.
//!
//! The VMS, not the client, says who a session belongs to. So whenever a VMS answer sets a
//! configured session cookie (on a configured login route, on any other path, with any
//! method) the new session is not passed on until the gateway knows from the VMS whose it is
//! and the dated policy has decided:
//!
//! ```text
//!  answer sets a session cookie
//!     │
//!     ├─ on a login route, not a success (status, success_cookie) ─► passed on without the
//!     │                                                                session cookie
//!     ├─ identify: the user the VMS reports (user header, login JSON, user-info request);
//!     │            where the VMS reports none, the typed name (login routes only)
//!     │      ├─ nobody ─────────────────────────────────────────────► passed on without the
//!     │      │                                                         session cookie
//!     │      └─ typed name differs from the VMS's (must_match) ─────► session ended, 403,
//!     │                                                                audited
//!     ├─ outside a login, same user as the request's approval ─────► renewal: the approval
//!     │                                                                follows the new value
//!     │                                                                (issued time kept)
//!     └─ otherwise: a login ─► role, policy ─► released with an approval, or withheld in a
//!                                               challenge (303 to the MFA page)
//! ```
//!
//! Login routes are matched as leniently as a VMS reads them (`Vms::login_route`), so the
//! typed name is read for every spelling of the login; the typed name is read by the body's
//! `Content-Type` (`login_form`). An approval is never inherited by another user's session.
//!
//! Everything that goes wrong after the VMS granted a session fails closed: the answer is not
//! released, the withheld VMS session is ended if an `end_session` request is configured,
//! and the user sees an error page.

use crate::config::EmailSource;
use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderValue, LOCATION, SET_COOKIE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::audit::{ActorKind, Event, Record};
use crate::config::{
    ReportedUser, RoleSource, SessionBeforeLogin, TypedUsername, normalize_username,
};
use crate::error::{ClientError, GatewayError, InternalError, UpstreamError};
use crate::gate::Gate;
use crate::gate::approval::{APPROVAL_COOKIE, Approval, session_hash};
use crate::gate::cookies::{self, CHALLENGE_COOKIE};
use crate::gateway::Gateway;
use crate::http::body::{Body, CollectError, collect_limited};
use crate::http::{ConnInfo, headers};
use crate::metrics::{MfaEvent, Outcome};
use crate::mfa::challenge::{Challenge, Step, Withheld};
use crate::policy::MfaState;

/// A request to a configured login route: read whole, its typed user name taken, forwarded,
/// and its answer handled by [`new_session`] when it is a successful login.
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
    let typed_user = crate::proxy::login_form::typed_username(
        &route.username,
        &parts.headers,
        parts.uri.query(),
        &body,
    )
    .await
    .map_err(|e| ClientError::BadRequest(e.reason()))?;
    let client_addr = gw.client_ip(&parts.headers, conn);
    // A route posted by script always gets the JSON answer, whatever its headers say.
    let background = route.landing.is_some() || crate::http::fetch::is_background(&parts.headers);
    // Read before the gate takes the gateway's own cookies off the request.
    let remember =
        cookies::request_cookie(&parts.headers, cookies::REMEMBER_COOKIE).map(str::to_string);
    // The browser's language, kept with the user for the mails the gateway sends them.
    let lang = parts
        .headers
        .get(header::ACCEPT_LANGUAGE)
        .map(|v| gw.lang(Some(v)).code());
    let mut gate = gw.gate(&mut parts.headers, now);
    // Held (same_id) until the answer has been identified: see `prelogin::admit`.
    let mut lease = None;
    if let Gate::PreLogin(_) = gate {
        (gate, lease) = crate::proxy::prelogin::admit(gw, &mut parts.headers, gate).await?;
    }
    if vms.session_before_login == SessionBeforeLogin::SameId
        && let Gate::Approved(_) = gate
    {
        // A VMS that signs in the session a login arrives on would hand an approved session
        // to whoever's password this is, while the approval (checked locally by every
        // instance) still names its owner. The login goes without it: the VMS opens a new
        // session, which is a login like any other.
        cookies::filter_for_upstream(&mut parts.headers, &vms.session_cookies, false);
        gate = Gate::Stripped;
    }
    let forwarded = forwarded_session(gw, &parts.headers);
    gw.rewrite_request(&mut parts, conn)?;
    let client_host = parts.headers.get(header::HOST).cloned();
    let resp = gw
        .upstream
        .send(Request::from_parts(parts, Body::from(body)), &gw.metrics)
        .await?;
    let (mut rparts, rbody) = resp.into_parts();
    headers::strip_hop_by_hop_and(&mut rparts.headers, &gw.cfg.upstream.strip_response_headers);

    let new_values = new_session_values(gw, &rparts.headers);
    let status_ok =
        route.success_status.is_empty() || route.success_status.contains(&rparts.status.as_u16());
    let cookie_ok = route
        .success_cookie
        .as_ref()
        .is_none_or(|c| new_values.iter().any(|(n, _)| n == c));
    // A pre-login session (or a new one) is identified by the VMS whatever the answer looks
    // like: the VMS, not the status or a cookie, says whether someone signed in.
    let identify_anyway = vms.session_before_login.pre_login()
        && (matches!(gate, Gate::PreLogin(_)) || !new_values.is_empty());
    let success = status_ok && cookie_ok && !new_values.is_empty();
    if !success && !identify_anyway {
        // A failed login: the VMS's own answer, untouched, unless it tries to set a session
        // cookie anyway, which no client gets without approval.
        if strip_session_cookies(gw, &mut rparts.headers) {
            gw.metrics.mfa(MfaEvent::SessionStripped);
        }
        if let Some(l) = lease {
            l.release().await;
        }
        return Ok((Response::from_parts(rparts, rbody), Outcome::Proxied));
    }
    let origin = Origin {
        typed_user,
        login: true,
        gate: &gate,
        forwarded,
        client_addr,
        host: client_host,
        conn,
        background,
        landing: route.landing.clone(),
        remember,
        lang,
    };
    let answer = new_session(gw, rparts, rbody, origin, now).await;
    if let Some(l) = lease {
        l.release().await;
    }
    answer
}

/// What is known about the request whose answer set a new VMS session.
pub struct Origin<'a> {
    /// The user name typed in a login request (login routes only).
    pub typed_user: Option<String>,
    /// The request was for a configured login route.
    pub login: bool,
    /// The gate's decision for the request's own session.
    pub gate: &'a Gate,
    /// The session cookies (name, value) the request carried to the VMS.
    pub forwarded: Vec<(String, String)>,
    pub client_addr: IpAddr,
    /// The `Host` the request went to the VMS with.
    pub host: Option<HeaderValue>,
    pub conn: ConnInfo,
    /// The request came from a script (`http::fetch`): a withheld login is answered with a
    /// JSON 401 naming the MFA page, not a redirect to it.
    pub background: bool,
    /// The login route's `landing` (`posted_by = "script"`), kept with a challenge.
    pub landing: Option<String>,
    /// The request's remember cookie (`mfa::remember`), on a login route: it may replace the
    /// code step of this user's sign-in.
    pub remember: Option<String>,
    /// The language the login request's browser asked for (`en` / `nl`), where it said.
    pub lang: Option<&'static str>,
}

/// The configured session cookies (name, value) that travel in request `headers` (after the
/// gate: only an approved session's).
pub fn forwarded_session(gw: &Gateway, headers: &http::HeaderMap) -> Vec<(String, String)> {
    gw.cfg
        .vms
        .session_cookies
        .iter()
        .filter_map(|n| cookies::request_cookie(headers, n).map(|v| (n.clone(), v.to_string())))
        .collect()
}

/// The configured session cookies an answer sets (not removals), in the answer's order.
pub fn new_session_values(gw: &Gateway, headers: &http::HeaderMap) -> Vec<(String, String)> {
    if !headers.contains_key(SET_COOKIE) {
        return Vec::new();
    }
    let names = &gw.cfg.vms.session_cookies;
    cookies::response_cookies(headers)
        .into_iter()
        .filter(|c| !c.removal && names.contains(&c.name))
        .map(|c| (c.name, c.value))
        .collect()
}

/// Removes every `Set-Cookie` that sets a configured session cookie (removals stay).
/// Returns whether one was removed.
pub fn strip_session_cookies(gw: &Gateway, headers: &mut http::HeaderMap) -> bool {
    let names = &gw.cfg.vms.session_cookies;
    let mut removed = false;
    let kept: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| {
            let mut one = http::HeaderMap::new();
            one.insert(SET_COOKIE, (*v).clone());
            let sets = cookies::response_cookies(&one)
                .iter()
                .any(|c| !c.removal && names.contains(&c.name));
            removed |= sets;
            !sets
        })
        .cloned()
        .collect();
    if removed {
        headers.remove(SET_COOKIE);
        for v in kept {
            headers.append(SET_COOKIE, v);
        }
    }
    removed
}

/// The session the client holds after an answer: the cookies it sent to the VMS, with the
/// answer's new values in their place (removals drop a cookie).
fn next_session(
    gw: &Gateway,
    forwarded: &[(String, String)],
    resp_headers: &http::HeaderMap,
) -> Vec<(String, String)> {
    let set = cookies::response_cookies(resp_headers);
    let names = &gw.cfg.vms.session_cookies;
    let mut out: Vec<(String, String)> = Vec::new();
    for name in names {
        let last = set.iter().rev().find(|c| &c.name == name);
        match last {
            Some(c) if c.removal => {}
            Some(c) => out.push((name.clone(), c.value.clone())),
            None => {
                if let Some((_, v)) = forwarded.iter().find(|(n, _)| n == name) {
                    out.push((name.clone(), v.clone()));
                }
            }
        }
    }
    out
}

/// An answer that set a new VMS session: identified, then renewed, released or withheld.
/// See the module documentation for the decisions.
pub async fn new_session(
    gw: &Gateway,
    mut rparts: http::response::Parts,
    rbody: Body,
    o: Origin<'_>,
    now: u64,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let vms = &gw.cfg.vms;
    let session = next_session(gw, &o.forwarded, &rparts.headers);
    let Some(hash) = session_hash(&vms.session_cookies, |n| {
        session
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    }) else {
        return Err(UpstreamError::Protocol("new session without a session value".into()).into());
    };
    // The pre-login session the request carried (`prelogin`), if any.
    let pre = match o.gate {
        Gate::PreLogin(h) => Some(*h),
        _ => None,
    };
    let end = EndOnFailure {
        gw,
        session: &session,
        host: o.host.clone(),
        pre,
    };
    // A login answer is held whole (it is released or withheld as a whole); any other answer
    // streams on unless it turns out to be another user's login.
    let mut held: Option<Bytes> = None;
    let mut streaming: Option<Body> = None;
    if o.login {
        match collect_limited(rbody, vms.max_login_response_bytes).await {
            Ok(b) => held = Some(b),
            Err(_) => {
                end.fire().await;
                return Err(UpstreamError::Protocol(
                    "login response too large or unreadable".into(),
                )
                .into());
            }
        }
    } else {
        streaming = Some(rbody);
    }

    let found = match identify(gw, &rparts, held.as_ref(), &session, &o).await {
        Ok(f) => f,
        Err(e) if o.login => {
            end.fire().await;
            return Err(e);
        }
        Err(e) if pre.is_some() => {
            // The answer to a pre-login session may be a signed-in page: nothing of it goes,
            // and the session no longer reaches the VMS.
            if let Some(p) = &pre {
                crate::proxy::prelogin::drop(gw, p).await;
            }
            return Err(e);
        }
        Err(e) => {
            tracing::warn!(error = %e, "a new VMS session outside a login could not be identified; not passed on");
            return Ok(unconfirmed(gw, rparts, streaming, held));
        }
    };
    // The name exactly as the VMS reported it: two VMS accounts whose names fold to the same
    // key must not share MFA state (see `decide`).
    let reported_raw = found.user.as_deref().map(str::trim).map(str::to_string);
    let reported = found
        .user
        .as_deref()
        .map(|u| normalize_username(u, vms.username_case_sensitive))
        .filter(|u| !u.is_empty());
    let typed = o
        .typed_user
        .as_deref()
        .map(|u| normalize_username(u, vms.username_case_sensitive));
    let user = match (reported, typed) {
        (Some(r), Some(t)) if r != t && vms.typed_username == TypedUsername::MustMatch => {
            end.fire().await;
            gw.metrics.mfa(MfaEvent::IdentityMismatch);
            tracing::warn!(user = %r, "typed user name differs from the VMS's; login ended");
            gw.audit
                .record(
                    Record::new(Event::IdentityMismatch, now, ActorKind::User, r.clone())
                        .user(r)
                        .client(o.client_addr.to_string())
                        .detail("typed name differs from the name the VMS reported"),
                )
                .await;
            return Err(ClientError::Forbidden.into());
        }
        (Some(r), _) => r,
        (None, Some(t)) if o.login && !vms.identity_from_vms() => t,
        (None, _) if vms.session_before_login.pre_login() => {
            let body = match (held, streaming) {
                (Some(b), _) => Body::from(b),
                (None, Some(s)) => s,
                (None, None) => Body::empty(),
            };
            return Ok(anonymous(gw, rparts, body, hash, pre, o.gate, now).await);
        }
        (None, _) if o.login => {
            end.fire().await;
            return Err(UpstreamError::Protocol(
                "the VMS did not say whose session the login opened".into(),
            )
            .into());
        }
        (None, _) => return Ok(unconfirmed(gw, rparts, streaming, held)),
    };
    if user.is_empty() || user.len() > 255 {
        end.fire().await;
        return Err(ClientError::BadRequest("user name empty or too long").into());
    }
    if !o.login
        && let Gate::Approved(a) = o.gate
        && a.user == user
    {
        // The VMS renewed the session of the user it was approved for (sliding expiration):
        // the approval follows the new value, with everything else (issued time included, so
        // revocations still reach it) unchanged.
        let renewed = Approval {
            session_hash: hash,
            ..Approval::clone(a)
        };
        let max_age = std::time::Duration::from_secs(a.expires.saturating_sub(now));
        rparts.headers.append(
            SET_COOKIE,
            cookies::gateway_cookie(
                APPROVAL_COOKIE,
                &renewed.seal(&gw.keys),
                Some(max_age),
                cookie::SameSite::Lax,
            ),
        );
        gw.metrics.mfa(MfaEvent::SessionRenewed);
        let body = match (held, streaming) {
            (Some(b), _) => Body::from(b),
            (None, Some(s)) => s,
            (None, None) => Body::empty(),
        };
        return Ok((Response::from_parts(rparts, body), Outcome::Proxied));
    }
    if let Some(p) = pre {
        if p == hash {
            // Signed in on the id it had before login: held back on every instance (the
            // store's record) before anything of this answer leaves.
            match crate::proxy::prelogin::sign_in(gw, &p, &user).await {
                Ok(crate::proxy::prelogin::SignIn::Switched) => {}
                Ok(crate::proxy::prelogin::SignIn::Busy) => {
                    return Err(ClientError::Forbidden.into());
                }
                Ok(crate::proxy::prelogin::SignIn::Refused) => {
                    end.fire().await;
                    return Err(UpstreamError::Protocol(
                        "a session before login was signed in without the expected new id".into(),
                    )
                    .into());
                }
                Err(e) => {
                    end.fire().await;
                    return Err(e);
                }
            }
        } else {
            // The login gave the session a new id: the old one is dropped.
            crate::proxy::prelogin::drop(gw, &p).await;
        }
    }
    // A login: the answer is held, whatever path it came on.
    let rbody = match (held, streaming) {
        (Some(b), _) => b,
        (None, Some(s)) => match collect_limited(s, vms.max_login_response_bytes).await {
            Ok(b) => b,
            Err(_) => {
                end.fire().await;
                return Err(UpstreamError::Protocol(
                    "answer opening a session too large or unreadable".into(),
                )
                .into());
            }
        },
        (None, None) => Bytes::new(),
    };
    if !o.login {
        gw.metrics.mfa(MfaEvent::LoginOutsideRoute);
    }
    let who = Who {
        user,
        reported: reported_raw,
    };
    decide(
        gw,
        &rparts,
        &rbody,
        found.roles,
        found.email,
        who,
        hash,
        &session,
        &o,
        &end,
        now,
    )
    .await
}

/// Whether two names the VMS reported for one user key are the same VMS account: equal, or
/// (for case-insensitive names) equal but for ASCII letter case, which a VMS may echo as
/// typed. Anything else (the Kelvin sign for "K", fullwidth letters, "ß" for "ss") folds to
/// the same key but may be another account, and is refused.
fn same_account(recorded: &str, reported: &str, case_sensitive: bool) -> bool {
    recorded == reported || (!case_sensitive && recorded.eq_ignore_ascii_case(reported))
}

/// The user a login is for: the key all MFA state is kept under, and the name as the VMS
/// reported it (`None` where the typed name is trusted).
struct Who {
    user: String,
    reported: Option<String>,
}

/// A new session whose owner the VMS did not confirm: the answer goes on without its session
/// cookie (the client keeps the session it had, if any).
fn unconfirmed(
    gw: &Gateway,
    mut rparts: http::response::Parts,
    streaming: Option<Body>,
    held: Option<Bytes>,
) -> (Response<Body>, Outcome) {
    strip_session_cookies(gw, &mut rparts.headers);
    gw.metrics.mfa(MfaEvent::SessionStripped);
    let body = match (held, streaming) {
        (Some(b), _) => Body::from(b),
        (None, Some(s)) => s,
        (None, None) => Body::empty(),
    };
    (Response::from_parts(rparts, body), Outcome::Proxied)
}

/// An answer whose session the VMS says nobody is signed in to, on a VMS with sessions before
/// login: it passes, and a new session in it becomes a pre-login session (`prelogin`).
async fn anonymous(
    gw: &Gateway,
    mut rparts: http::response::Parts,
    body: Body,
    hash: [u8; 16],
    pre: Option<[u8; 16]>,
    gate: &Gate,
    now: u64,
) -> (Response<Body>, Outcome) {
    if pre != Some(hash) {
        if let Some(old) = pre {
            crate::proxy::prelogin::drop(gw, &old).await;
        }
        let marker = match gate {
            // The browser's id waits for its MFA step: a new anonymous one must not replace it.
            Gate::Held => None,
            _ => crate::proxy::prelogin::open(gw, &hash, now).await,
        };
        match marker {
            Some(m) => {
                rparts.headers.append(SET_COOKIE, m);
            }
            None => {
                if strip_session_cookies(gw, &mut rparts.headers) {
                    gw.metrics.mfa(MfaEvent::SessionStripped);
                }
            }
        }
    }
    (Response::from_parts(rparts, body), Outcome::Proxied)
}

/// The policy's decision for an identified login: release at once, or withhold.
#[allow(clippy::too_many_arguments)]
async fn decide(
    gw: &Gateway,
    rparts: &http::response::Parts,
    rbody: &Bytes,
    mut found_roles: Vec<String>,
    found_email: Option<String>,
    who: Who,
    hash: [u8; 16],
    session: &[(String, String)],
    o: &Origin<'_>,
    end: &EndOnFailure<'_>,
    now: u64,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let vms = &gw.cfg.vms;
    let user = who.user;
    if let Some(r) = static_role(gw, &user) {
        found_roles.push(r);
    }
    let policy = gw.policy.current();
    let ts = gw.clock.timestamp();
    // Several roles (a list in the VMS answer): the strictest applies.
    let mut decision: Option<(String, crate::policy::Decision)> = None;
    for vms_role in &found_roles {
        let mapped = map_role(gw, vms_role);
        let Some((r, d)) = mapped
            .clone()
            .and_then(|r| policy.decide(&r, ts).map(|d| (r, d)))
        else {
            // The VMS's role string (no secret), so a missing map entry can be found; cut
            // short and escaped, as it comes from the VMS.
            let shown: String = vms_role.chars().take(64).collect();
            tracing::warn!(
                user = %user,
                vms_role = ?shown,
                mapped_to = mapped.as_deref().unwrap_or("-"),
                "VMS role not mapped to a policy role (vms.role.map): vms.role.unmapped applies unless another role of the user maps"
            );
            continue;
        };
        if decision
            .as_ref()
            .is_none_or(|(_, best)| rank(d.state) > rank(best.state))
        {
            decision = Some((r, d));
        }
    }
    let (role, state, grace, mut methods) = match decision {
        Some((r, d)) => (r, d.state, d.grace, d.methods),
        None => (
            "unmapped".to_string(),
            vms.unmapped,
            None,
            crate::policy::MfaMethods::TOTP,
        ),
    };
    let usable = methods.usable(gw.passkeys.is_some());
    if usable != methods {
        tracing::warn!(role = %role, "the policy counts passkeys but [webauthn] is not configured: codes count instead");
        methods = usable;
    }
    tracing::info!(user = %user, role = %role, state = %state, "VMS login succeeded");

    let withheld = Withheld::capture(rparts, rbody);
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
            .then(|| o.client_addr.to_string()),
        pending_secret: None,
        pending_member: None,
        session_hash: hash,
        response: withheld,
        recovery_codes: None,
        recovery_remaining: None,
        epoch: gw.revocations.user_epoch(&user),
        pending_replaced: false,
        landing: o.landing.clone(),
        enrollment_ticket: None,
        methods,
        code_in_grace: false,
        email_check: None,
    };
    if state == MfaState::None {
        let contact = contact_of(gw, &user, found_email, o.lang);
        note_login_in_background(gw, &user, &role, now, contact);
        gw.metrics.login(&role, state.as_str(), "released");
        return Ok((release(gw, &base, false, now)?, Outcome::Proxied));
    }
    let record = match gw.store.user(&user).await {
        Ok(r) => r,
        Err(e) => {
            gw.metrics.mfa(MfaEvent::StoreError);
            end.fire().await;
            return Err(e.into());
        }
    };
    let base = Challenge {
        epoch: record.epoch.max(base.epoch),
        ..base
    };
    if let Some(reported) = &who.reported {
        match gw.store.claim_vms_name(&user, reported).await {
            Ok(Some(recorded))
                if !same_account(&recorded, reported, vms.username_case_sensitive) =>
            {
                // Two VMS accounts ("kate" and "\u{212a}ate", say) fold to one key: the second
                // must never act on the first one's MFA state.
                end.fire().await;
                gw.metrics.mfa(MfaEvent::IdentityMismatch);
                tracing::warn!(user = %user, "a second VMS account folds to this user name; login ended");
                gw.audit
                    .record(
                        Record::new(Event::IdentityMismatch, now, ActorKind::User, user.clone())
                            .user(user.clone())
                            .client(o.client_addr.to_string())
                            .detail("another VMS account's name folds to this user name"),
                    )
                    .await;
                return Err(ClientError::Forbidden.into());
            }
            Ok(_) => {}
            Err(e) => {
                gw.metrics.mfa(MfaEvent::StoreError);
                end.fire().await;
                return Err(e.into());
            }
        }
    }
    let contact = contact_of(gw, &user, found_email, o.lang);
    if let Err(e) = gw.store.note_login(&user, &role, now, &contact).await {
        gw.metrics.mfa(MfaEvent::StoreError);
        end.fire().await;
        return Err(e.into());
    }
    // The methods the user has set up, against those the role's methods count. Passkeys are
    // looked up (once) where they count, or where the user has no app: a user with only
    // passkeys the role's methods do not count (set up while they did) has MFA all the same,
    // not offered it as if it were off, but asked to set up the app.
    let any_passkey = if methods.webauthn || !record.enrolled() {
        match gw.store.passkeys(&user).await {
            Ok(p) => !p.is_empty(),
            Err(e) => {
                gw.metrics.mfa(MfaEvent::StoreError);
                end.fire().await;
                return Err(e.into());
            }
        }
    } else {
        false
    };
    let has_passkey = methods.webauthn && any_passkey;
    let usable = (methods.totp && record.enrolled()) || has_passkey;
    let uncounted_passkeys = !methods.webauthn && !record.enrolled() && any_passkey;
    let step = if usable {
        if methods.totp && record.enrolled() && remembered_browser(gw, &user, &role, o, now).await {
            gw.metrics.login(&role, state.as_str(), "remembered");
            return Ok((release(gw, &base, true, now)?, Outcome::Proxied));
        }
        Step::Verify
    } else if record.enrolled() {
        // The role's methods moved to passkeys and the user has only the app: a passkey is
        // set up at this sign-in (the phase's grace may let the user postpone it).
        Step::Passkey
    } else if uncounted_passkeys {
        Step::Enroll
    } else if state == MfaState::Available {
        let declined_recently = record
            .offer_declined
            .is_some_and(|t| now.saturating_sub(t) < gw.cfg.mfa.offer_quiet_period.as_secs());
        // After an MSP reset with an enrollment code, the offer comes at every sign-in until
        // the app is paired: setting MFA up then needs the code, typed in a sign-in.
        if record.enrollment_code_required() || (gw.cfg.mfa.offer_enrollment && !declined_recently)
        {
            Step::Offer
        } else {
            gw.metrics.login(&role, state.as_str(), "released");
            return Ok((release(gw, &base, false, now)?, Outcome::Proxied));
        }
    } else if methods.totp {
        Step::Enroll
    } else {
        Step::Passkey
    };
    // A reset by the MSP never reopens a grace period. An opted-in user (available) whose
    // role moved to passkeys may always go on with the app this time; one whose passkeys the
    // role does not count may put the app off, as one not yet opted in could decline it.
    let in_grace = state == MfaState::Enforced
        && record.reset_at.is_none()
        && grace.as_ref().is_some_and(|g| {
            crate::policy::Policy::may_postpone(g, policy.today(ts), record.postponed)
        });
    let can_postpone = match step {
        Step::Enroll => in_grace || (state == MfaState::Available && uncounted_passkeys),
        Step::Passkey => in_grace || (state == MfaState::Available && record.enrolled()),
        _ => false,
    };
    gw.metrics.login(
        &role,
        state.as_str(),
        match step {
            Step::Offer => "offer",
            Step::Enroll | Step::Passkey => "enroll",
            _ => "code",
        },
    );
    let mut ch = Challenge {
        step,
        can_postpone,
        email_check: crate::mfa::email_code::first_enrollment_check(gw, &record),
        ..base
    };
    if step == Step::Enroll || step == Step::Passkey {
        // Installing an app and scanning takes longer than typing a code. The secret is the
        // user's pending one, taken when the page is first shown (it is bound to the browser,
        // see `pending`).
        ch.expires = now + gw.cfg.mfa.enrollment_ttl.as_secs();
    }
    match withhold(gw, ch, session, o.background, now).await {
        Ok(r) => Ok((r, Outcome::Withheld)),
        Err(e) => {
            end.fire().await;
            Err(e)
        }
    }
}

/// Whether the login's browser is one the user chose to remember, valid now (see
/// `mfa::remember`): then the code step is skipped, audited as a success without a code. A
/// store that cannot tell asks for the code.
async fn remembered_browser(
    gw: &Gateway,
    user: &str,
    role: &str,
    o: &Origin<'_>,
    now: u64,
) -> bool {
    if o.remember.is_none() {
        return false;
    }
    match crate::mfa::remember::recognize(gw, user, role, o.remember.as_deref(), now).await {
        Ok(Some(b)) => {
            gw.audit
                .record(
                    Record::new(Event::VerifySuccess, now, ActorKind::User, user)
                        .user(user)
                        .client(o.client_addr.to_string())
                        .detail(format!(
                            "no code: remembered browser={}",
                            crate::mfa::remember::short_id(&b.id)
                        )),
                )
                .await;
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(user = %user, error = %e, "remembered browser not checked; the code is asked");
            false
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
fn note_login_in_background(
    gw: &Gateway,
    user: &str,
    role: &str,
    now: u64,
    contact: crate::store::Contact,
) {
    let store = gw.store.clone();
    let (user, role) = (user.to_string(), role.to_string());
    tokio::spawn(async move {
        if let Err(e) = store.note_login(&user, &role, now, &contact).await {
            tracing::debug!(error = %e, "login not noted for search");
        }
    });
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
    /// The user's e-mail address, where `vms.role` says where the VMS gives it.
    pub email: Option<String>,
}

/// What the gateway keeps of how to reach `user`: the address the VMS gave at this login
/// (or the static map's), if it is one, and the browser's language.
fn contact_of(
    gw: &Gateway,
    user: &str,
    found: Option<String>,
    lang: Option<&'static str>,
) -> crate::store::Contact {
    let email = match &gw.cfg.vms.email_source {
        Some(EmailSource::Static(map)) => map.get(user).cloned(),
        Some(_) => found,
        None => None,
    }
    .map(|e| e.trim().to_string())
    .filter(|e| e.len() <= 254 && e.parse::<lettre::Address>().is_ok());
    crate::store::Contact {
        email,
        lang: lang.map(str::to_string),
    }
}

/// The address the VMS gives in a login answer (header or JSON body), per `vms.role`.
fn email_in_answer(
    gw: &Gateway,
    rparts: &http::response::Parts,
    body: Option<&Bytes>,
) -> Option<String> {
    match gw.cfg.vms.email_source.as_ref()? {
        EmailSource::Header(h) => {
            let mut values = rparts.headers.get_all(h).iter();
            match (values.next(), values.next()) {
                (Some(v), None) => v.to_str().ok().map(str::to_string),
                _ => None,
            }
        }
        EmailSource::JsonBody(p) => body
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .and_then(|v| v.pointer(p).and_then(json_scalar)),
        EmailSource::UserInfo(_) | EmailSource::Static(_) => None,
    }
}

/// The user the VMS says `session` belongs to now (`None`: nobody), from the answer `rparts`
/// or a user-info request (with the configured sources that can tell on any answer).
pub async fn session_owner(
    gw: &Gateway,
    rparts: &http::response::Parts,
    session: &[(String, String)],
    host: Option<&HeaderValue>,
    conn: ConnInfo,
) -> Result<Option<String>, GatewayError> {
    let o = Origin {
        typed_user: None,
        login: false,
        gate: &Gate::Anonymous,
        forwarded: session.to_vec(),
        client_addr: conn.peer.ip(),
        host: host.cloned(),
        conn,
        background: false,
        remember: None,
        landing: None,
        lang: None,
    };
    let found = identify(gw, rparts, None, session, &o).await?;
    Ok(found
        .user
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty()))
}

/// Who the VMS says the new session belongs to, and the role strings it gives, from the
/// configured source. `body` is the held answer (login routes only).
async fn identify(
    gw: &Gateway,
    rparts: &http::response::Parts,
    body: Option<&Bytes>,
    session: &[(String, String)],
    o: &Origin<'_>,
) -> Result<Found, GatewayError> {
    let vms = &gw.cfg.vms;
    let mut found = match &vms.role_source {
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
            email: None,
        },
        RoleSource::JsonBody(p) => {
            let v: Option<serde_json::Value> = body.and_then(|b| serde_json::from_slice(b).ok());
            let user = match (&vms.reported_user, &v) {
                (ReportedUser::JsonBody(up), Some(v)) => v.pointer(up).and_then(json_scalar),
                _ => None,
            };
            Found {
                roles: v
                    .as_ref()
                    .and_then(|v| v.pointer(p))
                    .map(json_roles)
                    .unwrap_or_default(),
                user,
                email: None,
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
                o.host.as_ref(),
                o.conn,
            )
            .await?
        }
        RoleSource::Static { .. } => Found::default(),
    };
    if found.email.is_none() {
        found.email = email_in_answer(gw, rparts, body);
    }
    if let ReportedUser::Header(h) = &vms.reported_user {
        let mut values = rparts.headers.get_all(h).iter();
        found.user = match (values.next(), values.next()) {
            (None, _) => None,
            (Some(v), None) => Some(
                v.to_str()
                    .map_err(|_| UpstreamError::Protocol("user header is not text".into()))?
                    .trim()
                    .to_string(),
            ),
            (Some(_), Some(_)) => {
                return Err(UpstreamError::Protocol("user header given twice".into()).into());
            }
        };
    }
    Ok(found)
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
    if gw.cfg.vms.session_before_login.pre_login()
        && matches!(
            resp.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        )
    {
        // The VMS's way of saying that nobody is signed in to this session (with sessions
        // before login, where the user is always reported; elsewhere a refused user-info
        // request after a login stays an error, as before).
        return Ok(Found::default());
    }
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
    let email = match &gw.cfg.vms.email_source {
        Some(EmailSource::UserInfo(p)) => v.pointer(p).and_then(json_scalar),
        _ => None,
    };
    Ok(Found {
        roles: v.pointer(role_pointer).map(json_roles).unwrap_or_default(),
        user: user_pointer
            .and_then(|p| v.pointer(p))
            .and_then(json_scalar),
        email,
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
    background: bool,
    now: u64,
) -> Result<Response<Body>, GatewayError> {
    let id = crate::mfa::challenge::new_id();
    let key = crate::mfa::challenge::store_key(&id);
    if gw.cfg.vms.end_session.is_some() {
        let member = crate::mfa::sweeper::pending_member(gw, &key, session)?;
        gw.store.pending_add(&member, ch.expires).await?;
        ch.pending_member = Some(member);
    }
    let blob = ch
        .seal(&gw.keys, &id)
        .map_err(|e| InternalError::Crypto(e.to_string()))?;
    let ttl = std::time::Duration::from_secs(ch.expires.saturating_sub(now).max(1));
    gw.store.put_challenge(&key, &blob, ttl).await?;
    gw.metrics.mfa(match ch.step {
        Step::Enroll => MfaEvent::EnrollmentStarted,
        _ => MfaEvent::ChallengeIssued,
    });
    let target = crate::mfa::challenge::step_path(gw, ch.step);
    // A script's login (fetch, XHR) would follow a redirect out of sight and get an HTML page
    // it cannot use: it is told where the MFA step is, and the page moves there.
    let mut resp = if background {
        crate::http::json_401("required", target)
    } else {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::SEE_OTHER;
        r.headers_mut().insert(
            LOCATION,
            HeaderValue::from_str(target).map_err(|_| InternalError::Other("bad prefix".into()))?,
        );
        r
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.append(
        SET_COOKIE,
        // As long as the longest step (an offer may move on to an enrollment).
        cookies::gateway_cookie(
            CHALLENGE_COOKIE,
            &id,
            Some(gw.cfg.mfa.enrollment_ttl.max(gw.cfg.mfa.challenge_ttl)),
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
    // Withheld already without them; again in case the list changed meanwhile.
    headers::strip_hop_by_hop_and(h, &gw.cfg.upstream.strip_response_headers);
    h.append(
        SET_COOKIE,
        cookies::gateway_cookie(
            APPROVAL_COOKIE,
            &approval.seal(&gw.keys),
            Some(gw.cfg.mfa.approval_max_age),
            cookie::SameSite::Lax,
        ),
    );
    if gw.cfg.vms.session_before_login.pre_login() {
        h.append(
            SET_COOKIE,
            cookies::clear_gateway_cookie(cookies::PRELOGIN_COOKIE),
        );
    }
    gw.metrics.mfa(MfaEvent::Released);
    Ok(resp)
}

/// [`release`] at the end of the MFA step: a login posted by a script (`landing`) is sent to
/// its landing page with the VMS's cookies (its script is gone, and its JSON answer would be
/// a page of text); a form login's answer goes as the VMS sent it.
pub fn release_after_step(
    gw: &Gateway,
    ch: &Challenge,
    mfa_passed: bool,
    now: u64,
) -> Result<Response<Body>, GatewayError> {
    let released = release(gw, ch, mfa_passed, now)?;
    let Some(landing) = &ch.landing else {
        return Ok(released);
    };
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    h.insert(
        LOCATION,
        HeaderValue::from_str(landing).map_err(|_| InternalError::Other("bad landing".into()))?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in released.headers().get_all(SET_COOKIE) {
        h.append(SET_COOKIE, c.clone());
    }
    Ok(resp)
}

/// Ends the withheld VMS session when the login cannot be completed.
struct EndOnFailure<'a> {
    gw: &'a Gateway,
    session: &'a [(String, String)],
    host: Option<HeaderValue>,
    /// The pre-login session the request carried: dropped first, so that no instance lets it
    /// through again while the VMS session is being ended.
    pre: Option<[u8; 16]>,
}

impl EndOnFailure<'_> {
    async fn fire(&self) {
        if let Some(p) = &self.pre {
            crate::proxy::prelogin::drop(self.gw, p).await;
        }
        crate::mfa::sweeper::end_upstream_session(
            self.gw,
            self.session.to_vec(),
            self.host.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
