//! Passkeys and security keys on the gateway's pages: the ceremonies of a sign-in (signing
//! in with one, setting one up when the role's methods require it) and the account page's
//! "add", "rename" and "remove".
//!
//! A ceremony's state (its random challenge, and at sign-in the credentials allowed) is kept
//! in the store under a key bound to what it belongs to, the sign-in's challenge
//! (`c:<challenge key>`), the signed-in session (`a:<session hash>`), or the session and an
//! account change a user without the app confirms with a passkey
//! (`a:<session hash>:recovery`, `…:disable`, see [`confirm`]), with the user's name
//! inside, for [`CEREMONY_TTL`]; it is *taken* (read and removed in one step) when the
//! browser's answer arrives, so an answer is checked against one ceremony once. Every page
//! view starts a new one (the old one is replaced). The writes after a ceremony are single
//! store steps: adding a passkey only while the user's revocation epoch is the one read when
//! the sign-in (or session) began (an MSP reset in between wins), and a sign-in only while
//! the credential still exists and its counter moves forward.
//!
//! Refusals are audited (`passkey_refused`, with the reason, never the answer itself) and
//! shown as "not accepted, try again"; they count no attempt against the code lock, since
//! an answer cannot be guessed.

use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::audit::{ActorKind, Event, Record};
use crate::auth::passkey::{CEREMONY_TTL, PasskeyError, clean_name};
use crate::error::{ClientError, GatewayError, InternalError};
use crate::gate::approval::Approval;
use crate::gateway::Gateway;
use crate::http::body::Body;
use crate::http::html_page;
use crate::metrics::Outcome;
use crate::pages::{self, Lang};
use crate::policy::{MfaMethods, MfaState};
use crate::store::{AddPasskey, KeepMethod, RemovePasskey, StoredPasskey, UsePasskey};
use crate::web::extract::{self, Answer, Call, Csrf, CsrfScope, Form, Query};
use crate::web::{fmt_time, redirect};

/// Who a ceremony is for and what it is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Bound<'a> {
    /// The store key of the ceremony's state (`c:…` or `a:…`).
    pub key: &'a str,
    pub user: &'a str,
    pub addr: &'a str,
    pub now: u64,
}

/// The ceremony key of a sign-in's challenge.
pub fn sign_in_key(challenge_key: &str) -> String {
    format!("c:{challenge_key}")
}

fn account_key(a: &Approval) -> String {
    format!("a:{}", crate::gate::revocation::hex16(&a.session_hash))
}

fn internal(e: PasskeyError) -> GatewayError {
    InternalError::Other(e.to_string()).into()
}

fn rp(gw: &Gateway) -> Result<&crate::auth::passkey::RelyingParty, GatewayError> {
    gw.passkeys
        .as_deref()
        .ok_or_else(|| ClientError::NotFound.into())
}

/// The state as kept: the user's name, a NUL, the ceremony's state.
fn wrap(user: &str, state: &[u8]) -> Vec<u8> {
    let mut v = user.as_bytes().to_vec();
    v.push(0);
    v.extend_from_slice(state);
    v
}

/// Takes the ceremony's state for `b` (once); `None` when there is none (expired, used, of
/// another user).
async fn take(gw: &Gateway, b: Bound<'_>) -> Result<Option<Vec<u8>>, GatewayError> {
    let Some(blob) = gw.store.take_ceremony(b.key).await? else {
        return Ok(None);
    };
    let Some(at) = blob.iter().position(|&c| c == 0) else {
        return Ok(None);
    };
    if &blob[..at] != b.user.as_bytes() {
        return Ok(None);
    }
    Ok(Some(blob[at + 1..].to_vec()))
}

fn record(b: Bound<'_>, event: Event) -> Record {
    Record::new(event, b.now, ActorKind::User, b.user)
        .user(b.user)
        .client(b.addr)
}

