//! Faults: a slow or cut Redis (through a TCP proxy the test controls), a misbehaving
//! upstream, a gateway restart in the middle of a challenge, reloads and shutdown under load.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mfa_gateway::auth::totp;
use mfa_gateway::clock::Clock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::mfa_flow::{enroll, world};
use crate::support::browser::*;
use crate::support::*;

/// A TCP relay that can add delay to every chunk and cut every connection.
struct Relay {
    addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (d, k) = (Arc::clone(&delay_ms), Arc::clone(&cut));
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = l.accept().await else {
                    break;
                };
                if k.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, Arc::clone(&d), Arc::clone(&k)));
                tokio::spawn(pump(sr, cw, Arc::clone(&d), Arc::clone(&k)));
            }
        });
        Relay {
            addr,
            delay_ms,
            cut,
        }
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match tokio::time::timeout(Duration::from_millis(100), from.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
            Err(_) => {
                if cut.load(Ordering::SeqCst) {
                    break;
                }
                continue;
            }
        };
        if cut.load(Ordering::SeqCst) {
            break;
        }
        let ms = delay.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn slow_or_cut_redis_fails_closed_and_recovers() {
    let redis = RedisProc::start();
    let relay = Relay::start(format!("127.0.0.1:{}", redis.port).parse().unwrap()).await;
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        &c,
        vms_addr,
        &format!("redis://127.0.0.1:{}/0", relay.addr.port()),
        DEMO_VMS,
        "",
    );
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        Clock::manual(at("2022-02-01T09:00:00Z")),
    )
    .await;
    let supplier = client(&gw);
    assert_eq!(location(&login(&supplier, &gw, "supplier").await), "/home");
    assert_eq!(
        location(&login(&client(&gw), &gw, "customer").await),
        "/.mfa/enroll"
    );

    // Slower than redis.response_timeout (500 ms in the test config): fail closed.
    relay.delay_ms.store(1500, Ordering::SeqCst);
    let r = login(&client(&gw), &gw, "customer").await;
    assert_eq!(r.status(), 503);
    assert!(!sets_vms_session(&r));
    assert_eq!(
        get_status(&supplier, &gw, "/api/me").await,
        200,
        "approved sessions unaffected"
    );
    assert_eq!(
        location(&login(&client(&gw), &gw, "resource").await),
        "/home",
        "roles without MFA unaffected"
    );

    // Cut: the same.
    relay.delay_ms.store(0, Ordering::SeqCst);
    relay.cut.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = login(&client(&gw), &gw, "customer").await;
    assert_eq!(r.status(), 503);
    assert!(!sets_vms_session(&r));
    // The store gauge follows Redis by itself (the revocation feed's poll), without anyone
    // asking for readiness.
    let metrics = std::sync::Arc::clone(&gw.gateway().metrics);
    eventually(
        Duration::from_secs(15),
        "mfa_gateway_store_up 0",
        async || metrics.render().contains("mfa_gateway_store_up 0"),
    )
    .await;
    // The instance stays in service (Redis is shared: every instance has the same problem,
    // and approved sessions still work), and says what is missing.
    let ready = supplier.get(url(&gw, "/.mfa/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let v: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(v["store"]["status"], "unreachable", "{v}");
    assert_eq!(v["requires"], serde_json::json!(["upstream"]), "{v}");
    assert_eq!(get_status(&supplier, &gw, "/api/me").await, 200);

    // Healthy again: recovers by itself.
    relay.cut.store(false, Ordering::SeqCst);
    let mut ok = false;
    for _ in 0..40 {
        if location(&login(&client(&gw), &gw, "customer").await) == "/.mfa/enroll" {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ok, "recovered");
    eventually(
        Duration::from_secs(15),
        "mfa_gateway_store_up 1",
        async || metrics.render().contains("mfa_gateway_store_up 1"),
    )
    .await;
}

/// An upstream that answers garbage, resets, or closes mid-response.
async fn bad_upstream() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                break;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                if head.starts_with("GET /garbage") {
                    let _ = s.write_all(b"this is not HTTP at all\r\n\r\n").await;
                } else if head.starts_with("GET /reset") {
                    let _ = s.set_zero_linger();
                    drop(s);
                } else if head.starts_with("GET /half") {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
                        .await;
                } else if head.starts_with("GET /huge-header") {
                    let big = "x".repeat(200_000);
                    let _ = s
                        .write_all(format!("HTTP/1.1 200 OK\r\nx-big: {big}\r\n\r\n").as_bytes())
                        .await;
                } else {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn misbehaving_upstream_gives_502_and_nothing_leaks() {
    let up = bad_upstream().await;
    let redis = RedisProc::start();
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&c, up, &redis.url(), DEMO_VMS, "");
    let gw = start_gateway(dir.path(), &text, &c.ca_pem, Clock::System).await;
    let cl = client(&gw);
    for path in ["/garbage", "/reset", "/huge-header"] {
        let r = cl.get(url(&gw, path)).send().await.unwrap();
        assert_eq!(r.status(), 502, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("this is not HTTP") && !body.to_lowercase().contains("hyper"),
            "{path}: no upstream internals"
        );
    }
    // A body that breaks off after the head: the client sees a broken body, not a hang.
    if let Ok(r) = cl.get(url(&gw, "/half")).send().await {
        assert!(
            r.bytes().await.is_err(),
            "truncated body reported as an error"
        )
    }
    assert_eq!(get_status(&cl, &gw, "/fine").await, 200, "still serving");
}

#[tokio::test]
async fn a_challenge_survives_a_gateway_restart() {
    let mut w = world("2022-02-01T09:00:00Z", "").await;
    let c = client(&w.gw);
    let secret = enroll(&c, &w, "msp").await;
    // A login opens a challenge; its cookie is kept by hand across the restart.
    let r = login(&client(&w.gw), &w.gw, "msp").await;
    assert_eq!(location(&r), "/.mfa/verify");
    let ch_cookie = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("__Host-mfagw-ch="))
        .unwrap();
    let ch_cookie = ch_cookie.split(';').next().unwrap().to_string();
    let clock = w.gw.clock.clone();
    let text = w.text.clone();
    let dir = w.gw.dir.clone();
    let ca = w.gw.ca_pem.clone();
    w.gw.stop().await;
    let gw = start_gateway(&dir, &text, &ca, clock).await;
    let b = client_for(gw.addr, &ca, false);
    let html = b
        .get(url(&gw, "/.mfa/verify"))
        .header("cookie", &ch_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    gw.clock.advance(30);
    let code = totp::code_at(&secret, gw.clock.unix());
    let r = b
        .post(url(&gw, "/.mfa/verify"))
        .header("cookie", &ch_cookie)
        .form(&[("csrf", csrf(&html).as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "completed on the restarted gateway");
    assert!(sets_vms_session(&r));
}

#[tokio::test]
async fn certificate_and_policy_reload_under_load_fail_no_request() {
    let w = world("2022-02-01T09:00:00Z", "").await;
    let addr = w.gw.addr;
    let ca = w.gw.ca_pem.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (ca, stop) = (ca.clone(), Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(Ordering::SeqCst) {
                // A new connection each time, so new TLS handshakes meet the reload.
                let c = client_for(addr, &ca, false);
                match c
                    .get(format!("https://localhost:{}/login", addr.port()))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let running = w.gw.running.as_ref().unwrap();
    for _ in 0..5 {
        running.reload();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut ok, mut failed) = (0, 0);
    for wk in workers {
        let (o, f) = wk.await.unwrap();
        ok += o;
        failed += f;
    }
    assert!(ok > 20, "load was running ({ok})");
    assert_eq!(failed, 0, "no request failed during reloads");
}

#[tokio::test]
async fn graceful_shutdown_under_load_completes_every_request_in_flight() {
    let mut w = world("2022-02-01T09:00:00Z", "").await;
    let addr = w.gw.addr;
    let c = client(&w.gw);
    // 40 requests in flight: each upload is held open until the gateway is shutting down.
    let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut inflight = Vec::new();
    for i in 0..40 {
        let mut rx = tx.subscribe();
        let body = futures_util::stream::once(async move {
            let _ = rx.recv().await;
            Ok::<_, std::io::Error>(bytes::Bytes::from(format!("username=nobody{i}&password=x")))
        });
        inflight.push(tokio::spawn(
            c.post(format!("https://localhost:{}/login", addr.port()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(reqwest::Body::wrap_stream(body))
                .send(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let running = w.gw.running.take().unwrap();
    let stopping = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = tx.send(());
    for (i, f) in inflight.into_iter().enumerate() {
        let r = f
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("request {i} failed: {e}"));
        assert_eq!(
            r.status(),
            200,
            "request {i}: the VMS's own answer to a wrong password"
        );
    }
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
}

/// With append-only persistence, what Redis acknowledged survives a restart: the enrollment,
/// the recovery codes (an unused one still works, a used one still does not), and the audit
/// records.
#[tokio::test]
async fn enrollments_recovery_codes_and_audit_survive_a_redis_restart() {
    let mut w = world("2022-02-01T09:00:00Z", "").await;
    let c = client(&w.gw);
    let r = login(&c, &w.gw, "customer").await;
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
    assert_eq!(location(&r), "/.mfa/recovery-codes");
    let html = get_text(&c, &w.gw, "/.mfa/recovery-codes").await;
    let codes = recovery_codes(&html);
    post_form(
        &c,
        &w.gw,
        "/.mfa/recovery-codes",
        &[("csrf", csrf(&html).as_str()), ("action", "continue")],
    )
    .await;
    // Use one recovery code before the restart.
    let c1 = client(&w.gw);
    login(&c1, &w.gw, "customer").await;
    assert_eq!(
        location(&post_code(&c1, &w.gw, "/.mfa/verify", &codes[0]).await),
        "/.mfa/notice"
    );
    let audit_before = w.gw.gateway().store.audit_recent(1000).await.unwrap().len();
    assert!(audit_before >= 3);

    w.redis.restart();
    let mut back = false;
    for _ in 0..40 {
        if w.gw.gateway().store.ping().await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(back);
    let after = w.gw.gateway().store.audit_recent(1000).await.unwrap().len();
    assert!(
        after >= audit_before,
        "audit records kept: {audit_before} -> {after}"
    );
    let c2 = client(&w.gw);
    assert_eq!(
        location(&login(&c2, &w.gw, "customer").await),
        "/.mfa/verify",
        "enrollment kept"
    );
    assert_eq!(
        post_code(&c2, &w.gw, "/.mfa/verify", &codes[0])
            .await
            .status(),
        200,
        "a used code stays used"
    );
    assert_eq!(
        location(&post_code(&c2, &w.gw, "/.mfa/verify", &codes[1]).await),
        "/.mfa/notice",
        "unused codes kept"
    );
}

/// A VMS that sets its session cookie where it should not: on a pre-login page, on a failed
/// login, on a login whose role cannot be found, and on a login answer too large to hold.
async fn leaky_vms() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                break;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let user = head
                    .rsplit("username=")
                    .next()
                    .and_then(|r| r.split('&').next())
                    .unwrap_or("")
                    .to_string();
                let answer = if head.starts_with("GET /pre") {
                    "HTTP/1.1 200 OK\r\nset-cookie: VMSSESSION=prelogin; Path=/\r\nset-cookie: other=1\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_string()
                } else if head.starts_with("POST /login") && user == "wrongpw" {
                    "HTTP/1.1 200 OK\r\nset-cookie: VMSSESSION=failed; Path=/\r\ncontent-length: 5\r\nconnection: close\r\n\r\nwrong".to_string()
                } else if head.starts_with("POST /login") && user == "huge" {
                    let body = "x".repeat(2 * 1024 * 1024);
                    format!(
                        "HTTP/1.1 302 Found\r\nlocation: /home\r\nset-cookie: VMSSESSION=huge; Path=/\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else if head.starts_with("POST /login") {
                    "HTTP/1.1 302 Found\r\nlocation: /home\r\nset-cookie: VMSSESSION=granted; Path=/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
                } else if head.starts_with("GET /api/me") {
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops".to_string()
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn no_vms_session_cookie_reaches_a_client_on_any_error_path() {
    let up = leaky_vms().await;
    let redis = RedisProc::start();
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let vms = "[vms]\nsession_cookies = [\"VMSSESSION\"]\nend_session = { path = \"/logout\" }\n[[vms.login]]\npath = \"/login\"\nusername_field = \"username\"\nsuccess_status = [302]\n[vms.role]\nsource = \"userinfo\"\nuserinfo_path = \"/api/me\"\nuserinfo_role_pointer = \"/role\"\n";
    let text = config_text(&c, up, &redis.url(), vms, "");
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        Clock::manual(at("2022-02-01T09:00:00Z")),
    )
    .await;
    let cl = client(&gw);
    let post = |user: &'static str| {
        cl.post(url(&gw, "/login"))
            .form(&[("username", user), ("password", "x")])
            .send()
    };
    // A pre-login page: the other cookie passes, the session cookie does not.
    let r = cl.get(url(&gw, "/pre")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(!sets_vms_session(&r));
    assert!(set_cookies(&r).iter().any(|c| c.starts_with("other=1")));
    // A failed login: the VMS's own answer, without the session cookie.
    let r = post("wrongpw").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(!sets_vms_session(&r));
    assert_eq!(r.text().await.unwrap(), "wrong");
    // The role cannot be found (user info answers 500): 502, nothing released.
    let r = post("someone").await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(!sets_vms_session(&r));
    // A login answer larger than the gateway holds: 502, nothing released.
    let r = post("huge").await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(!sets_vms_session(&r));
    // With Redis away as well (the role lookup fails first, so 502 or 503): still nothing released.
    drop(redis);
    let r = post("someone").await.unwrap();
    assert!(r.status() == 502 || r.status() == 503, "{}", r.status());
    assert!(!sets_vms_session(&r));
}
