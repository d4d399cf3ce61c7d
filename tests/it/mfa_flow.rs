//! The MFA flow end to end: demo VMS upstream, real Redis, real gateway, a browser-like client.

use std::time::Duration;

use mfa_gateway::auth::totp;
use mfa_gateway::clock::Clock;

use crate::support::browser::{
    csrf, get_status, get_text, location, login, pairing_secret, post_code, post_form, set_cookies,
    sets_vms_session, through_recovery_codes,
};
use crate::support::*;

pub struct World {
    pub gw: Gw,
    pub redis: RedisProc,
    pub vms: mfa_gateway::demo::vms::DemoVms,
    pub vms_addr: std::net::SocketAddr,
    pub text: String,
    pub _dir: tempfile::TempDir,
    pub _certs: Certs,
}

pub async fn world(date: &str, mfa_extra: &str) -> World {
    let redis = RedisProc::start();
    let (vms_addr, vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&c, vms_addr, &redis.url(), DEMO_VMS, "").replace(
        "revocation_poll = \"200ms\"",
        &format!("revocation_poll = \"200ms\"\n{mfa_extra}"),
    );
    let gw = start_gateway(dir.path(), &text, &c.ca_pem, Clock::manual(at(date))).await;
    World {
        gw,
        redis,
        vms,
        vms_addr,
        text,
        _dir: dir,
        _certs: c,
    }
}

/// Enrolls `user` through the whole browser flow (recovery codes included) and returns the
/// secret; the client is then signed in.
pub async fn enroll(c: &reqwest::Client, w: &World, user: &str) -> Vec<u8> {
    crate::support::browser::enroll(c, &w.gw, user).await
}

#[tokio::test]
async fn policy_phases_decide_who_is_asked() {
    let w = world("2021-10-15T10:00:00Z", "").await;
    let cases = [
        ("2021-10-31T22:59:59Z", ["release"; 6]),
        (
            "2021-10-31T23:00:00Z",
            ["offer", "offer", "offer", "release", "release", "release"],
        ),
        (
            "2021-12-31T22:59:59Z",
            ["offer", "offer", "offer", "release", "release", "release"],
        ),
        (
            "2021-12-31T23:00:00Z",
            [
                "enroll", "enroll", "enroll", "release", "release", "release",
            ],
        ),
        (
            "2026-11-27T12:00:00Z",
            [
                "enroll", "enroll", "enroll", "release", "release", "release",
            ],
        ),
    ];
    let users = [
        "admin",
        "msp",
        "customer",
        "supplier",
        "contractor",
        "resource",
    ];
    for (date, expected) in cases {
        w.gw.clock.set(at(date));
        for (user, want) in users.iter().zip(expected) {
            let c = client(&w.gw);
            let r = login(&c, &w.gw, user).await;
            let got = match (r.status().as_u16(), location(&r).as_str()) {
                (302, "/home") => "release",
                (303, "/.mfa/offer") => "offer",
                (303, "/.mfa/enroll") => "enroll",
                other => panic!("{date} {user}: unexpected {other:?}"),
            };
            assert_eq!(got, want, "{date} {user}");
            assert_eq!(
                sets_vms_session(&r),
                want == "release",
                "{date} {user}: session cookie only when released"
            );
        }
    }
    // Counted by role, state and what came next.
    let m = w.gw.gateway().metrics.render();
    for (labels, n) in [
        (r#"role="msp",state="available",next="offer""#, 2),
        (r#"role="msp",state="enforced",next="enroll""#, 2),
        (r#"role="supplier",state="none",next="released""#, 5),
    ] {
        assert!(
            m.contains(&format!("mfa_gateway_logins_total{{{labels}}} {n}\n")),
            "{labels}: {m}"
        );
    }
}

#[tokio::test]
async fn enrollment_challenge_release_and_replay() {
    let w = world("2022-02-01T09:00:00Z", "").await;
    let c = client(&w.gw);
    // No session cookie before approval; a wrong code does not release it either.
    let r = login(&c, &w.gw, "customer").await;
    assert!(!sets_vms_session(&r));
    let r = post_code(&c, &w.gw, "/.mfa/enroll", "000000").await;
    assert!(!sets_vms_session(&r));
    assert!(r.text().await.unwrap().contains("role=\"alert\""));
    let html = get_text(&c, &w.gw, "/.mfa/enroll").await;
    let secret = pairing_secret(&html);
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/enroll",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    let r = through_recovery_codes(&c, &w.gw, r).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/home");
    let cookies = set_cookies(&r);
    assert!(
        cookies.iter().any(
            |c| c.starts_with("VMSSESSION=") && c.ends_with("; Path=/; HttpOnly; SameSite=Lax")
        ),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c == "vms_lang=en; Path=/"),
        "second VMS cookie released as sent: {cookies:?}"
    );
    assert!(cookies.iter().any(|c| c.starts_with("__Host-mfagw=")));
    assert!(
        r.headers().get("x-vms-role").is_some(),
        "VMS headers released as sent"
    );
    let home = c.get(url(&w.gw, "/home")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("Customer"));

    // Next login: the code challenge. The code used at enrollment cannot be used again.
    let c2 = client(&w.gw);
    let r = login(&c2, &w.gw, "customer").await;
    assert_eq!(location(&r), "/.mfa/verify");
    let r = post_code(&c2, &w.gw, "/.mfa/verify", &code).await;
    assert_eq!(r.status(), 200, "replayed code refused");
    assert!(!sets_vms_session(&r));
    w.gw.clock.advance(30);
    let r = post_code(
        &c2,
        &w.gw,
        "/.mfa/verify",
        &totp::code_at(&secret, w.gw.clock.unix()),
    )
    .await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));
    assert_eq!(get_status(&c2, &w.gw, "/home").await, 200);
    // The challenge is gone once released.
    let again = c2.get(url(&w.gw, "/.mfa/verify")).send().await.unwrap();
    assert_eq!(again.status(), 403);
}

