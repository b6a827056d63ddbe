import Foundation
import Locking
import ModelFormat
import RecurrentCore

/// The loaded models, immutable once the server starts, and a pool of workspaces per model and
/// batch size so predict allocates no scratch memory per request.
public final class ModelRegistry: Sendable {
    /// A class: requests pass entries around, and copying a struct of a model's many arrays
    /// and strings was a retain each, per copy.
    public final class Entry: Sendable {
        public let model: Model
        public let predictor: Predictor
        public let loadedAt: String
        /// What its inferences cost, for the statistics every protocol reports.
        public let statistics = InferenceStatistics()
        /// Its inputs and outputs as named tensors.
        public let signature: TensorSignature
        /// Idle workspaces by batch size (1 ... pooledBatchLimit).
        let workspaces = Locked<[[WorkspaceBox]]>(Array(repeating: [], count: ModelRegistry.pooledBatchLimit + 1))

        init(model: Model, predictor: Predictor, loadedAt: String) {
            self.model = model
            self.predictor = predictor
            self.loadedAt = loadedAt
            signature = TensorSignature(predictor: predictor)
        }
    }

    public let entries: [String: Entry]
    /// Names in load order.
    public let names: [String]
    public let defaultName: String
    /// Models that were asked for and could not be loaded, with why: reported by `/readyz`
    /// and `/v1/models` while the others serve.
    public let failed: [Failure]
    /// Seconds each model took to load (read, validate, repack), by name.
    public let loadSeconds: [String: Double]

    public struct Failure: Sendable {
        /// The directory's (or file's) name, which is what the model would have been called.
        public let name: String
        public let error: String
    }

    /// A workspace is used by one thread at a time; the pool hands it over under its lock.
    final class WorkspaceBox: @unchecked Sendable {
        let workspace: Workspace
        init(_ w: Workspace) { workspace = w }
    }

    public init(models: [Model], defaultName: String = "", failed: [Failure] = [], loadSeconds: [String: Double] = [:]) throws(RuntimeError) {
        guard !models.isEmpty else {
            throw .loading(failed.isEmpty ? "no models to serve" : "no model could be loaded: " + failed.map { "\($0.name): \($0.error)" }.joined(separator: "; "))
        }
        self.failed = failed
        self.loadSeconds = loadSeconds
        var entries: [String: Entry] = [:]
        let now = iso8601(Date().timeIntervalSince1970)
        for m in models {
            guard entries[m.name] == nil else { throw .loading("two models are named '\(m.name)'; give one a different name in its config.json") }
            entries[m.name] = Entry(model: m, predictor: Predictor(model: m), loadedAt: now)
        }
        self.entries = entries
        names = models.map(\.name)
        if defaultName.isEmpty {
            self.defaultName = entries["temperature"] != nil ? "temperature" : names[0]
        } else {
            guard entries[defaultName] != nil else { throw .loading("default_model '\(defaultName)' is not loaded (loaded: \(names.joined(separator: ", ")))") }
            self.defaultName = defaultName
        }
    }

    /// Loads every path; without paths, every directory under `modelsDirectory`. A model that
    /// fails is reported (`failed`) and the others serve, unless `requireAll`.
    public static func load(paths: [String], modelsDirectory: String, defaultName: String,
                            requireAll: Bool = false) throws(RuntimeError) -> ModelRegistry {
        var list = paths
        if list.isEmpty {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: modelsDirectory)) ?? []
            list = names.sorted().map { modelsDirectory + "/" + $0 }.filter {
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && isDirectory.boolValue
            }
            guard !list.isEmpty else { throw .loading("no model directories under \(modelsDirectory)") }
        }
        var models: [Model] = []
        var failed: [Failure] = []
        var seconds: [String: Double] = [:]
        for path in list {
            let start = Date()
            do {
                let model = try Model.load(path: path)
                models.append(model)
                seconds[model.name] = Date().timeIntervalSince(start)
            } catch {
                if requireAll { throw .loading(error.description) }
                failed.append(Failure(name: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent, error: error.description))
            }
        }
        return try ModelRegistry(models: models, defaultName: defaultName, failed: failed, loadSeconds: seconds)
    }

    public subscript(name: String) -> Entry? { entries[name] }

    static let pooledBatchLimit = 64
    static let pooledPerSize = 16

    /// Runs `body` with a workspace for `model` at `batchSize`, taken from and returned to the pool.
    public func withWorkspace<T>(_ entry: Entry, batchSize: Int, _ body: (Workspace) throws -> T) rethrows -> T {
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
