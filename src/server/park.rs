//! Idle HTTP/1.1 keep-alive connections without hyper's buffers.
//!
//! hyper keeps a connection's read buffer (8 to 24 KiB after the first request) and write
//! buffer (8 KiB) for as long as the connection lives, and has no option to release them while
//! the connection waits for its next request. With thousands of browsers holding keep-alive
//! connections that is most of the gateway's memory. So an HTTP/1.1 connection is served in
//! *segments*: hyper serves it while requests come; once it has been idle for
//! [`PARK_AFTER`] between two exchanges, the segment ends, hyper's connection (and its
//! buffers) is dropped, and the TLS stream alone waits for the client's next bytes. Then a new
//! segment starts on the same TLS stream. To the client it is one keep-alive connection.
//!
//! ```text
//!            ┌──────────────── new segment (hyper http1 connection) ◄──────────────┐
//!            ▼                                                                       │
//!   serving: requests ──► exchange done, nothing unread, all flushed ──► idle ──┐    │ bytes
//!            ▲                                                                  │    │ arrive
//!            └────────────── bytes arrive before PARK_AFTER ◄───────────────────┤    │
//!                                                                               ▼    │
//!                               PARK_AFTER idle: end of segment (EOF to hyper) ──► parked
//!                                                     parked: header_read_timeout or shutdown ──► close
//! ```
//!
//! How a segment ends: [`ParkIo`] stands between hyper and the TLS stream. When hyper waits
//! for the next request head on a connection that is between exchanges ([`ConnState`]: the last
//! request had no body, its response was produced to the end and not an upgrade, everything
//! written was flushed, no byte has arrived since), and that has lasted [`PARK_AFTER`], `ParkIo`
//! reports end-of-stream. hyper then ends the connection as it does when a client closes an
//! idle connection: it flushes and calls shutdown, which `ParkIo` does not pass on; it hands the
//! TLS stream back instead.
//!
//! Safety of the boundary: a segment ends only where hyper itself would accept a close (no
//! request in progress, nothing unread of a request body: a request that had a body makes the
//! connection ineligible until a later bodiless exchange completes), so no byte of a request
//! can be left behind or read twice. One case loses a request: a client that pipelines, sends
//! part of a request head in the same packet as the previous request and then stalls for
//! [`PARK_AFTER`]; the connection is then closed, which HTTP/1.1 clients must handle for
//! pipelined requests anyway (RFC 9112, 9.3.2).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::http::body::{Body, BoxError};

/// How long a connection must be idle between exchanges before its segment ends.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

pub type TlsIo = tokio_rustls::server::TlsStream<TcpStream>;

/// What the service and the I/O wrapper of one connection tell each other.
#[derive(Debug, Default)]
pub struct ConnState {
    /// Between exchanges: the last response was produced to its end, its request had no body
    /// and it was not an upgrade; cleared by any byte from the client.
    between: AtomicBool,
    /// Everything hyper wrote has been flushed to the TLS stream.
    flushed: AtomicBool,
    /// The stream handed back at the end of a segment.
    parked: Mutex<Option<TlsIo>>,
    /// hyper tried to write after the segment ended (it had not seen a clean end, e.g. it
    /// held part of a pipelined request and answers it with an error): the stream must not
    /// be served again.
    poisoned: AtomicBool,
}

impl ConnState {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            between: AtomicBool::new(false),
            flushed: AtomicBool::new(true),
            parked: Mutex::new(None),
            poisoned: AtomicBool::new(false),
        })
    }

    /// A request head has been read and is about to be served.
    pub fn request_started(&self) {
        self.between.store(false, Ordering::Relaxed);
    }

    /// The response of a bodiless, non-upgrade request has been produced to its end.
    fn exchange_done(&self) {
        self.between.store(true, Ordering::Relaxed);
    }

    /// The stream, if the last segment ended by parking at a clean boundary.
    pub fn take_parked(&self) -> Option<TlsIo> {
        let io = self.parked.lock().ok().and_then(|mut p| p.take());
        io.filter(|_| !self.poisoned.load(Ordering::Relaxed))
    }

    /// Wraps a response so the end of its body marks the exchange done, when the exchange
    /// may end a segment (`eligible`: the request had no body and this is not an upgrade).
    pub fn track(self: &Arc<Self>, body: Body, eligible: bool) -> ServedBody {
        if !eligible {
            return ServedBody {
                inner: body,
                state: None,
            };
        }
        if body.is_end_stream() {
            self.exchange_done();
            return ServedBody {
                inner: body,
                state: None,
            };
        }
        ServedBody {
            inner: body,
            state: Some(Arc::clone(self)),
        }
    }
}