#[tokio::test]
async fn unapproved_session_cookies_never_reach_the_vms() {
    let w = world("2022-02-01T09:00:00Z", "").await;
    // A real VMS session obtained behind the gateway's back.
    let direct = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = direct
        .post(format!("http://{}/login", w.vms_addr))
        .form(&[("username", "supplier"), ("password", "demo")])
        .send()
        .await
        .unwrap();
    let stolen = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("VMSSESSION="))
        .unwrap();
    let stolen = stolen.split(';').next().unwrap().to_string();
    let c = client(&w.gw);
    let r = c
        .get(url(&w.gw, "/api/me"))
        .header("cookie", &stolen)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the VMS saw no session");
    // A forged approval cookie does not help.
    let r = c
        .get(url(&w.gw, "/api/me"))
        .header("cookie", format!("{stolen}; __Host-mfagw=AAAA.k1.AAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn lockout_after_failures_then_unlock_after_the_lock_time() {
    let w = world(
        "2022-02-01T09:00:00Z",
        "max_failures = 3\nlock_duration = \"2s\"",
    )
    .await;
    let c = client(&w.gw);
    let secret = enroll(&c, &w, "msp").await;
    w.gw.clock.advance(60);
    let c2 = client(&w.gw);
    assert_eq!(location(&login(&c2, &w.gw, "msp").await), "/.mfa/verify");
    let good = totp::code_at(&secret, w.gw.clock.unix());
    let wrong = if good == "123456" { "654321" } else { "123456" };
    for _ in 0..2 {
        assert_eq!(
            post_code(&c2, &w.gw, "/.mfa/verify", wrong).await.status(),
            200
        );
    }
    assert_eq!(
        post_code(&c2, &w.gw, "/.mfa/verify", wrong).await.status(),
        429,
        "third failure locks"
    );
    // Even the right code is refused while locked, and a new login does not reset the count.
    let r = post_code(&c2, &w.gw, "/.mfa/verify", &good).await;
    assert_eq!(r.status(), 429);
    assert!(!sets_vms_session(&r));
    let c3 = client(&w.gw);
    login(&c3, &w.gw, "msp").await;
    assert_eq!(
        post_code(&c3, &w.gw, "/.mfa/verify", &good).await.status(),
        429,
        "lock is per user, across sessions"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = post_code(&c3, &w.gw, "/.mfa/verify", &good).await;
    assert_eq!(r.status(), 302, "unlocked after the lock time");
}

#[tokio::test]
async fn expired_challenge_releases_nothing_and_ends_the_vms_session() {
    let w = world("2022-02-01T09:00:00Z", "").await;
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "msp").await;
    assert_eq!(r.status(), 303);
    let (_, logouts_before) = w.vms.stats();
    // An enrollment step waits `mfa.enrollment_ttl` (30 minutes).
    w.gw.clock.advance(1801);
    let r = c.get(url(&w.gw, "/.mfa/enroll")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    mfa_gateway::mfa::sweeper::sweep_once(w.gw.gateway()).await;
    let mut ended = false;
    for _ in 0..50 {
        if w.vms.stats().1 > logouts_before {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ended, "withheld VMS session ended");
}

#[tokio::test]
async fn two_instances_share_challenges_and_redis_outage_fails_closed() {
    let mut w = world("2022-02-01T09:00:00Z", "").await;
    let c = client(&w.gw);
    let secret = enroll(&c, &w, "admin").await;
    // A second instance with the same configuration and Redis.
    let dir2 = tempfile::tempdir().unwrap();
    let gw2 = start_gateway(dir2.path(), &w.text, &w.gw.ca_pem, w.gw.clock.clone()).await;
    let ca = w.gw.ca_pem.clone();
    let a = client_for(w.gw.addr, &ca, false);
    let r = login(&a, &w.gw, "admin").await;
    assert_eq!(location(&r), "/.mfa/verify");
    let ch = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("__Host-mfagw-ch="))
        .unwrap();
    let ch = ch.split(';').next().unwrap().to_string();
    let b = client_for(gw2.addr, &ca, false);
    let html = b
        .get(url(&gw2, "/.mfa/verify"))
        .header("cookie", &ch)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    w.gw.clock.advance(30);
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = b
        .post(url(&gw2, "/.mfa/verify"))
        .header("cookie", &ch)
        .form(&[("csrf", csrf(&html).as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "challenge from instance A completed on B");

    // Redis goes away: logins needing MFA fail closed with 503; approved sessions still pass.
    w.redis.stop();
    let r = login(&client(&w.gw), &w.gw, "admin").await;
    assert_eq!(r.status(), 503);
    assert!(!sets_vms_session(&r));
    assert_eq!(
        get_status(&c, &w.gw, "/home").await,
        200,
        "approved session unaffected"
    );
    // Redis returns (with its append-only file): the enrollment is still there.
    w.redis.restart();
    let mut back = false;
    for _ in 0..40 {
        let r = login(&client(&w.gw), &w.gw, "admin").await;
        if r.status() == 303 {
            assert_eq!(
                location(&r),
                "/.mfa/verify",
                "enrollment survived the restart"
            );
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(back, "gateway recovered by itself");
    w.gw.stop().await;
}

#[tokio::test]
async fn policy_reload_valid_and_invalid() {
    let w = world("2022-02-01T09:00:00Z", "").await;
    let policy = w.gw.dir.join("policy.toml");
    let stricter = POLICY.replace("supplier = \"none\"", "supplier = \"enforced\"");
    assert_ne!(
        stricter, POLICY,
        "the shipped policy names supplier = \"none\""
    );
    std::fs::write(&policy, &stricter).unwrap();
    let mut switched = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if location(&login(&client(&w.gw), &w.gw, "supplier").await) == "/.mfa/enroll" {
            switched = true;
            break;
        }
    }
    assert!(switched, "new policy in force without restart");
    std::fs::write(&policy, "this is = not [ a policy").unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let ready = client(&w.gw)
        .get(url(&w.gw, "/.mfa/ready"))
        .send()
        .await
        .unwrap();
    // Reported, without taking the instance out of service (the previous policy is in force;
    // `server.ready_requires` can make it decide).
    assert_eq!(ready.status(), 200);
    let v: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        v["policy"], "last reload failed; previous policy in force",
        "broken policy file visible in readiness"
    );
    assert_eq!(
        location(&login(&client(&w.gw), &w.gw, "supplier").await),
        "/.mfa/enroll",
        "old policy stays in force"
    );
    // Both reloads are in the audit trail.
    let mut events = Vec::new();
    for _ in 0..20 {
        events = w.gw.gateway().store.audit_recent(100).await.unwrap();
        if events
            .iter()
            .any(|e| e.contains("\"policy_reload_failed\""))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        events.iter().any(|e| e.contains("\"policy_reloaded\"")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("\"policy_reload_failed\"")),
        "{events:?}"
    );
    // A fixed file is news again (the previous reload failed); a file that changes only in a
    // comment decides nothing differently and leaves no record.
    let reloads = || async {
        w.gw.gateway()
            .store
            .audit_recent(200)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.contains("\"policy_reloaded\""))
            .count()
    };
    let before = reloads().await;
    std::fs::write(&policy, format!("{stricter}\n# fixed\n")).unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(reloads().await, before + 1, "the repaired file is recorded");
    std::fs::write(&policy, format!("{stricter}\n# only a comment changed\n")).unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        reloads().await,
        before + 1,
        "an unchanged policy is not recorded"
    );
}

#[tokio::test]
async fn optional_mfa_offer_can_be_taken_or_declined() {
    let w = world("2021-12-01T09:00:00Z", "").await;
    // Decline: released without MFA, and not asked again at the next login.
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "msp").await;
    assert_eq!(location(&r), "/.mfa/offer");
    let html = get_text(&c, &w.gw, "/.mfa/offer").await;
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
    )
    .await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));
    assert_eq!(get_status(&c, &w.gw, "/home").await, 200);
    let r = login(&client(&w.gw), &w.gw, "msp").await;
    assert_eq!(
        (r.status().as_u16(), location(&r).as_str()),
        (302, "/home"),
        "declined offer not repeated at once"
    );
    // Take it: set up now leads to enrollment, and from then on the code is asked.
    let c = client(&w.gw);
    assert_eq!(location(&login(&c, &w.gw, "customer").await), "/.mfa/offer");
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
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/enroll",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    let r = through_recovery_codes(&c, &w.gw, r).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&login(&client(&w.gw), &w.gw, "customer").await),
        "/.mfa/verify"
    );
}

