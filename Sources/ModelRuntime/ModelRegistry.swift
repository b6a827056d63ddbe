import Foundation
import Locking
import ModelFormat
import RecurrentCore
import Synchronization

/// The models being served, each in one or more versions: an immutable snapshot. A reload
/// builds the next snapshot (reusing every version whose files did not change) and the
/// service swaps it in; requests and sessions hold the entries they started with, so a
/// version leaves memory only once nothing refers to it. Each entry keeps a pool of
/// workspaces per batch size so predict allocates no scratch memory per request.
public final class ModelRegistry: Sendable {
    /// One version of one model. A class: requests pass entries around, and copying a struct
    /// of a model's many arrays and strings was a retain each, per copy.
    public final class Entry: Sendable {
        public let model: Model
        public let version: Int
        public let predictor: Predictor
        public let loadedAt: String
        public let loadSeconds: Double
        /// The version's directory (or file), and the model directory it is a version of.
        public let path: String
        public let sourcePath: String
        /// Its files as they were when it was loaded: a reload that finds them so reuses it.
        let stamp: FileStamp
        /// `RecurrentState.layout` of its sessions' states: a session moves between versions
        /// only when theirs are equal.
        public let stateLayout: String
        /// Floats in one session's state.
        public let stateWidth: Int
        /// What decides how a request's rows are read (features, row shape, token ids): rows
        /// read for one version step another that has the same.
        let inputSignature: String
        /// What its inferences cost, for the statistics every protocol reports.
        public let statistics = InferenceStatistics()
        /// Its inputs and outputs as named tensors.
        public let signature: TensorSignature
        /// Idle workspaces by batch size (1 ... pooledBatchLimit).
        let workspaces = Locked<[[WorkspaceBox]]>(Array(repeating: [], count: ModelRegistry.pooledBatchLimit + 1))
        /// Sessions running on it now (the session table counts them in and out).
        public let sessionCount = Atomic<Int>(0)
        /// Told when the version leaves memory (no snapshot, request or session holds it).
        public let onUnload = Locked<(@Sendable (String, Int) -> Void)?>(nil)

        public init(model: Model, version: Int = 1, path: String = "", sourcePath: String = "", loadSeconds: Double = 0) {
            self.model = model
            self.version = version
            self.path = path
            self.sourcePath = sourcePath
            self.loadSeconds = loadSeconds
            stamp = FileStamp(path: path)
            predictor = Predictor(model: model)
            loadedAt = iso8601(Date().timeIntervalSince1970)
            signature = TensorSignature(predictor: predictor)
            let state = model.pipeline.makeState(batchSize: 1)
            (stateLayout, stateWidth) = (state.layout, state.valueCount)
            inputSignature = Self.inputSignature(model)
        }

        fileprivate init(reloading old: Entry, stamp: FileStamp, model: Model, seconds: Double) {
            self.model = model
            version = old.version
            path = old.path
            sourcePath = old.sourcePath
            loadSeconds = seconds
            self.stamp = stamp
            predictor = Predictor(model: model)
            loadedAt = iso8601(Date().timeIntervalSince1970)
            signature = TensorSignature(predictor: predictor)
            let state = model.pipeline.makeState(batchSize: 1)
            (stateLayout, stateWidth) = (state.layout, state.valueCount)
            inputSignature = Self.inputSignature(model)
        }

        deinit { onUnload.withLock { $0 }?(model.name, version) }

        static func inputSignature(_ model: Model) -> String {
            let features = model.config.features.map { "\($0.name):\($0.derived?.rawValue ?? "")" }.joined(separator: ",")
            return "\(model.pipeline.inputShape.dims) [\(features)] tokens \(model.pipeline.inputEmbedding?.count ?? 0)"
        }
    }

    /// Each model's served versions, newest first (the first is its default).
    public let versions: [String: [Entry]]
    /// Names in load order.
    public let names: [String]
    public let defaultName: String
    /// The default model's newest served version.
    public let defaultEntry: Entry
    /// Models or versions that were asked for and could not be loaded, with why: reported by
    /// `/readyz`, `/v1/models` and model info while the others serve.
    public let failed: [Failure]
    /// Where the models came from, to reload them.
    public let repository: ModelRepository?

