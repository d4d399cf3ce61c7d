//! Sessions the VMS keeps before login (`vms.session_before_login = "rotates" | "same_id"`).
//!
//! Many VMSs create their session before anybody signs in: Tomcat/Spring keeps the login
//! form's CSRF token in an anonymous `JSESSIONID` session, PHP's `session_start()` sets
//! `PHPSESSID` on any page, ASP.NET sets `ASP.NET_SessionId` the first time a page uses
//! session state. The login then checks the token against that session, so the session must
//! reach the VMS before any MFA step can have happened.
//!
//! Whether a session is signed in is decided from the VMS, never from the request: the
//! configured role source (user-info request, or the user header on the answer) reporting no
//! user means nobody. Such a session is a *pre-login session*: its `Set-Cookie` passes to the
//! browser together with a marker cookie ([`PRELOGIN_COOKIE`], MACed, bound to the session
//! hash, expiring with `vms.pre_login_ttl`), and the store keeps a short-lived record under
//! the session hash (never the value). A request whose session has no approval reaches the
//! VMS with it only if the marker verifies *and* the record, read from the store on every
//! such request on every instance (no cache), says "anonymous". Every answer to such a request
//! is identified again before anything of it is sent:
//!
//! ```text
//!                    answer sets a session, the VMS reports nobody
//!                                     │ record "anon" (TTL), marker cookie
//!                                     ▼
//!   ┌──────────────────────────► ANONYMOUS ──── request: marker ok and record "anon"? ──no──►
//!   │                                 │          session removed, the VMS sees nobody
//!   │                                 │ yes (same_id: and the session's lease taken, in the
//!   │                                 │ same Lua step; held until the answer is identified):
//!   │                                 │ forwarded with the session; its answer is
//!   │                                 │ identified by the VMS:
//!   │      ┌──────────────────────────┼──────────────────────────────┐
//!   │      │ nobody, same id          │ someone, a new id            │ someone, same id
//!   │      ▼                          ▼                              ▼
//!   │   answer passes           old record dropped;          rotates: session ended,
//!   │   (new anonymous id:      the new id is a login        record dropped, 502
//!   │    a new record)          (withheld until the MFA      same_id: record switched to
//!   │                           step, see `login`)           "signing" (one Lua step) BEFORE
//!   │                                                        the answer leaves; a challenge
//!   │                                                        (or release, for a role
//!   │                                                        without MFA)
//!   │                                                              │
//!   │                                                              ▼
//!   │                                                     SIGNING IN: the id is removed
//!   │                                                     from every request on every
//!   │                                                     instance (the store is read
//!   │                                                     each time) until an approval
//!   │                                                     for it exists
//!   │                                                              │ MFA step done
//!   │                                                              ▼
//!   │                                                     APPROVED (approval cookie, as any
//!   │                                                     login; the record stays "signing"
//!   │                                                     and never admits the id again)
//!   │                                                              │ logout / expiry
//!   └──────────── the VMS's next anonymous session ◄───────────────┘
//!
//!   record expired or missing, marker expired or forged, store unreachable: unapproved
//!   (the session is removed before the request reaches the VMS)
//! ```
//!
//! Two more rules close what a session that outlives the login could open:
//! * `same_id`: a request to a login route that carries an *approved* session goes to the
//!   VMS without that session, so an approved id never changes its owner in the VMS (a user
//!   who wants to sign in as someone else signs out first). See `login::intercept`.
//! * an answer to a pre-login request is identified even when it sets no cookie: a login on a
//!   path the gateway was not told about, a remember-me cookie, or a login finishing on
//!   another instance while this request was on its way are all seen from the VMS.
//! * `same_id`: after any other request on an approved session, the VMS is asked whose the
//!   session is now; another user's (a login on a path the gateway does not know, on any
//!   method) ends it in the VMS before anything is answered (see
//!   `proxy::Gateway::confirm_owner`). While in the VMS and until that answer, the request
//!   holds the session ([`hold`]): GET and HEAD alongside each other, other methods alone, on
//!   all instances, so a sign-in that changes state overlaps no other request of the session.
//!
//!
//! `same_id`: one request at a time. The store's answer "anonymous" is only true at the moment
//! it is read; a request admitted then may be handled by the VMS after a concurrent login on
//! the same id succeeded (on any instance), and the VMS would process it as the signed-in
//! user. So with `same_id` the admission is one Lua step that both checks the record and takes
//! the session's lease (`P{pl:H}:lease`, an owner token, TTL [`lease_ttl`]); the request holds
//! it until its answer has been identified (and, for the login, the record switched to
//! "signing"), then gives it back by compare-and-delete. A request that finds the lease taken
//! polls with backoff, at most `upstream.response_timeout`, then gets 503 with `Retry-After`.
//! Every request admitted after a sign-in therefore sees "signing" and is held. An error or a
//! cancelled request gives the lease back in the background ([`Lease`]'s drop); the TTL is
//! the backstop when an instance dies holding one. `rotates` needs no lease: the old id is
//! never signed in.
//!
//! The cost falls on anonymous traffic only (one store read per request, one identification
//! per answer; with `same_id` the session's requests are serialised and one more store call
//! gives the lease back); approved requests never get here (see `proxy::Gateway::gate`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::HeaderMap;
use http::header::HeaderValue;

