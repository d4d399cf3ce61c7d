//! The Lua scripts of the Redis store: each one step that must be atomic across instances
//! (take an attempt and set a lock, enroll only if not enrolled, raise an epoch and publish
//! it, ...). Every script touches the keys of one hash slot, so they run unchanged on a
//! cluster. They are loaded once per store ([`Scripts::new`]) and sent by hash (`EVALSHA`,
//! falling back to `EVAL` after a server restart) by the `redis` crate.

use redis::Script;

/// Every script of the store, ready to invoke.
pub(super) struct Scripts {
    pub(super) hset: Script,
    pub(super) use_recovery: Script,
    pub(super) reset: Script,
    pub(super) enroll: Script,
    pub(super) reseal: Script,
    pub(super) accept_step: Script,
    pub(super) raise_epoch: Script,
    pub(super) unlock: Script,
    pub(super) publish: Script,
    pub(super) take_user: Script,
    pub(super) take_addr: Script,
    pub(super) give_back: Script,
    pub(super) addr_gate: Script,
    pub(super) addr_succeeded: Script,
    pub(super) user_succeeded: Script,
    pub(super) replace_if: Script,
    pub(super) postpone_if: Script,
    pub(super) decline_if: Script,
    pub(super) pre_open: Script,
    pub(super) pre_sign_in: Script,
    pub(super) pending: Script,
    pub(super) pre_admit: Script,
    pub(super) pre_release: Script,
    pub(super) owner_enter: Script,
    pub(super) owner_leave: Script,
    pub(super) remember: Script,
    pub(super) use_remembered: Script,
    pub(super) forget_all: Script,
    pub(super) delete_enrollment: Script,
    pub(super) issue_code: Script,
    pub(super) use_code: Script,
    pub(super) add_passkey: Script,
    pub(super) use_passkey: Script,
    pub(super) rename_passkey: Script,
    pub(super) remove_passkey: Script,
    pub(super) postpone_unless_passkey: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
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
            remember: Script::new(REMEMBER),
            use_remembered: Script::new(USE_REMEMBERED),
            forget_all: Script::new(FORGET_ALL),
            delete_enrollment: Script::new(DELETE_ENROLLMENT),
            issue_code: Script::new(ISSUE_CODE),
            use_code: Script::new(USE_CODE),
            add_passkey: Script::new(ADD_PASSKEY),
            use_passkey: Script::new(USE_PASSKEY),
            rename_passkey: Script::new(RENAME_PASSKEY),
            remove_passkey: Script::new(REMOVE_PASSKEY),
            postpone_unless_passkey: Script::new(POSTPONE_UNLESS_PASSKEY),
        }
    }
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

// KEYS: user hash, remembered browsers, passkeys, the user's lock, fails and level. ARGV:
// now, the keyed hash of a new one-time enrollment code ('' for none), its expiry. Returns 1
// if a secret (or a passkey) was removed, 0 if not, -1 (nothing written) if the gateway does
// not know the user (no login, secret or earlier reset): a reset never creates a record.
// Remembered browsers and passkeys go in the same step, and so does a ticket of a sign-in
// that typed an earlier code; the new code (or, without one, the removal of any earlier one)
// is written in the same step as the secret's removal, so no moment exists in which the
// secret is gone and a pairing needs no code. With a code, the lock of the user's code step
// (and its counts) is lifted too: the MSP has just checked the caller, and the code must be
// typeable at once.
const RESET: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'last_login') == 0 and redis.call('HEXISTS', KEYS[1], 'secret') == 0
   and redis.call('HEXISTS', KEYS[1], 'reset_at') == 0 then
  return -1
end
local had = redis.call('HEXISTS', KEYS[1], 'secret')
redis.call('HDEL', KEYS[1], 'secret', 'key_id', 'enrolled_at', 'last_used', 'recovery', 'eticket')
redis.call('HSET', KEYS[1], 'reset_at', ARGV[1])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'ecode', ARGV[2], 'ecode_until', ARGV[3], 'ecode_issued', ARGV[1])
  redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
else
  redis.call('HDEL', KEYS[1], 'ecode', 'ecode_until', 'ecode_issued')
end
redis.call('DEL', KEYS[2])
-- Passkeys (KEYS[3]) go in the same step; a user with one counted as enrolled.
if redis.call('EXISTS', KEYS[3]) == 1 then had = 1 end
redis.call('DEL', KEYS[3])
return had
"#;

// A new one-time enrollment code for a user without an app. KEYS: user hash. ARGV: its keyed
// hash, its expiry, now. Returns 1 when stored (the earlier code and any ticket of a sign-in
// that typed it stop working), 0 if the user has an app, -1 if the gateway does not know the
// user (nothing written either way).
const ISSUE_CODE: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 1 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'last_login') == 0 and redis.call('HEXISTS', KEYS[1], 'reset_at') == 0 then
  return -1
