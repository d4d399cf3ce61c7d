//! Everything `mfa-gateway demo` needs besides the gateway itself.
//!
//! The gateway sits in front of a legacy VMS it must not change. To show it working (and to
//! give the integration tests a real upstream) the crate carries a small stand-in for that
//! VMS in [`vms`]: a login form, a session cookie and the six VMS roles, served over plain
//! HTTP on loopback.

pub mod vms;
