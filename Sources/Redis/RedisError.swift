/// Why a Redis call did not get a reply. An error *reply* is not one of these: it is a
/// `RedisReply.error`, since callers read some of them (`MOVED`, `NOSCRIPT`).
public enum RedisError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No connection could be made to the node (refused, unreachable, timed out).
    case connect(String)
    /// The connection broke or timed out mid-call; it is closed, and the call's effect on the
    /// server is unknown.
    case io(String)
    /// The deployment answered in a way that cannot be used (no slot map, redirects without end).
    case protocolError(String)

    public var description: String {
        switch self {
        case let .connect(m): return "cannot connect to Redis: \(m)"
        case let .io(m): return "Redis connection failed: \(m)"
        case let .protocolError(m): return "Redis: \(m)"
        }
    }
}
