//! Passkeys and security keys end to end over HTTP: the demo VMS, a real Redis, the real
//! gateway with `[webauthn]` on `https://localhost:PORT`, and a software authenticator that
//! answers the gateway's options as a browser with a security key would (the same one the
//! unit tests use). The dated policy counts app codes and passkeys for administrators from
//! 2022-01-01 and passkeys only from 2022-03-01 (the injected clock crosses that date).
//! Real-browser runs of the same flows are in `browser::passkeys`.

#[path = "../../src/auth/passkey/soft.rs"]
mod soft;

use mfa_gateway::auth::totp;
use mfa_gateway::clock::Clock;
use soft::SoftKey;

use crate::support::browser::*;
use crate::support::*;

const TOKEN: &str = "test-api-token-passkeys-0123";
/// Administrators may use either method.
const BOTH: &str = "2022-02-01T09:00:00Z";
/// Administrators must use a passkey.
const PASSKEYS_ONLY: &str = "2022-03-02T09:00:00Z";

/// The shipped policy, plus methods: administrators and MSPs may use passkeys from
/// 2022-01-01; from 2022-03-01 administrators must.
pub fn policy() -> String {
    format!(
        "{POLICY}\n[phase.methods]\nadministrator = [\"totp\", \"webauthn\"]\nmsp = [\"totp\", \"webauthn\"]\n\n\
         [[phase]]\nfrom = 2022-03-01\nname = \"passkeys for administrators\"\n[phase.roles]\n\
         administrator = \"enforced\"\nmsp = \"enforced\"\ncustomer = \"enforced\"\n\
         supplier = \"none\"\ncontractor = \"none\"\nresource = \"none\"\n\
         [phase.methods]\nadministrator = [\"webauthn\"]\nmsp = [\"totp\", \"webauthn\"]\n"
    )
}

pub struct PkWorld {
    pub gw: Gw,
    pub origin: String,
    _redis: RedisProc,
    _dir: tempfile::TempDir,
    _certs: Certs,
}

pub async fn world(date: &str) -> PkWorld {
    world_with(date, &policy()).await
}

/// [`world`] with another policy file.
pub async fn world_with(date: &str, policy: &str) -> PkWorld {
    let redis = RedisProc::start();
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let hash: String = mfa_gateway::auth::crypto::sha256(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let extra = format!(
        "[webauthn]\norigin = \"{origin}\"\n\n[admin]\ntokens = [{{ name = \"desk\", sha256 = \"{hash}\", role = \"administrator\" }}]\n"
    );
    let text = config_text(&c, vms_addr, &redis.url(), DEMO_VMS, &extra);
    let gw = start_gateway_on(
        dir.path(),
        &text,
        &c.ca_pem,
        Clock::manual(at(date)),
        listener,
    )
    .await;
    PkWorld {
        gw,
        origin,
        _redis: redis,
        _dir: dir,
        _certs: c,
    }
}

/// The WebAuthn options a page carries (its `data-options`, unescaped).
pub fn options(html: &str) -> Option<String> {
    let start = html.find("data-options=\"")? + "data-options=\"".len();
    let raw = &html[start..start + html[start..].find('"')?];
    Some(
        raw.replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Posts the passkey form of a page (`action`: "passkey" or "register").
pub async fn post_answer(
    c: &reqwest::Client,
    w: &PkWorld,
    path: &str,
    html: &str,
    action: &str,
    answer: &str,
    name: &str,
) -> reqwest::Response {
    post_form(
        c,
        &w.gw,
        path,
        &[
            ("csrf", csrf(html).as_str()),
            ("action", action),
            ("credential", answer),
            ("name", name),
        ],
    )
    .await
}

/// Registers `key` from the account page of a signed-in client.
async fn add_on_account_page(c: &reqwest::Client, w: &PkWorld, key: &mut SoftKey, name: &str) {
    let html = get_text(c, &w.gw, "/.mfa/account/passkey").await;
    let answer = key.register(&options(&html).expect("creation options"), &w.origin);
    let r = post_answer(
        c,
        w,
        "/.mfa/account/passkey",
        &html,
        "register",
        &answer,
        name,
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=passkey-added");
}

/// Signs `user` in with `key` on a new client: the released answer.
async fn sign_in_with(
    w: &PkWorld,
    user: &str,
    key: &mut SoftKey,
    origin: &str,
) -> reqwest::Response {
    let c = client(&w.gw);
    let r = login(&c, &w.gw, user).await;
    assert_eq!(location(&r), "/.mfa/verify");
    let html = get_text(&c, &w.gw, "/.mfa/verify").await;
    let answer = key.sign(&options(&html).expect("sign-in options"), origin);
    post_answer(&c, w, "/.mfa/verify", &html, "passkey", &answer, "").await
}

async fn audit_has(w: &PkWorld, event: &str, detail: &str) -> bool {
    let recent = w.gw.gateway().store.audit_recent(50).await.unwrap();
    recent
        .iter()
        .any(|r| r.contains(&format!("\"event\":\"{event}\"")) && r.contains(detail))
}

#[tokio::test]
async fn a_passkey_added_on_the_account_page_signs_in_beside_the_app() {
    let w = world(BOTH).await;
    let c = client(&w.gw);
    let secret = enroll(&c, &w.gw, "admin").await;
    let account = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(account.contains("Passkeys and security keys"), "{account}");
    assert!(account.contains("No passkeys yet."));
    let mut key = SoftKey::new();
    add_on_account_page(&c, &w, &mut key, "YubiKey <5>").await;
    let account = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(
        account.contains("<strong>YubiKey &lt;5&gt;</strong>"),
        "{account}"
    );
    assert!(account.contains("Not used yet"));
    assert!(audit_has(&w, "passkey_added", "passkey=").await);

    // The passkey is offered first; it signs in.
    let r = sign_in_with(&w, "admin", &mut key, &w.origin).await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));
    assert!(audit_has(&w, "verify_success", "method=passkey").await);
    let stored = w.gw.gateway().store.passkeys("admin").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].counter, key.counter());
    assert!(stored[0].last_used > 0);

    // "Use a code instead": the app still counts in this phase.
    let c2 = client(&w.gw);
    let r = login(&c2, &w.gw, "admin").await;
    assert_eq!(location(&r), "/.mfa/verify");
    let html = get_text(&c2, &w.gw, "/.mfa/verify").await;
    assert!(html.contains("Or use a code instead"), "{html}");
    w.gw.clock.advance(30);
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_code(&c2, &w.gw, "/.mfa/verify", &code).await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));

    // Rename, then remove (the app remains, so it may go).
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    let id = key.id();
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/passkey/rename",
        &[
            ("csrf", csrf(&html).as_str()),
            ("passkey", &id),
            ("name", "Desk key"),
        ],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=passkey-renamed");
    assert_eq!(
        w.gw.gateway().store.passkeys("admin").await.unwrap()[0].name,
        "Desk key"
    );
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/passkey/remove",
        &[("csrf", csrf(&html).as_str()), ("passkey", &id)],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=passkey-removed");
    assert!(
        w.gw.gateway()
            .store
            .passkeys("admin")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(audit_has(&w, "passkey_removed", "passkey=").await);
    // Without a passkey the code page is the code page.
    let c3 = client(&w.gw);
    login(&c3, &w.gw, "admin").await;
    let html = get_text(&c3, &w.gw, "/.mfa/verify").await;
    assert!(!html.contains("data-options"), "{html}");
}

