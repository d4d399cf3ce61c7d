//! Self-service for every signed-in user, under `<prefix>account`.
//!
//! * see one's own MFA state;
//! * replace the phone: a current code from the old app first, then pairing the new one
//!   (shown like an enrollment; the old secret stays in force until the new one is confirmed);
//! * new recovery codes (needs a current code; the old ones stop working);
//! * turn MFA off, only where the role's policy today is not `enforced` (needs a current code
//!   from the app): the app, the recovery codes and every passkey go in one store step;
//! * without the app (passkeys only), new recovery codes and turning MFA off are confirmed
//!   with a passkey instead: the change's form shows a page with an assertion ceremony (its
//!   state kept in the store under a key bound to this session and the change, taken once;
//!   the passkey's counter checked in the store step that records its use), which posts the
//!   browser's answer back to the same form action;
//! * set MFA up, where it is offered and not yet set up;
//! * see the browsers one chose to remember (`mfa::remember`) and forget one or all of them
//!   (no code needed: forgetting only ever asks for more). A replaced phone and MFA turned off
//!   forget them all too.
//!
//! The pairing in progress is kept sealed in the store for `mfa.enrollment_ttl` under a key bound to the
//! signed-in session. Every change is audited with the user as actor.
//!
//! Confirming a pairing is one compare-and-set in the store, decided by what the pairing was
//! started for, never by re-reading the user's state: a set-up writes only if the user has no
//! secret (the owner may have enrolled her phone meanwhile, in another session with only the
//! password known to someone else), and a replacement writes only if the stored secret is still
//! the one the old app's code was checked against. A refused confirmation changes nothing and
//! is audited (`self_change_refused`). A replaced phone ends every other session of the user on
//! every instance (a user revocation, published before the secret is written), and this
//! session gets a fresh approval.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::{HeaderMap, Response, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use crate::audit::{ActorKind, Event};
use crate::auth::crypto::Purpose;
use crate::error::{ClientError, GatewayError, InternalError};
use crate::gate::approval::Approval;
use crate::gateway::Gateway;
use crate::http::body::Body;
use crate::http::html_page;
use crate::metrics::{MfaEvent, Outcome};
use crate::mfa::codes::{self, Check, Who};
use crate::pages::{self, AccountMessage, FormAction, FormError, Lang};
use crate::policy::MfaState;
use crate::store::EnrollResult;
use crate::web::extract::{self, Answer, Call, Csrf, CsrfScope, Form, Query};
use crate::web::flow::{EnrollOpts, check_error, enroll_html, pending_secret};
use crate::web::routes::Route;
use crate::web::{fmt_time, redirect};

#[derive(Serialize, Deserialize)]
struct Pairing {
    user: String,
    secret: String,
    /// For a replacement: the sealed secret (base64) the old app's code was checked against;
    /// the new one replaces exactly that one or nothing. `None`: a first set-up, which
    /// succeeds only while the user has no secret at all.
    #[serde(default)]
    replaces: Option<String>,
    /// A first set-up whose pending secret replaced one shown earlier (see `pending`).
    #[serde(default)]
    replaced: bool,
}

fn pairing_key(a: &Approval) -> String {
    format!("acct-{}", crate::gate::revocation::hex16(&a.session_hash))
}

fn pairing_aad(a: &Approval) -> Vec<u8> {
    let mut aad = b"account-pairing:".to_vec();
    aad.extend_from_slice(&a.session_hash);
    aad
}

struct Ctx<'a> {
    gw: &'a Gateway,
    lang: Lang,
    a: Approval,
    addr: String,
    now: u64,
    csrf: String,
    /// The store id of this browser, if it is one the user remembered.
    this_browser: Option<String>,
}

