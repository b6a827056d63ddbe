import FrontEnd
import HTTPServer
import JSON
import ModelRuntime
import SessionStore

/// POST /v1/predict and /v1/models/{name}/predict: on the worker thread, against the shared
/// immutable model, with a pooled workspace.
extension NativeAPI {
    public func predict(_ request: HTTPRequest, _ entry: ModelRegistry.Entry) throws(APIError) -> HTTPResponse {
        let start = InferenceStatistics.now()
        do throws(APIError) {
            let body = try Self.parseBody(request)!
            let decoded = try native { () throws(RuntimeError) in try PredictRequest.decode(body.value, model: entry.model) }
            guard decoded.batchSize <= context.maxBatch else {
                throw APIError(.unprocessable, "windows has \(decoded.batchSize) windows; the limit is \(context.maxBatch) per request")
            }
            let read = InferenceStatistics.now()
            let result = ModelRegistry.withWorkspace(entry, batchSize: decoded.batchSize) { ws in
                entry.predictor.run(decoded, workspace: ws)
            }
            let ran = InferenceStatistics.now()
            let answers = self.answers(entry)
            let response: HTTPResponse
            do {
                if let bytes = try answers.answerBytes(to: decoded, result: result) {
                    response = Self.reply(200, bytes: bytes)
                } else {
                    response = Self.reply(200, answers.response(to: decoded, result: result))
                }
            } catch {
                throw Self.nonFinite(error)
            }
            let end = InferenceStatistics.now()
            // the model's statistics (V2's /stats) count every protocol's inferences
            entry.statistics.succeeded(samples: decoded.batchSize, input: read - start, infer: ran - read, output: end - ran, total: end - start)
            return response
        } catch {
            entry.statistics.failed(total: InferenceStatistics.now() - start)
            throw error
        }
    }
}
