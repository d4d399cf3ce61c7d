//! The MFA pages of a sign-in: code challenge, enrollment, the optional offer, recovery codes
//! shown once, and the notice after a recovery code was used.
//!
//! Every request here must carry the challenge cookie of a live challenge; every POST must
//! carry the CSRF token bound to that challenge. A correct code (or the choices that allow it:
//! "not now" where the policy permits) releases the withheld VMS response exactly as the VMS
//! sent it, with the approval cookie added. Codes are checked by [`crate::mfa::codes`], which
//! counts failures per user and address and locks the MFA step (never the VMS password).
//!
//! A challenge carries what was true when it was opened (enrolled or not, may postpone); the
//! choices that skip a code ("not now" at an enrollment or an offer) are therefore decided
//! again by the store in one step with their write ("only if still not enrolled"): a user
//! who enrolled in another session meanwhile is asked for a code instead.
//!
//! After an MSP reset with a one-time enrollment code (`admin.reset_requires_enrollment_code`),
//! the enrollment page first moves the sign-in to the enrollment-code step: the user types the
//! code the MSP read out (counted like any code), the store consumes it and notes a ticket
//! that only this challenge carries, and the pairing (QR code) follows; the store's `ENROLL`
//! pairs only with that ticket. The step is its own page and function
//! (`enrollment_code`, `enrollment_code_page`).
//!
//! The code page offers "don't ask for a code on this browser for N days" where the policy
//! allows it for the role; a right app code (not a recovery code) with the box ticked
//! remembers the browser (`mfa::remember`) once the login is released: the release comes first
//! (it claims the challenge exactly once), and a store that cannot remember the browser costs
//! only the cookie, never the sign-in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::header::SET_COOKIE;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::audit::{ActorKind, Event};
use crate::auth::totp;
use crate::error::{ClientError, GatewayError, InternalError};
use crate::gate::cookies::{self, CHALLENGE_COOKIE};
use crate::gateway::Gateway;
use crate::http::body::Body;
use crate::http::html_page;
use crate::metrics::{MfaEvent, Outcome};
use crate::mfa::challenge::{self, Challenge, Step};
use crate::mfa::codes::{self, Check, CodeCheck, Who};
use crate::pages::{self, FormError, Lang};
use crate::store::EnrollResult;
use crate::web::extract::{Answer, Call, Csrf, Form};
use crate::web::redirect;

struct Ctx<'a> {
    gw: &'a Gateway,
    /// The request's headers (its cookies, its `User-Agent`).
    request: &'a http::HeaderMap,
    lang: Lang,
    id: String,
    key: String,
    ch: Challenge,
    now: u64,
    addr: String,
}

impl Ctx<'_> {
    fn who(&self) -> Who<'_> {
        Who {
            user: &self.ch.user,
            addr: &self.addr,
            now: self.now,
        }
    }
}

