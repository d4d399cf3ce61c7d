//! Every word a user reads on a gateway page, in English and Dutch.
//!
//! Keeping all text here, as two complete [`Strings`] values, means the compiler refuses a
//! page text that exists in one language only, and a translator can review both languages
//! side by side without reading any markup. Page modules pick a [`Strings`] with
//! [`strings`] and never contain user-facing literals of their own.
//!
//! Texts are plain text, never HTML (a test checks): the page templates escape them. A few
//! carry a placeholder (`{account}`, `{minutes}`, `{status}`, `{count}`, `{user}`, …) that the
//! template renders the value in: the text around it as text, the value as the template
//! builds it (a name in `<strong>`, made visible). Markup such as that `<strong>` is the
//! template's, never a string's. Where a count can be one, there is a separate text for one,
//! because Dutch and English both change the noun.
//!
//! Wording follows the VMS announcement: "MFA", "authenticator app", "pairing code"
//! ("koppelcode") and "login code" ("inlogcode"); lost phones are handled by the MSP. The
//! Dutch text addresses the reader as "je" and keeps "MFA" as the announcement does, saying
//! once where it is explained that it is the "tweestapsverificatie" people know from DigiD and
//! their bank. "6‑digit" is written with a non-breaking hyphen
//! (U+2011) so a narrow screen never splits it across two lines.

use super::lang::Lang;

/// All user-facing text of the gateway pages in one language.
#[derive(Debug)]
pub struct Strings {
    pub common: CommonText,
    pub enroll: EnrollText,
    pub recovery: RecoveryText,
    pub enrollment_code: EnrollmentCodeText,
    pub verify: VerifyText,
    pub offer: OfferText,
    pub notice: NoticeText,
    pub account: AccountText,
    pub admin: AdminText,
    pub form_errors: FormErrorText,
    pub error_pages: ErrorPagesText,
    pub passkey: PasskeyText,
}

/// Passkeys and security keys (WebAuthn): the sign-in button, setting one up, the list on the
/// account and admin pages.
#[derive(Debug)]
pub struct PasskeyText {
    pub sign_in_button: &'static str,
    pub sign_in_intro: &'static str,
    /// Heading over the code form when a passkey is offered first.
    pub use_code_instead: &'static str,
    /// Heading over the code form when the role no longer takes app codes.
    pub use_recovery_instead: &'static str,
    /// The code field's label when only recovery codes count.
    pub recovery_label: &'static str,
    pub recovery_hint: &'static str,
    /// A code from the app, where the role's policy no longer takes them.
    pub codes_not_allowed: &'static str,
    pub needs_js: &'static str,
    pub unsupported: &'static str,
    /// The browser's ceremony failed or was cancelled.
    pub failed: &'static str,
    /// The gateway refused the browser's answer.
    pub refused: &'static str,
    pub setup_title: &'static str,
    pub setup_required: &'static str,
    pub setup_optional: &'static str,
    pub setup_how: &'static str,
    pub name_label: &'static str,
    pub name_hint: &'static str,
    pub default_name: &'static str,
    pub create_button: &'static str,
    pub list_title: &'static str,
    pub list_text: &'static str,
    pub none_yet: &'static str,
    /// `{date}`: when it was added.
    pub added_on: &'static str,
    /// `{date}`: its last sign-in.
    pub last_used_on: &'static str,
    pub never_used: &'static str,
    pub rename_label: &'static str,
    pub rename_button: &'static str,
    pub remove_button: &'static str,
    pub add_button: &'static str,
    pub done_added: &'static str,
    pub done_renamed: &'static str,
    pub done_removed: &'static str,
    /// Removing it would leave no method the role may sign in with.
    pub last_method: &'static str,
    /// The account page, for a user without the app: how a change is confirmed.
    pub confirm_how: &'static str,
    /// The account page's recovery codes text for a user without the app.
    pub recovery_text: &'static str,
    /// The account page's button that opens the confirmation of a change.
    pub confirm_start_recovery: &'static str,
    pub confirm_start_disable: &'static str,
    /// The confirmation page of a change (a user without the app).
    pub confirm_title: &'static str,
    pub confirm_recovery: &'static str,
    pub confirm_disable: &'static str,
    pub confirm_button: &'static str,
}

/// Text shared by several pages.
#[derive(Debug)]
pub struct CommonText {
    /// Separates the page title from the product name in the browser tab.
    pub title_separator: &'static str,
    pub back_to_sign_in: &'static str,
    pub try_again: &'static str,
    /// Small print on error pages; `{status}` is the HTTP status code.
    pub error_code: &'static str,
    pub not_now: &'static str,
    /// `{account}` is the signed-in user, on pages for a user who is already in.
    pub signed_in_as: &'static str,
    /// The link to the self-service page, on every page of a signed-in user.
    pub account_link: &'static str,
    /// The second button of the last page of a sign-in (recovery codes, a notice): finish
    /// signing in, then go to the self-service page.
    pub continue_to_settings: &'static str,
    /// Who helps with a lost phone or a lock when `mfa.helpdesk_name` is not set; fills
    /// `{helpdesk}`.
    pub helpdesk_default: &'static str,
    /// The `title` (format hint) of a field for a 6-digit code.
    pub code_title: &'static str,
    /// The `title` of the sign-in code field, which also takes a recovery code.
    pub code_or_recovery_title: &'static str,
}

/// The enrollment page: connecting an authenticator app.
#[derive(Debug)]
pub struct EnrollText {
    pub title: &'static str,
    pub required: &'static str,
    pub optional: &'static str,
    pub step_install: &'static str,
    pub step_scan: &'static str,
    pub qr_label: &'static str,
    pub open_in_app: &'static str,
    pub manual_intro: &'static str,
    pub pairing_code_label: &'static str,
    pub shown_in_app_label: &'static str,
    pub key_type_label: &'static str,
    pub key_type_value: &'static str,
    /// Label of the code field, also the third step.
    pub step_code: &'static str,
    pub confirm: &'static str,
    pub postpone_hint: &'static str,
    /// A new pending secret replaced one shown earlier and never confirmed.
    pub replaced: &'static str,
    /// `{minutes}`: how long the enrollment step of a sign-in stays open.
    pub time_limit: &'static str,
    pub cancel: &'static str,
    pub cancel_hint: &'static str,
}

/// The step before enrollment after a reset: the one-time enrollment code the helpdesk read
/// to the user on the phone.
#[derive(Debug)]
pub struct EnrollmentCodeText {
    pub title: &'static str,
    /// `{helpdesk}`: who gave the code.
    pub intro: &'static str,
    pub code_label: &'static str,
    pub hint: &'static str,
    /// The field's `title` (format hint).
    pub code_title: &'static str,
    pub continue_button: &'static str,
    pub expired_title: &'static str,
    /// `{helpdesk}`: who gives a new code.
    pub expired_text: &'static str,
    pub none_title: &'static str,
    /// `{helpdesk}`: who gives a new code.
    pub none_text: &'static str,
}

/// The page that shows recovery codes once.
#[derive(Debug)]
pub struct RecoveryText {
    pub title: &'static str,
    pub intro: &'static str,
    pub codes_label: &'static str,
    pub keep_safe: &'static str,
    pub continue_button: &'static str,
    pub download: &'static str,
    /// The name of the downloaded file (no extension).
    pub file_name: &'static str,
    /// First line of the downloaded file; `{account}` and `{product}`.
    pub file_heading: &'static str,
}

/// The login code challenge.
#[derive(Debug)]
pub struct VerifyText {
    pub title: &'static str,
    /// `{account}` is the account being signed in.
    pub signing_in_as: &'static str,
    pub code_label: &'static str,
    pub hint: &'static str,
    pub recovery_hint: &'static str,
    pub lost_phone: &'static str,
    pub verify_button: &'static str,
    pub other_account: &'static str,
    /// The "remember this browser" checkbox; `{days}` is two or more.
    pub remember_days: &'static str,
    pub remember_one_day: &'static str,
    /// Under the checkbox: only on a device nobody else uses.
    pub remember_hint: &'static str,
}

/// The invitation to opt in where MFA is optional.
#[derive(Debug)]
pub struct OfferText {
    pub title: &'static str,
    pub explain: &'static str,
    pub optional: &'static str,
    pub set_up_now: &'static str,
    /// "Not now" when the offer comes back at the next sign-in (no quiet period).
    pub later_hint_next: &'static str,
    pub later_hint_one_day: &'static str,
    /// `{days}`: the quiet period after "Not now", in days (two or more).
    pub later_hint_days: &'static str,
}

/// One-message interstitials shown during a sign-in.
#[derive(Debug)]
pub struct NoticeText {
    pub recovery_used_title: &'static str,
    pub recovery_used_once: &'static str,
    pub recovery_left_none: &'static str,
    pub recovery_left_one: &'static str,
    /// `{count}` is the number of unused codes (two or more).
    pub recovery_left_many: &'static str,
    /// Advice when no codes are left: without them and without the phone there is no way in.
    pub recovery_none_advice: &'static str,
    pub continue_button: &'static str,
}

