import JSON
import ModelRuntime
import SessionStore

/// The error every endpoint reports: what went wrong, its HTTP status and any headers it
/// needs. Each protocol front end renders it in its own envelope (`APIFrontEnd.envelope`).
public struct APIError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case badRequest = "bad_request"
        case unauthorized
        case forbidden
        case notFound = "not_found"
        case methodNotAllowed = "method_not_allowed"
        case conflict
        /// A session whose model (or model version) is no longer served.
        case gone
        case misdirected = "misdirected_request"
        case payloadTooLarge = "payload_too_large"
        case unsupportedMediaType = "unsupported_media_type"
        case unprocessable = "unprocessable_entity"
        case tooManyRequests = "too_many_requests"
        case internalError = "internal_error"
        case unavailable = "service_unavailable"
    }

    public let kind: Kind
    public let message: String
    /// Extra response headers (`Allow`, `Retry-After`).
    public var headers: [(String, String)] = []

    public init(_ kind: Kind, _ message: String, headers: [(String, String)] = []) {
        self.kind = kind
        self.message = message
        self.headers = headers
    }

    public static func == (a: APIError, b: APIError) -> Bool { a.kind == b.kind && a.message == b.message }

    /// The kind-to-status mapping, in one place.
    public var status: Int {
        switch kind {
        case .badRequest: return 400
        case .unauthorized: return 401
        case .forbidden: return 403
        case .notFound: return 404
        case .methodNotAllowed: return 405
        case .conflict: return 409
        case .gone: return 410
        case .misdirected: return 421
        case .payloadTooLarge: return 413
        case .unsupportedMediaType: return 415
        case .unprocessable: return 422
        case .tooManyRequests: return 429
        case .internalError: return 500
        case .unavailable: return 503
        }
    }

    public var description: String { message }

    public static func unprocessable(_ message: String) -> APIError { APIError(.unprocessable, message) }
}

extension APIError {
    /// A runtime error as the front ends report it: input they cannot take is unprocessable.
    public init(_ error: RuntimeError) {
        switch error {
        case let .invalidInput(message): self.init(.unprocessable, message)
        case let .loading(message): self.init(.internalError, message)
        }
    }
}

/// A runtime call inside a handler: its error as the API's.
@inline(__always)
public func native<T>(_ body: () throws(RuntimeError) -> T) throws(APIError) -> T {
    do { return try body() } catch { throw APIError(error) }
}

extension APIError {
    /// The session store's refusal as the front ends report it.
    public init(_ error: SessionError) {
        switch error {
        case let .notFound(message): self.init(.notFound, message)
        case let .gone(message): self.init(.gone, message)
        case let .conflict(message): self.init(.conflict, message)
        case let .full(message, retry): self.init(.tooManyRequests, message, headers: [("Retry-After", "\(retry)")])
        // the store is down, failing or stopping: worth another try soon (elsewhere, when stopping)
        case let .unavailable(message): self.init(.unavailable, message, headers: [("Retry-After", "1")])
        case let .refused(message): self.init(.unprocessable, message)
        }
    }
}

extension Result where Failure == SessionError {
    /// The value, or the store's refusal as the API's error.
    public func value() throws(APIError) -> Success {
        switch self {
        case let .success(value): return value
        case let .failure(error): throw APIError(error)
        }
    }
}

/// A session store call inside a handler: its refusal as the API's error.
public func stored<T>(_ body: () async throws(SessionError) -> T) async throws(APIError) -> T {
    do { return try await body() } catch { throw APIError(error) }
}
