import ModelFormat
import RecurrentCore

/// One shard of the session store: an actor holding its sessions' states, so steps on one
/// session are serialized and never lost or doubled, while other shards step in parallel.
/// Its executor lets a caller that finds the shard idle run isolated code at once (`now`).
actor SessionShard {
    nonisolated let executor = ShardExecutor()
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Runs `body` isolated to this shard on the calling thread when the shard is idle, or
    /// returns nil (then await the actor as usual).
    nonisolated func now<T: Sendable>(_ body: @Sendable (isolated SessionShard) -> T) -> T? {
        executor.runIfIdle { assumeIsolated { body($0) } }
    }

    struct Session {
        let id: String
        let model: String
        var state: RecurrentState
        var step: Int
        let created: Double
        var lastUsed: Double
    }

    private var sessions: [String: Session] = [:]
    /// Why recently removed ids are gone ("expired", "evicted"), for a 404 that says so.
    private var tombstones: [String: String] = [:]
    private var tombstoneOrder: [String] = []
    /// Scratch per model (batch 1), reused by every step in this shard.
    private var workspaces: [String: Workspace] = [:]
    /// The normalized row being stepped (its buffer kept from step to step).
    private var normalized: [Float] = []
    let clock: any ServiceClock
    let ttl: Double
    /// Told of every session that expires here, as it goes (the store's count and metrics),
    /// so no caller needs a second trip into the actor to collect them.
    let expired: @Sendable () -> Void

    init(clock: any ServiceClock, ttl: Double, expired: @escaping @Sendable () -> Void) {
        self.clock = clock
        self.ttl = ttl
        self.expired = expired
    }

    var count: Int { sessions.count }

    func insert(_ session: Session) { sessions[session.id] = session }

    /// The live session, or the reason it is gone. Expired ones are dropped here.
    private func live(_ id: String, now: Double) -> Result<Session, APIError> {
        if let s = sessions[id] {
            if now - s.lastUsed <= ttl { return .success(s) }
            remove(id, reason: "expired after \(Int(ttl)) s idle")
            return .failure(APIError(.notFound, "session '\(id)' expired after \(Int(ttl)) s idle"))
        }
        if let reason = tombstones[id] { return .failure(APIError(.notFound, "session '\(id)' \(reason)")) }
        return .failure(APIError(.notFound, "no session '\(id)'"))
    }

    private func remove(_ id: String, reason: String) {
        guard sessions.removeValue(forKey: id) != nil else { return }
        if reason.hasPrefix("expired") { expired() }
        tombstones[id] = reason
        tombstoneOrder.append(id)
        if tombstoneOrder.count > 10_000 {
            tombstones[tombstoneOrder.removeFirst()] = nil
        }
    }

    func info(_ id: String) -> Result<Session, APIError> { live(id, now: clock.now()) }

    /// What a step answers besides the outputs.
    struct Stepped: Sendable { let model: String; let step: Int }

    /// Advances a session through `rows` (raw inputs, one array per timestep).
    /// Returns the step count after and the output after each step, in real units.
    /// `rows` turns the request into raw inputs for the session's model; it runs here, so
    /// one actor call finds the session, decodes and steps.
    func step(_ id: String, expectedStep: Int?, registry: ModelRegistry,
              rows makeRows: @Sendable (ModelRegistry.Entry) throws(APIError) -> [[Float]]) -> Result<(Stepped, ModelRegistry.Entry, [[Float]]), APIError> {
        let now = clock.now()
        // The session is found once and stepped in place through its index (a copy would share
        // the state's buffers and copy them on the first write).
        guard let i = sessions.index(forKey: id), now - sessions.values[i].lastUsed <= ttl else {
            if case let .failure(e) = live(id, now: now) { return .failure(e) }
            return .failure(APIError(.notFound, "no session '\(id)'"))
        }
        let model = sessions.values[i].model, current = sessions.values[i].step
        guard let entry = registry[model] else {
            return .failure(APIError(.notFound, "session '\(id)' runs model '\(model)', which is not loaded"))
        }
        let rows: [[Float]]
        do { rows = try makeRows(entry) } catch { return .failure(error) }
        if let expectedStep, expectedStep != current {
            return .failure(APIError(.conflict, "session '\(id)' is at step \(current) but the request expected step \(expectedStep); nothing was changed"))
        }
        let net = entry.model.network
        let ws = workspace(model, net)
        var outputs: [[Float]] = []
        outputs.reserveCapacity(rows.count)
        Self.advance(&sessions.values[i]) { session in
            for row in rows {
                normalized.removeAll(keepingCapacity: true)
                normalized.append(contentsOf: row)
                entry.predictor.normalize(&normalized)
                net.step(normalized, state: &session.state, workspace: ws)
                var y: [Float]
                if net.headOutputSize != nil {
                    net.applyHead(workspace: ws)
                    y = ws.head
                } else {
                    y = ws.output
                }
                entry.predictor.realUnits(&y, inputs: row, sequenceLength: 1)
                outputs.append(y)
            }
            session.step = current + rows.count
            session.lastUsed = now
        }
        return .success((Stepped(model: model, step: current + rows.count), entry, outputs))
    }

    /// This shard's batch-1 scratch for `model`, made on first use.
    private func workspace(_ model: String, _ net: RecurrentNetwork) -> Workspace {
        if let ws = workspaces[model] { return ws }
        let ws = Workspace(network: net, batchSize: 1)
        workspaces[model] = ws
        return ws
    }

    private static func advance(_ session: inout Session, _ body: (inout Session) -> Void) { body(&session) }

    func replaceState(_ id: String, state: RecurrentState, step: Int?) -> Result<Session, APIError> {
        let now = clock.now()
        switch live(id, now: now) {
        case var .success(s):
            s.state = state
            if let step { s.step = step }
            s.lastUsed = now
            sessions[id] = s
            return .success(s)
        case let .failure(e):
            return .failure(e)
        }
    }

    func delete(_ id: String) -> Result<Void, APIError> {
        switch live(id, now: clock.now()) {
        case .success:
            sessions[id] = nil
            tombstones[id] = "was deleted"
            tombstoneOrder.append(id)
            return .success(())
        case let .failure(e):
            return .failure(e)
        }
    }

    func evict(_ id: String) -> Bool {
        guard sessions[id] != nil else { return false }
        remove(id, reason: "was evicted (least recently used) to make room")
        return true
    }

    /// Drops every expired session; returns how many.
    func sweep() -> Int {
        let now = clock.now()
        let gone = sessions.filter { now - $0.value.lastUsed > ttl }.map(\.key)
        for id in gone { remove(id, reason: "expired after \(Int(ttl)) s idle") }
        return gone.count
    }

    /// The least recently used session, for eviction, and the soonest expiry.
    func oldest() -> (id: String, lastUsed: Double)? {
        sessions.values.min { $0.lastUsed < $1.lastUsed }.map { ($0.id, $0.lastUsed) }
    }
}
