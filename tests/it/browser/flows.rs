//! The sign-in flows as a user clicks through them, in English and in Dutch.
//!
//! One Chromium session per test walks a whole story on one world, moving the gateway's
//! clock where the policy phase or the next time step matters: fewer browser start-ups keep
//! the module within a few minutes on two cores.

use mfa_gateway::pages::Lang;
use mfa_gateway::pages::strings::strings;

use super::harness::*;
use crate::support::at;

/// Before 2022-01-01 MFA is available to customers, MSPs and administrators; after it,
/// enforced (config/policy.toml).
const AVAILABLE: &str = "2021-11-15T09:00:00Z";
const ENFORCED: &str = "2022-02-01T09:00:00Z";

/// A six-digit code that is none of the codes the gateway accepts now (one step either side).
fn wrong_code(w: &World, secret: &[u8]) -> String {
    let now = w.gw.clock.unix();
    let accepted: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| mfa_gateway::auth::totp::code_at(secret, *t))
        .collect();
    (0..)
        .map(|i: u32| format!("{:06}", (123_457 + i * 104_729) % 1_000_000))
        .find(|c| !accepted.contains(c))
        .unwrap()
}

/// Signs in on the demo VMS's own login form.
async fn vms_login(b: &Browser, user: &str) {
    b.goto("/login").await;
    b.type_into("#username", user).await;
    b.type_into("#password", "demo").await;
    let submit = b.find("main form button[type=submit]").await;
    b.click_and_wait(&submit).await;
}

async fn vms_logout(b: &Browser) {
    b.goto("/logout").await;
    b.wait_path("/login").await;
}

/// On the VMS's home page, signed in.
async fn at_vms_home(b: &Browser) {
    b.wait_path("/home").await;
    let h1 = b.text("h1").await;
    assert!(h1.starts_with("Welcome, "), "VMS home page: {h1}");
}

/// Reads the pairing code off the enrollment page, as a user types it into an app.
async fn pairing_secret(b: &Browser) -> Vec<u8> {
    let code = b.text(".pairing").await;
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let secret = totp_rs::Secret::try_from_base32(&compact)
        .unwrap_or_else(|e| panic!("pairing code {code:?}: {e:?}"));
    secret.as_ref().to_vec()
}

/// The code field of a page: labelled, described, focused when it should be.
async fn code_field(b: &Browser, label: &str, error: Option<&str>, focused: bool) {
    let field = b.find("input#code").await;
    assert_eq!(
        b.text("label[for=code]").await,
        label,
        "label of the code field"
    );
    assert_eq!(
        field.attr("autocomplete").await.unwrap().as_deref(),
        Some("one-time-code")
    );
    assert_eq!(
        field.attr("inputmode").await.unwrap().as_deref(),
        Some("numeric")
    );
    let described = field
        .attr("aria-describedby")
        .await
        .unwrap()
        .unwrap_or_default();
    match error {
        Some(message) => {
            let alert = b.find("#code-error").await;
            assert_eq!(alert.attr("role").await.unwrap().as_deref(), Some("alert"));
            let text = alert.text().await.unwrap();
            assert!(
                text.starts_with(message),
                "error shown: {text:?}, expected {message:?}"
            );
            assert!(
                described.split(' ').any(|id| id == "code-error"),
                "{described}"
            );
            assert_eq!(
                field.attr("aria-invalid").await.unwrap().as_deref(),
                Some("true")
            );
        }
        None => {
            assert!(
                b.find_all("#code-error").await.is_empty(),
                "no error before a try"
            );
            assert_eq!(field.attr("aria-invalid").await.unwrap(), None);
        }
    }
    if focused {
        assert_eq!(
            b.focused().await,
            ("input".into(), "code".into()),
            "focus on the code field"
        );
    }
}

/// Enrolls `user` from the VMS login form to the VMS home page; returns the secret.
async fn enroll(b: &mut Browser, w: &World, lang: Lang, user: &str, step: &str) -> Vec<u8> {
    let t = strings(lang);
    vms_login(b, user).await;
    b.check_page(&format!("{step}-enroll"), "/.mfa/enroll")
        .await;
    assert_eq!(b.text("h1").await, t.enroll.title);
    assert!(
        b.find(".qr svg").await.is_displayed().await.unwrap(),
        "QR code shown"
    );
    code_field(b, t.enroll.step_code, None, false).await;
    let secret = pairing_secret(b).await;
    assert_eq!(secret.len(), 20, "160-bit secret");
    b.type_into("#code", &w.code(&secret)).await;
    b.click_text(t.enroll.confirm).await;
    b.check_page(&format!("{step}-recovery-codes"), "/.mfa/recovery-codes")
        .await;
    assert_eq!(b.text("h1").await, t.recovery.title);
    let codes = b.find_all("ol.codes li").await;
    assert_eq!(codes.len(), 10, "ten recovery codes");
    for c in codes {
        let code = c.text().await.unwrap();
        assert!(
            code.split(' ').count() == 5
                && code
                    .split(' ')
                    .all(|g| g.len() == 4 && g.bytes().all(|d| d.is_ascii_digit())),
            "recovery code {code:?}"
        );
    }
    b.click_text(t.recovery.continue_button).await;
    at_vms_home(b).await;
    secret
}

