/**
 * The Lua scripts of the Redis job store (./jobs-redis.ts documents the
 * keys). Each changes a job and every index it is in as one atomic step;
 * all of them share PRELUDE's helpers (move a job between states, check an
 * attempt is the current live one, promote due retries).
 */
import { MAX_JOB_PRIORITY } from '@peerway/protocol';

/** Sequence numbers stay below 2^32 so a group's score is exact. */
const MAX_SEQ = 2 ** 32;
/** How long an emptied group stays listed (leases read its empty head meanwhile). */
export const GROUP_IDLE_MS = 60_000;
/** Due retries promoted per lease call (the rest on the next one). */
const PROMOTE_BATCH = 100;

/** Shared by every script: ARGV[1] is the key prefix. */
const PRELUDE = `
local P = ARGV[1]
local function score(prio, seq)
  return (${MAX_JOB_PRIORITY} - tonumber(prio)) * 4294967296 + tonumber(seq)
end
-- moves job id between states, keeping every index right
local function move(id, to, now)
  local jk = P .. 'job:' .. id
  local h = redis.call('HMGET', jk, 'state', 'submitterId', 'key', 'priority', 'seq')
  local from, sub, key, prio, seq = h[1] or '', h[2], h[3], h[4], h[5]
  local q = P .. 'jobq:' .. sub .. '|' .. key
  if from == 'queued' and to ~= 'queued' then
    redis.call('ZREM', q, id)
    redis.call('HINCRBY', P .. 'jobs:depth', 'q:' .. prio, -1)
    -- an emptied group stays listed (it often fills again at once): GROUPS
    -- drops it once it has been empty for GROUP_IDLE_MS
    if redis.call('EXISTS', q) == 0 then
      redis.call('HSET', P .. 'jobgroups:emptied', sub .. '|' .. key, now)
    end
  elseif from ~= 'queued' and to == 'queued' then
    redis.call('ZADD', q, score(prio, seq), id)
    redis.call('HDEL', P .. 'jobgroups:emptied', sub .. '|' .. key)
    -- a group newly listed changes the groups' version: a server's cached
    -- list of groups is then stale (see GROUPS, LEASE)
    if redis.call('SADD', P .. 'jobgroups:' .. sub, key) == 1 then
      redis.call('INCR', P .. 'jobgroups:v')
    end
    redis.call('SADD', P .. 'jobsubmitters', sub)
    redis.call('HINCRBY', P .. 'jobs:depth', 'q:' .. prio, 1)
  end
  if from == 'failed' and to ~= 'failed' then
    redis.call('ZREM', P .. 'jobs:delayed', id)
    redis.call('HINCRBY', P .. 'jobs:depth', 'r:' .. prio, -1)
    redis.call('HDEL', jk, 'retryAt')
  elseif from ~= 'failed' and to == 'failed' then
    redis.call('HINCRBY', P .. 'jobs:depth', 'r:' .. prio, 1)
  end
  local wasLive = from == 'leased' or from == 'running'
  if wasLive and to ~= 'leased' and to ~= 'running' then
    redis.call('ZREM', P .. 'jobs:leases', id)
    redis.call('ZREM', P .. 'jobs:deadlines', id)
    redis.call('HDEL', jk, 'leaseNodeId', 'leaseExpiresAt', 'leaseTokenHash', 'deadlineAt')
  end
  if from ~= to then
    if from ~= '' then redis.call('ZREM', P .. 'jobs:state:' .. from, id) end
    redis.call('ZADD', P .. 'jobs:state:' .. to, seq, id)
  end
  redis.call('HSET', jk, 'state', to, 'updatedAt', now)
end
-- true when attempt is the job's current, live one (held by node unless node is '')
local function live(id, attempt, node)
  local h = redis.call('HMGET', P .. 'job:' .. id, 'state', 'attempts', 'leaseNodeId')
  if h[1] ~= 'leased' and h[1] ~= 'running' then return false end
  if h[2] ~= attempt then return false end
  if node ~= '' and h[3] ~= node then return false end
  return true
end
local function promote(now)
  local due = redis.call('ZRANGEBYSCORE', P .. 'jobs:delayed', '-inf', now, 'LIMIT', 0, ${PROMOTE_BATCH})
  for _, id in ipairs(due) do move(id, 'queued', now) end
end
`;

/**
 * ARGV: prefix, idempotency key ('' for none), id, submitterId, now, then
 * the hash's field pairs. {1 (made) or 0 (the key's job), the job's hash
 * as HGETALL's field, value list}.
 */
export const SUBMIT = `${PRELUDE}
if ARGV[2] ~= '' then
  local old = redis.call('GET', ARGV[2])
  if old then return {0, redis.call('HGETALL', P .. 'job:' .. old)} end
end
local seq = redis.call('INCR', P .. 'jobs:seq')
if seq >= ${MAX_SEQ} then return redis.error_reply('job sequence exhausted') end
local id = ARGV[3]
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', P .. 'job:' .. id, 'seq', seq, 'attempts', 0, 'base', 0, unpack(fields))
move(id, 'queued', ARGV[5])
redis.call('ZADD', P .. 'jobs:all', seq, id)
redis.call('ZADD', P .. 'jobs:by:' .. ARGV[4], seq, id)
if ARGV[2] ~= '' then redis.call('SET', ARGV[2], id) end
return {1, redis.call('HGETALL', P .. 'job:' .. id)}`;