    public struct Failure: Sendable {
        /// The directory's (or file's) name, which is what the model would have been called.
        public let name: String
        /// The version directory that failed; nil for an unversioned model.
        public let version: Int?
        public let error: String
        /// Set when an earlier load of the version keeps serving in its place.
        public let keptLoadedAt: String?

        public init(name: String, version: Int? = nil, error: String, keptLoadedAt: String? = nil) {
            (self.name, self.version, self.error, self.keptLoadedAt) = (name, version, error, keptLoadedAt)
        }

        public var description: String {
            (version.map { "\(name) version \($0)" } ?? name) + ": " + error
                + (keptLoadedAt.map { " (the copy loaded at \($0) keeps serving)" } ?? "")
        }
    }

    /// A workspace is used by one thread at a time; the pool hands it over under its lock.
    final class WorkspaceBox: @unchecked Sendable {
        let workspace: Workspace
        init(_ w: Workspace) { workspace = w }
    }

    /// Models in one version each (version 1).
    public convenience init(models: [Model], defaultName: String = "", failed: [Failure] = []) throws(RuntimeError) {
        try self.init(entries: models.map { Entry(model: $0) }, defaultName: defaultName, failed: failed, repository: nil)
    }

    init(entries: [Entry], defaultName: String, failed: [Failure], repository: ModelRepository?) throws(RuntimeError) {
        guard !entries.isEmpty else {
            throw .loading(failed.isEmpty ? "no models to serve" : "no model could be loaded: " + failed.map(\.description).joined(separator: "; "))
        }
        self.failed = failed
        self.repository = repository
        var versions: [String: [Entry]] = [:]
        var names: [String] = []
        for e in entries {
            if versions[e.model.name] == nil { names.append(e.model.name) }
            guard versions[e.model.name]?.contains(where: { $0.version == e.version }) != true else {
                throw .loading("two models are named '\(e.model.name)'; give one a different name in its config.json")
            }
            versions[e.model.name, default: []].append(e)
        }
        self.versions = versions.mapValues { $0.sorted { $0.version > $1.version } }
        self.names = names
        if defaultName.isEmpty {
            self.defaultName = versions["temperature"] != nil ? "temperature" : names[0]
        } else {
            guard versions[defaultName] != nil else { throw .loading("default_model '\(defaultName)' is not loaded (loaded: \(names.joined(separator: ", ")))") }
            self.defaultName = defaultName
        }
        defaultEntry = self.versions[self.defaultName]![0]
    }

    /// Loads every path; without paths, every directory under `modelsDirectory`, the newest
    /// version of each. A model that fails is reported (`failed`) and the others serve, unless
    /// `requireAll`.
    public static func load(paths: [String], modelsDirectory: String, defaultName: String,
                            requireAll: Bool = false, policy: VersionPolicy = VersionPolicy()) throws(RuntimeError) -> ModelRegistry {
        try load(ModelRepository(paths: paths, directory: modelsDirectory, policy: policy), defaultName: defaultName, requireAll: requireAll)
    }

    /// Loads the repository's models by its version policy. With `previous`, a version whose
    /// files are as they were is reused as it is, and one that fails to load again keeps its
    /// earlier copy serving; with `only`, the other models are carried over untouched.
    public static func load(_ repository: ModelRepository, defaultName: String, requireAll: Bool = false,
                            previous: ModelRegistry? = nil, only: String? = nil) throws(RuntimeError) -> ModelRegistry {
        let sources = try repository.scan()
        let earlier = previous?.allEntries ?? []
        var entries: [Entry] = []
        var failed: [Failure] = []
        for source in sources {
            let before = earlier.filter { $0.sourcePath == source.path }
            if let only, source.directoryName != only, !before.contains(where: { $0.model.name == only }) {
                entries += before
                failed += previous?.failed.filter { f in f.name == source.directoryName } ?? []
                continue
            }
            let (loaded, failures) = loadVersions(source, rule: repository.policy.rule(for: source.directoryName), earlier: before)
            if requireAll, let first = failures.first { throw .loading(first.description) }
            entries += loaded
            failed += failures
        }
        // a model that is gone from disk goes from the snapshot (its sessions keep their entries)
        var seen = Set<String>()
        var unique: [Entry] = []
        for e in entries {
            let key = "\(e.model.name)#\(e.version)"
            if seen.insert(key).inserted { unique.append(e); continue }
            failed.append(Failure(name: e.model.name, version: e.version, error: "\(e.path): another model directory already serves '\(e.model.name)' version \(e.version); give one a different name in its config.json"))
        }
        if requireAll, let first = failed.first { throw .loading(first.description) }
        return try ModelRegistry(entries: unique, defaultName: defaultName, failed: failed, repository: repository)
    }