async fn refused(gw: &Gateway, b: Bound<'_>, why: &str) {
    gw.audit
        .record(record(b, Event::PasskeyRefused).detail(format!("reason={why}")))
        .await;
}

/// Starts a sign-in ceremony with the user's passkeys: the options for the page, or `None`
/// when passkeys are not configured or the user has none.
pub async fn sign_in_options(gw: &Gateway, b: Bound<'_>) -> Result<Option<String>, GatewayError> {
    let Some(rp) = gw.passkeys.as_deref() else {
        return Ok(None);
    };
    let keys: Vec<String> = gw
        .store
        .passkeys(b.user)
        .await?
        .into_iter()
        .map(|p| p.key)
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let (options, state) = rp.start_authentication(&keys).map_err(internal)?;
    gw.store
        .put_ceremony(b.key, &wrap(b.user, &state), CEREMONY_TTL)
        .await?;
    // Escaped where the page puts it (an attribute value of a template).
    Ok(Some(options))
}

/// Finishes a sign-in with the browser's answer: true when it proves one of the user's
/// passkeys (and its use is recorded), false when refused (audited).
pub async fn sign_in(gw: &Gateway, b: Bound<'_>, answer: &str) -> Result<bool, GatewayError> {
    let ok = assertion(gw, b, answer).await?;
    if ok {
        gw.audit
            .record(record(b, Event::VerifySuccess).detail("method=passkey"))
            .await;
    }
    Ok(ok)
}

/// What an account page change confirmed with a passkey is (its ceremony is kept apart from
/// any other, so an answer to one cannot confirm another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Make new recovery codes.
    RecoveryCodes,
    /// Turn MFA off.
    Disable,
}

impl Confirm {
    fn as_str(self) -> &'static str {
        match self {
            Confirm::RecoveryCodes => "recovery",
            Confirm::Disable => "disable",
        }
    }
}

/// The ceremony key of an account page change of the signed-in session `a`.
pub fn confirm_key(a: &Approval, what: Confirm) -> String {
    format!("{}:{}", account_key(a), what.as_str())
}

/// Starts the ceremony that confirms an account page change with one of the user's
/// passkeys (`b.key` from [`confirm_key`]): the options for the page, `None` when the user
/// has none.
pub async fn confirm_options(gw: &Gateway, b: Bound<'_>) -> Result<Option<String>, GatewayError> {
    rp(gw)?;
    sign_in_options(gw, b).await
}

/// Checks the browser's answer to a confirmation ceremony: true when it proves one of the
/// user's passkeys (its counter moved forward, its use recorded), false when refused
/// (audited). The change it confirms is audited by the caller.
pub async fn confirm(gw: &Gateway, b: Bound<'_>, answer: &str) -> Result<bool, GatewayError> {
    assertion(gw, b, answer).await
}

/// Takes the ceremony of `b` and checks the answer against it and the user's passkeys; the
/// use (counter, last used) is one store step, refused when the credential is gone or its
/// counter did not move forward.
async fn assertion(gw: &Gateway, b: Bound<'_>, answer: &str) -> Result<bool, GatewayError> {
    let rp = rp(gw)?;
    let Some(state) = take(gw, b).await? else {
        refused(gw, b, "no_ceremony").await;
        return Ok(false);
    };
    let stored = gw.store.passkeys(b.user).await?;
    let keys: Vec<(String, String)> = stored.into_iter().map(|p| (p.id, p.key)).collect();
    let ok = match rp.finish_authentication(answer, &state, &keys) {
        Ok(ok) => ok,
        Err(PasskeyError::Refused(e)) => {
            tracing::info!(user = %b.user, reason = %e, "passkey answer refused");
            refused(gw, b, "answer").await;
            return Ok(false);
        }
        Err(e) => return Err(internal(e)),
    };
    match gw
        .store
        .use_passkey(b.user, &ok.id, ok.counter, &ok.key, b.now)
        .await?
    {
        UsePasskey::Used => Ok(true),
        UsePasskey::Gone => {
            refused(gw, b, "removed").await;
            Ok(false)
        }
        UsePasskey::CounterRegressed => {
            refused(gw, b, "counter").await;
            Ok(false)
        }
    }
}

