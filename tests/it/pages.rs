//! The pages users meet every day, through the real gateway: an enrollment that expires and
//! comes back with the same QR code, the offer's quiet period, the account page of a role
//! without MFA, the ways out of an opt-in enrollment and into the settings, recovery codes,
//! and the messages of the code field.

use std::time::Duration;

use mfa_gateway::auth::totp;

use crate::mfa_flow::world;
use crate::support::browser::{
    csrf, get_status, get_text, location, login, pairing_secret, post_code, post_form,
    recovery_codes, set_cookies, sets_vms_session, through_recovery_codes,
};
use crate::support::*;

/// The Redis key of a user's pending enrollment secret (test key prefix `t:`).
fn pending_key(user: &str) -> String {
    format!("t:{{u:{user}}}:pending")
}

async fn enroll_page(c: &reqwest::Client, w: &crate::mfa_flow::World, user: &str) -> String {
    let r = login(c, &w.gw, user).await;
    assert_eq!(location(&r), "/.mfa/enroll", "{user} is asked to enroll");
    get_text(c, &w.gw, "/.mfa/enroll").await
}

#[tokio::test]
async fn an_expired_enrollment_comes_back_with_the_same_secret_until_confirmed() {
    let w = world("2022-02-01T09:00:00Z", "").await;
    let port = w.redis.port;
    let c = client(&w.gw);
    let first = enroll_page(&c, &w, "msp").await;
    let secret = pairing_secret(&first);
    assert!(!first.contains("Delete that entry"), "nothing replaced yet");
    assert!(first.contains("This page stays open for 30 minutes."));
    // The enrollment step outlasts a code challenge (5 minutes)...
    w.gw.clock.advance(301);
    assert_eq!(get_status(&c, &w.gw, "/.mfa/enroll").await, 200);
    // ...and when it does expire, the next sign-in in this browser shows the same secret.
    w.gw.clock.advance(1500);
    assert_eq!(get_status(&c, &w.gw, "/.mfa/enroll").await, 403);
    let again = enroll_page(&c, &w, "msp").await;
    assert_eq!(
        pairing_secret(&again),
        secret,
        "the app's entry still works"
    );
    assert!(!again.contains("Delete that entry"));
    // Kept sealed: the store holds neither the secret nor its pairing code.
    let stored: Vec<u8> = redis_query(port, &["GET", &pending_key("msp")])
        .await
        .unwrap();
    assert!(!stored.is_empty());
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_slice()));
    let b32 = totp::pairing_code(&secret).replace(' ', "");
    assert!(!String::from_utf8_lossy(&stored).contains(&b32));
    let ttl: i64 = redis_query(port, &["TTL", &pending_key("msp")])
        .await
        .unwrap();
    assert!(
        ttl > 23 * 3600 && ttl <= 24 * 3600,
        "pending for a day: {ttl}"
    );

    // Another browser (someone with the password alone) is never shown that secret: it gets
    // one of its own, which replaces it.
    let other = client(&w.gw);
    let theirs = enroll_page(&other, &w, "msp").await;
    let theirs = pairing_secret(&theirs);
    assert_ne!(theirs, secret);
    // So the owner's browser is shown a new one too, with the advice to delete the earlier
    // entry.
    let third = enroll_page(&c, &w, "msp").await;
    let new_secret = pairing_secret(&third);
    assert_ne!(new_secret, secret);
    assert_ne!(new_secret, theirs);
    assert!(third.contains(
        "Added an earlier code for this account to your app? Delete that entry and scan this one"
    ));
    // A code from the earlier entry does not enroll; one from the new one does, and takes
    // the pending secret with it.
    w.gw.clock.advance(30);
    let old_code = totp::code_at(&secret, w.gw.clock.unix());
    let new_code = totp::code_at(&new_secret, w.gw.clock.unix());
    if old_code != new_code {
        let r = post_code(&c, &w.gw, "/.mfa/enroll", &old_code).await;
        assert_eq!(r.status(), 200);
        assert!(!sets_vms_session(&r));
    }
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/enroll",
        &[("csrf", csrf(&third).as_str()), ("code", new_code.as_str())],
    )
    .await;
    let r = through_recovery_codes(&c, &w.gw, r).await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));
    let exists: i64 = redis_query(port, &["EXISTS", &pending_key("msp")])
        .await
        .unwrap();
    assert_eq!(exists, 0, "the enrollment removed the pending secret");
    let noted: i64 = redis_query(port, &["HEXISTS", "t:{u:msp}", "pending_at"])
        .await
        .unwrap();
    assert_eq!(noted, 0);
}

