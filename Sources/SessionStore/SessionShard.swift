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

    /// A session to add: made, started or read back from the store, with its state.
    struct New: Sendable {
        let id: String
        let model: any SessionModel
        /// `model.stateWidth` values.
        let state: [Float]
        var step = 0
        let created: Double
        let lastUsed: Double
    }

    private var table = SessionTable()
    /// What this shard keeps per model version: the block of its sessions' states, and the
    /// version's stepper (its scratch). Held with the version weakly: it goes when the version
    /// does (its sessions hold the version, so by then its block is empty).
    private var versions: [ObjectIdentifier: Version] = [:]
    private final class Version {
        weak var model: (any SessionModel)?
        let stepper: any SessionStepper
        var block: StateBlock

        init(_ model: any SessionModel) {
            self.model = model
            stepper = model.makeStepper()
            block = StateBlock(width: model.stateWidth)
        }
    }
    let clock: any ServiceClock
    let ttl: Double
    /// Told of every session that expires here, as it goes (the store's count and metrics),
    /// so no caller needs a second trip into the actor to collect them.
    let expired: @Sendable () -> Void
    /// The durable copy, when the store has one: every change made here is handed to it in
    /// the order it is made, and callers wait for its ticket before they answer.
    let log: (any SessionLog)?
    /// Stored sessions that cannot run (their model or its state layout is not served now):
    /// id → why, answered 410. They stay stored, so a restart with the model brings them back.
    private var orphans: [String: String] = [:]
    /// The ids clients chose (V2 sequences), by key; a server-made id is its key's hex.
    private var names: [SessionKey: String] = [:]

    init(clock: any ServiceClock, ttl: Double, log: (any SessionLog)?, expired: @escaping @Sendable () -> Void) {
        self.clock = clock
        self.ttl = ttl
        self.log = log
        self.expired = expired
    }

    var count: Int { table.count }

    /// This shard's block and scratch of a model version, made on first use (when those of
    /// versions that are gone are dropped).
    private func version(_ model: any SessionModel) -> Version {
        let key = ObjectIdentifier(model)
        if let v = versions[key], v.model === model { return v }
        versions = versions.filter { $0.value.model != nil && $0.key != key }
        let v = Version(model)
        versions[key] = v
        return v
    }

    private func idText(_ key: SessionKey) -> String { names[key] ?? key.hex }

    private func view(_ i: Int) -> SessionInfo {
        let s = table[i]
        return SessionInfo(id: idText(s.id), model: s.model, step: s.step, created: s.created, lastUsed: s.lastUsed)
    }

    /// The session the log stores for slot i.
    private func stored(_ i: Int) -> StoredSession {
        let s = table[i]
        return StoredSession(id: idText(s.id), model: s.model.name, version: String(s.model.version), fingerprint: s.model.fingerprint,
                             step: s.step, created: s.created, lastUsed: s.lastUsed, layout: s.model.stateLayout,
                             state: version(s.model).block.bytes(s.row))
    }

    /// Hands slot i's new contents to the log.
    private func store(_ i: Int) -> StoreTicket? { log?.put(stored(i)) }

    /// Hands slot i's step to the log (its state is at `state`), which the step's own thread
    /// then writes (`MemoryDriver.drive`).
    private func storeStep(_ i: Int, state: UnsafeMutablePointer<Float>, width: Int) -> StoreTicket? {
        guard let log else { return nil }
        let s = table[i]
        return log.stepped(id: idText(s.id), step: s.step, lastUsed: s.lastUsed,
                           state: UnsafeRawBufferPointer(start: state, count: width * MemoryLayout<Float>.stride))
    }

    /// Adds a session without telling the log; its slot.
    @discardableResult
    private func add(_ new: New) -> Int {
        let block = version(new.model).block
        precondition(new.state.count == block.width, "a session's state has its version's width")
        let row = block.allocate()
        block.pointer(row).update(from: new.state, count: block.width)
        let key = SessionKey(new.id)
        if !SessionKey.isServerMade(new.id) { names[key] = new.id }
        table.insert(SessionTable.Session(id: key, model: new.model, step: new.step, created: new.created, lastUsed: new.lastUsed, row: row))
        return table.slot(key)!
    }

    func insert(_ new: New) -> (SessionInfo, StoreTicket?) {
        let slot = add(new)
        return (view(slot), store(slot))
    }

    /// Inserts `new` unless a live session has its id; whether it did (`live` drops an
    /// expired one under the id), and the log's ticket.
    func insertIfAbsent(_ new: New) -> (SessionInfo?, StoreTicket?) {
        if case .success = live(new.id, now: clock.now()) { return (nil, nil) }
        return insert(new)
    }

    /// A session read back from the log at start-up (nothing is written).
    func load(_ new: New) { add(new) }

    /// A stored session that cannot run now.
    func loadOrphan(_ id: String, why: String) { orphans[id] = why }

    /// Puts back what the log holds for `id` after a failed write (nil: nothing stored),
    /// then tells the log that its later changes count again.
    /// Returns the change in the number of sessions held.
    func restore(_ id: String, _ session: New?) -> Int {
        var change = 0
        if let slot = table.slot(SessionKey(id)) {
            _ = drop(slot, .deleted)
            change -= 1
        }
        if let session {
            add(session)
            change += 1
        }
        log?.cleared(id)
        return change
    }

    /// The live session's slot, or the reason it is gone. An expired one is dropped here.
    private func live(_ id: String, now: Double) -> Result<Int, SessionError> { live(id, key: SessionKey(id), now: now) }

    private func live(_ id: String, key: SessionKey, now: Double) -> Result<Int, SessionError> {
        if let slot = table.slot(key) {
            if now - table[slot].lastUsed <= ttl { return .success(slot) }
            remove(slot, .expired)
        }
        if let why = orphans[id] { return .failure(.gone(why)) }
        return .failure(SessionRules.notFound(id, table.whyGone(key), ttl: ttl))
    }

    /// Takes a session out of the table and its row out of its block.
    private func drop(_ slot: Int, _ why: SessionTable.Gone) -> String {
        let s = table.remove(slot, why)
        version(s.model).block.release(s.row)
        return names.removeValue(forKey: s.id) ?? s.id.hex
    }

    @discardableResult
    private func remove(_ slot: Int, _ why: SessionTable.Gone) -> StoreTicket? {
        let id = drop(slot, why)
        if why == .expired { expired() }
        return log?.delete(id, wait: why != .expired)
    }

    func info(_ id: String) -> Result<SessionInfo, SessionError> { live(id, now: clock.now()).map(view) }

    /// A live session with a copy of its state.
    func export(_ id: String) -> Result<(SessionInfo, [Float]), SessionError> {
        live(id, now: clock.now()).map { i in
            let s = table[i]
            let block = version(s.model).block
            return (view(i), Array(UnsafeBufferPointer(start: block.pointer(s.row), count: block.width)))
        }
    }

    /// Advances a session through the request's rows, when they were read for a version that
    /// reads input as the session's does; refused, changing nothing, when the session is not
    /// at the expected step, would count past `maxSessionStep`, or gets an output that is not
    /// finite.
    /// `key` is `SessionKey(request.id)`, which the driver made to pick this shard.
    func step(_ request: StepRequest, key: SessionKey) -> StepResult {
        let now = clock.now()
        let i: Int
        switch live(request.id, key: key, now: now) {
        case let .success(slot): i = slot
        case let .failure(e): return .refused(e)
        }
        let model = table[i].model, current = table[i].step, count = request.rows.count
        guard model === request.readFor || model.readsInput(like: request.readFor) else { return .readFor(model) }
        if let refusal = SessionRules.stepRefusal(request.id, at: current, count: count, expected: request.expectedStep) { return .refused(refusal) }
        let v = version(model)
        let state = v.block.pointer(table[i].row)
        guard let outputs = v.stepper.step(request.rows, state: state) else {
            return .refused(SessionRules.notFinite(at: current))
        }
        table[i].step = current + count
        table.touch(i, at: now)
        return .stepped(Stepped(model: model, step: current + count, outputs: outputs, ticket: storeStep(i, state: state, width: v.block.width)))
    }

    /// Moves slot i's state to a row of `model`'s block (a version of one layout).
    private func move(_ i: Int, to model: any SessionModel) {
        let s = table[i]
        guard s.model !== model else { return }
        let (from, to) = (version(s.model).block, version(model).block)
        let row = to.allocate()
        to.pointer(row).update(from: from.pointer(s.row), count: to.width)
        from.release(s.row)
        table.move(i, to: model)
        table[i].row = row
    }

    /// Moves a live session to `model`, another version of its model, when their states have
    /// one layout; refused saying how they differ otherwise.
    func migrate(_ id: String, to model: any SessionModel, expectedStep: Int?) -> Result<(SessionInfo, StoreTicket?), SessionError> {
        let now = clock.now()
        return live(id, now: now).flatMap { slot in
            let s = table[slot].model, step = table[slot].step
            if let refusal = SessionRules.migration(id, from: s, to: model, at: step, expected: expectedStep) { return .failure(refusal) }
            move(slot, to: model)
            table.touch(slot, at: now)
            return .success((view(slot), store(slot)))
        }
    }

    /// Sets a live session's state (read for `readFor`) and step; with `moveTo`, it also moves
    /// to that version (a sequence started afresh). A state of another layout than the
    /// version's is refused.
    func replaceState(_ id: String, state: [Float], readFor: any SessionModel, step: Int?, moveTo: (any SessionModel)? = nil) -> Result<(SessionInfo, StoreTicket?), SessionError> {
        let now = clock.now()
        return live(id, now: now).flatMap { slot in
            let current = table[slot].model, target = moveTo ?? current
            if let refusal = SessionRules.replacement(id, current: current, target: target, readFor: readFor, count: state.count) { return .failure(refusal) }
            if let moveTo { move(slot, to: moveTo) }
            version(target).block.pointer(table[slot].row).update(from: state, count: state.count)
            if let step { table[slot].step = step }
            table.touch(slot, at: now)
            return .success((view(slot), store(slot)))
        }
    }

    /// Deletes a live session (`counted`: it was one of the store's), or a stored one that
    /// cannot run (an orphan).
    func delete(_ id: String) -> Result<(ticket: StoreTicket?, counted: Bool), SessionError> {
        if table.slot(SessionKey(id)) == nil, orphans.removeValue(forKey: id) != nil { return .success((log?.delete(id, wait: true), false)) }
        return live(id, now: clock.now()).map { (remove($0, .deleted), true) }
    }

    func evict(_ id: String) -> (evicted: Bool, ticket: StoreTicket?) {
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
            for i in table.liveSlots where table[i].model === v.model {
                let row = fresh.allocate()
                fresh.pointer(row).update(from: v.block.pointer(table[i].row), count: fresh.width)
                table[i].row = row
            }
            v.block = fresh
        }
        versions = versions.filter { $0.value.model != nil }
    }

    /// The least recently used session, for eviction, and the soonest expiry.
    func oldest() -> (id: String, lastUsed: Double)? {
        table.oldest.map { (idText(table[$0].id), table[$0].lastUsed) }
    }
}
