/// A request as the handler sees it: the body fully read (or flagged as too large).
public struct HTTPRequest: Sendable {
    public let method: String
    /// The path, without the query string.
    public let path: String
    /// The Content-Type header, if the client sent one.
    public let contentType: String?
    public let body: [UInt8]
    /// Why the server refuses this request before reading it as the application would (its
    /// framing, path or size); the handler renders the refusal in its own envelope.
    public let problem: HTTPRequestProblem?
    /// The client's `X-Request-ID` when it sent a usable one, else one made here (empty when
    /// the server makes none); echoed in the response.
    public let requestID: String
    /// Headers the application asks for (`HTTPServer.Configuration.headersToRead`), by the
    /// lowercased name; nil when absent.
    public let headers: [String: String]

    public init(method: String, path: String, contentType: String?, body: [UInt8], problem: HTTPRequestProblem? = nil,
                requestID: String = "", headers: [String: String] = [:]) {
        self.method = method
        self.path = path
        self.contentType = contentType
        self.body = body
        self.problem = problem
        self.requestID = requestID
        self.headers = headers
    }

    public func header(_ lowercasedName: String) -> String? { headers[lowercasedName] }
}

/// What the server finds wrong with a request before the application sees it.
public enum HTTPRequestProblem: Error, Sendable, Equatable {
    /// Malformed or ambiguous framing, or a path with more than one reading: 400.
    case badRequest(String)
    /// A body over `maxBodyBytes` (the limit): 413.
    case payloadTooLarge(Int)
    /// The connection was accepted past `connectionLimit`: 503, and the connection is closed.
    case overCapacity
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// The handler's own mark (such as the route it matched), handed back to `completed`, so
    /// the handler need not work a request out twice. Not sent.
    public var label = -1

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// What a handler returns: an answer now (computed on the server's worker thread), work to
/// await, or a start that is handed the function to answer with (the connection is suspended
/// meanwhile and resumed with the answer). `deferred` suits answers another thread completes
/// (the session journal's commits): it needs no task and no hop to the task's executor.
public enum HTTPHandlerResult: Sendable {
    case now(HTTPResponse)
    case later(@Sendable () async -> HTTPResponse)
    /// `start` runs at once on the worker thread; the answer is what is passed, exactly once
    /// and from any thread, to the function it is given.
    case deferred(@Sendable (_ answer: @escaping @Sendable (HTTPResponse) -> Void) -> Void)
}

public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest) -> HTTPHandlerResult
    /// Called once per finished request with the response sent and the duration, for logs
    /// and metrics.
    func completed(_ request: HTTPRequest, response: HTTPResponse, microseconds: Int)
}

public enum HTTPServerError: Error, Equatable, CustomStringConvertible {
    case cannotStart(host: String, port: Int)
    case tls(String)

    public var description: String {
        switch self {
        case let .cannotStart(host, port): return "cannot listen on \(host):\(port) (the name does not resolve, the address is in use or not permitted, or the TLS certificate or key is invalid)"
        case let .tls(reason): return reason
        }
    }
}