#[tokio::test]
async fn set_up_from_the_offer_gets_the_enrollment_time_and_keeps_the_vms_session() {
    let w = world("2021-11-15T09:00:00Z", "").await;
    let c = client(&w.gw);
    assert_eq!(location(&login(&c, &w.gw, "customer").await), "/.mfa/offer");
    let offer = get_text(&c, &w.gw, "/.mfa/offer").await;
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&offer).as_str()), ("action", "setup")],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/enroll");
    let (_, logouts) = w.vms.stats();
    w.gw.clock.advance(400);
    mfa_gateway::mfa::sweeper::sweep_once(w.gw.gateway()).await;
    let html = get_text(&c, &w.gw, "/.mfa/enroll").await;
    let secret = pairing_secret(&html);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        w.vms.stats().1,
        logouts,
        "the withheld VMS session was kept"
    );
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
    assert!(sets_vms_session(&r));
}

#[tokio::test]
async fn a_role_without_mfa_is_told_so_and_cannot_set_it_up() {
    let w = world("2022-02-01T09:00:00Z", "").await;
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "supplier").await;
    assert_eq!(location(&r), "/home");
    let page = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(page.contains("MFA is not used for your role, so there is nothing to set up here."));
    assert!(!page.contains("Set up MFA"));
    assert!(!page.contains("optional"));
    assert!(!page.contains("/.mfa/account/setup"));
}

#[tokio::test]
async fn not_now_keeps_the_offer_away_for_the_configured_time_and_says_so() {
    let w = world("2021-11-15T09:00:00Z", "offer_quiet_period = \"7d\"").await;
    let c = client(&w.gw);
    assert_eq!(location(&login(&c, &w.gw, "customer").await), "/.mfa/offer");
    let offer = get_text(&c, &w.gw, "/.mfa/offer").await;
    assert!(offer.contains("we won't ask again for 7 days."), "{offer}");
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&offer).as_str()), ("action", "postpone")],
    )
    .await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));
    w.gw.clock.advance(6 * 86_400);
    assert_eq!(
        location(&login(&client(&w.gw), &w.gw, "customer").await),
        "/home"
    );
    w.gw.clock.advance(86_400);
    assert_eq!(
        location(&login(&client(&w.gw), &w.gw, "customer").await),
        "/.mfa/offer",
        "asked again after seven days"
    );
}

