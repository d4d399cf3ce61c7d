//! The self-service page: a signed-in user sees their own MFA and changes what they may.
//!
//! Most MFA support calls are "I have a new phone" and "I used up my recovery codes"; both can
//! be done by the user as long as the old phone still works, so the page offers them with a
//! plain explanation of what happens. Every change that weakens or moves the second factor
//! (replace the phone, new recovery codes, turn MFA off) asks for a current code in its own
//! form (without the app: a passkey, on a page of its own), so a session left open on a shared computer is not enough to take over the account.
//! Turning MFA off appears only where the role's policy makes MFA optional; where it is
//! required the page says so and that a lost phone goes through the MSP.
//!
//! ```text
//!   signed in as … / back to the application; h1; confirmation (role=status); an error
//!   (alert) at the form whose code failed, or here when no form is to blame
//!   state: on (the app or a passkey) with its methods, since … / last used … / off;
//!          required or optional
//!   [nothing set up] Turn on MFA          -> setup_action     (no code)
//!   [passkeys only]  Add the app          -> setup_action     (no code)
//!   [app]          Replace your phone     -> repair_action    (code)
//!   [+ recovery]   Recovery codes: N left -> recovery_action  (code)
//!   [+ optional]   Turn off MFA           -> disable_action   (code; removes the app, the
//!                                            recovery codes and every passkey)
//!   [passkeys only, no app: the same two, confirmed with a passkey]
//!   [+ recovery]   Recovery codes: N left -> recovery_action  (no code: opens the passkey
//!                                            confirmation, which posts the answer there)
//!   [+ optional]   Turn off MFA           -> disable_action   (likewise)
//!   [remembered]   Remembered browsers: each with remembered on / last used and
//!                  "Forget", then "Forget all"  -> forget_action (no code: forgetting only
//!                  ever asks for more)
//! ```
//!
//! The page has up to three code fields, so each has its own element id
//! (`code-<action>`); all send the code as [`super::CODE_FIELD`].

use maud::{Markup, html};

use super::form::{
    ACTION_FIELD, CodeField, FormAction, FormError, button, code_field_with_id, post_form,
};
use super::html::{fill, hidden_field};
use super::lang::Lang;
use super::layout::{Branding, render};
use super::strings::{AccountText, PasskeyText, strings};
use super::visible::visible;

/// Forget form: the store id of the browser to forget (with [`FormAction::ForgetBrowser`]).
pub const BROWSER_FIELD: &str = "browser";

/// One remembered browser, as the account page lists it.
#[derive(Debug, Clone)]
pub struct BrowserItem {
    /// The store's id, sent back by its "Forget" form.
    pub id: String,
    /// A known browser name ("Firefox"), `None` if not recognised.
    pub browser: Option<String>,
    /// A known system name ("Windows"), `None` if not recognised.
    pub system: Option<String>,
    /// Preformatted date-time text.
    pub remembered_on: String,
    pub last_used: String,
    /// The browser this page is shown in.
    pub this_browser: bool,
}

