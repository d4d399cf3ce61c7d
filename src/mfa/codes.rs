//! Checking what a user typed in a code field: a TOTP code from the enrolled app, a code
//! from a new app being paired, or a one-time recovery code.
//!
//! Every check here follows the same rules, wherever it is used (sign-in challenge,
//! enrollment, self-service):
//!
//! 1. before anything is checked, an attempt is taken in the store
//!    ([`crate::store::Store::take_attempt`]): one atomic step per user and per address that
//!    refuses when locked and otherwise counts the attempt, setting the lock when it is the
//!    last one allowed. Checking first and counting afterwards (two steps) let a burst of
//!    parallel requests all pass the lock check before any failure was counted; counting
//!    first bounds the codes checked per lock period by `mfa.max_failures`, whatever the
//!    concurrency;
//! 2. the code is compared in constant time; a TOTP time step is accepted once per user
//!    (replays fail), a recovery code is consumed atomically;
//! 3. a wrong code needs no further write (it was counted when taken); if it was the last
//!    attempt it answers "locked". A right code clears the user's count, lock and escalation
//!    and gives the address its attempt back;
//! 4. failures, locks, successes and recovery-code use go to the audit trail.

use std::time::Duration;

use crate::audit::{ActorKind, Event, Record};
use crate::auth::totp;
use crate::auth::{crypto::Purpose, recovery};
use crate::error::{GatewayError, InternalError};
use crate::gateway::Gateway;
use crate::metrics::MfaEvent;
use crate::store::{Attempt, Limits};

/// Who is being checked.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub user: &'a str,
    pub addr: &'a str,
    pub now: u64,
}

/// The result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Accepted. For a new secret: the time step of the code (used at enrollment).
    Accepted { step: u64 },
    /// A recovery code was accepted; this many remain.
    RecoveryAccepted { remaining: usize },
    /// Not a code at all (letters, wrong length).
    Format,
    /// Wrong (or replayed) and counted.
    Wrong,
    /// Wrong, and only this many attempts are left before the code step locks (said for the
    /// last [`WARN_LEFT`] ones).
    WrongLeft { left: u32 },
    /// Locked for about this many minutes.
    Locked { minutes: u64 },
    /// The user has no enrolled secret (reset meanwhile).
    NotEnrolled,
    /// No e-mailed code is pending (it expired): not counted.
    NonePending,
}

/// From how many attempts left a wrong code says how many remain.
pub const WARN_LEFT: u32 = 2;

pub fn minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

fn limits(gw: &Gateway) -> Limits {
    Limits {
        max_failures: gw.cfg.mfa.max_failures,
        lock: gw.cfg.mfa.lock_duration,
        max_failures_per_address: gw.cfg.mfa.max_failures_per_address,
    }
}

pub fn record(who: Who<'_>, event: Event) -> Record {
    Record::new(event, who.now, ActorKind::User, who.user)
        .user(who.user)
        .client(who.addr)
}

/// Takes an attempt (rule 1): `Err(Locked)` when the user or the address is locked.
async fn take(gw: &Gateway, who: Who<'_>) -> Result<Result<Attempt, Check>, GatewayError> {
    let attempt = gw
        .store
        .take_attempt(who.user, who.addr, limits(gw))
        .await?;
    Ok(match attempt {
        Attempt::Refused(d) => Err(Check::Locked {
            minutes: minutes(d),
        }),
        allowed => Ok(allowed),
    })
}

/// A wrong (or replayed) code, already counted when its attempt was taken: audited, and
/// `Locked` when that attempt was the last one allowed (the lock is in place already).
async fn fail(
    gw: &Gateway,
    who: Who<'_>,
    attempt: Attempt,
    event: MfaEvent,
) -> Result<Check, GatewayError> {
    let audit_event = if event == MfaEvent::Replay {
        Event::ReplayRejected
    } else {
        Event::VerifyFailure
    };
    fail_as(gw, who, attempt, event, record(who, audit_event)).await
}

