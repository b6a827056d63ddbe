/// A reply from Redis (RESP2), copied out of hiredis's reply object.
public enum RedisReply: Sendable, Equatable {
    /// A bulk string: binary-safe bytes.
    case bytes([UInt8])
    /// A simple status such as `OK`.
    case status(String)
    case integer(Int)
    case null
    case array([RedisReply])
    /// An error reply (`ERR ...`, `MOVED 3999 127.0.0.1:6381`, `NOSCRIPT ...`).
    case error(String)

    /// The bytes of a bulk string or status as text.
    public var text: String? {
        switch self {
        case let .bytes(b): return String(decoding: b, as: UTF8.self)
        case let .status(s): return s
        default: return nil
        }
    }

    public var integer: Int? {
        if case let .integer(n) = self { return n }
        return nil
    }

    public var array: [RedisReply]? {
        if case let .array(a) = self { return a }
        return nil
    }

    public var errorText: String? {
        if case let .error(e) = self { return e }
        return nil
    }
}
