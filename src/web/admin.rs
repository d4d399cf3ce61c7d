//! The administration pages under `<prefix>admin/`.
//!
//! Who may enter: a request whose VMS session the gateway approved, whose policy role is in
//! `admin.roles` (default MSP and administrator), and whose own MFA step was passed in that
//! session. This is checked on every request, including every action, by the extractor
//! [`extract::admin`]; everyone else gets a 403 page (never a redirect loop), audited.
//! Changes are POST-only (the route table) with a CSRF token bound to the administrator's
//! session ([`Csrf::session`]), and follow POST-redirect-GET so a reload repeats nothing.

use http::StatusCode;
use hyper::body::Incoming;

use crate::admin::ops::{Actor, OpError, Rank, Refusal};
use crate::audit::ActorKind;
use crate::error::ClientError;
use crate::gate::approval::Approval;
use crate::gateway::Gateway;
use crate::http::html_page;
use crate::metrics::Outcome;
use crate::pages::{self, AdminError, AdminEvent, AdminMessage, Lang};
use crate::web::extract::{self, Answer, Call, Csrf, CsrfScope, Form, Query};
use crate::web::routes::Route;
use crate::web::{fmt_time, redirect};

/// An administration page (the router has checked path and method; see [`crate::web`]).
pub async fn handle(call: &Call<'_>, route: &Route, body: Incoming) -> Answer {
    let gw = call.gw;
    let (lang, now) = (call.lang, call.now);
    let admin = extract::admin(call).await?;
    let csrf = Csrf::session(gw, CsrfScope::Admin, &admin);
    let token = csrf.token();
    let view = View {
        gw,
        lang,
        admin: &admin,
        csrf: &token,
    };
    let norm = |u: &str| crate::config::normalize_username(u, gw.cfg.vms.username_case_sensitive);
    let p = &gw.paths;
    let query = Query::of(&call.uri);
    match route {
        Route::AdminSearch => {
            let q = query.get("q").unwrap_or_default().trim();
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
            Ok((html_page(StatusCode::OK, html), Outcome::Gateway))
        }
        Route::AdminUser => {
            let user = norm(query.get("u").unwrap_or_default());
            let message = match query.get("done") {
                Some("reset") => Some(AdminMessage::ResetDone),
                Some("unlock") => Some(AdminMessage::Unlocked),
                Some("forget") => Some(AdminMessage::BrowsersForgotten),
                _ => None,
            };
            view.user_page(&user, message, None, StatusCode::OK).await
        }
        Route::AdminReset | Route::AdminUnlock | Route::AdminForgetBrowsers => {
            let form = Form::read(body).await?;
            let user = norm(form.get("user").unwrap_or(""));
            if csrf.check(&form).is_err() {
                return view
                    .user_page(
                        &user,
                        None,
                        Some(AdminError::CsrfInvalid),
                        StatusCode::FORBIDDEN,
                    )
                    .await;
            }
            let actor = actor_of(gw, &admin, Some(call.client.clone()));
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
            if *route == Route::AdminUnlock {
                return match ops.unlock(&user, &actor, now).await {
                    Ok(_) => Ok((redirect(&format!("{back}&done=unlock")), Outcome::Gateway)),
                    Err(e) => view.refused(&user, e).await,
                };
            }
            if *route == Route::AdminForgetBrowsers {
                return match ops.forget_browsers(&user, &actor, now).await {
                    Ok(_) => Ok((redirect(&format!("{back}&done=forget")), Outcome::Gateway)),
                    Err(e) => view.refused(&user, e).await,
                };
            }
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
            match ops.reset(&user, &actor, reason, now).await {
                Ok(_) => Ok((redirect(&format!("{back}&done=reset")), Outcome::Gateway)),
                Err(e) => view.refused(&user, e).await,
            }
        }
        _ => Err(ClientError::NotFound.into()),
    }
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
    async fn refused(&self, user: &str, e: OpError) -> Answer {
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
    ) -> Answer {
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
    ) -> Answer {
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
        let passkeys = if s.known && gw.passkeys.is_some() {
            crate::web::passkey::items(gw, user).await?
        } else {
            Vec::new()
        };
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
            remembered_browsers: s.remembered_browsers,
            passkeys: &passkeys,
            events: &events,
            csrf,
            reset_action: &gw.paths.admin_reset,
            unlock_action: &gw.paths.admin_unlock,
            forget_action: &gw.paths.admin_forget,
            back_link: &gw.paths.admin,
            message,
            error,
            reason,
            not_allowed,
        });
        Ok((html_page(status, html), Outcome::Gateway))
    }
}
