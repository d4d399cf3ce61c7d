//! WebSocket tunnels of an approved session end with its approval: a logout (or an MSP reset,
//! or the approval's expiry) closes the tunnels the session had open, within the revocation
//! poll, where before they stayed open as long as the client liked.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::browser::cookie_header;
use crate::support::*;

/// A VMS with a form login (a supplier: no MFA), a logout and a WebSocket echo at `/ws`.
async fn spawn_vms() -> SocketAddr {
    async fn handle(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let mut r = Response::new(Full::new(Bytes::new()));
        match (req.method().as_str(), req.uri().path()) {
            ("POST", "/login") => {
                *r.status_mut() = StatusCode::FOUND;
                let h = r.headers_mut();
                h.insert("location", "/home".parse().unwrap());
                h.insert("set-cookie", "VMSSESSION=s1; Path=/".parse().unwrap());
                h.insert("x-vms-role", "Supplier".parse().unwrap());
            }
            ("GET", "/ws") => {
                let up = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    if let Ok(io) = up.await {
                        let mut io = TokioIo::new(io);
                        let mut buf = [0u8; 1024];
                        while let Ok(n) = io.read(&mut buf).await {
                            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                });
                *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                r.headers_mut()
                    .insert("connection", "upgrade".parse().unwrap());
                r.headers_mut()
                    .insert("upgrade", "websocket".parse().unwrap());
            }
            ("GET", "/logout") => {
                *r.status_mut() = StatusCode::FOUND;
                r.headers_mut()
                    .insert("location", "/login".parse().unwrap());
            }
            _ => {}
        }
        Ok(r)
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(handle))
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

const VMS: &str = r#"
[vms]
session_cookies = ["VMSSESSION"]
logout = [{ path = "/logout" }]
[[vms.login]]
method = "POST"
path = "/login"
username_field = "username"
success_status = [302]
success_cookie = "VMSSESSION"
[vms.role]
source = "header"
header = "X-VMS-Role"
unmapped = "enforced"
[vms.role.map]
Supplier = "supplier"
"#;

/// Opens a WebSocket through the gateway with `cookie` and checks that bytes go both ways.
async fn open_tunnel(
    gw: &Gw,
    cookie: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut tls = crate::proxy::raw_tls(gw).await;
    tls.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tls.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    tls.write_all(b"ping").await.unwrap();
    let n = tls.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"ping");
    tls
}

/// The tunnel is closed by the gateway within `limit` (reads end).
async fn closed_within(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    limit: Duration,
) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(limit, tls.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn a_logout_closes_the_sessions_open_websockets() {
    let vms = spawn_vms().await;
    let redis = RedisProc::start();
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&c, vms, &redis.url(), VMS, "");
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        mfa_gateway::clock::Clock::manual(at("2022-03-01T10:00:00Z")),
    )
    .await;
    let http = client(&gw);
    let login = http
        .post(url(&gw, "/login"))
        .form(&[("username", "sup"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 302);
    let cookie = cookie_header(&login);
    assert!(cookie.contains("__Host-mfagw="), "approved: {cookie}");

    let mut kept = open_tunnel(&gw, &cookie).await;
    // Nothing ends it while the approval is good (several revocation polls).
    assert!(!closed_within(&mut kept, Duration::from_millis(700)).await);
    assert_eq!(gw.gateway().tunnels.len(), 1);

    // The logout, on another connection: the tunnel closes within the poll (200 ms here).
    let r = http.get(url(&gw, "/logout")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await);
    eventually(
        Duration::from_secs(3),
        "the register is empty",
        async || gw.gateway().tunnels.is_empty(),
    )
    .await;

    // Expiry: a new login, a tunnel, and the approval's lifetime passes.
    let login = http
        .post(url(&gw, "/login"))
        .form(&[("username", "sup"), ("password", "x")])
        .send()
        .await
        .unwrap();
    let cookie = cookie_header(&login);
    let mut tls = open_tunnel(&gw, &cookie).await;
    let max_age = gw.gateway().cfg.mfa.approval_max_age.as_secs();
    gw.clock.advance(i64::try_from(max_age).unwrap() + 1);
    assert!(closed_within(&mut tls, Duration::from_secs(3)).await);
}
