import Foundation
@testable import JSON
import Locking
import Testing

/// Parsed documents live in pooled arenas and dumps in scratch ones: a document must read back
/// intact however large it is, whatever is parsed, written or released meanwhile and on
/// whichever thread it is released.
@Suite struct JSONArenaTests {
    /// `{"n": k, "xs": [k, k+1, …], "names": ["k-0", …]}` with `count` numbers and strings.
    static func document(_ k: Int, count: Int) -> String {
        let xs = (0..<count).map { String(k + $0) }.joined(separator: ",")
        let names = (0..<count).map { "\"\(k)-\($0)\"" }.joined(separator: ",")
        return #"{"n": \#(k), "xs": [\#(xs)], "names": [\#(names)]}"#
    }

    static func check(_ doc: JSONDocument, _ k: Int, count: Int) -> Bool {
        let v = doc.value
        guard v["n"]?.int == k, let xs = v["xs"], let names = v["names"], xs.count == count, names.count == count else { return false }
        return (0..<count).allSatisfy { xs[$0]?.int == k + $0 && names[$0]?.string == "\(k)-\($0)" }
    }

    @Test func aDocumentManyChunksLongReadsBackWhole() throws {
        // 20,000 numbers and strings: megabytes of nodes, far past the arena's first chunk
        let big = try JSONDocument(text: Self.document(7, count: 20_000))
        let small = try JSONDocument(text: Self.document(3, count: 10))
        #expect(Self.check(big, 7, count: 20_000))
        #expect(Self.check(small, 3, count: 10))
        // the arenas go back to the pool and are reused; the live documents stay intact
        for k in 0..<50 { #expect(Self.check(try JSONDocument(text: Self.document(k, count: 100)), k, count: 100)) }
        #expect(Self.check(big, 7, count: 20_000))
        #expect(Self.check(small, 3, count: 10))
    }

    @Test func documentsReleasedOnOtherThreadsLeaveTheRestIntact() throws {
        // parsed on eight threads, handed to the others, read there, released in another order
        let docs = Locked<[(Int, JSONDocument)]>([])
        let wrong = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for i in 0..<200 {
                let k = t * 1000 + i
                guard let doc = try? JSONDocument(text: Self.document(k, count: 1 + k % 40)) else { wrong.withLock { $0 += 1 }; continue }
                docs.withLock { $0.append((k, doc)) }
                // take someone else's (or our own) and check it, then let it go here
                if let (k2, other) = docs.withLock({ $0.count > 3 ? $0.remove(at: (k * 7) % $0.count) : nil }),
                   !Self.check(other, k2, count: 1 + k2 % 40) {
                    wrong.withLock { $0 += 1 }
                }
            }
        }
        for (k, doc) in docs.withLock({ $0 }) where !Self.check(doc, k, count: 1 + k % 40) { wrong.withLock { $0 += 1 } }
        #expect(wrong.withLock { $0 } == 0)
    }

    @Test func treesThatOutliveARequestAreUntouchedByArenas() throws {
        // a template's tree is on the heap; documents and dumps in arenas around it must not
        // disturb it, and its string slot (a fresh jansson string per set) stays on the heap
        let t = try JSONTemplate(.object([("id", .string("")), ("x", .float(0))]), slots: [["id"], ["x"]])
        for k in 0..<100 {
            let doc = try JSONDocument(text: Self.document(k, count: 50))
            t.set(0, string: "session-\(k)")
            t.set(1, float: Float(k) / 4)
            let written = try t.serializedBytes()
            let general = try JSON.object([("id", .string("session-\(k)")), ("x", .float(Float(k) / 4))]).serializedBytes()
            #expect(written == general)
            #expect(Self.check(doc, k, count: 50))
        }
    }

    @Test func aTemplateMadeOrSetWhileAnArenaIsCurrentStaysOnTheHeap() throws {
        // made and given a string inside a scratch arena that is then rewound and written over
        let t = try JSONArena.withScratch { () throws(JSONError) in
            let t = try JSONTemplate(.object([("id", .string("")), ("x", .float(0))]), slots: [["id"], ["x"]])
            t.set(0, string: "a session id longer than any small string")
            return t
        }
        for k in 0..<20 { _ = try JSONDocument(text: Self.document(k, count: 300)) }
        t.set(1, float: 1.5)
        #expect(String(decoding: try t.serializedBytes(), as: UTF8.self) == #"{"id":"a session id longer than any small string","x":1.5}"#)
    }

    @Test func aFailedParseLeavesNothingBehind() throws {
        let good = try JSONDocument(text: Self.document(1, count: 30))
        for text in [#"{"a": [1, 2, "#, #"{"a": 1, "a": 2}"#, "[" + String(repeating: "1,", count: 5000) + "x]"] {
            #expect(throws: JSONError.self) { try JSONDocument(text: text) }
        }
        #expect(Self.check(good, 1, count: 30))
        #expect(Self.check(try JSONDocument(text: Self.document(2, count: 30)), 2, count: 30))
    }
}
