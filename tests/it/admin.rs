//! MSP administration, self-service, recovery codes and the audit trail, end to end.

use std::time::Duration;

use mfa_gateway::auth::totp;

use crate::mfa_flow::{World, enroll, world};
use crate::support::browser::*;
use crate::support::*;

pub const TOKEN: &str = "test-api-token-0123456789";

pub fn token_section() -> String {
    let hash: String = mfa_gateway::auth::crypto::sha256(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("[admin]\ntokens = [{{ name = \"servicedesk\", sha256 = \"{hash}\" }}]\n")
}

/// A world whose config also carries an API token.
pub async fn admin_world(date: &str, mfa_extra: &str) -> World {
    let w = world(date, mfa_extra).await;
    // Restart the gateway with the token added (same Redis, same VMS, same key).
    let text = format!("{}\n{}", w.text, token_section());
    let mut w = w;
    w.gw.stop().await;
    let gw = start_gateway(
        &w.gw.dir.clone(),
        &text,
        &w.gw.ca_pem.clone(),
        w.gw.clock.clone(),
    )
    .await;
    w.gw = gw;
    w.text = text;
    w
}

pub async fn page(c: &reqwest::Client, gw: &Gw, path: &str) -> (u16, String) {
    let r = c.get(url(gw, path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Signs in with MFA (the user must be enrolled with `secret`).
async fn sign_in(gw: &Gw, user: &str, secret: &[u8]) -> reqwest::Client {
    let c = client(gw);
    let r = login(&c, gw, user).await;
    assert_eq!(location(&r), "/.mfa/verify", "{user}");
    gw.clock.advance(30);
    let r = post_code(
        &c,
        gw,
        "/.mfa/verify",
        &totp::code_at(secret, gw.clock.unix()),
    )
    .await;
    assert_eq!(r.status(), 302, "{user} signed in");
    c
}

#[tokio::test]
async fn msp_resets_a_lost_phone_and_the_sessions_end_everywhere() {
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let customer = client(&w.gw);
    let customer_secret = enroll(&customer, &w, "customer").await;
    assert_eq!(get_status(&customer, &w.gw, "/api/me").await, 200);
    let msp = client(&w.gw);
    enroll(&msp, &w, "msp").await;

    // A second instance, where the customer is also signed in (the same cookies).
    let dir2 = tempfile::tempdir().unwrap();
    let gw2 = start_gateway(dir2.path(), &w.text, &w.gw.ca_pem, w.gw.clock.clone()).await;
    let c_b = client_for(gw2.addr, &w.gw.ca_pem, false);
    let r = login(&c_b, &gw2, "customer").await;
    assert_eq!(location(&r), "/.mfa/verify");

    // The MSP finds the customer and disconnects MFA.
    let (status, html) = page(&msp, &w.gw, "/.mfa/admin/?q=cust").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("customer"));
    let (status, html) = page(&msp, &w.gw, "/.mfa/admin/user?u=customer").await;
    assert_eq!(status, 200);
    let token = csrf(&html);
    // Without a reason or confirmation nothing happens.
    let r = post_form(
        &msp,
        &w.gw,
        "/.mfa/admin/reset",
        &[
            ("csrf", token.as_str()),
            ("user", "customer"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post_form(
        &msp,
        &w.gw,
        "/.mfa/admin/reset",
        &[
            ("csrf", token.as_str()),
            ("user", "customer"),
            ("reason", "lost phone <on> the train"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    // The form comes back with the reason as typed (escaped): only the confirmation is left.
    let html = r.text().await.unwrap();
    assert!(
        html.contains(">lost phone &lt;on&gt; the train</textarea>"),
        "{html}"
    );
    assert_eq!(get_status(&customer, &w.gw, "/api/me").await, 200);
    let r = post_form(
        &msp,
        &w.gw,
        "/.mfa/admin/reset",
        &[
            ("csrf", token.as_str()),
            ("user", "customer"),
            ("reason", "lost phone, ticket 4711"),
            ("confirm", "yes"),
        ],
    )
    .await;
    // The answer itself shows the one-time enrollment code to read to the customer.
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Enrollment code for"), "{html}");
    // The customer's open session stops working at once.
    assert_eq!(get_status(&customer, &w.gw, "/api/me").await, 401);
    // The next login asks for enrollment again, with no way to postpone.
    let again = client(&w.gw);
    assert_eq!(
        location(&login(&again, &w.gw, "customer").await),
        "/.mfa/enroll"
    );
    // A challenge opened on instance B before the reset no longer completes.
    w.gw.clock.advance(30);
    let r = post_code(
        &c_b,
        &gw2,
        "/.mfa/verify",
        &totp::code_at(&customer_secret, w.gw.clock.unix()),
    )
    .await;
    assert_eq!(r.status(), 403, "challenge of a reset user ends");
    assert!(!sets_vms_session(&r));
    let (_, html) = page(&msp, &w.gw, "/.mfa/admin/user?u=customer").await;
    assert!(
        html.contains("lost phone, ticket 4711"),
        "the reset is in the user's recent events"
    );
}

#[tokio::test]
async fn reset_reaches_a_second_instance_within_seconds() {
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let msp = client(&w.gw);
    enroll(&msp, &w, "msp").await;
    let dir2 = tempfile::tempdir().unwrap();
    let gw2 = start_gateway(dir2.path(), &w.text, &w.gw.ca_pem, w.gw.clock.clone()).await;
    // The customer signs in on instance B.
    let c_b = client_for(gw2.addr, &w.gw.ca_pem, false);
    let r = login(&c_b, &gw2, "customer").await;
    assert_eq!(location(&r), "/.mfa/enroll");
    let html = get_text(&c_b, &gw2, "/.mfa/enroll").await;
    let secret = pairing_secret(&html);
    let code = totp::code_at(&secret, gw2.clock.unix());
    let r = post_form(
        &c_b,
        &gw2,
        "/.mfa/enroll",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    let r = through_recovery_codes(&c_b, &gw2, r).await;
    assert_eq!(r.status(), 302);
    assert_eq!(get_status(&c_b, &gw2, "/api/me").await, 200);
    // The MSP resets on instance A, through the API this time.
    let api = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(w.gw.ca_pem.as_bytes()).unwrap()])
        .resolve("localhost", w.gw.addr)
        .build()
        .unwrap();
    let r = api
        .post(url(&w.gw, "/.mfa/admin/api/users/customer/reset"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"reason": "phone stolen"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut ended = false;
    for _ in 0..50 {
        if get_status(&c_b, &gw2, "/api/me").await == 401 {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended, "instance B ended the customer's session within 5 s");
}

#[tokio::test]
async fn only_signed_in_admins_with_mfa_reach_the_admin_pages() {
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let customer = client(&w.gw);
    enroll(&customer, &w, "customer").await;
    assert_eq!(
        page(&customer, &w.gw, "/.mfa/admin/").await.0,
        403,
        "customer"
    );
    let supplier = client(&w.gw);
    login(&supplier, &w.gw, "supplier").await;
    assert_eq!(
        page(&supplier, &w.gw, "/.mfa/admin/").await.0,
        403,
        "supplier"
    );
    assert_eq!(
        page(&client(&w.gw), &w.gw, "/.mfa/admin/").await.0,
        403,
        "anonymous"
    );
    let r = post_form(
        &customer,
        &w.gw,
        "/.mfa/admin/reset",
        &[
            ("csrf", "x"),
            ("user", "customer"),
            ("reason", "r"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403);
    // An MSP session approved without MFA (before enforcement) is not enough either.
    w.gw.clock.set(at("2021-12-01T09:00:00Z"));
    let msp = client(&w.gw);
    let r = login(&msp, &w.gw, "msp").await;
    let html = msp
        .get(url(&w.gw, &location(&r)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    post_form(
        &msp,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
    )
    .await;
    assert_eq!(
        page(&msp, &w.gw, "/.mfa/admin/").await.0,
        403,
        "admin needs MFA in this session"
    );
    // The API: no token, a wrong token.
    let api = client(&w.gw);
    let r = api
        .get(url(&w.gw, "/.mfa/admin/api/users/customer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("unauthorized"));
    let r = api
        .get(url(&w.gw, "/.mfa/admin/api/users/customer"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = api
        .get(url(&w.gw, "/.mfa/admin/api/users/customer"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["enrolled"], true);
    assert_eq!(v["role"], "customer");
    assert_eq!(v["recovery_codes_left"], 10);
}

#[tokio::test]
async fn csrf_tokens_are_bound_to_the_admin_session() {
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let customer = client(&w.gw);
    enroll(&customer, &w, "customer").await;
    let admin1 = client(&w.gw);
    let secret = enroll(&admin1, &w, "admin").await;
    let admin2 = sign_in(&w.gw, "admin", &secret).await;
    let (_, html1) = page(&admin1, &w.gw, "/.mfa/admin/user?u=customer").await;
    let t1 = csrf(&html1);
    // Session 2 replaying session 1's token, and a forged one: refused, nothing changes.
    for token in [
        t1.as_str(),
        "k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "",
    ] {
        let r = post_form(
            &admin2,
            &w.gw,
            "/.mfa/admin/reset",
            &[
                ("csrf", token),
                ("user", "customer"),
                ("reason", "x"),
                ("confirm", "yes"),
            ],
        )
        .await;
        assert_eq!(r.status(), 403, "token {token:?}");
    }
    assert_eq!(get_status(&customer, &w.gw, "/api/me").await, 200);
}

#[tokio::test]
async fn unlock_recovery_codes_self_service_and_audit_export() {
    let w = admin_world(
        "2022-02-01T09:00:00Z",
        "max_failures = 3\nlock_duration = \"10m\"",
    )
    .await;
    // Enrollment shows ten recovery codes once.
    let customer = client(&w.gw);
    let r = login(&customer, &w.gw, "customer").await;
    assert_eq!(location(&r), "/.mfa/enroll");
    let html = get_text(&customer, &w.gw, "/.mfa/enroll").await;
    let secret = pairing_secret(&html);
    let r = post_form(
        &customer,
        &w.gw,
        "/.mfa/enroll",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", totp::code_at(&secret, w.gw.clock.unix()).as_str()),
        ],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/recovery-codes");
    let html = get_text(&customer, &w.gw, "/.mfa/recovery-codes").await;
    let codes = recovery_codes(&html);
    assert_eq!(codes.len(), 10);
    let r = post_form(
        &customer,
        &w.gw,
        "/.mfa/recovery-codes",
        &[("csrf", csrf(&html).as_str()), ("action", "continue")],
    )
    .await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));

    // A recovery code works once, and the user is told how many remain.
    let c = client(&w.gw);
    login(&c, &w.gw, "customer").await;
    let r = post_code(&c, &w.gw, "/.mfa/verify", &codes[0]).await;
    assert_eq!(location(&r), "/.mfa/notice");
    let html = get_text(&c, &w.gw, "/.mfa/notice").await;
    assert!(html.contains('9'), "nine remain");
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/notice",
        &[("csrf", csrf(&html).as_str()), ("action", "continue")],
    )
    .await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));
    let c = client(&w.gw);
    login(&c, &w.gw, "customer").await;
    let r = post_code(&c, &w.gw, "/.mfa/verify", &codes[0]).await;
    assert_eq!(r.status(), 200, "a used recovery code is refused");
    assert!(!sets_vms_session(&r));
    assert!(
        w.gw.gateway()
            .metrics
            .render()
            .contains("mfa_gateway_mfa_events_total{event=\"recovery_code_used\"} 1\n"),
        "the accepted recovery code is counted once"
    );

    // Lock the customer (two more failures: three in all), then the MSP unlocks.
    assert_eq!(
        post_code(&c, &w.gw, "/.mfa/verify", "000000")
            .await
            .status(),
        200
    );
    assert_eq!(
        post_code(&c, &w.gw, "/.mfa/verify", "000001")
            .await
            .status(),
        429
    );
    let api = client(&w.gw);
    let r = api
        .post(url(&w.gw, "/.mfa/admin/api/users/customer/unlock"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["was_locked"], true);
    w.gw.clock.advance(30);
    let r = post_code(
        &c,
        &w.gw,
        "/.mfa/verify",
        &totp::code_at(&secret, w.gw.clock.unix()),
    )
    .await;
    assert_eq!(r.status(), 302, "unlocked");

    // Self-service: MFA cannot be turned off where it is enforced.
    let (status, html) = page(&c, &w.gw, "/.mfa/account").await;
    assert_eq!(status, 200);
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
    // New recovery codes need a current code and replace the old ones.
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/recovery-codes",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(r.status(), 200);
    let fresh = recovery_codes(&r.text().await.unwrap());
    assert_eq!(fresh.len(), 10);
    let c2 = client(&w.gw);
    login(&c2, &w.gw, "customer").await;
    assert_eq!(
        post_code(&c2, &w.gw, "/.mfa/verify", &codes[1])
            .await
            .status(),
        200,
        "old codes stopped working"
    );
    assert_eq!(
        location(&post_code(&c2, &w.gw, "/.mfa/verify", &fresh[0]).await),
        "/.mfa/notice"
    );

    // Replace the phone: a current code first, then the new app's code.
    w.gw.clock.advance(30);
    let (_, html) = page(&c, &w.gw, "/.mfa/account").await;
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/replace-phone",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", totp::code_at(&secret, w.gw.clock.unix()).as_str()),
        ],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account/enroll");
    let html = get_text(&c, &w.gw, "/.mfa/account/enroll").await;
    let new_secret = pairing_secret(&html);
    assert_ne!(new_secret, secret);
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/enroll",
        &[
            ("csrf", csrf(&html).as_str()),
            (
                "code",
                totp::code_at(&new_secret, w.gw.clock.unix()).as_str(),
            ),
        ],
    )
    .await;
    assert_eq!(r.status(), 200, "new recovery codes shown");
    w.gw.clock.advance(30);
    let c3 = client(&w.gw);
    login(&c3, &w.gw, "customer").await;
    assert_eq!(
        post_code(
            &c3,
            &w.gw,
            "/.mfa/verify",
            &totp::code_at(&secret, w.gw.clock.unix())
        )
        .await
        .status(),
        200,
        "old phone refused"
    );
    assert_eq!(
        post_code(
            &c3,
            &w.gw,
            "/.mfa/verify",
            &totp::code_at(&new_secret, w.gw.clock.unix())
        )
        .await
        .status(),
        302
    );

    // Break-glass command line, then the audit export with the right actors.
    let cfg = w.gw.dir.join("gateway.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
        .arg("admin")
        .arg("--config")
        .arg(&cfg)
        .args(["reset", "customer", "--reason", "break-glass test"])
        .env("USER", "opsperson")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without $USER (a container, a service unit): the effective user's name, not "unknown".
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
        .arg("admin")
        .arg("--config")
        .arg(&cfg)
        .args([
            "reset",
            "customer",
            "--reason",
            "no user in the environment",
        ])
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env_remove("SUDO_USER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
        .args([
            "audit",
            "export",
            "--since",
            "2020-01-01",
            "--format",
            "jsonl",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |event: &str, kind: &str, actor: &str| {
        records.iter().any(|r| {
            r["event"] == event
                && r["actor_kind"] == kind
                && r["actor"] == actor
                && r["user"] == "customer"
        })
    };
    assert!(has("enrolled", "user", "customer"), "{text}");
    assert!(has("recovery_codes_issued", "user", "customer"));
    assert!(has("recovery_code_used", "user", "customer"));
    assert!(has("verify_failure", "user", "customer"));
    assert!(has("locked", "system", "gateway"));
    assert!(has("unlocked", "api", "servicedesk"));
    assert!(has("self_phone_replaced", "user", "customer"));
    assert!(has("reset", "cli", "cli:opsperson"));
    let anonymous_cli = records
        .iter()
        .find(|r| r["reason"] == "no user in the environment")
        .expect("the second command line reset is audited");
    let actor = anonymous_cli["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("cli:") && actor != "cli:unknown" && actor.len() > 4,
        "{actor}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["event"] == "admin_api_call" && r["actor"] == "servicedesk")
    );
    for secret_text in [
        totp::pairing_code(&secret).replace(' ', ""),
        codes[2].replace(' ', ""),
        TOKEN.to_string(),
    ] {
        assert!(
            !text.contains(&secret_text),
            "nothing secret in the audit trail"
        );
    }
    let csv = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
        .args([
            "audit",
            "export",
            "--since",
            "2020-01-01",
            "--user",
            "customer",
            "--format",
            "csv",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.starts_with("at,ts,event,user,actor_kind,actor,reason,client,detail\n"));
    assert!(
        csv.contains(",reset,customer,cli,cli:opsperson,break-glass test,"),
        "{csv}"
    );
}

#[tokio::test]
async fn self_service_may_turn_off_optional_mfa() {
    let w = admin_world("2021-12-01T09:00:00Z", "").await;
    let c = client(&w.gw);
    assert_eq!(location(&login(&c, &w.gw, "msp").await), "/.mfa/offer");
    let html = get_text(&c, &w.gw, "/.mfa/offer").await;
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "setup")],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/enroll");
    let html = get_text(&c, &w.gw, "/.mfa/enroll").await;
    let secret = pairing_secret(&html);
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/enroll",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", totp::code_at(&secret, w.gw.clock.unix()).as_str()),
        ],
    )
    .await;
    let r = through_recovery_codes(&c, &w.gw, r).await;
    assert_eq!(r.status(), 302);
    w.gw.clock.advance(30);
    let (_, html) = page(&c, &w.gw, "/.mfa/account").await;
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/disable",
        &[("csrf", csrf(&html).as_str()), ("code", "999999")],
    )
    .await;
    assert_ne!(r.status(), 303, "a wrong code changes nothing");
    // The error is shown at the form that was sent, which takes the focus.
    let again = r.text().await.unwrap();
    let disable_form = again
        .split("<form ")
        .find(|f| f.contains(r#"action="/.mfa/account/disable""#))
        .unwrap();
    assert!(
        disable_form.contains(r#"id="code-disable-error""#) && disable_form.contains("autofocus"),
        "{again}"
    );
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/account/disable",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", totp::code_at(&secret, w.gw.clock.unix()).as_str()),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let r = login(&client(&w.gw), &w.gw, "msp").await;
    assert_eq!(
        location(&r),
        "/.mfa/offer",
        "no code asked any more: MFA is only offered again"
    );
}

#[tokio::test]
async fn a_reset_never_reopens_a_grace_period() {
    let w = admin_world("2022-01-03T09:00:00Z", "").await;
    let policy = POLICY.replace(
        "# [phase.grace]\n# enroll_by = 2022-01-31\n# postpone_logins = 3",
        "[phase.grace]\npostpone_logins = 3",
    );
    std::fs::write(w.gw.dir.join("policy.toml"), policy).unwrap();
    w.gw.gateway()
        .policy
        .reload(&w.gw.gateway().metrics)
        .unwrap();
    // Grace exists: a first-time user may postpone.
    let c = client(&w.gw);
    login(&c, &w.gw, "customer").await;
    let html = get_text(&c, &w.gw, "/.mfa/enroll").await;
    assert!(html.contains("value=\"postpone\""));
    // The user enrolls, loses the phone, the MSP resets: no postponing any more.
    let c = client(&w.gw);
    enroll(&c, &w, "customer").await;
    let api = client(&w.gw);
    let r = api
        .post(url(&w.gw, "/.mfa/admin/api/users/customer/reset"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"reason": "lost phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c = client(&w.gw);
    assert_eq!(
        location(&login(&c, &w.gw, "customer").await),
        "/.mfa/enroll"
    );
    let html = get_text(&c, &w.gw, "/.mfa/enroll").await;
    assert!(
        !html.contains("value=\"postpone\""),
        "no grace after a reset"
    );
}

/// Runs `mfa-gateway admin --config <the world's config> reseal [extra]`.
fn reseal_cli(w: &World, extra: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"));
    cmd.arg("admin")
        .arg("--config")
        .arg(w.gw.dir.join("gateway.toml"))
        .arg("reseal")
        .args(extra)
        .env("USER", "keyrotator")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = run_bounded(cmd, Duration::from_secs(30));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Restarts the world's gateway with `text` (same directory, Redis, VMS and clock).
async fn restart_with(w: &mut World, text: String) {
    w.gw.stop().await;
    w.gw = start_gateway(
        &w.gw.dir.clone(),
        &text,
        &w.gw.ca_pem.clone(),
        w.gw.clock.clone(),
    )
    .await;
    w.text = text;
}

#[tokio::test]
async fn key_rotation_ends_with_every_secret_resealed_and_the_old_key_removed() {
    let mut w = world("2022-02-01T10:00:00Z", "").await;
    let customer = enroll(&client(&w.gw), &w, "customer").await;
    let msp = enroll(&client(&w.gw), &w, "msp").await;
    let port = w.redis.port;
    let key_id = move |user: &str| {
        let key = format!("t:{{u:{user}}}");
        async move {
            redis_query::<String>(port, &["HGET", &key, "key_id"])
                .await
                .unwrap()
        }
    };
    assert_eq!(key_id("customer").await, "k1");
    let old_keys = w
        .text
        .lines()
        .find(|l| l.starts_with("keys = ["))
        .unwrap()
        .to_string();
    let k1 = old_keys
        .trim_start_matches("keys = [")
        .trim_end_matches(']')
        .to_string();
    let k2 = format!(
        "{{ id = \"k2\", value = \"{}\" }}",
        mfa_gateway::auth::crypto::generate_key_material()
    );

    // Steps 1 and 2 of a rotation: the new key known everywhere, then active. Secrets made
    // before still name k1.
    let rotated = w.text.replace(
        &old_keys,
        &format!("keys = [{k1}, {k2}]\nactive_key = \"k2\""),
    );
    restart_with(&mut w, rotated.clone()).await;
    assert_eq!(key_id("msp").await, "k1");

    // Step 3: a dry run writes nothing; the real run moves both secrets to k2.
    let (ok, out) = reseal_cli(&w, &["--dry-run"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("to reseal from key \"k1\" to \"k2\": 2"),
        "{out}"
    );
    assert_eq!(key_id("customer").await, "k1");
    let (ok, out) = reseal_cli(&w, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("resealed from key \"k1\" to \"k2\": 2"),
        "{out}"
    );
    assert!(
        out.contains("every enrolled secret is now sealed with \"k2\""),
        "{out}"
    );
    assert_eq!(
        (key_id("customer").await, key_id("msp").await),
        ("k2".into(), "k2".into())
    );
    let (ok, out) = reseal_cli(&w, &[]);
    assert!(
        ok && out.contains("already sealed with the active key \"k2\": 2"),
        "{out}"
    );

    // Step 4: k1 removed. Both users still log in with their own phones.
    let only_k2 = w
        .text
        .replace(&format!("keys = [{k1}, {k2}]"), &format!("keys = [{k2}]"));
    restart_with(&mut w, only_k2).await;
    for (user, secret) in [("customer", &customer), ("msp", &msp)] {
        let c = client(&w.gw);
        login_with_code(&c, &w.gw, user, secret).await;
    }

    // A ring that opens nothing: the secrets are listed, left as they are, and the exit
    // status says so.
    let stranger = format!(
        "{{ id = \"k3\", value = \"{}\" }}",
        mfa_gateway::auth::crypto::generate_key_material()
    );
    let foreign = w.text.replace(
        &format!("keys = [{k2}]\nactive_key = \"k2\""),
        &format!("keys = [{stranger}]\nactive_key = \"k3\""),
    );
    std::fs::write(w.gw.dir.join("gateway.toml"), &foreign).unwrap();
    let (ok, out) = reseal_cli(&w, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("could not open (left as they are): 2"),
        "{out}"
    );
    assert!(out.contains("customer:") && out.contains("\"k2\""), "{out}");
    assert_eq!(key_id("customer").await, "k2");
    std::fs::write(w.gw.dir.join("gateway.toml"), &w.text).unwrap();

    // The store's compare-and-set on the real Redis: a secret that is no longer the one read
    // is never overwritten; the index pages in byte order.
    let cfg = mfa_gateway::config::Config::from_toml(
        &w.text,
        &w.gw.dir.join("gateway.toml"),
        mfa_gateway::config::Mode::Production,
    )
    .unwrap();
    let store =
        mfa_gateway::store::Store::Redis(mfa_gateway::store::redis::RedisStore::new(&cfg.redis));
    let stored = store.user("customer").await.unwrap().secret.unwrap();
    assert!(
        !store
            .reseal_secret("customer", b"what was read before", b"other", "k9")
            .await
            .unwrap()
    );
    assert_eq!(store.user("customer").await.unwrap().secret, Some(stored));
    assert_eq!(key_id("customer").await, "k2");
    assert_eq!(
        store.users_after("", 10).await.unwrap(),
        vec!["customer".to_string(), "msp".to_string()]
    );
    assert_eq!(
        store.users_after("customer", 10).await.unwrap(),
        vec!["msp".to_string()]
    );

    // The audit trail names who resealed what.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
        .args(["audit", "export", "--since", "2020-01-01", "--config"])
        .arg(w.gw.dir.join("gateway.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let reseals: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["event"] == "secrets_resealed")
        .collect();
    assert_eq!(reseals.len(), 3, "{text}");
    assert_eq!(reseals[0]["actor"], "cli:keyrotator");
    assert_eq!(
        reseals[0]["detail"],
        "to=k2 resealed=2 from=k1:2 unreadable=0 busy=0 complete=true"
    );
    let pairing: String = totp::pairing_code(&customer)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(!text.contains(&pairing), "no secret in the audit trail");

    // Redis gone: the walk says it stopped and is not complete (the command then exits 1).
    let keys = mfa_gateway::run::key_ring(&cfg, false).unwrap();
    let mut redis = w.redis;
    redis.stop();
    let report = mfa_gateway::admin::reseal::reseal_all(&store, &keys, false).await;
    assert!(report.stopped.is_some() && !report.complete(), "{report:?}");
    assert!(
        report.render("k2", false).contains("stopped early"),
        "{report:?}"
    );
}

const ADMIN_TOKEN: &str = "test-admin-token-9876543210";

/// Finding 8: an MSP may not disconnect (or unlock) an administrator's MFA, nobody may change
/// their own, and API tokens are ranked by their role; every refusal is a 403 and audited.
#[tokio::test]
async fn administrators_are_ranked_and_nobody_resets_themselves() {
    let w = world("2022-02-01T09:00:00Z", "").await;
    let hash = |t: &str| -> String {
        mfa_gateway::auth::crypto::sha256(t.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let text = format!(
        "{}\n[admin]\ntokens = [{{ name = \"servicedesk\", sha256 = \"{}\" }}, {{ name = \"admins\", sha256 = \"{}\", role = \"administrator\" }}]\n",
        w.text,
        hash(TOKEN),
        hash(ADMIN_TOKEN)
    );
    let mut w = w;
    restart_with(&mut w, text).await;
    let msp = client(&w.gw);
    enroll(&msp, &w, "msp").await;
    let admin = client(&w.gw);
    enroll(&admin, &w, "admin").await;
    let customer = client(&w.gw);
    enroll(&customer, &w, "customer").await;

    // The user page shows no forms where they cannot work; the CSRF token (bound to the
    // administrator's session) is taken from the customer's page, and the forms are posted
    // by hand as a hostile administrator would.
    let (_, html) = page(&msp, &w.gw, "/.mfa/admin/user?u=admin").await;
    assert!(!html.contains(r#"action="/.mfa/admin/reset""#), "{html}");
    assert!(html.contains("Your role may not disconnect"), "{html}");
    let (_, html) = page(&admin, &w.gw, "/.mfa/admin/user?u=admin").await;
    assert!(!html.contains(r#"action="/.mfa/admin/reset""#), "{html}");
    assert!(html.contains("your own MFA"), "{html}");
    let (_, html) = page(&admin, &w.gw, "/.mfa/admin/user?u=msp").await;
    assert!(html.contains(r#"action="/.mfa/admin/reset""#), "{html}");
    let form_post = |c: &reqwest::Client, path: &'static str, user: &'static str| {
        let c = c.clone();
        let token_page = url(&w.gw, "/.mfa/admin/user?u=customer");
        let target = url(&w.gw, path);
        async move {
            let html = c
                .get(token_page)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let r = c
                .post(target)
                .form(&[
                    ("csrf", csrf(&html).as_str()),
                    ("user", user),
                    ("reason", "ticket 1"),
                    ("confirm", "yes"),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // The MSP cannot disconnect or unlock the administrator, nor itself.
    let (status, html) = form_post(&msp, "/.mfa/admin/reset", "admin").await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("Your role may not disconnect"), "{html}");
    let (status, _) = form_post(&msp, "/.mfa/admin/unlock", "admin").await;
    assert_eq!(status, 403);
    let (status, html) = form_post(&msp, "/.mfa/admin/reset", "msp").await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("your own MFA"), "{html}");
    // The administrator cannot reset themselves either (any spelling of the name).
    let (status, html) = form_post(&admin, "/.mfa/admin/reset", "ADMIN").await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("your own MFA"), "{html}");
    let gw = w.gw.gateway();
    assert!(gw.store.user("admin").await.unwrap().enrolled());
    assert!(gw.store.user("msp").await.unwrap().enrolled());
    assert_eq!(get_status(&admin, &w.gw, "/api/me").await, 200);

    // The API: the service desk's token acts as an MSP (the default role).
    let api = client(&w.gw);
    let call = |token: &'static str, path: &str| {
        let req = api
            .post(url(&w.gw, path))
            .bearer_auth(token)
            .json(&serde_json::json!({ "reason": "ticket 2" }));
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, v) = call(TOKEN, "/.mfa/admin/api/users/admin/reset").await;
    assert_eq!(status, 403, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("role msp may not"),
        "{v}"
    );
    let (status, v) = call(TOKEN, "/.mfa/admin/api/users/admin/unlock").await;
    assert_eq!(status, 403, "{v}");
    assert!(gw.store.user("admin").await.unwrap().enrolled());
    // Below the MSP's rank the same token works.
    let (status, v) = call(TOKEN, "/.mfa/admin/api/users/customer/unlock").await;
    assert_eq!(status, 200, "{v}");
    // The administrators' token may reset the administrator.
    let (status, v) = call(ADMIN_TOKEN, "/.mfa/admin/api/users/admin/unlock").await;
    assert_eq!(status, 200, "{v}");

    // An administrator may disconnect an MSP on the pages.
    let (status, _) = form_post(&admin, "/.mfa/admin/reset", "msp").await;
    assert_eq!(status, 200, "the answer shows the enrollment code");
    assert!(!gw.store.user("msp").await.unwrap().enrolled());

    // Every refusal is in the audit trail, with who, whom and why.
    let refused: Vec<mfa_gateway::audit::Record> = gw
        .store
        .audit_recent(200)
        .await
        .unwrap()
        .iter()
        .filter_map(|j| serde_json::from_str(j).ok())
        .filter(|r: &mfa_gateway::audit::Record| {
            r.event == mfa_gateway::audit::Event::AdminActionRefused
        })
        .collect();
    let seen: Vec<(String, String, String)> = refused
        .iter()
        .map(|r| {
            (
                r.actor.clone(),
                r.user.clone().unwrap_or_default(),
                r.detail.clone().unwrap_or_default(),
            )
        })
        .collect();
    for (actor, user, detail) in [
        (
            "msp",
            "admin",
            "action=reset rank actor_role=msp target_role=administrator",
        ),
        (
            "msp",
            "admin",
            "action=unlock rank actor_role=msp target_role=administrator",
        ),
        ("msp", "msp", "action=reset own_account"),
        ("admin", "admin", "action=reset own_account"),
        (
            "servicedesk",
            "admin",
            "action=reset rank actor_role=msp target_role=administrator",
        ),
        (
            "servicedesk",
            "admin",
            "action=unlock rank actor_role=msp target_role=administrator",
        ),
    ] {
        assert!(
            seen.contains(&(actor.into(), user.into(), detail.into())),
            "{actor} {user} {detail} in {seen:?}"
        );
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
}

/// Every role named in `[admin]` must be a role of the policy file: `check-config` names each
/// wrong one (the start-up refuses the same configuration).
#[tokio::test]
async fn roles_in_the_admin_section_are_checked_against_the_policy() {
    let w = world("2022-02-01T09:00:00Z", "").await;
    let check = |admin: &str| {
        let f = w.gw.dir.join("check.toml");
        std::fs::write(&f, format!("{}\n{admin}", w.text)).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
            .arg("check-config")
            .arg(&f)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = check(
        "[admin]\nroles = [\"msp\", \"admins\"]\n[admin.can_reset]\nmsp = [\"custmer\"]\nadministrator = [\"*\"]\n",
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("admin.roles[1]: \"admins\" is not a role of the policy file"),
        "{out}"
    );
    assert!(
        out.contains("admin.can_reset.msp[0]: \"custmer\" is not a role"),
        "{out}"
    );
    let (ok, out) =
        check("[admin]\n[admin.can_reset]\nmsp = [\"customer\"]\nadministrator = [\"*\"]\n");
    assert!(ok, "{out}");
}

/// Issue 22, bug 2: a reset or unlock of a user the gateway does not know answers 404 on the
/// API, the pages and the command line, and creates nothing in the store (before, a record
/// was created that then showed the user as known).
#[tokio::test]
async fn reset_and_unlock_of_an_unknown_user_answer_404_and_create_nothing() {
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let msp = client(&w.gw);
    enroll(&msp, &w, "msp").await;
    let ghost_keys = || async {
        let keys: Vec<String> = redis_query(w.redis.port, &["KEYS", "*ghost*"])
            .await
            .unwrap();
        keys
    };
    let api = client(&w.gw);
    for (path, body) in [
        (
            "/.mfa/admin/api/users/ghost/reset",
            serde_json::json!({"reason": "typo in the ticket"}),
        ),
        ("/.mfa/admin/api/users/ghost/unlock", serde_json::json!({})),
    ] {
        let r = api
            .post(url(&w.gw, path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"], "unknown user", "{path}");
    }
    let r = api
        .get(url(&w.gw, "/.mfa/admin/api/users/ghost"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "still unknown after the calls");
    // The pages.
    let customer = client(&w.gw);
    enroll(&customer, &w, "customer").await;
    let html = get_text(&msp, &w.gw, "/.mfa/admin/user?u=customer").await;
    for path in ["/.mfa/admin/reset", "/.mfa/admin/unlock"] {
        let r = msp
            .post(url(&w.gw, path))
            .form(&[
                ("csrf", csrf(&html).as_str()),
                ("user", "ghost"),
                ("reason", "ticket 3"),
                ("confirm", "yes"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    // The command line.
    let cfg = w.gw.dir.join("gateway.toml");
    for args in [
        &["reset", "ghost", "--reason", "typo"][..],
        &["unlock", "ghost"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
            .arg("admin")
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("unknown user"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(ghost_keys().await, Vec::<String>::new(), "nothing created");
    let gw = w.gw.gateway();
    assert!(!gw.store.user("ghost").await.unwrap().known());
    // A known user is still reset (and the store's own check agrees).
    let r = api
        .post(url(&w.gw, "/.mfa/admin/api/users/customer/unlock"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(gw.store.reset("ghost", 1, None).await.unwrap(), None);
    assert_eq!(gw.store.unlock("ghost").await.unwrap(), None);
    assert_eq!(ghost_keys().await, Vec::<String>::new());
}

/// Issue 22: restoring a Redis backup taken before a reset brings the stolen phone back;
/// `admin reapply` from the audit records kept outside Redis (here an export taken before
/// the restore) makes the reset hold again, and a second run changes nothing.
#[tokio::test]
async fn a_restored_backup_does_not_bring_a_stolen_phone_back_after_reapply() {
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let customer = client(&w.gw);
    let stolen = enroll(&customer, &w, "customer").await;
    // The backup: every key, as DUMP gives it.
    let rc = redis::Client::open(format!("redis://127.0.0.1:{}", w.redis.port)).unwrap();
    let mut conn = rc.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut backup: Vec<(String, Vec<u8>)> = Vec::new();
    for k in keys {
        let data: Vec<u8> = redis::cmd("DUMP")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        backup.push((k, data));
    }
    let backup_at = w.gw.clock.unix();
    w.gw.clock.advance(600);
    // The phone is stolen: the MSP resets (API).
    let api = client(&w.gw);
    let r = api
        .post(url(&w.gw, "/.mfa/admin/api/users/customer/reset"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"reason": "phone stolen, ticket 9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The records outside Redis: an export (the log would do as well).
    let cfg = w.gw.dir.join("gateway.toml");
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
            .args(args)
            .output()
            .unwrap()
    };
    let cfg_s = cfg.to_str().unwrap();
    let export = cli(&["audit", "export", "--config", cfg_s, "--since", "0"]);
    assert!(export.status.success());
    let records = w.gw.dir.join("audit-export.jsonl");
    std::fs::write(&records, &export.stdout).unwrap();
    assert!(String::from_utf8_lossy(&export.stdout).contains("\"event\":\"reset\""));

    // Redis is restored from the backup (gateways stopped, as the procedure says).
    let mut w = w;
    w.gw.stop().await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    for (k, data) in &backup {
        let _: () = redis::cmd("RESTORE")
            .arg(k)
            .arg(0)
            .arg(data.as_slice())
            .arg("REPLACE")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let text = w.text.clone();
    restart_with(&mut w, text).await;
    // Without the re-apply, the stolen phone signs in again.
    let thief = client(&w.gw);
    let r = login(&thief, &w.gw, "customer").await;
    assert_eq!(location(&r), "/.mfa/verify", "the restored secret is back");
    w.gw.clock.advance(30);
    let r = post_code(
        &thief,
        &w.gw,
        "/.mfa/verify",
        &totp::code_at(&stolen, w.gw.clock.unix()),
    )
    .await;
    assert_eq!(r.status(), 302, "the stolen phone's code works again");
    assert_eq!(get_status(&thief, &w.gw, "/api/me").await, 200);

    // The re-apply, verified against the configured keys.
    let since = backup_at.to_string();
    let from = records.to_str().unwrap();
    let dry = cli(&[
        "admin",
        "--config",
        cfg_s,
        "reapply",
        "--since",
        &since,
        "--from",
        from,
        "--dry-run",
    ]);
    let out = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(dry.status.success(), "{out}");
    assert!(out.contains("reset customer: would re-apply"), "{out}");
    let run = cli(&[
        "admin", "--config", cfg_s, "reapply", "--since", &since, "--from", from,
    ]);
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{out}");
    assert!(
        out.contains("reset customer: re-applied (had an app: true)"),
        "{out}"
    );
    // The command's own record is in its log (stderr), not only in Redis.
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("re-applied after a restore"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The reset holds again: the thief's session ends, and a new login must enroll.
    let mut ended = false;
    for _ in 0..50 {
        if get_status(&thief, &w.gw, "/api/me").await == 401 {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended, "the thief's session ended");
    let again = client(&w.gw);
    let r = login(&again, &w.gw, "customer").await;
    assert_eq!(
        location(&r),
        "/.mfa/enroll",
        "the stolen phone is disconnected"
    );
    // Twice is once.
    let run = cli(&[
        "admin", "--config", cfg_s, "reapply", "--since", &since, "--from", from,
    ]);
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{out}");
    assert!(out.contains("skipped: reset again since"), "{out}");
    // A changed record is not applied.
    let forged = std::fs::read_to_string(&records)
        .unwrap()
        .replace("phone stolen, ticket 9", "forged");
    std::fs::write(&records, forged).unwrap();
    let run = cli(&[
        "admin", "--config", cfg_s, "reapply", "--since", &since, "--from", from,
    ]);
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(!run.status.success(), "{out}");
    assert!(
        out.contains("NOT APPLIED: signature does not match"),
        "{out}"
    );
}
