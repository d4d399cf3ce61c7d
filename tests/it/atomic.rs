//! Security state changes under concurrency: every one must be a single atomic step in the
//! store, so no interleaving of requests (streams of one HTTP/2 connection, several
//! connections, several gateway instances sharing Redis) gets past a limit or undoes another's
//! change. Each test drives the real gateway over TLS against a real Redis.

use std::time::Duration;

use futures_util::future::join_all;
use mfa_gateway::auth::totp;
use mfa_gateway::metrics::MfaEvent;

use crate::mfa_flow::{World, enroll, world};
use crate::support::browser::{
    csrf, get_status, get_text, location, login, login_with_code, pairing_secret, post_code,
    post_form, set_cookies, sets_vms_session,
};
use crate::support::*;

/// A date on which the shipped policy enforces MFA for administrators, MSPs and customers.
const ENFORCED: &str = "2022-02-01T09:00:00Z";

/// The `name=value` of the challenge cookie a login answer set.
fn challenge_cookie(r: &reqwest::Response) -> String {
    set_cookies(r)
        .into_iter()
        .find(|c| c.starts_with("__Host-mfagw-ch="))
        .and_then(|c| c.split(';').next().map(str::to_string))
        .expect("the login set a challenge cookie")
}

/// A six-digit code that none of the accepted time steps around `now` produces.
fn wrong_code(secret: &[u8], now: u64) -> String {
    let valid: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| totp::code_at(secret, *t))
        .collect();
    (0..10u32)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Posts `code` to the verify page with `cookie` and `token`, all at once: `h2` times as
/// parallel streams of one HTTP/2 connection and `h1` times each on its own HTTP/1.1
/// connection. Returns the statuses.
async fn burst(gw: &Gw, cookie: &str, token: &str, code: &str, h2: usize, h1: usize) -> Vec<u16> {
    let one = client_for(gw.addr, &gw.ca_pem, true);
    let post = |c: reqwest::Client| {
        let (cookie, token, code) = (cookie.to_string(), token.to_string(), code.to_string());
        let u = url(gw, "/.mfa/verify");
        async move {
            c.post(u)
                .header("cookie", cookie)
                .form(&[("csrf", token.as_str()), ("code", code.as_str())])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or_else(|e| panic!("burst request: {e}"))
        }
    };
    let mut all = Vec::new();
    for _ in 0..h2 {
        all.push(post(one.clone()));
    }
    for _ in 0..h1 {
        all.push(post(plain_client(gw.addr, &gw.ca_pem)));
    }
    join_all(all).await
}

fn count(statuses: &[u16], s: u16) -> usize {
    statuses.iter().filter(|x| **x == s).count()
}

fn failures(gws: &[&Gw]) -> u64 {
    gws.iter()
        .map(|g| g.gateway().metrics.mfa_count(MfaEvent::VerifyFailure))
        .sum()
}

