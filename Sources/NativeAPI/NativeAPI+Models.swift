import FrontEnd
import HTTPServer
import JSON
import ModelRuntime

/// GET /v1/models and /v1/models/{name}[/versions/{version}]; POST /v1/models/{name}/reload.
extension NativeAPI {
    public static func failures(_ registry: ModelRegistry, model: String? = nil) -> JSON {
        .array(registry.failed.filter { model == nil || $0.name == model }.map { f in
            var m: [(String, JSON)] = [("name", .string(f.name))]
            if let v = f.version { m.append(("version", .int(v))) }
            m.append(("error", .string(f.error)))
            if let kept = f.keptLoadedAt { m.append(("kept_loaded_at", .string(kept))) }
            return .object(m)
        })
    }

    public func listModels(_ registry: ModelRegistry) -> HTTPResponse {
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
    public func modelInfo(_ registry: ModelRegistry, _ name: String, version: Substring?) throws(APIError) -> HTTPResponse {
        let served = registry.versions[name] ?? []
        let retiring = context.models.retiringVersions().filter { $0.model.name == name }
        var e = served.first
        if let version {
            e = Int(version).flatMap { v in (served + retiring).first { $0.version == v } }
            guard e != nil else {
                throw APIError(.notFound, "model '\(name)' has no version '\(ControlCharacters.escaped(String(version)))' in memory (versions: \((served + retiring).map { String($0.version) }.joined(separator: ", ")))")
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

    /// `POST /v1/models/{name}/reload`: 200 with what changed; 422 when a version of it
    /// failed to load (what served before keeps serving); 404 when there is no such model.
    public func reloadModel(_ name: String) -> HTTPHandlerResult {
        // a reload reads files and builds models: off the HTTP worker thread
        later { [self] () throws(APIError) in
            let report: ModelHost.ReloadReport
            do { report = try context.models.reload(only: name) } catch {
                throw APIError(.unprocessable, "reload of '\(name)' refused: \(error); the models loaded before keep serving")
            }
            let registry = context.models.registry
            guard let registry, let versions = registry.versions[name] else {
                throw APIError(.notFound, "no model '\(name)' in the repository (loaded: \(registry?.names.joined(separator: ", ") ?? ""))")
            }
            if !report.failed.isEmpty {
                let serving = versions.map { String($0.version) }.joined(separator: ", ")
                throw APIError(.unprocessable, report.failed.map(\.description).joined(separator: "; ") + "; serving version \(serving)")
            }
            return Self.reply(200, .object([
                ("model", .string(name)), ("changed", .bool(!report.unchanged)),
                ("loaded", .array(report.loaded.filter { $0.name == name }.map { .int($0.version) })),
                ("retired", .array(report.retired.filter { $0.name == name }.map { .object([("version", .int($0.version)), ("sessions", .int($0.sessions))]) })),
                ("versions", .array(versions.map { .int($0.version) })), ("default_version", .int(versions[0].version)),
            ]))
        }
    }
}
