import FrontEnd
import HTTPServer
import JSON
import ModelRuntime

/// Writes one model's V2 infer answers: each selected output as JSON `data`, or described in
/// the JSON header with its bytes after it (binary tensor data). The common answer (one
/// sample, every output in order, all JSON or all binary) has its JSON made once: a template
/// whose slots are the values, or a header that never changes.
public final class V2Answers: Sendable {
    let entry: ModelRegistry.Entry
    private let template: JSONTemplate.Pool?
    private let binaryHeader: [UInt8]?
    /// Every output in order, as JSON or as binary: what a request without `outputs` selects.
    let everyJSON: [(Int, Bool)], everyBinary: [(Int, Bool)]

    /// An output's values for the answer.
    enum Values {
        case floats([Float]), ints([Int]), strings([String])
        /// `values[i] + offsets[i % offsets.count]`: an interval bound, summed as it is written.
        case shifted([Float], offsets: [Float])

        /// Every case but `shifted`, which becomes `floats`.
        var materialized: Values {
            guard case let .shifted(v, o) = self else { return self }
            return .floats(v.indices.map { v[$0] + o[$0 % o.count] })
        }
    }

    public init(_ entry: ModelRegistry.Entry) {
        self.entry = entry
        let outputs = entry.signature.outputs
        everyJSON = outputs.indices.map { ($0, false) }
        everyBinary = outputs.indices.map { ($0, true) }
        // one sample's shapes; nil when a size is only known per request
        let shapes = outputs.map { $0.shape.dropFirst().allSatisfy { $0 > 0 } ? [1] + $0.shape.dropFirst() : nil }
        guard shapes.allSatisfy({ $0 != nil }) else {
            (template, binaryHeader) = (nil, nil)
            return
        }
        func tensor(_ k: Int, _ extra: (String, JSON)) -> JSON {
            .object([("name", .string(outputs[k].name)), ("datatype", .string(outputs[k].datatype)),
                      ("shape", .array(shapes[k]!.map { .int($0) })), extra])
        }
        func top(_ tensors: [JSON]) -> JSON {
            .object([("model_name", .string(entry.model.name)), ("model_version", .string(String(entry.version))), ("outputs", .array(tensors))])
        }
        var slots: [[String]] = []
        var tensors: [JSON] = []
        for (k, o) in outputs.enumerated() {
            let count = shapes[k]!.reduce(1, *)
            let zero: JSON = o.datatype == "FP32" ? .float(0) : o.datatype == "INT64" ? .int(0) : .string("")
            tensors.append(tensor(k, ("data", .array(Array(repeating: zero, count: count)))))
            slots += (0..<count).map { ["outputs", String(k), "data", String($0)] }
        }
        template = try? JSONTemplate.Pool(top(tensors), slots: slots)
        if outputs.contains(where: { $0.datatype == "BYTES" }) {
            binaryHeader = nil  // a label's length changes with the class
        } else {
            let sized = outputs.indices.map { k in
                tensor(k, ("parameters", .object([("binary_data_size", .int(shapes[k]!.reduce(1, *) * (outputs[k].datatype == "INT64" ? 8 : 4)))])))
            }
            binaryHeader = try? top(sized).serializedBytes()
        }
    }