/// A page of the MFA step (`step`: the route's page, which may differ from the challenge's
/// step after a back button: then a redirect to the right one).
pub async fn handle(call: &Call<'_>, page_step: Step, body: Incoming) -> Answer {
    let gw = call.gw;
    let (lang, now) = (call.lang, call.now);
    let Some(id) = cookies::request_cookie(&call.headers, CHALLENGE_COOKIE).map(str::to_string)
    else {
        return Ok((expired(gw, lang), Outcome::Rejected));
    };
    if id.len() > 128 {
        return Ok((expired(gw, lang), Outcome::Rejected));
    }
    let key = challenge::store_key(&id);
    let blob = gw.store.get_challenge(&key).await?;
    let Some(ch) = blob.and_then(|b| Challenge::open(&gw.keys, &id, &b).ok()) else {
        return Ok((expired(gw, lang), Outcome::Rejected));
    };
    if ch.expires <= now || ch.client.as_ref().is_some_and(|c| *c != call.client) {
        return Ok((expired(gw, lang), Outcome::Rejected));
    }
    let browser = crate::mfa::pending::browser_id(&call.headers);
    let mut ctx = Ctx {
        gw,
        request: &call.headers,
        lang,
        id,
        key,
        ch,
        now,
        addr: call.client.clone(),
    };
    if page_step != ctx.ch.step {
        // The page of another step (back button, bookmark): go to the right one.
        return Ok((
            redirect(crate::mfa::challenge::step_path(gw, ctx.ch.step)),
            Outcome::Gateway,
        ));
    }
    // After an MSP reset the pairing waits for the one-time enrollment code: neither the QR
    // code nor the pairing code is shown before it.
    if matches!(ctx.ch.step, Step::Enroll | Step::Passkey)
        && needs_enrollment_code(gw, &ctx.ch).await?
    {
        return Ok(to_enrollment_code(&ctx).await?);
    }
    // A first enrollment confirmed by e-mail: the code before the QR code (`email_code`).
    if matches!(ctx.ch.step, Step::Enroll | Step::Passkey)
        && crate::mfa::email_code::pending(ctx.ch.email_check)
    {
        return email_step(ctx, call.is_post(), body).await;
    }
    if ctx.ch.step == Step::EnrollmentCode && !call.is_post() {
        return Ok(enrollment_code_page(&ctx, None, StatusCode::OK).await?);
    }
    // The enrollment's secret: the user's pending one for this browser, taken when the page
    // is first shown and kept in the challenge from then on.
    let mut browser_cookie = None;
    if ctx.ch.step == Step::Enroll && ctx.ch.pending_secret.is_none() {
        let (secret, replaced) =
            crate::mfa::pending::secret_for(gw, &ctx.ch.user, &browser.0, now).await?;
        ctx.ch.pending_secret = Some(secret);
        ctx.ch.pending_replaced = replaced;
        let blob = ctx
            .ch
            .seal(&gw.keys, &ctx.id)
            .map_err(|e| InternalError::Crypto(e.to_string()))?;
        if !gw.store.replace_challenge(&ctx.key, &blob, None).await? {
            return Ok((expired(gw, lang), Outcome::Rejected));
        }
        if browser.1 {
            browser_cookie = Some(crate::mfa::pending::browser_cookie(gw, &browser.0));
        }
    }
    let mut answer = if call.is_post() {
        post(ctx, body).await
    } else {
        Ok((show(&ctx, None, StatusCode::OK).await?, Outcome::Gateway))
    };
    if let (Ok((resp, _)), Some(c)) = (&mut answer, browser_cookie) {
        resp.headers_mut().append(SET_COOKIE, c);
    }
    Ok(answer?)
}

/// The e-mailed code's step of a first enrollment, of an app or a passkey
/// (`web::email_code`); its "Not now" and "Cancel" are the enrollment's.
async fn email_step(ctx: Ctx<'_>, post: bool, body: Incoming) -> Answer {
    let step = crate::web::email_code::Step {
        gw: ctx.gw,
        lang: ctx.lang,
        id: &ctx.id,
        key: &ctx.key,
        ch: &ctx.ch,
        now: ctx.now,
        addr: &ctx.addr,
    };
    match crate::web::email_code::handle(&step, post, body).await? {
        crate::web::email_code::Answer::Page(r, o) => Ok((r, o)),
        crate::web::email_code::Answer::Expired => {
            Ok((expired(ctx.gw, ctx.lang), Outcome::Rejected))
        }
        crate::web::email_code::Answer::Enrollment(form) if ctx.ch.step == Step::Passkey => {
            Ok(passkey_setup(ctx, &form).await?)
        }
        crate::web::email_code::Answer::Enrollment(form) => Ok(enroll(ctx, &form).await?),
    }
}

/// A form sent from the current step's page, after its CSRF check.
async fn post(ctx: Ctx<'_>, body: Incoming) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    let form = Form::read(body).await?;
    if Csrf::challenge(gw, &ctx.id).check(&form).is_err() {
        return Ok((
            show(&ctx, Some(FormError::CsrfInvalid), StatusCode::FORBIDDEN).await?,
            Outcome::Rejected,
        ));
    }
    match ctx.ch.step {
        Step::Verify if form.get("action") == Some(pages::SIGN_IN_ACTION) => {
            passkey_sign_in(ctx, &form).await
        }
        Step::Verify => verify(ctx, &form).await,
        Step::Passkey => passkey_setup(ctx, &form).await,
        Step::Enroll => enroll(ctx, &form).await,
        Step::EnrollmentCode => enrollment_code(ctx, &form).await,
        Step::Offer => offer(ctx, &form).await,
        // Both only confirm that the user has read the page; "settings" finishes the
        // sign-in at the self-service page.
        Step::Recovery | Step::Notice => {
            let to = (form.get("action") == Some(pages::FormAction::Settings.as_str()))
                .then(|| gw.paths.account.clone());
            finish_to(ctx, true, to.as_deref()).await
        }
    }
}