/// Opens a code challenge for `user` and returns its cookie and form token.
async fn challenge(gw: &Gw, user: &str) -> (String, String) {
    let c = client(gw);
    let r = login(&c, gw, user).await;
    assert_eq!(location(&r), "/.mfa/verify");
    let cookie = challenge_cookie(&r);
    let html = c
        .get(url(gw, "/.mfa/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (cookie, csrf(&html))
}

/// After the burst: the right code is refused too, and releases nothing.
async fn right_code_refused(gw: &Gw, cookie: &str, token: &str, secret: &[u8]) {
    let good = totp::code_at(secret, gw.clock.unix());
    let r = plain_client(gw.addr, &gw.ca_pem)
        .post(url(gw, "/.mfa/verify"))
        .header("cookie", cookie)
        .form(&[("csrf", token), ("code", good.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the right code after the burst is refused");
    assert!(!sets_vms_session(&r), "and releases nothing");
}

async fn locked_world() -> (World, Vec<u8>) {
    let w = world(ENFORCED, "max_failures = 5\nlock_duration = \"10m\"").await;
    let secret = enroll(&client(&w.gw), &w, "msp").await;
    w.gw.clock.advance(60);
    (w, secret)
}

#[tokio::test]
async fn a_burst_of_wrong_codes_gets_at_most_max_failures_checked() {
    let (w, secret) = locked_world().await;
    let (cookie, token) = challenge(&w.gw, "msp").await;
    let wrong = wrong_code(&secret, w.gw.clock.unix());
    let before = failures(&[&w.gw]);
    // 40 parallel streams on one HTTP/2 connection and 20 connections of their own.
    let statuses = burst(&w.gw, &cookie, &token, &wrong, 40, 20).await;
    assert_eq!(statuses.len(), 60);
    assert_eq!(
        count(&statuses, 200) + count(&statuses, 429),
        60,
        "only 'wrong code' and 'locked' answers: {statuses:?}"
    );
    assert_eq!(
        count(&statuses, 200),
        4,
        "four 'wrong code' answers, the fifth check locks: {statuses:?}"
    );
    assert_eq!(
        failures(&[&w.gw]) - before,
        5,
        "exactly max_failures codes were checked"
    );
    right_code_refused(&w.gw, &cookie, &token, &secret).await;
    // The 55 refused requests counted nothing for the address they came from: another user
    // behind it still signs in with her code.
    let c = client(&w.gw);
    let other = enroll(&c, &w, "admin").await;
    w.gw.clock.advance(30);
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "admin").await;
    assert_eq!(location(&r), "/.mfa/verify");
    let good = totp::code_at(&other, w.gw.clock.unix());
    let r = post_code(&c, &w.gw, "/.mfa/verify", &good).await;
    assert_eq!(r.status(), 302, "the address is not locked");
    assert!(sets_vms_session(&r));
}

#[tokio::test]
async fn two_instances_sharing_redis_check_at_most_max_failures_together() {
    let (w, secret) = locked_world().await;
    let dir2 = tempfile::tempdir().unwrap();
    let gw2 = start_gateway(dir2.path(), &w.text, &w.gw.ca_pem, w.gw.clock.clone()).await;
    let (cookie, token) = challenge(&w.gw, "msp").await;
    let wrong = wrong_code(&secret, w.gw.clock.unix());
    let before = failures(&[&w.gw, &gw2]);
    let (a, b) = tokio::join!(
        burst(&w.gw, &cookie, &token, &wrong, 20, 10),
        burst(&gw2, &cookie, &token, &wrong, 20, 10),
    );
    let statuses: Vec<u16> = a.into_iter().chain(b).collect();
    assert_eq!(
        count(&statuses, 200) + count(&statuses, 429),
        60,
        "{statuses:?}"
    );
    assert_eq!(count(&statuses, 200), 4, "{statuses:?}");
    assert_eq!(failures(&[&w.gw, &gw2]) - before, 5);
    right_code_refused(&gw2, &cookie, &token, &secret).await;
    right_code_refused(&w.gw, &cookie, &token, &secret).await;
}

#[tokio::test]
async fn a_right_code_clears_the_count_and_a_wrong_one_after_it_starts_again() {
    let (w, secret) = locked_world().await;
    let wrong = wrong_code(&secret, w.gw.clock.unix());
    let (cookie, token) = challenge(&w.gw, "msp").await;
    let statuses = burst(&w.gw, &cookie, &token, &wrong, 4, 0).await;
    assert_eq!(statuses, [200; 4]);
    // The right code on the fifth attempt (the one that set the lock) still counts and lifts
    // the lock it set.
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "msp").await;
    assert_eq!(location(&r), "/.mfa/verify");
    let good = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_code(&c, &w.gw, "/.mfa/verify", &good).await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));
    // A fresh count: four more wrong codes are answered as wrong, not locked.
    w.gw.clock.advance(30);
    let wrong = wrong_code(&secret, w.gw.clock.unix());
    let (cookie, token) = challenge(&w.gw, "msp").await;
    let statuses = burst(&w.gw, &cookie, &token, &wrong, 0, 4).await;
    assert_eq!(statuses, [200; 4]);
    let statuses = burst(&w.gw, &cookie, &token, &wrong, 0, 1).await;
    assert_eq!(statuses, [429], "the fifth locks");
}

#[tokio::test]
async fn failures_paced_under_the_limit_add_up_and_a_right_code_keeps_the_escalation() {
    let w = world(ENFORCED, "max_failures = 3\nlock_duration = \"2s\"").await;
    let secret = enroll(&client(&w.gw), &w, "msp").await;
    w.gw.clock.advance(60);
    let store = &w.gw.gateway().store;
    let (cookie, token) = challenge(&w.gw, "msp").await;
    let wrong = wrong_code(&secret, w.gw.clock.unix());
    assert_eq!(burst(&w.gw, &cookie, &token, &wrong, 0, 2).await, [200; 2]);
    // Two failures count for a day, not for one lock length.
    let ttl: i64 = redis_query(w.redis.port, &["TTL", "t:{u:msp}:fails"])
        .await
        .unwrap();
    assert!(ttl > 3600, "failure count lives {ttl} s");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        burst(&w.gw, &cookie, &token, &wrong, 0, 1).await,
        [429],
        "a third failure after a pause as long as the lock still locks"
    );
    let first = store.user_lock("msp").await.unwrap().unwrap();
    assert!(first <= Duration::from_secs(2), "{first:?}");
    tokio::time::sleep(first + Duration::from_millis(200)).await;
    // The owner signs in; the escalation stays, so the next lock doubles.
    let c = client(&w.gw);
    login_with_code(&c, &w.gw, "msp", &secret).await;
    let (cookie, token) = challenge(&w.gw, "msp").await;
    let wrong = wrong_code(&secret, w.gw.clock.unix());
    assert_eq!(
        burst(&w.gw, &cookie, &token, &wrong, 0, 3)
            .await
            .iter()
            .filter(|s| **s == 429)
            .count(),
        1
    );
    let second = store.user_lock("msp").await.unwrap().unwrap();
    assert!(second > Duration::from_secs(3), "second lock {second:?}");
}

