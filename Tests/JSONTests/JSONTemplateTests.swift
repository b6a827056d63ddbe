import Foundation
import JSON
import Locking
import Testing

/// Reusable trees: values set at slots are what a freshly built tree of the same JSON writes.
@Suite struct JSONTemplateTests {
    static func shape(_ a: Float, _ b: Float, id: String, step: Int) -> JSON {
        .object([("id", .string(id)), ("step", .int(step)),
                 ("forecast", .object([("x", .float(a)), ("y", .float(b))])), ("units", .object([("x", .string("°C"))]))])
    }
    static let slots = [["id"], ["step"], ["forecast", "x"], ["forecast", "y"]]

    @Test func aFilledTemplateWritesWhatABuiltTreeWrites() throws {
        let t = try JSONTemplate(Self.shape(0, 0, id: "", step: 0), slots: Self.slots)
        for (a, b, id, step) in [(Float(0.1), Float(-3.25e-7), "abc", 1), (11.7, 1e30, "ü \"quoted\"", 12_345), (0, -0.0, "", 0)] {
            t.set(0, string: id)
            t.set(1, int: step)
            t.set(2, float: a)
            t.set(3, float: b)
            #expect(try t.serializedBytes() == Self.shape(a, b, id: id, step: step).serializedBytes())
        }
    }

    @Test func aNonFiniteNumberFailsThatWriteOnlyAndNamesTheSlot() throws {
        let t = try JSONTemplate(Self.shape(0, 0, id: "", step: 0), slots: Self.slots)
        t.set(3, float: .nan)
        #expect(throws: JSONError.nonFinite(path: "$.forecast.y")) { try t.serializedBytes() }
        t.set(3, float: 2)
        #expect(String(decoding: try t.serializedBytes(), as: UTF8.self).contains(#""y":2"#))
        #expect(throws: JSONError.encodingFailed) { try JSONTemplate(Self.shape(0, 0, id: "", step: 0), slots: [["forecast", "z"]]) }
        // a slot of another kind refuses the value, and the write says so
        t.set(1, float: 2)
        #expect(throws: JSONError.encodingFailed) { try t.serializedBytes() }
        #expect(try t.serializedBytes().count > 0)
    }

    @Test func aPoolGivesEachConcurrentWriterItsOwnTemplate() throws {
        let pool = try JSONTemplate.Pool(Self.shape(0, 0, id: "", step: 0), slots: Self.slots)
        let wrong = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for k in 0..<2_000 {
                let (a, b, id) = (Float(worker), Float(k), "w\(worker)")
                let bytes = try? pool.withTemplate { t throws(JSONError) in
                    t.set(0, string: id)
                    t.set(1, int: k)
                    t.set(2, float: a)
                    t.set(3, float: b)
                    return try t.serializedBytes()
                }
                if bytes != (try? Self.shape(a, b, id: id, step: k).serializedBytes()) { wrong.withLock { $0 += 1 } }
            }
        }
        #expect(wrong.withLock { $0 } == 0)
    }
}