    /// `y`: (batch, outputs) in real units; `every`: (batch, length, outputs) for a model that
    /// ends in a sequence.
    func write(_ r: V2InferRequest, _ selected: [(Int, Bool)], batch: Int, y: [Float], every: [Float]?, length: Int) throws(APIError) -> HTTPResponse {
        if y.contains(where: { !$0.isFinite }) || every?.contains(where: { !$0.isFinite }) == true {
            throw APIError(.unprocessable, "the model's output is not a finite number for this input")
        }
        let outputs = entry.signature.outputs
        let common = batch == 1 && r.id == nil && selected.count == outputs.count && selected.indices.allSatisfy { selected[$0].0 == $0 }
        let binary = selected.first?.1 ?? false
        if common, selected.allSatisfy({ $0.1 == binary }) {
            if binary, let header = binaryHeader {
                var body = header
                for k in outputs.indices { Self.append(values(k, batch, y, every), to: &body) }
                return Self.binaryResponse(body, headerLength: header.count)
            }
            if !binary, let template {
                let written = try? template.withTemplate { t throws(JSONError) -> [UInt8] in
                    var slot = 0
                    for k in outputs.indices {
                        switch values(k, batch, y, every) {
                        case let .floats(v): for x in v { t.set(slot, float: x); slot += 1 }
                        case let .shifted(v, o): for i in v.indices { t.set(slot, float: v[i] + o[i % o.count]); slot += 1 }
                        case let .ints(v): for x in v { t.set(slot, int: x); slot += 1 }
                        case let .strings(v): for x in v { t.set(slot, string: x); slot += 1 }
                        }
                    }
                    return try t.serializedBytes()
                }
                if let written { return HTTPResponse(status: 200, headers: OpenInference.jsonHeaders, body: written) }
            }
        }
        var tensors: [JSON] = []
        var blob: [UInt8] = []
        for (k, asBinary) in selected {
            let v = values(k, batch, y, every), shape = self.shape(k, batch, length)
            var members: [(String, JSON)] = [("name", .string(outputs[k].name)), ("datatype", .string(outputs[k].datatype)),
                                             ("shape", .array(shape.map { .int($0) }))]
            if asBinary {
                let before = blob.count
                Self.append(v, to: &blob)
                members.append(("parameters", .object([("binary_data_size", .int(blob.count - before))])))
            } else {
                switch v.materialized {
                case .shifted: break  // materialized
                case let .floats(f): members.append(("data", .floats(f)))
                case let .ints(i): members.append(("data", .array(i.map { .int($0) })))
                case let .strings(s): members.append(("data", .array(s.map { .string($0) })))
                }
            }
            tensors.append(.object(members))
        }
        var top: [(String, JSON)] = [("model_name", .string(entry.model.name)), ("model_version", .string(String(entry.version)))]
        if let id = r.id { top.append(("id", .string(id))) }
        top.append(("outputs", .array(tensors)))
        let header: [UInt8]
        do { header = try JSON.object(top).serializedBytes() } catch { throw APIError(.unprocessable, "the answer cannot be written as JSON (\(error))") }
        guard selected.contains(where: \.1) else { return HTTPResponse(status: 200, headers: OpenInference.jsonHeaders, body: header) }
        return Self.binaryResponse(header + blob, headerLength: header.count)
    }

    /// Output k's values.
    private func values(_ k: Int, _ batch: Int, _ y: [Float], _ every: [Float]?) -> Values {
        let n = entry.model.pipeline.outputWidth
        var classes: [Int] { (0..<batch).map { Predictor.topClass(y[$0 * n..<($0 + 1) * n]) } }
        switch entry.signature.outputs[k].name {
        case "lower", "upper":
            let interval = entry.model.config.interval!
            let offsets = entry.signature.outputs[k].name == "lower" ? interval.lower : interval.upper
            return .shifted(y, offsets: offsets)
        case "class": return .ints(classes)
        case "label": return .strings(classes.map { entry.predictor.outputNames[$0] })
        case "forecasts": return .floats(every ?? [])
        default: return .floats(y)  // forecast, probabilities
        }
    }

    /// Output k's shape in this answer.
    private func shape(_ k: Int, _ batch: Int, _ length: Int) -> [Int] {
        let n = entry.model.pipeline.outputWidth
        switch entry.signature.outputs[k].name {
        case "class", "label": return [batch]
        case "forecasts": return [batch, length, n]
        default: return [batch, n]
        }
    }

    /// Values as the binary extension sends them: little-endian, a BYTES element as its
    /// 4-byte length and its bytes.
    private static func append(_ values: Values, to bytes: inout [UInt8]) {
        func put<T: FixedWidthInteger>(_ v: T) {
            for k in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * k))) }
        }
        switch values.materialized {
        case .shifted: break  // materialized
        case let .floats(v): for x in v { put(x.bitPattern) }
        case let .ints(v): for x in v { put(UInt64(bitPattern: Int64(x))) }
        case let .strings(v):
            for s in v {
                put(UInt32(s.utf8.count))
                bytes.append(contentsOf: s.utf8)
            }
        }
    }

    private static func binaryResponse(_ body: [UInt8], headerLength: Int) -> HTTPResponse {
        HTTPResponse(status: 200, headers: [("Content-Type", "application/octet-stream"), ("Inference-Header-Content-Length", String(headerLength))], body: body)
    }
}
