import HTTPServer
import JSON
import ModelRuntime
import SessionStore

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

    static func failures(_ registry: ModelRegistry, model: String? = nil) -> JSON {
        .array(registry.failed.filter { model == nil || $0.name == model }.map { f in
            var m: [(String, JSON)] = [("name", .string(f.name))]
            if let v = f.version { m.append(("version", .int(v))) }
            m.append(("error", .string(f.error)))
            if let kept = f.keptLoadedAt { m.append(("kept_loaded_at", .string(kept))) }
            return .object(m)
        })
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
                            ("streamable", .bool(e.model.pipeline.isStreamable)),
                            ("version", .int(e.version)), ("versions", .array(registry.versions[name]!.map { .int($0.version) }))])
        }
        var members: [(String, JSON)] = [("models", .array(list)), ("default", .string(registry.defaultName))]
        if !registry.failed.isEmpty { members.append(("failed", Self.failures(registry))) }
        return Self.reply(200, .object(members))
    }

    /// A model's default version (or the one asked for: served or retiring), with every
    /// version in memory, its state and sessions, and the model's failed loads.
    func modelInfo(_ registry: ModelRegistry, _ name: String, version: Substring?) throws(APIError) -> HTTPResponse {
        let served = registry.versions[name] ?? []
        let retiring = models.retiringVersions().filter { $0.model.name == name }
        var e = served.first
        if let version {
            e = Int(version).flatMap { v in (served + retiring).first { $0.version == v } }
            guard e != nil else {
                throw APIError(.notFound, "model '\(name)' has no version '\(Log.escaped(String(version)))' in memory (versions: \((served + retiring).map { String($0.version) }.joined(separator: ", ")))")
            }
        }
        guard let e else { _ = try Self.entry(registry, name); throw APIError(.notFound, "no model '\(name)'") }
        func row(_ v: ModelRegistry.Entry, _ status: String) -> JSON {
            .object([("version", .int(v.version)), ("status", .string(status)), ("default", .bool(v === served.first)),
                     ("sessions", .int(v.sessionCount.load(ordering: .relaxed))), ("loaded_at", .string(v.loadedAt)),
                     ("sha256", .string(v.model.weightsSHA256))])
        }
        let versions = served.map { row($0, "serving") } + retiring.sorted { $0.version > $1.version }.map { row($0, "retiring") }
        guard case var .object(members) = ModelInfo.json(e.model, loadedAt: e.loadedAt) else { return Self.reply(200, ModelInfo.json(e.model)) }
        members.insert(("version", .int(e.version)), at: 1)
        members += [("versions", .array(versions)), ("version_policy", .string(registry.repository?.policy.rule(for: name).description ?? "latest"))]
        if registry.failed.contains(where: { $0.name == name }) { members.append(("failed", Self.failures(registry, model: name))) }
        return Self.reply(200, .object(members))
    }
}
