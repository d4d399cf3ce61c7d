//! The step before a first enrollment under `mfa.first_enrollment = "email_code"`: the code
//! mailed to the user is asked for, with "send a new code" and, where the enrollment allows
//! them, "Not now" and "Cancel"; and the page for a user whose address is not known, which
//! has no way forward but the MSP (fail closed).

use maud::html;

use super::form::{CodeField, FormAction, FormError, button, code_field, post_form};
use super::html::fill;
use super::lang::Lang;
use super::layout::{Branding, render};
use super::strings::{email_code_strings, strings};

/// A notice above the code field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailNotice {
    /// A new code was sent on request.
    SentAgain,
    /// No more codes for now.
    Limit,
}

/// What the code page shows.
#[derive(Debug, Clone)]
pub struct EmailCodeView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    /// The masked address the code went to.
    pub address: &'a str,
    pub form_action: &'a str,
    pub csrf: &'a str,
    pub error: Option<FormError>,
    pub notice: Option<EmailNotice>,
    pub minutes: u64,
    /// "Not now" (an enrollment in its grace period).
    pub can_postpone: bool,
    /// "Cancel" (an enrollment the user chose).
    pub can_cancel: bool,
}

/// Renders the page that asks for the e-mailed code.
pub fn email_code_page(v: &EmailCodeView<'_>) -> String {
    let s = strings(v.lang);
    let t = email_code_strings(v.lang);
    let helpdesk = v.branding.helpdesk(v.lang);
    let field = code_field(&CodeField {
        lang: v.lang,
        label: t.label,
        hints: &[],
        error: v.error,
        autofocus: true,
        title: t.format_title,
        helpdesk,
    });
    let form = html! {
        (field)
        (button("primary", t.continue_button, None))
    };
    let others = html! {
        (button("secondary", t.send_again, Some(FormAction::SendAgain)))
        @if v.can_postpone {
            (button("secondary", s.common.not_now, Some(FormAction::Postpone)))
        }
        @if v.can_cancel {
            (button("secondary", s.enroll.cancel, Some(FormAction::Cancel)))
        }
    };
    let content = html! {
        h1 { (t.title) }
        p { (fill(t.sent_to, "{address}", html! { strong { (v.address) } })) }
        p { (t.why) }
        @match v.notice {
            Some(EmailNotice::SentAgain) => p class="notice" role="status" { (t.sent_again) },
            Some(EmailNotice::Limit) => p class="alert" role="alert" {
                (fill(&t.limit.replace("{minutes}", &v.minutes.to_string()), "{helpdesk}", helpdesk))
            },
            None => {},
        }
        (post_form(v.form_action, v.csrf, form))
        p class="muted" { (fill(t.hint, "{minutes}", v.minutes)) }
        (post_form(v.form_action, v.csrf, others))
    };
    render(v.lang, v.branding, t.title, content)
}

/// The page for a user whose e-mail address is not known: the MSP must help.
pub fn email_unknown_page(lang: Lang, branding: &Branding) -> String {
    let t = email_code_strings(lang);
    let content = html! {
        h1 { (t.no_address_title) }
        p { (fill(t.no_address, "{helpdesk}", branding.helpdesk(lang))) }
    };
    render(lang, branding, t.no_address_title, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(b: &Branding, lang: Lang) -> EmailCodeView<'_> {
        EmailCodeView {
            lang,
            branding: b,
            address: "c\u{2022}\u{2022}\u{2022}@example.test",
            form_action: "/.mfa/enroll",
            csrf: "tok",
            error: None,
            notice: None,
            minutes: 15,
            can_postpone: false,
            can_cancel: false,
        }
    }

    #[test]
    fn asks_for_the_code_and_offers_a_new_one() {
        let b = Branding::default();
        let page = email_code_page(&view(&b, Lang::En));
        assert!(page.contains("<h1>Check your e-mail</h1>"));
        assert!(page.contains("<strong>c\u{2022}\u{2022}\u{2022}@example.test</strong>"));
        assert!(page.contains(r#"name="code""#));
        assert!(page.contains(r#"value="send-again">Send a new code</button>"#));
        assert!(page.contains("valid for 15 minutes"));
        assert!(!page.contains("postpone"));
        let nl = email_code_page(&EmailCodeView {
            notice: Some(EmailNotice::Limit),
            can_postpone: true,
            ..view(&b, Lang::Nl)
        });
        assert!(nl.contains("<h1>Kijk in je e-mail</h1>"));
        assert!(nl.contains("Probeer het over 15 minuten opnieuw"));
        assert!(nl.contains(r#"value="postpone">Niet nu</button>"#));
    }

    #[test]
    fn without_an_address_only_the_administrator_can_help() {
        let b = Branding::default();
        let page = email_unknown_page(Lang::En, &b);
        assert!(page.contains("no address is known for your account"));
        assert!(page.contains("your administrator"));
        assert!(!page.contains("<form"));
    }
}
