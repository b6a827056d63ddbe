import HTTPServer
import JSON
import ModelRuntime
import RecurrentCore

/// `POST /v2/models/{name}/infer`: a batch of windows through predict's path, or, with a
/// `sequence_id`, timesteps through a server-held session (Triton's sequence extension).
extension Service {
    func v2Infer(_ request: HTTPRequest, _ entry: ModelRegistry.Entry, _ registry: ModelRegistry) throws(APIError) -> HTTPHandlerResult {
        let start = InferenceStatistics.now()
        let stats = entry.statistics
        do throws(APIError) {
            if let type = request.contentType, !Self.isJSONMediaType(type), !type.lowercased().hasPrefix("application/octet-stream") {
                throw APIError(.unsupportedMediaType, "Content-Type '\(type)' is neither JSON nor application/octet-stream (binary tensor data)")
            }
            let parsed = try V2InferRequest.parse(request.body, headerLength: request.header("inference-header-content-length"))
            let (x, batch, steps) = try v2Window(parsed, entry)
            let selected = try v2Selected(parsed, entry)
            if let id = parsed.sequenceID {
                return try v2Sequence(parsed, id, entry, registry, x: x, batch: batch, steps: steps, selected: selected, start: start)
            }
            guard batch <= configuration.maxBatch else {
                throw APIError(.unprocessable, "the inputs hold \(batch) windows; the limit is \(configuration.maxBatch) per request")
            }
            let decoded = InferenceStatistics.now()
            let predict = PredictRequest(inputs: x, batchSize: batch, sequenceLength: steps, isBatch: true)
            let result = registry.withWorkspace(entry, batchSize: batch) { entry.predictor.run(predict, workspace: $0) }
            let ran = InferenceStatistics.now()
            let y = entry.predictor.outputs(of: result, request: predict)
            let every = entry.predictor.sequenceOutputs(of: result, request: predict)
            let response = try v2Answer(parsed, entry, selected, batch: batch, y: y, every: every, length: result.outputLength ?? 0)
            let end = InferenceStatistics.now()
            stats.succeeded(samples: batch, input: decoded - start, infer: ran - decoded, output: end - ran, total: end - start)
            return .now(response)
        } catch {
            stats.failed(total: InferenceStatistics.now() - start)
            throw error
        }
    }

    /// The window (batch, time, row) in raw units from the request's tensors, each checked
    /// against the model's signature: names, datatypes, shapes.
    private func v2Window(_ r: V2InferRequest, _ entry: ModelRegistry.Entry) throws(APIError) -> ([Float], Int, Int) {
        let signature = entry.signature
        var values = [[Float]?](repeating: nil, count: signature.inputs.count)
        var dates: [String]?
        var seen = [Bool](repeating: false, count: signature.inputs.count)
        var batch = -1, steps = -1
        for input in r.inputs {
            guard let k = signature.inputs.firstIndex(where: { $0.name == input.name }) else {
                throw APIError(.badRequest, "model '\(entry.model.name)' has no input '\(input.name)' (inputs: \(signature.inputs.map(\.name).joined(separator: ", ")))")
            }
            guard !seen[k] else { throw APIError(.badRequest, "input '\(input.name)' is given twice") }
            seen[k] = true
            let spec = signature.inputs[k]
            let accepted: [String]
            switch spec.datatype {
            case "BYTES": accepted = ["BYTES"]
            case "INT64": accepted = ["INT64", "INT32"]
            default: accepted = ["FP32", "FP64", "FP16"]
            }
            guard accepted.contains(input.datatype) else {
                throw APIError(.badRequest, "input '\(input.name)' is \(input.datatype); model '\(entry.model.name)' takes \(accepted.joined(separator: ", ")) there")
            }
            // a sequence's request carries any number of timesteps
            let fits = input.shape.count == spec.shape.count
                && zip(input.shape, spec.shape).enumerated().allSatisfy { $1.1 == -1 || $1.0 == $1.1 || ($0 == 1 && r.sequenceID != nil) }
            guard fits else {
                throw APIError(.badRequest, "input '\(input.name)' has shape \(input.shape); model '\(entry.model.name)' takes \(spec.shape) (-1: any size)")
            }
            if batch >= 0, input.shape[0] != batch || input.shape[1] != steps {
                throw APIError(.badRequest, "input '\(input.name)' has shape \(input.shape), but the inputs before it have batch \(batch) and \(steps) timesteps")
            }
            (batch, steps) = (input.shape[0], input.shape[1])
            if spec.datatype == "BYTES" { dates = input.strings } else { values[k] = input.numbers }
        }
        if let missing = seen.firstIndex(of: false) {
            throw APIError(.badRequest, "input '\(signature.inputs[missing].name)' is missing (model '\(entry.model.name)' takes \(signature.inputs.map(\.name).joined(separator: ", ")))")
        }
        let x = try native { () throws(RuntimeError) in
            try signature.window(model: entry.model, values: values, dates: dates, batch: batch, steps: steps, whole: r.sequenceID == nil)
        }
        return (x, batch, steps)
    }

