/// Layers applied to every timestep on its own (under Keras TimeDistributed, or to each row of
/// a sequence): convolution and pooling over a frame (height, width, channels; channels last,
/// as Keras stores it), normalization, and embedding of integer ids.

/// How a window is laid over the edge (Keras `padding`).
public enum Padding: String, Sendable, CaseIterable {
    case valid, same
    /// Conv1D only: all padding before the first step, so an output never sees the future.
    case causal

    /// Output length and the padding before the first input, as TensorFlow and Keras compute them.
    func layout(_ length: Int, kernel: Int, stride: Int, dilation: Int = 1) -> (count: Int, before: Int) {
        let span = (kernel - 1) * dilation + 1
        switch self {
        case .valid: return (length >= span ? (length - span) / stride + 1 : 0, 0)
        case .same:
            let count = (length + stride - 1) / stride
            return (count, max((count - 1) * stride + span - length, 0) / 2)
        case .causal: return (length, span - 1)
        }
    }
}

/// Conv2D over one frame: `y[oy, ox, :] = act(b + Σ W[:, :, ky, kx] · x[iy, ix, :])`.
public final class Conv2DLayer: Sendable {
    public let input: (height: Int, width: Int, channels: Int)
    public let output: (height: Int, width: Int, channels: Int)
    let kernel: (Int, Int), strides: (Int, Int), before: (Int, Int)
    public let activation: Activation
    /// (kh, kw, cin, cout): the taps in the loop's order.
    let taps: [Float]
    let bias: [Float]
    public let parameterCount: Int

    /// - Parameter weight: (cout, cin, kh, kw), PyTorch's Conv2d layout.
    public init(input: (height: Int, width: Int, channels: Int), outputChannels cout: Int, kernel: (Int, Int), strides: (Int, Int),
                padding: Padding, weight: [Float], bias: [Float]?, activation: Activation) {
        let cin = input.channels, (kh, kw) = kernel
        precondition(weight.count == cout * cin * kh * kw && padding != .causal, "conv2d weight")
        let rows = padding.layout(input.height, kernel: kh, stride: strides.0)
        let cols = padding.layout(input.width, kernel: kw, stride: strides.1)
        self.input = input
        output = (rows.count, cols.count, cout)
        self.kernel = kernel
        self.strides = strides
        before = (rows.before, cols.before)
        self.activation = activation
        var t = [Float](repeating: 0, count: weight.count)
        for co in 0..<cout { for ci in 0..<cin { for ky in 0..<kh { for kx in 0..<kw {
            t[((ky * kw + kx) * cin + ci) * cout + co] = weight[((co * cin + ci) * kh + ky) * kw + kx]
        } } } }
        taps = t
        self.bias = bias ?? [Float](repeating: 0, count: cout)
        parameterCount = weight.count + (bias?.count ?? 0)
    }

    /// `frames` frames of x into y.
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, frames: Int) {
        let (H, W, C) = input, (OH, OW, CO) = output, (kh, kw) = kernel
        taps.withUnsafeBufferPointer { w in
            for f in 0..<frames {
                let xf = x + f * H * W * C, yf = y + f * OH * OW * CO
                for oy in 0..<OH {
                    for ox in 0..<OW {
                        let out = yf + (oy * OW + ox) * CO
                        for co in 0..<CO { out[co] = bias[co] }
                        for ky in 0..<kh {
                            let iy = oy * strides.0 + ky - before.0
                            guard iy >= 0, iy < H else { continue }
                            for kx in 0..<kw {
                                let ix = ox * strides.1 + kx - before.1
                                guard ix >= 0, ix < W else { continue }
                                let pixel = xf + (iy * W + ix) * C
                                let tap = w.baseAddress! + (ky * kw + kx) * C * CO
                                for ci in 0..<C {
                                    let v = pixel[ci], row = tap + ci * CO
                                    for co in 0..<CO { out[co] += v * row[co] }
                                }
                            }
                        }
                        activate(out, CO, activation)
                    }
                }
            }
        }
    }
}

/// MaxPooling2D / AveragePooling2D over one frame (an average counts only cells inside it).
public final class Pool2DLayer: Sendable {
    public let isMax: Bool
    public let input: (height: Int, width: Int, channels: Int)
    public let output: (height: Int, width: Int, channels: Int)
    let pool: (Int, Int), strides: (Int, Int), before: (Int, Int)

    public init(max isMax: Bool, input: (height: Int, width: Int, channels: Int), pool: (Int, Int), strides: (Int, Int), padding: Padding) {
        precondition(padding != .causal, "pool2d padding")
        let rows = padding.layout(input.height, kernel: pool.0, stride: strides.0)
        let cols = padding.layout(input.width, kernel: pool.1, stride: strides.1)
        self.isMax = isMax
        self.input = input
        output = (rows.count, cols.count, input.channels)
        self.pool = pool
        self.strides = strides
        before = (rows.before, cols.before)
    }

    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, frames: Int) {
        let (H, W, C) = input, (OH, OW, _) = output
        for f in 0..<frames {
            let xf = x + f * H * W * C, yf = y + f * OH * OW * C
            for oy in 0..<OH {
                for ox in 0..<OW {
                    for c in 0..<C {
                        var acc: Float = isMax ? -.infinity : 0
                        var n: Float = 0
                        for py in 0..<pool.0 {
                            let iy = oy * strides.0 + py - before.0
                            guard iy >= 0, iy < H else { continue }
                            for px in 0..<pool.1 {
                                let ix = ox * strides.1 + px - before.1
                                guard ix >= 0, ix < W else { continue }
                                let v = xf[(iy * W + ix) * C + c]
                                if isMax { acc = max(acc, v) } else { acc += v }
                                n += 1
                            }
                        }
                        yf[(oy * OW + ox) * C + c] = isMax ? acc : acc / n
                    }
                }
            }
        }
    }
}

