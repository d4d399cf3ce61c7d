//! The enrollment page: connect an authenticator app, then prove it works with one code.
//!
//! The page is written as three numbered steps because that is the order people do it in:
//! install an app, add the account (scan the QR code, or type the pairing code when the
//! camera cannot see the screen, e.g. when enrolling on the phone itself), type the code the
//! app shows. Confirming with a code before the secret is stored catches a wrong scan or an
//! app that ignored a parameter. On a phone the `otpauth://` link opens the authenticator
//! app directly, which is the easiest path there; devices with a mouse do not show that link.
//!
//! "Not now" is a separate small form, so postponing sends no code and is not blocked by the
//! code field being required. It appears only when the role's policy allows postponing.

use std::fmt::Write;

use super::form::{ACTION_FIELD, button};
use super::form::{CodeField, FormAction, FormError, code_field, form_start};
use super::html::{escape, hidden_field};
use super::lang::Lang;
use super::layout::{Branding, render};
use super::qr::qr_svg;
use super::strings::strings;

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
}

/// Renders the enrollment page.
pub fn enroll_page(v: &EnrollView<'_>) -> String {
    let t = &strings(v.lang).enroll;
    let mut c = String::new();
    let _ = write!(c, "<h1>{}</h1>", escape(t.title));
    let _ = write!(
        c,
        "<p>{}</p>",
        escape(if v.required { t.required } else { t.optional })
    );
    c.push_str(r#"<ol class="steps">"#);

    let _ = write!(c, "<li><p>{}</p></li>", escape(t.step_install));

    let _ = write!(c, "<li><p>{}</p>", escape(t.step_scan));
    match qr_svg(v.otpauth_uri, t.qr_label) {
        Ok(svg) => {
            let _ = write!(c, r#"<div class="qr">{svg}</div>"#);
        }
        // The pairing code below still lets the user enroll.
        Err(err) => tracing::warn!(error = %err, "enrollment page shown without QR code"),
    }
    if is_otpauth(v.otpauth_uri) {
        let _ = write!(
            c,
            r#"<p class="phone-only"><a href="{}">{}</a></p>"#,
            escape(v.otpauth_uri),
            escape(t.open_in_app)
        );
    }
    let _ = write!(
        c,
        r#"<p>{}</p><p class="pairing">{}</p>"#,
        escape(t.manual_intro),
        escape(v.pairing_code)
    );
    let _ = write!(
        c,
        r#"<dl class="facts"><dt>{}</dt><dd>{} ({})</dd><dt>{}</dt><dd>{}</dd></dl></li>"#,
        escape(t.shown_in_app_label),
        escape(v.issuer),
        escape(v.account),
        escape(t.key_type_label),
        escape(t.key_type_value)
    );

    c.push_str("<li>");
    c.push_str(&form_start(v.form_action, v.csrf));
    c.push_str(&hidden_field(ACTION_FIELD, FormAction::Confirm.as_str()));
    c.push_str(&code_field(&CodeField {
        lang: v.lang,
        label: t.step_code,
        hints: &[],
        error: v.error,
        autofocus: v.error.is_some(),
    }));
    c.push_str(&button("primary", t.confirm, None));
    c.push_str("</form></li></ol>");

    if v.can_postpone {
        c.push_str(&form_start(v.form_action, v.csrf));
        c.push_str(&button(
            "secondary",
            strings(v.lang).common.not_now,
            Some(FormAction::Postpone),
        ));
        let _ = write!(
            c,
            r#"</form><p class="muted">{}</p>"#,
            escape(t.postpone_hint)
        );
    }
    render(v.lang, v.branding, t.title, &c)
}

fn is_otpauth(uri: &str) -> bool {
    uri.get(..10)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("otpauth://"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn shows_qr_link_pairing_code_and_app_label() {
        let b = Branding::default();
        let page = enroll_page(&view(&b));
        assert!(page.contains(r#"<div class="qr"><svg "#));
        assert!(page.contains(&format!(r#"<a href="{}">"#, escape(URI))));
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
        assert!(!page.contains("<a href"));
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