#[tokio::test]
async fn across_the_date_administrators_must_set_up_and_use_a_passkey() {
    let w = world(BOTH).await;
    let c = client(&w.gw);
    let secret = enroll(&c, &w.gw, "admin").await;
    // Before the date: the app's code signs in.
    login_with_code(&client(&w.gw), &w.gw, "admin", &secret).await;

    // From 2022-03-01 the role counts passkeys only: the next sign-in sets one up.
    w.gw.clock.set(at(PASSKEYS_ONLY));
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "admin").await;
    assert_eq!(location(&r), "/.mfa/passkey");
    assert!(!sets_vms_session(&r));
    let html = get_text(&c, &w.gw, "/.mfa/passkey").await;
    assert!(html.contains("<h1>Set up a passkey</h1>"), "{html}");
    assert!(
        !html.contains("value=\"postpone\""),
        "no grace in this phase"
    );
    // An answer made on another origin (a phishing page relaying the ceremony) is refused.
    let mut key = SoftKey::new();
    let phished = key.register(&options(&html).unwrap(), "https://login-vms.example");
    let r = post_answer(&c, &w, "/.mfa/passkey", &html, "register", &phished, "x").await;
    assert_eq!(r.status(), 200);
    assert!(!sets_vms_session(&r));
    let again = r.text().await.unwrap();
    assert!(again.contains("That passkey was not accepted"), "{again}");
    assert!(audit_has(&w, "passkey_refused", "reason=registration").await);
    // The page shows a new ceremony; the right origin registers and releases the sign-in
    // (the user has recovery codes from the app already: none are shown).
    let answer = key.register(&options(&again).unwrap(), &w.origin);
    let r = post_answer(
        &c,
        &w,
        "/.mfa/passkey",
        &again,
        "register",
        &answer,
        "Laptop",
    )
    .await;
    assert_eq!(r.status(), 302, "{}", location(&r));
    assert!(sets_vms_session(&r));

    // The next sign-in: a code from the app is not accepted (and not counted) ...
    let c = client(&w.gw);
    login(&c, &w.gw, "admin").await;
    let html = get_text(&c, &w.gw, "/.mfa/verify").await;
    assert!(
        html.contains("Lost your passkey? Use a recovery code"),
        "{html}"
    );
    w.gw.clock.advance(30);
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/verify",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(!sets_vms_session(&r));
    let html = r.text().await.unwrap();
    assert!(
        html.contains("codes from the app no longer count"),
        "{html}"
    );
    assert_eq!(
        w.gw.gateway().store.user_failures("admin").await.unwrap(),
        0
    );
    // ... an assertion relayed from another origin is refused ...
    let relayed = key.sign(&options(&html).unwrap(), "https://login-vms.example");
    let r = post_answer(&c, &w, "/.mfa/verify", &html, "passkey", &relayed, "").await;
    assert_eq!(r.status(), 200);
    assert!(!sets_vms_session(&r));
    let html = r.text().await.unwrap();
    assert!(html.contains("That passkey was not accepted"));
    // ... the passkey signs in, once: the same answer again finds no ceremony.
    let answer = key.sign(&options(&html).unwrap(), &w.origin);
    let r = post_answer(&c, &w, "/.mfa/verify", &html, "passkey", &answer, "").await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));
    let c = client(&w.gw);
    login(&c, &w.gw, "admin").await;
    let html = get_text(&c, &w.gw, "/.mfa/verify").await;
    let r = post_answer(&c, &w, "/.mfa/verify", &html, "passkey", &answer, "").await;
    assert!(!sets_vms_session(&r), "a replayed answer");
    // A cloned key (its counter behind the stored one) is refused by the store's step.
    let html = r.text().await.unwrap();
    let before = key.counter();
    key.set_counter(before - 2);
    let cloned = key.sign(&options(&html).unwrap(), &w.origin);
    let r = post_answer(&c, &w, "/.mfa/verify", &html, "passkey", &cloned, "").await;
    assert!(!sets_vms_session(&r));
    // webauthn-rs refuses it first; the store's step refuses it as well, and one for a
    // removed credential, whatever the ceremony said.
    let store = &w.gw.gateway().store;
    let stored = store.passkeys("admin").await.unwrap().remove(0);
    let now = w.gw.clock.unix();
    for (counter, want) in [
        (
            stored.counter,
            mfa_gateway::store::UsePasskey::CounterRegressed,
        ),
        (
            stored.counter - 1,
            mfa_gateway::store::UsePasskey::CounterRegressed,
        ),
        (stored.counter + 1, mfa_gateway::store::UsePasskey::Used),
    ] {
        let got = store
            .use_passkey("admin", &stored.id, counter, &stored.key, now)
            .await
            .unwrap();
        assert_eq!(got, want, "counter {counter}");
    }
    assert_eq!(
        store
            .use_passkey("admin", "no-such-id", 99, &stored.key, now)
            .await
            .unwrap(),
        mfa_gateway::store::UsePasskey::Gone
    );
}

