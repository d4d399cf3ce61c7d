//! The step before a new app is paired after an MSP reset: the user types the one-time
//! enrollment code the helpdesk read to them on the phone. The QR code and pairing code of the
//! enrollment page are shown only after the right code.
//!
//! An expired code, or one used or replaced already, gets no form: the page says to call the
//! helpdesk for a new code. Where the enrollment is opt-in, Cancel continues without MFA, as on
//! the enrollment page.

use maud::html;

use super::enroll::Cancel;
use super::form::{ACTION_FIELD, CodeField, FormAction, FormError, button, code_field, post_form};
use super::html::{fill, hidden_field};
use super::lang::Lang;
use super::layout::{Branding, render};
use super::strings::strings;
use super::visible::visible;

/// What the enrollment-code page can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentCodeState {
    /// A code is waiting: the form.
    Pending,
    /// The code has expired: call for a new one.
    Expired,
    /// No code is waiting (used or replaced): call for a new one.
    NonePending,
}

/// The enrollment-code page.
#[derive(Debug, Clone)]
pub struct EnrollmentCodeView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    /// The account that is signing in.
    pub account: &'a str,
    pub form_action: &'a str,
    pub csrf: &'a str,
    pub error: Option<FormError>,
    pub state: EnrollmentCodeState,
    /// Opt-in enrollment: continue without MFA.
    pub cancel: Option<Cancel<'a>>,
}

/// Renders the enrollment-code page.
pub fn enrollment_code_page(v: &EnrollmentCodeView<'_>) -> String {
    let t = &strings(v.lang).enrollment_code;
    let helpdesk = v.branding.helpdesk(v.lang);
    let account = html! { strong { (visible(v.account)) } };
    let signing_in = strings(v.lang).verify.signing_in_as;
    let (title, content) = match v.state {
        EnrollmentCodeState::Pending => {
            let form = html! {
                (hidden_field(ACTION_FIELD, FormAction::Confirm.as_str()))
                (code_field(&CodeField {
                    lang: v.lang,
                    label: t.code_label,
                    hints: &[t.hint],
                    error: v.error,
                    autofocus: true,
                    title: t.code_title,
                    helpdesk,
                }))
                (button("primary", t.continue_button, None))
            };
            (
                t.title,
                html! {
                    h1 { (t.title) }
                    p { (fill(signing_in, "{account}", account)) }
                    p { (fill(t.intro, "{helpdesk}", helpdesk)) }
                    (post_form(v.form_action, v.csrf, form))
                },
            )
        }
        EnrollmentCodeState::Expired | EnrollmentCodeState::NonePending => {
            let (title, text) = if v.state == EnrollmentCodeState::Expired {
                (t.expired_title, t.expired_text)
            } else {
                (t.none_title, t.none_text)
            };
            (
                title,
                html! {
                    h1 { (title) }
                    p { (fill(signing_in, "{account}", account)) }
                    p role="alert" class="alert" { (fill(text, "{helpdesk}", helpdesk)) }
                    p { a href="/" { (strings(v.lang).common.back_to_sign_in) } }
                },
            )
        }
    };
    let e = &strings(v.lang).enroll;
    let content = html! {
        (content)
        @match v.cancel {
            Some(Cancel::Form) => {
                (post_form(
                    v.form_action,
                    v.csrf,
                    button("secondary", e.cancel, Some(FormAction::Cancel)),
                ))
                p class="muted" { (e.cancel_hint) }
            }
            Some(Cancel::Link(to)) => a class="button secondary" href=(to) { (e.cancel) },
            None => {}
        }
    };
    render(v.lang, v.branding, title, content)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn view(b: &Branding, state: EnrollmentCodeState) -> EnrollmentCodeView<'_> {
        EnrollmentCodeView {
            lang: Lang::En,
            branding: b,
            account: "jan@example.nl",
            form_action: "/.mfa/enrollment-code",
            csrf: "tok",
            error: None,
            state,
            cancel: None,
        }
    }

    #[test]
    fn asks_for_the_code_with_a_numeric_field_and_names_the_helpdesk() {
        let b = Branding {
            helpdesk_name: Some("the Acme desk".into()),
            ..Branding::default()
        };
        let page = enrollment_code_page(&view(&b, EnrollmentCodeState::Pending));
        assert!(
            page.contains("<h1>Enter your enrollment code</h1>"),
            "{page}"
        );
        assert!(page.contains("that the Acme desk read to you on the phone"));
        assert!(page.contains(r#"name="code""#) && page.contains(r#"inputmode="numeric""#));
        assert!(page.contains(r#"action="/.mfa/enrollment-code""#));
        assert!(page.contains("<strong>jan@example.nl</strong>"));
        assert!(!page.contains("otpauth") && !page.contains("class=\"qr\""));
        let nl = enrollment_code_page(&EnrollmentCodeView {
            lang: Lang::Nl,
            ..view(&b, EnrollmentCodeState::Pending)
        });
        assert!(nl.contains("Vul je koppelingscode in"), "{nl}");
    }

    #[test]
    fn an_expired_or_used_code_gets_no_form_but_the_way_to_a_new_one() {
        let b = Branding::default();
        for (state, words) in [
            (
                EnrollmentCodeState::Expired,
                "Call your administrator for a new enrollment code",
            ),
            (
                EnrollmentCodeState::NonePending,
                "has been used or replaced. Call your administrator",
            ),
        ] {
            let page = enrollment_code_page(&view(&b, state));
            assert!(page.contains(words), "{page}");
            assert!(!page.contains(r#"name="code""#), "{page}");
        }
    }

    #[test]
    fn a_wrong_code_is_said_and_opt_in_can_cancel() {
        let b = Branding::default();
        let page = enrollment_code_page(&EnrollmentCodeView {
            error: Some(FormError::WrongCodeLeft { left: 1 }),
            cancel: Some(Cancel::Form),
            ..view(&b, EnrollmentCodeState::Pending)
        });
        assert!(page.contains(r#"role="alert""#), "{page}");
        assert!(page.contains(r#"name="action" value="cancel">Cancel</button>"#));
    }
}
