//! The record of one revocation, as the store keeps it in the revocation feed (a Redis
//! stream of JSON entries, or the memory store's list).
//!
//! It lives in `store` because the store writes and reads it; what a revocation means for an
//! approval (epochs, logouts, the per-instance snapshot) is decided above, in
//! `gate::revocation`. The JSON form is shared by every instance and kept across versions, so
//! fields are only ever added, optional.

use serde::{Deserialize, Serialize};

/// One revocation, as stored in the feed (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// One approval ended (VMS logout).
    Session {
        /// The session hash (hex). Alone (no `approval`), as the previous version wrote it:
        /// version 1 approvals of this session end.
        hash: String,
        until: u64,
        /// The id of the approval that ends (hex).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval: Option<String>,
    },
    /// Every approval of a user read before the store reached `epoch` ends (MSP reset, MFA
    /// changes).
    User {
        hash: String,
        /// Unix second of the revoking instance, for instances of the previous version during
        /// a rolling upgrade; ignored when `epoch` is present.
        before: u64,
        until: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<u64>,
    },
}

impl Revocation {
    /// The Unix second after which the entry can be forgotten.
    pub fn until(&self) -> u64 {
        match self {
            Revocation::Session { until, .. } | Revocation::User { until, .. } => *until,
        }
    }
}
