//! `mfa-gateway`: a TLS-terminating reverse proxy that adds TOTP multi-factor authentication
//! in front of a legacy Vendor Management System (VMS) without changing it.
//!
//! The crate is organised by concern; `main.rs` is only the command line.

pub mod tls;