/// What the account page shows.
#[derive(Debug, Clone)]
pub struct AccountView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    /// User name.
    pub account: &'a str,
    /// The authenticator app is set up.
    pub enrolled: bool,
    /// The user's passkeys: with the app, the methods that make MFA on (either one is).
    pub passkey_count: usize,
    /// Preformatted date-time text, e.g. "2026-11-27 14:03 UTC".
    pub enrolled_since: Option<&'a str>,
    pub last_used: Option<&'a str>,
    /// The role's policy today is `enforced`.
    pub required: bool,
    /// The role's policy today does not use MFA (`none`): nothing to set up, no button.
    pub not_used: bool,
    /// The role's methods count the app's codes: only then is the app's set-up offered
    /// (where they count passkeys only, the passkeys section is the way to turn MFA on).
    pub app_counts: bool,
    /// Policy `available` (or none) and MFA on (turning MFA off removes the app, the recovery
    /// codes and every passkey; it needs a code from the app, or without the app a passkey).
    pub can_disable: bool,
    /// The user has passkeys and no app, and the gateway offers passkeys: new recovery codes
    /// and turning MFA off are confirmed with a passkey, on a page of their own (the
    /// change's form action, without a code, shows it).
    pub confirm_with_passkey: bool,
    /// The policy offers recovery codes.
    pub recovery_enabled: bool,
    pub recovery_remaining: usize,
    pub csrf: &'a str,
    /// POST code -> replace phone (needs current code).
    pub repair_action: &'a str,
    /// POST code -> new recovery codes (needs current code).
    pub recovery_action: &'a str,
    /// POST code -> turn MFA off (needs current code).
    pub disable_action: &'a str,
    /// POST (no code) -> set up MFA when not enrolled.
    pub setup_action: &'a str,
    /// Shown after a failed code: at the form that was sent (`failed`), or at the top
    /// (role="alert") when no single form is to blame (an expired page, say).
    pub error: Option<FormError>,
    /// The form whose code failed: its field carries the error and takes the focus.
    pub failed: Option<FormAction>,
    /// Confirmation after a successful change.
    pub message: Option<AccountMessage>,
    /// The user's remembered browsers, most recently used first (none: no section).
    pub browsers: &'a [BrowserItem],
    /// POST -> forget one browser ([`BROWSER_FIELD`]) or all of them (no code).
    pub forget_action: &'a str,
    /// The user's passkeys and where to add, rename and remove them; `None` where the
    /// gateway offers no passkeys to the user.
    pub passkeys: Option<PasskeysView<'a>>,
}

/// The account page's passkeys section.
#[derive(Debug, Clone)]
pub struct PasskeysView<'a> {
    pub items: &'a [super::passkey::PasskeyItem],
    pub add_action: &'a str,
    pub rename_action: &'a str,
    pub remove_action: &'a str,
}

/// A change that just succeeded, confirmed at the top of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountMessage {
    PhoneReplaced,
    RecoveryCodesReplaced,
    MfaDisabled,
    MfaEnabled,
    /// A set-up or replacement was refused: the MFA changed while it was in progress.
    ChangedMeanwhile,
    /// One remembered browser was forgotten.
    BrowserForgotten,
    /// Every remembered browser was forgotten.
    BrowsersForgotten,
    /// A set-up refused since an MSP reset: the pairing needs the one-time enrollment code,
    /// typed in a sign-in.
    EnrollmentCodeNeeded,
    /// A first set-up refused with `first_enrollment = "email_code"`: it is done in a
    /// sign-in, after the mailed code.
    EmailCodeNeeded,
    /// Another factor is added only soon after a sign-in with MFA.
    SignInAgain,
    PasskeyAdded,
    PasskeyRenamed,
    PasskeyRemoved,
    /// A passkey was kept: it is the last method the role may sign in with.
    PasskeyLastMethod,
}

impl AccountMessage {
    fn text(self, t: &AccountText, pk: &PasskeyText) -> &'static str {
        match self {
            AccountMessage::PasskeyAdded => pk.done_added,
            AccountMessage::PasskeyRenamed => pk.done_renamed,
            AccountMessage::PasskeyRemoved => pk.done_removed,
            AccountMessage::PasskeyLastMethod => pk.last_method,
            AccountMessage::PhoneReplaced => t.done_phone_replaced,
            AccountMessage::RecoveryCodesReplaced => t.done_recovery_replaced,
            AccountMessage::MfaDisabled => t.done_disabled,
            AccountMessage::MfaEnabled => t.done_enabled,
            AccountMessage::ChangedMeanwhile => t.changed_meanwhile,
            AccountMessage::BrowserForgotten => t.done_browser_forgotten,
            AccountMessage::BrowsersForgotten => t.done_browsers_forgotten,
            AccountMessage::EnrollmentCodeNeeded => t.needs_enrollment_code,
            AccountMessage::EmailCodeNeeded => t.needs_email_code,
            AccountMessage::SignInAgain => t.sign_in_again_to_add,
        }
    }
}

