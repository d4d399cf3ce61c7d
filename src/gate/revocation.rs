//! Revocation of approved sessions across every gateway instance.
//!
//! Approvals are verified locally (see `approval`), so ending one early needs a message to
//! every instance. Each revocation is appended to a feed in the shared store (a Redis stream),
//! and every instance reads the feed from where it left off every `mfa.revocation_poll`
//! (default 2 s) into an in-memory snapshot that the hot path consults without locking:
//!
//! ```text
//!   MSP reset ──► store: epoch of user += 1 ──► feed entry {user, epoch}  ─┐
//!   logout ─────────────────────────────────► feed entry {approval id}    ─┤ Redis stream,
//!                                                                           │ trimmed by age
//!                                        every poll interval, from last id  │
//!   request ──► approval ok? ──► snapshot.is_revoked(approval)? ◄───────────┘
//! ```
//!
//! # Ordered by the store, never by a clock
//!
//! Which approvals a revocation ends is decided without comparing instance clocks:
//!
//! * **User revocations** (MSP reset, MFA changes) carry a per-user *epoch*: a counter in
//!   the user's record in the store, raised by one atomic step (a Lua script) before the
//!   entry is published. Every login reads the epoch in the same step as the user's MFA state
//!   (one `HGETALL` of the user's record) and seals it into the approval. An approval is
//!   revoked when its epoch is below the highest epoch this instance has seen for the user.
//!   "Before the reset" therefore means "read the user's state before the store raised the
//!   epoch": the same answer on every instance, with clocks seconds or minutes apart, and no
//!   ambiguity within a second (an approval issued right after a reset carries the new epoch).
//! * **Logouts** revoke one approval by its random id, outright, until it expires. Not the
//!   session hash: a VMS may sign the same session id in again (or issue a token identical
//!   to the last one within the same second), and that new login must work.
//! * **Renewals** (the VMS rotating its session cookie) copy the epoch and the id into the
//!   renewed approval, so a renewal on an instance that has not yet read the feed does not
//!   outlive the revocation.
//!
//! Roles without MFA log in without Redis (the login must not depend on it); their approval
//! takes the epoch this instance knows from the feed. That is never too high (the feed only
//! publishes epochs the store has reached), so no revocation is missed; it can be too low for
//! up to one poll interval after a revocation of that user published elsewhere, which ends
//! such a login at the next poll (the user signs in again). A user without MFA has no MFA to
//! reset, so this only matters after an MSP reset or logout of that very user.
//!
//! # Entries written by the previous version
//!
//! Before epochs, a user revocation said "issued before second `before`" and a logout named
//! the session hash. Such entries stay in the feed for `mfa.approval_max_age` after an upgrade
//! and are still honoured: a `before` from an entry without epoch applies (by clock, as it
//! did) to every approval of that user; a logout without approval id ends version 1 approvals
//! of that session. New user entries still carry `before` (ignored by this version) so that
//! instances not yet upgraded keep ending their version 1 approvals during a rolling upgrade,
//! and version 1 approvals (epoch 0) end with any new user revocation.
//!
//! Entries expire with the longest possible approval (`mfa.approval_max_age`), so the snapshot
//! stays small. If the store is away, the snapshot keeps what it had (approved sessions keep
//! working; new revocations cannot be made anyway) and the reader catches up when it returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::approval::{Approval, user_hash};
use crate::store::revocation::Revocation;
use crate::store::{Store, StoreError};

/// What is known about one user's revocations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct UserMark {
    /// The highest epoch published for the user.
    epoch: u64,
    /// The latest `before` of entries without epoch (written by the previous version).
    before: u64,
    until: u64,
}

#[derive(Debug, Default, Clone)]
struct Snapshot {
    /// Logged-out approvals by id, with the time their entry can be forgotten.
    approvals: HashMap<[u8; 16], u64>,
    /// Logouts without approval id (version 1 approvals), by session hash.
    legacy_sessions: HashMap<[u8; 16], u64>,
    users: HashMap<[u8; 16], UserMark>,
}

impl Snapshot {
    fn is_empty(&self) -> bool {
        self.approvals.is_empty() && self.legacy_sessions.is_empty() && self.users.is_empty()
    }
}

/// The local view of the revocation feed.
#[derive(Debug, Default)]
pub struct Revocations {
    snapshot: ArcSwap<Snapshot>,
    last_id: std::sync::Mutex<String>,
    /// While the feed does not answer: since when, and when that was last logged (unix
    /// seconds). An outage is logged when it starts, then once a minute, and its end once.
    outage: std::sync::Mutex<Option<(u64, u64)>>,
}

