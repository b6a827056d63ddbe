import Foundation
import JSON
@testable import LSTMService
import ModelFormat
import ModelRuntime
import TestSupport
import Testing

/// A model repository written by the test: `root/<name>/<version>/`, each version a small
/// LSTM whose weights are all `fill` (so versions answer differently).
struct Repository {
    let root = NSTemporaryDirectory() + "lstm-serve-versions-\(UUID().uuidString)"

    static func tensors(fill: Float, hidden: Int = 3) -> [String: ([Int], [Float])] {
        TestModels.lstm(hidden: hidden).mapValues { ($0.0, $0.1.map { _ in fill }) }
    }

    @discardableResult
    func add(_ name: String, _ version: Int?, fill: Float, hidden: Int = 3, config: String? = nil) throws -> String {
        let dir = try TestModels.write(Self.tensors(fill: fill, hidden: hidden), config: config)
        let target = root + "/" + name + (version.map { "/\($0)" } ?? "")
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if FileManager.default.fileExists(atPath: target) { try FileManager.default.removeItem(atPath: target) }
        try FileManager.default.moveItem(atPath: dir, toPath: target)
        return target
    }

    func registry(_ policy: String = "latest", previous: ModelRegistry? = nil, only: String? = nil) throws -> ModelRegistry {
        try ModelRegistry.load(ModelRepository(directory: root, policy: try VersionPolicy(parsing: policy)), defaultName: "", previous: previous, only: only)
    }
}

@Suite struct RepositoryLayoutTests {
    @Test func numberedDirectoriesAreVersionsAndTheNewestServesByDefault() throws {
        let repo = Repository()
        try repo.add("m", 1, fill: 0.1)
        try repo.add("m", 2, fill: 0.2)
        try repo.add("m", 10, fill: 0.3)
        try repo.add("plain", nil, fill: 0.1)
        // not versions: leading zeros, letters
        try FileManager.default.createDirectory(atPath: repo.root + "/m/007", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: repo.root + "/m/v3", withIntermediateDirectories: true)
        let latest = try repo.registry()
        #expect(latest.versions["m"]!.map(\.version) == [10])
        #expect(latest.versions["plain"]!.map(\.version) == [1] && latest.failed.isEmpty)
        #expect(latest["m"]!.model.name == "m" && latest["m"]!.path.hasSuffix("/m/10"))
        #expect(try repo.registry("latest:2").versions["m"]!.map(\.version) == [10, 2])
        #expect(try repo.registry("all").versions["m"]!.map(\.version) == [10, 2, 1])
        let specific = try repo.registry("latest; m=specific:1,4")
        #expect(specific.versions["m"]!.map(\.version) == [1])
        #expect(specific.failed.map(\.description) == ["m version 4: \(repo.root)/m has no version directory 4"])
        #expect(try repo.registry("specific:1")["plain"]?.version == 1)
    }