fn expired(gw: &Gateway, lang: Lang) -> Response<Body> {
    let mut r = gw.page_response(pages::ErrorPage::ChallengeExpired, lang);
    r.headers_mut()
        .append(SET_COOKIE, cookies::clear_gateway_cookie(CHALLENGE_COOKIE));
    r
}

/// Renders the page of the current step.
async fn show(
    ctx: &Ctx<'_>,
    error: Option<FormError>,
    status: StatusCode,
) -> Result<Response<Body>, GatewayError> {
    show_with(ctx, error, false, status).await
}

/// [`show`]; `refused`: the browser's passkey answer was refused (said at the passkey).
async fn show_with(
    ctx: &Ctx<'_>,
    error: Option<FormError>,
    refused: bool,
    status: StatusCode,
) -> Result<Response<Body>, GatewayError> {
    let gw = ctx.gw;
    let csrf = Csrf::challenge(gw, &ctx.id).token();
    let ceremony = crate::web::passkey::sign_in_key(&ctx.key);
    let bound = crate::web::passkey::Bound {
        key: &ceremony,
        user: &ctx.ch.user,
        addr: &ctx.addr,
        now: ctx.now,
    };
    let html = match ctx.ch.step {
        Step::Verify => {
            // A passkey first, where the role's methods count them and the user has one.
            let options = if ctx.ch.methods.webauthn {
                crate::web::passkey::sign_in_options(gw, bound).await?
            } else {
                None
            };
            pages::verify_page(&pages::VerifyView {
                lang: ctx.lang,
                branding: &gw.branding,
                account: &ctx.ch.user,
                form_action: &gw.paths.verify,
                csrf: &csrf,
                error,
                remember_days: crate::mfa::remember::days_for(gw, &ctx.ch.role, ctx.now),
                passkey: options.as_deref(),
                passkey_refused: refused,
                app_codes: ctx.ch.takes_app_codes(),
            })
        }
        Step::Passkey => {
            let options = crate::web::passkey::register_options(gw, bound).await?;
            pages::passkey_setup_page(&pages::PasskeySetupView {
                lang: ctx.lang,
                branding: &gw.branding,
                account: &ctx.ch.user,
                options: &options,
                form_action: &gw.paths.passkey,
                csrf: &csrf,
                required: ctx.ch.state == "enforced",
                can_postpone: ctx.ch.can_postpone,
                refused,
                back: None,
            })
        }
        // The code step's page as it is with a form (a failed CSRF check); its other states
        // are rendered by `enrollment_code_page`, which asks the store.
        Step::EnrollmentCode => pages::enrollment_code_page(&pages::EnrollmentCodeView {
            lang: ctx.lang,
            branding: &gw.branding,
            account: &ctx.ch.user,
            form_action: &gw.paths.enrollment_code,
            csrf: &csrf,
            error,
            state: pages::EnrollmentCodeState::Pending,
            cancel: (ctx.ch.state != "enforced").then_some(pages::Cancel::Form),
        }),
        Step::Offer => pages::offer_page(&pages::OfferView {
            lang: ctx.lang,
            branding: &gw.branding,
            form_action: &gw.paths.offer,
            csrf: &csrf,
            quiet_days: gw.cfg.mfa.offer_quiet_period.as_secs().div_ceil(86_400),
        }),
        Step::Recovery => pages::recovery_codes_page(&pages::RecoveryCodesView {
            lang: ctx.lang,
            branding: &gw.branding,
            account: &ctx.ch.user,
            codes: ctx.ch.recovery_codes.as_deref().unwrap_or_default(),
            form_action: &gw.paths.recovery,
            csrf: &csrf,
            to_settings: true,
        }),
        Step::Notice => pages::notice_page(&pages::NoticeView {
            lang: ctx.lang,
            branding: &gw.branding,
            kind: pages::NoticeKind::RecoveryCodeUsed {
                remaining: ctx.ch.recovery_remaining.unwrap_or(0),
            },
            form_action: &gw.paths.notice,
            csrf: &csrf,
            to_settings: true,
        }),
        Step::Enroll => {
            let secret = pending_secret(ctx.ch.pending_secret.as_deref())?;
            let required = ctx.ch.state == "enforced";
            enroll_html(
                gw,
                ctx.lang,
                &ctx.ch.user,
                &secret,
                &gw.paths.enroll,
                &csrf,
                error,
                EnrollOpts {
                    required,
                    can_postpone: ctx.ch.can_postpone,
                    replaced: ctx.ch.pending_replaced,
                    minutes: Some(ctx.ch.expires.saturating_sub(ctx.ch.created).div_ceil(60)),
                    // Opt-in: the user may change their mind.
                    cancel: (!required).then_some(pages::Cancel::Form),
                },
            )?
        }
    };
    Ok(html_page(status, html))
}