/// [`fail`] with its own audit record.
async fn fail_as(
    gw: &Gateway,
    who: Who<'_>,
    attempt: Attempt,
    event: MfaEvent,
    audit: Record,
) -> Result<Check, GatewayError> {
    gw.metrics.mfa(event);
    gw.audit.record(audit).await;
    let set = match attempt {
        Attempt::Allowed {
            user_lock,
            addr_lock,
            ..
        } => user_lock.max(addr_lock),
        Attempt::Refused(d) => Some(d),
    };
    match set {
        Some(d) => {
            gw.metrics.mfa(MfaEvent::Locked);
            tracing::warn!(user = %who.user, minutes = minutes(d), "MFA step locked after repeated failures");
            gw.audit
                .record(
                    Record::new(Event::Locked, who.now, ActorKind::System, "gateway")
                        .user(who.user)
                        .client(who.addr)
                        .detail(format!("minutes={}", minutes(d))),
                )
                .await;
            Ok(Check::Locked {
                minutes: minutes(d),
            })
        }
        None => {
            // Said before the last attempts, so the lock does not come as a surprise. Read
            // after the count (display only: the limit is the store's).
            let used = gw.store.user_failures(who.user).await.unwrap_or(0);
            let left = gw.cfg.mfa.max_failures.saturating_sub(used);
            Ok(if left > 0 && left <= WARN_LEFT {
                Check::WrongLeft { left }
            } else {
                Check::Wrong
            })
        }
    }
}

async fn succeeded(
    gw: &Gateway,
    who: Who<'_>,
    attempt: Attempt,
    event: Event,
    detail: Option<String>,
) -> Result<(), GatewayError> {
    gw.store
        .attempt_succeeded(who.user, who.addr, attempt, limits(gw))
        .await?;
    gw.sign_ins.note(who.now, who.user, who.addr);
    gw.metrics.mfa(MfaEvent::VerifySuccess);
    let mut r = record(who, event);
    if let Some(d) = detail {
        r = r.detail(d);
    }
    gw.audit.record(r).await;
    Ok(())
}

/// A code from the user's enrolled app, or (when the policy gives them) a recovery code.
pub async fn check_enrolled(
    gw: &Gateway,
    who: Who<'_>,
    input: &str,
    allow_recovery: bool,
) -> Result<Check, GatewayError> {
    check_enrolled_against(gw, who, input, allow_recovery)
        .await
        .map(|(check, _)| check)
}

/// [`check_enrolled`], also returning the sealed secret the code was checked against (when
/// one was), for a later compare-and-set against exactly that secret (phone replacement).
pub async fn check_enrolled_against(
    gw: &Gateway,
    who: Who<'_>,
    input: &str,
    allow_recovery: bool,
) -> Result<(Check, Option<Vec<u8>>), GatewayError> {
    let recovery = if allow_recovery && gw.policy.current().recovery_codes() {
        recovery::normalize(input)
    } else {
        None
    };
    let code = totp::normalize_code(input);
    if recovery.is_none() && code.is_none() {
        return Ok((Check::Format, None));
    }
    let attempt = match take(gw, who).await? {
        Ok(a) => a,
        Err(locked) => return Ok((locked, None)),
    };
    let record_ = gw.store.user(who.user).await?;
    // A user with passkeys only (no app) still signs in with a recovery code.
    let passkey_only = record_.secret.is_none()
        && recovery.is_some()
        && !gw.store.passkeys(who.user).await?.is_empty();
    if record_.secret.is_none() && !passkey_only {
        gw.store
            .attempt_unused(who.user, who.addr, attempt, limits(gw))
            .await?;
        return Ok((Check::NotEnrolled, None));
    }
    if let Some(recovery) = recovery {
        let hashes = record_.recovery;
        let keys = std::sync::Arc::clone(&gw.keys);
        let user = who.user.to_string();
        // PBKDF2 over up to ten hashes: off the async workers. Keyed by the key ring: a
        // record planted in Redis without it matches nothing.
        let matched = tokio::task::spawn_blocking(move || {
            hashes
                .into_iter()
                .find(|h| recovery::verify(&keys, &user, &recovery, h))
        })
        .await
        .map_err(|e| InternalError::Other(e.to_string()))?;
        let remaining = match matched {
            Some(h) => gw.store.use_recovery(who.user, &h).await?,
            None => None,
        };
        let check = match remaining {
            Some(remaining) => {
                succeeded(
                    gw,
                    who,
                    attempt,
                    Event::RecoveryCodeUsed,
                    Some(format!("remaining={remaining}")),
                )
                .await?;
                gw.metrics.mfa(MfaEvent::RecoveryCodeUsed);
                Check::RecoveryAccepted { remaining }
            }
            None => fail(gw, who, attempt, MfaEvent::VerifyFailure).await?,
        };
        return Ok((check, record_.secret));
    }
    let (Some(code), Some(sealed)) = (code, record_.secret) else {
        return Ok((Check::Format, None));
    };
    let secret = gw
        .keys
        .open(Purpose::TotpSecret, who.user.as_bytes(), &sealed)
        .map_err(|e| InternalError::Crypto(format!("the secret of a user does not open: {e}")))?;
    let check = match totp::verify(&secret, &code, who.now, gw.cfg.mfa.window) {
        None => fail(gw, who, attempt, MfaEvent::VerifyFailure).await?,
        Some(step) => {
            if gw.store.accept_step(who.user, step, who.now).await? {
                succeeded(gw, who, attempt, Event::VerifySuccess, None).await?;
                Check::Accepted { step }
            } else {
                fail(gw, who, attempt, MfaEvent::Replay).await?
            }
        }
    };
    Ok((check, Some(sealed)))
}

