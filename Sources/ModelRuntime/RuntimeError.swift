/// Why the runtime could not answer. Each protocol renders it in its own envelope (the native
/// API's `{"error": {...}}` with 422 or 404, Open Inference's `{"error": "..."}`).
public enum RuntimeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input does not fit the model: its shape, a value, an unknown field, a bad state.
    case invalidInput(String)
    /// Models could not be loaded (at start-up).
    case loading(String)

    public var description: String {
        switch self {
        case let .invalidInput(message), let .loading(message): return message
        }
    }
}
