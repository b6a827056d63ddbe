import ModelFormat
import ModelRuntime
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

    typealias Session = SessionTable.Session

    private var table = SessionTable()
    /// Scratch per model version (batch 1), reused by every step in this shard. A version's
    /// scratch is held weakly keyed: it goes when the version does.
    private var workspaces: [ObjectIdentifier: Scratch] = [:]
    private struct Scratch {
        weak var entry: ModelRegistry.Entry?
        let workspace: Workspace
    }
    /// The normalized row being stepped (its buffer kept from step to step).
    private var normalized: [Float] = []
    /// The state before a step, to put back if the step's outputs are not finite.
    private var saved = RecurrentState.Saved()
    let clock: any ServiceClock
    let ttl: Double
    /// Told of every session that expires here, as it goes (the store's count and metrics),
    /// so no caller needs a second trip into the actor to collect them.
    let expired: @Sendable () -> Void
    /// The durable copy, when the store has one: every change made here is handed to it in
    /// the order it is made, and callers wait for its ticket before they answer.
    let journal: SessionJournal?
    /// Stored sessions that cannot run (their model or its state layout is not served now):
    /// id → why, answered 410. They stay stored, so a restart with the model brings them back.
    private var orphans: [String: String] = [:]

    init(clock: any ServiceClock, ttl: Double, journal: SessionJournal?, expired: @escaping @Sendable () -> Void) {
        self.clock = clock
        self.ttl = ttl
        self.journal = journal
        self.expired = expired
    }

    var count: Int { table.count }

    /// The row the journal stores for slot i.
    private func row(_ i: Int) -> SessionJournal.Row {
        let s = table[i]
        return SessionJournal.Row(id: s.id, model: s.model, version: String(s.entry.version), fingerprint: s.entry.model.fingerprint,
                                  step: s.step, created: s.created, lastUsed: s.lastUsed, layout: s.entry.stateLayout, state: s.state.serializedBytes)
    }

    /// Hands slot i's new contents to the journal.
    private func store(_ i: Int) -> SessionJournal.Ticket? { journal?.append(.put(row(i))) }

    func insert(_ session: Session) -> SessionJournal.Ticket? {
        table.insert(session)
        return store(table.slot(session.id)!)
    }

    /// Inserts `session` unless a live one has its id; whether it did (`live` drops an
    /// expired one under the id), and the journal's ticket.
    func insertIfAbsent(_ session: Session) -> (Bool, SessionJournal.Ticket?) {
        if case .success = live(session.id, now: clock.now()) { return (false, nil) }
        return (true, insert(session))
    }

    /// A session read back from the journal at start-up (nothing is written).
    func load(_ session: Session) { table.insert(session) }

    /// A stored session that cannot run now.
    func loadOrphan(_ id: String, why: String) { orphans[id] = why }

    /// Puts back what the journal holds for `id` after a failed write (nil: nothing stored),
    /// then tells the journal that its later changes count again.
    /// Returns the change in the number of sessions held.
    func restore(_ id: String, _ session: Session?) -> Int {
        var change = 0
        if let slot = table.slot(id) {
            table.remove(slot, .deleted)
            change -= 1
        }
        if let session {
            table.insert(session)
            change += 1
        }
        journal?.append(.cleared(id), wait: false)
        return change
    }

    /// The live session's slot, or the reason it is gone. An expired one is dropped here.
    private func live(_ id: String, now: Double) -> Result<Int, APIError> {
        if let slot = table.slot(id) {
            if now - table[slot].lastUsed <= ttl { return .success(slot) }
            remove(slot, .expired)
        }
        if let why = orphans[id] { return .failure(APIError(.gone, why)) }
        switch table.whyGone(id) {
        case .expired?: return .failure(APIError(.notFound, "session '\(id)' expired after \(Int(ttl)) s idle"))
        case .evicted?: return .failure(APIError(.notFound, "session '\(id)' was evicted (least recently used) to make room"))
        case .deleted?: return .failure(APIError(.notFound, "session '\(id)' was deleted"))
        case nil: return .failure(APIError(.notFound, "no session '\(id)'"))
        }
    }

    @discardableResult
    private func remove(_ slot: Int, _ why: SessionTable.Gone) -> SessionJournal.Ticket? {
        let id = table.remove(slot, why).id
        if why == .expired { expired() }
        return journal?.append(.delete(id), wait: why != .expired)
    }

    func info(_ id: String) -> Result<Session, APIError> { live(id, now: clock.now()).map { table[$0] } }

    /// What a step answers besides the outputs.
    struct Stepped: Sendable {
        let model: String
        let version: Int
        let step: Int
        /// The journal's ticket for the step: the answer waits for it (nil: memory store).
        var stored: SessionJournal.Ticket? = nil
    }

    /// Advances a session through `rows` (raw inputs, one array per timestep).
    /// Returns the step count after and the output after each step, in real units.
    /// `rows` turns the request into raw inputs for the session's model; it runs here, so
    /// one actor call finds the session, decodes and steps.
    func step(_ id: String, expectedStep: Int?,
              rows makeRows: @Sendable (ModelRegistry.Entry) throws(APIError) -> [[Float]]) -> Result<(Stepped, ModelRegistry.Entry, [[Float]]), APIError> {
        let now = clock.now()
        let i: Int
        switch live(id, now: now) {
        case let .success(slot): i = slot
        case let .failure(e): return .failure(e)
        }
        let entry = table[i].entry, current = table[i].step
        let rows: [[Float]]
        do { rows = try makeRows(entry) } catch { return .failure(error) }
        if let expectedStep, expectedStep != current {
            return .failure(APIError(.conflict, "session '\(id)' is at step \(current) but the request expected step \(expectedStep); nothing was changed"))
        }
        guard current <= maxSessionStep - rows.count else {
            return .failure(APIError(.unprocessable, "session '\(id)' is at step \(current): \(rows.count) more would pass the most a session counts (\(maxSessionStep)); nothing was changed"))
        }
        let net = entry.model.pipeline
        let ws = workspace(entry)
        var outputs: [[Float]] = []
        outputs.reserveCapacity(rows.count)
        var finite = true
        // Stepped in place through the slot (a copy would share the state's buffers and copy
        // them on the first write); the state is kept aside first, to be put back when an
        // output is not finite, so a refused step changes nothing.
        table[i].state.save(&saved)
        for row in rows {
            normalized.removeAll(keepingCapacity: true)
            normalized.append(contentsOf: row)
            entry.predictor.normalize(&normalized)
            net.step(normalized, state: &table[i].state, workspace: ws)
            var y = ws.output
            entry.predictor.realUnits(&y, inputs: row, sequenceLength: 1)
            finite = finite && y.allSatisfy(\.isFinite)
            outputs.append(y)
        }
        guard finite, table[i].state.isFinite else {
            table[i].state.restore(saved)
            return .failure(APIError(.unprocessable, "the model's output is not a finite number for this input; the session was not changed (still at step \(current))"))
        }
        table[i].step = current + rows.count
        table.touch(i, at: now)
        return .success((Stepped(model: entry.model.name, version: entry.version, step: current + rows.count, stored: store(i)), entry, outputs))
    }

    /// This shard's batch-1 scratch for a model version, made on first use (when the scratch
    /// of versions that are gone is dropped too).
    private func workspace(_ entry: ModelRegistry.Entry) -> Workspace {
        let key = ObjectIdentifier(entry)
        if let s = workspaces[key], s.entry === entry { return s.workspace }
        workspaces = workspaces.filter { $0.value.entry != nil && $0.key != key }
        let ws = Workspace(pipeline: entry.model.pipeline, batchSize: 1)
        workspaces[key] = Scratch(entry: entry, workspace: ws)
        return ws
    }

    /// Moves a live session to `entry`, another version of its model, when their states have
    /// one layout; 409 saying how they differ otherwise.
    func migrate(_ id: String, to entry: ModelRegistry.Entry, expectedStep: Int?) -> Result<(Session, SessionJournal.Ticket?), APIError> {
        let now = clock.now()
        return live(id, now: now).flatMap { slot in
            let s = table[slot]
            guard s.model == entry.model.name else {
                return .failure(APIError(.conflict, "session '\(id)' runs model '\(s.model)'; it cannot move to model '\(entry.model.name)'"))
            }
            if let expectedStep, expectedStep != s.step {
                return .failure(APIError(.conflict, "session '\(id)' is at step \(s.step) but the request expected step \(expectedStep); nothing was changed"))
            }
            guard s.entry.stateLayout == entry.stateLayout else {
                return .failure(APIError(.conflict, "session '\(id)' cannot move from version \(s.entry.version) to \(entry.version) of '\(s.model)': their states differ (version \(s.entry.version): \(s.entry.stateLayout); version \(entry.version): \(entry.stateLayout)); it stays on version \(s.entry.version)"))
            }
            table.move(slot, to: entry)
            table.touch(slot, at: now)
            return .success((table[slot], store(slot)))
        }
    }

    /// Sets a live session's state (and step); with `entry`, it also moves to that version
    /// (a sequence started afresh). A state of another layout than the version's is refused.
    func replaceState(_ id: String, state: RecurrentState, step: Int?, entry: ModelRegistry.Entry? = nil) -> Result<(Session, SessionJournal.Ticket?), APIError> {
        let now = clock.now()
        return live(id, now: now).flatMap { slot in
            let target = entry ?? table[slot].entry
            guard state.layout == target.stateLayout else {
                return .failure(APIError(.conflict, "session '\(id)' runs on version \(table[slot].entry.version) of '\(table[slot].model)', whose state is (\(target.stateLayout)), not (\(state.layout)); nothing was changed"))
            }
            if let entry, entry !== table[slot].entry { table.move(slot, to: entry) }
            table[slot].state = state
            if let step { table[slot].step = step }
            table.touch(slot, at: now)
            return .success((table[slot], store(slot)))
        }
    }

    /// Deletes a live session (`counted`: it was one of the store's), or a stored one that
    /// cannot run (an orphan).
    func delete(_ id: String) -> Result<(ticket: SessionJournal.Ticket?, counted: Bool), APIError> {
        if table.slot(id) == nil, orphans.removeValue(forKey: id) != nil { return .success((journal?.append(.delete(id)), false)) }
        return live(id, now: clock.now()).map { (remove($0, .deleted), true) }
    }

    func evict(_ id: String) -> (evicted: Bool, ticket: SessionJournal.Ticket?) {
        guard let slot = table.slot(id) else { return (false, nil) }
        return (true, remove(slot, .evicted))
    }

    /// Drops every expired session (from the least recently used end, so the cost is what
    /// expired); returns how many. Memory goes back once most of the table is empty.
    func sweep() -> Int {
        let now = clock.now()
        var n = 0
        while let slot = table.oldest, now - table[slot].lastUsed > ttl {
            remove(slot, .expired)
            n += 1
        }
        if n > 0 { table.compactIfSparse() }
        return n
    }

    /// The least recently used session, for eviction, and the soonest expiry.
    func oldest() -> (id: String, lastUsed: Double)? {
        table.oldest.map { (table[$0].id, table[$0].lastUsed) }
    }
}