/// The self-service page where a signed-in user manages their own MFA.
#[derive(Debug)]
pub struct AccountText {
    pub title: &'static str,
    pub state_on: &'static str,
    pub state_off: &'static str,
    pub since_label: &'static str,
    pub last_used_label: &'static str,
    pub never_used: &'static str,
    /// Enforced role, MFA on: it stays on; a lost phone goes through the MSP.
    pub required_on: &'static str,
    /// Enforced role, MFA not (yet) set up, e.g. right after an MSP reset.
    pub required_off: &'static str,
    pub optional: &'static str,
    /// The role's policy does not use MFA: nothing to set up.
    pub not_used: &'static str,
    pub setup_heading: &'static str,
    pub setup_text: &'static str,
    pub setup_button: &'static str,
    /// The set-up of the app for a user who has passkeys only.
    pub setup_app_heading: &'static str,
    pub setup_app_text: &'static str,
    pub setup_app_button: &'static str,
    /// The methods a user with MFA on has: `{app}` ([`Self::yes`] or [`Self::no`]), `{count}`
    /// passkeys.
    pub methods_label: &'static str,
    pub methods_value: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub replace_heading: &'static str,
    pub replace_text: &'static str,
    pub replace_code_label: &'static str,
    pub replace_button: &'static str,
    pub recovery_heading: &'static str,
    pub recovery_left_none: &'static str,
    pub recovery_left_one: &'static str,
    /// `{count}` is the number of unused codes (two or more).
    pub recovery_left_many: &'static str,
    pub recovery_text: &'static str,
    pub recovery_code_label: &'static str,
    pub recovery_button: &'static str,
    pub disable_heading: &'static str,
    pub disable_text: &'static str,
    /// Turning MFA off removes the passkeys too: one, or `{count}` (two or more).
    pub disable_passkeys_one: &'static str,
    pub disable_passkeys_many: &'static str,
    pub disable_code_label: &'static str,
    pub disable_button: &'static str,
    pub back: &'static str,
    pub done_phone_replaced: &'static str,
    pub done_recovery_replaced: &'static str,
    pub done_disabled: &'static str,
    pub done_enabled: &'static str,
    pub changed_meanwhile: &'static str,
    pub browsers_heading: &'static str,
    pub browsers_text: &'static str,
    /// A browser's name: `{browser}` (a known name or [`Self::browser_unknown`]) on
    /// `{system}` (a known system name).
    pub browser_on: &'static str,
    pub browser_unknown: &'static str,
    /// After the name of the browser the page is shown in.
    pub this_browser: &'static str,
    pub browser_remembered_label: &'static str,
    pub browser_last_used_label: &'static str,
    pub forget_button: &'static str,
    pub forget_all_button: &'static str,
    pub done_browser_forgotten: &'static str,
    pub done_browsers_forgotten: &'static str,
    /// A set-up refused since a reset: the pairing needs the enrollment code, typed in a
    /// sign-in; `{helpdesk}`.
    pub needs_enrollment_code: &'static str,
    /// A first set-up from the settings page with `first_enrollment = "email_code"`.
    pub needs_email_code: &'static str,
    /// Adding a factor to a session whose sign-in is too old.
    pub sign_in_again_to_add: &'static str,
}

