import Foundation
import HTTPServer
import Hashing
import JSON
import Locking
import ModelRuntime
import RecurrentCore
import SessionStore
import SessionStoreSQLite

/// The application: routes requests to the endpoints, renders every answer and error as JSON,
/// logs and counts each request. Predict runs on the HTTP worker thread against the immutable
/// models; session operations go through the sharded actor store.
public final class Service: HTTPHandler, Sendable {
    public let configuration: Configuration
    public let metrics = Metrics(routes: Service.routes.patterns)
    public let sessions: any SessionDriver
    public let log: Log
    /// The served models: the snapshot, reloads, retiring versions.
    public let models: ModelHost
    private let v2AnswersBox = Locked<[ObjectIdentifier: V2Answers]>([:])
    private let draining = Locked(false)
    private let transportGauges = Locked<(@Sendable () -> Metrics.Transport)?>(nil)

    let policy: AccessPolicy

    /// With `session_store` sqlite:PATH the store is opened here; a file that is not a
    /// session store, a damaged one or one another process holds is a start-up error.
    public init(configuration: Configuration, clock: any ServiceClock = SystemClock(), policy: AccessPolicy = AccessPolicy()) throws(ConfigurationError) {
        self.configuration = configuration
        self.policy = policy
        log = Log(level: LogLevel(rawValue: configuration.logLevel) ?? .info, json: configuration.logFormat == "json")
        sessions = try Self.sessionDriver(configuration, clock: clock, events: metrics, log: log)
        models = ModelHost(defaultModel: configuration.defaultModel, events: ModelLog(log: log, metrics: metrics, v2Answers: v2AnswersBox))
    }

    /// The store `session_store` names: `memory`, or `sqlite:PATH`.
    static func sessionDriver(_ c: Configuration, clock: any ServiceClock, events: any SessionEvents, log: Log) throws(ConfigurationError) -> any SessionDriver {
        let (shards, ttl, full) = (c.resolvedShards, c.sessionTTLSeconds, c.sessionFullPolicy == "evict")
        guard c.sessionStore.hasPrefix("sqlite:") else {
            return MemoryDriver(shards: shards, clock: clock, ttl: ttl, maxSessions: c.maxSessions, evictWhenFull: full, events: events)
        }
        do {
            return try SQLiteDriver(path: String(c.sessionStore.dropFirst(7)), sync: SessionSync(rawValue: c.sessionSync) ?? .process,
                                    window: c.sessionCommitWindowMicroseconds, checkpointBytes: c.sessionCheckpointBytes,
                                    shards: shards, clock: clock, ttl: ttl, maxSessions: c.maxSessions, evictWhenFull: full,
                                    events: events, logger: { notice, message in log(notice == .error ? .error : .warning, message) })
        } catch {
            throw .invalid("session_store: \(error)")
        }
    }

    /// Makes the models available; `/readyz` answers 200 from then on. With a durable store,
    /// the stored sessions come back first (the first install only), ready to step on. A later
    /// install (a reload) swaps the snapshot (`ModelHost.install`).
    public func install(_ registry: ModelRegistry) {
        if models.registry == nil { loadSessions(registry) }
        models.install(registry)
    }

    /// Brings back the stored sessions (a durable store's), loading the versions they run on
    /// that the policy does not serve.
    private func loadSessions(_ registry: ModelRegistry) {
        let pinned = models.loadPinned(sessions.storedVersions(), beside: registry)
        defer { withExtendedLifetime(pinned) {} }  // until their sessions hold them
        // At start-up the registry is not installed yet: its versions are looked up here. The
        // store keeps the lookup (to restore sessions after a failed write), so it holds
        // neither the host nor this registry, whose versions must be free to retire.
        let report = sessions.load(versions: { [weak host = models, weak registry] name, version, fingerprint in
            host?.loadedVersion(name, version, fingerprint, installing: registry)
        })
        if report.source != "memory" {
            log(.info, "session store \(report.source): \(report.live) sessions back, \(report.expired) expired, \(report.orphaned) of models not served (410)")
        }
    }