/// What an enrollment page offers besides the pairing itself.
pub struct EnrollOpts<'a> {
    /// The role must use MFA.
    pub required: bool,
    /// "Not now" is offered.
    pub can_postpone: bool,
    /// The secret replaces one shown earlier and never confirmed.
    pub replaced: bool,
    /// In a sign-in: the minutes the page stays open.
    pub minutes: Option<u64>,
    pub cancel: Option<pages::Cancel<'a>>,
}

/// The enrollment page for a secret (also used by self-service).
#[allow(clippy::too_many_arguments)]
pub fn enroll_html(
    gw: &Gateway,
    lang: Lang,
    user: &str,
    secret: &[u8],
    action: &str,
    csrf: &str,
    error: Option<FormError>,
    opts: EnrollOpts<'_>,
) -> Result<String, GatewayError> {
    let uri = totp::otpauth_uri(&gw.cfg.mfa.issuer, user, secret)
        .map_err(|e| InternalError::Other(format!("otpauth uri: {e}")))?;
    let pairing = totp::pairing_code(secret);
    Ok(pages::enroll_page(&pages::EnrollView {
        lang,
        branding: &gw.branding,
        account: user,
        issuer: &gw.cfg.mfa.issuer,
        otpauth_uri: &uri,
        pairing_code: &pairing,
        form_action: action,
        csrf,
        error,
        required: opts.required,
        can_postpone: opts.can_postpone,
        replaced: opts.replaced,
        minutes: opts.minutes,
        cancel: opts.cancel,
    }))
}

/// Decodes a pending secret kept (sealed) in a challenge or self-service record.
pub fn pending_secret(s: Option<&str>) -> Result<zeroize::Zeroizing<Vec<u8>>, GatewayError> {
    let s = s.ok_or_else(|| InternalError::Other("enrollment without secret".into()))?;
    B64.decode(s)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| InternalError::Other("bad pending secret".into()).into())
}

/// The form error to show for a failed check, and its status.
pub fn check_error(c: Check) -> (FormError, StatusCode) {
    match c {
        Check::Locked { minutes } => (FormError::Locked { minutes }, StatusCode::TOO_MANY_REQUESTS),
        Check::Format => (FormError::CodeFormat, StatusCode::OK),
        Check::WrongLeft { left } => (FormError::WrongCodeLeft { left }, StatusCode::OK),
        Check::NonePending => (FormError::Expired, StatusCode::OK),
        _ => (FormError::WrongCode, StatusCode::OK),
    }
}

async fn verify(ctx: Ctx<'_>, form: &Form) -> Result<(Response<Body>, Outcome), GatewayError> {
    let input = form.get("code").unwrap_or("");
    if !ctx.ch.takes_app_codes()
        && crate::auth::recovery::normalize(input).is_none()
        && totp::normalize_code(input).is_some()
    {
        // The role signs in with a passkey now: an app's code is not checked (nor counted).
        let e = FormError::AppCodeNotAccepted;
        return Ok((
            show(&ctx, Some(e), StatusCode::OK).await?,
            Outcome::Rejected,
        ));
    }
    let check = codes::check_enrolled(ctx.gw, ctx.who(), input, true).await?;
    match check {
        Check::Accepted { .. } => {
            let remember = form.get(pages::REMEMBER_FIELD) == Some(pages::REMEMBER_VALUE)
                && ctx.ch.methods.totp;
            let (gw, request, now, addr) = (ctx.gw, ctx.request, ctx.now, ctx.addr.clone());
            let (user, role, epoch) = (ctx.ch.user.clone(), ctx.ch.role.clone(), ctx.ch.epoch);
            let mut answer = finish(ctx, true).await?;
            if remember && answer.1 == Outcome::Proxied {
                let who = Who {
                    user: &user,
                    addr: &addr,
                    now,
                };
                if let Some(c) = remember_browser(gw, who, &role, epoch, request).await {
                    answer.0.headers_mut().append(SET_COOKIE, c);
                }
            }
            Ok(answer)
        }
        Check::RecoveryAccepted { remaining } => {
            let ch = Challenge {
                step: Step::Notice,
                recovery_remaining: Some(remaining),
                ..ctx.ch.clone()
            };
            next_step(&ctx, ch).await
        }
        // Disconnected (MSP reset) while the challenge was open: start over.
        Check::NotEnrolled => Ok((expired(ctx.gw, ctx.lang), Outcome::Rejected)),
        other => {
            let (e, status) = check_error(other);
            Ok((show(&ctx, Some(e), status).await?, Outcome::Rejected))
        }
    }
}

