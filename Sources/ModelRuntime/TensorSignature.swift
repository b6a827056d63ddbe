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
///   interval; a classifier's `probabilities`, `class` (and `label` when the config names
///   labels); `forecasts` (batch, time, outputs) for a model that ends in a sequence.
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
            if config.labels != nil { outputs.append(Tensor(name: "label", datatype: "BYTES", shape: [-1])) }
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

    /// The values (batch, time) of each row's columns, from decoded input tensors: `values[k]`
    /// holds input k's numbers (nil for `date`), `dates` the date strings. Returns the window
    /// in the model's row layout, every value checked as the native decoder checks it. Steps
    /// of a session (`whole` false) may be fewer than the model's window.
    public func window(model: Model, values: [[Float]?], dates: [String]?, batch: Int, steps: Int, whole: Bool = true) throws(RuntimeError) -> [Float] {
        let p = model.pipeline, features = model.config.features, width = p.inputSize
        if whole, let expected = model.config.windowLength, steps != expected {
            throw .invalidInput("the inputs have \(steps) timesteps, model '\(model.name)' expects \(expected)")
        }
        guard steps > 0, batch > 0 else { throw .invalidInput("the inputs are empty; send at least one timestep") }
        if whole, let why = p.refusal(sequenceLength: steps) { throw .invalidInput(why) }
        for (k, v) in values.enumerated() {
            if let v, let bad = v.firstIndex(where: { !$0.isFinite }) {
                throw .invalidInput("input '\(inputs[k].name)' has a value that is not a finite number at index \(bad)")
            }
        }
        if roles == [.rows] {
            let x = values[0]!
            if let e = p.inputEmbedding, let bad = x.firstIndex(where: { e.id($0) == nil }) {
                throw .invalidInput("input 'input'[\(bad)] is \(x[bad]); model '\(model.name)' takes token ids, integers from 0 to \(e.count - 1)")
            }
            return x
        }
        var days: [Int] = []
        if let dates {
            days.reserveCapacity(dates.count)
            for (k, text) in dates.enumerated() {
                guard let d = CalendarFeatures.dayOfYear(text) else {
                    throw .invalidInput("input 'date'[\(k)] '\(text)' is not an ISO 8601 date (YYYY-MM-DD)")
                }
                days.append(d)
            }
        }
        var x = [Float](repeating: 0, count: batch * steps * width)
        for (k, role) in roles.enumerated() {
            guard case let .feature(column) = role, let v = values[k] else { continue }
            for i in 0..<batch * steps { x[i * width + column] = v[i] }
        }
        for (column, f) in features.enumerated() {
            guard let derivation = f.derived else { continue }
            for i in 0..<batch * steps { x[i * width + column] = CalendarFeatures.value(derivation, dayOfYear: days[i]) }
        }
        return x
    }
}