/// Renders the account page.
pub fn account_page(v: &AccountView<'_>) -> String {
    let s = strings(v.lang);
    let t = &s.account;
    let account = html! { strong { (visible(v.account)) } };
    let content = html! {
        p class="muted who" {
            span { (fill(s.common.signed_in_as, "{account}", account)) }
            a href="/" { (t.back) }
        }
        h1 { (t.title) }
        @if let Some(message) = v.message {
            @if message == AccountMessage::PasskeyLastMethod {
                p class="alert" role="alert" { (message.text(t, &s.passkey)) }
            } @else {
                p class="ok" role="status" {
                    (fill(message.text(t, &s.passkey), "{helpdesk}", v.branding.helpdesk(v.lang)))
                }
            }
        }
        @if let (Some(error), None) = (v.error, v.failed) {
            p class="alert" role="alert" { (error.message(v.lang)) }
        }
        (state(v, t))
        @if v.enrolled {
            (change_section(v, &Change {
                action: FormAction::ReplacePhone,
                target: v.repair_action,
                heading: t.replace_heading,
                intro: html! { p { (t.replace_text) } },
                label: t.replace_code_label,
                class: "primary",
                submit: t.replace_button,
            }))
            @if v.recovery_enabled {
                (change_section(v, &Change {
                    action: FormAction::NewRecoveryCodes,
                    target: v.recovery_action,
                    heading: t.recovery_heading,
                    intro: recovery_intro(v.recovery_remaining, t, t.recovery_text),
                    label: t.recovery_code_label,
                    class: "secondary",
                    submit: t.recovery_button,
                }))
            }
            @if v.can_disable {
                (change_section(v, &Change {
                    action: FormAction::Disable,
                    target: v.disable_action,
                    heading: t.disable_heading,
                    intro: html! {
                        p { (t.disable_text) }
                        @match v.passkey_count {
                            0 => {},
                            1 => p { strong { (t.disable_passkeys_one) } },
                            n => p { strong { (fill(t.disable_passkeys_many, "{count}", n)) } },
                        }
                    },
                    label: t.disable_code_label,
                    class: "danger",
                    submit: t.disable_button,
                }))
            }
        } @else if !v.not_used && v.app_counts {
            @let (heading, text, submit) = if v.passkey_count > 0 {
                (t.setup_app_heading, t.setup_app_text, t.setup_app_button)
            } else {
                (t.setup_heading, t.setup_text, t.setup_button)
            };
            section aria-labelledby="h-setup" {
                h2 id="h-setup" { (heading) }
                p { (text) }
                (post_form(v.setup_action, v.csrf, html! {
                    (hidden_field(ACTION_FIELD, FormAction::SetUp.as_str()))
                    (button("primary", submit, None))
                }))
            }
        }
        @if !v.enrolled && v.confirm_with_passkey {
            @if v.recovery_enabled {
                (passkey_change(v, &Change {
                    action: FormAction::NewRecoveryCodes,
                    target: v.recovery_action,
                    heading: t.recovery_heading,
                    intro: recovery_intro(v.recovery_remaining, t, s.passkey.recovery_text),
                    label: s.passkey.confirm_how,
                    class: "secondary",
                    submit: s.passkey.confirm_start_recovery,
                }))
            }
            @if v.can_disable {
                (passkey_change(v, &Change {
                    action: FormAction::Disable,
                    target: v.disable_action,
                    heading: t.disable_heading,
                    intro: html! {
                        p { (t.disable_text) }
                        @match v.passkey_count {
                            0 => {},
                            1 => p { strong { (t.disable_passkeys_one) } },
                            n => p { strong { (fill(t.disable_passkeys_many, "{count}", n)) } },
                        }
                    },
                    label: s.passkey.confirm_how,
                    class: "danger",
                    submit: s.passkey.confirm_start_disable,
                }))
            }
        }
        @if let Some(pk) = &v.passkeys {
            (super::passkey::passkeys_section(
                v.lang, pk.items, v.csrf, pk.add_action, pk.rename_action, pk.remove_action,
            ))
        }
        @if !v.browsers.is_empty() {
            (browsers_section(v, t))
        }
    };
    render(v.lang, v.branding, t.title, content)
}

