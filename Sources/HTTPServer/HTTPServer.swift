internal import CMicroHTTPD
import Foundation
import Locking
import Synchronization

/// An HTTP/1.1 server on libmicrohttpd: MHD's epoll polling threads (a pool), bodies gathered
/// across upload callbacks, responses from memory. The one place MHD's C callbacks and threads
/// meet Swift.
public final class HTTPServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// An IPv4 or IPv6 address, or a name to resolve.
        public var host = "127.0.0.1"
        /// 0 picks a free port; `start` returns the one bound.
        public var port = 8080
        /// MHD worker threads.
        public var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        public var maxBodyBytes = 1 << 20
        /// Seconds a connection may stay idle (MHD's default is forever).
        public var connectionTimeout = 30
        /// Seconds from a connection's start, or its previous answer, by which the next
        /// request's headers and body must have arrived, however they trickle in.
        public var requestDeadline = 30.0
        /// Connections served at once; past it a connection is answered 503 and closed (and
        /// past a quarter more, refused at accept).
        public var connectionLimit = 1024
        /// Connections from one address at once (0: no limit).
        public var perIPConnectionLimit = 256
        /// MHD's per-connection memory pool (caps the header size).
        public var connectionMemoryLimit = 32 * 1024
        /// PEM text of a certificate (chain) and its key, for HTTPS through MHD's GnuTLS.
        public var tlsCertificate: String?
        public var tlsKey: String?
        /// libmicrohttpd's own messages on standard error.
        public var libraryLog = false
        /// Request headers handed to the handler in `HTTPRequest.headers` (looked up only when
        /// listed, so a server without auth or CORS reads none).
        public var headersToRead: [String] = []
        /// Give a request without an `X-Request-ID` one of its own (and answer with it): worth
        /// its header copies only when something logs it.
        public var makeRequestIDs = true

        public init() {}
    }

    public let configuration: Configuration
    let handler: any HTTPHandler
    /// Where `.later` work runs (and the actors it awaits, when they have no executor of their own).
    let executor = DispatchTaskExecutor(label: "lstm-serve.http.async")
    private var daemon: OpaquePointer?
    /// Requests begun and not yet completed, and connections suspended now.
    let inFlight = Atomic<Int>(0)
    let suspended = Atomic<Int>(0)
    /// Finished requests' contexts, with their body buffers, for the next requests.
    private let idleContexts = Locked<[RequestContext]>([])
    let connections: Connections
    /// Draining: answers carry `Connection: close`.
    let closing = Atomic<Bool>(false)

    public init(configuration: Configuration, handler: any HTTPHandler) {
        self.configuration = configuration
        self.handler = handler
        connections = Connections(limit: configuration.connectionLimit, deadlineSeconds: configuration.requestDeadline)
    }

    /// Connections open now.
    public var openConnections: Int { connections.open.load(ordering: .relaxed) }
    /// Requests begun and not yet completed.
    public var requestsInFlight: Int { inFlight.load(ordering: .relaxed) }

    /// Request ids made here: a random prefix per process and a counter, 15 hex digits (a
    /// String that short is stored inline, without an allocation).
    let requestPrefix = UInt64.random(in: 0..<(1 << 24))
    let requestCounter = Atomic<UInt64>(0)

    /// Starts listening; returns the bound port. The corresponding C function is `MHD_start_daemon`.
    @discardableResult
    public func start() throws(HTTPServerError) -> Int {
        let c = configuration
        if (c.tlsCertificate == nil) != (c.tlsKey == nil) { throw .tls("a TLS certificate needs its key, and a key its certificate") }
        let context = Unmanaged.passUnretained(self).toOpaque()
        // MHD's own limit stays out of reach (see CMicroHTTPD_settings): the accept policy and
        // `Connections` enforce ours.
        let mhdLimit = c.threads * (connections.hardLimit + 64)
        let started: OpaquePointer? = c.host.withCString { host in
            withOptionalCString(c.tlsCertificate) { cert in
                withOptionalCString(c.tlsKey) { key in
                    var settings = CMicroHTTPD_settings(
                        host: host, port: UInt16(c.port), threads: UInt32(c.threads), connection_timeout: UInt32(c.connectionTimeout),
                        connection_limit: UInt32(mhdLimit), per_ip_limit: UInt32(c.perIPConnectionLimit),
                        memory_limit: c.connectionMemoryLimit, error_log: c.libraryLog ? 1 : 0, tls_cert: cert, tls_key: key)
                    return CMicroHTTPD_start_daemon(&settings, acceptPolicy, context, accessHandler, context, completedHandler, context,
                                                    connectionHandler, context, targetHandler, context)
                }
            }
        }
        guard let started else { throw .cannotStart(host: c.host, port: c.port) }
        daemon = started
        let handle = ConnectionHandle(pointer: started)  // stop() ends the reaper before the daemon
        connections.startReaper { _ = CMicroHTTPD_wake_workers(handle.pointer) }
        return Int(CMicroHTTPD_bound_port(started))
    }

    /// From now on every answer carries `Connection: close`, so keep-alive clients leave after
    /// their next request (the first step of a drain).
    public func closeConnectionsAfterAnswers() { closing.store(true, ordering: .releasing) }

    /// Stops accepting, lets in-flight requests finish (up to `drainTimeout` seconds), then
    /// stops the daemon. The corresponding C functions are `MHD_quiesce_daemon`, `MHD_stop_daemon`.
    public func stop(drainTimeout: Double = 10) {
        guard let d = daemon else { return }
        let fd = MHD_quiesce_daemon(d)
        if fd >= 0 { close(fd) }
        let deadline = Date().addingTimeInterval(drainTimeout)
        // MHD must not be stopped with suspended connections; wait for them too.
        while (inFlight.load(ordering: .acquiring) > 0 || suspended.load(ordering: .acquiring) > 0), Date() < deadline {
            usleep(2_000)
        }
        connections.stopReaper()  // before the daemon goes: the reaper reads it
        MHD_stop_daemon(d)
        daemon = nil
    }

    deinit { stop(drainTimeout: 0) }

    /// A context for a new request: a finished one's when there is one.
    func takeContext() -> RequestContext {
        let context = idleContexts.withLock { $0.popLast() } ?? RequestContext()
        context.start = DispatchTime.now().uptimeNanoseconds
        return context
    }

    /// Clears a finished request's context and keeps it (up to 256 of them), with its body
    /// buffer when that is at most 16 KB (emptied in place when nobody else holds it).
    func recycle(_ context: RequestContext) {
        var body = context.request?.body ?? []
        context.request = nil
        context.response = nil
        (context.tooLarge, context.discarded, context.isSuspended) = (false, 0, false)
        context.connection = nil
        if body.capacity <= 16 * 1024 {
            body.removeAll(keepingCapacity: true)
            context.body = body
        } else {
            context.body = []
        }
        idleContexts.withLock { if $0.count < 256 { $0.append(context) } }
    }
}

/// One request's state across MHD's calls; lives in `*req_cls` from the first call to completion.
final class RequestContext: @unchecked Sendable {
    var body: [UInt8] = []
    var tooLarge = false
    var discarded = 0
    var request: HTTPRequest?
    var response: HTTPResponse?
    var isSuspended = false
    var start: UInt64 = 0
    var connection: ConnectionState?
    /// The decoded path, from the first call.
    var path = ""
}

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}
