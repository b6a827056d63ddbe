/// Why a model could not be loaded. Every message names the file, key or tensor at fault.
public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path cannot be read (missing, a directory without weights, permissions).
    case unreadable(path: String, reason: String)
    /// The weights file is not valid safetensors.
    case safeTensors(path: String, SafeTensorsError)
    /// The config (file or `__metadata__`) has a bad key or value.
    case invalidConfig(String)
    /// No `…weight_ih_l0` tensor: nothing recurrent to run.
    case noRecurrentLayers
    /// A tensor the architecture needs is absent.
    case missingTensor(String)
    /// A tensor the loader does not know what to do with.
    case unexpectedTensor(String)
    /// A tensor's shape does not fit the rest of the model.
    case shapeMismatch(tensor: String, expected: String, actual: [Int])
    /// The architecture is inconsistent (gate count, directions, head chain).
    case inconsistent(String)
    /// A weight is NaN or infinite: every answer would be too.
    case nonFiniteWeight(tensor: String, index: Int, value: Float)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read \(path): \(reason)"
        case let .safeTensors(path, error): return "\(path): \(error)"
        case let .invalidConfig(message): return "invalid model config: \(message)"
        case .noRecurrentLayers: return "no recurrent layer found (expected tensors named like 'rnn.weight_ih_l0')"
        case let .missingTensor(name): return "missing tensor '\(name)'"
        case let .unexpectedTensor(name):
            return "unexpected tensor '\(name)' (not part of a recurrent layer or the head; if its module is the head, "
                + "set head_prefix in config.json, or describe the model with a 'layers' list)"
        case let .shapeMismatch(tensor, expected, actual):
            return "tensor '\(tensor)' has shape \(actual), expected \(expected)"
        case let .inconsistent(message): return message
        case let .nonFiniteWeight(tensor, index, value):
            return "tensor '\(tensor)' holds \(value) at element \(index); weights must be finite"
        }
    }
}
