//! Listeners and connections: the TLS listener (HTTP/1.1 and HTTP/2 over rustls), the optional
//! plain-HTTP listener that only redirects to HTTPS, and the optional metrics listener.
//!
//! The TLS listener is served by worker threads (see [`serve_tls`]). Each accepted connection
//! is handed to the least-loaded worker and runs in its own task there: TLS handshake under a
//! timeout, then hyper's auto (h1/h2) connection with upgrades, watched by a graceful-shutdown
//! handle. On shutdown the listeners stop accepting, in-flight requests get
//! `server.shutdown_grace` to finish, and what is still open after that is dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::gateway::Gateway;
use crate::http::ConnInfo;
use crate::http::body::Body;
use crate::metrics::WorkerGauges;

mod balance;
mod park;

/// A running set of listeners.
pub struct Listeners {
    pub https: SocketAddr,
    pub redirect: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Listeners {
    /// Stops accepting, waits for in-flight requests (bounded by `server.shutdown_grace`).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// Binds every configured listener. `https` may be given pre-bound (tests bind port 0).
pub async fn bind(
    gw: Arc<Gateway>,
    tls: Arc<rustls::ServerConfig>,
    https: Option<TcpListener>,
) -> std::io::Result<Listeners> {
    let cfg = &gw.cfg.server;
    let https = match https {
        Some(l) => l,
        None => TcpListener::bind(cfg.listen).await?,
    };
    let (tx, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let https_addr = https.local_addr()?;
    let redirect = match cfg.redirect_listen {
        Some(a) => {
            let l = TcpListener::bind(a).await?;
            let addr = l.local_addr()?;
            tasks.push(tokio::spawn(serve_plain(
                l,
                rx.clone(),
                PlainKind::Redirect(cfg.public_port),
                Arc::clone(&gw),
            )));
            Some(addr)
        }
        None => None,
    };
    let metrics = match (gw.cfg.metrics.enabled, gw.cfg.metrics.listen) {
        (true, Some(a)) => {
            let l = TcpListener::bind(a).await?;
            let addr = l.local_addr()?;
            tasks.push(tokio::spawn(serve_plain(
                l,
                rx.clone(),
                PlainKind::Metrics,
                Arc::clone(&gw),
            )));
            Some(addr)
        }
        _ => None,
    };
    // Registered before the listener runs, so that the gauges are there from the first scrape.
    let workers = gw
        .metrics
        .register_workers(worker_count(cfg.worker_threads));
    tasks.push(tokio::spawn(serve_tls(
        https,
        TlsAcceptor::from(tls),
        gw,
        rx,
        workers,
    )));
    Ok(Listeners {
        https: https_addr,
        redirect,
        metrics,
        shutdown: tx,
        tasks,
    })
}

/// hyper's HTTP/1.1 and HTTP/2 server settings, chosen per connection by ALPN.
struct Builders {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
}

fn builders(gw: &Gateway) -> Builders {
    let cfg = &gw.cfg.server;
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .max_buf_size(cfg.max_header_bytes.max(8192))
        .keep_alive(true);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(cfg.idle_timeout / 2))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(250);
    Builders { http1, http2 }
}

/// `server.worker_threads`, or one per CPU; at least one.
fn worker_count(configured: Option<usize>) -> usize {
    configured
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// Serves the TLS listener on `server.worker_threads` threads (default: one per CPU), each
/// with a single-threaded runtime of its own, as nginx runs one worker process per core.
///
/// ```text
///                                        ┌─► worker 0: connection tasks ─► upstream connections
///   listening socket ─► accept (here) ───┤            (same thread, same pool shard)
///                       least-loaded     └─► worker 1: ...
/// ```
///
/// One task accepts and hands each connection to the worker with the fewest open connections
/// (see [`balance`]; the counts are the `mfa_gateway_worker_connections` gauges, `gauges`).
/// Left to themselves, workers accepting from one shared socket split connections by who
/// happens to wake first: on a busy machine one worker can end up with all of them while the
/// other idles, which caps the gateway at one core. Handing off costs one cross-thread
/// wake-up per connection, not per request. The listening socket stays one socket (no
/// `SO_REUSEPORT`), so a second process cannot bind the same port by mistake.
///
/// A connection, the upstream connection its requests use (see `http::upstream`: one pool
/// shard per thread) and their timers then all stay on its worker, so a proxied request never
/// waits for a wake-up from another thread. Background work (policy and certificate
/// watchers, the revocation feed, Redis connections) stays on the main runtime.
async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    gw: Arc<Gateway>,
    mut shutdown: watch::Receiver<bool>,
    gauges: Arc<WorkerGauges>,
) {
    let workers = gauges.workers();
    let limit = Arc::new(tokio::sync::Semaphore::new(gw.cfg.server.max_connections));
    let builders = Arc::new(builders(&gw));
    let balance = balance::Balance::new(gauges);
    let mut inboxes = Vec::with_capacity(workers);
    let mut finished = Vec::with_capacity(workers);
    for index in 0..workers {
        let worker = Worker {
            acceptor: acceptor.clone(),
            gw: Arc::clone(&gw),
            builders: Arc::clone(&builders),
            shutdown: shutdown.clone(),
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Handoff>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name(format!("mfa-gw-worker-{index}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, index, "cannot start a worker runtime");
                        return;
                    }
                };
                rt.block_on(worker.serve(rx));
                // Dropping the runtime ends what is left of its tasks (after the grace).
                drop(rt);
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(_) => {
                inboxes.push(Some(tx));
                finished.push(done_rx);
            }
            Err(e) => {
                tracing::error!(error = %e, index, "cannot start a worker thread");
                inboxes.push(None);
            }
        }
    }
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            tracing::warn!("connection limit reached; closing a new connection");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        // Taken off this runtime's reactor; the worker registers it with its own.
        let tcp = match tcp.into_std() {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "cannot hand a connection over");
                continue;
            }
        };
        let mut handoff = Handoff {
            tcp,
            peer,
            permit,
            load: None,
        };
        // A worker whose thread is gone is skipped; if none is left the connection closes.
        while let Some(index) = balance.pick(|i| inboxes.get(i).is_some_and(Option::is_some)) {
            handoff.load = Some(balance::Load::take(&balance, index));
            match inboxes
                .get(index)
                .and_then(Option::as_ref)
                .map(|tx| tx.send(handoff))
            {
                Some(Ok(())) => break,
                Some(Err(returned)) => {
                    tracing::error!(index, "a worker thread has stopped");
                    handoff = returned.0;
                    handoff.load = None;
                    if let Some(slot) = inboxes.get_mut(index) {
                        *slot = None;
                    }
                }
                None => break,
            }
        }
    }
    drop(listener);
    // Closing the inboxes tells the workers that no connection will come any more.
    drop(inboxes);
    for done in finished {
        let _ = done.await;
    }
    tracing::info!("all connections closed");
}

