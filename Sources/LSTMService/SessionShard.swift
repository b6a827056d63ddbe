import ModelFormat
import RecurrentCore

/// One shard of the session store: an actor holding its sessions' states, so steps on one
/// session are serialized and never lost or doubled, while other shards step in parallel.
actor SessionShard {
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
    let clock: any ServiceClock
    let ttl: Double

    init(clock: any ServiceClock, ttl: Double) {
        self.clock = clock
        self.ttl = ttl
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

    /// Sessions that expired since the last look; counted once.
    private(set) var expiredSinceLastLook = 0

    private func remove(_ id: String, reason: String) {
        guard sessions.removeValue(forKey: id) != nil else { return }
        if reason.hasPrefix("expired") { expiredSinceLastLook += 1 }
        tombstones[id] = reason
        tombstoneOrder.append(id)
        if tombstoneOrder.count > 10_000 {
            tombstones[tombstoneOrder.removeFirst()] = nil
        }
    }

    func takeExpiredCount() -> Int {
        defer { expiredSinceLastLook = 0 }
        return expiredSinceLastLook
    }

    func info(_ id: String) -> Result<Session, APIError> { live(id, now: clock.now()) }

    /// Advances a session through `rows` (normalized inputs, one array per timestep).
    /// Returns the step count after and the raw head output after each step.
    /// `rows` turns the request into normalized inputs for the session's model; it runs here, so
    /// one actor call finds the session, decodes and steps.
    func step(_ id: String, expectedStep: Int?, registry: ModelRegistry,
              rows makeRows: @Sendable (ModelRegistry.Entry) throws(APIError) -> [[Float]]) -> Result<(Session, ModelRegistry.Entry, [[Float]]), APIError> {
        let now = clock.now()
        var session: Session
        switch live(id, now: now) {
        case let .success(s): session = s
        case let .failure(e): return .failure(e)
        }
        guard let entry = registry[session.model] else {
            return .failure(APIError(.notFound, "session '\(id)' runs model '\(session.model)', which is not loaded"))
        }
        let rows: [[Float]]
        do { rows = try makeRows(entry) } catch { return .failure(error) }
        if let expectedStep, expectedStep != session.step {
            return .failure(APIError(.conflict, "session '\(id)' is at step \(session.step) but the request expected step \(expectedStep); nothing was changed"))
        }
        let net = entry.model.network
        let ws = workspaces[entry.model.name] ?? Workspace(network: net, batchSize: 1)
        workspaces[entry.model.name] = ws
        var outputs: [[Float]] = []
        outputs.reserveCapacity(rows.count)
        for row in rows {
            net.step(row, state: &session.state, workspace: ws)
            if net.headOutputSize != nil {
                net.applyHead(workspace: ws)
                outputs.append(ws.head)
            } else {
                outputs.append(ws.output)
            }
        }
        session.step += rows.count
        session.lastUsed = now
        sessions[id] = session
        return .success((session, entry, outputs))
    }

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
        for (id, s) in sessions where now - s.lastUsed > ttl { remove(id, reason: "expired after \(Int(ttl)) s idle") }
        return takeExpiredCount()
    }

    /// The least recently used session, for eviction, and the soonest expiry.
    func oldest() -> (id: String, lastUsed: Double)? {
        sessions.values.min { $0.lastUsed < $1.lastUsed }.map { ($0.id, $0.lastUsed) }
    }
}
