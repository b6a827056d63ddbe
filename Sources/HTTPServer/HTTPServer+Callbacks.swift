internal import CMicroHTTPD
import Foundation
import Synchronization

// libmicrohttpd's callbacks: the accept policy, connection start and end, the request target as
// sent, the access handler (headers, body chunks, the answer) and request completion.

extension HTTPServer {
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

let acceptPolicy: MHD_AcceptPolicyCallback = { cls, _, _ in
    let server = Unmanaged<HTTPServer>.fromOpaque(cls!).takeUnretainedValue()
    return server.connections.acceptsMore ? mhdYes : mhdNo
}

let connectionHandler: MHD_NotifyConnectionCallback = { cls, connection, socketContext, code in
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
let targetHandler: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, OpaquePointer?) -> UnsafeMutableRawPointer? = { _, uri, connection in
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

let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, version, uploadData, uploadSize, requestContext in
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
    case let .deferred(start):
        context.isSuspended = true
        server.suspended.add(1, ordering: .relaxed)
        MHD_suspend_connection(connection)
        let handle = ConnectionHandle(pointer: connection!)
        start { response in
            context.response = response
            server.suspended.subtract(1, ordering: .releasing)
            MHD_resume_connection(handle.pointer)
        }
        return mhdYes
    }
}

let completedHandler: MHD_RequestCompletedCallback = { cls, _, requestContext, _ in
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
