//! Shared state: challenges, enrollments, accepted time steps, failure counters, the
//! revocation feed.
//!
//! [`Store`] is an enum over two implementations with identical semantics:
//! [`redis::RedisStore`] (production, shared by every gateway instance) and
//! [`memory::MemoryStore`] (unit tests and the demo without Redis). Every operation that must
//! hold across instances is a single Redis command or a Lua script on keys of one hash slot,
//! so it is atomic on standalone Redis, Sentinel and Cluster alike.
//!
//! Key layout (`P` is `redis.key_prefix`, `U` the user name, percent-encoded):
//!
//! ```text
//!   P{u:U}            hash    secret (sealed), key_id, enrolled_at, last_used, last_step,
//!                             postponed, offer_declined, recovery (hashes, one per line),
//!                             role, last_login, reset_at, epoch (revocation epoch:
//!                             raised by every user revocation, never lowered),
//!                             ecode / ecode_until / ecode_issued (the keyed hash of a
//!                             pending one-time enrollment code, its expiry and issue time),
//!                             eticket (the hashed ticket of the sign-in that typed it)
//!   P{u:U}:pending    string  the secret shown at enrollment, not yet confirmed (sealed like
//!                             `secret`); TTL mfa.pending_enrollment_ttl; removed by the
//!                             enrollment. The user hash notes `pending_at` while one was shown
//!                             and not confirmed, so a replaced one can be told
//!   P{u:U}:rb         hash    remembered browsers (`mfa::remember`): field = random browser
//!                             id (hex), value = "first_seen last_used epoch agent"; a use
//!                             needs the user enrolled and `epoch` not below the user's; the
//!                             key expires remember_browser_days after the last remembering;
//!                             removed whole by a reset, a phone replacement, MFA turned off
//!                             and "forget all browsers"
//!   P{u:U}:pk         hash    passkeys and security keys (WebAuthn, `auth::passkey`): per
//!                             credential (id base64url) a field `m:ID` = "added last_used
//!                             counter name" and a field `k:ID` = the public key record
//!                             (JSON, nothing secret); added only while the user's epoch is
//!                             the sign-in's; a use raises the counter in the same step;
//!                             removed whole by a reset and by MFA turned off
//!   P{wa:H}           string  a WebAuthn ceremony's state (its challenge), H a hash of what
//!                             it is bound to (the sign-in's challenge, or the signed-in
//!                             session); TTL a few minutes; taken once (GETDEL)
//!   P{u:U}:fails      string  attempts (codes taken for checking, not yet cleared by a right
//!                             one); TTL 24 h from the last attempt
//!   P{u:U}:lock       string  present while the MFA step is locked (TTL = lock time)
//!   P{u:U}:level      string  locks so far, doubles the next lock (TTL 30 days after the
//!                             last lock; not reset by a right code)
//!   P{a:IP}:fails / :lock     the same per client address
//!   P{c:ID}           string  a withheld login (sealed with a key only the client's cookie
//!                             can re-derive), TTL = mfa.challenge_ttl
//!   P{rev}            stream  revocation feed (trimmed by age)
//!   P{pending}        zset    withheld sessions by expiry, to end them upstream
//!   P{users}          zset    user names (score 0): every user who logged in or enrolled,
//!                             for prefix search by administrators and key re-encryption
//!   P{audit}          stream  audit trail (trimmed to about admin.audit_max_records)
//!   P{mail}:q / :dead / :lease, and the user's email, lang, :ecode: see `outbox`
//!   P{pl:H}           hash    a pre-login session (`proxy::prelogin`), H the hex session hash
//!                             (never the session value): state ("anon" or "signing"),
//!                             user (once signing in); TTL vms.pre_login_ttl, then
//!                             mfa.challenge_ttl from the sign-in
//!   P{pl:H}:lease     string  same_id only: the owner token of the one request on that
//!                             session now at the VMS; TTL 2 x (upstream.connect_timeout +
//!                             upstream.response_timeout) + 5 s, given back (compare-and-
//!                             delete) once its answer is identified
//! ```

pub mod memory;
pub mod redis;
pub mod revocation;

use std::time::Duration;

use revocation::Revocation;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis answered with an error or not at all (I/O, timeout, fail-over in progress).
    #[error("redis")]
    Redis(#[source] ::redis::RedisError),
    #[error("store unreachable: {0}")]
    Unavailable(String),
    #[error("store returned unexpected data: {0}")]
    Corrupt(String),
}