/// On or off (on: the app or a passkey), its methods, since when, last used, and whether the
/// role requires it.
fn state(v: &AccountView<'_>, t: &AccountText) -> Markup {
    let helpdesk = v.branding.helpdesk(v.lang);
    let on = v.enrolled || v.passkey_count > 0;
    let policy = match (v.required, on) {
        _ if v.not_used && !on => html! { (t.not_used) },
        (true, true) => html! { (fill(t.required_on, "{helpdesk}", helpdesk)) },
        (true, false) => html! { (t.required_off) },
        (false, _) => html! { (t.optional) },
    };
    html! {
        // Where MFA is not used, "off" would suggest it could be turned on: the policy line
        // below says it all.
        @if on || !v.not_used {
            p { strong { (if on { t.state_on } else { t.state_off }) } }
        }
        @if on {
            dl class="facts" {
                dt { (t.methods_label) }
                dd {
                    (t.methods_value
                        .replace("{app}", if v.enrolled { t.yes } else { t.no })
                        .replace("{count}", &v.passkey_count.to_string()))
                }
                @if v.enrolled {
                    @if let Some(since) = v.enrolled_since {
                        dt { (t.since_label) }
                        dd { (since) }
                    }
                    dt { (t.last_used_label) }
                    dd { (v.last_used.unwrap_or(t.never_used)) }
                }
            }
        }
        p { (policy) }
        @if v.enrolled && !v.required {
            p class="muted" { (fill(strings(v.lang).verify.lost_phone, "{helpdesk}", helpdesk)) }
        }
    }
}

/// The remembered browsers, each with its own "Forget" form, and "Forget all".
fn browsers_section(v: &AccountView<'_>, t: &AccountText) -> Markup {
    html! {
        section aria-labelledby="h-browsers" {
            h2 id="h-browsers" { (t.browsers_heading) }
            p { (t.browsers_text) }
            ul class="browsers" {
                @for (i, b) in v.browsers.iter().enumerate() {
                    @let name_id = format!("browser-{i}");
                    li {
                        p id=(name_id) {
                            // From a short list of known names, but read from the store.
                            strong { (visible(&browser_name(b, t))) }
                            @if b.this_browser {
                                " " span class="muted" { (t.this_browser) }
                            }
                        }
                        dl class="facts" {
                            dt { (t.browser_remembered_label) }
                            dd { (b.remembered_on) }
                            dt { (t.browser_last_used_label) }
                            dd { (b.last_used) }
                        }
                        (post_form(v.forget_action, v.csrf, html! {
                            (hidden_field(ACTION_FIELD, FormAction::ForgetBrowser.as_str()))
                            (hidden_field(BROWSER_FIELD, &b.id))
                            button class="secondary" type="submit" aria-describedby=(name_id) {
                                (t.forget_button)
                            }
                        }))
                    }
                }
            }
            (post_form(v.forget_action, v.csrf, html! {
                (hidden_field(ACTION_FIELD, FormAction::ForgetAllBrowsers.as_str()))
                (button("danger", t.forget_all_button, None))
            }))
        }
    }
}

/// "Firefox on Windows", or the parts that are known.
fn browser_name(b: &BrowserItem, t: &AccountText) -> String {
    let browser = b.browser.as_deref().unwrap_or(t.browser_unknown);
    match b.system.as_deref() {
        Some(system) => t
            .browser_on
            .replace("{browser}", browser)
            .replace("{system}", system),
        None => browser.to_string(),
    }
}

/// A change to the user's MFA that needs a current code: one section, one form.
struct Change<'a> {
    action: FormAction,
    target: &'a str,
    heading: &'a str,
    /// Explanation above the form.
    intro: Markup,
    label: &'a str,
    /// Button style: `primary`, `secondary` or `danger`.
    class: &'a str,
    submit: &'a str,
}

