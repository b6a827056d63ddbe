import Foundation
import JSON
import LSTMService
import Locking
import TestSupport
import Testing

/// Stream-step sessions against a live server: equality with predict, serialization of
/// concurrent steps, retries, state export/import, expiry and capacity on a manual clock.
@Suite(.serialized) struct SessionTests {
    @Test func steppingASessionThroughAWindowEqualsPredictExactly() throws {
        let s = try LiveServer()
        let predicted = try s.post("/v1/predict", Week.body).json["forecast"]!
        let created = try s.client.request("POST", "/v1/sessions")
        #expect(created.status == 201)
        let id = created.json["session_id"]!.string!
        #expect(id.count == 32 && id.allSatisfy(\.isHexDigit))
        #expect(created.headers["location"] == "/v1/sessions/\(id)")
        #expect(created.json["step"]!.int == 0)
        var last: JSONValue?
        var each: [Double] = []
        for (t, row) in Week.rows.enumerated() {
            let r = try s.post("/v1/sessions/\(id)/step", #"{"x": \#(row), "expected_step": \#(t)}"#)
            #expect(r.status == 200)
            #expect(r.json["step"]!.int == t + 1)
            last = r.json["forecast"]
            each.append(last!["temp_min"]!.double!)
        }
        // the same bits: the same decimal text
        #expect(try JSON.float(Float(last!["temp_max"]!.double!)).serialized() == JSON.float(Float(predicted["temp_max"]!.double!)).serialized())
        #expect(last!["temp_max"]!.double == predicted["temp_max"]!.double)
        #expect(last!["temp_min"]!.double == predicted["temp_min"]!.double)
        // and several timesteps in one call give the same answer
        let other = try s.createSession()
        let many = try s.post("/v1/sessions/\(other)/step", #"{"xs": \#(Week.window)}"#)
        #expect(many.json["step"]!.int == 7 && many.json["forecasts"]!.count == 7)
        #expect(many.json["forecast"]!["temp_max"]!.double == predicted["temp_max"]!.double)
        // each timestep's forecast, with its own row's last values added back, as stepped one by one
        #expect((0..<7).map { many.json["forecasts"]![$0]!["forecast"]!["temp_min"]!.double! } == each)
    }

    @Test func expectedStepMakesRetriesSafe() throws {
        let s = try LiveServer()
        let id = try s.createSession()
        let first = try s.post("/v1/sessions/\(id)/step", #"{"x": \#(Week.rows[0]), "expected_step": 0}"#)
        #expect(first.status == 200)
        // the client did not see the answer and retries: refused, nothing changes
        let retry = try s.post("/v1/sessions/\(id)/step", #"{"x": \#(Week.rows[0]), "expected_step": 0}"#)
        #expect(retry.status == 409 && retry.errorType == "conflict")
        #expect(retry.errorMessage == "session '\(id)' is at step 1 but the request expected step 0; nothing was changed")
        #expect(try s.get("/v1/sessions/\(id)").json["step"]!.int == 1)
    }

    @Test func concurrentStepsOnOneSessionAreSerializedNoneLostNoneDoubled() throws {
        let s = try LiveServer()
        let id = try s.createSession()
        let threads = 8, each = 25
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<each {
                let r = try? s.post("/v1/sessions/\(id)/step", #"{"x": \#(Week.rows[3])}"#)
                if r?.status != 200 { failures.add() }
            }
        }
        #expect(failures.count == 0)
        let info = try s.get("/v1/sessions/\(id)").json
        #expect(info["step"]!.int == threads * each)
        // the same 200 steps taken one after another reach the same state
        let serial = try s.createSession()
        let xs = "[" + Array(repeating: Week.rows[3], count: threads * each).joined(separator: ",") + "]"
        _ = try s.post("/v1/sessions/\(serial)/step", #"{"xs": \#(xs)}"#)
        #expect(try s.get("/v1/sessions/\(id)/state").json["state"]!["layers"]!["rnn layer 0"]!["c"]![0]!.double
            == s.get("/v1/sessions/\(serial)/state").json["state"]!["layers"]!["rnn layer 0"]!["c"]![0]!.double)
        // every step went one of the two ways, and the serial one found its shard idle
        let metrics = String(decoding: try s.get("/metrics").body, as: UTF8.self)
        func steps(_ path: String) -> Int {
            let prefix = "lstm_serve_session_steps_total{path=\"\(path)\"} "
            return metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? -1
        }
        #expect(steps("direct") >= 1 && steps("queued") >= 0)
        #expect(steps("direct") + steps("queued") == threads * each + 1)
    }

    /// Creates, reads and deletes from 8 threads into one shard: every session is counted
    /// once, none is lost, and the metrics agree.
    @Test func concurrentCreatesReadsAndDeletesKeepTheCountExact() throws {
        let s = try LiveServer { $0.sessionShards = 1 }
        let threads = 8, each = 30
        let failures = Failures()
        let ids = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<each {
                guard let r = try? s.client.request("POST", "/v1/sessions"), r.status == 201,
                      let id = r.json["session_id"]!.string, (try? s.get("/v1/sessions/\(id)").status) == 200,
                      (try? s.get("/v1/sessions/\(id)/state").status) == 200 else { failures.add(); continue }
                ids.withLock { $0.append(id) }
            }
        }
        #expect(failures.count == 0)
        let all = ids.withLock { $0 }
        #expect(Set(all).count == threads * each)
        #expect(try s.get("/metrics").text.contains("lstm_serve_sessions_active \(threads * each)\n"))
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for id in all[(t * each)..<((t + 1) * each)] {
                if (try? s.delete("/v1/sessions/\(id)").status) != 204 { failures.add() }
            }
        }
        #expect(failures.count == 0)
        let text = try s.get("/metrics").text
        #expect(text.contains("lstm_serve_sessions_active 0\n") && text.contains("lstm_serve_sessions_deleted_total \(threads * each)\n"))
        #expect(text.contains("lstm_serve_sessions_created_total \(threads * each)\n"))
        #expect(try s.get("/v1/sessions/\(all[0])").status == 404)
    }

    @Test func stateExportAndImportMovesASession() throws {
        let s = try LiveServer()
        let a = try s.createSession()
        _ = try s.post("/v1/sessions/\(a)/step", #"{"xs": [\#(Week.rows[0...5].joined(separator: ","))]}"#)
        let exported = try s.get("/v1/sessions/\(a)/state")
        #expect(exported.json["step"]!.int == 6 && exported.json["state"]?["layers"]?["rnn layer 0"]?["c"]?.count == 32)
        let b = try s.createSession()
        let put = try s.put("/v1/sessions/\(b)/state", exported.text)
        #expect(put.status == 200 && put.json["step"]!.int == 6)
        let fromA = try s.post("/v1/sessions/\(a)/step", #"{"x": \#(Week.rows[6])}"#).json["forecast"]!["temp_max"]!.double
        let fromB = try s.post("/v1/sessions/\(b)/step", #"{"x": \#(Week.rows[6])}"#).json["forecast"]!["temp_max"]!.double
        #expect(fromA == fromB)
        // a session can also start from a given state
        let stateText = String(exported.text.split(separator: "\"state\":", maxSplits: 1)[1].dropLast())
        let c = try s.createSession(#"{"state": \#(stateText)}"#)
        #expect(try s.post("/v1/sessions/\(c)/step", #"{"x": \#(Week.rows[6])}"#).json["forecast"]!["temp_max"]!.double == fromA)
        let bad = try s.put("/v1/sessions/\(b)/state", #"{"state": {"h": [[1, 2]], "c": [[1, 2]]}}"#)
        #expect(bad.status == 422 && bad.errorMessage == "state.h[0] must be 32 finite numbers")
        let named = try s.put("/v1/sessions/\(b)/state", #"{"state": {"layers": {"rnn layer 0": {"h": [1]}}}}"#)
        #expect(named.status == 422 && named.errorMessage == "state.layers.rnn layer 0.h must be 32 finite numbers")
        let unknown = try s.put("/v1/sessions/\(b)/state", #"{"state": {"layers": {"lstm": {}}}}"#)
        #expect(unknown.status == 422 && unknown.errorMessage == "state.layers has 'lstm', which is not a layer with state; expected 'rnn layer 0'")
    }

    @Test func deletedAndUnknownSessionsAnswer404WithTheReason() throws {
        let s = try LiveServer()
        let id = try s.createSession()
        #expect(try s.delete("/v1/sessions/\(id)").status == 204)
        let gone = try s.post("/v1/sessions/\(id)/step", #"{"x": \#(Week.rows[0])}"#)
        #expect(gone.status == 404 && gone.errorMessage == "session '\(id)' was deleted")
        let unknown = try s.get("/v1/sessions/0123")
        #expect(unknown.status == 404 && unknown.errorMessage == "no session '0123'")
        #expect(try s.delete("/v1/sessions/0123").status == 404)
        let badStep = try s.post("/v1/sessions/\(try s.createSession())/step", #"{"x": [1, 2]}"#)
        #expect(badStep.status == 422)
        #expect(try s.post("/v1/sessions", #"{"model": "nope"}"#).status == 404)
    }

    @Test func idleSessionsExpireAfterTheTTL() throws {
        let s = try LiveServer { $0.sessionTTLSeconds = 60 }
        let id = try s.createSession()
        s.clock.advance(59)
        #expect(try s.post("/v1/sessions/\(id)/step", #"{"x": \#(Week.rows[0])}"#).status == 200)
        s.clock.advance(59)  // used 59 s ago: still alive
        #expect(try s.get("/v1/sessions/\(id)").status == 200)
        s.clock.advance(61)
        let expired = try s.get("/v1/sessions/\(id)")
        #expect(expired.status == 404 && expired.errorMessage == "session '\(id)' expired after 60 s idle")
        let text = try s.get("/metrics").text
        #expect(text.contains("lstm_serve_sessions_expired_total 1") && text.contains("lstm_serve_sessions_active 0"))
    }

    @Test func aFullStoreRejectsWithRetryAfterOrEvictsTheLeastRecentlyUsed() throws {
        let reject = try LiveServer { $0.maxSessions = 2; $0.sessionTTLSeconds = 100 }
        _ = try reject.createSession()
        reject.clock.advance(30)
        _ = try reject.createSession()
        let full = try reject.client.request("POST", "/v1/sessions")
        #expect(full.status == 429 && full.headers["retry-after"] == "70")
        reject.clock.advance(71)  // the first one expires: room again
        #expect(try reject.client.request("POST", "/v1/sessions").status == 201)

        let evict = try LiveServer { $0.maxSessions = 2; $0.sessionFullPolicy = "evict" }
        let old = try evict.createSession()
        evict.clock.advance(1)
        let young = try evict.createSession()
        evict.clock.advance(1)
        _ = try evict.createSession()
        let gone = try evict.get("/v1/sessions/\(old)")
        #expect(gone.status == 404 && gone.errorMessage == "session '\(old)' was evicted (least recently used) to make room")
        #expect(try evict.get("/v1/sessions/\(young)").status == 200)
        #expect(try evict.get("/metrics").text.contains("lstm_serve_sessions_evicted_total 1"))
    }

    @Test func aBidirectionalModelCannotBeStepped() throws {
        let s = try LiveServer { $0.models = [Fixtures.path("models/pt_bilstm_2layer")] }
        let r = try s.client.request("POST", "/v1/sessions")
        #expect(r.status == 422 && r.errorMessage!.contains("bidirectional"))
        #expect(try s.post("/v1/predict", #"{"window": [[1,2,3,4,5,6]]}"#).status == 200)
    }
}

final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return n }
}

/// The SQLite driver under a live server.
@Suite struct DurableSessionTests {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "lstm-durable-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Through the HTTP server: steps answered from the log, checkpoints counted in /metrics,
    /// and a restart on the same store finding each session at its step.
    @Test func aServerStepsThroughItsLogAndCountsItsCheckpoints() throws {
        let store = "sqlite:" + directory + "/live.db"
        var ids: [String] = []
        do {
            let s = try LiveServer { $0.sessionStore = store; $0.sessionCheckpointBytes = 4096 }
            for _ in 0..<3 { ids.append(try s.createSession()) }
            for (k, row) in Week.rows.enumerated() {
                for id in ids { #expect(try s.post("/v1/sessions/\(id)/step", #"{"x": \#(row), "expected_step": \#(k)}"#).status == 200) }
            }
            // the checkpoint thread runs on its own: give it a moment
            var metrics = ""
            for _ in 0..<100 {
                metrics = String(decoding: try s.get("/metrics").body, as: UTF8.self)
                if !metrics.contains(#"checkpoints_total{result="ok"} 0"#) { break }
                usleep(20_000)
            }
            func value(_ name: String) -> Double? {
                metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last!) }
            }
            #expect((value("lstm_serve_session_store_changes_total") ?? 0) >= 3 + 3 * Double(Week.rows.count))
            #expect((value(#"lstm_serve_session_store_checkpoints_total{result="ok"}"#) ?? 0) >= 1, "\(metrics)")
            #expect(value(#"lstm_serve_session_store_checkpoints_total{result="failed"}"#) == 0)
        }
        let s = try LiveServer { $0.sessionStore = store }
        for id in ids { #expect(try s.get("/v1/sessions/\(id)").json["step"]?.int == Week.rows.count) }
    }
}
