internal import CJansson

/// A JSON value to be written out. Numbers from the model are `float`s and are written with
/// the shortest decimal that reads back as the same Float; non-finite numbers are an error.
public indirect enum JSON: Sendable, Equatable {
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
    public func serializedBytes(pretty: Bool = false) throws(JSONError) -> [UInt8] {
        let tree = try makeTree(path: "$")
        defer { CJansson_json_decref(tree) }
        // 9 significant digits: enough for every Float; doubles made from a Float's shortest
        // decimal print back as that decimal.
        let flags = pretty ? CJansson_flags_dump_pretty(9) : CJansson_flags_dump(9)
        // One pass into a buffer that fits most answers; a second only for larger documents.
        var bytes = [UInt8](repeating: 0, count: 4096)
        var size = bytes.withUnsafeMutableBytes {
            json_dumpb(tree, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count, flags)
        }
        guard size > 0 else { throw .encodingFailed }
        if size > bytes.count {
            bytes = [UInt8](repeating: 0, count: size)
            size = bytes.withUnsafeMutableBytes {
                json_dumpb(tree, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count, flags)
            }
            guard size == bytes.count else { throw .encodingFailed }
        }
        bytes.removeLast(bytes.count - size)
        return bytes
    }

    private func makeTree(path: String) throws(JSONError) -> UnsafeMutablePointer<json_t> {
        let made: UnsafeMutablePointer<json_t>?
        switch self {
        case .null: made = json_null()
        case let .bool(b): made = b ? json_true() : json_false()
        case let .int(i): made = json_integer(json_int_t(i))
        case let .double(d):
            guard d.isFinite else { throw .nonFinite(path: path) }
            made = json_real(d)
        case let .float(f):
            guard f.isFinite else { throw .nonFinite(path: path) }
            // The double nearest the Float's shortest decimal prints as that decimal at %.9g.
            made = json_real(Double(f.description) ?? Double(f))
        case let .string(s):
            made = s.utf8CString.withUnsafeBufferPointer {
                json_stringn($0.baseAddress!, $0.count - 1)
            }
        case let .array(items):
            guard let array = json_array() else { throw .encodingFailed }
            for (index, item) in items.enumerated() {
                let child: UnsafeMutablePointer<json_t>
                do { child = try item.makeTree(path: "\(path)[\(index)]") } catch {
                    CJansson_json_decref(array)
                    throw error
                }
                json_array_append_new(array, child)
            }
            made = array
        case let .object(members):
            guard let object = json_object() else { throw .encodingFailed }
            for (key, item) in members {
                let child: UnsafeMutablePointer<json_t>
                do { child = try item.makeTree(path: "\(path).\(key)") } catch {
                    CJansson_json_decref(object)
                    throw error
                }
                json_object_set_new(object, key, child)
            }
            made = object
        }
        guard let made else { throw .encodingFailed }
        return made
    }
}
