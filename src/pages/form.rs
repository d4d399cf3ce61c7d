//! What the gateway's forms have in common: field names, submit actions, the code field and
//! the error message shown above it.
//!
//! The request handlers parse what these forms send, so the names live here as constants
//! ([`CODE_FIELD`], [`CSRF_FIELD`], [`ACTION_FIELD`], [`FormAction`]) instead of being
//! repeated as literals on both sides.
//!
//! The code field is the one users touch most, often on a phone. It is a text field (not
//! `type="number"`, which drops leading zeros and shows spinners) with
//! `inputmode="numeric"` for the digit keypad, `autocomplete="one-time-code"` so phones can
//! offer the code, and `pattern="[0-9 ]*"` so a code copied as `123 456` is accepted.
//! Recovery codes are typed into the same field on the login page, so they must also be
//! digits, optionally grouped with spaces.

use maud::{Markup, html};

use super::html::{fill, hidden_field};
use super::lang::Lang;
use super::strings::strings;

/// Form field holding the TOTP or recovery code.
pub const CODE_FIELD: &str = "code";
/// Form field holding the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// Form field (a submit button's or hidden value) saying what the user chose.
pub const ACTION_FIELD: &str = "action";

/// Longest input the code field allows; far above a 6-digit code or a grouped recovery code,
/// it only stops a pasted paragraph.
const CODE_MAX_LEN: usize = 32;

/// What a submitted gateway form asks for, sent as [`ACTION_FIELD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormAction {
    /// Enrollment: check the code and store the new authenticator.
    Confirm,
    /// Login challenge: check the code.
    Verify,
    /// Offer page: go to enrollment.
    SetUp,
    /// Enrollment or offer page: not now, continue to the VMS.
    Postpone,
    /// Recovery codes page or a notice: the user has read it, continue.
    Continue,
    /// Recovery codes page or a notice of a sign-in: continue, then to the self-service page.
    Settings,
    /// Opt-in enrollment: do not set MFA up after all.
    Cancel,
    /// Account page: replace the phone (re-pair), proven with a code from the current one.
    ReplacePhone,
    /// Account page: make new recovery codes, proven with a current code.
    NewRecoveryCodes,
    /// Account page: turn MFA off, proven with a current code.
    Disable,
    /// Admin user page: disconnect the user's MFA (the lost-phone reset).
    Reset,
    /// Admin user page: lift the lock of the user's code step.
    Unlock,
    /// Account page: forget one remembered browser.
    ForgetBrowser,
    /// Account or admin user page: forget every remembered browser of the user.
    ForgetAllBrowsers,
    /// The e-mailed code of a first enrollment: send a new one.
    SendAgain,
}

/// Every [`FormAction`], for [`FormAction::parse`] and the tests.
const ALL_ACTIONS: [FormAction; 15] = [
    FormAction::Settings,
    FormAction::Cancel,
    FormAction::Confirm,
    FormAction::Verify,
    FormAction::SetUp,
    FormAction::Postpone,
    FormAction::Continue,
    FormAction::ReplacePhone,
    FormAction::NewRecoveryCodes,
    FormAction::Disable,
    FormAction::Reset,
    FormAction::Unlock,
    FormAction::ForgetBrowser,
    FormAction::ForgetAllBrowsers,
    FormAction::SendAgain,
];

impl FormAction {
    /// The value sent in the form.
    pub fn as_str(&self) -> &'static str {
        match self {
            FormAction::Confirm => "confirm",
            FormAction::Verify => "verify",
            FormAction::SetUp => "setup",
            FormAction::Postpone => "postpone",
            FormAction::Continue => "continue",
            FormAction::Settings => "settings",
            FormAction::Cancel => "cancel",
            FormAction::ReplacePhone => "replace-phone",
            FormAction::NewRecoveryCodes => "new-recovery-codes",
            FormAction::Disable => "disable",
            FormAction::Reset => "reset",
            FormAction::Unlock => "unlock",
            FormAction::ForgetBrowser => "forget-browser",
            FormAction::ForgetAllBrowsers => "forget-all-browsers",
            FormAction::SendAgain => "send-again",
        }
    }

    /// Reads a submitted [`ACTION_FIELD`] value; unknown values are `None`.
    pub fn parse(value: &str) -> Option<FormAction> {
        ALL_ACTIONS
            .into_iter()
            .find(|action| action.as_str() == value)
    }
}

