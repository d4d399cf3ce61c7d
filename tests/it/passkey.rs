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
    let redis = RedisProc::start();
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), policy()).unwrap();
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
async fn post_answer(
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
            .add_passkey("admin", &late, before_reset)
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
