//! Lua scripts run with EVAL. Redis runs a script atomically, and caches it by its SHA1 after
//! the first EVAL, so the text is sent with every call but compiled once.

/// Applies one chunk of bucket deltas unless its batch id was applied before.
///
/// KEYS: batch key, epochs sorted set, then per delta the row hash, the bucket index set
/// and, with ntop compatibility, ntop's hash `<epoch>.<IMSI>.<protocol>`.
/// ARGV: batch TTL in seconds, bucket TTL in seconds, keys per delta (2, or 3 with ntop's
/// hash), then (epoch, row member, packets, bytes, flows, duration_us) per delta.
/// Returns 1 when applied, 0 when the batch key already existed. The SET NX and the
/// HINCRBYs run in one script, so either both happen or neither does, and a retried batch
/// adds nothing to either layout.
///
/// ntop's `duration` is in whole seconds. Each delta adds the number of whole seconds its
/// row's `duration_us` total crossed, floor(new / 10^6) - floor(old / 10^6), so the
/// seconds added to a row sum to floor(total / 10^6), the Duration(sec) column of the
/// report. Lua computes in doubles, which is exact while a row's total stays below 2^53 us
/// (285 years).
pub(super) const ADD_BUCKETS: &str = r"
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    return 0
end
local ttl = ARGV[2]
local stride = tonumber(ARGV[3])
local rows = (#KEYS - 2) / stride
for i = 0, rows - 1 do
    local row = KEYS[3 + stride * i]
    local index = KEYS[4 + stride * i]
    local at = 4 + 6 * i
    redis.call('HINCRBY', row, 'packets', ARGV[at + 2])
    redis.call('HINCRBY', row, 'bytes', ARGV[at + 3])
    redis.call('HINCRBY', row, 'flows', ARGV[at + 4])
    local total_us = redis.call('HINCRBY', row, 'duration_us', ARGV[at + 5])
    redis.call('EXPIRE', row, ttl)
    redis.call('SADD', index, ARGV[at + 1])
    redis.call('EXPIRE', index, ttl)
    redis.call('ZADD', KEYS[2], ARGV[at], ARGV[at])
    if stride == 3 then
        local ntop = KEYS[5 + stride * i]
        local before_us = total_us - tonumber(ARGV[at + 5])
        local seconds = math.floor(total_us / 1000000) - math.floor(before_us / 1000000)
        redis.call('HINCRBY', ntop, 'packets', ARGV[at + 2])
        redis.call('HINCRBY', ntop, 'bytes', ARGV[at + 3])
        redis.call('HINCRBY', ntop, 'flows', ARGV[at + 4])
        redis.call('HINCRBY', ntop, 'duration', string.format('%d', seconds))
        redis.call('EXPIRE', ntop, ttl)
    end
end
redis.call('EXPIRE', KEYS[2], ttl)
return 1
";