/// What is stored about one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRecord {
    /// The TOTP secret sealed with the key ring (`None`: not enrolled).
    pub secret: Option<Vec<u8>>,
    pub enrolled_at: Option<u64>,
    pub last_used: Option<u64>,
    pub last_step: Option<u64>,
    pub postponed: u32,
    pub offer_declined: Option<u64>,
    /// Salted hashes of the unused recovery codes.
    pub recovery: Vec<String>,
    /// Policy role seen at the user's last login through the gateway.
    pub role: Option<String>,
    pub last_login: Option<u64>,
    /// When an MSP last disconnected MFA (a reset never reopens a grace period).
    pub reset_at: Option<u64>,
    /// The user's revocation epoch (0: never revoked), read with the rest of the record so a
    /// login's approval carries the epoch of the state it was decided on.
    pub epoch: u64,
    /// The keyed hash of the pending one-time enrollment code (`auth::enrollment_code`), set
    /// by an MSP reset or a new code and consumed by the right one.
    pub enroll_code: Option<String>,
    /// Until when the pending code is valid (Unix seconds).
    pub enroll_code_until: Option<u64>,
    /// When the pending code was issued.
    pub enroll_code_issued: Option<u64>,
    /// The hashed ticket of the sign-in that typed the right code: only that sign-in's
    /// enrollment may pair an app (removed by the enrollment or a new code).
    pub enroll_ticket: Option<String>,
}

impl UserRecord {
    pub fn enrolled(&self) -> bool {
        self.secret.is_some()
    }

    /// Whether the gateway knows the user: logged in through it, enrolled, or reset before.
    /// Administration acts only on known users and never creates a record.
    pub fn known(&self) -> bool {
        self.last_login.is_some() || self.enrolled() || self.reset_at.is_some()
    }

    /// Whether pairing an app needs the one-time enrollment code an MSP gave out (a code is
    /// pending, expired or not, or was typed in a sign-in that has not paired yet).
    pub fn enrollment_code_required(&self) -> bool {
        !self.enrolled() && (self.enroll_code.is_some() || self.enroll_ticket.is_some())
    }

    /// Until when a pending enrollment code is valid at `now`; `None` when there is none or
    /// it has expired.
    pub fn enrollment_code_valid_until(&self, now: u64) -> Option<u64> {
        self.enroll_code
            .as_ref()
            .and(self.enroll_code_until)
            .filter(|until| *until > now)
    }
}

/// A new one-time enrollment code as the store keeps it: its keyed hash and expiry.
#[derive(Debug, Clone, Copy)]
pub struct NewEnrollmentCode<'a> {
    pub hash: &'a str,
    pub until: u64,
}

/// The store's answer to [`Store::enroll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollResult {
    /// The app is paired.
    Enrolled,
    /// The user was enrolled already (in another session): nothing written.
    AlreadyEnrolled,
    /// Pairing needs the one-time enrollment code, and this sign-in has not typed it (or a
    /// new code was issued since): nothing written.
    CodeRequired,
}

/// The store's answer to [`Store::issue_enrollment_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueResult {
    Issued,
    /// The user has an app: no code is needed (nothing written).
    Enrolled,
    /// The gateway does not know the user (nothing written).
    Unknown,
}

/// The store's answer to [`Store::use_enrollment_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseCodeResult {
    /// The right code: consumed, and the ticket noted.
    Accepted,
    /// Not the pending code (nothing written).
    Wrong,
    /// The pending code has expired (nothing written).
    Expired,
    /// No code is pending (never issued, used already, or replaced by a reset without one).
    NonePending,
    /// The user has an app meanwhile.
    Enrolled,
}

/// A browser a user chose to remember (`mfa::remember`), as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedBrowser {
    /// The random browser id (32 hex digits), which only that browser's cookie carries.
    pub id: String,
    /// When it was remembered (a right code with the box ticked).
    pub first_seen: u64,
    /// The last sign-in that skipped the code with it (`first_seen` until then).
    pub last_used: u64,
    /// The user's revocation epoch at the sign-in that remembered it: a user revocation (an
    /// MSP reset, a replaced phone) raises the user's epoch and so ends it, even where the
    /// record itself were left behind.
    pub epoch: u64,
    /// A short, plain summary of the browser's `User-Agent` ("Firefox on Windows").
    pub agent: String,
}

/// Most remembered browsers kept per user; remembering one more forgets the least recently
/// used.
pub const MAX_REMEMBERED_BROWSERS: usize = 20;

impl RememberedBrowser {
    /// The stored value: `first_seen last_used epoch agent` (the agent last, spaces and all).
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {}",
            self.first_seen, self.last_used, self.epoch, self.agent
        )
    }

    /// Reads a stored value; `None` if it is not one.
    pub fn decode(id: &str, v: &str) -> Option<Self> {
        let mut parts = v.splitn(4, ' ');
        let first_seen = parts.next()?.parse().ok()?;
        let last_used = parts.next()?.parse().ok()?;
        let epoch = parts.next()?.parse().ok()?;
        let agent = parts.next().unwrap_or_default().to_string();
        Some(RememberedBrowser {
            id: id.to_string(),
            first_seen,
            last_used,
            epoch,
            agent,
        })
    }
}

/// Most passkeys kept per user.
pub const MAX_PASSKEYS: usize = 20;

/// A passkey or security key of a user, as the store keeps it (`P{u:U}:pk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// The credential id, base64url (public: the browser names it).
    pub id: String,
    /// The user's name for it ("YubiKey", "work laptop").
    pub name: String,
    pub added: u64,
    /// The last sign-in with it (0: none yet).
    pub last_used: u64,
    /// The authenticator's signature counter at the last use (0: it keeps none).
    pub counter: u32,
    /// The public key record (`webauthn_rs::prelude::Passkey` as JSON).
    pub key: String,
}

