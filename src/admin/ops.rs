//! The administration operations shared by the web pages, the API and the command line.
//!
//! * **reset** (the lost-phone case, "disconnect MFA"): ends every approved session of the
//!   user on every gateway instance (a user entry in the revocation feed), then deletes the
//!   user's secret and recovery codes and notes the time (so a reset never reopens an
//!   enrollment grace period), and records who did it and why. The revocation comes first
//!   because it is idempotent: a reset that fails half-way leaves either nothing changed (the
//!   revocation could not be published; the secret stays) or sessions ended with the secret
//!   still there — never a deleted secret with old sessions still approved. A failure answers
//!   503 and is audited (`reset_failed`, with the stage).
//!   A reset also forgets every browser the user chose to remember (`mfa::remember`;
//!   `browser_forgotten` audited with the count, then gone with the secret in the store's
//!   same step).
//!   With `admin.reset_requires_enrollment_code` (the default) the reset also makes a
//!   one-time enrollment code (`auth::enrollment_code`): 8 random digits, shown once to the
//!   MSP to read to the user on the phone, valid `admin.enrollment_code_hours`. Only its keyed
//!   hash is stored, in the store's same step as the secret's removal, so no moment exists
//!   in which the secret is gone and a password alone could pair a new app; the lock of the
//!   user's code step is lifted in that step too, so the code can be typed at once. Audited as
//!   `enrollment_code_issued` (its expiry, never the code).
//! * **new enrollment code**: for a user without an app (the code expired or was lost): the
//!   earlier code stops working in the same step. Ranked like a reset.
//! * **unlock**: lifts the lock of the user's MFA step (never anything in the VMS).
//! * **forget browsers**: forgets every remembered browser of the user: their next sign-in
//!   there asks for a code again.
//!
//! All three are ranked: an actor acting in a role (an administrator signed in on the pages, an
//! API token) may reset or unlock only users of the roles `admin.can_reset` lists for that
//! role, and never themselves; a refusal is audited (`admin_action_refused`) and nothing is
//! changed. The command line is an operator on the host and is not ranked.
//! * **status**: what an MSP needs to help: MFA on or off and its methods (the app, enrolled
//!   since and last use; the passkeys, each with its name, when it was added and last used),
//!   lock, role and the policy state of that role today, recovery codes left, recent events.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::{ActorKind, Audit, Event, Record};
use crate::auth::crypto::KeyRing;
use crate::gate::revocation::Revocations;
use crate::policy::{MfaState, Policy};
use crate::store::{IssueResult, NewEnrollmentCode, Store, StoreError};

/// Who performs an operation.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub name: String,
    pub client: Option<String>,
    /// What the actor may change.
    pub rank: Rank,
}

/// What an actor may reset or unlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rank {
    /// The break-glass command line: an operator on the gateway host, who could change
    /// Redis directly anyway.
    Unrestricted,
    /// An actor acting in a policy role: users of the roles `admin.can_reset` lists for it,
    /// never `user` (the actor's own user key, for a person; `None` for an API token).
    Role { role: String, user: Option<String> },
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The actor's own MFA.
    OwnAccount,
    /// The user's role is above the actor's (or not known).
    Rank {
        actor_role: String,
        target_role: Option<String>,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OwnAccount => {
                f.write_str("nobody may reset or unlock their own MFA; ask another administrator")
            }
            Refusal::Rank {
                actor_role,
                target_role: Some(t),
            } => write!(
                f,
                "the role {actor_role} may not reset or unlock users of the role {t} (admin.can_reset)"
            ),
            Refusal::Rank {
                actor_role,
                target_role: None,
            } => write!(
                f,
                "the user's role is not known, and the role {actor_role} may reset or unlock only users of the roles admin.can_reset lists for it"
            ),
        }
    }
}

