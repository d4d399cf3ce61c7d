//! The gateway as a plain reverse proxy: fidelity, headers, streaming, upgrades, failures.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

type EchoBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> EchoBody {
    Full::new(b.into()).boxed()
}

/// An upstream that reports what it received.
async fn echo(mut req: Request<Incoming>) -> Result<Response<EchoBody>, Infallible> {
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(Response::new(full("late")))
        }
        "/big" => {
            let n: u64 = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("n="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let count = n / chunk.len() as u64;
            let stream = futures_util::stream::iter(
                (0..count).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone()))),
            );
            Ok(Response::new(StreamBody::new(stream).boxed()))
        }
        "/ws" => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = on.await {
                    let mut io = TokioIo::new(up);
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = io.read(&mut buf).await {
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            });
            Ok(Response::builder()
                .status(101)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .body(full(""))
                .unwrap())
        }
        _ => {
            let method = req.method().to_string();
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
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
            // Count the body without keeping it.
            let mut body = req.into_body();
            let mut len = 0u64;
            while let Some(Ok(f)) = body.frame().await {
                if let Some(d) = f.data_ref() {
                    len += d.len() as u64;
                }
            }
            let json = serde_json::json!({ "method": method, "path": pq, "headers": headers, "body_len": len });
            Ok(Response::builder()
                .status(201)
                .header("content-type", "application/json")
                .header("set-cookie", "a=1; Path=/")
                .header("set-cookie", "b=two; HttpOnly; Path=/x")
                .header("keep-alive", "timeout=5")
                .header("connection", "x-hop")
                .header("x-hop", "secret")
                .header("x-upstream", "yes")
                .body(full(json.to_string()))
                .unwrap())
        }
    }
}

pub async fn spawn_echo() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                break;
            };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(echo))
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

const ECHO_VMS: &str = r#"
[vms]
session_cookies = ["VMSSESSION"]
[[vms.login]]
path = "/login"
username_field = "username"
"#;

pub async fn proxy_gateway(
    upstream: SocketAddr,
    extra: &str,
) -> (Gw, RedisProc, tempfile::TempDir) {
    let redis = RedisProc::start();
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&c, upstream, &redis.url(), ECHO_VMS, extra);
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

pub fn echo_headers(v: &serde_json::Value) -> Vec<(String, String)> {
    serde_json::from_value(v["headers"].clone()).unwrap()
}

pub fn header<'a>(h: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    h.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test]
async fn pass_through_is_faithful_and_strips_hop_by_hop() {
    let up = spawn_echo().await;
    let (gw, _redis, _dir) = proxy_gateway(up, "").await;
    let c = client(&gw);
    let resp = c
        .post(url(&gw, "/some/path?q=1&r=%20x"))
        .header("x-custom", "kept")
        .header("connection", "x-drop-me")
        .header("x-drop-me", "gone")
        .header("x-forwarded-for", "6.6.6.6")
        .header("cookie", "other=1")
        .body("hello body")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let set: Vec<_> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        set,
        vec!["a=1; Path=/", "b=two; HttpOnly; Path=/x"],
        "each Set-Cookie separate and byte-identical"
    );
    assert_eq!(resp.headers()["x-upstream"], "yes");
    assert!(
        resp.headers().get("x-hop").is_none(),
        "header named by Connection removed"
    );
    assert!(resp.headers().get("keep-alive").is_none());
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/some/path?q=1&r=%20x");
    assert_eq!(v["body_len"], 10);
    let h = echo_headers(&v);
    assert_eq!(header(&h, "x-custom"), vec!["kept"]);
    assert!(header(&h, "x-drop-me").is_empty());
    assert_eq!(
        header(&h, "x-forwarded-for"),
        vec!["127.0.0.1"],
        "client-sent XFF not trusted"
    );
    assert_eq!(header(&h, "x-forwarded-proto"), vec!["https"]);
    assert_eq!(
        header(&h, "host"),
        vec![format!("localhost:{}", gw.addr.port()).as_str()]
    );
    assert_eq!(
        header(&h, "x-forwarded-host"),
        vec![format!("localhost:{}", gw.addr.port()).as_str()]
    );
    assert_eq!(header(&h, "cookie"), vec!["other=1"]);
}