impl Ctx<'_> {
    fn who(&self) -> Who<'_> {
        Who {
            user: &self.a.user,
            addr: &self.addr,
            now: self.now,
        }
    }
    fn forgetter(&self) -> crate::mfa::remember::Forgetter<'_> {
        crate::mfa::remember::Forgetter {
            kind: ActorKind::User,
            name: &self.a.user,
            client: Some(&self.addr),
        }
    }

    /// Forgets every remembered browser of the user, audited with `why`.
    async fn forget_all(&self, why: &str) -> Result<usize, GatewayError> {
        let gw = self.gw;
        Ok(crate::mfa::remember::forget_all(
            &gw.store,
            &gw.audit,
            &self.a.user,
            &self.forgetter(),
            why,
            self.now,
        )
        .await?)
    }

    fn state_today(&self) -> MfaState {
        let ts = crate::clock::timestamp_of(self.now);
        self.gw
            .policy
            .current()
            .decide(&self.a.role, ts)
            .map_or(self.gw.cfg.vms.unmapped, |d| d.state)
    }
}

/// A page or form of the account (the router has checked path and method; see
/// [`crate::web`]).
pub async fn handle(call: &Call<'_>, route: &Route, body: Incoming) -> Answer {
    let gw = call.gw;
    let a = extract::user(call)?;
    let csrf = Csrf::session(gw, CsrfScope::Account, &a);
    let this_browser =
        crate::gate::cookies::request_cookie(&call.headers, crate::gate::cookies::REMEMBER_COOKIE)
            .and_then(|v| crate::mfa::remember::open(&gw.keys, &a.user, v))
            .map(|c| c.id_hex());
    let ctx = Ctx {
        gw,
        lang: call.lang,
        csrf: csrf.token(),
        a: a.clone(),
        addr: call.client.clone(),
        now: call.now,
        this_browser,
    };
    let p = &gw.paths;
    if !call.is_post() {
        return match route {
            Route::Account => {
                let message = match Query::of(&call.uri).get("done") {
                    Some("replaced") => Some(AccountMessage::PhoneReplaced),
                    Some("disabled") => Some(AccountMessage::MfaDisabled),
                    Some("enabled") => Some(AccountMessage::MfaEnabled),
                    Some("recovery") => Some(AccountMessage::RecoveryCodesReplaced),
                    Some("forgotten") => Some(AccountMessage::BrowserForgotten),
                    Some("forgotten-all") => Some(AccountMessage::BrowsersForgotten),
                    Some("enrollment-code") => Some(AccountMessage::EnrollmentCodeNeeded),
                    Some("email-code") => Some(AccountMessage::EmailCodeNeeded),
                    Some("sign-in-again") => Some(AccountMessage::SignInAgain),
                    Some("passkey-added") => Some(AccountMessage::PasskeyAdded),
                    Some("passkey-renamed") => Some(AccountMessage::PasskeyRenamed),
                    Some("passkey-removed") => Some(AccountMessage::PasskeyRemoved),
                    Some("passkey-last") => Some(AccountMessage::PasskeyLastMethod),
                    _ => None,
                };
                Ok((
                    page(&ctx, None, message, StatusCode::OK).await?,
                    Outcome::Gateway,
                ))
            }
            Route::AccountEnroll => match load_pairing(&ctx).await? {
                Some((secret, _, replaced)) => Ok((
                    pairing_page(&ctx, &secret, replaced, None, StatusCode::OK)?,
                    Outcome::Gateway,
                )),
                None => Ok((redirect(&p.account), Outcome::Gateway)),
            },
            _ => Err(ClientError::NotFound.into()),
        };
    }
    let form = Form::read(body).await?;
    if csrf.check(&form).is_err() {
        return Ok((
            page(
                &ctx,
                Some(FormError::CsrfInvalid),
                None,
                StatusCode::FORBIDDEN,
            )
            .await?,
            Outcome::Rejected,
        ));
    }
    let done = Query::of(&call.uri).get("done").map(str::to_string);
    post(&ctx, route, &form, &call.headers, done.as_deref()).await
}

