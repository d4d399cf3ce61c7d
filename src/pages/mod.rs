//! The gateway's own pages: MFA offer, enrollment, recovery codes, login code, notices,
//! self-service, MSP administration, and errors.
//!
//! The VMS behind the gateway cannot be changed, so every screen MFA needs is served by the
//! gateway itself. Thousands of people see these pages daily, mostly on phones, so they are
//! plain server-rendered HTML: no JavaScript, no external fonts or images, one small inline
//! stylesheet, large touch targets, labelled fields, and error messages in `role="alert"`.
//! Text exists in English and Dutch ([`strings`]), chosen per request with
//! [`Lang::negotiate`].
//!
//! Every page is a [`maud`] template: compiled with the gateway, and escaping every value it
//! interpolates by default, in text and in attributes. Raw markup is written in one audited
//! place only (the doctype and the stylesheet, both constants); translated strings with a
//! placeholder are rendered by the template around the value, never by pasting markup (see
//! `html.rs`). Names and other text from outside (user names, roles, audit details) are
//! shown with [`visible`], which writes invisible and reordering characters such as U+202E
//! as `\u{202E}`, so a page never shows another name than the stored one.
//!
//! Where the pages sit in a sign-in (the handlers decide; these are only the screens):
//!
//! ```text
//!  VMS accepts password
//!          |
//!          v
//!   MFA enrolled? --yes--> verify_page ---- code ok ----> session released to the VMS
//!          | no
//!          v
//!   role policy: available --> offer_page --"Not now"--> session released
//!          | enforced                  | "Set up now"
//!          v                           v
//!    (after an MSP reset: enrollment_code_page, the one-time code read on the phone, first)
//!      enroll_page <-------------------+  (retry with FormError on a wrong code)
//!          | code ok
//!          v
//!   recovery_codes_page --"Continue"--> session released
//!
//!   verify_page with a recovery code --> notice_page(RecoveryCodeUsed) --"Continue"--> released
//!
//!   any failure the gateway answers itself --> error_page(ErrorPage::…)
//! ```
//!
//! With an approved session, under the gateway's own prefix:
//!
//! ```text
//!   account_page           own MFA: set up, replace phone, new recovery codes, turn off
//!   admin_search_page  --> admin_user_page   MSP: find a user, disconnect MFA, unlock
//! ```
//!
//! Every page is served with [`page_headers`] (no caching, no framing, a strict CSP that
//! allows only the stylesheet by hash); [`html_response`] builds the whole response.
//! Forms post to the URL the handler passes in, always carry the CSRF token as
//! [`CSRF_FIELD`], the code as [`CODE_FIELD`] and the choice as [`ACTION_FIELD`]
//! ([`FormAction`]). The admin forms add [`USER_FIELD`], [`REASON_FIELD`] and
//! [`CONFIRM_FIELD`]; the one GET form, the admin search, sends [`SEARCH_FIELD`] and no token.

mod account;
mod admin;
mod email_code;
mod enroll;
mod enrollment_code;
mod error_page;
mod form;
mod headers;
pub(crate) mod html;
mod lang;
mod layout;
mod notice;
mod offer;
mod passkey;
mod qr;
mod recovery;
pub mod strings;
mod style;
mod verify;
mod visible;

