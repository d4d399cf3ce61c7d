//! Self-service for every signed-in user, under `<prefix>account`.
//!
//! * see one's own MFA state;
//! * replace the phone: a current code from the old app first, then pairing the new one
//!   (shown like an enrollment; the old secret stays in force until the new one is confirmed);
//! * new recovery codes (needs a current code; the old ones stop working);
//! * turn MFA off, only where the role's policy today is not `enforced` (needs a current code);
//! * set MFA up, where it is offered and not yet set up.
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
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use super::approval::Approval;
use super::codes::{self, Check, Who};
use super::flow::{EnrollOpts, check_error, enroll_html, pending_secret, read_form, redirect};
use crate::admin::web::{fmt_time, session_csrf, session_csrf_ok, signed_in};
use crate::audit::{ActorKind, Event};
use crate::auth::crypto::Purpose;
use crate::body::Body;
use crate::error::{ClientError, GatewayError, InternalError};
use crate::gateway::Gateway;
use crate::metrics::{MfaEvent, Outcome};
use crate::pages::{self, AccountMessage, FormAction, FormError, Lang};
use crate::policy::MfaState;
use crate::proxy::{ConnInfo, html_page};

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
    format!("acct-{}", crate::mfa::revocation::hex16(&a.session_hash))
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
}

impl Ctx<'_> {
    fn who(&self) -> Who<'_> {
        Who {
            user: &self.a.user,
            addr: &self.addr,
            now: self.now,
        }
    }
    fn state_today(&self) -> MfaState {
        let ts = jiff::Timestamp::from_second(i64::try_from(self.now).unwrap_or(0))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        self.gw
            .policy
            .current()
            .decide(&self.a.role, ts)
            .map_or(self.gw.cfg.vms.unmapped, |d| d.state)
    }
}

