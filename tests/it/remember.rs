//! "Don't ask for a code on this browser for N days", end to end: the demo VMS, a real Redis,
//! the real gateway (two instances where it matters), a browser-like client. The next sign-in
//! goes through the VMS's own login form again, carrying only the remember cookie, as a
//! browser does the next morning.

use mfa_gateway::auth::totp;
use mfa_gateway::clock::Clock;

use crate::mfa_flow::World;
use crate::support::browser::*;
use crate::support::*;

/// Where the shipped policy enforces MFA for customers and MSPs.
const ENFORCED: &str = "2022-02-01T09:00:00Z";

/// The shipped policy, with customers remembered for 30 days and MSPs for 7 in the enforced
/// phase, a later phase (from 2022-02-15) that remembers nobody, and one (from 2022-03-01)
/// where MFA is optional for customers again, remembered for 30 days.
fn policy() -> String {
    format!(
        "{POLICY}\n[phase.remember_browser_days]\ncustomer = 30\nmsp = 7\n\n\
         [[phase]]\nfrom = 2022-02-15\nname = \"no remembering\"\n[phase.roles]\n\
         administrator = \"enforced\"\nmsp = \"enforced\"\ncustomer = \"enforced\"\n\
         supplier = \"none\"\ncontractor = \"none\"\nresource = \"none\"\n\n\
         [[phase]]\nfrom = 2022-03-01\nname = \"optional again\"\n[phase.roles]\n\
         administrator = \"enforced\"\nmsp = \"enforced\"\ncustomer = \"available\"\n\
         supplier = \"none\"\ncontractor = \"none\"\nresource = \"none\"\n\
         [phase.remember_browser_days]\ncustomer = 30\n"
    )
}

/// The world of these tests: MSPs are not among `admin.roles` here, so that their own days
/// (7) can be remembered (see `administrators_are_never_remembered`).
async fn world() -> World {
    world_with("[admin]\nroles = [\"administrator\"]\n").await
}

async fn world_with(extra: &str) -> World {
    let redis = RedisProc::start();
    let (vms_addr, vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), policy()).unwrap();
    let text = config_text(&c, vms_addr, &redis.url(), DEMO_VMS, extra);
    let gw = start_gateway(dir.path(), &text, &c.ca_pem, Clock::manual(at(ENFORCED))).await;
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

/// A second instance of the world's gateway: same configuration (key ring), Redis and clock.
async fn second(w: &World) -> (Gw, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), policy()).unwrap();
    let gw = start_gateway(dir.path(), &w.text, &w.gw.ca_pem, w.gw.clock.clone()).await;
    (gw, dir)
}

/// The `name=value` of the remember cookie a response sets, if it sets one.
fn remember_cookie(r: &reqwest::Response) -> Option<String> {
    set_cookies(r)
        .iter()
        .find(|c| c.starts_with("__Host-mfagw-rb=") && !c.starts_with("__Host-mfagw-rb=;"))
        .map(|c| c.split(';').next().unwrap().to_string())
}

/// Signs `user` (enrolled with `secret`) in with a code in a new browser; with `remember`,
/// the box is ticked. The code page must offer the box exactly when `offered`. Returns the
/// browser and the released answer.
async fn sign_in(
    gw: &Gw,
    user: &str,
    secret: &[u8],
    remember: bool,
    offered: Option<u32>,
) -> (reqwest::Client, reqwest::Response) {
    let c = client(gw);
    let r = login(&c, gw, user).await;
    assert_eq!(location(&r), "/.mfa/verify", "{user} is asked for a code");
    let html = get_text(&c, gw, "/.mfa/verify").await;
    match offered {
        Some(days) => assert!(
            html.contains(&format!(
                "<label for=\"remember\">Don't ask for a code on this browser for {days} days</label>"
            )),
            "{html}"
        ),
        None => assert!(!html.contains("name=\"remember\""), "{html}"),
    }
    gw.clock.advance(30);
    let code = totp::code_at(secret, gw.clock.unix());
    let token = csrf(&html);
    let mut fields = vec![("csrf", token.as_str()), ("code", code.as_str())];
    if remember {
        fields.push(("remember", "yes"));
    }
    let r = post_form(&c, gw, "/.mfa/verify", &fields).await;
    assert_eq!(r.status(), 302, "{user}: code accepted");
    assert!(sets_vms_session(&r));
    (c, r)
}