/// Signs `user` in where MFA is only offered, saying "not now": a released session.
async fn signed_in_without_mfa(w: &World, user: &str) -> reqwest::Client {
    let c = client(&w.gw);
    let r = login(&c, &w.gw, user).await;
    if location(&r) == "/.mfa/offer" {
        let html = get_text(&c, &w.gw, "/.mfa/offer").await;
        let r = post_form(
            &c,
            &w.gw,
            "/.mfa/offer",
            &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
        )
        .await;
        assert!(sets_vms_session(&r));
    } else {
        assert_eq!(location(&r), "/home");
    }
    c
}

/// Starts a self-service pairing (`/set-up` or `/replace-phone` with `code`) and returns the
/// new secret and the pairing page's form token.
async fn start_pairing(
    c: &reqwest::Client,
    w: &World,
    path: &str,
    code: &str,
) -> (Vec<u8>, String) {
    let html = get_text(c, &w.gw, "/.mfa/account").await;
    let r = post_form(
        c,
        &w.gw,
        path,
        &[("csrf", csrf(&html).as_str()), ("code", code)],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account/enroll", "{path}");
    let html = get_text(c, &w.gw, "/.mfa/account/enroll").await;
    (pairing_secret(&html), csrf(&html))
}

async fn confirm_pairing(
    c: &reqwest::Client,
    w: &World,
    secret: &[u8],
    token: &str,
) -> reqwest::Response {
    let code = totp::code_at(secret, w.gw.clock.unix());
    post_form(
        c,
        &w.gw,
        "/.mfa/account/enroll",
        &[("csrf", token), ("code", code.as_str())],
    )
    .await
}

#[tokio::test]
async fn a_set_up_started_before_the_owner_enrolled_cannot_replace_her_phone() {
    // MFA offered to MSPs on this date: "not now" and self-service set-up are allowed.
    let w = world("2021-12-01T09:00:00Z", "").await;
    // With the password only: "not now", then set-up on the account page.
    let attacker = signed_in_without_mfa(&w, "msp").await;
    let (his, his_token) = start_pairing(&attacker, &w, "/.mfa/account/set-up", "").await;
    // The owner sets MFA up with her phone meanwhile.
    let owner = signed_in_without_mfa(&w, "msp").await;
    let (hers, her_token) = start_pairing(&owner, &w, "/.mfa/account/set-up", "").await;
    let r = confirm_pairing(&owner, &w, &hers, &her_token).await;
    assert_eq!(r.status(), 200, "her recovery codes are shown");
    // His pending pairing is refused and changes nothing.
    let r = confirm_pairing(&attacker, &w, &his, &his_token).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("Nothing was changed"));
    let events: Vec<String> = w.gw.gateway().store.audit_recent(20).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.contains("self_change_refused") && e.contains("already_enrolled")),
        "the refusal is audited"
    );
    // Her phone is the one: his code is wrong, hers signs in.
    w.gw.clock.advance(30);
    let c = client(&w.gw);
    assert_eq!(location(&login(&c, &w.gw, "msp").await), "/.mfa/verify");
    let r = post_code(
        &c,
        &w.gw,
        "/.mfa/verify",
        &totp::code_at(&his, w.gw.clock.unix()),
    )
    .await;
    assert_eq!(r.status(), 200, "his code is wrong");
    let r = post_code(
        &c,
        &w.gw,
        "/.mfa/verify",
        &totp::code_at(&hers, w.gw.clock.unix()),
    )
    .await;
    assert_eq!(r.status(), 302);
}

