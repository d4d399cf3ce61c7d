//! In-process store with the same semantics as the Redis store: for unit tests and for the
//! demo when no Redis answers. It is not shared between processes and keeps nothing across
//! restarts, which is why production configurations refuse it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::revocation::Revocation;
use super::{
    AddPasskey, Attempt, Disabled, EnrollResult, IssueResult, KeepMethod, Limits, MAX_PASSKEYS,
    MAX_REMEMBERED_BROWSERS, NewEnrollmentCode, OWNER_WAIT_FLAG, OwnerEnter, PreAdmit, PreState,
    RememberedBrowser, RemovePasskey, StoreError, StoredPasskey, UseCodeResult, UsePasskey,
    UserRecord, lock_duration, user_window,
};

#[derive(Default)]
struct Inner {
    challenges: HashMap<String, (Vec<u8>, Instant)>,
    users: HashMap<String, UserRecord>,
    /// key -> (count, expires)
    counters: HashMap<String, (u32, Instant)>,
    feed: Vec<(u64, Revocation, u64)>,
    pending: HashMap<String, u64>,
    audit: Vec<(u64, String)>,
    next_id: u64,
    /// user key -> the user name as the VMS reported it
    vms_names: HashMap<String, String>,
    /// pre-login session hash -> (signing in, expires)
    pre: HashMap<String, (bool, Instant)>,
    /// user -> pending enrollment secret (sealed), expiry
    pending_secrets: HashMap<String, (Vec<u8>, Instant)>,
    /// users who were shown a pending secret not yet confirmed
    pending_at: HashMap<String, u64>,
    /// pre-login session hash -> (lease owner token, expires)
    pre_leases: HashMap<String, (String, Instant)>,
    /// approved same-id session hash -> who holds it (see `owner_enter`)
    owners: HashMap<String, Owners>,
    /// approved same-id session hash -> ended until
    owners_ended: HashMap<String, Instant>,
    /// user -> browser id -> remembered browser
    remembered: HashMap<String, HashMap<String, RememberedBrowser>>,
    /// user -> credential id -> passkey
    passkeys: HashMap<String, HashMap<String, StoredPasskey>>,
    /// ceremony key -> (state, expires)
    ceremonies: HashMap<String, (Vec<u8>, Instant)>,
    /// The mail outbox, its dead list, the sender's lease, contacts and e-mailed codes
    /// (`store::outbox`).
    mail: MailState,
    contacts: HashMap<String, super::Contact>,
}

