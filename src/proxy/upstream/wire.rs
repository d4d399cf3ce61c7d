//! HTTP/1.1 as the gateway writes it to the VMS and reads it back: the request head, the
//! response head, and the framing of the response body (RFC 9112).
//!
//! Pure functions over byte buffers, without I/O, so that every rule can be tested (and
//! fuzzed) on its own. The reading side is strict where a lenient reader would let the VMS's
//! answers be misread: a response whose length cannot be known for certain is refused
//! (a 502 to the client), and a connection whose framing was in any way unusual is never
//! used for another request, so one odd answer cannot shift the next request's answer.
//!
//! Body framing of a response (RFC 9112 6.3), in order:
//!
//! ```text
//!   101 ──► no body, and the connection is not reused
//!   answer to HEAD, other 1xx, 204, 304 ──► no body
//!   Transfer-Encoding, last coding chunked ──► chunked (not reused when Content-Length too)
//!   Transfer-Encoding, anything else ──► until the VMS closes (not reused)
//!   Content-Length, one value (repeats equal) ──► that many bytes
//!   Content-Length unparsable or conflicting ──► refused
//!   none of these ──► until the VMS closes (not reused)
//! ```

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

/// Headers a response head may carry; more is refused (hyper's client has the same limit).
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (size, extensions) and longest trailer section accepted.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;

/// Why a response from the VMS could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("malformed response head: {0}")]
    Head(&'static str),
    #[error("response head larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("unusable Content-Length")]
    ContentLength,
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the VMS closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// Whether the connection may carry another request once this body has been read.
    pub reusable: bool,
}

/// Writes a request head in origin form, with the body framing the gateway chose:
/// `body_len` bytes follow (`Content-Length`, left out for an empty body of a method that
/// has no use for one). The caller's `Content-Length` and `Transfer-Encoding` are replaced.
pub fn encode_request_head(
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body_len: usize,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let length_wanted = body_len > 0
        || headers.contains_key(header::CONTENT_LENGTH)
        || matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if length_wanted {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body_len.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses a response head at the start of `buf`. `Ok(None)`: not complete yet (read more,
/// unless `buf` already holds `max_head_bytes`). On success the head's bytes are removed
/// from `buf`, which then starts with the body.
pub fn parse_response_head(
    buf: &mut BytesMut,
    request_method: &Method,
    max_head_bytes: usize,
) -> Result<Option<Head>, WireError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= max_head_bytes {
                Err(WireError::HeadTooLarge(max_head_bytes))
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(WireError::Head("too many headers")),
        Err(_) => return Err(WireError::Head("not an HTTP/1 response")),
    };
    if len > max_head_bytes {
        return Err(WireError::HeadTooLarge(max_head_bytes));
    }
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        Some(0) => Version::HTTP_10,
        _ => return Err(WireError::Head("unknown version")),
    };
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(WireError::Head("bad status code"))?;
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| WireError::Head("bad header name"))?;
        let value =
            HeaderValue::from_bytes(h.value).map_err(|_| WireError::Head("bad header value"))?;
        headers.append(name, value);
    }
    let (framing, framing_reusable) = framing(status, request_method, &headers)?;
    let reusable = framing_reusable && keeps_alive(version, &headers);
    buf.advance(len);
    Ok(Some(Head {
        status,
        version,
        headers,
        framing,
        reusable,
    }))
}

/// The body framing of a response (see the module docs) and whether it leaves the
/// connection usable.
fn framing(
    status: StatusCode,
    request_method: &Method,
    headers: &HeaderMap,
) -> Result<(Framing, bool), WireError> {
    if status == StatusCode::SWITCHING_PROTOCOLS {
        // The connection now speaks another protocol (or the VMS thinks so): never reused.
        return Ok((Framing::Empty, false));
    }
    if *request_method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Framing::Empty, true));
    }
    let has_length = headers.contains_key(header::CONTENT_LENGTH);
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Ok(if last_coding_is_chunked(headers) {
            (Framing::Chunked, !has_length)
        } else {
            (Framing::UntilClose, false)
        });
    }
    if has_length {
        let n = content_length(headers)?;
        return Ok((
            if n == 0 {
                Framing::Empty
            } else {
                Framing::Length(n)
            },
            true,
        ));
    }
    Ok((Framing::UntilClose, false))
}

fn last_coding_is_chunked(headers: &HeaderMap) -> bool {
    let last_value = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back();
    last_value.is_some_and(|v| {
        v.as_bytes()
            .rsplit(|b| *b == b',')
            .next()
            .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
    })
}

/// The one value of every `Content-Length` field and list element (RFC 9110 8.6: repeats
/// of the same number are allowed, anything else is an error).
fn content_length(headers: &HeaderMap) -> Result<u64, WireError> {
    let mut found: Option<u64> = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        for part in v.as_bytes().split(|b| *b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err(WireError::ContentLength);
            }
            let n = part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            match found {
                Some(f) if f != n => return Err(WireError::ContentLength),
                _ => found = Some(n),
            }
        }
    }
    found.ok_or(WireError::ContentLength)
}

