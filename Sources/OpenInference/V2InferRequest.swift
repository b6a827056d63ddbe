import FrontEnd
import JSON

/// An Open Inference Protocol V2 infer request, read from its JSON header and, with the binary
/// tensor data extension, the bytes after it (`Inference-Header-Content-Length` says where the
/// JSON ends; each input's `binary_data_size` takes its bytes in order).
///
/// Parsing checks every input's structure; the values are read later, straight into the
/// model's window (``readNumbers(_:into:)``, ``forEachString(_:_:)``), so a request makes no
/// array or String per input.
struct V2InferRequest: Sendable {
    struct Input: Sendable {
        let name: String
        let datatype: String
        let shape: Shape
        /// Elements: the product of the shape.
        let count: Int
        let data: Data
    }

    /// A tensor's sizes, held inline, so that reading a request's shapes allocates nothing.
    struct Shape: RandomAccessCollection, CustomStringConvertible, Sendable {
        static let maxRank = 8
        private var sizes: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
        private(set) var count = 0

        var startIndex: Int { 0 }
        var endIndex: Int { count }
        subscript(i: Int) -> Int {
            precondition(i >= 0 && i < count, "shape index out of range")
            return withUnsafeBytes(of: sizes) { $0.load(fromByteOffset: i * MemoryLayout<Int>.stride, as: Int.self) }
        }
        mutating func append(_ n: Int) {
            precondition(count < Self.maxRank, "shape rank above maxRank")
            withUnsafeMutableBytes(of: &sizes) { $0.storeBytes(of: n, toByteOffset: count * MemoryLayout<Int>.stride, as: Int.self) }
            count += 1
        }
        var description: String { "[" + map(String.init).joined(separator: ", ") + "]" }
    }

    /// Where an input's values are.
    enum Data: Sendable {
        /// A flat or nested JSON array (or one value), not yet checked against the shape.
        case json(JSONValue)
        /// `binary_data_size` bytes at this offset of the body, their size checked.
        case binary(offset: Int, size: Int)
    }

    /// A requested output, and whether it goes back as binary data.
    struct Output: Sendable {
        let name: String
        let binary: Bool
    }

    /// Triton's `sequence_id`: an unsigned integer or a string.
    enum SequenceID: Equatable, Sendable {
        case number(Int)
        case text(String)

        var text: String {
            switch self {
            case let .number(n): return String(n)
            case let .text(s): return s
            }
        }
    }

    let body: [UInt8]
    var id: String?
    var inputs: [Input] = []
    /// nil: every output, binary when `binary_data_output` is set.
    var outputs: [Output]?
    var binaryDataOutput = false
    var sequenceID: SequenceID?
    var sequenceStart = false
    var sequenceEnd = false

    /// Bytes per element of a number datatype; nil for BYTES and for names the protocol lacks.
    static func elementSize(_ datatype: String) -> Int? {
        switch datatype {
        case "FP32", "INT32", "UINT32": return 4
        case "FP64", "INT64", "UINT64": return 8
        case "FP16", "INT16", "UINT16": return 2
        case "INT8", "UINT8", "BOOL": return 1
        default: return nil
        }
    }
    /// Elements per input at most: far above any window, far below what would exhaust memory.
    static let maxElements = 1 << 26
    private static let members = ["id", "parameters", "inputs", "outputs"]

