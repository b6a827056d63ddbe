import Foundation
import JSON
import LSTMService
import ModelRuntime
import TestSupport
import Testing

/// Every endpoint and every error, against a live server on 127.0.0.1:0.
@Suite(.serialized) struct EndpointTests {
    @Test func healthAndReadiness() throws {
        var c = Configuration()
        c.port = 0
        c.logLevel = "warning"
        c.sessionStore = "memory"
        let server = try Server(configuration: c)
        let client = HTTPClient(port: try server.start())
        defer { server.stop(drainTimeout: 1) }
        #expect(try client.request("GET", "/healthz").text == #"{"status":"ok"}"#)
        let notReady = try client.request("GET", "/readyz")
        #expect(notReady.status == 503 && notReady.headers["retry-after"] == "1")
        #expect(try client.request("POST", "/v1/predict", body: Array(Week.body.utf8)).status == 503)
        server.service.install(try ModelRegistry.load(paths: [], modelsDirectory: LiveServer.modelsDirectory, defaultName: ""))
        let ready = try client.request("GET", "/readyz")
        #expect(ready.status == 200 && ready.text == #"{"status":"ready","models":["airline","damped_sine","echo","moving_square","temperature"]}"#)
    }

    @Test func modelsListAndInfo() throws {
        let s = try LiveServer()
        let list = try s.get("/v1/models").json
        #expect(list["default"]!.string == "temperature")
        #expect(list["models"]!.elements.first { $0["name"]?.string == "temperature" }?["parameters"]?.int == 5186)
        let info = try s.get("/v1/models/temperature")
        #expect(info.status == 200 && info.headers["content-type"] == "application/json")
        let v = info.json
        #expect(v["recurrent_layers"]![0]!["parameters"]!.int == 4 * 32 * (6 + 32 + 2))
        #expect(v["recurrent_layers"]![0]!["hidden_size"]!.int == 32)
        #expect(v["head"]![0]!["parameters"]!.int == 66)
        #expect(v["inputs"]!["window"]!.int == 7)
        #expect(v["inputs"]!["features"]!.elements.map { $0["name"]!.string! } == ["temp_max", "temp_min", "precipitation", "wind", "doy_sin", "doy_cos"])
        #expect(v["outputs"]![0]!["unit"]!.string == "°C")
        #expect(v["outputs"]![0]!["residual_of"]!.string == "temp_max" && v["outputs"]![1]!["residual_of"]!.string == "temp_min")
        #expect(v["weights"]!["sha256"]!.string!.count == 64)
        #expect(v["loaded_at"]!.string!.hasSuffix("Z"))
        let missing = try s.get("/v1/models/nope")
        #expect(missing.status == 404 && missing.errorMessage == "no model 'nope' (loaded: airline, damped_sine, echo, moving_square, temperature)")
    }

