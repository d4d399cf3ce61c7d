//! The connection to the VMS: a keep-alive pool of hyper HTTP/1.1 client connections over
//! plain TCP or TLS, with connect and response-head timeouts, and the mapping of their
//! failures to [`UpstreamError`].
//!
//! The VMS is assumed to speak HTTP/1.1 (legacy applications do); clients that speak HTTP/2
//! to the gateway are served all the same, because every request is rewritten to HTTP/1.1
//! before it leaves.
//!
//! # One HTTP stack
//!
//! Every request to the VMS goes through hyper's `client::conn::http1` connections: hyper
//! writes the request and reads the answer, and its reading of the answer's framing (RFC
//! 9112 6.3: lengths, chunked coding, interim answers, faulty framing that closes the
//! connection) is the only one in the gateway. Each connection is driven by a task of its
//! own; the gateway keeps its request handle ([`SendRequest`]).
//!
//! # The pool
//!
//! Every proxied request passes through here, so the pool is kept as small as nginx's
//! per-worker keep-alive cache: per worker thread, a stack of idle request handles. A request
//! takes the most recently used handle of its own thread's stack (warm buffers and socket),
//! and no lock is shared between threads on the hot path.
//!
//! ```text
//!   checkout ──► stack of this thread (LIFO) ──► ready, not stale? ──yes──► send ──► head
//!                        │                            │ no: drop (closes)         │
//!                        └── empty ──► connect (TCP [+ TLS], under connect_timeout)│
//!                                                                                  ▼
//!   stack ◄── checkin ◄── hyper ready again? ◄── answer body read to its end ◄── body streams
//!                              │ no (request unfinished, closed, Connection: close): drop
//! ```
//!
//! **A connection goes back to the pool only when both the request and the answer are
//! complete.** The handle travels with the answer's body ([`ResponseBody`]) and is checked in
//! from that body's end, and only when hyper reports the connection ready for another
//! request, which it does only after it has written the whole request and read the whole
//! answer and will keep the connection open. A body dropped before its end takes the handle
//! with it, and hyper closes the connection (the rest of that answer would otherwise be read
//! as the next one). A connection that is not ready at that moment is not kept: hyper is
//! still writing the request's body (the VMS answered early), the VMS said `Connection:
//! close` or sent bytes beyond its answer, or, rarely, hyper's connection task has not yet
//! got round to marking it ready (the end of the body is handed over just before that); the
//! last case costs a new connection, never a wrong answer.
//!
//! A request of a method that has no body (GET, HEAD, OPTIONS, DELETE, TRACE) arrives here
//! with a body only when the operator allowed it (`vms.allow_body_on`, see
//! `http::body_rules`). It is sent with `Connection: close` and its connection is never
//! reused: a VMS that does not read such a body would take it for the next request.
//!
//! # Sending again
//!
//! One rule: a request is sent a second time only when the VMS cannot have acted on the
//! first one or when acting twice does no harm.
//!
//! * hyper hands back a request it never wrote (the connection had closed while idle): it
//!   goes once more, on a new connection, whatever its method.
//! * A request of a safe method (GET, HEAD, OPTIONS, TRACE) without a body whose *reused*
//!   connection closed before a single byte of an answer arrived (the VMS ended an idle
//!   connection just as it was reused) goes once more, on a new connection. An interim
//!   `100 Continue` counts as an answer: such a request is never sent again.
//! * Nothing else: a request with a body (a login POST) of which any byte was written is
//!   never sent twice; the client gets a 502.

use std::cell::Cell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, Uri, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::Upstream as UpstreamConfig;
use crate::error::{ConnectStage, UpstreamError};
use crate::http::body::{Body, BoxError};
use crate::metrics::Metrics;

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
    /// Idle connections, per worker thread.
    shards: Box<[Mutex<Vec<Idle>>]>,
}

/// One VMS connection: hyper's request handle and what the pool knows about it.
struct Handle {
    sender: SendRequest<Body>,
    /// Bytes read from the VMS on this connection so far (counted by its socket): whether any
    /// byte of an answer arrived tells a connection that closed before answering from one
    /// that answered something.
    read: Arc<AtomicU64>,
    /// Whether it has carried a request before (only then is a close before any answer the
    /// ordinary end of an idle connection rather than a VMS refusing the request).
    reused: bool,
}

