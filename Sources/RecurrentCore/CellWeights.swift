/// The weights of one direction of one recurrent layer, repacked once for the kernels.
///
/// Every matrix is a `PackedMatrix`: transposed from PyTorch's layout into 128-wide panels, so
/// the kernel adds whole rows (`gates += x[j] · Wᵀ[j, panel]`), a vector FMA with no horizontal sum.
public final class CellWeights: Sendable {
    public let kind: CellKind
    public let inputSize: Int
    public let hiddenSize: Int
    /// `proj_size`, or 0 when the LSTM has no projection.
    public let projectionSize: Int
    /// Width of h: `projectionSize` if set, else `hiddenSize`.
    public var outputSize: Int { projectionSize > 0 ? projectionSize : hiddenSize }
    /// G·H rounded up to a multiple of 16: the length of the bias vectors and gate buffers.
    let stride: Int
    /// `weight_ih` (G·H, inputSize), gate blocks in PyTorch order.
    let inputWeights: PackedMatrix
    /// `weight_hh` (G·H, outputSize); for a reset-before GRU only the r, z rows (2H, H).
    let recurrentWeights: PackedMatrix
    /// Reset-before GRU: the n rows of `weight_hh` (H, H), applied to r·h.
    let recurrentWeightsN: PackedMatrix?
    /// (stride) LSTM/RNN: b_ih + b_hh. GRU: b_ih only.
    let inputBias: [Float]
    /// (stride) GRU: b_hh (added to the recurrent product); zeros otherwise.
    let recurrentBias: [Float]
    /// `weight_hr` (projectionSize, hiddenSize), or nil without projection.
    let projection: PackedMatrix?
    /// Numel of every tensor the framework has for this direction.
    public let parameterCount: Int
    /// LSTM: applied to g and to c' (Keras `activation`); GRU: to n; RNN: to the sum.
    public let activation: Activation
    /// LSTM: i, f, o; GRU: r, z (Keras `recurrent_activation`); unused by RNN.
    public let recurrentActivation: Activation
    /// tanh and sigmoid where they apply: the fused pointwise kernels.
    public let usesDefaultActivations: Bool

    /// - Parameters: PyTorch layouts, row-major.
    ///   - weightIH: (G·H, inputSize), row blocks in PyTorch gate order.
    ///   - weightHH: (G·H, outputSize).
    ///   - biasIH, biasHH: (G·H) each, or nil when absent (absent counts no parameters).
    ///   - weightHR: (projectionSize, H) for a projected LSTM.
    public init(
        kind: CellKind, inputSize: Int, hiddenSize: Int,
        weightIH: [Float], weightHH: [Float],
        biasIH: [Float]?, biasHH: [Float]?, weightHR: [Float]? = nil,
        activation: Activation? = nil, recurrentActivation: Activation = .sigmoid
    ) {
        let defaultActivation: Activation
        if case .rnn(.relu) = kind { defaultActivation = .relu } else { defaultActivation = .tanh }
        let activation = activation ?? defaultActivation
        precondition(activation.isElementwise && recurrentActivation.isElementwise, "cell activations are elementwise")
        self.activation = activation
        self.recurrentActivation = recurrentActivation
        switch kind {
        case .rnn: usesDefaultActivations = activation == defaultActivation
        case .lstm, .gru: usesDefaultActivations = activation == .tanh && recurrentActivation == .sigmoid
        }
        let gates = kind.gateCount * hiddenSize
        let projectionSize = weightHR.map { $0.count / hiddenSize } ?? 0
        let outputSize = projectionSize > 0 ? projectionSize : hiddenSize
        precondition(weightIH.count == gates * inputSize, "weight_ih shape")
        precondition(weightHH.count == gates * outputSize, "weight_hh shape")
        precondition(biasIH.map { $0.count == gates } ?? true, "bias_ih shape")
        precondition(biasHH.map { $0.count == gates } ?? true, "bias_hh shape")
        self.kind = kind
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.projectionSize = projectionSize
        let stride = (gates + 15) / 16 * 16
        self.stride = stride
        inputWeights = PackedMatrix(weightIH, outputCount: gates, inputCount: inputSize)
        if kind == .gru(resetAfter: false) {
            let split = 2 * hiddenSize * outputSize
            recurrentWeights = PackedMatrix(Array(weightHH[..<split]), outputCount: 2 * hiddenSize, inputCount: outputSize)
            recurrentWeightsN = PackedMatrix(Array(weightHH[split...]), outputCount: hiddenSize, inputCount: outputSize)
        } else {
            recurrentWeights = PackedMatrix(weightHH, outputCount: gates, inputCount: outputSize)
            recurrentWeightsN = nil
        }
        var bIn = [Float](repeating: 0, count: stride)
        var bRec = [Float](repeating: 0, count: stride)
        for k in 0..<gates {
            let bi = biasIH?[k] ?? 0, bh = biasHH?[k] ?? 0
            switch kind {
            case .gru: (bIn[k], bRec[k]) = (bi, bh)
            case .lstm, .rnn: bIn[k] = bi + bh
            }
        }
        inputBias = bIn
        recurrentBias = bRec
        projection = weightHR.map { PackedMatrix($0, outputCount: projectionSize, inputCount: hiddenSize) }
        parameterCount = weightIH.count + weightHH.count + (biasIH?.count ?? 0)
            + (biasHH?.count ?? 0) + (weightHR?.count ?? 0)
    }
}
