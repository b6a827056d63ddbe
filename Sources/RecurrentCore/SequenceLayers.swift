/// Layers over the time axis: Conv1D (valid, same, causal; dilation), pooling over time, and
/// global pooling. A causal Conv1D is the one of them a session can step: it keeps its last
/// (kernel − 1) · dilation input rows in the session state.

/// Conv1D: `y[o] = act(b + Σ_j W[:, :, j] · x[o · stride + j · dilation − before])`.
public final class Conv1DLayer: Sendable {
    public let inputChannels: Int, outputChannels: Int
    public let kernel: Int, stride: Int, dilation: Int
    public let padding: Padding
    public let activation: Activation
    /// One (cout, cin) matrix per tap, added in tap order by `forward` and `step` alike.
    let taps: [PackedMatrix]
    let bias: [Float]
    public let parameterCount: Int

    /// - Parameter weight: (cout, cin, kernel), PyTorch's Conv1d layout.
    public init(inputChannels cin: Int, outputChannels cout: Int, kernel: Int, stride: Int, dilation: Int, padding: Padding,
                weight: [Float], bias: [Float]?, activation: Activation) {
        precondition(weight.count == cout * cin * kernel && kernel > 0 && stride > 0 && dilation > 0, "conv1d weight")
        precondition(padding != .causal || stride == 1, "a causal conv1d has stride 1")
        inputChannels = cin
        outputChannels = cout
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        self.padding = padding
        self.activation = activation
        taps = (0..<kernel).map { j in
            var w = [Float](repeating: 0, count: cout * cin)
            for co in 0..<cout { for ci in 0..<cin { w[co * cin + ci] = weight[(co * cin + ci) * kernel + j] } }
            return PackedMatrix(w, outputCount: cout, inputCount: cin)
        }
        self.bias = bias ?? [Float](repeating: 0, count: cout)
        parameterCount = weight.count + (bias?.count ?? 0)
    }

    /// Input rows a causal layer keeps between steps.
    public var historyRows: Int { padding == .causal ? (kernel - 1) * dilation : 0 }

    public func outputLength(_ T: Int) -> Int { padding.layout(T, kernel: kernel, stride: stride, dilation: dilation).count }

    /// x (batch, T, cin) → y (batch, T', cout). A causal layer reads the rows before the window
    /// from `history` (batch, historyRows, cin) and leaves the window's last rows there.
    func forward(_ x: UnsafePointer<Float>, _ T: Int, _ batch: Int, _ y: UnsafeMutablePointer<Float>, history: UnsafeMutablePointer<Float>?) {
        let (count, before) = padding.layout(T, kernel: kernel, stride: stride, dilation: dilation)
        let hist = historyRows, cin = inputChannels, cout = outputChannels
        for b in 0..<batch {
            for o in 0..<count {
                let out = y + (b * count + o) * cout
                start(out)
                for j in 0..<kernel {
                    let i = o * stride + j * dilation - before
                    if i >= 0, i < T {
                        taps[j].accumulate(out, x + (b * T + i) * cin)
                    } else if i < 0, hist > 0, let history {
                        taps[j].accumulate(out, history + (b * hist + hist + i) * cin)
                    }
                }
                activate(out, cout, activation)
            }
            if hist > 0, let history {
                // the new history: the last `hist` rows of (old history, window), shifted left in place
                let h = history + b * hist * cin
                for r in 0..<hist {
                    let s = T - hist + r
                    (h + r * cin).update(from: s >= 0 ? x + (b * T + s) * cin : UnsafePointer(h + (hist + s) * cin), count: cin)
                }
            }
        }
    }

    /// One timestep of a causal layer: x (batch, cin) → y (batch, cout), the same sums as `forward`.
    func step(_ x: UnsafePointer<Float>, _ batch: Int, _ y: UnsafeMutablePointer<Float>, history: UnsafeMutablePointer<Float>) {
        let hist = historyRows, cin = inputChannels, cout = outputChannels
        for b in 0..<batch {
            let out = y + b * cout, h = history + b * hist * cin
            start(out)
            for j in 0..<kernel {
                let offset = j * dilation - hist  // rows before the current one
                taps[j].accumulate(out, offset == 0 ? x + b * cin : UnsafePointer(h + (hist + offset) * cin))
            }
            activate(out, cout, activation)
            if hist > 0 {
                h.update(from: h + cin, count: (hist - 1) * cin)
                (h + (hist - 1) * cin).update(from: x + b * cin, count: cin)
            }
        }
    }

    @inline(__always) private func start(_ out: UnsafeMutablePointer<Float>) {
        bias.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: outputChannels) }
    }
}

/// MaxPooling1D / AveragePooling1D over time (an average counts only rows inside the window).
public struct Pool1D: Sendable {
    public let isMax: Bool
    public let pool: Int, stride: Int
    public let padding: Padding

    public init(max isMax: Bool, pool: Int, stride: Int, padding: Padding) {
        precondition(pool > 0 && stride > 0 && padding != .causal, "pool1d")
        self.isMax = isMax
        self.pool = pool
        self.stride = stride
        self.padding = padding
    }

    public func outputLength(_ T: Int) -> Int { padding.layout(T, kernel: pool, stride: stride).count }

    func forward(_ x: UnsafePointer<Float>, _ T: Int, _ batch: Int, _ width: Int, _ y: UnsafeMutablePointer<Float>) {
        let (count, before) = padding.layout(T, kernel: pool, stride: stride)
        for b in 0..<batch {
            for o in 0..<count {
                for c in 0..<width {
                    var acc: Float = isMax ? -.infinity : 0
                    var n: Float = 0
                    for j in 0..<pool {
                        let i = o * stride + j - before
                        guard i >= 0, i < T else { continue }
                        let v = x[(b * T + i) * width + c]
                        if isMax { acc = max(acc, v) } else { acc += v }
                        n += 1
                    }
                    y[(b * count + o) * width + c] = isMax ? acc : acc / n
                }
            }
        }
    }
}

/// GlobalMaxPooling1D / GlobalAveragePooling1D: the sequence to one row.
func globalPool(_ isMax: Bool, _ x: UnsafePointer<Float>, _ T: Int, _ batch: Int, _ width: Int, _ y: UnsafeMutablePointer<Float>) {
    for b in 0..<batch {
        for c in 0..<width {
            var acc: Float = isMax ? -.infinity : 0
            for t in 0..<T {
                let v = x[(b * T + t) * width + c]
                acc = isMax ? max(acc, v) : acc + v
            }
            y[b * width + c] = isMax ? acc : acc / Float(T)
        }
    }
}
