//! One HTTP/1.1 connection to the VMS, driven by the task of the request that uses it.
//!
//! hyper's client runs every connection as a task of its own and passes each request and
//! response between that task and the request's through channels: two task wake-ups and
//! two hand-overs per request. Here the request's own future writes the request head and
//! reads the response head, and the response body reads the socket itself as the client
//! connection's task polls it. Once the body has been read to its end, the connection goes
//! back to the pool; a body dropped before its end takes the connection with it (closed),
//! since the rest of that answer would otherwise be read as the next one.
//!
//! ```text
//!   idle (pool) ──checkout──► write head [+ body] ──► read head ──► body streaming
//!        ▲                                                 │              │ end of body,
//!        └─────────────────────────────────────────────────┴──────────────┘ reusable
//!          (no body)                                         otherwise: closed
//! ```
//!
//! Only requests whose body the gateway holds (none, or bytes in memory) go this way;
//! streaming uploads and protocol upgrades use hyper's client, which sends and receives at
//! the same time.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Stream;
use super::wire::{self, Chunked, Decoded, Framing, Head};
use crate::body::BoxError;

/// Read-buffer growth per read: enough for a typical response head and a small body at once.
const READ_CHUNK: usize = 8 * 1024;
/// A body up to this size is written together with the head (one write, one TCP segment
/// on loopback); a larger one follows in a second write instead of being copied.
const COALESCE_BODY: usize = 16 * 1024;

pub(super) struct Conn {
    io: Stream,
    /// Bytes read from the VMS and not yet consumed.
    buf: BytesMut,
    /// The request head being written, kept for its capacity.
    head: Vec<u8>,
    /// Since when the connection has been idle in the pool.
    pub since: Instant,
    /// Whether it has carried a request before (only then is a quiet close a stale
    /// connection rather than a VMS that refuses the request).
    pub reused: bool,
}

/// How an exchange on one connection failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ExchangeError {
    /// The VMS closed or reset the connection before the first byte of an answer. On a
    /// reused connection this is the ordinary end of an idle connection.
    #[error("connection closed before an answer ({0})")]
    ClosedBeforeAnswer(String),
    /// Anything later: an answer that could not be read, or a connection lost midway.
    #[error("{0}")]
    Failed(String),
}

impl Conn {
    pub fn new(io: Stream) -> Box<Self> {
        Box::new(Conn {
            io,
            buf: BytesMut::with_capacity(READ_CHUNK),
            head: Vec::with_capacity(1024),
            since: Instant::now(),
            reused: false,
        })
    }

    /// Whether an idle connection can take a request: nothing unread, and the socket is
    /// not readable (a readable idle socket means the VMS closed it, or sent something no
    /// request asked for). Reads tokio's cached readiness only, no system call.
    pub fn idle_usable(&self) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        self.buf.is_empty() && self.io.tcp().poll_read_ready(&mut cx).is_pending()
    }

    pub fn stale(&self, now: Instant, idle_timeout: Duration) -> bool {
        now.saturating_duration_since(self.since) >= idle_timeout
    }

    /// Writes a request and reads the answer's head (skipping interim `1xx` answers other
    /// than `101`).
    pub async fn exchange(
        &mut self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: &Bytes,
        max_head_bytes: usize,
    ) -> Result<Head, ExchangeError> {
        self.head.clear();
        wire::encode_request_head(method, target, headers, body.len(), &mut self.head);
        let written = async {
            if body.len() <= COALESCE_BODY {
                self.head.extend_from_slice(body);
                self.io.write_all(&self.head).await?;
            } else {
                self.io.write_all(&self.head).await?;
                self.io.write_all(body).await?;
            }
            self.io.flush().await
        }
        .await;
        if let Err(e) = written {
            // A reset while writing: the VMS gave up on the connection. An answer it may
            // already have sent (an early error) is read below all the same.
            if self.buf.is_empty() && !self.readable_answer().await {
                return Err(ExchangeError::ClosedBeforeAnswer(format!("writing: {e}")));
            }
        }
        // Whether any byte of an answer arrived (an interim `100 Continue` counts: the VMS
        // has seen the request, so it must not be sent again).
        let mut answered = !self.buf.is_empty();
        loop {
            if !self.buf.is_empty() {
                match wire::parse_response_head(&mut self.buf, method, max_head_bytes) {
                    Ok(Some(head))
                        if head.status.is_informational()
                            && head.status != http::StatusCode::SWITCHING_PROTOCOLS =>
                    {
                        continue;
                    }
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) => {}
                    Err(e) => return Err(ExchangeError::Failed(e.to_string())),
                }
            }
            self.buf.reserve(READ_CHUNK);
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) if !answered => {
                    return Err(ExchangeError::ClosedBeforeAnswer("closed".into()));
                }
                Ok(0) => {
                    return Err(ExchangeError::Failed(
                        "closed within the answer head".into(),
                    ));
                }
                Ok(_) => answered = true,
                Err(e) if !answered => {
                    return Err(ExchangeError::ClosedBeforeAnswer(format!("reading: {e}")));
                }
                Err(e) => return Err(ExchangeError::Failed(format!("reading: {e}"))),
            }
        }
    }

    /// After a failed write: whether an answer can still be read (the VMS answered early,
    /// for example with an error, and closed).
    async fn readable_answer(&mut self) -> bool {
        self.buf.reserve(READ_CHUNK);
        matches!(self.io.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }
}

