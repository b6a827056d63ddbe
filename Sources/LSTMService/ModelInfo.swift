import Foundation
import JSON
import ModelFormat
import RecurrentCore

/// What `inspect` prints and `GET /v1/models/{name}` answers: the architecture with parameter
/// counts per layer, inputs, outputs, normalization and the weights' fingerprint.
public enum ModelInfo {
    public static func json(_ model: Model, loadedAt: String? = nil) -> JSON {
        let net = model.network
        let c = model.config
        let layers: [JSON] = net.layers.enumerated().map { k, layer in
            var m: [(String, JSON)] = [
                ("layer", .int(k)), ("cell", .string(layer.kind.description)),
                ("input_size", .int(layer.inputSize)), ("hidden_size", .int(layer.hiddenSize)),
            ]
            if layer.projectionSize > 0 { m.append(("proj_size", .int(layer.projectionSize))) }
            m += [("directions", .int(layer.directions.count)), ("output_size", .int(layer.outputWidth)),
                  ("parameters", .int(layer.parameterCount))]
            return .object(m)
        }
        let head: [JSON] = net.head.map {
            .object([("type", .string("dense")), ("input_size", .int($0.inputSize)), ("output_size", .int($0.outputSize)),
                     ("activation", .string($0.activation.rawValue)), ("parameters", .int($0.parameterCount))])
        }
        let features: [JSON] = c.features.map { f in
            var m: [(String, JSON)] = [("name", .string(f.name))]
            if let u = f.unit { m.append(("unit", .string(u))) }
            if let d = f.derived { m.append(("derived", .string(d.rawValue))) }
            return .object(m)
        }
        let outputs: [JSON] = Predictor(model: model).outputNames.enumerated().map { k, name in
            var m: [(String, JSON)] = [("name", .string(name))]
            if k < c.outputs.count, let u = c.outputs[k].unit { m.append(("unit", .string(u))) }
            if k < c.outputs.count, let r = c.outputs[k].residualOf { m.append(("residual_of", .string(r))) }
            return .object(m)
        }
        var normalization: [(String, JSON)] = []
        for (key, v) in [("input_mean", c.inputMean), ("input_std", c.inputStd), ("output_mean", c.outputMean), ("output_std", c.outputStd)] {
            if let v { normalization.append((key, .floats(v))) }
        }
        var members: [(String, JSON)] = [
            ("name", .string(model.name)),
            ("architecture", .object([
                ("cell", .string(net.layers[0].kind.description)),
                ("layers", .int(net.layers.count)),
                ("bidirectional", .bool(net.isBidirectional)),
                ("streamable", .bool(!net.isBidirectional)),
            ])),
            ("recurrent_layers", .array(layers)),
            ("head", .array(head)),
            ("parameters", .object([("recurrent", .int(net.recurrentParameterCount)), ("head", .int(net.headParameterCount)),
                                    ("total", .int(net.parameterCount))])),
            ("inputs", .object([("window", c.windowLength.map { .int($0) } ?? .null),
                                ("size", .int(net.inputSize)), ("features", .array(features))])),
            ("outputs", .array(outputs)),
            ("normalization", .object(normalization)),
        ]
        if let i = c.interval { members.append(("interval", .object([("level", .double(i.level))]))) }
        if let d = c.description { members.append(("description", .string(d))) }
        if !c.source.isEmpty { members.append(("source", .object(c.source.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))) }
        members.append(("weights", .object([("file", .string(URL(fileURLWithPath: model.weightsPath).lastPathComponent)), ("sha256", .string(model.weightsSHA256)),
                                            ("bytes", .int(model.weightsByteCount))])))
        if let loadedAt { members.append(("loaded_at", .string(loadedAt))) }
        return .object(members)
    }

    /// A human-readable summary, one line per layer.
    public static func text(_ model: Model) -> String {
        let net = model.network
        var lines = ["model \(model.name)  (\(model.weightsPath), sha256 \(model.weightsSHA256.prefix(16))…)"]
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(1, n - s.count)) }
        lines.append(pad("layer", 8) + pad("kind", 18) + pad("input", 8) + pad("hidden", 8) + pad("dirs", 6) + pad("output", 8) + "parameters")
        for (k, l) in net.layers.enumerated() {
            let hidden = l.projectionSize > 0 ? "\(l.hiddenSize)→\(l.projectionSize)" : "\(l.hiddenSize)"
            lines.append(pad("\(k)", 8) + pad(l.kind.description, 18) + pad("\(l.inputSize)", 8) + pad(hidden, 8)
                         + pad("\(l.directions.count)", 6) + pad("\(l.outputWidth)", 8) + "\(l.parameterCount)")
        }
        for (k, d) in net.head.enumerated() {
            lines.append(pad("head.\(k)", 8) + pad("dense/\(d.activation.rawValue)", 18) + pad("\(d.inputSize)", 8) + pad("", 8)
                         + pad("", 6) + pad("\(d.outputSize)", 8) + "\(d.parameterCount)")
        }
        lines.append("parameters: recurrent \(net.recurrentParameterCount), head \(net.headParameterCount), total \(net.parameterCount)")
        let c = model.config
        let features = c.features.isEmpty ? "\(net.inputSize) unnamed" : c.features.map { f in
            f.name + (f.unit.map { " [\($0)]" } ?? "") + (f.derived.map { " (from date: \($0.rawValue))" } ?? "")
        }.joined(separator: ", ")
        lines.append("inputs: window \(c.windowLength.map(String.init) ?? "any") × \(features)")
        let outputs = Predictor(model: model).outputNames.enumerated().map { k, n in
            n + (k < c.outputs.count ? c.outputs[k].unit.map { " [\($0)]" } ?? "" : "")
                + (k < c.outputs.count ? c.outputs[k].residualOf.map { " (change from the last \($0))" } ?? "" : "")
        }
        lines.append("outputs: \(outputs.joined(separator: ", "))")
        if c.inputMean != nil || c.outputMean != nil { lines.append("normalization: built in (inputs and outputs in real units)") }
        if net.isBidirectional { lines.append("streaming: no (bidirectional)") }
        return lines.joined(separator: "\n")
    }
}
