import FrontEnd
import HTTPServer
import JSON
import ModelRuntime
import RecurrentCore
import SessionStore

/// The stream-step endpoints: /v1/sessions, /v1/sessions/{id}, /step and /state. Bodies are
/// decoded on the worker thread; the state is read and changed only inside the store's actors.
extension NativeAPI {
    func sessionJSON(_ s: SessionInfo, extra: [(String, JSON)] = []) -> JSON {
        .object([("session_id", .string(s.id)), ("model", .string(s.model.name)), ("version", .int(s.model.version)), ("step", .int(s.step)),
                 ("created_at", .string(iso8601(s.created))), ("last_used_at", .string(iso8601(s.lastUsed))),
                 ("expires_at", .string(iso8601(s.lastUsed + context.sessionTTL)))] + extra)
    }

    public func createSession(_ request: HTTPRequest, _ registry: ModelRegistry) throws(APIError) -> HTTPHandlerResult {
        let body = try Self.parseBody(request, optional: true)?.value
        if let body {
            guard body.kind == .object else { throw .unprocessable("session body must be an object like {\"model\": \"name\"}") }
            if let key = body.firstKey(notIn: ["model", "version", "state"]) {
                throw .unprocessable("unknown field '\(key)'; expected 'model', 'version' and 'state'")
            }
        }
        var name = registry.defaultName
        if let v = body?["model"] {
            guard let s = v.string else { throw .unprocessable("model must be a string") }
            name = s
        }
        let entry = try Self.entry(registry, name, version: try Self.versionField(body?["version"]))
        let net = entry.model.pipeline
        if let layer = net.firstNonCausalLayer {
            throw .unprocessable("model '\(name)' cannot be stepped: its layer \(layer.name) (\(layer.kind)) needs the whole window; use predict")
        }
        var state = net.makeState(batchSize: 1)
        if let s = body?["state"] { state = try native { () throws(RuntimeError) in try StateInput.decode(s, pipeline: net, label: "state") }.state(for: net, batchSize: 1) }
        let store = context.sessions
        let initial = state.values
        return later { [self] () throws(APIError) in
            let session = try await stored { () throws(SessionError) in try await store.create(on: entry, state: initial) }
            return Self.reply(201, sessionJSON(session), headers: [("Location", "/v1/sessions/\(session.id)")])
        }
    }

    public func getSession(_ id: String) -> HTTPHandlerResult {
        later { [self] () throws(APIError) in
            let s = try await context.sessions.info(id).value()
            return Self.reply(200, sessionJSON(s))
        }
    }

    public func deleteSession(_ id: String) -> HTTPHandlerResult {
        later { [self] () throws(APIError) in
            try await context.sessions.delete(id).value()
            return HTTPResponse(status: 204)
        }
    }

    public func step(_ request: HTTPRequest, _ registry: ModelRegistry, _ id: String) throws(APIError) -> HTTPHandlerResult {
        let body = try Self.parseBody(request)!.value
        guard body.kind == .object else { throw .unprocessable("step body must be an object like {\"x\": [...]}") }
        let (x, xs, e) = (body["x"], body["xs"], body["expected_step"])
        if let key = body.firstKey(notIn: ["x", "xs", "expected_step"]) {
            throw .unprocessable("unknown field '\(key)'; expected 'x' (one timestep), 'xs' (several) and optional 'expected_step'")
        }
        var expected: Int?
        if let e {
            guard let n = e.int, n >= 0 else { throw .unprocessable("expected_step must be a non-negative integer") }
            expected = n
        }
        let rowsJSON: [JSONValue]
        let isMany: Bool
        switch (x, xs) {
        case let (x?, nil): (rowsJSON, isMany) = ([x], false)
        case let (nil, xs?):
            guard xs.kind == .array, xs.count > 0 else { throw .unprocessable("xs must be a non-empty array of timesteps") }
            (rowsJSON, isMany) = (xs.elements, true)
        case (nil, nil): throw .unprocessable("missing 'x' (one timestep) or 'xs' (several timesteps)")
        default: throw .unprocessable("send either 'x' or 'xs', not both")
        }
        // The session's version decides how rows read. They are read for the default model's
        // (most sessions run on it); the store says when the session's reads them otherwise,
        // and they are read again for that one.
        let start = InferenceStatistics.now()
        var step = SessionStep(id: id, rowsJSON: rowsJSON, isMany: isMany, expectedStep: expected, readFor: registry.defaultEntry)
        // On this thread when the session's shard is idle (the common case); otherwise the
        // connection is suspended until the shard's actor gets to it.
        if let done = try step.now(context.sessions) {
            context.events.sessionStep(direct: true)
            let response = stepResponse(id, done, isMany: isMany, start: start, read: step.read)
            // with a durable store the answer waits until the step is written
            guard let ticket = done.ticket else { return .now(response) }
            switch ticket.outcome {
            case .success: return .now(response)  // written on this thread
            case let .failure(error): throw APIError(error)
            case nil: break
            }
            // the answer is made here; the store's writer only sends it once stored
            return .deferred { answer in
                ticket.onComplete { stored in
                    switch stored {
                    case .success: answer(response)
                    case let .failure(error): answer(Self.reply(APIError(error)))
                    }
                }
            }
        }
        context.events.sessionStep(direct: false)
        let store = context.sessions, pending = step
        return later { [self] () throws(APIError) in
            var step = pending
            let done = try await step.later(store)
            try await done.ticket?.wait().value()
            return stepResponse(id, done, isMany: isMany, start: start, read: step.read)
        }
    }