/// A response body that reports its end to the connection's [`ConnState`].
#[derive(Debug)]
pub struct ServedBody {
    inner: Body,
    state: Option<Arc<ConnState>>,
}

impl ServedBody {
    fn done(&mut self) {
        if let Some(s) = self.state.take() {
            s.exchange_done();
        }
    }
}

impl HttpBody for ServedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(None) => this.done(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.done(),
            // A body that failed did not end cleanly: hyper closes the connection.
            Poll::Ready(Some(Err(_))) => this.state = None,
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The TLS stream as hyper sees it during one segment.
pub struct ParkIo {
    io: Option<TlsIo>,
    state: Arc<ConnState>,
    /// When the client last sent bytes (or the segment started).
    last_data: Instant,
    /// Fires when the connection may have been idle for [`PARK_AFTER`]; re-armed lazily, so
    /// a busy connection does not touch the timer on every request.
    park_timer: Option<Pin<Box<Sleep>>>,
    park_after: Duration,
}

impl ParkIo {
    pub fn new(io: TlsIo, state: Arc<ConnState>, park_after: Duration) -> Self {
        Self {
            io: Some(io),
            state,
            last_data: Instant::now(),
            park_timer: None,
            park_after,
        }
    }

    /// Called when a read would wait: whether the segment should end now (else a wake-up is
    /// arranged for when it may).
    fn should_park(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.state.between.load(Ordering::Relaxed)
            || !self.state.flushed.load(Ordering::Relaxed)
        {
            return false;
        }
        let due = self.last_data + self.park_after;
        let timer = self
            .park_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        loop {
            // A timer set for an earlier `due` fires early and is moved on then, so a busy
            // connection re-arms it at most once per `park_after`.
            match timer.as_mut().poll(cx) {
                Poll::Pending => return false,
                Poll::Ready(()) if Instant::now() >= due => return true,
                Poll::Ready(()) => timer.as_mut().reset(due),
            }
        }
    }
}

impl ParkIo {
    fn write_after_park<T>(&self) -> Poll<io::Result<T>> {
        self.state.poisoned.store(true, Ordering::Relaxed);
        Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
    }
}

impl AsyncRead for ParkIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match Pin::new(io).poll_read(cx, buf) {
            Poll::Pending => {
                if this.should_park(cx) {
                    // End of this segment: hyper sees a client that closed an idle
                    // connection, and shuts down, which hands the stream back (below).
                    this.state.between.store(false, Ordering::Relaxed);
                    if let (Some(io), Ok(mut slot)) = (this.io.take(), this.state.parked.lock()) {
                        *slot = Some(io);
                    }
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.state.between.store(false, Ordering::Relaxed);
                    this.last_data = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for ParkIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.state.flushed.store(false, Ordering::Relaxed);
        match this.io.as_mut() {
            Some(io) => Pin::new(io).poll_write(cx, buf),
            None => this.write_after_park(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.state.flushed.store(false, Ordering::Relaxed);
        match this.io.as_mut() {
            Some(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            None => this.write_after_park(),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let r = Pin::new(io).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            this.state.flushed.store(true, Ordering::Relaxed);
        }
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.io.as_mut() {
            Some(io) => Pin::new(io).poll_shutdown(cx),
            // Parked: the stream lives on in `ConnState`, not closed.
            None => Poll::Ready(Ok(())),
        }
    }
}
