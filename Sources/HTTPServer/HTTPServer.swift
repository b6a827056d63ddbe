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
    private let requestPrefix = UInt64.random(in: 0..<(1 << 24))
    private let requestCounter = Atomic<UInt64>(0)

    func requestID(_ connection: OpaquePointer?) -> String {
        if let sent = rawHeader(connection, "X-Request-ID"), let id = usableRequestID(sent) { return id }
        guard configuration.makeRequestIDs else { return "" }
        let n = requestCounter.add(1, ordering: .relaxed).newValue & 0xF_FFFF_FFFF
        let text = String(requestPrefix << 36 | n, radix: 16)
        return String(repeating: "0", count: max(0, 15 - text.count)) + text
    }

    func headers(_ connection: OpaquePointer?) -> [String: String] {
        var found: [String: String] = [:]
        for name in configuration.headersToRead {
            if let v = name.withCString({ MHD_lookup_connection_value(connection, MHD_ValueKind(rawValue: 1)!, $0) }) {
                found[name.lowercased()] = String(cString: v)
            }
        }
        return found
    }

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
        connections.startReaper()
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
        MHD_stop_daemon(d)
        connections.stopReaper()
        daemon = nil
    }

    deinit { stop(drainTimeout: 0) }

    /// A context for a new request: a finished one's when there is one.
    fileprivate func takeContext() -> RequestContext {
        let context = idleContexts.withLock { $0.popLast() } ?? RequestContext()
        context.start = DispatchTime.now().uptimeNanoseconds
        return context
    }

    /// Clears a finished request's context and keeps it (up to 256 of them), with its body
    /// buffer when that is at most 16 KB (emptied in place when nobody else holds it).
    fileprivate func recycle(_ context: RequestContext) {
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

private let mhdYes = MHD_Result(rawValue: 1)!
private let mhdNo = MHD_Result(rawValue: 0)!

/// A connection handle that may cross into the Task that answers it.
struct ConnectionHandle: @unchecked Sendable { let pointer: OpaquePointer }

// Strings reach C through withCString, which reads a native String in place; passing a String
// where C takes `const char *` copies it into a new array first.

private func header(_ connection: OpaquePointer?, _ name: StaticString) -> String? {
    rawHeader(connection, name).map { String(cString: $0) }
}

/// The Content-Type header; the usual `application/json` as a literal, which costs no copy
/// (a String of 16 bytes or more made from C would be allocated).
private func contentType(_ connection: OpaquePointer?) -> String? {
    guard let raw = rawHeader(connection, "Content-Type") else { return nil }
    return strcmp(raw, "application/json") == 0 ? "application/json" : String(cString: raw)
}

/// A client's request id when it is 1-128 visible ASCII characters (anything else could
/// forge log fields or headers), else nil.
private func usableRequestID(_ raw: UnsafePointer<CChar>) -> String? {
    let n = strlen(raw)
    guard n > 0, n <= 128 else { return nil }
    for k in 0..<n where !(0x21...0x7E).contains(UInt8(bitPattern: raw[k])) { return nil }
    return String(cString: raw)
}

/// The corresponding C function is `MHD_lookup_connection_value`.
private func rawHeader(_ connection: OpaquePointer?, _ name: StaticString) -> UnsafePointer<CChar>? {
    // MHD_HEADER_KIND
    name.withUTF8Buffer { n in
        n.withMemoryRebound(to: CChar.self) { MHD_lookup_connection_value(connection, MHD_ValueKind(rawValue: 1)!, $0.baseAddress) }
    }
}

private func queue(_ response: HTTPResponse, on connection: OpaquePointer?, close: Bool, requestID: String?) -> MHD_Result {
    let made = response.body.withUnsafeBytes { raw -> OpaquePointer? in
        // MHD_RESPMEM_MUST_COPY
        MHD_create_response_from_buffer(raw.count, UnsafeMutableRawPointer(mutating: raw.baseAddress), MHD_ResponseMemoryMode(rawValue: 2)!)
    }
    guard let made else { return mhdNo }
    for (name, value) in response.headers {
        _ = name.withCString { n in value.withCString { v in MHD_add_response_header(made, n, v) } }
    }
    if close { MHD_add_response_header(made, "Connection", "close") }
    if let requestID, !requestID.isEmpty { _ = requestID.withCString { MHD_add_response_header(made, "X-Request-ID", $0) } }
    let result = MHD_queue_response(connection, UInt32(response.status), made)
    MHD_destroy_response(made)
    return result
}

private let acceptPolicy: MHD_AcceptPolicyCallback = { cls, _, _ in
    let server = Unmanaged<HTTPServer>.fromOpaque(cls!).takeUnretainedValue()
    return server.connections.acceptsMore ? mhdYes : mhdNo
}

private let connectionHandler: MHD_NotifyConnectionCallback = { cls, connection, socketContext, code in
    let server = Unmanaged<HTTPServer>.fromOpaque(cls!).takeUnretainedValue()
    if code.rawValue == 0 {  // MHD_CONNECTION_NOTIFY_STARTED
        let state = server.connections.started(fd: CMicroHTTPD_connection_fd(connection))
        socketContext!.pointee = Unmanaged.passRetained(state).toOpaque()
    } else if let raw = socketContext?.pointee {
        server.connections.closed(Unmanaged<ConnectionState>.fromOpaque(raw).takeRetainedValue())
        socketContext!.pointee = nil
    }
}

/// MHD's URI callback: the request target as sent, before MHD cuts it at '?' (and at a NUL,
/// which a C string cannot hold: the access handler compares the two).
private let targetHandler: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, OpaquePointer?) -> UnsafeMutableRawPointer? = { _, uri, connection in
    if let raw = CMicroHTTPD_socket_context(connection) {
        let state = Unmanaged<ConnectionState>.fromOpaque(raw).takeUnretainedValue()
        state.rawTarget = uri
        state.rawTargetLength = uri.map { strlen($0) } ?? 0
    }
    return nil
}

