import ModelFormat
import ModelRuntime
import RecurrentCore
import Synchronization

/// The most steps a session counts: a state import may not set more, and a step that would
/// pass it is refused (2^53 − 1, the largest integer every JSON client reads exactly).
let maxSessionStep = (1 << 53) - 1

/// A session's id as the table keys it, 16 bytes inline: a server-made id's 128 bits, read
/// from its 32 lowercase hex digits, or for a name a client chose (an Open Inference sequence)
/// the first 128 bits of the name's SHA-256 (its shard keeps the name). Keyed by the id as a
/// String, every session held a heap block of 80 bytes for its 32 characters.
struct SessionKey: Hashable, Sendable {
    let hi: UInt64
    let lo: UInt64

    /// The key of an id; `isServerMade` tells which kind it was.
    init(_ id: String) {
        if let (hi, lo) = Self.parse(id) {
            (self.hi, self.lo) = (hi, lo)
        } else {
            let digest = SHA256.hex(Array(id.utf8))
            (hi, lo) = Self.parse(String(digest.prefix(32)))!
        }
    }

    init(hi: UInt64, lo: UInt64) { (self.hi, self.lo) = (hi, lo) }

    /// Whether `id` is a server-made id (32 lowercase hex digits).
    static func isServerMade(_ id: String) -> Bool { parse(id) != nil }

    private static func parse(_ id: String) -> (UInt64, UInt64)? {
        let utf8 = id.utf8
        guard utf8.count == 32 else { return nil }
        var hi: UInt64 = 0, lo: UInt64 = 0
        var k = 0
        for b in utf8 {
            let v: UInt64
            switch b {
            case 48...57: v = UInt64(b - 48)
            case 97...102: v = UInt64(b - 87)
            default: return nil
            }
            if k < 16 { hi = hi << 4 | v } else { lo = lo << 4 | v }
            k += 1
        }
        return (hi, lo)
    }

    /// The server-made id these bits spell.
    var hex: String { hi.zeroPaddedHex + lo.zeroPaddedHex }
}

/// One shard's sessions, kept in order of last use through a linked list over slots: the
/// least recently used is the head, so expiry and eviction look at the head alone instead of
/// scanning every session. Touching a session moves it to the tail; nothing is allocated per
/// touch. Removed ids leave a bounded record of why they went (for a 404 that says so).
struct SessionTable {
    struct Session {
        let id: SessionKey
        /// The model version it runs on: it stays pinned there through reloads (and holds the
        /// version in memory) until it ends or migrates.
        var entry: ModelRegistry.Entry
        var step: Int
        let created: Double
        var lastUsed: Double
        /// Its state's row in its version's block (the shard's `StateBlock`); last, so that
        /// the struct packs into 56 bytes.
        var row: Int32

        var model: String { entry.model.name }
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

    enum Gone: Sendable { case expired, evicted, deleted }

    init(goneCapacity: Int = 1024) { self.goneCapacity = goneCapacity }

    var count: Int { index.count }

    func slot(_ id: SessionKey) -> Int? { index[id] }

    subscript(slot: Int) -> Session {
        get { slots[slot]! }
        _modify { yield &slots[slot]! }
    }

    /// Moves a session to another version of its model (their state layouts are equal).
    mutating func move(_ slot: Int, to entry: ModelRegistry.Entry) {
        entry.sessionCount.add(1, ordering: .relaxed)
        slots[slot]!.entry.sessionCount.subtract(1, ordering: .relaxed)
        slots[slot]!.entry = entry
    }

    func whyGone(_ id: SessionKey) -> Gone? { gone[id] }

    /// Adds a session as the most recently used.
    mutating func insert(_ session: Session) { insert(session, counting: true) }

    private mutating func insert(_ session: Session, counting: Bool) {
        if counting { session.entry.sessionCount.add(1, ordering: .relaxed) }
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
        session.entry.sessionCount.subtract(1, ordering: .relaxed)
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