end
redis.call('HSET', KEYS[1], 'ecode', ARGV[1], 'ecode_until', ARGV[2], 'ecode_issued', ARGV[3])
redis.call('HDEL', KEYS[1], 'eticket')
return 1
"#;

// Consuming the one-time enrollment code. KEYS: user hash. ARGV: the typed code's keyed hash
// (under the key of the stored one), now, the sign-in's hashed ticket. Returns 1 when it was
// the pending, valid code: consumed, and the ticket noted for the enrollment; -1 wrong, -2
// expired, 0 none pending, 2 enrolled meanwhile (nothing written but on 1).
const USE_CODE: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 1 then return 2 end
local v = redis.call('HGET', KEYS[1], 'ecode')
if not v then return 0 end
local expiry = tonumber(redis.call('HGET', KEYS[1], 'ecode_until') or '0') or 0
if expiry <= tonumber(ARGV[2]) then return -2 end
if v ~= ARGV[1] then return -1 end
redis.call('HDEL', KEYS[1], 'ecode', 'ecode_until', 'ecode_issued')
redis.call('HSET', KEYS[1], 'eticket', ARGV[3])
return 1
"#;

// MFA turned off by the user. KEYS: user hash, remembered browsers, passkeys. Returns {1 if
// the app's secret was there (else 0), the passkeys removed}. The app, the recovery codes,
// every passkey and the remembered browsers go in the same step.
const DELETE_ENROLLMENT: &str = r#"
local app = redis.call('HEXISTS', KEYS[1], 'secret')
redis.call('HDEL', KEYS[1], 'secret', 'key_id', 'enrolled_at', 'last_used', 'recovery')
redis.call('DEL', KEYS[2])
local passkeys = 0
local all = redis.call('HKEYS', KEYS[3])
for i = 1, #all do
  if string.sub(all[i], 1, 2) == 'm:' then passkeys = passkeys + 1 end
end
redis.call('DEL', KEYS[3])
return {app, passkeys}
"#;

// Remembers a browser (`mfa::remember`). KEYS: user hash, remembered browsers. ARGV: browser
// id, value ("first last epoch agent"), its epoch, an id it replaces ('' for none), now, keep
// (seconds), most records. Only while the user is enrolled and the epoch is not below the
// user's (0, nothing written, otherwise); records older than `keep` go, and past the most
// the least recently used; the key lives `keep` after the last remembering.
const REMEMBER: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if tonumber(ARGV[3]) < current then return 0 end
if ARGV[4] ~= '' then redis.call('HDEL', KEYS[2], ARGV[4]) end
local now = tonumber(ARGV[5])
local keep = tonumber(ARGV[6])
local all = redis.call('HGETALL', KEYS[2])
local live = {}
for i = 1, #all, 2 do
  local first, last = string.match(all[i + 1], '^(%d+) (%d+) ')
  if (not first) or tonumber(first) + keep <= now then
    redis.call('HDEL', KEYS[2], all[i])
  else
    table.insert(live, {all[i], tonumber(last)})
  end
end
table.sort(live, function(a, b) return a[2] < b[2] end)
local max = tonumber(ARGV[7])
local i = 1
while #live - i + 1 >= max do
  redis.call('HDEL', KEYS[2], live[i][1])
  i = i + 1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[2]) < keep then redis.call('EXPIRE', KEYS[2], keep) end
return 1
"#;

// Uses a remembered browser. KEYS: user hash, remembered browsers. ARGV: browser id, now,
// max age (seconds). Returns the record with its last use set to now, or nil: the user is not
// enrolled, the record is gone, of an older epoch than the user's (then removed) or too old.
const USE_REMEMBERED: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 0 then return false end
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then return false end
local first, last, epoch, agent = string.match(v, '^(%d+) (%d+) (%d+) (.*)$')
if not first then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return false
end
local current = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if tonumber(epoch) < current then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return false
end
if tonumber(first) + tonumber(ARGV[3]) <= tonumber(ARGV[2]) then return false end
local nv = first .. ' ' .. ARGV[2] .. ' ' .. epoch .. ' ' .. agent
redis.call('HSET', KEYS[2], ARGV[1], nv)
return nv
"#;