/// Why a request cannot be read as the application would, found once its headers are in.
private func problem(_ connection: OpaquePointer?, _ state: ConnectionState?, url: UnsafePointer<CChar>, version: UnsafePointer<CChar>?,
                     limit: Int) -> HTTPRequestProblem? {
    if state?.overLimit == true { return .overCapacity }
    // MHD ends the target where the version begins; a NUL inside it ends it earlier.
    if let state, let target = state.rawTarget, let version, target + state.rawTargetLength + 1 != version {
        return .badRequest("the request target has a NUL byte")
    }
    switch Int(CMicroHTTPD_check_headers(connection, version)) {
    case 0: break
    case 1: return .badRequest("a header has a control byte (CR, LF or NUL) in it")
    case 2: return .badRequest("a header name has a space or a byte that is not allowed in a name")
    case 3: return .badRequest("Content-Length is given more than once")
    case 4: return .badRequest("Content-Length must be a decimal number of bytes")
    case 5: return .badRequest("Transfer-Encoding must be 'chunked' (once) or absent")
    case 6: return .badRequest("Content-Length and Transfer-Encoding together are ambiguous; send one")
    default: return .badRequest("an HTTP/1.1 request needs exactly one Host header")
    }
    if let length = header(connection, "Content-Length").flatMap(Int.init), length > limit { return .payloadTooLarge(limit) }
    return nil
}

