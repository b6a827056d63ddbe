import Foundation
import Synchronization

/// The memory driver: sessions in shards chosen by session id (shards ≥ cores, so steps on
/// different sessions run in parallel), a global count against `maxSessions`, and expiry by
/// idle TTL. Given a `SessionLog`, every change is also made durable there before it is
/// acknowledged (the SQLite driver runs on it so).
public final class MemoryDriver: SessionDriver {
    let shards: [SessionShard]
    let clock: any ServiceClock
    let ttl: Double
    let maxSessions: Int
    let evictWhenFull: Bool
    let events: any SessionEvents
    let log: (any SessionLog)?
    /// Sessions held, across shards (shards take expired ones off as they drop them).
    private let count: Counter

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
        /// Set by `close`: no change is taken after it.
        let closed = Atomic<Bool>(false)
    }

    static let closedError = SessionRules.closed

    private func ensureOpen() throws(SessionError) {
        if count.closed.load(ordering: .relaxed) { throw Self.closedError }
    }

    public init(shards: Int, clock: any ServiceClock, ttl: Double, maxSessions: Int, evictWhenFull: Bool, events: any SessionEvents, log: (any SessionLog)? = nil) {
        let count = Counter()
        self.count = count
        self.log = log
        self.shards = (0..<max(1, shards)).map { _ in
            SessionShard(clock: clock, ttl: ttl, log: log) { [count, events] in
                count.value.subtract(1, ordering: .relaxed)
                events.sessionsExpired(1)
            }
        }
        self.clock = clock
        self.ttl = ttl
        self.maxSessions = maxSessions
        self.evictWhenFull = evictWhenFull
        self.events = events
    }

    public var activeCount: Int { count.value.load(ordering: .relaxed) }

    func shard(_ id: String) -> SessionShard { shards[SessionKey(id).shard(of: shards.count)] }

    /// A new id: 128 random bits from the system's generator, as 32 hex digits.
    static func newID() -> String {
        var g = SystemRandomNumberGenerator()
        return SessionKey(hi: g.next(), lo: g.next()).hex
    }

    /// Takes `removed` evicted or deleted sessions off the count (expired ones are taken off by their shard).
    private func forget(_ removed: Int) {
        if removed > 0 { count.value.subtract(removed, ordering: .relaxed) }
    }

    public func create(on model: any SessionModel, state: [Float]) async throws(SessionError) -> SessionInfo {
        try ensureOpen()
        try await reserve()
        let now = clock.now()
        let new = SessionShard.New(id: Self.newID(), model: model, state: state, created: now, lastUsed: now)
        let (session, ticket) = await shard(new.id).insert(new)
        try await stored(ticket)
        events.sessionCreated()
        return session
    }

    /// Waits until the log has written a change (nothing to wait for without one).
    private func stored(_ ticket: StoreTicket?) async throws(SessionError) {
        if let ticket { try await ticket.wait().get() }
    }

    /// Client ids never equal a server-made one (the front ends make them so).
    public func start(_ id: String, on model: any SessionModel, state: [Float]) async throws(SessionError) -> SessionInfo {
        try ensureOpen()
        if case let .success((reset, ticket)) = await shard(id).replaceState(id, state: state, readFor: model, step: 0, moveTo: model) {
            try await stored(ticket)
            return reset
        }
        try await reserve()
        let now = clock.now()
        let new = SessionShard.New(id: id, model: model, state: state, created: now, lastUsed: now)
        let (inserted, ticket) = await shard(id).insertIfAbsent(new)
        guard let session = inserted else {
            forget(1)  // another start of the same id got there first and made it
            return try await replace(id, state: state, readFor: model, step: 0, moveTo: model).get()
        }
        try await stored(ticket)
        events.sessionCreated()
        return session
    }

    /// Takes one place of `maxSessions`, sweeping, evicting or refusing when full.
    private func reserve() async throws(SessionError) {
        while true {
            let c = count.value.load(ordering: .relaxed)
            if c >= maxSessions {
                _ = await sweep()
                if count.value.load(ordering: .relaxed) < maxSessions { continue }
                if evictWhenFull {
                    await evictOldest()
                    continue
                }
                let retry = await secondsUntilAnExpiry()
                throw SessionRules.full(maxSessions, retryAfter: retry)
            }
            if count.value.compareExchange(expected: c, desired: c + 1, ordering: .relaxed).exchanged { return }
        }
    }

    public func info(_ id: String) async -> Result<SessionInfo, SessionError> {
        await shard(id).info(id)
    }

    public func infoNow(_ id: String) -> Result<SessionInfo, SessionError>? {
        shard(id).now { $0.info(id) }
    }

    public func export(_ id: String) async -> Result<(SessionInfo, [Float]), SessionError> {
        await shard(id).export(id)
    }

    /// A durable step is written on this thread too when the log is free (its ticket is then
    /// done).
    public func stepNow(_ request: StepRequest) -> StepResult? {
        if count.closed.load(ordering: .relaxed) { return .refused(Self.closedError) }
        let key = SessionKey(request.id)
        return shards[key.shard(of: shards.count)].now { $0.step(request, key: key) }.map(drive)
    }

    /// The shard queues a step's change as driven: this thread writes it (or waits for the
    /// writer that does), so its answer need not wait for the log's own thread.
    private func drive(_ result: StepResult) -> StepResult {
        if case let .stepped(s) = result, let ticket = s.ticket { log?.drive(ticket) }
        return result
    }

    public func step(_ request: StepRequest) async -> StepResult {
        if count.closed.load(ordering: .relaxed) { return .refused(Self.closedError) }
        let key = SessionKey(request.id)
        return drive(await shards[key.shard(of: shards.count)].step(request, key: key))
    }

    public func migrate(_ id: String, to model: any SessionModel, expectedStep: Int?) async -> Result<SessionInfo, SessionError> {
        do throws(SessionError) {
            try ensureOpen()
            let (session, ticket) = try await shard(id).migrate(id, to: model, expectedStep: expectedStep).get()
            try await stored(ticket)
            return .success(session)
        } catch {
            return .failure(error)
        }
    }

    public func replaceState(_ id: String, state: [Float], readFor: any SessionModel, step: Int?) async -> Result<SessionInfo, SessionError> {
        await replace(id, state: state, readFor: readFor, step: step, moveTo: nil)
    }

    private func replace(_ id: String, state: [Float], readFor: any SessionModel, step: Int?, moveTo: (any SessionModel)?) async -> Result<SessionInfo, SessionError> {
        do throws(SessionError) {
            try ensureOpen()
            let (session, ticket) = try await shard(id).replaceState(id, state: state, readFor: readFor, step: step, moveTo: moveTo).get()
            try await stored(ticket)
            return .success(session)
        } catch {
            return .failure(error)
        }
    }

    public func delete(_ id: String) async -> Result<Void, SessionError> {
        do throws(SessionError) {
            try ensureOpen()
            let (ticket, counted) = try await shard(id).delete(id).get()
            if counted {
                forget(1)
                events.sessionDeleted()
            }
            try await stored(ticket)
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    /// Drops expired sessions in every shard; returns how many. After a mass expiry the freed
    /// pages go back to the system (glibc keeps freed small blocks otherwise).
    @discardableResult
    public func sweep() async -> Int {
        var total = 0
        for s in shards { total += await s.sweep() }
        if total >= 1000 { _ = Self.mallocTrim?(0) }
        return total
    }

    /// glibc's `malloc_trim`, found at run time (Swift's Glibc module does not declare it).
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()

    private func evictOldest() async {
        var best: (SessionShard, String, Double)?
        for s in shards {
            if let o = await s.oldest(), best == nil || o.lastUsed < best!.2 { best = (s, o.id, o.lastUsed) }
        }
        if let (s, id, _) = best {
            let (evicted, ticket) = await s.evict(id)
            guard evicted else { return }
            forget(1)
            events.sessionEvicted()
            try? await stored(ticket)
        }
    }

    private func secondsUntilAnExpiry() async -> Int {
        var soonest = Double.infinity
        for s in shards { if let o = await s.oldest() { soonest = min(soonest, o.lastUsed + ttl) } }
        return soonest.isFinite ? max(1, Int((soonest - clock.now()).rounded(.up))) : 1
    }

    // MARK: Stored sessions (with a log)

    /// The memory driver keeps nothing across restarts.
    public func storedVersions() -> [(model: String, version: Int)] { [] }
    public func load(versions: @escaping Versions) -> LoadReport { LoadReport() }
    public func close() { count.closed.store(true, ordering: .relaxed) }

    /// A stored session as the shard holds it, or why it cannot run on the versions loaded:
    /// its version must be there with the very weights and config it ran on.
    static func session(_ row: StoredSession, _ versions: Versions) -> Result<SessionShard.New, SessionError> {
        let model: any SessionModel
        switch SessionRules.version(of: row, versions) {
        case let .success(m): model = m
        case let .failure(why): return .failure(why)
        }
        let state = [Float](unsafeUninitializedCapacity: model.stateWidth) { values, n in
            row.state.withUnsafeBytes { UnsafeMutableRawBufferPointer(values).copyMemory(from: $0) }
            n = model.stateWidth
        }
        return .success(SessionShard.New(id: row.id, model: model, state: state, step: row.step, created: row.created, lastUsed: row.lastUsed))
    }

    /// Brings back a log's sessions at start-up: live ones into their shards (counted against
    /// max_sessions only as far as it goes), expired ones deleted, ones whose model is not
    /// served kept aside to answer `.gone`. Runs on the calling thread: at start-up every
    /// shard is idle.
    public func loadNow(_ rows: [StoredSession], versions: Versions) -> LoadReport {
        let now = clock.now()
        var report = LoadReport()
        for row in rows {
            if now - row.lastUsed > ttl {
                _ = log?.delete(row.id, wait: false)
                report.expired += 1
                continue
            }
            let done: Void?
            switch Self.session(row, versions) {
            case let .success(session):
                done = shard(row.id).now { $0.load(session) }
                report.live += 1
            case let .failure(why):
                let (id, message) = (row.id, why.description)
                done = shard(row.id).now { $0.loadOrphan(id, why: message) }
                report.orphaned += 1
            }
            precondition(done != nil, "a session shard was busy during start-up")
        }
        count.value.add(report.live, ordering: .relaxed)
        return report
    }

    /// After a failed write: each id back to what the log holds.
    public func restore(_ rows: [(String, StoredSession?)], versions: Versions) async {
        for (id, row) in rows {
            let session = row.flatMap { try? Self.session($0, versions).get() }
            let change = await shard(id).restore(id, session)
            if change > 0 { count.value.add(change, ordering: .relaxed) } else if change < 0 { forget(-change) }
        }
    }
}
