//! The reset with a one-time enrollment code (issue 18 point 1), end to end: real Redis, the
//! gateway with TLS and the stand-in VMS. After an MSP reset the sign-in asks for the code
//! the MSP read out before the new app's QR code is shown; wrong codes count toward the lock,
//! the right one works once, a new code kills the old one, an expired one sends the user to
//! the MSP, and the MSP sees whether a code is pending but never the code.

use mfa_gateway::auth::totp;

use crate::admin::{TOKEN, admin_world, page, token_section};
use crate::mfa_flow::{World, enroll};
use crate::support::browser::*;
use crate::support::*;

const CODE_PAGE: &str = "/.mfa/enrollment-code";

/// A POST to the API with the test token; the status and the JSON answer.
async fn api_post(w: &World, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = client(&w.gw)
        .post(url(&w.gw, path))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn api_get(w: &World, path: &str) -> (u16, String) {
    let r = client(&w.gw)
        .get(url(&w.gw, path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Resets `user` through the API; the enrollment code of the answer (`4821 0937`).
async fn api_reset(w: &World, user: &str) -> String {
    let (status, v) = api_post(
        w,
        &format!("/.mfa/admin/api/users/{user}/reset"),
        serde_json::json!({ "reason": "phone lost, ticket 7" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let code = v["enrollment_code"].as_str().unwrap().to_string();
    assert!(is_grouped_code(&code), "{code}");
    assert!(v["enrollment_code_valid_until"].as_u64().is_some(), "{v}");
    code
}

/// Eight digits in two groups of four.
fn is_grouped_code(s: &str) -> bool {
    s.len() == 9
        && s.chars()
            .enumerate()
            .all(|(i, c)| if i == 4 { c == ' ' } else { c.is_ascii_digit() })
}

/// A code that is surely not `code`.
fn other_than(code: &str) -> String {
    let first = if code.starts_with('1') { '2' } else { '1' };
    format!("{first}{}", &code[1..])
}

/// Logs in after a reset: the login goes to the enrollment, which asks for the code first.
async fn login_to_code_page(c: &reqwest::Client, w: &World, user: &str) -> String {
    let r = login(c, &w.gw, user).await;
    assert_eq!(location(&r), "/.mfa/enroll", "{user}");
    let r = c.get(url(&w.gw, "/.mfa/enroll")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        CODE_PAGE,
        "no QR code before the enrollment code"
    );
    let html = c
        .get(url(&w.gw, CODE_PAGE))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(try_pairing_secret(&html).is_none(), "{html}");
    html
}

/// Posts a code on the enrollment-code page: the status and the page or redirect.
async fn post_enrollment_code(c: &reqwest::Client, w: &World, code: &str) -> (u16, String) {
    let r = post_code(c, &w.gw, CODE_PAGE, code).await;
    let status = r.status().as_u16();
    if status == 303 {
        return (status, location(&r));
    }
    (status, r.text().await.unwrap())
}

/// Posts a code with the form token of a code page fetched earlier.
async fn post_on_page(c: &reqwest::Client, w: &World, page: &str, code: &str) -> (u16, String) {
    let r = c
        .post(url(&w.gw, CODE_PAGE))
        .form(&[("csrf", csrf(page).as_str()), ("code", code)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// After the right code: pairs the new app and finishes at the VMS.
async fn pair_new_app(c: &reqwest::Client, w: &World) -> Vec<u8> {
    let html = c
        .get(url(&w.gw, "/.mfa/enroll"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let secret = pairing_secret(&html);
    w.gw.clock.advance(30);
    let r = post_code(
        c,
        &w.gw,
        "/.mfa/enroll",
        &totp::code_at(&secret, w.gw.clock.unix()),
    )
    .await;
    let r = through_recovery_codes(c, &w.gw, r).await;
    assert_eq!(r.status(), 302, "new app enrolled, VMS answer released");
    assert!(sets_vms_session(&r));
    assert_eq!(get_status(c, &w.gw, "/api/me").await, 200);
    secret
}

/// Every audit record, as stored (JSON lines).
async fn audit(w: &World) -> Vec<String> {
    w.gw.gateway().store.audit_recent(500).await.unwrap()
}

fn events_of(records: &[String], event: &str) -> usize {
    records
        .iter()
        .filter(|r| r.contains(&format!("\"event\":\"{event}\"")))
        .count()
}

#[tokio::test]
async fn after_a_reset_the_code_comes_before_the_qr_code_and_works_once() {
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let customer = client(&w.gw);
    enroll(&customer, &w, "customer").await;
    let code = api_reset(&w, "customer").await;
    let compact: String = code.chars().filter(|c| *c != ' ').collect();

    // The MSP sees that a code is pending and until when, never the code.
    let (status, body) = api_get(&w, "/.mfa/admin/api/users/customer").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["enrollment_code_pending"], true, "{v}");
    assert!(v["enrollment_code_valid_until"].as_u64().unwrap() > w.gw.clock.unix());
    assert!(!body.contains(&compact) && !body.contains(&code), "{body}");
    let msp = client(&w.gw);
    enroll(&msp, &w, "msp").await;
    let (_, html) = page(&msp, &w.gw, "/.mfa/admin/user?u=customer").await;
    assert!(html.contains("Waiting to be used, valid until"), "{html}");
    assert!(!html.contains(&code) && !html.contains(&compact));
    assert!(html.contains(r#"action="/.mfa/admin/enrollment-code""#));

    // The sign-in asks for the code; a wrong one is refused and counted like a wrong app code.
    let c = client(&w.gw);
    let html = login_to_code_page(&c, &w, "customer").await;
    assert!(html.contains("Enter your enrollment code"), "{html}");
    let (status, html) = post_enrollment_code(&c, &w, &other_than(&code)).await;
    assert_eq!(status, 200);
    assert!(html.contains("That code didn't work"), "{html}");
    assert_eq!(
        w.gw.gateway()
            .store
            .user_failures("customer")
            .await
            .unwrap(),
        1
    );
    // Not a code at all: said so, and not counted.
    let (status, html) = post_enrollment_code(&c, &w, "12ab").await;
    assert_eq!(status, 200);
    assert!(!html.contains("That code didn't work"), "{html}");

    // Another browser signs in meanwhile and is asked for the code too.
    let other = client(&w.gw);
    let other_page = login_to_code_page(&other, &w, "customer").await;
    // The right code opens the pairing.
    let (status, to) = post_enrollment_code(&c, &w, &code).await;
    assert_eq!((status, to.as_str()), (303, "/.mfa/enroll"));
    // Once only: the other browser's use of the same code (typed without spaces) is refused,
    // and the page says to call for a new one.
    let (status, html) = post_on_page(&other, &w, &other_page, &compact).await;
    assert_eq!(status, 200);
    assert!(html.contains("has been used or replaced"), "{html}");
    assert!(!html.contains(r#"name="code""#), "{html}");
    // Nor may that other sign-in pair an app: its enrollment page sends it back to the code.
    let r = other.get(url(&w.gw, "/.mfa/enroll")).send().await.unwrap();
    assert_eq!(location(&r), CODE_PAGE);

    // The sign-in that typed it pairs the new phone and reaches the VMS.
    pair_new_app(&c, &w).await;
    let r = w.gw.gateway().store.user("customer").await.unwrap();
    assert!(r.enrolled() && !r.enrollment_code_required());
    let (_, body) = api_get(&w, "/.mfa/admin/api/users/customer").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["enrollment_code_pending"], false, "{v}");

    // Audited, and never with the code.
    let records = audit(&w).await;
    assert_eq!(events_of(&records, "enrollment_code_issued"), 1);
    assert_eq!(events_of(&records, "enrollment_code_accepted"), 1);
    assert!(events_of(&records, "enrollment_code_refused") >= 1);
    for r in &records {
        assert!(!r.contains(&compact) && !r.contains(&code), "{r}");
    }
    let (_, html) = page(&msp, &w.gw, "/.mfa/admin/user?u=customer").await;
    assert!(html.contains("Enrollment code issued"), "{html}");
    assert!(html.contains("Enrollment code accepted"), "{html}");
}

#[tokio::test]
async fn wrong_enrollment_codes_lock_the_code_step_like_wrong_app_codes() {
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let customer = client(&w.gw);
    enroll(&customer, &w, "customer").await;
    let code = api_reset(&w, "customer").await;
    let c = client(&w.gw);
    login_to_code_page(&c, &w, "customer").await;
    // The default limit is 5: the last two warn, the fifth locks.
    for i in 1..=4 {
        let (status, html) = post_enrollment_code(&c, &w, &other_than(&code)).await;
        assert_eq!(status, 200, "attempt {i}");
        if i >= 3 {
            assert!(html.contains("left"), "attempt {i}: {html}");
        }
    }
    let (status, html) = post_enrollment_code(&c, &w, &other_than(&code)).await;
    assert_eq!(status, 429, "{html}");
    // Locked: even the right code is refused now, and nothing is consumed.
    let (status, _) = post_enrollment_code(&c, &w, &code).await;
    assert_eq!(status, 429);
    assert!(
        w.gw.gateway()
            .store
            .user("customer")
            .await
            .unwrap()
            .enrollment_code_valid_until(w.gw.clock.unix())
            .is_some()
    );
    let records = audit(&w).await;
    assert!(events_of(&records, "locked") >= 1);
    // The MSP resets the locked user again: a new code, and the lock is lifted with it.
    let code = api_reset(&w, "customer").await;
    let c = client(&w.gw);
    login_to_code_page(&c, &w, "customer").await;
    let (status, to) = post_enrollment_code(&c, &w, &code).await;
    assert_eq!((status, to.as_str()), (303, "/.mfa/enroll"));
    pair_new_app(&c, &w).await;
}

#[tokio::test]
async fn a_new_code_kills_the_old_one_and_an_expired_code_sends_the_user_to_the_msp() {
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let customer = client(&w.gw);
    enroll(&customer, &w, "customer").await;
    // A new code for a user with an app is refused.
    let (status, v) = api_post(
        &w,
        "/.mfa/admin/api/users/customer/enrollment-code",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 409, "{v}");
    let old = api_reset(&w, "customer").await;
    let (status, v) = api_post(
        &w,
        "/.mfa/admin/api/users/customer/enrollment-code",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let new = v["enrollment_code"].as_str().unwrap().to_string();
    assert!(is_grouped_code(&new) && new != old);

    // The old code no longer works (a wrong code); the new one does.
    let c = client(&w.gw);
    login_to_code_page(&c, &w, "customer").await;
    let (status, html) = post_enrollment_code(&c, &w, &old).await;
    assert_eq!(status, 200);
    assert!(html.contains("That code didn't work"), "{html}");
    let (status, to) = post_enrollment_code(&c, &w, &new).await;
    assert_eq!((status, to.as_str()), (303, "/.mfa/enroll"));

    // A code issued after the right one was typed ends that sign-in's pairing too (the MSP
    // gave the code to someone else by mistake, say): the command line this time.
    let cfg = w.gw.dir.join("gateway.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
        .args(["admin", "--config"])
        .arg(&cfg)
        .args(["enrollment-code", "customer"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let third = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Enrollment code: "))
        .map(|l| l[..9].to_string())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(is_grouped_code(&third), "{stdout}");
    let r = c.get(url(&w.gw, "/.mfa/enroll")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        CODE_PAGE,
        "the earlier sign-in must type the new code"
    );

    // A code made by the gateway's clock, then 72 hours later: expired, no form, the way to
    // a new code.
    let (status, v) = api_post(
        &w,
        "/.mfa/admin/api/users/customer/enrollment-code",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    w.gw.clock.advance(72 * 3600 + 1);
    let c = client(&w.gw);
    let html = login_to_code_page(&c, &w, "customer").await;
    assert!(html.contains("Your enrollment code has expired"), "{html}");
    assert!(!html.contains(r#"name="code""#), "{html}");
    let (_, body) = api_get(&w, "/.mfa/admin/api/users/customer").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["enrollment_code_pending"], false, "{v}");
    assert!(v["enrollment_code_valid_until"].as_u64().is_some(), "{v}");
    // The user still cannot pair.
    let r = c.get(url(&w.gw, "/.mfa/enroll")).send().await.unwrap();
    assert_eq!(location(&r), CODE_PAGE);
    assert!(
        w.gw.gateway()
            .store
            .user("customer")
            .await
            .unwrap()
            .enrollment_code_required()
    );
}

#[tokio::test]
async fn an_expired_code_is_refused_when_typed() {
    // A short validity: one hour.
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let mut w = w;
    let text = format!("{}enrollment_code_hours = 1\n", w.text);
    w.gw.stop().await;
    w.gw = start_gateway(
        &w.gw.dir.clone(),
        &text,
        &w.gw.ca_pem.clone(),
        w.gw.clock.clone(),
    )
    .await;
    let customer = client(&w.gw);
    enroll(&customer, &w, "customer").await;
    let code = api_reset(&w, "customer").await;
    // The page is shown with a form 10 s before the code expires; it is sent 20 s later.
    w.gw.clock.advance(3590);
    let c = client(&w.gw);
    let page = login_to_code_page(&c, &w, "customer").await;
    assert!(page.contains(r#"name="code""#), "{page}");
    w.gw.clock.advance(20);
    let (status, html) = post_on_page(&c, &w, &page, &code).await;
    assert_eq!(status, 200);
    assert!(html.contains("Your enrollment code has expired"), "{html}");
    let records = audit(&w).await;
    assert!(
        records
            .iter()
            .any(|r| r.contains("enrollment_code_refused") && r.contains("expired")),
        "{records:?}"
    );
    assert_eq!(
        w.gw.gateway()
            .store
            .user_failures("customer")
            .await
            .unwrap(),
        0,
        "an expired code is not counted"
    );
}

#[tokio::test]
async fn with_the_setting_off_a_reset_leads_to_the_enrollment_as_before() {
    let w = crate::mfa_flow::world("2022-02-01T09:00:00Z", "").await;
    let mut w = w;
    let text = format!(
        "{}\n{}reset_requires_enrollment_code = false\n",
        w.text,
        token_section()
    );
    w.gw.stop().await;
    w.gw = start_gateway(
        &w.gw.dir.clone(),
        &text,
        &w.gw.ca_pem.clone(),
        w.gw.clock.clone(),
    )
    .await;
    let customer = client(&w.gw);
    enroll(&customer, &w, "customer").await;
    let (status, v) = api_post(
        &w,
        "/.mfa/admin/api/users/customer/reset",
        serde_json::json!({ "reason": "phone lost" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("enrollment_code").is_none(), "{v}");
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "customer").await;
    assert_eq!(location(&r), "/.mfa/enroll");
    pair_new_app(&c, &w).await;
    assert_eq!(events_of(&audit(&w).await, "enrollment_code_issued"), 0);
}

#[tokio::test]
async fn the_msp_reads_the_code_from_the_reset_page_and_can_make_a_new_one_there() {
    let w = admin_world("2022-02-01T09:00:00Z", "").await;
    let customer = client(&w.gw);
    enroll(&customer, &w, "customer").await;
    let msp = client(&w.gw);
    enroll(&msp, &w, "msp").await;
    let (_, html) = page(&msp, &w.gw, "/.mfa/admin/user?u=customer").await;
    assert!(
        html.contains("You get a one-time enrollment code"),
        "{html}"
    );
    let r = post_form(
        &msp,
        &w.gw,
        "/.mfa/admin/reset",
        &[
            ("csrf", csrf(&html).as_str()),
            ("user", "customer"),
            ("reason", "phone lost, ticket 9"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    let first = shown_enrollment_code(&html).expect("the code is on the answer");
    assert!(is_grouped_code(&first), "{first}");
    assert!(html.contains("This code is shown only now"), "{html}");
    assert!(html.contains("Sign in to the VMS as usual"), "{html}");
    // Shown once: the user page shows that it waits, not the code.
    let (_, html) = page(&msp, &w.gw, "/.mfa/admin/user?u=customer").await;
    assert!(shown_enrollment_code(&html).is_none(), "{html}");
    assert!(!html.contains(&first));
    // A new code on the page replaces it.
    let r = post_form(
        &msp,
        &w.gw,
        "/.mfa/admin/enrollment-code",
        &[("csrf", csrf(&html).as_str()), ("user", "customer")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let second = shown_enrollment_code(&html).expect("the new code is on the answer");
    assert_ne!(first, second);
    // Without a valid form token nothing is made.
    let r = post_form(
        &msp,
        &w.gw,
        "/.mfa/admin/enrollment-code",
        &[("csrf", "forged"), ("user", "customer")],
    )
    .await;
    assert_eq!(r.status(), 403);
    // The customer: the first code is wrong now, the second works.
    let c = client(&w.gw);
    login_to_code_page(&c, &w, "customer").await;
    let (status, _) = post_enrollment_code(&c, &w, &first).await;
    assert_eq!(status, 200);
    let (status, to) = post_enrollment_code(&c, &w, &second).await;
    assert_eq!((status, to.as_str()), (303, "/.mfa/enroll"));
    pair_new_app(&c, &w).await;
    // With an app again, a new code is refused on the page.
    let (_, html) = page(&msp, &w.gw, "/.mfa/admin/user?u=customer").await;
    assert!(!html.contains(r#"action="/.mfa/admin/enrollment-code""#));
    let r = post_form(
        &msp,
        &w.gw,
        "/.mfa/admin/enrollment-code",
        &[("csrf", csrf(&html).as_str()), ("user", "customer")],
    )
    .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("has an app connected"));
    let records = audit(&w).await;
    assert_eq!(events_of(&records, "enrollment_code_issued"), 2);
    assert!(
        records
            .iter()
            .any(|r| r.contains("enrollment_code_issued") && r.contains("via=new_code"))
    );
}

#[tokio::test]
async fn an_optional_user_sets_mfa_up_after_a_reset_only_with_the_code() {
    // MFA is offered (optional) to MSPs on this date; the service desk's token acts as an MSP.
    let w = admin_world("2021-12-01T09:00:00Z", "").await;
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
    let (r, _) = try_pair(&c, &w.gw).await.unwrap();
    assert_eq!(r.status(), 302, "enrolled through the offer");
    let code = api_reset(&w, "msp").await;

    // With the password only: "not now" at the offer, then set-up on the settings page.
    let thief = client(&w.gw);
    assert_eq!(location(&login(&thief, &w.gw, "msp").await), "/.mfa/offer");
    let html = get_text(&thief, &w.gw, "/.mfa/offer").await;
    let r = post_form(
        &thief,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "postpone")],
    )
    .await;
    assert!(sets_vms_session(&r));
    let html = get_text(&thief, &w.gw, "/.mfa/account").await;
    let r = post_form(
        &thief,
        &w.gw,
        "/.mfa/account/set-up",
        &[("csrf", csrf(&html).as_str()), ("code", "")],
    )
    .await;
    assert_eq!(r.status(), 409);
    let html = r.text().await.unwrap();
    assert!(html.contains("Your MFA was reset"), "{html}");
    assert!(try_pairing_secret(&html).is_none());

    // The owner: "set up" at the offer asks for the code (Cancel offered: MFA is optional).
    let owner = client(&w.gw);
    assert_eq!(location(&login(&owner, &w.gw, "msp").await), "/.mfa/offer");
    let html = get_text(&owner, &w.gw, "/.mfa/offer").await;
    let r = post_form(
        &owner,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&html).as_str()), ("action", "setup")],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/enroll");
    let r = owner.get(url(&w.gw, "/.mfa/enroll")).send().await.unwrap();
    assert_eq!(location(&r), CODE_PAGE);
    let html = get_text(&owner, &w.gw, CODE_PAGE).await;
    assert!(html.contains(r#"value="cancel""#), "{html}");
    let (status, to) = post_enrollment_code(&owner, &w, &code).await;
    assert_eq!((status, to.as_str()), (303, "/.mfa/enroll"));
    pair_new_app(&owner, &w).await;
}