/// Heading, explanation, and a form with the CSRF token, the action, a code field with its
/// own id and one button.
fn change_section(v: &AccountView<'_>, ch: &Change<'_>) -> Markup {
    let action = ch.action.as_str();
    let heading_id = format!("h-{action}");
    let form = html! {
        (hidden_field(ACTION_FIELD, action))
        (code_field_with_id(
            &CodeField {
                lang: v.lang,
                label: ch.label,
                hints: &[],
                // The form that was sent carries its error (and the focus), so the user sees
                // it where they typed; the others stay as they were.
                error: v.error.filter(|_| v.failed == Some(ch.action)),
                autofocus: v.failed == Some(ch.action),
                title: strings(v.lang).common.code_title,
                helpdesk: v.branding.helpdesk(v.lang),
            },
            &format!("code-{action}"),
        ))
        (button(ch.class, ch.submit, None))
    };
    html! {
        section aria-labelledby=(heading_id) {
            h2 id=(heading_id) { (ch.heading) }
            (ch.intro)
            (post_form(ch.target, v.csrf, form))
        }
    }
}

/// A change confirmed with a passkey (a user without the app): heading, explanation, how it
/// is confirmed (`label`), and a form without a code whose button opens the confirmation.
fn passkey_change(v: &AccountView<'_>, ch: &Change<'_>) -> Markup {
    let action = ch.action.as_str();
    let heading_id = format!("h-{action}");
    html! {
        section aria-labelledby=(heading_id) {
            h2 id=(heading_id) { (ch.heading) }
            (ch.intro)
            p class="muted" { (ch.label) }
            (post_form(ch.target, v.csrf, html! {
                (hidden_field(ACTION_FIELD, action))
                (button(ch.class, ch.submit, None))
            }))
        }
    }
}

