import FrontEnd
import HTTPServer
import JSON
import ModelRuntime
import NativeAPI
import OpenInference
import SessionStore

/// Every route, declared once: metrics labels, `Allow` and the dispatch in `Service.answer`
/// all come from this table. A route belongs to a protocol, whose envelope its errors take.
extension Service {
    /// The native API (`/v1`, health, metrics) or the Open Inference Protocol V2 (`/v2`).
    enum APIProtocol: Sendable { case native, v2 }

    /// What a route is and what answers it. Adding a route is one entry of `routes`.
    struct Endpoint: Sendable {
        /// Who may call it: `open` (health, readiness, metrics, the API description: no token
        /// unless the policy guards them), `infer`, or `admin` (reloading models).
        enum Access: Sendable { case open, infer, admin }
        /// Answered at once, models loaded or not; or once the models are loaded, with them.
        enum Answer: Sendable {
            case always(@Sendable (Service, HTTPRequest, Route) -> HTTPResponse)
            case loaded(@Sendable (Service, HTTPRequest, Route, ModelRegistry) throws(APIError) -> HTTPHandlerResult)
        }

        let api: APIProtocol
        let access: Access
        /// The path's first parameter is a session id (logged only as a hash).
        let sessionID: Bool
        let answer: Answer

        static func native(_ access: Access = .infer, session: Bool = false,
                           _ answer: @escaping @Sendable (Service, HTTPRequest, Route, ModelRegistry) throws(APIError) -> HTTPHandlerResult) -> Endpoint {
            Endpoint(api: .native, access: access, sessionID: session, answer: .loaded(answer))
        }
        static func operational(_ api: APIProtocol = .native, _ answer: @escaping @Sendable (Service, HTTPRequest, Route) -> HTTPResponse) -> Endpoint {
            Endpoint(api: api, access: .open, sessionID: false, answer: .always(answer))
        }
        /// A `/v2/models/{name}[/versions/{version}]/…` route: its model version, found first.
        static func v2(_ answer: @escaping @Sendable (Service, HTTPRequest, Route, ModelRegistry.Entry, ModelRegistry) throws(APIError) -> HTTPHandlerResult) -> Endpoint {
            Endpoint(api: .v2, access: .infer, sessionID: false, answer: .loaded { s, request, route, registry throws(APIError) in
                try answer(s, request, route, try Service.entry(registry, String(route.parameter ?? ""), version: route.second), registry)
            })
        }
    }

    static let routes = RouteTable<Endpoint>([
        .init("/healthz", ["GET"], .operational { _, _, _ in reply(200, .object([("status", .string("ok"))])) }),
        .init("/readyz", ["GET"], .operational { s, _, _ in s.ready() }),
        .init("/metrics", ["GET"], .operational { s, _, _ in s.metricsText() }),
        .init("/v1/models", ["GET"], .native { s, _, _, registry in .now(s.native.listModels(registry)) }),
        .init("/v1/models/{name}", ["GET"], .native { s, _, route, registry throws(APIError) in
            .now(try s.native.modelInfo(registry, route.name, version: nil))
        }),
        .init("/v1/models/{name}/versions/{version}", ["GET"], .native { s, _, route, registry throws(APIError) in
            .now(try s.native.modelInfo(registry, route.name, version: route.second))
        }),
        .init("/v1/predict", ["POST"], .native { s, request, _, registry throws(APIError) in
            .now(try s.native.predict(request, try entry(registry, registry.defaultName)))
        }),
        .init("/v1/models/{name}/predict", ["POST"], .native { s, request, route, registry throws(APIError) in
            .now(try s.native.predict(request, try entry(registry, route.name)))
        }),
        .init("/v1/models/{name}/versions/{version}/predict", ["POST"], .native { s, request, route, registry throws(APIError) in
            .now(try s.native.predict(request, try entry(registry, route.name, version: route.second)))
        }),
        .init("/v1/models/{name}/reload", ["POST"], .native(.admin) { s, _, route, _ in s.native.reloadModel(route.name) }),
        .init("/v1/sessions", ["POST"], .native { s, request, _, registry throws(APIError) in try s.native.createSession(request, registry) }),
        .init("/v1/sessions/{id}", ["GET", "DELETE"], .native(session: true) { s, request, route, _ in
            request.method == "DELETE" ? s.native.deleteSession(route.name) : s.native.getSession(route.name)
        }),
        .init("/v1/sessions/{id}/step", ["POST"], .native(session: true) { s, request, route, registry throws(APIError) in
            try s.native.step(request, registry, route.name)
        }),
        .init("/v1/sessions/{id}/state", ["GET", "PUT"], .native(session: true) { s, request, route, _ throws(APIError) in
            request.method == "PUT" ? try s.native.putState(request, route.name) : s.native.getState(route.name)
        }),
        .init("/v1/sessions/{id}/migrate", ["POST"], .native(session: true) { s, request, route, registry throws(APIError) in
            try s.native.migrateSession(request, registry, route.name)
        }),
        .init("/openapi.json", ["GET"], .operational { _, _, _ in HTTPResponse(status: 200, headers: jsonHeaders, body: OpenAPI.document) }),
        .init("/v2", ["GET"], .operational(.v2) { _, _, _ in OpenInference.v2ServerMetadata() }),
        .init("/v2/health/live", ["GET"], .operational(.v2) { _, _, _ in reply(200, .object([("live", .bool(true))])) }),
        .init("/v2/health/ready", ["GET"], .operational(.v2) { s, _, _ in OpenInference.v2Ready(s.registry != nil && !s.isDraining) }),
    ] + ["", "/versions/{version}"].flatMap(v2ModelRoutes))