/// The holders of one approved same-id session (the Redis store's `OWNER_ENTER`).
#[derive(Default)]
struct Owners {
    shared: HashMap<String, Instant>,
    exclusive: Option<(String, Instant)>,
    waiting: Option<(String, Instant)>,
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store poisoned".into()))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.lock().map(|_| ())
    }

    fn pre_live(g: &mut Inner, hash: &str) -> Option<bool> {
        match g.pre.get(hash) {
            Some((signing, exp)) if *exp > Instant::now() => Some(*signing),
            Some(_) => {
                g.pre.remove(hash);
                None
            }
            None => None,
        }
    }

    pub async fn pre_open(&self, hash: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        if Self::pre_live(&mut g, hash) == Some(true) {
            return Ok(false);
        }
        g.pre
            .insert(hash.to_string(), (false, Instant::now() + ttl));
        Ok(true)
    }

    pub async fn pre_state(&self, hash: &str) -> Result<PreState, StoreError> {
        let mut g = self.lock()?;
        Ok(match Self::pre_live(&mut g, hash) {
            None => PreState::Missing,
            Some(false) => PreState::Anonymous,
            Some(true) => PreState::SigningIn,
        })
    }

    pub async fn pre_sign_in(
        &self,
        hash: &str,
        _user: &str,
        keep: Duration,
    ) -> Result<PreState, StoreError> {
        let mut g = self.lock()?;
        match Self::pre_live(&mut g, hash) {
            None => Ok(PreState::Missing),
            Some(true) => Ok(PreState::SigningIn),
            Some(false) => {
                if let Some(e) = g.pre.get_mut(hash) {
                    e.0 = true;
                    e.1 = Instant::now() + keep;
                }
                Ok(PreState::Anonymous)
            }
        }
    }

    pub async fn pre_admit(
        &self,
        hash: &str,
        token: &str,
        lease: Duration,
    ) -> Result<PreAdmit, StoreError> {
        let mut g = self.lock()?;
        match Self::pre_live(&mut g, hash) {
            None => Ok(PreAdmit::Missing),
            Some(true) => Ok(PreAdmit::SigningIn),
            Some(false) => {
                let now = Instant::now();
                if g.pre_leases.get(hash).is_some_and(|(_, exp)| *exp > now) {
                    return Ok(PreAdmit::Busy);
                }
                g.pre_leases
                    .insert(hash.to_string(), (token.to_string(), now + lease));
                Ok(PreAdmit::Leased)
            }
        }
    }

    pub async fn pre_release(&self, hash: &str, token: &str) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        if g.pre_leases.get(hash).is_some_and(|(t, _)| t == token) {
            g.pre_leases.remove(hash);
        }
        Ok(())
    }

    pub async fn owner_enter(
        &self,
        hash: &str,
        token: &str,
        exclusive: bool,
        lease: Duration,
    ) -> Result<OwnerEnter, StoreError> {
        let mut g = self.lock()?;
        let now = Instant::now();
        if g.owners_ended.get(hash).is_some_and(|until| *until > now) {
            return Ok(OwnerEnter::Ended);
        }
        let o = g.owners.entry(hash.to_string()).or_default();
        o.shared.retain(|_, exp| *exp > now);
        if o.exclusive.as_ref().is_some_and(|(_, exp)| *exp > now) {
            return Ok(OwnerEnter::Busy);
        }
        let waiting = o.waiting.as_ref().filter(|(_, exp)| *exp > now);
        if !exclusive {
            if waiting.is_some() {
                return Ok(OwnerEnter::Busy);
            }
            o.shared.insert(token.to_string(), now + lease);
            return Ok(OwnerEnter::Entered);
        }
        if !o.shared.is_empty() {
            o.waiting = Some((token.to_string(), now + OWNER_WAIT_FLAG));
            return Ok(OwnerEnter::Busy);
        }
        if waiting.is_some_and(|(t, _)| t == token) {
            o.waiting = None;
        }
        o.exclusive = Some((token.to_string(), now + lease));
        Ok(OwnerEnter::Entered)
    }

    pub async fn owner_leave(
        &self,
        hash: &str,
        token: &str,
        exclusive: bool,
    ) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        let Some(o) = g.owners.get_mut(hash) else {
            return Ok(());
        };
        if exclusive {
            if o.exclusive.as_ref().is_some_and(|(t, _)| t == token) {
                o.exclusive = None;
            }
            if o.waiting.as_ref().is_some_and(|(t, _)| t == token) {
                o.waiting = None;
            }
        } else {
            o.shared.remove(token);
        }
        if o.shared.is_empty() && o.exclusive.is_none() && o.waiting.is_none() {
            g.owners.remove(hash);
        }
        Ok(())
    }

    pub async fn owner_end(&self, hash: &str, keep: Duration) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        let now = Instant::now();
        g.owners_ended.retain(|_, until| *until > now);
        g.owners_ended.insert(hash.to_string(), now + keep);
        Ok(())
    }

    pub async fn pre_drop(&self, hash: &str) -> Result<(), StoreError> {
        self.lock()?.pre.remove(hash);
        Ok(())
    }

    pub async fn put_challenge(
        &self,
        id: &str,
        blob: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        let now = Instant::now();
        g.challenges.retain(|_, (_, exp)| *exp > now);
        g.challenges
            .insert(id.to_string(), (blob.to_vec(), now + ttl));
        Ok(())
    }

    pub async fn get_challenge(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let g = self.lock()?;
        Ok(g.challenges
            .get(id)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(b, _)| b.clone()))
    }

    pub async fn replace_challenge(
        &self,
        id: &str,
        blob: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        let now = Instant::now();
        match g.challenges.get_mut(id) {
            Some((b, exp)) if *exp > now => {
                *b = blob.to_vec();
                if let Some(t) = ttl {
                    *exp = now + t;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub async fn pending_secret(
        &self,
        user: &str,
        fresh: &[u8],
        ttl: Duration,
        now: u64,
        discard: Option<&[u8]>,
    ) -> Result<super::Pending, StoreError> {
        let mut g = self.lock()?;
        let at = Instant::now();
        if let Some((v, exp)) = g.pending_secrets.get(user)
            && *exp > at
            && Some(v.as_slice()) != discard
        {
            return Ok(super::Pending::Existing(v.clone()));
        }
        let replaced = g.pending_at.contains_key(user);
        g.pending_secrets
            .insert(user.to_string(), (fresh.to_vec(), at + ttl));
        g.pending_at.insert(user.to_string(), now);
        Ok(super::Pending::Created { replaced })
    }

    pub async fn take_challenge(&self, id: &str) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        Ok(g.challenges
            .remove(id)
            .is_some_and(|(_, exp)| exp > Instant::now()))
    }

    pub async fn user(&self, user: &str) -> Result<UserRecord, StoreError> {
        Ok(self.lock()?.users.get(user).cloned().unwrap_or_default())
    }

    pub async fn enroll(
        &self,
        user: &str,
        sealed: &[u8],
        _key_id: &str,
        now: u64,
        step: u64,
        ticket: Option<&str>,
    ) -> Result<EnrollResult, StoreError> {
        let mut g = self.lock()?;
        let rec = g.users.entry(user.to_string()).or_default();
        if rec.secret.is_some() {
            return Ok(EnrollResult::AlreadyEnrolled);
        }
        if rec.enroll_code.is_some()
            || rec
                .enroll_ticket
                .as_deref()
                .is_some_and(|t| Some(t) != ticket)
        {
            return Ok(EnrollResult::CodeRequired);
        }
        rec.enroll_ticket = None;
        rec.secret = Some(sealed.to_vec());
        rec.enrolled_at = Some(now);
        rec.last_used = Some(now);
        rec.last_step = Some(step);
        g.pending_secrets.remove(user);
        g.pending_at.remove(user);
        Ok(EnrollResult::Enrolled)
    }

    pub async fn accept_step(&self, user: &str, step: u64, now: u64) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        let Some(rec) = g.users.get_mut(user).filter(|r| r.secret.is_some()) else {
            return Ok(false);
        };
        if rec.last_step.is_some_and(|last| step <= last) {
            return Ok(false);
        }
        rec.last_step = Some(step);
        rec.last_used = Some(now);
        Ok(true)
    }

    fn counter(g: &Inner, key: &str) -> Option<(u32, Instant)> {
        g.counters
            .get(key)
            .copied()
            .filter(|(_, exp)| *exp > Instant::now())
    }

    /// One counter of [`Self::take_attempt`] under the store's lock: `None` if locked (with
    /// the remaining time), else whether this attempt set the lock, and for how long.
    fn take(
        g: &mut Inner,
        prefix: &str,
        max: u32,
        window: Duration,
        lock: impl FnOnce(&mut Inner) -> Duration,
    ) -> Result<Option<Duration>, Duration> {
        let now = Instant::now();
        if let Some((_, exp)) = Self::counter(g, &format!("{prefix}:lock")) {
            return Err(exp
                .saturating_duration_since(now)
                .max(Duration::from_secs(1)));
        }
        let key = format!("{prefix}:fails");
        let n = Self::counter(g, &key).map_or(0, |(n, _)| n) + 1;
        g.counters.insert(key.clone(), (n, now + window));
        if n < max {
            return Ok(None);
        }
        let d = lock(g);
        g.counters.insert(format!("{prefix}:lock"), (1, now + d));
        g.counters.remove(&key);
        Ok(Some(d))
    }

    /// Gives one attempt back; an attempt that set the lock lifts it (count: limit - 1).
    fn give_back(g: &mut Inner, prefix: &str, set_lock: bool, max: u32, window: Duration) {
        let key = format!("{prefix}:fails");
        if set_lock {
            g.counters.remove(&format!("{prefix}:lock"));
            if max > 1 {
                g.counters.insert(key, (max - 1, Instant::now() + window));
            }
        } else if let Some((n, exp)) = Self::counter(g, &key) {
            g.counters.insert(key, (n.saturating_sub(1), exp));
        }
    }

    pub async fn take_attempt(
        &self,
        user: &str,
        addr: &str,
        limits: Limits,
    ) -> Result<Attempt, StoreError> {
        let mut g = self.lock()?;
        let a = format!("a:{addr}");
        let known = Self::counter(&g, &format!("{a}:ok:{user}")).is_some();
        if !known && let Some((_, exp)) = Self::counter(&g, &format!("{a}:lock")) {
            return Ok(Attempt::Refused(
                exp.saturating_duration_since(Instant::now())
                    .max(Duration::from_secs(1)),
            ));
        }
        let level_key = format!("u:{user}:level");
        let user_lock = match Self::take(
            &mut g,
            &format!("u:{user}"),
            limits.max_failures,
            user_window(limits),
            |g| {
                let level = Self::counter(g, &level_key).map_or(0, |(n, _)| n) + 1;
                g.counters.insert(
                    level_key,
                    (level, Instant::now() + Duration::from_secs(30 * 86400)),
                );
                lock_duration(limits.lock, level)
            },
        ) {
            Ok(l) => l,
            Err(d) => return Ok(Attempt::Refused(d)),
        };
        if known {
            return Ok(Attempt::Allowed {
                user_lock,
                addr_lock: None,
                addr_counted: false,
            });
        }
        // Under the store's lock the address cannot have locked since the look above, so
        // this take counts; a refusal would still refuse (fail closed).
        let addr_lock = match Self::take(
            &mut g,
            &a,
            limits.max_failures_per_address,
            limits.lock,
            |_| limits.lock,
        ) {
            Ok(l) => l,
            Err(d) => return Ok(Attempt::Refused(d)),
        };
        Ok(Attempt::Allowed {
            user_lock,
            addr_lock,
            addr_counted: true,
        })
    }

    pub async fn attempt_succeeded(
        &self,
        user: &str,
        addr: &str,
        attempt: Attempt,
        limits: Limits,
    ) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        g.counters.remove(&format!("u:{user}:fails"));
        if let Attempt::Allowed {
            user_lock: Some(_), ..
        } = attempt
        {
            g.counters.remove(&format!("u:{user}:lock"));
            let level = format!("u:{user}:level");
            match Self::counter(&g, &level) {
                Some((n, exp)) if n > 1 => {
                    g.counters.insert(level, (n - 1, exp));
                }
                _ => {
                    g.counters.remove(&level);
                }
            }
        }
        g.counters.insert(
            format!("a:{addr}:ok:{user}"),
            (1, Instant::now() + super::KNOWN_PAIR_TTL),
        );
        if attempt.addr_counted() {
            Self::give_back(
                &mut g,
                &format!("a:{addr}"),
                attempt.set_addr_lock(),
                limits.max_failures_per_address,
                limits.lock,
            );
        }
        Ok(())
    }

    pub async fn attempt_unused(
        &self,
        user: &str,
        addr: &str,
        attempt: Attempt,
        limits: Limits,
    ) -> Result<(), StoreError> {
        let Attempt::Allowed { user_lock, .. } = attempt else {
            return Ok(());
        };
        let mut g = self.lock()?;
        if user_lock.is_none() {
            Self::give_back(
                &mut g,
                &format!("u:{user}"),
                false,
                limits.max_failures,
                user_window(limits),
            );
        }
        if attempt.addr_counted() {
            Self::give_back(
                &mut g,
                &format!("a:{addr}"),
                attempt.set_addr_lock(),
                limits.max_failures_per_address,
                limits.lock,
            );
        }
        Ok(())
    }

    pub async fn unlock(&self, user: &str) -> Result<Option<bool>, StoreError> {
        let mut g = self.lock()?;
        let had = g.counters.remove(&format!("u:{user}:lock")).is_some();
        let fails = g.counters.remove(&format!("u:{user}:fails")).is_some();
        let level = g.counters.remove(&format!("u:{user}:level")).is_some();
        let known = g.users.get(user).is_some_and(UserRecord::known);
        Ok((had || fails || level || known).then_some(had || fails || level))
    }

    pub async fn postpone_if_unenrolled(&self, user: &str) -> Result<Option<u32>, StoreError> {
        let mut g = self.lock()?;
        let rec = g.users.entry(user.to_string()).or_default();
        if rec.secret.is_some() {
            return Ok(None);
        }
        rec.postponed += 1;
        Ok(Some(rec.postponed))
    }

    pub async fn decline_if_unenrolled(&self, user: &str, now: u64) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        let rec = g.users.entry(user.to_string()).or_default();
        if rec.secret.is_some() {
            return Ok(false);
        }
        rec.offer_declined = Some(now);
        Ok(true)
    }

    pub async fn incr_postponed(&self, user: &str) -> Result<u32, StoreError> {
        let mut g = self.lock()?;
        let rec = g.users.entry(user.to_string()).or_default();
        rec.postponed += 1;
        Ok(rec.postponed)
    }

    pub async fn set_offer_declined(&self, user: &str, now: u64) -> Result<(), StoreError> {
        self.lock()?
            .users
            .entry(user.to_string())
            .or_default()
            .offer_declined = Some(now);
        Ok(())
    }

    pub async fn delete_enrollment(&self, user: &str) -> Result<Disabled, StoreError> {
        let mut g = self.lock()?;
        let app = match g.users.get_mut(user) {
            Some(rec) => {
                let had = rec.secret.take().is_some();
                rec.enrolled_at = None;
                rec.last_used = None;
                rec.recovery.clear();
                had
            }
            None => false,
        };
        g.remembered.remove(user);
        let passkeys = g.passkeys.remove(user).map_or(0, |p| p.len());
        Ok(Disabled { app, passkeys })
    }

    pub async fn pending_add(&self, member: &str, expires: u64) -> Result<(), StoreError> {
        self.lock()?.pending.insert(member.to_string(), expires);
        Ok(())
    }

    pub async fn pending_remove(&self, member: &str) -> Result<bool, StoreError> {
        Ok(self.lock()?.pending.remove(member).is_some())
    }

    pub async fn pending_due(&self, now: u64) -> Result<Vec<String>, StoreError> {
        let mut g = self.lock()?;
        let due: Vec<String> = g
            .pending
            .iter()
            .filter(|(_, exp)| **exp <= now)
            .map(|(m, _)| m.clone())
            .collect();
        for m in &due {
            g.pending.remove(m);
        }
        Ok(due)
    }

    pub async fn note_login(
        &self,
        user: &str,
        role: &str,
        now: u64,
        contact: &super::Contact,
    ) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        let rec = g.users.entry(user.to_string()).or_default();
        rec.role = Some(role.to_string());
        rec.last_login = Some(now);
        let c = g.contacts.entry(user.to_string()).or_default();
        if contact.email.is_some() {
            c.email.clone_from(&contact.email);
        }
        if contact.lang.is_some() {
            c.lang.clone_from(&contact.lang);
        }
        Ok(())
    }

    pub async fn claim_vms_name(
        &self,
        user: &str,
        vms_name: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut g = self.lock()?;
        Ok(Some(
            g.vms_names
                .entry(user.to_string())
                .or_insert_with(|| vms_name.to_string())
                .clone(),
        ))
    }

    pub async fn remember_browser(
        &self,
        user: &str,
        rec: &RememberedBrowser,
        replaces: Option<&str>,
        now: u64,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        match g.users.get(user) {
            Some(u) if u.secret.is_some() && rec.epoch >= u.epoch => {}
            _ => return Ok(false),
        }
        let all = g.remembered.entry(user.to_string()).or_default();
        if let Some(old) = replaces {
            all.remove(old);
        }
        all.retain(|_, r| r.first_seen.saturating_add(keep.as_secs().max(1)) > now);
        while all.len() >= MAX_REMEMBERED_BROWSERS {
            let Some(oldest) = all
                .values()
                .min_by_key(|r| r.last_used)
                .map(|r| r.id.clone())
            else {
                break;
            };
            all.remove(&oldest);
        }
        all.insert(rec.id.clone(), rec.clone());
        Ok(true)
    }

    pub async fn use_remembered_browser(
        &self,
        user: &str,
        id: &str,
        now: u64,
        max_age: Duration,
    ) -> Result<Option<RememberedBrowser>, StoreError> {
        let mut g = self.lock()?;
        let epoch = match g.users.get(user) {
            Some(u) if u.secret.is_some() => u.epoch,
            _ => return Ok(None),
        };
        let Some(all) = g.remembered.get_mut(user) else {
            return Ok(None);
        };
        let Some(r) = all.get_mut(id) else {
            return Ok(None);
        };
        if r.epoch < epoch {
            all.remove(id);
            return Ok(None);
        }
        if r.first_seen.saturating_add(max_age.as_secs()) <= now {
            return Ok(None);
        }
        r.last_used = now;
        Ok(Some(r.clone()))
    }

    pub async fn remembered_browsers(
        &self,
        user: &str,
    ) -> Result<Vec<RememberedBrowser>, StoreError> {
        let g = self.lock()?;
        Ok(g.remembered
            .get(user)
            .map(|all| all.values().cloned().collect())
            .unwrap_or_default())
    }

    pub async fn forget_browser(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        Ok(g.remembered
            .get_mut(user)
            .is_some_and(|all| all.remove(id).is_some()))
    }

    pub async fn forget_browsers(&self, user: &str) -> Result<usize, StoreError> {
        let mut g = self.lock()?;
        Ok(g.remembered.remove(user).map_or(0, |all| all.len()))
    }

    pub async fn set_recovery(&self, user: &str, hashes: &[String]) -> Result<(), StoreError> {
        self.lock()?
            .users
            .entry(user.to_string())
            .or_default()
            .recovery = hashes.to_vec();
        Ok(())
    }

    pub async fn use_recovery(&self, user: &str, hash: &str) -> Result<Option<usize>, StoreError> {
        let mut g = self.lock()?;
        let Some(rec) = g.users.get_mut(user) else {
            return Ok(None);
        };
        let Some(i) = rec.recovery.iter().position(|h| h == hash) else {
            return Ok(None);
        };
        rec.recovery.remove(i);
        Ok(Some(rec.recovery.len()))
    }

    pub async fn reset(
        &self,
        user: &str,
        now: u64,
        code: Option<NewEnrollmentCode<'_>>,
    ) -> Result<Option<bool>, StoreError> {
        let mut g = self.lock()?;
        let Some(rec) = g.users.get_mut(user).filter(|r| r.known()) else {
            return Ok(None);
        };
        let had = rec.secret.take().is_some();
        rec.enrolled_at = None;
        rec.last_used = None;
        rec.recovery.clear();
        rec.reset_at = Some(now);
        rec.enroll_ticket = None;
        rec.enroll_code = code.map(|c| c.hash.to_string());
        rec.enroll_code_until = code.map(|c| c.until);
        rec.enroll_code_issued = code.map(|_| now);
        g.remembered.remove(user);
        if code.is_some() {
            for k in ["lock", "fails", "level"] {
                g.counters.remove(&format!("u:{user}:{k}"));
            }
        }
        let had_passkeys = g.passkeys.remove(user).is_some_and(|p| !p.is_empty());
        Ok(Some(had || had_passkeys))
    }

    pub async fn passkeys(&self, user: &str) -> Result<Vec<StoredPasskey>, StoreError> {
        let g = self.lock()?;
        let mut v: Vec<StoredPasskey> = g
            .passkeys
            .get(user)
            .map(|all| all.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.added.cmp(&b.added).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    pub async fn add_passkey(
        &self,
        user: &str,
        pk: &StoredPasskey,
        epoch: u64,
        ticket: Option<&str>,
    ) -> Result<AddPasskey, StoreError> {
        let mut g = self.lock()?;
        if g.users.get(user).is_some_and(|r| r.epoch > epoch) {
            return Ok(AddPasskey::Revoked);
        }
        let needs_code = g.users.get(user).is_some_and(|r| {
            r.secret.is_none()
                && (r.enroll_code.is_some()
                    || r.enroll_ticket
                        .as_deref()
                        .is_some_and(|t| Some(t) != ticket))
        });
        if needs_code {
            return Ok(AddPasskey::CodeRequired);
        }
        let all = g.passkeys.entry(user.to_string()).or_default();
        if all.contains_key(&pk.id) {
            return Ok(AddPasskey::Duplicate);
        }
        if all.len() >= MAX_PASSKEYS {
            return Ok(AddPasskey::Full);
        }
        all.insert(pk.id.clone(), pk.clone());
        if let Some(r) = g.users.get_mut(user) {
            r.enroll_ticket = None;
        }
        Ok(AddPasskey::Added)
    }

    pub async fn use_passkey(
        &self,
        user: &str,
        id: &str,
        counter: u32,
        key: &str,
        now: u64,
    ) -> Result<UsePasskey, StoreError> {
        let mut g = self.lock()?;
        let Some(pk) = g.passkeys.get_mut(user).and_then(|all| all.get_mut(id)) else {
            return Ok(UsePasskey::Gone);
        };
        if (counter > 0 || pk.counter > 0) && counter <= pk.counter {
            return Ok(UsePasskey::CounterRegressed);
        }
        pk.counter = counter;
        pk.last_used = now;
        pk.key = key.to_string();
        Ok(UsePasskey::Used)
    }

    pub async fn rename_passkey(
        &self,
        user: &str,
        id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        let Some(pk) = g.passkeys.get_mut(user).and_then(|all| all.get_mut(id)) else {
            return Ok(false);
        };
        pk.name = name.to_string();
        Ok(true)
    }

    pub async fn remove_passkey(
        &self,
        user: &str,
        id: &str,
        keep: KeepMethod,
    ) -> Result<RemovePasskey, StoreError> {
        let mut g = self.lock()?;
        let app = g.users.get(user).is_some_and(|r| r.secret.is_some());
        let Some(all) = g.passkeys.get_mut(user).filter(|a| a.contains_key(id)) else {
            return Ok(RemovePasskey::Gone);
        };
        let others = all.len() - 1;
        let kept = if keep.enforced {
            (keep.totp && app) || (keep.webauthn && others > 0)
        } else {
            // The last factor: MFA off goes through its own confirmed step.
            app || others > 0
        };
        if !kept {
            return Ok(RemovePasskey::LastMethod);
        }
        all.remove(id);
        if all.is_empty() {
            g.passkeys.remove(user);
        }
        Ok(RemovePasskey::Removed)
    }

    pub async fn postpone_unless_passkey(&self, user: &str) -> Result<Option<u32>, StoreError> {
        let mut g = self.lock()?;
        if g.passkeys.get(user).is_some_and(|a| !a.is_empty()) {
            return Ok(None);
        }
        let rec = g.users.entry(user.to_string()).or_default();
        rec.postponed += 1;
        Ok(Some(rec.postponed))
    }

    pub async fn put_ceremony(
        &self,
        key: &str,
        state: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        let now = Instant::now();
        g.ceremonies.retain(|_, (_, expires)| *expires > now);
        g.ceremonies
            .insert(key.to_string(), (state.to_vec(), now + ttl));
        Ok(())
    }

    pub async fn take_ceremony(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut g = self.lock()?;
        Ok(g.ceremonies
            .remove(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(s, _)| s))
    }

    pub async fn issue_enrollment_code(
        &self,
        user: &str,
        code: NewEnrollmentCode<'_>,
        now: u64,
    ) -> Result<IssueResult, StoreError> {
        let mut g = self.lock()?;
        let Some(rec) = g.users.get_mut(user) else {
            return Ok(IssueResult::Unknown);
        };
        if rec.secret.is_some() {
            return Ok(IssueResult::Enrolled);
        }
        if rec.last_login.is_none() && rec.reset_at.is_none() {
            return Ok(IssueResult::Unknown);
        }
        rec.enroll_code = Some(code.hash.to_string());
        rec.enroll_code_until = Some(code.until);
        rec.enroll_code_issued = Some(now);
        rec.enroll_ticket = None;
        Ok(IssueResult::Issued)
    }

    pub async fn use_enrollment_code(
        &self,
        user: &str,
        candidate: &str,
        now: u64,
        ticket: &str,
    ) -> Result<UseCodeResult, StoreError> {
        let mut g = self.lock()?;
        let Some(rec) = g.users.get_mut(user) else {
            return Ok(UseCodeResult::NonePending);
        };
        if rec.secret.is_some() {
            return Ok(UseCodeResult::Enrolled);
        }
        let Some(stored) = rec.enroll_code.as_deref() else {
            return Ok(UseCodeResult::NonePending);
        };
        if rec.enroll_code_until.unwrap_or(0) <= now {
            return Ok(UseCodeResult::Expired);
        }
        if stored != candidate {
            return Ok(UseCodeResult::Wrong);
        }
        rec.enroll_code = None;
        rec.enroll_code_until = None;
        rec.enroll_code_issued = None;
        rec.enroll_ticket = Some(ticket.to_string());
        Ok(UseCodeResult::Accepted)
    }

    pub async fn replace_secret(
        &self,
        user: &str,
        sealed: &[u8],
        _key_id: &str,
        now: u64,
        step: u64,
    ) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        let rec = g.users.entry(user.to_string()).or_default();
        rec.secret = Some(sealed.to_vec());
        rec.enrolled_at = Some(now);
        rec.last_used = Some(now);
        rec.last_step = Some(step);
        Ok(())
    }

    pub async fn replace_secret_if(
        &self,
        user: &str,
        current: &[u8],
        sealed: &[u8],
        _key_id: &str,
        now: u64,
        step: u64,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        match g.users.get_mut(user) {
            Some(rec) if rec.secret.as_deref() == Some(current) => {
                rec.secret = Some(sealed.to_vec());
                rec.enrolled_at = Some(now);
                rec.last_used = Some(now);
                rec.last_step = Some(step);
                g.remembered.remove(user);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub async fn users_after(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let g = self.lock()?;
        let mut names: Vec<String> = g
            .users
            .keys()
            .filter(|n| n.as_str() > after)
            .cloned()
            .collect();
        names.sort();
        names.truncate(limit);
        Ok(names)
    }

    pub async fn reseal_secret(
        &self,
        user: &str,
        current: &[u8],
        sealed: &[u8],
        _key_id: &str,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        match g.users.get_mut(user) {
            Some(rec) if rec.secret.as_deref() == Some(current) => {
                rec.secret = Some(sealed.to_vec());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub async fn search_users(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let g = self.lock()?;
        let mut names: Vec<String> = g
            .users
            .iter()
            .filter(|(n, r)| n.starts_with(prefix) && r.last_login.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names.truncate(limit);
        Ok(names)
    }

    pub async fn user_failures(&self, user: &str) -> Result<u32, StoreError> {
        let g = self.lock()?;
        Ok(Self::counter(&g, &format!("u:{user}:fails")).map_or(0, |(n, _)| n))
    }

    pub async fn user_lock(&self, user: &str) -> Result<Option<Duration>, StoreError> {
        let g = self.lock()?;
        let now = Instant::now();
        Ok(Self::counter(&g, &format!("u:{user}:lock"))
            .map(|(_, exp)| exp.saturating_duration_since(now)))
    }

    pub async fn audit_append(&self, json: &str, keep: usize) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        g.next_id += 1;
        let id = g.next_id;
        g.audit.push((id, json.to_string()));
        let excess = g.audit.len().saturating_sub(keep);
        g.audit.drain(..excess);
        Ok(())
    }

    pub async fn audit_range(
        &self,
        after: &str,
        count: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let g = self.lock()?;
        let after: u64 = after.parse().unwrap_or(0);
        Ok(g.audit
            .iter()
            .filter(|(id, _)| *id > after)
            .take(count)
            .map(|(id, j)| (id.to_string(), j.clone()))
            .collect())
    }

    pub async fn audit_recent(&self, count: usize) -> Result<Vec<String>, StoreError> {
        let g = self.lock()?;
        Ok(g.audit
            .iter()
            .rev()
            .take(count)
            .map(|(_, j)| j.clone())
            .collect())
    }

    pub async fn raise_epoch(&self, user: &str, floor: u64) -> Result<u64, StoreError> {
        let mut g = self.lock()?;
        let rec = g.users.entry(user.to_string()).or_default();
        rec.epoch = rec.epoch.max(floor).saturating_add(1);
        Ok(rec.epoch)
    }

    pub async fn revoke_acknowledged(
        &self,
        entry: &Revocation,
        now: u64,
        keep: Duration,
    ) -> Result<(), StoreError> {
        self.revoke(entry, now, keep).await
    }

    pub async fn revoke(
        &self,
        entry: &Revocation,
        now: u64,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        g.next_id += 1;
        let id = g.next_id;
        let oldest = now.saturating_sub(keep.as_secs());
        g.feed.retain(|(_, _, at)| *at >= oldest);
        g.feed.push((id, entry.clone(), now));
        Ok(())
    }

    pub async fn read_revocations(
        &self,
        from: &str,
    ) -> Result<(String, Vec<Revocation>), StoreError> {
        let g = self.lock()?;
        let from: u64 = from.parse().unwrap_or(0);
        let entries: Vec<Revocation> = g
            .feed
            .iter()
            .filter(|(id, _, _)| *id > from)
            .map(|(_, e, _)| e.clone())
            .collect();
        Ok((g.next_id.max(from).to_string(), entries))
    }
}

/// The memory store's side of `store::outbox`.
#[derive(Default)]
struct MailState {
    /// job -> due (ms)
    queue: HashMap<String, u64>,
    /// newest first
    dead: Vec<String>,
    lease: Option<(String, Instant)>,
    /// user -> (code hash, sends, expires)
    codes: HashMap<String, (String, u32, Instant)>,
}

impl MemoryStore {
    pub async fn outbox_push(&self, job: &str, due_ms: u64) -> Result<(), StoreError> {
        self.lock()?.mail.queue.insert(job.to_string(), due_ms);
        Ok(())
    }

    pub async fn outbox_claim(
        &self,
        now_ms: u64,
        hold: Duration,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut g = self.lock()?;
        let mut due: Vec<(u64, String)> = g
            .mail
            .queue
            .iter()
            .filter(|(_, d)| **d <= now_ms)
            .map(|(j, d)| (*d, j.clone()))
            .collect();
        due.sort();
        due.truncate(max.max(1));
        let until = now_ms.saturating_add(u64::try_from(hold.as_millis()).unwrap_or(u64::MAX));
        for (_, j) in &due {
            g.mail.queue.insert(j.clone(), until);
        }
        Ok(due.into_iter().map(|(_, j)| j).collect())
    }

    pub async fn outbox_done(&self, job: &str) -> Result<bool, StoreError> {
        Ok(self.lock()?.mail.queue.remove(job).is_some())
    }

    pub async fn outbox_retry(
        &self,
        job: &str,
        next: &str,
        due_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        if g.mail.queue.remove(job).is_none() {
            return Ok(false);
        }
        g.mail.queue.insert(next.to_string(), due_ms);
        Ok(true)
    }

    pub async fn outbox_bury(
        &self,
        job: &str,
        dead: &str,
        keep: usize,
    ) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        if g.mail.queue.remove(job).is_none() {
            return Ok(false);
        }
        g.mail.dead.insert(0, dead.to_string());
        g.mail.dead.truncate(keep.max(1));
        Ok(true)
    }

    pub async fn outbox_depth(&self) -> Result<(u64, u64), StoreError> {
        let g = self.lock()?;
        Ok((g.mail.queue.len() as u64, g.mail.dead.len() as u64))
    }

    pub async fn outbox_dead(&self, max: usize) -> Result<Vec<String>, StoreError> {
        Ok(self.lock()?.mail.dead.iter().take(max).cloned().collect())
    }

    pub async fn mail_lease(&self, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut g = self.lock()?;
        let now = Instant::now();
        let free = match &g.mail.lease {
            Some((t, _)) if t == token => true,
            Some((_, exp)) => *exp <= now,
            None => true,
        };
        if free {
            g.mail.lease = Some((token.to_string(), now + ttl));
        }
        Ok(free)
    }

    pub async fn mail_lease_release(&self, token: &str) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        if g.mail.lease.as_ref().is_some_and(|(t, _)| t == token) {
            g.mail.lease = None;
        }
        Ok(())
    }

    pub async fn contact(&self, user: &str) -> Result<super::Contact, StoreError> {
        Ok(self.lock()?.contacts.get(user).cloned().unwrap_or_default())
    }

    pub async fn email_code_issue(
        &self,
        user: &str,
        hash: &str,
        ttl: Duration,
        max_sends: u32,
    ) -> Result<super::CodeIssue, StoreError> {
        let mut g = self.lock()?;
        let now = Instant::now();
        // Each code lives its full time; the sends count until a time passes without one.
        let (sends, expires) = match g.mail.codes.get(user) {
            Some((_, n, exp)) if *exp > now => (*n, now + ttl),
            _ => (0, now + ttl),
        };
        if sends >= max_sends {
            return Ok(super::CodeIssue::Limit);
        }
        g.mail
            .codes
            .insert(user.to_string(), (hash.to_string(), sends + 1, expires));
        Ok(super::CodeIssue::Stored { n: sends + 1 })
    }

    pub async fn email_code_take(
        &self,
        user: &str,
        hash: &str,
    ) -> Result<super::outbox::CodeTake, StoreError> {
        use super::outbox::CodeTake;
        let mut g = self.lock()?;
        let now = Instant::now();
        let found = match g.mail.codes.get(user) {
            Some((h, _, exp)) if *exp > now => {
                if h == hash {
                    CodeTake::Right
                } else {
                    CodeTake::Wrong
                }
            }
            _ => CodeTake::NonePending,
        };
        if found == CodeTake::Right {
            g.mail.codes.remove(user);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn browser(id: &str, at: u64, epoch: u64) -> RememberedBrowser {
        RememberedBrowser {
            id: id.into(),
            first_seen: at,
            last_used: at,
            epoch,
            agent: "Firefox on Linux".into(),
        }
    }

    #[tokio::test]
    async fn a_remembered_browser_needs_an_enrollment_its_epoch_and_its_age() {
        let s = MemoryStore::new();
        let day = Duration::from_secs(86_400);
        // Not enrolled: nothing is remembered.
        assert!(
            !s.remember_browser("u", &browser("a", 100, 0), None, 100, day)
                .await
                .unwrap()
        );
        assert_eq!(
            s.enroll("u", b"sealed", "k1", 100, 1, None).await.unwrap(),
            EnrollResult::Enrolled
        );
        assert!(
            s.remember_browser("u", &browser("a", 100, 0), None, 100, day)
                .await
                .unwrap()
        );
        let used = s
            .use_remembered_browser("u", "a", 200, day)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((used.first_seen, used.last_used), (100, 200));
        assert_eq!(
            s.use_remembered_browser("u", "b", 200, day).await.unwrap(),
            None
        );
        // Too old for the days allowed now.
        assert_eq!(
            s.use_remembered_browser("u", "a", 100 + 86_400, day)
                .await
                .unwrap(),
            None
        );
        // A user revocation (raised epoch) ends it, and it cannot be remembered under the old
        // epoch again.
        s.raise_epoch("u", 0).await.unwrap();
        assert_eq!(
            s.use_remembered_browser("u", "a", 300, day).await.unwrap(),
            None
        );
        assert!(s.remembered_browsers("u").await.unwrap().is_empty());
        assert!(
            !s.remember_browser("u", &browser("c", 300, 0), None, 300, day)
                .await
                .unwrap()
        );
        assert!(
            s.remember_browser("u", &browser("c", 300, 1), None, 300, day)
                .await
                .unwrap()
        );
        assert!(
            s.remember_browser("u", &browser("d", 301, 1), Some("c"), 301, day)
                .await
                .unwrap()
        );
        let ids: Vec<String> = s
            .remembered_browsers("u")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["d"], "the replaced id is gone");
        assert!(s.forget_browser("u", "d").await.unwrap());
        assert!(!s.forget_browser("u", "d").await.unwrap());
        for i in 0..(MAX_REMEMBERED_BROWSERS + 3) {
            let at = 400 + i as u64;
            assert!(
                s.remember_browser("u", &browser(&format!("x{i}"), at, 1), None, at, day)
                    .await
                    .unwrap()
            );
        }
        assert_eq!(
            s.forget_browsers("u").await.unwrap(),
            MAX_REMEMBERED_BROWSERS
        );
        assert_eq!(s.forget_browsers("u").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_pre_login_session_signs_in_once_and_never_becomes_anonymous_again() {
        let s = MemoryStore::new();
        let ttl = Duration::from_secs(60);
        assert_eq!(s.pre_state("h").await.unwrap(), PreState::Missing);
        assert_eq!(
            s.pre_sign_in("h", "u", ttl).await.unwrap(),
            PreState::Missing
        );
        assert!(s.pre_open("h", ttl).await.unwrap());
        assert_eq!(s.pre_state("h").await.unwrap(), PreState::Anonymous);
        assert_eq!(
            s.pre_sign_in("h", "u", ttl).await.unwrap(),
            PreState::Anonymous
        );
        assert_eq!(
            s.pre_sign_in("h", "u", ttl).await.unwrap(),
            PreState::SigningIn
        );
        assert!(!s.pre_open("h", ttl).await.unwrap());
        assert_eq!(s.pre_state("h").await.unwrap(), PreState::SigningIn);
        s.pre_drop("h").await.unwrap();
        assert_eq!(s.pre_state("h").await.unwrap(), PreState::Missing);
        assert!(s.pre_open("h", Duration::ZERO).await.unwrap());
        assert_eq!(
            s.pre_state("h").await.unwrap(),
            PreState::Missing,
            "expired"
        );
    }

    #[tokio::test]
    async fn an_approved_same_id_session_is_shared_by_gets_and_held_alone_by_others() {
        let s = MemoryStore::default();
        let long = Duration::from_secs(60);
        assert_eq!(
            s.owner_enter("h", "g1", false, long).await.unwrap(),
            OwnerEnter::Entered
        );
        assert_eq!(
            s.owner_enter("h", "g2", false, long).await.unwrap(),
            OwnerEnter::Entered
        );
        // A POST waits for the GETs and, waiting, keeps new GETs out.
        assert_eq!(
            s.owner_enter("h", "p", true, long).await.unwrap(),
            OwnerEnter::Busy
        );
        assert_eq!(
            s.owner_enter("h", "g3", false, long).await.unwrap(),
            OwnerEnter::Busy
        );
        s.owner_leave("h", "g1", false).await.unwrap();
        s.owner_leave("h", "g2", false).await.unwrap();
        assert_eq!(
            s.owner_enter("h", "p", true, long).await.unwrap(),
            OwnerEnter::Entered
        );
        for (t, x) in [("g3", false), ("p2", true)] {
            assert_eq!(
                s.owner_enter("h", t, x, long).await.unwrap(),
                OwnerEnter::Busy
            );
        }
        // Only the holder gives it back.
        s.owner_leave("h", "p2", true).await.unwrap();
        assert_eq!(
            s.owner_enter("h", "g3", false, long).await.unwrap(),
            OwnerEnter::Busy
        );
        // Ended while held: nobody enters again, on any session hash but this one.
        s.owner_end("h", long).await.unwrap();
        s.owner_leave("h", "p", true).await.unwrap();
        assert_eq!(
            s.owner_enter("h", "g3", false, long).await.unwrap(),
            OwnerEnter::Ended
        );
        assert_eq!(
            s.owner_enter("other", "g3", true, long).await.unwrap(),
            OwnerEnter::Entered
        );
        // A holder that never gives back expires.
        assert_eq!(
            s.owner_enter("e", "x", true, Duration::ZERO).await.unwrap(),
            OwnerEnter::Entered
        );
        assert_eq!(
            s.owner_enter("e", "y", true, long).await.unwrap(),
            OwnerEnter::Entered
        );
    }

    #[tokio::test]
    async fn a_pre_login_session_is_leased_to_one_request_at_a_time() {
        let s = MemoryStore::default();
        let long = Duration::from_secs(60);
        assert_eq!(
            s.pre_admit("h", "a", long).await.unwrap(),
            PreAdmit::Missing
        );
        assert!(s.pre_open("h", long).await.unwrap());
        assert_eq!(s.pre_admit("h", "a", long).await.unwrap(), PreAdmit::Leased);
        assert_eq!(s.pre_admit("h", "b", long).await.unwrap(), PreAdmit::Busy);
        // Only the owner gives it back.
        s.pre_release("h", "b").await.unwrap();
        assert_eq!(s.pre_admit("h", "b", long).await.unwrap(), PreAdmit::Busy);
        // The holder signs the session in while it holds the lease; released, the next
        // request sees "signing in".
        assert_eq!(
            s.pre_sign_in("h", "u", long).await.unwrap(),
            PreState::Anonymous
        );
        s.pre_release("h", "a").await.unwrap();
        assert_eq!(
            s.pre_admit("h", "b", long).await.unwrap(),
            PreAdmit::SigningIn
        );
        // A lease left behind expires.
        assert!(s.pre_open("k", long).await.unwrap());
        assert_eq!(
            s.pre_admit("k", "dead", Duration::ZERO).await.unwrap(),
            PreAdmit::Leased
        );
        assert_eq!(s.pre_admit("k", "b", long).await.unwrap(), PreAdmit::Leased);
    }

    #[tokio::test]
    async fn enroll_once_and_accept_each_step_once() {
        let s = MemoryStore::new();
        assert_eq!(
            s.enroll("u", b"sealed", "k1", 100, 10, None).await.unwrap(),
            EnrollResult::Enrolled
        );
        assert!(
            s.enroll("u", b"other", "k1", 100, 10, None).await.unwrap() != EnrollResult::Enrolled,
            "second enrollment refused"
        );
        assert!(
            !s.accept_step("u", 10, 101).await.unwrap(),
            "confirming step is used"
        );
        assert!(s.accept_step("u", 11, 101).await.unwrap());
        assert!(!s.accept_step("u", 11, 102).await.unwrap());
        assert!(!s.accept_step("nobody", 12, 102).await.unwrap());
    }

    fn limits(max: u32, per_addr: u32) -> Limits {
        Limits {
            max_failures: max,
            lock: Duration::from_secs(60),
            max_failures_per_address: per_addr,
        }
    }

    #[tokio::test]
    async fn attempts_are_taken_before_the_check_and_lock_at_the_limit() {
        let s = MemoryStore::new();
        let l = limits(3, 100);
        let free = Attempt::Allowed {
            user_lock: None,
            addr_lock: None,
            addr_counted: true,
        };
        assert_eq!(s.take_attempt("u", "ip", l).await.unwrap(), free);
        assert_eq!(s.take_attempt("u", "ip", l).await.unwrap(), free);
        assert_eq!(
            s.take_attempt("u", "ip", l).await.unwrap(),
            Attempt::Allowed {
                user_lock: Some(Duration::from_secs(60)),
                addr_lock: None,
                addr_counted: true,
            },
            "the third attempt is the last and sets the lock"
        );
        for _ in 0..10 {
            assert!(matches!(
                s.take_attempt("u", "other", l).await.unwrap(),
                Attempt::Refused(_)
            ));
        }
        assert!(s.user_lock("u").await.unwrap().is_some());
        assert_eq!(s.unlock("u").await.unwrap(), Some(true));
        assert_eq!(s.take_attempt("u", "ip", l).await.unwrap(), free);
        // An unlock starts the escalation again: the next lock is the base length.
        s.take_attempt("u", "ip", l).await.unwrap();
        assert_eq!(
            s.take_attempt("u", "ip", l).await.unwrap(),
            Attempt::Allowed {
                user_lock: Some(Duration::from_secs(60)),
                addr_lock: None,
                addr_counted: true,
            },
            "unlock also resets the escalation"
        );
    }

    #[tokio::test]
    async fn a_success_clears_the_user_and_gives_the_address_its_attempt_back() {
        let s = MemoryStore::new();
        let l = limits(3, 3);
        s.take_attempt("u", "ip", l).await.unwrap();
        let a = s.take_attempt("u", "ip", l).await.unwrap();
        s.attempt_succeeded("u", "ip", a, l).await.unwrap();
        // The user starts again; the address has one failure and two attempts left.
        let a = s.take_attempt("v", "ip", l).await.unwrap();
        assert_eq!(
            a,
            Attempt::Allowed {
                user_lock: None,
                addr_lock: None,
                addr_counted: true,
            }
        );
        let a = s.take_attempt("w", "ip", l).await.unwrap();
        assert!(a.set_addr_lock(), "third failure of the address");
        // A right code on that last attempt lifts the address lock it set.
        s.attempt_succeeded("w", "ip", a, l).await.unwrap();
        assert!(a.set_addr_lock());
        assert!(matches!(
            s.take_attempt("x", "ip", l).await.unwrap(),
            Attempt::Allowed {
                addr_lock: Some(_),
                ..
            }
        ));
        assert!(matches!(
            s.take_attempt("y", "ip", l).await.unwrap(),
            Attempt::Refused(_)
        ));
    }

    #[tokio::test]
    async fn a_success_lifts_only_the_lock_its_own_attempt_set() {
        let s = MemoryStore::new();
        let l = limits(3, 100);
        let first = s.take_attempt("u", "ip", l).await.unwrap();
        s.take_attempt("u", "ip", l).await.unwrap();
        let last = s.take_attempt("u", "ip", l).await.unwrap();
        assert!(matches!(
            last,
            Attempt::Allowed {
                user_lock: Some(_),
                ..
            }
        ));
        // The first of the three turns out right: the lock set by the third stays.
        s.attempt_succeeded("u", "ip", first, l).await.unwrap();
        assert!(matches!(
            s.take_attempt("u", "ip", l).await.unwrap(),
            Attempt::Refused(_)
        ));
        // The last one right: its lock and its escalation step are given back.
        let s = MemoryStore::new();
        s.take_attempt("u", "ip", l).await.unwrap();
        s.take_attempt("u", "ip", l).await.unwrap();
        let last = s.take_attempt("u", "ip", l).await.unwrap();
        s.attempt_succeeded("u", "ip", last, l).await.unwrap();
        s.take_attempt("u", "ip", l).await.unwrap();
        s.take_attempt("u", "ip", l).await.unwrap();
        assert_eq!(
            s.take_attempt("u", "ip", l).await.unwrap(),
            Attempt::Allowed {
                user_lock: Some(Duration::from_secs(60)),
                addr_lock: None,
                addr_counted: false,
            },
            "the first real lock has the base length (and the address knows the user now)"
        );
    }

    #[tokio::test]
    async fn a_locked_address_spares_users_who_passed_mfa_from_it() {
        let s = MemoryStore::new();
        let l = limits(5, 2);
        let ok = s.take_attempt("known", "ip", l).await.unwrap();
        s.attempt_succeeded("known", "ip", ok, l).await.unwrap();
        s.take_attempt("a", "ip", l).await.unwrap();
        assert!(s.take_attempt("b", "ip", l).await.unwrap().set_addr_lock());
        assert!(matches!(
            s.take_attempt("c", "ip", l).await.unwrap(),
            Attempt::Refused(_)
        ));
        let known = s.take_attempt("known", "ip", l).await.unwrap();
        assert_eq!(
            known,
            Attempt::Allowed {
                user_lock: None,
                addr_lock: None,
                addr_counted: false,
            }
        );
        s.attempt_unused("known", "ip", known, l).await.unwrap();
        // Known at that address only.
        assert!(matches!(
            s.take_attempt("known", "ip2", l).await.unwrap(),
            Attempt::Allowed {
                addr_counted: true,
                ..
            }
        ));
        // Still limited by their own lock.
        for _ in 0..4 {
            s.take_attempt("known", "ip", l).await.unwrap();
        }
        assert!(matches!(
            s.take_attempt("known", "ip", l).await.unwrap(),
            Attempt::Refused(_)
        ));
    }

    #[tokio::test]
    async fn the_escalation_outlives_a_right_code() {
        let s = MemoryStore::new();
        let l = Limits {
            max_failures: 2,
            lock: Duration::from_millis(50),
            max_failures_per_address: 100,
        };
        s.take_attempt("u", "ip", l).await.unwrap();
        assert!(matches!(
            s.take_attempt("u", "ip", l).await.unwrap(),
            Attempt::Allowed { user_lock: Some(d), .. } if d == Duration::from_millis(50)
        ));
        tokio::time::sleep(Duration::from_millis(80)).await;
        let ok = s.take_attempt("u", "ip", l).await.unwrap();
        s.attempt_succeeded("u", "ip", ok, l).await.unwrap();
        s.take_attempt("u", "ip", l).await.unwrap();
        assert!(
            matches!(
                s.take_attempt("u", "ip", l).await.unwrap(),
                Attempt::Allowed { user_lock: Some(d), .. } if d == Duration::from_millis(100)
            ),
            "the second lock doubles although a right code came between"
        );
    }

    #[tokio::test]
    async fn an_enrollment_code_is_set_by_the_reset_used_once_and_replaced_by_a_new_one() {
        let s = MemoryStore::new();
        let code = |hash: &'static str, until| NewEnrollmentCode { hash, until };
        // Unknown users get nothing.
        assert_eq!(s.reset("u", 10, Some(code("h1", 100))).await.unwrap(), None);
        assert_eq!(
            s.issue_enrollment_code("u", code("h1", 100), 10)
                .await
                .unwrap(),
            IssueResult::Unknown
        );
        s.note_login("u", "customer", 5, &Default::default())
            .await
            .unwrap();
        s.enroll("u", b"sealed", "k1", 5, 1, None).await.unwrap();
        assert_eq!(
            s.issue_enrollment_code("u", code("h1", 100), 10)
                .await
                .unwrap(),
            IssueResult::Enrolled,
            "a user with an app needs no code"
        );
        // The reset removes the secret and sets the code in the same step.
        assert_eq!(
            s.reset("u", 10, Some(code("h1", 100))).await.unwrap(),
            Some(true)
        );
        let r = s.user("u").await.unwrap();
        assert!(!r.enrolled() && r.enrollment_code_required());
        assert_eq!(r.enrollment_code_valid_until(10), Some(100));
        assert_eq!(r.enroll_code_issued, Some(10));
        // Pairing without the code is refused.
        assert_eq!(
            s.enroll("u", b"thief", "k1", 20, 2, None).await.unwrap(),
            EnrollResult::CodeRequired
        );
        assert_eq!(
            s.enroll("u", b"thief", "k1", 20, 2, Some("t1"))
                .await
                .unwrap(),
            EnrollResult::CodeRequired,
            "a ticket is worth nothing before the code was typed"
        );
        // Wrong, then right; once only.
        assert_eq!(
            s.use_enrollment_code("u", "h0", 20, "t1").await.unwrap(),
            UseCodeResult::Wrong
        );
        assert_eq!(
            s.use_enrollment_code("u", "h1", 20, "t1").await.unwrap(),
            UseCodeResult::Accepted
        );
        assert_eq!(
            s.use_enrollment_code("u", "h1", 21, "t2").await.unwrap(),
            UseCodeResult::NonePending
        );
        // Only the sign-in that typed it may pair.
        assert_eq!(
            s.enroll("u", b"thief", "k1", 22, 3, Some("t2"))
                .await
                .unwrap(),
            EnrollResult::CodeRequired
        );
        assert_eq!(
            s.enroll("u", b"sealed2", "k1", 22, 3, Some("t1"))
                .await
                .unwrap(),
            EnrollResult::Enrolled
        );
        let r = s.user("u").await.unwrap();
        assert!(r.enrolled() && !r.enrollment_code_required());
        assert_eq!(r.enroll_ticket, None);
        // A new code kills the old one and a ticket of the old one.
        s.reset("u", 30, Some(code("h2", 200))).await.unwrap();
        assert_eq!(
            s.use_enrollment_code("u", "h2", 31, "t3").await.unwrap(),
            UseCodeResult::Accepted
        );
        assert_eq!(
            s.issue_enrollment_code("u", code("h3", 300), 32)
                .await
                .unwrap(),
            IssueResult::Issued
        );
        assert_eq!(
            s.enroll("u", b"x", "k1", 33, 4, Some("t3")).await.unwrap(),
            EnrollResult::CodeRequired
        );
        assert_eq!(
            s.use_enrollment_code("u", "h2", 33, "t4").await.unwrap(),
            UseCodeResult::Wrong
        );
        // Expired: refused whatever was typed, and still required.
        assert_eq!(
            s.use_enrollment_code("u", "h3", 300, "t4").await.unwrap(),
            UseCodeResult::Expired
        );
        let r = s.user("u").await.unwrap();
        assert!(r.enrollment_code_required());
        assert_eq!(r.enrollment_code_valid_until(300), None);
        // A reset with a code lifts the user's lock, so the code can be typed.
        let limits = Limits {
            max_failures: 1,
            lock: Duration::from_secs(900),
            max_failures_per_address: 100,
        };
        s.take_attempt("u", "10.0.0.1", limits).await.unwrap();
        assert!(s.user_lock("u").await.unwrap().is_some());
        s.reset("u", 350, Some(code("h4", 500))).await.unwrap();
        assert_eq!(s.user_lock("u").await.unwrap(), None);
        // A reset without a code (the setting off) takes every code and ticket away.
        s.reset("u", 400, None).await.unwrap();
        let r = s.user("u").await.unwrap();
        assert!(!r.enrollment_code_required());
        assert_eq!(
            s.enroll("u", b"y", "k1", 401, 5, None).await.unwrap(),
            EnrollResult::Enrolled
        );
    }
}

#[cfg(test)]
mod passkey_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pk(id: &str) -> StoredPasskey {
        StoredPasskey {
            id: id.into(),
            name: "Key one".into(),
            added: 10,
            last_used: 0,
            counter: 0,
            key: "{}".into(),
        }
    }

    #[tokio::test]
    async fn passkeys_are_added_used_and_removed_in_single_steps() {
        let s = MemoryStore::new();
        assert_eq!(
            s.add_passkey("u", &pk("a"), 0, None).await.unwrap(),
            AddPasskey::Added
        );
        assert_eq!(
            s.add_passkey("u", &pk("a"), 0, None).await.unwrap(),
            AddPasskey::Duplicate
        );
        // A revocation (reset) after the ceremony began: nothing written.
        s.lock().unwrap().users.entry("u".into()).or_default().epoch = 3;
        assert_eq!(
            s.add_passkey("u", &pk("b"), 2, None).await.unwrap(),
            AddPasskey::Revoked
        );
        assert_eq!(
            s.add_passkey("u", &pk("b"), 3, None).await.unwrap(),
            AddPasskey::Added
        );
        for i in 2..MAX_PASSKEYS {
            s.add_passkey("u", &pk(&format!("k{i}")), 3, None)
                .await
                .unwrap();
        }
        assert_eq!(
            s.add_passkey("u", &pk("z"), 3, None).await.unwrap(),
            AddPasskey::Full
        );
        // Counters move forward only (0 and 0 is a key without a counter).
        assert_eq!(
            s.use_passkey("u", "a", 0, "{}", 20).await.unwrap(),
            UsePasskey::Used
        );
        assert_eq!(
            s.use_passkey("u", "a", 5, "{}", 21).await.unwrap(),
            UsePasskey::Used
        );
        assert_eq!(
            s.use_passkey("u", "a", 5, "{}", 22).await.unwrap(),
            UsePasskey::CounterRegressed
        );
        assert_eq!(
            s.use_passkey("u", "x", 9, "{}", 22).await.unwrap(),
            UsePasskey::Gone
        );
        assert!(s.rename_passkey("u", "a", "Desk").await.unwrap());
        let a = s
            .passkeys("u")
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.id == "a")
            .unwrap();
        assert_eq!((a.name.as_str(), a.last_used, a.counter), ("Desk", 21, 5));
        // The last allowed method stays where MFA is enforced.
        let only_passkeys = KeepMethod {
            enforced: true,
            totp: false,
            webauthn: true,
        };
        let t = MemoryStore::new();
        t.add_passkey("v", &pk("only"), 0, None).await.unwrap();
        assert_eq!(
            t.remove_passkey("v", "only", only_passkeys).await.unwrap(),
            RemovePasskey::LastMethod
        );
        let optional = KeepMethod {
            enforced: false,
            ..only_passkeys
        };
        // The last factor stays where MFA is optional too: MFA off is its own confirmed step.
        assert_eq!(
            t.remove_passkey("v", "only", optional).await.unwrap(),
            RemovePasskey::LastMethod
        );
        t.enroll("v", b"sealed", "k1", 5, 1, None).await.unwrap();
        assert_eq!(
            t.remove_passkey("v", "only", optional).await.unwrap(),
            RemovePasskey::Removed
        );
        assert_eq!(
            t.remove_passkey("v", "only", optional).await.unwrap(),
            RemovePasskey::Gone
        );
        // A reset removes them all and counts them as an enrollment.
        s.lock()
            .unwrap()
            .users
            .entry("u".into())
            .or_default()
            .last_login = Some(1);
        assert_eq!(s.reset("u", 30, None).await.unwrap(), Some(true));
        assert!(s.passkeys("u").await.unwrap().is_empty());
        // MFA turned off removes the app and every passkey in one step, and says what was there.
        s.add_passkey("w", &pk("p1"), 0, None).await.unwrap();
        s.add_passkey("w", &pk("p2"), 0, None).await.unwrap();
        s.enroll("w", b"sealed", "k1", 5, 1, None).await.unwrap();
        assert_eq!(
            s.delete_enrollment("w").await.unwrap(),
            Disabled {
                app: true,
                passkeys: 2
            }
        );
        assert!(s.passkeys("w").await.unwrap().is_empty());
        assert!(!s.user("w").await.unwrap().enrolled());
        assert_eq!(s.delete_enrollment("w").await.unwrap(), Disabled::default());
        // A ceremony's state is taken once.
        s.put_ceremony("c:1", b"state", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            s.take_ceremony("c:1").await.unwrap().as_deref(),
            Some(&b"state"[..])
        );
        assert_eq!(s.take_ceremony("c:1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn after_a_reset_with_a_code_a_passkey_needs_the_ticket_of_the_sign_in_that_typed_it() {
        let s = MemoryStore::new();
        s.note_login("u", "customer", 5, &Default::default())
            .await
            .unwrap();
        let code = NewEnrollmentCode {
            hash: "h1",
            until: 100,
        };
        s.reset("u", 10, Some(code)).await.unwrap();
        let epoch = s.user("u").await.unwrap().epoch;
        assert_eq!(
            s.add_passkey("u", &pk("a"), epoch, None).await.unwrap(),
            AddPasskey::CodeRequired
        );
        assert_eq!(
            s.use_enrollment_code("u", "h1", 20, "t1").await.unwrap(),
            UseCodeResult::Accepted
        );
        assert_eq!(
            s.add_passkey("u", &pk("a"), epoch, Some("t2"))
                .await
                .unwrap(),
            AddPasskey::CodeRequired,
            "another sign-in's ticket"
        );
        assert_eq!(
            s.add_passkey("u", &pk("a"), epoch, Some("t1"))
                .await
                .unwrap(),
            AddPasskey::Added
        );
        let r = s.user("u").await.unwrap();
        assert_eq!(r.enroll_ticket, None);
        assert!(!r.enrollment_code_required());
        // A second passkey needs nothing more.
        assert_eq!(
            s.add_passkey("u", &pk("b"), epoch, None).await.unwrap(),
            AddPasskey::Added
        );
    }
}
