//! The Redis store: standalone, Sentinel or Cluster, through the `redis` crate on tokio.
//!
//! Connections are made lazily and re-made after failures, so the gateway starts and keeps
//! proxying while Redis is away; operations fail fast with [`StoreError::Unavailable`] (the
//! caller shows a 503 and fails closed) and succeed again as soon as Redis is back.
//!
//! * Standalone: a `ConnectionManager`, which reconnects by itself.
//! * Sentinel: the crate does not follow fail-overs, and a `ConnectionManager` would reconnect
//!   to the address it started with (after a fail-over: a dead server or a demoted replica).
//!   So the master is asked of the sentinels and reached over a plain multiplexed connection.
//!   Any error that is not plainly the command's own (a dead or killed connection, a timeout,
//!   `READONLY` from a demoted master, ...) drops that connection, and the next operation asks
//!   the sentinels again. Every [`SENTINEL_RECHECK`] the sentinels are also asked in the
//!   background whether the master is still the same one, for a master that was replaced
//!   while the gateway's connection to it stayed up (e.g. one cut off from the sentinels).
//! * Cluster: `ClusterConnection`, which follows slot moves and fail-overs by itself; every
//!   script and multi-key command touches keys of one hash slot (`{u:...}`, `{a:...}`).
//!
//! Acknowledged writes: Redis replicates asynchronously, so a write the master acknowledged is
//! lost if the master dies before a replica has it. In sentinel mode the writes a user or an
//! MSP is told about, or that a security decision rests on, are followed by `WAIT 1`:
//! enrollments and removing them, revocations (resets, logouts) and their epochs, MSP
//! unlocks, and every attempt taken at a code (the count and the lock it sets), before that
//! code is checked. See [`RedisStore::durable`] for the trade-off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisFuture, Script, ServerErrorKind, Value,
};
use tokio::sync::Mutex;

use super::revocation::Revocation;
use super::{
    Attempt, Limits, OWNER_WAIT_FLAG, OwnerEnter, PreAdmit, PreState, StoreError, UserRecord,
    key_safe, lock_duration, user_window,
};
use crate::config::{Redis as RedisConfig, RedisMode, redact_url};

/// How often, in sentinel mode, the sentinels are asked whether the master has moved although
/// the connection to the old one still works.
pub const SENTINEL_RECHECK: Duration = Duration::from_secs(5);