impl StoredPasskey {
    /// The `m:` field's value: `added last_used counter name` (the name last, spaces and all).
    pub fn encode_meta(&self) -> String {
        format!(
            "{} {} {} {}",
            self.added, self.last_used, self.counter, self.name
        )
    }

    /// Reads a stored credential from its two fields; `None` if they are not one.
    pub fn decode(id: &str, meta: &str, key: &str) -> Option<Self> {
        let mut parts = meta.splitn(4, ' ');
        let added = parts.next()?.parse().ok()?;
        let last_used = parts.next()?.parse().ok()?;
        let counter = parts.next()?.parse().ok()?;
        let name = parts.next().unwrap_or_default().to_string();
        Some(StoredPasskey {
            id: id.to_string(),
            name,
            added,
            last_used,
            counter,
            key: key.to_string(),
        })
    }

    /// Pairs the fields of a `P{u:U}:pk` hash into credentials (a lone half is skipped).
    pub fn decode_all(fields: &std::collections::HashMap<String, String>) -> Vec<Self> {
        let mut v: Vec<Self> = fields
            .iter()
            .filter_map(|(f, meta)| {
                let id = f.strip_prefix("m:")?;
                let key = fields.get(&format!("k:{id}"))?;
                Self::decode(id, meta, key)
            })
            .collect();
        v.sort_by(|a, b| a.added.cmp(&b.added).then(a.id.cmp(&b.id)));
        v
    }
}

/// The answer of [`Store::add_passkey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddPasskey {
    Added,
    /// The user was revoked (an MSP reset) since the ceremony began: nothing written.
    Revoked,
    /// The user has this credential already.
    Duplicate,
    /// The user has [`MAX_PASSKEYS`] already.
    Full,
    /// Since an MSP reset, adding a factor needs the one-time enrollment code, and this
    /// sign-in has not typed it: nothing written.
    CodeRequired,
}

/// What [`Store::delete_enrollment`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disabled {
    /// The app's secret was there.
    pub app: bool,
    /// How many passkeys were removed.
    pub passkeys: usize,
}

/// The answer of [`Store::use_passkey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsePasskey {
    /// Its last use and counter are now the sign-in's.
    Used,
    /// Removed (by the user, a reset) meanwhile: the sign-in is refused.
    Gone,
    /// The authenticator's counter did not move past the stored one (a cloned key, or the
    /// same assertion twice): refused.
    CounterRegressed,
}

/// Which methods must remain after a removal ([`Store::remove_passkey`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepMethod {
    /// MFA is enforced for the user's role: one allowed method must remain.
    pub enforced: bool,
    /// The role's methods include TOTP (the app counts as a remaining method).
    pub totp: bool,
    /// The role's methods include WebAuthn (another passkey counts).
    pub webauthn: bool,
}

/// The answer of [`Store::remove_passkey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovePasskey {
    Removed,
    /// No such credential (removed meanwhile).
    Gone,
    /// It is the last method the policy allows the user and MFA is enforced, or the user's
    /// last factor (MFA off is its own confirmed step): kept.
    LastMethod,
}

/// The store's answer to "may one more code be checked?" ([`Store::take_attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Check the code: the attempt is counted already. `user_lock` / `addr_lock` are set when
    /// this attempt used up the user's / the address's last allowance and the lock is already
    /// in place (a wrong code then answers "locked"; a right one lifts it again).
    Allowed {
        user_lock: Option<Duration>,
        addr_lock: Option<Duration>,
        /// Whether the address's count took this attempt: not when the user has passed MFA
        /// from this address before ([`KNOWN_PAIR_TTL`]), whom the address limit neither
        /// refuses nor counts (their own limit still does both).
        addr_counted: bool,
    },
    /// Locked (the user or the address) for this long: nothing may be checked.
    Refused(Duration),
}

impl Attempt {
    /// Whether this attempt set a lock of the address (its success must give it back).
    pub fn set_addr_lock(&self) -> bool {
        matches!(
            self,
            Attempt::Allowed {
                addr_lock: Some(_),
                ..
            }
        )
    }

    /// Whether the address's count took this attempt (so it gets it back).
    pub fn addr_counted(&self) -> bool {
        matches!(
            self,
            Attempt::Allowed {
                addr_counted: true,
                ..
            }
        )
    }
}

/// How long a right code from an address keeps that (address, user) pair known: the user's
/// codes from that address are then not refused (nor counted) by the address's limit, only by
/// the user's own, so one user's typos behind a shared address cannot lock everyone else out.
pub const KNOWN_PAIR_TTL: Duration = Duration::from_secs(30 * 86400);

/// What the store says about a pre-login session (`proxy::prelogin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreState {
    /// Nobody is signed in: the session may reach the VMS.
    Anonymous,
    /// The VMS said it is signed in; it waits for the MFA step.
    SigningIn,
    /// No record (never made, expired, dropped): treated as unapproved.
    Missing,
}