#[tokio::test]
async fn a_passkey_only_user_keeps_one_method_uses_recovery_codes_and_a_removed_key_is_refused() {
    let w = world(PASSKEYS_ONLY).await;
    // A first sign-in with nothing set up: a passkey, then the recovery codes once.
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "admin").await;
    assert_eq!(location(&r), "/.mfa/passkey");
    let html = get_text(&c, &w.gw, "/.mfa/passkey").await;
    let mut first = SoftKey::new();
    let answer = first.register(&options(&html).unwrap(), &w.origin);
    let r = post_answer(&c, &w, "/.mfa/passkey", &html, "register", &answer, "").await;
    assert_eq!(location(&r), "/.mfa/recovery-codes");
    let page = get_text(&c, &w.gw, "/.mfa/recovery-codes").await;
    let codes = recovery_codes(&page);
    assert_eq!(codes.len(), 10);
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/recovery-codes",
        &[("csrf", csrf(&page).as_str()), ("action", "continue")],
    )
    .await;
    assert!(sets_vms_session(&r));
    assert_eq!(
        w.gw.gateway().store.passkeys("admin").await.unwrap()[0].name,
        "Passkey",
        "the default name"
    );
    // The only method may not be removed where MFA is enforced.
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/passkey/remove",
        &[("csrf", csrf(&html).as_str()), ("passkey", &first.id())],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=passkey-last");
    assert_eq!(
        w.gw.gateway().store.passkeys("admin").await.unwrap().len(),
        1
    );
    let shown = get_text(&c, &w.gw, "/.mfa/account?done=passkey-last").await;
    assert!(
        shown.contains("This is the last way you can sign in with"),
        "{shown}"
    );
    // A second key; then the first is removed while a sign-in that allowed it is open.
    let mut second = SoftKey::new();
    add_on_account_page(&c, &w, &mut second, "Phone").await;
    let b = client(&w.gw);
    login(&b, &w.gw, "admin").await;
    let open = get_text(&b, &w.gw, "/.mfa/verify").await;
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/passkey/remove",
        &[("csrf", csrf(&html).as_str()), ("passkey", &first.id())],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=passkey-removed");
    let answer = first.sign(&options(&open).unwrap(), &w.origin);
    let r = post_answer(&b, &w, "/.mfa/verify", &open, "passkey", &answer, "").await;
    assert!(!sets_vms_session(&r), "a removed passkey");
    // A recovery code signs in (the field takes recovery codes only).
    let html = r.text().await.unwrap();
    let r = post_form(
        &b,
        &w.gw,
        "/.mfa/verify",
        &[("csrf", csrf(&html).as_str()), ("code", codes[0].as_str())],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/notice", "recovery code accepted");
    // The second key signs in.
    let r = sign_in_with(&w, "admin", &mut second, &w.origin).await;
    assert!(sets_vms_session(&r));
    // MFA is on with a passkey alone; the role counts passkeys only, so the app's set-up is
    // neither offered nor taken.
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(html.contains("MFA is on for your account."), "{html}");
    assert!(html.contains("<dd>authenticator app: no; passkeys: 1</dd>"));
    assert!(!html.contains("/.mfa/account/set-up"), "{html}");
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/set-up",
        &[("csrf", csrf(&html).as_str()), ("action", "setup")],
    )
    .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn an_msp_reset_removes_the_passkeys_in_the_same_step() {
    let w = world(PASSKEYS_ONLY).await;
    let c = client(&w.gw);
    login(&c, &w.gw, "admin").await;
    let html = get_text(&c, &w.gw, "/.mfa/passkey").await;
    let mut key = SoftKey::new();
    let answer = key.register(&options(&html).unwrap(), &w.origin);
    let r = post_answer(&c, &w, "/.mfa/passkey", &html, "register", &answer, "Key").await;
    through_recovery_codes(&c, &w.gw, r).await;
    assert_eq!(
        w.gw.gateway().store.passkeys("admin").await.unwrap().len(),
        1
    );
    let api = client(&w.gw);
    let r = api
        .post(url(&w.gw, "/.mfa/admin/api/users/admin/reset"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"reason": "key lost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["was_enrolled"], true, "{v}");
    assert!(
        w.gw.gateway()
            .store
            .passkeys("admin")
            .await
            .unwrap()
            .is_empty()
    );
    let exists: i64 = redis_query(w._redis.port, &["EXISTS", "t:{u:admin}:pk"])
        .await
        .unwrap();
    assert_eq!(exists, 0);
    assert!(audit_has(&w, "reset", "admin").await);
    // A set-up begun before the reset (at the epoch of then) writes nothing after it.
    let store = &w.gw.gateway().store;
    let late = mfa_gateway::store::StoredPasskey {
        id: "late".into(),
        name: "attacker's key".into(),
        added: 1,
        last_used: 0,
        counter: 0,
        key: "{}".into(),
    };
    let before_reset = store.user("admin").await.unwrap().epoch - 1;
    assert_eq!(
        store
            .add_passkey("admin", &late, before_reset, None)
            .await
            .unwrap(),
        mfa_gateway::store::AddPasskey::Revoked
    );
    assert!(store.passkeys("admin").await.unwrap().is_empty());
    // The next sign-in sets a passkey up again.
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "admin").await;
    assert_eq!(location(&r), "/.mfa/passkey");
}

/// A policy with MFA optional for administrators and customers and required for MSP users,
/// administrators and MSP users counting the app and passkeys, customers the app only.
const OPTIONAL: &str = r#"
timezone = "Europe/Amsterdam"
roles = ["administrator", "msp", "customer", "supplier", "contractor", "resource"]
recovery_codes = true

[[phase]]
from = 2021-11-01
name = "passkeys beside the app"
[phase.roles]
administrator = "available"
msp = "enforced"
customer = "available"
supplier = "none"
contractor = "none"
resource = "none"
[phase.methods]
administrator = ["totp", "webauthn"]
msp = ["totp", "webauthn"]
"#;

/// A day of [`OPTIONAL`].
const OPTIONAL_DAY: &str = "2021-12-01T09:00:00Z";

/// The admin API's status of `user`.
async fn api_status(w: &PkWorld, user: &str) -> serde_json::Value {
    let r = client(&w.gw)
        .get(url(&w.gw, &format!("/.mfa/admin/api/users/{user}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Signs `user` in, declining the offer of MFA: a client with a session and no MFA.
async fn signed_in_declining(w: &PkWorld, user: &str) -> reqwest::Client {
    let c = client(&w.gw);
    let r = login(&c, &w.gw, user).await;
    assert_eq!(location(&r), "/.mfa/offer");
    let html = get_text(&c, &w.gw, "/.mfa/offer").await;
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
    )
    .await;
    assert!(sets_vms_session(&r));
    c
}

/// Signs `user` in, accepting the offer of MFA and setting up the app: the app's secret.
async fn opted_in(w: &PkWorld, c: &reqwest::Client, user: &str) -> Vec<u8> {
    let r = login(c, &w.gw, user).await;
    assert_eq!(location(&r), "/.mfa/offer");
    let html = get_text(c, &w.gw, "/.mfa/offer").await;
    let r = post_form(
        c,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "setup")],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/enroll");
    let html = get_text(c, &w.gw, "/.mfa/enroll").await;
    let secret = pairing_secret(&html);
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_form(
        c,
        &w.gw,
        "/.mfa/enroll",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    let r = through_recovery_codes(c, &w.gw, r).await;
    assert!(sets_vms_session(&r));
    secret
}

#[tokio::test]
async fn turning_mfa_off_removes_the_app_and_every_passkey_in_one_step() {
    let w = world_with(OPTIONAL_DAY, OPTIONAL).await;
    let c = client(&w.gw);
    let secret = opted_in(&w, &c, "admin").await;
    let mut one = SoftKey::new();
    let mut two = SoftKey::new();
    add_on_account_page(&c, &w, &mut one, "YubiKey").await;
    // Listed oldest first.
    w.gw.clock.advance(60);
    add_on_account_page(&c, &w, &mut two, "Laptop").await;
    // Passkeys beside the app are methods added, not MFA turned on.
    assert!(
        w.gw.gateway()
            .metrics
            .render()
            .contains("mfa_gateway_mfa_events_total{event=\"enrolled\"} 1\n")
    );
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(
        html.contains("<dd>authenticator app: yes; passkeys: 2</dd>"),
        "{html}"
    );
    // The confirmation says the passkeys go too.
    let section = html.split("id=\"h-disable\"").nth(1).expect("turn off");
    assert!(
        section.contains("Your 2 passkeys are removed as well."),
        "{section}"
    );
    let nl = c
        .get(url(&w.gw, "/.mfa/account"))
        .header("accept-language", "nl")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(nl.contains("Je 2 passkeys worden ook verwijderd."), "{nl}");
    // The admin API lists them: name, added, last used; nothing of the key.
    let v = api_status(&w, "admin").await;
    assert_eq!(
        (&v["enrolled"], &v["app"]),
        (&true.into(), &true.into()),
        "{v}"
    );
    let listed = v["passkeys"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["name"], "YubiKey");
    assert!(listed[0]["added"].as_u64().unwrap() > 0);
    assert!(listed[0]["last_used"].is_null());
    let mut keys: Vec<&String> = listed[0].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["added", "last_used", "name"]);

    w.gw.clock.advance(30);
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/disable",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=disabled");
    let store = &w.gw.gateway().store;
    assert!(!store.user("admin").await.unwrap().enrolled());
    assert!(store.passkeys("admin").await.unwrap().is_empty());
    let exists: i64 = redis_query(w._redis.port, &["EXISTS", "t:{u:admin}:pk"])
        .await
        .unwrap();
    assert_eq!(exists, 0);
    assert!(audit_has(&w, "self_mfa_disabled", "app=1 passkeys=2").await);
    let v = api_status(&w, "admin").await;
    assert_eq!(
        (&v["enrolled"], &v["app"]),
        (&false.into(), &false.into()),
        "{v}"
    );
    assert_eq!(v["passkeys"], serde_json::json!([]));
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(html.contains("MFA is off for your account."), "{html}");
    // Neither signs in any more: MFA is only offered again.
    let r = login(&client(&w.gw), &w.gw, "admin").await;
    assert_eq!(location(&r), "/.mfa/offer");
}

#[tokio::test]
async fn a_user_with_passkeys_only_has_mfa_everywhere_it_is_shown_or_decided() {
    let w = world_with(OPTIONAL_DAY, OPTIONAL).await;
    // Opted in with a passkey only: no app.
    let c = signed_in_declining(&w, "admin").await;
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(html.contains("MFA is off for your account."), "{html}");
    let mut key = SoftKey::new();
    add_on_account_page(&c, &w, &mut key, "Phone").await;
    // A first method: MFA turned on, counted as such.
    assert!(
        w.gw.gateway()
            .metrics
            .render()
            .contains("mfa_gateway_mfa_events_total{event=\"enrolled\"} 1\n")
    );
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(html.contains("MFA is on for your account."), "{html}");
    assert!(html.contains("<dd>authenticator app: no; passkeys: 1</dd>"));
    assert!(html.contains("Add an authenticator app"));
    assert!(!html.contains("Turn on MFA"));
    let v = api_status(&w, "admin").await;
    assert_eq!(
        (&v["enrolled"], &v["app"]),
        (&true.into(), &false.into()),
        "{v}"
    );
    assert_eq!(v["passkeys"][0]["name"], "Phone");
    // The next sign-in asks for the passkey (not the offer), and its use shows.
    let r = sign_in_with(&w, "admin", &mut key, &w.origin).await;
    assert!(sets_vms_session(&r));
    let v = api_status(&w, "admin").await;
    assert!(v["passkeys"][0]["last_used"].as_u64().unwrap() > 0, "{v}");

    // Customers' passkeys do not count (their methods are the app's codes): one who has a
    // passkey anyway (set up while they counted) is asked to set up the app, not offered MFA
    // as if it were off, and may put it off (MFA is optional for the role).
    let c = signed_in_declining(&w, "customer").await;
    drop(c);
    let store = &w.gw.gateway().store;
    let old = mfa_gateway::store::StoredPasskey {
        id: "old-key".into(),
        name: "Old key".into(),
        added: 1,
        last_used: 0,
        counter: 0,
        key: "{}".into(),
    };
    let epoch = store.user("customer").await.unwrap().epoch;
    assert_eq!(
        store
            .add_passkey("customer", &old, epoch, None)
            .await
            .unwrap(),
        mfa_gateway::store::AddPasskey::Added
    );
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "customer").await;
    assert_eq!(location(&r), "/.mfa/enroll");
    let html = get_text(&c, &w.gw, "/.mfa/enroll").await;
    assert!(html.contains("value=\"postpone\""), "{html}");
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/enroll",
        &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
    )
    .await;
    assert!(sets_vms_session(&r));
    assert_eq!(
        api_status(&w, "customer").await["enrolled"],
        true,
        "the passkey makes MFA on"
    );
}

