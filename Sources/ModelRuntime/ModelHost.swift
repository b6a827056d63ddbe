import Locking

/// The served models over time: the installed snapshot (`ModelRegistry`), reloads one at a
/// time, and the versions a reload took out of the snapshot, which retire: they stay in memory,
/// still running the sessions pinned to them and the requests under way, and leave with the
/// last (`ModelHostEvents.unloaded`). `POST /v1/models/{name}/reload`, SIGHUP and polling all
/// reload through it.
public final class ModelHost: Sendable {
    /// The model `/v1/predict` and new sessions use (empty: temperature if loaded, else the first).
    public let defaultModel: String
    let events: any ModelHostEvents
    private let current = Locked<ModelRegistry?>(nil)
    /// Versions out of the snapshot, held weakly: nil once they left memory.
    private let retired = Locked<[Retired]>([])
    private struct Retired: Sendable { weak var entry: ModelRegistry.Entry? }
    /// Reloads run one at a time.
    private let reloading = Locked(0)

    public init(defaultModel: String, events: any ModelHostEvents) {
        self.defaultModel = defaultModel
        self.events = events
    }

    /// The snapshot serving now; nil until the first install.
    public var registry: ModelRegistry? { current.withLock { $0 } }

    /// Makes `registry` the snapshot: requests under way finish on the one they began with,
    /// and versions it drops retire until nothing runs on them.
    public func install(_ registry: ModelRegistry) {
        for e in registry.allEntries { watchUnload(e) }
        events.modelEvent(.installing(registry))
        let previous = current.withLock { old in defer { old = registry }; return old }
        if let previous {
            let entries = registry.allEntries
            retire(previous.allEntries.filter { old in !entries.contains { $0 === old } })
        }
    }

    /// Loads, beside `registry`, the versions stored sessions run on that its policy does not
    /// serve; they retire at once (serving their sessions only). The host holds them weakly:
    /// the caller keeps them until their sessions do.
    public func loadPinned(_ stored: [(model: String, version: Int)], beside registry: ModelRegistry) -> [ModelRegistry.Entry] {
        var pinned: [String: ModelRegistry.Entry] = [:]
        for (model, v) in stored {
            guard registry[model, v] == nil, pinned["\(model)#\(v)"] == nil,
                  let entry = registry.loadPinned(name: model, version: v) else { continue }
            watchUnload(entry)
            pinned["\(model)#\(v)"] = entry
            events.modelEvent(.loadedForStoredSessions(entry, served: registry.versions[model]?.map(\.version) ?? []))
        }
        retire(Array(pinned.values))
        return Array(pinned.values)
    }

    /// Tells the events when a version leaves memory.
    private func watchUnload(_ entry: ModelRegistry.Entry) {
        entry.onUnload.withLock { then in
            guard then == nil else { return }
            then = { [events] name, version in events.modelEvent(.unloaded(name: name, version: version)) }
        }
    }

    private func retire(_ entries: [ModelRegistry.Entry]) {
        retired.withLock { list in
            list.removeAll { $0.entry == nil }
            list += entries.map { Retired(entry: $0) }
        }
    }

    /// Versions out of the snapshot that are still in memory.
    public func retiringVersions() -> [ModelRegistry.Entry] {
        retired.withLock { list in
            list.removeAll { $0.entry == nil }
            return list.compactMap(\.entry)
        }
    }

    /// The loaded version a stored session ran on, served or retiring (`installing`: the
    /// snapshot about to be installed, at start-up), preferring the one with its fingerprint.
    public func loadedVersion(_ name: String, _ version: Int, _ fingerprint: String, installing: ModelRegistry? = nil) -> ModelRegistry.Entry? {
        let served = (registry ?? installing)?[name, version]
        let candidates = [served].compactMap { $0 } + retiringVersions().filter { $0.model.name == name && $0.version == version }
        // a row from before fingerprints takes any; else the first, which the caller finds to differ
        return candidates.first { fingerprint.isEmpty || $0.model.fingerprint == fingerprint } ?? candidates.first
    }

    /// What a reload did.
    public struct ReloadReport: Sendable {
        public let loaded: [(name: String, version: Int)]
        public let retired: [(name: String, version: Int, sessions: Int)]
        public let failed: [ModelRegistry.Failure]
        public let unchanged: Bool
    }

    /// Reloads the repository (`only`: that model alone) and installs the result: the next
    /// snapshot is built beside the one serving (unchanged versions reused, failed ones
    /// reported with the old copy kept). A reload that cannot build a snapshot at all (no
    /// model left to serve) changes nothing and throws.
    public func reload(only: String? = nil) throws(RuntimeError) -> ReloadReport {
        try reloading.withLock { (_: inout Int) throws(RuntimeError) -> ReloadReport in
            guard let current = registry, let repository = current.repository else {
                throw RuntimeError.loading("models are still loading")
            }
            let next: ModelRegistry
            do throws(RuntimeError) {
                next = try ModelRegistry.load(repository, defaultName: defaultModel, previous: current, only: only)
            } catch {
                events.modelEvent(.reloadRefused(error))
                throw error
            }
            let before = current.allEntries, after = next.allEntries
            let loaded = after.filter { e in !before.contains { $0 === e } }
            let dropped = before.filter { e in !after.contains { $0 === e } }
            install(next)
            let failed = next.failed.filter { only == nil || $0.name == only }
            for e in loaded { events.modelEvent(.loaded(e)) }
            for e in dropped { events.modelEvent(.retired(e, sessions: e.sessionCount.load(ordering: .relaxed))) }
            for f in failed { events.modelEvent(.failed(f)) }
            events.modelEvent(.reloaded(ok: failed.isEmpty))
            return ReloadReport(loaded: loaded.map { ($0.model.name, $0.version) },
                                retired: dropped.map { ($0.model.name, $0.version, $0.sessionCount.load(ordering: .relaxed)) },
                                failed: failed, unchanged: loaded.isEmpty && dropped.isEmpty)
        }
    }
}

/// What the host reports as models come and go, for whoever logs and counts it.
public protocol ModelHostEvents: Sendable {
    func modelEvent(_ event: ModelHostEvent)
}

public enum ModelHostEvent: Sendable {
    /// This snapshot is about to serve (what is kept per version can be made for it).
    case installing(ModelRegistry)
    /// A reload loaded this version.
    case loaded(ModelRegistry.Entry)
    /// A reload took this version out of the snapshot; `sessions` stay on it.
    case retired(ModelRegistry.Entry, sessions: Int)
    /// A version or model a reload could not load (what served before keeps serving).
    case failed(ModelRegistry.Failure)
    /// A reload could not build a snapshot; nothing changed.
    case reloadRefused(RuntimeError)
    /// A reload finished: whether every version loaded.
    case reloaded(ok: Bool)
    /// A version the policy does not serve, loaded for the stored sessions that run on it.
    case loadedForStoredSessions(ModelRegistry.Entry, served: [Int])
    /// A version left memory: no snapshot, session or request holds it.
    case unloaded(name: String, version: Int)
}
