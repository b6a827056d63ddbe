import Foundation
import JSON
@testable import LSTMService
import ModelFormat
import ModelRuntime
import RecurrentCore
import TestSupport
import Testing

/// The session table's order of use, its bounded record of removed ids, and what a refused
/// step leaves behind.
@Suite struct SessionTableTests {
    static let state: RecurrentStateFactory = RecurrentStateFactory()

    func session(_ id: String, at t: Double) -> SessionTable.Session {
        SessionTable.Session(id: SessionKey(id), entry: Self.state.entry, step: 0, created: t, lastUsed: t, row: 0)
    }

    func order(_ table: SessionTable) -> [SessionKey] {
        var copy = table, ids: [SessionKey] = []
        while let s = copy.oldest { ids.append(copy[s].id); copy.remove(s, .deleted) }
        return ids
    }

    func keys(_ ids: String...) -> [SessionKey] { ids.map(SessionKey.init) }

    @Test func serverMadeIdsAreTheirBitsAndOtherNamesAreHashed() {
        let id = SessionStore.newID()
        #expect(SessionKey.isServerMade(id) && SessionKey(id).hex == id)
        #expect(!SessionKey.isServerMade(id.uppercased()) && SessionKey(id.uppercased()) != SessionKey(id))
        #expect(!SessionKey.isServerMade("seq:11:temperature:n1") && SessionKey("seq:11:temperature:n1") == SessionKey("seq:11:temperature:n1"))
        #expect(SessionKey("seq:11:temperature:n1") != SessionKey("seq:11:temperature:n2"))
        #expect(!SessionKey.isServerMade(String(id.dropLast()) + "g"))
    }

    @Test func theHeadIsAlwaysTheLeastRecentlyUsed() {
        var t = SessionTable()
        for (k, id) in ["a", "b", "c", "d"].enumerated() { t.insert(session(id, at: Double(k))) }
        #expect(order(t) == keys("a", "b", "c", "d"))
        t.touch(t.slot("b")!, at: 10)
        t.touch(t.slot("a")!, at: 11)
        #expect(order(t) == keys("c", "d", "b", "a"))
        t.remove(t.slot("d")!, .evicted)
        t.insert(session("e", at: 12))  // reuses d's slot
        #expect(order(t) == keys("c", "b", "a", "e") && t.count == 4)
        #expect(t[t.oldest!].lastUsed == 2 && t.whyGone("d") == .evicted && t.whyGone("a") == nil)
    }

    @Test func removedIdsAreRememberedUpToTheCapacityAndNoMore() {
        var t = SessionTable(goneCapacity: 8)
        for k in 0..<100 {
            t.insert(session("s\(k)", at: Double(k)))
            t.remove(t.slot("s\(k)")!, k % 2 == 0 ? .deleted : .expired)
        }
        #expect((0..<92).allSatisfy { t.whyGone("s\($0)") == nil })
        #expect(t.whyGone("s99") == .expired && t.whyGone("s98") == .deleted && t.whyGone("s92") == .deleted)
        #expect(t.count == 0 && t.oldest == nil)
    }

    @Test func aMostlyEmptyTableIsRebuiltSmallInTheSameOrder() {
        var t = SessionTable()
        for k in 0..<5000 { t.insert(session("s\(k)", at: Double(k))) }
        for k in 0..<4900 { t.remove(t.slot("s\(k)")!, .expired) }
        t.touch(t.slot("s4950")!, at: 9999)
        t.compactIfSparse()
        #expect(t.count == 100 && t.whyGone("s4899") == .expired)
        let ids = order(t)
        #expect(ids.first == SessionKey("s4900") && ids.last == SessionKey("s4950") && ids.count == 100)
    }
}

/// A recurrent state for a one-layer LSTM of hidden 3 (the table does not look inside it).
struct RecurrentStateFactory: Sendable {
    let entry = ModelRegistry.Entry(model: try! Model.load(path: TestModels.write(TestModels.lstm())))
    func make() -> RecurrentState { entry.model.pipeline.makeState(batchSize: 1) }
}