#[tokio::test]
async fn where_mfa_is_enforced_it_cannot_be_turned_off_and_the_passkeys_stay() {
    let w = world_with(OPTIONAL_DAY, OPTIONAL).await;
    let c = client(&w.gw);
    let secret = enroll(&c, &w.gw, "msp").await;
    let mut key = SoftKey::new();
    add_on_account_page(&c, &w, &mut key, "Key").await;
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(!html.contains("/.mfa/account/disable"), "{html}");
    w.gw.clock.advance(30);
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/disable",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(r.status(), 403);
    let store = &w.gw.gateway().store;
    assert!(store.user("msp").await.unwrap().enrolled());
    assert_eq!(store.passkeys("msp").await.unwrap().len(), 1);
    assert!(!audit_has(&w, "self_mfa_disabled", "msp").await);
    // Nor does removing a passkey leave the role with no method: with the app there, the
    // passkey may go; then the app is the one left.
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/passkey/remove",
        &[("csrf", csrf(&html).as_str()), ("passkey", &key.id())],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=passkey-removed");
    assert!(store.user("msp").await.unwrap().enrolled());
}

/// Opens the confirmation of an account change (`path`, its form's `action`) of a user
/// without the app: the page with the passkey ceremony.
async fn confirm_page(c: &reqwest::Client, w: &PkWorld, path: &str, action: &str) -> String {
    let html = get_text(c, &w.gw, "/.mfa/account").await;
    let r = post_form(
        c,
        &w.gw,
        path,
        &[("csrf", csrf(&html).as_str()), ("action", action)],
    )
    .await;
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// Signs in with a recovery code (a user without the app): whether it was accepted.
async fn recovery_sign_in(w: &PkWorld, user: &str, code: &str) -> bool {
    let c = client(&w.gw);
    let r = login(&c, &w.gw, user).await;
    assert_eq!(location(&r), "/.mfa/verify");
    let html = get_text(&c, &w.gw, "/.mfa/verify").await;
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/verify",
        &[("csrf", csrf(&html).as_str()), ("code", code)],
    )
    .await;
    location(&r) == "/.mfa/notice"
}

