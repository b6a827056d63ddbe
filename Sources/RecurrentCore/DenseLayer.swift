/// A Linear / Dense layer on the last axis: `y = act(W x + b)` for every row.
public final class DenseLayer: Sendable {
    public let inputSize: Int
    public let outputSize: Int
    public let activation: Activation
    /// `W` (outputSize, inputSize).
    let weights: PackedMatrix
    /// (stride)
    let bias: [Float]
    let stride: Int
    public let parameterCount: Int

    /// - Parameters:
    ///   - weight: (outputSize, inputSize), PyTorch's `Linear.weight`.
    ///   - bias: (outputSize) or nil.
    public init(inputSize: Int, outputSize: Int, weight: [Float], bias: [Float]?, activation: Activation) {
        precondition(weight.count == inputSize * outputSize, "dense weight shape")
        precondition(bias.map { $0.count == outputSize } ?? true, "dense bias shape")
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.activation = activation
        stride = (outputSize + 15) / 16 * 16
        weights = PackedMatrix(weight, outputCount: outputSize, inputCount: inputSize)
        var b = [Float](repeating: 0, count: stride)
        if let bias { for k in 0..<outputSize { b[k] = bias[k] } }
        self.bias = b
        parameterCount = weight.count + (bias?.count ?? 0)
    }

    /// `rows` rows of x (inputSize each) into y (outputSize each); x and y must not overlap.
    @inline(__always)
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int) {
        bias.withUnsafeBufferPointer { b in
            for r in 0..<rows {
                let out = y + r * outputSize
                out.update(from: b.baseAddress!, count: outputSize)
                weights.accumulate(out, x + r * inputSize)
                activate(out, outputSize, activation)
            }
        }
    }
}