/// The answer of [`Store::pending_secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// A secret shown before and still pending (sealed): show it again.
    Existing(Vec<u8>),
    /// `fresh` is now the pending secret; `replaced`: an earlier one had been shown and not
    /// confirmed (it expired or no longer opens), so an app may hold an entry that will never
    /// work.
    Created { replaced: bool },
}

/// What the store says to a request on a same-id pre-login session (`proxy::prelogin::admit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreAdmit {
    /// Anonymous, and this request now holds the session's lease: it alone reaches the VMS
    /// with the session until it gives the lease back (or the lease expires).
    Leased,
    /// Anonymous, but another request (on any instance) holds the lease.
    Busy,
    /// The VMS said it is signed in; it waits for the MFA step.
    SigningIn,
    /// No record (never made, expired, dropped): treated as unapproved.
    Missing,
}

/// What the store says to a request on an approved same-id session (`proxy::prelogin::hold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerEnter {
    /// The request holds its share (a GET or HEAD, alongside others like it) or the whole
    /// session (any other method, alone) until it gives it back.
    Entered,
    /// Held by requests it cannot run alongside (on any instance).
    Busy,
    /// The session was signed in as somebody else and ended: it never reaches the VMS again.
    Ended,
}

/// How long an exclusive request's waiting flag on an approved same-id session lives unless it
/// is raised again (it is, on every poll): one that gave up without lowering it holds shared
/// requests off this long at most.
pub(super) const OWNER_WAIT_FLAG: Duration = Duration::from_secs(1);

/// Limits for failure counting.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_failures: u32,
    pub lock: Duration,
    pub max_failures_per_address: u32,
}

#[derive(Clone)]
pub enum Store {
    Redis(redis::RedisStore),
    Memory(memory::MemoryStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Store::Redis(_) => "Store::Redis",
            Store::Memory(_) => "Store::Memory",
        })
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Redis($s) => $e,
            Store::Memory($s) => $e,
        }
    };
}

mod outbox;
pub use outbox::{CodeIssue, CodeTake, Contact};