#[tokio::test]
async fn opt_in_enrollment_can_be_cancelled_a_required_one_cannot() {
    let w = world("2021-11-15T09:00:00Z", "").await;
    let c = client(&w.gw);
    login(&c, &w.gw, "customer").await;
    let offer = get_text(&c, &w.gw, "/.mfa/offer").await;
    post_form(
        &c,
        &w.gw,
        "/.mfa/offer",
        &[("csrf", csrf(&offer).as_str()), ("action", "setup")],
    )
    .await;
    let html = get_text(&c, &w.gw, "/.mfa/enroll").await;
    assert!(html.contains(r#"name="action" value="cancel">Cancel</button>"#));
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/enroll",
        &[("csrf", csrf(&html).as_str()), ("action", "cancel")],
    )
    .await;
    assert_eq!(r.status(), 302, "released without MFA");
    assert_eq!(location(&r), "/home");
    assert!(sets_vms_session(&r));
    // Cancelled like "Not now": the offer stays away.
    assert_eq!(
        location(&login(&client(&w.gw), &w.gw, "customer").await),
        "/home"
    );

    // Where MFA is required there is no Cancel, and sending one anyway releases nothing.
    w.gw.clock.set(at("2022-02-01T09:00:00Z"));
    let c = client(&w.gw);
    let html = enroll_page(&c, &w, "msp").await;
    assert!(!html.contains(r#"value="cancel""#));
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/enroll",
        &[("csrf", csrf(&html).as_str()), ("action", "cancel")],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(!sets_vms_session(&r));
    assert_eq!(
        get_status(&c, &w.gw, "/.mfa/enroll").await,
        200,
        "still enrolling"
    );
}

#[tokio::test]
async fn a_sign_in_can_finish_at_the_mfa_settings() {
    let w = world("2022-02-01T09:00:00Z", "").await;
    let c = client(&w.gw);
    let html = enroll_page(&c, &w, "customer").await;
    let secret = pairing_secret(&html);
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/enroll",
        &[("csrf", csrf(&html).as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/recovery-codes");
    let page = get_text(&c, &w.gw, "/.mfa/recovery-codes").await;
    // One code per line, the warning above them, and a download that needs no script.
    let codes = recovery_codes(&page);
    assert_eq!(codes.len(), 10);
    let warning = page.find("They will not be shown again.").unwrap();
    assert!(warning < page.find(&codes[0]).unwrap());
    let link = page.find(r#"download="recovery-codes.txt""#).unwrap();
    let href = &page[..link];
    let href = &href[href.rfind("href=\"").unwrap() + 6..];
    let href = &href[..href.find('"').unwrap()];
    assert!(href.starts_with("data:text/plain;charset=utf-8,"));
    for code in &codes {
        assert!(
            href.contains(&format!("%0D%0A{}%0D%0A", code.replace(' ', "%20")))
                || href.ends_with(&format!("%0D%0A{}%0D%0A", code.replace(' ', "%20")))
        );
    }
    let r = post_form(
        &c,
        &w.gw,
        "/.mfa/recovery-codes",
        &[("csrf", csrf(&page).as_str()), ("action", "settings")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/.mfa/account");
    assert!(sets_vms_session(&r), "the VMS session is released");
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("__Host-mfagw="))
    );
    let account = get_text(&c, &w.gw, "/.mfa/account").await;
    assert!(account.contains("<h1>Your MFA settings</h1>"), "{account}");
    assert!(account.contains("MFA is on for your account."));
    assert_eq!(get_status(&c, &w.gw, "/home").await, 200);
}

#[tokio::test]
async fn code_messages_say_the_format_the_lock_and_who_helps() {
    let w = world(
        "2022-02-01T09:00:00Z",
        "max_failures = 3\nhelpdesk_name = \"the Acme service desk\"",
    )
    .await;
    let c = client(&w.gw);
    let html = enroll_page(&c, &w, "admin").await;
    assert!(html.contains(r#"title="6 digits, for example 123456""#));
    // The app link is a button above the QR code (shown on phones).
    let button = html
        .find(r#"<a class="button primary phone-only" href="otpauth://totp/"#)
        .unwrap();
    assert!(button < html.find(r#"<div class="qr">"#).unwrap());
    let r = post_code(&c, &w.gw, "/.mfa/enroll", "12").await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("A login code has 6 digits, for example 123456."));
    let secret = pairing_secret(&page);
    let good = totp::code_at(&secret, w.gw.clock.unix());
    let wrong = if good == "123456" { "654321" } else { "123456" };
    // The last tries are counted down before the lock.
    let r = post_code(&c, &w.gw, "/.mfa/enroll", wrong).await;
    let page = r.text().await.unwrap();
    assert!(
        page.contains("That code didn't work. 2 more tries, then the code step locks for a while."),
        "{page}"
    );
    let r = post_code(&c, &w.gw, "/.mfa/enroll", wrong).await;
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("That code didn't work. One more try, then the code step locks for a while.")
    );
    let r = post_code(&c, &w.gw, "/.mfa/enroll", wrong).await;
    assert_eq!(r.status(), 429);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Please try again in 15 minutes. Can't wait? Ask the Acme service desk to lift the lock."),
        "{page}"
    );
    // Dutch, same settings.
    let r = c
        .get(url(&w.gw, "/.mfa/enroll"))
        .header("accept-language", "nl")
        .send()
        .await
        .unwrap();
    let nl = r.text().await.unwrap();
    assert!(nl.contains("Lukt het scannen niet?"));
    assert!(nl.contains("Toevoegen aan authenticator-app"));
}

#[tokio::test]
async fn times_are_local_and_audit_events_are_words_on_the_admin_pages() {
    // The policy's zone is Europe/Amsterdam: 09:00 UTC is 10:00 CET.
    let w = world("2022-02-01T09:00:00Z", "").await;
    let customer = client(&w.gw);
    crate::mfa_flow::enroll(&customer, &w, "customer").await;
    let account = get_text(&customer, &w.gw, "/.mfa/account").await;
    assert!(
        account.contains("<dt>Set up on</dt><dd>2022-02-01 10:00 CET</dd>"),
        "{account}"
    );
    assert!(!account.contains("UTC"));
    let msp = client(&w.gw);
    crate::mfa_flow::enroll(&msp, &w, "msp").await;
    let search = get_text(&msp, &w.gw, "/.mfa/admin/?q=cust").await;
    assert!(search.contains(r#"<a href="/.mfa/account">Your MFA settings</a>"#));
    let page = get_text(&msp, &w.gw, "/.mfa/admin/user?u=customer").await;
    assert!(page.contains(r#"<a href="/.mfa/account">Your MFA settings</a>"#));
    assert!(
        page.contains(r#"<td role="cell" title="enrolled">MFA set up</td>"#),
        "{page}"
    );
    assert!(page.contains(r#"title="recovery_codes_issued">New recovery codes</td>"#));
    assert!(page.contains("2022-02-01 10:00 CET"));
    assert!(!page.contains(">enrolled<"));
    let nl = msp
        .get(url(&w.gw, "/.mfa/admin/user?u=customer"))
        .header("accept-language", "nl")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(nl.contains(r#"title="enrolled">MFA ingesteld</td>"#));
}

/// Every gateway page a signed-in user sees links to the MFA settings, error pages included;
/// an anonymous visitor's error page does not.
#[tokio::test]
async fn a_signed_in_users_error_page_links_to_the_mfa_settings() {
    let w = world("2022-03-01T10:00:00Z", "").await;
    let signed_in = client(&w.gw);
    crate::support::browser::login(&signed_in, &w.gw, "supplier").await;
    let r = signed_in
        .get(url(&w.gw, "/.mfa/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<a href=\"/.mfa/account\">Your MFA settings</a>"),
        "{html}"
    );
    let r = client(&w.gw)
        .get(url(&w.gw, "/.mfa/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("/.mfa/account"));
}
