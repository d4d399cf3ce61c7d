//! The connection to the VMS: a keep-alive pool over plain TCP or TLS, with connect and
//! response-header timeouts, and the mapping of its failures to [`UpstreamError`].
//!
//! The VMS is assumed to speak HTTP/1.1 (legacy applications do); clients that speak HTTP/2
//! to the gateway are served all the same, because every request is rewritten to HTTP/1.1
//! before it leaves.
//!
//! # Two kinds of connection, one pool each
//!
//! Every proxied request passes through here, so the pool is kept as small as nginx's
//! per-worker keep-alive cache: per worker thread, a stack of idle connections. A request
//! takes the most recently used connection of its own thread's stack (warm buffers and
//! socket), and no lock is shared between threads on the hot path.
//!
//! * Requests whose body the gateway holds (none, as for nearly every page view, or a
//!   buffered login form) use the gateway's own HTTP/1.1 connections ([`conn`], [`wire`]):
//!   the request's task writes the request and reads the answer itself, without a task or
//!   channel per connection. A connection goes back to its stack when the answer's body has
//!   been read to the end.
//! * Streaming uploads and protocol upgrades use hyper's HTTP/1 client connections (one task
//!   each, driving the socket), which send and receive at the same time. Their request
//!   handles go back to their stack as soon as the answer's head has arrived; a handle whose
//!   previous answer is still streaming is skipped.
//!
//! ```text
//!   checkout ──► stack of this thread (LIFO) ──► usable? ──yes──► send ──► head ──► (checkin)
//!                        │                          │ no (closed/stale: drop)
//!                        └── empty ──► connect (TCP [+ TLS], under connect_timeout) ─┘
//! ```
//!
//! A request that a reused connection could not deliver (the VMS had closed it while idle)
//! is sent once more on a new connection when that cannot do harm: hyper hands back a
//! request it never wrote, and a request of a safe or idempotent method (RFC 9110 9.2)
//! whose connection closed before the first byte of an answer is sent again.

mod conn;
pub mod wire;

use std::cell::Cell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, Uri, Version};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use self::conn::ResponseBody;
use self::conn::{Conn, ExchangeError};
use crate::body::Body;
use crate::config::Upstream as UpstreamConfig;
use crate::error::UpstreamError;
use crate::metrics::{Metrics, UpstreamFailure};

/// A pooled client for the one upstream. Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    authority: http::uri::Authority,
    /// Host name or address to connect to (without IPv6 brackets) and port.
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    connect_timeout: Duration,
    response_timeout: Duration,
    idle_timeout: Duration,
    max_idle_per_shard: usize,
    max_head_bytes: usize,
    /// hyper's connections (streaming uploads, upgrades), per worker thread.
    shards: Box<[Mutex<Vec<Idle>>]>,
    /// The gateway's own connections (everything else), per worker thread. Boxed once when
    /// opened: the same box moves between the pool and the response bodies.
    #[allow(clippy::vec_box)]
    conns: Box<[Mutex<Vec<Box<Conn>>>]>,
}