/**
 * ARGV: prefix, now, then the submitters ('*' alone: all). The groups'
 * version and the listed groups of those submitters, read in one step:
 * {version, submitter, key, submitter, key, …}. Groups empty for longer
 * than GROUP_IDLE_MS are dropped from the list first (all of them, not
 * only these submitters': this runs only when a list was stale).
 */
export const GROUPS = `${PRELUDE}
local now = tonumber(ARGV[2])
local emptied = redis.call('HGETALL', P .. 'jobgroups:emptied')
for i = 1, #emptied, 2 do
  if tonumber(emptied[i + 1]) < now - ${GROUP_IDLE_MS} then
    local g = emptied[i]
    local cut = string.find(g, '|', 1, true)
    local sub, key = string.sub(g, 1, cut - 1), string.sub(g, cut + 1)
    redis.call('HDEL', P .. 'jobgroups:emptied', g)
    if redis.call('EXISTS', P .. 'jobq:' .. g) == 0 then
      redis.call('SREM', P .. 'jobgroups:' .. sub, key)
      if redis.call('EXISTS', P .. 'jobgroups:' .. sub) == 0 then
        redis.call('SREM', P .. 'jobsubmitters', sub)
      end
    end
  end
end
local subs = {}
if ARGV[3] == '*' then subs = redis.call('SMEMBERS', P .. 'jobsubmitters')
else for i = 3, #ARGV do subs[#subs + 1] = ARGV[i] end end
local out = {redis.call('GET', P .. 'jobgroups:v') or '0'}
for _, sub in ipairs(subs) do
  for _, key in ipairs(redis.call('SMEMBERS', P .. 'jobgroups:' .. sub)) do
    out[#out + 1] = sub
    out[#out + 1] = key
  end
end
return out`;

/**
 * ARGV: prefix, now, nodeId, leaseExpiresAt, leaseTokenHash, the groups'
 * version the candidates were read at ('' : do not check), then the eligible groups as
 * submitter, key pairs. Promotes due retries; if a group became non-empty
 * since that version (a candidate may be missing), returns 'stale' and
 * changes nothing else. Otherwise takes the lowest-scored head among the
 * groups and starts its next attempt: the job's hash (HGETALL's field,
 * value list), or false.
 */
export const LEASE = `${PRELUDE}
local now, node, exp, tok = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
promote(now)
if ARGV[6] ~= '' and (redis.call('GET', P .. 'jobgroups:v') or '0') ~= ARGV[6] then
  return 'stale'
end
local best, bestScore
for i = 7, #ARGV, 2 do
  local head = redis.call('ZRANGE', P .. 'jobq:' .. ARGV[i] .. '|' .. ARGV[i + 1], 0, 0, 'WITHSCORES')
  if head[1] then
    local s = tonumber(head[2])
    if not best or s < bestScore then best, bestScore = head[1], s end
  end
end
if not best then return false end
local jk = P .. 'job:' .. best
move(best, 'leased', now)
local n = redis.call('HINCRBY', jk, 'attempts', 1)
local deadline = tonumber(now) + tonumber(redis.call('HGET', jk, 'timeoutS')) * 1000
redis.call('HSET', jk, 'leaseNodeId', node, 'leaseExpiresAt', exp, 'leaseTokenHash', tok,
  'deadlineAt', deadline, 'a' .. n .. ':node', node, 'a' .. n .. ':leasedAt', now)
redis.call('HDEL', jk, 'progress')
redis.call('ZADD', P .. 'jobs:leases', exp, best)
redis.call('ZADD', P .. 'jobs:deadlines', deadline, best)
return redis.call('HGETALL', jk)`;

/** ARGV: prefix, id, attempt, nodeId, until. */
export const RENEW = `${PRELUDE}
if not live(ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('HSET', P .. 'job:' .. ARGV[2], 'leaseExpiresAt', ARGV[5])
redis.call('ZADD', P .. 'jobs:leases', ARGV[5], ARGV[2])
return 1`;

/** ARGV: prefix, id, attempt, nodeId, now. */
export const RUNNING = `${PRELUDE}
local id = ARGV[2]
if not live(id, ARGV[3], ARGV[4]) then return 0 end
if redis.call('HGET', P .. 'job:' .. id, 'state') == 'leased' then
  move(id, 'running', ARGV[5])
  redis.call('HSET', P .. 'job:' .. id, 'a' .. ARGV[3] .. ':startedAt', ARGV[5])
end
return 1`;

