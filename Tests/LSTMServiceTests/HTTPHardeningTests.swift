import Foundation
import FrontEnd
import JSON
import LSTMService
import TestSupport
import Testing

/// Hostile framing, paths and clients over raw sockets against a live server.
@Suite(.serialized) struct HTTPHardeningTests {
    /// One well-framed answer: a status line, headers, exactly Content-Length bytes of body,
    /// then the server closes.
    static func singleAnswer(_ got: (data: [UInt8], timedOut: Bool)) throws -> HTTPClient.Response {
        #expect(!got.timedOut, "the server held the connection instead of answering and closing")
        let r = try HTTPClient.parse(got.data)
        #expect(r.body.count == Int(r.headers["content-length"] ?? "-1"), "body is not exactly Content-Length bytes: \(String(decoding: got.data, as: UTF8.self))")
        return r
    }

    @Test func ambiguousFramingIsRefusedWith400AndTheConnectionClosed() throws {
        let s = try LiveServer()
        let cases: [(String, String)] = [
            ("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x", "Content-Length is given more than once"),
            ("POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "Transfer-Encoding must be 'chunked' (once) or absent"),
            ("POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding must be 'chunked' (once) or absent"),
            ("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Content-Length and Transfer-Encoding together are ambiguous; send one"),
            ("GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", "a header name has a space or a byte that is not allowed in a name"),
            ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", "a header has a control byte (CR, LF or NUL) in it"),
            ("GET /healthz HTTP/1.1\r\n\r\n", "an HTTP/1.1 request needs exactly one Host header"),
            ("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "an HTTP/1.1 request needs exactly one Host header"),
        ]
        for (request, message) in cases {
            let r = try Self.singleAnswer(try s.client.raw(request))
            #expect(r.status == 400 && r.errorMessage == message, "\(request.debugDescription) -> \(r.status) \(r.text)")
            #expect(r.headers["connection"] == "close")
        }
        // a Content-Length that is not a number: libmicrohttpd 0.9.75 refuses it itself, before
        // the server sees the request (and writes its status line twice; see README)
        for length in ["abc", "-1", "+2", ""] {
            let got = try s.client.raw("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: \(length)\r\n\r\n{}")
            #expect(!got.timedOut && String(decoding: got.data.prefix(24), as: UTF8.self) == "HTTP/1.1 400 Bad Request")
        }
        // HTTP/1.0 needs no Host, and the server still serves
        #expect(try Self.singleAnswer(try s.client.raw("GET /healthz HTTP/1.0\r\n\r\n")).status == 200)
        #expect(try s.get("/healthz").status == 200)
    }

    @Test func aPathHasOneReadingOrIsRefused() throws {
        let s = try LiveServer()
        let refused: [(String, String)] = [
            ("GET /metrics\u{0}x HTTP/1.1", "the request target has a NUL byte"),
            ("GET /metrics%00x HTTP/1.1", "the path has an encoded control byte (%00)"),
            ("POST /v1/sessions%00junk HTTP/1.1", "the path has an encoded control byte (%00)"),
            ("POST /v1/predict%00/../admin HTTP/1.1", "the path has an encoded control byte (%00)"),
            ("POST /v1%2Fsessions HTTP/1.1", "the path has an encoded '/' (%2F); send path separators as '/'"),
            ("POST /v1%2fsessions HTTP/1.1", "the path has an encoded '/' (%2F); send path separators as '/'"),
            ("GET healthz HTTP/1.1", "the request target must be a path starting with '/'"),
            ("GET http://x/healthz HTTP/1.1", "the request target must be a path starting with '/'"),
            ("GET /healthz%zz HTTP/1.1", "the path has a '%' not followed by two hex digits"),
            ("GET /healthz%4 HTTP/1.1", "the path has a '%' not followed by two hex digits"),
            ("GET /v1/models/%0Atemperature HTTP/1.1", "the path has an encoded control byte (%0A)"),
            ("GET /v1/models/\u{7F} HTTP/1.1", "the path has a byte that must be percent-encoded (0x7F)"),
            ("GET /v1/models/%FF HTTP/1.1", "the decoded path is not UTF-8"),
        ]
        for (line, message) in refused {
            let r = try Self.singleAnswer(try s.client.raw(line + "\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
            #expect(r.status == 400 && r.errorMessage == message, "\(line.debugDescription) -> \(r.status) \(r.text)")
        }
        #expect(try s.client.request("GET", "/v1/models").status == 200)
        // an escape that decodes to an ordinary byte is that byte; the query is not the path
        #expect(try s.get("/v1/models/temp%65rature").json["name"]?.string == "temperature")
        #expect(try s.get("/healthz?probe=1").status == 200)
        #expect(try s.get("/v1/models/nope%20x").errorMessage == "no model 'nope x' (loaded: airline, damped_sine, echo, moving_square, temperature)")
        // nothing refused here created a session
        #expect(s.server.service.sessions.activeCount == 0)
    }

    @Test func anOversizeBodyIsRefusedBeforeItIsSent() throws {
        let s = try LiveServer { $0.maxBodyBytes = 1000 }
        let fd = try s.client.connectSocket()
        defer { close(fd) }
        try s.client.send(fd, Array("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n".utf8))
        let r = try Self.singleAnswer(HTTPClient.readAll(fd, timeout: 2))
        #expect(r.status == 413 && r.errorMessage == "request body exceeds the limit of 1000 bytes")
        #expect(r.headers["connection"] == "close")
    }

    @Test func aTricklingClientIsCutAtTheRequestDeadline() throws {
        let s = try LiveServer { $0.requestDeadlineSeconds = 1; $0.connectionTimeoutSeconds = 30 }
        let request = Array("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".utf8)
        let fds = try (0..<10).map { _ in try s.client.connectSocket() }
        defer { fds.forEach { close($0) } }
        // a byte every 100 ms each: MHD's idle timer would restart on every one of them
        var cut = Set<Int32>()
        let start = Date()
        for byte in request where cut.count < fds.count && Date().timeIntervalSince(start) < 6 {
            for fd in fds where !cut.contains(fd) {
                var b = byte
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 0) > 0 || send(fd, &b, 1, Int32(MSG_NOSIGNAL)) < 0 { cut.insert(fd) }
            }
            usleep(100_000)
        }
        #expect(cut.count == fds.count, "\(fds.count - cut.count) trickling clients outlived a 1 s deadline for 6 s")
        #expect(Date().timeIntervalSince(start) < 4)
        #expect(try s.post("/v1/predict", Week.body).status == 200)
    }

    @Test func aClientThatHangsUpMidRequestIsClosedNotHeldInCloseWait() throws {
        let s = try LiveServer()
        // no end of the request line, and a chunked body that never ends: MHD alone would wait
        // for the deadline (30 s) with the socket in CLOSE-WAIT
        for partial in ["\u{5}garbage without an end of line", "POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"x\""] {
            let fd = try s.client.connectSocket()
            defer { close(fd) }
            try s.client.send(fd, Array(partial.utf8))
            shutdown(fd, Int32(SHUT_WR))
            let start = Date()
            let got = HTTPClient.readAll(fd, timeout: 3)
            #expect(!got.timedOut && Date().timeIntervalSince(start) < 2, "\(partial.debugDescription) held for \(Date().timeIntervalSince(start)) s")
        }
        for _ in 0..<50 where s.server.openConnections > 0 { usleep(20_000) }
        #expect(s.server.openConnections == 0)
    }

    @Test func pastTheConnectionLimitAClientIsTold503AndClosed() throws {
        let s = try LiveServer { $0.connectionLimit = 8; $0.perIPConnectionLimit = 0 }
        var held = try (0..<8).map { _ in try s.client.connectSocket() }
        defer { held.forEach { close($0) } }
        // all eight accepted and counted first (on a loaded machine the ninth could be
        // accepted before the last of them)
        for _ in 0..<300 where s.server.openConnections < 8 { usleep(10_000) }
        #expect(s.server.openConnections == 8)
        // the ninth is accepted only to be told so
        let r = try Self.singleAnswer(try s.client.raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(r.status == 503 && r.headers["retry-after"] == "1" && r.headers["connection"] == "close")
        held.forEach { close($0) }
        held = []
        // once they are gone the server serves again, and counts none open
        var answered = false
        for _ in 0..<50 where !answered {
            answered = (try? s.get("/healthz").status) == 200
            if !answered { usleep(20_000) }
        }
        #expect(answered)
        for _ in 0..<50 where s.server.openConnections > 0 { usleep(20_000) }
        #expect(s.server.openConnections == 0)
    }

    @Test func oneAddressCannotHoldMoreThanItsShare() throws {
        let s = try LiveServer { $0.perIPConnectionLimit = 4 }
        let held = try (0..<4).map { _ in try s.client.connectSocket() }
        defer { held.forEach { close($0) } }
        // the fifth from 127.0.0.1 is closed without an answer
        let got = try s.client.raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(got.data.isEmpty && !got.timedOut)
    }

    @Test func drainingTurnsReadinessOffAndClosesKeepAliveConnections() throws {
        let s = try LiveServer()
        let fd = try s.client.connectSocket()
        defer { close(fd) }
        let get = Array("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        try s.client.send(fd, get)
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&p, 1, 2000)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buffer, buffer.count)
        #expect(n > 0 && String(decoding: buffer[0..<max(0, n)], as: UTF8.self).hasPrefix("HTTP/1.1 200"))
        s.server.beginDrain()
        // the same keep-alive connection: answered 503, then closed by the server
        try s.client.send(fd, get)
        let r = try Self.singleAnswer(HTTPClient.readAll(fd, timeout: 2))
        #expect(r.status == 503 && r.headers["connection"] == "close" && r.json["status"]?.string == "draining")
        #expect(try s.post("/v1/predict", Week.body).status == 200)
    }
}

/// What operators read: metrics that parse whatever a model is named, request ids.
@Suite struct ObservabilityTests {
    @Test func metricsEscapeLabelValuesAndReportTheProcess() throws {
        let dir = NSTemporaryDirectory() + "lstm-serve-odd-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: LiveServer.modelsDirectory + "/temperature", toPath: dir)
        let configPath = dir + "/config.json"
        var config = try String(contentsOfFile: configPath, encoding: .utf8)
        config = config.replacingOccurrences(of: #""name": "temperature""#, with: #""name": "temp\"x\\y\nz""#)
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let s = try LiveServer { $0.models = [dir] }
        let text = try s.get("/metrics").text
        #expect(text.contains(#"lstm_serve_model_info{model="temp\"x\\y\nz",cell="lstm""#))
        // every sample line is name{labels} value, or name value
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.wholeMatch(of: /[a-z_][a-z0-9_]*(\{([a-z_][a-z0-9_]*="([^"\\]|\\.)*",?)*\})? [0-9.e+-]+/) != nil, "\(line)")
        }
        #expect(text.contains("lstm_serve_build_info{version=\"\(LSTMServeVersion.string)\"} 1"))
        for name in ["process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total", "process_start_time_seconds",
                     "lstm_serve_requests_in_flight", "lstm_serve_connections_open"] {
            let value = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
            #expect(value != nil && value! > 0, "\(name) = \(String(describing: value))")
        }
    }

    @Test func aRequestIDIsEchoedOrMade() throws {
        // made only where requests are logged
        let quiet = try LiveServer()
        #expect(try quiet.get("/healthz").headers["x-request-id"] == nil)
        #expect(try quiet.client.request("GET", "/healthz", headers: ["X-Request-ID": "abc-123"]).headers["x-request-id"] == "abc-123")
        let s = try LiveServer { $0.logLevel = "info" }
        #expect(try s.client.request("GET", "/healthz", headers: ["X-Request-ID": "abc-123"]).headers["x-request-id"] == "abc-123")
        let made = try s.get("/healthz").headers["x-request-id"]!, next = try s.get("/healthz").headers["x-request-id"]!
        #expect(made.count == 15 && next.count == 15 && made != next)
        // one with a space or too long is replaced, not echoed
        #expect(try s.client.request("GET", "/healthz", headers: ["X-Request-ID": "a b"]).headers["x-request-id"]?.count == 15)
        #expect(try s.client.request("GET", "/healthz", headers: ["X-Request-ID": String(repeating: "x", count: 129)]).headers["x-request-id"]?.count == 15)
    }
}
