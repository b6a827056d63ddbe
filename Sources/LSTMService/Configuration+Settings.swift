import ModelRuntime
import Redis

/// One configuration key, declared once: its name (which gives its flag and environment
/// variable), the help `serve --help` prints, how text becomes its value (with the check and
/// the one-line refusal), and how its value reads back as text. `Configuration.set`, `text`,
/// `keys`, the CLI's flags and `lstm-serve settings` (which README's table is checked against)
/// all come from `Configuration.settings`.
public struct Setting: Sendable {
    public let key: String
    public let help: String
    let parse: @Sendable (inout Configuration, _ text: String, _ refuse: Refusal) throws(ConfigurationError) -> Void
    let read: @Sendable (Configuration) -> String

    /// `LSTM_SERVE_` and the key in capitals.
    public var env: String { "LSTM_SERVE_" + key.uppercased() }
    /// `--` and the key with dashes; `models` is the repeatable `--model`.
    public var flag: String { key == "models" ? "--model" : "--" + key.replacingOccurrences(of: "_", with: "-") }
    /// The default, as text.
    public var defaultText: String { read(Configuration()) }

    /// Builds the one-line refusal of a value: where it came from, the key, what it must be,
    /// and the value as given (escaped).
    struct Refusal: Sendable {
        let source: String, key: String, shown: String
        func callAsFunction(_ mustBe: String) -> ConfigurationError { .invalid("\(source): \(key) must be \(mustBe), got '\(shown)'") }
    }
}

extension Setting {
    static func text(_ key: String, _ help: String, set: @escaping @Sendable (inout Configuration, String) -> Void,
                     get: @escaping @Sendable (Configuration) -> String) -> Setting {
        Setting(key: key, help: help, parse: { c, text, _ in set(&c, text) }, read: get)
    }

    static func int(_ key: String, _ range: ClosedRange<Int>, _ help: String, set: @escaping @Sendable (inout Configuration, Int) -> Void,
                    get: @escaping @Sendable (Configuration) -> Int) -> Setting {
        Setting(key: key, help: help, parse: { c, text, refuse throws(ConfigurationError) in
            guard let v = Int(text), range.contains(v) else { throw refuse("an integer from \(range.lowerBound) to \(range.upperBound)") }
            set(&c, v)
        }, read: { String(get($0)) })
    }

    /// Seconds: finite and bounded, so that adding them to a clock reading cannot overflow;
    /// above 0, or (`zero`: what 0 means) from 0.
    static func seconds(_ key: String, max: Double, zero: String? = nil, _ help: String, set: @escaping @Sendable (inout Configuration, Double) -> Void,
                        get: @escaping @Sendable (Configuration) -> Double) -> Setting {
        Setting(key: key, help: help, parse: { c, text, refuse throws(ConfigurationError) in
            guard let v = Double(text), v.isFinite, zero == nil ? v > 0 : v >= 0, v <= max else {
                throw refuse(zero.map { "a number of seconds from 0\($0) to \(Int(max))" } ?? "a number of seconds above 0 and at most \(Int(max))")
            }
            set(&c, v)
        }, read: { String(get($0)) })
    }

    static func bool(_ key: String, _ help: String, set: @escaping @Sendable (inout Configuration, Bool) -> Void,
                     get: @escaping @Sendable (Configuration) -> Bool) -> Setting {
        Setting(key: key, help: help, parse: { c, text, refuse throws(ConfigurationError) in
            guard let v = Bool(text) else { throw refuse("true or false") }
            set(&c, v)
        }, read: { String(get($0)) })
    }

    /// One of `choices`; `named` is how the refusal lists them.
    static func choice(_ key: String, _ choices: [String], named: String, _ help: String, set: @escaping @Sendable (inout Configuration, String) -> Void,
                       get: @escaping @Sendable (Configuration) -> String) -> Setting {
        Setting(key: key, help: help, parse: { c, text, refuse throws(ConfigurationError) in
            guard choices.contains(text) else { throw refuse(named) }
            set(&c, text)
        }, read: get)
    }

    /// A comma-separated list.
    static func list(_ key: String, _ help: String, set: @escaping @Sendable (inout Configuration, [String]) -> Void,
                     get: @escaping @Sendable (Configuration) -> [String]) -> Setting {
        Setting(key: key, help: help, parse: { c, text, _ in set(&c, Configuration.list(text)) }, read: { get($0).joined(separator: ",") })
    }
}

