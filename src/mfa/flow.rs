//! The MFA pages: code challenge, enrollment and the optional offer.
//!
//! Every request here must carry the challenge cookie of a live challenge; every POST must
//! carry the CSRF token bound to that challenge. A correct code (or the choices that allow it:
//! "not now" where the policy permits) releases the withheld VMS response exactly as the VMS
//! sent it, with the approval cookie added.
//!
//! Failed codes count per user (across sessions, challenges and instances) and per client
//! address; at the limit the MFA step locks (the VMS password is not affected), and each
//! further lock of the same user doubles in length, up to a day.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::header::{self, HeaderValue, LOCATION, SET_COOKIE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::challenge::{self, Challenge, Step};
use super::cookies::{self, CHALLENGE_COOKIE};
use crate::auth::crypto::Purpose;
use crate::auth::totp;
use crate::body::{Body, CollectError, collect_limited};
use crate::error::{ClientError, GatewayError, InternalError};
use crate::gateway::Gateway;
use crate::metrics::{MfaEvent, Outcome};
use crate::pages::{self, FormError, Lang};
use crate::proxy::{ConnInfo, headers, html_page};
use crate::store::Limits;

/// Forms on these pages are tiny; anything larger is refused.
const MAX_FORM_BYTES: usize = 4096;

struct Ctx<'a> {
    gw: &'a Gateway,
    lang: Lang,
    id: String,
    key: String,
    ch: Challenge,
    now: u64,
    addr: String,
}

pub async fn handle(
    gw: &Gateway,
    req: Request<Incoming>,
    conn: ConnInfo,
    lang: Lang,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let now = gw.clock.unix();
    let addr = headers::client_ip(
        req.headers(),
        conn.peer.ip(),
        &gw.cfg.server.trusted_proxies,
    )
    .to_string();
    let Some(id) = cookies::request_cookie(req.headers(), CHALLENGE_COOKIE).map(str::to_string)
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
    if ch.expires <= now || ch.client.as_ref().is_some_and(|c| *c != addr) {
        return Ok((expired(gw, lang), Outcome::Rejected));
    }
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let ctx = Ctx {
        gw,
        lang,
        id,
        key,
        ch,
        now,
        addr,
    };
    let page_step = if path == gw.paths.verify {
        Step::Verify
    } else if path == gw.paths.enroll {
        Step::Enroll
    } else if path == gw.paths.offer {
        Step::Offer
    } else {
        return Err(ClientError::NotFound.into());
    };
    if page_step != ctx.ch.step {
        // The page of another step (back button, bookmark): go to the right one.
        return Ok((redirect(step_path(gw, ctx.ch.step)), Outcome::Gateway));
    }
    match method {
        Method::GET | Method::HEAD => Ok((show(&ctx, None, StatusCode::OK)?, Outcome::Gateway)),
        Method::POST => {
            let form = read_form(req).await?;
            if !form
                .get("csrf")
                .is_some_and(|t| challenge::csrf_ok(&gw.keys, &ctx.id, t))
            {
                return Ok((
                    show(&ctx, Some(FormError::CsrfInvalid), StatusCode::FORBIDDEN)?,
                    Outcome::Rejected,
                ));
            }
            match ctx.ch.step {
                Step::Verify => verify(ctx, &form).await,
                Step::Enroll => enroll(ctx, &form).await,
                Step::Offer => offer(ctx, &form).await,
            }
        }
        _ => Err(ClientError::MethodNotAllowed.into()),
    }
}

#[derive(Debug, Default)]
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

async fn read_form(req: Request<Incoming>) -> Result<Form, GatewayError> {
    let body = collect_limited(req.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|e| match e {
            CollectError::TooLarge => ClientError::PayloadTooLarge,
            CollectError::Io(_) => ClientError::BadRequest("form could not be read"),
        })?;
    Ok(Form(
        form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    ))
}

