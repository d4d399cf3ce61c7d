//! Flows.

use mfa_gateway::pages::Lang;

use super::harness::*;

#[tokio::test]
async fn smoke() {
    let w = World::start("2022-02-01T09:00:00Z", "").await;
    for js in [true, false] {
        let t = std::time::Instant::now();
        let mut b = w
            .browser(
                "smoke",
                Options {
                    lang: Lang::Nl,
                    javascript: js,
                },
            )
            .await;
        eprintln!("started {:?}", t.elapsed());
        b.goto("/login").await;
        eprintln!("login page {:?}", t.elapsed());
        b.type_into("#username", "customer").await;
        b.type_into("#password", "demo").await;
        b.find("main form button").await.click().await.unwrap();
        eprintln!("clicked {:?}", t.elapsed());
        b.check_page("enroll", "/.mfa/enroll").await;
        eprintln!("checked {:?}", t.elapsed());
        eprintln!("js={js} {}", b.text("h1").await);
        let r = b.driver.execute("return 1+1", vec![]).await;
        eprintln!("execute: {:?}", r.map(|r| r.json().clone()));
        b.finish().await;
    }
}
