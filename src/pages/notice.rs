//! One-message interstitials shown in the middle of a sign-in, with a single "Continue".
//!
//! Some events need the user's attention once, at the moment they happen, before the VMS
//! takes over the screen: after signing in with a recovery code the user must learn that the
//! code is now spent and how many are left, because running out of codes while the phone is
//! lost leaves only the MSP as a way back in. The message is a page of its own rather than a
//! line on the next VMS page, which the gateway cannot change. Continuing is a POST with the
//! CSRF token, like every other gateway form, so the handler can release the session only
//! after the page was seen.

use maud::html;

use super::form::{ACTION_FIELD, FormAction, button, post_form};
use super::html::{fill, hidden_field};
use super::lang::Lang;
use super::layout::{Branding, render};
use super::strings::strings;

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// After signing in with a recovery code: how many remain (0 => strong advice to set up
    /// a new phone / ask for new codes).
    RecoveryCodeUsed { remaining: usize },
}

/// What the notice page shows.
#[derive(Debug, Clone)]
pub struct NoticeView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    pub kind: NoticeKind,
    pub form_action: &'a str,
    pub csrf: &'a str,
    /// Offer a second button that finishes signing in at the self-service page (the advice
    /// sends the user to their MFA settings).
    pub to_settings: bool,
}

/// The buttons that end the last page of a sign-in: "Continue" (to the application) and,
/// when offered, "Continue to your MFA settings".
pub(crate) fn finish_buttons(lang: Lang, label: &str, to_settings: bool) -> maud::Markup {
    html! {
        @if to_settings {
            (button("primary", label, Some(FormAction::Continue)))
            (button("secondary", strings(lang).common.continue_to_settings, Some(FormAction::Settings)))
        } @else {
            (hidden_field(ACTION_FIELD, FormAction::Continue.as_str()))
            (button("primary", label, None))
        }
    }
}

/// Renders a notice page; its button sends [`FormAction::Continue`].
pub fn notice_page(v: &NoticeView<'_>) -> String {
    let t = &strings(v.lang).notice;
    let (title, message) = match v.kind {
        NoticeKind::RecoveryCodeUsed { remaining } => (
            t.recovery_used_title,
            html! {
                h1 { (t.recovery_used_title) }
                p { (t.recovery_used_once) }
                @match remaining {
                    // No codes and possibly no phone: say so plainly, in a box that stands
                    // out.
                    0 => div class="warn" {
                        p { strong { (t.recovery_left_none) } }
                        p { (fill(t.recovery_none_advice, "{helpdesk}", v.branding.helpdesk(v.lang))) }
                    },
                    1 => p { strong { (t.recovery_left_one) } },
                    n => p { strong { (fill(t.recovery_left_many, "{count}", n)) } },
                }
                @if remaining > 0 {
                    p class="muted" {
                        (fill(strings(v.lang).verify.lost_phone, "{helpdesk}", v.branding.helpdesk(v.lang)))
                    }
                }
            },
        ),
    };
    let form = finish_buttons(v.lang, t.continue_button, v.to_settings);
    let content = html! {
        (message)
        (post_form(v.form_action, v.csrf, form))
    };
    render(v.lang, v.branding, title, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(lang: Lang, remaining: usize) -> String {
        notice_page(&NoticeView {
            lang,
            branding: &Branding::default(),
            kind: NoticeKind::RecoveryCodeUsed { remaining },
            form_action: "/.mfa/notice",
            csrf: "tok",
            to_settings: false,
        })
    }

    #[test]
    fn says_how_many_codes_are_left_with_the_right_noun() {
        assert!(
            page(Lang::En, 7).contains("<strong>You have 7 unused recovery codes left.</strong>")
        );
        assert!(
            page(Lang::En, 1).contains("<strong>You have 1 unused recovery code left.</strong>")
        );
        assert!(
            page(Lang::Nl, 7).contains("<strong>Je hebt nog 7 ongebruikte herstelcodes.</strong>")
        );
        assert!(
            page(Lang::Nl, 1).contains("<strong>Je hebt nog 1 ongebruikte herstelcode.</strong>")
        );
    }

    #[test]
    fn no_codes_left_is_a_warning_with_both_ways_out() {
        let t = &strings(Lang::En).notice;
        let none = page(Lang::En, 0);
        assert!(none.contains(r#"<div class="warn"><p><strong>That was your last recovery code."#));
        assert!(t.recovery_none_advice.contains("new codes"));
        assert!(none.contains("Ask your administrator to disconnect MFA"));
        let some = page(Lang::En, 3);
        assert!(!some.contains("class=\"warn\""));
        assert!(!some.contains("Ask your administrator"));
        assert!(some.contains("Contact your administrator"));
    }

    #[test]
    fn continue_posts_the_continue_action() {
        let p = page(Lang::Nl, 2);
        assert!(p.contains(r#"<form method="post" action="/.mfa/notice">"#));
        assert!(p.contains(r#"<input type="hidden" name="action" value="continue">"#));
        assert!(p.contains(r#"<button class="primary" type="submit">Doorgaan</button>"#));
        assert_eq!(p.matches("<form ").count(), 1);
    }
}
