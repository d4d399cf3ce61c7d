//! Passkeys in Chromium, with its virtual authenticator (the WebDriver WebAuthn extension:
//! `POST /session/{id}/webauthn/authenticator`, ChromeDriver implements it): the gateway's
//! one script calls `navigator.credentials`, the authenticator answers as a platform passkey
//! with user verification, and the answer goes through the real pages, Redis and the demo VMS.
//!
//! One story on one browser, across the policy's date (`crate::passkey::policy`):
//! administrators may use the app or a passkey until 2022-03-01 and must use a passkey from
//! then on. It adds a passkey on the account page, signs in with it and with a code where
//! codes count, is refused a code where they do not, is refused from another origin (a
//! phishing host relaying the gateway), is refused a passkey removed meanwhile, and after an
//! MSP's reset (which removes the passkeys) sets a new one up at the sign-in, after the
//! one-time enrollment code.

use http::Method;
use mfa_gateway::clock::Clock;
use mfa_gateway::pages::Lang;
use mfa_gateway::pages::strings::strings;
use serde_json::{Value, json};
use thirtyfour::common::command::FormatRequestData;
use thirtyfour::{RequestData, SessionId};

use super::harness::*;
use crate::support::*;

const TOKEN: &str = "test-api-token-browser-passkeys";
const BOTH: &str = "2022-02-01T09:00:00Z";
const PASSKEYS_ONLY: &str = "2022-03-02T09:00:00Z";

/// A command of the WebDriver WebAuthn extension (`/session/{id}/webauthn/...`).
#[derive(Debug)]
struct WebAuthn(Method, String, Option<Value>);

impl FormatRequestData for WebAuthn {
    fn format_request(&self, session: &SessionId) -> RequestData {
        let r = RequestData::new(
            self.0.clone(),
            format!("/session/{session}/webauthn/{}", self.1),
        );
        match &self.2 {
            Some(body) => r.add_body(body.clone()),
            None => r,
        }
    }
}

/// Adds a virtual platform authenticator (a laptop's passkeys, user verified) to the
/// browser; its id.
async fn add_authenticator(b: &Browser) -> String {
    let r = b
        .driver
        .handle()
        .cmd(WebAuthn(
            Method::POST,
            "authenticator".into(),
            Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            })),
        ))
        .await
        .unwrap();
    r.value_json().unwrap().as_str().unwrap().to_string()
}

