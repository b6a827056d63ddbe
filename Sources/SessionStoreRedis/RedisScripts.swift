/// The server-side scripts: each change to a session is one of these, run atomically on the
/// node that holds the session's bucket (its value, its bucket's index and its tombstone share
/// one hash tag, so one slot). Every script takes KEYS = (session, index, tombstone).
///
/// Results are arrays whose first element says what happened:
/// 0 = no such session (then the tombstone's text and the index score, when there are any),
/// 1 = the session changed meanwhile (then its current value), 2 = done.
enum RedisScripts {
    /// Writes a session's new value if its revision is still the one it was computed from.
    /// ARGV = (revision text, value, TTL ms, last use, id).
    static let put = """
    local v = redis.call('GET', KEYS[1])
    if not v then return {0, redis.call('GET', KEYS[3]) or '', redis.call('ZSCORE', KEYS[2], ARGV[5]) or ''} end
    if string.sub(v, 5, 24) ~= ARGV[1] then return {1, v} end
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
    return {2}
    """

    /// A session's value, or why there is none. ARGV = (id).
    static let read = """
    local v = redis.call('GET', KEYS[1])
    if not v then return {0, redis.call('GET', KEYS[3]) or '', redis.call('ZSCORE', KEYS[2], ARGV[1]) or ''} end
    return {2, v}
    """

    /// A new session, written only if the id is free (else 1). ARGV = (value, TTL ms, last
    /// use, id).
    static let create = """
    if redis.call('EXISTS', KEYS[1]) == 1 then return {1} end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
    redis.call('DEL', KEYS[3])
    return {2}
    """

    /// Removes a session, leaving a tombstone that says why, if its revision is still the
    /// given one ("" = whatever it is) and, with ARGV[5], if its last use is no later than
    /// that (expiry and eviction, which another replica's step may have overtaken).
    /// ARGV = (revision text or "", why, tombstone TTL s, id, latest last use or "").
    static let remove = """
    local score = redis.call('ZSCORE', KEYS[2], ARGV[4])
    if ARGV[5] ~= '' and score and tonumber(score) > tonumber(ARGV[5]) then return {1} end
    local v = redis.call('GET', KEYS[1])
    if v and ARGV[1] ~= '' and string.sub(v, 5, 24) ~= ARGV[1] then return {1, v} end
    redis.call('ZREM', KEYS[2], ARGV[4])
    if not v and not score then return {0, redis.call('GET', KEYS[3]) or '', ''} end
    redis.call('DEL', KEYS[1])
    redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
    return {2}
    """
}
