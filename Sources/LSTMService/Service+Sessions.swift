import HTTPServer
import JSON
import ModelFormat
import ModelRuntime
import RecurrentCore

/// The stream-step endpoints: /v1/sessions, /v1/sessions/{id}, /step and /state. Bodies are
/// decoded on the worker thread; the state is read and changed only inside the store's actors.
extension Service {
    func sessionJSON(_ s: SessionShard.Session, extra: [(String, JSON)] = []) -> JSON {
        .object([("session_id", .string(s.id)), ("model", .string(s.model)), ("version", .int(s.entry.version)), ("step", .int(s.step)),
                 ("created_at", .string(iso8601(s.created))), ("last_used_at", .string(iso8601(s.lastUsed))),
                 ("expires_at", .string(iso8601(s.lastUsed + configuration.sessionTTLSeconds)))] + extra)
    }

    func later(_ work: @escaping @Sendable () async throws(APIError) -> HTTPResponse) -> HTTPHandlerResult {
        .later {
            do throws(APIError) { return try await work() } catch { return Self.reply(error) }
        }
    }

    func createSession(_ request: HTTPRequest, _ registry: ModelRegistry) throws(APIError) -> HTTPHandlerResult {
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
        let store = sessions
        let initial = state
        return later { [self] () throws(APIError) in
            let session = try await stored { () throws(SessionError) in try await store.create(on: entry, state: initial) }
            return Self.reply(201, sessionJSON(session), headers: [("Location", "/v1/sessions/\(session.id)")])
        }
    }

    func getSession(_ id: String) -> HTTPHandlerResult {
        later { [self] () throws(APIError) in
            let s = try await sessions.info(id).value()
            return Self.reply(200, sessionJSON(s))
        }
    }

    func deleteSession(_ id: String) -> HTTPHandlerResult {
        later { [self] () throws(APIError) in
            try await sessions.delete(id).value()
            return HTTPResponse(status: 204)
        }
    }

    func step(_ request: HTTPRequest, _ registry: ModelRegistry, _ id: String) throws(APIError) -> HTTPHandlerResult {
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
        // The session's model decides how rows decode: the store decodes them in the same
        // actor call that finds the session and steps it.
        let decode: @Sendable (ModelRegistry.Entry) throws(RuntimeError) -> [[Float]] = { entry throws(RuntimeError) in
            let decoder = WindowDecoder(model: entry.model)
            var rows: [[Float]] = []
            for (t, row) in rowsJSON.enumerated() {
                var values: [Float] = []
                try decoder.decodeRow(row, into: &values, label: isMany ? "xs[\(t)]" : "x")
                rows.append(values)
            }
            return rows
        }
        // On this thread when the session's shard is idle (the common case); otherwise the
        // connection is suspended until the shard's actor gets to it.
        // With a durable store the answer waits until the step is written.
        if let done = sessions.stepNow(id, expectedStep: expected, rows: decode) {
            metrics.sessionStep(direct: true)
            let stepped = try done.value()
            let response = stepResponse(id, stepped, isMany: isMany)
            guard let ticket = stepped.0.stored else { return .now(response) }
            switch ticket.outcome {
            case .success: return .now(response)  // written on this thread
            case let .failure(error): throw APIError(error)
            case nil: break
            }
            // the answer is made here; the journal's writer only sends it once stored
            return .deferred { answer in
                ticket.onComplete { stored in
                    switch stored {
                    case .success: answer(response)
                    case let .failure(error): answer(Self.reply(APIError(error)))
                    }
                }
            }
        }
        metrics.sessionStep(direct: false)
        let store = sessions
        let expectedStep = expected
        return later { [self] () throws(APIError) in
            let stepped = try await store.step(id, expectedStep: expectedStep, rows: decode).value()
            try await stepped.0.stored?.wait().value()
            return stepResponse(id, stepped, isMany: isMany)
        }
    }

    private func stepResponse(_ id: String, _ done: (SessionShard.Stepped, ModelRegistry.Entry, [[Float]]), isMany: Bool) -> HTTPResponse {
        let (session, entry, outputs) = done
        let stepCount = session.step
        if !isMany, let y = outputs.last {
            do {
                if let bytes = try entry.predictor.stepAnswerBytes(id: id, step: stepCount, y: y) { return Self.reply(200, bytes: bytes) }
            } catch {
                return Self.reply(Self.nonFinite(error))
            }
        }
        var members: [(String, JSON)] = [("session_id", .string(id)), ("model", .string(session.model)), ("version", .int(session.version)), ("step", .int(stepCount))]
        var last: [Float] = []
        var all: [JSON] = []
        for y in outputs {
            last = y
            if isMany { all.append(.object(entry.predictor.forecast(y[...]))) }
        }
        members += entry.predictor.forecast(last[...])
        if isMany { members.append(("forecasts", .array(all))) }
        return Self.reply(200, .object(members))
    }

    func getState(_ id: String) -> HTTPHandlerResult {
        later { [self] () throws(APIError) in
            let (s, state) = try await sessions.export(id).value()
            let pipeline = s.entry.model.pipeline
            return Self.reply(200, .object([("session_id", .string(id)), ("model", .string(s.model)), ("version", .int(s.entry.version)), ("step", .int(s.step)),
                                            ("state", StateInput(state, sample: 0).json(for: pipeline))]))
        }
    }

    func putState(_ request: HTTPRequest, _ id: String) throws(APIError) -> HTTPHandlerResult {
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
        let store = sessions
        let newStep = step
        return later { [self] () throws(APIError) in
            let session = try await store.info(id).value()
            let net = session.entry.model.pipeline
            let state = try native { () throws(RuntimeError) in try StateInput.decode(stateJSON, pipeline: net, label: "state") }.state(for: net, batchSize: 1)
            let updated = try await store.replaceState(id, state: state, step: newStep).value()
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
    func migrateSession(_ request: HTTPRequest, _ registry: ModelRegistry, _ id: String) throws(APIError) -> HTTPHandlerResult {
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
        let store = sessions, expectedStep = expected
        return later { [self] () throws(APIError) in
            let session = try await store.info(id).value()
            let target = try Self.entry(registry, session.model, version: version)
            let moved = try await store.migrate(id, to: target, expectedStep: expectedStep).value()
            return Self.reply(200, sessionJSON(moved, extra: [("migrated_from", .int(session.entry.version))]))
        }
    }
}
