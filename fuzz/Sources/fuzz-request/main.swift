import FuzzDriver
import Dispatch
import Foundation
import HTTPServer
import LSTMService
import ModelRuntime

/// Request decoding as the server does it, without sockets: the shipped temperature model
/// behind a service, and the input as a body. The first byte picks the endpoint (predict,
/// predict by name, step, state import, session create); the rest is the body. Every answer
/// must be below 500; a refused step or import must leave the session as it was.
final class Fixture: @unchecked Sendable {
    let service: Service
    let session: String

    init() {
        var c = Configuration()
        c.logLevel = "error"
        c.sessionStore = "memory"
        let models = ProcessInfo.processInfo.environment["LSTM_SERVE_FUZZ_MODELS"] ?? "models"
        service = try! Service(configuration: c)
        service.install(try! ModelRegistry.load(paths: [], modelsDirectory: models, defaultName: ""))
        let created = Fixture.run(service, HTTPRequest(method: "POST", path: "/v1/sessions", contentType: nil, body: []))
        session = String(decoding: created.body, as: UTF8.self).split(separator: "\"")[3].description
    }

    static func run(_ service: Service, _ request: HTTPRequest) -> HTTPResponse {
        switch service.handle(request) {
        case let .now(response): return response
        case let .later(work):
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var response = HTTPResponse(status: 0)
            Task {
                response = await work()
                done.signal()
            }
            done.wait()
            return response
        case let .deferred(start):
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var response = HTTPResponse(status: 0)
            start {
                response = $0
                done.signal()
            }
            done.wait()
            return response
        }
    }
}

nonisolated(unsafe) let fixture = Fixture()

func fuzzRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let body = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let id = fixture.session
    let (method, path): (String, String) = switch data[0] % 5 {
    case 0: ("POST", "/v1/predict")
    case 1: ("POST", "/v1/models/temperature/predict")
    case 2: ("POST", "/v1/sessions/\(id)/step")
    case 3: ("PUT", "/v1/sessions/\(id)/state")
    default: ("POST", "/v1/sessions")
    }
    let touchesSession = path.hasPrefix("/v1/sessions/")
    let before = touchesSession ? Fixture.run(fixture.service, HTTPRequest(method: "GET", path: "/v1/sessions/\(id)/state", contentType: nil, body: [])) : nil
    let response = Fixture.run(fixture.service, HTTPRequest(method: method, path: path, contentType: "application/json", body: body))
    precondition(response.status > 0 && response.status < 500, "\(method) \(path) answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
    if path == "/v1/sessions", response.status == 201 {
        // keep the store small: a full one answers 429 and slows every create
        let made = String(decoding: response.body, as: UTF8.self).split(separator: "\"")[3]
        _ = Fixture.run(fixture.service, HTTPRequest(method: "DELETE", path: "/v1/sessions/\(made)", contentType: nil, body: []))
    }
    if let before, response.status >= 400 {
        let after = Fixture.run(fixture.service, HTTPRequest(method: "GET", path: "/v1/sessions/\(id)/state", contentType: nil, body: []))
        precondition(after.body == before.body, "a refused \(method) \(path) changed the session")
    }
    // keep the session from growing its step count without bound
    if let before, path.hasSuffix("/step"), response.status == 200 {
        _ = Fixture.run(fixture.service, HTTPRequest(method: "PUT", path: "/v1/sessions/\(id)/state", contentType: "application/json", body: before.body))
    }
    return 0
}

runFuzzer { data, size in fuzzRequest(data, size) }