/// What an operation can fail with.
#[derive(Debug)]
pub enum OpError {
    Store(StoreError),
    Refused(Refusal),
    /// The gateway does not know the user (never logged in through it, never enrolled, never
    /// reset): nothing was changed, and no record was created.
    UnknownUser,
    /// A new enrollment code for a user who has an app: nothing was changed.
    Enrolled,
    /// The key ring is not available (an enrollment code cannot be hashed): nothing changed.
    NoKeys,
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Store(e)
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Store(e) => e.fmt(f),
            OpError::Refused(r) => write!(f, "refused: {r}"),
            OpError::UnknownUser => f.write_str(
                "unknown user: the gateway has no record of this user (check the spelling); nothing was changed",
            ),
            OpError::Enrolled => f.write_str(
                "the user has an app connected: an enrollment code is needed only after a reset; nothing was changed",
            ),
            OpError::NoKeys => f.write_str(
                "the key ring (mfa.keys) is not available, so no enrollment code can be made; nothing was changed",
            ),
        }
    }
}

/// The operations that are ranked.
#[derive(Debug, Clone, Copy)]
enum Action {
    Reset,
    Unlock,
    ForgetBrowsers,
    EnrollmentCode,
}

/// What the operations need; the gateway and the command line each build one.
#[derive(Clone)]
pub struct Ops {
    pub store: Store,
    pub audit: Audit,
    pub policy: Arc<Policy>,
    pub approval_max_age: Duration,
    /// The running instance's own revocation view, updated at once (others follow the feed).
    pub revocations: Option<Arc<Revocations>>,
    /// The configuration: who may reset whom (`admin.can_reset`).
    pub config: Arc<crate::config::Config>,
    /// The key ring, for the keyed hash of enrollment codes (`None`: none can be made).
    pub keys: Option<Arc<KeyRing>>,
}

/// A one-time enrollment code just made: shown once to the MSP, never stored, logged or
/// audited (its `Debug` hides it).
pub struct IssuedCode {
    code: String,
    /// Until when it is valid (Unix seconds).
    pub until: u64,
}

impl IssuedCode {
    /// The code as it is shown and read out (`4821 0937`).
    pub fn grouped(&self) -> String {
        crate::auth::enrollment_code::grouped(&self.code)
    }
}

impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode")
            .field("code", &"<hidden>")
            .field("until", &self.until)
            .finish()
    }
}

/// What a reset did.
#[derive(Debug)]
pub struct ResetDone {
    /// Whether the user had an app.
    pub had: bool,
    /// The enrollment code to read to the user (`admin.reset_requires_enrollment_code`).
    pub code: Option<IssuedCode>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UserStatus {
    pub user: String,
    /// MFA is on: the authenticator app or at least one passkey is set up.
    pub enrolled: bool,
    /// The authenticator app is set up (`enrolled_at` and `last_used` are the app's).
    pub app: bool,
    pub enrolled_at: Option<u64>,
    pub last_used: Option<u64>,
    /// The user's passkeys and security keys, oldest first (nothing secret: no key, no id).
    pub passkeys: Vec<PasskeyStatus>,
    pub last_login: Option<u64>,
    /// Seconds the MFA step stays locked.
    pub locked_for_secs: Option<u64>,
    pub role: Option<String>,
    pub policy_state: Option<String>,
    pub recovery_codes_left: usize,
    pub reset_at: Option<u64>,
    /// Whether the gateway has seen this user at all.
    pub known: bool,
    /// Browsers the user chose to remember that can still skip the code (while enrolled, of
    /// the user's current revocation epoch).
    pub remembered_browsers: usize,
    /// Whether a one-time enrollment code is waiting to be used and still valid (never the
    /// code itself).
    pub enrollment_code_pending: bool,
    /// Until when the stored enrollment code is (or was) valid, if one is stored.
    pub enrollment_code_valid_until: Option<u64>,
    /// When the stored enrollment code was issued.
    pub enrollment_code_issued_at: Option<u64>,
}

/// A passkey as the status shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PasskeyStatus {
    pub name: String,
    pub added: u64,
    /// The last sign-in with it (`None`: not used yet).
    pub last_used: Option<u64>,
}

