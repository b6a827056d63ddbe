import Hashing

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
        var id = id
        return id.withUTF8 { utf8 in
            guard utf8.count == 32 else { return nil }
            var hi: UInt64 = 0, lo: UInt64 = 0
            for k in 0..<32 {
                let b = utf8[k]
                let v: UInt64
                switch b {
                case 48...57: v = UInt64(b - 48)
                case 97...102: v = UInt64(b - 87)
                default: return nil
                }
                if k < 16 { hi = hi << 4 | v } else { lo = lo << 4 | v }
            }
            return (hi, lo)
        }
    }

    /// Which of `count` shards holds this key: its bits are random (server-made) or a hash
    /// (a chosen name), so their remainder spreads sessions evenly.
    func shard(of count: Int) -> Int { Int((hi ^ lo) % UInt64(count)) }

    /// The server-made id these bits spell.
    var hex: String { hi.zeroPaddedHex + lo.zeroPaddedHex }
}
