//! Bad input: whatever a client sends, the gateway answers with a clear 4xx (or closes the
//! connection cleanly), never a 5xx of its own making, never a panic, and the process stays
//! up.
//!
//! The gateway here is the real binary (see `logs::GatewayProcess`), so "stays up" means the
//! operating-system process, and its captured log is searched for panics after each test.
//! Requests a well-behaved HTTP library would refuse to send are written by hand over a raw
//! TLS socket.
//!
//! Path tricks against the reserved prefix are sent to a *lenient* upstream that reads paths
//! the way forgiving legacy servers do (`vms_reading::path::lenient_reading`: decoding, `\`, `;`
//! parameters, `//`, `..`, case). It answers status 299 whenever it sees a request it reads
//! as one under the prefix, so a forwarded disguise is caught, and it logs anyone in at any
//! path it reads as `/login`, so a login that bypasses the gateway's interception is caught.
//! It also reads cookies leniently (commas, case, percent-encoding, quotes) and reports every
//! session value it finds, so a session the gateway did not check cannot slip through.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use mfa_gateway::auth::crypto::{KeyRing, parse_key_material};
use mfa_gateway::auth::totp;
use mfa_gateway::gate::approval::{Approval, session_hash};
use mfa_gateway::policy::MfaState;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::logs::{Flow, GatewayProcess};
use crate::support::*;

// === Raw HTTP/1.1 over TLS ===

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls(addr: SocketAddr, ca_pem: &str) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// A response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends raw bytes, reads until the server closes (or 10 s pass). `None`: closed without
/// any response.
async fn raw(g: &GatewayProcess, request: &[u8]) -> Option<Reply> {
    let mut s = tls(g.addr, &g.ca_pem).await;
    let _ = s.write_all(request).await;
    let _ = s.flush().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// A well-formed GET for `path` that asks the server to close afterwards.
fn get(path: &str, extra_headers: &str) -> Vec<u8> {
    get_raw(path, extra_headers.as_bytes())
}

/// [`get`] with header bytes that need not be text.
fn get_raw(path: &str, extra_headers: &[u8]) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n").into_bytes();
    r.extend_from_slice(extra_headers);
    r.extend_from_slice(b"Connection: close\r\n\r\n");
    r
}

/// Sends a raw request and expects exactly `want`.
async fn expect(g: &GatewayProcess, name: &str, request: &[u8], want: u16) -> Reply {
    let r = raw(g, request)
        .await
        .unwrap_or_else(|| panic!("{name}: closed without a response"));
    assert_eq!(r.status, want, "{name}: {}", r.head);
    r
}

// === Browser-like steps ===

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A client in the enrollment step of `user`: its challenge id, CSRF token and the secret.
struct Enrolling {
    c: reqwest::Client,
    challenge: String,
    csrf: String,
    secret: Vec<u8>,
}

async fn enrolling(g: &GatewayProcess, user: &str) -> Enrolling {
    let c = g.client();
    let r = Flow::login(&c, g, user).await;
    assert_eq!(Flow::location(&r), "/.mfa/enroll", "{user} must enroll");
    let challenge = Flow::cookie(&r, "__Host-mfagw-ch").unwrap();
    let html = Flow::page(&c, g, "/.mfa/enroll").await;
    let (_, secret) = Flow::pairing(&html);
    Enrolling {
        c,
        challenge,
        csrf: Flow::csrf(&html),
        secret,
    }
}