impl Ops {
    pub async fn status(&self, user: &str, now: u64) -> Result<UserStatus, StoreError> {
        let r = self.store.user(user).await?;
        let lock = self.store.user_lock(user).await?;
        let passkeys: Vec<PasskeyStatus> = self
            .store
            .passkeys(user)
            .await?
            .into_iter()
            .map(|p| PasskeyStatus {
                name: p.name,
                added: p.added,
                last_used: (p.last_used > 0).then_some(p.last_used),
            })
            .collect();
        let remembered = if r.enrolled() {
            self.store
                .remembered_browsers(user)
                .await?
                .iter()
                .filter(|b| b.epoch >= r.epoch)
                .count()
        } else {
            0
        };
        let ts = crate::clock::timestamp_of(now);
        let state = r
            .role
            .as_deref()
            .and_then(|role| self.policy.decide(role, ts))
            .map(|d| d.state);
        Ok(UserStatus {
            user: user.to_string(),
            enrolled: r.enrolled() || !passkeys.is_empty(),
            app: r.enrolled(),
            enrolled_at: r.enrolled_at,
            last_used: r.last_used,
            passkeys,
            last_login: r.last_login,
            locked_for_secs: lock.map(|d| d.as_secs().max(1)),
            role: r.role.clone(),
            policy_state: state.map(|s: MfaState| s.to_string()),
            recovery_codes_left: r
                .recovery
                .iter()
                .filter(|h| crate::auth::recovery::is_keyed(h))
                .count(),
            reset_at: r.reset_at,
            known: r.known(),
            remembered_browsers: remembered,
            enrollment_code_pending: r.enrollment_code_valid_until(now).is_some(),
            enrollment_code_valid_until: r.enroll_code.as_ref().and(r.enroll_code_until),
            enrollment_code_issued_at: r.enroll_code.as_ref().and(r.enroll_code_issued),
        })
    }

    /// Why `actor` may not reset or unlock `user`, whose role is `target_role`, if so (no
    /// audit: for showing or hiding the forms; [`Self::reset`] and [`Self::unlock`] decide).
    pub fn refusal(&self, actor: &Actor, user: &str, target_role: Option<&str>) -> Option<Refusal> {
        let Rank::Role {
            role,
            user: actor_user,
        } = &actor.rank
        else {
            return None;
        };
        if actor_user.as_deref() == Some(user) {
            return Some(Refusal::OwnAccount);
        }
        (!self.config.admin.may_reset(role, target_role)).then(|| Refusal::Rank {
            actor_role: role.clone(),
            target_role: target_role.map(str::to_string),
        })
    }

    /// Whether `actor` may reset or unlock `user`; a refusal is audited.
    async fn permit(
        &self,
        user: &str,
        actor: &Actor,
        action: Action,
        now: u64,
    ) -> Result<(), OpError> {
        let Rank::Role { .. } = &actor.rank else {
            return Ok(());
        };
        let target_role = self.store.user(user).await?.role;
        let Some(refusal) = self.refusal(actor, user, target_role.as_deref()) else {
            return Ok(());
        };
        let why = match &refusal {
            Refusal::OwnAccount => "own_account".to_string(),
            Refusal::Rank {
                actor_role,
                target_role,
            } => format!(
                "rank actor_role={actor_role} target_role={}",
                target_role.as_deref().unwrap_or("unknown")
            ),
        };
        let action = match action {
            Action::Reset => "reset",
            Action::Unlock => "unlock",
            Action::ForgetBrowsers => "forget_browsers",
            Action::EnrollmentCode => "enrollment_code",
        };
        let mut r = Record::new(Event::AdminActionRefused, now, actor.kind, &actor.name)
            .user(user)
            .detail(format!("action={action} {why}"));
        if let Some(c) = &actor.client {
            r = r.client(c);
        }
        self.audit.record(r).await;
        Err(OpError::Refused(refusal))
    }

