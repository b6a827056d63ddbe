import Foundation
import JSON
import ModelRuntime

/// Every setting of the server, with its default. Sources layer as flags > environment
/// (`LSTM_SERVE_*`) > `config/lstm-serve.json` > these defaults; README has the table.
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
    /// Where sessions live: `memory`, or `sqlite:PATH` (durable: they survive a restart or a
    /// crash), relative to the working directory like `models_directory`.
    public var sessionStore = "sqlite:state/sessions.db"
    /// With a durable store: `process` (an acknowledged step survives the process being
    /// killed) or `full` (it survives power loss too: an fsync per group commit).
    public var sessionSync = "process"
    /// With a durable store: microseconds a commit waits for more changes to join it.
    public var sessionCommitWindowMicroseconds = 0
    /// With sqlite: the step log's size at which it is moved into the database.
    public var sessionCheckpointBytes = SessionJournal.defaultCheckpointBytes
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

    /// Every key, in the README table's order, with its environment variable (`LSTM_SERVE_`
    /// and the key in capitals) and flag (`--` and the key with dashes; `models` is the
    /// repeatable `--model`).
    public static let keys: [(key: String, env: String, flag: String)] = [
        "host", "port", "threads", "models", "models_directory", "default_model", "model_version_policy", "model_poll_seconds", "max_body_bytes",
        "connection_timeout_seconds", "request_deadline_seconds", "connection_limit", "per_ip_connection_limit", "connection_memory_limit",
        "session_ttl_seconds", "max_sessions", "session_full_policy", "session_shards", "session_store", "session_sync", "session_commit_window_us", "session_checkpoint_bytes", "max_batch", "log_level", "log_format",
        "require_all_models", "drain_seconds", "tls_cert", "tls_key",
        "auth_token_file", "auth_health_and_metrics", "allowed_hosts", "allowed_origins",
    ].map { key in
        (key, "LSTM_SERVE_" + key.uppercased(), key == "models" ? "--model" : "--" + key.replacingOccurrences(of: "_", with: "-"))
    }

    /// Sets `key` from text (a file's JSON value rendered as text, an env var or a flag).
    public mutating func set(_ key: String, _ text: String, source rawSource: String) throws(ConfigurationError) {
        // what a file, variable or flag held is shown escaped: an error is one line
        let shown = Log.escaped(text), source = Log.escaped(rawSource)
        func int(_ min: Int, _ max: Int) throws(ConfigurationError) -> Int {
            guard let v = Int(text), v >= min, v <= max else {
                throw .invalid("\(source): \(key) must be an integer from \(min) to \(max), got '\(shown)'")
            }
            return v
        }
        // Seconds: finite and bounded, so that adding one to a clock reading cannot overflow.
        func seconds(_ max: Double) throws(ConfigurationError) -> Double {
            guard let v = Double(text), v.isFinite, v > 0, v <= max else {
                throw .invalid("\(source): \(key) must be a number of seconds above 0 and at most \(Int(max)), got '\(shown)'")
            }
            return v
        }
        switch key {
        case "host": host = text
        case "port": port = try int(0, 65535)
        case "threads": threads = try int(0, 1024)
        case "models": models = Self.list(text)
        case "models_directory": modelsDirectory = text
        case "default_model": defaultModel = text
        case "model_version_policy":
            do { modelVersionPolicy = try VersionPolicy(parsing: text) } catch {
                // the parser quotes the rule it refused, as it was
                throw .invalid("\(source): \(Log.escaped("\(error)")) (got '\(shown)')")
            }
        case "model_poll_seconds":
            guard let v = Double(text), v.isFinite, v >= 0, v <= 86_400 else {
                throw .invalid("\(source): model_poll_seconds must be a number of seconds from 0 (off) to 86400, got '\(shown)'")
            }
            modelPollSeconds = v
        case "max_body_bytes": maxBodyBytes = try int(64, 1 << 30)
        case "connection_timeout_seconds": connectionTimeoutSeconds = try int(1, 86_400)
        case "request_deadline_seconds": requestDeadlineSeconds = try seconds(86_400)
        case "connection_limit": connectionLimit = try int(1, 100_000)
        case "per_ip_connection_limit": perIPConnectionLimit = try int(0, 100_000)
        case "connection_memory_limit": connectionMemoryLimit = try int(4096, 1 << 24)
        case "session_ttl_seconds": sessionTTLSeconds = try seconds(366 * 86_400)
        case "max_sessions": maxSessions = try int(1, 100_000_000)
        case "session_full_policy":
            guard text == "reject" || text == "evict" else { throw .invalid("\(source): session_full_policy must be 'reject' or 'evict', got '\(shown)'") }
            sessionFullPolicy = text
        case "session_shards": sessionShards = try int(0, 4096)
        case "session_store":
            guard text == "memory" || (text.hasPrefix("sqlite:") && text.count > 7) else {
                throw .invalid("\(source): session_store must be 'memory' or 'sqlite:PATH', got '\(shown)'")
            }
            sessionStore = text
        case "session_sync":
            guard text == "process" || text == "full" else { throw .invalid("\(source): session_sync must be 'process' or 'full', got '\(shown)'") }
            sessionSync = text
        case "session_commit_window_us": sessionCommitWindowMicroseconds = try int(0, 100_000)
        case "session_checkpoint_bytes": sessionCheckpointBytes = try int(4096, 1 << 30)
        case "max_batch": maxBatch = try int(1, 1 << 20)
        case "log_level":
            guard LogLevel(rawValue: text) != nil else { throw .invalid("\(source): log_level must be debug, info, warning or error, got '\(shown)'") }
            logLevel = text
        case "log_format":
            guard text == "text" || text == "json" else { throw .invalid("\(source): log_format must be text or json, got '\(shown)'") }
            logFormat = text
        case "require_all_models":
            guard let v = Bool(text) else { throw .invalid("\(source): require_all_models must be true or false, got '\(shown)'") }
            requireAllModels = v
        case "drain_seconds":
            guard let v = Double(text), v.isFinite, v >= 0, v <= 3600 else {
                throw .invalid("\(source): drain_seconds must be a number of seconds from 0 to 3600, got '\(shown)'")
            }
            drainSeconds = v
        case "tls_cert": tlsCert = text
        case "tls_key": tlsKey = text
        case "auth_token_file": authTokenFile = text
        case "auth_health_and_metrics":
            guard let v = Bool(text) else { throw .invalid("\(source): auth_health_and_metrics must be true or false, got '\(shown)'") }
            authHealthAndMetrics = v
        case "allowed_hosts": allowedHosts = Self.list(text)
        case "allowed_origins": allowedOrigins = Self.list(text)
        default:
            throw .invalid("\(source): unknown key '\(Log.escaped(key))'")
        }
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
    public func text(_ key: String) -> String {
        switch key {
        case "host": return host
        case "port": return String(port)
        case "threads": return String(threads)
        case "models": return models.joined(separator: ",")
        case "models_directory": return modelsDirectory
        case "default_model": return defaultModel
        case "model_version_policy": return modelVersionPolicy.description
        case "model_poll_seconds": return String(modelPollSeconds)
        case "max_body_bytes": return String(maxBodyBytes)
        case "connection_timeout_seconds": return String(connectionTimeoutSeconds)
        case "request_deadline_seconds": return String(requestDeadlineSeconds)
        case "connection_limit": return String(connectionLimit)
        case "per_ip_connection_limit": return String(perIPConnectionLimit)
        case "connection_memory_limit": return String(connectionMemoryLimit)
        case "session_ttl_seconds": return String(sessionTTLSeconds)
        case "max_sessions": return String(maxSessions)
        case "session_full_policy": return sessionFullPolicy
        case "session_shards": return String(sessionShards)
        case "session_store": return sessionStore
        case "session_sync": return sessionSync
        case "session_commit_window_us": return String(sessionCommitWindowMicroseconds)
        case "session_checkpoint_bytes": return String(sessionCheckpointBytes)
        case "max_batch": return String(maxBatch)
        case "log_level": return logLevel
        case "log_format": return logFormat
        case "require_all_models": return String(requireAllModels)
        case "drain_seconds": return String(drainSeconds)
        case "tls_cert": return tlsCert
        case "tls_key": return tlsKey
        case "auth_token_file": return authTokenFile
        case "auth_health_and_metrics": return String(authHealthAndMetrics)
        case "allowed_hosts": return allowedHosts.joined(separator: ",")
        case "allowed_origins": return allowedOrigins.joined(separator: ",")
        default: return ""
        }
    }

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
