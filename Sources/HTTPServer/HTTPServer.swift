internal import CMicroHTTPD
import Foundation
import Locking
import Synchronization

/// An HTTP/1.1 server on libmicrohttpd: MHD's epoll polling threads (a pool), bodies gathered
/// across upload callbacks, responses from memory. The one place MHD's C callbacks and threads
/// meet Swift.
public final class HTTPServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0 picks a free port; `start` returns the one bound.
        public var port = 8080
        /// MHD worker threads.
        public var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        public var maxBodyBytes = 1 << 20
        /// Seconds a connection may stay idle (MHD's default is forever).
        public var connectionTimeout = 30
        public var connectionLimit = 1024
        public var perIPConnectionLimit = 0
        /// MHD's per-connection memory pool (caps the header size).
        public var connectionMemoryLimit = 32 * 1024

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

    public init(configuration: Configuration, handler: any HTTPHandler) {
        self.configuration = configuration
        self.handler = handler
    }

    /// Starts listening; returns the bound port. The corresponding C function is `MHD_start_daemon`.
    @discardableResult
    public func start() throws(HTTPServerError) -> Int {
        let c = configuration
        guard c.host.split(separator: ".").count == 4 else { throw .invalidHost(c.host) }
        let context = Unmanaged.passUnretained(self).toOpaque()
        daemon = CMicroHTTPD_start_daemon(
            c.host, UInt16(c.port), UInt32(c.threads), accessHandler, context, completedHandler, context,
            UInt32(c.connectionTimeout), UInt32(c.connectionLimit), UInt32(c.perIPConnectionLimit), c.connectionMemoryLimit)
        guard let daemon else { throw .cannotStart(host: c.host, port: c.port) }
        return Int(CMicroHTTPD_bound_port(daemon))
    }

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

/// The corresponding C function is `MHD_lookup_connection_value`.
private func rawHeader(_ connection: OpaquePointer?, _ name: StaticString) -> UnsafePointer<CChar>? {
    // MHD_HEADER_KIND
    name.withUTF8Buffer { n in
        n.withMemoryRebound(to: CChar.self) { MHD_lookup_connection_value(connection, MHD_ValueKind(rawValue: 1)!, $0.baseAddress) }
    }
}

private func queue(_ response: HTTPResponse, on connection: OpaquePointer?) -> MHD_Result {
    let made = response.body.withUnsafeBytes { raw -> OpaquePointer? in
        // MHD_RESPMEM_MUST_COPY
        MHD_create_response_from_buffer(raw.count, UnsafeMutableRawPointer(mutating: raw.baseAddress), MHD_ResponseMemoryMode(rawValue: 2)!)
    }
    guard let made else { return mhdNo }
    for (name, value) in response.headers {
        _ = name.withCString { n in value.withCString { v in MHD_add_response_header(made, n, v) } }
    }
    let result = MHD_queue_response(connection, UInt32(response.status), made)
    MHD_destroy_response(made)
    return result
}

private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, uploadData, uploadSize, requestContext in
    let server = Unmanaged<HTTPServer>.fromOpaque(cls!).takeUnretainedValue()
    let limit = server.configuration.maxBodyBytes
    // First call: headers only. Refuse a declared oversize body before reading it.
    guard let existing = requestContext!.pointee else {
        let context = server.takeContext()
        server.inFlight.add(1, ordering: .relaxed)
        requestContext!.pointee = Unmanaged.passRetained(context).toOpaque()
        if let length = header(connection, "Content-Length").flatMap(Int.init), length > limit {
            context.tooLarge = true
        }
        return mhdYes
    }
    let context = Unmanaged<RequestContext>.fromOpaque(existing).takeUnretainedValue()
    // Body chunks: gather, or discard past the limit (MHD cannot answer mid-upload).
    if uploadSize!.pointee > 0 {
        let n = uploadSize!.pointee
        if context.tooLarge || context.body.count + n > limit {
            context.tooLarge = true
            context.body = []
            context.discarded += n
            uploadSize!.pointee = 0
            // A client that keeps streaming long past the limit is cut off.
            return context.discarded > 16 * max(limit, 1 << 20) ? mhdNo : mhdYes
        }
        uploadData!.withMemoryRebound(to: UInt8.self, capacity: n) {
            context.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n))
        }
        uploadSize!.pointee = 0
        return mhdYes
    }
    // Called again after a resume: the answer is ready.
    if let response = context.response { return queue(response, on: connection) }
    if context.isSuspended { return mhdYes }
    let request = HTTPRequest(method: String(cString: method!), path: String(cString: url!),
                              contentType: contentType(connection),
                              body: context.body, bodyTooLarge: context.tooLarge)
    context.request = request
    context.body = []
    switch server.handler.handle(request) {
    case let .now(response):
        context.response = response
        return queue(response, on: connection)
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
    server.recycle(context)
    server.inFlight.subtract(1, ordering: .releasing)
}
