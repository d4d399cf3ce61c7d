//! MSP administration: what an MSP (or an administrator) does for users who lost their phone
//! or locked themselves out, through the web pages ([`web`]), the JSON API for automation
//! ([`api`]) and the break-glass command line (in `main.rs`), all on the same operations
//! ([`ops`]) so each path does exactly the same thing and leaves the same audit trail.

pub mod api;
pub mod ops;
pub mod reapply;
pub mod reseal;
pub mod web;
