import HTTPServer
import JSON
import Locking
import ModelRuntime
import SessionStore

/// The model host's events, logged and counted; each snapshot's V2 answer writers made as it
/// is installed (and the last one's let go, so that retired versions can leave memory).
struct ModelLog: ModelHostEvents {
    let log: Log
    let metrics: Metrics
    let v2Answers: Locked<[ObjectIdentifier: V2Answers]>

    func modelEvent(_ event: ModelHostEvent) {
        switch event {
        case let .installing(registry):
            let answers = Dictionary(registry.allEntries.map { (ObjectIdentifier($0), V2Answers($0)) }, uniquingKeysWith: { a, _ in a })
            v2Answers.withLock { $0 = answers }
        case let .loaded(e):
            log(.info, "model \(e.model.name) version \(e.version) loaded in \(Int(e.loadSeconds * 1000)) ms (sha256 \(e.model.weightsSHA256.prefix(12)))")
        case let .retired(e, n):
            log(.info, "model \(e.model.name) version \(e.version) retired from new requests; \(n) sessions stay on it until they end or migrate")
        case let .failed(f):
            log(.warning, "model \(f.description)")
        case let .reloadRefused(error):
            metrics.modelReload(ok: false)
            log(.warning, "reload refused, the models loaded before keep serving: \(error)")
        case let .reloaded(ok):
            metrics.modelReload(ok: ok)
        case let .loadedForStoredSessions(e, served):
            log(.info, "model \(e.model.name) version \(e.version) loaded for its stored sessions (the version policy serves \(served.isEmpty ? "no version" : served.map(String.init).joined(separator: ", ")))")
        case let .unloaded(name, version):
            metrics.modelUnloaded()
            log(.info, "model \(name) version \(version) unloaded: no session or request runs on it")
        }
    }
}

extension Service {
    /// `POST /v1/models/{name}/reload`: 200 with what changed; 422 when a version of it
    /// failed to load (what served before keeps serving); 404 when there is no such model.
    func reloadModel(_ name: String) -> HTTPHandlerResult {
        // a reload reads files and builds models: off the HTTP worker thread
        later { [self] () throws(APIError) in
            let report: ModelHost.ReloadReport
            do { report = try models.reload(only: name) } catch {
                throw APIError(.unprocessable, "reload of '\(name)' refused: \(error); the models loaded before keep serving")
            }
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