/// A form of the account page, after its CSRF check. `done` is the query's `done=` (set by the
/// recovery codes page's "Continue").
async fn post(
    ctx: &Ctx<'_>,
    route: &Route,
    form: &Form,
    headers: &HeaderMap,
    done: Option<&str>,
) -> Answer {
    let gw = ctx.gw;
    let p = &gw.paths;
    let code = form.get("code").unwrap_or("");
    if *route == Route::Account {
        // "Continue" after new recovery codes were shown: back to the account page, saying
        // what was done (the recovery codes page posts here with `?done=`; any other value is
        // dropped).
        let target = match done {
            Some(d @ ("recovery" | "replaced" | "enabled")) => format!("{}?done={d}", p.account),
            _ => p.account.clone(),
        };
        return Ok((redirect(&target), Outcome::Gateway));
    }
    if *route == Route::AccountForgetBrowsers {
        return forget(ctx, form).await;
    }
    if *route == Route::AccountSetUp {
        let record = gw.store.user(&ctx.a.user).await?;
        let (state, methods) = crate::web::passkey::policy_for(gw, &ctx.a.role, ctx.now);
        // The app, where the role's methods count it (else a passkey is the way in).
        if record.enrolled() || state == MfaState::None || !methods.totp {
            return Err(ClientError::Forbidden.into());
        }
        // Since an MSP reset, only a sign-in that typed the one-time enrollment code pairs; with
        // `first_enrollment = "email_code"`, only a sign-in that confirmed the mailed code.
        let has_passkeys = crate::web::passkey::has_passkeys(gw, &ctx.a.user).await?;
        let refused = if record.enrollment_code_required() {
            Some(AccountMessage::EnrollmentCodeNeeded)
        } else if has_passkeys && !crate::web::passkey::may_add_factor(&ctx.a, ctx.now) {
            // The app beside passkeys: a second factor, added only soon after a sign-in.
            Some(AccountMessage::SignInAgain)
        } else if crate::mfa::email_code::blocks_self_service(gw, &record, has_passkeys) {
            Some(AccountMessage::EmailCodeNeeded)
        } else {
            None
        };
        if let Some(message) = refused {
            return Ok((
                page(ctx, None, Some(message), StatusCode::CONFLICT).await?,
                Outcome::Rejected,
            ));
        }
        let (browser, new_browser) = crate::mfa::pending::browser_id(headers);
        start_pairing(ctx, None, &browser).await?;
        let mut resp = redirect(&p.account_enroll);
        if new_browser {
            resp.headers_mut().append(
                http::header::SET_COOKIE,
                crate::mfa::pending::browser_cookie(gw, &browser),
            );
        }
        return Ok((resp, Outcome::Gateway));
    }
    if *route == Route::AccountReplacePhone
        || *route == Route::AccountRecoveryCodes
        || *route == Route::AccountDisable
    {
        if *route == Route::AccountDisable && ctx.state_today() == MfaState::Enforced {
            return Ok((
                gw.page_response(pages::ErrorPage::Forbidden, ctx.lang),
                Outcome::Rejected,
            ));
        }
        if *route == Route::AccountRecoveryCodes && !gw.policy.current().recovery_codes() {
            return Err(ClientError::Forbidden.into());
        }
        // Without the app, new recovery codes and turning MFA off are confirmed with a
        // passkey instead of a code.
        if *route != Route::AccountReplacePhone && !gw.store.user(&ctx.a.user).await?.enrolled() {
            return passkey_confirmed(ctx, route, form).await;
        }
        let checked_against =
            match codes::check_enrolled_against(gw, ctx.who(), code, false).await? {
                (Check::Accepted { .. }, Some(sealed)) => sealed,
                (other, _) => {
                    let (e, status) = check_error(other);
                    let failed = if *route == Route::AccountReplacePhone {
                        FormAction::ReplacePhone
                    } else if *route == Route::AccountRecoveryCodes {
                        FormAction::NewRecoveryCodes
                    } else {
                        FormAction::Disable
                    };
                    // Shown at the form that was sent.
                    return Ok((
                        render_page(ctx, Some(e), Some(failed), None, status).await?,
                        Outcome::Rejected,
                    ));
                }
            };
        if *route == Route::AccountReplacePhone {
            start_pairing(ctx, Some(&checked_against), "").await?;
            return Ok((redirect(&p.account_enroll), Outcome::Gateway));
        }
        return confirmed(ctx, route, "").await;
    }
    if *route == Route::AccountEnroll {
        let Some((secret, replaces, replaced)) = load_pairing(ctx).await? else {
            return Ok((redirect(&p.account), Outcome::Gateway));
        };
        let step = match codes::check_new(gw, ctx.who(), &secret, code).await? {
            Check::Accepted { step } => step,
            other => {
                let (e, status) = check_error(other);
                return Ok((
                    pairing_page(ctx, &secret, replaced, Some(e), status)?,
                    Outcome::Rejected,
                ));
            }
        };
        let sealed = codes::seal_secret(gw, &ctx.a.user, &secret)?;
        let replacing = replaces.is_some();
        let mut new_epoch = ctx.a.epoch;
        let mut needs_code = false;
        let written = match &replaces {
            Some(old) => {
                // Revocation first: if it cannot be published, the old phone stays.
                new_epoch = gw.ops().end_sessions(&ctx.a.user, ctx.now).await?;
                // The remembered browsers go with the old phone (audited here; the
                // replacement removes them again in its own store step).
                ctx.forget_all("via=phone_replaced").await?;
                gw.store
                    .replace_secret_if(
                        &ctx.a.user,
                        old,
                        &sealed,
                        gw.keys.active_id(),
                        ctx.now,
                        step,
                    )
                    .await?
            }
            None => match gw
                .store
                .enroll(
                    &ctx.a.user,
                    &sealed,
                    gw.keys.active_id(),
                    ctx.now,
                    step,
                    None,
                )
                .await?
            {
                EnrollResult::Enrolled => true,
                EnrollResult::AlreadyEnrolled => false,
                EnrollResult::CodeRequired => {
                    needs_code = true;
                    false
                }
            },
        };
        let _ = gw.store.take_challenge(&pairing_key(&ctx.a)).await;
        if !written {
            gw.audit
                .record(
                    codes::record(ctx.who(), Event::SelfChangeRefused).detail(if replacing {
                        "change=replace reason=secret_changed"
                    } else if needs_code {
                        "change=set_up reason=enrollment_code_required"
                    } else {
                        "change=set_up reason=already_enrolled"
                    }),
                )
                .await;
            return Ok((
                page(
                    ctx,
                    None,
                    Some(if needs_code {
                        AccountMessage::EnrollmentCodeNeeded
                    } else {
                        AccountMessage::ChangedMeanwhile
                    }),
                    StatusCode::CONFLICT,
                )
                .await?,
                Outcome::Rejected,
            ));
        }
        if replacing {
            gw.audit
                .record(codes::record(ctx.who(), Event::SelfPhoneReplaced))
                .await;
        } else {
            if !crate::web::passkey::has_passkeys(gw, &ctx.a.user).await? {
                // MFA turned on (a user with passkeys only added the app).
                gw.metrics.mfa(MfaEvent::Enrolled);
            }
            gw.audit
                .record(codes::record(ctx.who(), Event::Enrolled).detail("via=account"))
                .await;
        }
        let mut resp = if gw.policy.current().recovery_codes() {
            let codes =
                codes::issue_recovery_codes(gw, ctx.who(), ActorKind::User, Some("enrollment"))
                    .await?;
            recovery_page(ctx, &codes, if replacing { "replaced" } else { "enabled" })
        } else {
            let done = if replacing { "replaced" } else { "enabled" };
            redirect(&format!("{}?done={done}", p.account))
        };
        if replacing {
            reapprove(ctx, new_epoch, &mut resp);
        }
        return Ok((resp, Outcome::Gateway));
    }
    Err(ClientError::NotFound.into())
}

