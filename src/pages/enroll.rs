//! The enrollment page: connect an authenticator app, then prove it works with one code.
//!
//! The page is written as three numbered steps because that is the order people do it in:
//! install an app, add the account (scan the QR code, or type the pairing code when the
//! camera cannot see the screen, e.g. when enrolling on the phone itself), type the code the
//! app shows. Confirming with a code before the secret is stored catches a wrong scan or an
//! app that ignored a parameter. On a phone the `otpauth://` link opens the authenticator
//! app directly, which is the easiest path there: it is a button above the QR code, and
//! devices with a mouse do not show it. The second step is worded for both ways.
//!
//! A user whose earlier pending secret could not be shown again is told to delete that entry
//! from the app (see `mfa::pending`); in a sign-in the page says how long it stays open and
//! that signing in again brings the same QR code. Opt-in enrollment has a Cancel.
//!
//! "Not now" is a separate small form, so postponing sends no code and is not blocked by the
//! code field being required. It appears only when the role's policy allows postponing.

use maud::html;

use super::form::{ACTION_FIELD, CodeField, FormAction, FormError, button, code_field, post_form};
use super::html::{fill, hidden_field};
use super::lang::Lang;
use super::layout::{Branding, render};
use super::qr::qr_svg;
use super::strings::strings;
use super::visible::visible;

/// What the enrollment page shows.
#[derive(Debug, Clone)]
pub struct EnrollView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    /// The account name as the authenticator app will show it.
    pub account: &'a str,
    /// The issuer as the authenticator app will show it.
    pub issuer: &'a str,
    /// The `otpauth://totp/…` key URI, drawn as the QR code.
    pub otpauth_uri: &'a str,
    /// The Base32 secret, already grouped in fours.
    pub pairing_code: &'a str,
    pub form_action: &'a str,
    pub csrf: &'a str,
    pub error: Option<FormError>,
    /// Whether the user's role must use MFA (otherwise it is opt-in).
    pub required: bool,
    /// Whether a "Not now" choice is offered.
    pub can_postpone: bool,
    /// This secret replaces one shown earlier and never confirmed.
    pub replaced: bool,
    /// In a sign-in: how many minutes the page stays open.
    pub minutes: Option<u64>,
    /// How to leave an opt-in enrollment without setting MFA up.
    pub cancel: Option<Cancel<'a>>,
}

/// The way out of an opt-in enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel<'a> {
    /// In a sign-in: a form that sends [`FormAction::Cancel`] (continue without MFA).
    Form,
    /// In self-service: back to this page (the MFA settings).
    Link(&'a str),
}

/// Renders the enrollment page.
pub fn enroll_page(v: &EnrollView<'_>) -> String {
    let t = &strings(v.lang).enroll;
    let qr = match qr_svg(v.otpauth_uri, t.qr_label) {
        Ok(svg) => Some(svg),
        // The pairing code below still lets the user enroll.
        Err(err) => {
            tracing::warn!(error = %err, "enrollment page shown without QR code");
            None
        }
    };
    let confirm = html! {
        (hidden_field(ACTION_FIELD, FormAction::Confirm.as_str()))
        (code_field(&CodeField {
            lang: v.lang,
            label: t.step_code,
            hints: &[],
            error: v.error,
            autofocus: v.error.is_some(),
            title: strings(v.lang).common.code_title,
            helpdesk: v.branding.helpdesk(v.lang),
        }))
        (button("primary", t.confirm, None))
    };
    let content = html! {
        h1 { (t.title) }
        @if v.replaced {
            p class="warn" role="status" { (t.replaced) }
        }
        p { (if v.required { t.required } else { t.optional }) }
        @if let Some(minutes) = v.minutes {
            p class="muted" { (fill(t.time_limit, "{minutes}", minutes)) }
        }
        ol class="steps" {
            li { p { (t.step_install) } }
            li {
                p { (t.step_scan) }
                @if is_otpauth(v.otpauth_uri) {
                    a class="button primary phone-only" href=(v.otpauth_uri) { (t.open_in_app) }
                }
                @if let Some(svg) = qr {
                    div class="qr" { (svg) }
                }
                p { (t.manual_intro) }
                p class="pairing" { (v.pairing_code) }
                dl class="facts" {
                    dt { (t.shown_in_app_label) }
                    dd { (visible(v.issuer)) " (" (visible(v.account)) ")" }
                    dt { (t.key_type_label) }
                    dd { (t.key_type_value) }
                }
            }
            li { (post_form(v.form_action, v.csrf, confirm)) }
        }
        @if v.can_postpone {
            (post_form(
                v.form_action,
                v.csrf,
                button("secondary", strings(v.lang).common.not_now, Some(FormAction::Postpone)),
            ))
            p class="muted" { (t.postpone_hint) }
        }
        @match v.cancel {
            Some(Cancel::Form) => {
                (post_form(
                    v.form_action,
                    v.csrf,
                    button("secondary", t.cancel, Some(FormAction::Cancel)),
                ))
                p class="muted" { (t.cancel_hint) }
            }
            Some(Cancel::Link(to)) => a class="button secondary" href=(to) { (t.cancel) },
            None => {}
        }
    };
    render(v.lang, v.branding, t.title, content)
}

