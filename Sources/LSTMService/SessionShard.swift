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

    /// A session as callers see it (its state stays here, in its version's block).
    struct Session: Sendable {
        let id: String
        let entry: ModelRegistry.Entry
        let step: Int
        let created: Double
        let lastUsed: Double

        var model: String { entry.model.name }
    }

    /// A session to add: made, started or read back from the store, with its state.
    struct New: Sendable {
        let id: String
        let entry: ModelRegistry.Entry
        let state: RecurrentState
        var step = 0
        let created: Double
        let lastUsed: Double
    }

    private var table = SessionTable()
    /// What this shard keeps per model version: the block of its sessions' states, and the
    /// scratch a step uses (batch 1). Held with the version weakly: it goes when the version
    /// does (its sessions hold the version, so by then its block is empty).
    private var versions: [ObjectIdentifier: Version] = [:]
    private final class Version {
        weak var entry: ModelRegistry.Entry?
        let workspace: Workspace
        /// The state being stepped: a session's row is copied in, stepped, and copied back
        /// only when the step is kept, so a refused step leaves the row as it was.
        var state: RecurrentState
        var block: StateBlock

        init(_ entry: ModelRegistry.Entry) {
            self.entry = entry
            workspace = Workspace(pipeline: entry.model.pipeline, batchSize: 1)
            state = entry.model.pipeline.makeState(batchSize: 1)
            block = StateBlock(width: state.valueCount)
        }
    }
    /// The normalized row being stepped (its buffer kept from step to step).
    private var normalized: [Float] = []
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
    /// The ids clients chose (V2 sequences), by key; a server-made id is its key's hex.
    private var names: [SessionKey: String] = [:]

    init(clock: any ServiceClock, ttl: Double, journal: SessionJournal?, expired: @escaping @Sendable () -> Void) {
        self.clock = clock
        self.ttl = ttl
        self.journal = journal
        self.expired = expired
    }

    var count: Int { table.count }

    /// This shard's block and scratch of a model version, made on first use (when those of
    /// versions that are gone are dropped).
    private func version(_ entry: ModelRegistry.Entry) -> Version {
        let key = ObjectIdentifier(entry)
        if let v = versions[key], v.entry === entry { return v }
        versions = versions.filter { $0.value.entry != nil && $0.key != key }
        let v = Version(entry)
        versions[key] = v
        return v
    }

    private func idText(_ key: SessionKey) -> String { names[key] ?? key.hex }

    private func view(_ i: Int) -> Session {
        let s = table[i]
        return Session(id: idText(s.id), entry: s.entry, step: s.step, created: s.created, lastUsed: s.lastUsed)
    }

    /// The row the journal stores for slot i.
    private func row(_ i: Int) -> SessionJournal.Row {
        let s = table[i]
        return SessionJournal.Row(id: idText(s.id), model: s.model, version: String(s.entry.version), fingerprint: s.entry.model.fingerprint,
                                  step: s.step, created: s.created, lastUsed: s.lastUsed, layout: s.entry.stateLayout,
                                  state: version(s.entry).block.bytes(s.row))
    }

    /// Hands slot i's new contents to the journal.
    private func store(_ i: Int) -> SessionJournal.Ticket? { journal?.append(.put(row(i))) }

    /// Hands slot i's step to the journal: the record's bytes only, which the step's own
    /// thread writes (`SessionStore.drive`).
    private func storeStep(_ i: Int) -> SessionJournal.Ticket? {
        guard let journal else { return nil }
        let s = table[i]
        let block = version(s.entry).block
        let id = idText(s.id)
        let record = StepLog.stepRecord(id: id, step: s.step, lastUsed: s.lastUsed,
                                        state: UnsafeRawBufferPointer(start: block.pointer(s.row), count: block.width * MemoryLayout<Float>.stride))
        return journal.append(.step(id: id, record: record), driven: true)
    }

    /// Adds a session without telling the journal; its slot.
    @discardableResult
    private func add(_ new: New) -> Int {
        let block = version(new.entry).block
        let row = block.allocate()
        new.state.store(into: block.pointer(row))
        let key = SessionKey(new.id)
        if !SessionKey.isServerMade(new.id) { names[key] = new.id }
        table.insert(SessionTable.Session(id: key, entry: new.entry, step: new.step, created: new.created, lastUsed: new.lastUsed, row: row))
        return table.slot(key)!
    }

    func insert(_ new: New) -> (Session, SessionJournal.Ticket?) {
        let slot = add(new)
        return (view(slot), store(slot))
    }

    /// Inserts `new` unless a live session has its id; whether it did (`live` drops an
    /// expired one under the id), and the journal's ticket.
    func insertIfAbsent(_ new: New) -> (Session?, SessionJournal.Ticket?) {
        if case .success = live(new.id, now: clock.now()) { return (nil, nil) }
        return insert(new)
    }

    /// A session read back from the journal at start-up (nothing is written).
    func load(_ new: New) { add(new) }

    /// A stored session that cannot run now.
    func loadOrphan(_ id: String, why: String) { orphans[id] = why }

    /// Puts back what the journal holds for `id` after a failed write (nil: nothing stored),
    /// then tells the journal that its later changes count again.
    /// Returns the change in the number of sessions held.
    func restore(_ id: String, _ session: New?) -> Int {
        var change = 0
        if let slot = table.slot(SessionKey(id)) {
            drop(slot, .deleted)
            change -= 1
        }
        if let session {
            add(session)
            change += 1
        }
        journal?.append(.cleared(id), wait: false)
        return change
    }

    /// The live session's slot, or the reason it is gone. An expired one is dropped here.
    private func live(_ id: String, now: Double) -> Result<Int, SessionError> {
        let key = SessionKey(id)
        if let slot = table.slot(key) {
            if now - table[slot].lastUsed <= ttl { return .success(slot) }
            remove(slot, .expired)
        }
        if let why = orphans[id] { return .failure(.gone(why)) }
        switch table.whyGone(key) {
        case .expired?: return .failure(.notFound("session '\(id)' expired after \(Int(ttl)) s idle"))
        case .evicted?: return .failure(.notFound("session '\(id)' was evicted (least recently used) to make room"))
        case .deleted?: return .failure(.notFound("session '\(id)' was deleted"))
        case nil: return .failure(.notFound("no session '\(id)'"))
        }
    }

    /// Takes a session out of the table and its row out of its block.
    private func drop(_ slot: Int, _ why: SessionTable.Gone) -> String {
        let s = table.remove(slot, why)
        version(s.entry).block.release(s.row)
        return names.removeValue(forKey: s.id) ?? s.id.hex
    }

    @discardableResult
    private func remove(_ slot: Int, _ why: SessionTable.Gone) -> SessionJournal.Ticket? {
        let id = drop(slot, why)
        if why == .expired { expired() }
        return journal?.append(.delete(id), wait: why != .expired)
    }

    func info(_ id: String) -> Result<Session, SessionError> { live(id, now: clock.now()).map(view) }

    /// A live session with a copy of its state.
    func export(_ id: String) -> Result<(Session, RecurrentState), SessionError> {
        live(id, now: clock.now()).map { i in
            let s = table[i]
            var state = s.entry.model.pipeline.makeState(batchSize: 1)
            state.take(from: version(s.entry).block.pointer(s.row))
            return (view(i), state)
        }
    }

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
    func step(_ id: String, expectedStep: Int?, rows makeRows: @Sendable (ModelRegistry.Entry) throws(RuntimeError) -> [[Float]])
        -> Result<(Stepped, ModelRegistry.Entry, [[Float]]), StepFailure> {
        let now = clock.now()
        let i: Int
        switch live(id, now: now) {
        case let .success(slot): i = slot
        case let .failure(e): return .failure(.store(e))
        }
        let entry = table[i].entry, current = table[i].step
        let rows: [[Float]]
        do { rows = try makeRows(entry) } catch { return .failure(.rows(error)) }
        if let expectedStep, expectedStep != current {
            return .failure(.store(.conflict("session '\(id)' is at step \(current) but the request expected step \(expectedStep); nothing was changed")))
        }
        guard current <= maxSessionStep - rows.count else {
            return .failure(.store(.refused("session '\(id)' is at step \(current): \(rows.count) more would pass the most a session counts (\(maxSessionStep)); nothing was changed")))
        }
        let v = version(entry)
        // Stepped in the shard's scratch state: the row is written back only when every
        // output is finite, so a refused step changes nothing.
        let stored = v.block.pointer(table[i].row)
        v.state.take(from: stored)
        guard let outputs = entry.predictor.step(rows, state: &v.state, workspace: v.workspace, scratch: &normalized) else {
            return .failure(.store(.refused("the model's output is not a finite number for this input; the session was not changed (still at step \(current))")))
        }
        v.state.store(into: stored)
        table[i].step = current + rows.count
        table.touch(i, at: now)
        return .success((Stepped(model: entry.model.name, version: entry.version, step: current + rows.count, stored: storeStep(i)), entry, outputs))
    }

    /// Moves slot i's state to a row of `entry`'s block (a version of one layout).
    private func move(_ i: Int, to entry: ModelRegistry.Entry) {
        let s = table[i]
        guard s.entry !== entry else { return }
        let (from, to) = (version(s.entry).block, version(entry).block)
        let row = to.allocate()
        to.pointer(row).update(from: from.pointer(s.row), count: to.width)
        from.release(s.row)
        table.move(i, to: entry)
        table[i].row = row
    }

    /// Moves a live session to `entry`, another version of its model, when their states have
    /// one layout; 409 saying how they differ otherwise.
    func migrate(_ id: String, to entry: ModelRegistry.Entry, expectedStep: Int?) -> Result<(Session, SessionJournal.Ticket?), SessionError> {
        let now = clock.now()
        return live(id, now: now).flatMap { slot in
            let s = table[slot]
            guard s.model == entry.model.name else {
                return .failure(.conflict("session '\(id)' runs model '\(s.model)'; it cannot move to model '\(entry.model.name)'"))
            }
            if let expectedStep, expectedStep != s.step {
                return .failure(.conflict("session '\(id)' is at step \(s.step) but the request expected step \(expectedStep); nothing was changed"))
            }
            guard s.entry.stateLayout == entry.stateLayout else {
                return .failure(.conflict("session '\(id)' cannot move from version \(s.entry.version) to \(entry.version) of '\(s.model)': their states differ (version \(s.entry.version): \(s.entry.stateLayout); version \(entry.version): \(entry.stateLayout)); it stays on version \(s.entry.version)"))
            }
            move(slot, to: entry)
            table.touch(slot, at: now)
            return .success((view(slot), store(slot)))
        }
    }

    /// Sets a live session's state (and step); with `entry`, it also moves to that version
    /// (a sequence started afresh). A state of another layout than the version's is refused.
    func replaceState(_ id: String, state: RecurrentState, step: Int?, entry: ModelRegistry.Entry? = nil) -> Result<(Session, SessionJournal.Ticket?), SessionError> {
        let now = clock.now()
        return live(id, now: now).flatMap { slot in
            let target = entry ?? table[slot].entry
            guard state.layout == target.stateLayout else {
                return .failure(.conflict("session '\(id)' runs on version \(table[slot].entry.version) of '\(table[slot].model)', whose state is (\(target.stateLayout)), not (\(state.layout)); nothing was changed"))
            }
            if let entry { move(slot, to: entry) }
            state.store(into: version(target).block.pointer(table[slot].row))
            if let step { table[slot].step = step }
            table.touch(slot, at: now)
            return .success((view(slot), store(slot)))
        }
    }

    /// Deletes a live session (`counted`: it was one of the store's), or a stored one that
    /// cannot run (an orphan).
    func delete(_ id: String) -> Result<(ticket: SessionJournal.Ticket?, counted: Bool), SessionError> {
        if table.slot(SessionKey(id)) == nil, orphans.removeValue(forKey: id) != nil { return .success((journal?.append(.delete(id)), false)) }
        return live(id, now: clock.now()).map { (remove($0, .deleted), true) }
    }

    func evict(_ id: String) -> (evicted: Bool, ticket: SessionJournal.Ticket?) {
        guard let slot = table.slot(SessionKey(id)) else { return (false, nil) }
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
        if n > 0 {
            table.compactIfSparse()
            compactBlocks()
        }
        return n
    }

    /// Builds anew the blocks that are mostly free (after a mass expiry), so their memory
    /// goes back: each live session's row moves to a fresh, dense block.
    private func compactBlocks() {
        for v in versions.values where v.block.isSparse {
            let fresh = StateBlock(width: v.block.width)
            for i in table.liveSlots where table[i].entry === v.entry {
                let row = fresh.allocate()
                fresh.pointer(row).update(from: v.block.pointer(table[i].row), count: fresh.width)
                table[i].row = row
            }
            v.block = fresh
        }
        versions = versions.filter { $0.value.entry != nil }
    }

    /// The least recently used session, for eviction, and the soonest expiry.
    func oldest() -> (id: String, lastUsed: Double)? {
        table.oldest.map { (idText(table[$0].id), table[$0].lastUsed) }
    }
}