#[tokio::test]
async fn grace_lets_users_postpone_enrollment_a_limited_number_of_times() {
    let w = world("2022-01-03T09:00:00Z", "").await;
    let policy = POLICY.replace(
        "# [phase.grace]\n# enroll_by = 2022-01-31\n# postpone_logins = 3",
        "[phase.grace]\npostpone_logins = 2",
    );
    assert_ne!(
        policy, POLICY,
        "the shipped policy carries the commented grace example"
    );
    std::fs::write(w.gw.dir.join("policy.toml"), policy).unwrap();
    w.gw.gateway()
        .policy
        .reload(&w.gw.gateway().metrics)
        .unwrap();
    for round in 0..2 {
        let c = client(&w.gw);
        assert_eq!(location(&login(&c, &w.gw, "admin").await), "/.mfa/enroll");
        let html = get_text(&c, &w.gw, "/.mfa/enroll").await;
        assert!(
            html.contains("value=\"postpone\""),
            "round {round}: postpone offered"
        );
        let r = post_form(
            &c,
            &w.gw,
            "/.mfa/enroll",
            &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
        )
        .await;
        assert_eq!(r.status(), 302, "round {round}");
        assert!(sets_vms_session(&r));
        assert_eq!(get_status(&c, &w.gw, "/home").await, 200);
    }
    let c = client(&w.gw);
    login(&c, &w.gw, "admin").await;
    let html = get_text(&c, &w.gw, "/.mfa/enroll").await;
    assert!(!html.contains("value=\"postpone\""), "grace used up");
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/enroll",
        &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(!sets_vms_session(&r));
}