pub async fn handle(
    gw: &Gateway,
    req: Request<Incoming>,
    conn: ConnInfo,
    lang: Lang,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let now = gw.clock.unix();
    let Some(a) = signed_in(gw, &req, now) else {
        return Ok((
            gw.page_response(pages::ErrorPage::Forbidden, lang),
            Outcome::Rejected,
        ));
    };
    let addr = gw.client_ip(req.headers(), conn).to_string();
    let csrf = session_csrf(gw, "account", &a);
    let ctx = Ctx {
        gw,
        lang,
        a,
        addr,
        now,
        csrf,
    };
    let p = &gw.paths;
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if matches!(method, Method::GET | Method::HEAD) {
        if path == p.account {
            let message = match req.uri().query().unwrap_or("") {
                "done=replaced" => Some(AccountMessage::PhoneReplaced),
                "done=disabled" => Some(AccountMessage::MfaDisabled),
                "done=enabled" => Some(AccountMessage::MfaEnabled),
                "done=recovery" => Some(AccountMessage::RecoveryCodesReplaced),
                _ => None,
            };
            return Ok((
                page(&ctx, None, message, StatusCode::OK).await?,
                Outcome::Gateway,
            ));
        }
        if path == p.account_enroll {
            return match load_pairing(&ctx).await? {
                Some((secret, _, replaced)) => Ok((
                    pairing_page(&ctx, &secret, replaced, None, StatusCode::OK)?,
                    Outcome::Gateway,
                )),
                None => Ok((redirect(&p.account), Outcome::Gateway)),
            };
        }
        return Err(ClientError::NotFound.into());
    }
    if method != Method::POST {
        return Err(ClientError::MethodNotAllowed.into());
    }
    let headers = req.headers().clone();
    let req_query = req.uri().query().map(str::to_string);
    let form = read_form(req).await?;
    if !session_csrf_ok(gw, "account", &ctx.a, form.get("csrf")) {
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
    let code = form.get("code").unwrap_or("");
    if path == p.account {
        // "Continue" after new recovery codes were shown: back to the account page, saying
        // what was done (the recovery codes page posts here with `?done=`; any other query is
        // dropped).
        let target = match req_query.as_deref() {
            Some(q @ ("done=recovery" | "done=replaced" | "done=enabled")) => {
                format!("{}?{q}", p.account)
            }
            _ => p.account.clone(),
        };
        return Ok((redirect(&target), Outcome::Gateway));
    }
    if path == p.account_setup {
        let record = gw.store.user(&ctx.a.user).await?;
        if record.enrolled() || ctx.state_today() == MfaState::None {
            return Err(ClientError::Forbidden.into());
        }
        let (browser, new_browser) = super::pending::browser_id(&headers);
        start_pairing(&ctx, None, &browser).await?;
        let mut resp = redirect(&p.account_enroll);
        if new_browser {
            resp.headers_mut().append(
                http::header::SET_COOKIE,
                super::pending::browser_cookie(gw, &browser),
            );
        }
        return Ok((resp, Outcome::Gateway));
    }
    if path == p.account_repair || path == p.account_recovery || path == p.account_disable {
        if path == p.account_disable && ctx.state_today() == MfaState::Enforced {
            return Ok((
                gw.page_response(pages::ErrorPage::Forbidden, ctx.lang),
                Outcome::Rejected,
            ));
        }
        if path == p.account_recovery && !gw.policy.current().recovery_codes() {
            return Err(ClientError::Forbidden.into());
        }
        let checked_against =
            match codes::check_enrolled_against(gw, ctx.who(), code, false).await? {
                (Check::Accepted { .. }, Some(sealed)) => sealed,
                (other, _) => {
                    let (e, status) = check_error(other);
                    let failed = if path == p.account_repair {
                        FormAction::ReplacePhone
                    } else if path == p.account_recovery {
                        FormAction::NewRecoveryCodes
                    } else {
                        FormAction::Disable
                    };
                    // Shown at the form that was sent.
                    return Ok((
                        render_page(&ctx, Some(e), Some(failed), None, status).await?,
                        Outcome::Rejected,
                    ));
                }
            };
        if path == p.account_repair {
            start_pairing(&ctx, Some(&checked_against), "").await?;
            return Ok((redirect(&p.account_enroll), Outcome::Gateway));
        }
        if path == p.account_recovery {
            let codes = codes::issue_recovery_codes(gw, ctx.who(), ActorKind::User).await?;
            return Ok((recovery_page(&ctx, &codes, "recovery"), Outcome::Gateway));
        }
        gw.store.delete_enrollment(&ctx.a.user).await?;
        gw.audit
            .record(codes::record(ctx.who(), Event::SelfMfaDisabled))
            .await;
        return Ok((
            redirect(&format!("{}?done=disabled", p.account)),
            Outcome::Gateway,
        ));
    }
    if path == p.account_enroll {
        let Some((secret, replaces, replaced)) = load_pairing(&ctx).await? else {
            return Ok((redirect(&p.account), Outcome::Gateway));
        };
        let step = match codes::check_new(gw, ctx.who(), &secret, code).await? {
            Check::Accepted { step } => step,
            other => {
                let (e, status) = check_error(other);
                return Ok((
                    pairing_page(&ctx, &secret, replaced, Some(e), status)?,
                    Outcome::Rejected,
                ));
            }
        };
        let sealed = codes::seal_secret(gw, &ctx.a.user, &secret)?;
        let replacing = replaces.is_some();
        let mut new_epoch = ctx.a.epoch;
        let written = match &replaces {
            Some(old) => {
                // Revocation first: if it cannot be published, the old phone stays.
                new_epoch = gw.ops().end_sessions(&ctx.a.user, ctx.now).await?;
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
            None => {
                gw.store
                    .enroll(&ctx.a.user, &sealed, gw.keys.active_id(), ctx.now, step)
                    .await?
            }
        };
        let _ = gw.store.take_challenge(&pairing_key(&ctx.a)).await;
        if !written {
            gw.audit
                .record(
                    codes::record(ctx.who(), Event::SelfChangeRefused).detail(if replacing {
                        "change=replace reason=secret_changed"
                    } else {
                        "change=set_up reason=already_enrolled"
                    }),
                )
                .await;
            return Ok((
                page(
                    &ctx,
                    None,
                    Some(AccountMessage::ChangedMeanwhile),
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
            gw.metrics.mfa(MfaEvent::Enrolled);
            gw.audit
                .record(codes::record(ctx.who(), Event::Enrolled).detail("via=account"))
                .await;
        }
        let mut resp = if gw.policy.current().recovery_codes() {
            let codes = codes::issue_recovery_codes(gw, ctx.who(), ActorKind::User).await?;
            recovery_page(&ctx, &codes, if replacing { "replaced" } else { "enabled" })
        } else {
            let done = if replacing { "replaced" } else { "enabled" };
            redirect(&format!("{}?done={done}", p.account))
        };
        if replacing {
            reapprove(&ctx, new_epoch, &mut resp);
        }
        return Ok((resp, Outcome::Gateway));
    }
    Err(ClientError::NotFound.into())
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
        super::cookies::gateway_cookie(
            super::approval::APPROVAL_COOKIE,
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
        None => super::pending::secret_for(gw, &ctx.a.user, browser, ctx.now).await?,
        Some(_) => (super::login::new_secret_b64(), false),
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
    let html = pages::account_page(&pages::AccountView {
        lang: ctx.lang,
        branding: &gw.branding,
        account: &ctx.a.user,
        enrolled: r.enrolled(),
        enrolled_since: since.as_deref(),
        last_used: used.as_deref(),
        required: state == MfaState::Enforced,
        not_used: state == MfaState::None,
        can_disable: r.enrolled() && state != MfaState::Enforced,
        recovery_enabled: gw.policy.current().recovery_codes(),
        recovery_remaining: r
            .recovery
            .iter()
            .filter(|h| crate::auth::crypto::recovery_hash_is_keyed(h))
            .count(),
        csrf: &ctx.csrf,
        repair_action: &gw.paths.account_repair,
        recovery_action: &gw.paths.account_recovery,
        disable_action: &gw.paths.account_disable,
        setup_action: &gw.paths.account_setup,
        error,
        failed,
        message,
    });
    Ok(html_page(status, html))
}