#[tokio::test]
async fn a_passkey_only_user_makes_new_recovery_codes_with_a_passkey() {
    let w = world_with(OPTIONAL_DAY, OPTIONAL).await;
    let c = signed_in_declining(&w, "admin").await;
    let mut key = SoftKey::new();
    add_on_account_page(&c, &w, &mut key, "Phone").await;
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    let section = html
        .split("id=\"h-new-recovery-codes\"")
        .nth(1)
        .expect("recovery");
    assert!(
        section.contains("You confirm this with one of your passkeys; that needs JavaScript"),
        "{section}"
    );
    assert!(!html.contains("code-new-recovery-codes"), "no code field");
    let nl = c
        .get(url(&w.gw, "/.mfa/account"))
        .header("accept-language", "nl")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        nl.contains("Je bevestigt dit met een van je passkeys"),
        "{nl}"
    );

    // The confirmation page: the ceremony, and without JavaScript why it is needed.
    let page = confirm_page(&c, &w, "/.mfa/account/recovery-codes", "new-recovery-codes").await;
    assert!(
        page.contains("<h1>Confirm with your passkey</h1>"),
        "{page}"
    );
    assert!(page.contains("<noscript><p class=\"alert\">A passkey needs JavaScript"));
    assert!(page.contains("data-ceremony=\"get\""));
    let answer = key.sign(&options(&page).unwrap(), &w.origin);
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/recovery-codes",
        &page,
        "passkey",
        &answer,
        "",
    )
    .await;
    assert_eq!(r.status(), 200);
    let first = recovery_codes(&r.text().await.unwrap());
    assert_eq!(first.len(), 10);
    let store = &w.gw.gateway().store;
    let issued = store.user("admin").await.unwrap().recovery;

    // The same answer again: its ceremony was taken.
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/recovery-codes",
        &page,
        "passkey",
        &answer,
        "",
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("not accepted"));
    assert!(audit_has(&w, "passkey_refused", "reason=no_ceremony").await);
    // Nor does it answer a new ceremony.
    let page = confirm_page(&c, &w, "/.mfa/account/recovery-codes", "new-recovery-codes").await;
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/recovery-codes",
        &page,
        "passkey",
        &answer,
        "",
    )
    .await;
    assert_eq!(r.status(), 403, "a replayed answer");
    // A key that is not the user's.
    let page = confirm_page(&c, &w, "/.mfa/account/recovery-codes", "new-recovery-codes").await;
    let answer = SoftKey::new().sign(&options(&page).unwrap(), &w.origin);
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/recovery-codes",
        &page,
        "passkey",
        &answer,
        "",
    )
    .await;
    assert_eq!(r.status(), 403, "a stranger's key");
    // Another user's registered passkey.
    let m = client(&w.gw);
    enroll(&m, &w.gw, "msp").await;
    let mut theirs = SoftKey::new();
    add_on_account_page(&m, &w, &mut theirs, "Theirs").await;
    let page = confirm_page(&c, &w, "/.mfa/account/recovery-codes", "new-recovery-codes").await;
    let answer = theirs.sign(&options(&page).unwrap(), &w.origin);
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/recovery-codes",
        &page,
        "passkey",
        &answer,
        "",
    )
    .await;
    assert_eq!(r.status(), 403, "another user's passkey");
    // The answer to the ceremony of turning MFA off confirms only that.
    let page = confirm_page(&c, &w, "/.mfa/account/disable", "disable").await;
    let answer = key.sign(&options(&page).unwrap(), &w.origin);
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/recovery-codes",
        &page,
        "passkey",
        &answer,
        "",
    )
    .await;
    assert_eq!(r.status(), 403, "another change's ceremony");
    assert_eq!(store.user("admin").await.unwrap().recovery, issued);
    assert_eq!(store.passkeys("admin").await.unwrap().len(), 1);

    // New codes again: the first ones stop working, the new ones sign in.
    let page = confirm_page(&c, &w, "/.mfa/account/recovery-codes", "new-recovery-codes").await;
    let answer = key.sign(&options(&page).unwrap(), &w.origin);
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/recovery-codes",
        &page,
        "passkey",
        &answer,
        "",
    )
    .await;
    assert_eq!(r.status(), 200);
    let second = recovery_codes(&r.text().await.unwrap());
    assert_eq!(second.len(), 10);
    assert!(audit_has(&w, "recovery_codes_issued", "count=10").await);
    assert!(
        !recovery_sign_in(&w, "admin", &first[0]).await,
        "an old code"
    );
    assert!(
        recovery_sign_in(&w, "admin", &second[0]).await,
        "a new code"
    );
}