/// An accepted connection on its way to a worker, with its share of `server.max_connections`
/// and of the worker's load, both given back when the connection ends.
struct Handoff {
    tcp: std::net::TcpStream,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
    load: Option<balance::Load>,
}

/// What one worker thread needs to serve connections.
struct Worker {
    acceptor: TlsAcceptor,
    gw: Arc<Gateway>,
    builders: Arc<Builders>,
    shutdown: watch::Receiver<bool>,
}

impl Worker {
    /// Serves the connections handed to this worker until shutdown.
    async fn serve(mut self, mut inbox: tokio::sync::mpsc::UnboundedReceiver<Handoff>) {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let handoff = tokio::select! {
                h = inbox.recv() => match h {
                    Some(h) => h,
                    None => break,
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                _ = self.shutdown.changed() => break,
            };
            let Handoff {
                tcp,
                peer,
                permit,
                load,
            } = handoff;
            let tcp = match tokio::net::TcpStream::from_std(tcp) {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "worker cannot take a connection");
                    continue;
                }
            };
            let conn = Conn {
                gw: Arc::clone(&self.gw),
                builders: Arc::clone(&self.builders),
                shutdown: self.shutdown.clone(),
                info: ConnInfo { peer },
            };
            let acceptor = self.acceptor.clone();
            conns.spawn(async move {
                let _held = (permit, load);
                conn.serve(acceptor, tcp).await;
            });
        }
        // Connections handed over but not yet started are closed, as queued ones are.
        drop(inbox);
        // Connections see the same signal: idle ones close at once, busy ones finish their
        // requests; what is still open after the grace is dropped with the runtime.
        let grace = self.gw.cfg.server.shutdown_grace;
        let all_closed = async { while conns.join_next().await.is_some() {} };
        tokio::select! {
            _ = all_closed => tracing::debug!("all connections of a worker closed"),
            _ = tokio::time::sleep(grace) => tracing::warn!(?grace, "shutdown grace elapsed; closing remaining connections"),
        }
    }
}

/// One client connection.
struct Conn {
    gw: Arc<Gateway>,
    builders: Arc<Builders>,
    shutdown: watch::Receiver<bool>,
    info: ConnInfo,
}

