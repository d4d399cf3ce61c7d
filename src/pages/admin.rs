//! The MSP administration pages: find a user, see their MFA, disconnect a lost phone, unlock.
//!
//! The announcement promises that a lost phone is handled by the MSP; these two pages are how
//! an MSP does that without shell access. The search page is a plain GET form (it changes
//! nothing, and a result list can be bookmarked or reloaded). The user page shows the facts an
//! MSP needs on the phone with a caller (set up since, last used, locked, role and what the
//! policy says for it today, recent events) and the two changes:
//!
//! - **Disconnect MFA** (the reset) is destructive and a favourite of social engineers, so it
//!   sits in a danger box that lists exactly what happens, asks the MSP to verify the caller,
//!   and requires a reason (recorded in the audit trail) and an explicit confirmation
//!   checkbox. The browser enforces both with `required`; the handler checks them again and
//!   shows [`AdminError::ReasonMissing`] / [`AdminError::ConfirmMissing`] on the field.
//! - **Unlock** appears only while the user is locked and says that it lifts only the lock of
//!   the code step.
//! - **Forget remembered browsers** appears while the user has any (the facts show how many):
//!   every browser the user chose to remember asks for a code again. It only ever asks for
//!   more, so it needs no reason or confirmation; it is audited like the others.
//!
//! Both are POST forms with the CSRF token and the user name as [`USER_FIELD`]. The field
//! names are constants here because the handlers parse them.
//!
//! A link to a user is `user_link_base` followed by the percent-encoded user name, with every
//! byte outside the RFC 3986 unreserved set encoded, so it is safe both as a path segment and
//! as a query value (`…/user?u=`). A name that is exactly `.` or `..` is a dot-segment in a
//! path however it is encoded; a query-style base avoids that.
//!
//! Every name and every audit value these pages show (the MSP's own name, search results and
//! query, the user, role, policy state, events) goes through [`visible`], so an override or
//! another invisible character in a name is seen as an escape: an MSP deciding whose MFA to
//! disconnect reads the stored name. The hidden [`USER_FIELD`] keeps the name exactly, so
//! the change is made for that name.

use maud::{Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::form::{ACTION_FIELD, FormAction, button, post_form};
use super::html::{fill, hidden_field};
use super::lang::Lang;
use super::layout::{Branding, render};
use super::strings::{AdminText, strings};
use super::visible::visible;

/// Search form field (GET) holding the start of a user name.
pub const SEARCH_FIELD: &str = "q";
/// Reset and unlock forms: the user the change is for.
pub const USER_FIELD: &str = "user";
/// Reset form: why the MSP disconnects MFA, recorded in the audit trail.
pub const REASON_FIELD: &str = "reason";
/// Reset form: the confirmation checkbox, sent as [`CONFIRM_VALUE`] only when ticked.
pub const CONFIRM_FIELD: &str = "confirm";
/// The value the ticked confirmation checkbox sends.
pub const CONFIRM_VALUE: &str = "yes";
/// Longest reason the form accepts, in characters.
pub const REASON_MAX_LEN: usize = 500;
/// Longest search text the form accepts; far above any user name.
pub const SEARCH_MAX_LEN: usize = 256;

/// Bytes left as they are in a user link: RFC 3986 unreserved characters.
const LINK_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Element id of the page-level error, which the field in error also points at.
const ERROR_ID: &str = "admin-error";

/// What the user search page shows.
#[derive(Debug, Clone)]
pub struct AdminSearchView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    /// Who is signed in (shown in a header line).
    pub admin: &'a str,
    /// The signed-in administrator's own MFA settings (self-service page).
    pub account_link: &'a str,
    pub query: &'a str,
    /// User names.
    pub results: &'a [String],
    /// GET form, field name [`SEARCH_FIELD`].
    pub search_action: &'a str,
    /// Link to a user = `user_link_base` + percent-encoded name.
    pub user_link_base: &'a str,
}

