import Foundation
import JSON
import LSTMService
import ModelFormat
import ModelRuntime
import TestSupport
import Testing

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