    @Test func aNewestVersionThatFailsLeavesTheOneBeforeServingAndIsReported() throws {
        let repo = Repository()
        try repo.add("m", 1, fill: 0.1)
        try FileManager.default.createDirectory(atPath: repo.root + "/m/2", withIntermediateDirectories: true)
        try Data("not safetensors".utf8).write(to: URL(fileURLWithPath: repo.root + "/m/2/model.safetensors"))
        let r = try repo.registry()
        #expect(r.versions["m"]!.map(\.version) == [1])
        #expect(r.failed.count == 1 && r.failed[0].version == 2 && r.failed[0].name == "m")
        // a version whose config names another model is refused: a version is its directory's
        try repo.add("m", 3, fill: 0.3, config: #"{"name": "other"}"#)
        let named = try repo.registry()
        #expect(named.versions["m"]!.map(\.version) == [1])
        #expect(named.failed.contains { $0.version == 3 && $0.error.contains("names the model 'other', but it is a version of 'm'") })
    }

    @Test func aReloadReusesUnchangedVersionsAndKeepsAVersionWhoseNewFilesFail() throws {
        let repo = Repository()
        let path = try repo.add("m", nil, fill: 0.1)
        let first = try repo.registry()
        try repo.add("n", 1, fill: 0.2)
        let second = try repo.registry(previous: first)
        #expect(second["m"]! === first["m"]!)  // not read again
        #expect(second["n"]?.version == 1)
        // rewritten in place: a new entry of the same version
        try repo.add("m", nil, fill: 0.3)
        let third = try repo.registry(previous: second)
        #expect(third["m"]! !== second["m"]! && third["m"]!.version == 1)
        #expect(third["m"]!.model.fingerprint != second["m"]!.model.fingerprint)
        // rewritten badly: the copy loaded before keeps serving, and the failure says so
        try Data("{}".utf8).write(to: URL(fileURLWithPath: path + "/model.safetensors"))
        let fourth = try repo.registry(previous: third)
        #expect(fourth["m"]! === third["m"]!)
        #expect(fourth.failed.count == 1 && fourth.failed[0].keptLoadedAt == third["m"]!.loadedAt)
        // `only` leaves the other models as they were
        try repo.add("n", 2, fill: 0.4)
        #expect(try repo.registry(previous: fourth, only: "m").versions["n"]!.map(\.version) == [1])
        #expect(try repo.registry(previous: fourth, only: "n").versions["n"]!.map(\.version) == [2])
    }

    @Test func policiesParseAndBadOnesAreRefusedWithTheGrammar() throws {
        #expect(try VersionPolicy(parsing: "latest:3; a=all; b=specific:2,1").description == "latest:3; a=all; b=specific:2,1")
        for bad in ["newest", "latest:0", "latest:x", "specific:", "specific:1,,2", "=all", "specific:01"] {
            #expect(throws: RuntimeError.self, "\(bad)") { try VersionPolicy(parsing: bad) }
        }
        var c = Configuration()
        #expect(throws: ConfigurationError.self) { try c.set("model_version_policy", "latest:-1", source: "flag") }
        try c.set("model_version_policy", "all", source: "flag")
        #expect(c.text("model_version_policy") == "all")
    }
}

/// Versions, reloads and migration against a live server.
@Suite(.serialized) struct ReloadTests {
    static func forecast(_ r: HTTPClient.Response) -> [Float] { r.json["forecast"]!.members.map { Float($0.1.double!) } }