/// One line of a user's MFA history, already formatted for reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEvent {
    pub at: String,
    pub event: String,
    pub actor: String,
    pub detail: String,
}

/// What the admin user page shows.
#[derive(Debug, Clone)]
pub struct AdminUserView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    pub admin: &'a str,
    /// The signed-in administrator's own MFA settings (self-service page).
    pub account_link: &'a str,
    pub user: &'a str,
    pub enrolled: bool,
    pub enrolled_since: Option<&'a str>,
    pub last_used: Option<&'a str>,
    /// Preformatted; `None` = not locked.
    pub locked_until: Option<&'a str>,
    /// Policy role last seen at login.
    pub role: Option<&'a str>,
    /// "none" / "available" / "enforced" today (shown translated).
    pub policy_state: Option<&'a str>,
    pub recovery_remaining: usize,
    /// How many browsers the user chose to remember (still in the store).
    pub remembered_browsers: usize,
    /// The user's passkeys and security keys (a reset removes them with the app).
    pub passkeys: &'a [super::passkey::PasskeyItem],
    /// Recent MFA events of this user, newest first.
    pub events: &'a [AdminEvent],
    pub csrf: &'a str,
    /// POST: [`USER_FIELD`], [`REASON_FIELD`] (required, at most [`REASON_MAX_LEN`]),
    /// [`CONFIRM_FIELD`] (checkbox sending [`CONFIRM_VALUE`], required).
    pub reset_action: &'a str,
    /// POST: [`USER_FIELD`] (form shown only when locked).
    pub unlock_action: &'a str,
    /// POST: [`USER_FIELD`] (form shown only while the user has remembered browsers).
    pub forget_action: &'a str,
    pub back_link: &'a str,
    pub message: Option<AdminMessage>,
    pub error: Option<AdminError>,
    /// The reason as the administrator typed it, kept when the form comes back with an error
    /// (empty otherwise).
    pub reason: &'a str,
    /// Why this administrator may not reset or unlock this user ([`AdminError::OwnAccount`],
    /// [`AdminError::Outranked`]): the page then says so instead of showing the forms.
    pub not_allowed: Option<AdminError>,
}

/// A change that just succeeded, confirmed at the top of the user page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminMessage {
    ResetDone,
    Unlocked,
    BrowsersForgotten,
}

/// Why an admin form is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminError {
    ReasonMissing,
    ConfirmMissing,
    CsrfInvalid,
    UnknownUser,
    /// The administrator's own account.
    OwnAccount,
    /// A user of a role the administrator's role may not change (`admin.can_reset`).
    Outranked,
}

impl AdminError {
    fn message(self, lang: Lang) -> &'static str {
        let s = strings(lang);
        match self {
            AdminError::ReasonMissing => s.admin.error_reason_missing,
            AdminError::ConfirmMissing => s.admin.error_confirm_missing,
            AdminError::CsrfInvalid => s.form_errors.csrf_invalid,
            AdminError::UnknownUser => s.admin.error_unknown_user,
            AdminError::OwnAccount => s.admin.error_own_account,
            AdminError::Outranked => s.admin.error_outranked,
        }
    }
}

/// The link to a user's page.
fn user_link(base: &str, user: &str) -> String {
    format!("{base}{}", utf8_percent_encode(user, LINK_COMPONENT))
}

/// "Signed in as …" and, on the user page, the way back to the search.
fn header_line(lang: Lang, admin: &str, account: &str, back: Option<&str>) -> Markup {
    let s = strings(lang);
    let who = html! { strong { (visible(admin)) } };
    html! {
        p class="muted who" {
            span { (fill(s.common.signed_in_as, "{account}", who)) }
            // The links side by side at the right (three items spread over a wide line left
            // one floating in the middle).
            span class="links" {
                a href=(account) { (s.common.account_link) }
                @if let Some(href) = back {
                    a href=(href) { (s.admin.back_to_search) }
                }
            }
        }
    }
}

