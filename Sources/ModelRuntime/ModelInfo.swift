import Foundation
import ModelFormat
import RecurrentCore

/// What `inspect` prints and `GET /v1/models/{name}` answers: the architecture with parameter
/// counts per layer, inputs, outputs, normalization and the weights' fingerprint.
public enum ModelInfo {
    /// A human-readable summary, one line per layer.
    public static func text(_ model: Model) -> String {
        let net = model.pipeline
        var lines = ["model \(model.name)  (\(model.weightsPath), sha256 \(model.weightsSHA256.prefix(16))…)"]
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(1, n - s.count)) }
        lines.append(pad("layer", 22) + pad("kind", 26) + pad("output", 16) + "parameters")
        lines.append(pad("input", 22) + pad("", 26) + net.inputShape.description)
        for (k, layer) in net.layers.enumerated() {
            var kind = layer.kindName
            if case let .recurrent(r) = layer {
                let cell = r.directions[0]
                kind += r.projectionSize > 0 ? " \(r.hiddenSize)→\(r.projectionSize)" : " \(r.hiddenSize)"
                if !cell.usesDefaultActivations { kind += " \(cell.activation)/\(cell.recurrentActivation)" }
            } else if case let .dense(d) = layer, d.activation != .linear {
                kind += " \(d.activation)"
            }
            lines.append(pad(net.names[k], 22) + pad(kind, 26) + pad(net.shapes[k].description, 16) + "\(layer.parameterCount)")
        }
        let recurrent = net.recurrentLayers.reduce(0) { $0 + $1.parameterCount }
        lines.append("parameters: recurrent \(recurrent), other \(net.parameterCount - recurrent), total \(net.parameterCount)")
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
        if let k = net.firstNonCausalLayer { lines.append("streaming: no (\(k.name), \(k.kind), needs the whole window)") }
        return lines.joined(separator: "\n")
    }
}
