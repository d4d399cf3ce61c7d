//! The store's part of e-mail (`crate::mail`): the outbox of mail jobs, the sender's lease,
//! each user's address and language, and the codes of `mfa.first_enrollment = "email_code"`.
//!
//! Key layout (see the module docs of [`super`] for `P` and `U`):
//!
//! ```text
//!   P{mail}:q         zset    mail jobs (JSON, each with a unique id), scored by the time
//!                             (Unix ms) they are next due; a job being sent is scored
//!                             "now + hold", so one whose sender died comes due again
//!   P{mail}:dead      list    jobs given up after mail.max_attempts, newest first (trimmed)
//!   P{mail}:lease     string  the owner token of the one sender (any instance); PX lease,
//!                             renewed by its owner
//!   P{u:U}            hash    + email (the address the VMS last reported), lang (en / nl,
//!                             of the browser at the last sign-in)
//!   P{u:U}:ecode      hash    an e-mailed enrollment code: h (its keyed hash, never the code),
//!                             sends; TTL from the first send
//! ```
//!
//! Every write is one command or one script on keys of one hash slot.

use std::time::Duration;

use super::{Store, StoreError};

/// What the gateway knows of how to reach a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// The address the VMS last reported.
    pub email: Option<String>,
    /// `en` or `nl`: the browser's language at the user's last sign-in.
    pub lang: Option<String>,
}

/// What [`Store::email_code_take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeTake {
    /// The stored code: used, and gone.
    Right,
    /// Another code (the stored one stays).
    Wrong,
    /// No code is pending: it expired, or none was sent.
    NonePending,
}

/// What [`Store::email_code_issue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeIssue {
    /// The code is stored (replacing any earlier one); this is send number `n`.
    Stored { n: u32 },
    /// The user had `max_sends` codes sent within the code's lifetime: nothing stored.
    Limit,
}

impl Store {
    /// Adds a mail job, due at `due_ms` (Unix ms): one command.
    pub async fn outbox_push(&self, job: &str, due_ms: u64) -> Result<(), StoreError> {
        dispatch!(self, s => s.outbox_push(job, due_ms).await)
    }

    /// Up to `max` jobs due at `now_ms`, each scored `now_ms + hold` in the same step (so no
    /// other sender takes them while this one works, and they come back if it dies).
    pub async fn outbox_claim(
        &self,
        now_ms: u64,
        hold: Duration,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.outbox_claim(now_ms, hold, max).await)
    }

    /// Removes a job (the mail server accepted it); false if it was not there.
    pub async fn outbox_done(&self, job: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.outbox_done(job).await)
    }

    /// Replaces a job by `next` (one more attempt counted), due at `due_ms`, in one step;
    /// false (nothing written) if `job` is no longer there.
    pub async fn outbox_retry(
        &self,
        job: &str,
        next: &str,
        due_ms: u64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.outbox_retry(job, next, due_ms).await)
    }

    /// Moves a job to the dead list as `dead`, keeping the newest `keep`, in one step.
    pub async fn outbox_bury(
        &self,
        job: &str,
        dead: &str,
        keep: usize,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.outbox_bury(job, dead, keep).await)
    }

    /// Jobs waiting (due or not) and jobs in the dead list.
    pub async fn outbox_depth(&self) -> Result<(u64, u64), StoreError> {
        dispatch!(self, s => s.outbox_depth().await)
    }

    /// The dead list, newest first (at most `max`).
    pub async fn outbox_dead(&self, max: usize) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.outbox_dead(max).await)
    }

    /// Takes or renews the sender's lease for `ttl` under `token`: true if `token` holds it
    /// now (it was free, expired, or already this token's).
    pub async fn mail_lease(&self, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        dispatch!(self, s => s.mail_lease(token, ttl).await)
    }

    /// Gives the sender's lease back if `token` holds it.
    pub async fn mail_lease_release(&self, token: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.mail_lease_release(token).await)
    }

    /// How to reach a user.
    pub async fn contact(&self, user: &str) -> Result<Contact, StoreError> {
        dispatch!(self, s => s.contact(user).await)
    }

    /// Stores the keyed hash of a new e-mailed enrollment code for `user`, unless
    /// `max_sends` were sent already within its lifetime `ttl` (counted from the first), in
    /// one step. A new code replaces the one before.
    pub async fn email_code_issue(
        &self,
        user: &str,
        hash: &str,
        ttl: Duration,
        max_sends: u32,
    ) -> Result<CodeIssue, StoreError> {
        dispatch!(self, s => s.email_code_issue(user, hash, ttl, max_sends).await)
    }

    /// Uses the e-mailed code whose keyed hash is `hash`, in one step: right (and the code is
    /// gone), wrong, or none pending.
    pub async fn email_code_take(&self, user: &str, hash: &str) -> Result<CodeTake, StoreError> {
        dispatch!(self, s => s.email_code_take(user, hash).await)
    }
}