/// Renders the user search page.
pub fn admin_search_page(v: &AdminSearchView<'_>) -> String {
    let t = &strings(v.lang).admin;
    let query = v.query.trim();
    let hint_id = format!("{SEARCH_FIELD}-hint");
    let content = html! {
        (header_line(v.lang, v.admin, v.account_link, None))
        h1 { (t.search_title) }
        p { (t.search_intro) }
        form method="get" action=(v.search_action) role="search" {
            label for=(SEARCH_FIELD) { (t.search_label) }
            p class="muted" id=(hint_id) { (t.search_hint) }
            // Searching is the one thing to do here, until there are results to look at.
            input class="field" id=(SEARCH_FIELD) name=(SEARCH_FIELD) type="search"
                value=(v.query) maxlength=(SEARCH_MAX_LEN) autocomplete="off"
                autocapitalize="off" spellcheck="false" aria-describedby=(hint_id)
                autofocus[query.is_empty()];
            (button("primary", t.search_button, None))
        }
        @if !query.is_empty() {
            section aria-labelledby="h-results" {
                h2 id="h-results" {
                    @match v.results.len() {
                        0 => (fill(t.found_none, "{query}", visible(query))),
                        1 => (t.found_one),
                        n => (fill(t.found_many, "{count}", n)),
                    }
                }
                @if !v.results.is_empty() {
                    ul class="results" {
                        @for user in v.results {
                            li { a href=(user_link(v.user_link_base, user)) { (visible(user)) } }
                        }
                    }
                }
            }
        }
    };
    render(v.lang, v.branding, t.search_title, content)
}

/// Renders the page of one user.
pub fn admin_user_page(v: &AdminUserView<'_>) -> String {
    let t = &strings(v.lang).admin;
    let user = visible(v.user);
    let content = html! {
        div class="wide" {
            (header_line(v.lang, v.admin, v.account_link, Some(v.back_link)))
            h1 { (fill(t.user_title, "{user}", user)) }
            @if let Some(message) = v.message {
                p class="ok" role="status" {
                    (fill(match message {
                        AdminMessage::ResetDone => t.done_reset,
                        AdminMessage::Unlocked => t.done_unlocked,
                        AdminMessage::BrowsersForgotten => t.done_forgotten,
                    }, "{user}", user))
                }
            }
            @if let Some(error) = v.error {
                p class="alert" role="alert" id=(ERROR_ID) { (error.message(v.lang)) }
            }
            (facts(v, t))
            @if !v.passkeys.is_empty() {
                (super::passkey::passkeys_list(v.lang, v.passkeys))
            }
            @match v.not_allowed {
                Some(why) => { p { (why.message(v.lang)) } }
                None => {
                    @if v.locked_until.is_some() {
                        (unlock_section(v, t))
                    }
                    @if v.remembered_browsers > 0 {
                        (forget_section(v, t))
                    }
                    (reset_section(v, t))
                }
            }
            (events_section(v, t))
        }
    };
    render(
        v.lang,
        v.branding,
        fill(t.user_title, "{user}", user),
        content,
    )
}

/// The user's MFA state as a list of label and value.
fn facts(v: &AdminUserView<'_>, t: &AdminText) -> Markup {
    let mfa = match (v.enrolled, v.enrolled_since) {
        (true, Some(since)) => html! { (fill(t.enrolled_since, "{since}", since)) },
        (true, None) => html! { (t.enrolled) },
        (false, _) => html! { (t.not_enrolled) },
    };
    let lock = match v.locked_until {
        Some(until) => html! { strong { (fill(t.locked_until, "{until}", until)) } },
        None => html! { (t.not_locked) },
    };
    let policy = match v.policy_state {
        Some("none") => html! { (t.policy_none) },
        Some("available") => html! { (t.policy_available) },
        Some("enforced") => html! { (t.policy_enforced) },
        Some(other) => html! { (visible(other)) },
        None => html! { (t.role_unknown) },
    };
    let role = match v.role {
        Some(role) => html! { (visible(role)) },
        None => html! { (t.role_unknown) },
    };
    let mut rows = vec![
        (t.mfa_label, mfa),
        (
            t.last_used_label,
            html! { (v.last_used.unwrap_or(t.never_used)) },
        ),
        (t.lock_label, lock),
        (t.role_label, role),
        (t.policy_label, policy),
    ];
    if v.enrolled {
        rows.push((t.recovery_label, html! { (v.recovery_remaining) }));
    }
    if v.enrolled || v.remembered_browsers > 0 {
        let n = v.remembered_browsers;
        rows.push((
            t.browsers_label,
            html! { @if n == 0 { (t.browsers_none) } @else { (n) } },
        ));
    }
    html! {
        dl class="facts" {
            @for (label, value) in rows {
                dt { (label) }
                dd { (value) }
            }
        }
    }
}