#[tokio::test]
async fn sessions_approved_without_mfa_end_when_the_role_becomes_enforced() {
    let w = world("2021-12-31T12:00:00Z", "").await;
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "supplier").await;
    assert_eq!(r.status(), 302);
    let c2 = client(&w.gw);
    let r = login(&c2, &w.gw, "customer").await;
    let html = c2
        .get(url(&w.gw, &location(&r)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    post_form(
        &c2,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
    )
    .await;
    assert_eq!(get_status(&c2, &w.gw, "/api/me").await, 200);
    // Midnight in Amsterdam: customers are enforced from now on.
    w.gw.clock.set(at("2021-12-31T23:00:01Z"));
    assert_eq!(
        get_status(&c2, &w.gw, "/api/me").await,
        401,
        "must log in again with MFA"
    );
    assert_eq!(
        get_status(&c, &w.gw, "/api/me").await,
        200,
        "supplier stays `none`"
    );
}

#[tokio::test]
async fn logout_ends_the_approval_and_approvals_expire() {
    let w = world("2022-02-01T09:00:00Z", "approval_max_age = \"1h\"").await;
    let c = client(&w.gw);
    login(&c, &w.gw, "supplier").await;
    let me = c.get(url(&w.gw, "/api/me")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let r = c.get(url(&w.gw, "/logout")).send().await.unwrap();
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("__Host-mfagw=;")),
        "approval cookie cleared"
    );
    assert!(
        w.gw.gateway()
            .metrics
            .mfa_count(mfa_gateway::metrics::MfaEvent::Logout)
            >= 1
    );
    // Approval lifetime.
    let c = client(&w.gw);
    login(&c, &w.gw, "contractor").await;
    assert_eq!(get_status(&c, &w.gw, "/api/me").await, 200);
    w.gw.clock.advance(3601);
    assert_eq!(
        get_status(&c, &w.gw, "/api/me").await,
        401,
        "approval expired"
    );
}

