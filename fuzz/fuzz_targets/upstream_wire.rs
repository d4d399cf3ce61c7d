//! Fuzzes the reading of the VMS's answers (`proxy::upstream::wire`): the response head and
//! the chunked body decoder, on arbitrary bytes.
//!
//! Invariants: nothing panics; a head is only accepted when complete, and what it consumed
//! is a prefix of the input; a `Content-Length` framing matches the header; the chunked
//! decoder gives the same data and the same verdict (end, error or more wanted) whether the
//! bytes arrive at once, split in two at any point, or one by one, and never hands out more
//! bytes than it was given.

#![no_main]

use bytes::BytesMut;
use http::Method;
use libfuzzer_sys::fuzz_target;
use mfa_gateway::proxy::upstream::wire::{self, Chunked, Decoded, Framing};

/// Decodes `parts` in turn; returns the data, whether the body ended, and whether it failed.
fn decode(parts: &[&[u8]]) -> (Vec<u8>, bool, bool) {
    let mut dec = Chunked::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in parts {
        buf.extend_from_slice(part);
        loop {
            match dec.decode(&mut buf) {
                Ok(Decoded::Data(d)) => {
                    assert!(!d.is_empty());
                    out.extend_from_slice(&d);
                }
                Ok(Decoded::NeedMore) => break,
                Ok(Decoded::Done) => return (out, true, false),
                Err(_) => return (out, false, true),
            }
        }
    }
    (out, false, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    // The response head.
    for method in [Method::GET, Method::HEAD] {
        let mut buf = BytesMut::from(rest);
        if let Ok(Some(head)) = wire::parse_response_head(&mut buf, &method, 16 * 1024) {
            assert!(rest.ends_with(&buf));
            if let Framing::Length(n) = head.framing {
                assert!(n > 0);
                assert!(head.headers.contains_key(http::header::CONTENT_LENGTH));
            }
            if method == Method::HEAD {
                assert_eq!(head.framing, Framing::Empty);
            }
        }
    }
    // The chunked decoder: at once, split in two, and byte by byte.
    let (whole, ended, failed) = decode(&[rest]);
    assert!(whole.len() <= rest.len());
    let at = usize::from(split) % (rest.len() + 1);
    let (a, b) = rest.split_at(at);
    let two = decode(&[a, b]);
    let bytes: Vec<&[u8]> = rest.chunks(1).collect();
    let single = decode(&bytes);
    assert_eq!(two, (whole.clone(), ended, failed));
    assert_eq!(single, (whole, ended, failed));
});