impl Store {
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Redis(_) => "redis",
            Store::Memory(_) => "memory",
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.ping().await)
    }

    pub async fn put_challenge(
        &self,
        id: &str,
        blob: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.put_challenge(id, blob, ttl).await)
    }

    pub async fn get_challenge(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, s => s.get_challenge(id).await)
    }

    /// Replaces a challenge that still exists, keeping its expiry (`ttl: None`) or giving it
    /// a new one. False if it is gone.
    pub async fn replace_challenge(
        &self,
        id: &str,
        blob: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.replace_challenge(id, blob, ttl).await)
    }

    /// The user's pending (shown, not yet confirmed) enrollment secret, in one atomic step:
    /// the stored one if there is one (and it is not `discard`, a stored one that no longer
    /// opens), else `fresh` is stored for `ttl`. Enrollment ([`Store::enroll`]) removes it.
    pub async fn pending_secret(
        &self,
        user: &str,
        fresh: &[u8],
        ttl: Duration,
        now: u64,
        discard: Option<&[u8]>,
    ) -> Result<Pending, StoreError> {
        dispatch!(self, s => s.pending_secret(user, fresh, ttl, now, discard).await)
    }

    /// Removes a challenge and says whether this caller removed it (exactly one caller wins).
    pub async fn take_challenge(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.take_challenge(id).await)
    }

    pub async fn user(&self, user: &str) -> Result<UserRecord, StoreError> {
        dispatch!(self, s => s.user(user).await)
    }

    /// Stores a confirmed enrollment unless the user is already enrolled; `step` is the time
    /// step of the confirming code, which can then not be used again. The user's pending
    /// secret (and the note that one was shown) goes with it, in the same step. Where an
    /// enrollment code is required ([`UserRecord::enrollment_code_required`]), only with the
    /// `ticket` (hashed) of the sign-in that typed it; the ticket goes too.
    pub async fn enroll(
        &self,
        user: &str,
        sealed: &[u8],
        key_id: &str,
        now: u64,
        step: u64,
        ticket: Option<&str>,
    ) -> Result<EnrollResult, StoreError> {
        dispatch!(self, s => s.enroll(user, sealed, key_id, now, step, ticket).await)
    }

    /// Accepts a time step once: true only if it is later than every step accepted before
    /// for this user (RFC 6238 5.2 one-time use), atomically across instances.
    pub async fn accept_step(&self, user: &str, step: u64, now: u64) -> Result<bool, StoreError> {
        dispatch!(self, s => s.accept_step(user, step, now).await)
    }

    /// Takes one attempt at a code for `user` from `addr`, before anything is checked: a
    /// locked address refuses first, counting nothing; then the user's attempt and then the
    /// address's are taken, each one atomic step in the store ("if locked: refused; else count
    /// the attempt, and set the lock if it was the last one allowed"). So at most
    /// `max_failures` codes of a user (and `max_failures_per_address` of an address) are ever
    /// checked per lock period, however many requests arrive at once on however many
    /// instances. A refusal by the user counts nothing for the address (a burst at a locked
    /// user never locks the address it comes from); an address that locked in between gives
    /// the user's attempt back. A user who passed MFA from this address within
    /// [`KNOWN_PAIR_TTL`] is neither refused nor counted by the address (only by their own
    /// limit): the address limit is for one client guessing at many users.
    pub async fn take_attempt(
        &self,
        user: &str,
        addr: &str,
        limits: Limits,
    ) -> Result<Attempt, StoreError> {
        dispatch!(self, s => s.take_attempt(user, addr, limits).await)
    }

    /// After a correct code: the user's count starts again, a lock (and escalation step) that
    /// this code's own attempt set is lifted, and the address gets its attempt back (a right
    /// code is not a failure of the address) and notes the user as known there for
    /// [`KNOWN_PAIR_TTL`], in the same step. The escalation otherwise stays: it decays 30
    /// days after the last lock, or an MSP lifts it.
    pub async fn attempt_succeeded(
        &self,
        user: &str,
        addr: &str,
        attempt: Attempt,
        limits: Limits,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.attempt_succeeded(user, addr, attempt, limits).await)
    }

    /// An attempt that checked nothing (the user turned out not to be enrolled): both counts
    /// get it back; a lock it set stays (it is lifted only by a correct code or an MSP).
    pub async fn attempt_unused(
        &self,
        user: &str,
        addr: &str,
        attempt: Attempt,
        limits: Limits,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.attempt_unused(user, addr, attempt, limits).await)
    }

    /// Removes the lock of a user (MSP unlock): whether there was a lock or a count, or
    /// `None` (nothing written) if the gateway does not know the user and nothing was there.
    pub async fn unlock(&self, user: &str) -> Result<Option<bool>, StoreError> {
        dispatch!(self, s => s.unlock(user).await)
    }

    /// "Not now" at an enrollment: counts the postponement only if the user is still not
    /// enrolled, in one step. `None` (nothing written) if a secret is stored meanwhile.
    pub async fn postpone_if_unenrolled(&self, user: &str) -> Result<Option<u32>, StoreError> {
        dispatch!(self, s => s.postpone_if_unenrolled(user).await)
    }

    /// "Not now" at an offer: notes the decline only if the user is still not enrolled, in one
    /// step. False (nothing written) if a secret is stored meanwhile.
    pub async fn decline_if_unenrolled(&self, user: &str, now: u64) -> Result<bool, StoreError> {
        dispatch!(self, s => s.decline_if_unenrolled(user, now).await)
    }

    pub async fn incr_postponed(&self, user: &str) -> Result<u32, StoreError> {
        dispatch!(self, s => s.incr_postponed(user).await)
    }

    pub async fn set_offer_declined(&self, user: &str, now: u64) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_offer_declined(user, now).await)
    }

    /// MFA turned off by the user: removes the app's secret, the recovery codes, every
    /// passkey and the remembered browsers, in one step; what was there.
    pub async fn delete_enrollment(&self, user: &str) -> Result<Disabled, StoreError> {
        dispatch!(self, s => s.delete_enrollment(user).await)
    }

    /// Remembers a withheld session so it can be ended upstream if its challenge expires.
    pub async fn pending_add(&self, member: &str, expires: u64) -> Result<(), StoreError> {
        dispatch!(self, s => s.pending_add(member, expires).await)
    }

    /// Forgets a withheld session (it was released). True if this caller removed it.
    pub async fn pending_remove(&self, member: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.pending_remove(member).await)
    }

    /// Withheld sessions whose challenge expired, each claimed by exactly one caller.
    pub async fn pending_due(&self, now: u64) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.pending_due(now).await)
    }

    /// Records a pre-login session (by its hex session hash) as anonymous for `ttl`, unless
    /// it is recorded in another state; true if it is anonymous now.
    pub async fn pre_open(&self, hash: &str, ttl: Duration) -> Result<bool, StoreError> {
        dispatch!(self, s => s.pre_open(hash, ttl).await)
    }

    /// The state of a pre-login session, read from the store itself (never cached).
    pub async fn pre_state(&self, hash: &str) -> Result<PreState, StoreError> {
        dispatch!(self, s => s.pre_state(hash).await)
    }

    /// Switches a pre-login session from anonymous to signing in for `user`, in one step, and
    /// keeps the record `keep` from now. Returns the state it had: only the caller that gets
    /// `Anonymous` switched it.
    pub async fn pre_sign_in(
        &self,
        hash: &str,
        user: &str,
        keep: Duration,
    ) -> Result<PreState, StoreError> {
        dispatch!(self, s => s.pre_sign_in(hash, user, keep).await)
    }

    /// Admits a request on a pre-login session, one at a time: if the record says anonymous
    /// and nobody holds the session's lease, takes it for `lease` under the owner `token`,
    /// in one step.
    pub async fn pre_admit(
        &self,
        hash: &str,
        token: &str,
        lease: Duration,
    ) -> Result<PreAdmit, StoreError> {
        dispatch!(self, s => s.pre_admit(hash, token, lease).await)
    }

    /// Gives a pre-login session's lease back if `token` still owns it.
    pub async fn pre_release(&self, hash: &str, token: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.pre_release(hash, token).await)
    }

    /// Lets a request on an approved same-id session reach the VMS: `exclusive` alone (no
    /// other request of the session in flight on any instance), otherwise alongside other
    /// shared holders, while no exclusive holder is in or waiting. Held for at most `lease`
    /// under the owner `token`.
    pub async fn owner_enter(
        &self,
        hash: &str,
        token: &str,
        exclusive: bool,
        lease: Duration,
    ) -> Result<OwnerEnter, StoreError> {
        dispatch!(self, s => s.owner_enter(hash, token, exclusive, lease).await)
    }

    /// Gives back what [`Store::owner_enter`] gave `token`.
    pub async fn owner_leave(
        &self,
        hash: &str,
        token: &str,
        exclusive: bool,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.owner_leave(hash, token, exclusive).await)
    }

    /// Marks an approved same-id session as ended for `keep`: every later
    /// [`Store::owner_enter`] answers [`OwnerEnter::Ended`].
    pub async fn owner_end(&self, hash: &str, keep: Duration) -> Result<(), StoreError> {
        dispatch!(self, s => s.owner_end(hash, keep).await)
    }

    /// Forgets a pre-login session: it no longer reaches the VMS.
    pub async fn pre_drop(&self, hash: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.pre_drop(hash).await)
    }

    /// Notes a login through the gateway: the role it had and the user name for search, and
    /// (in the same command) the address and language of `contact` that are known.
    pub async fn note_login(
        &self,
        user: &str,
        role: &str,
        now: u64,
        contact: &Contact,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.note_login(user, role, now, contact).await)
    }

    /// Records `vms_name` (the user name exactly as the VMS reported it) for the user key
    /// `user` (its normalised form) unless one is recorded already, in one atomic step, and
    /// returns the recorded name: a different one means two VMS accounts fold to one key.
    pub async fn claim_vms_name(
        &self,
        user: &str,
        vms_name: &str,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.claim_vms_name(user, vms_name).await)
    }

    /// Remembers a browser of `user` (`rec`), in one step and only while the user is enrolled
    /// and `rec.epoch` is not below the user's revocation epoch (false otherwise, nothing
    /// written): so a reset or a replaced phone between the code and this write leaves nothing
    /// behind. `replaces` (an earlier id of this browser) goes; so do records older than
    /// `keep` and, past [`MAX_REMEMBERED_BROWSERS`], the least recently used. The user's
    /// records expire `keep` after the last remembering.
    pub async fn remember_browser(
        &self,
        user: &str,
        rec: &RememberedBrowser,
        replaces: Option<&str>,
        now: u64,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.remember_browser(user, rec, replaces, now, keep).await)
    }

    /// Uses a remembered browser, in one step: while the user is enrolled, the record exists,
    /// its epoch is not below the user's and it was remembered less than `max_age` before
    /// `now`, its last use becomes `now` and it is returned. Otherwise `None` (a record of an
    /// older epoch is removed).
    pub async fn use_remembered_browser(
        &self,
        user: &str,
        id: &str,
        now: u64,
        max_age: Duration,
    ) -> Result<Option<RememberedBrowser>, StoreError> {
        dispatch!(self, s => s.use_remembered_browser(user, id, now, max_age).await)
    }

    /// The user's remembered browsers, most recently used first.
    pub async fn remembered_browsers(
        &self,
        user: &str,
    ) -> Result<Vec<RememberedBrowser>, StoreError> {
        let mut v = dispatch!(self, s => s.remembered_browsers(user).await)?;
        v.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    /// Forgets one remembered browser; true if it was there.
    pub async fn forget_browser(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.forget_browser(user, id).await)
    }

    /// Forgets every remembered browser of the user, in one step (on every instance: the
    /// record is in the shared store); how many there were.
    pub async fn forget_browsers(&self, user: &str) -> Result<usize, StoreError> {
        dispatch!(self, s => s.forget_browsers(user).await)
    }

    /// Replaces the user's recovery codes (salted hashes).
    pub async fn set_recovery(&self, user: &str, hashes: &[String]) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_recovery(user, hashes).await)
    }

    /// Consumes one recovery code by its stored hash, atomically. `None` if it was not (or
    /// no longer) there; otherwise how many remain.
    pub async fn use_recovery(&self, user: &str, hash: &str) -> Result<Option<usize>, StoreError> {
        dispatch!(self, s => s.use_recovery(user, hash).await)
    }

    /// The user's passkeys, oldest first.
    pub async fn passkeys(&self, user: &str) -> Result<Vec<StoredPasskey>, StoreError> {
        dispatch!(self, s => s.passkeys(user).await)
    }

    /// Adds a passkey, in one step: only while the user's revocation epoch is not above
    /// `epoch` (the one read when the ceremony began), the credential is new for the user and
    /// the user has fewer than [`MAX_PASSKEYS`]. Where an enrollment code is required
    /// ([`UserRecord::enrollment_code_required`]), only with the `ticket` (hashed) of the
    /// sign-in that typed it, which goes in the same step.
    pub async fn add_passkey(
        &self,
        user: &str,
        pk: &StoredPasskey,
        epoch: u64,
        ticket: Option<&str>,
    ) -> Result<AddPasskey, StoreError> {
        dispatch!(self, s => s.add_passkey(user, pk, epoch, ticket).await)
    }

    /// Records a sign-in with a passkey, in one step: only while it exists and its counter
    /// moves past the stored one (or both are 0), its last use, counter and key record become
    /// the sign-in's.
    pub async fn use_passkey(
        &self,
        user: &str,
        id: &str,
        counter: u32,
        key: &str,
        now: u64,
    ) -> Result<UsePasskey, StoreError> {
        dispatch!(self, s => s.use_passkey(user, id, counter, key, now).await)
    }

    /// Renames a passkey; false if it is gone.
    pub async fn rename_passkey(
        &self,
        user: &str,
        id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.rename_passkey(user, id, name).await)
    }

    /// Removes a passkey, in one step with the check that an allowed method remains where
    /// `keep` says one must (the app's secret and the other passkeys are read in that step).
    pub async fn remove_passkey(
        &self,
        user: &str,
        id: &str,
        keep: KeepMethod,
    ) -> Result<RemovePasskey, StoreError> {
        dispatch!(self, s => s.remove_passkey(user, id, keep).await)
    }

    /// Counts a postponed passkey set-up only while the user has no passkey; `None` if the
    /// user has one (set up meanwhile in another session), else the postponements so far.
    pub async fn postpone_unless_passkey(&self, user: &str) -> Result<Option<u32>, StoreError> {
        dispatch!(self, s => s.postpone_unless_passkey(user).await)
    }

    /// Keeps a WebAuthn ceremony's state under `key` for `ttl`, replacing any earlier one.
    pub async fn put_ceremony(
        &self,
        key: &str,
        state: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.put_ceremony(key, state, ttl).await)
    }

    /// Takes a ceremony's state: it is gone afterwards, so exactly one caller gets it.
    pub async fn take_ceremony(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, s => s.take_ceremony(key).await)
    }

    /// MSP reset: removes secret, recovery codes, passkeys and remembered browsers and notes the time.
    /// True if the user was enrolled; `None` (nothing written, in the same atomic step) if the gateway does
    /// not know the user ([`UserRecord::known`]).
    ///
    /// With `code`, the one-time enrollment code the next pairing needs is stored in the same
    /// step (replacing any earlier one), and the lock of the user's code step is lifted so
    /// the code can be typed; without, any earlier code or ticket goes.
    pub async fn reset(
        &self,
        user: &str,
        now: u64,
        code: Option<NewEnrollmentCode<'_>>,
    ) -> Result<Option<bool>, StoreError> {
        dispatch!(self, s => s.reset(user, now, code).await)
    }

    /// Stores a new one-time enrollment code for a user without an app, in one step: the
    /// earlier code, and a ticket of a sign-in that typed it, stop working.
    pub async fn issue_enrollment_code(
        &self,
        user: &str,
        code: NewEnrollmentCode<'_>,
        now: u64,
    ) -> Result<IssueResult, StoreError> {
        dispatch!(self, s => s.issue_enrollment_code(user, code, now).await)
    }

    /// Consumes the pending enrollment code if `candidate` is its stored hash and it is valid
    /// at `now`, noting `ticket` (hashed) for the enrollment that follows, in one step.
    pub async fn use_enrollment_code(
        &self,
        user: &str,
        candidate: &str,
        now: u64,
        ticket: &str,
    ) -> Result<UseCodeResult, StoreError> {
        dispatch!(self, s => s.use_enrollment_code(user, candidate, now, ticket).await)
    }

    /// Replaces the secret of an enrolled user (new phone); `step` of the confirming code.
    pub async fn replace_secret(
        &self,
        user: &str,
        sealed: &[u8],
        key_id: &str,
        now: u64,
        step: u64,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.replace_secret(user, sealed, key_id, now, step).await)
    }

    /// Replaces the secret of an enrolled user (new phone) only if the stored sealed secret
    /// is still byte for byte `current` — the one a code was just checked against — in one
    /// step, forgetting the remembered browsers with it; false if it was removed or replaced meanwhile, and then nothing is written.
    /// `step` is the time step of the new app's confirming code.
    pub async fn replace_secret_if(
        &self,
        user: &str,
        current: &[u8],
        sealed: &[u8],
        key_id: &str,
        now: u64,
        step: u64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.replace_secret_if(user, current, sealed, key_id, now, step).await)
    }

    /// User names after `after` (exclusive; "" for the first page) in byte order, at most
    /// `limit`: the whole index of users, page by page (key re-encryption walks it).
    pub async fn users_after(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.users_after(after, limit).await)
    }

    /// Replaces a user's sealed secret with `sealed` (the same secret, sealed again with the
    /// key `key_id`) only if the stored one is still byte for byte `current`; false if it
    /// changed meanwhile (enrollment removed or replaced), and then nothing is written.
    pub async fn reseal_secret(
        &self,
        user: &str,
        current: &[u8],
        sealed: &[u8],
        key_id: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.reseal_secret(user, current, sealed, key_id).await)
    }

    /// User names starting with `prefix` (of those who logged in through the gateway).
    pub async fn search_users(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.search_users(prefix, limit).await)
    }

    /// The user's attempts counted since the last right code or lock (for telling the user
    /// how many are left; the limit itself is kept by [`Store::take_attempt`]).
    pub async fn user_failures(&self, user: &str) -> Result<u32, StoreError> {
        dispatch!(self, s => s.user_failures(user).await)
    }

    /// Remaining lock of the user's MFA step.
    pub async fn user_lock(&self, user: &str) -> Result<Option<Duration>, StoreError> {
        dispatch!(self, s => s.user_lock(user).await)
    }

    /// Appends an audit record (JSON), keeping about `keep` records.
    pub async fn audit_append(&self, json: &str, keep: usize) -> Result<(), StoreError> {
        dispatch!(self, s => s.audit_append(json, keep).await)
    }

    /// Audit records from `since_ms` (Unix milliseconds) on, oldest first, at most `count`,
    /// each with its position; pass the last position + 1 ms... use `after` to page on.
    pub async fn audit_range(
        &self,
        after: &str,
        count: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, s => s.audit_range(after, count).await)
    }

    /// The newest audit records, newest first.
    pub async fn audit_recent(&self, count: usize) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => s.audit_recent(count).await)
    }

    /// Appends to the revocation feed; entries older than `keep` may be trimmed.
    pub async fn revoke(
        &self,
        entry: &Revocation,
        now: u64,
        keep: Duration,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.revoke(entry, now, keep).await)
    }

    /// Raises the user's revocation epoch to one above the larger of the stored epoch and
    /// `floor`, in one atomic step, and returns it. In sentinel mode it returns only once a
    /// replica has it (a fail-over must not hand out an epoch twice).
    pub async fn raise_epoch(&self, user: &str, floor: u64) -> Result<u64, StoreError> {
        dispatch!(self, s => s.raise_epoch(user, floor).await)
    }

    /// [`Store::revoke`] for revocations an MSP is told about: in sentinel mode it returns only
    /// once a replica has the entry.
    pub async fn revoke_acknowledged(
        &self,
        entry: &Revocation,
        now: u64,
        keep: Duration,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.revoke_acknowledged(entry, now, keep).await)
    }

    /// Entries after `from` (an opaque position, "0" for the start) and the new position.
    pub async fn read_revocations(
        &self,
        from: &str,
    ) -> Result<(String, Vec<Revocation>), StoreError> {
        dispatch!(self, s => s.read_revocations(from).await)
    }
}