    /// Disconnects MFA for a user: whether the user had an enrolled app, and the enrollment
    /// code to read to them (with `admin.reset_requires_enrollment_code`).
    pub async fn reset(
        &self,
        user: &str,
        actor: &Actor,
        reason: &str,
        now: u64,
    ) -> Result<ResetDone, OpError> {
        // An unknown user is refused before anything is written (the revocation below would
        // otherwise create a record); the delete checks it again in its own atomic step.
        if !self.store.user(user).await?.known() {
            return Err(OpError::UnknownUser);
        }
        self.permit(user, actor, Action::Reset, now).await?;
        // Made before anything is written: without keys, nothing changes.
        let code = if self.config.admin.reset_requires_enrollment_code {
            Some(self.new_code(user)?)
        } else {
            None
        };
        // The revocation first (publishing it twice is harmless): if it cannot be published,
        // nothing is deleted and the MSP is told to try again, rather than a secret gone while
        // the user's old sessions stay approved elsewhere.
        if let Err(e) = self.end_sessions(user, now).await {
            self.audit_failed_reset(user, actor, reason, now, "stage=revocation deleted=false")
                .await;
            return Err(e.into());
        }
        // Counted and audited here; the reset below removes them again in its own step, so
        // none remembered in between survives either.
        if let Err(e) = crate::mfa::remember::forget_all(
            &self.store,
            &self.audit,
            user,
            &forgetter(actor),
            "via=reset",
            now,
        )
        .await
        {
            self.audit_failed_reset(user, actor, reason, now, "stage=browsers deleted=false")
                .await;
            return Err(e.into());
        }
        let stored = code.as_ref().map(|(_, hash)| NewEnrollmentCode {
            hash,
            until: self.code_until(now),
        });
        let had = match self.store.reset(user, now, stored).await {
            Ok(Some(had)) => had,
            Ok(None) => return Err(OpError::UnknownUser),
            Err(e) => {
                self.audit_failed_reset(user, actor, reason, now, "stage=delete revoked=true")
                    .await;
                return Err(e.into());
            }
        };
        // And once more after the delete: a login that verified a code with the old secret
        // between the two steps got an approval at the first revocation's epoch, which this
        // second one ends (the per-user epoch is raised again).
        if let Err(e) = self.end_sessions(user, now).await {
            self.audit_failed_reset(
                user,
                actor,
                reason,
                now,
                "stage=second-revocation deleted=true",
            )
            .await;
            return Err(e.into());
        }
        let mut r = Record::new(Event::Reset, now, actor.kind, &actor.name)
            .user(user)
            .reason(reason)
            .detail(if had {
                "enrolled=true"
            } else {
                "enrolled=false"
            });
        if let Some(c) = &actor.client {
            r = r.client(c);
        }
        self.audit.record(r).await;
        let code = code.map(|(code, _)| IssuedCode {
            code,
            until: self.code_until(now),
        });
        if let Some(c) = &code {
            self.audit_code_issued(user, actor, c.until, "via=reset", now)
                .await;
        }
        Ok(ResetDone { had, code })
    }

    /// Until when a code made at `now` is valid.
    fn code_until(&self, now: u64) -> u64 {
        now.saturating_add(self.config.admin.enrollment_code_ttl.as_secs())
    }

    /// A new enrollment code for `user` and its keyed hash.
    fn new_code(&self, user: &str) -> Result<(String, String), OpError> {
        let keys = self.keys.as_deref().ok_or(OpError::NoKeys)?;
        let code = crate::auth::enrollment_code::new_code();
        let hash = crate::auth::enrollment_code::hash(keys, user, &code);
        Ok((code, hash))
    }

    async fn audit_code_issued(&self, user: &str, actor: &Actor, until: u64, via: &str, now: u64) {
        let mut r = Record::new(Event::EnrollmentCodeIssued, now, actor.kind, &actor.name)
            .user(user)
            .detail(format!(
                "{via} valid_until={}",
                crate::clock::timestamp_of(until)
            ));
        if let Some(c) = &actor.client {
            r = r.client(c);
        }
        self.audit.record(r).await;
    }

