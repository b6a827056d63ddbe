import ModelFormat
import RecurrentCore

/// Runs a model on requests in raw units: normalizes inputs, runs the pipeline, and turns the
/// head's output back into real units (each protocol writes them in its wire format).
public struct Predictor: Sendable {
    public let model: Model
    /// Output names: the config's, or y0, y1, ...
    public let outputNames: [String]
    /// Per output, the input feature whose last value is added back (`residual_of`), or nil.
    private let residualInputs: [Int?]
    /// The model ends in a softmax: its answer is a class distribution and the top class.
    public let isClassifier: Bool

    public init(model: Model) {
        self.model = model
        let n = model.pipeline.outputWidth
        let p = model.pipeline
        switch p.layers.last {
        case .activation(.softmax)?: isClassifier = !p.outputShape.isSequence
        case let .dense(d)?: isClassifier = d.activation == .softmax && !p.outputShape.isSequence
        default: isClassifier = false
        }
        let classNames = model.config.labels ?? (isClassifier ? (0..<n).map(String.init) : nil)
        let names = classNames ?? (model.config.outputs.isEmpty ? (0..<n).map { "y\($0)" } : model.config.outputs.map(\.name))
        outputNames = names
        let features = model.config.features
        residualInputs = names.indices.map { k in
            guard k < model.config.outputs.count, let base = model.config.outputs[k].residualOf else { return nil }
            return features.firstIndex { $0.name == base }
        }
    }

    /// x' = (x − mean) / std, feature by feature, in place.
    public func normalize(_ x: inout [Float]) {
        let mean = model.config.inputMean, std = model.config.inputStd
        guard mean != nil || std != nil else { return }
        let n = model.pipeline.inputSize
        for k in x.indices {
            let f = k % n
            x[k] = (x[k] - (mean?[f] ?? 0)) / (std?[f] ?? 1)
        }
    }

    /// y = y' · std + mean per output, in place.
    public func denormalize(_ y: inout [Float]) {
        y.withUnsafeMutableBufferPointer { denormalize($0) }
    }

    private func denormalize(_ y: UnsafeMutableBufferPointer<Float>) {
        let mean = model.config.outputMean, std = model.config.outputStd
        guard mean != nil || std != nil, !y.isEmpty else { return }
        let n = outputNames.count
        for k in y.indices {
            let o = k % n
            y[k] = y[k] * (std?[o] ?? 1) + (mean?[o] ?? 0)
        }
    }

    /// The network's answer in real units: (batchSize, outputs).
    public func outputs(of result: ForwardResult, request: PredictRequest) -> [Float] {
        var y = result.lastRows
        realUnits(&y, inputs: request.inputs, sequenceLength: request.sequenceLength)
        return y
    }

    /// Head outputs (batchSize, outputs) to real units: denormalized, then for outputs forecast
    /// as a change (`residual_of`) plus that input's raw value in the sample's last row.
    /// `inputs` are the raw inputs, (batchSize, sequenceLength, inputSize).
    public func realUnits(_ y: inout [Float], inputs: [Float], sequenceLength T: Int) {
        y.withUnsafeMutableBufferPointer { realUnits($0, inputs: inputs, sequenceLength: T) }
    }

    public func realUnits(_ y: UnsafeMutableBufferPointer<Float>, inputs: [Float], sequenceLength T: Int) {
        denormalize(y)
        let n = outputNames.count, inputSize = model.pipeline.inputSize
        guard n > 0, T > 0, residualInputs.contains(where: { $0 != nil }) else { return }
        for b in 0..<y.count / n {
            let last = (b * T + T - 1) * inputSize
            for (k, f) in residualInputs.enumerated() {
                if let f, last + f < inputs.count { y[b * n + k] += inputs[last + f] }
            }
        }
    }

    /// A session's step through `rows` (raw inputs, one per timestep) from `state`: each row
    /// normalized, stepped through the pipeline, and its output turned into real units. nil
    /// when an output or the state is not finite (then `state` must not be kept). `scratch`
    /// holds the normalized row, its buffer kept from call to call. Every protocol's
    /// session step runs this, so stepping means one thing everywhere.
    public func step(_ rows: [[Float]], state: inout RecurrentState, workspace: Workspace, scratch: inout [Float]) -> [[Float]]? {
        var outputs: [[Float]] = []
        outputs.reserveCapacity(rows.count)
        var finite = true
        for row in rows {
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: row)
            normalize(&scratch)
            model.pipeline.step(scratch, state: &state, workspace: workspace)
            var y = workspace.output
            realUnits(&y, inputs: row, sequenceLength: 1)
            finite = finite && y.allSatisfy(\.isFinite)
            outputs.append(y)
        }
        return finite && state.isFinite ? outputs : nil
    }

    /// Runs `request`; the workspace must be for this model and the request's batch size.
    public func run(_ request: PredictRequest, workspace: Workspace) -> ForwardResult {
        var x = request.inputs
        normalize(&x)
        let initial = request.initialState?.state(for: model.pipeline, batchSize: request.batchSize)
        return model.pipeline.forward(x, sequenceLength: request.sequenceLength, initialState: initial,
                                     returnSequences: request.returnSequences, workspace: workspace)
    }

    /// A class distribution's top class, from 0: the first of equal maxima, as argmax picks it.
    public static func topClass(_ y: ArraySlice<Float>) -> Int {
        var top = y.startIndex
        for k in y.indices where y[k] > y[top] { top = k }
        return top - y.startIndex
    }

    /// Every timestep's answer of a model that ends in a sequence, in real units:
    /// (batchSize, outputLength, outputs).
    public func sequenceOutputs(of result: ForwardResult, request: PredictRequest) -> [Float]? {
        guard let T = result.outputLength else { return nil }
        var y = result.output
        let n = outputNames.count, I = model.pipeline.inputSize, L = request.sequenceLength
        y.withUnsafeMutableBufferPointer { all in
            for b in 0..<request.batchSize {
                // every timestep of sample b takes its residuals from that sample's last row
                let inputs = Array(request.inputs[b * L * I..<(b + 1) * L * I])
                for t in 0..<T {
                    realUnits(UnsafeMutableBufferPointer(rebasing: all[(b * T + t) * n..<(b * T + t + 1) * n]), inputs: inputs, sequenceLength: L)
                }
            }
        }
        return y
    }
}
