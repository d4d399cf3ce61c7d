//! The recovery codes, shown exactly once right after a successful enrollment.
//!
//! The codes are the user's way in when the phone is not at hand, so the page asks them to
//! store the codes before continuing, shows them in a large monospace grid that is easy to
//! copy or print, and says they will not be shown again.

use maud::html;

use super::form::{ACTION_FIELD, FormAction, button, post_form};
use super::html::hidden_field;
use super::lang::Lang;
use super::layout::{Branding, render};
use super::strings::strings;

/// What the recovery codes page shows.
#[derive(Debug, Clone)]
pub struct RecoveryCodesView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    /// The one-time recovery codes, formatted for reading.
    pub codes: &'a [String],
    pub form_action: &'a str,
    pub csrf: &'a str,
}

/// Renders the recovery codes page.
pub fn recovery_codes_page(v: &RecoveryCodesView<'_>) -> String {
    let t = &strings(v.lang).recovery;
    let form = html! {
        (hidden_field(ACTION_FIELD, FormAction::Continue.as_str()))
        (button("primary", t.continue_button, None))
    };
    let content = html! {
        h1 { (t.title) }
        p { (t.intro) }
        ol class="codes" aria-label=(t.codes_label) {
            @for code in v.codes {
                li { (code) }
            }
        }
        p { (t.keep_safe) }
        (post_form(v.form_action, v.csrf, form))
    };
    render(v.lang, v.branding, t.title, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_code_once_in_order() {
        let b = Branding::default();
        let codes: Vec<String> = (0..10).map(|i| format!("1234 567{i}")).collect();
        let page = recovery_codes_page(&RecoveryCodesView {
            lang: Lang::En,
            branding: &b,
            codes: &codes,
            form_action: "/_mfa/done",
            csrf: "tok",
        });
        assert_eq!(page.matches("<li>").count(), 10);
        let mut last = 0;
        for code in &codes {
            let at = page.find(&format!("<li>{code}</li>"));
            assert!(
                at.is_some_and(|at| at > last),
                "{code} missing or out of order"
            );
            last = at.unwrap_or_default();
        }
        assert!(page.contains(r#"aria-label="Recovery codes""#));
        assert!(page.contains(r#"name="action" value="continue""#));
    }
}