#[tokio::test]
async fn a_passkey_only_user_turns_mfa_off_with_a_passkey_where_it_is_optional() {
    let w = world_with(OPTIONAL_DAY, OPTIONAL).await;
    let c = signed_in_declining(&w, "admin").await;
    let mut key = SoftKey::new();
    add_on_account_page(&c, &w, &mut key, "Phone").await;
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    // Removing the only factor would be MFA off without a confirmation: the Redis step keeps it.
    let id = w.gw.gateway().store.passkeys("admin").await.unwrap()[0]
        .id
        .clone();
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/passkey/remove",
        &[("csrf", csrf(&html).as_str()), ("passkey", &id)],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=passkey-last");
    assert_eq!(
        w.gw.gateway().store.passkeys("admin").await.unwrap().len(),
        1
    );
    let section = html.split("id=\"h-disable\"").nth(1).expect("turn off");
    assert!(
        section.contains("Your passkey is removed as well."),
        "{section}"
    );
    let page = confirm_page(&c, &w, "/.mfa/account/disable", "disable").await;
    assert!(
        page.contains("To turn off MFA, confirm with one of your passkeys."),
        "{page}"
    );
    // A wrong key first: nothing changes.
    let answer = SoftKey::new().sign(&options(&page).unwrap(), &w.origin);
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/disable",
        &page,
        "passkey",
        &answer,
        "",
    )
    .await;
    assert_eq!(r.status(), 403);
    let store = &w.gw.gateway().store;
    assert_eq!(store.passkeys("admin").await.unwrap().len(), 1);
    let page = r.text().await.unwrap();
    let answer = key.sign(&options(&page).unwrap(), &w.origin);
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/disable",
        &page,
        "passkey",
        &answer,
        "",
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=disabled");
    assert!(store.passkeys("admin").await.unwrap().is_empty());
    assert!(store.user("admin").await.unwrap().recovery.is_empty());
    assert!(
        audit_has(
            &w,
            "self_mfa_disabled",
            "app=0 passkeys=1 confirmed=passkey"
        )
        .await
    );
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(html.contains("MFA is off for your account."), "{html}");
    // The password alone signs in (the offer was put off before).
    let r = login(&client(&w.gw), &w.gw, "admin").await;
    assert!(sets_vms_session(&r), "{}", location(&r));
}

