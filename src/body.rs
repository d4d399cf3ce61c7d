//! One body type for every direction.
//!
//! The gateway either streams a body it received (`Incoming` from the client, `Vms` from the
//! VMS: hyper's answer body, carrying its pooled connection until the end, see
//! `proxy::upstream`) or sends bytes it holds (its own pages,
//! a buffered login request, a released response). An enum avoids boxing a trait object on
//! every proxied request and keeps streaming bodies streaming: a received body is polled
//! frame by frame and never collected.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;

use crate::proxy::upstream::ResponseBody;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Default)]
pub enum Body {
    #[default]
    Empty,
    Bytes(Option<Bytes>),
    Incoming(Incoming),
    Vms(ResponseBody),
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
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Bytes(b) => b.is_none(),
            Body::Incoming(i) => i.is_end_stream(),
            Body::Vms(v) => v.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Bytes(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Bytes(None) => SizeHint::with_exact(0),
            Body::Incoming(i) => i.size_hint(),
            Body::Vms(v) => v.size_hint(),
        }
    }
}

/// Reads a whole body into memory, refusing more than `limit` bytes.
pub async fn collect_limited<B>(body: B, limit: usize) -> Result<Bytes, CollectError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(CollectError::TooLarge),
        Err(e) => Err(CollectError::Io(e)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("body larger than allowed")]
    TooLarge,
    #[error("body could not be read: {0}")]
    Io(BoxError),
}
