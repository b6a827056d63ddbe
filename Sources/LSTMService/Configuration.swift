import Foundation
import FrontEnd
import JSON
import ModelRuntime
import SessionStore
import SessionStoreSQLite

/// Every setting of the server, with its default. Sources layer as flags > environment
/// (`LSTM_SERVE_*`) > `config/lstm-serve.json` > these defaults; `settings` declares each key
/// (Configuration+Settings.swift), and README's table is checked against it.
public struct Configuration: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// MHD worker threads; 0 means one per core.
    public var threads = 0
    /// Model directories or bare .safetensors files; empty means every directory under `modelsDirectory`.
    public var models: [String] = []
    public var modelsDirectory = "models"
    /// The model `/v1/predict` and new sessions use; empty means `temperature` if loaded, else the first.
    public var defaultModel = ""
    /// Which versions of each model are served (`latest`, `latest:N`, `all`, `specific:V,V`,
    /// per model after `;` as `name=rule`).
    public var modelVersionPolicy = VersionPolicy()
    /// Seconds between looks at the model repository for new or changed versions (0: off;
    /// reload by `POST /v1/models/{name}/reload` or SIGHUP).
    public var modelPollSeconds = 0.0
    public var maxBodyBytes = 1 << 20
    public var connectionTimeoutSeconds = 30
    /// Seconds from a connection's start or previous answer by which the next request must
    /// have fully arrived (MHD's idle timeout restarts on every byte; this does not).
    public var requestDeadlineSeconds = 30.0
    public var connectionLimit = 1024
    /// A quarter of the default connection limit: one client cannot hold every slot.
    public var perIPConnectionLimit = 256
    public var connectionMemoryLimit = 32 * 1024
    public var sessionTTLSeconds = 1800.0
    public var maxSessions = 10_000
    /// "reject" (429 with Retry-After when full) or "evict" (drop the least recently used).
    public var sessionFullPolicy = "reject"
    /// Session store shards (actors); 0 means max(16, 4 × cores): with many more shards than
    /// workers, two steps rarely meet on one (a step that finds its shard busy queues behind it).
    public var sessionShards = 0
    /// Where sessions live: `memory`, `sqlite:PATH` (durable: they survive a restart or a
    /// crash), relative to the working directory like `models_directory`, or
    /// `redis://HOST:PORT[,HOST:PORT…][/DB]` (shared by every replica pointing at it).
    public var sessionStore = "sqlite:state/sessions.db"
    /// With redis: replicas a change must reach before it is acknowledged (`WAIT`); -1: one
    /// when the primaries have replicas, else none.
    public var sessionRedisReplicas = -1
    /// With redis: milliseconds a change waits for those replicas.
    public var sessionRedisWaitMilliseconds = 1000
    /// With redis: milliseconds to connect, and for each read or write, before Redis counts
    /// as unreachable.
    public var sessionRedisTimeoutMilliseconds = 2000
    /// With redis: the prefix of every key (servers of one deployment share it).
    public var sessionRedisPrefix = "lstm"
    /// This replica's name in `X-LSTM-Serve-Node` (with shared sessions); "" = the host name.
    public var nodeName = ""

    /// `node_name`, or the host name when it is not set.
    public var resolvedNodeName: String {
        if !nodeName.isEmpty { return nodeName }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "lstm-serve" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    /// With a durable store: `process` (an acknowledged step survives the process being
    /// killed) or `full` (it survives power loss too: an fsync per group commit).
    public var sessionSync = "process"
    /// With a durable store: microseconds a commit waits for more changes to join it.
    public var sessionCommitWindowMicroseconds = 0
    /// With sqlite: the step log's size at which it is moved into the database.
    public var sessionCheckpointBytes = SQLiteDriver.defaultCheckpointBytes
    public var maxBatch = 1024
    /// "debug", "info" (one line per request), "warning", "error".
    public var logLevel = "info"
    /// "text" or "json" (one object per line).
    public var logFormat = "text"
    /// PEM files of a certificate and its key: HTTPS when both are set.
    /// A model that fails to load stops start-up (otherwise it is reported and the rest serve).
    public var requireAllModels = false
    /// Seconds between a SIGTERM's `/readyz` 503 and the listener closing.
    public var drainSeconds = 1.0
    public var tlsCert = ""
    public var tlsKey = ""
    /// Bearer tokens, one per line with optional scopes; empty: no authentication.
    public var authTokenFile = ""
    /// With tokens: `/healthz`, `/readyz` and `/metrics` need one too.
    public var authHealthAndMetrics = false
    /// Host header names answered (DNS-rebinding defence); empty: any.
    public var allowedHosts: [String] = []
    /// Origins allowed by CORS (or "*"); empty: none.
    public var allowedOrigins: [String] = []

    public init() {}

    /// Every key with its environment variable and flag (`Configuration.settings` declares them).
    public static let keys: [(key: String, env: String, flag: String)] = settings.map { ($0.key, $0.env, $0.flag) }

    /// Sets `key` from text (a file's JSON value rendered as text, an env var or a flag).
    public mutating func set(_ key: String, _ text: String, source rawSource: String) throws(ConfigurationError) {
        // what a file, variable or flag held is shown escaped: an error is one line
        let source = Log.escaped(rawSource)
        guard let setting = Self.setting(key) else { throw .invalid("\(source): unknown key '\(Log.escaped(key))'") }
        try setting.parse(&self, text, Setting.Refusal(source: source, key: key, shown: Log.escaped(text)))
    }

    /// A comma-separated list, trimmed, without empty items. Split on Unicode scalars: split on
    /// Characters, a comma with a combining mark after it is one Character and no separator,
    /// so a list joined back with commas would split another way.
    static func list(_ text: String) -> [String] {
        text.unicodeScalars.split(separator: ",").compactMap { part in
            var item = part
            while let first = item.first, first.properties.isWhitespace { item.removeFirst() }
            while let last = item.last, last.properties.isWhitespace { item.removeLast() }
            return item.isEmpty ? nil : String(item)
        }
    }

    /// The value of `key` as text (what `set` takes), for help and start-up lines.
    public func text(_ key: String) -> String { Self.setting(key)?.read(self) ?? "" }

    /// Overlays a JSON config file.
    public mutating func load(file path: String) throws(ConfigurationError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .invalid("cannot read config file \(Log.escaped(path))") }
        try load(json: [UInt8](data), source: path)
    }

    /// Overlays a config file's bytes; `source` names it in errors.
    public mutating func load(json bytes: [UInt8], source path: String) throws(ConfigurationError) {
        let document: JSONDocument
        let shownPath = Log.escaped(path)
        do { document = try JSONDocument(bytes: bytes) } catch { throw .invalid("\(shownPath): \(error)") }
        guard document.value.kind == .object else { throw .invalid("\(shownPath): expected a JSON object") }
        for (key, value) in document.value.members where key != "$comment" {
            let text: String
            switch value.kind {
            case .string: text = value.string!
            case .integer: text = String(value.int!)
            case .real: text = String(value.double!)
            case .bool: text = String(value.bool!)
            case .array: text = value.elements.compactMap(\.string).joined(separator: ",")
            default: throw .invalid("\(shownPath): \(Log.escaped(key)) has an unsupported value")
            }
            try set(key, text, source: path)
        }
    }

    /// Overlays `LSTM_SERVE_*` variables.
    public mutating func load(environment: [String: String]) throws(ConfigurationError) {
        for (key, env, _) in Self.keys {
            if let v = environment[env] { try set(key, v, source: "environment \(env)") }
        }
    }

    /// Where the models come from, as a reload reads it again.
    public var repository: ModelRepository { ModelRepository(paths: models, directory: modelsDirectory, policy: modelVersionPolicy) }

    public var resolvedThreads: Int { threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount }
    public var resolvedShards: Int { sessionShards > 0 ? sessionShards : max(16, 4 * ProcessInfo.processInfo.activeProcessorCount) }
}

public enum ConfigurationError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    public var description: String { if case let .invalid(m) = self { return m }; return "" }
}