#[tokio::test]
async fn where_mfa_is_enforced_a_passkey_does_not_turn_it_off() {
    let w = world(PASSKEYS_ONLY).await;
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "admin").await;
    assert_eq!(location(&r), "/.mfa/passkey");
    let html = get_text(&c, &w.gw, "/.mfa/passkey").await;
    let mut key = SoftKey::new();
    let answer = key.register(&options(&html).unwrap(), &w.origin);
    let r = post_answer(&c, &w, "/.mfa/passkey", &html, "register", &answer, "").await;
    let r = through_recovery_codes(&c, &w.gw, r).await;
    assert!(sets_vms_session(&r));
    let html = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(!html.contains("/.mfa/account/disable"), "{html}");
    assert!(html.contains("/.mfa/account/recovery-codes"), "{html}");
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/disable",
        &[("csrf", csrf(&html).as_str()), ("action", "disable")],
    )
    .await;
    assert_eq!(r.status(), 403);
    // Nor with an answer (to a ceremony that exists).
    let page = confirm_page(&c, &w, "/.mfa/account/recovery-codes", "new-recovery-codes").await;
    let answer = key.sign(&options(&page).unwrap(), &w.origin);
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/disable",
        &page,
        "passkey",
        &answer,
        "",
    )
    .await;
    assert_eq!(r.status(), 403);
    let store = &w.gw.gateway().store;
    assert_eq!(store.passkeys("admin").await.unwrap().len(), 1);
    assert!(!store.user("admin").await.unwrap().recovery.is_empty());
    assert!(!audit_has(&w, "self_mfa_disabled", "admin").await);
}

/// Starts a gateway from `text` (policy: [`policy`]) on `listener`: the start-up error, if any.
async fn try_start(text: &str, listener: tokio::net::TcpListener) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), policy()).unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    let cfg =
        mfa_gateway::config::Config::from_toml(text, &path, mfa_gateway::config::Mode::Production)
            .map_err(|e| e.to_string())?;
    let opts = mfa_gateway::run::Options {
        clock: Clock::manual(at(BOTH)),
        https_listener: Some(listener),
        ..mfa_gateway::run::Options::default()
    };
    match mfa_gateway::run::start(cfg, opts).await {
        Ok(running) => {
            running.shutdown().await;
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn start_up_refuses_an_origin_the_gateway_is_not() {
    let redis = RedisProc::start();
    let c = certs();
    let vms: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let config = |webauthn: &str| config_text(&c, vms, &redis.url(), DEMO_VMS, webauthn);
    let bind = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };

    // Right: the certificate's name and the listener's port.
    let l = bind().await;
    let port = l.local_addr().unwrap().port();
    try_start(
        &config(&format!(
            "[webauthn]\norigin = \"https://localhost:{port}\"\n"
        )),
        l,
    )
    .await
    .unwrap();
    // Another port than the listener's (and server.public_port).
    let l = bind().await;
    let other = l.local_addr().unwrap().port().wrapping_add(1);
    let e = try_start(
        &config(&format!(
            "[webauthn]\norigin = \"https://localhost:{other}\"\n"
        )),
        l,
    )
    .await
    .unwrap_err();
    assert!(
        e.contains(&format!(
            "names port {other}, but the gateway listens on port"
        )),
        "{e}"
    );
    // The port users reach through a port mapping, named as server.public_port, is right.
    let l = bind().await;
    let text = config("[webauthn]\norigin = \"https://localhost\"\n").replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\npublic_port = 443",
    );
    try_start(&text, l).await.unwrap();
    // A name the certificate does not cover.
    let l = bind().await;
    let port = l.local_addr().unwrap().port();
    let e = try_start(
        &config(&format!(
            "[webauthn]\norigin = \"https://vms.example.org:{port}\"\n"
        )),
        l,
    )
    .await
    .unwrap_err();
    assert!(e.contains("does not cover \"vms.example.org\""), "{e}");
    // A policy that counts passkeys, and no [webauthn].
    let e = try_start(&config(""), bind().await).await.unwrap_err();
    assert!(e.contains("the policy counts passkeys"), "{e}");
}

