//! The Redis side of `store::outbox`: the mail outbox, the sender's lease, users' contact
//! fields and e-mailed enrollment codes. The Lua is here too (each script one atomic step on
//! keys of one hash slot: `{mail}` or the user's).

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::RedisStore;
use crate::store::StoreError;
use crate::store::outbox::{CodeIssue, Contact};

// Claims due jobs. KEYS: the outbox. ARGV: now (ms), the hold (ms), how many at most.
// Returns the claimed jobs, each now scored now + hold.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, j in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', until_ms, j) end
return due
"#,
    )
});

// Replaces a job by its next attempt. KEYS: the outbox. ARGV: the job, the next one, due (ms).
static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1
"#,
    )
});

// Moves a job to the dead list. KEYS: the outbox, the dead list. ARGV: the job, its dead
// form, how many dead jobs are kept.
static BURY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
"#,
    )
});

// Takes or renews the sender's lease. KEYS: the lease. ARGV: the token, the ttl (ms).
static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if held then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#,
    )
});

// Stores a new e-mailed code unless the sends are used up. KEYS: the code record. ARGV: the
// code's hash, the ttl (s), the most sends. Returns the send number, or 0 at the limit.
static CODE_ISSUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = tonumber(redis.call('HGET', KEYS[1], 'sends') or '0')
if n >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'sends', n + 1)
-- Each code lives its full time (as its mail says); the sends count until one such time
-- has passed without a send.
redis.call('EXPIRE', KEYS[1], ARGV[2])
return n + 1
"#,
    )
});

// Uses the e-mailed code. KEYS: the code record. ARGV: the typed code's hash. Returns 1 for
// the right one (the record goes, its send count with it: the user is through), 0 for a wrong
// one, -1 when none is pending (expired, or never sent).
static CODE_TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local h = redis.call('HGET', KEYS[1], 'h')
if not h then return -1 end
if h == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"#,
    )
});

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    fn outbox_key(&self) -> String {
        format!("{}{{mail}}:q", self.key_prefix)
    }
    fn dead_key(&self) -> String {
        format!("{}{{mail}}:dead", self.key_prefix)
    }
    fn mail_lease_key(&self) -> String {
        format!("{}{{mail}}:lease", self.key_prefix)
    }
    fn email_code_key(&self, user: &str) -> String {
        format!("{}:ecode", self.user_key(user))
    }

    pub async fn outbox_push(&self, job: &str, due_ms: u64) -> Result<(), StoreError> {
        self.conn
            .run::<()>(
                redis::cmd("ZADD")
                    .arg(self.outbox_key())
                    .arg(due_ms)
                    .arg(job),
            )
            .await
    }

    pub async fn outbox_claim(
        &self,
        now_ms: u64,
        hold: Duration,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut inv = CLAIM.prepare_invoke();
        inv.key(self.outbox_key())
            .arg(now_ms)
            .arg(ms(hold))
            .arg(max.max(1));
        self.conn.script(inv).await
    }

    pub async fn outbox_done(&self, job: &str) -> Result<bool, StoreError> {
        let n: u64 = self
            .conn
            .run(redis::cmd("ZREM").arg(self.outbox_key()).arg(job))
            .await?;
        Ok(n == 1)
    }

    pub async fn outbox_retry(
        &self,
        job: &str,
        next: &str,
        due_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut inv = RETRY.prepare_invoke();
        inv.key(self.outbox_key()).arg(job).arg(next).arg(due_ms);
        let n: i64 = self.conn.script(inv).await?;
        Ok(n == 1)
    }

    pub async fn outbox_bury(
        &self,
        job: &str,
        dead: &str,
        keep: usize,
    ) -> Result<bool, StoreError> {
        let mut inv = BURY.prepare_invoke();
        inv.key(self.outbox_key())
            .key(self.dead_key())
            .arg(job)
            .arg(dead)
            .arg(keep.max(1));
        let n: i64 = self.conn.script(inv).await?;
        Ok(n == 1)
    }

    pub async fn outbox_depth(&self) -> Result<(u64, u64), StoreError> {
        let q: u64 = self
            .conn
            .run(redis::cmd("ZCARD").arg(self.outbox_key()))
            .await?;
        let d: u64 = self
            .conn
            .run(redis::cmd("LLEN").arg(self.dead_key()))
            .await?;
        Ok((q, d))
    }

    pub async fn outbox_dead(&self, max: usize) -> Result<Vec<String>, StoreError> {
        self.conn
            .run(
                redis::cmd("LRANGE")
                    .arg(self.dead_key())
                    .arg(0)
                    .arg(max.saturating_sub(1)),
            )
            .await
    }

    pub async fn mail_lease(&self, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut inv = LEASE.prepare_invoke();
        inv.key(self.mail_lease_key()).arg(token).arg(ms(ttl));
        let n: i64 = self.conn.script(inv).await?;
        Ok(n == 1)
    }

    pub async fn mail_lease_release(&self, token: &str) -> Result<(), StoreError> {
        // The same step as every lease's: deleted only if the token is still the caller's.
        let mut inv = self.scripts.pre_release.prepare_invoke();
        inv.key(self.mail_lease_key()).arg(token);
        self.conn.script::<i64>(inv).await.map(|_| ())
    }

    pub async fn contact(&self, user: &str) -> Result<Contact, StoreError> {
        let (email, lang): (Option<String>, Option<String>) = self
            .conn
            .run(
                redis::cmd("HMGET")
                    .arg(self.user_key(user))
                    .arg("email")
                    .arg("lang"),
            )
            .await?;
        Ok(Contact { email, lang })
    }

    pub async fn email_code_issue(
        &self,
        user: &str,
        hash: &str,
        ttl: Duration,
        max_sends: u32,
    ) -> Result<CodeIssue, StoreError> {
        let mut inv = CODE_ISSUE.prepare_invoke();
        inv.key(self.email_code_key(user))
            .arg(hash)
            .arg(ttl.as_secs().max(1))
            .arg(max_sends);
        let n: i64 = self.conn.script(inv).await?;
        Ok(match u32::try_from(n) {
            Ok(n) if n > 0 => CodeIssue::Stored { n },
            _ => CodeIssue::Limit,
        })
    }

    pub async fn email_code_take(
        &self,
        user: &str,
        hash: &str,
    ) -> Result<super::super::outbox::CodeTake, StoreError> {
        use super::super::outbox::CodeTake;
        let mut inv = CODE_TAKE.prepare_invoke();
        inv.key(self.email_code_key(user)).arg(hash);
        let n: i64 = self.conn.script(inv).await?;
        Ok(match n {
            1 => CodeTake::Right,
            0 => CodeTake::Wrong,
            _ => CodeTake::NonePending,
        })
    }
}