private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, version, uploadData, uploadSize, requestContext in
    let server = Unmanaged<HTTPServer>.fromOpaque(cls!).takeUnretainedValue()
    let limit = server.configuration.maxBodyBytes
    // First call: headers only. Refuse a request that cannot be framed, routed or afforded
    // before reading its body (so an `Expect: 100-continue` gets its refusal, not a 100).
    guard let existing = requestContext!.pointee else {
        let context = server.takeContext()
        server.inFlight.add(1, ordering: .relaxed)
        requestContext!.pointee = Unmanaged.passRetained(context).toOpaque()
        context.connection = CMicroHTTPD_socket_context(connection).map { Unmanaged<ConnectionState>.fromOpaque($0).takeUnretainedValue() }
        var found = problem(connection, context.connection, url: url!, version: version, limit: limit)
        var path = ""
        if found == nil {
            switch RequestPath.decode(UnsafeBufferPointer(start: UnsafeRawPointer(url!).assumingMemoryBound(to: UInt8.self), count: strlen(url!))) {
            case let .success(decoded): path = decoded
            case let .failure(refusal): found = refusal
            }
        }
        guard let found else {
            context.path = path
            return mhdYes
        }
        let request = HTTPRequest(method: String(cString: method!), path: String(cString: url!), contentType: nil, body: [], problem: found,
                                  requestID: server.requestID(connection))
        context.request = request
        context.connection?.busy.store(true, ordering: .releasing)
        guard case let .now(response) = server.handler.handle(request) else { return mhdNo }
        context.response = response
        return queue(response, on: connection, close: true, requestID: request.requestID)
    }
    let context = Unmanaged<RequestContext>.fromOpaque(existing).takeUnretainedValue()
    // Body chunks: gather, or discard past the limit (MHD cannot answer mid-upload).
    if uploadSize!.pointee > 0 {
        let n = uploadSize!.pointee
        uploadSize!.pointee = 0
        if context.response != nil { return mhdYes }  // refused at the headers: the body is not read
        if context.tooLarge || context.body.count + n > limit {
            context.tooLarge = true
            context.body = []
            context.discarded += n
            // A client that keeps streaming long past the limit is cut off.
            return context.discarded > 16 * max(limit, 1 << 20) ? mhdNo : mhdYes
        }
        uploadData!.withMemoryRebound(to: UInt8.self, capacity: n) {
            context.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n))
        }
        return mhdYes
    }
    // Called again after a resume (or after a refusal at the headers): the answer is ready.
    if let response = context.response {
        return queue(response, on: connection, close: context.request?.problem != nil || server.closing.load(ordering: .acquiring),
                     requestID: context.request?.requestID)
    }
    if context.isSuspended { return mhdYes }
    let request = HTTPRequest(method: String(cString: method!), path: context.path,
                              contentType: contentType(connection),
                              body: context.body, problem: context.tooLarge ? .payloadTooLarge(limit) : nil,
                              requestID: server.requestID(connection), headers: server.headers(connection))
    context.request = request
    context.body = []
    context.connection?.busy.store(true, ordering: .releasing)
    switch server.handler.handle(request) {
    case let .now(response):
        context.response = response
        return queue(response, on: connection, close: server.closing.load(ordering: .acquiring), requestID: request.requestID)
    case let .later(work):
        context.isSuspended = true
        server.suspended.add(1, ordering: .relaxed)
        MHD_suspend_connection(connection)
        let handle = ConnectionHandle(pointer: connection!)
        Task(executorPreference: server.executor) {
            let response = await work()
            context.response = response
            server.suspended.subtract(1, ordering: .releasing)
            MHD_resume_connection(handle.pointer)
        }
        return mhdYes
    }
}

private let completedHandler: MHD_RequestCompletedCallback = { cls, _, requestContext, _ in
    guard let cls, let raw = requestContext?.pointee else { return }
    let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()
    let context = Unmanaged<RequestContext>.fromOpaque(raw).takeRetainedValue()
    requestContext!.pointee = nil
    if let request = context.request, let response = context.response {
        let micros = Int((DispatchTime.now().uptimeNanoseconds - context.start) / 1000)
        server.handler.completed(request, response: response, microseconds: micros)
    }
    if let state = context.connection {
        // the next request's deadline runs from this answer
        state.phaseStart.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        state.busy.store(false, ordering: .releasing)
    }
    server.recycle(context)
    server.inFlight.subtract(1, ordering: .releasing)
}
