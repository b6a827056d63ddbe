import Foundation
import ModelFormat
import ModelRuntime
import RecurrentCore
import Synchronization

/// The session store: shards chosen by session id (shards ≥ cores, so steps on different
/// sessions run in parallel), a global count against `maxSessions`, and expiry by idle TTL.
public final class SessionStore: Sendable {
    let shards: [SessionShard]
    let clock: any ServiceClock
    let ttl: Double
    let maxSessions: Int
    let evictWhenFull: Bool
    let events: any SessionEvents
    /// The durable copy (`session_store` sqlite:PATH); nil for the memory store.
    let journal: SessionJournal?
    /// Sessions held, across shards (shards take expired ones off as they drop them).
    private let count: Counter

    final class Counter: Sendable { let value = Atomic<Int>(0) }

    init(shards: Int, clock: any ServiceClock, ttl: Double, maxSessions: Int, evictWhenFull: Bool, events: any SessionEvents, journal: SessionJournal? = nil) {
        let count = Counter()
        self.count = count
        self.journal = journal
        self.shards = (0..<max(1, shards)).map { _ in
            SessionShard(clock: clock, ttl: ttl, journal: journal) { [count, events] in
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

    func shard(_ id: String) -> SessionShard {
        shards[Int(FNV1a.hash64(id.utf8) % UInt64(shards.count))]
    }

    /// A new id: 128 random bits from the system's generator, as 32 hex digits.
    static func newID() -> String {
        var g = SystemRandomNumberGenerator()
        return SessionKey(hi: g.next(), lo: g.next()).hex
    }

    /// Takes `removed` evicted or deleted sessions off the count (expired ones are taken off by their shard).
    private func forget(_ removed: Int) {
        if removed > 0 { count.value.subtract(removed, ordering: .relaxed) }
    }

    func create(on entry: ModelRegistry.Entry, state: RecurrentState) async throws(SessionError) -> SessionShard.Session {
        try await reserve()
        let now = clock.now()
        let new = SessionShard.New(id: Self.newID(), entry: entry, state: state, created: now, lastUsed: now)
        let (session, ticket) = await shard(new.id).insert(new)
        try await stored(ticket)
        events.sessionCreated()
        return session
    }

    /// Waits until the journal has written a change (nothing to wait for without one).
    private func stored(_ ticket: SessionJournal.Ticket?) async throws(SessionError) {
        if let ticket { try await ticket.wait().get() }
    }

    /// A session under an id the client chose (an Open Inference sequence): started afresh
    /// from `state`, or reset to it at step 0 when it is live. Client ids are made so that
    /// they never equal a server-made one (`Service.sequenceKey`).
    func start(_ id: String, on entry: ModelRegistry.Entry, state: RecurrentState) async throws(SessionError) -> SessionShard.Session {
        if case let .success((reset, ticket)) = await shard(id).replaceState(id, state: state, step: 0, entry: entry) {
            try await stored(ticket)
            return reset
        }
        try await reserve()
        let now = clock.now()
        let new = SessionShard.New(id: id, entry: entry, state: state, created: now, lastUsed: now)
        let (inserted, ticket) = await shard(id).insertIfAbsent(new)
        guard let session = inserted else {
            forget(1)  // another start of the same id got there first and made it
            return try await replaceState(id, state: state, step: 0, entry: entry).get()
        }
        try await stored(ticket)
        events.sessionCreated()
        return session
    }

    /// Takes one place of `maxSessions`, sweeping, evicting or refusing (429) when full.
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
                throw .full("the server holds its maximum of \(maxSessions) sessions; delete one or retry in \(retry) s", retryAfter: retry)
            }
            if count.value.compareExchange(expected: c, desired: c + 1, ordering: .relaxed).exchanged { return }
        }
    }

    func info(_ id: String) async -> Result<SessionShard.Session, SessionError> {
        await shard(id).info(id)
    }

    /// A session with a copy of its state.
    func export(_ id: String) async -> Result<(SessionShard.Session, RecurrentState), SessionError> {
        await shard(id).export(id)
    }

    /// `step` on this thread if the session's shard is idle; nil if it is busy. A durable
    /// step is written on this thread too when the journal is free (its ticket is then done).
    func stepNow(_ id: String, expectedStep: Int?, rows: @escaping @Sendable (ModelRegistry.Entry) throws(RuntimeError) -> [[Float]])
        -> Result<(SessionShard.Stepped, ModelRegistry.Entry, [[Float]]), StepFailure>? {
        shard(id).now { $0.step(id, expectedStep: expectedStep, rows: rows) }.map(drive)
    }

    /// The shard queues a step's change as driven: this thread writes it (or waits for the
    /// writer that does), so its answer need not wait for the committer thread.
    private func drive(_ stepped: Result<(SessionShard.Stepped, ModelRegistry.Entry, [[Float]]), StepFailure>)
        -> Result<(SessionShard.Stepped, ModelRegistry.Entry, [[Float]]), StepFailure> {
        if case let .success((s, _, _)) = stepped, let ticket = s.stored { journal?.drive(ticket) }
        return stepped
    }