/// "N unused codes left" (a warning at zero) and what making new ones does (`text`).
fn recovery_intro(remaining: usize, t: &AccountText, text: &str) -> Markup {
    html! {
        @match remaining {
            0 => p class="warn" { strong { (t.recovery_left_none) } },
            1 => p { strong { (t.recovery_left_one) } },
            n => p { strong { (fill(t.recovery_left_many, "{count}", n)) } },
        }
        p { (text) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn view(b: &Branding) -> AccountView<'_> {
        AccountView {
            lang: Lang::En,
            branding: b,
            account: "jan@example.nl",
            enrolled: true,
            passkey_count: 0,
            enrolled_since: Some("2026-11-27 14:03 UTC"),
            last_used: Some("2026-12-01 08:15 UTC"),
            required: false,
            not_used: false,
            app_counts: true,
            can_disable: true,
            confirm_with_passkey: false,
            recovery_enabled: true,
            recovery_remaining: 7,
            csrf: "tok",
            repair_action: "/.mfa/account/repair",
            recovery_action: "/.mfa/account/recovery",
            disable_action: "/.mfa/account/disable",
            setup_action: "/.mfa/account/setup",
            error: None,
            failed: None,
            message: None,
            browsers: &[],
            forget_action: "/.mfa/account/forget-browsers",
            passkeys: None,
        }
    }

    fn form_to<'p>(page: &'p str, target: &str) -> Option<&'p str> {
        page.split("<form ")
            .skip(1)
            .map(|f| f.split("</form>").next().unwrap())
            .find(|f| f.starts_with(&format!(r#"method="post" action="{target}""#)))
    }

    #[test]
    fn optional_and_enrolled_offers_all_three_changes_each_with_a_code() {
        let b = Branding::default();
        let page = account_page(&view(&b));
        assert!(page.contains("<strong>MFA is on for your account.</strong>"));
        assert!(page.contains("<dt>Set up on</dt><dd>2026-11-27 14:03 UTC</dd>"));
        assert!(page.contains("<dt>Last used</dt><dd>2026-12-01 08:15 UTC</dd>"));
        assert!(page.contains(concat!(
            r#"<p class="muted who"><span>Signed in as <strong>jan@example.nl</strong></span>"#,
            r#"<a href="/">Back to the application</a></p><h1>Your MFA settings</h1>"#
        )));
        assert!(page.contains("<strong>7 unused codes left.</strong>"));
        assert!(page.contains("Make new codes (the old ones stop working)"));
        for (target, action) in [
            ("/.mfa/account/repair", "replace-phone"),
            ("/.mfa/account/recovery", "new-recovery-codes"),
            ("/.mfa/account/disable", "disable"),
        ] {
            let form = form_to(&page, target).unwrap();
            assert!(
                form.contains(&format!(r#"name="action" value="{action}""#)),
                "{target}"
            );
            assert!(
                form.contains(&format!(r#"<label for="code-{action}">"#)),
                "{target}"
            );
            assert!(
                form.contains(&format!(r#"id="code-{action}" name="code""#)),
                "{target}"
            );
        }
        assert!(form_to(&page, "/.mfa/account/setup").is_none());
        assert_eq!(page.matches(r#"id="code""#).count(), 0);
    }

    #[test]
    fn required_role_cannot_turn_off_and_is_sent_to_the_msp() {
        let b = Branding::default();
        let page = account_page(&AccountView {
            required: true,
            can_disable: false,
            confirm_with_passkey: false,
            ..view(&b)
        });
        assert!(form_to(&page, "/.mfa/account/disable").is_none());
        assert!(!page.contains("Turn off MFA"));
        assert!(page.contains("so it cannot be turned off"));
        assert!(page.contains("Contact your administrator"));
        assert!(form_to(&page, "/.mfa/account/repair").is_some());
    }

    #[test]
    fn not_enrolled_offers_only_set_up_without_a_code() {
        let b = Branding::default();
        let page = account_page(&AccountView {
            enrolled: false,
            enrolled_since: None,
            last_used: None,
            can_disable: false,
            confirm_with_passkey: false,
            lang: Lang::Nl,
            ..view(&b)
        });
        assert!(page.contains("<strong>MFA staat uit voor je account.</strong>"));
        let setup = form_to(&page, "/.mfa/account/setup").unwrap();
        assert!(setup.contains(r#"name="action" value="setup""#));
        assert!(!page.contains(r#"name="code""#));
        assert_eq!(page.matches("<form ").count(), 1);
        assert!(!page.contains("<dl"));
    }

    #[test]
    fn a_role_without_mfa_is_told_so_and_offered_no_set_up() {
        let b = Branding::default();
        let page = account_page(&AccountView {
            enrolled: false,
            enrolled_since: None,
            last_used: None,
            can_disable: false,
            confirm_with_passkey: false,
            not_used: true,
            ..view(&b)
        });
        assert!(
            page.contains("MFA is not used for your role, so there is nothing to set up here.")
        );
        assert!(!page.contains("optional"));
        assert!(!page.contains("MFA is off"));
        assert!(form_to(&page, "/.mfa/account/setup").is_none());
        assert_eq!(page.matches("<form ").count(), 0);
    }

    #[test]
    fn recovery_section_follows_the_policy_and_warns_at_zero() {
        let b = Branding::default();
        let off = account_page(&AccountView {
            recovery_enabled: false,
            ..view(&b)
        });
        assert!(form_to(&off, "/.mfa/account/recovery").is_none());
        assert!(!off.contains("Recovery codes"));
        let none = account_page(&AccountView {
            recovery_remaining: 0,
            ..view(&b)
        });
        assert!(
            none.contains(r#"<p class="warn"><strong>You have no unused codes left.</strong></p>"#)
        );
        let one = account_page(&AccountView {
            recovery_remaining: 1,
            lang: Lang::Nl,
            ..view(&b)
        });
        assert!(one.contains("<strong>Nog 1 ongebruikte code.</strong>"));
    }

    #[test]
    fn passkeys_only_is_on_and_offers_the_app_as_a_second_way_in() {
        let b = Branding::default();
        let page = account_page(&AccountView {
            enrolled: false,
            enrolled_since: None,
            last_used: None,
            can_disable: false,
            confirm_with_passkey: false,
            passkey_count: 2,
            ..view(&b)
        });
        assert!(
            page.contains("<strong>MFA is on for your account.</strong>"),
            "{page}"
        );
        assert!(page.contains("<dt>Methods</dt><dd>authenticator app: no; passkeys: 2</dd>"));
        assert!(!page.contains("Set up on"), "no app: no app dates");
        assert!(page.contains("<h2 id=\"h-setup\">Add an authenticator app</h2>"));
        let setup = form_to(&page, "/.mfa/account/setup").unwrap();
        assert!(setup.contains(">Set up the app</button>"), "{setup}");
        assert!(!page.contains("Turn on MFA"));
        // The app's own forms need a code from it.
        for target in ["/.mfa/account/disable", "/.mfa/account/repair"] {
            assert!(form_to(&page, target).is_none(), "{target}");
        }
        let required = account_page(&AccountView {
            enrolled: false,
            enrolled_since: None,
            last_used: None,
            can_disable: false,
            confirm_with_passkey: false,
            passkey_count: 1,
            required: true,
            lang: Lang::Nl,
            ..view(&b)
        });
        assert!(required.contains("<strong>MFA staat aan voor je account.</strong>"));
        assert!(required.contains("<dd>authenticator-app: nee; passkeys: 1</dd>"));
        // Where the role counts passkeys only, the app is not offered.
        let passkeys_only = account_page(&AccountView {
            enrolled: false,
            enrolled_since: None,
            last_used: None,
            can_disable: false,
            confirm_with_passkey: false,
            passkey_count: 1,
            app_counts: false,
            ..view(&b)
        });
        assert!(form_to(&passkeys_only, "/.mfa/account/setup").is_none());
        assert!(!passkeys_only.contains("Add an authenticator app"));
    }

    #[test]
    fn turning_off_says_the_passkeys_go_too() {
        let b = Branding::default();
        let none = account_page(&view(&b));
        assert!(none.contains("<dd>authenticator app: yes; passkeys: 0</dd>"));
        assert!(!none.contains("removed as well"));
        let one = account_page(&AccountView {
            passkey_count: 1,
            ..view(&b)
        });
        let section = one.split("id=\"h-disable\"").nth(1).unwrap();
        assert!(
            section.contains("<p><strong>Your passkey is removed as well.</strong></p>"),
            "{section}"
        );
        let nl = account_page(&AccountView {
            passkey_count: 3,
            lang: Lang::Nl,
            ..view(&b)
        });
        let section = nl.split("id=\"h-disable\"").nth(1).unwrap();
        assert!(
            section.contains("Je 3 passkeys worden ook verwijderd."),
            "{section}"
        );
        // Where MFA is required there is no turning off, so nothing to say.
        let required = account_page(&AccountView {
            passkey_count: 2,
            required: true,
            can_disable: false,
            confirm_with_passkey: false,
            ..view(&b)
        });
        assert!(!required.contains("removed as well"));
    }

    #[test]
    fn never_used_says_so() {
        let b = Branding::default();
        let page = account_page(&AccountView {
            last_used: None,
            ..view(&b)
        });
        assert!(page.contains("<dt>Last used</dt><dd>Not used yet</dd>"));
    }

    #[test]
    fn a_failed_code_is_shown_at_the_form_that_was_sent() {
        let b = Branding::default();
        let page = account_page(&AccountView {
            error: Some(FormError::WrongCode),
            failed: Some(FormAction::Disable),
            ..view(&b)
        });
        let disable = form_to(&page, "/.mfa/account/disable").unwrap();
        assert!(
            disable.contains(r#"role="alert" id="code-disable-error""#),
            "{disable}"
        );
        assert!(disable.contains(r#"aria-invalid="true""#));
        assert!(disable.contains(" autofocus"));
        for other in ["/.mfa/account/repair", "/.mfa/account/recovery"] {
            let form = form_to(&page, other).unwrap();
            assert!(!form.contains("alert"), "{form}");
            assert!(!form.contains("aria-invalid"), "{form}");
            assert!(!form.contains("autofocus"), "{form}");
        }
        // Said once, at the form: not also at the top.
        assert_eq!(page.matches(r#"role="alert""#).count(), 1);
    }

    fn items() -> Vec<BrowserItem> {
        vec![
            BrowserItem {
                id: "0123456789abcdef0123456789abcdef".into(),
                browser: Some("Firefox".into()),
                system: Some("Windows".into()),
                remembered_on: "2026-11-27 14:03 CET".into(),
                last_used: "2026-12-01 08:15 CET".into(),
                this_browser: true,
            },
            BrowserItem {
                id: "fedcba9876543210fedcba9876543210".into(),
                browser: None,
                system: Some("Android".into()),
                remembered_on: "2026-11-20 09:00 CET".into(),
                last_used: "2026-11-21 10:00 CET".into(),
                this_browser: false,
            },
        ]
    }

    #[test]
    fn remembered_browsers_are_listed_each_with_forget_and_forget_all() {
        let b = Branding::default();
        assert!(!account_page(&view(&b)).contains("Remembered browsers"));
        let list = items();
        let page = account_page(&AccountView {
            browsers: &list,
            ..view(&b)
        });
        assert!(
            page.contains("<h2 id=\"h-browsers\">Remembered browsers</h2>"),
            "{page}"
        );
        assert!(page.contains(
            r#"<p id="browser-0"><strong>Firefox on Windows</strong> <span class="muted">(this browser)</span></p>"#
        ), "{page}");
        assert!(
            page.contains(r#"<p id="browser-1"><strong>Unknown browser on Android</strong></p>"#)
        );
        assert!(page.contains("<dt>Remembered on</dt><dd>2026-11-27 14:03 CET</dd>"));
        assert!(page.contains("<dt>Last used</dt><dd>2026-11-21 10:00 CET</dd>"));
        let forms: Vec<&str> = page
            .split("<form ")
            .skip(1)
            .filter(|f| f.starts_with(r#"method="post" action="/.mfa/account/forget-browsers""#))
            .collect();
        assert_eq!(forms.len(), 3, "one per browser and forget all");
        assert!(forms[0].contains(r#"name="browser" value="0123456789abcdef0123456789abcdef""#));
        assert!(forms[0].contains(r#"value="forget-browser""#));
        assert!(forms[0].contains(r#"aria-describedby="browser-0">Forget</button>"#));
        assert!(forms[1].contains(r#"aria-describedby="browser-1""#));
        assert!(forms[2].contains(r#"value="forget-all-browsers""#));
        assert!(forms[2].contains(">Forget all browsers</button>"));
        assert!(
            !forms.iter().any(|f| f.contains("name=\"code\"")),
            "no code needed"
        );
        let nl = account_page(&AccountView {
            browsers: &list,
            lang: Lang::Nl,
            message: Some(AccountMessage::BrowsersForgotten),
            ..view(&b)
        });
        assert!(nl.contains("<strong>Firefox op Windows</strong>"), "{nl}");
        assert!(nl.contains("<strong>Onbekende browser op Android</strong>"));
        assert!(nl.contains(">Alle browsers vergeten</button>"));
    }

    #[test]
    fn messages_and_errors_are_announced() {
        let b = Branding::default();
        let done = account_page(&AccountView {
            message: Some(AccountMessage::PhoneReplaced),
            ..view(&b)
        });
        assert!(done.contains(r#"<p class="ok" role="status">Your new phone is connected."#));
        assert!(!done.contains("role=\"alert\""));
        let failed = account_page(&AccountView {
            error: Some(FormError::WrongCode),
            lang: Lang::Nl,
            ..view(&b)
        });
        let alert = failed.find(r#"<p class="alert" role="alert">Die code klopt niet."#);
        let first_form = failed.find("<form ");
        assert!(
            alert.is_some() && alert < first_form,
            "alert must come first"
        );
        assert!(!failed.contains("role=\"status\""));
    }
}
