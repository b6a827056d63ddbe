import JSON
import ModelFormat
import RecurrentCore

/// Runs a model on requests in raw units: normalizes inputs, runs the pipeline, and turns the
/// head's output back into real units with names, units and the prediction interval.
public struct Predictor: Sendable {
    public let model: Model
    /// Output names: the config's, or y0, y1, ...
    public let outputNames: [String]
    /// `"units"` of every answer, when the config gives any.
    private let units: JSON?
    /// The two answers every request without options gets, as reusable jansson trees: one
    /// window's forecast, and one step's (the same after session id, model and step). nil
    /// when output names repeat (then the general path writes them).
    let forecastAnswer: JSONTemplate.Pool?
    let stepAnswer: JSONTemplate.Pool?
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
        let units = model.config.outputs.compactMap { o in o.unit.map { (o.name, JSON.string($0)) } }
        self.units = units.isEmpty ? nil : .object(units)
        // Slots: each output's forecast, then (with an interval) each lower bound, each upper.
        var slots = names.map { ["forecast", $0] }
        if model.config.interval != nil { slots += names.map { ["interval", "lower", $0] } + names.map { ["interval", "upper", $0] } }
        let zeros = [Float](repeating: 0, count: n)
        if Set(names).count == names.count, !isClassifier {
            let shape = Self.forecast(names: names, units: self.units, interval: model.config.interval, zeros[...])
            forecastAnswer = try? JSONTemplate.Pool(.object([("model", .string(model.name))] + shape), slots: slots)
            stepAnswer = try? JSONTemplate.Pool(.object([("session_id", .string("")), ("model", .string(model.name)), ("step", .int(0))] + shape),
                                                slots: [["session_id"], ["step"]] + slots)
        } else {
            (forecastAnswer, stepAnswer) = (nil, nil)
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

    private func realUnits(_ y: UnsafeMutableBufferPointer<Float>, inputs: [Float], sequenceLength T: Int) {
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

    /// `{"forecast": {name: value}, "units": ..., "interval": ...}` for one sample of `y`.
    public func forecast(_ y: ArraySlice<Float>) -> [(String, JSON)] {
        guard isClassifier else { return Self.forecast(names: outputNames, units: units, interval: model.config.interval, y) }
        let top = Self.topClass(y)
        var members: [(String, JSON)] = [("probabilities", .object(zip(outputNames, y).map { ($0, .float($1)) })),
                                         ("class", .int(top))]
        members.append(("label", .string(outputNames[top])))  // the config's labels, or the class index as text
        return members
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

    private static func forecast(names: [String], units: JSON?, interval: ModelConfig.Interval?, _ y: ArraySlice<Float>) -> [(String, JSON)] {
        let values = Array(y)
        var members: [(String, JSON)] = [("forecast", .object(zip(names, values).map { ($0, .float($1)) }))]
        if let units { members.append(("units", units)) }
        if let interval {
            members.append(("interval", .object([
                ("level", .double(interval.level)),
                ("lower", .object(names.indices.map { (names[$0], .float(values[$0] + interval.lower[$0])) })),
                ("upper", .object(names.indices.map { (names[$0], .float(values[$0] + interval.upper[$0])) })),
            ])))
        }
        return members
    }

    /// Fills a template's forecast slots, from `first` on, with one sample `y` (real units).
    func fill(_ template: JSONTemplate, from first: Int, _ y: UnsafeBufferPointer<Float>) {
        let n = y.count
        for k in 0..<n { template.set(first + k, float: y[k]) }
        if let interval = model.config.interval {
            for k in 0..<n {
                template.set(first + n + k, float: y[k] + interval.lower[k])
                template.set(first + 2 * n + k, float: y[k] + interval.upper[k])
            }
        }
    }

    /// The answer to a one-window request without options, written through the template; nil
    /// for any other request (batches, sequences, state), which `response` writes.
    public func answerBytes(to request: PredictRequest, result: ForwardResult) throws(JSONError) -> [UInt8]? {
        guard let forecastAnswer, !request.isBatch, !request.returnSequences, !request.returnState, result.outputLength == nil else { return nil }
        // outputs(of:) in a stack buffer: the result's array is shared, so changing it in place
        // would copy it
        let raw = result.lastRows
        return try withUnsafeTemporaryAllocation(of: Float.self, capacity: raw.count) { y throws(JSONError) in
            _ = y.initialize(fromContentsOf: raw)
            realUnits(y, inputs: request.inputs, sequenceLength: request.sequenceLength)
            return try forecastAnswer.withTemplate { t throws(JSONError) in
                fill(t, from: 0, UnsafeBufferPointer(y))
                return try t.serializedBytes()
            }
        }
    }

    /// One step's answer for session `id`, through the template.
    public func stepAnswerBytes(id: String, step: Int, y: [Float]) throws(JSONError) -> [UInt8]? {
        guard let stepAnswer else { return nil }
        return try stepAnswer.withTemplate { t throws(JSONError) in
            t.set(0, string: id)
            t.set(1, int: step)
            y.withUnsafeBufferPointer { fill(t, from: 2, $0) }
            return try t.serializedBytes()
        }
    }

    /// The whole answer to a predict request.
    public func response(to request: PredictRequest, result: ForwardResult) -> JSON {
        let y = outputs(of: result, request: request)
        let n = outputNames.count
        // the tapped layer's own length: convolution or pooling over time may have shortened it
        let W = model.pipeline.sequenceWidth, T = result.sequenceLength
        let every = sequenceOutputs(of: result, request: request), steps = result.outputLength ?? 0
        func sample(_ b: Int) -> [(String, JSON)] {
            var members = forecast(y[b * n..<(b + 1) * n])
            if let every {
                // a model that ends in a sequence: every timestep's answer; `forecast` is the last
                members.append(("forecasts", .array((0..<steps).map { t in .object(forecast(every[(b * steps + t) * n..<(b * steps + t + 1) * n])) })))
            }
            if request.returnSequences {
                members.append(("sequence", .array((0..<T).map { t in
                    .floats(result.sequence[(b * T + t) * W..<(b * T + t + 1) * W])
                })))
            }
            if request.returnState { members.append(("state", StateInput(result.state, sample: b).json(for: model.pipeline))) }
            return members
        }
        var top: [(String, JSON)] = [("model", .string(model.name))]
        if request.isBatch {
            top.append(("predictions", .array((0..<request.batchSize).map { .object(sample($0)) })))
        } else {
            top += sample(0)
        }
        return .object(top)
    }
}
