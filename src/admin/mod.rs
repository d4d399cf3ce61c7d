//! MSP administration: what an MSP (or an administrator) does for users who lost their phone
//! or locked themselves out, through the web pages (`web::admin`), the JSON API for automation
//! (`web::admin_api`) and the break-glass command line (in `main.rs`), all on the same
//! operations ([`ops`]) so each path does exactly the same thing and leaves the same audit
//! trail; plus the key-ring and restore tools of the command line ([`reseal`], [`reapply`]).

pub mod ops;
pub mod reapply;
pub mod reseal;
