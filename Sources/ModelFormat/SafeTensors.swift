import JSON

/// A safetensors file, validated in full when read: 8-byte little-endian header length (capped),
/// a JSON header object without duplicate keys, dtype × shape equal to each byte range, and
/// ranges contiguous from 0 to the end of the file.
public struct SafeTensors: Sendable {
    public enum DType: String, Sendable, CaseIterable {
        case BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64

        public var byteCount: Int {
            switch self {
            case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3: return 1
            case .I16, .U16, .F16, .BF16: return 2
            case .I32, .U32, .F32: return 4
            case .F64, .I64, .U64: return 8
            }
        }
    }

    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Byte range within the data buffer.
        public let range: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// The safetensors reference implementation's cap on the header (100 MB).
    public static let maximumHeaderLength = 100_000_000

    public let tensors: [String: TensorInfo]
    /// `__metadata__`: free-form string pairs.
    public let metadata: [String: String]
    private let bytes: [UInt8]
    private let dataStart: Int

    /// Tensor names in file (offset) order.
    public var names: [String] { tensors.values.sorted { $0.range.lowerBound < $1.range.lowerBound }.map(\.name) }

    public init(bytes: [UInt8]) throws(SafeTensorsError) {
        guard bytes.count >= 8 else { throw .fileTooSmall(size: bytes.count) }
        var length: UInt64 = 0
        for k in 0..<8 { length |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        guard length <= UInt64(Self.maximumHeaderLength) else {
            throw .headerTooLarge(length: length, limit: Self.maximumHeaderLength)
        }
        guard length <= UInt64(bytes.count - 8) else {
            throw .headerIncomplete(length: length, available: bytes.count - 8)
        }
        let headerEnd = 8 + Int(length)
        guard length > 0, bytes[8] == UInt8(ascii: "{") else { throw .headerNotAnObject }
        let parsed = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONError) in
                try JSONDocument(bytes: UnsafeRawBufferPointer(rebasing: raw[8..<headerEnd]))
            }
        }
        let document: JSONDocument
        switch parsed {
        case let .success(d): document = d
        case let .failure(error): throw .invalidHeader(error.description)
        }
        let header = document.value
        guard header.kind == .object else { throw .headerNotAnObject }

        let dataSize = bytes.count - headerEnd
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, entry) in header.members {
            if name == "__metadata__" {
                metadata = try Self.readMetadata(entry)
                continue
            }
            tensors[name] = try Self.readEntry(name, entry, dataSize: dataSize)
        }
        // Contiguous from 0, no holes or overlaps, through the end of the data.
        var cursor = 0
        for info in tensors.values.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
            guard info.range.lowerBound == cursor else { throw .notContiguous(name: info.name) }
            cursor = info.range.upperBound
        }
        guard cursor == dataSize else { throw .trailingBytes(count: dataSize - cursor) }
        self.tensors = tensors
        self.metadata = metadata
        self.bytes = bytes
        self.dataStart = headerEnd
    }

    private static func readMetadata(_ entry: JSONValue) throws(SafeTensorsError) -> [String: String] {
        guard entry.kind == .object else { throw .invalidMetadata("expected an object, got \(entry.kindName)") }
        var result: [String: String] = [:]
        for (key, value) in entry.members {
            guard let text = value.string else {
                throw .invalidMetadata("value of '\(key)' is \(value.kindName), expected a string")
            }
            result[key] = text
        }
        return result
    }

    private static func readEntry(_ name: String, _ entry: JSONValue, dataSize: Int) throws(SafeTensorsError) -> TensorInfo {
        guard entry.kind == .object else {
            throw .invalidTensorEntry(name: name, reason: "entry is \(entry.kindName), expected an object")
        }
        guard let dtypeName = entry["dtype"]?.string else {
            throw .invalidTensorEntry(name: name, reason: "missing or non-string 'dtype'")
        }
        guard let dtype = DType(rawValue: dtypeName) else { throw .unknownDType(name: name, dtype: dtypeName) }
        guard let shapeValue = entry["shape"], shapeValue.kind == .array else {
            throw .invalidTensorEntry(name: name, reason: "missing or non-array 'shape'")
        }
        var shape: [Int] = []
        var elements = 1
        for dim in shapeValue.elements {
            guard let d = dim.int, d >= 0 else {
                throw .invalidTensorEntry(name: name, reason: "shape entries must be non-negative integers")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw .shapeOverflow(name: name) }
            elements = product
            shape.append(d)
        }
        let (byteCount, overflow) = elements.multipliedReportingOverflow(by: dtype.byteCount)
        guard !overflow else { throw .shapeOverflow(name: name) }
        guard let offsets = entry["data_offsets"], offsets.kind == .array, offsets.count == 2,
              let begin = offsets[0]?.int, let end = offsets[1]?.int
        else {
            throw .invalidTensorEntry(name: name, reason: "'data_offsets' must be two integers")
        }
        guard begin >= 0, begin <= end, end <= dataSize else { throw .invalidOffset(name: name) }
        guard end - begin == byteCount else {
            throw .sizeMismatch(name: name, expected: byteCount, actual: end - begin)
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, range: begin..<end)
    }

    /// The tensor's values converted to Float (F32 as is; F16, BF16 exactly; F64 rounded).
    public func floats(_ name: String) throws(SafeTensorsError) -> [Float] {
        guard let info = tensors[name] else { throw .missingTensor(name: name) }
        let n = info.elementCount
        let start = dataStart + info.range.lowerBound
        return bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + start
            switch info.dtype {
            case .F32:
                return (0..<n).map { Float(bitPattern: base.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) }
            case .F16:
                return (0..<n).map { Float(halfBits: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) }
            case .BF16:
                return (0..<n).map {
                    Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) << 16)
                }
            case .F64:
                return (0..<n).map { Float(Double(bitPattern: base.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian)) }
            default:
                return []
            }
        }
    }

    /// Like `floats`, but refuses non-float dtypes with an error naming the tensor.
    public func floatTensor(_ name: String) throws(SafeTensorsError) -> [Float] {
        guard let info = tensors[name] else { throw .missingTensor(name: name) }
        switch info.dtype {
        case .F32, .F16, .BF16, .F64: return try floats(name)
        default: throw .notFloatingPoint(name: name, dtype: info.dtype.rawValue)
        }
    }
}

extension Float {
    /// IEEE 754 binary16 to Float, exactly (subnormals, infinities and NaN included).
    init(halfBits h: UInt16) {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        var mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else if exponent == 0 {
            if mantissa == 0 { self = Float(bitPattern: sign); return }
            // subnormal: normalize
            var e = -1
            repeat { e += 1; mantissa <<= 1 } while mantissa & 0x400 == 0
            let bits = sign | UInt32(127 - 15 - e) << 23 | (mantissa & 0x3FF) << 13
            self = Float(bitPattern: bits)
        } else {
            self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
        }
    }
}
