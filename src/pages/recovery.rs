//! The recovery codes, shown exactly once right after a successful enrollment (or when the
//! user makes new ones).
//!
//! The codes are the user's way in when the phone is not at hand, so the page first says they
//! will not be shown again, then lists them one per line in a large monospace font (a
//! 20-digit code in groups of four never wraps inside a group, even on a phone), and offers
//! them as a text file to download: a plain `data:` link with `download`, so it works without
//! JavaScript and nothing is fetched again (the codes exist nowhere else in clear).

use maud::html;

use super::form::post_form;
use super::lang::Lang;
use super::layout::{Branding, render};
use super::notice::finish_buttons;
use super::strings::strings;

/// What the recovery codes page shows.
#[derive(Debug, Clone)]
pub struct RecoveryCodesView<'a> {
    pub lang: Lang,
    pub branding: &'a Branding,
    /// The account the codes are for (named in the downloaded file).
    pub account: &'a str,
    /// The one-time recovery codes, formatted for reading.
    pub codes: &'a [String],
    pub form_action: &'a str,
    pub csrf: &'a str,
    /// In a sign-in: offer "Continue to your MFA settings" as well.
    pub to_settings: bool,
}

/// The downloadable text: a heading line, then one code per line (CRLF, which every editor
/// on every system shows as lines), as a `data:` URI.
fn download_uri(v: &RecoveryCodesView<'_>) -> String {
    let t = &strings(v.lang).recovery;
    let product = v.branding.product_name.trim();
    let mut text = t
        .file_heading
        .replace("{account}", v.account)
        .replace("{product}", product);
    text.push_str("\r\n\r\n");
    for code in v.codes {
        text.push_str(code);
        text.push_str("\r\n");
    }
    let mut uri = String::from("data:text/plain;charset=utf-8,");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

/// Renders the recovery codes page.
pub fn recovery_codes_page(v: &RecoveryCodesView<'_>) -> String {
    let t = &strings(v.lang).recovery;
    let form = finish_buttons(v.lang, t.continue_button, v.to_settings);
    let file = format!("{}.txt", t.file_name);
    let content = html! {
        h1 { (t.title) }
        p { (t.intro) }
        p class="warn" { strong { (t.keep_safe) } }
        ol class="codes" aria-label=(t.codes_label) {
            @for code in v.codes {
                li { (code) }
            }
        }
        a class="button secondary" href=(download_uri(v)) download=(file) { (t.download) }
        (post_form(v.form_action, v.csrf, form))
    };
    render(v.lang, v.branding, t.title, content)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn view<'a>(b: &'a Branding, codes: &'a [String]) -> RecoveryCodesView<'a> {
        RecoveryCodesView {
            lang: Lang::En,
            branding: b,
            account: "jan & co",
            codes,
            form_action: "/_mfa/done",
            csrf: "tok",
            to_settings: false,
        }
    }

    #[test]
    fn lists_every_code_once_in_order_after_the_warning() {
        let b = Branding::default();
        let codes: Vec<String> = (0..10).map(|i| format!("1234 567{i}")).collect();
        let page = recovery_codes_page(&view(&b, &codes));
        assert_eq!(page.matches("<li>").count(), 10);
        let warning = page.find("They will not be shown again.").unwrap();
        let mut last = warning;
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
        assert!(!page.contains(r#"value="settings""#));
    }

    #[test]
    fn the_codes_download_as_a_text_file_one_per_line() {
        let b = Branding {
            product_name: "Acme VMS".into(),
            ..Branding::default()
        };
        let codes = vec!["1111 2222".to_string(), "3333 4444".to_string()];
        let page = recovery_codes_page(&view(&b, &codes));
        assert!(page.contains(r#"download="recovery-codes.txt""#));
        let uri = download_uri(&view(&b, &codes));
        assert!(uri.starts_with("data:text/plain;charset=utf-8,Recovery%20codes%20for%20jan%20%26%20co%20%28Acme%20VMS%29"));
        assert!(uri.ends_with("%0D%0A%0D%0A1111%202222%0D%0A3333%204444%0D%0A"));
        assert!(!uri.contains(['<', '>', '"', '\'', ' ']));
    }

    #[test]
    fn a_sign_in_can_finish_at_the_settings() {
        let b = Branding::default();
        let codes = vec!["1".to_string()];
        let page = recovery_codes_page(&RecoveryCodesView {
            to_settings: true,
            lang: Lang::Nl,
            ..view(&b, &codes)
        });
        let cont = page.find(r#"value="continue">Ik heb ze bewaard, doorgaan</button>"#);
        let settings = page.find(r#"value="settings">Doorgaan naar je MFA-instellingen</button>"#);
        assert!(cont.is_some() && settings.is_some() && cont < settings);
    }
}