    /// A native step on its way to the store: its rows read for a version (`readFor`), read
    /// again for the session's own when the store finds that it reads them otherwise.
    struct SessionStep: Sendable {
        let id: String
        let rowsJSON: [JSONValue]
        let isMany: Bool
        let expectedStep: Int?
        var readFor: ModelRegistry.Entry
        /// Whether `readFor` is known to be the session's version (its errors then stand).
        var confirmed = false
        /// The rows as read for `readFor` (kept for a step that waits for a busy shard).
        var decoded: [[Float]]?
        /// When the rows were last read (for the statistics).
        var read = 0

        /// The rows for `readFor`; nil when they do not read for a version that is not known
        /// to be the session's (then the session's is looked up).
        mutating func rows() throws(APIError) -> [[Float]]? {
            if let decoded { return decoded }
            defer { read = InferenceStatistics.now() }
            let decoder = WindowDecoder(model: readFor.model)
            var rows: [[Float]] = []
            rows.reserveCapacity(rowsJSON.count)
            do throws(RuntimeError) {
                for (t, row) in rowsJSON.enumerated() {
                    var values: [Float] = []
                    try decoder.decodeRow(row, into: &values, label: isMany ? "xs[\(t)]" : "x")
                    rows.append(values)
                }
            } catch {
                if confirmed { throw APIError(error) }
                return nil
            }
            decoded = rows
            return rows
        }

        /// What the store answered: the step, or the version to read the rows for next.
        mutating func settle(_ result: StepResult) throws(APIError) -> Stepped? {
            switch result {
            case let .stepped(done): return done
            case let .refused(error): throw APIError(error)
            case let .readFor(model): (readFor, confirmed, decoded) = (model as! ModelRegistry.Entry, true, nil)
            }
            return nil
        }

        mutating func confirm(_ info: Result<SessionInfo, SessionError>) throws(APIError) {
            (readFor, confirmed, decoded) = (try info.value().entry, true, nil)
        }

        /// The step on this thread; nil when the session's shard is busy (then `later`).
        mutating func now(_ store: any SessionDriver) throws(APIError) -> Stepped? {
            while true {
                guard let rows = try rows() else {
                    guard let info = store.infoNow(id) else { return nil }
                    try confirm(info)
                    continue
                }
                guard let result = store.stepNow(StepRequest(id: id, rows: rows, expectedStep: expectedStep, readFor: readFor)) else { return nil }
                if let done = try settle(result) { return done }
            }
        }

        mutating func later(_ store: any SessionDriver) async throws(APIError) -> Stepped {
            while true {
                guard let rows = try rows() else {
                    try confirm(await store.info(id))
                    continue
                }
                if let done = try settle(await store.step(StepRequest(id: id, rows: rows, expectedStep: expectedStep, readFor: readFor))) { return done }
            }
        }
    }

    private func stepResponse(_ id: String, _ done: Stepped, isMany: Bool, start: Int, read: Int) -> HTTPResponse {
        let ran = InferenceStatistics.now()
        let entry = done.entry
        let response = stepAnswer(id, done, entry, isMany: isMany)
        let end = InferenceStatistics.now()
        entry.statistics.succeeded(samples: 1, input: read - start, infer: ran - read, output: end - ran, total: end - start)
        return response
    }