/// The next sign-in in a browser that holds only `cookie` (the remember cookie, or anything
/// else): through the VMS's login form. `true` when the session was released without a code;
/// `false` when the code page came (anything else fails the test).
async fn skips_the_code(gw: &Gw, user: &str, cookie: &str) -> bool {
    let c = plain_client(gw.addr, &gw.ca_pem);
    let r = c
        .post(url(gw, "/login"))
        .header("cookie", cookie)
        .form(&[("username", user), ("password", "demo")])
        .send()
        .await
        .unwrap();
    match (r.status().as_u16(), location(&r).as_str()) {
        (302, "/home") => {
            assert!(sets_vms_session(&r), "released with the session");
            true
        }
        (303, "/.mfa/verify") => {
            assert!(!sets_vms_session(&r), "withheld");
            false
        }
        other => panic!("{user}: unexpected {other:?}"),
    }
}

async fn events(gw: &Gw, user: &str) -> Vec<(String, String)> {
    gw.gateway()
        .audit
        .recent_for(user, 500, 100)
        .await
        .into_iter()
        .map(|r| (r.event.as_str().to_string(), r.detail.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn a_remembered_browser_skips_the_code_on_every_instance_for_its_days() {
    let w = world().await;
    let gw = &w.gw;
    let secret = enroll(&client(gw), gw, "customer").await;

    // Not ticked: nothing is remembered.
    let (_, r) = sign_in(gw, "customer", &secret, false, Some(30)).await;
    assert_eq!(remember_cookie(&r), None);
    assert!(!skips_the_code(gw, "customer", "").await);

    // Ticked: the cookie, with the attributes a browser must keep it under.
    let (browser, r) = sign_in(gw, "customer", &secret, true, Some(30)).await;
    let set = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("__Host-mfagw-rb="))
        .unwrap();
    for part in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=2592000",
    ] {
        assert!(set.contains(part), "{part}: {set}");
    }
    let cookie = remember_cookie(&r).unwrap();
    let remembered = events(gw, "customer").await;
    assert!(
        remembered
            .iter()
            .any(|(e, d)| e == "browser_remembered" && d.contains("days=30")),
        "{remembered:?}"
    );

    // The next sign-in in that browser skips the code, on this instance and on another one.
    gw.clock.advance(3600);
    assert!(skips_the_code(gw, "customer", &cookie).await);
    let (gw2, _dir2) = second(&w).await;
    assert!(skips_the_code(&gw2, "customer", &cookie).await);
    assert!(
        events(gw, "customer")
            .await
            .iter()
            .any(|(e, d)| e == "verify_success" && d.starts_with("no code: remembered browser=")),
        "a skipped code is audited"
    );
    let m = gw.gateway().metrics.render();
    assert!(
        m.contains(
            r#"mfa_gateway_logins_total{role="customer",state="enforced",next="remembered"} 1"#
        ),
        "{m}"
    );
    // A browser without it is still asked.
    assert!(!skips_the_code(gw, "customer", "").await);

    // The account page lists it (this browser marked) with when it was remembered and used.
    let html = get_text(&browser, gw, "/.mfa/account").await;
    assert!(
        html.contains("<h2 id=\"h-browsers\">Remembered browsers</h2>"),
        "{html}"
    );
    assert_eq!(html.matches("<dt>Remembered on</dt>").count(), 1, "{html}");
    assert!(html.contains("(this browser)"), "{html}");
    assert!(
        html.contains("<dt>Last used</dt><dd>2022-02-01 11:"),
        "{html}"
    );

    // Remembered for the role's days: an MSP's 7 (in the same phase), then the code again.
    let msp = enroll(&client(gw), gw, "msp").await;
    let (_, r) = sign_in(gw, "msp", &msp, true, Some(7)).await;
    assert!(set_cookies(&r).iter().any(|c| c.contains("Max-Age=604800")));
    let msp_cookie = remember_cookie(&r).unwrap();
    gw.clock.advance(7 * 86_400 - 60);
    assert!(skips_the_code(gw, "msp", &msp_cookie).await, "the 7th day");
    gw.clock.advance(60);
    assert!(!skips_the_code(gw, "msp", &msp_cookie).await, "7 days on");
}

/// Users who may use the administration pages (`admin.roles`, by default MSPs and
/// administrators) are never remembered, whatever the policy gives their role: a sign-in
/// without a code must not open those pages. No checkbox, and a hand-ticked one remembers
/// nothing.
#[tokio::test]
async fn administrators_are_never_remembered() {
    let w = world_with("").await;
    let gw = &w.gw;
    let msp = enroll(&client(gw), gw, "msp").await;
    let (_, r) = sign_in(gw, "msp", &msp, true, None).await;
    assert!(remember_cookie(&r).is_none(), "no cookie for an MSP");
    assert!(!skips_the_code(gw, "msp", "__Host-mfagw-rb=x").await);
}

#[tokio::test]
async fn an_msp_reset_forgets_the_remembered_browsers() {
    let w = world_with("").await;
    let gw = &w.gw;
    let secret = enroll(&client(gw), gw, "customer").await;
    let (_, r) = sign_in(gw, "customer", &secret, true, Some(30)).await;
    let cookie = remember_cookie(&r).unwrap();
    assert!(skips_the_code(gw, "customer", &cookie).await);

    // The MSP sees it on the user page and disconnects MFA.
    let msp = client(gw);
    enroll(&msp, gw, "msp").await;
    let html = get_text(&msp, gw, "/.mfa/admin/user?u=customer").await;
    assert!(
        html.contains("<dt>Remembered browsers</dt><dd>1</dd>"),
        "{html}"
    );
    let r = post_form(
        &msp,
        gw,
        "/.mfa/admin/reset",
        &[
            ("csrf", csrf(&html).as_str()),
            ("user", "customer"),
            ("reason", "laptop stolen"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200, "reset done, its enrollment code shown");
    let code = shown_enrollment_code(&r.text().await.unwrap()).expect("the enrollment code");
    assert!(
        events(gw, "customer")
            .await
            .iter()
            .any(|(e, d)| e == "browser_forgotten" && d.contains("count=1 via=reset")),
        "audited"
    );

    // The owner enrolls a new phone: the old browser cookie no longer skips its code.
    let c = client(gw);
    let r = login(&c, gw, "customer").await;
    assert_eq!(location(&r), "/.mfa/enroll", "not enrolled after the reset");
    let new_secret = enroll_with_code(&client(gw), gw, "customer", &code).await;
    assert_ne!(new_secret, secret);
    assert!(!skips_the_code(gw, "customer", &cookie).await);
    let html = get_text(&msp, gw, "/.mfa/admin/user?u=customer").await;
    assert!(
        html.contains("<dt>Remembered browsers</dt><dd>None</dd>"),
        "{html}"
    );
}

#[tokio::test]
async fn forgetting_on_the_account_page_or_by_the_msp_asks_for_the_code_again() {
    let w = world_with("").await;
    let gw = &w.gw;
    let secret = enroll(&client(gw), gw, "customer").await;
    let (a, r) = sign_in(gw, "customer", &secret, true, Some(30)).await;
    let cookie_a = remember_cookie(&r).unwrap();
    let (b, r) = sign_in(gw, "customer", &secret, true, Some(30)).await;
    let cookie_b = remember_cookie(&r).unwrap();
    // Browser B's cookies (approval, VMS session, remember), to use it on another instance.
    let b_cookies = cookie_header(&r);
    let (_, r) = sign_in(gw, "customer", &secret, true, Some(30)).await;
    let cookie_c = remember_cookie(&r).unwrap();
    for c in [&cookie_a, &cookie_b, &cookie_c] {
        assert!(skips_the_code(gw, "customer", c).await);
    }

    // Browser A lists all three, itself marked, and forgets itself.
    let html = get_text(&a, gw, "/.mfa/account").await;
    assert_eq!(html.matches("<dt>Remembered on</dt>").count(), 3, "{html}");
    assert_eq!(html.matches("(this browser)").count(), 1, "{html}");
    let mine = html
        .split("<li>")
        .find(|li| li.contains("(this browser)"))
        .unwrap();
    let id_at = mine.find("name=\"browser\" value=\"").unwrap() + 22;
    let id = &mine[id_at..id_at + 32];
    let r = post_form(
        &a,
        gw,
        "/.mfa/account/forget-browsers",
        &[
            ("csrf", csrf(&html).as_str()),
            ("action", "forget-browser"),
            ("browser", id),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/.mfa/account?done=forgotten");
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("__Host-mfagw-rb=;")),
        "this browser's cookie is removed"
    );
    assert!(
        !skips_the_code(gw, "customer", &cookie_a).await,
        "forgotten"
    );
    assert!(
        skips_the_code(gw, "customer", &cookie_b).await,
        "the others stay"
    );

    // Without its CSRF token nothing is forgotten.
    let r = post_form(
        &b,
        gw,
        "/.mfa/account/forget-browsers",
        &[("action", "forget-all-browsers")],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(skips_the_code(gw, "customer", &cookie_b).await);

    // "Forget all" from browser B, on another instance: none skips any more.
    let (gw2, _dir2) = second(&w).await;
    assert!(
        b_cookies.contains("__Host-mfagw=") && b_cookies.contains(&cookie_b),
        "{b_cookies}"
    );
    let on2 = plain_client(gw2.addr, &gw2.ca_pem);
    let html = on2
        .get(url(&gw2, "/.mfa/account"))
        .header("cookie", &b_cookies)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("<dt>Remembered on</dt>").count(), 2, "{html}");
    let r = on2
        .post(url(&gw2, "/.mfa/account/forget-browsers"))
        .header("cookie", &b_cookies)
        .form(&[
            ("csrf", csrf(&html).as_str()),
            ("action", "forget-all-browsers"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/.mfa/account?done=forgotten-all");
    for c in [&cookie_b, &cookie_c] {
        assert!(!skips_the_code(gw, "customer", c).await);
        assert!(!skips_the_code(&gw2, "customer", c).await);
    }
    let forgotten = events(gw, "customer").await;
    assert!(
        forgotten
            .iter()
            .any(|(e, d)| e == "browser_forgotten" && d.starts_with("browser=")),
        "{forgotten:?}"
    );
    assert!(
        forgotten
            .iter()
            .any(|(e, d)| e == "browser_forgotten" && d.contains("count=2 via=self")),
        "{forgotten:?}"
    );

    // An MSP forgets them too (audited with the MSP as actor).
    let (_, r) = sign_in(gw, "customer", &secret, true, Some(30)).await;
    let cookie_d = remember_cookie(&r).unwrap();
    assert!(skips_the_code(gw, "customer", &cookie_d).await);
    let msp = client(gw);
    enroll(&msp, gw, "msp").await;
    let html = get_text(&msp, gw, "/.mfa/admin/user?u=customer").await;
    let r = post_form(
        &msp,
        gw,
        "/.mfa/admin/forget-browsers",
        &[("csrf", csrf(&html).as_str()), ("user", "customer")],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/admin/user?u=customer&done=forget");
    assert!(!skips_the_code(gw, "customer", &cookie_d).await);
    let records = gw.gateway().audit.recent_for("customer", 500, 100).await;
    assert!(
        records
            .iter()
            .any(|r| r.event.as_str() == "browser_forgotten"
                && r.actor == "msp"
                && r.detail.as_deref() == Some("all=true count=1 via=admin"))
    );
}

#[tokio::test]
async fn a_phase_with_0_days_offers_no_box_and_ends_remembered_browsers() {
    let w = world().await;
    let gw = &w.gw;
    let secret = enroll(&client(gw), gw, "customer").await;
    let (_, r) = sign_in(gw, "customer", &secret, true, Some(30)).await;
    let cookie = remember_cookie(&r).unwrap();
    gw.clock.set(at("2022-02-14T22:59:00Z"));
    assert!(
        skips_the_code(gw, "customer", &cookie).await,
        "the last day of the phase"
    );
    // Local midnight in Amsterdam: the phase without remembering.
    gw.clock.set(at("2022-02-14T23:00:00Z"));
    assert!(!skips_the_code(gw, "customer", &cookie).await);
    let (_, r) = sign_in(gw, "customer", &secret, false, None).await;
    assert_eq!(remember_cookie(&r), None);
    // A box ticked anyway (a form sent by hand) remembers nothing.
    let c = client(gw);
    login(&c, gw, "customer").await;
    let html = get_text(&c, gw, "/.mfa/verify").await;
    gw.clock.advance(30);
    let code = totp::code_at(&secret, gw.clock.unix());
    let r = post_form(
        &c,
        gw,
        "/.mfa/verify",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", code.as_str()),
            ("remember", "yes"),
        ],
    )
    .await;
    assert_eq!(r.status(), 302);
    assert_eq!(remember_cookie(&r), None);
}

#[tokio::test]
async fn a_forged_or_another_users_cookie_asks_for_the_code() {
    let w = world().await;
    let gw = &w.gw;
    let customer = enroll(&client(gw), gw, "customer").await;
    let msp = enroll(&client(gw), gw, "msp").await;
    let (_, r) = sign_in(gw, "customer", &customer, true, Some(30)).await;
    let cookie = remember_cookie(&r).unwrap();
    let (_, r) = sign_in(gw, "msp", &msp, true, Some(7)).await;
    let msp_cookie = remember_cookie(&r).unwrap();
    assert!(skips_the_code(gw, "customer", &cookie).await);
    assert!(skips_the_code(gw, "msp", &msp_cookie).await);

    // Each user's cookie on the other user's sign-in.
    assert!(!skips_the_code(gw, "msp", &cookie).await);
    let value = msp_cookie.trim_start_matches("__Host-mfagw-rb=");
    assert!(!skips_the_code(gw, "customer", &format!("__Host-mfagw-rb={value}")).await);
    // Changed, cut short, made up, or under a name the gateway does not read.
    let (name, value) = cookie.split_once('=').unwrap();
    let mut flipped = value.to_string().into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for forged in [
        format!("{name}={flipped}"),
        format!("{name}={}", &value[..value.len() - 4]),
        format!("{name}=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        format!("{name}="),
        format!("__Host-mfagw-RB={value}"),
    ] {
        assert!(!skips_the_code(gw, "customer", &forged).await, "{forged}");
    }
    // The genuine one still works.
    assert!(skips_the_code(gw, "customer", &cookie).await);
}

#[tokio::test]
async fn a_replaced_phone_or_mfa_turned_off_forgets_every_browser() {
    let w = world().await;
    let gw = &w.gw;
    let secret = enroll(&client(gw), gw, "customer").await;
    let (a, r) = sign_in(gw, "customer", &secret, true, Some(30)).await;
    let cookie = remember_cookie(&r).unwrap();
    assert!(skips_the_code(gw, "customer", &cookie).await);

    // A new phone through the account page: the remembered browser asks for the new code.
    gw.clock.advance(30);
    let html = get_text(&a, gw, "/.mfa/account").await;
    let r = post_form(
        &a,
        gw,
        "/.mfa/account/replace-phone",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", totp::code_at(&secret, gw.clock.unix()).as_str()),
        ],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account/enroll");
    let html = get_text(&a, gw, "/.mfa/account/enroll").await;
    let phone = pairing_secret(&html);
    let r = post_form(
        &a,
        gw,
        "/.mfa/account/enroll",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", totp::code_at(&phone, gw.clock.unix()).as_str()),
        ],
    )
    .await;
    assert_eq!(r.status(), 200, "replaced: new recovery codes shown");
    assert!(!skips_the_code(gw, "customer", &cookie).await);
    assert!(
        events(gw, "customer")
            .await
            .iter()
            .any(|(e, d)| e == "browser_forgotten" && d.contains("count=1 via=phone_replaced"))
    );

    // Where MFA is optional, turning it off forgets them too: after setting MFA up again, the
    // browser remembered before asks for a code.
    gw.clock.set(at("2022-03-02T09:00:00Z"));
    let (b, r) = sign_in(gw, "customer", &phone, true, Some(30)).await;
    let cookie = remember_cookie(&r).unwrap();
    assert!(skips_the_code(gw, "customer", &cookie).await);
    gw.clock.advance(30);
    let html = get_text(&b, gw, "/.mfa/account").await;
    let r = post_form(
        &b,
        gw,
        "/.mfa/account/disable",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", totp::code_at(&phone, gw.clock.unix()).as_str()),
        ],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account?done=disabled");
    assert!(
        events(gw, "customer")
            .await
            .iter()
            .any(|(e, d)| e == "browser_forgotten" && d.contains("count=1 via=mfa_disabled"))
    );
    let html = get_text(&b, gw, "/.mfa/account").await;
    let r = post_form(
        &b,
        gw,
        "/.mfa/account/set-up",
        &[("csrf", csrf(&html).as_str())],
    )
    .await;
    assert_eq!(location(&r), "/.mfa/account/enroll");
    let html = get_text(&b, gw, "/.mfa/account/enroll").await;
    let again = pairing_secret(&html);
    gw.clock.advance(30);
    let r = post_form(
        &b,
        gw,
        "/.mfa/account/enroll",
        &[
            ("csrf", csrf(&html).as_str()),
            ("code", totp::code_at(&again, gw.clock.unix()).as_str()),
        ],
    )
    .await;
    assert_eq!(r.status(), 200, "set up again: new recovery codes shown");
    assert!(!skips_the_code(gw, "customer", &cookie).await);
}