    static let window = #"{"window": [[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]]}"#
    static let rows = [#"{"x": [0.5, -0.2]}"#, #"{"x": [0.1, 0.3]}"#, #"{"x": [-0.4, 0.2]}"#]

    func step(_ s: LiveServer, _ id: String) throws -> [Float] {
        var last: [Float] = []
        for row in Self.rows {
            let r = try s.post("/v1/sessions/\(id)/step", row)
            #expect(r.status == 200, "\(r.text)")
            last = Self.forecast(r)
        }
        return last
    }

    @Test func aReloadServesTheNewVersionWhileOldSessionsFinishOnTheOldOne() throws {
        let repo = Repository()
        try repo.add("m", 1, fill: 0.1)
        let s = try LiveServer { $0.modelsDirectory = repo.root }
        let v1 = Self.forecast(try s.post("/v1/predict", Self.window))
        let old = try s.createSession()
        #expect(try s.get("/v1/sessions/\(old)").json["version"]?.int == 1)

        try repo.add("m", 2, fill: 0.05)
        let reloaded = try s.post("/v1/models/m/reload", "")
        #expect(reloaded.status == 200, "\(reloaded.text)")
        #expect(reloaded.json["loaded"]?.elements.map(\.int) == [2])
        #expect(reloaded.json["retired"]?[0]?["sessions"]?.int == 1)
        let v2 = Self.forecast(try s.post("/v1/predict", Self.window))
        #expect(v2 != v1)
        #expect(Self.forecast(try s.post("/v1/models/m/versions/2/predict", Self.window)) == v2)
        // version 1 no longer takes new work, but is listed as retiring with its session
        #expect(try s.post("/v1/models/m/versions/1/predict", Self.window).status == 404)
        let info = try s.get("/v1/models/m").json
        #expect(info["version"]?.int == 2)
        #expect(info["versions"]?.elements.map { "\($0["version"]!.int!) \($0["status"]!.string!) \($0["sessions"]!.int!)" } == ["2 serving 0", "1 retiring 1"])
        // the old session steps on version 1, bit for bit predict's answer there; a new one on 2
        #expect(try step(s, old) == v1)
        let new = try s.createSession()
        #expect(try s.get("/v1/sessions/\(new)").json["version"]?.int == 2)
        #expect(try step(s, new) == v2)
        // a reload with nothing changed changes nothing
        #expect(try s.post("/v1/models/m/reload", "").json["changed"]?.bool == false)
        // the last session on version 1 ends: the version leaves memory
        #expect(try s.delete("/v1/sessions/\(old)").status == 204)
        var gone = false
        for _ in 0..<100 where !gone {
            gone = try s.get("/v1/models/m").json["versions"]?.count == 1
            if !gone { Thread.sleep(forTimeInterval: 0.02) }
        }
        #expect(gone)
        #expect(try s.get("/v1/models/m/versions/1").status == 404)
        #expect(try s.get("/metrics").text.contains("lstm_serve_model_versions_unloaded_total 1"))
    }

    @Test func aVersionThatFailsToLoadLeavesTheOldOneServingAndSaysWhy() throws {
        let repo = Repository()
        try repo.add("m", 1, fill: 0.1)
        let s = try LiveServer { $0.modelsDirectory = repo.root }
        let before = Self.forecast(try s.post("/v1/predict", Self.window))
        try FileManager.default.createDirectory(atPath: repo.root + "/m/2", withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: repo.root + "/m/2/model.safetensors"))
        let r = try s.post("/v1/models/m/reload", "")
        #expect(r.status == 422)
        #expect(r.errorMessage?.hasPrefix("m version 2: ") == true && r.errorMessage?.hasSuffix("; serving version 1") == true, "\(r.text)")
        #expect(Self.forecast(try s.post("/v1/predict", Self.window)) == before)
        let failed = try s.get("/v1/models/m").json["failed"]
        #expect(failed?[0]?["version"]?.int == 2)
        #expect(try s.get("/v1/models").json["failed"]?.count == 1)
        #expect(try s.post("/v1/models/nothing/reload", "").status == 404)
    }