/// The credentials the virtual authenticator holds.
async fn credentials(b: &Browser, auth: &str) -> Vec<Value> {
    let r = b
        .driver
        .handle()
        .cmd(WebAuthn(
            Method::GET,
            format!("authenticator/{auth}/credentials"),
            None,
        ))
        .await
        .unwrap();
    r.value_json()
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

struct PasskeyWorld {
    gw: Gw,
    key_file: std::path::PathBuf,
    _redis: RedisProc,
    _dir: tempfile::TempDir,
    _certs: Certs,
}

async fn world() -> PasskeyWorld {
    let redis = RedisProc::start();
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let certs = certs_for(&[HOST, PHISH]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), crate::passkey::policy()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hash: String = mfa_gateway::auth::crypto::sha256(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let extra = format!(
        "[webauthn]\norigin = \"https://{HOST}:{port}\"\n\n[admin]\n\
         tokens = [{{ name = \"desk\", sha256 = \"{hash}\", role = \"administrator\" }}]\n"
    );
    let text = config_text(&certs, vms_addr, &redis.url(), DEMO_VMS, &extra);
    let gw = start_gateway_on(
        dir.path(),
        &text,
        &certs.ca_pem,
        Clock::manual(at(BOTH)),
        listener,
    )
    .await;
    PasskeyWorld {
        gw,
        key_file: certs.key.clone(),
        _redis: redis,
        _dir: dir,
        _certs: certs,
    }
}

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

async fn at_vms_home(b: &Browser) {
    b.wait_path("/home").await;
    assert!(b.text("h1").await.starts_with("Welcome, "));
}

/// Presses the passkey button and waits for the page the answer leads to.
async fn press_passkey(b: &Browser) {
    let go = b.find("#pk-go").await;
    assert!(
        go.is_displayed().await.unwrap(),
        "the script shows the button"
    );
    b.click_and_wait(&go).await;
}

/// Enrolls `user`'s app from the VMS login to the VMS home page; the secret.
async fn enroll_app(b: &Browser, w: &PasskeyWorld, user: &str) -> Vec<u8> {
    let t = strings(Lang::En);
    vms_login(b, user).await;
    b.wait_path("/.mfa/enroll").await;
    let code = b.text(".pairing").await;
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let secret = totp_rs::Secret::try_from_base32(&compact)
        .unwrap()
        .as_ref()
        .to_vec();
    b.type_into(
        "#code",
        &mfa_gateway::auth::totp::code_at(&secret, w.gw.clock.unix()),
    )
    .await;
    b.click_text(t.enroll.confirm).await;
    b.wait_path("/.mfa/recovery-codes").await;
    b.click_text(t.recovery.continue_button).await;
    at_vms_home(b).await;
    secret
}

#[tokio::test]
async fn passkeys_in_chromium_across_the_date() {
    let w = world().await;
    let opts = Options {
        lang: Lang::En,
        javascript: true,
    };
    let mut b = Browser::start("passkeys", w.gw.addr.port(), &w.key_file, opts).await;
    let t = strings(Lang::En);
    let auth = add_authenticator(&b).await;
    let store = w.gw.gateway().store.clone();

    // --- Both methods count: the app first, then a passkey added on the account page.
    let secret = enroll_app(&b, &w, "admin").await;
    b.goto("/.mfa/account").await;
    b.check_page("account-no-passkey", "/.mfa/account").await;
    b.click_text(t.passkey.add_button).await;
    b.check_page("account-add-passkey", "/.mfa/account/passkey")
        .await;
    b.type_into("#pk-name", "Test laptop").await;
    press_passkey(&b).await;
    b.check_page("account-passkey-added", "/.mfa/account?done=passkey-added")
        .await;
    assert!(b.text("main").await.contains("Test laptop"));
    assert_eq!(
        credentials(&b, &auth).await.len(),
        1,
        "held by the authenticator"
    );
    assert_eq!(store.passkeys("admin").await.unwrap().len(), 1);
    vms_logout(&b).await;

    // The sign-in offers the passkey first; one press signs in.
    vms_login(&b, "admin").await;
    b.check_page("verify-passkey", "/.mfa/verify").await;
    assert_eq!(b.text("h1").await, t.passkey.sign_in_button);
    assert_eq!(b.text("main h2").await, t.passkey.use_code_instead);
    press_passkey(&b).await;
    at_vms_home(&b).await;
    assert!(store.passkeys("admin").await.unwrap()[0].last_used > 0);
    vms_logout(&b).await;

    // "Use a code instead": the app's code signs in where codes count.
    vms_login(&b, "admin").await;
    b.wait_path("/.mfa/verify").await;
    w.gw.clock.advance(30);
    b.type_into(
        "#code",
        &mfa_gateway::auth::totp::code_at(&secret, w.gw.clock.unix()),
    )
    .await;
    b.click_text(t.verify.verify_button).await;
    at_vms_home(&b).await;
    vms_logout(&b).await;

    // --- From 2022-03-01 administrators must use a passkey: the app's code is refused.
    w.gw.clock.set(at(PASSKEYS_ONLY));
    vms_login(&b, "admin").await;
    b.wait_path("/.mfa/verify").await;
    assert_eq!(b.text("main h2").await, t.passkey.use_recovery_instead);
    b.type_into(
        "#code",
        &mfa_gateway::auth::totp::code_at(&secret, w.gw.clock.unix()),
    )
    .await;
    b.click_text(t.verify.verify_button).await;
    b.check_page("verify-code-refused", "/.mfa/verify").await;
    assert!(
        b.text("#code-error")
            .await
            .starts_with(t.passkey.codes_not_allowed),
        "{}",
        b.text("main").await
    );
    press_passkey(&b).await;
    at_vms_home(&b).await;
    vms_logout(&b).await;

    // --- Another origin (a page on another name relaying the gateway): the browser will
    // not use the passkey there, and nothing is released.
    let phish = format!("https://{PHISH}:{}", w.gw.addr.port());
    b.driver.goto(format!("{phish}/login")).await.unwrap();
    b.type_into("#username", "admin").await;
    b.type_into("#password", "demo").await;
    let submit = b.find("main form button[type=submit]").await;
    b.click_and_wait(&submit).await;
    b.wait_path("/.mfa/verify").await;
    b.find("#pk-go").await.click().await.unwrap();
    let error = b.find("#pk-error").await;
    for _ in 0..100 {
        if error.is_displayed().await.unwrap() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(error.is_displayed().await.unwrap(), "the ceremony failed");
    assert_eq!(error.text().await.unwrap(), t.passkey.failed);
    assert_eq!(b.path().await, "/.mfa/verify", "nothing was released");

    // --- A passkey removed meanwhile (on another device) is refused.
    vms_login(&b, "admin").await;
    b.wait_path("/.mfa/verify").await;
    let id = store.passkeys("admin").await.unwrap()[0].id.clone();
    let keep = mfa_gateway::store::KeepMethod {
        enforced: false,
        totp: false,
        webauthn: false,
    };
    store.remove_passkey("admin", &id, keep).await.unwrap();
    press_passkey(&b).await;
    b.check_page("verify-passkey-refused", "/.mfa/verify").await;
    assert!(b.text("main").await.contains(t.passkey.refused));
    assert!(
        b.find_all("#pk").await.is_empty(),
        "no passkey left to offer"
    );

    // --- The MSP's reset removes the passkeys; the next sign-in sets one up again (first
    // one more, as the user has the app but no passkey now).
    vms_login(&b, "admin").await;
    b.wait_path("/.mfa/passkey").await;
    press_passkey(&b).await;
    at_vms_home(&b).await;
    assert_eq!(store.passkeys("admin").await.unwrap().len(), 1);
    let api = client(&w.gw);
    let r = api
        .post(url(&w.gw, "/.mfa/admin/api/users/admin/reset"))
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "laptop lost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let code = v["enrollment_code"].as_str().unwrap().to_string();
    assert!(store.passkeys("admin").await.unwrap().is_empty());
    b.goto("/logout").await;
    vms_login(&b, "admin").await;
    // The one-time enrollment code the MSP read out comes first.
    b.check_page("passkey-enrollment-code", "/.mfa/enrollment-code")
        .await;
    assert_eq!(b.text("h1").await, t.enrollment_code.title);
    b.type_into("#code", &code).await;
    b.click_text(t.enrollment_code.continue_button).await;
    b.check_page("passkey-set-up", "/.mfa/passkey").await;
    assert_eq!(b.text("h1").await, t.passkey.setup_title);
    press_passkey(&b).await;
    // A first method after a reset: new recovery codes, once.
    b.wait_path("/.mfa/recovery-codes").await;
    b.click_text(t.recovery.continue_button).await;
    at_vms_home(&b).await;

    // --- Without the app, new recovery codes are confirmed with the passkey.
    b.goto("/.mfa/account").await;
    b.check_page("account-passkey-only", "/.mfa/account").await;
    b.click_text(t.passkey.confirm_start_recovery).await;
    b.check_page("account-confirm-passkey", "/.mfa/account/recovery-codes")
        .await;
    assert_eq!(b.text("h1").await, t.passkey.confirm_title);
    press_passkey(&b).await;
    b.check_page(
        "account-passkey-recovery-codes",
        "/.mfa/account/recovery-codes",
    )
    .await;
    assert_eq!(b.find_all("ol.codes li").await.len(), 10);
    b.finish().await;
}
