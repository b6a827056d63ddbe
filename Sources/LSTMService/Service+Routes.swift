import HTTPServer

/// Every route, declared once: metrics labels, `Allow` and the dispatch in `Service.answer`
/// all come from this table. A route belongs to a protocol, whose envelope its errors take.
extension Service {
    /// The native API (`/v1`, health, metrics) or the Open Inference Protocol V2 (`/v2`).
    enum APIProtocol: Sendable { case native, v2 }

    enum Endpoint: Sendable {
        case health, ready, metrics, openapi, models, model, modelVersion, predict, modelPredict, versionPredict, reload
        case sessions, session, step, state, migrate
        case v2Server, v2Live, v2Ready, v2Model, v2ModelReady, v2ModelConfig, v2ModelStats, v2Infer

        /// Health, readiness, metrics and the API description stay open unless the policy guards them.
        var isOperational: Bool {
            switch self {
            case .health, .ready, .metrics, .openapi, .v2Server, .v2Live, .v2Ready: return true
            default: return false
            }
        }
        /// Whether the path's first parameter is a session id (logged only as a hash).
        var hasSessionID: Bool { self == .session || self == .step || self == .state || self == .migrate }

        var apiProtocol: APIProtocol {
            switch self {
            case .v2Server, .v2Live, .v2Ready, .v2Model, .v2ModelReady, .v2ModelConfig, .v2ModelStats, .v2Infer: return .v2
            default: return .native
            }
        }
    }

    static let routes = RouteTable<Endpoint>([
        .init("/healthz", ["GET"], .health),
        .init("/readyz", ["GET"], .ready),
        .init("/metrics", ["GET"], .metrics),
        .init("/v1/models", ["GET"], .models),
        .init("/v1/models/{name}", ["GET"], .model),
        .init("/v1/models/{name}/versions/{version}", ["GET"], .modelVersion),
        .init("/v1/predict", ["POST"], .predict),
        .init("/v1/models/{name}/predict", ["POST"], .modelPredict),
        .init("/v1/models/{name}/versions/{version}/predict", ["POST"], .versionPredict),
        .init("/v1/models/{name}/reload", ["POST"], .reload),
        .init("/v1/sessions", ["POST"], .sessions),
        .init("/v1/sessions/{id}", ["GET", "DELETE"], .session),
        .init("/v1/sessions/{id}/step", ["POST"], .step),
        .init("/v1/sessions/{id}/state", ["GET", "PUT"], .state),
        .init("/v1/sessions/{id}/migrate", ["POST"], .migrate),
        .init("/openapi.json", ["GET"], .openapi),
        .init("/v2", ["GET"], .v2Server),
        .init("/v2/health/live", ["GET"], .v2Live),
        .init("/v2/health/ready", ["GET"], .v2Ready),
        .init("/v2/models/{name}", ["GET"], .v2Model),
        .init("/v2/models/{name}/versions/{version}", ["GET"], .v2Model),
        .init("/v2/models/{name}/ready", ["GET"], .v2ModelReady),
        .init("/v2/models/{name}/versions/{version}/ready", ["GET"], .v2ModelReady),
        .init("/v2/models/{name}/config", ["GET"], .v2ModelConfig),
        .init("/v2/models/{name}/versions/{version}/config", ["GET"], .v2ModelConfig),
        .init("/v2/models/{name}/stats", ["GET"], .v2ModelStats),
        .init("/v2/models/{name}/versions/{version}/stats", ["GET"], .v2ModelStats),
        .init("/v2/models/{name}/infer", ["POST"], .v2Infer),
        .init("/v2/models/{name}/versions/{version}/infer", ["POST"], .v2Infer),
    ])

    /// A matched request: its route and the path's parameters (a model name or session id,
    /// and a model version).
    struct Route {
        let index: Int
        let parameter: Substring?
        let second: Substring?

        var spec: RouteTable<Endpoint>.Route { Service.routes.routes[index] }
        var endpoint: Endpoint { spec.endpoint }
        var sessionID: Substring? { endpoint.hasSessionID ? parameter : nil }

        /// The scope a token needs here; nil for the operational endpoints unless guarded.
        /// Reloading the models is an operator's act: `admin`.
        func scope(guardingHealth: Bool) -> AccessPolicy.Scope? {
            if endpoint == .reload { return .admin }
            return endpoint.isOperational && !guardingHealth ? nil : .infer
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
