import Foundation
import HTTPServer
import LSTMService
import ModelRuntime

/// µs of application work per request, without HTTP: Service.handle and completed on an
/// in-memory request (parse, decode, normalize, forward, answer, serialize, count).
func handlerMicroseconds(modelsDirectory: String, body: [UInt8], seconds: Double) async throws -> (predict: Double, step: Double) {
    var c = Configuration()
    c.logLevel = "warning"
    c.sessionStore = "memory"
    let service = try Service(configuration: c)
    service.install(try ModelRegistry.load(paths: [], modelsDirectory: modelsDirectory, defaultName: ""))
    let predict = HTTPRequest(method: "POST", path: "/v1/predict", contentType: "application/json", body: body)
    var bytes = 0
    let predictUs = measure {
        if case let .now(r) = service.handle(predict) {
            bytes += r.body.count
            service.completed(predict, response: r, microseconds: 100)
        }
    }
    // One session, stepped with the first row of the body's window (as named features when
    // the window's rows are objects).
    guard case let .later(create) = service.handle(HTTPRequest(method: "POST", path: "/v1/sessions", contentType: nil, body: [])),
          let made = try JSONSerialization.jsonObject(with: Data(await create().body)) as? [String: Any],
          let id = made["session_id"] as? String,
          let window = (try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["window"] as? [Any] else {
        throw CocoaError(.featureUnsupported)
    }
    let row = try JSONSerialization.data(withJSONObject: ["x": window[0]])
    let step = HTTPRequest(method: "POST", path: "/v1/sessions/\(id)/step", contentType: "application/json", body: [UInt8](row))
    let stepUs = measure {
        if case let .now(r) = service.handle(step) {
            bytes += r.body.count
            service.completed(step, response: r, microseconds: 100)
        }
    }
    if bytes == 0 { print("no answers") }
    return (predictUs, stepUs)
}

/// µs of application work per request for each body, taking turns in one run: the native
/// predict body first, then V2 infer bodies (path, body, Inference-Header-Content-Length or nil).
func protocolMicroseconds(modelsDirectory: String, requests: [(path: String, body: [UInt8], headerLength: String?)]) throws -> [Double] {
    var c = Configuration()
    c.logLevel = "warning"
    c.sessionStore = "memory"
    let service = try Service(configuration: c)
    service.install(try ModelRegistry.load(paths: [], modelsDirectory: modelsDirectory, defaultName: ""))
    let made = requests.map { r in
        HTTPRequest(method: "POST", path: r.path, contentType: r.headerLength == nil ? "application/json" : "application/octet-stream",
                    body: r.body, headers: r.headerLength.map { ["inference-header-content-length": $0] } ?? [:])
    }
    var best = [Double](repeating: .infinity, count: made.count)
    for _ in 0..<3 {  // rounds, each request in turn: the minimum per request
        for (k, request) in made.enumerated() {
            var status = 0
            let us = measure {
                if case let .now(r) = service.handle(request) {
                    status = r.status
                    service.completed(request, response: r, microseconds: 100)
                }
            }
            if status != 200 { print("request \(k) answered \(status)") }
            best[k] = min(best[k], us)
        }
    }
    return best
}