/// How often an ongoing feed outage is logged again.
const OUTAGE_LOG_EVERY: u64 = 60;

fn decode16(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

pub fn hex16(b: &[u8; 16]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The ordering rule, on its own: whether an approval with this epoch, id, session and issue
/// time is ended by what is known. (`issued` matters only for entries of the previous
/// version.)
fn revoked_by(snap: &Snapshot, a: &Approval) -> bool {
    let logged_out = match &a.id {
        Some(id) => snap.approvals.contains_key(id),
        None => snap.legacy_sessions.contains_key(&a.session_hash),
    };
    if logged_out {
        return true;
    }
    if snap.users.is_empty() {
        return false;
    }
    snap.users
        .get(&user_hash(&a.user))
        .is_some_and(|m| a.epoch < m.epoch || a.issued < m.before)
}

impl Revocations {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            last_id: std::sync::Mutex::new("0".into()),
            outage: std::sync::Mutex::new(None),
        })
    }

    /// Whether this approval has been revoked (logout, or a user revocation published after
    /// its login read the user's state).
    pub fn is_revoked(&self, a: &Approval) -> bool {
        let snap = self.snapshot.load();
        if snap.is_empty() {
            return false;
        }
        revoked_by(&snap, a)
    }

    /// The highest revocation epoch this instance has seen for `user` (0: none live). For
    /// logins that do not read the store (roles without MFA).
    pub fn user_epoch(&self, user: &str) -> u64 {
        let snap = self.snapshot.load();
        if snap.users.is_empty() {
            return 0;
        }
        snap.users.get(&user_hash(user)).map_or(0, |m| m.epoch)
    }

    /// Applies entries locally (used for the instance's own revocations, so they take effect
    /// at once, and by the poller).
    pub fn apply(&self, entries: &[Revocation], now: u64) {
        let mut next: Snapshot = (**self.snapshot.load()).clone();
        next.approvals.retain(|_, until| *until > now);
        next.legacy_sessions.retain(|_, until| *until > now);
        next.users.retain(|_, m| m.until > now);
        for e in entries {
            if e.until() <= now {
                continue;
            }
            match e {
                Revocation::Session {
                    hash,
                    until,
                    approval,
                } => {
                    let (map, key) = match approval {
                        Some(id) => (&mut next.approvals, decode16(id)),
                        None => (&mut next.legacy_sessions, decode16(hash)),
                    };
                    if let Some(k) = key {
                        let u = map.entry(k).or_insert(*until);
                        *u = (*u).max(*until);
                    }
                }
                Revocation::User {
                    hash,
                    before,
                    until,
                    epoch,
                } => {
                    if let Some(h) = decode16(hash) {
                        let m = next.users.entry(h).or_default();
                        match epoch {
                            Some(epoch) => m.epoch = m.epoch.max(*epoch),
                            None => m.before = m.before.max(*before),
                        }
                        m.until = m.until.max(*until);
                    }
                }
            }
        }
        self.snapshot.store(Arc::new(next));
    }

    /// Reads what is new in the feed. Returns false when the store did not answer.
    pub async fn poll_once(&self, store: &Store, now: u64) -> bool {
        let from = self
            .last_id
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|_| "0".into());
        match store.read_revocations(&from).await {
            Ok((last, entries)) => {
                if !entries.is_empty() || last != from {
                    self.apply(&entries, now);
                    if let Ok(mut g) = self.last_id.lock() {
                        *g = last;
                    }
                } else {
                    self.apply(&[], now);
                }
                if let Some((since, _)) = self.outage.lock().ok().and_then(|mut g| g.take()) {
                    tracing::info!(
                        seconds = now.saturating_sub(since),
                        "revocation feed reachable again; revocations published meanwhile are applied"
                    );
                }
                true
            }
            Err(e) => {
                let mut outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
                match *outage {
                    None => {
                        tracing::warn!(error = %e, "revocation feed unreachable; keeping the last known revocations");
                        *outage = Some((now, now));
                    }
                    Some((since, logged)) if now.saturating_sub(logged) >= OUTAGE_LOG_EVERY => {
                        tracing::warn!(
                            error = %e,
                            seconds = now.saturating_sub(since),
                            "revocation feed still unreachable; keeping the last known revocations"
                        );
                        *outage = Some((since, now));
                    }
                    Some(_) => {}
                }
                false
            }
        }
    }

    /// Polls the feed until `shutdown` flips. Each poll is also the gateway's regular look at
    /// Redis: its outcome sets `mfa_gateway_store_up`, so the gauge follows Redis even when
    /// nobody asks for readiness.
    pub fn spawn_poller(
        self: &Arc<Self>,
        store: Store,
        clock: crate::clock::Clock,
        every: Duration,
        metrics: Arc<crate::metrics::Metrics>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        crate::periodic::spawn_every(every, shutdown, move || {
            let (this, store, clock) = (Arc::clone(&this), store.clone(), clock.clone());
            let metrics = Arc::clone(&metrics);
            async move {
                let started = std::time::Instant::now();
                let ok = this.poll_once(&store, clock.unix()).await;
                metrics.store_up(ok);
                if ok {
                    metrics.store_poll(started.elapsed());
                }
            }
        })
    }
}

