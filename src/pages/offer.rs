//! The invitation to turn on MFA, for roles where it is optional.
//!
//! It explains in two sentences what MFA is and why it helps, then offers two equally easy
//! choices in one form: "Set up now" (the primary button, first in order so Enter picks it)
//! and "Not now". Declining is never hidden or shamed; the page says it will ask again.

use std::fmt::Write;

use super::form::{FormAction, button, form_start};
use super::html::escape;
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
    let mut c = String::new();
    let _ = write!(
        c,
        r#"<h1>{}</h1><p>{}</p><p>{}</p>"#,
        escape(t.title),
        escape(t.explain),
        escape(t.optional)
    );
    c.push_str(&form_start(v.form_action, v.csrf));
    c.push_str(&button("primary", t.set_up_now, Some(FormAction::SetUp)));
    c.push_str(&button(
        "secondary",
        s.common.not_now,
        Some(FormAction::Postpone),
    ));
    let _ = write!(c, r#"</form><p class="muted">{}</p>"#, escape(t.later_hint));
    render(v.lang, v.branding, t.title, &c)
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