/// The whole story of one language on one browser: the optional-MFA offer, enrollment with
/// recovery codes, a challenge with a wrong and a right code, the account page, an MSP's reset
/// through the admin pages and the new enrollment after it, and the lock after repeated wrong
/// codes.
async fn story(lang: Lang, test: &str) {
    let w = World::start(AVAILABLE, "offer_quiet_period = \"0s\"").await;
    let opts = Options {
        lang,
        javascript: true,
    };
    let mut b = w.browser(test, opts).await;
    let t = strings(lang);

    // --- MFA available: the offer. "Not now" goes on to the VMS; "Set up now" to enrollment,
    // which can still be cancelled.
    vms_login(&b, "admin").await;
    b.check_page("offer", "/.mfa/offer").await;
    assert_eq!(b.text("h1").await, t.offer.title);
    assert_eq!(b.text("main p.muted").await, t.offer.later_hint_next);
    b.click_text(t.common.not_now).await;
    at_vms_home(&b).await;
    vms_logout(&b).await;
    vms_login(&b, "admin").await;
    b.wait_path("/.mfa/offer").await;
    b.click_text(t.offer.set_up_now).await;
    b.check_page("offer-enroll", "/.mfa/enroll").await;
    assert_eq!(b.text("h1").await, t.enroll.title);
    assert!(b.text("main").await.contains(t.enroll.optional));
    b.click_text(t.enroll.cancel).await;
    at_vms_home(&b).await;
    vms_logout(&b).await;

    // --- MFA enforced: enrollment, recovery codes, the VMS.
    w.gw.clock.set(at(ENFORCED));
    let secret = enroll(&mut b, &w, lang, "customer", "first").await;
    vms_logout(&b).await;

    // --- The second sign-in asks for a code; a wrong one is refused with a message that the
    // field points at, and the field keeps the focus.
    vms_login(&b, "customer").await;
    b.check_page("verify", "/.mfa/verify").await;
    assert_eq!(b.text("h1").await, t.verify.title);
    code_field(&b, t.verify.code_label, None, true).await;
    b.type_into("#code", &wrong_code(&w, &secret)).await;
    b.click_text(t.verify.verify_button).await;
    b.check_page("verify-wrong-code", "/.mfa/verify").await;
    code_field(
        &b,
        t.verify.code_label,
        Some(t.form_errors.wrong_code),
        true,
    )
    .await;
    w.gw.clock.advance(30);
    b.type_into("#code", &w.code(&secret)).await;
    b.click_text(t.verify.verify_button).await;
    at_vms_home(&b).await;

    // --- The account page: new recovery codes, proven with a current code.
    b.goto("/.mfa/account").await;
    b.check_page("account", "/.mfa/account").await;
    assert_eq!(b.text("h1").await, t.account.title);
    assert!(b.text("main").await.contains(t.account.state_on));
    w.gw.clock.advance(30);
    let recovery_form = b.find("section:has(button.secondary)").await;
    let field = recovery_form
        .find(thirtyfour::By::Css("input.code"))
        .await
        .unwrap();
    field.send_keys(w.code(&secret)).await.unwrap();
    let button = recovery_form
        .find(thirtyfour::By::Css("button"))
        .await
        .unwrap();
    b.click_and_wait(&button).await;
    b.check_page("account-recovery-codes", "/.mfa/account/recovery-codes")
        .await;
    assert_eq!(b.find_all("ol.codes li").await.len(), 10);
    b.click_text(t.recovery.continue_button).await;
    // Back on the account page, which says what was done.
    b.check_page("account-done", "/.mfa/account?done=recovery")
        .await;
    assert_eq!(b.text("h1").await, t.account.title);
    assert_eq!(b.text("p.ok").await, t.account.done_recovery_replaced);
    vms_logout(&b).await;

    // --- An MSP disconnects the customer's MFA on the admin pages.
    let msp_secret = enroll(&mut b, &w, lang, "msp", "msp").await;
    let _ = msp_secret;
    b.goto("/.mfa/admin/").await;
    b.check_page("admin-search", "/.mfa/admin/").await;
    assert_eq!(b.text("h1").await, t.admin.search_title);
    b.type_into("#q", "cust").await;
    b.click_text(t.admin.search_button).await;
    b.check_page("admin-results", "/.mfa/admin/?q=cust").await;
    b.click_text("customer").await;
    b.check_page("admin-user", "/.mfa/admin/user?u=customer")
        .await;
    // The browser itself refuses the reset without a reason and the confirmation.
    b.find("button.danger").await.click().await.unwrap();
    let valid = b
        .driver
        .execute(
            "return document.querySelector('#reason').checkValidity();",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        valid.json(),
        &serde_json::Value::Bool(false),
        "reason required"
    );
    b.wait_path("/.mfa/admin/user?u=customer").await;
    b.type_into("#reason", "lost phone, ticket 4711").await;
    b.find("#confirm").await.click().await.unwrap();
    b.click_text(t.admin.reset_button).await;
    b.check_page("admin-user-reset", "/.mfa/admin/user?u=customer&done=reset")
        .await;
    let done = t.admin.done_reset.replace("{user}", "customer");
    assert_eq!(b.text("p.ok").await, done);
    vms_logout(&b).await;

    // --- The customer enrolls again at the next sign-in.
    w.gw.clock.advance(30);
    let secret = enroll(&mut b, &w, lang, "customer", "again").await;
    vms_logout(&b).await;

    // --- Five wrong codes lock the code step; then even the right code is refused.
    vms_login(&b, "customer").await;
    b.wait_path("/.mfa/verify").await;
    let locked = t.form_errors.locked_minutes.replace("{minutes}", "15");
    for attempt in 1..=5 {
        b.type_into("#code", &wrong_code(&w, &secret)).await;
        b.click_text(t.verify.verify_button).await;
        b.wait_path("/.mfa/verify").await;
        let alert = b.text("#code-error").await;
        assert_eq!(
            alert.starts_with(&locked),
            attempt == 5,
            "attempt {attempt}: {alert}"
        );
    }
    b.check_page("verify-locked", "/.mfa/verify").await;
    code_field(&b, t.verify.code_label, Some(&locked), true).await;
    assert!(
        b.text("#code-error").await.contains(
            &t.form_errors
                .locked_help
                .replace("{helpdesk}", t.common.helpdesk_default)
        )
    );
    w.gw.clock.advance(30);
    b.type_into("#code", &w.code(&secret)).await;
    b.click_text(t.verify.verify_button).await;
    b.wait_path("/.mfa/verify").await;
    assert!(b.text("#code-error").await.starts_with(&locked), "locked");

    eprintln!("{test}: axe-core checked {} pages", b.axe_pages);
    b.finish().await;
}

