//! The store operations on Redis: keys, commands and script calls for challenges, users and
//! enrollment, attempts and locks, pre-login sessions, the pending-enrollment index, the user
//! index, the audit log and the revocation feed. Which connection they go over, and whether a
//! replica must acknowledge them, is `super::conn`'s; the Lua is in `super::scripts`.

use std::time::Duration;

use super::RedisStore;
use super::conn::{Ack, Write};
use crate::store::revocation::Revocation;
use crate::store::{
    AddPasskey, Attempt, Disabled, EnrollResult, IssueResult, KeepMethod, Limits, MAX_PASSKEYS,
    MAX_REMEMBERED_BROWSERS, NewEnrollmentCode, OWNER_WAIT_FLAG, OwnerEnter, PreAdmit, PreState,
    RememberedBrowser, RemovePasskey, StoreError, StoredPasskey, UseCodeResult, UsePasskey,
    UserRecord, key_safe, lock_duration, user_window,
};

impl RedisStore {
    pub(super) fn user_key(&self, user: &str) -> String {
        format!("{}{{u:{}}}", self.key_prefix, key_safe(user))
    }
    /// The user's remembered browsers, in the user's hash slot.
    fn remembered_key(&self, user: &str) -> String {
        format!("{}:rb", self.user_key(user))
    }
    /// The user's passkeys, in the user's hash slot.
    fn passkeys_key(&self, user: &str) -> String {
        format!("{}:pk", self.user_key(user))
    }
    fn ceremony_key(&self, key: &str) -> String {
        format!("{}{{wa:{}}}", self.key_prefix, key_safe(key))
    }
    fn pending_secret_key(&self, user: &str) -> String {
        format!("{}:pending", self.user_key(user))
    }
    fn addr_key(&self, addr: &str) -> String {
        format!("{}{{a:{}}}", self.key_prefix, key_safe(addr))
    }
    /// The (address, user) pair noted at a right code, in the address's hash slot.
    fn pair_key(&self, addr: &str, user: &str) -> String {
        format!("{}:ok:{}", self.addr_key(addr), key_safe(user))
    }
    fn challenge_key(&self, id: &str) -> String {
        format!("{}{{c:{}}}", self.key_prefix, key_safe(id))
    }
    fn feed_key(&self) -> String {
        format!("{}{{rev}}", self.key_prefix)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self.conn.run(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("PING answered {pong:?}")))
        }
    }

    pub async fn put_challenge(
        &self,
        id: &str,
        blob: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.challenge_key(id))
            .arg(blob)
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        self.conn.run::<()>(&cmd).await
    }

    pub async fn get_challenge(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .run(redis::cmd("GET").arg(self.challenge_key(id)))
            .await
    }

    pub async fn replace_challenge(
        &self,
        id: &str,
        blob: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.challenge_key(id)).arg(blob).arg("XX");
        match ttl {
            Some(t) => cmd
                .arg("PX")
                .arg(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            None => cmd.arg("KEEPTTL"),
        };
        let r: Option<String> = self.conn.run(&cmd).await?;
        Ok(r.is_some())
    }

    pub async fn pending_secret(
        &self,
        user: &str,
        fresh: &[u8],
        ttl: Duration,
        now: u64,
        discard: Option<&[u8]>,
    ) -> Result<crate::store::Pending, StoreError> {
        self.index_user(user).await?;
        let mut inv = self.scripts.pending.prepare_invoke();
        inv.key(self.user_key(user))
            .key(self.pending_secret_key(user))
            .arg(fresh)
            .arg(ttl.as_secs().max(1))
            .arg(now)
            .arg(discard.unwrap_or_default());
        let (kind, v): (i64, Vec<u8>) = self.conn.script(inv).await?;
        Ok(if kind == 1 {
            crate::store::Pending::Existing(v)
        } else {
            crate::store::Pending::Created {
                replaced: v == b"1",
            }
        })
    }

    pub async fn take_challenge(&self, id: &str) -> Result<bool, StoreError> {
        let n: u64 = self
            .conn
            .run(redis::cmd("DEL").arg(self.challenge_key(id)))
            .await?;
        Ok(n == 1)
    }

    pub async fn user(&self, user: &str) -> Result<UserRecord, StoreError> {
        let fields: std::collections::HashMap<String, Vec<u8>> = self
            .conn
            .run(redis::cmd("HGETALL").arg(self.user_key(user)))
            .await?;
        let num = |k: &str| -> Option<u64> {
            fields
                .get(k)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|s| s.parse().ok())
        };
        let text = |k: &str| -> Option<String> {
            fields
                .get(k)
                .and_then(|v| String::from_utf8(v.clone()).ok())
        };
        Ok(UserRecord {
            secret: fields.get("secret").cloned(),
            enrolled_at: num("enrolled_at"),
            last_used: num("last_used"),
            last_step: num("last_step"),
            postponed: num("postponed").map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            offer_declined: num("offer_declined"),
            recovery: fields
                .get("recovery")
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(|s| {
                    s.lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            role: fields
                .get("role")
                .and_then(|v| String::from_utf8(v.clone()).ok()),
            last_login: num("last_login"),
            reset_at: num("reset_at"),
            epoch: num("epoch").unwrap_or(0),
            enroll_code: text("ecode"),
            enroll_code_until: num("ecode_until"),
            enroll_code_issued: num("ecode_issued"),
            enroll_ticket: text("eticket"),
        })
    }

    pub async fn enroll(
        &self,
        user: &str,
        sealed: &[u8],
        key_id: &str,
        now: u64,
        step: u64,
        ticket: Option<&str>,
    ) -> Result<EnrollResult, StoreError> {
        // Indexed before the secret is written, so no enrolled secret is missing from the
        // index that key re-encryption walks.
        self.index_user(user).await?;
        let mut inv = self.scripts.enroll.prepare_invoke();
        inv.key(self.user_key(user))
            .key(self.pending_secret_key(user))
            .arg(sealed)
            .arg(key_id)
            .arg(now)
            .arg(step)
            .arg(ticket.unwrap_or_default());
        let r: i64 = self
            .conn
            .durable_as(Write::Script(inv), |n: &i64| *n == 1, Ack::Required)
            .await?;
        Ok(match r {
            1 => EnrollResult::Enrolled,
            -1 => EnrollResult::CodeRequired,
            _ => EnrollResult::AlreadyEnrolled,
        })
    }

    pub async fn accept_step(&self, user: &str, step: u64, now: u64) -> Result<bool, StoreError> {
        let mut inv = self.scripts.accept_step.prepare_invoke();
        inv.key(self.user_key(user)).arg(step).arg(now);
        let r: i64 = self.conn.script(inv).await?;
        Ok(r == 1)
    }

    /// See [`crate::store::Store::take_attempt`]. The address and the user live in different hash
    /// slots, so this is three steps, ordered so that no attempt is counted where it is then
    /// given back while others are in flight: a locked address refuses before anything is
    /// counted; then the user's attempt is taken (a refusal counts nothing for the address);
    /// then the address's, and only if the address locked in between is the user's attempt
    /// given back (with a lock and escalation step it set).
    pub async fn take_attempt(
        &self,
        user: &str,
        addr: &str,
        limits: Limits,
    ) -> Result<Attempt, StoreError> {
        let window = limits.lock.as_secs().max(1);
        let ak = self.addr_key(addr);
        let mut inv = self.scripts.addr_gate.prepare_invoke();
        inv.key(format!("{ak}:lock")).key(self.pair_key(addr, user));
        let (gate, gate_ms): (u8, u64) = self.conn.script(inv).await?;
        if gate == 0 {
            return Ok(Attempt::Refused(Duration::from_millis(gate_ms.max(1000))));
        }
        let known = gate == 2;
        let uk = self.user_key(user);
        // A locked user is refused without a write (and so without the acknowledged write's
        // own connection below): a burst at a locked user stays cheap. The script decides.
        let user_ttl: i64 = self
            .conn
            .run(redis::cmd("PTTL").arg(format!("{uk}:lock")))
            .await?;
        if user_ttl != -2 {
            return Ok(Attempt::Refused(Duration::from_millis(
                u64::try_from(user_ttl).unwrap_or(0).max(1000),
            )));
        }
        let mut inv = self.scripts.take_user.prepare_invoke();
        inv.key(format!("{uk}:fails"))
            .key(format!("{uk}:lock"))
            .key(format!("{uk}:level"))
            .arg(limits.max_failures)
            .arg(user_window(limits).as_secs())
            .arg(window)
            .arg(lock_duration(limits.lock, 64).as_secs());
        // Acknowledged by a replica (Sentinel) before any code is checked: a fail-over cannot
        // undo an attempt whose code was checked, or a lock it set.
        let (u, u_ms): (u8, u64) = self
            .conn
            .durable_as(
                Write::Script(inv),
                |(u, _): &(u8, u64)| *u != 0,
                Ack::IfReplicaConnected,
            )
            .await?;
        if u == 0 {
            return Ok(Attempt::Refused(Duration::from_millis(u_ms)));
        }
        let user_lock = (u == 2).then(|| Duration::from_millis(u_ms));
        if known {
            return Ok(Attempt::Allowed {
                user_lock,
                addr_lock: None,
                addr_counted: false,
            });
        }
        let mut inv = self.scripts.take_addr.prepare_invoke();
        inv.key(format!("{ak}:fails"))
            .key(format!("{ak}:lock"))
            .arg(limits.max_failures_per_address)
            .arg(window);
        let (a, a_ms): (u8, u64) = self
            .conn
            .durable_as(
                Write::Script(inv),
                |(a, _): &(u8, u64)| *a != 0,
                Ack::IfReplicaConnected,
            )
            .await?;
        if a == 0 {
            self.give_back_user(user, user_lock.is_some(), limits)
                .await?;
            return Ok(Attempt::Refused(Duration::from_millis(a_ms)));
        }
        Ok(Attempt::Allowed {
            user_lock,
            addr_lock: (a == 2).then(|| Duration::from_millis(a_ms)),
            addr_counted: true,
        })
    }

    /// Gives the user's attempt back; one that set the lock lifts it and its escalation step.
    async fn give_back_user(
        &self,
        user: &str,
        set_lock: bool,
        limits: Limits,
    ) -> Result<(), StoreError> {
        let uk = self.user_key(user);
        let mut inv = self.scripts.give_back.prepare_invoke();
        inv.key(format!("{uk}:fails"))
            .key(format!("{uk}:lock"))
            .key(format!("{uk}:level"))
            .arg(u8::from(set_lock))
            .arg(limits.max_failures)
            .arg(user_window(limits).as_secs());
        self.conn.script::<i64>(inv).await.map(|_| ())
    }

    async fn give_back_addr(
        &self,
        addr: &str,
        set_lock: bool,
        limits: Limits,
    ) -> Result<(), StoreError> {
        let ak = self.addr_key(addr);
        let mut inv = self.scripts.give_back.prepare_invoke();
        inv.key(format!("{ak}:fails"))
            .key(format!("{ak}:lock"))
            .arg(u8::from(set_lock))
            .arg(limits.max_failures_per_address)
            .arg(limits.lock.as_secs().max(1));
        self.conn.script::<i64>(inv).await.map(|_| ())
    }

    pub async fn attempt_succeeded(
        &self,
        user: &str,
        addr: &str,
        attempt: Attempt,
        limits: Limits,
    ) -> Result<(), StoreError> {
        let uk = self.user_key(user);
        let set_lock = matches!(
            attempt,
            Attempt::Allowed {
                user_lock: Some(_),
                ..
            }
        );
        let mut inv = self.scripts.user_succeeded.prepare_invoke();
        inv.key(format!("{uk}:fails"))
            .key(format!("{uk}:lock"))
            .key(format!("{uk}:level"))
            .arg(u8::from(set_lock));
        self.conn.script::<i64>(inv).await?;
        let ak = self.addr_key(addr);
        let mut inv = self.scripts.addr_succeeded.prepare_invoke();
        inv.key(format!("{ak}:fails"))
            .key(format!("{ak}:lock"))
            .key(self.pair_key(addr, user))
            .arg(u8::from(attempt.addr_counted()))
            .arg(u8::from(attempt.set_addr_lock()))
            .arg(limits.max_failures_per_address)
            .arg(limits.lock.as_secs().max(1))
            .arg(crate::store::KNOWN_PAIR_TTL.as_secs());
        self.conn.script::<i64>(inv).await.map(|_| ())
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
        if user_lock.is_none() {
            self.give_back_user(user, false, limits).await?;
        }
        if !attempt.addr_counted() {
            return Ok(());
        }
        self.give_back_addr(addr, attempt.set_addr_lock(), limits)
            .await
    }

    pub async fn unlock(&self, user: &str) -> Result<Option<bool>, StoreError> {
        let uk = self.user_key(user);
        let mut inv = self.scripts.unlock.prepare_invoke();
        inv.key(&uk)
            .key(format!("{uk}:lock"))
            .key(format!("{uk}:fails"))
            .key(format!("{uk}:level"));
        // The MSP is told "unlocked": acknowledged by a replica (Sentinel).
        let n = self
            .conn
            .durable_as(
                Write::Script(inv),
                |n: &i64| *n > 0,
                Ack::IfReplicaConnected,
            )
            .await?;
        Ok((n >= 0).then_some(n > 0))
    }

    pub async fn postpone_if_unenrolled(&self, user: &str) -> Result<Option<u32>, StoreError> {
        let mut inv = self.scripts.postpone_if.prepare_invoke();
        inv.key(self.user_key(user));
        let n: i64 = self.conn.script(inv).await?;
        Ok(u32::try_from(n).ok())
    }

    pub async fn decline_if_unenrolled(&self, user: &str, now: u64) -> Result<bool, StoreError> {
        let mut inv = self.scripts.decline_if.prepare_invoke();
        inv.key(self.user_key(user)).arg(now);
        let n: i64 = self.conn.script(inv).await?;
        Ok(n == 1)
    }

    pub async fn incr_postponed(&self, user: &str) -> Result<u32, StoreError> {
        let n: u64 = self
            .conn
            .run(
                redis::cmd("HINCRBY")
                    .arg(self.user_key(user))
                    .arg("postponed")
                    .arg(1),
            )
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub async fn set_offer_declined(&self, user: &str, now: u64) -> Result<(), StoreError> {
        self.conn
            .run::<()>(
                redis::cmd("HSET")
                    .arg(self.user_key(user))
                    .arg("offer_declined")
                    .arg(now),
            )
            .await
    }

    pub async fn delete_enrollment(&self, user: &str) -> Result<Disabled, StoreError> {
        let mut inv = self.scripts.delete_enrollment.prepare_invoke();
        inv.key(self.user_key(user))
            .key(self.remembered_key(user))
            .key(self.passkeys_key(user));
        let v: Vec<i64> = self
            .conn
            .durable_as(
                Write::Script(inv),
                |v: &Vec<i64>| v.iter().any(|n| *n != 0),
                Ack::Required,
            )
            .await?;
        match v.as_slice() {
            [app, passkeys] => Ok(Disabled {
                app: *app == 1,
                passkeys: usize::try_from(*passkeys).unwrap_or(0),
            }),
            _ => Err(StoreError::Corrupt(format!(
                "turning MFA off answered {v:?}"
            ))),
        }
    }

    fn pre_key(&self, hash: &str) -> String {
        format!("{}{{pl:{}}}", self.key_prefix, key_safe(hash))
    }

    pub async fn pre_open(&self, hash: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let key = self.pre_key(hash);
        let mut inv = self.scripts.pre_open.prepare_invoke();
        inv.key(&key).arg(ms);
        let n: i64 = self.conn.script(inv).await?;
        Ok(n == 1)
    }

    pub async fn pre_state(&self, hash: &str) -> Result<PreState, StoreError> {
        let s: Option<String> = self
            .conn
            .run(redis::cmd("HGET").arg(self.pre_key(hash)).arg("state"))
            .await?;
        Ok(match s.as_deref() {
            None => PreState::Missing,
            Some("anon") => PreState::Anonymous,
            Some(_) => PreState::SigningIn,
        })
    }

    pub async fn pre_sign_in(
        &self,
        hash: &str,
        user: &str,
        keep: Duration,
    ) -> Result<PreState, StoreError> {
        let ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX).max(1);
        let key = self.pre_key(hash);
        let mut inv = self.scripts.pre_sign_in.prepare_invoke();
        inv.key(&key).arg(user).arg(ms);
        let n: i64 = self.conn.script(inv).await?;
        Ok(match n {
            1 => PreState::Anonymous,
            0 => PreState::SigningIn,
            _ => PreState::Missing,
        })
    }

    fn pre_lease_key(&self, hash: &str) -> String {
        format!("{}:lease", self.pre_key(hash))
    }

    pub async fn pre_admit(
        &self,
        hash: &str,
        token: &str,
        lease: Duration,
    ) -> Result<PreAdmit, StoreError> {
        let ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut inv = self.scripts.pre_admit.prepare_invoke();
        inv.key(self.pre_key(hash))
            .key(self.pre_lease_key(hash))
            .arg(token)
            .arg(ms);
        let n: i64 = self.conn.script(inv).await?;
        Ok(match n {
            1 => PreAdmit::Leased,
            2 => PreAdmit::Busy,
            0 => PreAdmit::SigningIn,
            _ => PreAdmit::Missing,
        })
    }

    pub async fn pre_release(&self, hash: &str, token: &str) -> Result<(), StoreError> {
        let mut inv = self.scripts.pre_release.prepare_invoke();
        inv.key(self.pre_lease_key(hash)).arg(token);
        self.conn.script::<i64>(inv).await.map(|_| ())
    }

    fn owner_keys(&self, inv: &mut redis::ScriptInvocation<'_>, hash: &str) {
        let k = self.pre_key(hash);
        inv.key(format!("{k}:r"))
            .key(format!("{k}:x"))
            .key(format!("{k}:xw"));
    }

    pub async fn owner_enter(
        &self,
        hash: &str,
        token: &str,
        exclusive: bool,
        lease: Duration,
    ) -> Result<OwnerEnter, StoreError> {
        let ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut inv = self.scripts.owner_enter.prepare_invoke();
        self.owner_keys(&mut inv, hash);
        inv.key(format!("{}:end", self.pre_key(hash)))
            .arg(token)
            .arg(ms)
            .arg(if exclusive { "x" } else { "s" })
            .arg(OWNER_WAIT_FLAG.as_millis() as u64);
        let n: i64 = self.conn.script(inv).await?;
        Ok(match n {
            1 => OwnerEnter::Entered,
            0 => OwnerEnter::Busy,
            _ => OwnerEnter::Ended,
        })
    }

    pub async fn owner_leave(
        &self,
        hash: &str,
        token: &str,
        exclusive: bool,
    ) -> Result<(), StoreError> {
        let mut inv = self.scripts.owner_leave.prepare_invoke();
        self.owner_keys(&mut inv, hash);
        inv.arg(token).arg(if exclusive { "x" } else { "s" });
        self.conn.script::<i64>(inv).await.map(|_| ())
    }

    pub async fn owner_end(&self, hash: &str, keep: Duration) -> Result<(), StoreError> {
        let ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX).max(1);
        self.conn
            .run::<()>(
                redis::cmd("SET")
                    .arg(format!("{}:end", self.pre_key(hash)))
                    .arg(1)
                    .arg("PX")
                    .arg(ms),
            )
            .await
    }

    pub async fn pre_drop(&self, hash: &str) -> Result<(), StoreError> {
        self.conn
            .run::<i64>(redis::cmd("DEL").arg(self.pre_key(hash)))
            .await
            .map(|_| ())
    }

    fn pending_key(&self) -> String {
        format!("{}{{pending}}", self.key_prefix)
    }

    pub async fn pending_add(&self, member: &str, expires: u64) -> Result<(), StoreError> {
        self.conn
            .run::<()>(
                redis::cmd("ZADD")
                    .arg(self.pending_key())
                    .arg(expires)
                    .arg(member),
            )
            .await
    }

    pub async fn pending_remove(&self, member: &str) -> Result<bool, StoreError> {
        let n: u64 = self
            .conn
            .run(redis::cmd("ZREM").arg(self.pending_key()).arg(member))
            .await?;
        Ok(n == 1)
    }

    pub async fn pending_due(&self, now: u64) -> Result<Vec<String>, StoreError> {
        let due: Vec<String> = self
            .conn
            .run(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(self.pending_key())
                    .arg("-inf")
                    .arg(now)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(500),
            )
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for m in due {
            // ZREM is the claim: of several instances sweeping at once, one gets 1.
            if self.pending_remove(&m).await? {
                claimed.push(m);
            }
        }
        Ok(claimed)
    }

    fn users_key(&self) -> String {
        format!("{}{{users}}", self.key_prefix)
    }
    fn audit_key(&self) -> String {
        format!("{}{{audit}}", self.key_prefix)
    }

    pub async fn note_login(
        &self,
        user: &str,
        role: &str,
        now: u64,
        contact: &crate::store::Contact,
    ) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.user_key(user))
            .arg("role")
            .arg(role)
            .arg("last_login")
            .arg(now);
        if let Some(e) = &contact.email {
            cmd.arg("email").arg(e);
        }
        if let Some(l) = &contact.lang {
            cmd.arg("lang").arg(l);
        }
        self.conn.run::<()>(&cmd).await?;
        self.index_user(user).await
    }

    pub async fn claim_vms_name(
        &self,
        user: &str,
        vms_name: &str,
    ) -> Result<Option<String>, StoreError> {
        // HSETNX is the atomic claim; the read after it returns whoever won.
        self.conn
            .run::<()>(
                redis::cmd("HSETNX")
                    .arg(self.user_key(user))
                    .arg("vms_name")
                    .arg(vms_name),
            )
            .await?;
        self.conn
            .run(redis::cmd("HGET").arg(self.user_key(user)).arg("vms_name"))
            .await
    }

    async fn index_user(&self, user: &str) -> Result<(), StoreError> {
        self.conn
            .run::<()>(redis::cmd("ZADD").arg(self.users_key()).arg(0).arg(user))
            .await
    }

    pub async fn users_after(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let start = if after.is_empty() {
            "-".to_string()
        } else {
            format!("({after}")
        };
        let mut cmd = redis::cmd("ZRANGEBYLEX");
        cmd.arg(self.users_key())
            .arg(start)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(limit);
        self.conn.run(&cmd).await
    }

    pub async fn reseal_secret(
        &self,
        user: &str,
        current: &[u8],
        sealed: &[u8],
        key_id: &str,
    ) -> Result<bool, StoreError> {
        let mut inv = self.scripts.reseal.prepare_invoke();
        inv.key(self.user_key(user))
            .arg(current)
            .arg(sealed)
            .arg(key_id);
        Ok(self.conn.durable(Write::Script(inv)).await? == 1)
    }

    pub async fn remember_browser(
        &self,
        user: &str,
        rec: &RememberedBrowser,
        replaces: Option<&str>,
        now: u64,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        let mut inv = self.scripts.remember.prepare_invoke();
        inv.key(self.user_key(user))
            .key(self.remembered_key(user))
            .arg(&rec.id)
            .arg(rec.encode())
            .arg(rec.epoch)
            .arg(replaces.unwrap_or_default())
            .arg(now)
            .arg(keep.as_secs().max(1))
            .arg(MAX_REMEMBERED_BROWSERS);
        let n: i64 = self.conn.script(inv).await?;
        Ok(n == 1)
    }

    pub async fn use_remembered_browser(
        &self,
        user: &str,
        id: &str,
        now: u64,
        max_age: Duration,
    ) -> Result<Option<RememberedBrowser>, StoreError> {
        let mut inv = self.scripts.use_remembered.prepare_invoke();
        inv.key(self.user_key(user))
            .key(self.remembered_key(user))
            .arg(id)
            .arg(now)
            .arg(max_age.as_secs());
        let v: Option<String> = self.conn.script(inv).await?;
        Ok(v.and_then(|v| RememberedBrowser::decode(id, &v)))
    }

    pub async fn remembered_browsers(
        &self,
        user: &str,
    ) -> Result<Vec<RememberedBrowser>, StoreError> {
        let all: std::collections::HashMap<String, String> = self
            .conn
            .run(redis::cmd("HGETALL").arg(self.remembered_key(user)))
            .await?;
        Ok(all
            .iter()
            .filter_map(|(id, v)| RememberedBrowser::decode(id, v))
            .collect())
    }

    pub async fn forget_browser(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(self.remembered_key(user)).arg(id);
        // The user (or an MSP) is told "forgotten": acknowledged by a replica (Sentinel).
        Ok(self.conn.durable(Write::Cmd(&cmd)).await? == 1)
    }

    pub async fn forget_browsers(&self, user: &str) -> Result<usize, StoreError> {
        let mut inv = self.scripts.forget_all.prepare_invoke();
        inv.key(self.remembered_key(user));
        let n = self.conn.durable(Write::Script(inv)).await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub async fn set_recovery(&self, user: &str, hashes: &[String]) -> Result<(), StoreError> {
        let mut inv = self.scripts.hset.prepare_invoke();
        inv.key(self.user_key(user))
            .arg("recovery")
            .arg(hashes.join("\n"));
        self.conn.durable(Write::Script(inv)).await.map(|_| ())
    }

    pub async fn use_recovery(&self, user: &str, hash: &str) -> Result<Option<usize>, StoreError> {
        let mut inv = self.scripts.use_recovery.prepare_invoke();
        inv.key(self.user_key(user)).arg(hash);
        let n = self.conn.durable(Write::Script(inv)).await?;
        Ok(usize::try_from(n).ok())
    }

    pub async fn reset(
        &self,
        user: &str,
        now: u64,
        code: Option<NewEnrollmentCode<'_>>,
    ) -> Result<Option<bool>, StoreError> {
        let uk = self.user_key(user);
        let mut inv = self.scripts.reset.prepare_invoke();
        inv.key(&uk)
            .key(self.remembered_key(user))
            .key(self.passkeys_key(user))
            .key(format!("{uk}:lock"))
            .key(format!("{uk}:fails"))
            .key(format!("{uk}:level"))
            .arg(now)
            .arg(code.map_or("", |c| c.hash))
            .arg(code.map_or(0, |c| c.until));
        let n = self.conn.durable(Write::Script(inv)).await?;
        Ok((n >= 0).then_some(n == 1))
    }

    pub async fn issue_enrollment_code(
        &self,
        user: &str,
        code: NewEnrollmentCode<'_>,
        now: u64,
    ) -> Result<IssueResult, StoreError> {
        let mut inv = self.scripts.issue_code.prepare_invoke();
        inv.key(self.user_key(user))
            .arg(code.hash)
            .arg(code.until)
            .arg(now);
        let n: i64 = self
            .conn
            .durable_as(Write::Script(inv), |n: &i64| *n == 1, Ack::Required)
            .await?;
        Ok(match n {
            1 => IssueResult::Issued,
            0 => IssueResult::Enrolled,
            _ => IssueResult::Unknown,
        })
    }

    pub async fn use_enrollment_code(
        &self,
        user: &str,
        candidate: &str,
        now: u64,
        ticket: &str,
    ) -> Result<UseCodeResult, StoreError> {
        let mut inv = self.scripts.use_code.prepare_invoke();
        inv.key(self.user_key(user))
            .arg(candidate)
            .arg(now)
            .arg(ticket);
        let n: i64 = self
            .conn
            .durable_as(Write::Script(inv), |n: &i64| *n == 1, Ack::Required)
            .await?;
        Ok(match n {
            1 => UseCodeResult::Accepted,
            2 => UseCodeResult::Enrolled,
            0 => UseCodeResult::NonePending,
            -2 => UseCodeResult::Expired,
            _ => UseCodeResult::Wrong,
        })
    }

    pub async fn passkeys(&self, user: &str) -> Result<Vec<StoredPasskey>, StoreError> {
        let all: std::collections::HashMap<String, String> = self
            .conn
            .run(redis::cmd("HGETALL").arg(self.passkeys_key(user)))
            .await?;
        Ok(StoredPasskey::decode_all(&all))
    }

    pub async fn add_passkey(
        &self,
        user: &str,
        pk: &StoredPasskey,
        epoch: u64,
        ticket: Option<&str>,
    ) -> Result<AddPasskey, StoreError> {
        let mut inv = self.scripts.add_passkey.prepare_invoke();
        inv.key(self.user_key(user))
            .key(self.passkeys_key(user))
            .arg(&pk.id)
            .arg(pk.encode_meta())
            .arg(&pk.key)
            .arg(epoch)
            .arg(MAX_PASSKEYS)
            .arg(ticket.unwrap_or_default());
        let n = self
            .conn
            .durable_as(Write::Script(inv), |n: &i64| *n == 1, Ack::Required)
            .await?;
        Ok(match n {
            1 => AddPasskey::Added,
            -2 => AddPasskey::Duplicate,
            -3 => AddPasskey::Full,
            -4 => AddPasskey::CodeRequired,
            _ => AddPasskey::Revoked,
        })
    }

    pub async fn use_passkey(
        &self,
        user: &str,
        id: &str,
        counter: u32,
        key: &str,
        now: u64,
    ) -> Result<UsePasskey, StoreError> {
        let mut inv = self.scripts.use_passkey.prepare_invoke();
        inv.key(self.passkeys_key(user))
            .arg(id)
            .arg(counter)
            .arg(key)
            .arg(now);
        let n: i64 = self.conn.script(inv).await?;
        Ok(match n {
            1 => UsePasskey::Used,
            0 => UsePasskey::CounterRegressed,
            _ => UsePasskey::Gone,
        })
    }

    pub async fn rename_passkey(
        &self,
        user: &str,
        id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let mut inv = self.scripts.rename_passkey.prepare_invoke();
        inv.key(self.passkeys_key(user)).arg(id).arg(name);
        Ok(self.conn.durable(Write::Script(inv)).await? == 1)
    }

    pub async fn remove_passkey(
        &self,
        user: &str,
        id: &str,
        keep: KeepMethod,
    ) -> Result<RemovePasskey, StoreError> {
        let flag = |b: bool| if b { "1" } else { "0" };
        let mut inv = self.scripts.remove_passkey.prepare_invoke();
        inv.key(self.user_key(user))
            .key(self.passkeys_key(user))
            .arg(id)
            .arg(flag(keep.enforced))
            .arg(flag(keep.totp))
            .arg(flag(keep.webauthn));
        // The user is told "removed": acknowledged by a replica (Sentinel).
        let n = self
            .conn
            .durable_as(Write::Script(inv), |n: &i64| *n == 1, Ack::Required)
            .await?;
        Ok(match n {
            1 => RemovePasskey::Removed,
            0 => RemovePasskey::LastMethod,
            _ => RemovePasskey::Gone,
        })
    }

    pub async fn postpone_unless_passkey(&self, user: &str) -> Result<Option<u32>, StoreError> {
        let mut inv = self.scripts.postpone_unless_passkey.prepare_invoke();
        inv.key(self.user_key(user)).key(self.passkeys_key(user));
        let n: i64 = self.conn.script(inv).await?;
        Ok(u32::try_from(n).ok())
    }

    pub async fn put_ceremony(
        &self,
        key: &str,
        state: &[u8],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.ceremony_key(key))
            .arg(state)
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        self.conn.run::<()>(&cmd).await
    }

    pub async fn take_ceremony(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .run(redis::cmd("GETDEL").arg(self.ceremony_key(key)))
            .await
    }

    pub async fn replace_secret(
        &self,
        user: &str,
        sealed: &[u8],
        key_id: &str,
        now: u64,
        step: u64,
    ) -> Result<(), StoreError> {
        self.index_user(user).await?;
        let mut inv = self.scripts.hset.prepare_invoke();
        inv.key(self.user_key(user))
            .arg("secret")
            .arg(sealed)
            .arg("key_id")
            .arg(key_id)
            .arg("enrolled_at")
            .arg(now)
            .arg("last_used")
            .arg(now)
            .arg("last_step")
            .arg(step);
        self.conn.durable(Write::Script(inv)).await.map(|_| ())
    }

    pub async fn replace_secret_if(
        &self,
        user: &str,
        current: &[u8],
        sealed: &[u8],
        key_id: &str,
        now: u64,
        step: u64,
    ) -> Result<bool, StoreError> {
        self.index_user(user).await?;
        let mut inv = self.scripts.replace_if.prepare_invoke();
        inv.key(self.user_key(user))
            .key(self.remembered_key(user))
            .arg(current)
            .arg(sealed)
            .arg(key_id)
            .arg(now)
            .arg(step);
        Ok(self.conn.durable(Write::Script(inv)).await? == 1)
    }

    pub async fn search_users(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut cmd = redis::cmd("ZRANGEBYLEX");
        let start = format!("[{prefix}");
        let end = format!("[{prefix}\u{10ffff}");
        cmd.arg(self.users_key())
            .arg(start)
            .arg(end)
            .arg("LIMIT")
            .arg(0)
            .arg(limit);
        self.conn.run(&cmd).await
    }

    pub async fn user_failures(&self, user: &str) -> Result<u32, StoreError> {
        let n: Option<u32> = self
            .conn
            .run(redis::cmd("GET").arg(format!("{}:fails", self.user_key(user))))
            .await?;
        Ok(n.unwrap_or(0))
    }

    pub async fn user_lock(&self, user: &str) -> Result<Option<Duration>, StoreError> {
        let ms: i64 = self
            .conn
            .run(redis::cmd("PTTL").arg(format!("{}:lock", self.user_key(user))))
            .await?;
        Ok((ms > 0).then(|| Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
    }

    pub async fn audit_append(&self, json: &str, keep: usize) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.audit_key())
            .arg("MAXLEN")
            .arg("~")
            .arg(keep)
            .arg("*")
            .arg("r")
            .arg(json);
        self.conn.run::<String>(&cmd).await.map(|_| ())
    }

    pub async fn audit_range(
        &self,
        after: &str,
        count: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let start = if after == "0" || after.is_empty() {
            "-".to_string()
        } else {
            format!("({after}")
        };
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(self.audit_key())
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count);
        let rows: Vec<(String, Vec<(String, String)>)> = self.conn.run(&cmd).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, fields)| {
                fields
                    .into_iter()
                    .find(|(k, _)| k == "r")
                    .map(|(_, v)| (id, v))
            })
            .collect())
    }

    pub async fn audit_recent(&self, count: usize) -> Result<Vec<String>, StoreError> {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(self.audit_key())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count);
        let rows: Vec<(String, Vec<(String, String)>)> = self.conn.run(&cmd).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(_, fields)| fields.into_iter().find(|(k, _)| k == "r").map(|(_, v)| v))
            .collect())
    }

    pub async fn revoke(
        &self,
        entry: &Revocation,
        now: u64,
        keep: Duration,
    ) -> Result<(), StoreError> {
        // A logout's revocation, acknowledged by a replica (Sentinel): a fail-over must not
        // bring the logged-out approval back.
        let json = serde_json::to_string(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let min_id = now.saturating_sub(keep.as_secs()).saturating_mul(1000);
        let mut inv = self.scripts.publish.prepare_invoke();
        inv.key(self.feed_key()).arg(min_id).arg(json);
        self.conn
            .durable_as(
                Write::Script(inv),
                |n: &i64| *n != 0,
                Ack::IfReplicaConnected,
            )
            .await
            .map(|_| ())
    }

    pub async fn raise_epoch(&self, user: &str, floor: u64) -> Result<u64, StoreError> {
        let mut inv = self.scripts.raise_epoch.prepare_invoke();
        inv.key(self.user_key(user)).arg(floor);
        let e = self.conn.durable(Write::Script(inv)).await?;
        u64::try_from(e).map_err(|_| StoreError::Corrupt(format!("epoch {e}")))
    }

    pub async fn revoke_acknowledged(
        &self,
        entry: &Revocation,
        now: u64,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let min_id = now.saturating_sub(keep.as_secs()).saturating_mul(1000);
        let mut inv = self.scripts.publish.prepare_invoke();
        inv.key(self.feed_key()).arg(min_id).arg(json);
        self.conn.durable(Write::Script(inv)).await.map(|_| ())
    }

    pub async fn read_revocations(
        &self,
        from: &str,
    ) -> Result<(String, Vec<Revocation>), StoreError> {
        let mut cmd = redis::cmd("XRANGE");
        let start = if from == "0" {
            "-".to_string()
        } else {
            format!("({from}")
        };
        cmd.arg(self.feed_key())
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(10_000);
        let rows: Vec<(String, Vec<(String, String)>)> = self.conn.run(&cmd).await?;
        let mut last = from.to_string();
        let mut out = Vec::with_capacity(rows.len());
        for (id, fields) in rows {
            for (k, v) in fields {
                if k == "e" {
                    match serde_json::from_str::<Revocation>(&v) {
                        Ok(e) => out.push(e),
                        Err(e) => tracing::warn!(error = %e, "ignoring malformed revocation entry"),
                    }
                }
            }
            last = id;
        }
        Ok((last, out))
    }
}
