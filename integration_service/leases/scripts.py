"""The Lua scripts that make every lease transition one atomic step inside Redis.

The lease is a hash `session_lock:{tenant_id}:{app_id}` = {worker, epoch} with a PX TTL.
The epoch comes from `session_epoch:{tenant_id}:{app_id}`, a counter that never expires,
and only moves on a new acquisition, never on a re-entrant one or a renewal.
Every key a script touches is passed in KEYS, as Redis requires of scripts (a key named
only inside a script is invisible to replication and cluster routing).
"""

from __future__ import annotations

# Shared tail of ACQUIRE and STEAL: take the lease with epoch max(counter, floor) + 1.
_TAKE = """
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
local floor = tonumber(ARGV[3])
if counter < floor then counter = floor end
local epoch = counter + 1
redis.call('SET', KEYS[2], epoch)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'worker', ARGV[1], 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

# KEYS: lock, epoch counter. ARGV: worker, ttl_ms, min_epoch.
# Returns {epoch, status}: status 0 = held by another worker (epoch is theirs),
# 1 = newly acquired, 2 = re-entrant (we already held it; TTL refreshed, epoch kept).
# Re-entry keeps the epoch only while it is not below min_epoch: a lower one means the
# database saw a newer holder (Redis lost state), so we take a fresh epoch instead.
ACQUIRE = f"""
local current = redis.call('HMGET', KEYS[1], 'worker', 'epoch')
if current[1] then
  local held = tonumber(current[2]) or 0
  if current[1] ~= ARGV[1] then
    return {{held, 0}}
  end
  if held >= tonumber(ARGV[3]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {{held, 2}}
  end
end
{_TAKE}
return {{epoch, 1}}
"""

# KEYS: lock, epoch counter, liveness key of the holder we saw.
# ARGV: worker, ttl_ms, min_epoch, holder we saw, its epoch.
# Takes the lease only if it is still exactly what we saw and its holder's liveness key
# is gone; a lease released in between is simply acquired. Returns {epoch, status}:
# 0 = not taken (epoch is the current holder's), 1 = acquired (was free), 3 = stolen.
STEAL = f"""
local current = redis.call('HMGET', KEYS[1], 'worker', 'epoch')
local status = 1
if current[1] then
  if current[1] ~= ARGV[4] or current[2] ~= ARGV[5] then
    return {{tonumber(current[2]) or 0, 0}}
  end
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return {{tonumber(current[2]) or 0, 0}}
  end
  status = 3
end
{_TAKE}
return {{epoch, status}}
"""

# KEYS: lock. ARGV: worker, epoch, ttl_ms. 1 if still ours (TTL refreshed), else 0.
RENEW = """
local current = redis.call('HMGET', KEYS[1], 'worker', 'epoch')
if current[1] == ARGV[1] and current[2] == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""

# KEYS: lock. ARGV: worker, epoch. 1 if it was ours and is now deleted, else 0.
# The epoch counter stays: epochs must keep growing across holders.
RELEASE = """
local current = redis.call('HMGET', KEYS[1], 'worker', 'epoch')
if current[1] == ARGV[1] and current[2] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

STATUS_HELD_BY_OTHER = 0
STATUS_ACQUIRED = 1
STATUS_REENTERED = 2
STATUS_STOLEN = 3
