//! The administration pages under `<prefix>admin/`.
//!
//! Who may enter: a request whose VMS session the gateway approved, whose policy role is in
//! `admin.roles` (default MSP and administrator), and whose own MFA step was passed in that
//! session. This is checked on every request, including every action; everyone else gets a
//! 403 page (never a redirect loop). Changes are POST-only with a CSRF token bound to the
//! administrator's session, and follow POST-redirect-GET so a reload repeats nothing.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::admin::ops::{Actor, OpError, Rank, Refusal};
use crate::audit::{ActorKind, Event, Record};
use crate::auth::crypto::Purpose;
use crate::error::{ClientError, GatewayError};
use crate::gate::Gate;
use crate::gate::approval::Approval;
use crate::gateway::Gateway;
use crate::http::body::Body;
use crate::http::{ConnInfo, html_page};
use crate::metrics::Outcome;
use crate::pages::{self, AdminError, AdminEvent, AdminMessage, Lang};
use crate::web::flow::{read_form, redirect};

/// Formats Unix seconds for people, in the policy's time zone (the one its dates are read
/// in, so users and administrators see the times of their own clocks): `2026-11-27 15:03 CET`.
pub fn fmt_time(gw: &Gateway, t: u64) -> String {
    gw.policy.current().local_time(t)
}

/// A CSRF token bound to a signed-in session and a purpose.
pub fn session_csrf(gw: &Gateway, purpose: &str, a: &Approval) -> String {
    use base64::Engine as _;
    let mut data = purpose.as_bytes().to_vec();
    data.extend_from_slice(&a.session_hash);
    let (kid, tag) = gw.keys.mac(Purpose::Csrf, &data);
    format!(
        "{kid}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
    )
}

pub fn session_csrf_ok(gw: &Gateway, purpose: &str, a: &Approval, token: Option<&str>) -> bool {
    use base64::Engine as _;
    let Some((kid, tag)) = token.and_then(|t| t.split_once('.')) else {
        return false;
    };
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else {
        return false;
    };
    let mut data = purpose.as_bytes().to_vec();
    data.extend_from_slice(&a.session_hash);
    gw.keys.verify_mac(Purpose::Csrf, kid, &data, &tag)
}

/// The signed-in session of a request, if approved.
pub fn signed_in(gw: &Gateway, req: &Request<Incoming>, now: u64) -> Option<Approval> {
    let mut h = req.headers().clone();
    match gw.gate(&mut h, now) {
        Gate::Approved(a) => Some(Approval::clone(&a)),
        _ => None,
    }
}

fn query(req: &Request<Incoming>, key: &str) -> Option<String> {
    req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    })
}

