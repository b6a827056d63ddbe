/// The recurrence a layer computes. Gate order inside the core is always PyTorch's.
public enum CellKind: Sendable, Equatable, CustomStringConvertible {
    /// Gates i, f, g, o.
    case lstm
    /// Gates r, z, n. `resetAfter` true is PyTorch's form, `n = tanh(W_in x + b_in + r·(W_hn h + b_hn))`
    /// (Keras `reset_after=True`, ONNX `linear_before_reset=1`); false applies r before the
    /// product, `n = tanh(W_in x + b_in + W_hn (r·h) + b_hn)` (Keras `reset_after=False`).
    case gru(resetAfter: Bool)
    /// Elman RNN, `h' = act(W_ih x + b_ih + W_hh h + b_hh)`.
    case rnn(Nonlinearity)

    public enum Nonlinearity: String, Sendable { case tanh, relu }

    /// Row blocks per weight matrix: 4, 3 or 1.
    public var gateCount: Int {
        switch self {
        case .lstm: return 4
        case .gru: return 3
        case .rnn: return 1
        }
    }

    public var hasCellState: Bool { self == .lstm }

    public var description: String {
        switch self {
        case .lstm: return "lstm"
        case let .gru(resetAfter): return resetAfter ? "gru" : "gru(reset_before)"
        case let .rnn(act): return "rnn_\(act.rawValue)"
        }
    }
}