/// The MSP administration pages: find a user, look at their MFA, reset or unlock it.
#[derive(Debug)]
pub struct AdminText {
    pub search_title: &'static str,
    pub search_intro: &'static str,
    pub search_label: &'static str,
    pub search_hint: &'static str,
    pub search_button: &'static str,
    pub found_one: &'static str,
    /// `{count}` is the number of users found (two or more).
    pub found_many: &'static str,
    /// `{query}` is what was searched for.
    pub found_none: &'static str,
    /// `{user}` is the user name.
    pub user_title: &'static str,
    pub back_to_search: &'static str,
    pub mfa_label: &'static str,
    /// `{since}` is a date and time.
    pub enrolled_since: &'static str,
    pub enrolled: &'static str,
    pub not_enrolled: &'static str,
    /// The methods of a user with MFA on: `{app}` ([`Self::yes`] or [`Self::no`]), `{count}`
    /// passkeys.
    pub methods_label: &'static str,
    pub methods_value: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub last_used_label: &'static str,
    pub never_used: &'static str,
    pub lock_label: &'static str,
    /// `{until}` is a date and time.
    pub locked_until: &'static str,
    pub not_locked: &'static str,
    pub role_label: &'static str,
    pub role_unknown: &'static str,
    pub policy_label: &'static str,
    pub policy_none: &'static str,
    pub policy_available: &'static str,
    pub policy_enforced: &'static str,
    pub recovery_label: &'static str,
    pub reset_heading: &'static str,
    pub reset_intro: &'static str,
    /// What a reset does, one list item each.
    pub reset_effects: [&'static str; 5],
    pub reset_check: &'static str,
    pub reason_label: &'static str,
    /// `{max}` is the longest reason accepted, in characters.
    pub reason_hint: &'static str,
    /// `{user}` is the user name.
    pub confirm_label: &'static str,
    pub reset_button: &'static str,
    pub reset_not_enrolled: &'static str,
    pub unlock_heading: &'static str,
    pub unlock_text: &'static str,
    pub unlock_button: &'static str,
    pub events_heading: &'static str,
    pub events_none: &'static str,
    /// Audit event ids (`audit::Event::as_str`) and what they mean, for the events table.
    pub event_names: &'static [(&'static str, &'static str)],
    pub col_time: &'static str,
    pub col_event: &'static str,
    pub col_actor: &'static str,
    pub col_detail: &'static str,
    /// `{user}` is the user name.
    pub done_reset: &'static str,
    /// `{user}` is the user name.
    pub done_unlocked: &'static str,
    pub browsers_label: &'static str,
    pub browsers_none: &'static str,
    pub forget_heading: &'static str,
    pub forget_text: &'static str,
    pub forget_button: &'static str,
    /// `{user}` is the user name.
    pub done_forgotten: &'static str,
    pub error_reason_missing: &'static str,
    pub error_confirm_missing: &'static str,
    pub error_unknown_user: &'static str,
    pub error_own_account: &'static str,
    pub error_outranked: &'static str,
    /// Said under the reset's effects when a reset makes an enrollment code.
    pub reset_code_effect: &'static str,
    pub code_label: &'static str,
    /// `{until}` is a date and time.
    pub code_pending_until: &'static str,
    /// `{until}` is a date and time.
    pub code_expired_at: &'static str,
    pub code_none: &'static str,
    /// The box that shows a new code, once; `{user}` is the user name.
    pub code_heading: &'static str,
    pub code_shown_once: &'static str,
    /// `{until}` is a date and time.
    pub code_valid_until: &'static str,
    /// What to say to the user on the phone, one item each.
    pub code_phone_steps: [&'static str; 4],
    pub new_code_heading: &'static str,
    pub new_code_text: &'static str,
    pub new_code_button: &'static str,
    pub error_enrolled_no_code: &'static str,
}

/// Messages shown above a code field after a failed submit. They never say whether the
/// account exists or which part of the input was wrong.
#[derive(Debug)]
pub struct FormErrorText {
    pub wrong_code: &'static str,
    pub code_format: &'static str,
    pub locked_one_minute: &'static str,
    /// `{minutes}` is the number of minutes (two or more).
    pub locked_minutes: &'static str,
    /// After a lock message: who can lift it; `{helpdesk}`.
    pub locked_help: &'static str,
    /// Before the last attempts; `{count}` attempts are left (two or more).
    pub attempts_left_many: &'static str,
    pub attempts_left_one: &'static str,
    pub expired: &'static str,
    pub csrf_invalid: &'static str,
    pub too_many_requests: &'static str,
}

/// Title and one-line explanation of an error page.
#[derive(Debug)]
pub struct ErrorText {
    pub title: &'static str,
    pub message: &'static str,
}

/// The gateway's own error pages.
#[derive(Debug)]
pub struct ErrorPagesText {
    pub bad_request: ErrorText,
    pub forbidden: ErrorText,
    pub not_found: ErrorText,
    pub payload_too_large: ErrorText,
    pub too_many_requests: ErrorText,
    pub challenge_expired: ErrorText,
    pub bad_gateway: ErrorText,
    pub gateway_timeout: ErrorText,
    pub service_unavailable: ErrorText,
    pub internal: ErrorText,
}

/// The text for one language.
pub fn strings(lang: Lang) -> &'static Strings {
    match lang {
        Lang::En => &EN,
        Lang::Nl => &NL,
    }
}

static EN: Strings = Strings {
    common: CommonText {
        title_separator: " – ",
        back_to_sign_in: "Back to sign in",
        try_again: "Try again",
        error_code: "Error code: {status}",
        not_now: "Not now",
        signed_in_as: "Signed in as {account}",
        account_link: "Your MFA settings",
        continue_to_settings: "Continue to your MFA settings",
        helpdesk_default: "your administrator",
        code_title: "6 digits, for example 123456",
        code_or_recovery_title: "The 6‑digit code from your app, or a 20‑digit recovery code",
    },
    enroll: EnrollText {
        title: "Set up MFA for your account",
        required: "Your organisation requires multi-factor authentication (MFA) for your account. \
                   You set it up once; it takes about two minutes.",
        optional: "Multi-factor authentication (MFA) is optional for your account, but we \
                   recommend it. Setting it up takes about two minutes.",
        step_install: "Install an authenticator app on your phone, for example Microsoft \
                       Authenticator, Google Authenticator, Salesforce Authenticator, Authy or \
                       LastPass Authenticator. You will find them in the App Store and the Play Store.",
        step_scan: "Add your account to the app: scan this QR code with your phone or, if \
                    you are on the phone with the app, tap \u{201c}Add to authenticator app\u{201d}.",
        qr_label: "QR code for adding your account to an authenticator app",
        open_in_app: "Add to authenticator app",
        manual_intro: "Can't scan the code? Choose to enter a key in the app and type this \
                       pairing code:",
        pairing_code_label: "Pairing code",
        shown_in_app_label: "Shown in the app as",
        key_type_label: "Type of key",
        key_type_value: "Time-based",
        step_code: "Enter the 6‑digit code the app now shows",
        confirm: "Turn on MFA",
        postpone_hint: "You can set up MFA the next time you sign in.",
        replaced: "Added an earlier code for this account to your app? Delete that entry and \
                   scan this one: the earlier one will not work.",
        time_limit: "This page stays open for {minutes} minutes. If the time runs out, sign in \
                     again: you get this same QR code, so an entry you already added to the app \
                     keeps working.",
        cancel: "Cancel",
        cancel_hint: "Cancel and you continue without MFA. You can set it up at any time in \
                      your MFA settings.",
    },
    enrollment_code: EnrollmentCodeText {
        title: "Enter your enrollment code",
        intro: "Your MFA was reset. Before you connect a new authenticator app, enter the \
                one-time enrollment code that {helpdesk} read to you on the phone.",
        code_label: "Enrollment code",
        hint: "8 digits, for example 1234 5678. It works once.",
        code_title: "The 8\u{2011}digit enrollment code",
        continue_button: "Continue",
        expired_title: "Your enrollment code has expired",
        expired_text: "Call {helpdesk} for a new enrollment code, then sign in again.",
        none_title: "You need a new enrollment code",
        none_text: "Your MFA was reset, and its enrollment code has been used or replaced. Call \
                    {helpdesk} for a new enrollment code, then sign in again.",
    },
    recovery: RecoveryText {
        title: "Save your recovery codes",
        intro: "MFA is now on. If you can't use your phone, you can sign in with one of these \
                codes instead. Each code works once.",
        codes_label: "Recovery codes",
        keep_safe: "Keep them somewhere safe, such as a password manager, or print them. \
                    They will not be shown again.",
        continue_button: "I have saved them, continue",
        download: "Download as a text file",
        file_name: "recovery-codes",
        file_heading: "Recovery codes for {account} ({product}). Each code works once.",
    },
    verify: VerifyText {
        title: "Enter your login code",
        signing_in_as: "Signing in as {account}",
        code_label: "Login code",
        hint: "Open your authenticator app and enter the 6‑digit code it shows for this account.",
        recovery_hint: "No phone at hand? Enter one of your recovery codes in the same field.",
        lost_phone: "Lost your phone? Contact {helpdesk}; they can disconnect MFA from your \
                     account so you can set it up again.",
        verify_button: "Verify",
        other_account: "Sign in with a different account",
        remember_days: "Don't ask for a code on this browser for {days} days",
        remember_one_day: "Don't ask for a code on this browser for 1 day",
        remember_hint: "Only tick this on a device that nobody else uses. You can forget the \
                        browser again in your MFA settings.",
    },
    offer: OfferText {
        title: "Protect your account with MFA",
        explain: "Multi-factor authentication (MFA) adds a second step when you sign in: \
                  besides your password, you enter a code from an app on your phone. Even if \
                  someone learns your password, they cannot get into your account.",
        optional: "MFA is optional for your account. Setting it up takes about two minutes.",
        set_up_now: "Set up now",
        later_hint_next: "If you choose \u{201c}Not now\u{201d}, we will ask again the next \
                          time you sign in.",
        later_hint_one_day: "If you choose \u{201c}Not now\u{201d}, we won't ask again for a \
                             day. You can set up MFA at any time in your MFA settings.",
        later_hint_days: "If you choose \u{201c}Not now\u{201d}, we won't ask again for {days} \
                          days. You can set up MFA at any time in your MFA settings.",
    },
    notice: NoticeText {
        recovery_used_title: "You signed in with a recovery code",
        recovery_used_once: "That code no longer works: each recovery code works once.",
        recovery_left_none: "That was your last recovery code.",
        recovery_left_one: "You have 1 unused recovery code left.",
        recovery_left_many: "You have {count} unused recovery codes left.",
        recovery_none_advice: "Please sort this out now, or you may not be able to sign in \
                               next time. Still have your phone? Make new codes in your MFA \
                               settings. Lost your phone? Ask {helpdesk} to disconnect MFA, \
                               so you can set it up on a new phone.",
        continue_button: "Continue",
    },
    account: AccountText {
        title: "Your MFA settings",
        state_on: "MFA is on for your account.",
        state_off: "MFA is off for your account.",
        since_label: "Set up on",
        last_used_label: "Last used",
        never_used: "Not used yet",
        required_on: "Your organisation requires MFA for your account, so it cannot be turned \
                      off. Lost your phone or security key? Contact {helpdesk}; they can \
                      disconnect MFA so you can set it up again.",
        required_off: "Your organisation requires MFA for your account. You can set it up now; \
                       otherwise you will be asked the next time you sign in.",
        optional: "MFA is optional for your account.",
        not_used: "MFA is not used for your role, so there is nothing to set up here.",
        setup_heading: "Turn on MFA",
        setup_text: "You scan a QR code with an authenticator app on your phone. It takes about \
                     two minutes.",
        setup_button: "Set up MFA",
        setup_app_heading: "Add an authenticator app",
        setup_app_text: "You sign in with a passkey. An authenticator app on your phone is a \
                         second way in, for when your passkey is not at hand. Your passkeys \
                         stay as they are.",
        setup_app_button: "Set up the app",
        methods_label: "Methods",
        methods_value: "authenticator app: {app}; passkeys: {count}",
        yes: "yes",
        no: "no",
        replace_heading: "Replace your phone",
        replace_text: "New phone? Enter a code from the app on your current phone. You then \
                       scan a new QR code with the new phone, and the old one stops working.",
        replace_code_label: "Code from your current phone",
        replace_button: "Replace phone",
        recovery_heading: "Recovery codes",
        recovery_left_none: "You have no unused codes left.",
        recovery_left_one: "1 unused code left.",
        recovery_left_many: "{count} unused codes left.",
        recovery_text: "Used some, or can't find them? Make new ones with a code from your app. \
                        The new codes are shown once.",
        recovery_code_label: "Code from your authenticator app",
        recovery_button: "Make new codes (the old ones stop working)",
        disable_heading: "Turn off MFA",
        disable_text: "Signing in then needs only your password again, and your recovery codes \
                       are deleted. You can turn MFA on again here at any time.",
        disable_passkeys_one: "Your passkey is removed as well.",
        disable_passkeys_many: "Your {count} passkeys are removed as well.",
        disable_code_label: "Code from your authenticator app",
        disable_button: "Turn off MFA",
        back: "Back to the application",
        done_phone_replaced: "Your new phone is connected. Codes from the old phone no longer \
                              work.",
        done_recovery_replaced: "You have new recovery codes. The old ones no longer work.",
        done_disabled: "MFA is now off for your account.",
        done_enabled: "MFA is now on for your account.",
        changed_meanwhile: "Nothing was changed: the MFA of your account was set up or \
                            replaced elsewhere while this page was open. If that was not you, \
                            contact the service desk.",
        browsers_heading: "Remembered browsers",
        browsers_text: "In these browsers you sign in without a code for a while. Forget a \
                        browser you no longer use or don't recognise: it then asks for a code \
                        again.",
        browser_on: "{browser} on {system}",
        browser_unknown: "Unknown browser",
        this_browser: "(this browser)",
        browser_remembered_label: "Remembered on",
        browser_last_used_label: "Last used",
        forget_button: "Forget",
        forget_all_button: "Forget all browsers",
        done_browser_forgotten: "The browser is forgotten. It asks for a code at the next \
                                 sign-in.",
        done_browsers_forgotten: "All browsers are forgotten. Each asks for a code at the next \
                                  sign-in.",
        needs_enrollment_code: "Your MFA was reset. To connect a new app, sign out, sign in again \
                             and enter the enrollment code from {helpdesk}.",
        needs_email_code: "MFA is set up when you sign in: sign out and sign in again. A code is \
                           then sent to your e-mail address first.",
        sign_in_again_to_add: "To add a way to sign in, sign out and sign in again first: it \
                               can be added within 15 minutes of a sign-in.",
    },
    admin: AdminText {
        search_title: "Find a user",
        search_intro: "Look up a user's MFA to disconnect a lost phone or to lift a lock.",
        search_label: "User name",
        search_hint: "The start of the name is enough.",
        search_button: "Search",
        found_one: "1 user found",
        found_many: "{count} users found",
        found_none: "No user name starts with \u{201c}{query}\u{201d}.",
        user_title: "MFA for {user}",
        back_to_search: "Back to search",
        mfa_label: "MFA status",
        enrolled_since: "Set up since {since}",
        enrolled: "Set up",
        not_enrolled: "Not set up",
        methods_label: "Methods",
        methods_value: "authenticator app: {app}; passkeys: {count}",
        yes: "yes",
        no: "no",
        last_used_label: "Last successful use",
        never_used: "Never",
        lock_label: "Lock",
        locked_until: "Locked until {until}",
        not_locked: "Not locked",
        role_label: "Role at last sign-in",
        role_unknown: "Unknown",
        policy_label: "MFA for this role today",
        policy_none: "Not offered",
        policy_available: "Optional",
        policy_enforced: "Required",
        recovery_label: "Unused recovery codes",
        reset_heading: "Disconnect MFA (lost phone)",
        reset_intro: "Use this when the user has lost their phone or can no longer use their \
                      authenticator app. It takes effect at once:",
        reset_effects: [
            "The user's authenticator app is disconnected.",
            "The user's recovery codes are deleted.",
            "All of the user's sessions end, on every gateway.",
            "At the next sign-in the user connects a new app.",
            "Browsers the user chose to remember are forgotten.",
        ],
        reset_check: "First make sure the request really comes from this user, for example by \
                      calling them back on a number you know. Your name and the reason are \
                      recorded.",
        reason_label: "Reason",
        reason_hint: "For example: phone lost, ticket 12345. At most {max} characters.",
        confirm_label: "I have checked the request and want to disconnect MFA for {user}",
        reset_button: "Disconnect MFA",
        reset_not_enrolled: "MFA is not set up for this user, so there is nothing to disconnect.",
        unlock_heading: "Lift the lock",
        unlock_text: "The user entered too many wrong codes. Unlocking only lifts this lock on \
                      the code step; the user's app, recovery codes and password stay as they are.",
        unlock_button: "Unlock",
        events_heading: "Recent MFA events",
        events_none: "No MFA events are recorded for this user.",
        event_names: &[
            ("enrolled", "MFA set up"),
            ("verify_success", "Code accepted"),
            ("verify_failure", "Wrong code"),
            ("replay_rejected", "Code used twice, refused"),
            ("locked", "Code step locked"),
            ("unlocked", "Lock lifted"),
            ("reset", "MFA disconnected"),
            ("reset_failed", "Disconnecting MFA failed"),
            ("recovery_code_used", "Recovery code used"),
            ("recovery_codes_issued", "New recovery codes"),
            ("enrollment_postponed", "Set-up postponed"),
            ("offer_declined", "Offer declined (Not now)"),
            ("self_phone_replaced", "Phone replaced by the user"),
            ("self_mfa_disabled", "MFA turned off by the user"),
            (
                "self_change_refused",
                "Change refused: MFA changed meanwhile",
            ),
            ("policy_reloaded", "Policy reloaded"),
            ("policy_reload_failed", "Policy reload failed"),
            ("admin_api_call", "Administration API call"),
            ("admin_access_denied", "Administration access refused"),
            ("admin_action_refused", "Administration action refused"),
            ("secrets_resealed", "Secrets re-encrypted"),
            (
                "identity_mismatch",
                "Sign-in ended: name differs from the VMS's",
            ),
            (
                "browser_remembered",
                "Browser remembered (no code for a while)",
            ),
            ("browser_forgotten", "Remembered browser forgotten"),
            ("enrollment_code_issued", "Enrollment code issued"),
            ("enrollment_code_accepted", "Enrollment code accepted"),
            ("enrollment_code_refused", "Enrollment code refused"),
            ("passkey_added", "Passkey added"),
            ("passkey_renamed", "Passkey renamed"),
            ("passkey_removed", "Passkey removed"),
            ("passkey_refused", "Passkey refused"),
        ],
        col_time: "Time",
        col_event: "Event",
        col_actor: "By",
        col_detail: "Details",
        done_reset: "MFA is disconnected for {user}. Their sessions have ended; at the next \
                     sign-in they connect a new app.",
        done_unlocked: "The lock is lifted. {user} can enter codes again.",
        browsers_label: "Remembered browsers",
        browsers_none: "None",
        forget_heading: "Forget remembered browsers",
        forget_text: "These browsers sign the user in without a code for a while. Forgotten, \
                      they ask for a code again at the next sign-in. A reset forgets them too.",
        forget_button: "Forget all browsers",
        done_forgotten: "The remembered browsers of {user} are forgotten. They ask for a code \
                         at the next sign-in.",
        error_reason_missing: "Enter a reason for disconnecting MFA.",
        error_confirm_missing: "Tick the confirmation box to disconnect MFA.",
        error_unknown_user: "There is no user with this name. Please search again.",
        error_own_account: "You cannot disconnect or unlock your own MFA. Ask another \
                            administrator.",
        error_outranked: "Your role may not disconnect or unlock MFA for users of this role. \
                          Ask an administrator.",
        reset_code_effect: "You get a one-time enrollment code to read to the user: without \
                            it, no new app can be connected.",
        code_label: "Enrollment code",
        code_pending_until: "Waiting to be used, valid until {until}",
        code_expired_at: "Expired on {until}: give the user a new one",
        code_none: "None",
        code_heading: "Enrollment code for {user}",
        code_shown_once: "This code is shown only now: the gateway keeps only a fingerprint of \
                          it. Read it to the user on the phone; do not send it by e-mail or chat.",
        code_valid_until: "Valid until {until}, for one use.",
        code_phone_steps: [
            "Say: \u{201c}Sign in to the VMS as usual, with your user name and password.\u{201d}",
            "Say: \u{201c}The next page asks for your enrollment code. Type the eight digits I \
             read you now.\u{201d} Then read the code, in two groups of four digits.",
            "Say: \u{201c}Then install an authenticator app on your new phone and scan the QR \
             code the page shows.\u{201d}",
            "Say: \u{201c}If the code does not work or has expired, call us again for a new \
             one.\u{201d}",
        ],
        new_code_heading: "New enrollment code",
        new_code_text: "Makes a new one-time code for connecting a new app. The earlier code \
                        stops working at once. Use it when the code has expired or was lost.",
        new_code_button: "Make a new code",
        error_enrolled_no_code: "This user has an app connected, so no enrollment code is needed.",
    },
    form_errors: FormErrorText {
        wrong_code: "That code didn't work. Enter the code your app shows now and try again.",
        code_format: "A login code has 6 digits, for example 123456.",
        locked_one_minute: "Too many attempts. Please try again in 1 minute.",
        locked_minutes: "Too many attempts. Please try again in {minutes} minutes.",
        locked_help: "Can't wait? Ask {helpdesk} to lift the lock.",
        attempts_left_many: "That code didn't work. {count} more tries, then the code step \
                             locks for a while.",
        attempts_left_one: "That code didn't work. One more try, then the code step locks for \
                            a while.",
        expired: "That code has expired. Enter the code your app shows now.",
        csrf_invalid: "This page was open for too long or was sent twice. Please try again.",
        too_many_requests: "Too many requests. Wait a moment, then try again.",
    },
    error_pages: ErrorPagesText {
        bad_request: ErrorText {
            title: "Something went wrong with this request",
            message: "Please go back to the sign-in page and try again.",
        },
        forbidden: ErrorText {
            title: "No access",
            message: "You don't have access to this page.",
        },
        not_found: ErrorText {
            title: "Page not found",
            message: "This page doesn't exist or is no longer available.",
        },
        payload_too_large: ErrorText {
            title: "Too much data",
            message: "What was sent is larger than this page accepts. Please try again.",
        },
        too_many_requests: ErrorText {
            title: "Too many requests",
            message: "Please wait a minute, then try again.",
        },
        challenge_expired: ErrorText {
            title: "Your sign-in took too long",
            message: "For your security, please sign in again.",
        },
        bad_gateway: ErrorText {
            title: "The application is not responding",
            message: "We could not reach the application. Please try again in a moment.",
        },
        gateway_timeout: ErrorText {
            title: "The application is taking too long",
            message: "The application did not answer in time. Please try again in a moment.",
        },
        service_unavailable: ErrorText {
            title: "Signing in is temporarily unavailable",
            message: "Please try again in a minute.",
        },
        internal: ErrorText {
            title: "Something went wrong",
            message: "Please try again. If this keeps happening, contact {helpdesk}.",
        },
    },
    passkey: PasskeyText {
        sign_in_button: "Sign in with a passkey",
        sign_in_intro: "Use the passkey or security key you set up for this account: your phone, your computer's fingerprint or PIN, or a key you plug in or hold near.",
        use_code_instead: "Or use a code instead",
        use_recovery_instead: "Lost your passkey? Use a recovery code",
        recovery_label: "Recovery code",
        recovery_hint: "Type one of the recovery codes you saved when you set up MFA.",
        codes_not_allowed: "Your role signs in with a passkey now; codes from the app no longer count. A recovery code still works.",
        needs_js: "A passkey needs JavaScript, which is off in this browser. Turn it on to use your passkey.",
        unsupported: "This browser cannot use passkeys. Use a recent browser.",
        failed: "The passkey was not used: cancelled, timed out, or not one of this account's. Try again.",
        refused: "That passkey was not accepted. Try again, or use another one.",
        setup_title: "Set up a passkey",
        setup_required: "Your role now signs in with a passkey or security key. They cannot be used by a fake sign-in page, and there is no code to type.",
        setup_optional: "A passkey signs you in without typing a code, and a fake sign-in page cannot use it.",
        setup_how: "A passkey lives on your phone or computer (unlocked with your fingerprint, face or PIN) or on a security key you plug in or hold near.",
        name_label: "Name for this passkey",
        name_hint: "So you can tell your passkeys apart, for example work laptop or YubiKey.",
        default_name: "Passkey",
        create_button: "Create passkey",
        list_title: "Passkeys and security keys",
        list_text: "Sign in with one of these instead of a code. Remove one you no longer have.",
        none_yet: "No passkeys yet.",
        added_on: "Added {date}",
        last_used_on: "Last used {date}",
        never_used: "Not used yet",
        rename_label: "Name",
        rename_button: "Rename",
        remove_button: "Remove",
        add_button: "Add a passkey",
        done_added: "Your passkey was added.",
        done_renamed: "Your passkey was renamed.",
        done_removed: "Your passkey was removed.",
        last_method: "This is the last way you can sign in with. Add another passkey (or the app, where your role allows it) before removing it.",
        confirm_how: "You confirm this with one of your passkeys; that needs JavaScript in \
                      your browser.",
        recovery_text: "Used some, or can't find them? Make new ones, confirmed with one of \
                        your passkeys. The new codes are shown once.",
        confirm_start_recovery: "Make new codes (the old ones stop working)",
        confirm_start_disable: "Turn off MFA",
        confirm_title: "Confirm with your passkey",
        confirm_recovery: "To make new recovery codes, confirm with one of your passkeys. The \
                           old codes stop working.",
        confirm_disable: "To turn off MFA, confirm with one of your passkeys. Your passkeys and \
                          recovery codes are then removed, and signing in needs only your \
                          password again.",
        confirm_button: "Confirm with a passkey",
    },
};

static NL: Strings = Strings {
    common: CommonText {
        title_separator: " – ",
        back_to_sign_in: "Terug naar inloggen",
        try_again: "Opnieuw proberen",
        error_code: "Foutcode: {status}",
        not_now: "Niet nu",
        signed_in_as: "Ingelogd als {account}",
        account_link: "Je MFA-instellingen",
        continue_to_settings: "Doorgaan naar je MFA-instellingen",
        helpdesk_default: "je beheerder",
        code_title: "6 cijfers, bijvoorbeeld 123456",
        code_or_recovery_title: "De 6‑cijferige code uit je app, of een herstelcode van 20 cijfers",
    },
    enroll: EnrollText {
        title: "MFA instellen voor je account",
        required: "Je organisatie vereist multifactorauthenticatie (MFA, ook wel \
                   tweestapsverificatie) voor je account. Je stelt het één keer in; dat duurt \
                   ongeveer twee minuten.",
        optional: "Multifactorauthenticatie (MFA, ook wel tweestapsverificatie) is voor jouw \
                   account niet verplicht, maar wel aan te raden. Instellen duurt ongeveer twee \
                   minuten.",
        step_install: "Installeer een authenticator-app op je telefoon, bijvoorbeeld Microsoft \
                       Authenticator, Google Authenticator, Salesforce Authenticator, Authy of \
                       LastPass Authenticator. Je vindt ze in de App Store en de Play Store.",
        step_scan: "Voeg je account toe aan de app: scan deze QR-code met je telefoon of, als \
                    je op de telefoon met de app zit, tik op \u{2018}Toevoegen aan \
                    authenticator-app\u{2019}.",
        qr_label: "QR-code om je account aan een authenticator-app toe te voegen",
        open_in_app: "Toevoegen aan authenticator-app",
        manual_intro: "Lukt het scannen niet? Kies in de app voor het invoeren van een sleutel en \
                       typ deze koppelcode over:",
        pairing_code_label: "Koppelcode",
        shown_in_app_label: "In de app te zien als",
        key_type_label: "Type sleutel",
        key_type_value: "Op tijd gebaseerd",
        step_code: "Vul de 6‑cijferige code in die de app nu toont",
        confirm: "MFA inschakelen",
        postpone_hint: "Je kunt MFA ook instellen wanneer je de volgende keer inlogt.",
        replaced: "Heb je eerder al een code voor dit account aan je app toegevoegd? Verwijder \
                   die en scan deze: de eerdere werkt niet.",
        time_limit: "Deze pagina blijft {minutes} minuten open. Is de tijd om, log dan opnieuw \
                     in: je krijgt dezelfde QR-code, dus wat je al aan de app hebt toegevoegd, \
                     blijft werken.",
        cancel: "Annuleren",
        cancel_hint: "Annuleer je, dan ga je verder zonder MFA. Je kunt het altijd nog \
                      instellen bij je MFA-instellingen.",
    },
    enrollment_code: EnrollmentCodeText {
        title: "Vul je koppelingscode in",
        intro: "Je MFA is gereset. Voordat je een nieuwe authenticator-app koppelt, vul je de \
                eenmalige koppelingscode in die {helpdesk} je telefonisch heeft voorgelezen.",
        code_label: "Koppelingscode",
        hint: "8 cijfers, bijvoorbeeld 1234 5678. Hij werkt één keer.",
        code_title: "De koppelingscode van 8 cijfers",
        continue_button: "Verder",
        expired_title: "Je koppelingscode is verlopen",
        expired_text: "Bel {helpdesk} voor een nieuwe koppelingscode en log daarna opnieuw in.",
        none_title: "Je hebt een nieuwe koppelingscode nodig",
        none_text: "Je MFA is gereset, en de koppelingscode daarvoor is al gebruikt of \
                    vervangen. Bel {helpdesk} voor een nieuwe koppelingscode en log daarna \
                    opnieuw in.",
    },
    recovery: RecoveryText {
        title: "Bewaar je herstelcodes",
        intro: "MFA staat nu aan. Kun je je telefoon niet gebruiken? Dan log je in met een van \
                deze codes. Elke code werkt één keer.",
        codes_label: "Herstelcodes",
        keep_safe: "Bewaar ze op een veilige plek, bijvoorbeeld in een wachtwoordmanager, of \
                    print ze. Ze worden niet opnieuw getoond.",
        continue_button: "Ik heb ze bewaard, doorgaan",
        download: "Downloaden als tekstbestand",
        file_name: "herstelcodes",
        file_heading: "Herstelcodes voor {account} ({product}). Elke code werkt één keer.",
    },
    verify: VerifyText {
        title: "Vul je inlogcode in",
        signing_in_as: "Je logt in als {account}",
        code_label: "Inlogcode",
        hint: "Open je authenticator-app en vul de 6‑cijferige code in die de app voor dit \
               account toont.",
        recovery_hint: "Telefoon niet bij de hand? Vul dan een van je herstelcodes in hetzelfde \
                        veld in.",
        lost_phone: "Telefoon kwijt? Neem contact op met {helpdesk}. Die kan MFA van je account \
                     loskoppelen, zodat je het opnieuw kunt instellen.",
        verify_button: "Controleren",
        other_account: "Met een ander account inloggen",
        remember_days: "De komende {days} dagen niet om een code vragen in deze browser",
        remember_one_day: "De komende dag niet om een code vragen in deze browser",
        remember_hint: "Vink dit alleen aan op een apparaat dat niemand anders gebruikt. Je kunt \
                        de browser later weer vergeten bij je MFA-instellingen.",
    },
    offer: OfferText {
        title: "Beveilig je account met MFA",
        explain: "Multifactorauthenticatie (MFA) voegt een tweede stap toe aan het inloggen, \
                  zoals je dat kent van tweestapsverificatie bij DigiD of je bank: naast je \
                  wachtwoord vul je een code in uit een app op je telefoon. Ook als iemand je \
                  wachtwoord kent, komt die niet in je account.",
        optional: "MFA is voor jouw account niet verplicht. Instellen duurt ongeveer twee minuten.",
        set_up_now: "Nu instellen",
        later_hint_next: "Kies je \u{2018}Niet nu\u{2019}, dan vragen we het de volgende keer \
                          dat je inlogt opnieuw.",
        later_hint_one_day: "Kies je \u{2018}Niet nu\u{2019}, dan vragen we het een dag niet \
                             meer. Je kunt MFA altijd zelf instellen bij je MFA-instellingen.",
        later_hint_days: "Kies je \u{2018}Niet nu\u{2019}, dan vragen we het {days} dagen niet \
                          meer. Je kunt MFA altijd zelf instellen bij je MFA-instellingen.",
    },
    notice: NoticeText {
        recovery_used_title: "Je bent ingelogd met een herstelcode",
        recovery_used_once: "Die code werkt nu niet meer: elke herstelcode werkt één keer.",
        recovery_left_none: "Dat was je laatste herstelcode.",
        recovery_left_one: "Je hebt nog 1 ongebruikte herstelcode.",
        recovery_left_many: "Je hebt nog {count} ongebruikte herstelcodes.",
        recovery_none_advice: "Regel dit nu, anders kun je de volgende keer misschien niet \
                               inloggen. Heb je je telefoon nog? Maak dan nieuwe codes aan in \
                               je MFA-instellingen. Telefoon kwijt? Vraag {helpdesk} dan om MFA \
                               los te koppelen, zodat je het op een nieuwe telefoon kunt \
                               instellen.",
        continue_button: "Doorgaan",
    },
    account: AccountText {
        title: "Je MFA-instellingen",
        state_on: "MFA staat aan voor je account.",
        state_off: "MFA staat uit voor je account.",
        since_label: "Ingesteld op",
        last_used_label: "Laatst gebruikt",
        never_used: "Nog niet gebruikt",
        required_on: "Je organisatie vereist MFA voor je account, dus je kunt het niet \
                      uitzetten. Telefoon of beveiligingssleutel kwijt? Neem contact op met \
                      {helpdesk}. Die kan MFA loskoppelen, zodat je het opnieuw kunt instellen.",
        required_off: "Je organisatie vereist MFA voor je account. Je kunt het nu instellen; \
                       anders wordt het je gevraagd wanneer je de volgende keer inlogt.",
        optional: "MFA is voor jouw account niet verplicht.",
        not_used: "MFA wordt voor jouw rol niet gebruikt, dus hier is niets in te stellen.",
        setup_heading: "MFA aanzetten",
        setup_text: "Je scant een QR-code met een authenticator-app op je telefoon. Dat duurt \
                     ongeveer twee minuten.",
        setup_button: "MFA instellen",
        setup_app_heading: "Een authenticator-app toevoegen",
        setup_app_text: "Je logt in met een passkey. Een authenticator-app op je telefoon is \
                         een tweede manier om in te loggen, voor als je passkey niet bij de \
                         hand is. Je passkeys blijven zoals ze zijn.",
        setup_app_button: "App instellen",
        methods_label: "Methoden",
        methods_value: "authenticator-app: {app}; passkeys: {count}",
        yes: "ja",
        no: "nee",
        replace_heading: "Je telefoon vervangen",
        replace_text: "Nieuwe telefoon? Vul een code in uit de app op je huidige telefoon. \
                       Daarna scan je met de nieuwe telefoon een nieuwe QR-code, en werkt de \
                       oude niet meer.",
        replace_code_label: "Code van je huidige telefoon",
        replace_button: "Telefoon vervangen",
        recovery_heading: "Herstelcodes",
        recovery_left_none: "Je hebt geen ongebruikte codes meer.",
        recovery_left_one: "Nog 1 ongebruikte code.",
        recovery_left_many: "Nog {count} ongebruikte codes.",
        recovery_text: "Een paar gebruikt, of kun je ze niet meer vinden? Maak nieuwe aan met \
                        een code uit je app. De nieuwe codes worden één keer getoond.",
        recovery_code_label: "Code uit je authenticator-app",
        recovery_button: "Nieuwe codes maken (de oude werken dan niet meer)",
        disable_heading: "MFA uitzetten",
        disable_text: "Inloggen gaat dan weer alleen met je wachtwoord, en je herstelcodes \
                       worden verwijderd. Je kunt MFA hier altijd weer aanzetten.",
        disable_passkeys_one: "Je passkey wordt ook verwijderd.",
        disable_passkeys_many: "Je {count} passkeys worden ook verwijderd.",
        disable_code_label: "Code uit je authenticator-app",
        disable_button: "MFA uitzetten",
        back: "Terug naar de applicatie",
        done_phone_replaced: "Je nieuwe telefoon is gekoppeld. Codes van de oude telefoon \
                              werken niet meer.",
        done_recovery_replaced: "Je hebt nieuwe herstelcodes. De oude werken niet meer.",
        done_disabled: "MFA staat nu uit voor je account.",
        done_enabled: "MFA staat nu aan voor je account.",
        changed_meanwhile: "Er is niets gewijzigd: de MFA van je account is ergens anders \
                            ingesteld of vervangen terwijl deze pagina open stond. Was jij dat \
                            niet, neem dan contact op met de servicedesk.",
        browsers_heading: "Onthouden browsers",
        browsers_text: "In deze browsers log je een tijdje in zonder code. Vergeet een browser \
                        die je niet meer gebruikt of niet herkent: daar wordt dan weer om een \
                        code gevraagd.",
        browser_on: "{browser} op {system}",
        browser_unknown: "Onbekende browser",
        this_browser: "(deze browser)",
        browser_remembered_label: "Onthouden op",
        browser_last_used_label: "Laatst gebruikt",
        forget_button: "Vergeten",
        forget_all_button: "Alle browsers vergeten",
        done_browser_forgotten: "De browser is vergeten. Bij de volgende keer inloggen wordt \
                                 daar weer om een code gevraagd.",
        done_browsers_forgotten: "Alle browsers zijn vergeten. Bij de volgende keer inloggen \
                                  wordt weer om een code gevraagd.",
        needs_enrollment_code: "Je MFA is gereset. Om een nieuwe app te koppelen, log je uit, log \
                             je opnieuw in en vul je de koppelingscode van {helpdesk} in.",
        needs_email_code: "MFA stel je in bij het inloggen: log uit en log opnieuw in. Er wordt \
                           dan eerst een code naar je e-mailadres gestuurd.",
        sign_in_again_to_add: "Log eerst uit en opnieuw in om een manier van inloggen toe te \
                               voegen: dat kan tot 15 minuten na het inloggen.",
    },
    admin: AdminText {
        search_title: "Gebruiker zoeken",
        search_intro: "Zoek de MFA van een gebruiker op om een verloren telefoon los te koppelen \
                       of een blokkering op te heffen.",
        search_label: "Gebruikersnaam",
        search_hint: "Het begin van de naam is genoeg.",
        search_button: "Zoeken",
        found_one: "1 gebruiker gevonden",
        found_many: "{count} gebruikers gevonden",
        found_none: "Er is geen gebruikersnaam die begint met \u{201c}{query}\u{201d}.",
        user_title: "MFA van {user}",
        back_to_search: "Terug naar zoeken",
        mfa_label: "MFA-status",
        enrolled_since: "Ingesteld sinds {since}",
        enrolled: "Ingesteld",
        not_enrolled: "Niet ingesteld",
        methods_label: "Methoden",
        methods_value: "authenticator-app: {app}; passkeys: {count}",
        yes: "ja",
        no: "nee",
        last_used_label: "Laatst met succes gebruikt",
        never_used: "Nooit",
        lock_label: "Blokkering",
        locked_until: "Geblokkeerd tot {until}",
        not_locked: "Niet geblokkeerd",
        role_label: "Rol bij laatste keer inloggen",
        role_unknown: "Onbekend",
        policy_label: "MFA voor deze rol op dit moment",
        policy_none: "Niet aangeboden",
        policy_available: "Niet verplicht",
        policy_enforced: "Verplicht",
        recovery_label: "Ongebruikte herstelcodes",
        reset_heading: "MFA loskoppelen (telefoon kwijt)",
        reset_intro: "Gebruik dit als de gebruiker de telefoon kwijt is of de authenticator-app \
                      niet meer kan gebruiken. Het werkt meteen:",
        reset_effects: [
            "De authenticator-app van de gebruiker wordt losgekoppeld.",
            "De herstelcodes van de gebruiker worden verwijderd.",
            "Alle sessies van de gebruiker worden beëindigd, op elke gateway.",
            "Bij de volgende keer inloggen koppelt de gebruiker een nieuwe app.",
            "Browsers die de gebruiker heeft laten onthouden, worden vergeten.",
        ],
        reset_check: "Controleer eerst of het verzoek echt van deze gebruiker komt, \
                      bijvoorbeeld door terug te bellen op een nummer dat je kent. Je naam en \
                      de reden worden vastgelegd.",
        reason_label: "Reden",
        reason_hint: "Bijvoorbeeld: telefoon kwijt, ticket 12345. Hoogstens {max} tekens.",
        confirm_label: "Ik heb het verzoek gecontroleerd en wil MFA loskoppelen voor {user}",
        reset_button: "MFA loskoppelen",
        reset_not_enrolled: "Deze gebruiker heeft geen MFA ingesteld, dus er is niets om los te \
                             koppelen.",
        unlock_heading: "Blokkering opheffen",
        unlock_text: "De gebruiker heeft te vaak een verkeerde code ingevuld. Ontgrendelen heft \
                      alleen deze blokkering van de codestap op; de app, de herstelcodes en het \
                      wachtwoord van de gebruiker blijven zoals ze zijn.",
        unlock_button: "Ontgrendelen",
        events_heading: "Recente MFA-gebeurtenissen",
        events_none: "Er zijn geen MFA-gebeurtenissen van deze gebruiker vastgelegd.",
        event_names: &[
            ("enrolled", "MFA ingesteld"),
            ("verify_success", "Code geaccepteerd"),
            ("verify_failure", "Verkeerde code"),
            ("replay_rejected", "Code twee keer gebruikt, geweigerd"),
            ("locked", "Codestap geblokkeerd"),
            ("unlocked", "Blokkering opgeheven"),
            ("reset", "MFA losgekoppeld"),
            ("reset_failed", "MFA loskoppelen mislukt"),
            ("recovery_code_used", "Herstelcode gebruikt"),
            ("recovery_codes_issued", "Nieuwe herstelcodes"),
            ("enrollment_postponed", "Instellen uitgesteld"),
            ("offer_declined", "Aanbod afgeslagen (Niet nu)"),
            (
                "self_phone_replaced",
                "Telefoon vervangen door de gebruiker",
            ),
            ("self_mfa_disabled", "MFA uitgezet door de gebruiker"),
            (
                "self_change_refused",
                "Wijziging geweigerd: MFA was intussen gewijzigd",
            ),
            ("policy_reloaded", "Beleid opnieuw geladen"),
            ("policy_reload_failed", "Beleid laden mislukt"),
            ("admin_api_call", "Aanroep van de beheer-API"),
            ("admin_access_denied", "Beheertoegang geweigerd"),
            ("admin_action_refused", "Beheeractie geweigerd"),
            ("secrets_resealed", "Geheimen opnieuw versleuteld"),
            (
                "identity_mismatch",
                "Inloggen beëindigd: naam wijkt af van die in het VMS",
            ),
            (
                "browser_remembered",
                "Browser onthouden (tijdelijk geen code)",
            ),
            ("browser_forgotten", "Onthouden browser vergeten"),
            ("enrollment_code_issued", "Koppelingscode uitgegeven"),
            ("enrollment_code_accepted", "Koppelingscode geaccepteerd"),
            ("enrollment_code_refused", "Koppelingscode geweigerd"),
            ("passkey_added", "Passkey toegevoegd"),
            ("passkey_renamed", "Naam van passkey gewijzigd"),
            ("passkey_removed", "Passkey verwijderd"),
            ("passkey_refused", "Passkey geweigerd"),
        ],
        col_time: "Tijdstip",
        col_event: "Gebeurtenis",
        col_actor: "Door",
        col_detail: "Toelichting",
        done_reset: "MFA is losgekoppeld voor {user}. De sessies zijn beëindigd; bij de \
                     volgende keer inloggen koppelt de gebruiker een nieuwe app.",
        done_unlocked: "De blokkering is opgeheven. {user} kan weer codes invullen.",
        browsers_label: "Onthouden browsers",
        browsers_none: "Geen",
        forget_heading: "Onthouden browsers vergeten",
        forget_text: "In deze browsers logt de gebruiker een tijdje in zonder code. Na het \
                      vergeten wordt daar bij de volgende keer inloggen weer om een code \
                      gevraagd. Loskoppelen vergeet ze ook.",
        forget_button: "Alle browsers vergeten",
        done_forgotten: "De onthouden browsers van {user} zijn vergeten. Daar wordt bij de \
                         volgende keer inloggen weer om een code gevraagd.",
        error_reason_missing: "Vul een reden in voor het loskoppelen van MFA.",
        error_confirm_missing: "Vink het bevestigingsvakje aan om MFA los te koppelen.",
        error_unknown_user: "Er is geen gebruiker met deze naam. Zoek opnieuw.",
        error_own_account: "Je kunt MFA van je eigen account niet loskoppelen of deblokkeren. \
                            Vraag een andere beheerder.",
        error_outranked: "Met jouw rol kun je MFA van gebruikers met deze rol niet loskoppelen \
                          of deblokkeren. Vraag een beheerder.",
        reset_code_effect: "Je krijgt een eenmalige koppelingscode om aan de gebruiker voor te \
                            lezen: zonder die code kan er geen nieuwe app gekoppeld worden.",
        code_label: "Koppelingscode",
        code_pending_until: "Nog niet gebruikt, geldig tot {until}",
        code_expired_at: "Verlopen op {until}: geef de gebruiker een nieuwe",
        code_none: "Geen",
        code_heading: "Koppelingscode voor {user}",
        code_shown_once: "Deze code zie je alleen nu: de gateway bewaart er alleen een \
                          vingerafdruk van. Lees hem telefonisch voor; stuur hem niet per e-mail \
                          of chat.",
        code_valid_until: "Geldig tot {until}, voor één keer.",
        code_phone_steps: [
            "Zeg: \u{201c}Log zoals altijd in op het VMS, met je gebruikersnaam en \
             wachtwoord.\u{201d}",
            "Zeg: \u{201c}De volgende pagina vraagt om je koppelingscode. Typ de acht cijfers \
             die ik je nu voorlees.\u{201d} Lees dan de code voor, in twee groepjes van vier \
             cijfers.",
            "Zeg: \u{201c}Installeer daarna een authenticator-app op je nieuwe telefoon en scan \
             de QR-code die de pagina toont.\u{201d}",
            "Zeg: \u{201c}Werkt de code niet of is hij verlopen, bel ons dan opnieuw voor een \
             nieuwe.\u{201d}",
        ],
        new_code_heading: "Nieuwe koppelingscode",
        new_code_text: "Maakt een nieuwe eenmalige code om een nieuwe app te koppelen. De vorige \
                        code werkt meteen niet meer. Gebruik dit als de code verlopen of kwijt is.",
        new_code_button: "Nieuwe code maken",
        error_enrolled_no_code: "Deze gebruiker heeft een app gekoppeld, dus een koppelingscode \
                                 is niet nodig.",
    },
    form_errors: FormErrorText {
        wrong_code: "Die code klopt niet. Vul de code in die je app nu toont en probeer het opnieuw.",
        code_format: "Een inlogcode heeft 6 cijfers, bijvoorbeeld 123456.",
        locked_one_minute: "Te veel pogingen. Probeer het over 1 minuut opnieuw.",
        locked_minutes: "Te veel pogingen. Probeer het over {minutes} minuten opnieuw.",
        locked_help: "Kun je niet wachten? Vraag {helpdesk} om de blokkering op te heffen.",
        attempts_left_many: "Die code klopt niet. Nog {count} pogingen, daarna wordt de \
                             codestap een tijdje geblokkeerd.",
        attempts_left_one: "Die code klopt niet. Nog één poging, daarna wordt de codestap een \
                            tijdje geblokkeerd.",
        expired: "Die code is verlopen. Vul de code in die je app nu toont.",
        csrf_invalid: "Deze pagina stond te lang open of is twee keer verstuurd. Probeer het opnieuw.",
        too_many_requests: "Te veel verzoeken. Wacht even en probeer het dan opnieuw.",
    },
    error_pages: ErrorPagesText {
        bad_request: ErrorText {
            title: "Er ging iets mis met dit verzoek",
            message: "Ga terug naar de inlogpagina en probeer het opnieuw.",
        },
        forbidden: ErrorText {
            title: "Geen toegang",
            message: "Je hebt geen toegang tot deze pagina.",
        },
        not_found: ErrorText {
            title: "Pagina niet gevonden",
            message: "Deze pagina bestaat niet of is niet meer beschikbaar.",
        },
        payload_too_large: ErrorText {
            title: "Te veel gegevens",
            message: "Er is meer verstuurd dan deze pagina aanneemt. Probeer het opnieuw.",
        },
        too_many_requests: ErrorText {
            title: "Te veel verzoeken",
            message: "Wacht een minuut en probeer het dan opnieuw.",
        },
        challenge_expired: ErrorText {
            title: "Het inloggen duurde te lang",
            message: "Log voor je veiligheid opnieuw in.",
        },
        bad_gateway: ErrorText {
            title: "De applicatie reageert niet",
            message: "We konden de applicatie niet bereiken. Probeer het zo opnieuw.",
        },
        gateway_timeout: ErrorText {
            title: "De applicatie reageert te traag",
            message: "De applicatie gaf niet op tijd antwoord. Probeer het zo opnieuw.",
        },
        service_unavailable: ErrorText {
            title: "Inloggen is tijdelijk niet mogelijk",
            message: "Probeer het over een minuut opnieuw.",
        },
        internal: ErrorText {
            title: "Er ging iets mis",
            message: "Probeer het opnieuw. Blijft dit gebeuren, neem dan contact op met {helpdesk}.",
        },
    },
    passkey: PasskeyText {
        sign_in_button: "Inloggen met een passkey",
        sign_in_intro: "Gebruik de passkey of beveiligingssleutel die je voor dit account hebt ingesteld: je telefoon, de vingerafdruk of pincode van je computer, of een sleutel die je insteekt of ertegen houdt.",
        use_code_instead: "Of gebruik een code",
        use_recovery_instead: "Passkey kwijt? Gebruik een herstelcode",
        recovery_label: "Herstelcode",
        recovery_hint: "Typ een van de herstelcodes die je bewaarde toen je MFA instelde.",
        codes_not_allowed: "Je rol logt nu in met een passkey; codes uit de app tellen niet meer. Een herstelcode werkt nog wel.",
        needs_js: "Een passkey werkt alleen met JavaScript, en dat staat uit in deze browser. Zet het aan om je passkey te gebruiken.",
        unsupported: "Deze browser kan geen passkeys gebruiken. Gebruik een recente browser.",
        failed: "De passkey is niet gebruikt: geannuleerd, te laat, of niet van dit account. Probeer het opnieuw.",
        refused: "Die passkey is niet geaccepteerd. Probeer het opnieuw, of gebruik een andere.",
        setup_title: "Passkey instellen",
        setup_required: "Je rol logt nu in met een passkey of beveiligingssleutel. Een nep-inlogpagina kan die niet gebruiken, en je hoeft geen code te typen.",
        setup_optional: "Met een passkey log je in zonder code te typen, en een nep-inlogpagina kan hem niet gebruiken.",
        setup_how: "Een passkey staat op je telefoon of computer (ontgrendeld met je vingerafdruk, gezicht of pincode) of op een beveiligingssleutel die je insteekt of ertegen houdt.",
        name_label: "Naam voor deze passkey",
        name_hint: "Zodat je je passkeys uit elkaar houdt, bijvoorbeeld werklaptop of YubiKey.",
        default_name: "Passkey",
        create_button: "Passkey aanmaken",
        list_title: "Passkeys en beveiligingssleutels",
        list_text: "Log hiermee in in plaats van met een code. Verwijder er een die je niet meer hebt.",
        none_yet: "Nog geen passkeys.",
        added_on: "Toegevoegd {date}",
        last_used_on: "Laatst gebruikt {date}",
        never_used: "Nog niet gebruikt",
        rename_label: "Naam",
        rename_button: "Naam wijzigen",
        remove_button: "Verwijderen",
        add_button: "Passkey toevoegen",
        done_added: "Je passkey is toegevoegd.",
        done_renamed: "De naam van je passkey is gewijzigd.",
        done_removed: "Je passkey is verwijderd.",
        last_method: "Hiermee kun je als laatste nog inloggen. Voeg eerst een andere passkey toe (of de app, als je rol dat toestaat) voordat je deze verwijdert.",
        confirm_how: "Je bevestigt dit met een van je passkeys; daarvoor is JavaScript in je \
                      browser nodig.",
        recovery_text: "Een paar gebruikt, of kun je ze niet meer vinden? Maak nieuwe aan, \
                        bevestigd met een van je passkeys. De nieuwe codes worden één keer \
                        getoond.",
        confirm_start_recovery: "Nieuwe codes maken (de oude werken dan niet meer)",
        confirm_start_disable: "MFA uitzetten",
        confirm_title: "Bevestigen met je passkey",
        confirm_recovery: "Bevestig met een van je passkeys om nieuwe herstelcodes te maken. De \
                           oude codes werken dan niet meer.",
        confirm_disable: "Bevestig met een van je passkeys om MFA uit te zetten. Je passkeys en \
                          herstelcodes worden dan verwijderd, en inloggen gaat weer alleen met \
                          je wachtwoord.",
        confirm_button: "Bevestigen met een passkey",
    },
};

// === The e-mailed code of a first enrollment (`mfa.first_enrollment = "email_code"`) ===

/// The page that asks for the code mailed before a first enrollment, and the page for a
/// user whose address is not known.
#[derive(Debug)]
pub struct EmailCodeText {
    pub title: &'static str,
    /// `{address}`: the masked address the code went to.
    pub sent_to: &'static str,
    pub why: &'static str,
    pub label: &'static str,
    /// `{minutes}`: how long a code is valid.
    pub hint: &'static str,
    pub continue_button: &'static str,
    pub send_again: &'static str,
    /// After "send a new code".
    pub sent_again: &'static str,
    /// `{minutes}`, `{helpdesk}`: no more codes for now.
    pub limit: &'static str,
    pub no_address_title: &'static str,
    /// `{helpdesk}`.
    pub no_address: &'static str,
    pub format_title: &'static str,
}

static EMAIL_CODE_EN: EmailCodeText = EmailCodeText {
    title: "Check your e-mail",
    sent_to: "We sent a code of 8 digits to {address}.",
    why: "Type it here before you set up MFA: it shows that the person setting up the app can read your e-mail, not only knows your password.",
    label: "Code from the e-mail",
    hint: "The code is valid for {minutes} minutes. No e-mail? Look in your spam folder, or ask for a new code.",
    continue_button: "Continue",
    send_again: "Send a new code",
    sent_again: "A new code is on its way. Only the newest code works.",
    limit: "No more codes can be sent right now. Try again in {minutes} minutes, or contact {helpdesk}.",
    no_address_title: "Contact your administrator",
    no_address: "Before you can set up MFA, we send a code to your e-mail address, but no address is known for your account. Contact {helpdesk}: they can check your e-mail address in the VMS.",
    format_title: "8 digits",
};

static EMAIL_CODE_NL: EmailCodeText = EmailCodeText {
    title: "Kijk in je e-mail",
    sent_to: "We hebben een code van 8 cijfers gestuurd naar {address}.",
    why: "Typ die hier voordat je MFA instelt: zo weten we dat wie de app instelt je e-mail kan lezen, en niet alleen je wachtwoord kent.",
    label: "Code uit de e-mail",
    hint: "De code is {minutes} minuten geldig. Geen e-mail? Kijk in je spammap, of vraag een nieuwe code.",
    continue_button: "Verder",
    send_again: "Stuur een nieuwe code",
    sent_again: "Er is een nieuwe code onderweg. Alleen de nieuwste code werkt.",
    limit: "Er kunnen nu geen codes meer worden gestuurd. Probeer het over {minutes} minuten opnieuw, of neem contact op met {helpdesk}.",
    no_address_title: "Neem contact op met je beheerder",
    no_address: "Voordat je MFA kunt instellen, sturen we een code naar je e-mailadres, maar voor je account is geen adres bekend. Neem contact op met {helpdesk}: die kan je e-mailadres in het VMS nakijken.",
    format_title: "8 cijfers",
};

/// The e-mailed code's texts in `lang`.
pub fn email_code_strings(lang: Lang) -> &'static EmailCodeText {
    match lang {
        Lang::En => &EMAIL_CODE_EN,
        Lang::Nl => &EMAIL_CODE_NL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every text of one language, so the tests can look at all of them.
    fn all(s: &Strings) -> Vec<&'static str> {
        let e = &s.error_pages;
        let mut v = vec![
            s.common.title_separator,
            s.common.back_to_sign_in,
            s.common.try_again,
            s.common.error_code,
            s.common.not_now,
            s.enroll.title,
            s.enroll.required,
            s.enroll.optional,
            s.enroll.step_install,
            s.enroll.step_scan,
            s.enroll.qr_label,
            s.enroll.open_in_app,
            s.enroll.manual_intro,
            s.enroll.pairing_code_label,
            s.enroll.shown_in_app_label,
            s.enroll.key_type_label,
            s.enroll.key_type_value,
            s.enroll.step_code,
            s.enroll.confirm,
            s.enroll.postpone_hint,
            s.recovery.title,
            s.recovery.intro,
            s.recovery.codes_label,
            s.recovery.keep_safe,
            s.recovery.continue_button,
            s.recovery.download,
            s.recovery.file_name,
            s.recovery.file_heading,
            s.verify.title,
            s.verify.signing_in_as,
            s.verify.code_label,
            s.verify.hint,
            s.verify.recovery_hint,
            s.verify.lost_phone,
            s.verify.verify_button,
            s.verify.other_account,
            s.verify.remember_days,
            s.verify.remember_one_day,
            s.verify.remember_hint,
            s.offer.title,
            s.offer.explain,
            s.offer.optional,
            s.offer.set_up_now,
            s.offer.later_hint_next,
            s.offer.later_hint_one_day,
            s.offer.later_hint_days,
            s.common.signed_in_as,
            s.common.account_link,
            s.common.continue_to_settings,
            s.common.helpdesk_default,
            s.common.code_title,
            s.common.code_or_recovery_title,
            s.enroll.replaced,
            s.enroll.time_limit,
            s.enroll.cancel,
            s.enroll.cancel_hint,
            s.account.not_used,
            s.form_errors.locked_help,
            s.form_errors.attempts_left_many,
            s.form_errors.attempts_left_one,
            s.notice.recovery_used_title,
            s.notice.recovery_used_once,
            s.notice.recovery_left_none,
            s.notice.recovery_left_one,
            s.notice.recovery_left_many,
            s.notice.recovery_none_advice,
            s.notice.continue_button,
            s.form_errors.wrong_code,
            s.form_errors.code_format,
            s.form_errors.locked_one_minute,
            s.form_errors.locked_minutes,
            s.form_errors.expired,
            s.form_errors.csrf_invalid,
            s.form_errors.too_many_requests,
        ];
        let a = &s.account;
        v.extend([
            a.title,
            a.state_on,
            a.state_off,
            a.since_label,
            a.last_used_label,
            a.never_used,
            a.required_on,
            a.required_off,
            a.optional,
            a.setup_heading,
            a.setup_text,
            a.setup_button,
            a.setup_app_heading,
            a.setup_app_text,
            a.setup_app_button,
            a.methods_label,
            a.methods_value,
            a.yes,
            a.no,
            a.disable_passkeys_one,
            a.disable_passkeys_many,
            a.replace_heading,
            a.replace_text,
            a.replace_code_label,
            a.replace_button,
            a.recovery_heading,
            a.recovery_left_none,
            a.recovery_left_one,
            a.recovery_left_many,
            a.recovery_text,
            a.recovery_code_label,
            a.recovery_button,
            a.disable_heading,
            a.disable_text,
            a.disable_code_label,
            a.disable_button,
            a.back,
            a.done_phone_replaced,
            a.done_recovery_replaced,
            a.done_disabled,
            a.done_enabled,
            a.changed_meanwhile,
            a.browsers_heading,
            a.browsers_text,
            a.browser_on,
            a.browser_unknown,
            a.this_browser,
            a.browser_remembered_label,
            a.browser_last_used_label,
            a.forget_button,
            a.forget_all_button,
            a.done_browser_forgotten,
            a.done_browsers_forgotten,
        ]);
        let m = &s.admin;
        v.extend([
            m.search_title,
            m.search_intro,
            m.search_label,
            m.search_hint,
            m.search_button,
            m.found_one,
            m.found_many,
            m.found_none,
            m.user_title,
            m.back_to_search,
            m.mfa_label,
            m.enrolled_since,
            m.enrolled,
            m.not_enrolled,
            m.methods_label,
            m.methods_value,
            m.yes,
            m.no,
            m.last_used_label,
            m.never_used,
            m.lock_label,
            m.locked_until,
            m.not_locked,
            m.role_label,
            m.role_unknown,
            m.policy_label,
            m.policy_none,
            m.policy_available,
            m.policy_enforced,
            m.recovery_label,
            m.reset_heading,
            m.reset_intro,
            m.reset_check,
            m.reason_label,
            m.reason_hint,
            m.confirm_label,
            m.reset_button,
            m.reset_not_enrolled,
            m.unlock_heading,
            m.unlock_text,
            m.unlock_button,
            m.events_heading,
            m.events_none,
            m.col_time,
            m.col_event,
            m.col_actor,
            m.col_detail,
            m.done_reset,
            m.done_unlocked,
            m.browsers_label,
            m.browsers_none,
            m.forget_heading,
            m.forget_text,
            m.forget_button,
            m.done_forgotten,
            m.error_reason_missing,
            m.error_confirm_missing,
            m.error_unknown_user,
            m.error_own_account,
            m.error_outranked,
            m.reset_code_effect,
            m.code_label,
            m.code_pending_until,
            m.code_expired_at,
            m.code_none,
            m.code_heading,
            m.code_shown_once,
            m.code_valid_until,
            m.new_code_heading,
            m.new_code_text,
            m.new_code_button,
            m.error_enrolled_no_code,
        ]);
        v.extend(m.code_phone_steps);
        let c = &s.enrollment_code;
        v.extend([
            c.title,
            c.intro,
            c.code_label,
            c.hint,
            c.code_title,
            c.continue_button,
            c.expired_title,
            c.expired_text,
            c.none_title,
            c.none_text,
            a.needs_enrollment_code,
            a.needs_email_code,
            a.sign_in_again_to_add,
        ]);
        v.extend(m.reset_effects);
        v.extend(m.event_names.iter().map(|(_, words)| *words));
        for t in [
            &e.bad_request,
            &e.forbidden,
            &e.not_found,
            &e.payload_too_large,
            &e.too_many_requests,
            &e.challenge_expired,
            &e.bad_gateway,
            &e.gateway_timeout,
            &e.service_unavailable,
            &e.internal,
        ] {
            v.push(t.title);
            v.push(t.message);
        }
        v
    }