/// An idle (or still streaming) connection's request handle.
struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("authority", &self.inner.authority)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// `max_head_bytes` bounds the response head the VMS may send (the same limit as for
    /// client requests); a larger one is a 502.
    pub fn new(cfg: &UpstreamConfig, max_head_bytes: usize) -> Result<Self, String> {
        let authority: http::uri::Authority = cfg
            .authority
            .parse()
            .map_err(|e| format!("upstream authority: {e}"))?;
        let default_port = if cfg.https { 443 } else { 80 };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(default_port);
        let tls = if cfg.https {
            let mut tls =
                crate::tls::upstream_client_config(cfg.ca.as_deref()).map_err(|e| e.to_string())?;
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("upstream host {host:?} as a TLS name: {e}"))?;
            Some((TlsConnector::from(Arc::new(tls)), name))
        } else {
            None
        };
        let shards = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            inner: Arc::new(Inner {
                authority,
                host,
                port,
                tls,
                connect_timeout: cfg.connect_timeout,
                response_timeout: cfg.response_timeout,
                idle_timeout: cfg.pool_idle_timeout,
                max_idle_per_shard: cfg.pool_max_idle.div_ceil(shards).max(1),
                max_head_bytes: max_head_bytes.max(8192),
                shards: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
                conns: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
            }),
        })
    }

    /// The request target (origin form, `/path?query`) for a path-and-query on the upstream;
    /// the upstream's authority travels in the `Host` header the caller sets.
    pub fn uri_for(
        &self,
        path_and_query: Option<&http::uri::PathAndQuery>,
    ) -> Result<Uri, UpstreamError> {
        Ok(Uri::from(path_and_query.cloned().unwrap_or_else(|| {
            http::uri::PathAndQuery::from_static("/")
        })))
    }

    /// Sends a request whose URI is already absolute; waits at most the response timeout for
    /// the response head. The body then streams without a deadline of its own.
    pub async fn send(
        &self,
        mut req: Request<Body>,
        metrics: &Metrics,
    ) -> Result<Response<Body>, UpstreamError> {
        *req.version_mut() = Version::HTTP_11;
        // hyper's client connection writes the request target as given: origin form.
        if req.uri().scheme().is_some() {
            let pq = req.uri().path_and_query().cloned();
            *req.uri_mut() = self.uri_for(pq.as_ref())?;
        }
        let result = tokio::time::timeout(self.inner.response_timeout, self.exchange(req)).await;
        match result {
            Err(_) => {
                metrics.upstream_failure(UpstreamFailure::Timeout);
                Err(UpstreamError::Timeout(self.inner.response_timeout))
            }
            Ok(Err(Failure::Connect(e))) => {
                metrics.upstream_failure(UpstreamFailure::Connect);
                Err(UpstreamError::Connect(e))
            }
            Ok(Err(Failure::Http(e)))
                if client_body_failed(&e as &(dyn std::error::Error + 'static)) =>
            {
                Err(UpstreamError::RequestBody(error_chain(&e)))
            }
            Ok(Err(Failure::Http(e))) => {
                metrics.upstream_failure(UpstreamFailure::Other);
                Err(UpstreamError::Failed(error_chain(&e)))
            }
            Ok(Err(Failure::Exchange(e))) => {
                metrics.upstream_failure(UpstreamFailure::Other);
                Err(UpstreamError::Failed(e))
            }
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    async fn exchange(&self, req: Request<Body>) -> Result<Response<Body>, Failure> {
        let (parts, body) = req.into_parts();
        match held_body(&parts, body) {
            Ok(bytes) => self.exchange_own(parts, bytes).await,
            Err(body) => {
                let resp = self
                    .exchange_hyper(Request::from_parts(parts, body))
                    .await?;
                Ok(resp.map(Body::from))
            }
        }
    }

    /// A request whose body is held: on the gateway's own connections.
    async fn exchange_own(
        &self,
        parts: http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Body>, Failure> {
        let shard = self.inner.shard();
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut conn = match self.inner.checkout_conn(shard) {
            Some(conn) => conn,
            None => Conn::new(Box::pin(self.inner.connect_stream()).await?),
        };
        let max_head = self.inner.max_head_bytes;
        let head = match conn
            .exchange(&parts.method, target, &parts.headers, &body, max_head)
            .await
        {
            Ok(head) => head,
            Err(ExchangeError::ClosedBeforeAnswer(e))
                if conn.reused && idempotent(&parts.method) =>
            {
                tracing::debug!(error = %e, "a reused VMS connection had closed; sending again");
                conn = Conn::new(Box::pin(self.inner.connect_stream()).await?);
                conn.exchange(&parts.method, target, &parts.headers, &body, max_head)
                    .await
                    .map_err(|e| Failure::Exchange(e.to_string()))?
            }
            Err(e) => return Err(Failure::Exchange(e.to_string())),
        };
        let pool: Arc<dyn conn::Return> = Arc::clone(&self.inner) as Arc<dyn conn::Return>;
        let body = ResponseBody::new(conn, &head, pool);
        let mut resp = Response::new(Body::Vms(body));
        *resp.status_mut() = head.status;
        *resp.version_mut() = head.version;
        *resp.headers_mut() = head.headers;
        Ok(resp)
    }

    /// A request with a streaming body or asking for an upgrade: on hyper's connections.
    async fn exchange_hyper(
        &self,
        req: Request<Body>,
    ) -> Result<Response<hyper::body::Incoming>, Failure> {
        let shard = self.inner.shard();
        let req = match self.inner.checkout(shard) {
            Some(mut sender) => match sender.try_send_request(req).await {
                Ok(resp) => {
                    self.inner.checkin(shard, sender, &resp);
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    // Never written: the connection had closed while idle. Once more below.
                    Some(req) => req,
                    None => return Err(Failure::Http(e.into_error())),
                },
            },
            None => req,
        };
        // Boxed: connecting (TCP, TLS, handshake) is rare and its future is large.
        let mut sender = Box::pin(self.inner.connect()).await?;
        let resp = sender.send_request(req).await.map_err(Failure::Http)?;
        self.inner.checkin(shard, sender, &resp);
        Ok(resp)
    }

    /// Closes idle connections older than the pool's idle timeout. Called periodically, so
    /// that a quiet gateway does not keep connections the VMS would rather close.
    pub fn evict_idle(&self) {
        let now = Instant::now();
        for shard in &self.inner.shards {
            if let Ok(mut idle) = shard.lock() {
                idle.retain(|i| !i.sender.is_closed() && !i.stale(now, self.inner.idle_timeout));
            }
        }
        for shard in &self.inner.conns {
            if let Ok(mut idle) = shard.lock() {
                idle.retain(|c| c.idle_usable() && !c.stale(now, self.inner.idle_timeout));
            }
        }
    }

    /// Connections held in the pool (idle or still streaming a response).
    #[cfg(test)]
    fn pooled(&self) -> usize {
        let hyper: usize = self
            .inner
            .shards
            .iter()
            .map(|s| s.lock().map_or(0, |v| v.len()))
            .sum();
        let own: usize = self
            .inner
            .conns
            .iter()
            .map(|s| s.lock().map_or(0, |v| v.len()))
            .sum();
        hyper + own
    }
}

enum Failure {
    Connect(String),
    Http(hyper::Error),
    Exchange(String),
}

/// The body as bytes when the gateway holds all of it (none, or a buffered one), and the
/// request is not an upgrade; otherwise the body back, for hyper's client.
fn held_body(parts: &http::request::Parts, body: Body) -> Result<Bytes, Body> {
    if parts.headers.contains_key(http::header::UPGRADE) {
        return Err(body);
    }
    match body {
        Body::Empty => Ok(Bytes::new()),
        Body::Bytes(b) => Ok(b.unwrap_or_default()),
        Body::Incoming(i) if http_body::Body::is_end_stream(&i) => Ok(Bytes::new()),
        other => Err(other),
    }
}

/// Methods a request of which may be sent again when its connection turned out to be closed
/// (RFC 9110 9.2.2).
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

impl Idle {
    fn stale(&self, now: Instant, idle_timeout: Duration) -> bool {
        now.saturating_duration_since(self.since) >= idle_timeout
    }
}

thread_local! {
    /// This thread's pool shard, assigned on first use.
    static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

impl Inner {
    fn shard(&self) -> usize {
        let n = SHARD.with(|s| match s.get() {
            Some(n) => n,
            None => {
                let n = NEXT_SHARD.fetch_add(1, Ordering::Relaxed);
                s.set(Some(n));
                n
            }
        });
        n % self.shards.len()
    }

    /// The most recently used ready connection of a shard. Closed and stale handles are
    /// dropped on the way; busy ones (a response still streaming) stay.
    fn checkout(&self, shard: usize) -> Option<SendRequest<Body>> {
        let now = Instant::now();
        let mut idle = self.shards.get(shard)?.lock().ok()?;
        let mut i = idle.len();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        while i > 0 {
            i -= 1;
            let Some(entry) = idle.get_mut(i) else { break };
            if entry.sender.is_closed() || entry.stale(now, self.idle_timeout) {
                idle.swap_remove(i);
                continue;
            }
            match entry.sender.poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => return Some(idle.swap_remove(i).sender),
                Poll::Ready(Err(_)) => {
                    idle.swap_remove(i);
                }
                Poll::Pending => {}
            }
        }
        None
    }

    /// The most recently used usable connection of a shard; closed and stale ones are
    /// dropped on the way.
    fn checkout_conn(&self, shard: usize) -> Option<Box<Conn>> {
        let now = Instant::now();
        let mut idle = self.conns.get(shard)?.lock().ok()?;
        while let Some(conn) = idle.pop() {
            if conn.idle_usable() && !conn.stale(now, self.idle_timeout) {
                return Some(conn);
            }
        }
        None
    }

    /// Puts a handle back after its response head arrived (not after an upgrade, which takes
    /// the connection over, nor when the VMS said it will close).
    fn checkin(
        &self,
        shard: usize,
        sender: SendRequest<Body>,
        resp: &Response<hyper::body::Incoming>,
    ) {
        if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS
            || sender.is_closed()
            || closes(resp.headers())
        {
            return;
        }
        let Some(Ok(mut idle)) = self.shards.get(shard).map(|s| s.lock()) else {
            return;
        };
        let entry = Idle {
            sender,
            since: Instant::now(),
        };
        push_bounded(&mut idle, entry, self.max_idle_per_shard);
    }

    /// A new connection (TCP, and TLS when configured), under the connect timeout.
    async fn connect_stream(&self) -> Result<Stream, Failure> {
        tokio::time::timeout(self.connect_timeout, self.open())
            .await
            .map_err(|_| {
                Failure::Connect(format!(
                    "no connection within {:?} to {}",
                    self.connect_timeout, self.authority
                ))
            })?
    }

    async fn connect(&self) -> Result<SendRequest<Body>, Failure> {
        let io = self.connect_stream().await?;
        let (sender, conn) = http1::Builder::new()
            .max_buf_size(self.max_head_bytes)
            .handshake(TokioIo::new(io))
            .await
            .map_err(Failure::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    async fn open(&self) -> Result<Stream, Failure> {
        let addrs: Vec<SocketAddr> = match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.port)],
            Err(_) => tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|e| Failure::Connect(format!("resolving {}: {e}", self.host)))?
                .collect(),
        };
        let mut last = format!("{} resolves to no address", self.host);
        for addr in addrs {
            match tcp_connect(addr).await {
                Ok(tcp) => {
                    return match &self.tls {
                        None => Ok(Stream::Plain(tcp)),
                        Some((connector, name)) => connector
                            .connect(name.clone(), tcp)
                            .await
                            .map(|s| Stream::Tls(Box::new(s)))
                            .map_err(|e| {
                                Failure::Connect(format!("TLS to {}: {e}", self.authority))
                            }),
                    };
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(Failure::Connect(last))
    }
}

impl conn::Return for Inner {
    /// Takes a connection back onto the stack of the thread its answer ended on.
    fn give_back(&self, conn: Box<Conn>) {
        let Some(Ok(mut idle)) = self.conns.get(self.shard()).map(|s| s.lock()) else {
            return;
        };
        push_bounded(&mut idle, conn, self.max_idle_per_shard);
    }
}

async fn tcp_connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_keepalive(true)?;
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// `Connection: close` from the VMS: hyper closes the connection after this response.
fn closes(headers: &http::HeaderMap) -> bool {
    !wire::keeps_alive(Version::HTTP_11, headers)
}

/// Puts `item` on a shard's stack; when the stack is full, its oldest entry goes (the least
/// likely to be warm).
fn push_bounded<T>(stack: &mut Vec<T>, item: T, max: usize) {
    if stack.len() >= max {
        stack.remove(0);
    }
    stack.push(item);
}

/// The socket to the VMS, with or without TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Whether sending failed because the body the client was sending broke off or was
/// malformed (a bad chunk, a reset stream): hyper then reports an error from the request
/// body, whose cause is the error of the client connection. That is the client's fault, not
/// the VMS's.
fn client_body_failed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_user()
            && std::error::Error::source(h).is_some_and(|c| c.is::<hyper::Error>())
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Joins an error with its sources, for one log line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::atomic::AtomicUsize;

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn config(addr: SocketAddr, response_timeout: Duration) -> UpstreamConfig {
        UpstreamConfig {
            url: format!("http://{addr}/").parse().unwrap(),
            https: false,
            authority: addr.to_string(),
            host_header: crate::config::HostHeader::Upstream,
            ca: None,
            connect_timeout: Duration::from_secs(2),
            response_timeout,
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle: 8,
            readiness_path: "/".into(),
        }
    }

    /// A raw HTTP/1.1 server: answers each request on a connection with `answer`, counts the
    /// connections it accepted, and closes a connection after `per_conn` requests.
    async fn server(answer: &'static str, per_conn: usize) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut served = 0;
                    let mut chunk = [0u8; 4096];
                    while served < per_conn {
                        let Ok(n) = s.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            if s.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                            served += 1;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    /// A client for the server at `addr`, with a 5 s response timeout.
    fn upstream(addr: SocketAddr) -> Upstream {
        Upstream::new(&config(addr, Duration::from_secs(5)), 65536).unwrap()
    }

    fn get(path: &str) -> Request<Body> {
        Request::builder()
            .uri(path)
            .header(http::header::HOST, "vms.test")
            .body(Body::empty())
            .unwrap()
    }

    async fn fetch(up: &Upstream, m: &Metrics) -> Result<String, UpstreamError> {
        let resp = up.send(get("/x"), m).await?;
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn sequential_requests_reuse_one_connection() {
        let (addr, accepted) = server(OK, usize::MAX).await;
        let up = upstream(addr);
        let m = Metrics::new();
        for _ in 0..20 {
            assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(up.pooled(), 1);
    }

    #[tokio::test]
    async fn a_connection_the_vms_closed_while_idle_is_replaced_without_an_error() {
        // The server closes every connection after one answer (without saying so).
        let (addr, accepted) = server(OK, 1).await;
        let up = upstream(addr);
        let m = Metrics::new();
        for _ in 0..5 {
            assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
            // Let the connection task see the close, or not: both must work.
            tokio::task::yield_now().await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn connection_close_answers_are_not_pooled() {
        let (addr, accepted) = server(
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
            1,
        )
        .await;
        let up = upstream(addr);
        let m = Metrics::new();
        for _ in 0..3 {
            assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert_eq!(up.pooled(), 0);
    }

    #[tokio::test]
    async fn concurrent_requests_open_no_more_connections_than_requests_in_flight() {
        let (addr, accepted) = server(OK, usize::MAX).await;
        let up = upstream(addr);
        let m = Arc::new(Metrics::new());
        for _ in 0..3 {
            let mut tasks = Vec::new();
            for _ in 0..4 {
                let (up, m) = (up.clone(), Arc::clone(&m));
                tasks.push(tokio::spawn(async move { fetch(&up, &m).await }));
            }
            for t in tasks {
                assert_eq!(t.await.unwrap().unwrap(), "ok");
            }
        }
        let n = accepted.load(Ordering::SeqCst);
        assert!((1..=4).contains(&n), "{n} connections for 4 at a time");
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let up = upstream(addr);
        let m = Metrics::new();
        assert!(matches!(
            fetch(&up, &m).await,
            Err(UpstreamError::Connect(_))
        ));
    }

    #[tokio::test]
    async fn silent_upstream_is_a_timeout_and_its_connection_is_not_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(s);
            }
        });
        let up = Upstream::new(&config(addr, Duration::from_millis(200)), 65536).unwrap();
        let m = Metrics::new();
        assert!(matches!(
            fetch(&up, &m).await,
            Err(UpstreamError::Timeout(_))
        ));
        assert!(matches!(
            fetch(&up, &m).await,
            Err(UpstreamError::Timeout(_))
        ));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(up.pooled(), 0);
    }

    #[tokio::test]
    async fn malformed_answer_is_a_failure_not_a_panic() {
        let (addr, _) = server("NOT HTTP AT ALL\r\n\r\n", usize::MAX).await;
        let up = upstream(addr);
        let m = Metrics::new();
        assert!(matches!(
            fetch(&up, &m).await,
            Err(UpstreamError::Failed(_))
        ));
        assert_eq!(up.pooled(), 0);
    }

    #[tokio::test]
    async fn stale_connections_are_evicted() {
        let (addr, _) = server(OK, usize::MAX).await;
        let mut cfg = config(addr, Duration::from_secs(5));
        cfg.pool_idle_timeout = Duration::from_millis(50);
        let up = Upstream::new(&cfg, 65536).unwrap();
        let m = Metrics::new();
        assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
        assert_eq!(up.pooled(), 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        up.evict_idle();
        assert_eq!(up.pooled(), 0);
    }

    /// A raw HTTP/1.1 server that answers the first request of each connection with
    /// `answer`, then reads the next request, writes `last_words` and closes (with nothing
    /// written: a VMS that ended an idle connection just as it was reused). Records the
    /// request lines it received.
    async fn server_closing_after_first(
        answer: &'static str,
        last_words: &'static str,
    ) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let mut answered = false;
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head: Vec<u8> = buf.drain(..end + 4).collect();
                            let line = String::from_utf8_lossy(&head)
                                .lines()
                                .next()
                                .unwrap_or("")
                                .to_owned();
                            log.lock().unwrap().push(line);
                            if answered {
                                let _ = s.write_all(last_words.as_bytes()).await;
                                return;
                            }
                            answered = true;
                            if s.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    fn post(path: &str, body: &'static str) -> Request<Body> {
        Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(http::header::HOST, "vms.test")
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn chunked_answers_are_decoded_and_their_connection_reused() {
        let (addr, accepted) = server(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
            usize::MAX,
        )
        .await;
        let up = upstream(addr);
        let m = Metrics::new();
        for _ in 0..3 {
            assert_eq!(fetch(&up, &m).await.unwrap(), "hello world");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_without_length_ends_with_the_connection_which_is_not_reused() {
        let (addr, accepted) = server("HTTP/1.1 200 OK\r\n\r\nuntil close", 1).await;
        let up = upstream(addr);
        let m = Metrics::new();
        for _ in 0..2 {
            assert_eq!(fetch(&up, &m).await.unwrap(), "until close");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(up.pooled(), 0);
    }

    #[tokio::test]
    async fn interim_answers_are_skipped() {
        let (addr, _) = server(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            usize::MAX,
        )
        .await;
        let up = upstream(addr);
        let m = Metrics::new();
        assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
        assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_takes_its_connection_along() {
        let (addr, accepted) = server(
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789",
            usize::MAX,
        )
        .await;
        let up = upstream(addr);
        let m = Metrics::new();
        let resp = up.send(get("/x"), &m).await.unwrap();
        drop(resp);
        assert_eq!(up.pooled(), 0);
        assert_eq!(fetch(&up, &m).await.unwrap(), "0123456789");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(up.pooled(), 1);
    }

    #[tokio::test]
    async fn bytes_beyond_an_answer_are_never_taken_for_the_next_answer() {
        let (addr, accepted) = server(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil",
            usize::MAX,
        )
        .await;
        let up = upstream(addr);
        let m = Metrics::new();
        for _ in 0..3 {
            assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
            tokio::task::yield_now().await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_large_answer_streams_in_pieces_and_arrives_whole() {
        static BIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let answer = BIG.get_or_init(|| {
            let body = "x".repeat(1 << 20);
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        });
        let (addr, _) = server(answer.as_str(), usize::MAX).await;
        let up = upstream(addr);
        let m = Metrics::new();
        let resp = up.send(get("/x"), &m).await.unwrap();
        assert_eq!(
            http_body::Body::size_hint(resp.body()).exact(),
            Some(1 << 20)
        );
        let mut body = resp.into_body();
        let (mut frames, mut len) = (0, 0);
        while let Some(f) = body.frame().await {
            len += f.unwrap().into_data().unwrap().len();
            frames += 1;
        }
        assert_eq!(len, 1 << 20);
        assert!(frames > 1, "{frames} frames");
        assert_eq!(up.pooled(), 1);
    }

    #[tokio::test]
    async fn a_get_on_a_connection_closed_when_reused_is_sent_again() {
        let (addr, seen) = server_closing_after_first(OK, "").await;
        let up = upstream(addr);
        let m = Metrics::new();
        assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
        assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, vec!["GET /x HTTP/1.1"; 3]);
    }

    #[tokio::test]
    async fn a_get_that_got_an_interim_answer_is_not_sent_again() {
        let (addr, seen) = server_closing_after_first(OK, "HTTP/1.1 100 Continue\r\n\r\n").await;
        let up = upstream(addr);
        let m = Metrics::new();
        assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
        let r = fetch(&up, &m).await;
        assert!(matches!(r, Err(UpstreamError::Failed(_))), "{r:?}");
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_post_on_a_connection_closed_when_reused_is_not_sent_twice() {
        let (addr, seen) = server_closing_after_first(OK, "").await;
        let up = upstream(addr);
        let m = Metrics::new();
        assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
        let r = up.send(post("/login", "u=a"), &m).await;
        assert!(matches!(r, Err(UpstreamError::Failed(_))), "{r:?}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, vec!["GET /x HTTP/1.1", "POST /login HTTP/1.1"]);
    }

    #[tokio::test]
    async fn a_held_request_body_is_framed_by_the_gateway() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.ends_with(b"u=a&p=b") {
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&chunk[..n]);
            }
            s.write_all(OK.as_bytes()).await.unwrap();
            String::from_utf8(buf).unwrap()
        });
        let up = upstream(addr);
        let mut req = post("/login", "u=a&p=b");
        req.headers_mut()
            .insert(http::header::CONTENT_LENGTH, "99".parse().unwrap());
        req.headers_mut()
            .insert(http::header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        let resp = up.send(req, &Metrics::new()).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            got.await.unwrap(),
            "POST /login HTTP/1.1\r\nhost: vms.test\r\ncontent-length: 7\r\n\r\nu=a&p=b"
        );
    }

    #[tokio::test]
    async fn conflicting_lengths_are_a_failure() {
        let (addr, _) = server(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
            usize::MAX,
        )
        .await;
        let up = upstream(addr);
        let m = Metrics::new();
        assert!(matches!(
            fetch(&up, &m).await,
            Err(UpstreamError::Failed(_))
        ));
        assert_eq!(up.pooled(), 0);
    }

    #[test]
    fn connection_close_is_recognised_in_any_token_position() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::CONNECTION,
            "keep-alive, Close".parse().unwrap(),
        );
        assert!(closes(&h));
        h.insert(http::header::CONNECTION, "keep-alive".parse().unwrap());
        assert!(!closes(&h));
    }
}
