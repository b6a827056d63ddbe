import Foundation
import HTTPServer
import LSTMService

/// µs of application work per predict request, without HTTP: Service.handle on an in-memory
/// request (parse, decode, normalize, forward, answer, serialize).
func handlerMicroseconds(modelsDirectory: String, body: [UInt8], seconds: Double) throws -> Double {
    var c = Configuration()
    c.logLevel = "warning"
    let service = Service(configuration: c)
    service.install(try ModelRegistry.load(paths: [], modelsDirectory: modelsDirectory, defaultName: ""))
    let request = HTTPRequest(method: "POST", path: "/v1/predict", contentType: "application/json", body: body)
    var bytes = 0
    return measure {
        if case let .now(r) = service.handle(request) { bytes += r.body.count }
        service.completed(request, status: 200, microseconds: 100)
    }
}
