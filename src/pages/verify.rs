//! The login code challenge, shown after the VMS accepted the password and before the
//! gateway releases the session.
//!
//! One field takes either the app's 6-digit code or a recovery code, and the page says so,
//! so a user without their phone does not have to hunt for another page. It also tells a
//! user who lost their phone what to do (the helpdesk, `mfa.helpdesk_name`, disconnects MFA), and offers a way back to
//! the sign-in page for someone on the wrong account.

use maud::html;

use super::form::{ACTION_FIELD, CodeField, FormAction, FormError, button, code_field, post_form};
use super::html::{fill, hidden_field};
use super::lang::Lang;
use super::layout::{Branding, render};
use super::strings::strings;
use super::visible::visible;

/// What the login code page shows.
#[derive(Debug, Clone)]
pub struct VerifyView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    /// The account that is signing in.
    pub account: &'a str,
    pub form_action: &'a str,
    pub csrf: &'a str,
    pub error: Option<FormError>,
}

/// Renders the login code page.
pub fn verify_page(v: &VerifyView<'_>) -> String {
    let t = &strings(v.lang).verify;
    let account = html! { strong { (visible(v.account)) } };
    let form = html! {
        (hidden_field(ACTION_FIELD, FormAction::Verify.as_str()))
        (code_field(&CodeField {
            lang: v.lang,
            label: t.code_label,
            hints: &[t.hint, t.recovery_hint],
            error: v.error,
            autofocus: true,
            title: strings(v.lang).common.code_or_recovery_title,
            helpdesk: v.branding.helpdesk(v.lang),
        }))
        (button("primary", t.verify_button, None))
    };
    let content = html! {
        h1 { (t.title) }
        p { (fill(t.signing_in_as, "{account}", account)) }
        (post_form(v.form_action, v.csrf, form))
        p class="muted" { (fill(t.lost_phone, "{helpdesk}", v.branding.helpdesk(v.lang))) }
        p { a href="/" { (t.other_account) } }
    };
    render(v.lang, v.branding, t.title, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(b: &Branding) -> VerifyView<'_> {
        VerifyView {
            lang: Lang::En,
            branding: b,
            account: "jan@example.nl",
            form_action: "/_mfa/verify",
            csrf: "tok",
            error: None,
        }
    }

    #[test]
    fn names_the_account_and_says_recovery_codes_work_here() {
        let b = Branding::default();
        let page = verify_page(&view(&b));
        assert!(page.contains("<p>Signing in as <strong>jan@example.nl</strong></p>"));
        assert!(page.contains("recovery codes in the same field"));
        assert!(page.contains("Contact your administrator"));
        let named = Branding {
            helpdesk_name: Some("the Acme desk".into()),
            ..Branding::default()
        };
        assert!(verify_page(&view(&named)).contains("Contact the Acme desk; they can"));
        assert!(
            page.contains(r#"title="The 6‑digit code from your app, or a 20‑digit recovery code""#)
        );
        assert!(page.contains(r#"<a href="/">Sign in with a different account</a>"#));
        assert!(page.contains(" autofocus>"));
        assert!(page.contains(r#"name="action" value="verify""#));
    }

    #[test]
    fn errors_are_announced_in_the_page_language() {
        let b = Branding::default();
        let page = verify_page(&VerifyView {
            lang: Lang::Nl,
            error: Some(FormError::Locked { minutes: 15 }),
            ..view(&b)
        });
        assert!(page.contains(
            r#"<p class="alert" role="alert" id="code-error">Te veel pogingen. Probeer het over 15 minuten opnieuw. Kun je niet wachten? Vraag je beheerder om de blokkering op te heffen.</p>"#
        ));
        assert!(page.contains("<h1>Vul je inlogcode in</h1>"));
    }
}