fn step_path(gw: &Gateway, s: Step) -> &str {
    match s {
        Step::Verify => &gw.paths.verify,
        Step::Enroll => &gw.paths.enroll,
        Step::Offer => &gw.paths.offer,
    }
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn expired(gw: &Gateway, lang: Lang) -> Response<Body> {
    let mut r = gw.page_response(pages::ErrorPage::ChallengeExpired, lang);
    r.headers_mut()
        .append(SET_COOKIE, cookies::clear_gateway_cookie(CHALLENGE_COOKIE));
    r
}

/// Renders the page of the current step.
fn show(
    ctx: &Ctx<'_>,
    error: Option<FormError>,
    status: StatusCode,
) -> Result<Response<Body>, GatewayError> {
    let gw = ctx.gw;
    let csrf = challenge::csrf_token(&gw.keys, &ctx.id);
    let html = match ctx.ch.step {
        Step::Verify => pages::verify_page(&pages::VerifyView {
            lang: ctx.lang,
            branding: &gw.branding,
            account: &ctx.ch.user,
            form_action: &gw.paths.verify,
            csrf: &csrf,
            error,
        }),
        Step::Offer => pages::offer_page(&pages::OfferView {
            lang: ctx.lang,
            branding: &gw.branding,
            form_action: &gw.paths.offer,
            csrf: &csrf,
        }),
        Step::Enroll => {
            let secret = pending_secret(&ctx.ch)?;
            let uri = totp::otpauth_uri(&gw.cfg.mfa.issuer, &ctx.ch.user, &secret)
                .map_err(|e| InternalError::Other(format!("otpauth uri: {e}")))?;
            let pairing = totp::pairing_code(&secret);
            pages::enroll_page(&pages::EnrollView {
                lang: ctx.lang,
                branding: &gw.branding,
                account: &ctx.ch.user,
                issuer: &gw.cfg.mfa.issuer,
                otpauth_uri: &uri,
                pairing_code: &pairing,
                form_action: &gw.paths.enroll,
                csrf: &csrf,
                error,
                required: ctx.ch.state == "enforced",
                can_postpone: ctx.ch.can_postpone,
            })
        }
    };
    Ok(html_page(status, html))
}

fn pending_secret(ch: &Challenge) -> Result<zeroize::Zeroizing<Vec<u8>>, GatewayError> {
    let s = ch
        .pending_secret
        .as_deref()
        .ok_or_else(|| InternalError::Other("enrollment without secret".into()))?;
    B64.decode(s)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| InternalError::Other("bad pending secret".into()).into())
}

fn limits(gw: &Gateway) -> Limits {
    Limits {
        max_failures: gw.cfg.mfa.max_failures,
        lock: gw.cfg.mfa.lock_duration,
        max_failures_per_address: gw.cfg.mfa.max_failures_per_address,
    }
}

fn minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

/// Checks the lock; `Some(page)` when locked.
async fn refuse_if_locked(ctx: &Ctx<'_>) -> Result<Option<Response<Body>>, GatewayError> {
    if let Some(rem) = ctx.gw.store.locked(&ctx.ch.user, &ctx.addr).await? {
        return Ok(Some(show(
            ctx,
            Some(FormError::Locked {
                minutes: minutes(rem),
            }),
            StatusCode::TOO_MANY_REQUESTS,
        )?));
    }
    Ok(None)
}

/// Counts a failed attempt and renders the answer.
async fn failed(ctx: &Ctx<'_>, event: MfaEvent) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    gw.metrics.mfa(event);
    let outcome = gw
        .store
        .record_failure(&ctx.ch.user, &ctx.addr, limits(gw))
        .await?;
    tracing::info!(user = %ctx.ch.user, failures = outcome.user_failures, locked = outcome.locked_for.is_some(), "MFA code rejected");
    if let Some(d) = outcome.locked_for {
        gw.metrics.mfa(MfaEvent::Locked);
        tracing::warn!(user = %ctx.ch.user, minutes = minutes(d), "MFA step locked after repeated failures");
        return Ok((
            show(
                ctx,
                Some(FormError::Locked {
                    minutes: minutes(d),
                }),
                StatusCode::TOO_MANY_REQUESTS,
            )?,
            Outcome::Rejected,
        ));
    }
    Ok((
        show(ctx, Some(FormError::WrongCode), StatusCode::OK)?,
        Outcome::Rejected,
    ))
}

async fn verify(ctx: Ctx<'_>, form: &Form) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    let Some(code) = form.get("code").and_then(totp::normalize_code) else {
        return Ok((
            show(&ctx, Some(FormError::CodeFormat), StatusCode::OK)?,
            Outcome::Rejected,
        ));
    };
    if let Some(r) = refuse_if_locked(&ctx).await? {
        return Ok((r, Outcome::Rejected));
    }
    let record = gw.store.user(&ctx.ch.user).await?;
    let Some(sealed) = record.secret else {
        // Disconnected (MSP reset) while the challenge was open: start over.
        return Ok((expired(gw, ctx.lang), Outcome::Rejected));
    };
    let secret = gw
        .keys
        .open(Purpose::TotpSecret, ctx.ch.user.as_bytes(), &sealed)
        .map_err(|e| InternalError::Crypto(format!("secret of a user does not open: {e}")))?;
    match totp::verify(&secret, &code, ctx.now, gw.cfg.mfa.window) {
        None => failed(&ctx, MfaEvent::VerifyFailure).await,
        Some(step) => {
            if !gw.store.accept_step(&ctx.ch.user, step, ctx.now).await? {
                return failed(&ctx, MfaEvent::Replay).await;
            }
            gw.store.clear_failures(&ctx.ch.user).await?;
            gw.metrics.mfa(MfaEvent::VerifySuccess);
            tracing::info!(user = %ctx.ch.user, "MFA code accepted");
            finish(ctx, true).await
        }
    }
}

