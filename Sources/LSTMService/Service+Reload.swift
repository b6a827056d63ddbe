import HTTPServer
import JSON
import ModelRuntime
import SessionStore

/// Reloading the model repository while serving: `POST /v1/models/{name}/reload`, SIGHUP and
/// polling all come here. The next snapshot is built beside the one serving (unchanged
/// versions reused, failed ones reported with the old copy kept) and swapped in; versions it
/// drops retire, still running the sessions pinned to them, and leave memory with the last.
extension Service {
    /// A version out of the snapshot, held weakly: nil once it left memory.
    struct Retired: Sendable {
        weak var entry: ModelRegistry.Entry?
    }

    /// What a reload did.
    public struct ReloadReport: Sendable {
        public let loaded: [(name: String, version: Int)]
        public let retired: [(name: String, version: Int, sessions: Int)]
        public let failed: [ModelRegistry.Failure]
        public let unchanged: Bool
    }

    /// Logs (and counts) a version leaving memory.
    func watchUnload(_ entry: ModelRegistry.Entry) {
        entry.onUnload.withLock { then in
            guard then == nil else { return }
            then = { [log, metrics] name, version in
                metrics.modelUnloaded()
                log(.info, "model \(name) version \(version) unloaded: no session or request runs on it")
            }
        }
    }

    func retire(_ entries: [ModelRegistry.Entry]) {
        retired.withLock { list in
            list.removeAll { $0.entry == nil }
            list += entries.map { Retired(entry: $0) }
        }
    }

    /// Versions out of the snapshot that are still in memory.
    func retiringVersions() -> [ModelRegistry.Entry] {
        retired.withLock { list in
            list.removeAll { $0.entry == nil }
            return list.compactMap(\.entry)
        }
    }

    /// The loaded version a stored session ran on: served or retiring.
    @Sendable func loadedVersion(_ name: String, _ version: Int, _ fingerprint: String, installing: ModelRegistry? = nil) -> ModelRegistry.Entry? {
        let served = (registry ?? installing)?[name, version]
        let retiring = retiringVersions().filter { $0.model.name == name && $0.version == version }
        return Self.pick([served].compactMap { $0 } + retiring, fingerprint)
    }

    /// The candidate with the row's fingerprint (any, for a row from before fingerprints);
    /// else the first, which the caller then finds to differ.
    static func pick(_ candidates: [ModelRegistry.Entry], _ fingerprint: String) -> ModelRegistry.Entry? {
        candidates.first { fingerprint.isEmpty || $0.model.fingerprint == fingerprint } ?? candidates.first
    }

    /// Reloads the repository (`only`: that model alone) and installs the result. A reload
    /// that cannot build a snapshot at all (no model left to serve) changes nothing and throws.
    public func reload(only: String? = nil) throws(RuntimeError) -> ReloadReport {
        try reloadLock.withLock { (_: inout Int) throws(RuntimeError) -> ReloadReport in
            guard let current = registry, let repository = current.repository else {
                throw RuntimeError.loading("models are still loading")
            }
            let next: ModelRegistry
            do throws(RuntimeError) {
                next = try ModelRegistry.load(repository, defaultName: configuration.defaultModel, previous: current, only: only)
            } catch {
                metrics.modelReload(ok: false)
                log(.warning, "reload refused, the models loaded before keep serving: \(error)")
                throw error
            }
            let before = current.allEntries, after = next.allEntries
            let loaded = after.filter { e in !before.contains { $0 === e } }
            let dropped = before.filter { e in !after.contains { $0 === e } }
            install(next)
            let failed = next.failed.filter { only == nil || $0.name == only }
            for e in loaded { log(.info, "model \(e.model.name) version \(e.version) loaded in \(Int(e.loadSeconds * 1000)) ms (sha256 \(e.model.weightsSHA256.prefix(12)))") }
            for e in dropped {
                let n = e.sessionCount.load(ordering: .relaxed)
                log(.info, "model \(e.model.name) version \(e.version) retired from new requests; \(n) sessions stay on it until they end or migrate")
            }
            for f in failed { log(.warning, "model \(f.description)") }
            metrics.modelReload(ok: failed.isEmpty)
            return ReloadReport(loaded: loaded.map { ($0.model.name, $0.version) },
                                retired: dropped.map { ($0.model.name, $0.version, $0.sessionCount.load(ordering: .relaxed)) },
                                failed: failed, unchanged: loaded.isEmpty && dropped.isEmpty)
        }
    }

    /// `POST /v1/models/{name}/reload`: 200 with what changed; 422 when a version of it
    /// failed to load (what served before keeps serving); 404 when there is no such model.
    func reloadModel(_ name: String) -> HTTPHandlerResult {
        // a reload reads files and builds models: off the HTTP worker thread
        later { [self] () throws(APIError) in
            let report: ReloadReport
            do { report = try reload(only: name) } catch {
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