#[tokio::test]
async fn a_replaced_phone_ends_the_other_sessions_and_replaces_only_the_secret_checked() {
    let w = world(ENFORCED, "").await;
    let first = client(&w.gw);
    let old = enroll(&first, &w, "customer").await;
    w.gw.clock.advance(30);
    let other = client(&w.gw);
    login_with_code(&other, &w.gw, "customer", &old).await;
    assert_eq!(get_status(&other, &w.gw, "/api/me").await, 200);
    w.gw.clock.advance(30);
    let code = totp::code_at(&old, w.gw.clock.unix());
    let (new, token) = start_pairing(&first, &w, "/.mfa/account/replace-phone", &code).await;
    let r = confirm_pairing(&first, &w, &new, &token).await;
    assert_eq!(r.status(), 200, "new recovery codes shown");
    // This session goes on; the other one ends (on this instance at once).
    assert_eq!(get_status(&first, &w.gw, "/.mfa/account").await, 200);
    assert_eq!(
        get_status(&other, &w.gw, "/api/me").await,
        401,
        "other session ended"
    );
    assert_eq!(
        get_status(&first, &w.gw, "/api/me").await,
        200,
        "this one goes on"
    );
    // The store replaces only the secret a code was checked against.
    let store = &w.gw.gateway().store;
    let stored = store.user("customer").await.unwrap().secret.unwrap();
    assert!(
        !store
            .replace_secret_if("customer", b"not the stored one", b"x", "k1", 1, 1)
            .await
            .unwrap()
    );
    assert_eq!(
        store.user("customer").await.unwrap().secret.unwrap(),
        stored
    );
}

