//! E-mail to users: a short notice of every change to their MFA, and the code of a first
//! enrollment confirmed by e-mail (`mfa.first_enrollment = "email_code"`).
//!
//! Nothing here is on the sign-in path but one command. An event becomes a [`Job`] that is
//! added to the outbox in Redis (`store::outbox`: one `ZADD`); whether that works or not, the
//! sign-in goes on (a failure is logged and counted, `result="enqueue_failed"`). The
//! [`sender`] delivers the jobs: on one instance at a time (a lease in Redis, renewed while it
//! works), with retries and exponential back-off, and moves a job that keeps failing to a dead
//! list after `mail.max_attempts`. A job leaves the outbox only once the mail server accepted
//! its message, so a gateway that is killed or restarted loses nothing (a job it was sending
//! comes due again and may be sent twice: at least once, never none).
//!
//! Jobs hold the user's name, what happened, when, from which client address, and (for a
//! reset) which MSP: nothing secret. The one exception is the e-mailed enrollment code, which
//! a job holds sealed with the key ring and which is never sent after it expired. The address
//! and language are read when the job is sent (the address the VMS last reported, kept at
//! every sign-in; the browser's language at the last sign-in, else `mail.language`), so one
//! command is all an event costs and a reset while the user is away still reaches them.
//!
//! Which audit records become mails is [`notify`]'s: the audit trail shows every record to
//! it ([`crate::audit::Observer`]), so every place that changes a user's MFA, now or later,
//! notifies by writing its audit record.
//!
//! ```text
//!  audit record ─► notify ─► Outbox::push ─► P{mail}:q ─► sender (lease) ─► SMTP
//!                                                │  fails: back-off, retry
//!                                                └─ after max_attempts ─► P{mail}:dead
//! ```

pub mod notify;
pub mod sender;
pub mod text;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::auth::crypto::{KeyRing, Purpose};
use crate::metrics::{MailResult, Metrics};
use crate::store::Store;

/// What a mail is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An authenticator app was set up (first enrollment, or after a reset).
    Enrolled,
    /// The user replaced their phone (a new app) on the settings page.
    PhoneReplaced,
    /// The user turned MFA off on the settings page.
    MfaDisabled,
    /// An MSP (or the command line) disconnected the user's MFA.
    Reset,
    /// A recovery code was used to sign in.
    RecoveryCodeUsed,
    /// New recovery codes were made (the old ones no longer work).
    RecoveryCodesIssued,
    /// A browser was remembered: it signs in without a code for a while.
    BrowserRemembered,
    /// The code that confirms a first enrollment (the one mail with a code in it).
    EmailCode,
    /// A passkey or security key was added.
    PasskeyAdded,
    /// A passkey was removed by the user.
    PasskeyRemoved,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Enrolled,
        Kind::PhoneReplaced,
        Kind::MfaDisabled,
        Kind::Reset,
        Kind::RecoveryCodeUsed,
        Kind::RecoveryCodesIssued,
        Kind::BrowserRemembered,
        Kind::EmailCode,
        Kind::PasskeyAdded,
        Kind::PasskeyRemoved,
    ];
}

/// One mail to send, as the outbox keeps it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Random: makes every job unique in the outbox.
    pub id: String,
    /// The user it is for (their address is looked up when it is sent).
    pub user: String,
    pub kind: Kind,
    /// When it happened (Unix seconds).
    pub at: u64,
    /// The client address it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Who did it, when it was not the user (a reset: the MSP's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// A reset's reason, only with `mail.include_reset_reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Recovery codes left (a recovery code used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u32>,
    /// The e-mailed code, sealed with the key ring (base64url), `EmailCode` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_code: Option<String>,
    /// Not sent after this (Unix seconds): an e-mailed code's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// Deliveries tried so far.
    #[serde(default)]
    pub attempts: u32,
    /// Why the last delivery failed (in the dead list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Job {
    pub fn new(user: &str, kind: Kind, at: u64) -> Self {
        Job {
            id: crate::auth::crypto::random_token(),
            user: user.to_string(),
            kind,
            at,
            client: None,
            by: None,
            reason: None,
            remaining: None,
            sealed_code: None,
            expires: None,
            attempts: 0,
            error: None,
        }
    }
}

/// The additional data a sealed code is bound to: the user it was made for.
fn code_aad(user: &str) -> Vec<u8> {
    [b"mail-code\n".as_slice(), user.as_bytes()].concat()
}

/// Seals an e-mailed code for its job.
pub fn seal_code(keys: &KeyRing, user: &str, code: &str) -> Option<String> {
    use base64::Engine as _;
    keys.seal(Purpose::Challenge, &code_aad(user), code.as_bytes())
        .ok()
        .map(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// Opens the code of a job (`None` if it is not one of ours).
pub fn open_code(keys: &KeyRing, user: &str, sealed: &str) -> Option<String> {
    use base64::Engine as _;
    let blob = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sealed)
        .ok()?;
    let plain = keys.open(Purpose::Challenge, &code_aad(user), &blob).ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// Adds jobs to the outbox, and wakes this instance's sender.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    metrics: Arc<Metrics>,
    wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> Self {
        Outbox {
            store,
            metrics,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Adds `job`, due at once: one command. Its failure is logged and counted, never
    /// returned: no sign-in waits for, or fails because of, a mail. False if it failed.
    pub async fn push(&self, job: &Job, now_ms: u64) -> bool {
        let json = match serde_json::to_string(job) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "mail job could not be encoded");
                self.metrics.mail(MailResult::EnqueueFailed);
                return false;
            }
        };
        match self.store.outbox_push(&json, now_ms).await {
            Ok(()) => {
                self.metrics.mail(MailResult::Queued);
                self.wake.notify_one();
                true
            }
            Err(e) => {
                tracing::warn!(user = %job.user, kind = ?job.kind, error = %e, "mail not queued (the store did not take it); the change itself is done");
                self.metrics.mail(MailResult::EnqueueFailed);
                false
            }
        }
    }

    /// What this instance's sender waits on between polls.
    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.wake)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}
