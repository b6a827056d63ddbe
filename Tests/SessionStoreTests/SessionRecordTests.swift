import Foundation
@testable import SessionStoreRedis
import Testing

/// The value a session is kept as in Redis: it reads back whole, and anything else (cut
/// short, changed, another program's bytes) reads as nothing rather than a crash or a
/// wrong state.
@Suite struct SessionRecordTests {
    static let record = SessionRecord(revision: 42, step: 7, created: 1_700_000_000.25, lastUsed: 1_700_000_123.5, model: "m", version: "3",
                                      fingerprint: "abc123", layout: "h:1x3, c:1x3", state: [0.5, -1, .leastNonzeroMagnitude, 3.25, 0, -0.0])

    @Test func aRecordReadsBackBitForBit() throws {
        let bytes = Self.record.encoded()
        let back = try #require(SessionRecord(bytes))
        #expect(back == Self.record && back.state.map(\.bitPattern) == Self.record.state.map(\.bitPattern))
        // the revision sits where the scripts compare it (Lua counts from 1)
        let at = SessionRecord.revisionRange
        #expect(Array(bytes[(at.lowerBound - 1)..<at.upperBound]) == Array("00000000000000000042".utf8))
    }

    @Test func everyCutAndEveryChangedByteIsRefusedOrReadWhole() {
        let bytes = Self.record.encoded()
        for n in 0..<bytes.count { #expect(SessionRecord(Array(bytes.prefix(n))) == nil, "cut at \(n)") }
        #expect(SessionRecord(bytes + [0]) == nil)
        var g = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var changed = bytes
            for _ in 0..<Int.random(in: 1...4, using: &g) { changed[Int.random(in: 0..<changed.count, using: &g)] = UInt8.random(in: 0...255, using: &g) }
            if let r = SessionRecord(changed) { #expect(r.encoded() == changed) }  // when it reads, it is what those bytes say
        }
        for n in [0, 1, 3, 24, 100, 4096] {
            #expect(SessionRecord((0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }) == nil)
        }
        #expect(SessionRecord(Array("not a session".utf8)) == nil)
    }
}