/// Refused requests change nothing, whatever a client sends.
@Suite(.serialized) struct RefusedRequestTests {
    @Test func aStepWhoseOutputIsNotFiniteLeavesTheSessionAsItWas() throws {
        // a head of 3e38 weights: finite while h sums below zero, infinite above
        var tensors = TestModels.lstm(input: 2, hidden: 3)
        tensors["head.weight"] = ([1, 3], [3e38, 3e38, 3e38])
        tensors["head.bias"] = ([1], [3e38])
        let dir = try TestModels.write(tensors)
        let s = try LiveServer { $0.models = [dir] }
        let id = try s.createSession()
        #expect(try s.post("/v1/sessions/\(id)/step", #"{"x": [-10, -10]}"#).status == 200)
        let before = try s.get("/v1/sessions/\(id)/state").text
        let refused = try s.post("/v1/sessions/\(id)/step", #"{"xs": [[-10, -10], [10, 10]]}"#)
        #expect(refused.status == 422)
        #expect(refused.errorMessage == "the model's output is not a finite number for this input; the session was not changed (still at step 1)")
        #expect(try s.get("/v1/sessions/\(id)/state").text == before)
        #expect(try s.post("/v1/sessions/\(id)/step", #"{"x": [-10, -10], "expected_step": 1}"#).json["step"]?.int == 2)
    }

    @Test func aStateImportCannotSetAStepCountThatOverflows() throws {
        let s = try LiveServer()
        let id = try s.createSession()
        // PUT takes what GET returns; only the step is changed
        let exported = try s.get("/v1/sessions/\(id)/state").text
        #expect(exported.contains(#""step":0,"#))
        func with(step: String) -> String { exported.replacingOccurrences(of: #""step":0,"#, with: #""step":\#(step),"#) }
        for step in ["9223372036854775807", "9007199254740992", "-1", "1.5"] {
            let r = try s.put("/v1/sessions/\(id)/state", with(step: step))
            #expect(r.status == 422 && r.errorMessage == "step must be an integer from 0 to 9007199254740991", "step \(step): \(r.text)")
        }
        // at the top of the range, one more step is refused and nothing changes
        #expect(try s.put("/v1/sessions/\(id)/state", with(step: "9007199254740991")).status == 200)
        let r = try s.post("/v1/sessions/\(id)/step", #"{"x": \#(Week.rows[0])}"#)
        #expect(r.status == 422 && r.errorMessage?.hasSuffix("nothing was changed") == true)
        #expect(try s.get("/v1/sessions/\(id)").json["step"]?.int == 9007199254740991)
        #expect(try s.get("/healthz").status == 200)
    }
}

/// A models directory where some models are broken: the rest serve and the broken ones are
/// reported with their reasons.
@Suite struct BrokenModelTests {
    static func directory() throws -> String {
        let root = NSTemporaryDirectory() + "lstm-serve-models-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        try fm.copyItem(atPath: LiveServer.modelsDirectory + "/temperature", toPath: root + "/temperature")
        try fm.createDirectory(atPath: root + "/corrupt", withIntermediateDirectories: true)
        try Data([12, 0, 0, 0, 0, 0, 0, 0] + Array("{\"a\n\":1}xxx".utf8)).write(to: URL(fileURLWithPath: root + "/corrupt/model.safetensors"))
        var nan = TestModels.lstm()
        nan["rnn.bias_ih_l0"]!.1[0] = .nan
        try fm.moveItem(atPath: try TestModels.write(nan), toPath: root + "/nan")
        return root
    }

    @Test func oneBadModelDoesNotStopTheOthers() throws {
        let dir = try Self.directory()
        let s = try LiveServer { $0.modelsDirectory = dir }
        let ready = try s.get("/readyz")
        #expect(ready.status == 200 && ready.json["models"]?.elements.map { $0.string! } == ["temperature"])
        let failed = ready.json["failed"]!.elements
        #expect(failed.map { $0["name"]!.string! } == ["corrupt", "empty", "nan"])
        #expect(failed[1]["error"]!.string!.hasSuffix("/empty/model.safetensors: no such file"))
        #expect(failed[2]["error"]!.string == "tensor 'rnn.bias_ih_l0' holds nan at element 0; weights must be finite")
        #expect(try s.get("/v1/models").json["failed"]?.count == 3)
        #expect(try s.post("/v1/predict", Week.body).status == 200)
        // the weights' location is not shown to clients
        #expect(try s.get("/v1/models/temperature").json["weights"]?["file"]?.string == "model.safetensors")
        #expect(!(try s.get("/v1/models/temperature").text.contains(dir)))
    }

    @Test func requireAllModelsMakesAnyFailureFatal() throws {
        let dir = try Self.directory()
        #expect(throws: RuntimeError.self) {
            _ = try ModelRegistry.load(paths: [], modelsDirectory: dir, defaultName: "", requireAll: true)
        }
        #expect(throws: RuntimeError.loading("no model could be loaded: empty: cannot read \(dir)/empty/model.safetensors: no such file")) {
            _ = try ModelRegistry.load(paths: [dir + "/empty"], modelsDirectory: dir, defaultName: "")
        }
    }
}

extension SessionTable {
    func slot(_ id: String) -> Int? { slot(SessionKey(id)) }
    func whyGone(_ id: String) -> Gone? { whyGone(SessionKey(id)) }
}