    @Test func predictAnswersInDegreesWithAnInterval() throws {
        let s = try LiveServer()
        let r = try s.post("/v1/predict", Week.body)
        #expect(r.status == 200)
        let f = r.json["forecast"]!
        let expected = try Fixtures.json("temperature_2015.json").value["cases"]!.elements.first { $0["target_date"]!.string == "2015-03-01" }!["pytorch"]!
        #expect(abs(f["temp_max"]!.double! - expected[0]!.double!) < 1e-4)
        #expect(abs(f["temp_min"]!.double! - expected[1]!.double!) < 1e-4)
        #expect(r.json["units"]!["temp_max"]!.string == "°C")
        let lower = r.json["interval"]!["lower"]!["temp_max"]!.double!, upper = r.json["interval"]!["upper"]!["temp_max"]!.double!
        #expect(lower < f["temp_max"]!.double! && f["temp_max"]!.double! < upper)
        // the same by model name, as a batch, with state and sequences
        let named = try s.post("/v1/models/temperature/predict", Week.body)
        #expect(named.json["forecast"]!["temp_max"]!.double == f["temp_max"]!.double)
        // a second, different window (the week rotated by a day), so each prediction must use
        // its own window's last day for the residual
        let rotated = "[" + (Week.rows[1...] + Week.rows[..<1]).joined(separator: ", ") + "]"
        let alone = try s.post("/v1/predict", #"{"window": \#(rotated)}"#).json["forecast"]!
        let batch = try s.post("/v1/predict", #"{"windows": [\#(Week.window), \#(rotated)], "return_state": true, "return_sequences": true}"#)
        #expect(batch.status == 200)
        let p = batch.json["predictions"]!
        #expect(p.count == 2 && p[0]!["forecast"]!["temp_max"]!.double == f["temp_max"]!.double)
        #expect(p[1]!["forecast"]!["temp_max"]!.double == alone["temp_max"]!.double && alone["temp_max"]!.double != f["temp_max"]!.double)
        #expect(p[1]!["forecast"]!["temp_min"]!.double == alone["temp_min"]!.double)
        #expect(p[0]!["state"]?["layers"]?["rnn layer 0"]?["h"]?.count == 32 && p[0]!["sequence"]!.count == 7)
    }

    @Test func badPredictRequestsGetTheRightStatusAndSayWhy() throws {
        let s = try LiveServer()
        func check(_ body: String, _ status: Int, _ type: String, _ message: String? = nil, contentType: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
            var headers: [String: String] = [:]
            if let contentType { headers["Content-Type"] = contentType }
            let r = try s.client.request("POST", "/v1/predict", body: Array(body.utf8), headers: headers)
            #expect(r.status == status, "\(r.text)", sourceLocation: sourceLocation)
            #expect(r.errorType == type, sourceLocation: sourceLocation)
            if let message { #expect(r.errorMessage == message, sourceLocation: sourceLocation) }
        }
        try check(#"{"window": ["#, 400, "bad_request")
        try check("", 400, "bad_request", "request body is empty; expected a JSON object")
        try check(#"{"window": [NaN]}"#, 400, "bad_request")
        try check("a,b", 415, "unsupported_media_type", contentType: "text/csv")
        try check(#"{"window": \#(Week.window), "window": []}"#, 400, "bad_request")
        let six = "[" + Week.rows.prefix(6).joined(separator: ", ") + "]"
        try check(#"{"window": \#(six)}"#, 422, "unprocessable_entity", "window has 6 rows, model 'temperature' expects 7")
        let inf = Week.window.replacingOccurrences(of: "\"precipitation\": 0.0", with: "\"precipitation\": 1e39")
        try check(#"{"window": \#(inf)}"#, 422, "unprocessable_entity")
        let text = Week.window.replacingOccurrences(of: "\"precipitation\": 0.0", with: "\"precipitation\": \"dry\"")
        try check(#"{"window": \#(text)}"#, 422, "unprocessable_entity")
        let arrays = "[" + Array(repeating: "[10, 5, 0, 3]", count: 7).joined(separator: ",") + "]"
        try check(#"{"window": \#(arrays)}"#, 422, "unprocessable_entity")
        try check(#"{"rows": 1}"#, 422, "unprocessable_entity")
        #expect(try s.get("/v1/nothing").status == 404)
        let wrongMethod = try s.client.request("GET", "/v1/predict")
        #expect(wrongMethod.status == 405 && wrongMethod.headers["allow"] == "POST")
        #expect(try s.post("/v1/models/nope/predict", Week.body).status == 404)
    }

    @Test func aTenMegabyteBodyGets413AndTheServerKeepsServing() throws {
        let s = try LiveServer()
        let big = [UInt8](repeating: UInt8(ascii: " "), count: 10_000_000)
        let r = try s.client.request("POST", "/v1/predict", body: big)
        #expect(r.status == 413 && r.errorType == "payload_too_large")
        // chunked, with no declared length: discarded as it arrives, then 413
        let chunk = "100000\r\n" + String(repeating: " ", count: 0x100000) + "\r\n"
        var chunked = Array(String(repeating: chunk, count: 3).utf8) + Array("0\r\n\r\n".utf8)
        chunked = Array("POST /v1/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n".utf8) + chunked
        let raw = try RawSocket(port: s.client.port).exchange(chunked)
        #expect(raw.hasPrefix("HTTP/1.1 413"))
        #expect(try s.post("/v1/predict", Week.body).status == 200)
        #expect(try s.get("/healthz").status == 200)
    }

    @Test func reusedRequestContextsCarryNothingOver() throws {
        // the server keeps finished requests' contexts and body buffers for the next requests:
        // a body, a too-large flag or an answer must never leak into a later request
        let s = try LiveServer()
        let big = [UInt8](repeating: UInt8(ascii: " "), count: 2_000_000)
        let expected = try s.post("/v1/predict", Week.body).json["forecast"]!["temp_max"]!.double!
        for _ in 0..<20 {
            #expect(try s.client.request("POST", "/v1/predict", body: big).status == 413)
            let empty = try s.client.request("POST", "/v1/predict")
            #expect(empty.status == 400 && empty.errorMessage == "request body is empty; expected a JSON object")
            #expect(try s.post("/v1/predict", Week.body).json["forecast"]!["temp_max"]!.double == expected)
            let short = try s.post("/v1/predict", "{")
            #expect(short.status == 400 && short.errorMessage!.hasPrefix("malformed JSON"))
            #expect(try s.post("/v1/predict", #"{"window": []}"#).status == 422)
        }
    }

    @Test func metricsCountRequestsAndSessions() throws {
        let s = try LiveServer()
        _ = try s.post("/v1/predict", Week.body)
        _ = try s.post("/v1/predict", "{")
        _ = try s.createSession()
        // made-up methods and paths count under fixed labels, so clients cannot grow the label set
        #expect(try s.client.request("BREW", "/healthz").status == 405)
        #expect(try s.client.request("GET", "/teapot").status == 404)
        let text = try s.get("/metrics").text
        #expect(text.contains(#"lstm_serve_requests_total{route="/healthz",method="other",status="405"} 1"#))
        #expect(text.contains(#"lstm_serve_requests_total{route="unmatched",method="GET",status="404"} 1"#))
        #expect(!text.contains("BREW") && !text.contains("teapot"))
        #expect(text.contains(#"lstm_serve_requests_total{route="/v1/predict",method="POST",status="200"} 1"#))
        #expect(text.contains(#"lstm_serve_requests_total{route="/v1/predict",method="POST",status="400"} 1"#))
        #expect(text.contains(#"lstm_serve_request_duration_seconds_count{route="/v1/predict"} 2"#))
        #expect(text.contains("lstm_serve_sessions_active 1"))
        #expect(text.contains("lstm_serve_sessions_created_total 1"))
        #expect(text.contains(#"lstm_serve_model_info{model="temperature",cell="lstm",parameters="5186""#))
    }
}

/// Writes raw bytes and reads the answer until the server closes.
struct RawSocket {
    let port: Int
    func exchange(_ bytes: [UInt8]) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        _ = withLoopback(port) { connect(fd, $0, $1) }
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            sent += n
        }
        var out: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65536)
        while true { let n = read(fd, &buffer, buffer.count); if n <= 0 { break }; out += buffer[0..<n] }
        return String(decoding: out, as: UTF8.self)
    }
}