/** ARGV: prefix, id, attempt, field, value[, updatedAt]: sets one field of a live attempt's job. */
export const SET_LIVE = `${PRELUDE}
if not live(ARGV[2], ARGV[3], '') then return 0 end
redis.call('HSET', P .. 'job:' .. ARGV[2], ARGV[4], ARGV[5])
if ARGV[6] then redis.call('HSET', P .. 'job:' .. ARGV[2], 'updatedAt', ARGV[6]) end
return 1`;

/**
 * ARGV: prefix, id, attempt, now, outcome, hasError, error, retryable,
 * retryAt, hasOutput, output, then file name, JSON pairs. Where the job
 * goes is jobs-rules' retryState, here in Lua so it is one atomic step.
 * The job's hash after it (HGETALL's list), or false.
 */
export const END = `${PRELUDE}
local id, n, now, outcome = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not live(id, n, '') then return false end
local jk = P .. 'job:' .. id
redis.call('HSET', jk, 'a' .. n .. ':endedAt', now, 'a' .. n .. ':outcome', outcome)
if ARGV[6] == '1' then redis.call('HSET', jk, 'a' .. n .. ':error', ARGV[7]) end
local to
if outcome == 'succeeded' then
  to = 'succeeded'
  for i = 12, #ARGV, 2 do redis.call('HSET', jk, 'f:' .. ARGV[i], ARGV[i + 1]) end
  if ARGV[10] == '1' then redis.call('HSET', jk, 'output', ARGV[11]) else redis.call('HDEL', jk, 'output') end
  redis.call('HDEL', jk, 'error')
else
  local h = redis.call('HMGET', jk, 'cancelRequested', 'attempts', 'base', 'maxAttempts')
  if outcome == 'cancelled' or h[1] == '1' then to = 'cancelled'
  elseif ARGV[8] ~= '1' or tonumber(h[2]) - tonumber(h[3]) >= tonumber(h[4]) then to = 'dead'
  elseif tonumber(ARGV[9]) <= tonumber(now) then to = 'queued'
  else to = 'failed' end
  if ARGV[6] == '1' then redis.call('HSET', jk, 'error', ARGV[7]) else redis.call('HDEL', jk, 'error') end
end
move(id, to, now)
redis.call('HDEL', jk, 'cancelRequested')
if to == 'failed' then
  redis.call('HSET', jk, 'retryAt', ARGV[9])
  redis.call('ZADD', P .. 'jobs:delayed', ARGV[9], id)
end
return redis.call('HGETALL', jk)`;

/**
 * ARGV: prefix, before, limit. Removes final jobs last changed before
 * `before` (oldest first by seq within each state; a younger one is
 * skipped) with every index entry and their idempotency key; their IDs.
 */
export const REMOVE_ENDED = `${PRELUDE}
local before, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for _, st in ipairs({'succeeded', 'dead', 'cancelled'}) do
  if #out >= limit then break end
  local sk = P .. 'jobs:state:' .. st
  for _, id in ipairs(redis.call('ZRANGE', sk, 0, limit - 1)) do
    if #out >= limit then break end
    local jk = P .. 'job:' .. id
    local h = redis.call('HMGET', jk, 'state', 'updatedAt', 'submitterId', 'idempotencyKey')
    if h[1] == st and tonumber(h[2]) < before then
      redis.call('ZREM', sk, id)
      redis.call('ZREM', P .. 'jobs:all', id)
      redis.call('ZREM', P .. 'jobs:by:' .. h[3], id)
      if h[4] then
        local ik = P .. 'jobidem:' .. h[3] .. '|' .. h[4]
        if redis.call('GET', ik) == id then redis.call('DEL', ik) end
      end
      redis.call('DEL', jk)
      out[#out + 1] = id
    elseif not h[1] then
      redis.call('ZREM', sk, id) -- an index entry without its job
    end
  end
end
return out`;

/** ARGV: prefix, id, now. False when the job does not exist. */
export const CANCEL = `${PRELUDE}
local id, now = ARGV[2], ARGV[3]
local state = redis.call('HGET', P .. 'job:' .. id, 'state')
if not state then return false end
if state == 'queued' or state == 'failed' then
  move(id, 'cancelled', now)
  redis.call('HSET', P .. 'job:' .. id, 'error', 'cancelled')
elseif (state == 'leased' or state == 'running') and redis.call('HGET', P .. 'job:' .. id, 'cancelRequested') ~= '1' then
  redis.call('HSET', P .. 'job:' .. id, 'cancelRequested', '1', 'updatedAt', now)
end
return 1`;

/** ARGV: prefix, id, now. False when the job does not exist. */
export const RETRY = `${PRELUDE}
local id, now = ARGV[2], ARGV[3]
local jk = P .. 'job:' .. id
local state = redis.call('HGET', jk, 'state')
if not state then return false end
if state == 'dead' or state == 'cancelled' or state == 'failed' then
  redis.call('HSET', jk, 'base', redis.call('HGET', jk, 'attempts'))
  redis.call('HDEL', jk, 'error', 'cancelRequested')
  move(id, 'queued', now)
end
return 1`;