    /// A source's versions by `rule`: the newest N that load, all, or the ones named.
    static func loadVersions(_ source: ModelRepository.Source, rule: VersionPolicy.Rule, earlier: [Entry]) -> ([Entry], [Failure]) {
        var loaded: [Entry] = []
        var failed: [Failure] = []
        var candidates = source.versions
        var wanted = candidates.count
        switch rule {
        case let .latest(n): wanted = n
        case .all: break
        case let .specific(numbers):
            candidates = candidates.filter { numbers.contains($0.number) }
            for n in numbers where !source.versions.contains(where: { $0.number == n }) {
                failed.append(Failure(name: source.directoryName, version: n, error: "\(source.path) has no version directory \(n)"))
            }
        }
        for (number, path) in candidates where loaded.count < wanted {
            let old = earlier.first { $0.path == path && $0.version == number }
            let stamp = FileStamp(path: path)
            if let old, old.stamp == stamp {
                loaded.append(old)
                continue
            }
            let start = Date()
            do {
                let model = try Model.load(path: path, name: source.versioned ? source.directoryName : nil)
                let seconds = Date().timeIntervalSince(start)
                loaded.append(old.map { Entry(reloading: $0, stamp: stamp, model: model, seconds: seconds) }
                    ?? Entry(model: model, version: number, path: path, sourcePath: source.path, loadSeconds: seconds))
            } catch {
                failed.append(Failure(name: old?.model.name ?? source.directoryName, version: source.versioned ? number : nil,
                                      error: error.description, keptLoadedAt: old?.loadedAt))
                if let old { loaded.append(old) }
            }
        }
        return (loaded, failed)
    }

    /// Loads a version the policy does not serve but a stored session runs on (nil when it is
    /// not on disk or does not load): it lives as long as such sessions do.
    public func loadPinned(name: String, version: Int) -> Entry? {
        guard let sources = try? repository?.scan(),
              let source = sources.first(where: { $0.versioned && $0.directoryName == name }),
              let path = source.versions.first(where: { $0.number == version })?.path,
              let model = try? Model.load(path: path, name: name) else { return nil }
        return Entry(model: model, version: version, path: path, sourcePath: source.path)
    }

    /// Every served version of every model.
    public var allEntries: [Entry] { names.flatMap { versions[$0]! } }

    /// A model's default (newest served) version.
    public subscript(name: String) -> Entry? { versions[name]?.first }

    public subscript(name: String, version: Int) -> Entry? { versions[name]?.first { $0.version == version } }

    static let pooledBatchLimit = 64
    static let pooledPerSize = 16

    /// Runs `body` with a workspace for `model` at `batchSize`, taken from and returned to the pool.
    public static func withWorkspace<T>(_ entry: Entry, batchSize: Int, _ body: (Workspace) throws -> T) rethrows -> T {
        // Pool the common small batches only, a few per size, so odd batch sizes cannot grow
        // the pool without bound; larger batches get scratch of their own.
        guard batchSize <= Self.pooledBatchLimit else {
            return try body(Workspace(pipeline: entry.model.pipeline, batchSize: batchSize))
        }
        let box = entry.workspaces.withLock { $0[batchSize].popLast() }
            ?? WorkspaceBox(Workspace(pipeline: entry.model.pipeline, batchSize: batchSize))
        defer {
            entry.workspaces.withLock { idle in
                if idle[batchSize].count < Self.pooledPerSize { idle[batchSize].append(box) }
            }
        }
        return try body(box.workspace)
    }
}