/// Starts registering a passkey for the user: the creation options for the page.
pub async fn register_options(gw: &Gateway, b: Bound<'_>) -> Result<String, GatewayError> {
    let rp = rp(gw)?;
    let existing: Vec<String> = gw
        .store
        .passkeys(b.user)
        .await?
        .into_iter()
        .map(|p| p.key)
        .collect();
    let (options, state) = rp.start_registration(b.user, &existing).map_err(internal)?;
    gw.store
        .put_ceremony(b.key, &wrap(b.user, &state), CEREMONY_TTL)
        .await?;
    Ok(options)
}

/// What became of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Added,
    /// The answer was refused (or the ceremony is gone, or the user has the most passkeys).
    Refused,
    /// The user was reset since the sign-in or session began: nothing was written.
    Revoked,
    /// Since an MSP reset, the one-time enrollment code comes first (it was not typed in this
    /// sign-in): nothing was written.
    CodeRequired,
}

/// Finishes a registration with the browser's answer and stores the passkey under `name`
/// (cleaned; the default name when empty), only while the user's epoch is still `epoch`, and
/// after an MSP reset only with the `ticket` of the sign-in that typed the enrollment code.
pub async fn register(
    gw: &Gateway,
    b: Bound<'_>,
    answer: &str,
    name: &str,
    lang: Lang,
    epoch: u64,
    ticket: Option<&str>,
) -> Result<Registered, GatewayError> {
    let rp = rp(gw)?;
    let Some(state) = take(gw, b).await? else {
        refused(gw, b, "no_ceremony").await;
        return Ok(Registered::Refused);
    };
    let (id, key) = match rp.finish_registration(answer, &state) {
        Ok(r) => r,
        Err(PasskeyError::Refused(e)) => {
            tracing::info!(user = %b.user, reason = %e, "passkey registration refused");
            refused(gw, b, "registration").await;
            return Ok(Registered::Refused);
        }
        Err(e) => return Err(internal(e)),
    };
    let name = clean_name(name).unwrap_or_else(|| {
        pages::strings::strings(lang)
            .passkey
            .default_name
            .to_string()
    });
    let pk = StoredPasskey {
        id,
        name,
        added: b.now,
        last_used: 0,
        counter: 0,
        key,
    };
    let ticket = ticket.map(crate::auth::enrollment_code::ticket_hash);
    match gw
        .store
        .add_passkey(b.user, &pk, epoch, ticket.as_deref())
        .await?
    {
        AddPasskey::Added => {
            gw.audit
                .record(record(b, Event::PasskeyAdded).detail(format!("passkey={}", short(&pk.id))))
                .await;
            Ok(Registered::Added)
        }
        AddPasskey::Revoked => Ok(Registered::Revoked),
        AddPasskey::CodeRequired => {
            refused(gw, b, "enrollment_code_required").await;
            Ok(Registered::CodeRequired)
        }
        AddPasskey::Duplicate => {
            refused(gw, b, "duplicate").await;
            Ok(Registered::Refused)
        }
        AddPasskey::Full => {
            refused(gw, b, "too_many").await;
            Ok(Registered::Refused)
        }
    }
}

/// The first characters of a credential id, enough to tell a user's passkeys apart in the
/// audit trail (the id is public; the whole of it is of no use there).
pub fn short(id: &str) -> &str {
    let end = id.char_indices().nth(12).map_or(id.len(), |(i, _)| i);
    &id[..end]
}

/// Whether the user has a passkey (counted or not by the role's methods: with one, MFA is on).
pub async fn has_passkeys(gw: &Gateway, user: &str) -> Result<bool, GatewayError> {
    Ok(!gw.store.passkeys(user).await?.is_empty())
}