    /// The V2 answer writer of a model version of the installed registry.
    func v2Answers(_ entry: ModelRegistry.Entry) -> V2Answers {
        v2AnswersBox.withLock { $0[ObjectIdentifier(entry)] }.flatMap { $0.entry === entry ? $0 : nil } ?? V2Answers(entry)
    }

    public var registry: ModelRegistry? { models.registry }

    /// Stores every session change made so far and closes the durable store, releasing its
    /// file (a drain's end, or a server stopped in-process that another will reopen).
    public func closeSessions() { sessions.close() }

    /// Where `/metrics` reads in-flight requests and open connections (the HTTP server's).
    func attachTransport(_ read: @escaping @Sendable () -> Metrics.Transport) { transportGauges.withLock { $0 = read } }
    func transport() -> Metrics.Transport { transportGauges.withLock { $0 }?() ?? Metrics.Transport() }

    /// The server is shutting down: `/readyz` answers 503 so that balancers stop sending.
    public func beginDrain() { draining.withLock { $0 = true } }
    var isDraining: Bool { draining.withLock { $0 } }

    public func handle(_ request: HTTPRequest) -> HTTPHandlerResult {
        // the route is worked out once; the answer carries its index back to `completed`
        let route = Self.route(request.path)
        let label = route?.index ?? -1
        let cors = policy.corsHeaders(request)
        switch answer(request, route) {
        case var .now(response):
            response.label = label
            if !cors.isEmpty { response.headers += cors }  // appending even nothing copies a shared array
            return .now(response)
        case let .later(work):
            return .later {
                var response = await work()
                response.label = label
                if !cors.isEmpty { response.headers += cors }
                return response
            }
        case let .deferred(start):
            return .deferred { answer in
                start { response in
                    var response = response
                    response.label = label
                    if !cors.isEmpty { response.headers += cors }
                    answer(response)
                }
            }
        }
    }

    private func answer(_ request: HTTPRequest, _ route: Route?) -> HTTPHandlerResult {
        let api = route?.endpoint.api ?? APIProtocol(path: request.path)
        func refuse(_ error: APIError) -> HTTPHandlerResult { .now(Self.reply(error, api)) }
        switch request.problem {
        case nil: break
        case let .badRequest(reason)?: return refuse(APIError(.badRequest, reason))
        case let .payloadTooLarge(limit)?:
            return refuse(APIError(.payloadTooLarge, "request body exceeds the limit of \(limit) bytes"))
        case .overCapacity?:
            return refuse(APIError(.unavailable, "the server is at its connection limit; try again shortly", headers: [("Retry-After", "1")]))
        }
        if let refusal = policy.hostRefusal(request) { return refuse(refusal) }
        guard let route else {
            return refuse(APIError(.notFound, "no route \(request.method) \(request.path); see README or GET /openapi.json for the endpoints"))
        }
        let spec = route.spec
        if request.method == "OPTIONS" { return .now(policy.preflight(request, methods: spec.methods)) }
        guard spec.allows(request.method) else {
            return refuse(APIError(.methodNotAllowed, "\(request.method) is not allowed on \(spec.pattern); use \(spec.methods.joined(separator: " or "))",
                                   headers: [("Allow", spec.allow)]))
        }
        if let refusal = policy.refusal(request, scope: route.scope(guardingHealth: policy.guardsHealthAndMetrics)) {
            return refuse(refusal)
        }
        switch route.endpoint.answer {
        case let .always(answer): return .now(answer(self, request, route))
        case let .loaded(answer):
            guard let registry else {
                return refuse(APIError(.unavailable, "models are still loading", headers: [("Retry-After", "1")]))
            }
            do { return try answer(self, request, route, registry) } catch { return refuse(error) }
        }
    }

    public func completed(_ request: HTTPRequest, response: HTTPResponse, microseconds: Int) {
        metrics.record(route: response.label, method: request.method, status: response.status, seconds: Double(microseconds) / 1e6)
        guard log.level <= .info else { return }
        // A session id is the session's only credential: logs carry a short hash of it.
        let routes = Self.routes.routes
        let spec = routes.indices.contains(response.label) ? routes[response.label] : nil
        let sessionID = spec?.endpoint.sessionID == true ? Self.route(request.path).flatMap(\.sessionID) : nil
        let path = sessionID != nil ? spec!.pattern : request.path
        let session = sessionID.map(Self.shortHash) ?? "-"
        log(.info, "\(request.method) \(path) \(response.status) \(microseconds)us",
            ["request_id": request.requestID.isEmpty ? "-" : request.requestID, "session": session])
    }

