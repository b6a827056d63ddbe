import HTTPServer

/// The service on an HTTP listener: what `lstm-serve serve` and the live tests run.
public final class Server: Sendable {
    public let service: Service
    let http: HTTPServer

    public init(configuration: Configuration, clock: any ServiceClock = SystemClock()) {
        service = Service(configuration: configuration, clock: clock)
        var h = HTTPServer.Configuration()
        h.host = configuration.host
        h.port = configuration.port
        h.threads = configuration.resolvedThreads
        h.maxBodyBytes = configuration.maxBodyBytes
        h.connectionTimeout = configuration.connectionTimeoutSeconds
        h.connectionLimit = configuration.connectionLimit
        h.perIPConnectionLimit = configuration.perIPConnectionLimit
        h.connectionMemoryLimit = configuration.connectionMemoryLimit
        http = HTTPServer(configuration: h, handler: service)
    }

    /// Starts listening; returns the bound port (the one picked for port 0).
    public func start() throws(ConfigurationError) -> Int {
        do { return try http.start() } catch { throw .invalid(error.description) }
    }

    /// Stops accepting, finishes in-flight requests (up to `drainTimeout` s), stops.
    public func stop(drainTimeout: Double = 10) { http.stop(drainTimeout: drainTimeout) }
}