pub use account::{
    AccountMessage, AccountView, BROWSER_FIELD, BrowserItem, PasskeysView, account_page,
};
pub use admin::{
    AdminCode, AdminError, AdminEvent, AdminMessage, AdminSearchView, AdminUserView, CONFIRM_FIELD,
    CONFIRM_VALUE, REASON_FIELD, REASON_MAX_LEN, SEARCH_FIELD, SEARCH_MAX_LEN, USER_FIELD,
    admin_search_page, admin_user_page,
};
pub use email_code::{EmailCodeView, EmailNotice, email_code_page, email_unknown_page};
pub use enroll::{Cancel, EnrollView, enroll_page};
pub use enrollment_code::{EnrollmentCodeState, EnrollmentCodeView, enrollment_code_page};
pub use error_page::{ErrorPage, error_page, error_page_with, error_response};
pub use form::{ACTION_FIELD, CODE_FIELD, CSRF_FIELD, FormAction, FormError};
pub use headers::{html_response, page_headers};
pub use lang::Lang;
pub use layout::Branding;
pub use notice::{NoticeKind, NoticeView, notice_page};
pub use offer::{OfferView, offer_page};
pub use passkey::{
    CREDENTIAL_FIELD, Ceremony, NAME_FIELD, PASSKEY_FIELD, PasskeyConfirmView, PasskeyItem,
    PasskeySetupView, REGISTER_ACTION, SCRIPT as PASSKEY_SCRIPT, SIGN_IN_ACTION,
    passkey_confirm_page, passkey_setup_page,
};
pub use qr::{QrError, qr_svg};
pub use recovery::{RecoveryCodesView, recovery_codes_page};
pub use style::content_security_policy;
pub use verify::{REMEMBER_FIELD, REMEMBER_VALUE, VerifyView, verify_page};
pub use visible::{Visible, is_hidden, visible, visible_text};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const EVIL: &str = "<script>alert('x')</script>\"&";
    const LANGS: [Lang; 2] = [Lang::En, Lang::Nl];
    const ERRORS: [ErrorPage; 10] = [
        ErrorPage::BadRequest,
        ErrorPage::Forbidden,
        ErrorPage::NotFound,
        ErrorPage::PayloadTooLarge,
        ErrorPage::TooManyRequests,
        ErrorPage::ChallengeExpired,
        ErrorPage::BadGateway,
        ErrorPage::GatewayTimeout,
        ErrorPage::ServiceUnavailable,
        ErrorPage::Internal,
    ];

    fn branding() -> Branding {
        Branding {
            product_name: format!("Acme {EVIL}"),
            logo_data_uri: Some(format!("data:image/svg+xml;base64,{EVIL}")),
            support_text: Some(format!("Call {EVIL}")),
            helpdesk_name: Some(format!("Desk {EVIL}")),
        }
    }

    fn codes() -> Vec<String> {
        vec![EVIL.to_owned(), "1234 5678".to_owned()]
    }

    /// Every page, in one language, with hostile values in every interpolated field.
    fn all_pages(lang: Lang, b: &Branding, codes: &[String]) -> Vec<(&'static str, String)> {
        all_pages_named(lang, b, codes, EVIL)
    }

    /// Like [`all_pages`], with `name` in every field that holds a name or other text from
    /// the VMS or the audit trail.
    fn all_pages_named(
        lang: Lang,
        b: &Branding,
        codes: &[String],
        name: &str,
    ) -> Vec<(&'static str, String)> {
        let mut pages = vec![
            (
                "enroll",
                enroll_page(&EnrollView {
                    lang,
                    branding: b,
                    account: name,
                    issuer: name,
                    otpauth_uri: &format!("otpauth://totp/{EVIL}?secret=JBSWY3DPEHPK3PXP"),
                    pairing_code: EVIL,
                    form_action: EVIL,
                    csrf: EVIL,
                    error: Some(FormError::WrongCode),
                    required: true,
                    can_postpone: true,
                    replaced: true,
                    minutes: Some(30),
                    cancel: Some(Cancel::Link(EVIL)),
                }),
            ),
            (
                "recovery",
                recovery_codes_page(&RecoveryCodesView {
                    lang,
                    branding: b,
                    account: name,
                    codes,
                    form_action: EVIL,
                    csrf: EVIL,
                    to_settings: true,
                }),
            ),
            (
                "verify",
                verify_page(&VerifyView {
                    lang,
                    branding: b,
                    account: name,
                    form_action: EVIL,
                    csrf: EVIL,
                    error: Some(FormError::CsrfInvalid),
                    remember_days: 30,
                    passkey: None,
                    passkey_refused: false,
                    app_codes: true,
                }),
            ),
            (
                "verify-passkey",
                verify_page(&VerifyView {
                    lang,
                    branding: b,
                    account: name,
                    form_action: EVIL,
                    csrf: EVIL,
                    error: Some(FormError::AppCodeNotAccepted),
                    remember_days: 30,
                    passkey: Some(EVIL),
                    passkey_refused: true,
                    app_codes: false,
                }),
            ),
            (
                "offer",
                offer_page(&OfferView {
                    lang,
                    branding: b,
                    form_action: EVIL,
                    csrf: EVIL,
                    quiet_days: 30,
                }),
            ),
        ];
        for state in [
            EnrollmentCodeState::Pending,
            EnrollmentCodeState::Expired,
            EnrollmentCodeState::NonePending,
        ] {
            pages.push((
                if state == EnrollmentCodeState::Pending {
                    "enrollment-code"
                } else {
                    "enrollment-code-closed"
                },
                enrollment_code_page(&EnrollmentCodeView {
                    lang,
                    branding: b,
                    account: name,
                    form_action: EVIL,
                    csrf: EVIL,
                    error: Some(FormError::WrongCode),
                    state,
                    cancel: Some(Cancel::Link(EVIL)),
                }),
            ));
        }
        for remaining in [0, 3] {
            pages.push((
                "notice",
                notice_page(&NoticeView {
                    lang,
                    branding: b,
                    kind: NoticeKind::RecoveryCodeUsed { remaining },
                    form_action: EVIL,
                    csrf: EVIL,
                    to_settings: true,
                }),
            ));
        }
        let browsers = [BrowserItem {
            id: EVIL.to_owned(),
            browser: Some(EVIL.to_owned()),
            system: Some(name.to_owned()),
            remembered_on: EVIL.to_owned(),
            last_used: EVIL.to_owned(),
            this_browser: true,
        }];
        let passkeys = [PasskeyItem {
            id: EVIL.to_owned(),
            name: name.to_owned(),
            added: EVIL.to_owned(),
            last_used: Some(EVIL.to_owned()),
        }];
        pages.push((
            "passkey-setup",
            passkey_setup_page(&PasskeySetupView {
                lang,
                branding: b,
                account: name,
                options: EVIL,
                form_action: EVIL,
                csrf: EVIL,
                required: true,
                can_postpone: true,
                refused: true,
                back: Some(EVIL),
            }),
        ));
        pages.push((
            "passkey-confirm",
            passkey_confirm_page(&PasskeyConfirmView {
                lang,
                branding: b,
                account: name,
                options: EVIL,
                form_action: EVIL,
                csrf: EVIL,
                disable: true,
                refused: true,
                back: EVIL,
            }),
        ));
        for enrolled in [true, false] {
            pages.push((
                if enrolled {
                    "account-enrolled"
                } else {
                    "account"
                },
                account_page(&AccountView {
                    lang,
                    branding: b,
                    account: name,
                    enrolled,
                    passkey_count: passkeys.len(),
                    enrolled_since: Some(EVIL),
                    last_used: Some(EVIL),
                    required: !enrolled,
                    not_used: false,
                    app_counts: true,
                    can_disable: enrolled,
                    // Without the app (with a passkey): new recovery codes with a passkey.
                    confirm_with_passkey: !enrolled,
                    recovery_enabled: true,
                    recovery_remaining: 0,
                    csrf: EVIL,
                    repair_action: EVIL,
                    recovery_action: EVIL,
                    disable_action: EVIL,
                    setup_action: EVIL,
                    error: Some(FormError::WrongCode),
                    failed: Some(FormAction::Disable),
                    message: Some(AccountMessage::MfaEnabled),
                    browsers: &browsers,
                    forget_action: EVIL,
                    passkeys: Some(PasskeysView {
                        items: &passkeys,
                        add_action: EVIL,
                        rename_action: EVIL,
                        remove_action: EVIL,
                    }),
                }),
            ));
        }
        let results = [name.to_owned(), "jan".to_owned()];
        for query in ["", name] {
            pages.push((
                "admin-search",
                admin_search_page(&AdminSearchView {
                    lang,
                    branding: b,
                    admin: name,
                    account_link: EVIL,
                    query,
                    results: &results,
                    search_action: EVIL,
                    user_link_base: EVIL,
                }),
            ));
        }
        let event = AdminEvent {
            at: name.to_owned(),
            event: name.to_owned(),
            actor: name.to_owned(),
            detail: name.to_owned(),
        };
        let events = [event.clone(), event];
        pages.push((
            "admin-user",
            admin_user_page(&AdminUserView {
                lang,
                branding: b,
                admin: name,
                account_link: EVIL,
                user: name,
                enrolled: true,
                app: true,
                enrolled_since: Some(EVIL),
                last_used: Some(EVIL),
                locked_until: Some(EVIL),
                role: Some(name),
                policy_state: Some(name),
                recovery_remaining: 2,
                remembered_browsers: 3,
                passkeys: &passkeys,
                events: &events,
                csrf: EVIL,
                reset_action: EVIL,
                unlock_action: EVIL,
                forget_action: EVIL,
                back_link: EVIL,
                message: Some(AdminMessage::Unlocked),
                error: Some(AdminError::ReasonMissing),
                reason: EVIL,
                not_allowed: None,
                code: AdminCode {
                    reset_makes_code: true,
                    pending_until: Some(EVIL),
                    expired_at: Some(EVIL),
                    issued: Some((EVIL, EVIL)),
                    action: EVIL,
                },
            }),
        ));
        for e in ERRORS {
            pages.push(("error", error_page(lang, b, e)));
        }
        pages
    }

    /// The opening tags of one element type, e.g. every `<input …>`.
    fn tags<'p>(page: &'p str, name: &str) -> Vec<&'p str> {
        page.split(&format!("<{name} "))
            .skip(1)
            .map(|rest| rest.split('>').next().unwrap())
            .collect()
    }

    /// The value of an attribute in an opening tag's text.
    fn attr<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
        tag.split(&format!(" {name}=\""))
            .nth(1)
            .or_else(|| tag.strip_prefix(&format!("{name}=\"")))
            .and_then(|rest| rest.split('"').next())
    }

    /// Whether any tag carries an `on…=` attribute.
    fn has_event_handler(html: &str) -> bool {
        html.split('<').skip(1).any(|tag| {
            let tag = tag.split('>').next().unwrap();
            tag.split_whitespace().skip(1).any(|attr| {
                attr.starts_with("on")
                    && attr
                        .split('=')
                        .next()
                        .unwrap()
                        .bytes()
                        .all(|b| b.is_ascii_alphabetic())
                    && attr.contains('=')
            })
        })
    }

    #[test]
    fn event_handler_check_can_fail() {
        assert!(has_event_handler(r#"<img src="x" onerror="y">"#));
        assert!(!has_event_handler("<p>only one</p>"));
    }

    fn forms(page: &str) -> Vec<&str> {
        page.split("<form ")
            .skip(1)
            .map(|rest| rest.split("</form>").next().unwrap())
            .collect()
    }

    #[test]
    fn every_page_renders_in_both_languages() {
        let (b, c) = (branding(), codes());
        let en = all_pages(Lang::En, &b, &c);
        let nl = all_pages(Lang::Nl, &b, &c);
        for ((name, en), (_, nl)) in en.iter().zip(&nl) {
            assert!(en.contains(r#"<html lang="en">"#), "{name}");
            assert!(nl.contains(r#"<html lang="nl">"#), "{name}");
            assert!(en.contains("<h1>") && nl.contains("<h1>"), "{name}");
            let h1 = |p: &str| {
                p.split("<h1>")
                    .nth(1)
                    .unwrap()
                    .split("</h1>")
                    .next()
                    .unwrap()
                    .to_owned()
            };
            assert_ne!(h1(en), h1(nl), "{name}: heading not translated");
        }
    }

    #[test]
    fn interpolated_values_are_escaped() {
        let (b, c) = (branding(), codes());
        for lang in LANGS {
            for (name, page) in all_pages(lang, &b, &c) {
                // The one script is the passkey script, a constant (allowed by its hash).
                let page = page.replace(&format!("<script>{}</script>", passkey::SCRIPT), "");
                assert!(!page.contains("<script"), "{name} {lang:?}");
                assert!(!page.contains("</script>"), "{name} {lang:?}");
                assert!(!page.contains("\"&\""), "{name} {lang:?}");
                // The only way a value shows up is escaped (`'` needs no escaping: every
                // attribute value is double-quoted).
                assert!(
                    page.contains("&lt;script&gt;alert('x')&lt;/script&gt;&quot;&amp;"),
                    "{name}"
                );
            }
        }
    }

    /// The page's text as a reader sees it: without tags (whose attribute values may keep a
    /// name exactly, to send it back) and without the content of a `<textarea>` (the value
    /// of a field).
    fn shown_text(page: &str) -> String {
        let mut text = String::new();
        let mut in_textarea = false;
        for (i, part) in page.split('<').enumerate() {
            let (tag, after) = if i == 0 {
                ("", part)
            } else {
                part.split_once('>').unwrap()
            };
            if tag.starts_with("textarea") {
                in_textarea = true;
            } else if tag.starts_with("/textarea") {
                in_textarea = false;
            }
            if !in_textarea {
                text.push_str(after);
            }
        }
        text
    }

    #[test]
    fn names_are_shown_visibly_on_every_page() {
        const SPOOF: &str = "adm\u{202E}nimda\u{2066}\u{200B}\u{7}";
        let (b, c) = (branding(), codes());
        let mut shown = 0;
        for lang in LANGS {
            for (name, page) in all_pages_named(lang, &b, &c, SPOOF) {
                let text = shown_text(&page);
                // The line breaks between elements are the page's own.
                assert!(
                    !text.chars().any(|c| c != '\n' && is_hidden(c)),
                    "{name} {lang:?}: a hidden character is shown raw"
                );
                let escaped = r"adm\u{202E}nimda\u{2066}\u{200B}\u{7}";
                if text.contains(escaped) {
                    shown += 1;
                }
                // A value sent back by a form keeps the stored name.
                for input in tags(&page, "input") {
                    if attr(input, "name") == Some(USER_FIELD) {
                        assert_eq!(attr(input, "value"), Some(SPOOF), "{name}");
                    }
                }
            }
        }
        // Enroll, verify (with and without a passkey), the passkey set-up and confirmation,
        // both account pages, the search with a query (and the one without, in its header),
        // the user page, and the enrollment-code page in its three states: every page that
        // names someone.
        assert_eq!(shown, 2 * 13);
    }

    #[test]
    fn shown_text_can_fail() {
        assert_eq!(
            shown_text("<p a=\"\u{202E}\">x<textarea>\u{202E}</textarea>y</p>"),
            "xy"
        );
    }

    #[test]
    fn pages_contain_no_script_and_no_remote_resources() {
        let (b, c) = (Branding::default(), codes());
        for lang in LANGS {
            for (name, page) in all_pages(lang, &b, &c) {
                let lower = page
                    .replace(&format!("<script>{}</script>", passkey::SCRIPT), "")
                    .to_lowercase();
                assert!(!lower.contains("<script"), "{name}");
                assert!(
                    !has_event_handler(&lower),
                    "{name}: event handler attribute"
                );
                assert!(
                    !lower.contains("http://")
                        || lower.contains("xmlns=\"http://www.w3.org/2000/svg\""),
                    "{name}"
                );
                assert!(!lower.contains("https://"), "{name}");
                assert!(
                    !lower.contains(" style="),
                    "{name}: style attribute defeats the CSP hash"
                );
            }
        }
    }

    #[test]
    fn every_form_posts_with_the_csrf_token() {
        let (b, c) = (Branding::default(), codes());
        let (mut seen, mut searches) = (0, 0);
        for lang in LANGS {
            for (name, page) in all_pages(lang, &b, &c) {
                for form in forms(&page) {
                    if form.starts_with(r#"method="get""#) {
                        // Only the admin search reads, and it must not leak the token into
                        // a URL.
                        assert_eq!(name, "admin-search", "{form}");
                        assert!(!form.contains("csrf"), "{name}: {form}");
                        assert!(form.contains(r#"name="q""#), "{name}");
                        searches += 1;
                        continue;
                    }
                    seen += 1;
                    // The passkey form is sent by the script, after the browser's answer.
                    let (form, by_script) = match form.strip_prefix(r#"id="pk-form" "#) {
                        Some(rest) => (rest, true),
                        None => (form, false),
                    };
                    assert!(
                        form.starts_with(r#"method="post" action=""#),
                        "{name}: {form}"
                    );
                    assert!(
                        form.contains(r#"<input type="hidden" name="csrf" value="&lt;script&gt;"#),
                        "{name}: {form}"
                    );
                    assert!(form.contains(r#"type="submit""#) || by_script, "{name}");
                }
            }
        }
        // Per language: enroll (2 forms), recovery, verify, offer, two notices, account with
        // MFA (3) and without (1), each with a remembered browser (forget it, forget all),
        // admin user (reset, unlock, forget browsers), the enrollment code asked: nineteen;
        // and with passkeys the code page's passkey form and code form, the passkey set-up
        // (its form, "not now"), and rename and remove of the passkey on both account pages,
        // the passkey confirmation's form and the account page's new recovery codes without
        // the app: twenty-nine.
        assert_eq!(seen, 58);
        assert_eq!(searches, 4);
    }

    #[test]
    fn every_field_has_a_label_and_a_unique_id() {
        let (b, c) = (Branding::default(), codes());
        let mut fields = 0;
        for lang in LANGS {
            for (name, page) in all_pages(lang, &b, &c) {
                let mut ids: Vec<&str> = tags(&page, "input")
                    .into_iter()
                    .chain(tags(&page, "textarea"))
                    .filter(|tag| attr(tag, "type") != Some("hidden"))
                    .map(|tag| {
                        fields += 1;
                        let id = attr(tag, "id");
                        assert!(id.is_some(), "{name}: field without id: {tag}");
                        id.unwrap_or_default()
                    })
                    .collect();
                for id in &ids {
                    assert_eq!(
                        page.matches(&format!(r#"<label for="{id}">"#)).count(),
                        1,
                        "{name}: label for {id}"
                    );
                }
                // Every id in the page, not just the fields', is unique.
                ids = page
                    .split(" id=\"")
                    .skip(1)
                    .map(|rest| rest.split('"').next().unwrap())
                    .collect();
                let all = ids.len();
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), all, "{name}: duplicate id");
                // Whatever aria-describedby / aria-labelledby names exists.
                for tag in page.split('<').skip(1) {
                    let tag = tag.split('>').next().unwrap();
                    for a in ["aria-describedby", "aria-labelledby"] {
                        for id in attr(tag, a).unwrap_or_default().split_whitespace() {
                            assert!(ids.contains(&id), "{name}: {a} names missing {id}");
                        }
                    }
                }
            }
        }
        // Code fields in enroll, verify (twice), enrollment code and account (3); verify's
        // remember box; search (2); reason and confirm; the passkey's name at its set-up and
        // at each account page.
        assert_eq!(fields, 2 * (1 + 2 + 1 + 1 + 3 + 2 + 2 + 1 + 2));
    }

    #[test]
    fn code_inputs_have_the_one_time_code_attributes() {
        let (b, c) = (Branding::default(), codes());
        for lang in LANGS {
            for (name, page) in all_pages(lang, &b, &c) {
                let codes: Vec<&str> = tags(&page, "input")
                    .into_iter()
                    .filter(|tag| attr(tag, "name") == Some(CODE_FIELD))
                    .collect();
                let expected = match name {
                    "enroll" | "verify" | "verify-passkey" | "enrollment-code" => 1,
                    "account-enrolled" => 3,
                    _ => 0,
                };
                assert_eq!(codes.len(), expected, "{name}");
                for tag in codes {
                    for a in [
                        r#"autocomplete="one-time-code""#,
                        r#"inputmode="numeric""#,
                        r#"pattern="[0-9 ]*""#,
                        " required",
                    ] {
                        assert!(tag.contains(a), "{name} {lang:?}: {a}");
                    }
                }
                if expected > 0 {
                    assert!(page.contains(r#"role="alert""#), "{name}");
                }
                if name == "enroll" || name == "verify" {
                    assert!(page.contains(r#"<label for="code">"#), "{name}");
                    assert!(page.contains(r#"id="code" name="code""#), "{name}");
                    assert!(page.contains(" autofocus"), "{name}");
                }
            }
        }
    }

    #[test]
    fn attribute_helper_can_fail() {
        assert_eq!(attr(r#"a id="x" type="hidden""#, "type"), Some("hidden"));
        assert_eq!(attr(r#"type="text" data-id="y""#, "id"), None);
        assert_eq!(attr(r#"type="text" data-id="y""#, "type"), Some("text"));
        assert_eq!(tags("<p><input a><input b>", "input"), vec!["a", "b"]);
    }

    #[test]
    fn csp_hash_matches_the_style_in_the_page() {
        let (b, c) = (branding(), codes());
        let mut headers = http::HeaderMap::new();
        page_headers(&mut headers);
        let csp = headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        for lang in LANGS {
            for (name, page) in all_pages(lang, &b, &c) {
                assert_eq!(page.matches("<style>").count(), 1, "{name}");
                let css = page
                    .split("<style>")
                    .nth(1)
                    .unwrap()
                    .split("</style>")
                    .next()
                    .unwrap();
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, css.as_bytes());
                let hash = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    digest.as_ref(),
                );
                assert!(
                    csp.contains(&format!("style-src 'sha256-{hash}';")),
                    "{name}: {csp}"
                );
            }
        }
    }

    #[test]
    fn error_pages_link_home() {
        let b = Branding::default();
        for lang in LANGS {
            for e in ERRORS {
                let page = error_page(lang, &b, e);
                assert!(page.contains(r#"href="/""#), "{e:?}");
                assert!(page.contains(e.status().as_str()), "{e:?}");
            }
        }
    }
}