/// A handle in the pool, and since when it has been idle.
struct Idle {
    handle: Handle,
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
                // hyper refuses a read buffer below 8 KiB.
                max_head_bytes: max_head_bytes.max(8192),
                shards: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
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

    /// Sends a request; waits at most the response timeout for the response head. The body
    /// then streams without a deadline of its own.
    pub async fn send(
        &self,
        req: Request<Body>,
        metrics: &Metrics,
    ) -> Result<Response<Body>, UpstreamError> {
        self.send_counted(req, Some(metrics)).await
    }

    /// [`Self::send`] for the readiness probe: its failures are the probe's answer, not
    /// failed requests, so they are not counted in `upstream_errors_total` (an alert on that
    /// counter would otherwise fire for every probe while the VMS is down).
    pub async fn probe(&self, req: Request<Body>) -> Result<Response<Body>, UpstreamError> {
        self.send_counted(req, None).await
    }

    async fn send_counted(
        &self,
        mut req: Request<Body>,
        metrics: Option<&Metrics>,
    ) -> Result<Response<Body>, UpstreamError> {
        let count = |f: crate::error::ErrorKind| {
            if let Some(m) = metrics {
                m.upstream_failure(f);
            }
        };
        *req.version_mut() = Version::HTTP_11;
        // hyper's client connection writes the request target as given: origin form.
        if req.uri().scheme().is_some() {
            let pq = req.uri().path_and_query().cloned();
            *req.uri_mut() = self.uri_for(pq.as_ref())?;
        }
        // A body on a method without one (allowed by the operator for this route): the VMS
        // may not read it, so the connection ends with this exchange.
        let reuse =
            !crate::vms_reading::method_without_body(req.method()) || is_known_empty(req.body());
        if !reuse {
            req.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            // hyper leaves out a GET's or HEAD's body of unknown length unless the request
            // says how it is framed.
            if req.body().size_hint().exact().is_none()
                && !req.headers().contains_key(header::CONTENT_LENGTH)
            {
                req.headers_mut().insert(
                    header::TRANSFER_ENCODING,
                    HeaderValue::from_static("chunked"),
                );
            }
        }
        let sent = std::time::Instant::now();
        let result =
            tokio::time::timeout(self.inner.response_timeout, self.exchange(req, reuse)).await;
        if let (Some(m), Ok(Ok(_))) = (metrics, &result) {
            m.vms_response(sent.elapsed());
        }
        match result {
            Err(_) => {
                count(crate::error::ErrorKind::UpstreamTimeout);
                Err(UpstreamError::Timeout(self.inner.response_timeout))
            }
            Ok(Err(Failure::Connect(e))) => {
                count(e.kind());
                Err(e)
            }
            Ok(Err(Failure::Http(e)))
                if client_body_failed(&e as &(dyn std::error::Error + 'static)) =>
            {
                Err(UpstreamError::RequestBody(e))
            }
            Ok(Err(Failure::Http(e))) => {
                let e = UpstreamError::Failed(e);
                count(e.kind());
                Err(e)
            }
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    async fn exchange(&self, req: Request<Body>, reuse: bool) -> Result<Response<Body>, Failure> {
        let shard = self.inner.shard();
        let mut handle = match self.inner.checkout(shard) {
            Some(handle) => handle,
            // Boxed: connecting (TCP, TLS, handshake) is rare and its future is large.
            None => Box::pin(self.inner.connect()).await?,
        };
        let no_body = req.body().is_end_stream();
        // A copy for a second try, made only where one is allowed after the request was
        // written (see the module docs): a safe method, no body, a reused connection.
        let again = (handle.reused && no_body && safe(req.method())).then(|| copy_of(&req));
        let read_before = handle.read.load(Ordering::Relaxed);
        let resp = match handle.sender.try_send_request(req).await {
            Ok(resp) => resp,
            Err(mut e) => {
                let unanswered = handle.read.load(Ordering::Relaxed) == read_before;
                let req = match (e.take_message(), again) {
                    // Never written: the connection had closed while idle.
                    (Some(req), _) => req,
                    // Written, and the reused connection closed without a byte of answer.
                    (None, Some(copy)) if unanswered => copy,
                    _ => return Err(Failure::Http(e.into_error())),
                };
                tracing::debug!(
                    error = %e.into_error(),
                    "a VMS connection closed before answering; sending once more on a new one"
                );
                handle = Box::pin(self.inner.connect()).await?;
                handle
                    .sender
                    .send_request(req)
                    .await
                    .map_err(Failure::Http)?
            }
        };
        let keep = reuse && resp.status() != http::StatusCode::SWITCHING_PROTOCOLS;
        let back = keep.then(|| Checkin {
            handle,
            pool: Arc::clone(&self.inner),
        });
        Ok(resp.map(|body| Body::Vms(ResponseBody::new(body, back))))
    }

    /// Closes idle connections older than the pool's idle timeout. Called periodically, so
    /// that a quiet gateway does not keep connections the VMS would rather close.
    pub fn evict_idle(&self) {
        let now = Instant::now();
        for shard in &self.inner.shards {
            if let Ok(mut idle) = shard.lock() {
                idle.retain(|i| i.usable(now, self.inner.idle_timeout));
            }
        }
    }

    /// Connections held in the pool.
    #[cfg(test)]
    fn pooled(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().map_or(0, |v| v.len()))
            .sum()
    }
}

enum Failure {
    Connect(UpstreamError),
    Http(hyper::Error),
}

/// Methods whose requests may be sent again after being written (RFC 9110 9.2.1: safe, so
/// a second copy changes nothing on the VMS). Compared case-insensitively, as a lenient VMS
/// would read them.
fn safe(m: &Method) -> bool {
    ["GET", "HEAD", "OPTIONS", "TRACE"]
        .iter()
        .any(|s| m.as_str().eq_ignore_ascii_case(s))
}

/// Whether a body is known to have no bytes (nothing to send).
fn is_known_empty(body: &Body) -> bool {
    body.is_end_stream() || body.size_hint().exact() == Some(0)
}

/// The request again, for a second try: only requests without a body are copied.
fn copy_of(req: &Request<Body>) -> Request<Body> {
    let mut copy = Request::new(Body::Empty);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}

impl Idle {
    /// Whether hyper still has the connection ready for a request (a connection the VMS
    /// closed is not), and it has not been idle too long.
    fn usable(&self, now: Instant, idle_timeout: Duration) -> bool {
        self.handle.sender.is_ready() && now.saturating_duration_since(self.since) < idle_timeout
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

    /// The most recently used usable connection of a shard; closed and stale ones are
    /// dropped on the way.
    fn checkout(&self, shard: usize) -> Option<Handle> {
        let now = Instant::now();
        let mut idle = self.shards.get(shard)?.lock().ok()?;
        while let Some(entry) = idle.pop() {
            if entry.usable(now, self.idle_timeout) {
                return Some(entry.handle);
            }
        }
        None
    }

    /// Puts a handle whose exchange is complete onto the stack of the thread its answer
    /// ended on.
    fn checkin(&self, mut handle: Handle) {
        handle.reused = true;
        let Some(Ok(mut idle)) = self.shards.get(self.shard()).map(|s| s.lock()) else {
            return;
        };
        let entry = Idle {
            handle,
            since: Instant::now(),
        };
        push_bounded(&mut idle, entry, self.max_idle_per_shard);
    }

    /// A new connection (TCP, and TLS when configured), under the connect timeout.
    async fn connect_stream(&self, read: Arc<AtomicU64>) -> Result<Stream, Failure> {
        let io = tokio::time::timeout(self.connect_timeout, self.open())
            .await
            .map_err(|_| {
                Failure::Connect(UpstreamError::Connect {
                    stage: ConnectStage::Tcp,
                    target: format!("{} (within {:?})", self.authority, self.connect_timeout),
                    source: None,
                })
            })??;
        Ok(Stream { io, read })
    }

    async fn connect(&self) -> Result<Handle, Failure> {
        let read = Arc::new(AtomicU64::new(0));
        let io = self.connect_stream(Arc::clone(&read)).await?;
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
        Ok(Handle {
            sender,
            read,
            reused: false,
        })
    }

    async fn open(&self) -> Result<Io, Failure> {
        let addrs: Vec<SocketAddr> = match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.port)],
            Err(_) => tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|e| {
                    Failure::Connect(UpstreamError::Connect {
                        stage: ConnectStage::Resolve,
                        target: self.host.clone(),
                        source: Some(e),
                    })
                })?
                .collect(),
        };
        let mut last = UpstreamError::Connect {
            stage: ConnectStage::Resolve,
            target: self.host.clone(),
            source: None,
        };
        for addr in addrs {
            match tcp_connect(addr).await {
                Ok(tcp) => {
                    return match &self.tls {
                        None => Ok(Io::Plain(tcp)),
                        Some((connector, name)) => connector
                            .connect(name.clone(), tcp)
                            .await
                            .map(|s| Io::Tls(Box::new(s)))
                            .map_err(|e| {
                                Failure::Connect(UpstreamError::Connect {
                                    stage: ConnectStage::Tls,
                                    target: self.authority.to_string(),
                                    source: Some(e),
                                })
                            }),
                    };
                }
                Err(e) => {
                    last = UpstreamError::Connect {
                        stage: ConnectStage::Tcp,
                        target: addr.to_string(),
                        source: Some(e),
                    }
                }
            }
        }
        Err(Failure::Connect(last))
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

/// Puts `item` on a shard's stack; when the stack is full, its oldest entry goes (the least
/// likely to be warm).
fn push_bounded<T>(stack: &mut Vec<T>, item: T, max: usize) {
    if stack.len() >= max {
        stack.remove(0);
    }
    stack.push(item);
}

/// The body of an answer from the VMS. It carries its connection's handle until the
/// exchange is complete, and then checks it back into the pool (see the module docs).
pub struct ResponseBody {
    body: Incoming,
    /// The handle, while the connection may still go back to the pool.
    conn: Option<Checkin>,
    /// Whether the answer has been read to its end (or failed).
    done: bool,
}

/// What the end of an answer needs to give its connection back.
struct Checkin {
    handle: Handle,
    pool: Arc<Inner>,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl ResponseBody {
    /// `conn` is `None` when the connection must not be reused whatever happens.
    fn new(body: Incoming, conn: Option<Checkin>) -> Self {
        let mut this = ResponseBody {
            body,
            conn,
            done: false,
        };
        if this.body.is_end_stream() {
            // No body at all (HEAD, 204, 304, `Content-Length: 0`).
            this.end();
        }
        this
    }

    /// The answer has been read to its end: the connection goes back to the pool if hyper
    /// has it ready for another request (the request was written completely, and the
    /// connection stays open); otherwise it is dropped and hyper closes it.
    fn end(&mut self) {
        self.done = true;
        if let Some(back) = self.conn.take()
            && back.handle.sender.is_ready()
        {
            back.pool.checkin(back.handle);
        }
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                if this.body.is_end_stream() {
                    // The last frame (a known length, all received): the end is reported
                    // with it, and the connection settled now.
                    this.end();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.conn = None;
                this.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.end();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            SizeHint::with_exact(0)
        } else {
            self.body.size_hint()
        }
    }
}

/// The socket to the VMS, with or without TLS, counting the bytes it reads.
struct Stream {
    io: Io,
    read: Arc<AtomicU64>,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            this.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
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
            strip_response_headers: Box::new([]),
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
        // `close` among other tokens, in any case.
        let (addr, accepted) = server(
            "HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\ncontent-length: 2\r\n\r\nok",
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
            Err(UpstreamError::Connect { .. })
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

    #[tokio::test]
    async fn an_http10_answer_with_transfer_encoding_is_faulty_framing_and_closes() {
        // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means the framing is
        // faulty; the answer is refused and its connection closed, not kept alive.
        let (addr, accepted) = server(
            "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            usize::MAX,
        )
        .await;
        let up = upstream(addr);
        let m = Metrics::new();
        for _ in 0..2 {
            let r = fetch(&up, &m).await;
            assert!(matches!(r, Err(UpstreamError::Failed(_))), "{r:?}");
            assert_eq!(up.pooled(), 0);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_returns_to_the_pool_only_when_its_answer_was_read_to_the_end() {
        let (addr, accepted) = server(
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789",
            usize::MAX,
        )
        .await;
        let up = upstream(addr);
        let m = Metrics::new();
        for _ in 0..3 {
            let resp = up.send(get("/x"), &m).await.unwrap();
            // The head has arrived, the body not yet read: the exchange is not complete.
            assert_eq!(up.pooled(), 0);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"0123456789");
            assert_eq!(up.pooled(), 1);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    /// A raw server that answers every request as soon as its head has arrived and never
    /// reads a request body; records each connection's bytes.
    async fn server_answering_early(
        answer: &'static str,
    ) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
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
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    log.lock().unwrap().push(buf);
                    let _ = s.write_all(answer.as_bytes()).await;
                    // Held open, never read again.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                });
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn an_answer_that_arrives_before_the_request_was_written_does_not_return_its_connection()
    {
        let (addr, seen) = server_answering_early(OK).await;
        let up = upstream(addr);
        let m = Metrics::new();
        // Far more than the sockets buffer: hyper cannot finish writing it.
        let big = Bytes::from(vec![b'a'; 32 << 20]);
        let mut req = post("/upload", "");
        *req.body_mut() = Body::from(big);
        let resp = up.send(req, &m).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        assert_eq!(
            up.pooled(),
            0,
            "a connection with a request half written was pooled"
        );
        assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_body_on_a_get_goes_with_connection_close_on_a_connection_not_reused() {
        let (addr, seen) = server_answering_early(OK).await;
        let up = upstream(addr);
        let m = Metrics::new();
        for method in ["GET", "delete"] {
            let mut req = get("/api/items");
            *req.method_mut() = Method::from_bytes(method.as_bytes()).unwrap();
            *req.body_mut() = Body::from("{}");
            let resp = up.send(req, &m).await.unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"ok");
            assert_eq!(up.pooled(), 0);
        }
        // A request without a body afterwards keeps its connection.
        assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
        assert_eq!(up.pooled(), 1);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "each request on a connection of its own");
        for head in &seen[..2] {
            let head = String::from_utf8_lossy(head).to_ascii_lowercase();
            assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
            assert!(head.contains("\r\ncontent-length: 2\r\n"), "{head}");
        }
        let last = String::from_utf8_lossy(&seen[2]).to_ascii_lowercase();
        assert!(!last.contains("connection: close"), "{last}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_several_threads_connections_are_returned_and_reused() {
        // Answers are read on whichever worker thread runs the task, and each thread has its
        // own stack: at most one connection per thread.
        let (addr, accepted) = server(OK, usize::MAX).await;
        let up = upstream(addr);
        let m = Arc::new(Metrics::new());
        let task = {
            let (up, m) = (up.clone(), Arc::clone(&m));
            tokio::spawn(async move {
                for _ in 0..300 {
                    assert_eq!(fetch(&up, &m).await.unwrap(), "ok");
                }
            })
        };
        task.await.unwrap();
        let n = accepted.load(Ordering::SeqCst);
        assert!((1..=2).contains(&n), "{n} connections for 300 requests");
    }

    #[tokio::test]
    async fn an_allowed_body_of_unknown_length_on_a_get_is_sent_chunked() {
        // A body of unknown length: the chunked answer of another server.
        let (source, _) = server(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            usize::MAX,
        )
        .await;
        let m = Metrics::new();
        let body = upstream(source)
            .send(get("/x"), &m)
            .await
            .unwrap()
            .into_body();
        assert_eq!(http_body::Body::size_hint(&body).exact(), None);
        let (addr, seen) = server_answering_early(OK).await;
        let mut req = get("/search");
        *req.body_mut() = body;
        let resp = upstream(addr).send(req, &m).await.unwrap();
        assert_eq!(resp.status(), 200);
        let head = String::from_utf8_lossy(&seen.lock().unwrap()[0]).to_ascii_lowercase();
        assert!(
            head.contains("\r\ntransfer-encoding: chunked\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    }
}
