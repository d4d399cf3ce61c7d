//! The invitation to turn on MFA, for roles where it is optional.
//!
//! It explains in two sentences what MFA is and why it helps, then offers two equally easy
//! choices in one form: "Set up now" (the primary button, first in order so Enter picks it)
//! and "Not now". Declining is never hidden or shamed; the page says exactly when it will ask
//! again (`mfa.offer_quiet_period`) and that MFA can be set up in the settings meanwhile.

use maud::html;

use super::form::{FormAction, button, post_form};
use super::html::fill;
use super::lang::Lang;
use super::layout::{Branding, render};
use super::strings::strings;

/// What the MFA offer page shows.
#[derive(Debug, Clone)]
pub struct OfferView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    pub form_action: &'a str,
    pub csrf: &'a str,
    /// How many days "Not now" keeps the offer away (0: until the next sign-in).
    pub quiet_days: u64,
}

/// Renders the MFA offer page.
pub fn offer_page(v: &OfferView<'_>) -> String {
    let s = strings(v.lang);
    let t = &s.offer;
    let choices = html! {
        (button("primary", t.set_up_now, Some(FormAction::SetUp)))
        (button("secondary", s.common.not_now, Some(FormAction::Postpone)))
    };
    let content = html! {
        h1 { (t.title) }
        p { (t.explain) }
        p { (t.optional) }
        (post_form(v.form_action, v.csrf, choices))
        p class="muted" {
            @match v.quiet_days {
                0 => (t.later_hint_next),
                1 => (t.later_hint_one_day),
                n => (fill(t.later_hint_days, "{days}", n)),
            }
        }
    };
    render(v.lang, v.branding, t.title, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_set_up_first_and_not_now_second() {
        let b = Branding::default();
        let page = offer_page(&OfferView {
            lang: Lang::Nl,
            branding: &b,
            form_action: "/_mfa/offer",
            csrf: "tok",
            quiet_days: 30,
        });
        let setup = page.find(r#"value="setup">Nu instellen</button>"#);
        let later = page.find(r#"value="postpone">Niet nu</button>"#);
        assert!(setup.is_some() && later.is_some());
        assert!(setup < later, "Enter must choose set up");
        assert!(page.contains("<h1>Beveilig je account met MFA</h1>"));
        assert!(
            page.contains("Kies je \u{2018}Niet nu\u{2019}, dan vragen we het 30 dagen niet meer.")
        );
    }

    #[test]
    fn says_when_the_offer_comes_back() {
        let b = Branding::default();
        let page = |quiet_days| {
            offer_page(&OfferView {
                lang: Lang::En,
                branding: &b,
                form_action: "/_mfa/offer",
                csrf: "tok",
                quiet_days,
            })
        };
        assert!(page(0).contains("we will ask again the next time you sign in."));
        assert!(page(1).contains("we won't ask again for a day."));
        assert!(page(14).contains("we won't ask again for 14 days."));
        assert!(!page(14).contains("next time"));
    }
}