    /// 8 hex digits of FNV-1a over `id`: enough to follow one session through the logs, not
    /// enough to use it.
    static func shortHash(_ id: Substring) -> String {
        FNV1a.hash32(id.utf8).zeroPaddedHex
    }

    // MARK: Rendering

    static let jsonHeaders = [("Content-Type", "application/json")]

    static func reply(_ status: Int, _ json: JSON, headers: [(String, String)] = []) -> HTTPResponse {
        do {
            return HTTPResponse(status: status, headers: headers.isEmpty ? jsonHeaders : jsonHeaders + headers,
                                body: try json.serializedBytes())
        } catch {
            return reply(nonFinite(error))
        }
    }

    /// A JSON body written already.
    static func reply(_ status: Int, bytes: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: jsonHeaders, body: bytes)
    }

    /// An answer that cannot be written: the model produced NaN or infinity for this input.
    static func nonFinite(_ error: JSONError) -> APIError {
        APIError(.unprocessable, "the model's output is not a finite number for this input (\(error))")
    }

    static func reply(_ error: APIError) -> HTTPResponse { reply(error, .native) }

    /// An error in its protocol's one envelope: the native `{"error": {code, type, message}}`,
    /// or V2's `{"error": "message"}`, where a request the model cannot take is a 400.
    static func reply(_ error: APIError, _ api: APIProtocol) -> HTTPResponse {
        let (status, json): (Int, JSON)
        switch api {
        case .native: (status, json) = (error.status, error.json)
        case .v2: (status, json) = (error.kind == .unprocessable ? 400 : error.status, .object([("error", .string(error.message))]))
        }
        return HTTPResponse(status: status, headers: jsonHeaders + error.headers, body: Array(((try? json.serialized()) ?? "{}").utf8))
    }

    /// The body as JSON: 415 for a declared non-JSON type, 400 for malformed JSON.
    static func parseBody(_ request: HTTPRequest, optional: Bool = false) throws(APIError) -> JSONDocument? {
        if let type = request.contentType, !isJSONMediaType(type) {
            throw APIError(.unsupportedMediaType, "Content-Type '\(type)' is not JSON; send application/json (curl: --json)")
        }
        if request.body.isEmpty {
            if optional { return nil }
            throw APIError(.badRequest, "request body is empty; expected a JSON object")
        }
        do { return try JSONDocument(bytes: request.body) } catch {
            throw APIError(.badRequest, "malformed JSON: \(error)")
        }
    }

    /// application/json or anything +json; parameters such as `; charset=utf-8` and case are
    /// ignored. A form or text/plain body is refused: those are what a web page may send to
    /// any server without asking (a JSON POST from another origin needs a CORS preflight).
    static func isJSONMediaType(_ type: String) -> Bool {
        if type == "application/json" { return true }  // the common case, without lowercasing
        let base = type.prefix { $0 != ";" }.lowercased().trimmingCharacters(in: .whitespaces)
        return base == "application/json" || base.hasSuffix("+json")
    }

    static func entry(_ registry: ModelRegistry, _ name: String) throws(APIError) -> ModelRegistry.Entry {
        guard let e = registry[name] else {
            throw APIError(.notFound, "no model '\(name)' (loaded: \(registry.names.joined(separator: ", ")))")
        }
        return e
    }

    /// A served version of a model; `version` is the path's or body's text (digits).
    static func entry(_ registry: ModelRegistry, _ name: String, version: Substring?) throws(APIError) -> ModelRegistry.Entry {
        let e = try entry(registry, name)
        guard let version else { return e }
        guard let v = Int(version), let found = registry[name, v] else {
            let served = registry.versions[name]!.map { String($0.version) }.joined(separator: ", ")
            throw APIError(.notFound, "model '\(name)' has no version '\(Log.escaped(String(version)))' served (versions: \(served))")
        }
        return found
    }
}