/// The user's passkeys as the pages list them.
pub async fn items(gw: &Gateway, user: &str) -> Result<Vec<pages::PasskeyItem>, GatewayError> {
    Ok(gw
        .store
        .passkeys(user)
        .await?
        .into_iter()
        .map(|p| pages::PasskeyItem {
            added: fmt_time(gw, p.added),
            last_used: (p.last_used > 0).then(|| fmt_time(gw, p.last_used)),
            id: p.id,
            name: p.name,
        })
        .collect())
}

/// The role's policy today: its state and methods (the configured fallback for an unknown
/// role, codes only).
pub fn policy_for(gw: &Gateway, role: &str, now: u64) -> (MfaState, MfaMethods) {
    let ts = crate::clock::timestamp_of(now);
    gw.policy
        .current()
        .decide(role, ts)
        .map_or((gw.cfg.vms.unmapped, MfaMethods::TOTP), |d| {
            (d.state, d.methods.usable(gw.passkeys.is_some()))
        })
}

/// How long after a sign-in with MFA its session may add another factor (a passkey, or the
/// app beside passkeys): an open session alone (a shared computer left signed in) must not
/// make a lasting factor for whoever sits at it.
pub const FRESH_SIGN_IN: u64 = 15 * 60;

/// Whether `a` may add a factor to a user who has one already: its MFA step was passed in a
/// sign-in at most [`FRESH_SIGN_IN`] ago.
pub fn may_add_factor(a: &Approval, now: u64) -> bool {
    a.mfa_passed && now.saturating_sub(a.issued) <= FRESH_SIGN_IN
}

/// A user with a factor already, whose session's sign-in is too old to add another.
async fn needs_fresh_sign_in(gw: &Gateway, a: &Approval, now: u64) -> Result<bool, GatewayError> {
    if may_add_factor(a, now) {
        return Ok(false);
    }
    Ok(gw.store.user(&a.user).await?.enrolled() || has_passkeys(gw, &a.user).await?)
}