/// New recovery codes or MFA turned off (`route`), once confirmed (`how`: appended to the
/// audit detail of turning MFA off).
async fn confirmed(ctx: &Ctx<'_>, route: &Route, how: &str) -> Answer {
    let gw = ctx.gw;
    if *route == Route::AccountRecoveryCodes {
        let codes = codes::issue_recovery_codes(gw, ctx.who(), ActorKind::User, None).await?;
        return Ok((recovery_page(ctx, &codes, "recovery"), Outcome::Gateway));
    }
    // Counted and audited here; the delete removes them again in its own store step.
    ctx.forget_all("via=mfa_disabled").await?;
    // The app, the recovery codes and every passkey, in one store step.
    let removed = gw.store.delete_enrollment(&ctx.a.user).await?;
    gw.audit
        .record(
            codes::record(ctx.who(), Event::SelfMfaDisabled).detail(format!(
                "app={} passkeys={}{how}",
                u8::from(removed.app),
                removed.passkeys
            )),
        )
        .await;
    Ok((
        redirect(&format!("{}?done=disabled", gw.paths.account)),
        Outcome::Gateway,
    ))
}

/// New recovery codes or MFA turned off (`route`) for a user without the app: the form of
/// the account page (no code) shows the page that confirms it with a passkey; that page
/// posts the browser's answer here (action `passkey`). The ceremony is bound to this
/// session and to the change, and taken once; a refused answer shows the page again with a
/// new one.
async fn passkey_confirmed(ctx: &Ctx<'_>, route: &Route, form: &Form) -> Answer {
    use crate::web::passkey::{self as pk, Bound, Confirm};
    let gw = ctx.gw;
    let what = if *route == Route::AccountDisable {
        Confirm::Disable
    } else {
        Confirm::RecoveryCodes
    };
    let key = pk::confirm_key(&ctx.a, what);
    let b = Bound {
        key: &key,
        user: &ctx.a.user,
        addr: &ctx.addr,
        now: ctx.now,
    };
    let mut refused = false;
    if form.get(pages::ACTION_FIELD) == Some(pages::SIGN_IN_ACTION) {
        let answer = form.get(pages::CREDENTIAL_FIELD).unwrap_or("");
        if pk::confirm(gw, b, answer).await? {
            return confirmed(ctx, route, " confirmed=passkey").await;
        }
        refused = true;
    }
    // Nothing to confirm with (no passkey, or none any more): as without a method.
    let Some(options) = pk::confirm_options(gw, b).await? else {
        return Err(ClientError::Forbidden.into());
    };
    let form_action = if what == Confirm::Disable {
        &gw.paths.account_disable
    } else {
        &gw.paths.account_recovery
    };
    let html = pages::passkey_confirm_page(&pages::PasskeyConfirmView {
        lang: ctx.lang,
        branding: &gw.branding,
        account: &ctx.a.user,
        options: &options,
        form_action,
        csrf: &ctx.csrf,
        disable: what == Confirm::Disable,
        refused,
        back: &gw.paths.account,
    });
    let (status, outcome) = if refused {
        (StatusCode::FORBIDDEN, Outcome::Rejected)
    } else {
        (StatusCode::OK, Outcome::Gateway)
    };
    Ok((html_page(status, html), outcome))
}

