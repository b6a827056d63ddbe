import JSON
import ModelFormat
import RecurrentCore

/// Runs a model on requests in raw units: normalizes inputs, runs the network, and turns the
/// head's output back into real units with names, units and the prediction interval.
public struct Predictor: Sendable {
    public let model: Model
    /// Output names: the config's, or y0, y1, ...
    public let outputNames: [String]
    /// `"units"` of every answer, when the config gives any.
    private let units: JSON?

    public init(model: Model) {
        self.model = model
        let n = model.network.headOutputSize ?? model.network.outputWidth
        outputNames = model.config.outputs.isEmpty ? (0..<n).map { "y\($0)" } : model.config.outputs.map(\.name)
        let units = model.config.outputs.compactMap { o in o.unit.map { (o.name, JSON.string($0)) } }
        self.units = units.isEmpty ? nil : .object(units)
    }

    /// x' = (x − mean) / std, feature by feature, in place.
    public func normalize(_ x: inout [Float]) {
        let mean = model.config.inputMean, std = model.config.inputStd
        guard mean != nil || std != nil else { return }
        let n = model.network.inputSize
        for k in x.indices {
            let f = k % n
            x[k] = (x[k] - (mean?[f] ?? 0)) / (std?[f] ?? 1)
        }
    }

    /// y = y' · std + mean per output, in place.
    public func denormalize(_ y: inout [Float]) {
        let mean = model.config.outputMean, std = model.config.outputStd
        guard mean != nil || std != nil, !y.isEmpty else { return }
        let n = outputNames.count
        for k in y.indices {
            let o = k % n
            y[k] = y[k] * (std?[o] ?? 1) + (mean?[o] ?? 0)
        }
    }

    /// The network's answer in real units: (batchSize, outputs).
    public func outputs(of result: ForwardResult) -> [Float] {
        var y = model.network.headOutputSize == nil ? result.lastOutput : result.head
        denormalize(&y)
        return y
    }

    /// Runs `request`; the workspace must be for this model and the request's batch size.
    public func run(_ request: PredictRequest, workspace: Workspace) -> ForwardResult {
        var x = request.inputs
        normalize(&x)
        let initial = request.initialState?.state(for: model.network, batchSize: request.batchSize)
        return model.network.forward(x, sequenceLength: request.sequenceLength, initialState: initial,
                                     returnSequences: request.returnSequences, workspace: workspace)
    }

    /// `{"forecast": {name: value}, "units": ..., "interval": ...}` for one sample of `y`.
    public func forecast(_ y: ArraySlice<Float>) -> [(String, JSON)] {
        let names = outputNames
        let values = Array(y)
        var members: [(String, JSON)] = [("forecast", .object(zip(names, values).map { ($0, .float($1)) }))]
        if let units { members.append(("units", units)) }
        if let interval = model.config.interval {
            members.append(("interval", .object([
                ("level", .double(interval.level)),
                ("lower", .object(names.indices.map { (names[$0], .float(values[$0] + interval.lower[$0])) })),
                ("upper", .object(names.indices.map { (names[$0], .float(values[$0] + interval.upper[$0])) })),
            ])))
        }
        return members
    }

    /// The whole answer to a predict request.
    public func response(to request: PredictRequest, result: ForwardResult) -> JSON {
        let y = outputs(of: result)
        let n = outputNames.count
        let W = model.network.outputWidth, T = request.sequenceLength
        func sample(_ b: Int) -> [(String, JSON)] {
            var members = forecast(y[b * n..<(b + 1) * n])
            if request.returnSequences {
                members.append(("sequence", .array((0..<T).map { t in
                    .floats(result.sequence[(b * T + t) * W..<(b * T + t + 1) * W])
                })))
            }
            if request.returnState { members.append(("state", StateInput(result.state, sample: b).json)) }
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