pub async fn handle(
    gw: &Gateway,
    req: Request<Incoming>,
    conn: ConnInfo,
    lang: Lang,
) -> Result<(Response<Body>, Outcome), GatewayError> {
    let now = gw.clock.unix();
    let client = gw.client_ip(req.headers(), conn).to_string();
    let admin =
        signed_in(gw, &req, now).filter(|a| a.mfa_passed && gw.cfg.admin.roles.contains(&a.role));
    let Some(admin) = admin else {
        let who = signed_in(gw, &req, now).map_or_else(|| "anonymous".to_string(), |a| a.user);
        gw.audit
            .record(
                Record::new(Event::AdminAccessDenied, now, ActorKind::User, who)
                    .client(&client)
                    .detail(format!("path={}", req.uri().path())),
            )
            .await;
        return Ok((
            gw.page_response(pages::ErrorPage::Forbidden, lang),
            Outcome::Rejected,
        ));
    };
    let csrf = session_csrf(gw, "admin", &admin);
    let view = View {
        gw,
        lang,
        admin: &admin,
        csrf: &csrf,
    };
    let norm = |u: &str| crate::config::normalize_username(u, gw.cfg.vms.username_case_sensitive);
    let path = req.uri().path().to_string();
    let p = &gw.paths;
    let method = req.method().clone();
    if path == p.admin && matches!(method, Method::GET | Method::HEAD) {
        let q = query(&req, "q").unwrap_or_default();
        let q = q.trim();
        let results = if q.is_empty() {
            Vec::new()
        } else {
            gw.store.search_users(&norm(q), 50).await?
        };
        let html = pages::admin_search_page(&pages::AdminSearchView {
            lang,
            branding: &gw.branding,
            admin: &admin.user,
            account_link: &gw.paths.account,
            query: q,
            results: &results,
            search_action: &p.admin,
            user_link_base: &format!("{}?u=", p.admin_user),
        });
        return Ok((html_page(StatusCode::OK, html), Outcome::Gateway));
    }
    if path == p.admin_user && matches!(method, Method::GET | Method::HEAD) {
        let user = norm(&query(&req, "u").unwrap_or_default());
        let message = match query(&req, "done").as_deref() {
            Some("reset") => Some(AdminMessage::ResetDone),
            Some("unlock") => Some(AdminMessage::Unlocked),
            _ => None,
        };
        return view.user_page(&user, message, None, StatusCode::OK).await;
    }
    if (path == p.admin_reset || path == p.admin_unlock) && method == Method::POST {
        let form = read_form(req).await?;
        let user = norm(form.get("user").unwrap_or(""));
        if !session_csrf_ok(gw, "admin", &admin, form.get("csrf")) {
            return view
                .user_page(
                    &user,
                    None,
                    Some(AdminError::CsrfInvalid),
                    StatusCode::FORBIDDEN,
                )
                .await;
        }
        let actor = actor_of(gw, &admin, Some(client));
        let ops = gw.ops();
        if user.is_empty() || !ops.status(&user, now).await?.known {
            return view
                .user_page(
                    &user,
                    None,
                    Some(AdminError::UnknownUser),
                    StatusCode::NOT_FOUND,
                )
                .await;
        }
        let back = format!(
            "{}?u={}",
            p.admin_user,
            percent_encoding::utf8_percent_encode(&user, percent_encoding::NON_ALPHANUMERIC)
        );
        if path == p.admin_reset {
            let reason = form.get("reason").map(str::trim).unwrap_or("");
            if reason.is_empty() || reason.len() > 500 {
                return view
                    .user_page(
                        &user,
                        None,
                        Some(AdminError::ReasonMissing),
                        StatusCode::BAD_REQUEST,
                    )
                    .await;
            }
            if form.get("confirm") != Some("yes") {
                return view
                    .user_page_with_reason(
                        &user,
                        None,
                        Some(AdminError::ConfirmMissing),
                        StatusCode::BAD_REQUEST,
                        reason,
                    )
                    .await;
            }
            return match ops.reset(&user, &actor, reason, now).await {
                Ok(_) => Ok((redirect(&format!("{back}&done=reset")), Outcome::Gateway)),
                Err(e) => view.refused(&user, e).await,
            };
        }
        return match ops.unlock(&user, &actor, now).await {
            Ok(_) => Ok((redirect(&format!("{back}&done=unlock")), Outcome::Gateway)),
            Err(e) => view.refused(&user, e).await,
        };
    }
    if [&p.admin, &p.admin_user, &p.admin_reset, &p.admin_unlock].contains(&&path) {
        return Err(ClientError::MethodNotAllowed.into());
    }
    Err(ClientError::NotFound.into())
}

/// The signed-in administrator as the actor of an operation: ranked by their policy role,
/// and never on their own account.
fn actor_of(gw: &Gateway, admin: &Approval, client: Option<String>) -> Actor {
    Actor {
        kind: ActorKind::Admin,
        name: admin.user.clone(),
        client,
        rank: Rank::Role {
            role: admin.role.clone(),
            user: Some(crate::config::normalize_username(
                &admin.user,
                gw.cfg.vms.username_case_sensitive,
            )),
        },
    }
}

