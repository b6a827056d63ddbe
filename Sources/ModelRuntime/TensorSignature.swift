import ModelFormat
import RecurrentCore

/// A model's inputs and outputs as named tensors, the way tensor protocols (the Open Inference
/// Protocol) see it. Shapes lead with batch and time, -1 where any size goes.
///
/// - A model whose config names its features takes one (batch, time) tensor per observed
///   feature, in the config's order, plus a `BYTES` tensor `date` when it derives calendar
///   features: raw units, as the native API takes them.
/// - Any other model takes one tensor `input`: (batch, time) plus the row's shape (a number per
///   row is (batch, time); a frame is (batch, time, ...frame)), `INT64` token ids for a model
///   that starts with an Embedding.
/// - Outputs: `forecast` (batch, outputs) with `lower` and `upper` when the model has an
///   interval; a classifier's `probabilities`, `class` and `label` (the config's labels, or
///   the class index as text); `forecasts` (batch, time, outputs) for a model that ends in a sequence.
public struct TensorSignature: Sendable {
    public struct Tensor: Sendable, Equatable {
        public let name: String
        /// `FP32`, `INT64` or `BYTES`.
        public let datatype: String
        public let shape: [Int]
    }

    /// What an input carries.
    public enum Role: Sendable, Equatable {
        /// One observed feature: its column in each row is `column`.
        case feature(column: Int)
        /// Each row's ISO 8601 date, from which the derived features are computed.
        case date
        /// Whole rows, row-major.
        case rows
    }

    public let inputs: [Tensor]
    public let roles: [Role]
    public let outputs: [Tensor]
    /// The names of the `forecast` columns (or of the classes), in order.
    public let outputNames: [String]

    public init(predictor: Predictor) {
        let model = predictor.model, p = model.pipeline, config = model.config
        let T = config.windowLength ?? -1
        var inputs: [Tensor] = [], roles: [Role] = []
        if !config.features.isEmpty, p.inputShape.dims.count == 1 {
            for (column, f) in config.features.enumerated() where f.derived == nil {
                inputs.append(Tensor(name: f.name, datatype: "FP32", shape: [-1, T]))
                roles.append(.feature(column: column))
            }
            if config.features.contains(where: { $0.derived != nil }) {
                inputs.append(Tensor(name: "date", datatype: "BYTES", shape: [-1, T]))
                roles.append(.date)
            }
        } else {
            let row = p.inputShape.dims == [1] ? [] : p.inputShape.dims
            inputs.append(Tensor(name: "input", datatype: p.inputEmbedding == nil ? "FP32" : "INT64", shape: [-1, T] + row))
            roles.append(.rows)
        }
        self.inputs = inputs
        self.roles = roles
        let n = p.outputWidth
        outputNames = predictor.outputNames
        var outputs: [Tensor] = []
        if predictor.isClassifier {
            outputs.append(Tensor(name: "probabilities", datatype: "FP32", shape: [-1, n]))
            outputs.append(Tensor(name: "class", datatype: "INT64", shape: [-1]))
            outputs.append(Tensor(name: "label", datatype: "BYTES", shape: [-1]))
        } else {
            outputs.append(Tensor(name: "forecast", datatype: "FP32", shape: [-1, n]))
            if config.interval != nil {
                outputs.append(Tensor(name: "lower", datatype: "FP32", shape: [-1, n]))
                outputs.append(Tensor(name: "upper", datatype: "FP32", shape: [-1, n]))
            }
        }
        if p.outputShape.isSequence {
            outputs.append(Tensor(name: "forecasts", datatype: "FP32", shape: [-1, p.outputShape.length ?? -1, n]))
        }
        self.outputs = outputs
    }

    /// Checks the size of a window about to be filled from input tensors: `steps` timesteps of
    /// `batch` samples. Steps of a session (`whole` false) may be fewer than the model's window.
    public func checkWindow(model: Model, batch: Int, steps: Int, whole: Bool = true) throws(RuntimeError) {
        if whole, let expected = model.config.windowLength, steps != expected {
            throw .invalidInput("the inputs have \(steps) timesteps, model '\(model.name)' expects \(expected)")
        }
        guard steps > 0, batch > 0 else { throw .invalidInput("the inputs are empty; send at least one timestep") }
        if whole, let why = model.pipeline.refusal(sequenceLength: steps) { throw .invalidInput(why) }
    }

    /// Writes input k's numbers, (batch, time) for a feature or whole rows, into the window `x`
    /// (batch, time, row) in the model's row layout, checked as the native decoder checks them.
    public func place(_ k: Int, _ v: [Float], into x: inout [Float], model: Model) throws(RuntimeError) {
        if let bad = v.firstIndex(where: { !$0.isFinite }) {
            throw .invalidInput("input '\(inputs[k].name)' has a value that is not a finite number at index \(bad)")
        }
        switch roles[k] {
        case .rows:
            if let e = model.pipeline.inputEmbedding, let bad = v.firstIndex(where: { e.id($0) == nil }) {
                throw .invalidInput("input 'input'[\(bad)] is \(v[bad]); model '\(model.name)' takes token ids, integers from 0 to \(e.count - 1)")
            }
            x.replaceSubrange(0..<v.count, with: v)
        case let .feature(column):
            let width = model.pipeline.inputSize
            for i in v.indices { x[i * width + column] = v[i] }
        case .date:
            break
        }
    }

    /// Writes the features derived from element i's date (UTF-8 `YYYY-MM-DD`) into `x`.
    public func placeDate(_ i: Int, utf8 text: UnsafeBufferPointer<UInt8>, into x: inout [Float], model: Model) throws(RuntimeError) {
        guard let day = CalendarFeatures.dayOfYear(utf8: text) else {
            throw .invalidInput("input 'date'[\(i)] '\(String(decoding: text, as: UTF8.self))' is not an ISO 8601 date (YYYY-MM-DD)")
        }
        let width = model.pipeline.inputSize
        for (column, f) in model.config.features.enumerated() {
            guard let derivation = f.derived else { continue }
            x[i * width + column] = CalendarFeatures.value(derivation, dayOfYear: day)
        }
    }
}
