import Foundation
import JSON
import ModelFormat
import ModelRuntime
import RecurrentCore

extension ModelInfo {
    public static func json(_ model: Model, loadedAt: String? = nil) -> JSON {
        let net = model.pipeline
        let c = model.config
        let layers: [JSON] = net.recurrentLayers.enumerated().map { k, layer in
            var m: [(String, JSON)] = [
                ("layer", .int(k)), ("cell", .string(layer.kind.description)),
                ("input_size", .int(layer.inputSize)), ("hidden_size", .int(layer.hiddenSize)),
            ]
            if layer.projectionSize > 0 { m.append(("proj_size", .int(layer.projectionSize))) }
            m += [("directions", .int(layer.directions.count)), ("output_size", .int(layer.outputWidth)),
                  ("parameters", .int(layer.parameterCount))]
            let cell = layer.directions[0]
            if !cell.usesDefaultActivations {
                m += [("activation", .string(cell.activation.rawValue)), ("recurrent_activation", .string(cell.recurrentActivation.rawValue))]
            }
            if layer.isBidirectional { m.append(("merge_mode", .string(layer.merge.rawValue))) }
            return .object(m)
        }
        let head: [JSON] = net.layers.compactMap {
            guard case let .dense(d) = $0 else { return nil }
            return .object([("type", .string("dense")), ("input_size", .int(d.inputSize)), ("output_size", .int(d.outputSize)),
                            ("activation", .string(d.activation.rawValue)), ("parameters", .int(d.parameterCount))])
        }
        let pipeline: [JSON] = net.layers.indices.map { k in
            .object([("name", .string(net.names[k])), ("kind", .string(net.layers[k].kindName)),
                     ("output_shape", .string(net.shapes[k].description)), ("parameters", .int(net.layers[k].parameterCount))])
        }
        let recurrentParameters = net.recurrentLayers.reduce(0) { $0 + $1.parameterCount }
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
                ("cell", .string(net.recurrentLayers.first.map { $0.kind.description } ?? "none")),
                ("layers", .int(net.recurrentLayers.count)),
                ("bidirectional", .bool(net.isBidirectional)),
                ("streamable", .bool(net.isStreamable)),
            ])),
            ("pipeline", .array(pipeline)),
            ("recurrent_layers", .array(layers)),
            ("head", .array(head)),
            ("parameters", .object([("recurrent", .int(recurrentParameters)), ("head", .int(net.parameterCount - recurrentParameters)),
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
}