/// Lift the lock of the code step; shown only while the user is locked.
fn unlock_section(v: &AdminUserView<'_>, t: &AdminText) -> Markup {
    let form = html! {
        (hidden_field(ACTION_FIELD, FormAction::Unlock.as_str()))
        (hidden_field(USER_FIELD, v.user))
        (button("secondary", t.unlock_button, None))
    };
    html! {
        section aria-labelledby="h-unlock" {
            h2 id="h-unlock" { (t.unlock_heading) }
            p { (t.unlock_text) }
            (post_form(v.unlock_action, v.csrf, form))
        }
    }
}

/// Forget every browser the user chose to remember; shown only while there are any.
fn forget_section(v: &AdminUserView<'_>, t: &AdminText) -> Markup {
    let form = html! {
        (hidden_field(ACTION_FIELD, FormAction::ForgetAllBrowsers.as_str()))
        (hidden_field(USER_FIELD, v.user))
        (button("secondary", t.forget_button, None))
    };
    html! {
        section aria-labelledby="h-forget" {
            h2 id="h-forget" { (t.forget_heading) }
            p { (t.forget_text) }
            (post_form(v.forget_action, v.csrf, form))
        }
    }
}

/// The lost-phone reset: what it does, a reason, a confirmation, a red button.
fn reset_section(v: &AdminUserView<'_>, t: &AdminText) -> Markup {
    if !v.enrolled {
        return html! {
            section aria-labelledby="h-reset" {
                h2 id="h-reset" { (t.reset_heading) }
                p { (t.reset_not_enrolled) }
            }
        };
    }
    let reason_error = v.error == Some(AdminError::ReasonMissing);
    let confirm_error = v.error == Some(AdminError::ConfirmMissing);
    let reason_hint = format!("{REASON_FIELD}-hint");
    let form = html! {
        (hidden_field(ACTION_FIELD, FormAction::Reset.as_str()))
        // The name exactly as stored, so the reset is for this user and no other.
        (hidden_field(USER_FIELD, v.user))
        label for=(REASON_FIELD) { (t.reason_label) }
        p class="muted" id=(reason_hint) { (fill(t.reason_hint, "{max}", REASON_MAX_LEN)) }
        textarea class="field" id=(REASON_FIELD) name=(REASON_FIELD) rows="3"
            maxlength=(REASON_MAX_LEN) required
            aria-describedby=(described_by(&reason_hint, reason_error))
            aria-invalid=[invalid(reason_error)] autofocus[reason_error] {
            // What was typed is kept as it was typed: it is the field's value.
            (v.reason)
        }
        div class="check" {
            input type="checkbox" id=(CONFIRM_FIELD) name=(CONFIRM_FIELD) value=(CONFIRM_VALUE)
                required aria-describedby=[confirm_error.then_some(ERROR_ID)]
                aria-invalid=[invalid(confirm_error)] autofocus[confirm_error];
            label for=(CONFIRM_FIELD) { (fill(t.confirm_label, "{user}", visible(v.user))) }
        }
        (button("danger", t.reset_button, None))
    };
    html! {
        section class="danger-zone" aria-labelledby="h-reset" {
            h2 id="h-reset" { (t.reset_heading) }
            p { (t.reset_intro) }
            ul {
                @for effect in t.reset_effects {
                    li { (effect) }
                }
            }
            p { (t.reset_check) }
            (post_form(v.reset_action, v.csrf, form))
        }
    }
}