impl Conn {
    async fn serve(self, acceptor: TlsAcceptor, tcp: tokio::net::TcpStream) {
        let gw = Arc::clone(&self.gw);
        let peer = self.info.peer;
        let tls = match tokio::time::timeout(gw.cfg.server.handshake_timeout, acceptor.accept(tcp))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                gw.metrics.handshake_failed();
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                gw.metrics.handshake_failed();
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
        gw.metrics.connection_opened();
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            self.serve_h2(tls).await;
        } else {
            self.serve_h1(tls).await;
        }
        gw.metrics.connection_closed();
    }

    async fn serve_h2(mut self, tls: park::TlsIo) {
        let (gw, info) = (Arc::clone(&self.gw), self.info);
        let svc = service_fn(move |req: Request<Incoming>| {
            let gw = Arc::clone(&gw);
            async move { Ok::<_, Infallible>(gw.handle(req, info).await) }
        });
        let conn = self.builders.http2.serve_connection(TokioIo::new(tls), svc);
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = self.shutdown.changed() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(peer = %self.info.peer, error = %e, "connection ended with an error");
        }
    }

    /// HTTP/1.1 in segments (see [`park`]): hyper serves while requests come; an idle
    /// connection waits without hyper's buffers.
    async fn serve_h1(mut self, tls: park::TlsIo) {
        let state = park::ConnState::new();
        let mut io = tls;
        loop {
            let (gw, info, st) = (Arc::clone(&self.gw), self.info, Arc::clone(&state));
            let svc = service_fn(move |req: Request<Incoming>| {
                let gw = Arc::clone(&gw);
                let st = Arc::clone(&st);
                let bodiless = req.body().is_end_stream();
                st.request_started();
                async move {
                    let resp = gw.handle(req, info).await;
                    let eligible = bodiless && resp.status() != StatusCode::SWITCHING_PROTOCOLS;
                    Ok::<_, Infallible>(resp.map(|b| st.track(b, eligible)))
                }
            });
            // The segment in a block of its own: hyper's connection, and with it its
            // buffers, is dropped before the stream parks.
            let result = {
                let park_io = park::ParkIo::new(io, Arc::clone(&state), park::PARK_AFTER);
                // Boxed, so a parked connection's task does not keep room for it.
                let mut conn = Box::pin(
                    self.builders
                        .http1
                        .serve_connection(TokioIo::new(park_io), svc)
                        .with_upgrades(),
                );
                tokio::select! {
                    r = conn.as_mut() => r,
                    _ = self.shutdown.changed() => {
                        conn.as_mut().graceful_shutdown();
                        conn.as_mut().await
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(peer = %self.info.peer, error = %e, "connection ended with an error");
                return;
            }
            // Ended by the client, by shutdown or by an upgrade, unless it was parked.
            let Some(parked) = state.take_parked() else {
                return;
            };
            if *self.shutdown.borrow() {
                return;
            }
            // An idle keep-alive connection is closed after `header_read_timeout` in all, as
            // hyper does.
            let idle_left = self
                .gw
                .cfg
                .server
                .header_read_timeout
                .saturating_sub(park::PARK_AFTER);
            self.gw.metrics.connection_parked(true);
            let resume = tokio::select! {
                r = parked.get_ref().0.readable() => r.is_ok(),
                _ = tokio::time::sleep(idle_left) => false,
                _ = self.shutdown.changed() => false,
            };
            self.gw.metrics.connection_parked(false);
            if !resume {
                return;
            }
            io = parked;
        }
    }
}

enum PlainKind {
    Redirect(u16),
    Metrics,
}

async fn serve_plain(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    kind: PlainKind,
    gw: Arc<Gateway>,
) {
    let kind = Arc::new(kind);
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r { Ok(x) => x, Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; } },
            _ = shutdown.changed() => break,
        };
        let kind = Arc::clone(&kind);
        let gw = Arc::clone(&gw);
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let kind = Arc::clone(&kind);
                let gw = Arc::clone(&gw);
                async move {
                    Ok::<_, Infallible>(match &*kind {
                        PlainKind::Redirect(port) => redirect_to_https(&req, *port),
                        PlainKind::Metrics => metrics_only(&req, &gw),
                    })
                }
            });
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            let _ = b.serve_connection(TokioIo::new(tcp), svc).await;
        });
    }
}

/// `308` to the same host and path over HTTPS. Only the host the client named is used, so
/// this cannot send anyone elsewhere.
pub fn redirect_to_https(req: &Request<Incoming>, port: u16) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(strip_port)
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
                })
        });
    let mut r = Response::new(Body::empty());
    let Some(host) = host else {
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    };
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let target = if port == 443 {
        format!("https://{host}{pq}")
    } else {
        format!("https://{host}:{port}{pq}")
    };
    *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = header::HeaderValue::from_str(&target) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        return h
            .split_once(']')
            .map_or(h, |(a, _)| a.get(..).map_or(h, |_| &h[..=a.len()]));
    }
    h.rsplit_once(':').map_or(h, |(a, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            a
        } else {
            h
        }
    })
}

fn metrics_only(req: &Request<Incoming>, gw: &Gateway) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    if req.uri().path() == "/metrics" {
        *r.body_mut() = Body::from(gw.metrics.render());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
    } else {
        *r.status_mut() = StatusCode::NOT_FOUND;
    }
    r
}