/// After a failed connection attempt, operations fail at once for this long rather than
/// each trying again (a sentinel or server that does not answer would otherwise cost every
/// queued request a full connect timeout).
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// One live connection of whichever kind.
#[derive(Clone)]
enum Conn {
    /// Standalone: reconnects by itself to the one configured address.
    Managed(ConnectionManager),
    /// Sentinel: the master the sentinels named; dropped on errors, never reconnected.
    Direct(MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Managed(c) => c.req_packed_command(cmd),
            Conn::Direct(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        p: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Managed(c) => c.req_packed_commands(p, offset, count),
            Conn::Direct(c) => c.req_packed_commands(p, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(p, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Managed(c) => c.get_db(),
            Conn::Direct(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The master a sentinel-mode connection goes to.
#[derive(Clone)]
struct Master {
    client: redis::Client,
    addr: String,
    checked: Instant,
}

/// The connection in use; `generation` tells it from the ones made before and after, so an
/// error on an old connection does not drop a new one.
struct Live {
    conn: Conn,
    master: Option<Master>,
    generation: u64,
}

#[derive(Default)]
struct Slot {
    live: Option<Live>,
    generations: u64,
    /// The last failed connection attempt, so operations queued behind it fail at once
    /// instead of each waiting out its own attempt.
    failed: Option<(Instant, String)>,
}

/// What one operation uses: the connection, and which one it was.
struct Lease {
    conn: Conn,
    master: Option<redis::Client>,
    generation: u64,
}

struct Scripts {
    hset: Script,
    use_recovery: Script,
    reset: Script,
    enroll: Script,
    reseal: Script,
    accept_step: Script,
    raise_epoch: Script,
    unlock: Script,
    publish: Script,
    take_user: Script,
    take_addr: Script,
    give_back: Script,
    addr_gate: Script,
    addr_succeeded: Script,
    user_succeeded: Script,
    replace_if: Script,
    postpone_if: Script,
    decline_if: Script,
    pre_open: Script,
    pre_sign_in: Script,
    pending: Script,
    pre_admit: Script,
    pre_release: Script,
    owner_enter: Script,
    owner_leave: Script,
}

#[derive(Clone)]
pub struct RedisStore {
    cfg: Arc<RedisConfig>,
    slot: Arc<Mutex<Slot>>,
    scripts: Arc<Scripts>,
}

// HSET that always answers 1, so `durable` waits for a replica even when only existing
// fields were overwritten (HSET itself counts new fields only).
const HSET_ALL: &str = r#"
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"#;

// After a right code, for the user. KEYS: fails, lock, level. ARGV: 1 if that code's attempt
// set the lock. The count starts again; a lock (and the escalation step) that this very attempt
// set is given back, a lock set by another attempt stays: the escalation only decays (30 days
// after the last lock) or is lifted by an MSP, so the owner's own sign-ins do not restart an
// attacker's guessing at the shortest lock.
const USER_SUCCEEDED: &str = r#"
redis.call('DEL', KEYS[1])
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[2])
  local level = tonumber(redis.call('GET', KEYS[3]) or '0')
  if level > 1 then redis.call('DECR', KEYS[3]) else redis.call('DEL', KEYS[3]) end
end
return 1
"#;

// KEYS: user hash. ARGV: the stored hash to consume. Returns remaining count or -1.
const USE_RECOVERY: &str = r#"
local all = redis.call('HGET', KEYS[1], 'recovery')
if not all then return -1 end
local kept = {}
local found = false
for line in string.gmatch(all, '[^\n]+') do
  if (not found) and line == ARGV[1] then found = true else table.insert(kept, line) end
end
if not found then return -1 end
redis.call('HSET', KEYS[1], 'recovery', table.concat(kept, '\n'))
return #kept
"#;

// KEYS: user hash. ARGV: now. Returns 1 if a secret was removed, -1 (nothing written) if
// the gateway does not know the user (no login, secret or earlier reset): a reset never
// creates a record.
const RESET: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'last_login') == 0 and redis.call('HEXISTS', KEYS[1], 'secret') == 0
   and redis.call('HEXISTS', KEYS[1], 'reset_at') == 0 then
  return -1
end
local had = redis.call('HEXISTS', KEYS[1], 'secret')
redis.call('HDEL', KEYS[1], 'secret', 'key_id', 'enrolled_at', 'last_used', 'recovery')
redis.call('HSET', KEYS[1], 'reset_at', ARGV[1])
return had
"#;

/// How strictly an acknowledged write needs a replica (Sentinel mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    /// A replica must confirm, or the operation fails (enrollments, resets, revocation
    /// epochs): while every replica is down, they are refused rather than promised.
    Required,
    /// A connected replica must confirm, or the operation fails; a master with no replica
    /// connected at all goes on without (there is no replica a fail-over could promote
    /// without the write, unless one that was already behind comes back and is promoted).
    /// For the writes of every code check, logout and unlock, which would otherwise all stop
    /// while the last replica is gone. Operators who want them refused then set Redis's
    /// `min-replicas-to-write 1` (docs/operations.md).
    IfReplicaConnected,
}

/// How many replicas the master's `ROLE` answer lists as connected (`None` if it is not a
/// master's answer).
fn connected_replicas(role: &Value) -> Option<usize> {
    let items = match role {
        Value::Array(items) => items,
        _ => return None,
    };
    let is_master = matches!(items.first(), Some(Value::BulkString(b)) if b.as_slice() == b"master")
        || matches!(items.first(), Some(Value::SimpleString(t)) if t == "master");
    match (is_master, items.get(2)) {
        (true, Some(Value::Array(replicas))) => Some(replicas.len()),
        _ => None,
    }
}

/// A write whose effect must survive a fail-over (see [`RedisStore::durable`]).
enum Write<'a> {
    Script(redis::ScriptInvocation<'a>),
    Cmd(&'a Cmd),
}

// KEYS: user hash, pending secret. The pending secret goes with the enrollment.
const ENROLL: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'secret', ARGV[1], 'key_id', ARGV[2], 'enrolled_at', ARGV[3], 'last_used', ARGV[3], 'last_step', ARGV[4])
redis.call('HDEL', KEYS[1], 'pending_at')
redis.call('DEL', KEYS[2])
return 1
"#;

// The pending enrollment secret. KEYS: user hash, pending secret. ARGV: a fresh sealed secret,
// its TTL in seconds, now, a stored value to discard ('' for none). Returns {1, stored} when
// one is pending, else stores the fresh one and returns {0, 1 if an earlier one was shown}.
const PENDING: &str = r#"
local v = redis.call('GET', KEYS[2])
if v and v ~= ARGV[4] then return {1, v} end
local earlier = redis.call('HEXISTS', KEYS[1], 'pending_at')
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[1], 'pending_at', ARGV[3])
return {0, tostring(earlier)}
"#;

// KEYS: user hash. ARGV: the sealed secret expected, the new one, its key id. Returns 1 if
// replaced, 0 if the stored secret is not the expected one (removed or replaced meanwhile).
const RESEAL: &str = r#"
if redis.call('HGET', KEYS[1], 'secret') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'secret', ARGV[2], 'key_id', ARGV[3])
return 1
"#;

// A new phone in place of the one a code was checked against. KEYS: user hash. ARGV: the
// sealed secret expected, the new one, its key id, now, the confirming step. Returns 1 if
// replaced, 0 if the stored secret is not the expected one (removed or replaced meanwhile).
const REPLACE_IF: &str = r#"
if redis.call('HGET', KEYS[1], 'secret') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'secret', ARGV[2], 'key_id', ARGV[3], 'enrolled_at', ARGV[4], 'last_used', ARGV[4], 'last_step', ARGV[5])
return 1
"#;

// "Not now" only while not enrolled. KEYS: user hash. Returns the new count, or -1 if enrolled.
const POSTPONE_IF: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 1 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'postponed', 1)
"#;

// A declined offer only while not enrolled. KEYS: user hash. ARGV: now. Returns 1, or 0 if
// enrolled.
const DECLINE_IF: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'offer_declined', ARGV[1])
return 1
"#;

const ACCEPT_STEP: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 0 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], 'last_step') or '-1')
local step = tonumber(ARGV[1])
if step <= last then return 0 end
redis.call('HSET', KEYS[1], 'last_step', ARGV[1], 'last_used', ARGV[2])
return 1
"#;

// Taking an attempt at a code, before it is checked: the lock check and the count are one
// step, so concurrent requests (streams of one connection, several connections, several
// instances) cannot all pass the check before any of them is counted.
//
// KEYS: fails, lock, level (one user: one hash slot). ARGV: max, window secs, base lock secs,
// max lock secs. Returns {0, lock ms} when locked (nothing counted), {1, 0} when allowed, and
// {2, lock ms} when allowed as the last attempt: the lock (escalated by the level) is then
// already set, so every later attempt is refused until a right code lifts it.
const TAKE_USER: &str = r#"
local ttl = redis.call('PTTL', KEYS[2])
if ttl ~= -2 then
  if ttl < 1000 then ttl = 1000 end
  return {0, ttl}
