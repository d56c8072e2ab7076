//! Lua scripts run with EVAL. Redis runs a script atomically, and caches it by its SHA1 after
//! the first EVAL, so the text is sent with every call but compiled once.

/// Applies one chunk of bucket deltas unless its batch id was applied before.
///
/// KEYS: batch key, epochs sorted set, then (row hash, bucket index set) per delta.
/// ARGV: batch TTL in seconds, bucket TTL in seconds, then (epoch, row member, packets,
/// bytes, flows, duration_us) per delta. Returns 1 when applied, 0 when the batch key
/// already existed. The SET NX and the HINCRBYs run in one script, so either both happen
/// or neither does, and a retried batch adds nothing.
pub(super) const ADD_BUCKETS: &str = r"
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    return 0
end
local ttl = ARGV[2]
local rows = (#KEYS - 2) / 2
for i = 0, rows - 1 do
    local row = KEYS[3 + 2 * i]
    local index = KEYS[4 + 2 * i]
    local at = 3 + 6 * i
    redis.call('HINCRBY', row, 'packets', ARGV[at + 2])
    redis.call('HINCRBY', row, 'bytes', ARGV[at + 3])
    redis.call('HINCRBY', row, 'flows', ARGV[at + 4])
    redis.call('HINCRBY', row, 'duration_us', ARGV[at + 5])
    redis.call('EXPIRE', row, ttl)
    redis.call('SADD', index, ARGV[at + 1])
    redis.call('EXPIRE', index, ttl)
    redis.call('ZADD', KEYS[2], ARGV[at], ARGV[at])
end
redis.call('EXPIRE', KEYS[2], ttl)
return 1
";

/// Deletes a tunnel index entry only while it still names the given IMSI, so a late
/// removal by the previous owner of a reused TEID keeps the new owner's entry.
///
/// KEYS: tunnel key. ARGV: IMSI. Returns the number of keys deleted.
pub(super) const RELEASE_TUNNEL: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";
