/// Why the runtime could not answer. Each protocol renders it in its own envelope (the native
/// API's `{"error": {...}}` with 422 or 404, Open Inference's `{"error": "..."}`).
public enum RuntimeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input does not fit the model: its shape, a value, an unknown field, a bad state.
    case invalidInput(String)
    /// No model of that name is loaded.
    case unknownModel(name: String, loaded: [String])
    /// The model cannot do what was asked (stepping a model that needs the whole window).
    case unsupported(String)
    /// The model's answer for this input is not a finite number.
    case nonFiniteOutput
    /// Models could not be loaded (at start-up).
    case loading(String)

    public var description: String {
        switch self {
        case let .invalidInput(message), let .unsupported(message), let .loading(message): return message
        case let .unknownModel(name, loaded): return "no model named '\(name)' (loaded: \(loaded.joined(separator: ", ")))"
        case .nonFiniteOutput: return "the model's output is not a finite number for this input"
        }
    }
}