    /// The outputs to answer, as indexes into the signature's, and whether each goes as binary.
    private func v2Selected(_ r: V2InferRequest, _ entry: ModelRegistry.Entry) throws(APIError) -> [(Int, Bool)] {
        let outputs = entry.signature.outputs
        guard let asked = r.outputs else { return outputs.indices.map { ($0, r.binaryDataOutput) } }
        return try asked.map { (o: V2InferRequest.Output) throws(APIError) -> (Int, Bool) in
            guard let k = outputs.firstIndex(where: { $0.name == o.name }) else {
                throw APIError(.badRequest, "model '\(entry.model.name)' has no output '\(o.name)' (outputs: \(outputs.map(\.name).joined(separator: ", ")))")
            }
            return (k, o.binary)
        }
    }

    /// The answer: each selected output as JSON data, or described in the JSON header with its
    /// bytes after it (binary tensor data). `y`: (batch, outputs) in real units; `every`:
    /// (batch, length, outputs) for a model that ends in a sequence.
    func v2Answer(_ r: V2InferRequest, _ entry: ModelRegistry.Entry, _ selected: [(Int, Bool)],
                  batch: Int, y: [Float], every: [Float]?, length: Int) throws(APIError) -> HTTPResponse {
        if y.contains(where: { !$0.isFinite }) || every?.contains(where: { !$0.isFinite }) == true {
            throw APIError(.unprocessable, "the model's output is not a finite number for this input")
        }
        let n = entry.model.pipeline.outputWidth
        let interval = entry.model.config.interval
        var classes: [Int] {
            (0..<batch).map { b in
                var top = 0
                for k in 0..<n where y[b * n + k] > y[b * n + top] { top = k }  // the first of equal maxima, as argmax
                return top
            }
        }
        var tensors: [JSON] = []
        var blob: [UInt8] = []
        for (k, binary) in selected {
            let spec = entry.signature.outputs[k]
            var shape = [batch, n]
            var floats: [Float] = [], ints: [Int] = [], strings: [String] = []
            switch spec.name {
            case "lower", "upper":
                let offsets = spec.name == "lower" ? interval!.lower : interval!.upper
                floats = y.indices.map { y[$0] + offsets[$0 % n] }
            case "class": (ints, shape) = (classes, [batch])
            case "label": (strings, shape) = (classes.map { entry.model.config.labels![$0] }, [batch])
            case "forecasts": (floats, shape) = (every ?? [], [batch, length, n])
            default: floats = y  // forecast, probabilities
            }
            var members: [(String, JSON)] = [("name", .string(spec.name)), ("datatype", .string(spec.datatype)), ("shape", .array(shape.map { .int($0) }))]
            if binary {
                let before = blob.count
                switch spec.datatype {
                case "FP32": for v in floats { Self.append(v.bitPattern, to: &blob) }
                case "INT64": for v in ints { Self.append(UInt64(bitPattern: Int64(v)), to: &blob) }
                default:
                    for s in strings {
                        Self.append(UInt32(s.utf8.count), to: &blob)
                        blob.append(contentsOf: s.utf8)
                    }
                }
                members.append(("parameters", .object([("binary_data_size", .int(blob.count - before))])))
            } else {
                let data: JSON
                switch spec.datatype {
                case "FP32": data = .floats(floats)
                case "INT64": data = .array(ints.map { .int($0) })
                default: data = .array(strings.map { .string($0) })
                }
                members.append(("data", data))
            }
            tensors.append(.object(members))
        }
        var top: [(String, JSON)] = [("model_name", .string(entry.model.name)), ("model_version", .string(Self.v2Version))]
        if let id = r.id { top.append(("id", .string(id))) }
        top.append(("outputs", .array(tensors)))
        let header: [UInt8]
        do { header = try JSON.object(top).serializedBytes() } catch { throw APIError(.unprocessable, "the answer cannot be written as JSON (\(error))") }
        guard !blob.isEmpty || selected.contains(where: \.1) else { return HTTPResponse(status: 200, headers: Self.jsonHeaders, body: header) }
        return HTTPResponse(status: 200, headers: [("Content-Type", "application/octet-stream"), ("Inference-Header-Content-Length", String(header.count))],
                            body: header + blob)
    }

