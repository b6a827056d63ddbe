import FrontEnd
import HTTPServer
import JSON
import ModelRuntime
import RecurrentCore
import SessionStore

/// `POST /v2/models/{name}/infer`: a batch of windows through predict's path, or, with a
/// `sequence_id`, timesteps through a server-held session (Triton's sequence extension).
extension OpenInference {
    public func v2Infer(_ request: HTTPRequest, _ entry: ModelRegistry.Entry) throws(APIError) -> HTTPHandlerResult {
        let start = InferenceStatistics.now()
        let stats = entry.statistics
        do throws(APIError) {
            if let type = request.contentType, type != "application/octet-stream", !Self.isJSONMediaType(type),
               !type.lowercased().hasPrefix("application/octet-stream") {
                throw APIError(.unsupportedMediaType, "Content-Type '\(type)' is neither JSON nor application/octet-stream (binary tensor data)")
            }
            let parsed = try V2InferRequest.parse(request.body, headerLength: request.header("inference-header-content-length"))
            let (x, batch, steps) = try v2Window(parsed, entry)
            let answers = v2Answers(entry)
            let selected = try v2Selected(parsed, answers)
            if let id = parsed.sequenceID {
                return try v2Sequence(parsed, id, entry, x: x, batch: batch, steps: steps, answers: answers, selected: selected, start: start)
            }
            guard batch <= context.maxBatch else {
                throw APIError(.unprocessable, "the inputs hold \(batch) windows; the limit is \(context.maxBatch) per request")
            }
            let decoded = InferenceStatistics.now()
            let predict = PredictRequest(inputs: x, batchSize: batch, sequenceLength: steps, isBatch: true)
            let result = ModelRegistry.withWorkspace(entry, batchSize: batch) { entry.predictor.run(predict, workspace: $0) }
            let ran = InferenceStatistics.now()
            let y = entry.predictor.outputs(of: result, request: predict)
            let every = entry.predictor.sequenceOutputs(of: result, request: predict)
            let response = try answers.write(parsed, selected, batch: batch, y: y, every: every, length: result.outputLength ?? 0)
            let end = InferenceStatistics.now()
            stats.succeeded(samples: batch, input: decoded - start, infer: ran - decoded, output: end - ran, total: end - start)
            return .now(response)
        } catch {
            stats.failed(total: InferenceStatistics.now() - start)
            throw error
        }
    }

