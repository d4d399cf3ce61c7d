//! Request smuggling through bodies on methods that have none, against a VMS that never
//! reads the body of a GET (as some servers do): it takes those bytes for the next request on
//! the connection and answers that one too.
//!
//! The gateway refuses such requests with 400 before anything is forwarded, so the VMS sees
//! only the requests the gateway meant to send, and no client ever receives the answer to
//! another exchange. Method and path pairs the operator allows (`vms.allow_body_on`) are
//! sent with `Connection: close` on a connection that is never reused.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// A request as the stand-in VMS parsed it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    /// Header names in lower case, values as sent.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The number of the connection it came on (from 1).
    conn: usize,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Standin {
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl Standin {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn targets(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect()
    }
}

/// The stand-in VMS: HTTP/1.1 on a raw socket, keep-alive, answering each request in turn
/// with `answer to METHOD TARGET`. It reads a body (by `Content-Length`) for every method but
/// GET and HEAD; the bytes after a GET's head are parsed as the next request. It never closes
/// a connection itself.
async fn spawn_standin() -> (SocketAddr, Standin) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Standin::default();
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let conn = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
            let log = Arc::clone(&shared.seen);
            tokio::spawn(async move {
                let mut buf: Vec<u8> = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    // Every complete request in the buffer, in order.
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let mut lines = head.split("\r\n");
                        let mut line = lines.next().unwrap_or("").split(' ');
                        let method = line.next().unwrap_or("").to_string();
                        let target = line.next().unwrap_or("").to_string();
                        let headers: Vec<(String, String)> = lines
                            .filter_map(|l| l.split_once(':'))
                            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                            .collect();
                        let length: usize = if method == "GET" || method == "HEAD" {
                            0
                        } else {
                            headers
                                .iter()
                                .find(|(n, _)| n == "content-length")
                                .and_then(|(_, v)| v.parse().ok())
                                .unwrap_or(0)
                        };
                        if buf.len() < end + 4 + length {
                            break;
                        }
                        let body = buf[end + 4..end + 4 + length].to_vec();
                        buf.drain(..end + 4 + length);
                        let text = format!("answer to {method} {target}");
                        log.lock().unwrap().push(Seen {
                            method,
                            target,
                            headers,
                            body,
                            conn,
                        });
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        if s.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, state)
}

const VMS: &str = r#"
[vms]
session_cookies = ["VMSSESSION"]
[[vms.login]]
path = "/login"
username_field = "username"
"#;

async fn gateway(upstream: SocketAddr, allow: &str) -> (Gw, RedisProc, tempfile::TempDir) {
    let redis = RedisProc::start();
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    // `allow_body_on` belongs to the [vms] table, before [[vms.login]].
    let vms = if allow.is_empty() {
        VMS.to_string()
    } else {
        VMS.replace(
            "[[vms.login]]",
            &format!("allow_body_on = {allow}\n[[vms.login]]"),
        )
    };
    let text = config_text(&c, upstream, &redis.url(), &vms, "");
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        mfa_gateway::clock::Clock::System,
    )
    .await;
    std::mem::forget(c);
    (gw, redis, dir)
}

/// A request hidden in a body: a stolen session cookie on a page the gate would never let it
/// reach.
fn smuggled(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: vms\r\nCookie: VMSSESSION=stolen\r\n\r\n")
}

/// Sends raw bytes over TLS (HTTP/1.1) and reads the first answer: status and body.
async fn raw_h1(gw: &Gw, request: &[u8]) -> (u16, String) {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(gw.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, body[..length].to_string());
            }
        }
        let n = tokio::time::timeout_at(deadline, tls.read(&mut chunk))
            .await
            .expect("no answer within 10 s")
            .unwrap_or(0);
        assert!(n > 0, "closed without a whole answer: {text:?}");
        got.extend_from_slice(&chunk[..n]);
    }
}

fn method(m: &str) -> reqwest::Method {
    reqwest::Method::from_bytes(m.as_bytes()).unwrap()
}

#[tokio::test]
async fn a_body_on_a_method_without_one_is_refused_and_nothing_is_forwarded() {
    let (up, vms) = spawn_standin().await;
    let (gw, _redis, _dir) = gateway(up, "").await;
    for http2 in [false, true] {
        let c = client_for(gw.addr, &gw.ca_pem, http2);
        // A length, in every spelling of every method without a body (a lenient VMS reads
        // `get` as GET), on an ordinary path and on the login route.
        for m in [
            "GET", "get", "Get", "HEAD", "OPTIONS", "DELETE", "delete", "TRACE",
        ] {
            for path in ["/orders", "/login"] {
                let r = c
                    .request(method(m), url(&gw, path))
                    .body(smuggled("/admin/users"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 400, "{m} {path} with a body (h2: {http2})");
            }
        }
        if http2 {
            // DATA frames without a length.
            let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(
                smuggled("/admin/users"),
            ))]);
            let r = c
                .get(url(&gw, "/orders"))
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "an HTTP/2 GET with a streamed body");
        }
    }
    // HTTP/1.1 as an attacker writes it (an HTTP client library would leave such bodies
    // out): chunked, a transfer coding list, a length, a lower-case method.
    let hidden = smuggled("/admin/users");
    for (name, request) in [
        (
            "chunked",
            format!(
                "GET /orders HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n",
                hidden.len()
            ),
        ),
        (
            "gzip, chunked",
            format!(
                "GET /orders HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n",
                hidden.len()
            ),
        ),
        (
            "length",
            format!(
                "GET /orders HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{hidden}",
                hidden.len()
            ),
        ),
        (
            "length, lower-case method, login route",
            format!(
                "get /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{hidden}",
                hidden.len()
            ),
        ),
    ] {
        let (status, _) = raw_h1(&gw, request.as_bytes()).await;
        assert_eq!(status, 400, "{name}");
    }
    assert!(vms.seen().is_empty(), "forwarded: {:?}", vms.targets());

    // Without a body, and methods that have one, pass as before.
    let c = client(&gw);
    let r = c.get(url(&gw, "/orders")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "answer to GET /orders");
    let r = c
        .get(url(&gw, "/orders"))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "answer to GET /orders");
    let r = c
        .post(url(&gw, "/orders"))
        .body("a=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "answer to POST /orders");
    assert_eq!(
        vms.targets(),
        vec!["GET /orders", "GET /orders", "POST /orders"]
    );
    assert!(vms.seen().iter().all(|s| s.header("cookie").is_none()));
}