end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if n >= tonumber(ARGV[1]) then
  local level = redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], 2592000)
  local secs = tonumber(ARGV[3]) * (2 ^ math.min(level - 1, 16))
  if secs > tonumber(ARGV[4]) then secs = tonumber(ARGV[4]) end
  if secs < tonumber(ARGV[3]) then secs = tonumber(ARGV[3]) end
  secs = math.floor(secs)
  redis.call('SET', KEYS[2], '1', 'EX', secs)
  redis.call('DEL', KEYS[1])
  return {2, secs * 1000}
end
return {1, 0}
"#;

// The same for a client address (no escalation). KEYS: fails, lock. ARGV: max, window secs.
const TAKE_ADDR: &str = r#"
local ttl = redis.call('PTTL', KEYS[2])
if ttl ~= -2 then
  if ttl < 1000 then ttl = 1000 end
  return {0, ttl}
end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
  redis.call('DEL', KEYS[1])
  return {2, tonumber(ARGV[2]) * 1000}
end
return {1, 0}
"#;

// The first step of taking an attempt, on the address's slot: is the address locked for this
// user? KEYS: address lock, the (address, user) pair. Returns {2, 0} when the user passed MFA
// from this address before (the address neither refuses nor counts them), {0, lock ms} when
// locked, {1, 0} otherwise. Counts nothing.
const ADDR_GATE: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl ~= -2 then
  if ttl < 1000 then ttl = 1000 end
  return {0, ttl}
end
return {1, 0}
"#;

// After a right code, for the address: the (address, user) pair is noted as known and, when
// the address counted the attempt, the attempt is given back, in one step. KEYS: fails, lock,
// pair. ARGV: 1 if counted, 1 if that attempt set the lock, max, window secs, pair ttl secs.
const ADDR_SUCCEEDED: &str = r#"
redis.call('SET', KEYS[3], '1', 'EX', ARGV[5])
if ARGV[1] ~= '1' then return 2 end
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[2])
  local left = tonumber(ARGV[3]) - 1
  if left > 0 then redis.call('SET', KEYS[1], left, 'EX', ARGV[4]) end
  return 1
end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0
"#;

// Gives an attempt back (a right code for the address, an attempt that checked nothing).
// KEYS: fails, lock. ARGV: 1 if that attempt set the lock, max, window secs. An attempt that
// set the lock lifts it and leaves the count one below the limit, as before it.
const GIVE_BACK: &str = r#"
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[2])
  if KEYS[3] then
    local level = tonumber(redis.call('GET', KEYS[3]) or '0')
    if level > 1 then redis.call('DECR', KEYS[3]) else redis.call('DEL', KEYS[3]) end
  end
  local left = tonumber(ARGV[2]) - 1
  if left > 0 then redis.call('SET', KEYS[1], left, 'EX', ARGV[3]) end
  return 1
end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0
"#;

// KEYS: user hash, lock, fails, level. Deletes the lock and its counts; returns how many of
// them existed, or -1 (nothing written) if the gateway does not know the user and there is
// nothing to lift.
const UNLOCK: &str = r#"
local n = redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
if n == 0 and redis.call('HEXISTS', KEYS[1], 'last_login') == 0
   and redis.call('HEXISTS', KEYS[1], 'secret') == 0 and redis.call('HEXISTS', KEYS[1], 'reset_at') == 0 then
  return -1
end
return n
"#;

// KEYS: user hash. ARGV: floor (the highest epoch the caller has seen in the feed). Sets the
// user's revocation epoch to one above the larger of the stored one and the floor; returns it.
const RAISE_EPOCH: &str = r#"
local e = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0') or 0
local floor = tonumber(ARGV[1]) or 0
if floor > e then e = floor end
e = e + 1
redis.call('HSET', KEYS[1], 'epoch', e)
return e
"#;

// KEYS: the revocation feed. ARGV: minimum id to keep, the entry (JSON). XADD answering a
// count, so `durable` can wait for a replica.
const PUBLISH: &str = r#"
redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'e', ARGV[2])
return 1
"#;

// A pre-login session (see `proxy::prelogin`). KEYS: its record. ARGV: ttl ms. Recorded as
// anonymous unless a record in another state is there (a session signing in is never made
// anonymous again by a later answer). Returns 1 if anonymous now, 0 if not.
const PRE_OPEN: &str = r#"
local s = redis.call('HGET', KEYS[1], 'state')
if s and s ~= 'anon' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'anon')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"#;

// The VMS said the pre-login session is signed in. KEYS: its record. ARGV: the user (as the
// VMS reported it, normalised), the ttl ms the record lives from now on (the challenge's).
// Returns 1 if this call switched it from anonymous, 0 if it was signing in already, -1 if
// there is no record.
const PRE_SIGN_IN: &str = r#"
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return -1 end
if s ~= 'anon' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'signing', 'user', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

// Admission of a request on a same-id pre-login session: one request at a time reaches the
// VMS. KEYS: its record, its lease (same hash tag). ARGV: the lease's owner token, its ttl
// ms. Returns 1 if the record is anonymous and this call took the lease, 2 if anonymous but
// the lease is held by another request, 0 if signing in, -1 if there is no record.
const PRE_ADMIT: &str = r#"
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return -1 end
if s ~= 'anon' then return 0 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 2
"#;

// Gives a lease back, only if its owner token is still the caller's. KEYS: the lease.
// ARGV: the token. Returns 1 if released.
const PRE_RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

// Entry of a request on an approved same-id session (`proxy::prelogin::hold`): shared holders
// (GET, HEAD) run alongside each other, an exclusive one alone; an exclusive one that has to
// wait raises a flag that keeps new shared ones out, so a busy page cannot starve it.
// KEYS: the shared holders (sorted set, score: expiry in ms of the server's clock), the
// exclusive holder, the waiting flag, the "ended" mark (one hash tag). ARGV: the owner token,
// the lease in ms, "x" for exclusive, the waiting flag's lifetime in ms. Returns 1 if entered,
// 0 if it must wait, -1 if the session was ended.
const OWNER_ENTER: &str = r#"
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if ARGV[3] ~= 'x' then
  if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('ZCARD', KEYS[1]) > 0 then
  redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[4])
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return 1
"#;