    @Test func versionsAreAddressableAndSessionsMigrateOnlyBetweenEqualStates() throws {
        let repo = Repository()
        try repo.add("m", 1, fill: 0.1)
        try repo.add("m", 2, fill: 0.05)
        try repo.add("m", 3, fill: 0.1, hidden: 4)
        let s = try LiveServer { $0.modelsDirectory = repo.root; $0.modelVersionPolicy = try! VersionPolicy(parsing: "all") }
        let listed = try s.get("/v1/models").json["models"]![0]!
        #expect(listed["version"]?.int == 3 && listed["versions"]?.elements.map(\.int) == [3, 2, 1])
        let v1 = Self.forecast(try s.post("/v1/models/m/versions/1/predict", Self.window))
        let v2 = Self.forecast(try s.post("/v1/models/m/versions/2/predict", Self.window))
        #expect(v1 != v2)
        // a session on version 1 that moves to 2 after two steps runs the last step on 2
        let id = try s.createSession(#"{"version": 1}"#)
        #expect(try s.get("/v1/sessions/\(id)").json["version"]?.int == 1)
        for row in Self.rows.prefix(2) { #expect(try s.post("/v1/sessions/\(id)/step", row).status == 200) }
        let moved = try s.post("/v1/sessions/\(id)/migrate", #"{"version": 2, "expected_step": 2}"#)
        #expect(moved.status == 200 && moved.json["version"]?.int == 2 && moved.json["migrated_from"]?.int == 1 && moved.json["step"]?.int == 2)
        let last = Self.forecast(try s.post("/v1/sessions/\(id)/step", Self.rows[2]))
        // the same as stepping a version-2 session from version 1's state after two steps
        let twin = try s.createSession(#"{"version": 1}"#)
        for row in Self.rows.prefix(2) { _ = try s.post("/v1/sessions/\(twin)/step", row) }
        // the state as exported: the answer's last member
        let exported = try s.get("/v1/sessions/\(twin)/state").text
        let state = exported[exported.range(of: #""state":"#)!.upperBound...].dropLast()
        let copy = try s.createSession(#"{"version": 2, "state": \#(state)}"#)
        #expect(Self.forecast(try s.post("/v1/sessions/\(copy)/step", Self.rows[2])) == last)
        // another state layout: 409, and the session stays where it was
        let refused = try s.post("/v1/sessions/\(id)/migrate", #"{"version": 3}"#)
        #expect(refused.status == 409 && refused.errorMessage?.contains("their states differ") == true, "\(refused.text)")
        #expect(try s.get("/v1/sessions/\(id)").json["version"]?.int == 2)
        #expect(try s.post("/v1/sessions/\(id)/migrate", #"{"version": 9}"#).status == 404)
        #expect(try s.post("/v1/sessions/\(id)/migrate", #"{"version": "x"}"#).status == 422)
        #expect(try s.post("/v1/sessions", #"{"version": 7}"#).status == 404)
        // V2 names the versions, and answers with the one asked for
        #expect(try s.get("/v2/models/m").json["versions"]?.elements.map(\.string) == ["3", "2", "1"])
        #expect(try s.get("/v2/models/m/versions/2/ready").status == 200)
        #expect(try s.get("/v2/models/m/versions/4/ready").status == 404)
    }

    @Test func storedSessionsComeBackOnTheirVersionAfterARestartAndNotOnChangedFiles() throws {
        let repo = Repository()
        try repo.add("m", 1, fill: 0.1)
        let store = "sqlite:" + repo.root + "-sessions.db"
        var id = "", changed = "", twoSteps: [Float] = []
        do {
            let s = try LiveServer { $0.modelsDirectory = repo.root; $0.sessionStore = store }
            id = try s.createSession()
            _ = try s.post("/v1/sessions/\(id)/step", Self.rows[0])
            twoSteps = Self.forecast(try s.post("/v1/sessions/\(id)/step", Self.rows[1]))
        }
        try repo.add("m", 2, fill: 0.05)
        do {
            // the policy serves version 2 only; version 1 is loaded for the stored session
            let s = try LiveServer { $0.modelsDirectory = repo.root; $0.sessionStore = store }
            let info = try s.get("/v1/sessions/\(id)").json
            #expect(info["version"]?.int == 1 && info["step"]?.int == 2)
            #expect(try s.get("/v1/models/m").json["versions"]?.elements.map { $0["status"]!.string! } == ["serving", "retiring"])
            let replay = try s.createSession(#"{"version": 2}"#)
            #expect(try s.post("/v1/sessions/\(replay)/step", Self.rows[0]).status == 200)
            changed = try s.createSession()
        }
        // version 1 rewritten with other weights: its session cannot resume on them
        try repo.add("m", 1, fill: 0.3)
        let s = try LiveServer { $0.modelsDirectory = repo.root; $0.sessionStore = store }
        let gone = try s.get("/v1/sessions/\(id)")
        #expect(gone.status == 410 && gone.errorMessage?.contains("the weights or config changed") == true, "\(gone.text)")
        #expect(try s.get("/v1/sessions/\(changed)").json["version"]?.int == 2)
        #expect(!twoSteps.isEmpty)
    }
}
