import Foundation
import Redis
import SessionStore

/// Expiry, the count, and the cap: each bucket's index (ids by last use) answers which
/// sessions expired and which is least recently used, one pipeline per node for all buckets.
/// None of these runs under a shard lock, since they take shard locks one at a time.
extension RedisDriver {
    public func sweep() async -> Int {
        (try? await blocking { () -> Result<Int, SessionError> in .success(self.sweepNow()) }.get()) ?? 0
    }

    /// Removes every session idle past the TTL, then counts what the store holds; how many
    /// it removed.
    @discardableResult
    func sweepNow() -> Int {
        let cutoff = clock.now() - ttl
        let scans = client.scatter((0..<RedisKeys.buckets).map { b in
            let index = keys.index(b)
            return (index, [Self.text("ZRANGEBYSCORE"), index, Self.text("-inf"), Self.text("(\(cutoff)"), Self.text("LIMIT"), Self.text("0"), Self.text("1000")])
        })
        var removed = 0
        for scan in scans {
            guard case let .success(reply) = scan, let ids = reply.array else { continue }
            for id in ids.compactMap(\.text) {
                let done = shard(id).held.withLock { held -> Bool in
                    held.drop(id)
                    let args = [[], Self.text("expired"), Self.text(String(tombstoneSeconds)), Self.text(id), Self.score(cutoff)]
                    if case .done? = try? run(.remove, id, args) { return true }
                    return false
                }
                if done { removed += 1 }
            }
        }
        if removed > 0 { events.sessionsExpired(removed) }
        recount()
        return removed
    }

    /// The store's count, from every bucket's index (kept when a node does not answer).
    func recount() {
        let replies = client.scatter((0..<RedisKeys.buckets).map { b in (keys.index(b), [Self.text("ZCARD"), keys.index(b)]) })
        var total = 0
        for r in replies {
            guard case let .success(reply) = r, let n = reply.integer else { return }
            total += n
        }
        count.store(total, ordering: .relaxed)
    }

    /// The least recently used session of all buckets.
    func oldest() -> (id: String, lastUsed: Double)? {
        let replies = client.scatter((0..<RedisKeys.buckets).map { b in
            (keys.index(b), [Self.text("ZRANGE"), keys.index(b), Self.text("0"), Self.text("0"), Self.text("WITHSCORES")])
        })
        var best: (id: String, lastUsed: Double)?
        for r in replies {
            guard case let .success(reply) = r, let pair = reply.array, pair.count == 2,
                  let id = pair[0].text, let score = pair[1].text.flatMap(Double.init) else { continue }
            if best == nil || score < best!.lastUsed { best = (id, score) }
        }
        return best
    }

    /// Takes one place of `maxSessions`: sweeping, then evicting or refusing when full.
    func reserve() throws(SessionError) {
        while true {
            let c = count.load(ordering: .relaxed)
            if c >= maxSessions {
                sweepNow()
                if count.load(ordering: .relaxed) < maxSessions { continue }
                if evictWhenFull, evictOldest() { continue }
                let soonest = oldest().map { $0.lastUsed + ttl }
                let retry = soonest.map { max(1, Int(($0 - clock.now()).rounded(.up))) } ?? 1
                throw SessionRules.full(maxSessions, retryAfter: retry)
            }
            if count.compareExchange(expected: c, desired: c + 1, ordering: .relaxed).exchanged { return }
        }
    }

    /// Evicts the least recently used session (unless it was used meanwhile); whether one went.
    func evictOldest() -> Bool {
        guard let victim = oldest() else { return false }
        let done = shard(victim.id).held.withLock { held -> Bool in
            held.drop(victim.id)
            let args = [[], Self.text("evicted"), Self.text(String(tombstoneSeconds)), Self.text(victim.id), Self.score(victim.lastUsed)]
            if case .done? = try? run(.remove, victim.id, args, wait: true) { return true }
            return false
        }
        if done {
            count.subtract(1, ordering: .relaxed)
            events.sessionEvicted()
        }
        return true  // used meanwhile or gone: look again
    }
}