    #[test]
    fn no_text_is_empty_and_none_has_stray_whitespace() {
        for lang in [Lang::En, Lang::Nl] {
            for text in all(strings(lang)) {
                assert!(!text.trim().is_empty(), "{lang:?}: empty text");
                if text != strings(lang).common.title_separator {
                    assert_eq!(text, text.trim(), "{lang:?}: {text:?}");
                }
                assert!(!text.contains("  "), "{lang:?}: double space in {text:?}");
            }
        }
    }

    #[test]
    fn languages_really_differ() {
        let (en, nl) = (all(strings(Lang::En)), all(strings(Lang::Nl)));
        assert_eq!(en.len(), nl.len());
        let same: Vec<_> = en
            .iter()
            .zip(&nl)
            .filter(|(a, b)| a == b)
            .map(|(a, _)| *a)
            .collect();
        // Only the separator is meant to be identical.
        assert_eq!(same, vec![" – "]);
    }

    #[test]
    fn placeholders_exist_in_both_languages() {
        for lang in [Lang::En, Lang::Nl] {
            let s = strings(lang);
            assert!(s.verify.signing_in_as.contains("{account}"), "{lang:?}");
            assert!(
                s.form_errors.locked_minutes.contains("{minutes}"),
                "{lang:?}"
            );
            assert!(s.common.error_code.contains("{status}"), "{lang:?}");
            assert!(s.common.signed_in_as.contains("{account}"), "{lang:?}");
            assert!(s.notice.recovery_left_many.contains("{count}"), "{lang:?}");
            assert!(s.account.recovery_left_many.contains("{count}"), "{lang:?}");
            assert!(
                s.account.disable_passkeys_many.contains("{count}"),
                "{lang:?}"
            );
            for m in [s.account.methods_value, s.admin.methods_value] {
                assert!(m.contains("{app}") && m.contains("{count}"), "{lang:?}");
            }
            let m = &s.admin;
            for (text, placeholder) in [
                (m.found_many, "{count}"),
                (m.found_none, "{query}"),
                (m.user_title, "{user}"),
                (m.enrolled_since, "{since}"),
                (m.locked_until, "{until}"),
                (m.reason_hint, "{max}"),
                (m.confirm_label, "{user}"),
                (m.done_reset, "{user}"),
                (m.done_unlocked, "{user}"),
                (m.done_forgotten, "{user}"),
                (m.code_pending_until, "{until}"),
                (m.code_expired_at, "{until}"),
                (m.code_heading, "{user}"),
                (m.code_valid_until, "{until}"),
                (s.enrollment_code.intro, "{helpdesk}"),
                (s.enrollment_code.expired_text, "{helpdesk}"),
                (s.enrollment_code.none_text, "{helpdesk}"),
                (s.account.needs_enrollment_code, "{helpdesk}"),
                (s.account.browser_on, "{browser}"),
                (s.account.browser_on, "{system}"),
                (s.enroll.time_limit, "{minutes}"),
                (s.offer.later_hint_days, "{days}"),
                (s.verify.remember_days, "{days}"),
                (s.verify.lost_phone, "{helpdesk}"),
                (s.notice.recovery_none_advice, "{helpdesk}"),
                (s.account.required_on, "{helpdesk}"),
                (s.form_errors.locked_help, "{helpdesk}"),
                (s.form_errors.attempts_left_many, "{count}"),
                (s.error_pages.internal.message, "{helpdesk}"),
            ] {
                assert!(text.contains(placeholder), "{lang:?}: {text}");
            }
        }
    }