    private func stepAnswer(_ id: String, _ done: Stepped, _ entry: ModelRegistry.Entry, isMany: Bool) -> HTTPResponse {
        let (outputs, stepCount) = (done.outputs, done.step)
        let answers = self.answers(entry)
        if !isMany, let y = outputs.last {
            do {
                if let bytes = try answers.stepAnswerBytes(id: id, step: stepCount, y: y) { return Self.reply(200, bytes: bytes) }
            } catch {
                return Self.reply(Self.nonFinite(error))
            }
        }
        var members: [(String, JSON)] = [("session_id", .string(id)), ("model", .string(entry.model.name)), ("version", .int(entry.version)), ("step", .int(stepCount))]
        var last: [Float] = []
        var all: [JSON] = []
        for y in outputs {
            last = y
            if isMany { all.append(.object(answers.forecast(y[...]))) }
        }
        members += answers.forecast(last[...])
        if isMany { members.append(("forecasts", .array(all))) }
        return Self.reply(200, .object(members))
    }

    public func getState(_ id: String) -> HTTPHandlerResult {
        later { [self] () throws(APIError) in
            let (s, values) = try await context.sessions.export(id).value()
            let entry = s.entry
            return Self.reply(200, .object([("session_id", .string(id)), ("model", .string(entry.model.name)), ("version", .int(entry.version)), ("step", .int(s.step)),
                                            ("state", StateInput(entry.state(values), sample: 0).json(for: entry.model.pipeline))]))
        }
    }

    public func putState(_ request: HTTPRequest, _ id: String) throws(APIError) -> HTTPHandlerResult {
        let body = try Self.parseBody(request)!.value
        guard body.kind == .object, let stateJSON = body["state"] else {
            throw .unprocessable("body must be {\"state\": {\"h\": [...], \"c\": [...]}, \"step\": n} (as GET .../state returns)")
        }
        var step: Int?
        if let s = body["step"] {
            guard let n = s.int, n >= 0, n <= maxSessionStep else {
                throw .unprocessable("step must be an integer from 0 to \(maxSessionStep)")
            }
            step = n
        }
        if let key = body.firstKey(notIn: ["state", "step", "session_id", "model", "version"]) {
            throw .unprocessable("unknown field '\(key)'; expected 'state' and optional 'step'")
        }
        let store = context.sessions
        let newStep = step
        return later { [self] () throws(APIError) in
            let session = try await store.info(id).value()
            let net = session.entry.model.pipeline
            let state = try native { () throws(RuntimeError) in try StateInput.decode(stateJSON, pipeline: net, label: "state") }.state(for: net, batchSize: 1)
            let updated = try await store.replaceState(id, state: state.values, readFor: session.entry, step: newStep).value()
            return Self.reply(200, sessionJSON(updated))
        }
    }

    /// A `"version"` field: a whole number (or its digits as a string, as V2 writes versions).
    static func versionField(_ v: JSONValue?) throws(APIError) -> Substring? {
        guard let v else { return nil }
        if let n = v.int, n >= 1 { return Substring(String(n)) }
        if let s = v.string, ModelRepository.versionNumber(s) != nil { return Substring(s) }
        throw .unprocessable("version must be a version number such as 2")
    }

    /// `POST /v1/sessions/{id}/migrate {"version": v}`: moves a session to another served
    /// version of its model, keeping its state and step, when their states have one layout
    /// (409 with both layouts otherwise). Optional `expected_step` as for step.
    public func migrateSession(_ request: HTTPRequest, _ registry: ModelRegistry, _ id: String) throws(APIError) -> HTTPHandlerResult {
        let body = try Self.parseBody(request)!.value
        guard body.kind == .object, body["version"] != nil else { throw .unprocessable("body must be {\"version\": n}, a served version of the session's model") }
        if let key = body.firstKey(notIn: ["version", "expected_step"]) {
            throw .unprocessable("unknown field '\(key)'; expected 'version' and optional 'expected_step'")
        }
        let version = try Self.versionField(body["version"])
        var expected: Int?
        if let e = body["expected_step"] {
            guard let n = e.int, n >= 0 else { throw .unprocessable("expected_step must be a non-negative integer") }
            expected = n
        }
        let store = context.sessions, expectedStep = expected
        return later { [self] () throws(APIError) in
            let session = try await store.info(id).value()
            let target = try Self.entry(registry, session.model.name, version: version)
            let moved = try await store.migrate(id, to: target, expectedStep: expectedStep).value()
            return Self.reply(200, sessionJSON(moved, extra: [("migrated_from", .int(session.model.version))]))
        }
    }
}