/// The account page's passkey routes: the add page and its answer, rename, remove.
pub async fn account(call: &Call<'_>, route: &crate::web::routes::Route, body: Incoming) -> Answer {
    use crate::web::routes::Route;
    let gw = call.gw;
    let a = extract::user(call)?;
    if gw.passkeys.is_none() {
        return Err(ClientError::NotFound.into());
    }
    let csrf = Csrf::session(gw, CsrfScope::Account, &a);
    let key = account_key(&a);
    let b = Bound {
        key: &key,
        user: &a.user,
        addr: &call.client,
        now: call.now,
    };
    let p = &gw.paths;
    let sign_in_again = || {
        Ok((
            redirect(&format!("{}?done=sign-in-again", p.account)),
            Outcome::Rejected,
        ))
    };
    if !call.is_post() {
        if *route != Route::AccountPasskey {
            return Err(ClientError::NotFound.into());
        }
        if needs_fresh_sign_in(gw, &a, call.now).await? {
            return sign_in_again();
        }
        let refused = Query::of(&call.uri).get("refused").is_some();
        return Ok((
            add_page(gw, call.lang, &a, b, &csrf.token(), refused).await?,
            Outcome::Gateway,
        ));
    }
    let form = Form::read(body).await?;
    if csrf.check(&form).is_err() {
        return Ok((
            gw.page_response(pages::ErrorPage::BadRequest, call.lang),
            Outcome::Rejected,
        ));
    }
    let (state, methods) = policy_for(gw, &a.role, call.now);
    match route {
        Route::AccountPasskey => {
            if needs_fresh_sign_in(gw, &a, call.now).await? {
                return sign_in_again();
            }
            let answer = form.get(pages::CREDENTIAL_FIELD).unwrap_or("");
            let name = form.get(pages::NAME_FIELD).unwrap_or("");
            // MFA turned on by this passkey (the user had neither the app nor a passkey): the
            // metrics count it as an enrollment.
            let record = gw.store.user(&a.user).await?;
            let had_mfa = record.enrolled() || has_passkeys(gw, &a.user).await?;
            // With `first_enrollment = "email_code"` a first factor is set up in a sign-in,
            // after the mailed code.
            if crate::mfa::email_code::blocks_self_service(gw, &record, had_mfa) {
                return Ok((
                    redirect(&format!("{}?done=email-code", p.account)),
                    Outcome::Rejected,
                ));
            }
            match register(gw, b, answer, name, call.lang, a.epoch, None).await? {
                Registered::Added => {
                    if !had_mfa {
                        gw.metrics.mfa(crate::metrics::MfaEvent::Enrolled);
                    }
                    Ok((
                        redirect(&format!("{}?done=passkey-added", p.account)),
                        Outcome::Gateway,
                    ))
                }
                Registered::Refused => Ok((
                    redirect(&format!("{}?refused=1", p.account_passkey)),
                    Outcome::Rejected,
                )),
                // Reset meanwhile: this session is being ended on every instance.
                Registered::Revoked => Err(ClientError::Forbidden.into()),
                // Reset with an enrollment code: a factor is added in a sign-in, after it.
                Registered::CodeRequired => Ok((
                    redirect(&format!("{}?done=enrollment-code", p.account)),
                    Outcome::Rejected,
                )),
            }
        }
        Route::AccountPasskeyRename => {
            let id = form.get(pages::PASSKEY_FIELD).unwrap_or("");
            let Some(name) = clean_name(form.get(pages::NAME_FIELD).unwrap_or("")) else {
                return Err(ClientError::BadRequest("a passkey needs a name").into());
            };
            if !gw.store.rename_passkey(&a.user, id, &name).await? {
                return Err(ClientError::NotFound.into());
            }
            gw.audit
                .record(record(b, Event::PasskeyRenamed).detail(format!("passkey={}", short(id))))
                .await;
            Ok((
                redirect(&format!("{}?done=passkey-renamed", p.account)),
                Outcome::Gateway,
            ))
        }
        Route::AccountPasskeyRemove => {
            let id = form.get(pages::PASSKEY_FIELD).unwrap_or("");
            let keep = KeepMethod {
                enforced: state == MfaState::Enforced,
                totp: methods.totp,
                webauthn: methods.webauthn,
            };
            match gw.store.remove_passkey(&a.user, id, keep).await? {
                RemovePasskey::Removed => {
                    gw.audit
                        .record(
                            record(b, Event::PasskeyRemoved)
                                .detail(format!("passkey={}", short(id))),
                        )
                        .await;
                    Ok((
                        redirect(&format!("{}?done=passkey-removed", p.account)),
                        Outcome::Gateway,
                    ))
                }
                RemovePasskey::LastMethod => Ok((
                    redirect(&format!("{}?done=passkey-last", p.account)),
                    Outcome::Rejected,
                )),
                RemovePasskey::Gone => Err(ClientError::NotFound.into()),
            }
        }
        _ => Err(ClientError::NotFound.into()),
    }
}

async fn add_page(
    gw: &Gateway,
    lang: Lang,
    a: &Approval,
    b: Bound<'_>,
    csrf: &str,
    refused: bool,
) -> Result<Response<Body>, GatewayError> {
    let options = register_options(gw, b).await?;
    let html = pages::passkey_setup_page(&pages::PasskeySetupView {
        lang,
        branding: &gw.branding,
        account: &a.user,
        options: &options,
        form_action: &gw.paths.account_passkey,
        csrf,
        required: false,
        can_postpone: false,
        refused,
        back: Some(&gw.paths.account),
    });
    Ok(html_page(StatusCode::OK, html))
}