#[allow(clippy::too_many_arguments)]
/// What every administration page of one request shares.
struct View<'a> {
    gw: &'a Gateway,
    lang: Lang,
    admin: &'a Approval,
    csrf: &'a str,
}

impl View<'_> {
    /// The user page after a refused change (403, saying why), or the store's error.
    async fn refused(
        &self,
        user: &str,
        e: OpError,
    ) -> Result<(Response<Body>, Outcome), GatewayError> {
        let (error, status) = match e {
            OpError::Store(e) => return Err(e.into()),
            OpError::UnknownUser => (AdminError::UnknownUser, StatusCode::NOT_FOUND),
            OpError::Refused(Refusal::OwnAccount) => {
                (AdminError::OwnAccount, StatusCode::FORBIDDEN)
            }
            OpError::Refused(Refusal::Rank { .. }) => {
                (AdminError::Outranked, StatusCode::FORBIDDEN)
            }
        };
        let (resp, _) = self.user_page(user, None, Some(error), status).await?;
        Ok((resp, Outcome::Rejected))
    }

    /// The user page, optionally with a confirmation or an error.
    async fn user_page(
        &self,
        user: &str,
        message: Option<AdminMessage>,
        error: Option<AdminError>,
        status: StatusCode,
    ) -> Result<(Response<Body>, Outcome), GatewayError> {
        self.user_page_with_reason(user, message, error, status, "")
            .await
    }

    /// The user page with the reset form's reason filled in (after an error in the form).
    async fn user_page_with_reason(
        &self,
        user: &str,
        message: Option<AdminMessage>,
        error: Option<AdminError>,
        status: StatusCode,
        reason: &str,
    ) -> Result<(Response<Body>, Outcome), GatewayError> {
        let View {
            gw,
            lang,
            admin,
            csrf,
        } = *self;
        let now = gw.clock.unix();
        let s = gw.ops().status(user, now).await?;
        let events: Vec<AdminEvent> = gw
            .audit
            .recent_for(user, 5000, 30)
            .await
            .into_iter()
            .map(|r| AdminEvent {
                at: fmt_time(gw, r.ts),
                event: r.event.as_str().to_string(),
                actor: r.actor.clone(),
                detail: [r.reason.clone(), r.detail.clone(), r.client.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; "),
            })
            .collect();
        let enrolled_since = s.enrolled_at.map(|t| fmt_time(gw, t));
        let last_used = s.last_used.map(|t| fmt_time(gw, t));
        let locked_until = s.locked_for_secs.map(|secs| fmt_time(gw, now + secs));
        let error = if !s.known && error.is_none() && !user.is_empty() {
            Some(AdminError::UnknownUser)
        } else {
            error
        };
        // The same ranking the actions check (and audit), to show the forms only where they
        // can work.
        let not_allowed = gw
            .ops()
            .refusal(&actor_of(gw, admin, None), user, s.role.as_deref())
            .map(|r| match r {
                Refusal::OwnAccount => AdminError::OwnAccount,
                Refusal::Rank { .. } => AdminError::Outranked,
            });
        let html = pages::admin_user_page(&pages::AdminUserView {
            lang,
            branding: &gw.branding,
            admin: &admin.user,
            account_link: &gw.paths.account,
            user,
            enrolled: s.enrolled,
            enrolled_since: enrolled_since.as_deref(),
            last_used: last_used.as_deref(),
            locked_until: locked_until.as_deref(),
            role: s.role.as_deref(),
            policy_state: s.policy_state.as_deref(),
            recovery_remaining: s.recovery_codes_left,
            events: &events,
            csrf,
            reset_action: &gw.paths.admin_reset,
            unlock_action: &gw.paths.admin_unlock,
            back_link: &gw.paths.admin,
            message,
            error,
            reason,
            not_allowed,
        });
        Ok((html_page(status, html), Outcome::Gateway))
    }
}
