//! The login code challenge, shown after the VMS accepted the password and before the
//! gateway releases the session.
//!
//! One field takes either the app's 6-digit code or a recovery code, and the page says so,
//! so a user without their phone does not have to hunt for another page. It also tells a
//! user who lost their phone what to do (the helpdesk, `mfa.helpdesk_name`, disconnects MFA), and offers a way back to
//! the sign-in page for someone on the wrong account.
//!
//! Where the policy allows it for the role (`remember_browser_days`), a checkbox under the
//! field offers "Don't ask for a code on this browser for N days", with a line saying to tick
//! it only on a device nobody else uses. Unticked by default: remembering is the user's choice.

use maud::html;

use super::form::{ACTION_FIELD, CodeField, FormAction, FormError, button, code_field, post_form};
use super::html::{fill, hidden_field};
use super::lang::Lang;
use super::layout::{Branding, render};
use super::passkey::{Ceremony, passkey_block};
use super::strings::strings;
use super::visible::visible;

/// The "remember this browser" checkbox, sent as [`REMEMBER_VALUE`] only when ticked.
pub const REMEMBER_FIELD: &str = "remember";
/// The value the ticked checkbox sends.
pub const REMEMBER_VALUE: &str = "yes";

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
    /// Days the browser may be remembered for this role (0: no checkbox).
    pub remember_days: u32,
    /// The options of a passkey sign-in (JSON) when the user has a passkey and the role's
    /// methods count it: offered first, the code form then follows as "use a code instead".
    pub passkey: Option<&'a str>,
    /// The last passkey answer was refused: said at the passkey button.
    pub passkey_refused: bool,
    /// Codes from the app count for the role; `false`: the code field takes recovery codes
    /// only.
    pub app_codes: bool,
}

/// Renders the login code page.
pub fn verify_page(v: &VerifyView<'_>) -> String {
    let t = &strings(v.lang).verify;
    let pk = &strings(v.lang).passkey;
    let account = html! { strong { (visible(v.account)) } };
    let (label, hints): (&str, [&str; 2]) = if v.app_codes {
        (t.code_label, [t.hint, t.recovery_hint])
    } else {
        (pk.recovery_label, [pk.recovery_hint, pk.codes_not_allowed])
    };
    let form = html! {
        (hidden_field(ACTION_FIELD, FormAction::Verify.as_str()))
        (code_field(&CodeField {
            lang: v.lang,
            label,
            hints: &hints,
            error: v.error,
            autofocus: v.passkey.is_none(),
            title: strings(v.lang).common.code_or_recovery_title,
            helpdesk: v.branding.helpdesk(v.lang),
        }))
        @if v.remember_days > 0 && v.app_codes {
            div class="check" {
                input type="checkbox" id=(REMEMBER_FIELD) name=(REMEMBER_FIELD)
                    value=(REMEMBER_VALUE) aria-describedby="remember-hint";
                label for=(REMEMBER_FIELD) {
                    @if v.remember_days == 1 {
                        (t.remember_one_day)
                    } @else {
                        (fill(t.remember_days, "{days}", v.remember_days))
                    }
                }
            }
            p class="muted" id="remember-hint" { (t.remember_hint) }
        }
        (button("primary", t.verify_button, None))
    };
    let title = if v.passkey.is_some() {
        pk.sign_in_button
    } else {
        t.title
    };
    let content = html! {
        h1 { (title) }
        p { (fill(t.signing_in_as, "{account}", account)) }
        @if v.passkey_refused {
            p class="alert" role="alert" { (pk.refused) }
        }
        @if let Some(options) = v.passkey {
            p { (pk.sign_in_intro) }
            (passkey_block(v.lang, Ceremony::SignIn, options, v.form_action, v.csrf,
                pk.sign_in_button, html! {}))
            h2 { (if v.app_codes { pk.use_code_instead } else { pk.use_recovery_instead }) }
        }
        (post_form(v.form_action, v.csrf, form))
        p class="muted" { (fill(t.lost_phone, "{helpdesk}", v.branding.helpdesk(v.lang))) }
        p { a href="/" { (t.other_account) } }
    };
    render(v.lang, v.branding, title, content)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn view(b: &Branding) -> VerifyView<'_> {
        VerifyView {
            lang: Lang::En,
            branding: b,
            account: "jan@example.nl",
            form_action: "/_mfa/verify",
            csrf: "tok",
            error: None,
            remember_days: 0,
            passkey: None,
            passkey_refused: false,
            app_codes: true,
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
    fn the_remember_checkbox_is_offered_only_where_the_policy_allows_it() {
        let b = Branding::default();
        let off = verify_page(&view(&b));
        assert!(!off.contains("name=\"remember\""), "{off}");
        assert!(!off.contains("this browser"));
        let on = verify_page(&VerifyView {
            remember_days: 30,
            ..view(&b)
        });
        assert!(
            on.contains(concat!(
                r#"<input type="checkbox" id="remember" name="remember" value="yes" "#,
                r#"aria-describedby="remember-hint">"#,
                r#"<label for="remember">Don't ask for a code on this browser for 30 days</label>"#
            )),
            "{on}"
        );
        assert!(!on.contains(" checked"), "unticked by default");
        // Inside the form, before the button.
        let form = &on[on.find("<form").unwrap()..on.find("</form>").unwrap()];
        assert!(form.find("name=\"remember\"").unwrap() < form.find("<button").unwrap());
        let one = verify_page(&VerifyView {
            remember_days: 1,
            lang: Lang::Nl,
            ..view(&b)
        });
        assert!(
            one.contains(">De komende dag niet om een code vragen in deze browser</label>"),
            "{one}"
        );
        let nl = verify_page(&VerifyView {
            remember_days: 14,
            lang: Lang::Nl,
            ..view(&b)
        });
        assert!(
            nl.contains(">De komende 14 dagen niet om een code vragen in deze browser</label>"),
            "{nl}"
        );
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

    #[test]
    fn a_passkey_is_offered_first_and_codes_follow_where_they_count() {
        let b = Branding::default();
        let both = verify_page(&VerifyView {
            passkey: Some(r#"{"publicKey":{}}"#),
            ..view(&b)
        });
        let pk = both.find("id=\"pk-go\"").unwrap();
        let code = both.find("name=\"code\"").unwrap();
        assert!(pk < code, "passkey first");
        assert!(both.contains("<h1>Sign in with a passkey</h1>"), "{both}");
        assert!(both.contains("<h2>Or use a code instead</h2>"), "{both}");
        assert!(
            !both.contains(" autofocus"),
            "the code field does not take the focus"
        );
        let only = verify_page(&VerifyView {
            passkey: Some("{}"),
            app_codes: false,
            remember_days: 30,
            ..view(&b)
        });
        assert!(
            only.contains("<h2>Lost your passkey? Use a recovery code</h2>"),
            "{only}"
        );
        assert!(
            only.contains("<label for=\"code\">Recovery code</label>"),
            "{only}"
        );
        assert!(
            !only.contains("name=\"remember\""),
            "no remembering without app codes"
        );
        let plain = verify_page(&view(&b));
        assert!(!plain.contains("<script"));
        assert!(!plain.contains("pk-go"));
    }
}
