//! A page's scripts (`fetch`, XHR): a login they post that waits for its MFA step, and a
//! session that ended while the page was open, are told in a small JSON 401 naming where the
//! page should go, never with a redirect or an HTML page a script cannot use. Page loads keep
//! the normal flow, and CORS preflights pass to the VMS untouched.

use mfa_gateway::auth::totp;

use crate::mfa_flow::{enroll, world};
use crate::support::browser::{cookie_header, location, post_code, set_cookies, sets_vms_session};
use crate::support::*;

/// What `fetch` in a current browser sends along.
fn from_script(rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    rb.header("sec-fetch-mode", "cors")
        .header("sec-fetch-dest", "empty")
        .header("accept", "application/json")
}

async fn assert_json_401(r: reqwest::Response, what: &str, location: &str) {
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["mfa-location"], location);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(!sets_vms_session(&r), "no VMS session with a 401");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["mfa"], what);
    assert_eq!(v["location"], location);
}

#[tokio::test]
async fn a_script_login_is_told_where_the_mfa_step_is_and_the_page_completes_it() {
    let w = world("2022-03-01T10:00:00Z", "").await;
    let secret = enroll(&client(&w.gw), &w, "customer").await;

    let c = client(&w.gw);
    let r = from_script(c.post(url(&w.gw, "/login")))
        .form(&[("username", "customer"), ("password", "demo")])
        .send()
        .await
        .unwrap();
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("__Host-mfagw-ch=")),
        "the challenge cookie comes with the 401"
    );
    assert_json_401(r, "required", "/.mfa/verify").await;
    // The page moves there (a navigation, with the same cookies) and finishes the step.
    w.gw.clock.advance(30);
    let code = totp::code_at(&secret, w.gw.clock.unix());
    let r = post_code(&c, &w.gw, "/.mfa/verify", &code).await;
    assert_eq!(r.status(), 302);
    assert!(sets_vms_session(&r));

    // A form login (a page load) is sent to the step as before.
    let c = client(&w.gw);
    let r = c
        .post(url(&w.gw, "/login"))
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .form(&[("username", "customer"), ("password", "demo")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/.mfa/verify");
}

#[tokio::test]
async fn a_session_that_ended_while_the_page_was_open_is_told_to_its_scripts() {
    let w = world("2022-03-01T10:00:00Z", "approval_max_age = \"1h\"").await;
    // Revoked: a logout, with the cookies the page still holds.
    let c = client(&w.gw);
    let r = crate::support::browser::login(&c, &w.gw, "supplier").await;
    let jar_cookie = cookie_header(&r);
    assert!(jar_cookie.contains("__Host-mfagw="), "{jar_cookie}");
    assert_eq!(
        c.get(url(&w.gw, "/api/me")).send().await.unwrap().status(),
        200
    );
    c.get(url(&w.gw, "/logout")).send().await.unwrap();
    let stale = client(&w.gw);
    let r = from_script(stale.get(url(&w.gw, "/api/me")))
        .header("cookie", &jar_cookie)
        .send()
        .await
        .unwrap();
    assert_json_401(r, "signed_out", "/").await;
    // A page load with the same cookies goes on to the VMS, which sees nobody.
    let r = stale
        .get(url(&w.gw, "/api/me"))
        .header("cookie", &jar_cookie)
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("mfa-location"));
    assert_eq!(r.status(), 401, "the VMS's own answer for nobody");

    // Expired.
    let c = client(&w.gw);
    crate::support::browser::login(&c, &w.gw, "contractor").await;
    w.gw.clock.advance(3601);
    let r = from_script(c.get(url(&w.gw, "/api/me")))
        .send()
        .await
        .unwrap();
    assert_json_401(r, "signed_out", "/").await;
    // XHR of an older front end is a script too.
    let r = c
        .get(url(&w.gw, "/api/me"))
        .header("x-requested-with", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["mfa-location"], "/");
    // A forged approval is not a session that ended: no hint, the VMS sees nobody.
    let r = from_script(client(&w.gw).get(url(&w.gw, "/api/me")))
        .header("cookie", "VMSSESSION=x; __Host-mfagw=forged")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("mfa-location"));
}

#[tokio::test]
async fn a_cors_preflight_reaches_the_vms_untouched() {
    let up = crate::proxy::spawn_echo().await;
    let (gw, _redis, _dir) = crate::proxy::proxy_gateway(up, "").await;
    let r = client(&gw)
        .request(reqwest::Method::OPTIONS, url(&gw, "/api/data"))
        .header("origin", "https://app.example.test")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type, x-token")
        .header("sec-fetch-mode", "cors")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the echo upstream's own answer");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["method"], "OPTIONS");
    let h = crate::proxy::echo_headers(&v);
    for (name, value) in [
        ("origin", "https://app.example.test"),
        ("access-control-request-method", "PUT"),
        ("access-control-request-headers", "content-type, x-token"),
    ] {
        assert_eq!(crate::proxy::header(&h, name), vec![value], "{name}");
    }
}