    /// The window (batch, time, row) in raw units from the request's tensors, each checked
    /// against the model's signature (names, datatypes, shapes) and then read straight into
    /// the window: one scratch array for the numbers, none per input.
    private func v2Window(_ r: V2InferRequest, _ entry: ModelRegistry.Entry) throws(APIError) -> ([Float], Int, Int) {
        let signature = entry.signature, model = entry.model
        var slots = [Int](repeating: -1, count: signature.inputs.count)  // request input of each signature input
        var batch = -1, steps = -1
        for (index, input) in r.inputs.enumerated() {
            guard let k = signature.inputs.firstIndex(where: { $0.name == input.name }) else {
                throw APIError(.badRequest, "model '\(model.name)' has no input '\(input.name)' (inputs: \(signature.inputs.map(\.name).joined(separator: ", ")))")
            }
            guard slots[k] < 0 else { throw APIError(.badRequest, "input '\(input.name)' is given twice") }
            slots[k] = index
            let spec = signature.inputs[k]
            let accepted: Bool
            switch spec.datatype {
            case "BYTES": accepted = input.datatype == "BYTES"
            case "INT64": accepted = input.datatype == "INT64" || input.datatype == "INT32"
            default: accepted = input.datatype == "FP32" || input.datatype == "FP64" || input.datatype == "FP16"
            }
            guard accepted else {
                let types = ["BYTES": "BYTES", "INT64": "INT64, INT32"][spec.datatype] ?? "FP32, FP64, FP16"
                throw APIError(.badRequest, "input '\(input.name)' is \(input.datatype); model '\(model.name)' takes \(types) there")
            }
            // a sequence's request carries any number of timesteps
            let fits = input.shape.count == spec.shape.count
                && zip(input.shape, spec.shape).enumerated().allSatisfy { $1.1 == -1 || $1.0 == $1.1 || ($0 == 1 && r.sequenceID != nil) }
            guard fits else {
                throw APIError(.badRequest, "input '\(input.name)' has shape \(input.shape); model '\(model.name)' takes \(spec.shape) (-1: any size)")
            }
            if batch >= 0, input.shape[0] != batch || input.shape[1] != steps {
                throw APIError(.badRequest, "input '\(input.name)' has shape \(input.shape), but the inputs before it have batch \(batch) and \(steps) timesteps")
            }
            (batch, steps) = (input.shape[0], input.shape[1])
        }
        if let missing = slots.firstIndex(of: -1) {
            throw APIError(.badRequest, "input '\(signature.inputs[missing].name)' is missing (model '\(model.name)' takes \(signature.inputs.map(\.name).joined(separator: ", ")))")
        }
        try native { () throws(RuntimeError) in try signature.checkWindow(model: model, batch: batch, steps: steps, whole: r.sequenceID == nil) }
        var x = [Float](repeating: 0, count: batch * steps * model.pipeline.inputSize)
        var numbers: [Float] = []
        for (k, index) in slots.enumerated() {
            let input = r.inputs[index]
            if signature.roles[k] == .date {
                try r.forEachString(input) { (i, text) throws(APIError) in
                    try native { () throws(RuntimeError) in try signature.placeDate(i, utf8: text, into: &x, model: model) }
                }
                continue
            }
            numbers.removeAll(keepingCapacity: true)
            try r.readNumbers(input, into: &numbers)
            try native { () throws(RuntimeError) in try signature.place(k, numbers, into: &x, model: model) }
        }
        return (x, batch, steps)
    }

