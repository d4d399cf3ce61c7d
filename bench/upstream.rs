//! The benchmark's upstream: a tiny, fast HTTP/1.1 server that plays just enough of the VMS.
//!
//! The benchmark compares proxies, so the upstream must cost as little as possible and the
//! same for every proxy: every path answers a static 1 KiB body from one shared buffer. A few
//! paths exist for the other measurements:
//!
//! * `POST /login` plays the VMS login (302, a new `VMSSESSION` cookie, role header
//!   `X-VMS-Role: Customer`, or the form's `role` field), so the gateway's MFA path can run;
//! * `GET /stream?bytes=N` streams N bytes, `PUT /sink` reads and counts a body (streaming);
//! * `GET /__stats` counts requests and which cookies reached the upstream, so the benchmark
//!   can prove that the pass-through run kept the VMS session (the approval check said yes)
//!   and that the gateway's own cookie never arrived.
//!
//! Usage: `bench-upstream --listen 127.0.0.1:PORT [--threads N]`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// The static answer: 1 KiB.
const STATIC: &[u8; 1024] = &[b'x'; 1024];
/// Chunk size of streamed answers.
const CHUNK: usize = 64 * 1024;
static ZEROS: [u8; CHUNK] = [0; CHUNK];

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    with_session: AtomicU64,
    with_gateway_cookie: AtomicU64,
    logins: AtomicU64,
}

/// Response bodies: a fixed buffer, or N streamed zero bytes.
enum Out {
    Full(Option<Bytes>),
    Zeros(u64),
}

impl HttpBody for Out {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Out::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Out::Zeros(left) => {
                if *left == 0 {
                    return Poll::Ready(None);
                }
                let n = usize::try_from(*left).unwrap_or(CHUNK).min(CHUNK);
                *left -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Out::Full(b) => b.is_none(),
            Out::Zeros(left) => *left == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Out::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Out::Full(None) => SizeHint::with_exact(0),
            Out::Zeros(left) => SizeHint::with_exact(*left),
        }
    }
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Out> {
    let mut r = Response::new(Out::Full(Some(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    r
}

fn query_bytes(req: &Request<Incoming>) -> u64 {
    req.uri()
        .query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "bytes")
                .and_then(|(_, v)| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn login(req: Request<Incoming>, stats: &Stats) -> Response<Out> {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return full(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let mut user = None;
    let mut role = "Customer".to_string();
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "username" => user = Some(v.into_owned()),
            "role" => role = v.into_owned(),
            _ => {}
        }
    }
    if user.is_none() {
        return full(StatusCode::OK, "login form");
    }
    let n = stats.logins.fetch_add(1, Relaxed);
    let session: String = mfa_gateway::auth::crypto::random_token();
    let mut r = full(StatusCode::FOUND, format!("logged in #{n}"));
    let h = r.headers_mut();
    h.insert(header::LOCATION, header::HeaderValue::from_static("/home"));
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "VMSSESSION={session}; Path=/; HttpOnly; SameSite=Lax"
    )) {
        h.insert(header::SET_COOKIE, v);
    }
    if let Ok(v) = header::HeaderValue::from_str(&role) {
        h.insert("x-vms-role", v);
    }
    r
}

async fn sink(req: Request<Incoming>) -> Response<Out> {
    let mut body = req.into_body();
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    total += d.len() as u64;
                }
            }
            Err(_) => return full(StatusCode::BAD_REQUEST, "body broke off"),
        }
    }
    full(StatusCode::OK, total.to_string())
}

async fn handle(req: Request<Incoming>, stats: Arc<Stats>) -> Response<Out> {
    stats.requests.fetch_add(1, Relaxed);
    if let Some(c) = req.headers().get(header::COOKIE) {
        let c = c.as_bytes();
        let has = |needle: &[u8]| c.windows(needle.len()).any(|w| w == needle);
        if has(b"VMSSESSION=") {
            stats.with_session.fetch_add(1, Relaxed);
        }
        if has(b"__Host-mfagw") {
            stats.with_gateway_cookie.fetch_add(1, Relaxed);
        }
    }
    match (req.method().as_str(), req.uri().path()) {
        ("POST", "/login") => login(req, &stats).await,
        ("PUT" | "POST", "/sink") => sink(req).await,
        ("GET", "/stream") => {
            let n = query_bytes(&req);
            let mut r = Response::new(Out::Zeros(n));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        ("GET", "/__stats") => full(
            StatusCode::OK,
            serde_json::json!({
                "requests": stats.requests.load(Relaxed),
                "with_session": stats.with_session.load(Relaxed),
                "with_gateway_cookie": stats.with_gateway_cookie.load(Relaxed),
                "logins": stats.logins.load(Relaxed),
            })
            .to_string(),
        ),
        _ => full(StatusCode::OK, Bytes::from_static(STATIC)),
    }
}

struct Args {
    listen: SocketAddr,
    threads: usize,
}

fn args() -> Result<Args, String> {
    let mut listen: Option<SocketAddr> = None;
    let mut threads = 2;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--listen" => listen = Some(v.parse().map_err(|e| format!("--listen: {e}"))?),
            "--threads" => threads = v.parse().map_err(|e| format!("--threads: {e}"))?,
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    let listen = listen.ok_or("--listen ADDR is required")?;
    if !listen.ip().is_loopback() {
        return Err("the benchmark upstream listens on loopback only".into());
    }
    Ok(Args { listen, threads })
}

async fn serve(listen: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let stats = Arc::new(Stats::default());
    eprintln!("bench-upstream listening on {listen}");
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let stats = Arc::clone(&stats);
                async move { Ok::<_, Infallible>(handle(req, stats).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

fn main() -> std::process::ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-upstream: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build();
    let result = match rt {
        Ok(rt) => rt.block_on(serve(a.listen)),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-upstream: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