/// y = x · scale + shift on the last axis: BatchNormalization at inference, folded once
/// (scale = γ / √(var + ε), shift = β − mean · scale, as Keras computes it).
public final class ScaleShiftLayer: Sendable {
    public let channels: Int
    let scale: [Float], shift: [Float]
    public let parameterCount: Int

    public init(mean: [Float], variance: [Float], gamma: [Float]?, beta: [Float]?, epsilon: Float) {
        channels = mean.count
        precondition(variance.count == channels && (gamma?.count ?? channels) == channels && (beta?.count ?? channels) == channels, "batch norm shape")
        var s = [Float](repeating: 0, count: channels), t = s
        for k in 0..<channels {
            s[k] = (1 / (variance[k] + epsilon).squareRoot()) * (gamma?[k] ?? 1)
            t[k] = (beta?[k] ?? 0) - mean[k] * s[k]
        }
        scale = s
        shift = t
        parameterCount = 2 * channels + (gamma?.count ?? 0) + (beta?.count ?? 0)
    }

    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int) {
        for r in 0..<rows {
            for k in 0..<channels { y[r * channels + k] = x[r * channels + k] * scale[k] + shift[k] }
        }
    }
}

/// LayerNormalization on the last axis: (x − mean) / √(var + ε) · γ + β.
public final class LayerNormLayer: Sendable {
    public let channels: Int
    let gamma: [Float]?, beta: [Float]?, epsilon: Float
    public let parameterCount: Int

    public init(channels: Int, gamma: [Float]?, beta: [Float]?, epsilon: Float) {
        precondition((gamma?.count ?? channels) == channels && (beta?.count ?? channels) == channels, "layer norm shape")
        self.channels = channels
        self.gamma = gamma
        self.beta = beta
        self.epsilon = epsilon
        parameterCount = (gamma?.count ?? 0) + (beta?.count ?? 0)
    }

    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int) {
        let n = Float(channels)
        for r in 0..<rows {
            let xr = x + r * channels, yr = y + r * channels
            var mean: Float = 0
            for k in 0..<channels { mean += xr[k] }
            mean /= n
            var variance: Float = 0
            for k in 0..<channels { let d = xr[k] - mean; variance += d * d }
            let inv = 1 / (variance / n + epsilon).squareRoot()
            for k in 0..<channels { yr[k] = (xr[k] - mean) * inv * (gamma?[k] ?? 1) + (beta?[k] ?? 0) }
        }
    }
}

/// Embedding: each row's one value is an integer id, replaced by its row of the table.
public final class EmbeddingLayer: Sendable {
    public let count: Int, dimension: Int
    let table: [Float]
    public var parameterCount: Int { table.count }

    /// - Parameter table: (count, dimension), PyTorch's `Embedding.weight`, Keras's `embeddings`.
    public init(table: [Float], count: Int, dimension: Int) {
        precondition(table.count == count * dimension, "embedding shape")
        self.table = table
        self.count = count
        self.dimension = dimension
    }

    /// The id a value stands for, or nil when it is not an integer in range.
    public func id(_ v: Float) -> Int? {
        guard v.isFinite, v >= 0, v < Float(count), v.rounded(.towardZero) == v else { return nil }
        return Int(v)
    }

    /// Ids must have been checked (`Pipeline.checkInput`).
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int) {
        table.withUnsafeBufferPointer { t in
            for r in 0..<rows { (y + r * dimension).update(from: t.baseAddress! + id(x[r])! * dimension, count: dimension) }
        }
    }
}

/// Per row: the axes in another order (Keras Permute under TimeDistributed). It carries a
/// frame between PyTorch's channels-first (C, H, W) and the channels-last (H, W, C) that
/// Conv2D and pooling take, and back before a flatten, so values flatten in PyTorch's order.
public final class PermuteLayer: Sendable {
    public let input: [Int], output: [Int]
    /// Output value i is input value `source[i]`.
    let source: [Int32]

    /// - Parameter order: output axis k is input axis `order[k]` (0-based).
    public init?(input: [Int], order: [Int]) {
        guard order.count == input.count, order.sorted() == Array(0..<input.count), input.allSatisfy({ $0 > 0 }) else { return nil }
        self.input = input
        output = order.map { input[$0] }
        var pitch = [Int](repeating: 1, count: input.count)  // values between neighbours on each input axis
        for k in stride(from: input.count - 2, through: 0, by: -1) { pitch[k] = pitch[k + 1] * input[k + 1] }
        var source: [Int32] = []
        source.reserveCapacity(input.reduce(1, *))
        var index = [Int](repeating: 0, count: input.count)  // position in the output, odometer order
        for _ in 0..<input.reduce(1, *) {
            source.append(Int32(zip(order, index).reduce(0) { $0 + pitch[$1.0] * $1.1 }))
            for k in stride(from: index.count - 1, through: 0, by: -1) {
                index[k] += 1
                if index[k] < output[k] { break }
                index[k] = 0
            }
        }
        self.source = source
    }

    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int) {
        let n = source.count
        source.withUnsafeBufferPointer { s in
            for r in 0..<rows {
                let xr = x + r * n, yr = y + r * n
                for i in 0..<n { yr[i] = xr[Int(s[i])] }
            }
        }
    }
}