/// Remembers the browser after a right code with the box ticked, if the policy still allows
/// it for the role: the cookie to set, audited as `browser_remembered`. `None` (nothing
/// remembered, the sign-in goes on) when it does not apply or the store refused or failed.
async fn remember_browser(
    gw: &Gateway,
    who: Who<'_>,
    role: &str,
    epoch: u64,
    request: &http::HeaderMap,
) -> Option<http::HeaderValue> {
    let days = crate::mfa::remember::days_for(gw, role, who.now);
    if days == 0 {
        return None;
    }
    match crate::mfa::remember::remember(gw, who.user, epoch, request, days, who.now).await {
        Ok(Some((cookie, rec))) => {
            gw.audit
                .record(codes::record(who, Event::BrowserRemembered).detail(format!(
                    "browser={} days={days}",
                    crate::mfa::remember::short_id(&rec.id)
                )))
                .await;
            Some(cookie)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(user = %who.user, error = %e, "the browser could not be remembered");
            None
        }
    }
}

async fn enroll(ctx: Ctx<'_>, form: &Form) -> Result<(Response<Body>, Outcome), GatewayError> {
    if leaving(form) {
        return leave(ctx, form).await;
    }
    let gw = ctx.gw;
    let secret = pending_secret(ctx.ch.pending_secret.as_deref())?;
    let step =
        match codes::check_new(gw, ctx.who(), &secret, form.get("code").unwrap_or("")).await? {
            Check::Accepted { step } => step,
            other => {
                let (e, status) = check_error(other);
                return Ok((show(&ctx, Some(e), status).await?, Outcome::Rejected));
            }
        };
    let sealed = codes::seal_secret(gw, &ctx.ch.user, &secret)?;
    let ticket = ctx
        .ch
        .enrollment_ticket
        .as_deref()
        .map(crate::auth::enrollment_code::ticket_hash);
    match gw
        .store
        .enroll(
            &ctx.ch.user,
            &sealed,
            gw.keys.active_id(),
            ctx.now,
            step,
            ticket.as_deref(),
        )
        .await?
    {
        EnrollResult::Enrolled => {}
        // Enrolled meanwhile in another session: that phone is the one; ask for its code.
        EnrollResult::AlreadyEnrolled => return ask_for_code(&ctx).await,
        // Reset (or a new code issued) since this sign-in typed its code: the code first.
        EnrollResult::CodeRequired => return to_enrollment_code(&ctx).await,
    }
    if !crate::web::passkey::has_passkeys(gw, &ctx.ch.user).await? {
        // MFA turned on (a user with passkeys only added the app).
        gw.metrics.mfa(MfaEvent::Enrolled);
    }
    gw.audit
        .record(codes::record(ctx.who(), Event::Enrolled))
        .await;
    if gw.policy.current().recovery_codes() {
        let codes =
            codes::issue_recovery_codes(gw, ctx.who(), ActorKind::User, Some("enrollment")).await?;
        let ch = Challenge {
            step: Step::Recovery,
            pending_secret: None,
            enrollment_ticket: None,
            recovery_codes: Some(codes),
            ..ctx.ch.clone()
        };
        return next_step(&ctx, ch).await;
    }
    finish(ctx, true).await
}

/// Moves the sign-in to the enrollment-code step (forgetting a ticket it may carry).
async fn to_enrollment_code(ctx: &Ctx<'_>) -> Result<(Response<Body>, Outcome), GatewayError> {
    let ch = Challenge {
        step: Step::EnrollmentCode,
        pending_secret: None,
        enrollment_ticket: None,
        ..ctx.ch.clone()
    };
    next_step(ctx, ch).await
}

/// The step that adds the first factor after the enrollment code: the passkey set-up where
/// the role's methods count passkeys only, otherwise the app's pairing.
fn pairing_step(ch: &Challenge) -> Step {
    if !ch.methods.totp && ch.methods.webauthn {
        Step::Passkey
    } else {
        Step::Enroll
    }
}

/// Whether the form leaves the enrollment (or its code step): Cancel (opt-in) or "Not now".
fn leaving(form: &Form) -> bool {
    form.get("action") == Some(pages::FormAction::Cancel.as_str())
        || form.get("action") == Some("postpone")
}

