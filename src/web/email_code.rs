//! The enrollment page's first step under `mfa.first_enrollment = "email_code"` (see
//! `mfa::email_code`): on the enrollment route (an app's or a passkey's), while the sign-in's
//! e-mailed code is not confirmed, this page is shown instead of the QR code or the passkey
//! set-up. The first visit mails a code (once
//! per sign-in; "send a new code" sends another, within the limit); a right code marks the
//! challenge confirmed and sends the browser back to the enrollment page, which then shows
//! the QR code. "Not now" and "Cancel" are the enrollment's own (handed back to it).

use http::{Response, StatusCode};
use hyper::body::Incoming;

use crate::error::{GatewayError, InternalError};
use crate::gateway::Gateway;
use crate::http::body::Body;
use crate::http::html_page;
use crate::metrics::Outcome;
use crate::mfa::challenge::{Challenge, EmailCheck};
use crate::mfa::codes::{self, Check, Who};
use crate::mfa::email_code::{self, CODE_TTL, Sent};
use crate::pages::{self, EmailNotice, FormAction, FormError, Lang};
use crate::web::extract::{Csrf, Form};
use crate::web::redirect;

/// The sign-in this step belongs to.
pub struct Step<'a> {
    pub gw: &'a Gateway,
    pub lang: Lang,
    /// The challenge id (the cookie's) and its store key.
    pub id: &'a str,
    pub key: &'a str,
    pub ch: &'a Challenge,
    pub now: u64,
    pub addr: &'a str,
}

/// What the step did.
pub enum Answer {
    Page(Response<Body>, Outcome),
    /// A form of the enrollment itself ("Not now", "Cancel"): for it to handle.
    Enrollment(Form),
    /// The challenge is gone.
    Expired,
}

/// Handles a request to the enrollment route while the e-mailed code is pending.
pub async fn handle(s: &Step<'_>, post: bool, body: Incoming) -> Result<Answer, GatewayError> {
    let gw = s.gw;
    let mut check = s.ch.email_check.unwrap_or_default();
    if !post {
        let mut notice = None;
        let mut to = None;
        if !check.sent {
            match email_code::send(gw, &s.ch.user, s.now).await? {
                Sent::NoAddress => return Ok(no_address(s)),
                Sent::Sent { to: t } => to = Some(t),
                Sent::Limit { to: t } => {
                    to = Some(t);
                    notice = Some(EmailNotice::Limit);
                }
            }
            check.sent = true;
            if !save(s, check).await? {
                return Ok(Answer::Expired);
            }
        }
        let to = match to {
            Some(t) => t,
            None => match address(s).await? {
                Some(t) => t,
                None => return Ok(no_address(s)),
            },
        };
        return Ok(page(s, &to, None, notice, StatusCode::OK));
    }
    let form = Form::read(body).await?;
    let Some(to) = address(s).await? else {
        return Ok(no_address(s));
    };
    if Csrf::challenge(gw, s.id).check(&form).is_err() {
        return Ok(page(
            s,
            &to,
            Some(FormError::CsrfInvalid),
            None,
            StatusCode::FORBIDDEN,
        ));
    }
    match form.get("action").and_then(FormAction::parse) {
        Some(FormAction::Postpone | FormAction::Cancel) => return Ok(Answer::Enrollment(form)),
        Some(FormAction::SendAgain) => {
            let notice = match email_code::send(gw, &s.ch.user, s.now).await? {
                Sent::NoAddress => return Ok(no_address(s)),
                Sent::Sent { .. } => EmailNotice::SentAgain,
                Sent::Limit { .. } => EmailNotice::Limit,
            };
            return Ok(page(s, &to, None, Some(notice), StatusCode::OK));
        }
        _ => {}
    }
    let who = Who {
        user: &s.ch.user,
        addr: s.addr,
        now: s.now,
    };
    match codes::check_email_code(gw, who, form.get("code").unwrap_or("")).await? {
        Check::Accepted { .. } => {
            tracing::info!(user = %s.ch.user, "e-mailed enrollment code confirmed");
            check.confirmed = true;
            if !save(s, check).await? {
                return Ok(Answer::Expired);
            }
            Ok(Answer::Page(
                redirect(crate::mfa::challenge::step_path(gw, s.ch.step)),
                Outcome::Gateway,
            ))
        }
        other => {
            let (e, status) = crate::web::flow::check_error(other);
            Ok(Answer::Page(
                page_response(s, &to, Some(e), None, status),
                Outcome::Rejected,
            ))
        }
    }
}

/// The masked address of the user, if one is known.
async fn address(s: &Step<'_>) -> Result<Option<String>, GatewayError> {
    Ok(s.gw
        .store
        .contact(&s.ch.user)
        .await?
        .email
        .map(|a| email_code::mask(&a)))
}

/// Keeps the code's state in the challenge (its expiry unchanged); false if it is gone.
async fn save(s: &Step<'_>, check: EmailCheck) -> Result<bool, GatewayError> {
    let ch = Challenge {
        email_check: Some(check),
        ..s.ch.clone()
    };
    let blob = ch
        .seal(&s.gw.keys, s.id)
        .map_err(|e| InternalError::Crypto(e.to_string()))?;
    Ok(s.gw.store.replace_challenge(s.key, &blob, None).await?)
}

fn no_address(s: &Step<'_>) -> Answer {
    tracing::warn!(user = %s.ch.user, "first enrollment refused: no e-mail address is known for the user (mfa.first_enrollment = \"email_code\")");
    Answer::Page(
        html_page(
            StatusCode::FORBIDDEN,
            pages::email_unknown_page(s.lang, &s.gw.branding),
        ),
        Outcome::Rejected,
    )
}

fn page(
    s: &Step<'_>,
    to: &str,
    error: Option<FormError>,
    notice: Option<EmailNotice>,
    status: StatusCode,
) -> Answer {
    let outcome = if status.is_success() {
        Outcome::Gateway
    } else {
        Outcome::Rejected
    };
    Answer::Page(page_response(s, to, error, notice, status), outcome)
}

fn page_response(
    s: &Step<'_>,
    to: &str,
    error: Option<FormError>,
    notice: Option<EmailNotice>,
    status: StatusCode,
) -> Response<Body> {
    let csrf = Csrf::challenge(s.gw, s.id).token();
    html_page(
        status,
        pages::email_code_page(&pages::EmailCodeView {
            lang: s.lang,
            branding: &s.gw.branding,
            address: to,
            form_action: crate::mfa::challenge::step_path(s.gw, s.ch.step),
            csrf: &csrf,
            error,
            notice,
            minutes: CODE_TTL.as_secs() / 60,
            can_postpone: s.ch.can_postpone,
            can_cancel: s.ch.state != "enforced"
                && s.ch.step == crate::mfa::challenge::Step::Enroll,
        }),
    )
}