/// "Forget" at one remembered browser, or "Forget all browsers". This browser's cookie is
/// removed too when it is among them (it would no longer skip the code anyway).
async fn forget(ctx: &Ctx<'_>, form: &Form) -> Answer {
    let gw = ctx.gw;
    let (done, this) =
        if form.get(pages::ACTION_FIELD) == Some(FormAction::ForgetAllBrowsers.as_str()) {
            ctx.forget_all("via=self").await?;
            ("forgotten-all", ctx.this_browser.is_some())
        } else if form.get(pages::ACTION_FIELD) == Some(FormAction::ForgetBrowser.as_str()) {
            let id = form.get(pages::BROWSER_FIELD).unwrap_or("");
            if !crate::mfa::remember::valid_id(id) {
                return Err(ClientError::BadRequest("not a browser id").into());
            }
            crate::mfa::remember::forget_one(
                &gw.store,
                &gw.audit,
                &ctx.a.user,
                id,
                &ctx.forgetter(),
                ctx.now,
            )
            .await?;
            ("forgotten", ctx.this_browser.as_deref() == Some(id))
        } else {
            return Err(ClientError::BadRequest("unknown action").into());
        };
    let mut resp = redirect(&format!("{}?done={done}", gw.paths.account));
    if this {
        resp.headers_mut().append(
            http::header::SET_COOKIE,
            crate::mfa::remember::clear_cookie(),
        );
    }
    Ok((resp, Outcome::Gateway))
}

