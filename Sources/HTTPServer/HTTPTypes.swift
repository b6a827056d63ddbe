/// A request as the handler sees it: the body fully read (or flagged as too large).
public struct HTTPRequest: Sendable {
    public let method: String
    /// The path, without the query string.
    public let path: String
    /// The Content-Type header, if the client sent one.
    public let contentType: String?
    public let body: [UInt8]
    /// The body exceeded `Configuration.maxBodyBytes` and was dropped.
    public let bodyTooLarge: Bool

    public init(method: String, path: String, contentType: String?, body: [UInt8], bodyTooLarge: Bool = false) {
        self.method = method
        self.path = path
        self.contentType = contentType
        self.body = body
        self.bodyTooLarge = bodyTooLarge
    }
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

/// What a handler returns: an answer now (computed on the server's worker thread), or work
/// to await (the connection is suspended meanwhile and resumed with the answer).
public enum HTTPHandlerResult: Sendable {
    case now(HTTPResponse)
    case later(@Sendable () async -> HTTPResponse)
}

public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest) -> HTTPHandlerResult
    /// Called once per finished request with the response sent and the duration, for logs
    /// and metrics.
    func completed(_ request: HTTPRequest, response: HTTPResponse, microseconds: Int)
}

public enum HTTPServerError: Error, Equatable, CustomStringConvertible {
    case cannotStart(host: String, port: Int)
    case invalidHost(String)

    public var description: String {
        switch self {
        case let .cannotStart(host, port): return "cannot listen on \(host):\(port) (address in use or not permitted)"
        case let .invalidHost(host): return "host '\(host)' is not an IPv4 address"
        }
    }
}