/// HTTP/1.1 keeps the connection unless told `close`; HTTP/1.0 closes it unless told
/// `keep-alive`.
pub fn keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    let mut close = false;
    let mut keep_alive = false;
    for v in headers.get_all(header::CONNECTION) {
        for t in v.as_bytes().split(|b| *b == b',') {
            let t = t.trim_ascii();
            close |= t.eq_ignore_ascii_case(b"close");
            keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    !close && (version == Version::HTTP_11 || keep_alive)
}

/// Decodes a chunked body incrementally, handing out the data as slices of the read buffer
/// (no copy).
///
/// ```text
///   Size ──hex digits, [;ext], CRLF──► Data(n) ──n bytes──► DataEnd ──CRLF──► Size
///     │ size 0
///     └──► Trailers ──lines until an empty one──► Done
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunked {
    Size,
    Data(u64),
    DataEnd,
    Trailers { seen: usize },
    Done,
}

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    /// The buffer holds no further complete piece: read more.
    NeedMore,
    /// The body is complete; what is left in the buffer does not belong to it.
    Done,
}

impl Chunked {
    pub fn new() -> Self {
        Chunked::Size
    }

    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        loop {
            match self {
                Chunked::Size => {
                    let Some(line_end) = find_crlf(buf, MAX_CHUNK_LINE)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let line = buf.split_to(line_end + 2);
                    let size = chunk_size(line.get(..line_end).unwrap_or_default())?;
                    *self = if size == 0 {
                        Chunked::Trailers { seen: 0 }
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = usize::try_from(*left).map_or(buf.len(), |l| l.min(buf.len()));
                    *left -= take as u64;
                    if *left == 0 {
                        *self = Chunked::DataEnd;
                    }
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                Chunked::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if buf.get(..2) != Some(b"\r\n") {
                        return Err(WireError::Chunked("no CRLF after chunk data"));
                    }
                    buf.advance(2);
                    *self = Chunked::Size;
                }
                Chunked::Trailers { seen } => {
                    let Some(line_end) = find_crlf(buf, MAX_TRAILERS.saturating_sub(*seen))? else {
                        return Ok(Decoded::NeedMore);
                    };
                    buf.advance(line_end + 2);
                    if line_end == 0 {
                        *self = Chunked::Done;
                    } else {
                        *seen += line_end + 2;
                    }
                }
                Chunked::Done => return Ok(Decoded::Done),
            }
        }
    }
}

impl Default for Chunked {
    fn default() -> Self {
        Self::new()
    }
}

/// Position of the first CRLF (the length of the line before it), if the line is at most
/// `limit` bytes long; a bare LF or CR is an error.
fn find_crlf(buf: &[u8], limit: usize) -> Result<Option<usize>, WireError> {
    let window = buf
        .get(..buf.len().min(limit.saturating_add(2)))
        .unwrap_or(buf);
    match window.iter().position(|b| *b == b'\n') {
        Some(lf) => {
            let line = lf.checked_sub(1).and_then(|cr| {
                let before = window.get(..cr)?;
                (window.get(cr) == Some(&b'\r') && !before.contains(&b'\r')).then_some(cr)
            });
            line.map(Some).ok_or(WireError::Chunked("bare LF or CR"))
        }
        None if buf.len() >= limit.saturating_add(2) => Err(WireError::Chunked("line too long")),
        None => match window.iter().position(|b| *b == b'\r') {
            Some(cr) if cr + 1 < window.len() => Err(WireError::Chunked("bare CR")),
            _ => Ok(None),
        },
    }
}

