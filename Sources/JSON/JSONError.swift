/// Everything that can go wrong reading or writing JSON.
public enum JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text is not valid JSON (or has a duplicate key). `line` and `column` are 1-based.
    case syntax(message: String, line: Int, column: Int)
    /// A number to be written is NaN or infinite; JSON has no spelling for it.
    case nonFinite(path: String)
    /// jansson could not allocate or serialize.
    case encodingFailed

    public var description: String {
        switch self {
        case let .syntax(message, line, column):
            // jansson quotes the input near the error, raw
            return "invalid JSON at line \(line), column \(column): \(ControlCharacters.escaped(message))"
        case let .nonFinite(path):
            return "value at \(path) is not a finite number"
        case .encodingFailed:
            return "could not encode JSON"
        }
    }
}