/// Whether this sign-in's pairing needs the one-time enrollment code first: the store
/// requires one, and this challenge does not carry the ticket of the right code typed in it.
async fn needs_enrollment_code(gw: &Gateway, ch: &Challenge) -> Result<bool, GatewayError> {
    let r = gw.store.user(&ch.user).await?;
    let ours = ch
        .enrollment_ticket
        .as_deref()
        .map(crate::auth::enrollment_code::ticket_hash);
    Ok(r.enrollment_code_required() && (ours.is_none() || r.enroll_ticket != ours))
}

/// The enrollment-code page as the store's state has it: the form while a valid code waits,
/// otherwise the way to a new one. A user enrolled meanwhile is asked for a code; one whose
/// code requirement went (a reset without a code) goes on to the pairing.
async fn enrollment_code_page(
    ctx: &Ctx<'_>,
    error: Option<FormError>,
    status: StatusCode,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    let r = gw.store.user(&ctx.ch.user).await?;
    if r.enrolled() {
        return ask_for_code(ctx).await;
    }
    if !r.enrollment_code_required() {
        let ch = Challenge {
            step: pairing_step(&ctx.ch),
            pending_secret: None,
            ..ctx.ch.clone()
        };
        return next_step(ctx, ch).await;
    }
    let state = if r.enrollment_code_valid_until(ctx.now).is_some() {
        pages::EnrollmentCodeState::Pending
    } else if r.enroll_code.is_some() {
        pages::EnrollmentCodeState::Expired
    } else {
        pages::EnrollmentCodeState::NonePending
    };
    let csrf = Csrf::challenge(gw, &ctx.id).token();
    let html = pages::enrollment_code_page(&pages::EnrollmentCodeView {
        lang: ctx.lang,
        branding: &gw.branding,
        account: &ctx.ch.user,
        form_action: &gw.paths.enrollment_code,
        csrf: &csrf,
        error: error.filter(|_| state == pages::EnrollmentCodeState::Pending),
        state,
        cancel: (ctx.ch.state != "enforced").then_some(pages::Cancel::Form),
    });
    let outcome = if error.is_some() || state != pages::EnrollmentCodeState::Pending {
        Outcome::Rejected
    } else {
        Outcome::Gateway
    };
    Ok((html_page(status, html), outcome))
}

/// The one-time enrollment code typed (see `codes::check_enrollment_code`): the right one
/// moves the sign-in on to the pairing with a ticket only it carries.
async fn enrollment_code(
    ctx: Ctx<'_>,
    form: &Form,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    if leaving(form) {
        return leave(ctx, form).await;
    }
    let gw = ctx.gw;
    let ticket = crate::auth::enrollment_code::new_ticket();
    let check = codes::check_enrollment_code(
        gw,
        ctx.who(),
        form.get("code").unwrap_or(""),
        &crate::auth::enrollment_code::ticket_hash(&ticket),
    )
    .await?;
    match check {
        CodeCheck::Accepted => {
            let ch = Challenge {
                step: pairing_step(&ctx.ch),
                pending_secret: None,
                enrollment_ticket: Some(ticket),
                ..ctx.ch.clone()
            };
            next_step(&ctx, ch).await
        }
        CodeCheck::Refused(c) => {
            let (e, status) = check_error(c);
            let (resp, _) = enrollment_code_page(&ctx, Some(e), status).await?;
            Ok((resp, Outcome::Rejected))
        }
        CodeCheck::Expired | CodeCheck::NonePending => {
            let (resp, _) = enrollment_code_page(&ctx, None, StatusCode::OK).await?;
            Ok((resp, Outcome::Rejected))
        }
        CodeCheck::Enrolled => ask_for_code(&ctx).await,
    }
}

/// Cancel (opt-in) or "Not now" (grace) at the enrollment or its code step.
async fn leave(ctx: Ctx<'_>, form: &Form) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    if form.get("action") == Some(pages::FormAction::Cancel.as_str()) {
        // Opt-in only: a required role's enrollment has no way out but "Not now" in grace.
        if ctx.ch.state == "enforced" {
            return Err(ClientError::Forbidden.into());
        }
        return decline(ctx).await;
    }
    if form.get("action") == Some("postpone") {
        if !ctx.ch.can_postpone {
            return Err(ClientError::Forbidden.into());
        }
        // Decided by the store in one step: a user who enrolled meanwhile (in another session)
        // can no longer skip the code with a challenge opened before.
        let Some(n) = gw.store.postpone_if_unenrolled(&ctx.ch.user).await? else {
            return ask_for_code(&ctx).await;
        };
        gw.metrics.mfa(MfaEvent::Postponed);
        gw.audit
            .record(
                codes::record(ctx.who(), Event::EnrollmentPostponed)
                    .detail(format!("postponed={n}")),
            )
            .await;
        return finish(ctx, false).await;
    }
    Err(ClientError::BadRequest("unknown action").into())
}

