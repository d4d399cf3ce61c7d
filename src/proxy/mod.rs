//! Forwarding to the VMS, after pingora's proxy phases:
//!
//! ```text
//!  request ──► gate ──► (pre-login: admit) ──► rewrite ──► forward ──► (same_id: confirm owner)
//!                                                                            │
//!  response ◄── respond (strip hop-by-hop, guard Set-Cookie, identify new sessions) ◄┘
//! ```
//!
//! *gate* decides what of the client's VMS session may pass: a session cookie goes upstream
//! only with a valid approval (see `gate::approval`); otherwise it is removed and the VMS sees
//! a logged-out client. *respond* makes sure a VMS session cookie set on a response reaches
//! the client only for a session that is already approved; every new VMS session is a login
//! ([`login`]), and sessions the VMS keeps before login have their own rules ([`prelogin`]).
//! Which requests come here at all is decided in `route`.

pub mod login;
pub mod login_form;
pub mod navigation_helper;
pub mod prelogin;
#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;

use http::header::{self, HeaderValue, SET_COOKIE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::error::GatewayError;
use crate::gate::approval::{APPROVAL_COOKIE, Approval};
use crate::gate::cookies::{self, CHALLENGE_COOKIE};
use crate::gate::{Gate, memo as gate_memo, verified};
use crate::gateway::Gateway;
use crate::http::body::Body;
use crate::http::{ConnInfo, headers, upgrade};
use crate::metrics::MfaEvent;

use crate::policy::MfaState;

impl Gateway {
    /// Decides what of the request's VMS session may pass, and removes what may not (as well
    /// as the gateway's own cookies, which the VMS has no use for).
    pub fn gate(&self, headers: &mut http::HeaderMap, now: u64) -> Gate {
        let names = &self.cfg.vms.session_cookies;
        // One `Cookie` field seen before with an approved session: the same decision again
        // (see `gate_memo`), with revocations and the policy checked as on the full path.
        let single = single_cookie(headers);
        if let Some(cookie) = &single
            && let Some(hit) = gate_memo::recall(&self.keys, names, cookie, now)
            && self.still_valid(&hit.approval, now)
        {
            match hit.for_vms {
                Some(v) => headers.insert(header::COOKIE, v),
                None => headers.remove(header::COOKIE),
            };
            return Gate::Approved(hit.approval);
        }
        let check = verified::check(
            &self.keys,
            names,
            |n| cookies::request_cookie(headers, n),
            || cookies::request_cookie(headers, APPROVAL_COOKIE),
            now,
        );
        // `ended`: an approval that was good for this session is no longer (see `Gate::Ended`).
        let (approval, ended) = match check {
            verified::Check::NoSession => {
                cookies::filter_for_upstream(headers, names, false);
                return Gate::Anonymous;
            }
            verified::Check::Approved(a) => {
                let valid = self.still_valid(&a, now);
                (Some(a).filter(|_| valid), !valid)
            }
            verified::Check::Rejected(r) => {
                (None, r == Some(crate::gate::approval::Rejection::Expired))
            }
        };
        match approval {
            Some(a) => {
                cookies::filter_for_upstream(headers, names, true);
                if let Some(cookie) = &single {
                    let decision = gate_memo::Remembered {
                        approval: Arc::clone(&a),
                        for_vms: headers.get(header::COOKIE).cloned(),
                    };
                    gate_memo::remember(&self.keys, names, cookie, decision, now);
                }
                Gate::Approved(a)
            }
            None => {
                if let Some(hash) = crate::proxy::prelogin::marked(self, headers, now) {
                    cookies::filter_for_upstream(headers, names, true);
                    return Gate::PreLogin(hash);
                }
                cookies::filter_for_upstream(headers, names, false);
                self.metrics.mfa(MfaEvent::SessionStripped);
                if ended { Gate::Ended } else { Gate::Stripped }
            }
        }
    }

    /// What may end an approval before it expires: a revocation (logout, MSP reset, shared
    /// by every instance) or a policy that now enforces MFA for an approval without it.
    pub(crate) fn still_valid(&self, a: &Approval, now: u64) -> bool {
        !self.revocations.is_revoked(a) && self.still_allowed(a, now)
    }

    /// An approval without MFA stops counting once the user's role has become `enforced`
    /// (unless it was itself granted under `enforced`, during an enrollment grace).
    fn still_allowed(&self, a: &Approval, now: u64) -> bool {
        if a.mfa_passed || a.state == MfaState::Enforced {
            return true;
        }
        let ts = crate::clock::timestamp_of(now);
        let state = self
            .policy
            .current()
            .decide(&a.role, ts)
            .map_or(self.cfg.vms.unmapped, |d| d.state);
        state != MfaState::Enforced
    }

    /// Rewrites a client request for the upstream: absolute URI, HTTP/1.1, hop-by-hop headers
    /// removed, `Host` and `X-Forwarded-*` set. Returns the upgrade protocol if one was asked.
    pub fn rewrite_request(
        &self,
        parts: &mut http::request::Parts,
        conn: ConnInfo,
    ) -> Result<Option<HeaderValue>, GatewayError> {
        let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        // With the hop-by-hop headers `AspFilterSessionId`, where ASP.NET reads cookieless
        // session ids too: never from a client.
        let upgrade = headers::strip_hop_by_hop_and(&mut parts.headers, &headers::REQUEST_ALSO);
        // An upgrade over HTTP/2 (RFC 8441) is not offered, so only HTTP/1 can ask for one.
        let upgrade = upgrade.filter(|_| parts.version <= http::Version::HTTP_11);
        if let Some(u) = &upgrade {
            headers::restore_upgrade(&mut parts.headers, u.clone());
        }
        let host = match &self.cfg.upstream.host_header {
            crate::config::HostHeader::Preserve => original_host.clone(),
            crate::config::HostHeader::Upstream => {
                HeaderValue::from_str(&self.cfg.upstream.authority).ok()
            }
            crate::config::HostHeader::Fixed(h) => HeaderValue::from_str(h).ok(),
        };
        match host.or_else(|| HeaderValue::from_str(&self.cfg.upstream.authority).ok()) {
            Some(h) => {
                parts.headers.insert(header::HOST, h);
            }
            None => return Err(crate::error::ClientError::BadRequest("no host").into()),
        }
        headers::set_forwarded(
            &mut parts.headers,
            conn.peer.ip(),
            &self.cfg.server.trusted_proxies,
            original_host.as_ref(),
        );
        parts.uri = self.upstream.uri_for(parts.uri.path_and_query())?;
        parts.version = http::Version::HTTP_11;
        Ok(upgrade)
    }

    /// Forwards a request that the gateway does not own and that is not a login.
    pub(crate) async fn pass_through(
        &self,
        req: Request<Incoming>,
        conn: ConnInfo,
        is_logout: bool,
    ) -> Result<Response<Body>, GatewayError> {
        let now = self.clock.unix();
        let (mut parts, body) = req.into_parts();
        let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let mut gate = self.gate(&mut parts.headers, now);
        // Held (same_id) until the answer has been identified: see `proxy::prelogin::admit`.
        let mut lease = None;
        if let Gate::PreLogin(_) = gate {
            let upgrade = parts.headers.contains_key(header::UPGRADE);
            (gate, lease) =
                Box::pin(self.pre_login_gate(&mut parts.headers, gate, upgrade)).await?;
        }
        // Held (same_id, approved) until the answer's owner is confirmed: see
        // `proxy::prelogin::hold`.
        let mut owner_lease = None;
        let same_id =
            self.cfg.vms.session_before_login == crate::config::SessionBeforeLogin::SameId;
        if same_id && let Gate::Approved(a) = &gate {
            match Box::pin(crate::proxy::prelogin::hold(
                self,
                &a.session_hash,
                &parts.method,
            ))
            .await?
            {
                Some(l) => owner_lease = Some(l),
                None => {
                    // Signed in as somebody else and ended meanwhile: the VMS sees nobody.
                    cookies::filter_for_upstream(
                        &mut parts.headers,
                        &self.cfg.vms.session_cookies,
                        false,
                    );
                    self.metrics.mfa(MfaEvent::SessionStripped);
                    gate = Gate::Stripped;
                }
            }
        }
        // A page's script whose session ended while the page was open: told so, not sent on
        // to the VMS (whose login page it could not use).
        if matches!(gate, Gate::Ended) && crate::http::fetch::is_background(&parts.headers) {
            return Ok(crate::http::json_401("signed_out", "/"));
        }
        // Only a request without an approved session can open a login that waits for its
        // MFA step in the usual case; the approved (hot) path does not look
        // (only the navigation helper, when on, asks whether a request is a page load).
        let background =
            !matches!(gate, Gate::Approved(_)) && crate::http::fetch::is_background(&parts.headers);
        let logout_hash = if is_logout {
            session_hash_of(&gate)
        } else {
            None
        };
        // The client's address is needed only if the answer opens a session (below).
        let forwarded_for: Vec<HeaderValue> = if self.cfg.server.trusted_proxies.is_empty() {
            Vec::new()
        } else {
            parts
                .headers
                .get_all(headers::X_FORWARDED_FOR)
                .iter()
                .cloned()
                .collect()
        };
        // With the navigation helper: whether this is a page load that may take its script.
        let page_load = self.cfg.vms.navigation_helper.then(|| {
            crate::proxy::navigation_helper::prepare_request(&parts.method, &mut parts.headers)
        });
        let upgrade = self.rewrite_request(&mut parts, conn)?;
        // Kept only in case the answer sets a new session (see below); cheap clones.
        let sent_cookie = parts.headers.get(header::COOKIE).cloned();
        let sent_host = parts.headers.get(header::HOST).cloned();
        // A same-id VMS may sign an approved session in as somebody else on a login path the
        // gateway does not know, on any method: every answer's owner is confirmed.
        let confirm_owner = owner_lease.is_some();
        let up_req = Request::from_parts(parts, Body::from(body));
        let mut resp = match self.upstream.send(up_req, &self.metrics).await {
            Ok(r) => r,
            Err(e) => {
                // The VMS may still be at work on a same-id pre-login request that got no
                // answer in time: the session is dropped (it never reaches the VMS again)
                // before its lease goes back, so no login on it can overlap that work.
                if let (Some(_), Gate::PreLogin(h), crate::error::UpstreamError::Timeout(_)) =
                    (&lease, &gate, &e)
                {
                    crate::proxy::prelogin::drop(self, h).await;
                }
                return Err(e.into());
            }
        };
        if confirm_owner {
            resp = Box::pin(self.confirm_owner(
                resp,
                &gate,
                sent_cookie.as_ref(),
                sent_host.as_ref(),
                conn,
                now,
            ))
            .await?;
        }
        if let Some(l) = owner_lease {
            l.release().await;
        }
        if let Some(hash) = logout_hash {
            Box::pin(self.end_approval(hash, &gate, now)).await;
        }
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            match (upgrade, client_upgrade) {
                (Some(_), Some(client)) => {
                    let upstream_side = hyper::upgrade::on(&mut resp);
                    // A tunnel of an approved session ends with its approval.
                    let (held, close) = match &gate {
                        Gate::Approved(a) => {
                            let (held, close) = self.tunnels.register(Arc::clone(a));
                            (Some(held), Some(close))
                        }
                        _ => (None, None),
                    };
                    upgrade::spawn_tunnel(
                        client,
                        upstream_side,
                        std::sync::Arc::clone(&self.metrics),
                        close,
                        held,
                    );
                }
                _ => {
                    return Err(crate::error::UpstreamError::Protocol(
                        "101 without an upgrade request".into(),
                    )
                    .into());
                }
            }
        }
        let pre_login = matches!(gate, Gate::PreLogin(_));
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS
            && (pre_login
                || resp.headers().contains_key(SET_COOKIE)
                    && !crate::proxy::login::new_session_values(self, resp.headers()).is_empty())
        {
            // Every new VMS session is a login, whatever path and method it came on; and
            // every answer to a pre-login session is identified before it is sent.
            let (mut rparts, rbody) = resp.into_parts();
            headers::strip_hop_by_hop_and(
                &mut rparts.headers,
                &self.cfg.upstream.strip_response_headers,
            );
            let mut sent = http::HeaderMap::new();
            if let Some(c) = sent_cookie {
                sent.insert(header::COOKIE, c);
            }
            let mut client = http::HeaderMap::new();
            for v in forwarded_for {
                client.append(headers::X_FORWARDED_FOR, v);
            }
            let origin = crate::proxy::login::Origin {
                typed_user: None,
                login: false,
                gate: &gate,
                forwarded: crate::proxy::login::forwarded_session(self, &sent),
                client_addr: self.client_ip(&client, conn),
                host: sent_host,
                conn,
                background,
                // Outside a login route the code is always asked.
                remember: None,
                landing: None,
                lang: None,
            };
            let answer = Box::pin(crate::proxy::login::new_session(
                self, rparts, rbody, origin, now,
            ))
            .await;
            if let Some(l) = lease {
                l.release().await;
            }
            let (mut resp, _) = answer?;
            if is_logout {
                resp.headers_mut()
                    .append(SET_COOKIE, cookies::clear_gateway_cookie(APPROVAL_COOKIE));
            }
            return Ok(resp);
        }
        let mut resp = self.respond(resp);
        if let Some(page_load) = page_load {
            resp = crate::proxy::navigation_helper::apply(page_load, resp);
        }
        if is_logout {
            resp.headers_mut()
                .append(SET_COOKIE, cookies::clear_gateway_cookie(APPROVAL_COOKIE));
        }
        Ok(resp)
    }

    /// After a request that may change state on an approved session of a same-id VMS: the VMS
    /// is asked whose the session is now. Still the approval's user: the answer goes on.
    /// Nobody (signed out): the approval ends, the answer goes on. Somebody else (a login on
    /// a path the gateway does not know), or no answer: the VMS session is ended (at once,
    /// for every instance), the approval ends on every instance, and nothing of the answer is
    /// sent.
    #[cold]
    async fn confirm_owner(
        &self,
        resp: Response<Body>,
        gate: &Gate,
        sent_cookie: Option<&HeaderValue>,
        sent_host: Option<&HeaderValue>,
        conn: ConnInfo,
        now: u64,
    ) -> Result<Response<Body>, GatewayError> {
        let Gate::Approved(a) = gate else {
            return Ok(resp);
        };
        let mut sent = http::HeaderMap::new();
        if let Some(c) = sent_cookie {
            sent.insert(header::COOKIE, c.clone());
        }
        let session = crate::proxy::login::forwarded_session(self, &sent);
        let (rparts, rbody) = resp.into_parts();
        let owner =
            crate::proxy::login::session_owner(self, &rparts, &session, sent_host, conn).await;
        let vms = &self.cfg.vms;
        match owner {
            Ok(Some(u))
                if crate::config::normalize_username(&u, vms.username_case_sensitive) == a.user =>
            {
                Ok(Response::from_parts(rparts, rbody))
            }
            Ok(None) => {
                self.end_approval(a.session_hash, gate, now).await;
                Ok(Response::from_parts(rparts, rbody))
            }
            other => {
                // Ended in the VMS first, before anything is answered and while this request
                // still holds the session: from then on no instance can reach that session,
                // whatever its approval cache says, and requests waiting for it are refused.
                crate::mfa::sweeper::end_upstream_session_now(self, &session, sent_host.cloned())
                    .await;
                crate::proxy::prelogin::end_owner(self, &a.session_hash).await;
                self.end_approval(a.session_hash, gate, now).await;
                match other {
                    Ok(Some(u)) => {
                        let u = crate::config::normalize_username(&u, vms.username_case_sensitive);
                        self.metrics.mfa(MfaEvent::IdentityMismatch);
                        tracing::warn!(user = %u, approved = %a.user, "an approved session was signed in as another user; session ended");
                        self.audit
                            .record(
                                crate::audit::Record::new(
                                    crate::audit::Event::IdentityMismatch,
                                    now,
                                    crate::audit::ActorKind::User,
                                    u.clone(),
                                )
                                .user(u)
                                .detail("an approved session was signed in as another user"),
                            )
                            .await;
                        Err(crate::error::ClientError::Forbidden.into())
                    }
                    Err(e) => Err(e),
                    Ok(None) => Err(crate::error::ClientError::Forbidden.into()),
                }
            }
        }
    }

    /// The store's word on a pre-login session (see `proxy::prelogin`); an upgrade never takes
    /// one along (its answer could not be identified before the tunnel opens).
    #[cold]
    async fn pre_login_gate(
        &self,
        headers: &mut http::HeaderMap,
        gate: Gate,
        upgrade: bool,
    ) -> Result<(Gate, Option<crate::proxy::prelogin::Lease>), GatewayError> {
        if upgrade {
            cookies::filter_for_upstream(headers, &self.cfg.vms.session_cookies, false);
            self.metrics.mfa(MfaEvent::SessionStripped);
            return Ok((Gate::Stripped, None));
        }
        crate::proxy::prelogin::admit(self, headers, gate).await
    }

    /// Prepares an upstream response for the client: hop-by-hop headers and the VMS's banners
    /// (`upstream.strip_response_headers`) removed, and any VMS session cookie it sets removed
    /// (answers that set one go through `proxy::login`).
    pub fn respond(&self, resp: Response<Body>) -> Response<Body> {
        let (mut parts, body) = resp.into_parts();
        let banners = &self.cfg.upstream.strip_response_headers;
        if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            let upgrade = headers::strip_hop_by_hop_and(&mut parts.headers, banners);
            if let Some(u) = upgrade {
                headers::restore_upgrade(&mut parts.headers, u);
            }
        } else {
            headers::strip_hop_by_hop_and(&mut parts.headers, banners);
        }
        if parts.headers.contains_key(SET_COOKIE)
            && crate::proxy::login::strip_session_cookies(self, &mut parts.headers)
        {
            self.metrics.mfa(MfaEvent::SessionStripped);
        }
        Response::from_parts(parts, body)
    }

    /// Ends an approved session (VMS logout): every instance stops accepting it.
    async fn end_approval(&self, hash: [u8; 16], gate: &Gate, now: u64) {
        let Gate::Approved(a) = gate else { return };
        let entry = crate::store::revocation::Revocation::Session {
            hash: crate::gate::revocation::hex16(&hash),
            until: a.expires,
            approval: a.id.as_ref().map(crate::gate::revocation::hex16),
        };
        self.revocations.apply(std::slice::from_ref(&entry), now);
        self.metrics.mfa(MfaEvent::Logout);
        if let Err(e) = self
            .store
            .revoke(&entry, now, self.cfg.mfa.approval_max_age)
            .await
        {
            tracing::warn!(error = %e, "logout could not be shared with other instances");
        }
    }
}

/// The request's `Cookie` header when it is a single field (as browsers send it).
fn single_cookie(headers: &http::HeaderMap) -> Option<HeaderValue> {
    let mut fields = headers.get_all(header::COOKIE).iter();
    match (fields.next(), fields.next()) {
        (Some(v), None) => Some(v.clone()),
        _ => None,
    }
}

fn session_hash_of(gate: &Gate) -> Option<[u8; 16]> {
    match gate {
        Gate::Approved(a) => Some(a.session_hash),
        _ => None,
    }
}

/// The gateway's own cookies never travel to the VMS.
pub fn is_gateway_cookie(name: &str) -> bool {
    name == APPROVAL_COOKIE
        || name == CHALLENGE_COOKIE
        || name == cookies::PRELOGIN_COOKIE
        || name == cookies::ENROLLING_COOKIE
        || name == cookies::REMEMBER_COOKIE
}