    /// The routes of a V2 model, or (`version` "/versions/{version}") of one of its versions.
    static func v2ModelRoutes(_ version: String) -> [RouteTable<Endpoint>.Route] {
        let routes: [RouteTable<Endpoint>.Route] = [
            .init("/v2/models/{name}\(version)", ["GET"], .v2 { s, _, _, entry, registry in .now(reply(200, s.v2.v2Metadata(entry, registry))) }),
            .init("/v2/models/{name}\(version)/ready", ["GET"], .v2 { _, _, route, _, _ in
                .now(reply(200, .object([("name", .string(route.name)), ("ready", .bool(true))])))
            }),
            .init("/v2/models/{name}\(version)/config", ["GET"], .v2 { s, _, _, entry, _ in .now(reply(200, s.v2.v2Config(entry))) }),
            .init("/v2/models/{name}\(version)/stats", ["GET"], .v2 { s, _, _, entry, _ in
                .now(reply(200, .object([("model_stats", .array([s.v2.v2Statistics(entry)]))])))
            }),
            .init("/v2/models/{name}\(version)/infer", ["POST"], .v2 { s, request, _, entry, _ throws(APIError) in try s.v2.v2Infer(request, entry) }),
        ]
        return routes
    }

    /// A matched request: its route and the path's parameters (a model name or session id,
    /// and a model version).
    struct Route {
        let index: Int
        let parameter: Substring?
        let second: Substring?

        var spec: RouteTable<Endpoint>.Route { Service.routes.routes[index] }
        var endpoint: Endpoint { spec.endpoint }
        var sessionID: Substring? { endpoint.sessionID ? parameter : nil }
        /// The first parameter: a model's name or a session's id.
        var name: String { parameter.map(String.init) ?? "" }

        /// The scope a token needs here; nil for the operational endpoints unless guarded.
        func scope(guardingHealth: Bool) -> AccessPolicy.Scope? {
            switch endpoint.access {
            case .admin: return .admin
            case .infer: return .infer
            case .open: return guardingHealth ? .infer : nil
            }
        }
    }

    static func route(_ path: String) -> Route? {
        routes.match(path).map { Route(index: $0.index, parameter: $0.first, second: $0.second) }
    }
}

extension Service.APIProtocol {
    /// The protocol a request is answered in before (or without) a route: `/v2` paths are V2's.
    init(path: String) {
        self = path == "/v2" || path.hasPrefix("/v2/") ? .v2 : .native
    }
}
