internal import CJansson

/// A JSON value to be written out. Numbers from the model are `float`s and are written with
/// the shortest decimal that reads back as the same Float; non-finite numbers are an error.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case float(Float)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.float(a), .float(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// A JSON array of Floats.
    public static func floats(_ values: some Collection<Float>) -> JSON {
        .array(values.map { .float($0) })
    }

    /// Row-major `values` of `shape` as nested arrays.
    public static func tensor(_ values: [Float], shape: [Int]) -> JSON {
        func build(_ offset: Int, _ axis: Int) -> JSON {
            if axis == shape.count - 1 {
                return .floats(values[offset..<offset + shape[axis]])
            }
            let inner = shape[(axis + 1)...].reduce(1, *)
            return .array((0..<shape[axis]).map { build(offset + $0 * inner, axis + 1) })
        }
        if shape.isEmpty { return values.first.map { .float($0) } ?? .null }
        return build(0, 0)
    }

    /// Serializes through jansson. The corresponding C function is `json_dumpb`.
    public func serialized(pretty: Bool = false) throws(JSONError) -> String {
        String(decoding: try serializedBytes(pretty: pretty), as: UTF8.self)
    }

    /// UTF-8 bytes of the serialized value, ready for a response body.
    /// The tree is built and written in a scratch arena (``JSONArena``) and dropped with it.
    public func serializedBytes(pretty: Bool = false) throws(JSONError) -> [UInt8] {
        try JSONArena.withScratch { () throws(JSONError) in try Self.dumpBytes(try makeTree(), pretty: pretty) }
    }

    /// Writes a jansson tree out; what jansson allocates meanwhile (its loop check's table)
    /// lives in a scratch arena. The corresponding C function is `json_dumpb`.
    static func dump(_ tree: UnsafeMutablePointer<json_t>, pretty: Bool = false) throws(JSONError) -> [UInt8] {
        try JSONArena.withScratch { () throws(JSONError) in try dumpBytes(tree, pretty: pretty) }
    }

    private static func dumpBytes(_ tree: UnsafeMutablePointer<json_t>, pretty: Bool) throws(JSONError) -> [UInt8] {
        // 9 significant digits: enough for every Float; doubles made from a Float's shortest
        // decimal print back as that decimal.
        let flags = pretty ? CJansson_flags_dump_pretty(9) : CJansson_flags_dump(9)
        // Most answers fit a stack buffer: dump there, then copy once into an array of the
        // exact size. Larger documents take a second pass into an array of their own.
        let small = 1024  // larger temporary allocations may go to the heap
        let first = withUnsafeTemporaryAllocation(of: CChar.self, capacity: small) { buffer -> [UInt8]? in
            let size = json_dumpb(tree, buffer.baseAddress!, small, flags)
            guard size > 0, size <= small else { return nil }
            return UnsafeRawBufferPointer(start: buffer.baseAddress!, count: size).withMemoryRebound(to: UInt8.self) { Array($0) }
        }
        if let first { return first }
        let size = json_dumpb(tree, nil, 0, flags)
        guard size > 0 else { throw .encodingFailed }
        var bytes = [UInt8](repeating: 0, count: size)
        let written = bytes.withUnsafeMutableBytes {
            json_dumpb(tree, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count, flags)
        }
        guard written == size else { throw .encodingFailed }
        return bytes
    }

    /// A double within a few ulps of the shortest decimal (at most 9 significant digits) that
    /// reads back as `f`, so that jansson's `%.9g` prints that decimal: 0.1 for 0.1f, not
    /// 0.100000001. Rounds in binary instead of going through `Float.description` and `strtod`.
    static func shortestDouble(_ f: Float) -> Double {
        let x = Double(f)
        guard x != 0, x.isFinite else { return x }
        // decimal exponent e with 10^e <= |x| < 10^(e+1), from the binary one, corrected once
        var e = Int((Double(x.exponent) * 0.30102999566398120).rounded(.down))
        if abs(x) >= power(of: e + 1) { e += 1 }
        for digits in 1...9 {
            let k = digits - 1 - e  // scale by 10^k so that `digits` digits sit left of the point
            let d = k >= 0 ? (x * power(of: k)).rounded() / power(of: k) : (x / power(of: -k)).rounded() * power(of: -k)
            if Float(d) == f { return d }
        }
        return x
    }

    /// 10^k for |k| <= 60 (exact up to 10^22); Float's decimal exponents span -45 ... 38.
    private static func power(of k: Int) -> Double {
        k >= 0 ? powersOfTen[k] : 1 / powersOfTen[-k]
    }

    private static let powersOfTen: [Double] = (0...60).map { k in (0..<k).reduce(1.0) { r, _ in r * 10 } }

    /// The jansson tree of this value. Paths for error messages are only built on the way
    /// out of a failure, so the common case allocates nothing but jansson's nodes.
    func makeTree() throws(JSONError) -> UnsafeMutablePointer<json_t> {
        _ = JSONArena.installed  // jansson's allocator before its first allocation
        return try buildTree()
    }

    private func buildTree() throws(JSONError) -> UnsafeMutablePointer<json_t> {
        let made: UnsafeMutablePointer<json_t>?
        switch self {
        case .null: made = json_null()
        case let .bool(b): made = b ? json_true() : json_false()
        case let .int(i): made = json_integer(json_int_t(i))
        case let .double(d):
            guard d.isFinite else { throw .nonFinite(path: "$") }
            made = json_real(d)
        case let .float(f):
            guard f.isFinite else { throw .nonFinite(path: "$") }
            made = json_real(Self.shortestDouble(f))
        case let .string(s):
            made = s.withCString { json_stringn($0, s.utf8.count) }
        case let .array(items):
            guard let array = json_array() else { throw .encodingFailed }
            for index in items.indices {
                let child: UnsafeMutablePointer<json_t>
                do { child = try items[index].buildTree() } catch {
                    CJansson_json_decref(array)
                    throw error.prefixed("[\(index)]")
                }
                json_array_append_new(array, child)
            }
            made = array
        case let .object(members):
            guard let object = json_object() else { throw .encodingFailed }
            for (key, item) in members {
                let child: UnsafeMutablePointer<json_t>
                do { child = try item.buildTree() } catch {
                    CJansson_json_decref(object)
                    throw error.prefixed(".\(key)")
                }
                _ = key.withCString { json_object_set_new(object, $0, child) }
            }
            made = object
        }
        guard let made else { throw .encodingFailed }
        return made
    }
}

extension JSONError {
    /// The same error one level further down: "$.y" + "[1]" -> "$.y[1]" is built inside out.
    fileprivate func prefixed(_ step: String) -> JSONError {
        guard case let .nonFinite(path) = self else { return self }
        return .nonFinite(path: "$" + step + path.dropFirst())
    }
}
