import HTTPServer
import JSON
import ModelRuntime

/// POST /v1/predict and /v1/models/{name}/predict: on the worker thread, against the shared
/// immutable model, with a pooled workspace.
extension Service {
    func predict(_ request: HTTPRequest, _ registry: ModelRegistry, _ name: String?) throws(APIError) -> HTTPResponse {
        let entry = try Self.entry(registry, name ?? registry.defaultName)
        let body = try Self.parseBody(request)!
        let decoded = try native { () throws(RuntimeError) in try PredictRequest.decode(body.value, model: entry.model) }
        guard decoded.batchSize <= configuration.maxBatch else {
            throw APIError(.unprocessable, "windows has \(decoded.batchSize) windows; the limit is \(configuration.maxBatch) per request")
        }
        let result = registry.withWorkspace(entry, batchSize: decoded.batchSize) { ws in
            entry.predictor.run(decoded, workspace: ws)
        }
        do {
            if let bytes = try entry.predictor.answerBytes(to: decoded, result: result) { return Self.reply(200, bytes: bytes) }
        } catch {
            return Self.reply(Self.nonFinite(error))
        }
        return Self.reply(200, entry.predictor.response(to: decoded, result: result))
    }
}
