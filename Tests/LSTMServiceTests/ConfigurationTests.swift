import Foundation
import LSTMService
import TestSupport
import Testing

@Suite struct ConfigurationTests {
    @Test func laterSourcesWinAndEveryKeyIsSettable() throws {
        let path = NSTemporaryDirectory() + "lstm-serve-config-\(UUID().uuidString).json"
        try Data(#"{"port": 9000, "session_ttl_seconds": 60, "models": ["a", "b"], "log_level": "warning"}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        var c = Configuration()
        try c.load(file: path)
        #expect(c.port == 9000 && c.sessionTTLSeconds == 60 && c.models == ["a", "b"] && c.logLevel == "warning")
        try c.load(environment: ["LSTM_SERVE_PORT": "9100", "LSTM_SERVE_MAX_SESSIONS": "5"])
        #expect(c.port == 9100 && c.maxSessions == 5)
        try c.set("port", "9200", source: "flag")
        #expect(c.port == 9200)
        // the shipped config file holds every key with its default
        var shipped = Configuration()
        try shipped.load(file: Fixtures.root + "/../../config/lstm-serve.json")
        #expect(shipped == Configuration())
        #expect(Configuration.keys.count == 38)
        // every key reads back what it was set to
        var round = Configuration()
        for (key, _, _) in Configuration.keys where key != "models" { try round.set(key, Configuration().text(key), source: "test") }
        #expect(round == Configuration())
        let shards = Configuration.keys.first { $0.key == "session_shards" }!
        #expect(shards.env == "LSTM_SERVE_SESSION_SHARDS" && shards.flag == "--session-shards")
        #expect(Configuration.keys.first { $0.key == "models" }!.flag == "--model")
    }

    @Test func invalidValuesAreRefusedWithAOneLineReason() throws {
        var c = Configuration()
        #expect(throws: ConfigurationError.invalid("flag: port must be an integer from 0 to 65535, got '70000'")) { try c.set("port", "70000", source: "flag") }
        #expect(throws: ConfigurationError.invalid("environment LSTM_SERVE_MAX_SESSIONS: max_sessions must be an integer from 1 to 100000000, got 'lots'")) {
            try c.load(environment: ["LSTM_SERVE_MAX_SESSIONS": "lots"])
        }
        // non-finite and out-of-range numbers stop start-up instead of overflowing a clock later
        for bad in ["inf", "1e19", "nan", "-1", "0"] {
            #expect(throws: ConfigurationError.invalid("flag: session_ttl_seconds must be a number of seconds above 0 and at most 31622400, got '\(bad)'")) {
                try c.set("session_ttl_seconds", bad, source: "flag")
            }
        }
        #expect(throws: ConfigurationError.self) { try c.set("request_deadline_seconds", "inf", source: "flag") }
        #expect(throws: ConfigurationError.self) { try c.set("drain_seconds", "nan", source: "flag") }
        #expect(throws: ConfigurationError.self) { try c.set("max_batch", "99999999999999999999", source: "flag") }
        // what a file or variable holds is escaped in the one-line reason
        #expect(throws: ConfigurationError.invalid("flag: threads must be an integer from 0 to 1024, got '1\\n2'")) { try c.set("threads", "1\n2", source: "flag") }
        #expect(c == Configuration())
        #expect(throws: ConfigurationError.invalid("flag: session_full_policy must be 'reject' or 'evict', got 'drop'")) {
            try c.set("session_full_policy", "drop", source: "flag")
        }
        #expect(throws: ConfigurationError.invalid("x.json: unknown key 'colour'")) { try c.set("colour", "red", source: "x.json") }
        #expect(throws: ConfigurationError.invalid("flag: session_store must be redis://HOST:PORT[,HOST:PORT…][/DB] ('a' is not HOST:PORT), got 'redis://a'")) {
            try c.set("session_store", "redis://a", source: "flag")
        }
        try c.set("session_store", "redis://10.0.0.1:7000,10.0.0.2:7000", source: "flag")
        #expect(c.sessionStore == "redis://10.0.0.1:7000,10.0.0.2:7000")
    }

    @Test func everyConfigInputTheFuzzerBrokeNowGetsOneLineOrReadsBack() throws {
        // fuzz/regressions/config: a raw newline quoted by jansson's error; a newline inside a
        // log_level value; an allowed_origins item starting with a combining mark, which split
        // on Characters joined the comma before it into one and so read back as another list;
        // a newline in a model_version_policy rule, which its error quoted as it was
        let dir = Fixtures.root + "/../../fuzz/regressions/config"
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(names.count >= 4)
        for name in names {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
            var c = Configuration()
            do {
                try c.load(json: bytes, source: "x.json")
                var again = Configuration()  // the fuzzer's property: what loaded reads back as itself
                for (key, _, _) in Configuration.keys where key != "models" { try again.set(key, c.text(key), source: "again") }
                again.models = c.models
                #expect(again == c, "\(name) does not read back")
            } catch {
                #expect(!error.description.contains("\n") && error.description.hasPrefix("x.json: "), "\(name): \(error.description)")
            }
        }
        var c = Configuration()
        try c.set("allowed_origins", "a, \u{300}b,c", source: "flag")
        #expect(c.allowedOrigins == ["a", "\u{300}b", "c"])
        try c.set("allowed_origins", c.text("allowed_origins"), source: "flag")
        #expect(c.allowedOrigins == ["a", "\u{300}b", "c"])
    }

    @Test func logTextHasItsControlCharactersEscaped() {
        #expect(Log.escaped("GET /a\nPOST /b \u{1B}[31mred\r\t\\ é") == #"GET /a\nPOST /b \x1B[31mred\r\t\\ é"#)
        #expect(Log.escaped("plain") == "plain")
        #expect(Log.escaped("\u{0}\u{7F}") == #"\x00\x7F"#)
    }

    @Test func aSlowClientDoesNotHoldUpOthers() throws {
        let s = try LiveServer { $0.threads = 1 }
        // a client that sends half a request and then nothing
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(s.client.port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let partial = Array("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"window\": [".utf8)
        _ = partial.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let start = Date()
        for _ in 0..<20 { #expect(try s.post("/v1/predict", Week.body).status == 200) }
        #expect(Date().timeIntervalSince(start) < 2)
    }
}