/// The entry that logs out one approval on every instance (valid until the approval expires).
pub fn logout_entry(a: &Approval) -> Revocation {
    Revocation::Session {
        hash: hex16(&a.session_hash),
        until: a.expires,
        approval: a.id.as_ref().map(hex16),
    }
}

/// Ends every approval of `user` issued so far, on every instance: raises the user's epoch in
/// the store (one atomic step, acknowledged by a replica where there is one), applies the
/// entry on this instance at once (`local`, when there is one) and publishes it.
///
/// The epoch is never lowered: the store raises it above both its own value and the highest
/// epoch this instance has seen in the feed, so a user record rebuilt or restored from an old
/// backup cannot make approvals outlive a revocation. When publishing fails after the epoch
/// was raised, the error is returned: logins from then on carry the new epoch, approvals from
/// before stay valid on other instances until the revocation is made again (an MSP retries;
/// that raises the epoch once more and publishes it).
pub async fn revoke_user(
    store: &Store,
    local: Option<&Revocations>,
    user: &str,
    now: u64,
    max_age: Duration,
) -> Result<Revocation, StoreError> {
    let floor = local.map_or(0, |r| r.user_epoch(user));
    let epoch = store.raise_epoch(user, floor).await?;
    let entry = Revocation::User {
        hash: hex16(&user_hash(user)),
        before: now.saturating_add(1),
        until: now.saturating_add(max_age.as_secs()).saturating_add(1),
        epoch: Some(epoch),
    };
    if let Some(r) = local {
        r.apply(std::slice::from_ref(&entry), now);
    }
    store.revoke_acknowledged(&entry, now, max_age).await?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::policy::MfaState;

    fn approval(user: &str, epoch: u64, id: Option<[u8; 16]>, issued: u64) -> Approval {
        Approval {
            issued,
            expires: issued + 1000,
            mfa_passed: true,
            state: MfaState::Enforced,
            session_hash: [3; 16],
            role: "customer".into(),
            user: user.into(),
            epoch,
            id,
        }
    }

    fn user_entry(user: &str, epoch: Option<u64>, before: u64, until: u64) -> Revocation {
        Revocation::User {
            hash: hex16(&user_hash(user)),
            before,
            until,
            epoch,
        }
    }

    #[test]
    fn a_logout_ends_that_approval_not_a_new_one_on_the_same_session() {
        let r = Revocations::new();
        let old = approval("bob", 0, Some([1; 16]), 100);
        assert!(!r.is_revoked(&old));
        r.apply(&[logout_entry(&old)], 200);
        assert!(r.is_revoked(&old));
        // The VMS signs the same session in again, in the same second: a new approval.
        let new = approval("bob", 0, Some([2; 16]), 200);
        assert_eq!(new.session_hash, old.session_hash);
        assert!(!r.is_revoked(&new));
        // A renewal of the logged-out approval (same id, other session) is ended too.
        let renewed = Approval {
            session_hash: [4; 16],
            ..old.clone()
        };
        assert!(r.is_revoked(&renewed));
        r.apply(&[], old.expires);
        assert!(!r.is_revoked(&old), "entries expire with the approval");
    }

    #[test]
    fn a_user_revocation_ends_lower_epochs_whatever_the_clocks_say() {
        let r = Revocations::new();
        r.apply(&[user_entry("bob", Some(4), 500, 5000)], 200);
        // Issued "after" the reset by a clock far ahead, but read before the store's step.
        assert!(r.is_revoked(&approval("bob", 3, Some([1; 16]), 10_000)));
        // Issued "before" it by a clock behind, but read after: survives.
        assert!(!r.is_revoked(&approval("bob", 4, Some([1; 16]), 1)));
        assert!(!r.is_revoked(&approval("carol", 0, Some([1; 16]), 1)));
        assert_eq!(r.user_epoch("bob"), 4);
        assert_eq!(r.user_epoch("carol"), 0);
        // Entries arrive out of order: the highest epoch counts.
        r.apply(&[user_entry("bob", Some(2), 900, 5000)], 200);
        assert_eq!(r.user_epoch("bob"), 4);
        r.apply(&[], 5000);
        assert_eq!(
            r.user_epoch("bob"),
            0,
            "forgotten when the last approval expired"
        );
    }

    #[test]
    fn entries_of_the_previous_version_still_apply() {
        let r = Revocations::new();
        // A reset written by the previous version: by clock, for every approval of the user.
        r.apply(&[user_entry("bob", None, 500, 5000)], 200);
        assert!(r.is_revoked(&approval("bob", 0, None, 499)));
        assert!(r.is_revoked(&approval("bob", 7, Some([1; 16]), 499)));
        assert!(!r.is_revoked(&approval("bob", 0, None, 500)));
        assert_eq!(r.user_epoch("bob"), 0);
        // A new reset ends every version 1 approval (epoch 0), whenever it was issued.
        r.apply(&[user_entry("bob", Some(1), 0, 5000)], 200);
        assert!(r.is_revoked(&approval("bob", 0, None, 4000)));
        assert!(!r.is_revoked(&approval("bob", 1, Some([1; 16]), 4000)));
        // A logout written by the previous version names the session: version 1 approvals of
        // it end; a new login on the same session id (with an id) does not.
        let r = Revocations::new();
        r.apply(
            &[Revocation::Session {
                hash: hex16(&[3; 16]),
                until: 5000,
                approval: None,
            }],
            200,
        );
        assert!(r.is_revoked(&approval("alice", 0, None, 100)));
        assert!(!r.is_revoked(&approval("alice", 0, Some([1; 16]), 300)));
    }

    #[test]
    fn the_feed_format_reads_both_versions() {
        let old_user =
            r#"{"kind":"user","hash":"00000000000000000000000000000000","before":5,"until":9}"#;
        assert_eq!(
            serde_json::from_str::<Revocation>(old_user).unwrap(),
            Revocation::User {
                hash: "0".repeat(32),
                before: 5,
                until: 9,
                epoch: None
            }
        );
        let old_session =
            r#"{"kind":"session","hash":"00000000000000000000000000000000","until":9}"#;
        assert!(matches!(
            serde_json::from_str::<Revocation>(old_session).unwrap(),
            Revocation::Session { approval: None, .. }
        ));
        // What this version writes still has every field the previous version requires.
        let new = serde_json::to_value(user_entry("bob", Some(3), 5, 9)).unwrap();
        for field in ["kind", "hash", "before", "until", "epoch"] {
            assert!(new.get(field).is_some(), "{field}");
        }
        let logout =
            serde_json::to_value(logout_entry(&approval("bob", 0, Some([1; 16]), 1))).unwrap();
        for field in ["kind", "hash", "until", "approval"] {
            assert!(logout.get(field).is_some(), "{field}");
        }
    }

    #[test]
    fn malformed_hashes_are_ignored() {
        let r = Revocations::new();
        r.apply(
            &[Revocation::Session {
                hash: "zz".into(),
                until: 10,
                approval: Some("zz".into()),
            }],
            1,
        );
        assert!(!r.is_revoked(&approval("a", 0, Some([0; 16]), 0)));
    }

    #[tokio::test]
    async fn revoking_a_user_raises_the_epoch_in_the_store_and_never_lowers_it() {
        let store = Store::Memory(crate::store::memory::MemoryStore::new());
        let local = Revocations::new();
        let max_age = Duration::from_secs(3600);
        let e1 = revoke_user(&store, Some(&local), "bob", 100, max_age)
            .await
            .unwrap();
        assert!(matches!(e1, Revocation::User { epoch: Some(1), .. }));
        assert_eq!(store.user("bob").await.unwrap().epoch, 1);
        assert_eq!(local.user_epoch("bob"), 1, "applied here at once");
        // This instance has seen epoch 9 in the feed (the store's record was rebuilt): the
        // next epoch is above both.
        local.apply(&[user_entry("bob", Some(9), 0, 5000)], 100);
        let e = revoke_user(&store, Some(&local), "bob", 100, max_age)
            .await
            .unwrap();
        assert!(matches!(
            e,
            Revocation::User {
                epoch: Some(10),
                ..
            }
        ));
        let other = Revocations::new();
        assert!(other.poll_once(&store, 100).await);
        assert_eq!(other.user_epoch("bob"), 10, "published to the feed");
    }
}

#[cfg(test)]
mod props;
