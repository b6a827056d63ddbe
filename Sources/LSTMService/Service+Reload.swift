import HTTPServer
import JSON
import ModelRuntime
import SessionStore

/// The model host's events, logged and counted; each snapshot's answer writers made as it is
/// installed (`PerVersion`).
struct ModelLog: ModelHostEvents {
    let log: Log
    let metrics: Metrics
    let installing: [@Sendable (ModelRegistry) -> Void]

    func modelEvent(_ event: ModelHostEvent) {
        switch event {
        case let .installing(registry):
            for install in installing { install(registry) }
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
