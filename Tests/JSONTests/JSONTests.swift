import JSON
import Testing

@Suite struct JSONTests {
    @Test func firstKeyNotInNamesAnUnknownMemberOnly() throws {
        let v = try JSONDocument(text: #"{"a": 1, "b": null, "zz": 2}"#).value
        #expect(v.firstKey(notIn: ["a", "b", "zz"]) == nil)
        #expect(v.firstKey(notIn: ["a", "b", "zz", "extra"]) == nil)
        #expect(v.firstKey(notIn: ["a", "b"]) == "zz")
        #expect(v.firstKey(notIn: []) != nil)
        #expect(try JSONDocument(text: "[1, 2]").value.firstKey(notIn: []) == nil)
    }

    @Test func parsesNestedValuesAndReportsKinds() throws {
        let doc = try JSONDocument(text: #"{"a": [1, 2.5, -3e2], "b": {"c": "ü"}, "d": true, "e": null}"#)
        let v = doc.value
        #expect(v.kind == .object && v.count == 4)
        var numbers: [Float] = []
        #expect(v["a"]!.appendNumbers(to: &numbers) == nil)
        #expect(numbers == [1, 2.5, -300])
        #expect(v["b"]!["c"]!.string == "ü")
        #expect(v["d"]!.bool == true && v["e"]!.isNull)
        #expect(v["a"]![0]!.int == 1 && v["a"]![1]!.int == nil)
        #expect(Set(v.keys) == ["a", "b", "d", "e"])
    }

    @Test func rejectsDuplicateKeys() {
        #expect(throws: JSONError.self) { try JSONDocument(text: #"{"a": 1, "a": 2}"#) }
    }

    @Test func reportsWhereTheSyntaxErrorIs() {
        do {
            _ = try JSONDocument(text: "{\n  \"a\": [1, 2,\n}")
            Issue.record("expected an error")
        } catch {
            guard case let .syntax(_, line, _) = error else { Issue.record("\(error)"); return }
            #expect(line == 3)
        }
        #expect(throws: JSONError.syntax(message: "empty input", line: 1, column: 1)) { try JSONDocument(bytes: []) }
    }

    @Test func appendNumbersStopsAtTheFirstNonNumber() throws {
        var out: [Float] = []
        #expect(try JSONDocument(text: #"[1, "x", 3]"#).value.appendNumbers(to: &out) == 1)
    }

    @Test func overflowingNumbersParseAsInfinityAndMustBeCheckedByTheCaller() throws {
        // jansson reads 1e39 as a real beyond Float; Float(1e39) is +inf.
        var out: [Float] = []
        _ = try JSONDocument(text: "[1e39]").value.appendNumbers(to: &out)
        #expect(out == [.infinity])
    }

    @Test func writesFloatsAsTheirShortestDecimal() throws {
        let text = try JSON.object([("x", .float(0.1)), ("y", .floats([11.8, -0.057331424, 1e-8])), ("n", .int(3)), ("s", .string("a\"b"))]).serialized()
        #expect(text == #"{"x":0.1,"y":[11.8,-0.057331424,1e-8],"n":3,"s":"a\"b"}"#)
        // and they read back as the same Float
        var back: [Float] = []
        _ = try JSONDocument(text: text).value["y"]!.appendNumbers(to: &back)
        #expect(back == [11.8, -0.057331424, 1e-8])
    }

    @Test func everyFloatWritesAsADecimalNoLongerThanSwiftsShortest() throws {
        // random bit patterns over the whole finite range, plus the edges
        var s: UInt64 = 12345
        var floats: [Float] = [.greatestFiniteMagnitude, .leastNormalMagnitude, .leastNonzeroMagnitude, 1, 0.5, 1e-45, 3.4e38, 100, 1e9, 123456789]
        while floats.count < 20000 {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: s >> 32))
            if f.isFinite { floats.append(f) }
        }
        let text = try JSON.floats(floats).serialized()
        var back: [Float] = []
        #expect(try JSONDocument(text: text).value.appendNumbers(to: &back) == nil)
        #expect(back.count == floats.count)
        func digits(_ t: Substring) -> Int {
            // significant digits: those of the mantissa, less leading and trailing zeros
            let mantissa = t.split(whereSeparator: { $0 == "e" || $0 == "E" })[0].filter(\.isNumber)
            return max(mantissa.drop(while: { $0 == "0" }).reversed().drop(while: { $0 == "0" }).count, 1)
        }
        let written = text.dropFirst().dropLast().split(separator: ",")
        for (k, f) in floats.enumerated() {
            #expect(back[k] == f, "\(f) wrote \(written[k])")
            let shortest = digits(Substring(f.description))
            #expect(digits(written[k]) <= shortest, "\(f) wrote \(written[k]), Swift writes \(f.description)")
        }
    }

    @Test func refusesToWriteNonFiniteNumbers() {
        #expect(throws: JSONError.nonFinite(path: "$.y[1]")) { try JSON.object([("y", .floats([1, .nan]))]).serialized() }
        #expect(throws: JSONError.nonFinite(path: "$.z")) { try JSON.object([("z", .double(.infinity))]).serialized() }
    }

    @Test func tensorNestsRowMajorValues() throws {
        #expect(try JSON.tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]).serialized() == "[[1.0,2.0,3.0],[4.0,5.0,6.0]]")
    }
}
