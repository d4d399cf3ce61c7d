//! One body type for every direction.
//!
//! The gateway either streams a body it received (`Incoming` from the client, `Vms` from the
//! VMS: hyper's answer body, carrying its pooled connection until the end, see
//! `http::upstream`) or sends bytes it holds (its own pages,
//! a buffered login request, a released response). An enum avoids boxing a trait object on
//! every proxied request and keeps streaming bodies streaming: a received body is polled
//! frame by frame and never collected.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;

use crate::http::upstream::ResponseBody;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Default)]
pub enum Body {
    #[default]
    Empty,
    Bytes(Option<Bytes>),
    Incoming(Incoming),
    Vms(ResponseBody),
    /// An HTML page streamed with markup put into its `<head>` (`http::head_insert`).
    Page(Box<crate::http::head_insert::Page>),
}

impl Body {
    pub fn empty() -> Self {
        Body::Empty
    }
    pub fn from_bytes(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        if b.is_empty() {
            Body::Empty
        } else {
            Body::Bytes(Some(b))
        }
    }
}

impl From<Incoming> for Body {
    fn from(i: Incoming) -> Self {
        Body::Incoming(i)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::from_bytes(s)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::from_bytes(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::from_bytes(b)
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Bytes(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Incoming(i) => Pin::new(i).poll_frame(cx).map_err(Into::into),
            Body::Vms(v) => Pin::new(v).poll_frame(cx),
            Body::Page(p) => p.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Bytes(b) => b.is_none(),
            Body::Incoming(i) => i.is_end_stream(),
            Body::Vms(v) => v.is_end_stream(),
            Body::Page(p) => p.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Bytes(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Bytes(None) => SizeHint::with_exact(0),
            Body::Incoming(i) => i.size_hint(),
            Body::Vms(v) => v.size_hint(),
            Body::Page(p) => p.size_hint(),
        }
    }
}

/// How much of a refused body is still read and thrown away, and for how long at most,
/// before the refusal is sent: a client still uploading then reads the 413 instead of a reset
/// connection (the lingering close nginx does). Beyond these bounds the connection is closed.
const DRAIN_BYTES: usize = 1 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads a whole body into memory, refusing more than `limit` bytes (a body that announces
/// more is refused without being collected). A refused body is drained within bounds first.
pub async fn collect_limited<B>(body: B, limit: usize) -> Result<Bytes, CollectError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;
    let mut body = std::pin::pin!(body);
    let announced = body.size_hint().lower();
    if announced > limit as u64 {
        // A body too large to drain is not read at all: reading it would make hyper send
        // `100 Continue` to a client that waits for it, which would then send it all.
        if announced <= (limit + DRAIN_BYTES) as u64 {
            drain(body).await;
        }
        return Err(CollectError::TooLarge);
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame.map_err(|e| CollectError::Io(e.into()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                drain(body).await;
                return Err(CollectError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Reads and discards what follows of a refused body, up to [`DRAIN_BYTES`] and
/// [`DRAIN_TIME`]; errors end it quietly (the refusal is the answer either way).
async fn drain<B>(mut body: Pin<&mut B>)
where
    B: HttpBody<Data = Bytes>,
{
    use http_body_util::BodyExt;
    let read = async {
        let mut seen = 0usize;
        while seen <= DRAIN_BYTES {
            match body.as_mut().frame().await {
                Some(Ok(f)) => seen += f.data_ref().map_or(0, Bytes::len),
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("body larger than allowed")]
    TooLarge,
    #[error("body could not be read: {0}")]
    Io(BoxError),
}