// Gives back what OWNER_ENTER gave a token. KEYS: as OWNER_ENTER's first three. ARGV: the
// token, "x" for exclusive. An exclusive holder also lowers its waiting flag (it may give up).
const OWNER_LEAVE: &str = r#"
if ARGV[2] == 'x' then
  if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
  if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
"#;

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Redis(e)
}

/// Whether an error is the command's own (a script error, a wrong type, ...) and says nothing
/// about the server behind the connection. Every other error — I/O, timeouts, `READONLY`,
/// `LOADING`, `MASTERDOWN`, an unparsable answer — may mean the master has moved.
fn is_command_error(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::ResponseError
                | ServerErrorKind::ExecAbort
                | ServerErrorKind::NoScript
                | ServerErrorKind::CrossSlot
                | ServerErrorKind::NotBusy
                | ServerErrorKind::NoSub
                | ServerErrorKind::NoPerm
        ) | ErrorKind::UnexpectedReturnType
            | ErrorKind::Extension
    )
}

impl RedisStore {
    pub fn new(cfg: &RedisConfig) -> Self {
        Self {
            cfg: Arc::new(cfg.clone()),
            slot: Arc::new(Mutex::new(Slot::default())),
            scripts: Arc::new(Scripts {
                hset: Script::new(HSET_ALL),
                use_recovery: Script::new(USE_RECOVERY),
                reset: Script::new(RESET),
                enroll: Script::new(ENROLL),
                reseal: Script::new(RESEAL),
                accept_step: Script::new(ACCEPT_STEP),
                raise_epoch: Script::new(RAISE_EPOCH),
                unlock: Script::new(UNLOCK),
                publish: Script::new(PUBLISH),
                take_user: Script::new(TAKE_USER),
                take_addr: Script::new(TAKE_ADDR),
                give_back: Script::new(GIVE_BACK),
                addr_gate: Script::new(ADDR_GATE),
                addr_succeeded: Script::new(ADDR_SUCCEEDED),
                user_succeeded: Script::new(USER_SUCCEEDED),
                replace_if: Script::new(REPLACE_IF),
                postpone_if: Script::new(POSTPONE_IF),
                decline_if: Script::new(DECLINE_IF),
                pre_open: Script::new(PRE_OPEN),
                pre_sign_in: Script::new(PRE_SIGN_IN),
                pending: Script::new(PENDING),
                pre_admit: Script::new(PRE_ADMIT),
                pre_release: Script::new(PRE_RELEASE),
                owner_enter: Script::new(OWNER_ENTER),
                owner_leave: Script::new(OWNER_LEAVE),
            }),
        }
    }

    fn connection_info(&self, url: &str) -> Result<redis::ConnectionInfo, StoreError> {
        use redis::IntoConnectionInfo;
        let info = url.into_connection_info().map_err(|e| {
            StoreError::Unavailable(format!("bad redis url {}: {e}", redact_url(url)))
        })?;
        Ok(match &self.cfg.password {
            Some(p) => {
                let settings = info.redis_settings().clone().set_password(p.as_str());
                info.set_redis_settings(settings)
            }
            None => info,
        })
    }

