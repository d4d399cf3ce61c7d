//! The Redis store: standalone, Sentinel or Cluster, through the `redis` crate on tokio.
//!
//! Connections are made lazily and re-made after failures, so the gateway starts and keeps
//! proxying while Redis is away; operations fail fast with
//! [`StoreError::Unavailable`](crate::store::StoreError::Unavailable) (the caller shows a 503
//! and fails closed) and succeed again as soon as Redis is back.
//!
//! * Standalone: a `ConnectionManager`, which reconnects by itself.
//! * Sentinel: the crate does not follow fail-overs, and a `ConnectionManager` would reconnect
//!   to the address it started with (after a fail-over: a dead server or a demoted replica).
//!   So the master is asked of the sentinels and reached over a plain multiplexed connection.
//!   Any error that is not plainly the command's own (a dead or killed connection, a timeout,
//!   `READONLY` from a demoted master, ...) drops that connection, and the next operation asks
//!   the sentinels again. Every [`SENTINEL_RECHECK`] the sentinels are also asked in the
//!   background whether the master is still the same one, for a master that was replaced
//!   while the gateway's connection to it stayed up (e.g. one cut off from the sentinels).
//! * Cluster: `ClusterConnection`, which follows slot moves and fail-overs by itself; every
//!   script and multi-key command touches keys of one hash slot (`{u:...}`, `{a:...}`).
//!
//! Acknowledged writes: Redis replicates asynchronously, so a write the master acknowledged is
//! lost if the master dies before a replica has it. In sentinel mode the writes a user or an
//! MSP is told about, or that a security decision rests on, are followed by `WAIT 1`:
//! enrollments and removing them, revocations (resets, logouts) and their epochs, MSP
//! unlocks, and every attempt taken at a code (the count and the lock it sets), before that
//! code is checked. See `conn::Connections::durable` for the trade-off.
//!
//! # Layout
//!
//! - `conn`: the connection per mode, fail-over handling, and acknowledged writes.
//! - `ops`: the store operations (keys, commands, script calls), one method each.
//! - `scripts`: the Lua scripts, each one atomic step.
//! - `mail_ops`: the mail outbox, the sender's lease, contact fields, e-mailed codes (with
//!   their scripts).

mod conn;
mod mail_ops;
mod ops;
mod scripts;

use std::sync::Arc;

pub use conn::SENTINEL_RECHECK;

use crate::config::Redis as RedisConfig;
use conn::Connections;
use scripts::Scripts;

/// The Redis store: a handle that is cheap to clone (every clone shares the connection).
#[derive(Clone)]
pub struct RedisStore {
    conn: Connections,
    scripts: Arc<Scripts>,
    key_prefix: Arc<str>,
}

impl RedisStore {
    pub fn new(cfg: &RedisConfig) -> Self {
        Self {
            conn: Connections::new(cfg),
            scripts: Arc::new(Scripts::new()),
            key_prefix: Arc::from(cfg.key_prefix.as_str()),
        }
    }
}