/// A code from an app being paired with `secret` (not stored yet).
pub async fn check_new(
    gw: &Gateway,
    who: Who<'_>,
    secret: &[u8],
    input: &str,
) -> Result<Check, GatewayError> {
    let Some(code) = totp::normalize_code(input) else {
        return Ok(Check::Format);
    };
    let attempt = match take(gw, who).await? {
        Ok(a) => a,
        Err(locked) => return Ok(locked),
    };
    match totp::verify(secret, &code, who.now, gw.cfg.mfa.window) {
        None => fail(gw, who, attempt, MfaEvent::VerifyFailure).await,
        Some(step) => {
            gw.store
                .attempt_succeeded(who.user, who.addr, attempt, limits(gw))
                .await?;
            gw.sign_ins.note(who.now, who.user, who.addr);
            Ok(Check::Accepted { step })
        }
    }
}

/// The result of typing a one-time enrollment code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The right code: consumed, and the sign-in's ticket noted for its pairing.
    Accepted,
    /// Refused like a wrong app code: not a code, wrong (counted), or locked.
    Refused(Check),
    /// The pending code has expired (nothing counted): a new one comes from the MSP.
    Expired,
    /// No code is pending (used, replaced, never issued; nothing counted).
    NonePending,
    /// The user has an app meanwhile (nothing counted).
    Enrolled,
}

/// A one-time enrollment code typed in a sign-in (`auth::enrollment_code`), under the rules
/// of every code check: an attempt is taken first (a locked user or address is refused), a
/// wrong code counts toward the same lock as a wrong app code, and the store consumes the
/// right one in one step with the note of `ticket_hash` (the sign-in's ticket, hashed), so a
/// code works once. Audited as `enrollment_code_accepted` / `enrollment_code_refused`; the
/// code is never written anywhere.
pub async fn check_enrollment_code(
    gw: &Gateway,
    who: Who<'_>,
    input: &str,
    ticket_hash: &str,
) -> Result<CodeCheck, GatewayError> {
    use crate::auth::enrollment_code;
    use crate::store::UseCodeResult;
    let Some(code) = enrollment_code::normalize(input) else {
        return Ok(CodeCheck::Refused(Check::Format));
    };
    let attempt = match take(gw, who).await? {
        Ok(a) => a,
        Err(locked) => return Ok(CodeCheck::Refused(locked)),
    };
    let stored = gw.store.user(who.user).await?.enroll_code;
    // Under the key that made the stored hash; none matches when that key left the ring.
    let candidate = stored
        .as_deref()
        .and_then(|s| enrollment_code::hash_like(&gw.keys, s, who.user, &code))
        .unwrap_or_default();
    let used = gw
        .store
        .use_enrollment_code(who.user, &candidate, who.now, ticket_hash)
        .await?;
    let refused = |why: &str| record(who, Event::EnrollmentCodeRefused).detail(why.to_string());
    let unused = |why: &'static str, answer: CodeCheck| async move {
        gw.store
            .attempt_unused(who.user, who.addr, attempt, limits(gw))
            .await?;
        gw.audit.record(refused(why)).await;
        Ok::<_, GatewayError>(answer)
    };
    match used {
        UseCodeResult::Accepted => {
            gw.store
                .attempt_succeeded(who.user, who.addr, attempt, limits(gw))
                .await?;
            gw.audit
                .record(record(who, Event::EnrollmentCodeAccepted))
                .await;
            Ok(CodeCheck::Accepted)
        }
        UseCodeResult::Wrong => Ok(CodeCheck::Refused(
            fail_as(gw, who, attempt, MfaEvent::VerifyFailure, refused("wrong")).await?,
        )),
        UseCodeResult::Expired => unused("expired", CodeCheck::Expired).await,
        UseCodeResult::NonePending => unused("none_pending", CodeCheck::NonePending).await,
        UseCodeResult::Enrolled => unused("enrolled", CodeCheck::Enrolled).await,
    }
}