    /// The private CA for `rediss://`, when configured (read at each connect, so a renewed
    /// bundle is picked up by the next reconnect).
    fn tls_certificates(&self) -> Result<Option<redis::TlsCertificates>, StoreError> {
        let Some(path) = &self.cfg.ca else {
            return Ok(None);
        };
        let pem = std::fs::read(path)
            .map_err(|e| StoreError::Unavailable(format!("redis.ca {}: {e}", path.display())))?;
        Ok(Some(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        }))
    }

    /// Connection settings of a sentinel-mode connection answering within `response`.
    fn direct_config(&self, response: Duration) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.cfg.connect_timeout))
            .set_response_timeout(Some(response))
    }

    /// Asks the sentinels for the current master (the crate also checks with `ROLE` that it
    /// is one), bounded by the connect timeout.
    ///
    /// With `rediss://` sentinels, the master is reached over TLS as well, and both are
    /// verified against `redis.ca` when it is set (else the system roots). The sentinels get
    /// `redis.sentinel_password` (or the password in their URL); the master gets
    /// `redis.password`.
    async fn resolve_master(&self) -> Result<redis::Client, StoreError> {
        use redis::IntoConnectionInfo;
        use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
        let master = self.cfg.sentinel_master.clone().unwrap_or_default();
        let mut addrs = Vec::with_capacity(self.cfg.nodes.len());
        let mut url_password = None;
        for url in &self.cfg.nodes {
            let info = url.as_str().into_connection_info().map_err(|e| {
                StoreError::Unavailable(format!("bad sentinel url {}: {e}", redact_url(url)))
            })?;
            if url_password.is_none() {
                url_password = info.redis_settings().password().map(str::to_owned);
            }
            addrs.push(info.addr().clone());
        }
        let tls = addrs
            .iter()
            .any(|a| matches!(a, redis::ConnectionAddr::TcpTls { .. }));
        let mut builder = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)
            .map_err(unavailable)?;
        if let Some(p) = &self.cfg.password {
            builder = builder.set_client_to_redis_password(p.as_str());
        }
        let sentinel_password = self
            .cfg
            .sentinel_password
            .as_ref()
            .map(|p| p.as_str().to_owned())
            .or(url_password);
        if let Some(p) = sentinel_password {
            builder = builder.set_client_to_sentinel_password(p);
        }
        if tls {
            builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
            if let Some(certs) = self.tls_certificates()? {
                builder = builder
                    .set_client_to_redis_certificates(certs.clone())
                    .set_client_to_sentinel_certificates(certs);
            }
        }
        let mut sentinel = builder.build().map_err(unavailable)?;
        let timeout = self.cfg.connect_timeout + Duration::from_secs(1);
        match tokio::time::timeout(timeout, sentinel.async_get_client()).await {
            Ok(r) => r.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable(format!(
                "the sentinels named no master within {timeout:?}"
            ))),
        }
    }

    async fn connect(&self) -> Result<(Conn, Option<Master>), StoreError> {
        let timeout = self.cfg.connect_timeout;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(self.cfg.response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let fut = async {
            match self.cfg.mode {
                RedisMode::Standalone => {
                    let url = self
                        .cfg
                        .nodes
                        .first()
                        .ok_or_else(|| StoreError::Unavailable("no redis url".into()))?;
                    let info = self.connection_info(url)?;
                    let client = match self.tls_certificates()? {
                        Some(certs) => redis::Client::build_with_tls(info, certs),
                        None => redis::Client::open(info),
                    }
                    .map_err(unavailable)?;
                    ConnectionManager::new_with_config(client, manager_config)
                        .await
                        .map(|c| (Conn::Managed(c), None))
                        .map_err(unavailable)
                }
                RedisMode::Sentinel => {
                    let client = self.resolve_master().await?;
                    let conn = client
                        .get_multiplexed_async_connection_with_config(
                            &self.direct_config(self.cfg.response_timeout),
                        )
                        .await
                        .map_err(unavailable)?;
                    let addr = client.get_connection_info().addr().to_string();
                    tracing::info!(master = %addr, "connected to the Redis master named by the sentinels");
                    let master = Master {
                        client,
                        addr,
                        checked: Instant::now(),
                    };
                    Ok((Conn::Direct(conn), Some(master)))
                }
                RedisMode::Cluster => {
                    let mut builder =
                        redis::cluster::ClusterClient::builder(self.cfg.nodes.clone())
                            .connection_timeout(timeout)
                            .response_timeout(self.cfg.response_timeout);
                    if let Some(p) = &self.cfg.password {
                        builder = builder.password(p.as_str());
                    }
                    if let Some(certs) = self.tls_certificates()? {
                        builder = builder.certs(certs);
                    }
                    let client = builder.build().map_err(unavailable)?;
                    client
                        .get_async_connection()
                        .await
                        .map(|c| (Conn::Cluster(c), None))
                        .map_err(unavailable)
                }
            }
        };
        // Sentinel mode takes two steps (the sentinels, then the master), each bounded.
        match tokio::time::timeout(timeout * 2 + Duration::from_secs(1), fut).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {timeout:?}"
            ))),
        }
    }

    /// The connection to use, made if there is none (at most one attempt per
    /// [`RECONNECT_PAUSE`]). In sentinel mode, starts a background check of the master every
    /// [`SENTINEL_RECHECK`].
    async fn lease(&self) -> Result<Lease, StoreError> {
        let mut slot = self.slot.lock().await;
        if slot.live.is_none() {
            if let Some((at, why)) = &slot.failed
                && at.elapsed() < RECONNECT_PAUSE
            {
                return Err(StoreError::Unavailable(why.clone()));
            }
            let (conn, master) = match self.connect().await {
                Ok(c) => c,
                Err(e) => {
                    slot.failed = Some((Instant::now(), e.to_string()));
                    return Err(e);
                }
            };
            slot.failed = None;
            slot.generations += 1;
            slot.live = Some(Live {
                conn,
                master,
                generation: slot.generations,
            });
        }
        let Some(live) = slot.live.as_mut() else {
            return Err(StoreError::Unavailable("no connection".into()));
        };
        if let Some(m) = live.master.as_mut()
            && m.checked.elapsed() >= SENTINEL_RECHECK
        {
            m.checked = Instant::now();
            self.spawn_recheck(live.generation, m.addr.clone());
        }
        Ok(Lease {
            conn: live.conn.clone(),
            master: live.master.as_ref().map(|m| m.client.clone()),
            generation: live.generation,
        })
    }

    /// Asks the sentinels, off the request path, whether the master is still `addr`; if not,
    /// drops the connection so the next operation goes to the new one.
    fn spawn_recheck(&self, generation: u64, addr: String) {
        let store = self.clone();
        tokio::spawn(async move {
            match store.resolve_master().await {
                Ok(client) => {
                    let now_at = client.get_connection_info().addr().to_string();
                    if now_at != addr {
                        tracing::warn!(old = %addr, new = %now_at, "the sentinels name a new Redis master: reconnecting");
                        store.forget(generation).await;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "sentinels not reachable for the master check")
                }
            }
        });
    }

    /// Drops the connection of this generation (not a newer one).
    async fn forget(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot.live.as_ref().map(|l| l.generation) == Some(generation) {
            slot.live = None;
        }
    }

    /// After an error in sentinel mode the master may have moved: unless the error was the
    /// command's own, forget the connection so the next operation asks the sentinels again.
    async fn on_error(&self, generation: u64, e: &redis::RedisError) {
        if self.cfg.mode == RedisMode::Sentinel && !is_command_error(e) {
            tracing::debug!(error = %e, "dropping the Redis connection; asking the sentinels again");
            self.forget(generation).await;
        }
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut lease = self.lease().await?;
        match cmd.query_async::<T>(&mut lease.conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.on_error(lease.generation, &e).await;
                Err(unavailable(e))
            }
        }
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut lease = self.lease().await?;
        match inv.invoke_async::<T>(&mut lease.conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.on_error(lease.generation, &e).await;
                Err(unavailable(e))
            }
        }
    }

    /// Runs a write whose effect someone is told about (an enrollment, or removing one) and,
    /// in sentinel mode, returns only once a replica has it: `WAIT 1` on the connection that
    /// wrote. The write's result is a count; 0 means nothing was written and nothing is waited
    /// for.
    ///
    /// Trade-off: with asynchronous replication, a master that dies right after acknowledging
    /// would take the enrollment with it, and the user's next login would ask them to enroll
    /// again although their app shows a working entry (or a removed secret would come back).
    /// Waiting costs one replication round trip, and a connection of its own, per write: on
    /// code checks (each attempt is acknowledged before its code is checked), enrollments,
    /// resets, unlocks and logouts; never on proxied requests. A locked user's attempts are
    /// refused before any write. Writes whose loss only fails closed are not waited for: a
    /// right code clearing the user's count (lost: the count stays), the address's give-back
    /// and its (address, user) pair (lost: the address counts the user again). If no replica confirms within `redis.response_timeout`, the
    /// operation fails (503, "try again"): while every replica is down, new enrollments are
    /// refused rather than promised. The write itself may still be on the master; the retry
    /// then finds the user enrolled and asks for the next code. A dedicated connection is
    /// used, because `WAIT` blocks the connection it is sent on and the shared one carries
    /// every other request of this instance. Standalone and Cluster do not wait: a standalone
    /// server has no fail-over, and a cluster may have no replicas at all.
    async fn durable(&self, write: Write<'_>) -> Result<i64, StoreError> {
        self.durable_as(write, |n: &i64| *n != 0, Ack::Required)
            .await
    }

    /// [`Self::durable`] for a write whose answer is of type `T`; `wrote` says from the answer
    /// whether anything was written (only then is a replica waited for), `ack` whether a
    /// master without any connected replica may go on without one (see [`Ack`]).
    async fn durable_as<T: redis::FromRedisValue>(
        &self,
        write: Write<'_>,
        wrote: fn(&T) -> bool,
        ack: Ack,
    ) -> Result<T, StoreError> {
        let lease = self.lease().await?;
        let Some(client) = lease.master else {
            return match write {
                Write::Script(inv) => self.script(inv).await,
                Write::Cmd(cmd) => self.run(cmd).await,
            };
        };
        let wait = self.cfg.response_timeout;
        let result = async {
            let mut own = client
                .get_multiplexed_async_connection_with_config(
                    &self.direct_config(self.cfg.response_timeout + wait),
                )
                .await?;
            let n: T = match write {
                Write::Script(inv) => inv.invoke_async(&mut own).await?,
                Write::Cmd(cmd) => cmd.query_async(&mut own).await?,
            };
            if !wrote(&n) {
                return Ok((n, 1));
            }
            if ack == Ack::IfReplicaConnected {
                let role: Value = redis::cmd("ROLE").query_async(&mut own).await?;
                if connected_replicas(&role) == Some(0) {
                    tracing::debug!("no Redis replica connected: write not acknowledged");
                    return Ok((n, 1));
                }
            }
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            let acked: i64 = redis::cmd("WAIT")
                .arg(1)
                .arg(ms)
                .query_async(&mut own)
                .await?;
            Ok::<_, redis::RedisError>((n, acked))
        }
        .await;
        match result {
            Ok((n, acked)) if acked >= 1 => Ok(n),
            Ok(_) => {
                tracing::warn!(
                    "no Redis replica confirmed a write within {wait:?}: reported as failed"
                );
                Err(StoreError::Unavailable(format!(
                    "no replica confirmed the write within {wait:?}"
                )))
            }
            Err(e) => {
                self.on_error(lease.generation, &e).await;
                Err(unavailable(e))
            }
        }
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}{{u:{}}}", self.cfg.key_prefix, key_safe(user))
    }
    fn pending_secret_key(&self, user: &str) -> String {
        format!("{}:pending", self.user_key(user))
    }
    fn addr_key(&self, addr: &str) -> String {
        format!("{}{{a:{}}}", self.cfg.key_prefix, key_safe(addr))
    }
    /// The (address, user) pair noted at a right code, in the address's hash slot.
    fn pair_key(&self, addr: &str, user: &str) -> String {
        format!("{}:ok:{}", self.addr_key(addr), key_safe(user))
    }
    fn challenge_key(&self, id: &str) -> String {
        format!("{}{{c:{}}}", self.cfg.key_prefix, key_safe(id))
    }
    fn feed_key(&self) -> String {
        format!("{}{{rev}}", self.cfg.key_prefix)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self.run(&redis::cmd("PING")).await?;
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
        self.run::<()>(&cmd).await
    }

    pub async fn get_challenge(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(redis::cmd("GET").arg(self.challenge_key(id)))
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
        let r: Option<String> = self.run(&cmd).await?;
        Ok(r.is_some())
    }

    pub async fn pending_secret(
        &self,
        user: &str,
        fresh: &[u8],
        ttl: Duration,
        now: u64,
        discard: Option<&[u8]>,
    ) -> Result<super::Pending, StoreError> {
        self.index_user(user).await?;
        let mut inv = self.scripts.pending.prepare_invoke();
        inv.key(self.user_key(user))
            .key(self.pending_secret_key(user))
            .arg(fresh)
            .arg(ttl.as_secs().max(1))
            .arg(now)
            .arg(discard.unwrap_or_default());
        let (kind, v): (i64, Vec<u8>) = self.script(inv).await?;
        Ok(if kind == 1 {
            super::Pending::Existing(v)
        } else {
            super::Pending::Created {
                replaced: v == b"1",
            }
        })
    }

    pub async fn take_challenge(&self, id: &str) -> Result<bool, StoreError> {
        let n: u64 = self
            .run(redis::cmd("DEL").arg(self.challenge_key(id)))
            .await?;
        Ok(n == 1)
    }

    pub async fn user(&self, user: &str) -> Result<UserRecord, StoreError> {
        let fields: std::collections::HashMap<String, Vec<u8>> = self
            .run(redis::cmd("HGETALL").arg(self.user_key(user)))
            .await?;
        let num = |k: &str| -> Option<u64> {
            fields
                .get(k)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|s| s.parse().ok())
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
        })
    }

    pub async fn enroll(
        &self,
        user: &str,
        sealed: &[u8],
        key_id: &str,
        now: u64,
        step: u64,
    ) -> Result<bool, StoreError> {
        // Indexed before the secret is written, so no enrolled secret is missing from the
        // index that key re-encryption walks.
        self.index_user(user).await?;
        let mut inv = self.scripts.enroll.prepare_invoke();
        inv.key(self.user_key(user))
            .key(self.pending_secret_key(user))
            .arg(sealed)
            .arg(key_id)
            .arg(now)
            .arg(step);
        let r = self.durable(Write::Script(inv)).await?;
        Ok(r == 1)
    }

    pub async fn accept_step(&self, user: &str, step: u64, now: u64) -> Result<bool, StoreError> {
        let mut inv = self.scripts.accept_step.prepare_invoke();
        inv.key(self.user_key(user)).arg(step).arg(now);
        let r: i64 = self.script(inv).await?;
        Ok(r == 1)
    }

    /// See [`super::Store::take_attempt`]. The address and the user live in different hash
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
        let (gate, gate_ms): (u8, u64) = self.script(inv).await?;
        if gate == 0 {
            return Ok(Attempt::Refused(Duration::from_millis(gate_ms.max(1000))));
        }
        let known = gate == 2;
        let uk = self.user_key(user);
        // A locked user is refused without a write (and so without the acknowledged write's
        // own connection below): a burst at a locked user stays cheap. The script decides.
        let user_ttl: i64 = self
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
        self.script::<i64>(inv).await.map(|_| ())
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
        self.script::<i64>(inv).await.map(|_| ())
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
        self.script::<i64>(inv).await?;
        let ak = self.addr_key(addr);
        let mut inv = self.scripts.addr_succeeded.prepare_invoke();
        inv.key(format!("{ak}:fails"))
            .key(format!("{ak}:lock"))
            .key(self.pair_key(addr, user))
            .arg(u8::from(attempt.addr_counted()))
            .arg(u8::from(attempt.set_addr_lock()))
            .arg(limits.max_failures_per_address)
            .arg(limits.lock.as_secs().max(1))
            .arg(super::KNOWN_PAIR_TTL.as_secs());
        self.script::<i64>(inv).await.map(|_| ())
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
        let n: i64 = self.script(inv).await?;
        Ok(u32::try_from(n).ok())
    }

    pub async fn decline_if_unenrolled(&self, user: &str, now: u64) -> Result<bool, StoreError> {
        let mut inv = self.scripts.decline_if.prepare_invoke();
        inv.key(self.user_key(user)).arg(now);
        let n: i64 = self.script(inv).await?;
        Ok(n == 1)
    }

    pub async fn incr_postponed(&self, user: &str) -> Result<u32, StoreError> {
        let n: u64 = self
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
        self.run::<()>(
            redis::cmd("HSET")
                .arg(self.user_key(user))
                .arg("offer_declined")
                .arg(now),
        )
        .await
    }

    pub async fn delete_enrollment(&self, user: &str) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(self.user_key(user))
            .arg("secret")
            .arg("key_id")
            .arg("enrolled_at")
            .arg("last_used")
            .arg("recovery");
        let n = self.durable(Write::Cmd(&cmd)).await?;
        Ok(n > 0)
    }

    fn pre_key(&self, hash: &str) -> String {
        format!("{}{{pl:{}}}", self.cfg.key_prefix, key_safe(hash))
    }

    pub async fn pre_open(&self, hash: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let key = self.pre_key(hash);
        let mut inv = self.scripts.pre_open.prepare_invoke();
        inv.key(&key).arg(ms);
        let n: i64 = self.script(inv).await?;
        Ok(n == 1)
    }

    pub async fn pre_state(&self, hash: &str) -> Result<PreState, StoreError> {
        let s: Option<String> = self
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
        let n: i64 = self.script(inv).await?;
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
        let n: i64 = self.script(inv).await?;
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
        self.script::<i64>(inv).await.map(|_| ())
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
        let n: i64 = self.script(inv).await?;
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
        self.script::<i64>(inv).await.map(|_| ())
    }

    pub async fn owner_end(&self, hash: &str, keep: Duration) -> Result<(), StoreError> {
        let ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX).max(1);
        self.run::<()>(
            redis::cmd("SET")
                .arg(format!("{}:end", self.pre_key(hash)))
                .arg(1)
                .arg("PX")
                .arg(ms),
        )
        .await
    }

    pub async fn pre_drop(&self, hash: &str) -> Result<(), StoreError> {
        self.run::<i64>(redis::cmd("DEL").arg(self.pre_key(hash)))
            .await
            .map(|_| ())
    }

    fn pending_key(&self) -> String {
        format!("{}{{pending}}", self.cfg.key_prefix)
    }

    pub async fn pending_add(&self, member: &str, expires: u64) -> Result<(), StoreError> {
        self.run::<()>(
            redis::cmd("ZADD")
                .arg(self.pending_key())
                .arg(expires)
                .arg(member),
        )
        .await
    }

    pub async fn pending_remove(&self, member: &str) -> Result<bool, StoreError> {
        let n: u64 = self
            .run(redis::cmd("ZREM").arg(self.pending_key()).arg(member))
            .await?;
        Ok(n == 1)
    }

    pub async fn pending_due(&self, now: u64) -> Result<Vec<String>, StoreError> {
        let due: Vec<String> = self
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
        format!("{}{{users}}", self.cfg.key_prefix)
    }
    fn audit_key(&self) -> String {
        format!("{}{{audit}}", self.cfg.key_prefix)
    }

    pub async fn note_login(&self, user: &str, role: &str, now: u64) -> Result<(), StoreError> {
        self.run::<()>(
            redis::cmd("HSET")
                .arg(self.user_key(user))
                .arg("role")
                .arg(role)
                .arg("last_login")
                .arg(now),
        )
        .await?;
        self.index_user(user).await
    }

    pub async fn claim_vms_name(
        &self,
        user: &str,
        vms_name: &str,
    ) -> Result<Option<String>, StoreError> {
        // HSETNX is the atomic claim; the read after it returns whoever won.
        self.run::<()>(
            redis::cmd("HSETNX")
                .arg(self.user_key(user))
                .arg("vms_name")
                .arg(vms_name),
        )
        .await?;
        self.run(redis::cmd("HGET").arg(self.user_key(user)).arg("vms_name"))
            .await
    }

    async fn index_user(&self, user: &str) -> Result<(), StoreError> {
        self.run::<()>(redis::cmd("ZADD").arg(self.users_key()).arg(0).arg(user))
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
        self.run(&cmd).await
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
        Ok(self.durable(Write::Script(inv)).await? == 1)
    }

    pub async fn set_recovery(&self, user: &str, hashes: &[String]) -> Result<(), StoreError> {
        let mut inv = self.scripts.hset.prepare_invoke();
        inv.key(self.user_key(user))
            .arg("recovery")
            .arg(hashes.join("\n"));
        self.durable(Write::Script(inv)).await.map(|_| ())
    }

    pub async fn use_recovery(&self, user: &str, hash: &str) -> Result<Option<usize>, StoreError> {
        let mut inv = self.scripts.use_recovery.prepare_invoke();
        inv.key(self.user_key(user)).arg(hash);
        let n = self.durable(Write::Script(inv)).await?;
        Ok(usize::try_from(n).ok())
    }

    pub async fn reset(&self, user: &str, now: u64) -> Result<Option<bool>, StoreError> {
        let mut inv = self.scripts.reset.prepare_invoke();
        inv.key(self.user_key(user)).arg(now);
        let n = self.durable(Write::Script(inv)).await?;
        Ok((n >= 0).then_some(n == 1))
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
        self.durable(Write::Script(inv)).await.map(|_| ())
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
            .arg(current)
            .arg(sealed)
            .arg(key_id)
            .arg(now)
            .arg(step);
        Ok(self.durable(Write::Script(inv)).await? == 1)
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
        self.run(&cmd).await
    }

    pub async fn user_failures(&self, user: &str) -> Result<u32, StoreError> {
        let n: Option<u32> = self
            .run(redis::cmd("GET").arg(format!("{}:fails", self.user_key(user))))
            .await?;
        Ok(n.unwrap_or(0))
    }

    pub async fn user_lock(&self, user: &str) -> Result<Option<Duration>, StoreError> {
        let ms: i64 = self
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
        self.run::<String>(&cmd).await.map(|_| ())
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
        let rows: Vec<(String, Vec<(String, String)>)> = self.run(&cmd).await?;
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
        let rows: Vec<(String, Vec<(String, String)>)> = self.run(&cmd).await?;
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
        self.durable_as(
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
        let e = self.durable(Write::Script(inv)).await?;
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
        self.durable(Write::Script(inv)).await.map(|_| ())
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
        let rows: Vec<(String, Vec<(String, String)>)> = self.run(&cmd).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server(kind: ServerErrorKind) -> redis::RedisError {
        redis::RedisError::from((ErrorKind::Server(kind), "from the server"))
    }

    #[test]
    fn errors_that_may_mean_a_moved_master_drop_the_connection() {
        for kind in [
            ServerErrorKind::ReadOnly,
            ServerErrorKind::MasterDown,
            ServerErrorKind::BusyLoading,
            ServerErrorKind::TryAgain,
        ] {
            assert!(!is_command_error(&server(kind)), "{kind:?}");
        }
        for io in [
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::TimedOut,
        ] {
            let e = redis::RedisError::from(std::io::Error::from(io));
            assert!(!is_command_error(&e), "{io:?}");
        }
        assert!(!is_command_error(&redis::RedisError::from((
            ErrorKind::MasterNameNotFoundBySentinel,
            "no master"
        ))));
    }

    #[test]
    fn connected_replicas_are_read_from_role() {
        let master = |n: usize| {
            Value::Array(vec![
                Value::BulkString(b"master".to_vec()),
                Value::Int(3129659),
                Value::Array(
                    (0..n)
                        .map(|_| {
                            Value::Array(vec![
                                Value::BulkString(b"127.0.0.1".to_vec()),
                                Value::BulkString(b"9001".to_vec()),
                                Value::BulkString(b"3129242".to_vec()),
                            ])
                        })
                        .collect(),
                ),
            ])
        };
        assert_eq!(connected_replicas(&master(0)), Some(0));
        assert_eq!(connected_replicas(&master(2)), Some(2));
        let replica = Value::Array(vec![
            Value::BulkString(b"slave".to_vec()),
            Value::BulkString(b"127.0.0.1".to_vec()),
            Value::Int(9000),
        ]);
        assert_eq!(connected_replicas(&replica), None);
        assert_eq!(connected_replicas(&Value::Nil), None);
    }

    #[test]
    fn a_command_error_keeps_the_connection() {
        assert!(is_command_error(&server(ServerErrorKind::ResponseError)));
        assert!(is_command_error(&server(ServerErrorKind::NoScript)));
        assert!(is_command_error(&redis::RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "not a number"
        ))));
    }
}