#[tokio::test]
async fn session_ids_in_the_url_never_reach_the_vms() {
    let up = spawn_echo().await;
    let (gw, _redis, _dir) = proxy_gateway(up, "").await;
    let c = client(&gw);
    let path_of = |p: &'static str| {
        let c = c.clone();
        let u = url(&gw, p);
        async move {
            let resp = c.get(u).send().await.unwrap();
            assert_eq!(resp.status(), 201, "{p}");
            let v: serde_json::Value = resp.json().await.unwrap();
            v["path"].as_str().unwrap().to_string()
        }
    };
    // Removed from path segments and the query, by the servlet name and the configured
    // session cookie's name, in any case and percent-encoded; the rest kept as sent.
    assert_eq!(
        path_of("/app;jsessionid=STOLEN/list;v=2?x=1&VMSSESSION=STOLEN&y=%20").await,
        "/app/list;v=2?x=1&y=%20"
    );
    assert_eq!(path_of("/a;JSESSIONID=1;%6Asessionid=2").await, "/a");
    assert_eq!(path_of("/a;vmssession=S?jsessionid=S").await, "/a");
    // Untouched when there is none.
    assert_eq!(
        path_of("/a;jsessionidx=1/b?sessionid=1&q=jsessionid").await,
        "/a;jsessionidx=1/b?sessionid=1&q=jsessionid"
    );
    let metrics = crate::support::browser::get_text(&c, &gw, "/.mfa/metrics").await;
    assert!(
        metrics.contains("mfa_gateway_mfa_events_total{event=\"url_session_stripped\"} 3"),
        "{metrics}"
    );
    // A URL that would reach the gateway's own paths once the parameter is gone stays
    // refused, as it is with the parameter.
    for p in ["/;jsessionid=1/.mfa/health", "/.mfa;jsessionid=1/health"] {
        let status = c.get(url(&gw, p)).send().await.unwrap().status();
        assert_eq!(status, 400, "{p}");
    }
}

