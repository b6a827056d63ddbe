import Foundation
import HTTPServer
import JSON
import ModelRuntime
import SessionStore

/// What every protocol front end shares: JSON answers, the request body as JSON, the model
/// version a path names, and its own error envelope, which `reply(_: APIError)` renders.
public protocol APIFrontEnd {
    /// An error in this protocol's one envelope.
    static func envelope(_ error: APIError) -> HTTPResponse
}

/// What the front ends report as they go, for whoever counts it (the server's metrics).
public protocol FrontEndEvents: Sendable {
    /// A session step ran at once on the request's thread (`direct`), or waited for its shard.
    func sessionStep(direct: Bool)
}

/// What every front end answers with: the served models, the sessions, and the limits and
/// counters it works by.
public struct FrontEndContext: Sendable {
    public let models: ModelHost
    public let sessions: any SessionDriver
    /// Most windows in one request.
    public let maxBatch: Int
    /// Seconds a session lives idle.
    public let sessionTTL: Double
    public let events: any FrontEndEvents

    public init(models: ModelHost, sessions: any SessionDriver, maxBatch: Int, sessionTTL: Double, events: any FrontEndEvents) {
        (self.models, self.sessions, self.maxBatch, self.sessionTTL, self.events) = (models, sessions, maxBatch, sessionTTL, events)
    }
}

public enum LSTMServeVersion {
    public static let string = "0.6.0"
}

extension APIFrontEnd {
    public static var jsonHeaders: [(String, String)] { [("Content-Type", "application/json")] }

    public static func reply(_ status: Int, _ json: JSON, headers: [(String, String)] = []) -> HTTPResponse {
        do {
            return HTTPResponse(status: status, headers: headers.isEmpty ? jsonHeaders : jsonHeaders + headers,
                                body: try json.serializedBytes())
        } catch {
            return reply(nonFinite(error))
        }
    }

    /// A JSON body written already.
    public static func reply(_ status: Int, bytes: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: jsonHeaders, body: bytes)
    }

    public static func reply(_ error: APIError) -> HTTPResponse { envelope(error) }

    /// An answer that cannot be written: the model produced NaN or infinity for this input.
    public static func nonFinite(_ error: JSONError) -> APIError {
        APIError(.unprocessable, "the model's output is not a finite number for this input (\(error))")
    }

    /// Work off the request's thread; its error in this protocol's envelope.
    public func later(_ work: @escaping @Sendable () async throws(APIError) -> HTTPResponse) -> HTTPHandlerResult {
        .later {
            do throws(APIError) { return try await work() } catch { return Self.reply(error) }
        }
    }

    /// The body as JSON: 415 for a declared non-JSON type, 400 for malformed JSON.
    public static func parseBody(_ request: HTTPRequest, optional: Bool = false) throws(APIError) -> JSONDocument? {
        if let type = request.contentType, !isJSONMediaType(type) {
            throw APIError(.unsupportedMediaType, "Content-Type '\(type)' is not JSON; send application/json (curl: --json)")
        }
        if request.body.isEmpty {
            if optional { return nil }
            throw APIError(.badRequest, "request body is empty; expected a JSON object")
        }
        do { return try JSONDocument(bytes: request.body) } catch {
            throw APIError(.badRequest, "malformed JSON: \(error)")
        }
    }

    /// application/json or anything +json; parameters such as `; charset=utf-8` and case are
    /// ignored. A form or text/plain body is refused: those are what a web page may send to
    /// any server without asking (a JSON POST from another origin needs a CORS preflight).
    public static func isJSONMediaType(_ type: String) -> Bool {
        if type == "application/json" { return true }  // the common case, without lowercasing
        let base = type.prefix { $0 != ";" }.lowercased().trimmingCharacters(in: .whitespaces)
        return base == "application/json" || base.hasSuffix("+json")
    }

    public static func entry(_ registry: ModelRegistry, _ name: String) throws(APIError) -> ModelRegistry.Entry {
        guard let e = registry[name] else {
            throw APIError(.notFound, "no model '\(name)' (loaded: \(registry.names.joined(separator: ", ")))")
        }
        return e
    }

    /// A served version of a model; `version` is the path's or body's text (digits).
    public static func entry(_ registry: ModelRegistry, _ name: String, version: Substring?) throws(APIError) -> ModelRegistry.Entry {
        let e = try entry(registry, name)
        guard let version else { return e }
        guard let v = Int(version), let found = registry[name, v] else {
            let served = registry.versions[name]!.map { String($0.version) }.joined(separator: ", ")
            throw APIError(.notFound, "model '\(name)' has no version '\(ControlCharacters.escaped(String(version)))' served (versions: \(served))")
        }
        return found
    }
}