    static func parse(_ body: [UInt8], headerLength: String?) throws(APIError) -> V2InferRequest {
        var jsonEnd = body.count
        if let headerLength {
            guard let n = Int(headerLength), n >= 0, n <= body.count else {
                throw APIError(.badRequest, "Inference-Header-Content-Length '\(headerLength.prefix(40))' is not a byte count within the body's \(body.count) bytes")
            }
            jsonEnd = n
        }
        guard jsonEnd > 0 else { throw APIError(.badRequest, "request body is empty; expected a JSON inference request") }
        let document: JSONDocument
        do {
            if jsonEnd == body.count {
                document = try JSONDocument(bytes: body)
            } else {
                document = try body.withUnsafeBytes { raw throws(JSONError) in try JSONDocument(bytes: UnsafeRawBufferPointer(rebasing: raw[0..<jsonEnd])) }
            }
        } catch {
            throw APIError(.badRequest, "malformed JSON: \(error)")
        }
        let root = document.value
        guard root.kind == .object else { throw APIError(.badRequest, "the inference request must be a JSON object with 'inputs'") }
        if let key = root.firstKey(notIn: members) {
            throw APIError(.badRequest, "unknown field '\(key)'; an inference request has id, parameters, inputs and outputs")
        }
        var request = V2InferRequest(body: body)
        if let id = root["id"] {
            guard let s = id.string else { throw APIError(.badRequest, "'id' must be a string") }
            request.id = s
        }
        if let p = root["parameters"] { try request.readParameters(p) }
        guard let inputs = root["inputs"], inputs.kind == .array, inputs.count > 0 else {
            throw APIError(.badRequest, "'inputs' must be a non-empty array of tensors")
        }
        var offset = jsonEnd
        request.inputs.reserveCapacity(inputs.count)
        for k in 0..<inputs.count {
            request.inputs.append(try readInput(inputs[k]!, index: k, body: body, offset: &offset))
        }
        guard offset == body.count else {
            throw APIError(.badRequest, "the body has \(body.count - offset) bytes of binary data that no input's binary_data_size takes")
        }
        if let outputs = root["outputs"] {
            guard outputs.kind == .array else { throw APIError(.badRequest, "'outputs' must be an array") }
            var list: [Output] = []
            list.reserveCapacity(outputs.count)
            for k in 0..<outputs.count {
                let o = outputs[k]!
                guard o.kind == .object, let name = o["name"]?.string else {
                    throw APIError(.badRequest, "outputs[\(k)] must be an object with a string 'name'")
                }
                var binary = false
                if let b = o["parameters"]?["binary_data"] {
                    guard let flag = b.bool else { throw APIError(.badRequest, "outputs[\(k)].parameters.binary_data must be true or false") }
                    binary = flag
                }
                list.append(Output(name: name, binary: binary))
            }
            request.outputs = list
        }
        return request
    }

