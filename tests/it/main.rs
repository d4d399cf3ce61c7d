//! The one integration-test binary: real redis-server processes, the real gateway with real
//! TLS on loopback, a real upstream, and an HTTP client talking over sockets as a browser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod admin;
mod atomic;
mod background;
mod bad_input;
mod browser;
mod cli;
mod deploy;
mod faults;
mod iis;
mod keyed_records;
mod logs;
mod mail;
mod mfa_flow;
mod pages;
mod passkey;
mod prelogin;
mod proxy;
mod remember;
mod reset_code;
mod revocation_order;
mod scaleout;
mod shared_address;
mod smuggling;
mod soak;
mod tunnels;
