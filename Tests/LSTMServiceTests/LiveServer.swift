import Foundation
import JSON
import LSTMService
import ModelFormat
import ModelRuntime
import SessionStore
import TestSupport

/// A real server on 127.0.0.1 port 0 with the shipped temperature model and a manual clock.
final class LiveServer: @unchecked Sendable {
    let server: Server
    let client: HTTPClient
    let clock = ManualClock()

    static let modelsDirectory = Fixtures.root + "/../../models"

    init(_ tweak: (inout Configuration) -> Void = { _ in }) throws {
        var c = Configuration()
        c.port = 0
        c.threads = 2
        c.logLevel = "warning"
        c.modelsDirectory = Self.modelsDirectory
        c.sessionStore = "memory"
        tweak(&c)
        server = try Server(configuration: c, clock: clock)
        let port = try server.start()
        server.service.install(try ModelRegistry.load(c.repository, defaultName: c.defaultModel))
        client = HTTPClient(port: port)
    }

    deinit {
        server.stop(drainTimeout: 2)
        server.service.closeSessions()
    }

    func get(_ path: String) throws -> HTTPClient.Response { try client.request("GET", path) }
    func post(_ path: String, _ body: String) throws -> HTTPClient.Response { try client.json("POST", path, body) }
    func put(_ path: String, _ body: String) throws -> HTTPClient.Response { try client.json("PUT", path, body) }
    func delete(_ path: String) throws -> HTTPClient.Response { try client.request("DELETE", path) }

    func createSession(_ body: String = "") throws -> String {
        let r = try client.request("POST", "/v1/sessions", body: Array(body.utf8))
        return try JSONDocument(bytes: r.body).value["session_id"]!.string!
    }
}

extension HTTPClient.Response {
    var json: JSONValue { try! JSONDocument(bytes: body).value }
    var errorType: String? { json["error"]?["type"]?.string }
    var errorMessage: String? { json["error"]?["message"]?.string }
}

/// A real week from the data: 2015-02-22 ... 2015-02-28 (forecast for 1 March).
enum Week {
    static let rows: [String] = {
        let doc = try! Fixtures.json("temperature_2015.json")
        let c = doc.value["cases"]!.elements.first { $0["target_date"]!.string == "2015-03-01" }!
        return c["window"]!.elements.map { row in
            "{" + row.keys.sorted().map { k in
                "\"\(k)\": " + (row[k]!.string.map { "\"\($0)\"" } ?? "\(row[k]!.double!)")
            }.joined(separator: ", ") + "}"
        }
    }()
    static var window: String { "[" + rows.joined(separator: ", ") + "]" }
    static var body: String { #"{"window": \#(window)}"# }
}