extension Configuration {
    /// Every key, in README's order.
    public static let settings: [Setting] = [
        .text("host", "Address to listen on: IPv4, IPv6 or a name.", set: { $0.host = $1 }, get: \.host),
        .int("port", 0...65535, "Port (0 picks a free one).", set: { $0.port = $1 }, get: \.port),
        .int("threads", 0...1024, "HTTP worker threads (0: one per core).", set: { $0.threads = $1 }, get: \.threads),
        .list("models", "A model directory or bare .safetensors to serve (repeatable; the first is the default).", set: { $0.models = $1 }, get: \.models),
        .text("models_directory", "Directory whose model directories are served when no --model is given.", set: { $0.modelsDirectory = $1 }, get: \.modelsDirectory),
        .text("default_model", "The model /v1/predict and new sessions use (empty: temperature if loaded, else the first).",
              set: { $0.defaultModel = $1 }, get: \.defaultModel),
        Setting(key: "model_version_policy", help: "Versions served of each model: latest, latest:N, all or specific:V,V (per model: '; name=rule').",
                parse: { c, text, refuse throws(ConfigurationError) in
                    do { c.modelVersionPolicy = try VersionPolicy(parsing: text) } catch {
                        // the parser quotes the rule it refused, as it was
                        throw .invalid("\(refuse.source): \(Log.escaped("\(error)")) (got '\(refuse.shown)')")
                    }
                }, read: { $0.modelVersionPolicy.description }),
        .seconds("model_poll_seconds", max: 86_400, zero: " (off)", "Seconds between looks at the model repository for new or changed versions (0: off).",
                 set: { $0.modelPollSeconds = $1 }, get: \.modelPollSeconds),
        .int("max_body_bytes", 64...(1 << 30), "Largest request body in bytes.", set: { $0.maxBodyBytes = $1 }, get: \.maxBodyBytes),
        .int("connection_timeout_seconds", 1...86_400, "Seconds an idle connection is kept.",
             set: { $0.connectionTimeoutSeconds = $1 }, get: \.connectionTimeoutSeconds),
        .seconds("request_deadline_seconds", max: 86_400,
                 "Seconds by which a request's headers and body must have arrived, from the connection's start or previous answer.",
                 set: { $0.requestDeadlineSeconds = $1 }, get: \.requestDeadlineSeconds),
        .int("connection_limit", 1...100_000, "Connections served at once (past it: 503 and close).", set: { $0.connectionLimit = $1 }, get: \.connectionLimit),
        .int("per_ip_connection_limit", 0...100_000, "Connections from one address (0: no limit).",
             set: { $0.perIPConnectionLimit = $1 }, get: \.perIPConnectionLimit),
        .int("connection_memory_limit", 4096...(1 << 24), "libmicrohttpd memory per connection in bytes (caps headers).",
             set: { $0.connectionMemoryLimit = $1 }, get: \.connectionMemoryLimit),
        .seconds("session_ttl_seconds", max: 366 * 86_400, "Idle seconds before a session expires.",
                 set: { $0.sessionTTLSeconds = $1 }, get: \.sessionTTLSeconds),
        .int("max_sessions", 1...100_000_000, "Most sessions held at once.", set: { $0.maxSessions = $1 }, get: \.maxSessions),
        .choice("session_full_policy", ["reject", "evict"], named: "'reject' or 'evict'", "When full: reject (429) or evict (least recently used).",
                set: { $0.sessionFullPolicy = $1 }, get: \.sessionFullPolicy),
        .int("session_shards", 0...4096, "Session store shards (0: max(16, 4 x cores)).", set: { $0.sessionShards = $1 }, get: \.sessionShards),
        Setting(key: "session_store", help: "memory, sqlite:PATH (sessions survive restarts and crashes) or redis://HOST:PORT[,HOST:PORT…][/DB] (shared by replicas).",
                parse: { c, text, refuse throws(ConfigurationError) in
                    if text.hasPrefix("redis://") {
                        if case let .failure(why) = RedisLocation.read(text) { throw refuse("redis://HOST:PORT[,HOST:PORT…][/DB] (\(why))") }
                    } else {
                        guard text == "memory" || (text.hasPrefix("sqlite:") && text.count > 7) else {
                            throw refuse("'memory', 'sqlite:PATH' or 'redis://HOST:PORT[,HOST:PORT…][/DB]'")
                        }
                    }
                    c.sessionStore = text
                }, read: \.sessionStore),
        .int("session_redis_replicas", -1...16, "With redis: replicas a change must reach before it is acknowledged (-1: one when there are replicas).",
             set: { $0.sessionRedisReplicas = $1 }, get: \.sessionRedisReplicas),
        .int("session_redis_wait_ms", 1...60_000, "With redis: milliseconds a change waits for those replicas (then 503).",
             set: { $0.sessionRedisWaitMilliseconds = $1 }, get: \.sessionRedisWaitMilliseconds),
        .int("session_redis_timeout_ms", 10...60_000, "With redis: milliseconds to connect and per read or write before Redis counts as down.",
             set: { $0.sessionRedisTimeoutMilliseconds = $1 }, get: \.sessionRedisTimeoutMilliseconds),
        .text("node_name", "This replica's name in X-LSTM-Serve-Node on session answers when sessions are shared (redis); \"\": the host name.",
              set: { $0.nodeName = $1 }, get: \.nodeName),
        .text("session_redis_prefix", "With redis: the prefix of every key (the servers of one deployment share it).",
              set: { $0.sessionRedisPrefix = $1 }, get: \.sessionRedisPrefix),
        .choice("session_sync", ["process", "full"], named: "'process' or 'full'",
                "With sqlite: process (a stored step survives kill -9) or full (power loss too: fsync per commit).",
                set: { $0.sessionSync = $1 }, get: \.sessionSync),
        .int("session_commit_window_us", 0...100_000, "With sqlite: microseconds a commit waits for more steps to join it.",
             set: { $0.sessionCommitWindowMicroseconds = $1 }, get: \.sessionCommitWindowMicroseconds),
        .int("session_checkpoint_bytes", 4096...(1 << 30), "With sqlite: the step log's size at which it is moved into the database.",
             set: { $0.sessionCheckpointBytes = $1 }, get: \.sessionCheckpointBytes),
        .int("max_batch", 1...(1 << 20), "Most windows in one predict request.", set: { $0.maxBatch = $1 }, get: \.maxBatch),
        .choice("log_level", ["debug", "info", "warning", "error"], named: "debug, info, warning or error", "debug, info (a line per request), warning or error.",
                set: { $0.logLevel = $1 }, get: \.logLevel),
        .choice("log_format", ["text", "json"], named: "text or json", "text or json (one object per line).", set: { $0.logFormat = $1 }, get: \.logFormat),
        .bool("require_all_models", "Stop start-up when any model fails to load (otherwise it is reported and the rest serve).",
              set: { $0.requireAllModels = $1 }, get: \.requireAllModels),
        .seconds("drain_seconds", max: 3600, zero: "", "Seconds between SIGTERM turning /readyz 503 and the listener closing.",
                 set: { $0.drainSeconds = $1 }, get: \.drainSeconds),
        .text("tls_cert", "PEM certificate for HTTPS (with --tls-key).", set: { $0.tlsCert = $1 }, get: \.tlsCert),
        .text("tls_key", "PEM private key for HTTPS (with --tls-cert).", set: { $0.tlsKey = $1 }, get: \.tlsKey),
        .text("auth_token_file", "Bearer tokens, one per line, each optionally followed by scopes (infer, admin).",
              set: { $0.authTokenFile = $1 }, get: \.authTokenFile),
        .bool("auth_health_and_metrics", "With tokens, /healthz, /readyz and /metrics need one too.",
              set: { $0.authHealthAndMetrics = $1 }, get: \.authHealthAndMetrics),
        .list("allowed_hosts", "Host names answered, comma-separated (empty: any).", set: { $0.allowedHosts = $1 }, get: \.allowedHosts),
        .list("allowed_origins", "Origins CORS lets in, comma-separated, or * (empty: none).", set: { $0.allowedOrigins = $1 }, get: \.allowedOrigins),
    ]

    public static func setting(_ key: String) -> Setting? { settings.first { $0.key == key } }
}
