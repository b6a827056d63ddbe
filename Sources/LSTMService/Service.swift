import Foundation
import HTTPServer
import JSON
import RecurrentCore
import Synchronization

/// The application: routes requests to the endpoints, renders every answer and error as JSON,
/// logs and counts each request. Predict runs on the HTTP worker thread against the immutable
/// models; session operations go through the sharded actor store.
public final class Service: HTTPHandler, Sendable {
    public let configuration: Configuration
    public let metrics = Metrics()
    public let sessions: SessionStore
    let log: Log
    private let registryBox = Mutex<ModelRegistry?>(nil)

    public init(configuration: Configuration, clock: any ServiceClock = SystemClock()) {
        self.configuration = configuration
        log = Log(level: LogLevel(rawValue: configuration.logLevel) ?? .info)
        sessions = SessionStore(shards: configuration.resolvedShards, clock: clock, ttl: configuration.sessionTTLSeconds,
                                maxSessions: configuration.maxSessions, evictWhenFull: configuration.sessionFullPolicy == "evict",
                                metrics: metrics)
    }

    /// Makes the models available; `/readyz` answers 200 from then on.
    public func install(_ registry: ModelRegistry) { registryBox.withLock { $0 = registry } }

    public var registry: ModelRegistry? { registryBox.withLock { $0 } }

    // MARK: Routing

    /// A matched route: its pattern (the metrics label) and the answer.
    enum Route {
        // Names and ids are slices of the request's path: nothing is copied to route a request.
        case health, ready, metrics, models, model(Substring), predict(Substring?), sessions
        case session(Substring), step(Substring), state(Substring)

        var pattern: String {
            switch self {
            case .health: return "/healthz"
            case .ready: return "/readyz"
            case .metrics: return "/metrics"
            case .models: return "/v1/models"
            case .model: return "/v1/models/{name}"
            case .predict(nil): return "/v1/predict"
            case .predict: return "/v1/models/{name}/predict"
            case .sessions: return "/v1/sessions"
            case .session: return "/v1/sessions/{id}"
            case .step: return "/v1/sessions/{id}/step"
            case .state: return "/v1/sessions/{id}/state"
            }
        }

        var allowed: [String] {
            switch self {
            case .health, .ready, .metrics, .models, .model: return ["GET"]
            case .predict, .sessions, .step: return ["POST"]
            case .session: return ["GET", "DELETE"]
            case .state: return ["GET", "PUT"]
            }
        }
    }