/// A user name made safe for a Redis key: bytes outside `[A-Za-z0-9._@-]` are
/// percent-encoded, so `{`, `}` and `:` cannot break the hash tag or the layout.
pub fn key_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How long a user's failures count without a right code: the longest lock (24 h), not the
/// first lock's length, so failures paced just under the limit (four, a pause as long as the
/// lock, four more, ...) still add up to a lock.
pub fn user_window(limits: Limits) -> Duration {
    lock_duration(limits.lock, 64).max(Duration::from_secs(1))
}

/// Lock length after the `level`-th consecutive lock: doubles each time, at most 24 h.
pub fn lock_duration(base: Duration, level: u32) -> Duration {
    let factor = 1u32
        .checked_shl(level.saturating_sub(1).min(16))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor)
        .min(Duration::from_secs(24 * 3600))
        .max(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_safe_escapes_tag_characters() {
        assert_eq!(key_safe("alice@example.com"), "alice@example.com");
        assert_eq!(key_safe("a{b}:c d"), "a%7Bb%7D%3Ac%20d");
    }

    #[test]
    fn a_remembered_browser_round_trips_with_spaces_in_its_agent() {
        let r = RememberedBrowser {
            id: "ab".into(),
            first_seen: 10,
            last_used: 20,
            epoch: 3,
            agent: "Firefox on Windows".into(),
        };
        assert_eq!(r.encode(), "10 20 3 Firefox on Windows");
        assert_eq!(RememberedBrowser::decode("ab", &r.encode()), Some(r));
        assert_eq!(RememberedBrowser::decode("ab", "10 x 3 a"), None);
        assert_eq!(RememberedBrowser::decode("ab", "10"), None);
    }

    #[test]
    fn lock_doubles_and_is_capped() {
        let b = Duration::from_secs(900);
        assert_eq!(lock_duration(b, 1), b);
        assert_eq!(lock_duration(b, 2), b * 2);
        assert_eq!(lock_duration(b, 3), b * 4);
        assert_eq!(lock_duration(b, 40), Duration::from_secs(86400));
    }
}