    private mutating func readParameters(_ p: JSONValue) throws(APIError) {
        guard p.kind == .object else { throw APIError(.badRequest, "'parameters' must be an object") }
        func flag(_ key: String) throws(APIError) -> Bool {
            guard let v = p[key] else { return false }
            guard let b = v.bool else { throw APIError(.badRequest, "parameters.\(key) must be true or false") }
            return b
        }
        binaryDataOutput = try flag("binary_data_output")
        sequenceStart = try flag("sequence_start")
        sequenceEnd = try flag("sequence_end")
        if let v = p["sequence_id"] {
            if let n = v.int {
                guard n >= 0 else { throw APIError(.badRequest, "parameters.sequence_id must be an unsigned integer or a string") }
                sequenceID = n == 0 ? nil : .number(n)  // 0: not part of a sequence, as Triton reads it
            } else if let s = v.string {
                guard s.utf8.count <= 256, !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                    throw APIError(.badRequest, "parameters.sequence_id must be at most 256 bytes without control characters")
                }
                sequenceID = s.isEmpty ? nil : .text(s)
            } else {
                throw APIError(.badRequest, "parameters.sequence_id must be an unsigned integer or a string")
            }
        }
        if sequenceID == nil, sequenceStart || sequenceEnd {
            throw APIError(.badRequest, "sequence_start and sequence_end need a sequence_id")
        }
    }

    private static func readInput(_ v: JSONValue, index k: Int, body: [UInt8], offset: inout Int) throws(APIError) -> Input {
        guard v.kind == .object, let name = v["name"]?.string, let datatype = v["datatype"]?.string else {
            throw APIError(.badRequest, "inputs[\(k)] must be an object with string 'name' and 'datatype'")
        }
        guard let shapeJSON = v["shape"], shapeJSON.kind == .array else {
            throw APIError(.badRequest, "input '\(name)' needs 'shape', an array of sizes")
        }
        guard shapeJSON.count <= Shape.maxRank else {
            throw APIError(.badRequest, "input '\(name)' has \(shapeJSON.count) dimensions; at most \(Shape.maxRank) are taken")
        }
        var shape = Shape()
        var count = 1
        for i in 0..<shapeJSON.count {
            guard let n = shapeJSON[i]!.int, n >= 0 else { throw APIError(.badRequest, "input '\(name)': every size in 'shape' must be a non-negative integer") }
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow, product <= maxElements else { throw APIError(.payloadTooLarge, "input '\(name)' has more than \(maxElements) elements") }
            count = product
            shape.append(n)
        }
        let width = elementSize(datatype)
        guard width != nil || datatype == "BYTES" else {
            throw APIError(.badRequest, "input '\(name)': datatype '\(datatype)' is not one of the protocol's (FP32, FP64, FP16, INT8 ... UINT64, BOOL, BYTES)")
        }
        if let size = v["parameters"]?["binary_data_size"] {
            guard let n = size.int, n >= 0, n <= body.count - offset else {
                throw APIError(.badRequest, "input '\(name)': binary_data_size is not a byte count within the \(body.count - offset) bytes of binary data left")
            }
            guard v["data"] == nil else { throw APIError(.badRequest, "input '\(name)' has both 'data' and binary_data_size") }
            if let width {
                guard n == count * width else {
                    throw APIError(.badRequest, "input '\(name)': binary_data_size is \(n) bytes, but shape \(shape) of \(datatype) takes \(count * width)")
                }
            } else {
                try forEachBinaryString(body[offset..<offset + n], count: count, name: name) { _, _ in }
            }
            defer { offset += n }
            return Input(name: name, datatype: datatype, shape: shape, count: count, data: .binary(offset: offset, size: n))
        }
        guard let data = v["data"] else { throw APIError(.badRequest, "input '\(name)' has neither 'data' nor parameters.binary_data_size") }
        return Input(name: name, datatype: datatype, shape: shape, count: count, data: .json(data))
    }

    /// Appends an input's numbers, row-major, to `out`, converted to Float; checks that there
    /// are as many as its shape says.
    func readNumbers(_ input: Input, into out: inout [Float]) throws(APIError) {
        let start = out.count
        switch input.data {
        case let .json(data):
            out.reserveCapacity(start + input.count)
            try Self.flattenNumbers(data, into: &out, name: input.name, datatype: input.datatype)
            guard out.count - start == input.count else {
                throw APIError(.badRequest, "input '\(input.name)' has \(out.count - start) values, but shape \(input.shape) takes \(input.count)")
            }
        case let .binary(offset, _):
            Self.decodeNumbers(body, offset, input.count, input.datatype, into: &out)
        }
    }

    /// Calls `body` with each `BYTES` element of an input, in order, as UTF-8 bytes in place.
    func forEachString(_ input: Input, _ body: (Int, UnsafeBufferPointer<UInt8>) throws(APIError) -> Void) throws(APIError) {
        switch input.data {
        case let .json(data):
            var k = 0
            try Self.forEachJSONString(data, name: input.name, k: &k, limit: input.count, body)
            guard k == input.count else {
                throw APIError(.badRequest, "input '\(input.name)' has \(k) elements, but shape \(input.shape) takes \(input.count)")
            }
        case let .binary(offset, size):
            try Self.forEachBinaryString(self.body[offset..<offset + size], count: input.count, name: input.name, body)
        }
    }

    /// Row-major values of a flat or nested JSON array (booleans count as 0 and 1).
    private static func flattenNumbers(_ v: JSONValue, into out: inout [Float], name: String, datatype: String) throws(APIError) {
        guard v.kind == .array else {
            if let b = v.bool, datatype == "BOOL" {
                out.append(b ? 1 : 0)
                return
            }
            guard let d = v.double else { throw APIError(.badRequest, "input '\(name)' has \(v.kindName) where a \(datatype) number goes") }
            out.append(Float(d))
            return
        }
        let start = out.count
        if v.appendNumbers(to: &out) == nil { return }  // the common case: a flat array of numbers
        out.removeSubrange(start...)
        for i in 0..<v.count { try flattenNumbers(v[i]!, into: &out, name: name, datatype: datatype) }
    }

    /// Elements past `limit` are counted, not passed on (the caller's window has `limit` places).
    private static func forEachJSONString(_ v: JSONValue, name: String, k: inout Int, limit: Int,
                                          _ body: (Int, UnsafeBufferPointer<UInt8>) throws(APIError) -> Void) throws(APIError) {
        let index = k
        if let done = try v.withUTF8({ (u) throws(APIError) in if index < limit { try body(index, u) } }) {
            k += 1
            return done
        }
        guard v.kind == .array else { throw APIError(.badRequest, "input '\(name)' has \(v.kindName) where a BYTES string goes") }
        for i in 0..<v.count { try forEachJSONString(v[i]!, name: name, k: &k, limit: limit, body) }
    }

    /// Little-endian binary numbers, as the extension sends them.
    private static func decodeNumbers(_ body: [UInt8], _ offset: Int, _ count: Int, _ datatype: String, into out: inout [Float]) {
        body.withUnsafeBytes { raw in
            let p = raw.baseAddress! + offset
            func load<T: FixedWidthInteger>(_: T.Type, _ k: Int) -> T {
                T(littleEndian: p.loadUnaligned(fromByteOffset: k * MemoryLayout<T>.size, as: T.self))
            }
            func each(_ f: (Int) -> Float) {
                out.reserveCapacity(out.count + count)
                for k in 0..<count { out.append(f(k)) }
            }
            switch datatype {
            case "FP32": each { Float(bitPattern: load(UInt32.self, $0)) }
            case "FP64": each { Float(Double(bitPattern: load(UInt64.self, $0))) }
            case "FP16": each { Float(Float16(bitPattern: load(UInt16.self, $0))) }
            case "INT8": each { Float(load(Int8.self, $0)) }
            case "INT16": each { Float(load(Int16.self, $0)) }
            case "INT32": each { Float(load(Int32.self, $0)) }
            case "INT64": each { Float(load(Int64.self, $0)) }
            case "UINT8", "BOOL": each { Float(load(UInt8.self, $0)) }
            case "UINT16": each { Float(load(UInt16.self, $0)) }
            case "UINT32": each { Float(load(UInt32.self, $0)) }
            default: each { Float(load(UInt64.self, $0)) }
            }
        }
    }

    /// `BYTES` elements: each a 4-byte little-endian length, then that many bytes of UTF-8.
    private static func forEachBinaryString(_ bytes: ArraySlice<UInt8>, count: Int, name: String,
                                            _ body: (Int, UnsafeBufferPointer<UInt8>) throws(APIError) -> Void) throws(APIError) {
        var i = bytes.startIndex
        for k in 0..<count {
            guard bytes.endIndex - i >= 4 else { throw APIError(.badRequest, "input '\(name)': BYTES element \(k) has no 4-byte length") }
            var n = 0
            for b in 0..<4 { n |= Int(bytes[i + b]) << (8 * b) }
            i += 4
            guard bytes.endIndex - i >= n else {
                throw APIError(.badRequest, "input '\(name)': BYTES element \(k) says \(n) bytes but \(bytes.endIndex - i) are left")
            }
            let element = bytes[i..<i + n]
            guard String(validating: element, as: UTF8.self) != nil else {
                throw APIError(.badRequest, "input '\(name)': BYTES element \(k) is not UTF-8 text")
            }
            try element.withUnsafeBufferPointer { (u) throws(APIError) in try body(k, u) }
            i += n
        }
        guard i == bytes.endIndex else {
            throw APIError(.badRequest, "input '\(name)': binary_data_size has \(bytes.endIndex - i) bytes beyond its \(count) elements")
        }
    }
}