#[tokio::test]
async fn story_in_english() {
    story(Lang::En, "story_in_english").await;
}

#[tokio::test]
async fn story_in_dutch() {
    story(Lang::Nl, "story_in_dutch").await;
}

/// With JavaScript off, enrollment and the code challenge work the same: the pages need no
/// script.
#[tokio::test]
async fn enrollment_and_challenge_without_javascript() {
    without_javascript(Lang::En, "without_javascript").await;
}

#[tokio::test]
async fn enrollment_and_challenge_without_javascript_in_dutch() {
    without_javascript(Lang::Nl, "without_javascript_nl").await;
}

async fn without_javascript(lang: Lang, test: &str) {
    let w = World::start(ENFORCED, "").await;
    let opts = Options {
        lang,
        javascript: false,
    };
    let mut b = w.browser(test, opts).await;
    // JavaScript is really off: a page's script does not run.
    b.driver
        .goto("data:text/html,<title>off</title><script>document.title='on'</script>")
        .await
        .unwrap();
    assert_eq!(b.driver.title().await.unwrap(), "off", "JavaScript is off");

    let t = strings(lang);
    let secret = enroll(&mut b, &w, lang, "customer", "nojs").await;
    vms_logout(&b).await;
    vms_login(&b, "customer").await;
    b.check_page("nojs-verify", "/.mfa/verify").await;
    code_field(&b, t.verify.code_label, None, true).await;
    b.type_into("#code", &wrong_code(&w, &secret)).await;
    b.click_text(t.verify.verify_button).await;
    b.check_page("nojs-verify-wrong-code", "/.mfa/verify").await;
    code_field(
        &b,
        t.verify.code_label,
        Some(t.form_errors.wrong_code),
        true,
    )
    .await;
    w.gw.clock.advance(30);
    sign_in_here(&mut b, &w, &secret, lang).await;
    b.finish().await;
}

/// Enters the current code on the challenge page shown.
async fn sign_in_here(b: &mut Browser, w: &World, secret: &[u8], lang: Lang) {
    b.type_into("#code", &w.code(secret)).await;
    b.click_text(strings(lang).verify.verify_button).await;
    at_vms_home(b).await;
}