    #[test]
    fn every_audit_event_has_words_in_both_languages() {
        for lang in [Lang::En, Lang::Nl] {
            let names = strings(lang).admin.event_names;
            for id in crate::audit::Event::ALL.map(|e| e.as_str()) {
                assert!(
                    names.iter().any(|(n, _)| *n == id),
                    "{lang:?}: no words for {id}"
                );
            }
            assert_eq!(names.len(), crate::audit::Event::ALL.len());
        }
    }

    #[test]
    fn users_pages_do_not_name_the_msp() {
        // Who helps users is `mfa.helpdesk_name`; "MSP" is the administrators' word.
        for lang in [Lang::En, Lang::Nl] {
            for text in all(strings(lang)) {
                assert!(!text.contains("MSP"), "{lang:?}: {text}");
            }
        }
    }

    #[test]
    fn texts_are_plain_text_not_markup() {
        for lang in [Lang::En, Lang::Nl] {
            for text in all(strings(lang)) {
                assert!(!text.contains('<') && !text.contains('&'), "{text:?}");
            }
        }
    }

    #[test]
    fn enrollment_names_the_apps_from_the_announcement() {
        for lang in [Lang::En, Lang::Nl] {
            let step = strings(lang).enroll.step_install;
            for app in ["Google", "Microsoft", "Salesforce", "Authy", "LastPass"] {
                assert!(step.contains(app), "{lang:?} misses {app}");
            }
        }
    }
}
