//! The invitation to turn on MFA, for roles where it is optional.
//!
//! It explains in two sentences what MFA is and why it helps, then offers two equally easy
//! choices in one form: "Set up now" (the primary button, first in order so Enter picks it)
//! and "Not now". Declining is never hidden or shamed; the page says it will ask again.

use maud::html;

use super::form::{FormAction, button, post_form};
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
        p class="muted" { (t.later_hint) }
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
        });
        let setup = page.find(r#"value="setup">Nu instellen</button>"#);
        let later = page.find(r#"value="postpone">Niet nu</button>"#);
        assert!(setup.is_some() && later.is_some());
        assert!(setup < later, "Enter must choose set up");
        assert!(page.contains("<h1>Beveilig je account met MFA</h1>"));
    }
}
