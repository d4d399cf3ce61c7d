//! A front end's scripts in Chromium: a login posted with `fetch` is sent to the MFA step, and
//! a page polling with `fetch` leaves when its session ends. What Chromium itself sends
//! (`Sec-Fetch-Mode: cors`/`same-origin`, cookies, no HTML `Accept`) decides, not a
//! hand-written imitation of it.

use std::time::{Duration, Instant};

use mfa_gateway::pages::Lang;
use mfa_gateway::pages::strings::strings;
use serde_json::json;

use super::harness::*;
use crate::support::{DEMO_VMS, client, url};

const OPTS: Options = Options {
    lang: Lang::En,
    javascript: true,
};

#[tokio::test]
async fn a_login_posted_by_a_script_goes_to_the_mfa_step() {
    let w = World::start("2022-03-01T10:00:00Z", "").await;
    let secret = crate::support::browser::enroll(&client(&w.gw), &w.gw, "customer").await;
    w.gw.clock.advance(30);
    let b = w.browser("script_login", OPTS).await;
    b.goto("/login").await;
    let ret = b
        .driver
        .execute_async(
            r#"
            const done = arguments[arguments.length - 1];
            fetch('/login', {
                method: 'POST',
                headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                body: 'username=customer&password=demo',
            })
            .then(r => r.json().then(j =>
                done([r.status, r.headers.get('mfa-location'), j.mfa, j.location])))
            .catch(e => done(['error', String(e)]));
            "#,
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        ret.json(),
        &json!([401, "/.mfa/verify", "required", "/.mfa/verify"])
    );
    // The front end moves the window there; the step completes as after a form login.
    b.driver
        .execute("window.location.assign('/.mfa/verify')", Vec::new())
        .await
        .unwrap();
    b.wait_path("/.mfa/verify").await;
    b.type_into("#code", &w.code(&secret)).await;
    b.click_text(strings(Lang::En).verify.verify_button).await;
    b.wait_path("/home").await;
    b.finish().await;
}

#[tokio::test]
async fn a_page_polling_when_its_session_ends_leaves_it() {
    let w = World::start("2022-03-01T10:00:00Z", "").await;
    let b = w.browser("polling_session_ends", OPTS).await;
    b.goto("/login").await;
    b.type_into("#username", "supplier").await;
    b.type_into("#password", "demo").await;
    let submit = b.find("main form button[type=submit]").await;
    b.click_and_wait(&submit).await;
    b.wait_path("/home").await;
    // The page polls, and follows the gateway's word when its session has ended.
    b.driver
        .execute(
            r#"
            window.polls = 0;
            setInterval(() => fetch('/api/me').then(r => {
                window.polls++;
                const to = r.headers.get('mfa-location');
                if (r.status === 401 && to) window.location.assign(to);
            }), 100);
            "#,
            Vec::new(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let polls = b
        .driver
        .execute("return window.polls", Vec::new())
        .await
        .unwrap();
    assert!(
        polls.json().as_u64().unwrap_or(0) >= 2,
        "{:?}",
        polls.json()
    );
    assert_eq!(
        b.path().await,
        "/home",
        "polls of a good session change nothing"
    );

    // The session ends elsewhere: a logout with the page's cookies.
    let cookies: Vec<String> = b
        .driver
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .map(|c| format!("{}={}", c.name, c.value))
        .collect();
    let r = client(&w.gw)
        .get(url(&w.gw, "/logout"))
        .header("cookie", cookies.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let start = Instant::now();
    loop {
        let path = b.path().await;
        if path != "/home" {
            assert!(path == "/" || path == "/login", "the page went to {path}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the page still polls on /home"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.finish().await;
}

/// The `[vms]` of the demo with `/api/login` as a login posted by script that lands on
/// `/app`, and the navigation helper on or off.
fn spa_vms(helper: bool) -> String {
    DEMO_VMS
        .replace(
            "[vms]\n",
            &format!("[vms]\nnavigation_helper = {helper}\n"),
        )
        .replace(
            "[vms.role]",
            "[[vms.login]]\nmethod = \"POST\"\npath = \"/api/login\"\nusername_pointer = \"/username\"\n\
             success_status = [200]\nsuccess_cookie = \"VMSSESSION\"\nposted_by = \"script\"\n\
             landing = \"/app\"\n[vms.role]",
        )
}

/// Waits until `#out` on the page says `want` (the stand-in front end writes what it got).
async fn wait_out(b: &Browser, want: &str) {
    wait_text(b, "#out", want).await
}

async fn wait_text(b: &Browser, css: &str, want: &str) {
    let start = Instant::now();
    loop {
        let out = b.text(css).await;
        if out == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "expected {want:?}, the page at {} says {out:?}",
            b.path().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in on the stand-in's single-page front end, whose script posts `/api/login`.
async fn spa_sign_in(b: &Browser, user: &str) {
    b.goto("/app").await;
    wait_out(b, "Not signed in (401)").await;
    b.type_into("#app-username", user).await;
    b.type_into("#app-password", "demo").await;
    b.find("#signin button").await.click().await.unwrap();
}

/// A front end that knows nothing of the gateway (its own strict CSP, a login by `fetch`,
/// then polling) reaches the MFA step through the navigation helper, lands on its page signed
/// in after the code, and leaves it when its session is ended while it polls.
#[tokio::test]
async fn a_front_end_that_cannot_be_changed_reaches_the_mfa_step_through_the_navigation_helper() {
    let w = World::start_vms("2022-03-01T10:00:00Z", "", &spa_vms(true)).await;
    let secret = crate::support::browser::enroll(&client(&w.gw), &w.gw, "customer").await;
    w.gw.clock.advance(30);
    let b = w.browser("navigation_helper", OPTS).await;
    spa_sign_in(&b, "customer").await;
    // The helper (allowed by the hash the gateway added to the page's CSP) moves the window.
    b.wait_path("/.mfa/verify").await;
    b.type_into("#code", &w.code(&secret)).await;
    b.click_text(strings(Lang::En).verify.verify_button).await;
    b.wait_path("/app").await;
    wait_out(&b, "Signed in as customer").await;
    let polls = |b: &Browser| {
        let d = b.driver.clone();
        async move {
            d.execute("return window.polls", Vec::new())
                .await
                .unwrap()
                .json()
                .as_u64()
                .unwrap_or(0)
        }
    };
    let before = polls(&b).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(polls(&b).await > before, "the page polls");
    assert_eq!(
        b.path().await,
        "/app",
        "polls of a good session change nothing"
    );

    // The session ends elsewhere while the page polls: the helper takes the window to the
    // start, where the VMS asks for a sign-in.
    let cookies: Vec<String> = b
        .driver
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .map(|c| format!("{}={}", c.name, c.value))
        .collect();
    let r = client(&w.gw)
        .get(url(&w.gw, "/logout"))
        .header("cookie", cookies.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    b.wait_path("/login").await;
    b.finish().await;
}

/// The same front end without the helper: it stays on its page with the gateway's 401, which
/// is what the helper is for (and why this test can fail).
#[tokio::test]
async fn without_the_navigation_helper_such_a_front_end_stays_put() {
    let w = World::start_vms("2022-03-01T10:00:00Z", "", &spa_vms(false)).await;
    crate::support::browser::enroll(&client(&w.gw), &w.gw, "customer").await;
    w.gw.clock.advance(30);
    let b = w.browser("no_navigation_helper", OPTS).await;
    spa_sign_in(&b, "customer").await;
    wait_text(&b, "#result", "Sign-in failed (401)").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.path().await, "/app");
    b.finish().await;
}