    /// The outputs to answer, as indexes into the signature's, and whether each goes as binary.
    private func v2Selected(_ r: V2InferRequest, _ answers: V2Answers) throws(APIError) -> [(Int, Bool)] {
        let entry = answers.entry, outputs = entry.signature.outputs
        guard let asked = r.outputs else { return r.binaryDataOutput ? answers.everyBinary : answers.everyJSON }
        // tritonclient names every output: the common selection is the one made once
        if asked.count == outputs.count, let binary = asked.first?.binary,
           asked.indices.allSatisfy({ asked[$0].name == outputs[$0].name && asked[$0].binary == binary }) {
            return binary ? answers.everyBinary : answers.everyJSON
        }
        return try asked.map { (o: V2InferRequest.Output) throws(APIError) -> (Int, Bool) in
            guard let k = outputs.firstIndex(where: { $0.name == o.name }) else {
                throw APIError(.badRequest, "model '\(entry.model.name)' has no output '\(o.name)' (outputs: \(outputs.map(\.name).joined(separator: ", ")))")
            }
            return (k, o.binary)
        }
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
    /// A sequence stays on the version it started on: a request naming another version (or
    /// none, after a reload) steps it there, and is answered in that version's tensors.
    private func v2Sequence(_ r: V2InferRequest, _ id: V2InferRequest.SequenceID, _ entry: ModelRegistry.Entry,
                            x: [Float], batch: Int, steps: Int, answers: V2Answers, selected: [(Int, Bool)], start: Int) throws(APIError) -> HTTPHandlerResult {
        let net = entry.model.pipeline, name = entry.model.name
        if let layer = net.firstNonCausalLayer {
            throw APIError(.unprocessable, "model '\(name)' cannot run sequences: its layer \(layer.name) (\(layer.kind)) needs the whole window; infer without sequence_id")
        }
        guard batch == 1 else { throw APIError(.badRequest, "a sequence request carries one sample: batch size 1, got \(batch)") }
        let key = Self.sequenceKey(name, id)
        let width = net.inputSize
        let rows = (0..<steps).map { Array(x[$0 * width..<($0 + 1) * width]) }
        let stats = entry.statistics
        let decoded = InferenceStatistics.now()
        let sequence = V2SequenceStep(key: key, id: id, name: name, rows: rows, width: width, entry: entry, sequenceStart: r.sequenceStart)
        @Sendable func answer(_ done: Stepped) throws(APIError) -> HTTPResponse {
            let ran = InferenceStatistics.now()
            var (answers, selected) = (answers, selected)
            if done.entry !== entry { answers = v2Answers(done.entry); selected = try v2Selected(r, answers) }
            let outputs = done.outputs
            let every = answers.entry.model.pipeline.outputShape.isSequence ? outputs.flatMap { $0 } : nil
            let response = try answers.write(r, selected, batch: 1, y: outputs.last ?? [], every: every, length: outputs.count)
            let end = InferenceStatistics.now()
            stats.succeeded(samples: 1, input: decoded - start, infer: ran - decoded, output: end - ran, total: end - start)
            return response
        }
        if !r.sequenceStart, !r.sequenceEnd, let done = try sequence.now(context.sessions) {
            context.events.sessionStep(direct: true)
            guard let ticket = done.ticket else { return .now(try answer(done)) }
            return .later {
                do throws(APIError) {
                    try await ticket.wait().value()
                    return try answer(done)
                } catch {
                    stats.failed(total: InferenceStatistics.now() - start)
                    return Self.reply(error)
                }
            }
        }
        context.events.sessionStep(direct: false)
        let store = context.sessions, fresh = net.makeState(batchSize: 1).values
        return .later {
            do throws(APIError) {
                if r.sequenceStart { _ = try await stored { () throws(SessionError) in try await store.start(key, on: entry, state: fresh) } }
                let queued = InferenceStatistics.now()
                let done = try await sequence.later(store)
                try await done.ticket?.wait().value()
                stats.queued(InferenceStatistics.now() - queued)
                let response = try answer(done)
                if r.sequenceEnd { _ = await store.delete(key) }
                return response
            } catch {
                stats.failed(total: InferenceStatistics.now() - start)
                return Self.reply(error)
            }
        }
    }
}

/// A sequence's step on its way to the store. V2's rows are the tensor's raw values: a
/// sequence pinned to a version that reads input otherwise takes them as they are when that
/// version takes as many values per timestep.
struct V2SequenceStep: Sendable {
    let key: String
    let id: V2InferRequest.SequenceID
    let name: String
    let rows: [[Float]]
    let width: Int
    let entry: ModelRegistry.Entry
    let sequenceStart: Bool

    func request(_ model: any SessionModel) throws(APIError) -> StepRequest {
        let pinned = model as! ModelRegistry.Entry
        guard pinned === entry || pinned.model.pipeline.inputSize == width else {
            throw APIError(.badRequest, "sequence \(id.text) runs on version \(pinned.version) of '\(name)', which takes \(pinned.model.pipeline.inputSize) values per timestep, not \(width)")
        }
        return StepRequest(id: key, rows: rows, expectedStep: nil, readFor: pinned)
    }

    enum Next { case done(Stepped), again(StepRequest) }

    /// The step, or the request to send again.
    func settle(_ result: StepResult) throws(APIError) -> Next {
        switch result {
        case let .stepped(done): return .done(done)
        case let .refused(.notFound(message)) where !sequenceStart:
            throw APIError(.badRequest, "sequence \(id.text) of model '\(name)' is not active (\(message)); start it with sequence_start")
        case let .refused(error): throw APIError(error)
        case let .readFor(model): return .again(try request(model))
        }
    }

    /// On this thread; nil when the sequence's shard is busy.
    func now(_ store: any SessionDriver) throws(APIError) -> Stepped? {
        var next = try request(entry)
        while let result = store.stepNow(next) {
            switch try settle(result) {
            case let .done(done): return done
            case let .again(request): next = request
            }
        }
        return nil
    }

    func later(_ store: any SessionDriver) async throws(APIError) -> Stepped {
        var next = try request(entry)
        while true {
            switch try settle(await store.step(next)) {
            case let .done(done): return done
            case let .again(request): next = request
            }
        }
    }
}
