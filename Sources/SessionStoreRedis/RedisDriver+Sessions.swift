import Foundation
import Redis
import SessionStore

/// The calls on one session. Each runs under its shard's lock (`Shard.held`), reads the
/// session (from the copy kept here, or Redis), applies `SessionRules`, and writes with the
/// revision check; a check that finds another replica's change takes the current value and
/// runs again. A refusal is only ever made on a value just read from Redis.
extension RedisDriver {
    /// Rounds of "another replica changed it meanwhile" a call goes through before it gives up.
    static let rounds = 16

    var ttlMilliseconds: [UInt8] { Array(String(Int(ttl * 1000)).utf8) }
    static func text(_ s: String) -> [UInt8] { Array(s.utf8) }
    static func score(_ time: Double) -> [UInt8] { Array(String(time).utf8) }

    /// The error for a session the store does not have, from its tombstone and index score.
    /// A session whose key Redis expired is still in its bucket's index: it is taken out here.
    func missing(_ id: String, why: String, score: String) -> SessionError {
        if let gone = SessionRules.Gone(rawValue: why) { return SessionRules.notFound(id, gone, ttl: ttl) }
        if !score.isEmpty {
            if case .done? = try? run(.remove, id, [[], Self.text("expired"), Self.text(String(tombstoneSeconds)), Self.text(id), []]) {
                count.subtract(1, ordering: .relaxed)
                events.sessionsExpired(1)
            }
            return SessionRules.notFound(id, .expired, ttl: ttl)
        }
        return SessionRules.notFound(id, nil, ttl: ttl)
    }

    /// A stored value read back onto its version: nil value, damage and unserved versions
    /// are errors.
    func resolve(_ id: String, _ value: [UInt8]) throws(SessionError) -> Shard.Cached {
        guard let record = SessionRecord(value) else {
            throw .gone("session '\(id)' is stored in a form this server cannot read (damaged, or written by another program); delete it and start again")
        }
        let loaded = versions.withLock { $0 }
        let known = self.known
        let versions: Versions = { name, version, fingerprint in
            known.withLock { $0[Self.knownKey(name, version, fingerprint)]?.model } ?? loaded?(name, version, fingerprint)
        }
        let row = StoredSession(id: id, model: record.model, version: record.version, fingerprint: record.fingerprint, step: record.step,
                                created: record.created, lastUsed: record.lastUsed, layout: record.layout,
                                state: record.state.withUnsafeBytes { Array($0) })
        switch SessionRules.version(of: row, versions) {
        case let .success(model): return Shard.Cached(record: record, model: model)
        case let .failure(why): throw why
        }
    }

    static func knownKey(_ name: String, _ version: Int, _ fingerprint: String) -> String { "\(name)\u{1F}\(version)\u{1F}\(fingerprint)" }

    /// Remembers a version sessions are put on here (see `known`).
    func know(_ model: any SessionModel) {
        let key = Self.knownKey(model.name, model.version, model.fingerprint)
        known.withLock { known in
            if known[key]?.model == nil { known = known.filter { $0.value.model != nil }; known[key] = WeakModel(model) }
        }
    }

    /// The session as Redis holds it now (kept as this process's copy); expired ones are
    /// removed here.
    func fetch(_ id: String, now: Double, _ held: inout Shard.Held) throws(SessionError) -> Shard.Cached {
        for _ in 0..<Self.rounds {
            switch try run(.read, id, [Self.text(id)]) {
            case let .missing(why, score):
                held.drop(id)
                throw missing(id, why: why, score: score)
            case .changed:
                continue
            case let .done(rest, _):
                guard case let .bytes(value)? = rest.first else { throw .unavailable("the session store (Redis) answered a read without a value") }
                let c: Shard.Cached
                do { c = try resolve(id, value) } catch {
                    held.drop(id)
                    throw error
                }
                if now - c.record.lastUsed > ttl {
                    held.drop(id)
                    throw expire(id, c.record)
                }
                held.keep(id, c)
                return c
            }
        }
        throw .unavailable("session '\(id)' kept changing while it was read; retry")
    }

    /// Removes a session found expired (unless another replica used it meanwhile).
    func expire(_ id: String, _ record: SessionRecord) -> SessionError {
        let latest = Self.score(record.lastUsed)
        if case .done? = try? run(.remove, id, [SessionRecord.revisionText(record.revision), Self.text("expired"), Self.text(String(tombstoneSeconds)), Self.text(id), latest]) {
            count.subtract(1, ordering: .relaxed)
            events.sessionsExpired(1)
        }
        return SessionRules.notFound(id, .expired, ttl: ttl)
    }

    /// This process's copy when it is within the TTL, else Redis's.
    func current(_ id: String, now: Double, _ held: inout Shard.Held) throws(SessionError) -> (Shard.Cached, fresh: Bool) {
        if let c = held[id], now - c.record.lastUsed <= ttl { return (c, false) }
        return (try fetch(id, now: now, &held), true)
    }

