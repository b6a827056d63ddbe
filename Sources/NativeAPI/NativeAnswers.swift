import JSON
import ModelFormat
import ModelRuntime
import RecurrentCore

/// A model version's answers in the native wire format: `{"model", "forecast": {name: value},
/// "units", "interval"}` (or a classifier's probabilities, class and label), per window, per
/// step and per timestep, in real units.
public final class NativeAnswers: Sendable {
    public let predictor: Predictor
    /// `"units"` of every answer, when the config gives any.
    let units: JSON?
    /// The two answers every request without options gets, as reusable jansson trees: one
    /// window's forecast, and one step's (the same after session id, model and step). nil
    /// when output names repeat (then the general path writes them).
    let forecastAnswer: JSONTemplate.Pool?
    let stepAnswer: JSONTemplate.Pool?

    public init(_ predictor: Predictor) {
        self.predictor = predictor
        let n = predictor.model.pipeline.outputWidth
        let names = predictor.outputNames
        let unitList = predictor.model.config.outputs.compactMap { o in o.unit.map { (o.name, JSON.string($0)) } }
        units = unitList.isEmpty ? nil : .object(unitList)
        // Slots: each output's forecast, then (with an interval) each lower bound, each upper.
        var slots = names.map { ["forecast", $0] }
        if predictor.model.config.interval != nil { slots += names.map { ["interval", "lower", $0] } + names.map { ["interval", "upper", $0] } }
        let zeros = [Float](repeating: 0, count: n)
        if Set(names).count == names.count, !predictor.isClassifier {
            let shape = Self.forecast(names: names, units: units, interval: predictor.model.config.interval, zeros[...])
            forecastAnswer = try? JSONTemplate.Pool(.object([("model", .string(predictor.model.name))] + shape), slots: slots)
            stepAnswer = try? JSONTemplate.Pool(.object([("session_id", .string("")), ("model", .string(predictor.model.name)), ("step", .int(0))] + shape),
                                                slots: [["session_id"], ["step"]] + slots)
        } else {
            (forecastAnswer, stepAnswer) = (nil, nil)
        }
    }

    /// `{"forecast": {name: value}, "units": ..., "interval": ...}` for one sample of `y`.
    public func forecast(_ y: ArraySlice<Float>) -> [(String, JSON)] {
        guard predictor.isClassifier else { return Self.forecast(names: predictor.outputNames, units: units, interval: predictor.model.config.interval, y) }
        let top = Predictor.topClass(y)
        var members: [(String, JSON)] = [("probabilities", .object(zip(predictor.outputNames, y).map { ($0, .float($1)) })),
                                         ("class", .int(top))]
        members.append(("label", .string(predictor.outputNames[top])))  // the config's labels, or the class index as text
        return members
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
        if let interval = predictor.model.config.interval {
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
            predictor.realUnits(y, inputs: request.inputs, sequenceLength: request.sequenceLength)
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
        let y = predictor.outputs(of: result, request: request)
        let n = predictor.outputNames.count
        // the tapped layer's own length: convolution or pooling over time may have shortened it
        let W = predictor.model.pipeline.sequenceWidth, T = result.sequenceLength
        let every = predictor.sequenceOutputs(of: result, request: request), steps = result.outputLength ?? 0
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
            if request.returnState { members.append(("state", StateInput(result.state, sample: b).json(for: predictor.model.pipeline))) }
            return members
        }
        var top: [(String, JSON)] = [("model", .string(predictor.model.name))]
        if request.isBatch {
            top.append(("predictions", .array((0..<request.batchSize).map { .object(sample($0)) })))
        } else {
            top += sample(0)
        }
        return .object(top)
    }
}
