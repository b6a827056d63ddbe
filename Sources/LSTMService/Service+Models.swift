import HTTPServer
import JSON
import ModelRuntime

/// GET /healthz, /readyz, /metrics, /v1/models, /v1/models/{name}.
extension Service {
    func ready() -> HTTPResponse {
        if isDraining {
            return Self.reply(503, .object([("status", .string("draining"))]))
        }
        guard let registry else {
            return Self.reply(503, .object([("status", .string("loading"))]), headers: [("Retry-After", "1")])
        }
        var members: [(String, JSON)] = [("status", .string("ready")), ("models", .array(registry.names.map { .string($0) }))]
        if !registry.failed.isEmpty { members.append(("failed", Self.failures(registry))) }
        return Self.reply(200, .object(members))
    }

    static func failures(_ registry: ModelRegistry) -> JSON {
        .array(registry.failed.map { .object([("name", .string($0.name)), ("error", .string($0.error))]) })
    }

    func metricsText() -> HTTPResponse {
        let text = metrics.render(activeSessions: sessions.activeCount, models: registry, transport: transport())
        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: Array(text.utf8))
    }

    func listModels(_ registry: ModelRegistry) -> HTTPResponse {
        let list: [JSON] = registry.names.map { name in
            let e = registry[name]!
            return .object([("name", .string(name)), ("default", .bool(name == registry.defaultName)),
                            ("cell", .string(e.model.pipeline.recurrentLayers.first.map { $0.kind.description } ?? "none")),
                            ("parameters", .int(e.model.pipeline.parameterCount)),
                            ("streamable", .bool(e.model.pipeline.isStreamable))])
        }
        var members: [(String, JSON)] = [("models", .array(list)), ("default", .string(registry.defaultName))]
        if !registry.failed.isEmpty { members.append(("failed", Self.failures(registry))) }
        return Self.reply(200, .object(members))
    }

    func modelInfo(_ registry: ModelRegistry, _ name: String) throws(APIError) -> HTTPResponse {
        let e = try Self.entry(registry, name)
        return Self.reply(200, ModelInfo.json(e.model, loadedAt: e.loadedAt))
    }
}