/// `aria-describedby` value: the field's hint, plus the page error when it is about the field.
fn described_by(hint_id: &str, in_error: bool) -> String {
    if in_error {
        format!("{ERROR_ID} {hint_id}")
    } else {
        hint_id.to_owned()
    }
}

/// `aria-invalid` for the field the error is about (which also takes the focus).
fn invalid(in_error: bool) -> Option<&'static str> {
    in_error.then_some("true")
}

/// Recent events as a table. On a phone the stylesheet stacks each row; `display:block` makes
/// some screen readers forget that it is a table, so the roles are stated explicitly, and the
/// cells that need it carry their column name as `data-label` for the stacked view. Where the
/// table does not fit (a browser without `:has` keeps the narrow card), it scrolls sideways.
/// Every cell comes from the audit trail (names, VMS roles, reasons typed by an MSP) and is
/// shown visibly.
fn events_section(v: &AdminUserView<'_>, t: &AdminText) -> Markup {
    html! {
        section aria-labelledby="h-events" {
            h2 id="h-events" { (t.events_heading) }
            @if v.events.is_empty() {
                p class="muted" { (t.events_none) }
            } @else {
                // A scrollable region must be reachable by keyboard to be scrolled without a
                // mouse, and what takes the focus needs a role and a name. A group, not a
                // second region: the section already is the "events" landmark, and two
                // landmarks of one name cannot be told apart (axe-core: landmark-unique).
                div class="scroll" role="group" aria-labelledby="h-events" tabindex="0" {
                    table class="events" role="table" {
                        thead role="rowgroup" {
                            tr role="row" {
                                th role="columnheader" scope="col" { (t.col_time) }
                                th role="columnheader" scope="col" { (t.col_event) }
                                th role="columnheader" scope="col" { (t.col_actor) }
                                th role="columnheader" scope="col" { (t.col_detail) }
                            }
                        }
                        tbody role="rowgroup" {
                            @for e in v.events {
                                tr role="row" {
                                    td role="cell" { (visible(&e.at)) }
                                    // In words; an id this version does not know (written by a
                                    // newer one) as it is.
                                    @match t.event_names.iter().find(|(id, _)| *id == e.event) {
                                        Some((id, words)) => td role="cell" title=(id) { (words) },
                                        None => td role="cell" { (visible(&e.event)) },
                                    }
                                    td role="cell" data-label=(t.col_actor) { (visible(&e.actor)) }
                                    td role="cell" data-label=(t.col_detail) {
                                        (visible(&e.detail))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn search(b: &Branding, query: &'static str, results: &'static [String]) -> String {
        admin_search_page(&AdminSearchView {
            lang: Lang::En,
            branding: b,
            admin: "msp-anna",
            account_link: "/.mfa/account",
            query,
            results,
            search_action: "/.mfa/admin/",
            user_link_base: "/.mfa/admin/user?u=",
        })
    }

    fn events() -> Vec<AdminEvent> {
        vec![AdminEvent {
            at: "2026-12-01 08:15 UTC".into(),
            event: "verify_failed".into(),
            actor: "jan".into(),
            detail: "3 of 5".into(),
        }]
    }

    fn user_view<'a>(b: &'a Branding, events: &'a [AdminEvent]) -> AdminUserView<'a> {
        AdminUserView {
            lang: Lang::En,
            branding: b,
            admin: "msp-anna",
            account_link: "/.mfa/account",
            user: "jan",
            enrolled: true,
            enrolled_since: Some("2026-11-27 14:03 UTC"),
            last_used: Some("2026-12-01 08:10 UTC"),
            locked_until: None,
            role: Some("customer"),
            policy_state: Some("enforced"),
            recovery_remaining: 8,
            remembered_browsers: 0,
            passkeys: &[],
            events,
            csrf: "tok",
            reset_action: "/.mfa/admin/reset",
            unlock_action: "/.mfa/admin/unlock",
            forget_action: "/.mfa/admin/forget-browsers",
            back_link: "/.mfa/admin/?q=ja",
            message: None,
            error: None,
            reason: "",
            not_allowed: None,
        }
    }

    #[test]
    fn an_administrator_who_may_not_change_the_user_gets_no_forms() {
        let b = Branding::default();
        let ev = events();
        let mut v = user_view(&b, &ev);
        v.locked_until = Some("2026-12-01 09:00 UTC");
        v.not_allowed = Some(AdminError::Outranked);
        let page = admin_user_page(&v);
        assert!(form_to(&page, "/.mfa/admin/reset").is_none());
        assert!(form_to(&page, "/.mfa/admin/unlock").is_none());
        assert!(page.contains("Your role may not disconnect or unlock MFA"));
    }

    #[test]
    fn remembered_browsers_are_counted_and_can_be_forgotten() {
        let b = Branding::default();
        let ev = events();
        let none = admin_user_page(&user_view(&b, &ev));
        assert!(
            none.contains("<dt>Remembered browsers</dt><dd>None</dd>"),
            "{none}"
        );
        assert!(form_to(&none, "/.mfa/admin/forget-browsers").is_none());
        let mut v = user_view(&b, &ev);
        v.remembered_browsers = 2;
        v.message = Some(AdminMessage::BrowsersForgotten);
        let page = admin_user_page(&v);
        assert!(page.contains("<dt>Remembered browsers</dt><dd>2</dd>"));
        let form = form_to(&page, "/.mfa/admin/forget-browsers").unwrap();
        assert!(form.contains(r#"name="user" value="jan""#), "{form}");
        assert!(form.contains(r#"name="csrf" value="tok""#));
        assert!(form.contains(r#"value="forget-all-browsers""#));
        assert!(
            page.contains("The remembered browsers of <strong>jan</strong>")
                || page.contains("The remembered browsers of jan"),
            "{page}"
        );
        v.not_allowed = Some(AdminError::OwnAccount);
        assert!(form_to(&admin_user_page(&v), "/.mfa/admin/forget-browsers").is_none());
    }

    /// The page without its head, whose stylesheet names attributes too.
    fn body(page: &str) -> &str {
        page.split("</head>").nth(1).unwrap()
    }

    fn form_to<'p>(page: &'p str, target: &str) -> Option<&'p str> {
        page.split("<form ")
            .skip(1)
            .map(|f| f.split("</form>").next().unwrap())
            .find(|f| f.contains(&format!(r#"action="{target}""#)))
    }

    #[test]
    fn links_encode_every_reserved_byte() {
        assert_eq!(
            user_link("/u?u=", "a b&c=d+e/f#g?é.~_-"),
            "/u?u=a%20b%26c%3Dd%2Be%2Ff%23g%3F%C3%A9.~_-"
        );
    }

    #[test]
    fn search_is_a_get_form_without_token_and_lists_linked_results() {
        let b = Branding::default();
        static RESULTS: [String; 0] = [];
        let empty = search(&b, "", &RESULTS);
        let form = form_to(&empty, "/.mfa/admin/").unwrap();
        assert!(form.starts_with(r#"method="get""#));
        assert!(form.contains(r#"role="search""#));
        assert!(!form.contains("csrf"));
        assert!(form.contains(r#"<label for="q">User name</label>"#));
        assert!(form.contains(r#"id="q" name="q" type="search" value="""#));
        assert!(
            empty.contains(" autofocus>"),
            "an empty search starts in the field"
        );
        assert!(!empty.contains("<h2"), "no result heading before a search");
        assert!(empty.contains("Signed in as <strong>msp-anna</strong>"));

        let none = search(&b, " zz ", &RESULTS);
        assert!(none.contains("No user name starts with \u{201c}zz\u{201d}."));
        assert!(!none.contains("<ul"));
        assert!(!none.contains(" autofocus"));
    }

    #[test]
    fn results_are_counted_and_linked() {
        let b = Branding::default();
        let results = vec!["jan".to_owned(), "jan de vries".to_owned()];
        let page = admin_search_page(&AdminSearchView {
            lang: Lang::Nl,
            branding: &b,
            admin: "msp-anna",
            account_link: "/.mfa/account",
            query: "jan",
            results: &results,
            search_action: "/.mfa/admin/",
            user_link_base: "/.mfa/admin/user?u=",
        });
        assert!(page.contains(r#"<h2 id="h-results">2 gebruikers gevonden</h2>"#));
        assert!(page.contains(r#"<li><a href="/.mfa/admin/user?u=jan">jan</a></li>"#));
        assert!(page.contains(
            r#"<li><a href="/.mfa/admin/user?u=jan%20de%20vries">jan de vries</a></li>"#
        ));
        assert!(page.contains(r#"value="jan""#));
    }

    #[test]
    fn user_page_shows_the_state_in_words() {
        let b = Branding::default();
        let ev = events();
        let page = admin_user_page(&user_view(&b, &ev));
        for part in [
            "<h1>MFA for jan</h1>",
            "<dt>MFA status</dt><dd>Set up since 2026-11-27 14:03 UTC</dd>",
            "<dt>Last successful use</dt><dd>2026-12-01 08:10 UTC</dd>",
            "<dt>Lock</dt><dd>Not locked</dd>",
            "<dt>Role at last sign-in</dt><dd>customer</dd>",
            "<dt>MFA for this role today</dt><dd>Required</dd>",
            "<dt>Unused recovery codes</dt><dd>8</dd>",
            r#"<a href="/.mfa/admin/?q=ja">Back to search</a>"#,
            concat!(
                r#"<td role="cell">2026-12-01 08:15 UTC</td><td role="cell">verify_failed</td>"#,
                r#"<td role="cell" data-label="By">jan</td>"#,
                r#"<td role="cell" data-label="Details">3 of 5</td>"#
            ),
            r#"<th role="columnheader" scope="col">Time</th>"#,
        ] {
            assert!(page.contains(part), "{part}");
        }
        assert!(page.contains(r#"<div class="wide">"#));
    }

    #[test]
    fn policy_states_are_translated_and_unknown_ones_shown_as_they_are() {
        let b = Branding::default();
        for (state, en, nl) in [
            ("none", "Not offered", "Niet aangeboden"),
            ("available", "Optional", "Niet verplicht"),
            ("enforced", "Required", "Verplicht"),
            ("grace", "grace", "grace"),
        ] {
            let v = AdminUserView {
                policy_state: Some(state),
                ..user_view(&b, &[])
            };
            let want = |x| format!("<dd>{x}</dd>");
            assert!(admin_user_page(&v).contains(&want(en)), "{state}");
            let nl_page = admin_user_page(&AdminUserView {
                lang: Lang::Nl,
                ..v
            });
            assert!(nl_page.contains(&want(nl)), "{state}");
        }
    }

    #[test]
    fn reset_requires_reason_and_confirmation_and_lists_its_effects() {
        let b = Branding::default();
        let page = admin_user_page(&user_view(&b, &[]));
        let form = form_to(&page, "/.mfa/admin/reset").unwrap();
        assert!(form.starts_with(r#"method="post""#));
        assert!(form.contains(r#"<input type="hidden" name="csrf" value="tok">"#));
        assert!(form.contains(r#"<input type="hidden" name="user" value="jan">"#));
        assert!(form.contains(r#"<input type="hidden" name="action" value="reset">"#));
        assert!(form.contains(r#"<label for="reason">Reason</label>"#));
        assert!(form.contains(
            r#"<textarea class="field" id="reason" name="reason" rows="3" maxlength="500" required "#
        ));
        assert!(form.contains(
            r#"<input type="checkbox" id="confirm" name="confirm" value="yes" required>"#
        ));
        assert!(form.contains(r#"<label for="confirm">I have checked the request and want to disconnect MFA for jan</label>"#));
        assert!(form.contains(r#"<button class="danger" type="submit">Disconnect MFA</button>"#));
        assert!(page.contains(r#"<section class="danger-zone" aria-labelledby="h-reset">"#));
        for effect in strings(Lang::En).admin.reset_effects {
            assert!(
                page.contains(&format!(
                    "<li>{}</li>",
                    maud::Render::render(effect).into_string()
                )),
                "{effect}"
            );
        }
        assert!(!body(&page).contains("autofocus"));
        assert!(!body(&page).contains("aria-invalid"));
    }

    #[test]
    fn reset_errors_point_at_their_field() {
        let b = Branding::default();
        let reason = admin_user_page(&AdminUserView {
            error: Some(AdminError::ReasonMissing),
            ..user_view(&b, &[])
        });
        assert!(reason.contains(
            r#"<p class="alert" role="alert" id="admin-error">Enter a reason for disconnecting MFA.</p>"#
        ));
        assert!(reason.contains(
            r#"aria-describedby="admin-error reason-hint" aria-invalid="true" autofocus></textarea>"#
        ));
        let confirm = admin_user_page(&AdminUserView {
            error: Some(AdminError::ConfirmMissing),
            lang: Lang::Nl,
            reason: "Phone lost <on> the train & replaced",
            ..user_view(&b, &[])
        });
        assert!(confirm.contains(
            r#"value="yes" required aria-describedby="admin-error" aria-invalid="true" autofocus>"#
        ));
        // What was typed is kept, escaped, so only the missing confirmation needs doing.
        assert!(confirm.contains(
            r#"aria-describedby="reason-hint">Phone lost &lt;on&gt; the train &amp; replaced</textarea>"#
        ));
        assert_eq!(confirm.matches("autofocus").count(), 1);
        let csrf = admin_user_page(&AdminUserView {
            error: Some(AdminError::CsrfInvalid),
            ..user_view(&b, &[])
        });
        assert!(csrf.contains(strings(Lang::En).form_errors.csrf_invalid));
        assert!(!body(&csrf).contains("aria-invalid"));
    }

    #[test]
    fn unlock_only_while_locked_and_says_what_it_lifts() {
        let b = Branding::default();
        let open = admin_user_page(&user_view(&b, &[]));
        assert!(form_to(&open, "/.mfa/admin/unlock").is_none());
        let locked = admin_user_page(&AdminUserView {
            locked_until: Some("2026-12-01 08:30 UTC"),
            ..user_view(&b, &[])
        });
        let form = form_to(&locked, "/.mfa/admin/unlock").unwrap();
        assert!(form.contains(r#"<input type="hidden" name="user" value="jan">"#));
        assert!(form.contains(r#"<input type="hidden" name="action" value="unlock">"#));
        assert!(locked.contains("<dd><strong>Locked until 2026-12-01 08:30 UTC</strong></dd>"));
        assert!(locked.contains("only lifts this lock on the code step"));
        assert_eq!(
            locked.matches("Locked until").count(),
            1,
            "said once, in the facts"
        );
    }

    #[test]
    fn nothing_to_disconnect_without_mfa() {
        let b = Branding::default();
        let page = admin_user_page(&AdminUserView {
            enrolled: false,
            enrolled_since: None,
            last_used: None,
            message: Some(AdminMessage::ResetDone),
            ..user_view(&b, &[])
        });
        assert!(form_to(&page, "/.mfa/admin/reset").is_none());
        assert!(page.contains("there is nothing to disconnect"));
        assert!(page.contains("<dd>Not set up</dd>"));
        assert!(page.contains("<dt>Last successful use</dt><dd>Never</dd>"));
        assert!(!page.contains("Unused recovery codes"));
        assert!(page.contains(r#"<p class="ok" role="status">MFA is disconnected for jan."#));
        assert!(page.contains("No MFA events are recorded for this user."));
        assert!(!page.contains("<table"));
    }
}
