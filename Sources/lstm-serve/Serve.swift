import ArgumentParser
import Dispatch
import Foundation
import LSTMService
import ModelRuntime

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models over HTTP (predict, stream-step sessions, health, model info, metrics).",
        discussion: "Settings layer as flags > LSTM_SERVE_* environment > --config file > defaults; README lists every key."
    )

    @Option(help: "JSON config file (default: config/lstm-serve.json when present).") var config: String?
    @Option(help: h("host", "Address to listen on: IPv4, IPv6 or a name.")) var host: String?
    @Option(help: h("port", "Port (0 picks a free one).")) var port: String?
    @Option(name: .customLong("model"), help: h("models", "A model directory or bare .safetensors to serve (repeatable; the first is the default)."))
    var models: [String] = []
    @Option(help: h("models_directory", "Directory whose model directories are served when no --model is given.")) var modelsDirectory: String?
    @Option(help: h("default_model", "The model /v1/predict and new sessions use (empty: temperature if loaded, else the first).")) var defaultModel: String?
    @Option(help: h("model_version_policy", "Versions served of each model: latest, latest:N, all or specific:V,V (per model: '; name=rule').")) var modelVersionPolicy: String?
    @Option(help: h("model_poll_seconds", "Seconds between looks at the model repository for new or changed versions (0: off).")) var modelPollSeconds: String?
    @Option(help: h("threads", "HTTP worker threads (0: one per core).")) var threads: String?
    @Option(help: h("max_body_bytes", "Largest request body in bytes.")) var maxBodyBytes: String?
    @Option(help: h("connection_timeout_seconds", "Seconds an idle connection is kept.")) var connectionTimeoutSeconds: String?
    @Option(help: h("request_deadline_seconds", "Seconds by which a request's headers and body must have arrived, from the connection's start or previous answer."))
    var requestDeadlineSeconds: String?
    @Option(help: h("connection_limit", "Connections served at once (past it: 503 and close).")) var connectionLimit: String?
    @Option(help: h("per_ip_connection_limit", "Connections from one address (0: no limit).")) var perIpConnectionLimit: String?
    @Option(help: h("connection_memory_limit", "libmicrohttpd memory per connection in bytes (caps headers).")) var connectionMemoryLimit: String?
    @Option(help: h("session_ttl_seconds", "Idle seconds before a session expires.")) var sessionTtlSeconds: String?
    @Option(help: h("max_sessions", "Most sessions held at once.")) var maxSessions: String?
    @Option(help: h("session_full_policy", "When full: reject (429) or evict (least recently used).")) var sessionFullPolicy: String?
    @Option(help: h("session_shards", "Session store shards (0: max(16, 4 x cores)).")) var sessionShards: String?
    @Option(help: h("session_store", "memory, or sqlite:PATH for sessions that survive restarts and crashes.")) var sessionStore: String?
    @Option(help: h("session_sync", "With sqlite: process (a stored step survives kill -9) or full (power loss too: fsync per commit).")) var sessionSync: String?
    @Option(help: h("session_commit_window_us", "With sqlite: microseconds a commit waits for more steps to join it.")) var sessionCommitWindowUs: String?
    @Option(help: h("session_checkpoint_bytes", "With sqlite: the step log's size at which it is moved into the database.")) var sessionCheckpointBytes: String?
    @Option(help: h("max_batch", "Most windows in one predict request.")) var maxBatch: String?
    @Option(help: h("log_level", "debug, info (a line per request), warning or error.")) var logLevel: String?
    @Option(help: h("log_format", "text or json (one object per line).")) var logFormat: String?
    @Flag(help: h("require_all_models", "Stop start-up when any model fails to load (otherwise it is reported and the rest serve)."))
    var requireAllModels = false
    @Option(help: h("drain_seconds", "Seconds between SIGTERM turning /readyz 503 and the listener closing.")) var drainSeconds: String?
    @Option(help: h("tls_cert", "PEM certificate for HTTPS (with --tls-key).")) var tlsCert: String?
    @Option(help: h("tls_key", "PEM private key for HTTPS (with --tls-cert).")) var tlsKey: String?
    @Option(help: h("auth_token_file", "Bearer tokens, one per line, each optionally followed by scopes (infer, admin).")) var authTokenFile: String?
    @Flag(help: h("auth_health_and_metrics", "With tokens, /healthz, /readyz and /metrics need one too.")) var authHealthAndMetrics = false
    @Option(help: h("allowed_hosts", "Host names answered, comma-separated (empty: any).")) var allowedHosts: String?
    @Option(help: h("allowed_origins", "Origins CORS lets in, comma-separated, or * (empty: none).")) var allowedOrigins: String?

    /// A flag's help with its default and environment variable, from the key table.
    static func h(_ key: String, _ text: String) -> ArgumentHelp {
        let env = Configuration.keys.first { $0.key == key }?.env ?? ""
        let value = Configuration().text(key)
        return ArgumentHelp("\(text) (default: \(value.isEmpty ? "none" : value); env \(env))")
    }

    func resolvedConfiguration() throws(ConfigurationError) -> Configuration {
        var c = Configuration()
        if let config { try c.load(file: config) } else if FileManager.default.fileExists(atPath: "config/lstm-serve.json") {
            try c.load(file: "config/lstm-serve.json")
        }
        try c.load(environment: ProcessInfo.processInfo.environment)
        let flags: [(String, String?)] = [
            ("host", host), ("port", port), ("models_directory", modelsDirectory), ("default_model", defaultModel), ("model_version_policy", modelVersionPolicy), ("model_poll_seconds", modelPollSeconds),
            ("threads", threads), ("max_body_bytes", maxBodyBytes), ("connection_timeout_seconds", connectionTimeoutSeconds),
            ("request_deadline_seconds", requestDeadlineSeconds), ("connection_limit", connectionLimit),
            ("per_ip_connection_limit", perIpConnectionLimit), ("connection_memory_limit", connectionMemoryLimit),
            ("session_ttl_seconds", sessionTtlSeconds), ("max_sessions", maxSessions), ("session_full_policy", sessionFullPolicy),
            ("session_shards", sessionShards), ("session_store", sessionStore), ("session_sync", sessionSync), ("session_commit_window_us", sessionCommitWindowUs), ("session_checkpoint_bytes", sessionCheckpointBytes), ("max_batch", maxBatch), ("log_level", logLevel), ("log_format", logFormat),
            ("drain_seconds", drainSeconds), ("tls_cert", tlsCert), ("tls_key", tlsKey), ("auth_token_file", authTokenFile),
            ("allowed_hosts", allowedHosts), ("allowed_origins", allowedOrigins),
        ]
        for (key, value) in flags { if let value { try c.set(key, value, source: "flag") } }
        if !models.isEmpty { c.models = models }
        if requireAllModels { c.requireAllModels = true }
        if authHealthAndMetrics { c.authHealthAndMetrics = true }
        return c
    }

    func run() throws {
        let configuration: Configuration
        do { configuration = try resolvedConfiguration() } catch { fail(error.description) }
        let server: Server
        let log = Log(level: LogLevel(rawValue: configuration.logLevel) ?? .info, json: configuration.logFormat == "json")
        do { server = try Server(configuration: configuration) } catch { fail(error.description, log: log) }
        let service = server.service
        // Listen first (readyz says 503 while loading), then load the models.
        let port: Int
        do { port = try server.start() } catch { fail(error.description, log: log) }
        // loaded in a function of its own: a local here would hold the first snapshot (and
        // every version in it) for the life of the process, so no reload could unload them
        service.install(loadModels(configuration, server))
        let names = service.registry?.names.joined(separator: ", ") ?? ""
        let scheme = configuration.tlsCert.isEmpty ? "http" : "https"
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        service.log.announce("lstm-serve listening on \(scheme)://\(host):\(port) (models: \(names); default: \(service.registry?.defaultName ?? ""))")

        // Expired sessions are dropped lazily on access; a sweeper frees the rest.
        let sweepEvery = max(1, min(60, configuration.sessionTTLSeconds / 4))
        Task.detached {
            while true {
                try? await Task.sleep(for: .seconds(sweepEvery))
                await service.sessions.sweep()
            }
        }
        // SIGTERM / SIGINT drain: /readyz turns 503 and answers close their connections at
        // once; after a moment for balancers to notice, the listener closes, in-flight requests
        // finish, the session store is flushed, and the process exits 0. SIGHUP reloads the
        // model repository, as `POST /v1/models/{name}/reload` does for one model.
        for sig in [SIGTERM, SIGINT, SIGHUP] { signal(sig, SIG_IGN) }
        let queue = DispatchQueue(label: "signals")
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                if sig == SIGHUP {
                    _ = try? service.reload()
                    return
                }
                service.log.announce("signal \(sig), draining: /readyz is 503, finishing in-flight requests")
                server.beginDrain()
                Thread.sleep(forTimeInterval: configuration.drainSeconds)
                server.stop(drainTimeout: 10)
                service.closeSessions()
                Foundation.exit(0)
            }
            source.resume()
            sources.append(source)
        }
        if configuration.modelPollSeconds > 0 { poll(service, every: configuration.modelPollSeconds, repository: configuration.repository) }
        withExtendedLifetime(sources) { dispatchMain() }
    }

    func loadModels(_ configuration: Configuration, _ server: Server) -> ModelRegistry {
        let registry: ModelRegistry
        do {
            registry = try ModelRegistry.load(configuration.repository, defaultName: configuration.defaultModel, requireAll: configuration.requireAllModels)
        } catch {
            server.stop(drainTimeout: 0)
            fail(error.description, log: server.service.log)
        }
        for e in registry.allEntries {
            let m = e.model
            server.service.log.announce("model \(m.name) version \(e.version) loaded in \(Int(e.loadSeconds * 1000)) ms (\(m.pipeline.parameterCount) parameters, sha256 \(m.weightsSHA256.prefix(12)))")
        }
        for failure in registry.failed {
            server.service.log(.warning, "model \(failure.description) (not served)")
        }
        return registry
    }

    /// Looks at the repository every `seconds` and reloads when a version appeared, went or
    /// was rewritten (by sizes and times; nothing is read otherwise). A copy in progress may
    /// fail to load; the versions before keep serving, and the next change retries.
    func poll(_ service: Service, every seconds: Double, repository: ModelRepository) {
        let thread = Thread {
            var seen = repository.stamp()
            while true {
                Thread.sleep(forTimeInterval: seconds)
                let now = repository.stamp()
                guard now != seen else { continue }
                seen = now
                _ = try? service.reload()
            }
        }
        thread.name = "model-poll"
        thread.start()
    }
}
