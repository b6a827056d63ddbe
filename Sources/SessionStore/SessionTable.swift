/// One shard's sessions, kept in order of last use through a linked list over slots: the
/// least recently used is the head, so expiry and eviction look at the head alone instead of
/// scanning every session. Touching a session moves it to the tail; nothing is allocated per
/// touch. Removed ids leave a bounded record of why they went (for a 404 that says so).
struct SessionTable {
    struct Session {
        let id: SessionKey
        /// The model version it runs on: it stays pinned there through reloads (and holds the
        /// version in memory) until it ends or migrates.
        var model: any SessionModel
        var step: Int
        let created: Double
        var lastUsed: Double
        /// Its state's row in its version's block (the shard's `StateBlock`); last, so that
        /// the struct packs into 64 bytes.
        var row: Int32
    }

    private var index: [SessionKey: Int] = [:]
    private var slots: [Session?] = []
    private var previous: [Int] = []
    private var following: [Int] = []
    private var free: [Int] = []
    private(set) var head = -1
    private var tail = -1

    /// Why recently removed ids are gone, the newest `goneCapacity` of them.
    private var gone: [SessionKey: Gone] = [:]
    private var goneRing: [SessionKey] = []
    private var goneNext = 0
    let goneCapacity: Int

    typealias Gone = SessionRules.Gone

    init(goneCapacity: Int = 1024) { self.goneCapacity = goneCapacity }

    var count: Int { index.count }

    func slot(_ id: SessionKey) -> Int? { index[id] }

    subscript(slot: Int) -> Session {
        get { slots[slot]! }
        _modify { yield &slots[slot]! }
    }

    /// Moves a session to another version of its model (their state layouts are equal).
    mutating func move(_ slot: Int, to model: any SessionModel) {
        model.sessionsChanged(by: 1)
        slots[slot]!.model.sessionsChanged(by: -1)
        slots[slot]!.model = model
    }

    func whyGone(_ id: SessionKey) -> Gone? { gone[id] }

    /// Adds a session as the most recently used.
    mutating func insert(_ session: Session) { insert(session, counting: true) }

    private mutating func insert(_ session: Session, counting: Bool) {
        if counting { session.model.sessionsChanged(by: 1) }
        let s: Int
        if let reused = free.popLast() {
            s = reused
            slots[s] = session
        } else {
            s = slots.count
            slots.append(session)
            previous.append(-1)
            following.append(-1)
        }
        index[session.id] = s
        link(s)
    }

    /// The slots of every session, least recently used first.
    var liveSlots: [Int] {
        var out: [Int] = []
        out.reserveCapacity(count)
        var s = head
        while s >= 0 {
            out.append(s)
            s = following[s]
        }
        return out
    }

    /// Marks a session used now: it moves to the tail.
    mutating func touch(_ slot: Int, at now: Double) {
        slots[slot]!.lastUsed = now
        guard slot != tail else { return }
        unlink(slot)
        link(slot)
    }

    /// Removes a session and remembers why.
    @discardableResult
    mutating func remove(_ slot: Int, _ why: Gone) -> Session {
        let session = slots[slot]!
        session.model.sessionsChanged(by: -1)
        unlink(slot)
        slots[slot] = nil
        free.append(slot)
        index[session.id] = nil
        remember(session.id, why)
        return session
    }

    /// The least recently used session's slot, or nil when empty.
    var oldest: Int? { head >= 0 ? head : nil }

    /// Gives memory back once most slots are free (after a mass expiry): the table is rebuilt
    /// at its live size, since neither Dictionary nor Array shrinks on removal.
    mutating func compactIfSparse() {
        guard slots.count > 1024, index.count * 4 < slots.count else { return }
        var fresh = SessionTable(goneCapacity: goneCapacity)
        fresh.index.reserveCapacity(index.count)
        var s = head
        while s >= 0 {
            fresh.insert(slots[s]!, counting: false)
            s = following[s]
        }
        (fresh.gone, fresh.goneRing, fresh.goneNext) = (gone, goneRing, goneNext)
        self = fresh
    }

    private mutating func remember(_ id: SessionKey, _ why: Gone) {
        if goneRing.count < goneCapacity {
            goneRing.append(id)
        } else {
            gone[goneRing[goneNext]] = nil
            goneRing[goneNext] = id
            goneNext = (goneNext + 1) % goneCapacity
        }
        gone[id] = why
    }

    private mutating func link(_ s: Int) {
        previous[s] = tail
        following[s] = -1
        if tail >= 0 { following[tail] = s } else { head = s }
        tail = s
    }

    private mutating func unlink(_ s: Int) {
        let (p, n) = (previous[s], following[s])
        if p >= 0 { following[p] = n } else { head = n }
        if n >= 0 { previous[n] = p } else { tail = p }
    }
}