fn is_otpauth(uri: &str) -> bool {
    uri.get(..10)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("otpauth://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text as it appears in the page.
    fn escape(s: &str) -> String {
        maud::Render::render(s).into_string()
    }

    const URI: &str = "otpauth://totp/Acme:jan?secret=JBSWY3DPEHPK3PXP&issuer=Acme";

    fn view<'a>(b: &'a Branding) -> EnrollView<'a> {
        EnrollView {
            lang: Lang::En,
            branding: b,
            account: "jan@example.nl",
            issuer: "Acme",
            otpauth_uri: URI,
            pairing_code: "JBSW Y3DP EHPK 3PXP",
            form_action: "/_mfa/enroll",
            csrf: "tok",
            error: None,
            required: true,
            can_postpone: false,
            replaced: false,
            minutes: None,
            cancel: None,
        }
    }

    #[test]
    fn shows_qr_link_pairing_code_and_app_label() {
        let b = Branding::default();
        let page = enroll_page(&view(&b));
        assert!(page.contains(r#"<div class="qr"><svg "#));
        let link = page
            .find(&format!(
                r#"<a class="button primary phone-only" href="{}">Add to authenticator app</a>"#,
                escape(URI)
            ))
            .unwrap_or(usize::MAX);
        // The app link comes first on a phone: above the QR code.
        assert!(link < page.find(r#"<div class="qr">"#).unwrap_or(0));
        assert!(page.contains(r#"<p class="pairing">JBSW Y3DP EHPK 3PXP</p>"#));
        assert!(page.contains("<dd>Acme (jan@example.nl)</dd>"));
        assert!(page.contains(r#"name="action" value="confirm""#));
    }

    #[test]
    fn required_and_optional_read_differently() {
        let b = Branding::default();
        let required = enroll_page(&view(&b));
        let optional = enroll_page(&EnrollView {
            required: false,
            ..view(&b)
        });
        let t = &strings(Lang::En).enroll;
        assert!(required.contains(&escape(t.required)) && !required.contains(&escape(t.optional)));
        assert!(optional.contains(&escape(t.optional)) && !optional.contains(&escape(t.required)));
    }

    #[test]
    fn not_now_only_when_postponing_is_allowed() {
        let b = Branding::default();
        let without = enroll_page(&view(&b));
        assert!(!without.contains("value=\"postpone\""));
        let with = enroll_page(&EnrollView {
            can_postpone: true,
            lang: Lang::Nl,
            ..view(&b)
        });
        assert!(with.contains(
            r#"<button class="secondary" type="submit" name="action" value="postpone">Niet nu</button>"#
        ));
        // Postponing is its own form, outside the one with the required code field.
        assert_eq!(with.matches("<form ").count(), 2);
        let postpone_form = with.rsplit("<form ").next().unwrap_or_default();
        assert!(!postpone_form.contains("name=\"code\""));
    }

    #[test]
    fn focus_goes_to_the_code_only_after_an_error() {
        let b = Branding::default();
        assert!(!enroll_page(&view(&b)).contains(" autofocus"));
        let retry = enroll_page(&EnrollView {
            error: Some(FormError::WrongCode),
            ..view(&b)
        });
        assert!(retry.contains(" autofocus>"));
        assert!(retry.contains(r#"role="alert""#));
    }

    #[test]
    fn a_uri_that_is_not_otpauth_is_not_linked() {
        let b = Branding::default();
        let page = enroll_page(&EnrollView {
            otpauth_uri: "javascript:alert(1)",
            ..view(&b)
        });
        assert!(!page.contains("javascript:"));
        assert!(!page.contains("<a "));
    }

    #[test]
    fn a_replaced_secret_says_to_delete_the_earlier_entry() {
        let b = Branding::default();
        assert!(!enroll_page(&view(&b)).contains("Delete that entry"));
        let page = enroll_page(&EnrollView {
            replaced: true,
            minutes: Some(30),
            ..view(&b)
        });
        assert!(page.contains(
            r#"<p class="warn" role="status">Added an earlier code for this account to your app? Delete that entry"#
        ));
        assert!(page.contains("This page stays open for 30 minutes."));
    }

    #[test]
    fn opt_in_enrollment_can_be_cancelled() {
        let b = Branding::default();
        assert!(!enroll_page(&view(&b)).contains("Cancel"));
        let form = enroll_page(&EnrollView {
            required: false,
            cancel: Some(Cancel::Form),
            ..view(&b)
        });
        assert!(form.contains(r#"name="action" value="cancel">Cancel</button>"#));
        let cancel_form = form.rsplit("<form ").next().unwrap_or_default();
        assert!(!cancel_form.contains("name=\"code\""));
        let link = enroll_page(&EnrollView {
            required: false,
            cancel: Some(Cancel::Link("/.mfa/account")),
            lang: Lang::Nl,
            ..view(&b)
        });
        assert!(link.contains(r#"<a class="button secondary" href="/.mfa/account">Annuleren</a>"#));
    }

    #[test]
    fn an_unencodable_uri_still_leaves_the_pairing_code() {
        let b = Branding::default();
        let long = format!("otpauth://totp/x?secret={}", "A".repeat(5000));
        let page = enroll_page(&EnrollView {
            otpauth_uri: &long,
            ..view(&b)
        });
        assert!(!page.contains("<svg"));
        assert!(page.contains("JBSW Y3DP EHPK 3PXP"));
    }
}