async fn offer(ctx: Ctx<'_>, form: &Form) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    match form.get("action") {
        Some("setup") => {
            let passkey = !ctx.ch.methods.totp && ctx.ch.methods.webauthn;
            let ch = Challenge {
                step: if passkey { Step::Passkey } else { Step::Enroll },
                // Taken when the page is shown (see `handle`).
                pending_secret: None,
                // The enrollment step's own, longer time.
                expires: ctx.now + gw.cfg.mfa.enrollment_ttl.as_secs(),
                ..ctx.ch.clone()
            };
            next_step(&ctx, ch).await
        }
        Some("postpone") => decline(ctx).await,
        _ => Err(ClientError::BadRequest("unknown action").into()),
    }
}

/// "Not now" at an offer, or Cancel at the opt-in enrollment it led to: noted (the offer then
/// stays away for `mfa.offer_quiet_period`) only while the user is still not enrolled.
async fn decline(ctx: Ctx<'_>) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    if !gw
        .store
        .decline_if_unenrolled(&ctx.ch.user, ctx.now)
        .await?
    {
        return ask_for_code(&ctx).await;
    }
    gw.audit
        .record(codes::record(ctx.who(), Event::OfferDeclined))
        .await;
    finish(ctx, false).await
}

/// The user turned out to be enrolled (meanwhile, in another session): this challenge asks
/// for a code from that phone instead of honouring a "not now" or a pairing.
async fn ask_for_code(ctx: &Ctx<'_>) -> Result<(Response<Body>, Outcome), GatewayError> {
    let ch = Challenge {
        step: Step::Verify,
        pending_secret: None,
        ..ctx.ch.clone()
    };
    next_step(ctx, ch).await
}

/// Moves the challenge on to another page.
async fn next_step(
    ctx: &Ctx<'_>,
    ch: Challenge,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    let blob = ch
        .seal(&gw.keys, &ctx.id)
        .map_err(|e| InternalError::Crypto(e.to_string()))?;
    // A step with another deadline (the enrollment after an offer) moves the store's expiry,
    // and the withheld VMS session's, with it; otherwise the expiry stays.
    let extend = (ch.expires != ctx.ch.expires)
        .then(|| std::time::Duration::from_secs(ch.expires.saturating_sub(ctx.now).max(1)));
    if let (Some(_), Some(member)) = (extend, ch.pending_member.as_deref()) {
        gw.store.pending_add(member, ch.expires).await?;
    }
    if !gw.store.replace_challenge(&ctx.key, &blob, extend).await? {
        return Ok((expired(gw, ctx.lang), Outcome::Rejected));
    }
    Ok((
        redirect(crate::mfa::challenge::step_path(gw, ch.step)),
        Outcome::Gateway,
    ))
}

/// Claims the challenge (exactly once across instances) and releases the VMS response.
async fn finish(ctx: Ctx<'_>, mfa_passed: bool) -> Result<(Response<Body>, Outcome), GatewayError> {
    finish_to(ctx, mfa_passed, None).await
}

/// [`finish`]; with `to`, the VMS response's cookies (its session, and the approval) are
/// released on a `303` to that page of the gateway instead of the VMS response itself.
async fn finish_to(
    ctx: Ctx<'_>,
    mfa_passed: bool,
    to: Option<&str>,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    if !gw.store.take_challenge(&ctx.key).await? {
        return Ok((expired(gw, ctx.lang), Outcome::Rejected));
    }
    crate::mfa::sweeper::forget(gw, ctx.ch.pending_member.as_deref()).await;
    let mut resp = crate::proxy::login::release_after_step(gw, &ctx.ch, mfa_passed, ctx.now)?;
    if let Some(to) = to {
        let mut r = redirect(to);
        for c in resp.headers().get_all(SET_COOKIE) {
            r.headers_mut().append(SET_COOKIE, c.clone());
        }
        resp = r;
    }
    resp.headers_mut()
        .append(SET_COOKIE, cookies::clear_gateway_cookie(CHALLENGE_COOKIE));
    Ok((resp, Outcome::Proxied))
}

