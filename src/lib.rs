//! `mfa-gateway`: a TLS-terminating reverse proxy that adds TOTP multi-factor authentication
//! in front of a legacy Vendor Management System (VMS) without changing it.
//!
//! Modules by concern:
//!
//! * [`config`]: the TOML configuration, read leniently and validated into typed values.
//! * [`server`], [`tls`]: listeners, TLS termination and certificate reload.
//! * [`proxy`]: the request phases, header rewriting, the upstream pool, upgrades.
//! * [`mfa`]: login interception, challenges, approvals, revocation, the MFA pages' logic.
//! * [`auth`]: TOTP maths and the key ring (pure, time passed in).
//! * [`policy`], [`live_policy`]: the dated role policy and its reloading.
//! * [`store`]: shared state in Redis (or memory for tests and the demo).
//! * [`pages`]: the HTML users see. [`metrics`]: Prometheus counters.
//! * [`mail`]: e-mail to users (notices of changes to their MFA), through an outbox in Redis.
//! * [`demo`]: a stand-in VMS and the `demo` command.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod gate;
pub mod gateway;
pub mod http;
pub mod layers;
pub mod live_policy;
pub mod mail;
pub mod metrics;
pub mod mfa;
pub mod pages;
pub mod periodic;
pub mod policy;
pub mod proxy;
pub mod route;
pub mod run;
pub mod server;
pub mod store;
pub mod tls;
pub mod vms_reading;
pub mod web;
