#if canImport(Glibc)
import Glibc
#endif

/// An activation as Keras and PyTorch define it. Every one but softmax is elementwise, so it
/// can also be a recurrent cell's `activation` or `recurrent_activation`.
public enum Activation: String, Sendable, CaseIterable, CustomStringConvertible {
    case linear, relu, sigmoid, tanh, softmax
    /// Keras 3: relu6(x + 3) / 6 (Keras 2's 0.2·x + 0.5 is another function).
    case hardSigmoid = "hard_sigmoid"
    /// x for x > 0, e^x − 1 otherwise (alpha 1, the Keras and PyTorch default).
    case elu
    /// x / (1 + |x|).
    case softsign
    /// log(1 + e^x).
    case softplus
    /// x · σ(x) (Keras `silu`/`swish`, PyTorch `SiLU`).
    case silu

    public var description: String { rawValue }
    public var isElementwise: Bool { self != .softmax }

    /// Keras and PyTorch spellings, "none" and "swish" included.
    public init?(name: String) {
        switch name.lowercased() {
        case "none", "identity": self = .linear
        case "swish": self = .silu
        case "hardsigmoid": self = .hardSigmoid
        default: self.init(rawValue: name.lowercased())
        }
    }
}

extension Activation {
    /// The elementwise function on 16 lanes (softmax is not elementwise: identity here).
    @inline(__always)
    func apply(_ x: Vec) -> Vec {
        switch self {
        case .linear, .softmax: return x
        case .relu: return RecurrentCore.relu(x)
        case .sigmoid: return RecurrentCore.sigmoid(x)
        case .tanh: return RecurrentCore.tanh(x)
        case .hardSigmoid:
            let y = (x + 3).replacing(with: 0, where: x + 3 .< 0)
            return y.replacing(with: 6, where: y .> 6) / 6
        case .elu: return x.replacing(with: RecurrentCore.exp(x) - 1, where: x .<= 0)
        case .softsign:
            let ax = unsafeBitCast(unsafeBitCast(x, to: IVec.self) & 0x7FFF_FFFF, to: Vec.self)
            return x / (1 + ax)
        case .softplus:
            // log1p(e^x) through Float's own log; for large x it is x.
            var y = Vec()
            let e = RecurrentCore.exp(x)
            for k in 0..<16 { y[k] = x[k] > 20 ? x[k] : log1pf(e[k]) }
            return y
        case .silu: return x * RecurrentCore.sigmoid(x)
        }
    }
}

/// Applies `activation` to n values in place (softmax over all n).
func activate(_ v: UnsafeMutablePointer<Float>, _ n: Int, _ activation: Activation) {
    switch activation {
    case .linear:
        return
    case .softmax:
        var peak = -Float.infinity
        for k in 0..<n { peak = max(peak, v[k]) }
        var total: Float = 0
        for k in 0..<n { v[k] = exp(v[k] - peak); total += v[k] }
        for k in 0..<n { v[k] /= total }
    default:
        var k = 0
        while k < n {
            let m = n - k
            store(activation.apply(load(v + k, m)), v + k, m)
            k += 16
        }
    }
}
