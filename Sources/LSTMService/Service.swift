import Foundation
import FrontEnd
import HTTPServer
import Hashing
import JSON
import Locking
import ModelRuntime
import NativeAPI
import OpenInference
import RecurrentCore
import Redis
import SessionStore
import SessionStoreRedis
import SessionStoreSQLite

/// The application: routes requests to the endpoints, renders every answer and error as JSON,
/// logs and counts each request. Predict runs on the HTTP worker thread against the immutable
/// models; session operations go through the sharded actor store.
public final class Service: HTTPHandler, APIFrontEnd, Sendable {
    public let configuration: Configuration
    public let metrics = Metrics(routes: Service.routes.patterns)
    public let sessions: any SessionDriver
    public let log: Log
    /// The served models: the snapshot, reloads, retiring versions.
    public let models: ModelHost
    /// The protocol front ends.
    public let native: NativeAPI
    public let v2: OpenInference
    private let draining = Locked(false)
    private let transportGauges = Locked<(@Sendable () -> Metrics.Transport)?>(nil)

    let policy: AccessPolicy
    /// Headers every session answer carries: with sessions shared between replicas, the
    /// replica that answered (`X-LSTM-Serve-Node`), for affinity and for reading logs.
    let sessionHeaders: [(String, String)]
    /// By route index: whether the route answers about sessions.
    static let sessionRoutes = routes.routes.map { $0.pattern.hasPrefix("/v1/sessions") }

    /// With `session_store` sqlite:PATH the store is opened here; a file that is not a
    /// session store, a damaged one or one another process holds is a start-up error.
    public init(configuration: Configuration, clock: any ServiceClock = SystemClock(), policy: AccessPolicy = AccessPolicy()) throws(ConfigurationError) {
        self.configuration = configuration
        self.policy = policy
        log = Log(level: LogLevel(rawValue: configuration.logLevel) ?? .info, json: configuration.logFormat == "json")
        sessions = try Self.sessionDriver(configuration, clock: clock, events: metrics, log: log)
        sessionHeaders = sessions is RedisDriver ? [("X-LSTM-Serve-Node", configuration.resolvedNodeName)] : []
        // each front end's answer writers, made per version as each snapshot is installed
        let nativeAnswers = PerVersion { NativeAnswers($0.predictor) }, v2Answers = PerVersion { V2Answers($0) }
        models = ModelHost(defaultModel: configuration.defaultModel,
                           events: ModelLog(log: log, metrics: metrics, installing: [nativeAnswers.install, v2Answers.install]))
        let context = FrontEndContext(models: models, sessions: sessions, maxBatch: configuration.maxBatch,
                                      sessionTTL: configuration.sessionTTLSeconds, events: metrics)
        native = NativeAPI(context, answers: nativeAnswers)
        v2 = OpenInference(context, answers: v2Answers)
    }

    /// The store `session_store` names: `memory`, `sqlite:PATH` or `redis://…`.
    static func sessionDriver(_ c: Configuration, clock: any ServiceClock, events: any SessionEvents, log: Log) throws(ConfigurationError) -> any SessionDriver {
        let (shards, ttl, full) = (c.resolvedShards, c.sessionTTLSeconds, c.sessionFullPolicy == "evict")
        if c.sessionStore.hasPrefix("redis://") {
            do {
                let location = try RedisLocation.parse(c.sessionStore).get()
                let durability = c.sessionRedisReplicas < 0 ? nil
                    : RedisDriver.Durability(replicas: c.sessionRedisReplicas, timeoutMilliseconds: c.sessionRedisWaitMilliseconds)
                return try RedisDriver(location: location, prefix: c.sessionRedisPrefix, timeoutMilliseconds: c.sessionRedisTimeoutMilliseconds,
                                       durability: durability, waitMilliseconds: c.sessionRedisWaitMilliseconds,
                                       shards: shards, clock: clock, ttl: ttl, maxSessions: c.maxSessions, evictWhenFull: full, events: events)
            } catch {
                throw .invalid("session_store: \(error)")
            }
        }
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
        var extra = policy.corsHeaders(request)
        if !sessionHeaders.isEmpty, label >= 0, Self.sessionRoutes[label] { extra += sessionHeaders }
        let cors = extra
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

    /// The service's own answers (health, errors before a route) take the native envelope.
    public static func envelope(_ error: APIError) -> HTTPResponse { NativeAPI.envelope(error) }

    /// An error in its protocol's one envelope.
    static func reply(_ error: APIError, _ api: APIProtocol) -> HTTPResponse {
        switch api {
        case .native: return NativeAPI.envelope(error)
        case .v2: return OpenInference.envelope(error)
        }
    }
}
