import FrontEnd
import HTTPServer
import JSON
import ModelRuntime
import SessionStore

/// The native API (`/v1`): predict, stream-step sessions, model information and reloads.
/// Errors are `{"error": {"code": 404, "type": "not_found", "message": "..."}}`.
public struct NativeAPI: APIFrontEnd, Sendable {
    let context: FrontEndContext
    /// Each version's answer writers.
    let answers: PerVersion<NativeAnswers>

    public init(_ context: FrontEndContext, answers: PerVersion<NativeAnswers>) { (self.context, self.answers) = (context, answers) }

    public static func envelope(_ error: APIError) -> HTTPResponse {
        HTTPResponse(status: error.status, headers: jsonHeaders + error.headers, body: Array(((try? error.json.serialized()) ?? "{}").utf8))
    }
}

extension APIError {
    /// The native envelope.
    public var json: JSON {
        .object([("error", .object([("code", .int(status)), ("type", .string(kind.rawValue)), ("message", .string(message))]))])
    }
}