/// A code mailed to confirm a first enrollment (`mfa::email_code`), counted and locked like
/// an app's code: the attempt is taken first, the code used once in one step.
pub async fn check_email_code(
    gw: &Gateway,
    who: Who<'_>,
    input: &str,
) -> Result<Check, GatewayError> {
    let Some(code) = crate::mfa::email_code::normalize(input) else {
        return Ok(Check::Format);
    };
    let attempt = match take(gw, who).await? {
        Ok(a) => a,
        Err(locked) => return Ok(locked),
    };
    let h = crate::mfa::email_code::hash(gw, who.user, &code);
    match gw.store.email_code_take(who.user, &h).await? {
        crate::store::CodeTake::Right => {
            gw.store
                .attempt_succeeded(who.user, who.addr, attempt, limits(gw))
                .await?;
            Ok(Check::Accepted { step: 0 })
        }
        crate::store::CodeTake::Wrong => fail(gw, who, attempt, MfaEvent::VerifyFailure).await,
        // Expired (or never sent): nothing to guess at, so not counted; a new one is sent.
        crate::store::CodeTake::NonePending => {
            gw.store
                .attempt_unused(who.user, who.addr, attempt, limits(gw))
                .await?;
            Ok(Check::NonePending)
        }
    }
}

/// How many recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;

/// Makes new recovery codes, stores their hashes (replacing any old ones) and returns them.
/// `with`: the change they come with (`"enrollment"`, `"passkey"`), written in the audit
/// detail (`with=...`) so the user's mail names that change instead of the codes.
pub async fn issue_recovery_codes(
    gw: &Gateway,
    who: Who<'_>,
    actor: ActorKind,
    with: Option<&str>,
) -> Result<Vec<String>, GatewayError> {
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery::new_code()).collect();
    let to_hash = codes.clone();
    let keys = std::sync::Arc::clone(&gw.keys);
    let user = who.user.to_string();
    let hashes = tokio::task::spawn_blocking(move || {
        to_hash
            .iter()
            .map(|c| recovery::hash(&keys, &user, c))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| InternalError::Other(e.to_string()))?
    .map_err(|e| InternalError::Crypto(e.to_string()))?;
    gw.store.set_recovery(who.user, &hashes).await?;
    let detail = match with {
        Some(w) => format!("count={} with={w}", codes.len()),
        None => format!("count={}", codes.len()),
    };
    let mut r = record(who, Event::RecoveryCodesIssued).detail(detail);
    r.actor_kind = actor;
    gw.audit.record(r).await;
    Ok(codes)
}

/// Seals a new secret for storage.
pub fn seal_secret(gw: &Gateway, user: &str, secret: &[u8]) -> Result<Vec<u8>, GatewayError> {
    gw.keys
        .seal(Purpose::TotpSecret, user.as_bytes(), secret)
        .map_err(|e| InternalError::Crypto(e.to_string()).into())
}