/// After an MSP reset with an enrollment code, a passkey-only role sets its passkey up only
/// after the code (`reset_code` covers the app's pairing).
#[tokio::test]
async fn after_a_reset_the_passkey_set_up_waits_for_the_enrollment_code() {
    let w = world(PASSKEYS_ONLY).await;
    let c = client(&w.gw);
    login(&c, &w.gw, "admin").await;
    let html = get_text(&c, &w.gw, "/.mfa/passkey").await;
    let mut key = SoftKey::new();
    let answer = key.register(&options(&html).unwrap(), &w.origin);
    let r = post_answer(&c, &w, "/.mfa/passkey", &html, "register", &answer, "Key").await;
    through_recovery_codes(&c, &w.gw, r).await;
    let r = client(&w.gw)
        .post(url(&w.gw, "/.mfa/admin/api/users/admin/reset"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"reason": "key lost"}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let code = v["enrollment_code"].as_str().unwrap().to_string();

    // With the password only: no creation options, only the code page.
    let thief = client(&w.gw);
    assert_eq!(
        location(&login(&thief, &w.gw, "admin").await),
        "/.mfa/passkey"
    );
    let r = thief.get(url(&w.gw, "/.mfa/passkey")).send().await.unwrap();
    assert_eq!(location(&r), "/.mfa/enrollment-code");
    let html = get_text(&thief, &w.gw, "/.mfa/enrollment-code").await;
    assert!(options(&html).is_none(), "{html}");
    // Nor does the store add one without the code, whatever the ceremony.
    let store = &w.gw.gateway().store;
    let epoch = store.user("admin").await.unwrap().epoch;
    let thiefs = mfa_gateway::store::StoredPasskey {
        id: "thief".into(),
        name: "attacker's key".into(),
        added: 1,
        last_used: 0,
        counter: 0,
        key: "{}".into(),
    };
    assert_eq!(
        store
            .add_passkey("admin", &thiefs, epoch, None)
            .await
            .unwrap(),
        mfa_gateway::store::AddPasskey::CodeRequired
    );

    // The owner types the code, then sets a new passkey up and is in.
    let owner = client(&w.gw);
    assert_eq!(
        location(&login(&owner, &w.gw, "admin").await),
        "/.mfa/passkey"
    );
    let r = owner.get(url(&w.gw, "/.mfa/passkey")).send().await.unwrap();
    assert_eq!(location(&r), "/.mfa/enrollment-code");
    let r = post_code(&owner, &w.gw, "/.mfa/enrollment-code", &code).await;
    assert_eq!(location(&r), "/.mfa/passkey");
    let html = get_text(&owner, &w.gw, "/.mfa/passkey").await;
    let mut new_key = SoftKey::new();
    let answer = new_key.register(&options(&html).expect("creation options"), &w.origin);
    let r = post_answer(
        &owner,
        &w,
        "/.mfa/passkey",
        &html,
        "register",
        &answer,
        "New",
    )
    .await;
    let r = through_recovery_codes(&owner, &w.gw, r).await;
    assert_eq!(r.status(), 302, "signed in with the new passkey set up");
    assert!(sets_vms_session(&r));
    assert_eq!(store.passkeys("admin").await.unwrap().len(), 1);
    assert!(
        !store
            .user("admin")
            .await
            .unwrap()
            .enrollment_code_required()
    );
    assert!(audit_has(&w, "enrollment_code_accepted", "admin").await);
}

/// A session left open (a shared computer) cannot add a lasting factor: a user who has MFA
/// adds a passkey only within a quarter of an hour of a sign-in with MFA, whatever the page
/// or post says; a new sign-in allows it again.
#[tokio::test]
async fn a_factor_is_added_only_soon_after_a_sign_in() {
    let w = world_with(OPTIONAL_DAY, OPTIONAL).await;
    let c = client(&w.gw);
    let secret = opted_in(&w, &c, "admin").await;
    let mut key = SoftKey::new();
    // Within the quarter of an hour: fine. The add page, shown now, is kept for later.
    let page = get_text(&c, &w.gw, "/.mfa/account/passkey").await;
    w.gw.clock.advance(16 * 60);
    let r = c
        .get(url(&w.gw, "/.mfa/account/passkey"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/.mfa/account?done=sign-in-again");
    let answer = key.register(&options(&page).expect("creation options"), &w.origin);
    let r = post_answer(
        &c,
        &w,
        "/.mfa/account/passkey",
        &page,
        "register",
        &answer,
        "Left open",
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=sign-in-again");
    assert!(
        w.gw.gateway()
            .store
            .passkeys("admin")
            .await
            .unwrap()
            .is_empty()
    );
    let html = get_text(&c, &w.gw, "/.mfa/account?done=sign-in-again").await;
    assert!(html.contains("sign out and sign in again first"), "{html}");
    // A new sign-in with the app's code: the passkey can be added.
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "admin").await;
    assert_eq!(location(&r), "/.mfa/verify");
    let r = post_code(
        &c,
        &w.gw,
        "/.mfa/verify",
        &totp::code_at(&secret, w.gw.clock.unix()),
    )
    .await;
    assert!(sets_vms_session(&r));
    add_on_account_page(&c, &w, &mut key, "Fresh").await;
    assert_eq!(
        w.gw.gateway().store.passkeys("admin").await.unwrap().len(),
        1
    );
}

/// The add step's refusals on Redis (the Lua, not the memory store's mirror): the same
/// credential twice, and one more than a user may have; a key that keeps no counter (0) is
/// used again and again.
#[tokio::test]
async fn adding_a_duplicate_or_one_passkey_too_many_is_refused_on_redis() {
    use mfa_gateway::store::{AddPasskey, MAX_PASSKEYS, StoredPasskey, UsePasskey};
    let w = world(BOTH).await;
    let store = &w.gw.gateway().store;
    let pk = |id: &str| StoredPasskey {
        id: id.into(),
        name: format!("Key {id}"),
        added: 1,
        last_used: 0,
        counter: 0,
        key: "{}".into(),
    };
    let epoch = store.user("zoe").await.unwrap().epoch;
    assert_eq!(
        store
            .add_passkey("zoe", &pk("a"), epoch, None)
            .await
            .unwrap(),
        AddPasskey::Added
    );
    assert_eq!(
        store
            .add_passkey("zoe", &pk("a"), epoch, None)
            .await
            .unwrap(),
        AddPasskey::Duplicate
    );
    for i in 1..MAX_PASSKEYS {
        let id = format!("k{i}");
        assert_eq!(
            store
                .add_passkey("zoe", &pk(&id), epoch, None)
                .await
                .unwrap(),
            AddPasskey::Added,
            "{id}"
        );
    }
    assert_eq!(
        store
            .add_passkey("zoe", &pk("one-more"), epoch, None)
            .await
            .unwrap(),
        AddPasskey::Full
    );
    assert_eq!(store.passkeys("zoe").await.unwrap().len(), MAX_PASSKEYS);
    for _ in 0..2 {
        assert_eq!(
            store.use_passkey("zoe", "a", 0, "{}", 5).await.unwrap(),
            UsePasskey::Used,
            "a key without a counter"
        );
    }
}