/// Why a submitted code form is shown again. The messages are deliberately generic: they
/// never reveal whether the account exists or which part of the input was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// The code (or recovery code) was not accepted.
    WrongCode,
    /// The input was not a code at all (letters, wrong length).
    CodeFormat,
    /// Too many failures; the account is locked for about this many minutes.
    Locked { minutes: u64 },
    /// The code was not accepted and only this many attempts are left before the code step
    /// locks (said before the last ones, so a lock does not come as a surprise).
    WrongCodeLeft { left: u32 },
    /// The code was too old or already used.
    Expired,
    /// The form's CSRF token was missing, stale or wrong.
    CsrfInvalid,
    /// The client is sending too many requests.
    TooManyRequests,
    /// A code from the app where the role's methods no longer count codes (passkeys only).
    AppCodeNotAccepted,
}

impl FormError {
    /// The message for the user, as plain text.
    pub fn message(&self, lang: Lang) -> String {
        let t = &strings(lang).form_errors;
        match self {
            FormError::WrongCode => t.wrong_code.to_owned(),
            FormError::CodeFormat => t.code_format.to_owned(),
            FormError::Locked { minutes } if *minutes <= 1 => t.locked_one_minute.to_owned(),
            FormError::Locked { minutes } => {
                t.locked_minutes.replace("{minutes}", &minutes.to_string())
            }
            FormError::WrongCodeLeft { left: 1 } => t.attempts_left_one.to_owned(),
            FormError::WrongCodeLeft { left } => {
                t.attempts_left_many.replace("{count}", &left.to_string())
            }
            FormError::Expired => t.expired.to_owned(),
            FormError::CsrfInvalid => t.csrf_invalid.to_owned(),
            FormError::TooManyRequests => t.too_many_requests.to_owned(),
            FormError::AppCodeNotAccepted => strings(lang).passkey.codes_not_allowed.to_owned(),
        }
    }
}

/// A gateway form: `<form method="post">`, the CSRF token, then `body`.
pub(crate) fn post_form(action: &str, csrf: &str, body: Markup) -> Markup {
    html! {
        form method="post" action=(action) {
            (hidden_field(CSRF_FIELD, csrf))
            (body)
        }
    }
}

/// How a page wants its code field.
pub(crate) struct CodeField<'a> {
    pub lang: Lang,
    pub label: &'a str,
    /// Help paragraphs shown under the label and read out with the field.
    pub hints: &'a [&'a str],
    pub error: Option<FormError>,
    /// Whether the field takes focus on load. Pages where the field is the first thing to
    /// do set it; a long page sets it only when it is shown again after an error, so a
    /// first visit starts at the instructions rather than scrolled past them.
    pub autofocus: bool,
    /// The field's `title`: the format expected, shown by browsers when the pattern does not
    /// match.
    pub title: &'a str,
    /// Who can lift a lock (`{helpdesk}`), said after a lock message.
    pub helpdesk: &'a str,
}

/// The label, the error alert (if any), the hints and the code input, with the element id
/// [`CODE_FIELD`]: the one code field of a page.
pub(crate) fn code_field(f: &CodeField<'_>) -> Markup {
    code_field_with_id(f, CODE_FIELD)
}

