import Foundation
import Redis
import SessionStore

/// Making, reading, changing and ending sessions; expiry, capacity and eviction.
extension RedisDriver {
    func info(_ c: Shard.Cached, _ id: String) -> SessionInfo {
        SessionInfo(id: id, model: c.model, step: c.record.step, created: c.record.created, lastUsed: c.record.lastUsed)
    }

    /// Runs `body` under `id`'s shard lock on Dispatch's pool.
    func locked<T: Sendable>(_ id: String, _ body: @escaping @Sendable (inout Shard.Held) throws(SessionError) -> T) async -> Result<T, SessionError> {
        await blocking { () -> Result<T, SessionError> in
            do throws(SessionError) {
                try self.ensureOpen()
                return .success(try self.shard(id).held.withLock { held throws(SessionError) in try body(&held) })
            } catch {
                return .failure(error)
            }
        }
    }

    public func create(on model: any SessionModel, state: [Float]) async throws(SessionError) -> SessionInfo {
        let id = Self.newID()
        try await blocking { () -> Result<Void, SessionError> in Result(catching: { () throws(SessionError) in try self.ensureOpen(); try self.reserve() }) }.get()
        return try await locked(id) { held throws(SessionError) in try self.insert(id, on: model, state: state, &held) }.get()
    }

    /// Adds a session under a free id in the place of `maxSessions` the caller reserved
    /// (given back on failure); `.conflict` when the id is taken (a client name another
    /// replica started meanwhile).
    @discardableResult
    func insert(_ id: String, on model: any SessionModel, state: [Float], _ held: inout Shard.Held) throws(SessionError) -> SessionInfo {
        let now = clock.now()
        let c = Shard.Cached(record: SessionRecord(revision: 1, step: 0, created: now, lastUsed: now, model: model, state: state), model: model)
        let outcome: Outcome
        do { outcome = try run(.create, id, [c.record.encoded(), ttlMilliseconds, Self.score(now), Self.text(id)], wait: true) } catch {
            count.subtract(1, ordering: .relaxed)
            throw error
        }
        guard case let .done(_, replicated) = outcome else {
            count.subtract(1, ordering: .relaxed)
            throw .conflict("session '\(id)' was made by another server at the same moment; retry")
        }
        held.keep(id, c)
        record(model)
        events.sessionCreated()
        if let why = unreplicated(id, step: 0, replicated) { throw why }
        return info(c, id)
    }

    /// Notes (model, version) among the stored versions, once per process.
    func record(_ model: any SessionModel) {
        know(model)
        let member = "\(model.name)\u{1F}\(model.version)"
        guard recordedVersions.withLock({ $0.insert(member).inserted }) else { return }
        if (try? client.call(key: keys.versions, [Self.text("SADD"), keys.versions, Self.text(member)])) == nil {
            recordedVersions.withLock { _ = $0.remove(member) }  // try again next time
        }
    }

    public func start(_ id: String, on model: any SessionModel, state: [Float]) async throws(SessionError) -> SessionInfo {
        for _ in 0..<Self.rounds {
            // reset it when it is there
            let reset = try await locked(id) { held throws(SessionError) -> SessionInfo? in
                let now = self.clock.now()
                let c: Shard.Cached
                do throws(SessionError) { c = try self.fetch(id, now: now, &held) } catch {
                    if case .notFound = error { return nil }
                    throw error
                }
                let next = Shard.Cached(record: SessionRecord(revision: c.record.revision + 1, step: 0, created: c.record.created, lastUsed: now, model: model, state: state), model: model)
                let w = try self.write(id, base: c, next: next, now: now, &held)
                guard w.written else { throw .conflict("session '\(id)' changed while it was started") }
                self.record(model)
                if let why = self.unreplicated(id, step: 0, w.replicated) { throw why }
                return self.info(next, id)
            }
            switch reset {
            case let .success(info?): return info
            case .failure(.conflict): continue
            case let .failure(error): throw error
            case .success(nil): break
            }
            // else make it, in a place reserved outside the lock
            try await blocking { () -> Result<Void, SessionError> in Result(catching: { () throws(SessionError) in try self.reserve() }) }.get()
            let made = await locked(id) { held throws(SessionError) in try self.insert(id, on: model, state: state, &held) }
            switch made {
            case let .success(info): return info
            case .failure(.conflict): continue  // another server made it meanwhile: reset that one
            case let .failure(error): throw error
            }
        }
        throw .unavailable("session '\(id)' kept changing while it was started; retry")
    }

