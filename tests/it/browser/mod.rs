//! The gateway's pages in a real browser: headless Chromium driven through ChromeDriver.
//!
//! The other modules speak HTTP as a browser would; these let one do it. A browser is what
//! finds what a hand-written client cannot: a form whose `required` field stops the submit, a
//! button that posts the wrong `action`, a cookie Chromium refuses, a page that needs a
//! script, a label that points at nothing, a layout that breaks on a phone. Every flow goes
//! through the real pages (the demo VMS's login form, then the gateway's), with the code
//! computed from the pairing code read off the enrollment page.
//!
//! On every gateway page a flow reaches, [`harness::Browser::check_page`]:
//! - checks the page's language (`<html lang>`) against the browser's `Accept-Language`;
//! - runs axe-core (vendored in tests/vendor/axe-core/) and fails on any violation of impact
//!   serious or critical, and on moderate or minor ones not justified in
//!   `harness::ACCEPTED`;
//! - takes full-page screenshots 390 and 1280 CSS pixels wide, written to
//!   `target/browser-screenshots/<test>/` when the test fails, or always with
//!   `MFAGW_SCREENSHOTS=1`.
//!
//! Chromium and ChromeDriver come from Debian's `chromium` and `chromium-driver` packages
//! (`./scripts/test` installs them). Without them these tests fail and say so: a suite that
//! skips its browser tests silently would pass with the pages never having been opened.
//!
//! Run time: in `flows` a story in English and the same in Dutch, enrollment and challenge
//! without JavaScript in both languages; in `error_pages` the expired, 502 and 504 pages in
//! both; in `scripts` a login posted by `fetch`, a polling page whose session ends, and a
//! single-page front end with and without the navigation helper. Each test has its own
//! Chromium; about two minutes together on two cores.

mod error_pages;
mod flows;
mod harness;
mod passkeys;
mod scripts;