/// Like [`code_field`], for a page with several code forms: element ids must be unique in a
/// page (or a label points at the wrong field), so each gets its own `id`, and its error and
/// hints are `{id}-error` and `{id}-hint-N`. The field name stays [`CODE_FIELD`].
pub(crate) fn code_field_with_id(f: &CodeField<'_>, id: &str) -> Markup {
    let error = f
        .error
        .map(|error| (error.message(f.lang), format!("{id}-error")));
    let locked = matches!(f.error, Some(FormError::Locked { .. }));
    let locked_help = strings(f.lang).form_errors.locked_help;
    let hints: Vec<(&str, String)> = (1..)
        .zip(f.hints)
        .map(|(i, hint)| (*hint, format!("{id}-hint-{i}")))
        .collect();
    let described_by: Vec<&str> = error
        .iter()
        .map(|(_, error_id)| error_id.as_str())
        .chain(hints.iter().map(|(_, hint_id)| hint_id.as_str()))
        .collect();
    let described_by = (!described_by.is_empty()).then(|| described_by.join(" "));
    html! {
        label for=(id) { (f.label) }
        @if let Some((message, error_id)) = &error {
            p class="alert" role="alert" id=(error_id) {
                (message)
                @if locked {
                    " " (fill(locked_help, "{helpdesk}", f.helpdesk))
                }
            }
        }
        @for (hint, hint_id) in &hints {
            p class="muted" id=(hint_id) { (hint) }
        }
        input class="code" id=(id) name=(CODE_FIELD) type="text"
            autocomplete="one-time-code" inputmode="numeric" pattern="[0-9 ]*"
            maxlength=(CODE_MAX_LEN) autocapitalize="off" spellcheck="false" required
            title=(f.title)
            aria-describedby=[described_by] aria-invalid=[f.error.map(|_| "true")]
            autofocus[f.autofocus];
    }
}

