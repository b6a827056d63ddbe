import HTTPServer

/// The native API's routes, declared once: metrics labels, `Allow` and the dispatch in
/// `Service.answer` all come from this table.
extension Service {
    enum Endpoint: Sendable {
        case health, ready, metrics, models, model, predict, modelPredict, sessions, session, step, state

        /// Health, readiness and metrics stay open unless the policy guards them.
        var isOperational: Bool { self == .health || self == .ready || self == .metrics }
        /// Whether the path's first parameter is a session id (logged only as a hash).
        var hasSessionID: Bool { self == .session || self == .step || self == .state }
    }

    static let routes = RouteTable<Endpoint>([
        .init("/healthz", ["GET"], .health),
        .init("/readyz", ["GET"], .ready),
        .init("/metrics", ["GET"], .metrics),
        .init("/v1/models", ["GET"], .models),
        .init("/v1/models/{name}", ["GET"], .model),
        .init("/v1/predict", ["POST"], .predict),
        .init("/v1/models/{name}/predict", ["POST"], .modelPredict),
        .init("/v1/sessions", ["POST"], .sessions),
        .init("/v1/sessions/{id}", ["GET", "DELETE"], .session),
        .init("/v1/sessions/{id}/step", ["POST"], .step),
        .init("/v1/sessions/{id}/state", ["GET", "PUT"], .state),
    ])

    /// A matched request: its route and the path's parameter (a model name or session id).
    struct Route {
        let index: Int
        let parameter: Substring?

        var spec: RouteTable<Endpoint>.Route { Service.routes.routes[index] }
        var endpoint: Endpoint { spec.endpoint }
        var sessionID: Substring? { endpoint.hasSessionID ? parameter : nil }

        /// The scope a token needs here; nil for the operational endpoints unless guarded.
        func scope(guardingHealth: Bool) -> AccessPolicy.Scope? {
            endpoint.isOperational && !guardingHealth ? nil : .infer
        }
    }

    static func route(_ path: String) -> Route? {
        routes.match(path).map { Route(index: $0.index, parameter: $0.first) }
    }
}
