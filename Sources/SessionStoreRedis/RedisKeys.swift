import Redis

/// Where a session lives in Redis. Sessions fall into `buckets` buckets by a hash of their id;
/// a bucket's hash tag puts its sessions' values, its index (a sorted set of ids by last use,
/// for expiry, eviction and counting) and their tombstones (why a session went, kept an hour)
/// in one slot, so each change, index included, is one script on one node. 1,024 buckets
/// spread over a cluster's slots as evenly as ids would.
struct RedisKeys: Sendable {
    static let buckets = 1024
    let prefix: String

    func bucket(_ id: String) -> Int { Int(HashSlot.crc16(id.utf8)) % Self.buckets }
    private func tag(_ bucket: Int) -> String { "{\(prefix):\(bucket)}" }

    func session(_ id: String) -> [UInt8] { Array("\(tag(bucket(id))):s:\(id)".utf8) }
    func index(_ bucket: Int) -> [UInt8] { Array("\(tag(bucket)):idx".utf8) }
    func tombstone(_ id: String) -> [UInt8] { Array("\(tag(bucket(id))):gone:\(id)".utf8) }
    /// The (model, version) pairs sessions were made on, for `storedVersions` (its own slot).
    var versions: [UInt8] { Array("\(prefix):versions".utf8) }

    /// The keys a session's scripts take: value, its bucket's index, tombstone.
    func scriptKeys(_ id: String) -> [[UInt8]] { [session(id), index(bucket(id)), tombstone(id)] }
}