    static func route(_ path: String) -> Route? {
        // the fixed paths as sent, without splitting
        switch path {
        case "/v1/predict": return .predict(nil)
        case "/healthz": return .health
        case "/readyz": return .ready
        case "/metrics": return .metrics
        case "/v1/models": return .models
        case "/v1/sessions": return .sessions
        default: break
        }
        // Split on bytes: splitting a String on a Character walks grapheme clusters, which
        // showed up at 9% of a step's CPU.
        let parts = path.utf8.split(separator: UInt8(ascii: "/"))
        func `is`(_ k: Int, _ word: StaticString) -> Bool {
            parts[k].elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount))
        }
        func name(_ k: Int) -> Substring { Substring(parts[k]) }
        switch parts.count {
        case 1 where `is`(0, "healthz"): return .health
        case 1 where `is`(0, "readyz"): return .ready
        case 1 where `is`(0, "metrics"): return .metrics
        case 2 where `is`(0, "v1") && `is`(1, "models"): return .models
        case 2 where `is`(0, "v1") && `is`(1, "predict"): return .predict(nil)
        case 2 where `is`(0, "v1") && `is`(1, "sessions"): return .sessions
        case 3 where `is`(0, "v1") && `is`(1, "models"): return .model(name(2))
        case 3 where `is`(0, "v1") && `is`(1, "sessions"): return .session(name(2))
        case 4 where `is`(0, "v1") && `is`(1, "models") && `is`(3, "predict"): return .predict(name(2))
        case 4 where `is`(0, "v1") && `is`(1, "sessions") && `is`(3, "step"): return .step(name(2))
        case 4 where `is`(0, "v1") && `is`(1, "sessions") && `is`(3, "state"): return .state(name(2))
        default: return nil
        }
    }

    public func handle(_ request: HTTPRequest) -> HTTPHandlerResult {
        guard let route = Self.route(request.path) else {
            return .now(Self.reply(APIError(.notFound, "no route \(request.method) \(request.path); see README for the endpoints")))
        }
        guard route.allowed.contains(request.method) || (request.method == "HEAD" && route.allowed.contains("GET")) else {
            return .now(Self.reply(APIError(.methodNotAllowed, "\(request.method) is not allowed on \(route.pattern); use \(route.allowed.joined(separator: " or "))",
                                             headers: [("Allow", route.allowed.joined(separator: ", "))])))
        }
        if request.bodyTooLarge {
            return .now(Self.reply(APIError(.payloadTooLarge, "request body exceeds the limit of \(configuration.maxBodyBytes) bytes")))
        }
        switch route {
        case .health: return .now(Self.reply(200, .object([("status", .string("ok"))])))
        case .ready: return .now(ready())
        case .metrics: return .now(metricsText())
        default: break
        }
        guard let registry else {
            return .now(Self.reply(APIError(.unavailable, "models are still loading", headers: [("Retry-After", "1")])))
        }
        do {
            switch route {
            case .models: return .now(listModels(registry))
            case let .model(name): return .now(try modelInfo(registry, String(name)))
            case let .predict(name): return .now(try predict(request, registry, name.map(String.init)))
            case .sessions: return try createSession(request, registry)
            case let .session(id): return request.method == "DELETE" ? deleteSession(String(id)) : getSession(String(id))
            case let .step(id): return try step(request, registry, String(id))
            case let .state(id): return request.method == "PUT" ? try putState(request, registry, String(id)) : getState(registry, String(id))
            default: return .now(Self.reply(APIError(.notFound, "no route")))
            }
        } catch {
            return .now(Self.reply(error))
        }
    }

    public func completed(_ request: HTTPRequest, status: Int, microseconds: Int) {
        let pattern = Self.route(request.path)?.pattern ?? "unmatched"
        metrics.record(route: pattern, method: request.method, status: status, seconds: Double(microseconds) / 1e6)
        log(.info, "\(request.method) \(request.path) \(status) \(microseconds)us")
    }

    // MARK: Rendering

    private static let jsonHeaders = [("Content-Type", "application/json")]

    static func reply(_ status: Int, _ json: JSON, headers: [(String, String)] = []) -> HTTPResponse {
        do {
            return HTTPResponse(status: status, headers: headers.isEmpty ? jsonHeaders : jsonHeaders + headers,
                                body: try json.serializedBytes())
        } catch {
            return reply(APIError(.unprocessable, "the model's output is not a finite number for this input (\(error))"))
        }
    }

    static func reply(_ error: APIError) -> HTTPResponse {
        HTTPResponse(status: error.status, headers: [("Content-Type", "application/json")] + error.headers,
                     body: Array(((try? error.json.serialized()) ?? "{}").utf8))
    }

    /// The body as JSON: 415 for a declared non-JSON type, 400 for malformed JSON.
    static func parseBody(_ request: HTTPRequest, optional: Bool = false) throws(APIError) -> JSONDocument? {
        if let type = request.contentType, !isJSONMediaType(type) {
            throw APIError(.unsupportedMediaType, "Content-Type '\(type)' is not JSON; send application/json")
        }
        if request.body.isEmpty {
            if optional { return nil }
            throw APIError(.badRequest, "request body is empty; expected a JSON object")
        }
        do { return try JSONDocument(bytes: request.body) } catch {
            throw APIError(.badRequest, "malformed JSON: \(error)")
        }
    }

    /// application/json, anything +json, or what `curl -d` sends (form-urlencoded, accepted
    /// when the body is JSON); parameters such as `; charset=utf-8` and case are ignored.
    static func isJSONMediaType(_ type: String) -> Bool {
        if type == "application/json" { return true }  // the common case, without lowercasing
        let base = type.prefix { $0 != ";" }.lowercased().trimmingCharacters(in: .whitespaces)
        return base == "application/json" || base.hasSuffix("+json") || base == "application/x-www-form-urlencoded" || base.isEmpty
    }

    static func entry(_ registry: ModelRegistry, _ name: String) throws(APIError) -> ModelRegistry.Entry {
        guard let e = registry[name] else {
            throw APIError(.notFound, "no model '\(name)' (loaded: \(registry.names.joined(separator: ", ")))")
        }
        return e
    }
}
