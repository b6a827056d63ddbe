internal import CJansson

/// A read-only view of one node of a ``JSONDocument``.
public struct JSONValue: @unchecked Sendable {
    public enum Kind: Sendable, Equatable { case object, array, string, integer, real, bool, null }

    let document: JSONDocument
    let node: OpaquePointer
    private var pointer: UnsafeMutablePointer<json_t> { UnsafeMutablePointer(node) }

    public var kind: Kind {
        switch CJansson_json_typeof(pointer) {
        case Int32(JSON_OBJECT.rawValue): return .object
        case Int32(JSON_ARRAY.rawValue): return .array
        case Int32(JSON_STRING.rawValue): return .string
        case Int32(JSON_INTEGER.rawValue): return .integer
        case Int32(JSON_REAL.rawValue): return .real
        case Int32(JSON_TRUE.rawValue), Int32(JSON_FALSE.rawValue): return .bool
        default: return .null
        }
    }

    /// A short name of the kind for error messages ("an array", "a string").
    public var kindName: String {
        switch kind {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .integer, .real: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }

    public var isNull: Bool { kind == .null }

    /// The number, for an integer or a real. The corresponding C function is `json_number_value`.
    public var double: Double? {
        let k = kind
        guard k == .integer || k == .real else { return nil }
        return json_number_value(pointer)
    }

    /// The value of an integer node (a real with no fraction is not an integer).
    public var int: Int? {
        guard kind == .integer else { return nil }
        return Int(json_integer_value(pointer))
    }

    public var string: String? {
        guard kind == .string, let text = json_string_value(pointer) else { return nil }
        let length = json_string_length(pointer)
        return text.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    /// Calls `body` with a string's UTF-8 bytes in place (nil for anything else): no String is made.
    public func withUTF8<R, E: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(E) -> R) throws(E) -> R? {
        guard kind == .string, let text = json_string_value(pointer) else { return nil }
        let length = json_string_length(pointer)
        return try text.withMemoryRebound(to: UInt8.self, capacity: length) { (p) throws(E) -> R in
            try body(UnsafeBufferPointer(start: p, count: length))
        }
    }

    public var bool: Bool? {
        switch CJansson_json_typeof(pointer) {
        case Int32(JSON_TRUE.rawValue): return true
        case Int32(JSON_FALSE.rawValue): return false
        default: return nil
        }
    }

    /// Elements of an array, members of an object, 0 otherwise.
    public var count: Int {
        switch kind {
        case .array: return json_array_size(pointer)
        case .object: return json_object_size(pointer)
        default: return 0
        }
    }

    /// The member named `key` of an object.
    public subscript(key: String) -> JSONValue? {
        // withCString reads a native String in place; passing the String itself to C would
        // copy it into a new array first.
        guard kind == .object, let child = key.withCString({ json_object_get(pointer, $0) }) else { return nil }
        return JSONValue(document: document, node: OpaquePointer(child))
    }

    /// The element at `index` of an array.
    public subscript(index: Int) -> JSONValue? {
        guard kind == .array, index >= 0, let child = json_array_get(pointer, index) else { return nil }
        return JSONValue(document: document, node: OpaquePointer(child))
    }

    /// The elements of an array (empty for anything else).
    public var elements: [JSONValue] {
        guard kind == .array else { return [] }
        return (0..<count).map { self[$0]! }
    }

    /// The keys of an object, in jansson's iteration order.
    public var keys: [String] {
        guard kind == .object else { return [] }
        var result: [String] = []
        var iterator = json_object_iter(pointer)
        while let it = iterator {
            if let key = json_object_iter_key(it) { result.append(String(cString: key)) }
            iterator = json_object_iter_next(pointer, it)
        }
        return result
    }

    /// The first key of an object that is not in `allowed`, or nil (also for a non-object).
    /// The allowed members present are counted first, so an object with none other costs no
    /// allocation; the keys are listed only to name an unknown one.
    public func firstKey(notIn allowed: [String]) -> String? {
        guard kind == .object else { return nil }
        var present = 0
        for key in allowed where self[key] != nil { present += 1 }
        guard count > present else { return nil }
        return keys.first { !allowed.contains($0) }
    }

    /// The members of an object as (key, value) pairs.
    public var members: [(key: String, value: JSONValue)] {
        keys.map { ($0, self[$0]!) }
    }

    /// Appends the numbers of a flat array to `buffer`. Returns the index of the first element
    /// that is not a number, or nil when all were numbers.
    public func appendNumbers(to buffer: inout [Float]) -> Int? {
        guard kind == .array else { return 0 }
        let n = json_array_size(pointer)
        for index in 0..<n {
            let child = json_array_get(pointer, index)!
            let type = CJansson_json_typeof(child)
            guard type == Int32(JSON_REAL.rawValue) || type == Int32(JSON_INTEGER.rawValue) else {
                return index
            }
            buffer.append(Float(json_number_value(child)))
        }
        return nil
    }
}