    /// A new one-time enrollment code for a user without an app (the earlier one, and a
    /// sign-in that typed it, stop working in the same step). Ranked like a reset.
    pub async fn issue_enrollment_code(
        &self,
        user: &str,
        actor: &Actor,
        now: u64,
    ) -> Result<IssuedCode, OpError> {
        let record = self.store.user(user).await?;
        if !record.known() {
            return Err(OpError::UnknownUser);
        }
        if record.enrolled() {
            return Err(OpError::Enrolled);
        }
        self.permit(user, actor, Action::EnrollmentCode, now)
            .await?;
        let (code, hash) = self.new_code(user)?;
        let until = self.code_until(now);
        match self
            .store
            .issue_enrollment_code(user, NewEnrollmentCode { hash: &hash, until }, now)
            .await?
        {
            IssueResult::Issued => {}
            IssueResult::Enrolled => return Err(OpError::Enrolled),
            IssueResult::Unknown => return Err(OpError::UnknownUser),
        }
        self.audit_code_issued(user, actor, until, "via=new_code", now)
            .await;
        Ok(IssuedCode { code, until })
    }

    /// Audits a reset that did not complete, and which part of it did.
    async fn audit_failed_reset(
        &self,
        user: &str,
        actor: &Actor,
        reason: &str,
        now: u64,
        detail: &str,
    ) {
        let mut r = Record::new(Event::ResetFailed, now, actor.kind, &actor.name)
            .user(user)
            .reason(reason)
            .detail(detail);
        if let Some(c) = &actor.client {
            r = r.client(c);
        }
        self.audit.record(r).await;
    }

    /// Ends every approved session of the user, on every instance: raises the user's
    /// revocation epoch in the store and publishes it (see `gate::revocation::revoke_user`).
    /// Returns the new epoch: an approval issued with it outlives the revocation.
    pub async fn end_sessions(&self, user: &str, now: u64) -> Result<u64, StoreError> {
        crate::gate::revocation::revoke_user(
            &self.store,
            self.revocations.as_deref(),
            user,
            now,
            self.approval_max_age,
        )
        .await
        .map(|r| match r {
            crate::store::revocation::Revocation::User { epoch, .. } => epoch.unwrap_or(0),
            _ => 0,
        })
    }

    /// Forgets every browser the user chose to remember (ranked like a reset, audited as
    /// `browser_forgotten`). Returns how many there were.
    pub async fn forget_browsers(
        &self,
        user: &str,
        actor: &Actor,
        now: u64,
    ) -> Result<usize, OpError> {
        if !self.store.user(user).await?.known() {
            return Err(OpError::UnknownUser);
        }
        self.permit(user, actor, Action::ForgetBrowsers, now)
            .await?;
        Ok(crate::mfa::remember::forget_all(
            &self.store,
            &self.audit,
            user,
            &forgetter(actor),
            "via=admin",
            now,
        )
        .await?)
    }

    /// Lifts the lock of the user's MFA step. Returns whether it was locked.
    pub async fn unlock(&self, user: &str, actor: &Actor, now: u64) -> Result<bool, OpError> {
        if !self.store.user(user).await?.known() && self.store.user_lock(user).await?.is_none() {
            return Err(OpError::UnknownUser);
        }
        self.permit(user, actor, Action::Unlock, now).await?;
        let Some(was) = self.store.unlock(user).await? else {
            return Err(OpError::UnknownUser);
        };
        let mut r = Record::new(Event::Unlocked, now, actor.kind, &actor.name)
            .user(user)
            .detail(if was { "locked=true" } else { "locked=false" });
        if let Some(c) = &actor.client {
            r = r.client(c);
        }
        self.audit.record(r).await;
        Ok(was)
    }
}

/// The actor as the audit of forgotten browsers names it.
fn forgetter(actor: &Actor) -> crate::mfa::remember::Forgetter<'_> {
    crate::mfa::remember::Forgetter {
        kind: actor.kind,
        name: &actor.name,
        client: actor.client.as_deref(),
    }
}

impl crate::gateway::Gateway {
    /// The administration operations of this instance.
    pub fn ops(&self) -> Ops {
        Ops {
            store: self.store.clone(),
            audit: self.audit.clone(),
            policy: self.policy.current(),
            approval_max_age: self.cfg.mfa.approval_max_age,
            revocations: Some(Arc::clone(&self.revocations)),
            config: Arc::clone(&self.cfg),
            keys: Some(Arc::clone(&self.keys)),
        }
    }
}
