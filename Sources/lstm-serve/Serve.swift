import ArgumentParser
import Dispatch
import Foundation
import LSTMService
import ModelRuntime

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models over HTTP (predict, stream-step sessions, health, model info, metrics).",
        discussion: "Settings layer as flags > LSTM_SERVE_* environment > --config file > defaults; `lstm-serve settings` lists every key."
    )

    @Option(help: "JSON config file (default: config/lstm-serve.json when present).") var config: String?
    @Option(help: h("host")) var host: String?
    @Option(help: h("port")) var port: String?
    @Option(name: .customLong("model"), help: h("models"))
    var models: [String] = []
    @Option(help: h("models_directory")) var modelsDirectory: String?
    @Option(help: h("default_model")) var defaultModel: String?
    @Option(help: h("model_version_policy")) var modelVersionPolicy: String?
    @Option(help: h("model_poll_seconds")) var modelPollSeconds: String?
    @Option(help: h("threads")) var threads: String?
    @Option(help: h("max_body_bytes")) var maxBodyBytes: String?
    @Option(help: h("connection_timeout_seconds")) var connectionTimeoutSeconds: String?
    @Option(help: h("request_deadline_seconds"))
    var requestDeadlineSeconds: String?
    @Option(help: h("connection_limit")) var connectionLimit: String?
    @Option(help: h("per_ip_connection_limit")) var perIpConnectionLimit: String?
    @Option(help: h("connection_memory_limit")) var connectionMemoryLimit: String?
    @Option(help: h("session_ttl_seconds")) var sessionTtlSeconds: String?
    @Option(help: h("max_sessions")) var maxSessions: String?
    @Option(help: h("session_full_policy")) var sessionFullPolicy: String?
    @Option(help: h("session_shards")) var sessionShards: String?
    @Option(help: h("session_store")) var sessionStore: String?
    @Option(help: h("session_redis_replicas")) var sessionRedisReplicas: String?
    @Option(help: h("session_redis_wait_ms")) var sessionRedisWaitMs: String?
    @Option(help: h("session_redis_timeout_ms")) var sessionRedisTimeoutMs: String?
    @Option(help: h("session_redis_prefix")) var sessionRedisPrefix: String?
    @Option(help: h("node_name")) var nodeName: String?
    @Option(help: h("session_sync")) var sessionSync: String?
    @Option(help: h("session_commit_window_us")) var sessionCommitWindowUs: String?
    @Option(help: h("session_checkpoint_bytes")) var sessionCheckpointBytes: String?
    @Option(help: h("max_batch")) var maxBatch: String?
    @Option(help: h("log_level")) var logLevel: String?
    @Option(help: h("log_format")) var logFormat: String?
    @Flag(help: h("require_all_models"))
    var requireAllModels = false
    @Option(help: h("drain_seconds")) var drainSeconds: String?
    @Option(help: h("tls_cert")) var tlsCert: String?
    @Option(help: h("tls_key")) var tlsKey: String?
    @Option(help: h("auth_token_file")) var authTokenFile: String?
    @Flag(help: h("auth_health_and_metrics")) var authHealthAndMetrics = false
    @Option(help: h("allowed_hosts")) var allowedHosts: String?
    @Option(help: h("allowed_origins")) var allowedOrigins: String?

    /// A flag's help, default and environment variable, from the key's declaration.
    static func h(_ key: String) -> ArgumentHelp {
        guard let setting = Configuration.setting(key) else { preconditionFailure("no setting '\(key)'") }
        let value = setting.defaultText
        return ArgumentHelp("\(setting.help) (default: \(value.isEmpty ? "none" : value); env \(setting.env))")
    }

    /// The flags given, by key: each option's property is its key in camel case.
    func givenFlags() -> [(String, String)] {
        Mirror(reflecting: self).children.compactMap { child in
            guard let label = child.label, let option = child.value as? Option<String?>, let value = option.wrappedValue else { return nil }
            let key = label.dropFirst().reduce(into: "") { out, c in out += c.isUppercase ? "_" + c.lowercased() : String(c) }
            return key == "config" ? nil : (key, value)
        }
    }

    func resolvedConfiguration() throws(ConfigurationError) -> Configuration {
        var c = Configuration()
        if let config { try c.load(file: config) } else if FileManager.default.fileExists(atPath: "config/lstm-serve.json") {
            try c.load(file: "config/lstm-serve.json")
        }
        try c.load(environment: ProcessInfo.processInfo.environment)
        for (key, value) in givenFlags() { try c.set(key, value, source: "flag") }
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
                    _ = try? service.models.reload()
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
                _ = try? service.models.reload()
            }
        }
        thread.name = "model-poll"
        thread.start()
    }
}
