import Dispatch
import Foundation
import Locking
import Redis
import SessionStore
import Synchronization

/// Sessions in Redis, one node or a Redis Cluster, shared by every server that points at it:
/// any replica can step any session. Each session is one value (`SessionRecord`); each change
/// is one script that writes it only if its revision is still the one the change was computed
/// from, so two replicas never both advance a session from the same state. A replica keeps
/// the sessions it serves cached, and the same check proves a cached copy current (or hands
/// back the current one, and the step is computed again).
///
/// Calls block on Redis (bounded by the connection timeout); `stepNow` and `infoNow` run on
/// the caller's thread, the async calls on Dispatch's pool. Within this process, calls on one
/// session are ordered by its shard's lock.
public final class RedisDriver: SessionDriver {
    /// How many replicas must have a change before it is acknowledged (`WAIT`), and how long
    /// to wait for them.
    /// Not `strict` (the default): a primary left without replicas (its replica failed over
    /// to it, and no new one has joined) acknowledges on its own copy, rather than refusing
    /// every change until a replica joins.
    public struct Durability: Sendable, Equatable {
        public let replicas: Int
        public let timeoutMilliseconds: Int
        public let strict: Bool
        public init(replicas: Int, timeoutMilliseconds: Int, strict: Bool = true) {
            (self.replicas, self.timeoutMilliseconds, self.strict) = (replicas, timeoutMilliseconds, strict)
        }
    }

    let client: RedisClient
    let keys: RedisKeys
    let clock: any ServiceClock
    let ttl: Double
    let maxSessions: Int
    let evictWhenFull: Bool
    let events: any SessionEvents
    public let durability: Durability
    /// Seconds a tombstone (why a session went) is kept.
    let tombstoneSeconds = 3600
    let shards: [Shard]
    let scripts: Scripts
    /// Sessions held, as far as this replica knows: its own changes as it makes them, and
    /// the whole store's count at each sweep.
    let count = Atomic<Int>(0)
    let closed = Atomic<Bool>(false)
    let versions = Locked<Versions?>(nil)
    /// The versions this process has put sessions on, held weakly: a session read back from
    /// Redis runs on one of these, or else on what `versions` finds.
    let known = Locked<[String: WeakModel]>([:])
    final class WeakModel: @unchecked Sendable {
        weak var model: (any SessionModel)?
        init(_ m: any SessionModel) { model = m }
    }
    /// Primaries found without replicas (not strict), and until when (`Date` seconds) changes
    /// on them are not held for one.
    let replicaless = Locked<[RedisLocation.Node: Double]>([:])
    /// The (model, version) pairs this process has recorded in `keys.versions`.
    let recordedVersions = Locked<Set<String>>([])

    /// Connects (`location`: one node, or seeds of a cluster), loads the scripts, and reads
    /// how many replicas the primaries have: `durability` nil waits (`waitMilliseconds`) for
    /// one when there is one.
    public init(location: RedisLocation, prefix: String = "lstm", timeoutMilliseconds: Int = 2000, durability: Durability? = nil, waitMilliseconds: Int = 1000,
                shards: Int, clock: any ServiceClock, ttl: Double, maxSessions: Int, evictWhenFull: Bool, events: any SessionEvents) throws(SessionError) {
        do {
            client = try RedisClient(location, timeoutMilliseconds: timeoutMilliseconds)
            scripts = try Scripts(client)
            self.durability = try durability ?? Durability(replicas: min(1, Self.replicaCount(client)), timeoutMilliseconds: waitMilliseconds, strict: false)
        } catch {
            throw .unavailable("the session store (\(location)) cannot be reached: \(error)")
        }
        keys = RedisKeys(prefix: prefix)
        self.clock = clock
        self.ttl = ttl
        self.maxSessions = maxSessions
        self.evictWhenFull = evictWhenFull
        self.events = events
        self.shards = (0..<max(1, shards)).map { _ in Shard() }
    }

    /// The fewest replicas any primary has (`INFO replication`).
    static func replicaCount(_ client: RedisClient) throws(RedisError) -> Int {
        var fewest = Int.max
        for (_, reply) in client.onEveryPrimary([Array("INFO".utf8), Array("replication".utf8)]) {
            let text = try reply.get().text ?? ""
            let line = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("connected_slaves:") }
            fewest = min(fewest, line.flatMap { Int($0.dropFirst("connected_slaves:".count)) } ?? 0)
        }
        return fewest == .max ? 0 : fewest
    }

    public var activeCount: Int { max(0, count.load(ordering: .relaxed)) }

    func shard(_ id: String) -> Shard { shards[keys.bucket(id) % shards.count] }

    func ensureOpen() throws(SessionError) {
        if closed.load(ordering: .relaxed) { throw SessionRules.closed }
    }

    /// Runs blocking work on Dispatch's pool, off the caller's cooperative thread.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () -> Result<T, SessionError>) async -> Result<T, SessionError> {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: body()) }
        }
    }

    /// A new id: 128 random bits as 32 hex digits, as the memory driver makes them.
    static func newID() -> String {
        var g = SystemRandomNumberGenerator()
        return [g.next() as UInt64, g.next() as UInt64].map { v in
            let digits = String(v, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }.joined()
    }

    // MARK: Stored sessions

    public func storedVersions() -> [(model: String, version: Int)] {
        guard let reply = try? client.call(key: keys.versions, [Array("SMEMBERS".utf8), keys.versions]), let members = reply.array else { return [] }
        return members.compactMap { m in
            let parts = (m.text ?? "").split(separator: "\u{1F}", omittingEmptySubsequences: false)
            guard parts.count == 2, let v = Int(parts[1]) else { return nil }
            return (String(parts[0]), v)
        }
    }

    /// Redis keeps the sessions: loading only learns the versions, sweeps what expired while
    /// no server ran, and counts the rest.
    public func load(versions: @escaping Versions) -> LoadReport {
        self.versions.withLock { $0 = versions }
        var report = LoadReport()
        report.source = client.location.description
        report.expired = sweepNow()
        report.live = activeCount
        return report
    }

    public func close() { closed.store(true, ordering: .relaxed) }
}