/// The size of a chunk-size line: hex digits, then optionally `;` and extensions (ignored).
fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    if digits.is_empty() || digits.len() > 15 {
        return Err(WireError::Chunked("bad chunk size"));
    }
    let rest = rest.trim_ascii_start();
    if !rest.is_empty() && rest.first() != Some(&b';') {
        return Err(WireError::Chunked("bad chunk size"));
    }
    let mut n = 0u64;
    for d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(WireError::Chunked("bad chunk size")),
        };
        n = (n << 4) | u64::from(v);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn head(raw: &str, method: &Method) -> Result<Option<Head>, WireError> {
        let mut buf = BytesMut::from(raw.as_bytes());
        parse_response_head(&mut buf, method, 64 * 1024)
    }

    fn complete(raw: &str) -> Head {
        head(raw, &Method::GET).unwrap().unwrap()
    }

    #[test]
    fn request_head_is_origin_form_with_the_gateways_framing() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("vms.test"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        let mut out = Vec::new();
        encode_request_head(&Method::POST, "/login?x=1", &h, 5, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /login?x=1 HTTP/1.1\r\nhost: vms.test\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 5\r\n\r\n"
        );
        let mut out = Vec::new();
        encode_request_head(&Method::GET, "/", &HeaderMap::new(), 0, &mut out);
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
        let mut out = Vec::new();
        encode_request_head(&Method::POST, "/", &HeaderMap::new(), 0, &mut out);
        assert_eq!(out, b"POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn head_is_parsed_and_removed_from_the_buffer() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx: y\r\n\r\nokNEXT"[..]);
        let h = parse_response_head(&mut buf, &Method::GET, 1024)
            .unwrap()
            .unwrap();
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.framing, Framing::Length(2));
        assert!(h.reusable);
        assert_eq!(h.headers["x"], "y");
        assert_eq!(&buf[..], b"okNEXT");
    }

    #[test]
    fn partial_head_asks_for_more_until_the_limit() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nx: y"[..]);
        assert!(
            parse_response_head(&mut buf, &Method::GET, 1024)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            parse_response_head(&mut buf, &Method::GET, 10).unwrap_err(),
            WireError::HeadTooLarge(10)
        );
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n"[..]);
        assert!(parse_response_head(&mut buf, &Method::GET, 10).is_err());
    }

    #[test]
    fn garbage_and_bad_heads_are_refused() {
        for raw in [
            "NOT HTTP AT ALL\r\n\r\n",
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n",
        ] {
            assert!(head(raw, &Method::GET).is_err(), "{raw:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        assert_eq!(
            head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n"), &Method::GET).unwrap_err(),
            WireError::Head("too many headers")
        );
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let cases: [(&str, Framing, bool); 12] = [
            (
                "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n",
                Framing::Empty,
                true,
            ),
            ("HTTP/1.1 304 Not Modified\r\n\r\n", Framing::Empty, true),
            ("HTTP/1.1 100 Continue\r\n\r\n", Framing::Empty, true),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 7, 7\r\ncontent-length: 7\r\n\r\n",
                Framing::Length(7),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n",
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
                Framing::Chunked,
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
                Framing::UntilClose,
                false,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", Framing::UntilClose, false),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: keep-alive, close\r\n\r\n",
                Framing::Length(3),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\n",
                Framing::Length(3),
                false,
            ),
        ];
        for (raw, framing, reusable) in cases {
            let h = complete(raw);
            assert_eq!((h.framing, h.reusable), (framing, reusable), "{raw:?}");
        }
        let h = complete("HTTP/1.0 200 OK\r\ncontent-length: 3\r\nconnection: Keep-Alive\r\n\r\n");
        assert!(h.reusable);
        let h = head(
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n",
            &Method::HEAD,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        let h = complete("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n");
        assert_eq!((h.framing, h.reusable), (Framing::Empty, false));
    }

    #[test]
    fn doubtful_content_length_is_refused() {
        for cl in [
            "",
            "abc",
            "-1",
            "+5",
            "1 2",
            "5, 6",
            "0x10",
            "99999999999999999999",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\ncontent-length: {cl}\r\n\r\n");
            assert_eq!(
                head(&raw, &Method::GET).unwrap_err(),
                WireError::ContentLength,
                "{cl:?}"
            );
        }
        let raw = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n";
        assert_eq!(
            head(raw, &Method::GET).unwrap_err(),
            WireError::ContentLength
        );
    }

    fn decode_all(mut wire: BytesMut) -> Result<(Vec<u8>, BytesMut), WireError> {
        let mut dec = Chunked::new();
        let mut body = Vec::new();
        loop {
            match dec.decode(&mut wire)? {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::Done => return Ok((body, wire)),
                Decoded::NeedMore => return Err(WireError::Chunked("incomplete")),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let wire = BytesMut::from(
            &b"5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-t: 1\r\n\r\nNEXT"[..],
        );
        let (body, rest) = decode_all(wire).unwrap();
        assert_eq!(body, b"hello 0123456789");
        assert_eq!(&rest[..], b"NEXT");
    }

    #[test]
    fn chunked_decoding_works_byte_by_byte() {
        let wire = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        let mut dec = Chunked::new();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut done = false;
        for b in wire {
            buf.extend_from_slice(&[*b]);
            loop {
                match dec.decode(&mut buf).unwrap() {
                    Decoded::Data(d) => body.extend_from_slice(&d),
                    Decoded::NeedMore => break,
                    Decoded::Done => {
                        done = true;
                        break;
                    }
                }
            }
        }
        assert!(done);
        assert_eq!(body, b"abc0123456789abcdef");
    }

    #[test]
    fn malformed_chunked_bodies_are_refused() {
        for wire in [
            &b"x\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"1234567890abcdef0\r\n",
            b"5 x\r\nhello\r\n",
            b"\r\n",
            b"5\rx\r\nhello\r\n",
        ] {
            assert!(
                decode_all(BytesMut::from(wire)).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_LINE));
        let mut dec = Chunked::new();
        assert!(dec.decode(&mut BytesMut::from(long.as_bytes())).is_err());
    }
}