    func step(_ id: String, expectedStep: Int?, rows: @escaping @Sendable (ModelRegistry.Entry) throws(RuntimeError) -> [[Float]]) async
        -> Result<(SessionShard.Stepped, ModelRegistry.Entry, [[Float]]), StepFailure> {
        drive(await shard(id).step(id, expectedStep: expectedStep, rows: rows))
    }

    /// Moves a session to another version of its model (409 when their states differ).
    func migrate(_ id: String, to entry: ModelRegistry.Entry, expectedStep: Int?) async -> Result<SessionShard.Session, SessionError> {
        do throws(SessionError) {
            let (session, ticket) = try await shard(id).migrate(id, to: entry, expectedStep: expectedStep).get()
            try await stored(ticket)
            return .success(session)
        } catch {
            return .failure(error)
        }
    }

    func replaceState(_ id: String, state: RecurrentState, step: Int?, entry: ModelRegistry.Entry? = nil) async -> Result<SessionShard.Session, SessionError> {
        do throws(SessionError) {
            let (session, ticket) = try await shard(id).replaceState(id, state: state, step: step, entry: entry).get()
            try await stored(ticket)
            return .success(session)
        } catch {
            return .failure(error)
        }
    }

    func delete(_ id: String) async -> Result<Void, SessionError> {
        do throws(SessionError) {
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

    /// Finds the loaded model version a stored session ran on: (model, version, fingerprint)
    /// → the entry, preferring one with that fingerprint.
    typealias Versions = @Sendable (String, Int, String) -> ModelRegistry.Entry?

    /// A stored session as the shard holds it, or why it cannot run on the versions loaded:
    /// its version must be there with the very weights and config it ran on.
    static func session(_ row: SessionJournal.Row, _ versions: Versions) -> Result<SessionShard.New, SessionError> {
        guard let version = Int(row.version), let entry = versions(row.model, version, row.fingerprint) else {
            return .failure(.gone("session '\(row.id)' runs model '\(row.model)' version \(row.version), which is no longer served"))
        }
        guard row.fingerprint.isEmpty || row.fingerprint == entry.model.fingerprint else {
            return .failure(.gone("session '\(row.id)' ran on other files of model '\(row.model)' version \(row.version) than are served now (the weights or config changed); publish changed models as a new version to keep sessions"))
        }
        var state = entry.model.pipeline.makeState(batchSize: 1)
        guard entry.stateLayout == row.layout, row.state.withUnsafeBytes({ state.load(serialized: $0) }) else {
            return .failure(.gone("session '\(row.id)' holds a state of layout (\(row.layout)); model '\(row.model)' version \(row.version) as served now has (\(entry.stateLayout))"))
        }
        return .success(SessionShard.New(id: row.id, entry: entry, state: state, step: row.step, created: row.created, lastUsed: row.lastUsed))
    }

    /// Brings back the journal's sessions at start-up: live ones into their shards (counted
    /// against max_sessions only as far as it goes), expired ones deleted, ones whose model is
    /// not served kept aside to answer 410. Returns (live, expired, orphaned).
    /// Runs on the calling thread: at start-up every shard is idle.
    func loadNow(_ rows: [SessionJournal.Row], versions: Versions) -> (Int, Int, Int) {
        let now = clock.now()
        var (live, expired, orphaned) = (0, 0, 0)
        for row in rows {
            if now - row.lastUsed > ttl {
                journal?.append(.delete(row.id), wait: false)
                expired += 1
                continue
            }
            let done: Void?
            switch Self.session(row, versions) {
            case let .success(session):
                done = shard(row.id).now { $0.load(session) }
                live += 1
            case let .failure(why):
                let (id, message) = (row.id, why.description)
                done = shard(row.id).now { $0.loadOrphan(id, why: message) }
                orphaned += 1
            }
            precondition(done != nil, "a session shard was busy during start-up")
        }
        count.value.add(live, ordering: .relaxed)
        return (live, expired, orphaned)
    }

    /// After a failed write: each id back to what the journal holds.
    func restore(_ rows: [(String, SessionJournal.Row?)], versions: Versions) async {
        for (id, row) in rows {
            let session = row.flatMap { try? Self.session($0, versions).get() }
            let change = await shard(id).restore(id, session)
            if change > 0 { count.value.add(change, ordering: .relaxed) } else if change < 0 { forget(-change) }
        }
    }

    /// Drops expired sessions in every shard; returns how many. After a mass expiry the freed
    /// pages go back to the system (glibc keeps freed small blocks otherwise).
    @discardableResult
    public func sweep() async -> Int {
        var total = 0
        for s in shards { total += await s.sweep() }
        if total >= 1000 { Self.mallocTrim?(0) }
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
}