/// Posts a form to `path` with exactly the given cookie header (no cookie store).
async fn post_form(
    g: &GatewayProcess,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let c = client_for(g.addr, &g.ca_pem, false);
    c.post(g.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// After a confirmed enrollment the gateway shows the recovery codes once and releases the
/// login on "continue"; this follows that step with exactly the given challenge cookie.
async fn through_recovery(
    g: &GatewayProcess,
    challenge: &str,
    r: reqwest::Response,
) -> reqwest::Response {
    if Flow::location(&r) != "/.mfa/recovery-codes" {
        return r;
    }
    assert!(
        Flow::cookie(&r, "VMSSESSION").is_none(),
        "nothing released before the codes were shown"
    );
    let cookie = format!("__Host-mfagw-ch={challenge}");
    let c = client_for(g.addr, &g.ca_pem, false);
    let html = c
        .get(g.url("/.mfa/recovery-codes"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    post_form(
        g,
        "/.mfa/recovery-codes",
        &cookie,
        &[("csrf", Flow::csrf(&html).as_str()), ("action", "continue")],
    )
    .await
}

fn assert_no_session(r: &reqwest::Response, what: &str) {
    assert!(
        Flow::cookie(r, "VMSSESSION").is_none(),
        "{what}: a VMS session reached the client"
    );
    assert!(r.status().as_u16() < 500, "{what}: {}", r.status());
}

// === Malformed HTTP ===

#[tokio::test]
async fn malformed_http_is_a_400_and_the_process_stays_up() {
    let mut g = GatewayProcess::start("", "").await;
    let cases: &[(&str, &[u8])] = &[
        ("garbage request line", b"GARBAGE\r\n\r\n"),
        ("binary request line", b"\x00\x01\x02\xff\xfe\r\n\r\n"),
        ("no target", b"GET  HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        ("unknown version", b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n"),
        ("DEL in the path", b"GET /\x7f HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        ("non-ASCII method", b"G\xc3\xa9T / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        (
            "space in a header name",
            b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n",
        ),
        (
            "NUL in a header value",
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX: a\x00b\r\n\r\n",
        ),
        (
            "header without colon",
            b"GET / HTTP/1.1\r\nHost: localhost\r\nNoColon\r\n\r\n",
        ),
        (
            "obsolete line folding",
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX: a\r\n b\r\n\r\n",
        ),
        (
            "two different Content-Length",
            b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd",
        ),
        (
            "negative Content-Length",
            b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n",
        ),
        (
            "Transfer-Encoding not ending in chunked",
            b"POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        ),
        (
            "space before the colon of Transfer-Encoding",
            b"POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "bad chunk size on a proxied request",
            b"POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "bad chunk size on the login",
            b"POST /login HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "bad chunk size on an MFA form",
            b"POST /.mfa/verify HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-mfagw-ch=x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ),
        (
            "asterisk-form target",
            b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        ),
        (
            "CONNECT to a reverse proxy",
            b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\nConnection: close\r\n\r\n",
        ),
    ];
    for (name, request) in cases {
        let want = if name.ends_with("MFA form") { 403 } else { 400 };
        expect(&g, name, request, want).await;
    }
    // Requests that are odd but well-formed are served, not refused.
    for (name, request) in [
        ("HTTP/1.0 without Host", b"GET / HTTP/1.0\r\n\r\n".to_vec()),
        (
            "absolute-form target",
            b"GET https://elsewhere.example/.mfa/health HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "unknown method on an MFA page",
            b"FROB /.mfa/verify HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "non-ASCII Accept-Language",
            get_raw("/.mfa/health", b"Accept-Language: \xff\xfe;q=\xff\r\n"),
        ),
    ] {
        let r = raw(&g, &request)
            .await
            .unwrap_or_else(|| panic!("{name}: no response"));
        assert!(r.status < 500, "{name}: {}", r.head);
    }
    // A path of the gateway asked with a method it does not take: 405 naming the ones it
    // takes (JSON below the API); an unknown path: 404.
    for (request, allow) in [
        ("FROB /.mfa/verify", "GET, HEAD, POST"),
        ("PUT /.mfa/health", "GET, HEAD"),
        ("GET /.mfa/admin/reset", "POST"),
        ("GET /.mfa/account/disable", "POST"),
        ("DELETE /.mfa/admin/api/users/alice/reset", "POST"),
    ] {
        let r = expect(
            &g,
            request,
            format!("{request} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            405,
        )
        .await;
        let head = r.head.to_ascii_lowercase();
        assert!(
            head.contains(&format!("\r\nallow: {}\r\n", allow.to_ascii_lowercase())),
            "{request}: {}",
            r.head
        );
        let json = head.contains("\r\ncontent-type: application/json");
        assert_eq!(json, request.contains("/api/"), "{request}: {}", r.head);
    }
    expect(&g, "unknown path", &get("/.mfa/nope", ""), 404).await;
    let r = expect(
        &g,
        "HEAD on a GET route",
        b"HEAD /.mfa/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        200,
    )
    .await;
    assert!(r.body.is_empty(), "{}", r.body);
    // A Content-Length next to chunked is ignored, not forwarded: no request smuggling.
    let up = spawn_lenient().await;
    let g2 = GatewayProcess::start_in_front_of(up, "", "").await;
    let r = expect(
        &g2,
        "CL and TE",
        b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        200,
    )
    .await;
    let seen: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let headers: Vec<(String, String)> = serde_json::from_value(seen["headers"].clone()).unwrap();
    assert!(
        !headers.iter().any(|(n, _)| n == "content-length"),
        "{headers:?}"
    );
    assert_eq!(seen["body"], "abc");
    g.assert_alive().await;
}

// === Oversized headers ===

#[tokio::test]
async fn oversized_headers_are_431_or_a_clean_close() {
    let mut g = GatewayProcess::start("max_header_bytes = 8192", "").await;
    let big = "a".repeat(100_000);
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    expect(
        &g,
        "one huge header",
        &get("/", &format!("X-Big: {big}\r\n")),
        431,
    )
    .await;
    expect(&g, "200 headers", &get("/", &many), 431).await;
    let r = raw(&g, &get(&format!("/{big}"), "")).await.unwrap();
    assert!(matches!(r.status, 414 | 431), "{}", r.head);
    // Under the limit is fine.
    let r = raw(
        &g,
        &get("/.mfa/health", &format!("X-Ok: {}\r\n", "a".repeat(6000))),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);

    // The same through an HTTP library, over HTTP/1.1 and HTTP/2 (a cookie header is where
    // a real browser's headers grow).
    let huge_cookie = format!("junk={}", "b".repeat(20_000));
    let h1 = client_for(g.addr, &g.ca_pem, false)
        .get(g.url("/home"))
        .header("cookie", &huge_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(h1.status(), 431);
    match client_for(g.addr, &g.ca_pem, true)
        .get(g.url("/home"))
        .header("cookie", &huge_cookie)
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), 431, "HTTP/2"),
        Err(e) => assert!(!e.is_timeout(), "HTTP/2: {e}"),
    }
    g.assert_alive().await;
}

// === Oversized bodies on gateway-owned endpoints ===

/// Sends headers announcing `declared` bytes, then `sent` bytes of form body.
fn form_post(path: &str, cookie: &str, declared: usize, sent: usize) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {declared}\r\n\r\n"
    )
    .into_bytes();
    r.extend(std::iter::repeat_n(b'a', sent));
    r
}

#[tokio::test]
async fn oversized_bodies_on_gateway_endpoints_are_413() {
    let mut g = GatewayProcess::start("", "").await;
    let e = enrolling(&g, "msp").await;
    let cookie = format!("__Host-mfagw-ch={}", e.challenge);
    // MFA forms are capped at 4 KiB: a body that says so up front, and one that lies.
    expect(
        &g,
        "MFA form",
        &form_post("/.mfa/enroll", &cookie, 5000, 5000),
        413,
    )
    .await;
    expect(
        &g,
        "MFA form announcing 1 GB",
        &form_post("/.mfa/enroll", &cookie, 1 << 30, 8192),
        413,
    )
    .await;
    // The login body (read whole to find the user name) is capped at 64 KiB.
    expect(&g, "login", &form_post("/login", "", 70_000, 70_000), 413).await;
    // A body on an endpoint that takes none is not read: the method is refused first (405,
    // naming the methods the endpoint takes).
    let r = expect(
        &g,
        "POST to health",
        &form_post("/.mfa/health", "", 1 << 30, 1024),
        405,
    )
    .await;
    assert!(r.head.contains("\nallow: GET, HEAD\r"), "{}", r.head);
    // The challenge survived all that: the right code still works.
    let code = totp::code_at(&e.secret, unix_now());
    let r =
        e.c.post(g.url("/.mfa/enroll"))
            .form(&[("csrf", e.csrf.as_str()), ("code", code.as_str())])
            .send()
            .await
            .unwrap();
    let r = through_recovery(&g, &e.challenge, r).await;
    assert_eq!(r.status(), 302);
    g.assert_alive().await;
}

// === Slow clients ===

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let mut g = GatewayProcess::start(
        "header_read_timeout = \"1s\"\nhandshake_timeout = \"1s\"",
        "",
    )
    .await;
    // Slowloris: a request head dripped one byte at a time, far slower than the timeout
    // allows. The gateway must close the connection long before the head is complete.
    let s = tls(g.addr, &g.ca_pem).await;
    let (mut rd, mut wr) = tokio::io::split(s);
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = rd.read_to_end(&mut out).await;
        out
    });
    let head = b"GET /home HTTP/1.1\r\nHost: localhost\r\nX-Slow: 0123456789012345678901234567890123456789\r\n\r\n";
    let mut sent = 0;
    for b in head {
        if reader.is_finished() || wr.write_all(&[*b]).await.is_err() || wr.flush().await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        sent < head.len(),
        "the gateway waited for a {}-byte head sent over {} s",
        head.len(),
        head.len() / 4
    );
    let answer = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("connection closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A TLS handshake that never starts, and one that stops half-way.
    for hello in [
        &b""[..],
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
    ] {
        let mut tcp = TcpStream::connect(g.addr).await.unwrap();
        tcp.write_all(hello).await.unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "an unfinished handshake was kept open for {:?}",
            started.elapsed()
        );
    }
    g.assert_alive().await;
}

// === Invalid UTF-8 in forms and cookies ===

#[tokio::test]
async fn invalid_utf8_in_forms_and_cookies_is_harmless() {
    let mut g = GatewayProcess::start("", "").await;
    // Login forms: raw and percent-encoded invalid UTF-8 reach the VMS, which refuses them.
    for body in [
        &b"username=\xff\xfe&password=demo"[..],
        b"username=%ff%fe%00&password=demo",
        b"\xff\xfe\xfd",
        b"username=customer%",
        b"=&&==&username",
    ] {
        let r = g
            .client()
            .post(g.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_no_session(&r, &format!("login body {body:?}"));
        assert_ne!(Flow::location(&r), "/home", "no login without a user name");
    }
    // MFA forms: invalid UTF-8 in the CSRF token is a 403, in the code a format error.
    let e = enrolling(&g, "customer").await;
    let cookie = format!("__Host-mfagw-ch={}", e.challenge);
    let c = client_for(g.addr, &g.ca_pem, false);
    let send = |body: Vec<u8>| {
        c.post(g.url("/.mfa/enroll"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = send(b"csrf=\xff\xfe&code=123456".to_vec()).await.unwrap();
    assert_eq!(r.status(), 403);
    let r = send(format!("csrf={}&code=%ff%fe\u{0}", e.csrf).into_bytes())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("role=\"alert\""));
    let mut body = format!("csrf={}&code=", e.csrf).into_bytes();
    body.extend_from_slice(b"\xff\xfe\xc3\x28");
    assert_eq!(send(body).await.unwrap().status(), 200);

    // Cookies: bytes outside ASCII in the cookie header are never taken for a challenge id,
    // an approval or a session.
    let r = expect(
        &g,
        "non-ASCII challenge cookie",
        &get_raw("/.mfa/enroll", b"Cookie: __Host-mfagw-ch=\xff\xfe\r\n"),
        403,
    )
    .await;
    assert!(r.header("set-cookie").is_some(), "stale cookie cleared");
    let r = expect(
        &g,
        "non-ASCII session and approval",
        &get_raw(
            "/api/me",
            b"Cookie: VMSSESSION=\xff\xfe; __Host-mfagw=\xc3\x28\r\n",
        ),
        401,
    )
    .await;
    assert!(!r.body.contains("\"user\""));
    // A valid session in one cookie field and garbage in another: the garbage is dropped.
    let c = g.client();
    let r = Flow::login(&c, &g, "supplier").await;
    let session = Flow::cookie(&r, "VMSSESSION").unwrap();
    let approval = Flow::cookie(&r, "__Host-mfagw").unwrap();
    let mut fields =
        format!("Cookie: VMSSESSION={session}; __Host-mfagw={approval}\r\n").into_bytes();
    fields.extend_from_slice(b"Cookie: x=\xff\xfe\r\n");
    let r = expect(&g, "split cookie fields", &get_raw("/api/me", &fields), 200).await;
    assert!(r.body.contains("supplier"), "{}", r.body);
    g.assert_alive().await;
}

// === Garbage and huge codes ===

#[tokio::test]
async fn garbage_and_huge_codes_never_release_and_never_lock_out() {
    let mut g = GatewayProcess::start("", "max_failures = 3").await;
    let e = enrolling(&g, "admin").await;
    let post = |code: String| {
        e.c.post(g.url("/.mfa/enroll"))
            .form(&[("csrf", e.csrf.clone()), ("code", code)])
            .send()
    };
    let garbage = [
        String::new(),
        "abcdef".into(),
        "12345".into(),
        "1234567".into(),
        "１２３４５６".into(),
        "١٢٣٤٥٦".into(),
        "12345\u{0}".into(),
        "<script>alert(1)</script>".into(),
        "' OR 1=1 --".into(),
        "9".repeat(3000),
        "-".repeat(3000),
        " ".repeat(3000),
    ];
    for code in garbage {
        let r = post(code.clone()).await.unwrap();
        assert_no_session(&r, &format!("code {:?}", &code[..code.len().min(20)]));
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("role=\"alert\""));
        assert!(!html.contains("<script>alert"), "input not reflected raw");
    }
    // Over the form cap.
    let r = post("1".repeat(10_000)).await.unwrap();
    assert_eq!(r.status(), 413);
    // Malformed codes are not guesses: the user is not locked, the right code works.
    let code = totp::code_at(&e.secret, unix_now());
    let r = post(code).await.unwrap();
    let r = through_recovery(&g, &e.challenge, r).await;
    assert_eq!(r.status(), 302, "enrollment confirmed after garbage");
    assert!(Flow::cookie(&r, "VMSSESSION").is_some());
    g.assert_alive().await;
}

// === Forged, reused and foreign challenges, CSRF tokens and approvals ===

#[tokio::test]
async fn forged_reused_and_foreign_challenges_are_refused() {
    let mut g = GatewayProcess::start("", "").await;
    // No, forged, oversized and odd challenge ids.
    for cookie in [
        String::new(),
        "__Host-mfagw-ch=".into(),
        format!(
            "__Host-mfagw-ch={}",
            mfa_gateway::auth::crypto::random_token()
        ),
        format!("__Host-mfagw-ch={}", "A".repeat(129)),
        format!("__Host-mfagw-ch={}", "A".repeat(5000)),
        "__Host-mfagw-ch=../../../etc/passwd".into(),
        "__Host-mfagw-ch=%00%ff".into(),
        "__Host-mfagw-ch=a; __Host-mfagw-ch=b".into(),
    ] {
        for path in ["/.mfa/verify", "/.mfa/enroll", "/.mfa/offer"] {
            let r = post_form(&g, path, &cookie, &[("csrf", "x"), ("code", "123456")]).await;
            assert_eq!(r.status(), 403, "{path} with {cookie:.40}");
            assert_no_session(&r, path);
        }
    }

    // Two users in their enrollment step.
    let a = enrolling(&g, "customer").await;
    let b = enrolling(&g, "msp").await;
    let cookie_a = format!("__Host-mfagw-ch={}", a.challenge);
    let code_a = totp::code_at(&a.secret, unix_now());
    let code_b = totp::code_at(&b.secret, unix_now());
    // CSRF: missing, garbage, tampered, another challenge's, unknown key id.
    let tampered = {
        let (kid, tag) = a.csrf.split_once('.').unwrap();
        let flip = if tag.starts_with('A') { "B" } else { "A" };
        format!("{kid}.{flip}{}", &tag[1..])
    };
    let unknown_kid = format!("k9.{}", a.csrf.split_once('.').unwrap().1);
    for csrf in [
        None,
        Some(""),
        Some("garbage"),
        Some(tampered.as_str()),
        Some(b.csrf.as_str()),
        Some(unknown_kid.as_str()),
    ] {
        let mut form = vec![("code", code_a.as_str())];
        if let Some(t) = csrf {
            form.push(("csrf", t));
        }
        let r = post_form(&g, "/.mfa/enroll", &cookie_a, &form).await;
        assert_eq!(r.status(), 403, "csrf {csrf:?}");
        assert_no_session(&r, "csrf");
    }
    // Another user's code (with a valid CSRF token) does not complete this user's challenge.
    let r = post_form(
        &g,
        "/.mfa/enroll",
        &cookie_a,
        &[("csrf", a.csrf.as_str()), ("code", code_b.as_str())],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_no_session(&r, "another user's code");

    // The right code releases once; the same challenge cannot be used again.
    let r = post_form(
        &g,
        "/.mfa/enroll",
        &cookie_a,
        &[("csrf", a.csrf.as_str()), ("code", code_a.as_str())],
    )
    .await;
    let r = through_recovery(&g, &a.challenge, r).await;
    assert_eq!(r.status(), 302);
    let session = Flow::cookie(&r, "VMSSESSION").unwrap();
    let next = totp::code_at(&a.secret, unix_now() + 30);
    let r = post_form(
        &g,
        "/.mfa/enroll",
        &cookie_a,
        &[("csrf", a.csrf.as_str()), ("code", next.as_str())],
    )
    .await;
    assert_eq!(r.status(), 403, "released challenge reused");
    assert_no_session(&r, "reuse");

    // Session fixation: a challenge cookie planted before login is replaced by a new one.
    let planted = b.challenge.clone();
    let c = client_for(g.addr, &g.ca_pem, false);
    let r = c
        .post(g.url("/login"))
        .header("cookie", format!("__Host-mfagw-ch={planted}"))
        .form(&[("username", "msp"), ("password", "demo")])
        .send()
        .await
        .unwrap();
    let fresh = Flow::cookie(&r, "__Host-mfagw-ch").unwrap();
    assert_ne!(fresh, planted, "login issues a new challenge id");

    // Approvals: forged, wrong key, expired, another session's, tampered.
    let ring = KeyRing::new(
        "k1",
        vec![("k1".into(), parse_key_material(&g.key).unwrap())],
    )
    .unwrap();
    let other_ring = KeyRing::new(
        "k1",
        vec![(
            "k1".into(),
            parse_key_material(&mfa_gateway::auth::crypto::generate_key_material()).unwrap(),
        )],
    )
    .unwrap();
    let names = vec!["VMSSESSION".to_string()];
    let hash = session_hash(&names, |_| Some(session.as_str())).unwrap();
    let now = unix_now();
    let approval = |issued: u64, expires: u64, hash: [u8; 16]| Approval {
        issued,
        expires,
        mfa_passed: true,
        state: MfaState::Enforced,
        session_hash: hash,
        role: "customer".into(),
        user: "customer".into(),
        epoch: 0,
        id: Some([1; 16]),
    };
    let good = approval(now, now + 3600, hash).seal(&ring);
    let tampered = {
        let (payload, rest) = good.split_once('.').unwrap();
        let flip = if payload.starts_with('A') { "B" } else { "A" };
        format!("{flip}{}.{rest}", &payload[1..])
    };
    let cases = [
        ("well-formed garbage", "AAAA.k1.AAAA".to_string()),
        (
            "other key",
            approval(now, now + 3600, hash).seal(&other_ring),
        ),
        ("expired", approval(now - 7200, now - 1, hash).seal(&ring)),
        (
            "issued in the future",
            approval(now + 3600, now + 7200, hash).seal(&ring),
        ),
        (
            "another session",
            approval(now, now + 3600, [0; 16]).seal(&ring),
        ),
        ("tampered", tampered),
        ("huge", "A".repeat(50_000)),
    ];
    let me = |approval: String| {
        let c = client_for(g.addr, &g.ca_pem, false);
        let cookie = format!("VMSSESSION={session}; __Host-mfagw={approval}");
        let u = g.url("/api/me");
        async move { c.get(u).header("cookie", cookie).send().await.unwrap() }
    };
    for (name, value) in cases {
        let r = me(value).await;
        assert!(r.status().as_u16() < 500, "{name}");
        assert_ne!(r.status(), 200, "{name}: the VMS saw the session");
    }
    // The harness is sound: the same forgery with a valid expiry and the real key passes.
    assert_eq!(me(good).await.status(), 200);
    g.assert_alive().await;
}

/// Expiry needs a clock the test controls, so this one runs the gateway in-process.
#[tokio::test]
async fn an_expired_challenge_releases_nothing() {
    let redis = RedisProc::start();
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let certs = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&certs, vms_addr, &redis.url(), DEMO_VMS, "");
    let clock = mfa_gateway::clock::Clock::manual(at("2022-02-01T09:00:00Z"));
    let gw = start_gateway(dir.path(), &text, &certs.ca_pem, clock).await;
    let c = client(&gw);
    let r = c
        .post(url(&gw, "/login"))
        .form(&[("username", "customer"), ("password", "demo")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = c
        .get(url(&gw, "/.mfa/enroll"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, secret) = Flow::pairing(&html);
    // An enrollment step waits `mfa.enrollment_ttl` (30 minutes).
    gw.clock.advance(1801);
    let code = totp::code_at(&secret, gw.clock.unix());
    let r = c
        .post(url(&gw, "/.mfa/enroll"))
        .form(&[
            ("csrf", Flow::csrf(&html).as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_no_session(&r, "expired challenge");
}

// === Path tricks against the reserved prefix ===

type LenientBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// An upstream that reads paths as leniently as legacy servers do (see the module docs).
async fn lenient(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<LenientBody>, std::convert::Infallible> {
    let raw = req.uri().path().to_string();
    let view = mfa_gateway::vms_reading::path::lenient_reading(&raw);
    let method = req.method().clone();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let full = |s: String| http_body_util::Full::new(Bytes::from(s)).boxed();
    let resp = hyper::Response::builder();
    let resp = if view.starts_with("/.mfa/") || view == "/.mfa" {
        resp.status(299)
            .body(full(format!("the VMS read {raw} as {view}")))
    } else if view == "/login" && method == hyper::Method::POST {
        let supplier = body.windows(17).any(|w| w == b"username=supplier");
        resp.status(302)
            .header("location", "/home")
            .header("x-vms-role", if supplier { "Supplier" } else { "Customer" })
            .header("x-vms-user", if supplier { "supplier" } else { "customer" })
            .header("set-cookie", "VMSSESSION=lenient-session; Path=/")
            .body(full(String::new()))
    } else if raw == "/whoami" {
        let json = serde_json::json!({ "sessions": lenient_sessions(&headers) });
        resp.status(200).body(full(json.to_string()))
    } else {
        let json = serde_json::json!({
            "raw": raw,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        resp.status(200).body(full(json.to_string()))
    };
    Ok(resp.unwrap())
}

/// Every value a lenient server could take for the session cookie: it also splits on `,`
/// (RFC 2965), strips quotes, percent-decodes names and ignores their case.
fn lenient_sessions(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n == "cookie")
        .flat_map(|(_, v)| v.split([';', ',']))
        .filter_map(|part| {
            let (name, value) = part.split_once('=')?;
            let name = name.trim().trim_matches('"');
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            name.trim_start_matches('$')
                .eq_ignore_ascii_case("vmssession")
                .then(|| value.trim().trim_matches('"').to_string())
        })
        .filter(|v| !v.is_empty())
        .collect()
}

async fn spawn_lenient() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
                hyper_util::rt::TokioIo::new(tcp),
                hyper::service::service_fn(lenient),
            ));
        }
    });
    addr
}

/// Decision (see `vms_reading::path`): the prefix as written is the gateway's (an unknown path
/// under it is a 404, never forwarded); a path a lenient server would read as under the
/// prefix is refused with 400; a login reached by a disguised path is still a login: its
/// session is withheld until the MFA step, like the configured path's.
#[tokio::test]
async fn path_tricks_never_reach_a_handler_or_the_vms_in_disguise() {
    let up = spawn_lenient().await;
    let mut g = GatewayProcess::start_in_front_of(up, "", "").await;
    let refused = [
        "//.mfa/health",
        "///.mfa/health",
        "/%2emfa/health",
        "/%2Emfa/health",
        "/%252emfa/health",
        "/.MFA/health",
        "/.Mfa/verify",
        "/.mfa%2fhealth",
        "/.mfa%2Fverify",
        "/.mfa%5chealth",
        "/.mfa\\health",
        "/.mfa;jsessionid=1/health",
        "/x/../.mfa/health",
        "/./.mfa/health",
        "/x/%2e%2e/.mfa/health",
        "/.mfa./health",
        "/.mfa%20/health",
    ];
    for path in refused {
        let r = expect(&g, path, &get(path, ""), 400).await;
        assert!(!r.body.contains("the VMS read"), "{path} was forwarded");
    }
    for path in [
        "/.mfa/../x",
        "/.mfa/./health",
        "/.mfa//health",
        "/.mfa/health/",
    ] {
        expect(&g, path, &get(path, ""), 404).await;
    }
    // The real thing still works, and ordinary odd paths go to the VMS untouched.
    expect(&g, "health", &get("/.mfa/health", ""), 200).await;
    for path in ["/a//b", "/x/../y", "/.mfax", "/x/.mfa/health", "/login;x=1"] {
        let r = expect(&g, path, &get(path, ""), 200).await;
        let seen: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(seen["raw"], path, "forwarded untouched");
    }
    // A login through a disguised path: the VMS logs the user in, the session waits for MFA.
    for path in ["/login;x=1", "//login", "/LOGIN", "/%6cogin", "/x/../login"] {
        let body = "username=customer&password=demo";
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let r = raw(&g, request.as_bytes()).await.unwrap();
        assert_eq!(r.status, 303, "{path}: {}", r.head);
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains("location: /.mfa/enroll"),
            "{path}: {}",
            r.head
        );
        assert!(
            !r.head.contains("VMSSESSION=lenient-session"),
            "{path}: session released without MFA:\n{}",
            r.head
        );
    }
    // The configured login path is intercepted as usual.
    let r = Flow::login(&g.client(), &g, "customer").await;
    assert_eq!(Flow::location(&r), "/.mfa/enroll");
    g.assert_alive().await;
}

/// The VMS session cookie reaches the VMS only with a valid approval, also where a server
/// reads cookies more leniently than the gateway: a session hidden behind a comma, in
/// another case, percent-encoded or quoted, and duplicates next to an approved session.
#[tokio::test]
async fn hidden_session_cookies_never_reach_the_vms() {
    let up = spawn_lenient().await;
    let mut g = GatewayProcess::start_in_front_of(up, "", "").await;
    let whoami = async |cookie: &str| -> Vec<String> {
        let r = expect(
            &g,
            cookie,
            &get("/whoami", &format!("Cookie: {cookie}\r\n")),
            200,
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        serde_json::from_value(v["sessions"].clone()).unwrap()
    };
    let hidden = [
        "a=1, VMSSESSION=stolen",
        "a=1,VMSSESSION=stolen; b=2",
        "vmssession=stolen",
        "VmsSession=stolen",
        "VMS%53ESSION=stolen",
        "\"VMSSESSION\"=stolen",
        "$VMSSESSION=stolen",
        "VMSSESSION=; VMSSESSION=stolen",
        "VMSSESSION=stolen; __Host-mfagw=AAAA.k1.AAAA",
    ];
    for cookie in hidden {
        assert_eq!(whoami(cookie).await, Vec::<String>::new(), "{cookie}");
    }
    // An approved session passes alone: no second session value rides along with it.
    let r = Flow::login(&g.client(), &g, "supplier").await;
    let session = Flow::cookie(&r, "VMSSESSION").unwrap();
    let approval = Flow::cookie(&r, "__Host-mfagw").unwrap();
    let own = format!("VMSSESSION={session}; __Host-mfagw={approval}");
    assert_eq!(whoami(&own).await, vec![session.clone()], "harness");
    for extra in [
        "VMSSESSION=stolen",
        "vmssession=stolen",
        "a=1, VMSSESSION=stolen",
        "VMS%53ESSION=stolen",
    ] {
        for cookie in [format!("{own}; {extra}"), format!("{extra}; {own}")] {
            let seen = whoami(&cookie).await;
            assert!(
                seen.is_empty() || seen == vec![session.clone()],
                "{cookie}: the VMS saw {seen:?}"
            );
        }
        assert_eq!(
            whoami(&format!("{own}; {extra}")).await,
            vec![session.clone()]
        );
    }
    g.assert_alive().await;
}

// === Open redirects ===

/// A `Location` the gateway itself sets stays on the site the client asked for.
fn on_site(location: &str, host: &str) -> bool {
    if location.starts_with('/') {
        return !location.starts_with("//") && !location.starts_with("/\\");
    }
    location
        .strip_prefix("https://")
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .is_some_and(|authority| authority == host)
}

#[tokio::test]
async fn no_redirect_leaves_the_site() {
    let redirect_port = free_port();
    let mut g = GatewayProcess::start(
        &format!("redirect_listen = \"127.0.0.1:{redirect_port}\""),
        "",
    )
    .await;
    let host = format!("localhost:{}", g.addr.port());
    let c = client_for(g.addr, &g.ca_pem, false);
    let evil = "https://evil.example/";
    let mut locations = Vec::new();
    for (path, extra) in [
        (format!("/login?next={evil}"), ""),
        (
            format!("/login?redirect=//evil.example&return_to={evil}"),
            "",
        ),
        ("/login".to_string(), "evil.example"),
    ] {
        let mut req = c
            .post(g.url(&path))
            .form(&[("username", "customer"), ("password", "demo")]);
        if !extra.is_empty() {
            req = req.header("x-forwarded-host", extra).header("host", extra);
        }
        let r = req.send().await.unwrap();
        locations.push(Flow::location(&r));
    }
    // The MFA pages' own redirects (another step's page), with hostile query strings.
    let e = enrolling(&g, "msp").await;
    for path in [
        format!("/.mfa/verify?next={evil}"),
        "/.mfa/offer?next=//evil.example".to_string(),
        "/.mfa/verify?redirect=%2F%2Fevil.example".to_string(),
    ] {
        let r = e.c.get(g.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        locations.push(Flow::location(&r));
    }
    for loc in &locations {
        assert!(on_site(loc, &host), "off-site Location {loc:?}");
    }
    assert!(locations.iter().all(|l| !l.is_empty()));

    // The plain-HTTP listener only sends to HTTPS on the host the client named; paths that
    // look like another host stay paths, and Host values that are not a host are refused.
    let plain = TcpStream::connect(("127.0.0.1", redirect_port)).await;
    assert!(plain.is_ok(), "redirect listener up");
    for (path, host_header, want) in [
        ("//evil.example/x", "localhost", Some("localhost")),
        ("/\\evil.example", "localhost", Some("localhost")),
        ("/", "localhost@evil.example", None),
        ("/", "evil.example/x", None),
        ("/", "localhost:1@evil.example", None),
        ("/", "", None),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", redirect_port))
            .await
            .unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out);
        let status = text.split(' ').nth(1).unwrap_or("");
        match want {
            Some(h) => {
                assert_eq!(status, "308", "{path}: {text}");
                let loc = text
                    .lines()
                    .find_map(|l| l.strip_prefix("location: "))
                    .unwrap();
                assert!(
                    on_site(loc, &format!("{h}:{}", g.addr.port())),
                    "{path}: {loc}"
                );
            }
            None => assert_eq!(status, "400", "Host {host_header:?}: {text}"),
        }
    }
    g.assert_alive().await;
}

/// Browsers are told to use HTTPS only (HSTS) for real host names, on every answer: the
/// gateway's pages, its errors and what the VMS sends; not for localhost or addresses.
#[tokio::test]
async fn hsts_for_host_names_only() {
    let mut g = GatewayProcess::start("", "").await;
    let cases = [
        ("/.mfa/health", "vms.example.test", true),
        ("/login", "vms.example.test:8443", true),
        ("/.mfa/nope", "vms.example.test", true),
        ("//.mfa/health", "vms.example.test", true),
        ("/.mfa/health", "localhost", false),
        ("/login", "127.0.0.1:8443", false),
        ("/login", "[::1]", false),
    ];
    for (path, host, want) in cases {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let r = raw(&g, request.as_bytes()).await.unwrap();
        assert_eq!(
            r.header("strict-transport-security"),
            want.then_some("max-age=31536000"),
            "{path} for {host}: {}",
            r.head
        );
    }
    g.assert_alive().await;
}

#[test]
fn on_site_recognises_off_site_locations() {
    assert!(on_site("/home", "h"));
    assert!(on_site("https://h/x", "h"));
    assert!(!on_site("//evil/x", "h"));
    assert!(!on_site("/\\evil/x", "h"));
    assert!(!on_site("https://evil/x", "h"));
    assert!(!on_site("https://h.evil/x", "h"));
    assert!(!on_site("http://h/x", "h"));
}

#[tokio::test]
async fn head_requests_to_gateway_pages_work_over_both_protocols() {
    let mut g = GatewayProcess::start("", "").await;
    for http2 in [false, true] {
        let c = client_for(g.addr, &g.ca_pem, http2);
        for path in [
            "/.mfa/health",
            "/.mfa/ready",
            "/.mfa/verify",
            "/.mfa/nothing-here",
        ] {
            let get = c.get(g.url(path)).send().await.unwrap();
            let get_status = get.status();
            let get_len = get.bytes().await.unwrap().len();
            let head = c
                .head(g.url(path))
                .send()
                .await
                .unwrap_or_else(|e| panic!("HEAD {path} (h2: {http2}): {e}"));
            assert_eq!(head.status(), get_status, "HEAD {path} (h2: {http2})");
            let announced = head
                .headers()
                .get("content-length")
                .map(|v| v.to_str().unwrap().parse::<usize>().unwrap());
            assert!(
                announced.is_none_or(|n| n == get_len || path == "/.mfa/ready"),
                "HEAD {path} announces the GET's length: {announced:?} vs {get_len}"
            );
            assert!(
                head.bytes().await.unwrap().is_empty(),
                "HEAD {path}: no body"
            );
        }
    }
    g.assert_alive().await;
}

#[tokio::test]
async fn a_client_still_uploading_a_too_large_form_reads_the_413() {
    let mut g = GatewayProcess::start("", "").await;
    let e = enrolling(&g, "msp").await;
    for http2 in [false, true] {
        let c = client_for(g.addr, &g.ca_pem, http2);
        // 800 KB: far above the 4 KiB form limit, and more than the socket buffers take in.
        let body = format!("csrf={}&code={}", e.csrf, "1".repeat(800_000));
        let r = c
            .post(g.url("/.mfa/enroll"))
            .header("cookie", format!("__Host-mfagw-ch={}", e.challenge))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|err| panic!("the client reads an answer (h2: {http2}): {err}"));
        assert_eq!(r.status(), 413, "h2: {http2}");
    }
    g.assert_alive().await;
}

#[tokio::test]
async fn a_body_too_large_to_read_is_refused_before_100_continue() {
    let mut g = GatewayProcess::start("", "").await;
    // A client that waits for `100 Continue` before sending 3 MB: the login body limit is
    // 64 KiB, so the answer is the 413 itself, and no byte of the body is asked for.
    let mut s = tls(g.addr, &g.ca_pem).await;
    s.write_all(
        b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3000000\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut head))
        .await
        .expect("an answer without sending the body")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    g.assert_alive().await;
}