/// Where a connection goes when its answer has been read completely.
pub(super) trait Return: Send + Sync {
    fn give_back(&self, conn: Box<Conn>);
}

/// The body of an answer read on one of the gateway's own connections.
pub struct ResponseBody {
    /// Boxed (once, when the connection is opened) so that the body stays small: it is moved
    /// with every response.
    conn: Option<Box<Conn>>,
    state: BodyState,
    reusable: bool,
    pool: Option<Arc<dyn Return>>,
}

/// What the buffered bytes gave in one step of reading a body.
enum Step {
    /// Data, and whether it was the body's last.
    Data(Bytes, bool),
    End,
    Read,
}

enum BodyState {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl ResponseBody {
    /// The body of `head`, read from `conn`; `pool` takes the connection back when the body
    /// has been read and the connection may be used again.
    pub(super) fn new(conn: Box<Conn>, head: &Head, pool: Arc<dyn Return>) -> Self {
        let state = match head.framing {
            Framing::Empty => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(Chunked::new()),
            Framing::UntilClose => BodyState::UntilClose,
        };
        let mut body = ResponseBody {
            conn: Some(conn),
            state,
            reusable: head.reusable,
            pool: Some(pool),
        };
        if matches!(body.state, BodyState::Done) {
            body.finish();
        }
        body
    }

    /// The end of the body: the connection goes back to the pool if it can carry another
    /// request and nothing beyond this answer was received.
    fn finish(&mut self) {
        self.state = BodyState::Done;
        if let (Some(mut conn), Some(pool)) = (self.conn.take(), self.pool.take())
            && self.reusable
            && conn.buf.is_empty()
        {
            conn.reused = true;
            conn.since = Instant::now();
            pool.give_back(conn);
        }
    }

    fn fail(&mut self, e: impl Into<BoxError>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.state = BodyState::Done;
        self.conn = None;
        Poll::Ready(Some(Err(e.into())))
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            // What the buffer already holds of the body.
            let step = match &mut this.state {
                BodyState::Done => return Poll::Ready(None),
                BodyState::Length(left) if !conn.buf.is_empty() => {
                    let take =
                        usize::try_from(*left).map_or(conn.buf.len(), |l| l.min(conn.buf.len()));
                    *left -= take as u64;
                    let data = conn.buf.split_to(take).freeze();
                    Step::Data(data, *left == 0)
                }
                BodyState::UntilClose if !conn.buf.is_empty() => {
                    Step::Data(conn.buf.split().freeze(), false)
                }
                BodyState::Chunked(dec) => match dec.decode(&mut conn.buf) {
                    Ok(Decoded::Data(data)) => Step::Data(data, false),
                    Ok(Decoded::Done) => Step::End,
                    Ok(Decoded::NeedMore) => Step::Read,
                    Err(e) => return this.fail(e),
                },
                BodyState::Length(_) | BodyState::UntilClose => Step::Read,
            };
            match step {
                Step::Data(data, last) => {
                    if last {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Step::End => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Step::Read => {}
            }
            conn.buf.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) if matches!(this.state, BodyState::UntilClose) => {
                    this.reusable = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => {
                    return this.fail(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the VMS closed the connection within a body",
                    ));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            BodyState::Done => SizeHint::with_exact(0),
            BodyState::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