/// After a replaced phone ended every session of the user (raising the user's revocation
/// epoch), this session (the one that showed codes from both phones) goes on with a new
/// approval at the new epoch, its expiry unchanged. Issued in the next second too, for
/// instances of the previous version that still order revocations by time.
fn reapprove(ctx: &Ctx<'_>, epoch: u64, resp: &mut Response<Body>) {
    let a = Approval {
        issued: ctx.now + 1,
        epoch,
        id: Some(crate::auth::crypto::random_bytes()),
        ..ctx.a.clone()
    };
    let left = a.expires.saturating_sub(ctx.now).max(1);
    resp.headers_mut().append(
        http::header::SET_COOKIE,
        crate::gate::cookies::gateway_cookie(
            crate::gate::approval::APPROVAL_COOKIE,
            &a.seal(&ctx.gw.keys),
            Some(Duration::from_secs(left)),
            cookie::SameSite::Lax,
        ),
    );
}

/// Starts a pairing: a first set-up shows the user's pending secret for `browser` (see
/// `pending`), a replacement a secret of its own.
async fn start_pairing(
    ctx: &Ctx<'_>,
    replaces: Option<&[u8]>,
    browser: &str,
) -> Result<(), GatewayError> {
    let gw = ctx.gw;
    // A first set-up shows the user's pending secret, as a sign-in would; a new phone gets a
    // secret of its own.
    let (secret, replaced) = match replaces {
        None => crate::mfa::pending::secret_for(gw, &ctx.a.user, browser, ctx.now).await?,
        Some(_) => (crate::proxy::login::new_secret_b64(), false),
    };
    let json = serde_json::to_vec(&Pairing {
        user: ctx.a.user.clone(),
        secret,
        replaces: replaces.map(|r| B64.encode(r)),
        replaced,
    })
    .map_err(|e| InternalError::Other(e.to_string()))?;
    let sealed = gw
        .keys
        .seal(Purpose::Challenge, &pairing_aad(&ctx.a), &json)
        .map_err(|e| InternalError::Crypto(e.to_string()))?;
    gw.store
        .put_challenge(&pairing_key(&ctx.a), &sealed, gw.cfg.mfa.enrollment_ttl)
        .await?;
    Ok(())
}

/// The pairing in progress: the new secret, for a replacement the sealed secret it is to
/// replace, and whether a first set-up's secret replaced one shown earlier.
type Loaded = (zeroize::Zeroizing<Vec<u8>>, Option<Vec<u8>>, bool);

async fn load_pairing(ctx: &Ctx<'_>) -> Result<Option<Loaded>, GatewayError> {
    let gw = ctx.gw;
    let Some(blob) = gw.store.get_challenge(&pairing_key(&ctx.a)).await? else {
        return Ok(None);
    };
    let Ok(json) = gw
        .keys
        .open(Purpose::Challenge, &pairing_aad(&ctx.a), &blob)
    else {
        return Ok(None);
    };
    let Ok(p) = serde_json::from_slice::<Pairing>(&json) else {
        return Ok(None);
    };
    if p.user != ctx.a.user {
        return Ok(None);
    }
    let replaces = match p.replaces.as_deref().map(|r| B64.decode(r)) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => return Ok(None),
    };
    pending_secret(Some(&p.secret)).map(|s| Some((s, replaces, p.replaced)))
}

fn pairing_page(
    ctx: &Ctx<'_>,
    secret: &[u8],
    replaced: bool,
    error: Option<FormError>,
    status: StatusCode,
) -> Result<Response<Body>, GatewayError> {
    let required = ctx.state_today() == MfaState::Enforced;
    let html = enroll_html(
        ctx.gw,
        ctx.lang,
        &ctx.a.user,
        secret,
        &ctx.gw.paths.account_enroll,
        &ctx.csrf,
        error,
        EnrollOpts {
            required,
            can_postpone: false,
            replaced,
            minutes: None,
            // Back to the settings; the pairing simply lapses.
            cancel: Some(pages::Cancel::Link(&ctx.gw.paths.account)),
        },
    )?;
    Ok(html_page(status, html))
}