#[tokio::test]
async fn a_reset_whose_revocation_cannot_be_published_deletes_nothing() {
    let w = world(ENFORCED, "").await;
    let c = client(&w.gw);
    enroll(&c, &w, "customer").await;
    assert_eq!(get_status(&c, &w.gw, "/api/me").await, 200);
    // The revocation feed refuses writes: a string where the stream should be (XADD fails
    // with WRONGTYPE), as a store that takes some writes and not others would.
    let _: () = redis_query(w.redis.port, &["SET", "t:{rev}", "blocked"])
        .await
        .unwrap();
    let gw = w.gw.gateway();
    let actor = mfa_gateway::admin::ops::Actor {
        kind: mfa_gateway::audit::ActorKind::Admin,
        name: "msp".into(),
        client: None,
        rank: mfa_gateway::admin::ops::Rank::Role {
            role: "msp".into(),
            user: Some("msp".into()),
        },
    };
    let now = w.gw.clock.unix();
    assert!(
        gw.ops()
            .reset("customer", &actor, "phone stolen", now)
            .await
            .is_err(),
        "the reset fails (503 to the MSP)"
    );
    assert!(
        gw.store.user("customer").await.unwrap().enrolled(),
        "and the secret is still there"
    );
    let events = gw.store.audit_recent(10).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.contains("reset_failed") && e.contains("stage=revocation")),
        "the failed reset is audited: {events:?}"
    );
    // Once the feed takes writes again, the reset goes through and the session ends.
    let _: () = redis_query(w.redis.port, &["DEL", "t:{rev}"])
        .await
        .unwrap();
    assert!(
        gw.ops()
            .reset("customer", &actor, "phone stolen", now)
            .await
            .unwrap()
            .had
    );
    assert!(!gw.store.user("customer").await.unwrap().enrolled());
    assert_eq!(get_status(&c, &w.gw, "/api/me").await, 401);
}

/// Posts "not now" on the page a challenge is at (`/.mfa/offer` or `/.mfa/enroll`).
async fn not_now(c: &reqwest::Client, w: &World, page: &str) -> reqwest::Response {
    let html = get_text(c, &w.gw, page).await;
    assert!(
        html.contains("value=\"postpone\""),
        "{page} offers 'not now'"
    );
    post_form(
        c,
        &w.gw,
        page,
        &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
    )
    .await
}

#[tokio::test]
async fn a_not_now_from_before_the_enrollment_asks_for_a_code() {
    // An offer (MFA available): a challenge opened before the owner enrolls.
    let w = world("2021-12-01T09:00:00Z", "").await;
    let stale = client(&w.gw);
    assert_eq!(location(&login(&stale, &w.gw, "msp").await), "/.mfa/offer");
    let c = client(&w.gw);
    assert_eq!(location(&login(&c, &w.gw, "msp").await), "/.mfa/offer");
    let html = get_text(&c, &w.gw, "/.mfa/offer").await;
    post_form(
        &c,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "setup")],
    )
    .await;
    let (secret, token) = {
        let html = get_text(&c, &w.gw, "/.mfa/enroll").await;
        (pairing_secret(&html), csrf(&html))
    };
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/enroll",
        &[("csrf", token.as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/recovery-codes", "the owner enrolled");
    let r = not_now(&stale, &w, "/.mfa/offer").await;
    assert_eq!(location(&r), "/.mfa/verify", "a code is asked instead");
    assert!(!sets_vms_session(&r));
    let events = w.gw.gateway().store.audit_recent(20).await.unwrap();
    assert!(!events.iter().any(|e| e.contains("offer_declined")));

    // A grace period (enrollment required, "not now" allowed twice), the same race.
    let policy = POLICY.replace(
        "# [phase.grace]\n# enroll_by = 2022-01-31\n# postpone_logins = 3",
        "[phase.grace]\npostpone_logins = 2",
    );
    std::fs::write(w.gw.dir.join("policy.toml"), policy).unwrap();
    w.gw.clock
        .advance(at("2022-01-03T09:00:00Z") - w.gw.clock.unix() as i64);
    w.gw.gateway()
        .policy
        .reload(&w.gw.gateway().metrics)
        .unwrap();
    let stale = client(&w.gw);
    assert_eq!(
        location(&login(&stale, &w.gw, "admin").await),
        "/.mfa/enroll"
    );
    enroll(&client(&w.gw), &w, "admin").await;
    let r = not_now(&stale, &w, "/.mfa/enroll").await;
    assert_eq!(location(&r), "/.mfa/verify");
    assert!(!sets_vms_session(&r));
    assert_eq!(
        w.gw.gateway().store.user("admin").await.unwrap().postponed,
        0,
        "no postponement counted"
    );
}