/// "Sign in with a passkey" on the code page: the browser's answer, checked against the
/// ceremony this page started.
async fn passkey_sign_in(
    ctx: Ctx<'_>,
    form: &Form,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    if !ctx.ch.methods.webauthn {
        return Err(ClientError::Forbidden.into());
    }
    let key = crate::web::passkey::sign_in_key(&ctx.key);
    let bound = crate::web::passkey::Bound {
        key: &key,
        user: &ctx.ch.user,
        addr: &ctx.addr,
        now: ctx.now,
    };
    let answer = form.get(pages::CREDENTIAL_FIELD).unwrap_or("");
    if crate::web::passkey::sign_in(gw, bound, answer).await? {
        gw.metrics.mfa(MfaEvent::VerifySuccess);
        gw.sign_ins.note(ctx.now, &ctx.ch.user, &ctx.addr);
        return finish(ctx, true).await;
    }
    gw.metrics.mfa(MfaEvent::VerifyFailure);
    Ok((
        show_with(&ctx, None, true, StatusCode::OK).await?,
        Outcome::Rejected,
    ))
}

/// The passkey set-up of a sign-in: the browser's answer ("create passkey"), or "not now"
/// within the phase's grace.
async fn passkey_setup(
    ctx: Ctx<'_>,
    form: &Form,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    match form.get("action") {
        Some("postpone") => {
            if !ctx.ch.can_postpone {
                return Err(ClientError::Forbidden.into());
            }
            // Decided by the store in one step: a passkey set up meanwhile (another session)
            // is asked for instead.
            let Some(n) = gw.store.postpone_unless_passkey(&ctx.ch.user).await? else {
                return ask_for_code(&ctx).await;
            };
            gw.metrics.mfa(MfaEvent::Postponed);
            gw.audit
                .record(
                    codes::record(ctx.who(), Event::EnrollmentPostponed)
                        .detail(format!("postponed={n} method=passkey")),
                )
                .await;
            if gw.store.user(&ctx.ch.user).await?.enrolled() {
                // The app's code, this once: still a second factor.
                let ch = Challenge {
                    step: Step::Verify,
                    code_in_grace: true,
                    ..ctx.ch.clone()
                };
                return next_step(&ctx, ch).await;
            }
            finish(ctx, false).await
        }
        Some(pages::REGISTER_ACTION) => {
            let key = crate::web::passkey::sign_in_key(&ctx.key);
            let bound = crate::web::passkey::Bound {
                key: &key,
                user: &ctx.ch.user,
                addr: &ctx.addr,
                now: ctx.now,
            };
            let answer = form.get(pages::CREDENTIAL_FIELD).unwrap_or("");
            let name = form.get(pages::NAME_FIELD).unwrap_or("");
            match crate::web::passkey::register(
                gw,
                bound,
                answer,
                name,
                ctx.lang,
                ctx.ch.epoch,
                ctx.ch.enrollment_ticket.as_deref(),
            )
            .await?
            {
                crate::web::passkey::Registered::Added => {}
                crate::web::passkey::Registered::Refused => {
                    return Ok((
                        show_with(&ctx, None, true, StatusCode::OK).await?,
                        Outcome::Rejected,
                    ));
                }
                // Reset meanwhile: the sign-in starts over.
                crate::web::passkey::Registered::Revoked => {
                    return Ok((expired(gw, ctx.lang), Outcome::Rejected));
                }
                // A new enrollment code since this sign-in typed its code: the code first.
                crate::web::passkey::Registered::CodeRequired => {
                    return to_enrollment_code(&ctx).await;
                }
            }
            let record = gw.store.user(&ctx.ch.user).await?;
            if !record.enrolled() {
                // MFA turned on (a user with the app only added a method).
                gw.metrics.mfa(MfaEvent::Enrolled);
            }
            // Recovery codes, as at an app's set-up, when the user has none yet.
            if gw.policy.current().recovery_codes() && record.recovery.is_empty() {
                let codes =
                    codes::issue_recovery_codes(gw, ctx.who(), ActorKind::User, Some("passkey"))
                        .await?;
                let ch = Challenge {
                    step: Step::Recovery,
                    recovery_codes: Some(codes),
                    ..ctx.ch.clone()
                };
                return next_step(&ctx, ch).await;
            }
            finish(ctx, true).await
        }
        _ => Err(ClientError::BadRequest("unknown action").into()),
    }
}