    public func info(_ id: String) async -> Result<SessionInfo, SessionError> {
        await locked(id) { held throws(SessionError) in self.info(try self.fetch(id, now: self.clock.now(), &held), id) }
    }

    public func infoNow(_ id: String) -> Result<SessionInfo, SessionError>? {
        if closed.load(ordering: .relaxed) { return .failure(SessionRules.closed) }
        return shard(id).held.tryWithLock { held in
            Result(catching: { () throws(SessionError) in info(try fetch(id, now: clock.now(), &held), id) })
        }
    }

    public func export(_ id: String) async -> Result<(SessionInfo, [Float]), SessionError> {
        await locked(id) { held throws(SessionError) in
            let c = try self.fetch(id, now: self.clock.now(), &held)
            return ExportBox(info: self.info(c, id), state: c.record.state)
        }.map { ($0.info, $0.state) }
    }

    struct ExportBox: Sendable { let info: SessionInfo; let state: [Float] }

    public func migrate(_ id: String, to model: any SessionModel, expectedStep: Int?) async -> Result<SessionInfo, SessionError> {
        await change(id) { c, now throws(SessionError) in
            if let why = SessionRules.migration(id, from: c.model, to: model, at: c.record.step, expected: expectedStep) { throw why }
            return Shard.Cached(record: SessionRecord(revision: c.record.revision + 1, step: c.record.step, created: c.record.created, lastUsed: now, model: model, state: c.record.state), model: model)
        }
    }

    public func replaceState(_ id: String, state: [Float], readFor: any SessionModel, step: Int?) async -> Result<SessionInfo, SessionError> {
        await change(id) { c, now throws(SessionError) in
            if let why = SessionRules.replacement(id, current: c.model, target: c.model, readFor: readFor, count: state.count) { throw why }
            var next = c
            next.record.revision += 1
            next.record.state = state
            if let step { next.record.step = step }
            next.record.lastUsed = now
            return next
        }
    }

    /// A change computed from the session as Redis holds it, written if nobody changed it
    /// meanwhile (else computed again from the new value).
    func change(_ id: String, _ compute: @escaping @Sendable (Shard.Cached, Double) throws(SessionError) -> Shard.Cached) async -> Result<SessionInfo, SessionError> {
        await locked(id) { held throws(SessionError) in
            let now = self.clock.now()
            var c = try self.fetch(id, now: now, &held)
            for _ in 0..<Self.rounds {
                let next = try compute(c, now)
                let w = try self.write(id, base: c, next: next, now: now, &held)
                if w.written {
                    if next.model !== c.model { self.record(next.model) }
                    if let why = self.unreplicated(id, step: next.record.step, w.replicated) { throw why }
                    return self.info(next, id)
                }
                c = w.current!
            }
            throw .unavailable("session '\(id)' kept changing while this change ran; retry")
        }
    }

    public func delete(_ id: String) async -> Result<Void, SessionError> {
        await locked(id) { held throws(SessionError) in
            let now = self.clock.now()
            var revision: [UInt8] = []
            do throws(SessionError) { revision = SessionRecord.revisionText(try self.fetch(id, now: now, &held).record.revision) } catch {
                guard case .gone = error else { throw error }  // a session no version serves may be deleted
            }
            held.drop(id)
            switch try self.run(.remove, id, [revision, Self.text("deleted"), Self.text(String(self.tombstoneSeconds)), Self.text(id), []], wait: true) {
            case .done:
                self.count.subtract(1, ordering: .relaxed)
                self.events.sessionDeleted()
            case let .missing(why, score): throw self.missing(id, why: why, score: score)
            case .changed: throw .conflict("session '\(id)' changed while it was deleted; it was kept, so look at it and delete it again")
            }
        }
    }
}