/// A login route marked `posted_by = "script"` (JSON in, JSON out): its script gets the JSON
/// 401 whatever its headers, and after the MFA step the browser lands on the route's
/// `landing` page with the VMS's session, not on the JSON answer the script had asked for.
#[tokio::test]
async fn a_script_login_route_lands_on_its_page_after_the_mfa_step() {
    let redis = RedisProc::start();
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let vms = DEMO_VMS.replace(
        "[vms.role]",
        "[[vms.login]]\nmethod = \"POST\"\npath = \"/api/login\"\nusername_pointer = \"/username\"\n\
         success_status = [200]\nsuccess_cookie = \"VMSSESSION\"\nposted_by = \"script\"\n\
         landing = \"/home\"\n[vms.role]",
    );
    let text = config_text(&c, vms_addr, &redis.url(), &vms, "");
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        mfa_gateway::clock::Clock::manual(at("2022-03-01T10:00:00Z")),
    )
    .await;
    let secret = crate::support::browser::enroll(&client(&gw), &gw, "customer").await;
    gw.clock.advance(30);

    let b = client(&gw);
    // No Sec-Fetch headers at all: the route says who posts it.
    let r = b
        .post(url(&gw, "/api/login"))
        .json(&serde_json::json!({"username": "customer", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_json_401(r, "required", "/.mfa/verify").await;
    let code = totp::code_at(&secret, gw.clock.unix());
    let r = post_code(&b, &gw, "/.mfa/verify", &code).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/home");
    assert!(
        sets_vms_session(&r),
        "the VMS's session comes with the redirect"
    );
    let home = b.get(url(&gw, "/home")).send().await.unwrap();
    assert_eq!(home.status(), 200);

    // A role without MFA: the script gets the VMS's own JSON answer at once.
    let s = client(&gw);
    let r = s
        .post(url(&gw, "/api/login"))
        .json(&serde_json::json!({"username": "supplier", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(sets_vms_session(&r));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["ok"], true);

    // A form login still gets the VMS's answer byte for byte after its step.
    let f = client(&gw);
    let r = crate::support::browser::login(&f, &gw, "customer").await;
    assert_eq!(location(&r), "/.mfa/verify");
    gw.clock.advance(30);
    let code = totp::code_at(&secret, gw.clock.unix());
    let r = post_code(&f, &gw, "/.mfa/verify", &code).await;
    assert_eq!(r.status(), 302, "the VMS's own redirect");
}

/// With `vms.navigation_helper`, a page load of an HTML page gets the helper's script first in
/// `<head>` and its hash in the page's CSP, over the wire;
/// a script's request for the same page gets the VMS's bytes.
#[tokio::test]
async fn the_navigation_helper_goes_into_page_loads_only() {
    let redis = RedisProc::start();
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let vms = DEMO_VMS.replace("[vms]\n", "[vms]\nnavigation_helper = true\n");
    let text = config_text(&c, vms_addr, &redis.url(), &vms, "");
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        mfa_gateway::clock::Clock::manual(at("2022-03-01T10:00:00Z")),
    )
    .await;
    let hash = mfa_gateway::proxy::navigation_helper::script_hash();
    let tag = format!(
        "<script>{}</script>",
        mfa_gateway::proxy::navigation_helper::SCRIPT
    );
    let b = client(&gw);

    let r = b
        .get(url(&gw, "/app"))
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains(&format!("' {hash}; style-src 'unsafe-inline'")),
        "the VMS's own script-src keeps its hash and gains the helper's: {csp}"
    );
    // The page's length changed: it comes without the VMS's Content-Length, whole (its
    // length is checked against the VMS's own page below).
    assert!(r.headers().get("content-length").is_none());
    let body = r.text().await.unwrap();
    assert!(body.trim_end().ends_with("</html>"), "{body}");
    assert_eq!(body.matches(&tag).count(), 1, "{body}");
    let head = body.find("<head>").unwrap() + "<head>".len();
    assert_eq!(&body[head..head + tag.len()], tag, "first in <head>");

    let fetched = b
        .get(url(&gw, "/app"))
        .header("sec-fetch-mode", "cors")
        .send()
        .await
        .unwrap();
    let csp = fetched.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!csp.contains(hash), "{csp}");
    let fetched = fetched.text().await.unwrap();
    assert!(!fetched.contains(&tag));
    assert_eq!(fetched.len() + tag.len(), body.len());
}