// Forgets every remembered browser of a user. KEYS: remembered browsers. Returns how many.
const FORGET_ALL: &str = r#"
local n = redis.call('HLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
"#;

// KEYS: user hash, pending secret. ARGV: sealed secret, key id, now, step, the sign-in's
// hashed enrollment-code ticket ('' for none). The pending secret goes with the enrollment.
// Returns 1 when enrolled, 0 when enrolled already, -1 when a one-time enrollment code is
// required and this sign-in has not typed it (a code pending, or the ticket of another).
const ENROLL: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 1 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'ecode') == 1 then return -1 end
local t = redis.call('HGET', KEYS[1], 'eticket')
if t and t ~= ARGV[5] then return -1 end
redis.call('HSET', KEYS[1], 'secret', ARGV[1], 'key_id', ARGV[2], 'enrolled_at', ARGV[3], 'last_used', ARGV[3], 'last_step', ARGV[4])
redis.call('HDEL', KEYS[1], 'pending_at', 'eticket')
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
redis.call('DEL', KEYS[2])
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

// Adds a passkey (`auth::passkey`). KEYS: user hash, passkeys. ARGV: credential id, meta
// ("added last_used counter name"), key record (JSON), the epoch read when the ceremony
// began, most passkeys, the sign-in's hashed enrollment-code ticket ('' for none). Returns 1
// added, 0 the user was revoked since (epoch raised), -2 the credential is the user's already,
// -3 the user has the most, -4 a user without an app must type the one-time enrollment code
// first (a code pending, or the ticket of another sign-in); the ticket goes with the passkey.
const ADD_PASSKEY: &str = r#"
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if epoch > tonumber(ARGV[4]) then return 0 end
if redis.call('HEXISTS', KEYS[1], 'secret') == 0 then
  if redis.call('HEXISTS', KEYS[1], 'ecode') == 1 then return -4 end
  local t = redis.call('HGET', KEYS[1], 'eticket')
  if t and t ~= ARGV[6] then return -4 end
end
if redis.call('HEXISTS', KEYS[2], 'm:' .. ARGV[1]) == 1 then return -2 end
if redis.call('HLEN', KEYS[2]) / 2 >= tonumber(ARGV[5]) then return -3 end
redis.call('HSET', KEYS[2], 'm:' .. ARGV[1], ARGV[2], 'k:' .. ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[1], 'eticket')
return 1
"#;

// A sign-in with a passkey. KEYS: passkeys. ARGV: credential id, the assertion's counter,
// the key record after it (JSON), now. Returns 1 used, -1 gone, 0 the counter did not move
// past the stored one (and is not 0 in both).
const USE_PASSKEY: &str = r#"
local meta = redis.call('HGET', KEYS[1], 'm:' .. ARGV[1])
if not meta then return -1 end
local added, last, counter, name = string.match(meta, '^(%d+) (%d+) (%d+) ?(.*)$')
if not added then return -1 end
local new = tonumber(ARGV[2])
if (new > 0 or tonumber(counter) > 0) and new <= tonumber(counter) then return 0 end
redis.call('HSET', KEYS[1], 'm:' .. ARGV[1], added .. ' ' .. ARGV[4] .. ' ' .. ARGV[2] .. ' ' .. name,
  'k:' .. ARGV[1], ARGV[3])
return 1
"#;

// KEYS: passkeys. ARGV: credential id, new name. Returns 1, or 0 if it is gone.
const RENAME_PASSKEY: &str = r#"
local meta = redis.call('HGET', KEYS[1], 'm:' .. ARGV[1])
if not meta then return 0 end
local added, last, counter = string.match(meta, '^(%d+) (%d+) (%d+)')
if not added then return 0 end
redis.call('HSET', KEYS[1], 'm:' .. ARGV[1], added .. ' ' .. last .. ' ' .. counter .. ' ' .. ARGV[2])
return 1
"#;

// KEYS: user hash, passkeys. ARGV: credential id, enforced (1/0), the app counts (1/0),
// passkeys count (1/0). Returns 1 removed, -1 gone, 0 kept: it is the last allowed method of
// a user whose MFA is enforced, or the last factor of anybody (MFA off has its own step).
const REMOVE_PASSKEY: &str = r#"
if redis.call('HEXISTS', KEYS[2], 'm:' .. ARGV[1]) == 0 then return -1 end
local others = redis.call('HLEN', KEYS[2]) / 2 - 1
local app = redis.call('HEXISTS', KEYS[1], 'secret') == 1
if ARGV[2] == '1' then
  if not ((ARGV[3] == '1' and app) or (ARGV[4] == '1' and others > 0)) then return 0 end
elseif not app and others == 0 then
  -- The last factor: MFA off goes through its own confirmed step (DELETE_ENROLLMENT).
  return 0
end
redis.call('HDEL', KEYS[2], 'm:' .. ARGV[1], 'k:' .. ARGV[1])
return 1
"#;

// A postponed passkey set-up, only while the user has none. KEYS: user hash, passkeys.
// Returns the postponements so far, or -1 if the user has a passkey.
const POSTPONE_UNLESS_PASSKEY: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'postponed', 1)
"#;
