//! The gateway's error pages as users meet them, in English and Dutch: a sign-in that took too
//! long (the challenge expired), the VMS unreachable (502) and the VMS not answering in time
//! (504). Each is checked like every other gateway page (language, axe-core, screenshots) and
//! offers its one way forward.

use std::time::Duration;

use mfa_gateway::pages::Lang;
use mfa_gateway::pages::strings::strings;

use super::harness::*;
use crate::support::{DEMO_VMS, client};

async fn error_pages(lang: Lang, test: &str) {
    let t = strings(lang);
    let opts = Options {
        lang,
        javascript: true,
    };

    // A code typed after the challenge expired.
    let w = World::start("2022-03-01T10:00:00Z", "").await;
    let secret = crate::support::browser::enroll(&client(&w.gw), &w.gw, "customer").await;
    w.gw.clock.advance(30);
    let mut b = w.browser(test, opts).await;
    b.goto("/login").await;
    b.type_into("#username", "customer").await;
    b.type_into("#password", "demo").await;
    let submit = b.find("main form button[type=submit]").await;
    b.click_and_wait(&submit).await;
    b.wait_path("/.mfa/verify").await;
    w.gw.clock.advance(3 * 3600);
    b.type_into("#code", &w.code(&secret)).await;
    b.click_text(t.verify.verify_button).await;
    b.check_page("challenge-expired", "/.mfa/verify").await;
    assert_eq!(b.text("h1").await, t.error_pages.challenge_expired.title);
    // Its way forward is a new sign-in.
    let forward = b.find("main a[href='/']").await;
    b.click_and_wait(&forward).await;
    b.wait_path("/login").await;
    b.finish().await;

    // The VMS unreachable, then not answering: a port that refuses, then one that listens
    // and never answers.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let vms_addr = port.local_addr().unwrap();
    drop(port);
    let w = World::start_upstream("2022-03-01T10:00:00Z", "", DEMO_VMS, vms_addr).await;
    let mut b = w.browser(&format!("{test}_upstream"), opts).await;
    b.goto("/home").await;
    b.check_page("bad-gateway", "/home").await;
    assert_eq!(b.text("h1").await, t.error_pages.bad_gateway.title);
    let silent = tokio::net::TcpListener::bind(vms_addr).await.unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    // The 502 page's own way forward: try again (now the VMS takes its time).
    let again = b.find("main a[href='/']").await;
    tokio::time::timeout(Duration::from_secs(15), b.click_and_wait(&again))
        .await
        .expect("the 504 page within the upstream's response timeout");
    b.check_page("gateway-timeout", "/").await;
    assert_eq!(b.text("h1").await, t.error_pages.gateway_timeout.title);
    held.abort();
    b.finish().await;
}

#[tokio::test]
async fn error_pages_in_english() {
    error_pages(Lang::En, "error_pages").await;
}

#[tokio::test]
async fn error_pages_in_dutch() {
    error_pages(Lang::Nl, "error_pages_nl").await;
}
