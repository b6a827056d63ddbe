/// Every way a safetensors file can be malformed, one case each (the spec's checks).
public enum SafeTensorsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer than the 8 bytes of the header length.
    case fileTooSmall(size: Int)
    /// The declared header length exceeds the cap.
    case headerTooLarge(length: UInt64, limit: Int)
    /// The declared header runs past the end of the file.
    case headerIncomplete(length: UInt64, available: Int)
    /// The header does not start with `{`.
    case headerNotAnObject
    /// The header is not valid JSON (including duplicate keys).
    case invalidHeader(String)
    /// A tensor entry lacks `dtype`, `shape` or `data_offsets`, or has the wrong types.
    case invalidTensorEntry(name: String, reason: String)
    /// A dtype the format does not define.
    case unknownDType(name: String, dtype: String)
    /// The shape's element count or byte size overflows.
    case shapeOverflow(name: String)
    /// `data_offsets` are reversed or point outside the data buffer.
    case invalidOffset(name: String)
    /// dtype × shape does not equal the byte range the offsets give.
    case sizeMismatch(name: String, expected: Int, actual: Int)
    /// Offsets are not contiguous from 0: a hole or an overlap before this tensor.
    case notContiguous(name: String)
    /// The tensors do not cover the data buffer to its end.
    case trailingBytes(count: Int)
    /// `__metadata__` is not an object of strings.
    case invalidMetadata(String)
    /// A tensor was asked for that the file does not hold.
    case missingTensor(name: String)
    /// A tensor was asked for as floats but holds integers or booleans.
    case notFloatingPoint(name: String, dtype: String)

    public var description: String {
        switch self {
        case let .fileTooSmall(size):
            return "file is \(size) bytes, too small for a safetensors header (needs at least 8)"
        case let .headerTooLarge(length, limit):
            return "header length \(length) exceeds the limit of \(limit) bytes"
        case let .headerIncomplete(length, available):
            return "header length \(length) runs past the end of the file (\(available) bytes after the length)"
        case .headerNotAnObject:
            return "header does not start with '{'"
        case let .invalidHeader(message):
            return "header is not valid JSON: \(message)"
        case let .invalidTensorEntry(name, reason):
            return "tensor '\(name)': \(reason)"
        case let .unknownDType(name, dtype):
            return "tensor '\(name)': unknown dtype '\(dtype)'"
        case let .shapeOverflow(name):
            return "tensor '\(name)': shape is too large (element count overflows)"
        case let .invalidOffset(name):
            return "tensor '\(name)': data_offsets are reversed or outside the data buffer"
        case let .sizeMismatch(name, expected, actual):
            return "tensor '\(name)': dtype and shape need \(expected) bytes but data_offsets give \(actual)"
        case let .notContiguous(name):
            return "tensor '\(name)': data_offsets leave a hole or overlap the previous tensor"
        case let .trailingBytes(count):
            return "\(count) bytes of data follow the last tensor"
        case let .invalidMetadata(message):
            return "__metadata__: \(message)"
        case let .missingTensor(name):
            return "missing tensor '\(name)'"
        case let .notFloatingPoint(name, dtype):
            return "tensor '\(name)' has dtype \(dtype), expected F32, F16, BF16 or F64"
        }
    }
}
