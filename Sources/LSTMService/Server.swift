import Foundation
import FrontEnd
import HTTPServer
import SessionStore

/// The service on an HTTP listener: what `lstm-serve serve` and the live tests run.
public final class Server: Sendable {
    public let service: Service
    let http: HTTPServer

    public init(configuration: Configuration, clock: any ServiceClock = SystemClock()) throws(ConfigurationError) {
        let tokens = configuration.authTokenFile.isEmpty ? [] : try AccessPolicy.tokens(file: configuration.authTokenFile)
        let policy = AccessPolicy(tokens: tokens, guardsHealthAndMetrics: configuration.authHealthAndMetrics,
                                  allowedHosts: configuration.allowedHosts, allowedOrigins: configuration.allowedOrigins)
        service = try Service(configuration: configuration, clock: clock, policy: policy)
        var h = HTTPServer.Configuration()
        h.host = configuration.host
        h.port = configuration.port
        h.threads = configuration.resolvedThreads
        h.maxBodyBytes = configuration.maxBodyBytes
        h.connectionTimeout = configuration.connectionTimeoutSeconds
        h.requestDeadline = configuration.requestDeadlineSeconds
        h.libraryLog = configuration.logLevel == "debug"
        // the binary tensor data extension's split between the JSON and the tensors' bytes
        h.headersToRead = policy.headersToRead + ["inference-header-content-length"]
        // request ids are for matching an answer to its log line
        h.makeRequestIDs = (LogLevel(rawValue: configuration.logLevel) ?? .info) <= .info
        h.connectionLimit = configuration.connectionLimit
        h.perIPConnectionLimit = configuration.perIPConnectionLimit
        h.connectionMemoryLimit = configuration.connectionMemoryLimit
        if !configuration.tlsCert.isEmpty || !configuration.tlsKey.isEmpty {
            guard !configuration.tlsCert.isEmpty, !configuration.tlsKey.isEmpty else {
                throw .invalid("tls_cert and tls_key go together: set both for HTTPS")
            }
            h.tlsCertificate = try Self.pem(configuration.tlsCert, "tls_cert")
            h.tlsKey = try Self.pem(configuration.tlsKey, "tls_key")
        }
        let http = HTTPServer(configuration: h, handler: service)
        self.http = http
        // weak: the server holds the service as its handler
        service.attachTransport { [weak http] in
            Metrics.Transport(requestsInFlight: http?.requestsInFlight ?? 0, connectionsOpen: http?.openConnections ?? 0)
        }
    }

    /// Starts listening; returns the bound port (the one picked for port 0).
    public func start() throws(ConfigurationError) -> Int {
        do { return try http.start() } catch { throw .invalid(error.description) }
    }

    static func pem(_ path: String, _ key: String) throws(ConfigurationError) -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8),
              text.contains("-----BEGIN ") else {
            throw .invalid("\(key): cannot read a PEM file at \(Log.escaped(path))")
        }
        return text
    }

    /// Connections open now.
    public var openConnections: Int { http.openConnections }

    /// The first step of a drain: `/readyz` answers 503 and every answer closes its connection.
    public func beginDrain() {
        service.beginDrain()
        http.closeConnectionsAfterAnswers()
    }

    /// Stops accepting, finishes in-flight requests (up to `drainTimeout` s), stops.
    public func stop(drainTimeout: Double = 10) { http.stop(drainTimeout: drainTimeout) }
}