#[tokio::test]
async fn http2_clients_keep_their_host() {
    let up = spawn_echo().await;
    let (gw, _redis, _dir) = proxy_gateway(up, "").await;
    let c = client_for(gw.addr, &gw.ca_pem, true);
    let resp = c.get(url(&gw, "/h2")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let v: serde_json::Value = resp.json().await.unwrap();
    let h = echo_headers(&v);
    assert_eq!(
        header(&h, "host"),
        vec![format!("localhost:{}", gw.addr.port()).as_str()],
        "{h:?}"
    );
}

/// The highest resident memory of process `pid` since its last reset, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// The gateway is the real binary in its own process, so its peak memory is its own and not
/// that of whatever else the test binary runs at the same time.
#[tokio::test]
async fn large_bodies_stream_both_ways_with_bounded_memory() {
    let up = spawn_echo().await;
    let gw = crate::logs::GatewayProcess::start_logging(up, "", "", "info").await;
    let c = gw.client();
    const SIZE: u64 = 256 * 1024 * 1024;
    reset_peak_rss(gw.pid());
    let before = peak_rss_kib(gw.pid());
    // Download.
    let resp = c
        .get(gw.url(&format!("/big?n={SIZE}")))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut got = 0u64;
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        got += chunk.unwrap().len() as u64;
    }
    assert_eq!(got, SIZE);
    // Upload.
    let chunk = Bytes::from(vec![b'y'; 64 * 1024]);
    let body = futures_util::stream::iter(
        (0..SIZE / chunk.len() as u64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let resp = c
        .put(gw.url("/upload"))
        .body(reqwest::Body::wrap_stream(body))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["body_len"], SIZE);
    let grown_mib = peak_rss_kib(gw.pid()).saturating_sub(before) / 1024;
    assert!(
        grown_mib < 32,
        "the gateway's peak memory grew by {grown_mib} MiB while 2 x 256 MiB streamed"
    );
}

#[tokio::test]
async fn upgrade_tunnels_bytes_both_ways() {
    let up = spawn_echo().await;
    let (gw, _redis, _dir) = proxy_gateway(up, "").await;
    let mut tls = raw_tls(&gw).await;
    tls.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tls.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    tls.write_all(b"ping through the tunnel").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 23 {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&got, b"ping through the tunnel");
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504() {
    let up = spawn_echo().await;
    let (gw, _redis, _dir) = proxy_gateway(up, "").await;
    let c = client(&gw);
    let slow = c.get(url(&gw, "/slow")).send().await.unwrap();
    assert_eq!(slow.status(), 504);
    assert!(
        slow.text().await.unwrap().contains("<html"),
        "a small page, not a bare error"
    );
    // A port nobody listens on.
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (gw2, _redis2, _dir2) = proxy_gateway(dead, "").await;
    let r = client(&gw2).get(url(&gw2, "/")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let errors = || {
        let text = gw2.gateway().metrics.render();
        text.lines()
            .filter(|l| l.starts_with("mfa_gateway_upstream_errors_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    assert_eq!(errors(), 1, "the failed request is counted");
    let text = gw2.gateway().metrics.render();
    assert!(
        text.contains("mfa_gateway_upstream_errors_total{kind=\"connect\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mfa_gateway_errors_total{kind=\"upstream_connect\"} 1"),
        "{text}"
    );
    for _ in 0..3 {
        let ready = client(&gw2)
            .get(url(&gw2, "/.mfa/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 503);
    }
    assert_eq!(errors(), 1, "readiness probes are not failed requests");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let up = spawn_echo().await;
    let (gw, _redis, _dir) = proxy_gateway(up, "").await;
    let c = client(&gw);
    assert_eq!(
        c.get(url(&gw, "/.mfa/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = c.get(url(&gw, "/.mfa/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let v: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(v["store"]["status"], "ok");
    assert_eq!(
        v["requires"],
        serde_json::json!(["upstream"]),
        "the default"
    );
    c.get(url(&gw, "/x")).send().await.unwrap();
    let m = c
        .get(url(&gw, "/.mfa/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("mfa_gateway_requests_total{outcome=\"proxied\"}"),
        "{m}"
    );
    assert!(m.contains("mfa_gateway_open_connections"));
    // What an operator wants on a dashboard: version, certificate expiry, the key and the
    // policy phase in force, and the process's memory and descriptors.
    let value = |name: &str| {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} in {m}"))
    };
    assert_eq!(
        value(&format!(
            "mfa_gateway_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    let not_after = value("mfa_gateway_cert_not_after_seconds ");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        not_after > now,
        "the test certificate is valid: {not_after}"
    );
    assert_eq!(value("mfa_gateway_active_key_info{key_id=\""), 1.0);
    assert_eq!(value("mfa_gateway_policy_phase_info{phase=\""), 1.0);
    assert!(value("process_resident_memory_bytes ") > 1e6);
    assert!(value("process_open_fds ") >= 3.0);
    assert!(
        value("mfa_gateway_vms_response_seconds_count ") >= 1.0,
        "{m}"
    );
    assert!(m.contains("# TYPE mfa_gateway_store_poll_seconds gauge"));
    for family in mfa_gateway::run::FACT_METRICS {
        assert!(m.contains(&format!("# TYPE {family} gauge")), "{family}");
    }
    assert_eq!(
        c.get(url(&gw, "/.mfa/nope")).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn certificate_reload_keeps_serving() {
    let up = spawn_echo().await;
    let redis = RedisProc::start();
    let c1 = certs();
    let dir = tempfile::tempdir().unwrap();
    // The gateway reads its certificate from files in `dir` that the test then replaces.
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::copy(&c1.cert, &cert).unwrap();
    std::fs::copy(&c1.key, &key).unwrap();
    let mut c_in_dir = certs();
    c_in_dir.cert = cert.clone();
    c_in_dir.key = key.clone();
    let text = config_text(&c_in_dir, up, &redis.url(), ECHO_VMS, "");
    let gw = start_gateway(
        dir.path(),
        &text,
        &c1.ca_pem,
        mfa_gateway::clock::Clock::System,
    )
    .await;
    let old = client_for(gw.addr, &c1.ca_pem, false);
    assert_eq!(old.get(url(&gw, "/a")).send().await.unwrap().status(), 201);
    // A broken file is refused and the old certificate stays.
    std::fs::write(&cert, "garbage").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        client_for(gw.addr, &c1.ca_pem, false)
            .get(url(&gw, "/b"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    // A new certificate from another CA is picked up without a restart.
    let c2 = certs();
    std::fs::copy(&c2.key, &key).unwrap();
    std::fs::copy(&c2.cert, &cert).unwrap();
    let mut ok = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if client_for(gw.addr, &c2.ca_pem, false)
            .get(url(&gw, "/c"))
            .send()
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "new certificate served after reload");
    assert!(
        client_for(gw.addr, &c1.ca_pem, false)
            .get(url(&gw, "/d"))
            .send()
            .await
            .is_err(),
        "old CA no longer matches"
    );
}

#[tokio::test]
async fn graceful_shutdown_lets_requests_in_flight_finish() {
    let up = spawn_echo().await;
    let (mut gw, _redis, _dir) = proxy_gateway(up, "").await;
    let c = client(&gw);
    // /slow answers after 10 s, beyond the test config's 4 s response timeout: use a request
    // that is in flight while the gateway stops: a slow upload.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let fut = tokio::spawn(c.put(url(&gw, "/upload")).body(body).send());
    tx.send(Ok(Bytes::from_static(b"first part ")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let running = gw.running.take().unwrap();
    let stopping = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the old request is still being served.
    assert!(
        tokio::net::TcpStream::connect(gw.addr).await.is_err(),
        "listener closed"
    );
    tx.send(Ok(Bytes::from_static(b"second part")))
        .await
        .unwrap();
    drop(tx);
    let resp = fut.await.unwrap().unwrap();
    assert_eq!(resp.status(), 201);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["body_len"], 22);
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn plain_listener_only_redirects_and_metrics_can_listen_apart() {
    let up = spawn_echo().await;
    let redirect_port = free_port();
    let metrics_port = free_port();
    let extra = "";
    let redis = RedisProc::start();
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&c, up, &redis.url(), ECHO_VMS, extra)
        .replace(
            "shutdown_grace = \"5s\"",
            &format!("shutdown_grace = \"5s\"\nredirect_listen = \"127.0.0.1:{redirect_port}\"\npublic_port = 443"),
        )
        .replace("[policy]", &format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n[policy]"));
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        mfa_gateway::clock::Clock::System,
    )
    .await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .get(format!("http://127.0.0.1:{redirect_port}/a/b?c=d"))
        .header("host", "vms.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "https://vms.example/a/b?c=d");
    let m = plain
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
    assert!(
        m.text()
            .await
            .unwrap()
            .contains("mfa_gateway_requests_total")
    );
    // With a metrics listener, the TLS side does not serve them.
    assert_eq!(
        client(&gw)
            .get(url(&gw, "/.mfa/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

/// An HTTPS upstream signed by a private CA named in `upstream.ca`; its connections are
/// reused across requests (bodiless ones on the gateway's own connections, a streamed upload
/// on hyper's).
#[tokio::test]
async fn https_upstream_with_custom_ca() {
    let up_certs = certs();
    let resolver = mfa_gateway::tls::ReloadingCert::load(mfa_gateway::tls::CertPaths {
        cert: up_certs.cert.clone(),
        key: up_certs.key.clone(),
    })
    .unwrap();
    let tls = mfa_gateway::tls::server_config(
        resolver as std::sync::Arc<dyn rustls::server::ResolvesServerCert>,
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = l.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                break;
            };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), hyper::service::service_fn(echo))
                        .await;
                }
            });
        }
    });
    let ca_file = up_certs.cert.parent().unwrap().join("ca.pem");
    let redis = RedisProc::start();
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&c, up_addr, &redis.url(), ECHO_VMS, "").replace(
        &format!("url = \"http://{up_addr}\""),
        &format!(
            "url = \"https://localhost:{}\"\nca = \"{}\"\nhost_header = \"upstream\"",
            up_addr.port(),
            ca_file.display()
        ),
    );
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        mfa_gateway::clock::Clock::System,
    )
    .await;
    let r = client(&gw).get(url(&gw, "/over-tls")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        header(&echo_headers(&v), "host"),
        vec![format!("localhost:{}", up_addr.port()).as_str()]
    );
    // One client, one request at a time: every page view reuses a TLS connection to the VMS.
    let c = client(&gw);
    for i in 0..20 {
        let r = c.get(url(&gw, &format!("/page/{i}"))).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["path"], format!("/page/{i}"));
    }
    let r = c
        .post(url(&gw, "/upload"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            (0..4).map(|_| Ok::<_, std::io::Error>(vec![b'u'; 64 * 1024])),
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["body_len"], 4 * 64 * 1024);
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    // The readiness check and the first request may each have opened one, the upload one
    // more on hyper's side; never one per request.
    assert!(n <= 4, "{n} TLS connections to the VMS for 22 requests");

    // The same VMS behind a CA the gateway is not told about: 502, counted as a TLS failure.
    let own = certs();
    let other_ca = own.cert.parent().unwrap().join("ca.pem");
    let redis2 = RedisProc::start();
    let dir2 = tempfile::tempdir().unwrap();
    let text = config_text(&own, up_addr, &redis2.url(), ECHO_VMS, "").replace(
        &format!("url = \"http://{up_addr}\""),
        &format!(
            "url = \"https://localhost:{}\"\nca = \"{}\"\nhost_header = \"upstream\"",
            up_addr.port(),
            other_ca.display()
        ),
    );
    let bad = start_gateway(
        dir2.path(),
        &text,
        &own.ca_pem,
        mfa_gateway::clock::Clock::System,
    )
    .await;
    let r = client(&bad).get(url(&bad, "/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let m = bad.gateway().metrics.render();
    assert!(
        m.contains("mfa_gateway_upstream_errors_total{kind=\"tls\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("mfa_gateway_errors_total{kind=\"upstream_tls\"} 1"),
        "{m}"
    );
}

/// A client that opens a connection and never completes the TLS handshake is dropped after
/// `server.handshake_timeout`; the listener keeps serving others meanwhile.
#[tokio::test]
async fn stalled_tls_handshakes_are_dropped() {
    let up = spawn_echo().await;
    let redis = RedisProc::start();
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&c, up, &redis.url(), ECHO_VMS, "").replace(
        "shutdown_grace = \"5s\"",
        "shutdown_grace = \"5s\"\nhandshake_timeout = \"1s\"",
    );
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        mfa_gateway::clock::Clock::System,
    )
    .await;
    let mut idle = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    // A few bytes of a ClientHello, then silence.
    half.write_all(&[0x16, 0x03, 0x01, 0x00]).await.unwrap();
    assert_eq!(
        client(&gw)
            .get(url(&gw, "/served"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let mut buf = [0u8; 16];
    for s in [&mut idle, &mut half] {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed by the gateway");
        assert!(
            matches!(n, Ok(0) | Err(_)),
            "connection closed without a response"
        );
    }
    // The socket closes as the handshake is given up, the count follows on the worker's
    // thread: on a busy machine the metrics may be read in between, so they are read again.
    let mut failures = 0u64;
    for _ in 0..50 {
        let m = client(&gw)
            .get(url(&gw, "/.mfa/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        failures = m
            .lines()
            .find(|l| l.starts_with("mfa_gateway_tls_handshake_failures_total "))
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        if failures >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failures >= 2, "{failures}");
}

/// A raw TLS connection to the gateway, for tests that must control the one connection.
pub async fn raw_tls(gw: &Gw) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(gw.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// Reads one response with a `content-length` body; returns the status line and the body.
async fn read_response(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    pending: &mut Vec<u8>,
) -> (String, Vec<u8>) {
    let mut buf = vec![0u8; 16384];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if pending.len() >= end + 4 + len {
                let body = pending[end + 4..end + 4 + len].to_vec();
                pending.drain(..end + 4 + len);
                let status = head.lines().next().unwrap_or_default().to_string();
                return (status, body);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
            .await
            .expect("response in time")
            .unwrap();
        assert!(n > 0, "connection closed before a whole response");
        pending.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_park_without_buffers_and_resume() {
    let up = spawn_echo().await;
    let (gw, _redis, _dir) = proxy_gateway(up, "").await;
    let metrics = std::sync::Arc::clone(&gw.gateway().metrics);
    let mut tls = raw_tls(&gw).await;
    let mut pending = Vec::new();
    let get = b"GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let parks = async |what: &str| {
        eventually(Duration::from_secs(5), what, async || {
            metrics.parked_connections() == 1
        })
        .await
    };

    // One exchange, then idle: the connection parks.
    tls.write_all(get).await.unwrap();
    let (status, _) = read_response(&mut tls, &mut pending).await;
    assert!(status.starts_with("http/1.1 201"), "{status}");
    parks("the idle connection parks").await;

    // The same connection serves again: two pipelined requests in one write.
    tls.write_all(b"GET /two HTTP/1.1\r\nHost: localhost\r\n\r\nGET /three HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (s2, b2) = read_response(&mut tls, &mut pending).await;
    let (s3, b3) = read_response(&mut tls, &mut pending).await;
    assert!(s2.starts_with("http/1.1 201") && s3.starts_with("http/1.1 201"));
    assert!(String::from_utf8_lossy(&b2).contains("/two"));
    assert!(String::from_utf8_lossy(&b3).contains("/three"));
    parks("it parks again").await;

    // A request with a body makes the connection ineligible until a bodiless exchange ends:
    // nothing of a request body can be left behind at a segment boundary.
    tls.write_all(b"POST /post HTTP/1.1\r\nHost: localhost\r\ncontent-length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let (s4, b4) = read_response(&mut tls, &mut pending).await;
    assert!(s4.starts_with("http/1.1 201"), "{s4}");
    assert!(
        String::from_utf8_lossy(&b4).contains("\"body_len\":5"),
        "{}",
        String::from_utf8_lossy(&b4)
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        metrics.parked_connections(),
        0,
        "parked after a request body"
    );
    tls.write_all(get).await.unwrap();
    let (s5, _) = read_response(&mut tls, &mut pending).await;
    assert!(s5.starts_with("http/1.1 201"), "{s5}");
    parks("a bodiless exchange makes it eligible again").await;
    assert_eq!(metrics.open_connections(), 1);

    // The client closes a parked connection: it is gone from both gauges.
    drop(tls);
    eventually(
        Duration::from_secs(5),
        "the closed connection is released",
        async || metrics.parked_connections() == 0 && metrics.open_connections() == 0,
    )
    .await;
}

/// The values of `mfa_gateway_worker_connections{worker="N"}`, indexed by worker.
fn worker_connections(metrics: &str) -> Vec<u64> {
    let mut by_worker: Vec<(usize, u64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("mfa_gateway_worker_connections{worker=\""))
        .map(|rest| {
            let (worker, value) = rest.split_once("\"} ").unwrap();
            (worker.parse().unwrap(), value.parse().unwrap())
        })
        .collect();
    by_worker.sort_unstable();
    assert!(
        by_worker.iter().enumerate().all(|(i, (w, _))| i == *w),
        "one line per worker, from 0: {by_worker:?}"
    );
    by_worker.into_iter().map(|(_, v)| v).collect()
}

/// One value of an unlabelled metric.
fn metric_value(metrics: &str, name: &str) -> i64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

/// The TLS listener hands each new connection to the worker thread with the fewest open
/// connections, round robin among equals from worker 0, and `mfa_gateway_worker_connections`
/// shows each worker's count. Metrics are read on their own plain listener, so reading them
/// adds no connection to any worker.
#[tokio::test]
async fn connections_go_to_the_least_loaded_worker_and_the_gauge_shows_it() {
    let up = spawn_echo().await;
    let metrics_port = free_port();
    let redis = RedisProc::start();
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&c, up, &redis.url(), ECHO_VMS, "")
        .replace(
            "shutdown_grace = \"5s\"",
            "shutdown_grace = \"5s\"\nworker_threads = 2",
        )
        .replace(
            "[policy]",
            &format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n[policy]"),
        );
    let gw = start_gateway(
        dir.path(),
        &text,
        &c.ca_pem,
        mfa_gateway::clock::Clock::System,
    )
    .await;
    let plain = reqwest::Client::new();
    let scrape = async || {
        plain
            .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let per_worker = async || worker_connections(&scrape().await);
    // A connection that has been served once, and is kept open.
    let open_served = async |n: usize| {
        let mut tls = raw_tls(&gw).await;
        let mut pending = Vec::new();
        tls.write_all(format!("GET /c{n} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let (status, _) = read_response(&mut tls, &mut pending).await;
        assert!(status.starts_with("http/1.1 201"), "{status}");
        tls
    };

    assert_eq!(per_worker().await, vec![0, 0], "no connection yet");

    // Six connections, one after another: dealt 0, 1, 0, 1, 0, 1.
    let mut conns = Vec::new();
    for n in 0..6 {
        conns.push(open_served(n).await);
    }
    let m = scrape().await;
    assert_eq!(worker_connections(&m), vec![3, 3], "{m}");
    assert_eq!(metric_value(&m, "mfa_gateway_open_connections"), 6);

    // Idle, they park, and still count for their worker.
    eventually(Duration::from_secs(5), "all six park", async || {
        metric_value(&scrape().await, "mfa_gateway_parked_connections") == 6
    })
    .await;
    assert_eq!(per_worker().await, vec![3, 3], "parked connections count");

    // The client closes worker 0's three (the 1st, 3rd and 5th).
    let mut kept = Vec::new();
    for (n, tls) in conns.into_iter().enumerate() {
        if n % 2 == 1 {
            kept.push(tls);
        }
    }
    eventually(
        Duration::from_secs(5),
        "worker 0's connections are released",
        async || per_worker().await == vec![0, 3],
    )
    .await;

    // Worker 0 has the fewest: it gets the next two, whatever the turn.
    for n in 6..8 {
        kept.push(open_served(n).await);
    }
    assert_eq!(per_worker().await, vec![2, 3]);

    drop(kept);
    eventually(
        Duration::from_secs(5),
        "every connection is released",
        async || {
            let m = scrape().await;
            worker_connections(&m) == vec![0, 0]
                && metric_value(&m, "mfa_gateway_open_connections") == 0
        },
    )
    .await;
}
