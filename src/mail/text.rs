//! The words and the two parts (plain text, simple HTML) of every mail, in English and Dutch.
//!
//! Like the pages' texts (`crate::pages::strings`), both languages are complete values of one
//! struct, so a text missing in one language does not compile. Texts are plain text; the HTML
//! part is a [`maud`] template, so every value in it (a user name, an MSP's name, a reason) is
//! escaped, and made visible first (`crate::pages::visible_text`) like on the pages.
//!
//! No mail holds a link, a secret or a sign-in code. The one code a mail carries is the code
//! that confirms a first enrollment ([`Kind::EmailCode`]); it signs nobody in.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use maud::html;

use super::{Job, Kind};
use crate::pages::Lang;
use crate::pages::visible_text;

/// The words of one language.
#[derive(Debug)]
pub struct MailText {
    pub greeting: &'static str,
    /// Per [`Kind`] (in the order of [`Kind::ALL`]): the subject and the sentence that says
    /// what happened.
    pub kinds: [(&'static str, &'static str); 10],
    pub when: &'static str,
    pub from_address: &'static str,
    pub by: &'static str,
    pub reason: &'static str,
    /// `{count}`: recovery codes left.
    pub remaining: &'static str,
    pub if_you: &'static str,
    /// `{help}`: who to call.
    pub if_not_you: &'static str,
    pub help_default: &'static str,
    /// The e-mailed code: `{minutes}` it stays valid.
    pub code_valid: &'static str,
    pub code_not_you: &'static str,
    /// The closing line: the gateway never sends links and never asks for a code by mail.
    pub footer: &'static str,
}

pub static EN: MailText = MailText {
    greeting: "Hello {user},",
    kinds: [
        (
            "An authenticator app was set up for your account",
            "An authenticator app was set up for MFA on your account. From now on, signing in asks for a code from that app.",
        ),
        (
            "Your MFA app was moved to a new phone",
            "The authenticator app of your account was replaced by a new one (a new phone). The old app no longer works.",
        ),
        (
            "MFA was turned off for your account",
            "MFA was turned off for your account. Signing in no longer asks for a code.",
        ),
        (
            "Your MFA was reset by your administrator",
            "Your MFA was disconnected by an administrator. At your next sign-in you set up an authenticator app again.",
        ),
        (
            "A recovery code was used to sign in",
            "One of your recovery codes was used to sign in to your account.",
        ),
        (
            "New recovery codes were made for your account",
            "New recovery codes were made for your account. The earlier ones no longer work.",
        ),
        (
            "A browser was remembered for your account",
            "A browser was remembered for your account: it may sign in without a code for a while.",
        ),
        (
            "Your code to set up MFA",
            "You are setting up MFA for your account. Type this code on the sign-in page:",
        ),
        (
            "A passkey was added to your account",
            "A passkey or security key was added to your account. It can now be used to sign in.",
        ),
        (
            "A passkey was removed from your account",
            "A passkey or security key was removed from your account. It no longer signs in.",
        ),
    ],
    when: "When",
    from_address: "From address",
    by: "By",
    reason: "Reason given",
    remaining: "Recovery codes left: {count}",
    if_you: "If this was you, there is nothing to do.",
    if_not_you: "If this was not you, contact {help} at once: someone may know your password.",
    help_default: "your administrator",
    code_valid: "The code is valid for {minutes} minutes and works only once.",
    code_not_you: "If you are not setting up MFA right now, do not give this code to anyone and contact {help}: someone may know your password.",
    footer: "This message has no links. We never ask for your password or a code by e-mail or phone.",
};