/// The new recovery codes, shown once; "Continue" leads back to the account page, which then
/// confirms `done` (`recovery`, `replaced` or `enabled`: what was just done).
fn recovery_page(ctx: &Ctx<'_>, codes: &[String], done: &str) -> Response<Body> {
    let continue_to = format!("{}?done={done}", ctx.gw.paths.account);
    let html = pages::recovery_codes_page(&pages::RecoveryCodesView {
        lang: ctx.lang,
        branding: &ctx.gw.branding,
        account: &ctx.a.user,
        codes,
        form_action: &continue_to,
        csrf: &ctx.csrf,
        // "Continue" goes to the settings already.
        to_settings: false,
    });
    html_page(StatusCode::OK, html)
}

async fn page(
    ctx: &Ctx<'_>,
    error: Option<FormError>,
    message: Option<AccountMessage>,
    status: StatusCode,
) -> Result<Response<Body>, GatewayError> {
    render_page(ctx, error, None, message, status).await
}

async fn render_page(
    ctx: &Ctx<'_>,
    error: Option<FormError>,
    failed: Option<FormAction>,
    message: Option<AccountMessage>,
    status: StatusCode,
) -> Result<Response<Body>, GatewayError> {
    let gw = ctx.gw;
    let r = gw.store.user(&ctx.a.user).await?;
    let state = ctx.state_today();
    let since = r.enrolled_at.map(|t| fmt_time(gw, t));
    let used = r.last_used.map(|t| fmt_time(gw, t));
    // The ones that can still skip the code (a record of an older epoch no longer can).
    let browsers: Vec<pages::BrowserItem> = if r.enrolled() {
        gw.store
            .remembered_browsers(&ctx.a.user)
            .await?
            .into_iter()
            .filter(|b| b.epoch >= r.epoch)
            .map(|b| {
                let (browser, system) = crate::mfa::remember::agent_parts(&b.agent);
                pages::BrowserItem {
                    browser: browser.map(str::to_string),
                    system: system.map(str::to_string),
                    remembered_on: fmt_time(gw, b.first_seen),
                    last_used: fmt_time(gw, b.last_used),
                    this_browser: ctx.this_browser.as_deref() == Some(b.id.as_str()),
                    id: b.id,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    // Passkeys: listed where the gateway offers them and the role's methods count them, or
    // the user has some (to remove them). Either method makes MFA on.
    let passkeys = crate::web::passkey::items(gw, &ctx.a.user).await?;
    let (_, methods) = crate::web::passkey::policy_for(gw, &ctx.a.role, ctx.now);
    let show_passkeys = gw.passkeys.is_some()
        && (methods.webauthn || !passkeys.is_empty())
        && state != MfaState::None;
    let html = pages::account_page(&pages::AccountView {
        lang: ctx.lang,
        branding: &gw.branding,
        account: &ctx.a.user,
        enrolled: r.enrolled(),
        passkey_count: passkeys.len(),
        enrolled_since: since.as_deref(),
        last_used: used.as_deref(),
        required: state == MfaState::Enforced,
        not_used: state == MfaState::None,
        app_counts: methods.totp,
        can_disable: (r.enrolled() || !passkeys.is_empty()) && state != MfaState::Enforced,
        confirm_with_passkey: !r.enrolled() && !passkeys.is_empty() && gw.passkeys.is_some(),
        recovery_enabled: gw.policy.current().recovery_codes(),
        recovery_remaining: r
            .recovery
            .iter()
            .filter(|h| crate::auth::recovery::is_keyed(h))
            .count(),
        csrf: &ctx.csrf,
        repair_action: &gw.paths.account_repair,
        recovery_action: &gw.paths.account_recovery,
        disable_action: &gw.paths.account_disable,
        setup_action: &gw.paths.account_setup,
        error,
        failed,
        message,
        browsers: &browsers,
        forget_action: &gw.paths.account_forget,
        passkeys: show_passkeys.then(|| pages::PasskeysView {
            items: &passkeys,
            add_action: &gw.paths.account_passkey,
            rename_action: &gw.paths.account_passkey_rename,
            remove_action: &gw.paths.account_passkey_remove,
        }),
    });
    Ok(html_page(status, html))
}
