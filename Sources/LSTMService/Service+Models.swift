import FrontEnd
import HTTPServer
import JSON
import ModelRuntime
import NativeAPI
import SessionStore

/// GET /readyz and /metrics.
extension Service {
    func ready() -> HTTPResponse {
        if isDraining {
            return Self.reply(503, .object([("status", .string("draining"))]))
        }
        guard let registry else {
            return Self.reply(503, .object([("status", .string("loading"))]), headers: [("Retry-After", "1")])
        }
        var members: [(String, JSON)] = [("status", .string("ready")), ("models", .array(registry.names.map { .string($0) }))]
        if !registry.failed.isEmpty { members.append(("failed", NativeAPI.failures(registry))) }
        return Self.reply(200, .object(members))
    }

    func metricsText() -> HTTPResponse {
        let text = metrics.render(activeSessions: sessions.activeCount, models: registry, transport: transport())
        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: Array(text.utf8))
    }
}