use crate::auth::crypto::{KeyRing, Purpose};
use crate::config::SessionBeforeLogin;
use crate::error::{GatewayError, InternalError};
use crate::gate::Gate;
use crate::gate::approval::session_hash;
use crate::gate::cookies::{self, PRELOGIN_COOKIE};
use crate::gateway::Gateway;
use crate::metrics::MfaEvent;
use crate::store::{OwnerEnter, PreAdmit, PreState};
use std::time::Duration;

/// Domain separation of the marker's MAC from every other cookie MAC.
const MARKER_DOMAIN: &[u8] = b"mfagw-prelogin-v1";

/// The session hash as the store's key part: lower-case hex (the hash, never the value).
pub fn hex(hash: &[u8; 16]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac_input(kid: &str, expires: u64, hash: &[u8; 16]) -> Vec<u8> {
    let mut m = Vec::with_capacity(MARKER_DOMAIN.len() + kid.len() + 26);
    m.extend_from_slice(MARKER_DOMAIN);
    m.push(0);
    m.extend_from_slice(kid.as_bytes());
    m.push(0);
    m.extend_from_slice(&expires.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

/// The marker's value: `base64url(expires) "." key-id "." base64url(MAC)`, the MAC over the
/// expiry and the session hash (which the value does not contain).
pub fn marker_value(keys: &KeyRing, hash: &[u8; 16], expires: u64) -> String {
    let kid = keys.active_id().to_string();
    let tag = keys.mac(Purpose::Cookie, &mac_input(&kid, expires, hash)).1;
    format!(
        "{}.{kid}.{}",
        B64.encode(expires.to_be_bytes()),
        B64.encode(tag)
    )
}

/// Whether a marker value verifies for session `hash` and has not expired at `now`.
pub fn marker_ok(keys: &KeyRing, value: &str, hash: &[u8; 16], now: u64) -> bool {
    if value.len() > 256 {
        return false;
    }
    let mut parts = value.split('.');
    let (Some(e), Some(kid), Some(t), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(e), Ok(tag)) = (B64.decode(e), B64.decode(t)) else {
        return false;
    };
    let Ok(e) = <[u8; 8]>::try_from(e.as_slice()) else {
        return false;
    };
    let expires = u64::from_be_bytes(e);
    now < expires && keys.verify_mac(Purpose::Cookie, kid, &mac_input(kid, expires, hash), &tag)
}

/// `Set-Cookie` for the marker of pre-login session `hash`.
pub fn marker(gw: &Gateway, hash: &[u8; 16], now: u64) -> HeaderValue {
    let ttl = gw.cfg.vms.pre_login_ttl;
    cookies::gateway_cookie(
        PRELOGIN_COOKIE,
        &marker_value(&gw.keys, hash, now.saturating_add(ttl.as_secs())),
        Some(ttl),
        cookie::SameSite::Lax,
    )
}

/// The gate's first, local stage for a request whose session has no valid approval: the
/// session's hash when a marker for it verifies (the store is asked in [`admit`]).
pub fn marked(gw: &Gateway, headers: &HeaderMap, now: u64) -> Option<[u8; 16]> {
    if !gw.cfg.vms.session_before_login.pre_login() {
        return None;
    }
    let value = cookies::request_cookie(headers, PRELOGIN_COOKIE)?;
    let hash = session_hash(&gw.cfg.vms.session_cookies, |n| {
        cookies::request_cookie(headers, n)
    })?;
    marker_ok(&gw.keys, value, &hash, now).then_some(hash)
}

/// The gate's second stage: a pre-login session goes on only while the store (read now,
/// never cached) says it is anonymous. Otherwise its cookie is removed: the VMS sees nobody.
/// Any other decision is returned unchanged.
///
/// With `same_id`, requests carrying the same pre-login session reach the VMS one at a time,
/// across all instances: the store's check that the record is anonymous also takes the
/// session's [`Lease`] (one Lua step), which the caller holds until the answer has been
/// identified (a login's switch to "signing in" happens while it is held). A request that
/// finds the lease taken waits (polling with backoff) at most `upstream.response_timeout`,
/// then gets 503. So no request admitted while the session was anonymous is handled by the
/// VMS after a sign-in on it: every request admitted after the sign-in sees "signing in".
pub async fn admit(
    gw: &Gateway,
    headers: &mut HeaderMap,
    gate: Gate,
) -> Result<(Gate, Option<Lease>), GatewayError> {
    let Gate::PreLogin(hash) = gate else {
        return Ok((gate, None));
    };
    let key = hex(&hash);
    let state = if gw.cfg.vms.session_before_login == SessionBeforeLogin::SameId {
        match lease(gw, &key).await {
            Ok(Ok(lease)) => return Ok((Gate::PreLogin(hash), Some(lease))),
            Ok(Err(state)) => Ok(state),
            Err(e) => Err(e),
        }
    } else {
        gw.store.pre_state(&key).await.map_err(LeaseError::Store)
    };
    let gate = match state {
        Ok(PreState::Anonymous) => return Ok((Gate::PreLogin(hash), None)),
        // Expired or dropped: an ordinary unapproved session; the VMS's next anonymous
        // session may take its place.
        Ok(PreState::Missing) => Gate::Stripped,
        Ok(PreState::SigningIn) => Gate::Held,
        Err(LeaseError::Busy) => {
            gw.metrics.mfa(MfaEvent::PreLoginHeld);
            tracing::debug!("pre-login session busy with another request; 503");
            return Err(InternalError::Busy("pre-login session busy").into());
        }
        Err(LeaseError::Store(e)) => {
            gw.metrics.mfa(MfaEvent::StoreError);
            tracing::warn!(error = %e, "pre-login session not checked; not passed on");
            Gate::Held
        }
    };
    cookies::filter_for_upstream(headers, &gw.cfg.vms.session_cookies, false);
    gw.metrics.mfa(MfaEvent::PreLoginHeld);
    gw.metrics.mfa(MfaEvent::SessionStripped);
    Ok((gate, None))
}

/// Why a request got no lease on its pre-login session.
enum LeaseError {
    /// Another request held it for longer than the wait allows.
    Busy,
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for LeaseError {
    fn from(e: crate::store::StoreError) -> Self {
        LeaseError::Store(e)
    }
}

/// How long a lease lives at most: the request and the identification of its answer (each an
/// upstream exchange, bounded by the upstream timeouts), and a margin. The backstop for a
/// lease whose holder died; a live holder gives it back as soon as its answer is identified.
pub fn lease_ttl(gw: &Gateway) -> Duration {
    let up = &gw.cfg.upstream;
    (up.connect_timeout + up.response_timeout) * 2 + LEASE_MARGIN
}

/// Added to the upstream timeouts in [`lease_ttl`].
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Takes the lease of the same-id pre-login session `key`, waiting (with backoff) up to
/// `upstream.response_timeout` while another request holds it. `Ok(Err(state))`: the record is
/// not anonymous (no lease taken).
async fn lease(gw: &Gateway, key: &str) -> Result<Result<Lease, PreState>, LeaseError> {
    let token = crate::auth::crypto::random_token();
    let ttl = lease_ttl(gw);
    let mut wait = Backoff::new(gw);
    loop {
        match gw.store.pre_admit(key, &token, ttl).await? {
            PreAdmit::Leased => return Ok(Ok(Lease::new(gw, key, token, Held::PreLogin))),
            PreAdmit::SigningIn => return Ok(Err(PreState::SigningIn)),
            PreAdmit::Missing => return Ok(Err(PreState::Missing)),
            PreAdmit::Busy => {}
        }
        if !wait.pause().await {
            return Err(LeaseError::Busy);
        }
    }
}

/// Waiting for a lease: polls with a pause doubling from 5 ms to 200 ms, for at most
/// `upstream.response_timeout`.
struct Backoff {
    deadline: tokio::time::Instant,
    pause: Duration,
}

impl Backoff {
    fn new(gw: &Gateway) -> Self {
        Backoff {
            deadline: tokio::time::Instant::now() + gw.cfg.upstream.response_timeout,
            pause: Duration::from_millis(5),
        }
    }

    /// Sleeps before the next try; `false` once the wait is over.
    async fn pause(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.pause.min(self.deadline - now)).await;
        self.pause = (self.pause * 2).min(Duration::from_millis(200));
        true
    }
}

/// `same_id`: a request on an *approved* session holds the session while it is in the VMS and
/// until its answer's owner has been confirmed (see `proxy::Gateway::confirm_owner`): GET and
/// HEAD share it with each other, any other method holds it alone, on all instances. A VMS
/// may sign an approved session in as somebody else on a login path the gateway does not
/// know; the request that did it is the only one of that session in the VMS if it changes
/// state, so nothing else of the session is handled as the other user before the gateway has
/// seen the change and ended the session. `Ok(None)`: the session was ended that way (see
/// [`end_owner`]): it must not reach the VMS.
pub async fn hold(
    gw: &Gateway,
    hash: &[u8; 16],
    method: &http::Method,
) -> Result<Option<Lease>, GatewayError> {
    let key = hex(hash);
    let exclusive = !matches!(*method, http::Method::GET | http::Method::HEAD);
    let token = crate::auth::crypto::random_token();
    let ttl = lease_ttl(gw);
    let mut wait = Backoff::new(gw);
    loop {
        match gw.store.owner_enter(&key, &token, exclusive, ttl).await {
            Ok(OwnerEnter::Entered) => {
                let held = if exclusive {
                    Held::Exclusive
                } else {
                    Held::Shared
                };
                return Ok(Some(Lease::new(gw, &key, token, held)));
            }
            Ok(OwnerEnter::Ended) => return Ok(None),
            Ok(OwnerEnter::Busy) => {}
            Err(e) => {
                gw.metrics.mfa(MfaEvent::StoreError);
                tracing::warn!(error = %e, "approved same-id session not held; refused");
                return Err(InternalError::Busy("session check unavailable").into());
            }
        }
        if !wait.pause().await {
            if exclusive {
                // Lower the waiting flag at once rather than when it expires.
                let _ = gw.store.owner_leave(&key, &token, true).await;
            }
            tracing::debug!("approved same-id session busy with other requests; 503");
            return Err(InternalError::Busy("session busy").into());
        }
    }
}

/// Marks an approved same-id session as ended (it was signed in as somebody else): every
/// request still waiting for it, on any instance, is then refused. Called while holding it.
pub async fn end_owner(gw: &Gateway, hash: &[u8; 16]) {
    let keep = gw.cfg.mfa.approval_max_age.max(gw.cfg.vms.pre_login_ttl);
    if let Err(e) = gw.store.owner_end(&hex(hash), keep).await {
        tracing::warn!(error = %e, "ended same-id session not marked; its approval is revoked");
    }
}

/// What a [`Lease`] holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    /// A same-id pre-login session, alone ([`admit`]).
    PreLogin,
    /// A share of an approved same-id session ([`hold`], GET and HEAD).
    Shared,
    /// An approved same-id session, alone ([`hold`]).
    Exclusive,
}

/// A request's hold on its same-id session (see [`admit`] and [`hold`]). Given back with
/// [`Lease::release`] once the answer has been identified; dropped unreleased (an error, a
/// cancelled request), it is given back in the background. Its TTL ([`lease_ttl`]) is the
/// backstop when neither happens (the instance died).
#[must_use = "held until the answer has been identified"]
pub struct Lease {
    store: crate::store::Store,
    key: String,
    token: String,
    what: Held,
    held: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

impl Lease {
    fn new(gw: &Gateway, key: &str, token: String, what: Held) -> Self {
        Lease {
            store: gw.store.clone(),
            key: key.to_string(),
            token,
            what,
            held: true,
        }
    }

    /// Gives the lease back (compare-and-delete by owner token). A failure is logged; the
    /// lease then expires on its own.
    pub async fn release(mut self) {
        self.held = false;
        give_back(&self.store, &self.key, &self.token, self.what).await;
    }
}

async fn give_back(store: &crate::store::Store, key: &str, token: &str, what: Held) {
    let r = match what {
        Held::PreLogin => store.pre_release(key, token).await,
        Held::Shared => store.owner_leave(key, token, false).await,
        Held::Exclusive => store.owner_leave(key, token, true).await,
    };
    if let Err(e) = r {
        tracing::warn!(error = %e, "session lease not given back; it expires on its own");
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let (store, key, token, what) = (
            self.store.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
            self.what,
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { give_back(&store, &key, &token, what).await });
        }
    }
}

/// Records a session nobody is signed in to as a pre-login session. `None` if the store
/// refused (it is signing in already) or could not be reached: then the session is not
/// passed on. Otherwise the marker's `Set-Cookie`.
pub async fn open(gw: &Gateway, hash: &[u8; 16], now: u64) -> Option<HeaderValue> {
    match gw
        .store
        .pre_open(&hex(hash), gw.cfg.vms.pre_login_ttl)
        .await
    {
        Ok(true) => {
            gw.metrics.mfa(MfaEvent::PreLoginOpened);
            Some(marker(gw, hash, now))
        }
        Ok(false) => {
            gw.metrics.mfa(MfaEvent::PreLoginHeld);
            None
        }
        Err(e) => {
            gw.metrics.mfa(MfaEvent::StoreError);
            tracing::warn!(error = %e, "pre-login session not recorded; not passed on");
            None
        }
    }
}

/// What became of a pre-login session the VMS now says is signed in, without a new id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// This call switched it to "signing in": go on with the login.
    Switched,
    /// Already signing in (another request saw the login first and holds its challenge):
    /// nothing of the answer may be sent.
    Busy,
    /// No record (expired, dropped) or not allowed (`rotates`): nothing of the answer may be
    /// sent, and the VMS session is to be ended.
    Refused,
}

/// The VMS said pre-login session `hash` is signed in for `user`, without a new id. With
/// `same_id` the record is switched to "signing in" in one atomic step, before anything of
/// the answer is sent; with `rotates` the VMS did not do what it was said to, and the session
/// is dropped.
pub async fn sign_in(gw: &Gateway, hash: &[u8; 16], user: &str) -> Result<SignIn, GatewayError> {
    if gw.cfg.vms.session_before_login != SessionBeforeLogin::SameId {
        tracing::warn!(
            user = %user,
            "the VMS signed in a session it had before login without giving it a new id; ended (vms.session_before_login = \"rotates\" says it would); set \"same_id\" if the VMS works this way"
        );
        drop(gw, hash).await;
        return Ok(SignIn::Refused);
    }
    // As long as the challenge: an abandoned sign-in holds the id back no longer than that
    // (then the record is gone, which also keeps the id out).
    match gw
        .store
        .pre_sign_in(&hex(hash), user, gw.cfg.mfa.challenge_ttl)
        .await
    {
        Ok(PreState::Anonymous) => Ok(SignIn::Switched),
        Ok(PreState::SigningIn) => {
            gw.metrics.mfa(MfaEvent::PreLoginHeld);
            Ok(SignIn::Busy)
        }
        Ok(PreState::Missing) => {
            gw.metrics.mfa(MfaEvent::PreLoginHeld);
            Ok(SignIn::Refused)
        }
        Err(e) => {
            gw.metrics.mfa(MfaEvent::StoreError);
            Err(e.into())
        }
    }
}

/// Forgets pre-login session `hash` (the VMS gave the session a new id, or refused it): it no
/// longer reaches the VMS. A failure is logged; the record expires on its own.
pub async fn drop(gw: &Gateway, hash: &[u8; 16]) {
    if let Err(e) = gw.store.pre_drop(&hex(hash)).await {
        gw.metrics.mfa(MfaEvent::StoreError);
        tracing::warn!(error = %e, "pre-login record not removed; it expires on its own");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::auth::crypto::{generate_key_material, parse_key_material};

    fn ring() -> KeyRing {
        let key = parse_key_material(&generate_key_material()).unwrap();
        KeyRing::new("k1", vec![("k1".into(), key)]).unwrap()
    }

    #[test]
    fn a_marker_verifies_only_for_its_session_and_until_it_expires() {
        let keys = ring();
        let v = marker_value(&keys, &[1; 16], 1000);
        assert!(marker_ok(&keys, &v, &[1; 16], 999));
        assert!(!marker_ok(&keys, &v, &[1; 16], 1000), "expired");
        assert!(!marker_ok(&keys, &v, &[2; 16], 999), "another session");
        assert!(!marker_ok(&ring(), &v, &[1; 16], 999), "another key ring");
        // A later expiry with the same tag does not verify.
        let (_, rest) = v.split_once('.').unwrap();
        let forged = format!("{}.{rest}", B64.encode(5000u64.to_be_bytes()));
        assert!(!marker_ok(&keys, &forged, &[1; 16], 1500));
        assert!(!marker_ok(&keys, "", &[1; 16], 0));
        assert!(!marker_ok(&keys, "a.b.c.d", &[1; 16], 0));
    }

    #[test]
    fn the_store_key_is_the_hash_in_hex() {
        assert_eq!(hex(&[0xab; 16]), "ab".repeat(16));
    }
}