async fn enroll(ctx: Ctx<'_>, form: &Form) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    if form.get("action") == Some("postpone") {
        if !ctx.ch.can_postpone {
            return Err(ClientError::Forbidden.into());
        }
        let n = gw.store.incr_postponed(&ctx.ch.user).await?;
        gw.metrics.mfa(MfaEvent::Postponed);
        tracing::info!(user = %ctx.ch.user, postponed = n, "MFA enrollment postponed within grace");
        return finish(ctx, false).await;
    }
    let Some(code) = form.get("code").and_then(totp::normalize_code) else {
        return Ok((
            show(&ctx, Some(FormError::CodeFormat), StatusCode::OK)?,
            Outcome::Rejected,
        ));
    };
    if let Some(r) = refuse_if_locked(&ctx).await? {
        return Ok((r, Outcome::Rejected));
    }
    let secret = pending_secret(&ctx.ch)?;
    let Some(step) = totp::verify(&secret, &code, ctx.now, gw.cfg.mfa.window) else {
        return failed(&ctx, MfaEvent::VerifyFailure).await;
    };
    let sealed = gw
        .keys
        .seal(Purpose::TotpSecret, ctx.ch.user.as_bytes(), &secret)
        .map_err(|e| InternalError::Crypto(e.to_string()))?;
    if !gw
        .store
        .enroll(&ctx.ch.user, &sealed, gw.keys.active_id(), ctx.now, step)
        .await?
    {
        // Enrolled meanwhile in another session: that phone is the one; ask for its code.
        let ch = Challenge {
            step: Step::Verify,
            pending_secret: None,
            ..ctx.ch.clone()
        };
        let blob = ch
            .seal(&gw.keys, &ctx.id)
            .map_err(|e| InternalError::Crypto(e.to_string()))?;
        gw.store.replace_challenge(&ctx.key, &blob).await?;
        return Ok((redirect(&gw.paths.verify), Outcome::Gateway));
    }
    gw.store.clear_failures(&ctx.ch.user).await?;
    gw.metrics.mfa(MfaEvent::Enrolled);
    tracing::info!(user = %ctx.ch.user, "MFA enrollment confirmed");
    finish(ctx, true).await
}

async fn offer(ctx: Ctx<'_>, form: &Form) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    match form.get("action") {
        Some("setup") => {
            let ch = Challenge {
                step: Step::Enroll,
                pending_secret: Some(super::login::new_secret_b64()),
                ..ctx.ch.clone()
            };
            let blob = ch
                .seal(&gw.keys, &ctx.id)
                .map_err(|e| InternalError::Crypto(e.to_string()))?;
            if !gw.store.replace_challenge(&ctx.key, &blob).await? {
                return Ok((expired(gw, ctx.lang), Outcome::Rejected));
            }
            Ok((redirect(&gw.paths.enroll), Outcome::Gateway))
        }
        Some("postpone") => {
            gw.store.set_offer_declined(&ctx.ch.user, ctx.now).await?;
            finish(ctx, false).await
        }
        _ => Err(ClientError::BadRequest("unknown action").into()),
    }
}

/// Claims the challenge (exactly once across instances) and releases the VMS response.
async fn finish(ctx: Ctx<'_>, mfa_passed: bool) -> Result<(Response<Body>, Outcome), GatewayError> {
    let gw = ctx.gw;
    if !gw.store.take_challenge(&ctx.key).await? {
        return Ok((expired(gw, ctx.lang), Outcome::Rejected));
    }
    super::sweeper::forget(gw, ctx.ch.pending_member.as_deref()).await;
    let mut resp = super::login::release(gw, &ctx.ch, mfa_passed, ctx.now)?;
    resp.headers_mut()
        .append(SET_COOKIE, cookies::clear_gateway_cookie(CHALLENGE_COOKIE));
    Ok((resp, Outcome::Proxied))
}