pub static NL: MailText = MailText {
    greeting: "Hallo {user},",
    kinds: [
        (
            "Er is een authenticator-app ingesteld voor je account",
            "Er is een authenticator-app ingesteld voor MFA op je account. Vanaf nu vraagt inloggen om een code uit die app.",
        ),
        (
            "Je MFA-app is naar een nieuwe telefoon overgezet",
            "De authenticator-app van je account is vervangen door een nieuwe (een nieuwe telefoon). De oude app werkt niet meer.",
        ),
        (
            "MFA is uitgezet voor je account",
            "MFA is uitgezet voor je account. Inloggen vraagt niet meer om een code.",
        ),
        (
            "Je MFA is gereset door je beheerder",
            "Je MFA is losgekoppeld door een beheerder. Bij je volgende keer inloggen stel je opnieuw een authenticator-app in.",
        ),
        (
            "Er is ingelogd met een herstelcode",
            "Er is met een van je herstelcodes ingelogd op je account.",
        ),
        (
            "Er zijn nieuwe herstelcodes gemaakt voor je account",
            "Er zijn nieuwe herstelcodes gemaakt voor je account. De vorige werken niet meer.",
        ),
        (
            "Er is een browser onthouden voor je account",
            "Er is een browser onthouden voor je account: daarmee kan een tijd lang zonder code worden ingelogd.",
        ),
        (
            "Je code om MFA in te stellen",
            "Je stelt MFA in voor je account. Typ deze code op de inlogpagina:",
        ),
        (
            "Er is een passkey toegevoegd aan je account",
            "Er is een passkey of beveiligingssleutel toegevoegd aan je account. Daarmee kan nu worden ingelogd.",
        ),
        (
            "Er is een passkey verwijderd van je account",
            "Er is een passkey of beveiligingssleutel verwijderd van je account. Die werkt niet meer om in te loggen.",
        ),
    ],
    when: "Wanneer",
    from_address: "Vanaf adres",
    by: "Door",
    reason: "Opgegeven reden",
    remaining: "Herstelcodes over: {count}",
    if_you: "Was jij dit? Dan hoef je niets te doen.",
    if_not_you: "Was jij dit niet? Neem dan meteen contact op met {help}: iemand kent misschien je wachtwoord.",
    help_default: "je beheerder",
    code_valid: "De code is {minutes} minuten geldig en werkt maar één keer.",
    code_not_you: "Stel je nu geen MFA in? Geef deze code dan aan niemand en neem contact op met {help}: iemand kent misschien je wachtwoord.",
    footer: "Dit bericht bevat geen links. We vragen nooit om je wachtwoord of een code per e-mail of telefoon.",
};

pub fn text(lang: Lang) -> &'static MailText {
    match lang {
        Lang::En => &EN,
        Lang::Nl => &NL,
    }
}

/// A mail ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub plain: String,
    pub html: String,
}

/// What the mails of one gateway have in common.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    /// Who to call (`mail.help_line`; `None`: "your administrator").
    pub help: Option<&'a str>,
    /// The product name shown on the pages (`mfa.product_name`), in the subject.
    pub product: &'a str,
    /// The policy's time zone.
    pub tz: &'a TimeZone,
}

/// The time of an event, in the policy's time zone: `2026-12-07 09:15 (Europe/Amsterdam)`.
pub fn local_time(at: u64, tz: &TimeZone) -> String {
    let ts = Timestamp::from_second(i64::try_from(at).unwrap_or(i64::MAX))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let z = ts.to_zoned_datetime(tz.clone());
    let name = tz.iana_name().unwrap_or("UTC");
    format!("{} ({name})", z.strftime("%Y-%m-%d %H:%M"))
}

/// The facts lines of a job: (label, value), in the order shown.
fn facts(job: &Job, t: &MailText, tz: &TimeZone) -> Vec<(&'static str, String)> {
    let mut out = vec![(t.when, local_time(job.at, tz))];
    if let Some(c) = &job.client {
        out.push((t.from_address, visible_text(c)));
    }
    if let Some(b) = &job.by {
        out.push((t.by, visible_text(b)));
    }
    if let Some(r) = &job.reason {
        out.push((t.reason, visible_text(r)));
    }
    out
}

