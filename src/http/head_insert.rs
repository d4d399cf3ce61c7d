//! An HTML page's body with one fixed piece of markup put first in its `<head>` (or, in a page
//! without `<head>`, just before its `<body>`), read by `lol_html`'s streaming rewriter rather
//! than by hand: comments, scripts, attributes and tags split across chunks are the parser's
//! business. Used by the navigation helper (`proxy::navigation_helper`).
//!
//! Only the start of a page is parsed: once the markup is in, the rewriter is finished (what
//! it holds goes out) and the rest of the body streams through untouched. A page the rewriter
//! cannot handle within [`MEMORY`] (an enormous tag before `<head>`) is passed on as it came:
//! the rewriter hands back every byte it held (graceful bail-out).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use lol_html::html_content::ContentType;
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{MemorySettings, OutputSink, element};

use crate::http::body::{Body, BoxError};

/// What the rewriter may hold at most before giving up on a page.
const MEMORY: usize = 256 * 1024;

/// Where the rewriter writes; read after each chunk.
#[derive(Clone, Default)]
struct Out(Arc<Mutex<BytesMut>>);

impl OutputSink for Out {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(chunk);
    }
}

impl Out {
    fn take(&self) -> Bytes {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .split()
            .freeze()
    }
}

/// The start of a page fed through the rewriter.
pub struct Inserter {
    rewriter: Option<HtmlRewriter<'static, Out>>,
    out: Out,
    inserted: Arc<AtomicBool>,
}

impl Inserter {
    /// An inserter of `markup` (a constant of the source code, never a value).
    pub fn new(markup: &'static str) -> Self {
        let out = Out::default();
        let inserted = Arc::new(AtomicBool::new(false));
        let (in_head, before_body) = (Arc::clone(&inserted), Arc::clone(&inserted));
        let settings = Settings::new_send()
            .append_element_content_handler(element!("head", move |el| {
                if !in_head.swap(true, Ordering::Relaxed) {
                    el.prepend(markup, ContentType::Html);
                }
                Ok(())
            }))
            .append_element_content_handler(element!("body", move |el| {
                if !before_body.swap(true, Ordering::Relaxed) {
                    el.before(markup, ContentType::Html);
                }
                Ok(())
            }))
            .with_memory_settings(
                MemorySettings::new()
                    .with_max_allowed_memory_usage(MEMORY)
                    .with_graceful_bail_out_on_memory_limit_exceeded(true),
            )
            .with_graceful_bail_out_on_content_handler_error(true)
            .with_strict(false);
        Inserter {
            rewriter: Some(HtmlRewriter::new(settings, out.clone())),
            out,
            inserted,
        }
    }

    /// Feeds a chunk of the page; what may go out now. After the markup went in (or the
    /// rewriter gave up) chunks pass unchanged.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        let Some(r) = self.rewriter.as_mut() else {
            return Bytes::copy_from_slice(chunk);
        };
        if r.write(chunk).is_err() {
            // Bailed out: the held bytes are already in `out`, as they came.
            self.rewriter = None;
            return self.out.take();
        }
        if self.inserted.load(Ordering::Relaxed) {
            self.finish();
        }
        self.out.take()
    }

    /// The page ended: whatever the rewriter still holds.
    pub fn end(&mut self) -> Bytes {
        self.finish();
        self.out.take()
    }

    fn finish(&mut self) {
        if let Some(r) = self.rewriter.take() {
            // An error here has flushed what was held (graceful bail-out) or has nothing left.
            let _ = r.end();
        }
    }

    /// Whether the markup went in.
    pub fn inserted(&self) -> bool {
        self.inserted.load(Ordering::Relaxed)
    }
}

/// A page body streamed through an [`Inserter`].
pub struct Page {
    inner: Body,
    inserter: Inserter,
    done: bool,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page").field("done", &self.done).finish()
    }
}

impl Page {
    pub fn new(inner: Body, markup: &'static str) -> Self {
        Page {
            inner,
            inserter: Inserter::new(markup),
            done: false,
        }
    }

    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.done = true;
                    let rest = self.inserter.end();
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = self.inserter.feed(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    // Trailers: what the rewriter holds first would be lost; the page ends here.
                    Err(trailers) => {
                        self.done = true;
                        let rest = self.inserter.end();
                        if !rest.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(rest))));
                        }
                        return Poll::Ready(Some(Ok(trailers)));
                    }
                },
            }
        }
    }

    pub fn is_end_stream(&self) -> bool {
        self.done
    }

    pub fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "<script>x()</script>";

    fn run(chunks: &[&str]) -> (String, bool) {
        let mut i = Inserter::new(TAG);
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&i.feed(c.as_bytes()));
        }
        out.extend_from_slice(&i.end());
        (String::from_utf8(out).unwrap_or_default(), i.inserted())
    }

    #[test]
    fn the_markup_goes_first_in_head_whatever_the_chunks() {
        let page = "<!DOCTYPE html><html lang=en><HEAD data-x=\"1\"><title>t</title></head><body>x</body></html>";
        let want = page.replace("<HEAD data-x=\"1\">", &format!("<HEAD data-x=\"1\">{TAG}"));
        for split in 1..page.len() {
            let (got, inserted) = run(&[&page[..split], &page[split..]]);
            assert_eq!(got, want, "split at {split}");
            assert!(inserted);
        }
    }

    #[test]
    fn comments_scripts_and_header_elements_are_not_head() {
        let page = "<!doctype html><!-- <head> --><html><script>var s='<head>'</script><header>h</header><body>b</body></html>";
        let (got, inserted) = run(&[page]);
        assert!(inserted);
        assert_eq!(got.matches(TAG).count(), 1, "{got}");
        assert!(got.contains(&format!("</header>{TAG}<body>")), "{got}");
    }

    #[test]
    fn a_fragment_without_head_or_body_is_unchanged() {
        let (got, inserted) = run(&["<p>hello", "</p>"]);
        assert_eq!(got, "<p>hello</p>");
        assert!(!inserted);
    }

    #[test]
    fn after_the_markup_the_rest_passes_untouched() {
        let rest = "<div><head>not again</head></div>";
        let (got, _) = run(&["<html><head></head><body>", rest]);
        assert_eq!(got, format!("<html><head>{TAG}</head><body>{rest}"));
    }

    #[test]
    fn a_page_with_a_huge_tag_is_never_cut() {
        let attr = "a".repeat(MEMORY * 2);
        let page = format!("<html x=\"{attr}\"><head></head></html>");
        let chunks: Vec<&str> = page
            .as_bytes()
            .chunks(8192)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        let (got, inserted) = run(&chunks);
        // Within the memory bound the script goes in; beyond it the page passes as it came.
        // Either way every byte of it arrives.
        let with_tag = page.replace("<head>", &format!("<head>{TAG}"));
        assert_eq!(got, if inserted { with_tag } else { page });
    }
}