/// A login whose role arrives in the JSON body, at the user-info endpoint, or in a static file.
pub async fn world_with_role_source(
    role_section: &str,
    login_section: &str,
    static_roles: Option<&str>,
) -> World {
    let redis = RedisProc::start();
    let (vms_addr, vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    if let Some(s) = static_roles {
        std::fs::write(dir.path().join("roles.toml"), s).unwrap();
    }
    let vms_section = format!(
        "[vms]\nsession_cookies = [\"VMSSESSION\"]\n{login_section}\n[vms.role]\n{role_section}\n[vms.role.map]\nMSP = \"msp\"\nSupplier = \"supplier\"\nCustomer = \"customer\"\n"
    );
    let text = config_text(&c, vms_addr, &redis.url(), &vms_section, "");
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        Clock::manual(at("2022-02-01T09:00:00Z")),
    )
    .await;
    World {
        gw,
        redis,
        vms,
        vms_addr,
        text,
        _dir: dir,
        _certs: c,
    }
}

pub const JSON_LOGIN: &str = "[[vms.login]]\npath = \"/api/login\"\nusername_pointer = \"/username\"\nsuccess_status = [200]";
pub const FORM_LOGIN: &str =
    "[[vms.login]]\npath = \"/login\"\nusername_field = \"username\"\nsuccess_status = [302]";

pub async fn json_login(c: &reqwest::Client, gw: &Gw, user: &str) -> reqwest::Response {
    c.post(url(gw, "/api/login"))
        .json(&serde_json::json!({"username": user, "password": "demo"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn role_from_json_body() {
    let w = world_with_role_source(
        "source = \"json_body\"\npointer = \"/user/role\"",
        JSON_LOGIN,
        None,
    )
    .await;
    assert_eq!(
        location(&json_login(&client(&w.gw), &w.gw, "msp").await),
        "/.mfa/enroll"
    );
    let r = json_login(&client(&w.gw), &w.gw, "supplier").await;
    assert_eq!(r.status(), 200);
    assert!(sets_vms_session(&r));
    let bad = client(&w.gw)
        .post(url(&w.gw, "/api/login"))
        .json(&serde_json::json!({"username": "msp", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401, "a failed login passes through untouched");
}

#[tokio::test]
async fn role_from_userinfo_request() {
    let w = world_with_role_source(
        "source = \"userinfo\"\nuserinfo_path = \"/api/me\"\nuserinfo_user_pointer = \"/username\"\nuserinfo_role_pointer = \"/role\"",
        FORM_LOGIN,
        None,
    )
    .await;
    assert_eq!(
        location(&login(&client(&w.gw), &w.gw, "customer").await),
        "/.mfa/enroll"
    );
    assert_eq!(
        location(&login(&client(&w.gw), &w.gw, "supplier").await),
        "/home"
    );
}

#[tokio::test]
async fn role_from_static_file_and_unmapped_roles_are_enforced() {
    let w = world_with_role_source(
        "source = \"static\"\nstatic_file = \"roles.toml\"",
        FORM_LOGIN,
        // A role that maps to nothing is refused at start-up now
        // (`config::tests::role_map_targets_and_static_roles_must_be_policy_roles`).
        Some("[users]\nsupplier = \"Supplier\"\nMSP = \"MSP\"\n"),
    )
    .await;
    assert_eq!(
        location(&login(&client(&w.gw), &w.gw, "supplier").await),
        "/home"
    );
    assert_eq!(
        location(&login(&client(&w.gw), &w.gw, "msp").await),
        "/.mfa/enroll",
        "user names compared case-insensitively"
    );
    assert_eq!(
        location(&login(&client(&w.gw), &w.gw, "contractor").await),
        "/.mfa/enroll",
        "user not in file -> enforced"
    );
}

/// Redis over TLS with a private CA and a password.
#[tokio::test]
async fn redis_over_tls_with_a_password() {
    let c = certs();
    let ca = c.cert.parent().unwrap().join("ca.pem");
    let redis = RedisProc::start_tls(&c.cert, &c.key, &ca, "s3cret-redis");
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let dir = tempfile::tempdir().unwrap();
    let redis_url = format!("rediss://localhost:{}/0", redis.port);
    let text = config_text(&c, vms_addr, &redis_url, DEMO_VMS, "").replace(
        "key_prefix = \"t:\"",
        &format!(
            "key_prefix = \"t:\"\nca = \"{}\"\npassword = {{ value = \"s3cret-redis\" }}",
            ca.display()
        ),
    );
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        Clock::manual(at("2022-02-01T09:00:00Z")),
    )
    .await;
    let ready = client(&gw)
        .get(url(&gw, "/.mfa/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let v: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(v["store"]["status"], "ok", "{v}");
    let b = client(&gw);
    let r = login(&b, &gw, "customer").await;
    assert_eq!(
        location(&r),
        "/.mfa/enroll",
        "state read from Redis over TLS"
    );
}