/// A submit button. `action` sets [`ACTION_FIELD`] when the form has more than one choice.
pub(crate) fn button(class: &str, label: &str, action: Option<FormAction>) -> Markup {
    html! {
        button class=(class) type="submit" name=[action.map(|_| ACTION_FIELD)]
            value=[action.map(|action| action.as_str())] { (label) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_unknown_is_rejected() {
        let mut values: Vec<&str> = ALL_ACTIONS.iter().map(FormAction::as_str).collect();
        for a in ALL_ACTIONS {
            assert_eq!(FormAction::parse(a.as_str()), Some(a));
        }
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), ALL_ACTIONS.len(), "two actions share a value");
        assert_eq!(FormAction::parse("Postpone"), None);
        assert_eq!(FormAction::parse(""), None);
    }

    #[test]
    fn lock_message_states_the_minutes() {
        assert_eq!(
            FormError::Locked { minutes: 15 }.message(Lang::En),
            "Too many attempts. Please try again in 15 minutes."
        );
        assert_eq!(
            FormError::Locked { minutes: 15 }.message(Lang::Nl),
            "Te veel pogingen. Probeer het over 15 minuten opnieuw."
        );
        assert_eq!(
            FormError::Locked { minutes: 1 }.message(Lang::Nl),
            "Te veel pogingen. Probeer het over 1 minuut opnieuw."
        );
        assert_eq!(
            FormError::Locked { minutes: 0 }.message(Lang::En),
            "Too many attempts. Please try again in 1 minute."
        );
    }

    #[test]
    fn messages_never_mention_accounts_or_users() {
        let all = [
            FormError::WrongCode,
            FormError::CodeFormat,
            FormError::Locked { minutes: 5 },
            FormError::Expired,
            FormError::CsrfInvalid,
            FormError::TooManyRequests,
            FormError::AppCodeNotAccepted,
        ];
        for lang in [Lang::En, Lang::Nl] {
            for e in all {
                let m = e.message(lang).to_lowercase();
                for word in [
                    "user",
                    "account",
                    "gebruiker",
                    "exist",
                    "bestaat",
                    "password",
                ] {
                    assert!(!m.contains(word), "{e:?} {lang:?}: {m}");
                }
            }
        }
    }

    #[test]
    fn code_field_has_the_phone_friendly_attributes() {
        let html = code_field(&CodeField {
            lang: Lang::En,
            label: "Code",
            hints: &["From the app"],
            error: None,
            autofocus: true,
            title: "6 digits",
            helpdesk: "Desk",
        })
        .into_string();
        for attr in [
            r#"<label for="code">Code</label>"#,
            r#"id="code" name="code" type="text""#,
            r#"autocomplete="one-time-code""#,
            r#"inputmode="numeric""#,
            r#"pattern="[0-9 ]*""#,
            " required",
            r#"<p class="muted" id="code-hint-1">From the app</p>"#,
            r#"title="6 digits""#,
            r#"aria-describedby="code-hint-1""#,
            " autofocus>",
        ] {
            assert!(html.contains(attr), "{attr} missing in {html}");
        }
        assert!(!html.contains("role=\"alert\""));
        assert!(!html.contains("aria-invalid"));
    }

    #[test]
    fn code_field_with_error_announces_it() {
        let html = code_field(&CodeField {
            lang: Lang::Nl,
            label: "Code",
            hints: &["hint", "second"],
            error: Some(FormError::WrongCode),
            autofocus: false,
            title: "6 digits",
            helpdesk: "Desk",
        })
        .into_string();
        assert!(html.starts_with(
            r#"<label for="code">Code</label><p class="alert" role="alert" id="code-error">Die code"#
        ));
        assert!(html.contains(r#"aria-describedby="code-error code-hint-1 code-hint-2""#));
        assert!(html.contains(r#"aria-invalid="true""#));
        assert!(!html.contains("autofocus"));
    }

    #[test]
    fn a_lock_says_who_can_lift_it_and_the_last_tries_are_counted() {
        let html = code_field(&CodeField {
            lang: Lang::En,
            label: "Code",
            hints: &[],
            error: Some(FormError::Locked { minutes: 15 }),
            autofocus: false,
            title: "6 digits",
            helpdesk: "the <Acme> desk",
        })
        .into_string();
        assert!(html.contains(
            "Please try again in 15 minutes. Can't wait? Ask the &lt;Acme&gt; desk to lift the lock."
        ));
        assert_eq!(
            FormError::WrongCodeLeft { left: 2 }.message(Lang::En),
            "That code didn't work. 2 more tries, then the code step locks for a while."
        );
        assert!(
            FormError::WrongCodeLeft { left: 1 }
                .message(Lang::Nl)
                .contains("Nog één poging")
        );
    }

    #[test]
    fn code_field_with_its_own_id_keeps_the_name() {
        let html = code_field_with_id(
            &CodeField {
                lang: Lang::En,
                label: "Code",
                hints: &["hint"],
                error: Some(FormError::WrongCode),
                autofocus: false,
                title: "6 digits",
                helpdesk: "Desk",
            },
            "code-disable",
        )
        .into_string();
        assert!(html.starts_with(r#"<label for="code-disable">Code</label>"#));
        assert!(html.contains(r#"id="code-disable-error""#));
        assert!(html.contains(r#"<p class="muted" id="code-disable-hint-1">hint</p>"#));
        assert!(html.contains(r#"id="code-disable" name="code" type="text""#));
        assert!(html.contains(r#"aria-describedby="code-disable-error code-disable-hint-1""#));
        assert!(!html.contains(r#"id="code""#));
    }

    #[test]
    fn post_form_posts_and_carries_escaped_csrf() {
        assert_eq!(
            post_form("/_mfa/verify?a=1&b=2", "tok\"en", html! { p { "x" } }).into_string(),
            concat!(
                r#"<form method="post" action="/_mfa/verify?a=1&amp;b=2">"#,
                r#"<input type="hidden" name="csrf" value="tok&quot;en"><p>x</p></form>"#
            )
        );
    }

    #[test]
    fn buttons_carry_their_action() {
        assert_eq!(
            button("secondary", "Not now", Some(FormAction::Postpone)).into_string(),
            r#"<button class="secondary" type="submit" name="action" value="postpone">Not now</button>"#
        );
        assert_eq!(
            button("primary", "<Go>", None).into_string(),
            r#"<button class="primary" type="submit">&lt;Go&gt;</button>"#
        );
    }
}