/// Renders the mail of `job` in `lang`. `code` is the opened code of an
/// [`Kind::EmailCode`] job (and `code_minutes` its lifetime); no other job shows a code.
pub fn render(
    job: &Job,
    lang: Lang,
    frame: &Frame<'_>,
    code: Option<&str>,
    code_minutes: u64,
) -> Rendered {
    let t = text(lang);
    let idx = Kind::ALL.iter().position(|k| *k == job.kind).unwrap_or(0);
    let (subject, what) = t.kinds.get(idx).copied().unwrap_or(t.kinds[0]);
    let user = visible_text(&job.user);
    let help = frame
        .help
        .map_or_else(|| t.help_default.to_string(), visible_text);
    let greeting = t.greeting.replace("{user}", &user);
    let code = code.filter(|_| job.kind == Kind::EmailCode);
    let mut extra: Vec<String> = Vec::new();
    if let Some(n) = job.remaining.filter(|_| job.kind == Kind::RecoveryCodeUsed) {
        extra.push(t.remaining.replace("{count}", &n.to_string()));
    }
    let closing: Vec<String> = if job.kind == Kind::EmailCode {
        vec![
            t.code_valid.replace("{minutes}", &code_minutes.to_string()),
            t.code_not_you.replace("{help}", &help),
        ]
    } else {
        vec![t.if_you.to_string(), t.if_not_you.replace("{help}", &help)]
    };
    let facts = facts(job, t, frame.tz);

    let mut plain = format!("{greeting}\n\n{what}\n");
    if let Some(c) = code {
        plain.push_str(&format!("\n    {c}\n"));
    }
    plain.push('\n');
    for (label, value) in &facts {
        plain.push_str(&format!("{label}: {value}\n"));
    }
    for e in &extra {
        plain.push_str(&format!("{e}\n"));
    }
    plain.push('\n');
    for c in &closing {
        plain.push_str(&format!("{c}\n"));
    }
    plain.push_str(&format!("\n-- \n{}\n{}\n", frame.product, t.footer));

    let html = html! {
        (maud::DOCTYPE)
        html lang=(lang.code()) {
            head { meta charset="utf-8"; title { (subject) } }
            body style="font-family: sans-serif; line-height: 1.4; color: #222;" {
                p { (greeting) }
                p { (what) }
                @if let Some(c) = code {
                    p style="font-size: 1.6em; font-weight: bold; letter-spacing: 0.15em;" { (c) }
                }
                table {
                    @for (label, value) in &facts {
                        tr { th style="text-align: left; padding-right: 1em;" { (label) } td { (value) } }
                    }
                }
                @for e in &extra { p { (e) } }
                @for c in &closing { p { (c) } }
                hr;
                p style="color: #666; font-size: 0.9em;" { (frame.product) br; (t.footer) }
            }
        }
    }
    .into_string();
    Rendered {
        subject: format!("{subject} - {}", frame.product),
        plain,
        html,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn frame(tz: &TimeZone) -> Frame<'_> {
        Frame {
            help: Some("the service desk, 020 123 4567"),
            product: "VMS sign-in",
            tz,
        }
    }

    #[test]
    fn both_languages_say_what_when_where_and_who_to_call() {
        let tz = TimeZone::get("Europe/Amsterdam").unwrap();
        for kind in Kind::ALL {
            let mut job = Job::new("alice", kind, 1_765_000_000);
            job.client = Some("192.0.2.7".into());
            for (lang, when) in [(Lang::En, "When: "), (Lang::Nl, "Wanneer: ")] {
                let code = (kind == Kind::EmailCode).then_some("12345678");
                let r = render(&job, lang, &frame(&tz), code, 15);
                assert!(r.subject.ends_with(" - VMS sign-in"), "{r:?}");
                assert!(r.plain.contains(when), "{kind:?} {lang:?}");
                assert!(
                    r.plain.contains("2025-12-06 06:46 (Europe/Amsterdam)"),
                    "{}",
                    r.plain
                );
                assert!(r.plain.contains("192.0.2.7"));
                assert!(r.plain.contains("020 123 4567"));
                assert!(r.html.contains("020 123 4567"));
                assert!(!r.plain.contains("http"), "no links: {}", r.plain);
                assert!(!r.html.contains("href"), "no links: {}", r.html);
                assert_eq!(r.plain.contains("12345678"), kind == Kind::EmailCode);
                assert_eq!(r.html.contains("12345678"), kind == Kind::EmailCode);
            }
        }
    }

    #[test]
    fn a_code_is_shown_only_in_the_code_mail() {
        let tz = TimeZone::UTC;
        let job = Job::new("alice", Kind::Enrolled, 0);
        let r = render(&job, Lang::En, &frame(&tz), Some("99999999"), 15);
        assert!(!r.plain.contains("99999999") && !r.html.contains("99999999"));
    }

    #[test]
    fn values_are_escaped_in_html_and_made_visible() {
        let tz = TimeZone::UTC;
        let mut job = Job::new("<b>eve</b>", Kind::Reset, 0);
        job.by = Some("msp\u{202e}1".into());
        job.reason = Some("<script>x</script>".into());
        let r = render(&job, Lang::Nl, &frame(&tz), None, 15);
        assert!(r.html.contains("&lt;b&gt;eve&lt;/b&gt;"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;"));
        assert!(!r.html.contains("<script>"));
        assert!(!r.plain.contains('\u{202e}'));
        assert!(r.plain.contains("Door: msp"), "{}", r.plain);
        assert!(r.plain.contains("Opgegeven reden: <script>x</script>"));
    }

    #[test]
    fn recovery_code_used_says_how_many_remain() {
        let tz = TimeZone::UTC;
        let mut job = Job::new("bob", Kind::RecoveryCodeUsed, 0);
        job.remaining = Some(7);
        assert!(
            render(&job, Lang::En, &frame(&tz), None, 15)
                .plain
                .contains("Recovery codes left: 7")
        );
        assert!(
            render(&job, Lang::Nl, &frame(&tz), None, 15)
                .plain
                .contains("Herstelcodes over: 7")
        );
    }

    #[test]
    fn without_a_help_line_the_administrator_is_named() {
        let tz = TimeZone::UTC;
        let f = Frame {
            help: None,
            product: "P",
            tz: &tz,
        };
        let job = Job::new("bob", Kind::MfaDisabled, 0);
        assert!(
            render(&job, Lang::En, &f, None, 15)
                .plain
                .contains("contact your administrator")
        );
        assert!(
            render(&job, Lang::Nl, &f, None, 15)
                .plain
                .contains("contact op met je beheerder")
        );
    }
}