#[tokio::test]
async fn another_client_never_receives_the_answer_to_a_smuggled_request() {
    let (up, vms) = spawn_standin().await;
    let (gw, _redis, _dir) = gateway(up, "").await;
    let attacker = client(&gw);
    let victim = client(&gw);
    for i in 0..50 {
        // The attacker's GET carries a second request in its body; the victim's request
        // follows at once, on a connection of its own.
        let attack = attacker
            .get(url(&gw, &format!("/a{i}")))
            .body(smuggled(&format!("/smuggled{i}")))
            .send();
        let follow = victim.get(url(&gw, &format!("/victim{i}"))).send();
        let (attack, follow) = tokio::join!(attack, follow);
        assert_eq!(attack.unwrap().status(), 400);
        let follow = follow.unwrap();
        assert_eq!(follow.status(), 200);
        assert_eq!(
            follow.text().await.unwrap(),
            format!("answer to GET /victim{i}"),
            "round {i}"
        );
    }
    let targets = vms.targets();
    assert_eq!(targets.len(), 50, "{targets:?}");
    assert!(
        targets.iter().all(|t| t.starts_with("GET /victim")),
        "{targets:?}"
    );
}

#[tokio::test]
async fn an_allowed_method_and_path_goes_with_connection_close_on_a_connection_not_reused() {
    let (up, vms) = spawn_standin().await;
    let allow =
        r#"[{ method = "DELETE", path = "/api/items" }, { method = "GET", path = "/search" }]"#;
    let (gw, _redis, _dir) = gateway(up, allow).await;
    for http2 in [false, true] {
        let c = client_for(gw.addr, &gw.ca_pem, http2);
        let r = c
            .delete(url(&gw, "/api/items"))
            .body(r#"{"id":7}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "answer to DELETE /api/items");
        // Only the listed pairs: the same method elsewhere, another method here.
        for (m, path) in [("DELETE", "/api/items/"), ("GET", "/api/items")] {
            let r = c
                .request(method(m), url(&gw, path))
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{m} {path} (h2: {http2})");
        }
    }
    let deletes: Vec<Seen> = vms
        .seen()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 2);
    for d in &deletes {
        assert_eq!(d.header("connection"), Some("close"), "{d:?}");
        assert_eq!(d.body, br#"{"id":7}"#);
    }
    assert_ne!(deletes[0].conn, deletes[1].conn);

    // A GET whose body this VMS never reads: its hidden request is answered too (the operator
    // allowed it), but on a connection that ends with the exchange, so the extra answer
    // reaches nobody; a client right behind always gets its own.
    let attacker = client(&gw);
    let other = client(&gw);
    for i in 0..50 {
        let r = attacker
            .get(url(&gw, "/search"))
            .body(smuggled(&format!("/smuggled{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "answer to GET /search");
        let r = other
            .get(url(&gw, &format!("/next{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.text().await.unwrap(),
            format!("answer to GET /next{i}"),
            "round {i}"
        );
    }
    // The same with a body of unknown length (chunked): it goes chunked, and closes too.
    let hidden = smuggled("/smuggled-chunked");
    let request = format!(
        "GET /search HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n",
        hidden.len()
    );
    let (status, body) = raw_h1(&gw, request.as_bytes()).await;
    assert_eq!((status, body.as_str()), (200, "answer to GET /search"));

    let seen = vms.seen();
    let searches: Vec<&Seen> = seen.iter().filter(|s| s.target == "/search").collect();
    assert_eq!(searches.len(), 51);
    assert!(
        searches
            .iter()
            .all(|s| s.header("connection") == Some("close"))
    );
    assert_eq!(
        searches.last().unwrap().header("transfer-encoding"),
        Some("chunked")
    );
    // No request of the other client went on a connection after it carried a body on a GET
    // (before it, the connection may have served anyone: that exchange was complete).
    for (i, s) in seen.iter().enumerate() {
        if s.target != "/search" {
            continue;
        }
        assert!(
            seen[i + 1..]
                .iter()
                .filter(|o| o.conn == s.conn)
                .all(|o| !o.target.starts_with("/next")),
            "{seen:?}"
        );
    }
}
