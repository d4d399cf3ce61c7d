//! The gateway's pages in a real browser: headless Chromium driven through ChromeDriver.

mod flows;
mod harness;