    /// Writes `next` over the session if Redis still has `base`'s revision: `next` kept on
    /// success (and how many replicas took it), or the current copy when another replica
    /// changed it.
    func write(_ id: String, base: Shard.Cached, next: Shard.Cached, now: Double, _ held: inout Shard.Held) throws(SessionError) -> (written: Bool, replicated: Int?, current: Shard.Cached?) {
        switch try run(.put, id, [SessionRecord.revisionText(base.record.revision), next.record.encoded(), ttlMilliseconds, Self.score(now), Self.text(id)], wait: true) {
        case let .done(_, replicated):
            held.keep(id, next)
            return (true, replicated, nil)
        case let .changed(value):
            guard let value else { return (false, nil, try fetch(id, now: now, &held)) }
            let c: Shard.Cached
            do { c = try resolve(id, value) } catch {
                held.drop(id)
                throw error
            }
            held.keep(id, c)
            return (false, nil, c)
        case let .missing(why, score):
            held.drop(id)
            throw missing(id, why: why, score: score)
        }
    }

    /// The refusal for a change acknowledged by fewer replicas than configured. Not strict,
    /// a primary that has no replica at all (after a failover) is let acknowledge alone (and is
    /// not waited on while it stays so).
    func unreplicated(_ id: String, step: Int, _ replicated: Int?) -> SessionError? {
        guard let replicated, replicated < durability.replicas else { return nil }
        if !durability.strict, let node = client.node(forKey: keys.session(id)) {
            let info = try? client.withConnection(node) { c throws(RedisError) in try c.call("INFO", "replication") }
            if let text = info?.text, text.contains("connected_slaves:0") {
                replicaless.withLock { $0[node] = Date().timeIntervalSince1970 + 10 }
                return nil
            }
        }
        return .unavailable("session '\(id)' was written to its Redis primary at step \(step), but \(replicated) of the \(durability.replicas) replicas asked for took it within \(durability.timeoutMilliseconds) ms, so it could be lost if the primary fails; check the session's step (or send expected_step) before sending it again")
    }

    /// Whether `key`'s primary has no replica, as last found (looked at again, with one
    /// `INFO`, once the finding is ten seconds old, so a replica that joins is waited on again).
    func isReplicaless(_ key: [UInt8]) -> Bool {
        guard let node = client.node(forKey: key), let until = replicaless.withLock({ $0[node] }) else { return false }
        if until > Date().timeIntervalSince1970 { return true }
        let info = try? client.withConnection(node) { c throws(RedisError) in try c.call("INFO", "replication") }
        let alone = info?.text?.contains("connected_slaves:0") == true
        replicaless.withLock { $0[node] = alone ? Date().timeIntervalSince1970 + 10 : nil }
        return alone
    }

    // MARK: Steps

    public func stepNow(_ request: StepRequest) -> StepResult? {
        if closed.load(ordering: .relaxed) { return .refused(SessionRules.closed) }
        return shard(request.id).held.tryWithLock { held in stepLocked(request, &held) }
    }

    public func step(_ request: StepRequest) async -> StepResult {
        if closed.load(ordering: .relaxed) { return .refused(SessionRules.closed) }
        let result = await blocking { () -> Result<StepResult, SessionError> in
            .success(self.shard(request.id).held.withLock { held in self.stepLocked(request, &held) })
        }
        switch result {
        case let .success(done): return done
        case let .failure(e): return .refused(e)
        }
    }

    func stepLocked(_ request: StepRequest, _ held: inout Shard.Held) -> StepResult {
        let id = request.id, count = request.rows.count
        let now = clock.now()
        do throws(SessionError) {
            var (c, fresh) = try current(id, now: now, &held)
            for _ in 0..<Self.rounds {
                let model = c.model, at = c.record.step
                var refusal: StepResult?
                if !(model === request.readFor || model.readsInput(like: request.readFor)) {
                    refusal = .readFor(model)
                } else if let why = SessionRules.stepRefusal(id, at: at, count: count, expected: request.expectedStep) {
                    refusal = .refused(why)
                }
                if let refusal {
                    if fresh { return refusal }
                    (c, fresh) = (try fetch(id, now: now, &held), true)
                    continue
                }
                var state = c.record.state
                guard let outputs = state.withUnsafeMutableBufferPointer({ held.stepper(model).step(request.rows, state: $0.baseAddress!) }) else {
                    return .refused(SessionRules.notFinite(at: at))
                }
                var next = c
                next.record.revision += 1
                next.record.step = at + count
                next.record.lastUsed = now
                next.record.state = state
                let w = try write(id, base: c, next: next, now: now, &held)
                guard w.written, w.current == nil else {
                    (c, fresh) = (w.current!, true)
                    continue
                }
                if let why = unreplicated(id, step: at + count, w.replicated) { return .refused(why) }
                return .stepped(Stepped(model: model, step: at + count, outputs: outputs, ticket: nil))
            }
            return .refused(.unavailable("session '\(id)' was changed by other servers \(Self.rounds) times while this step ran; retry"))
        } catch {
            return .refused(error)
        }
    }
}