    /// `v` little-endian.
    static func append<T: FixedWidthInteger>(_ v: T, to bytes: inout [UInt8]) {
        for k in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * k))) }
    }

    /// The store's id for a client's sequence: never 32 hex digits (a server-made id), and
    /// the model's name is length-prefixed so that no two (model, id) pairs share one.
    static func sequenceKey(_ model: String, _ id: V2InferRequest.SequenceID) -> String {
        switch id {
        case let .number(n): return "seq:\(model.utf8.count):\(model):n\(n)"
        case let .text(s): return "seq:\(model.utf8.count):\(model):s\(s)"
        }
    }

    /// Steps the sequence's session by the request's timesteps: started (or reset) first on
    /// `sequence_start`, released after on `sequence_end`.
    private func v2Sequence(_ r: V2InferRequest, _ id: V2InferRequest.SequenceID, _ entry: ModelRegistry.Entry, _ registry: ModelRegistry,
                            x: [Float], batch: Int, steps: Int, selected: [(Int, Bool)], start: Int) throws(APIError) -> HTTPHandlerResult {
        let net = entry.model.pipeline, name = entry.model.name
        if let layer = net.firstNonCausalLayer {
            throw APIError(.unprocessable, "model '\(name)' cannot run sequences: its layer \(layer.name) (\(layer.kind)) needs the whole window; infer without sequence_id")
        }
        guard batch == 1 else { throw APIError(.badRequest, "a sequence request carries one sample: batch size 1, got \(batch)") }
        let key = Self.sequenceKey(name, id)
        let width = net.inputSize
        let rows = (0..<steps).map { Array(x[$0 * width..<($0 + 1) * width]) }
        let decode: @Sendable (ModelRegistry.Entry) throws(APIError) -> [[Float]] = { _ throws(APIError) in rows }
        let stats = entry.statistics
        let decoded = InferenceStatistics.now()
        @Sendable func answer(_ done: Result<(SessionShard.Stepped, ModelRegistry.Entry, [[Float]]), APIError>) throws(APIError) -> HTTPResponse {
            let ran = InferenceStatistics.now()
            let outputs: [[Float]]
            switch done {
            case let .success((_, _, o)): outputs = o
            case let .failure(e) where e.kind == .notFound && !r.sequenceStart:
                throw APIError(.badRequest, "sequence \(id.text) of model '\(name)' is not active (\(e.message)); start it with sequence_start")
            case let .failure(e): throw e
            }
            let every = net.outputShape.isSequence ? outputs.flatMap { $0 } : nil
            let response = try v2Answer(r, entry, selected, batch: 1, y: outputs.last ?? [], every: every, length: outputs.count)
            let end = InferenceStatistics.now()
            stats.succeeded(samples: 1, input: decoded - start, infer: ran - decoded, output: end - ran, total: end - start)
            return response
        }
        if !r.sequenceStart, !r.sequenceEnd, let done = sessions.stepNow(key, expectedStep: nil, registry: registry, rows: decode) {
            metrics.sessionStep(direct: true)
            return .now(try answer(done))
        }
        metrics.sessionStep(direct: false)
        let store = sessions, fresh = net.makeState(batchSize: 1)
        return .later { [self] in
            do throws(APIError) {
                if r.sequenceStart { _ = try await store.start(key, model: name, state: fresh) }
                let queued = InferenceStatistics.now()
                let done = await store.step(key, expectedStep: nil, registry: registry, rows: decode)
                stats.queued(InferenceStatistics.now() - queued)
                let response = try answer(done)
                if r.sequenceEnd { _ = await store.delete(key) }
                return response
            } catch {
                stats.failed(total: InferenceStatistics.now() - start)
                return Self.reply(error, .v2)
            }
        }
    }
}
