import Locking
import ModelFormat
@testable import ModelRuntime
import RecurrentCore
import SessionStore
import TestSupport
import Testing

/// The one session step every protocol uses, and the model host's snapshots and retiring
/// versions.
@Suite struct StepRunnerTests {
    static func model(seed: Int, name: String = "m") throws -> Model {
        var tensors = TestModels.lstm(input: 2, hidden: 3)
        for (key, (shape, values)) in tensors {
            tensors[key] = (shape, values.indices.map { k in Float((k * 5 + seed * 11 + key.count) % 13 - 6) / 15 })
        }
        return try Model.load(path: TestModels.write(tensors), name: name)
    }

    static let window: [[Float]] = [[0.5, -1], [0.25, 0.75], [-0.5, 0.1], [1, 0]]

    @Test func steppingASessionRowThroughAWindowEqualsPredictingIt() throws {
        let entry = ModelRegistry.Entry(model: try Self.model(seed: 1))
        var row = [Float](repeating: 0, count: entry.stateWidth)
        let runner = entry.makeStepper()
        let outputs = try #require(row.withUnsafeMutableBufferPointer { runner.step(Self.window, state: $0.baseAddress!) })
        let request = PredictRequest(inputs: Self.window.flatMap { $0 }, batchSize: 1, sequenceLength: Self.window.count, isBatch: false)
        let result = entry.predictor.run(request, workspace: Workspace(pipeline: entry.model.pipeline, batchSize: 1))
        #expect(outputs.last == entry.predictor.outputs(of: result, request: request))
        #expect(row == result.state.values)
    }

    @Test func aStepThatIsNotFiniteLeavesTheRowAsItWas() throws {
        let entry = ModelRegistry.Entry(model: try Self.model(seed: 2))
        var row = (0..<entry.stateWidth).map { Float($0) / 10 }
        let before = row
        let runner = entry.makeStepper()
        let outputs = row.withUnsafeMutableBufferPointer { runner.step([[0.5, 0.5], [.nan, 1]], state: $0.baseAddress!) }
        #expect(outputs == nil && row == before)
    }

    @Test func versionsReadInputAlikeWhenTheirFeaturesAndShapeAgree() throws {
        let a = ModelRegistry.Entry(model: try Self.model(seed: 1)), b = ModelRegistry.Entry(model: try Self.model(seed: 2), version: 2)
        let wide = TestModels.lstm(input: 3, hidden: 3)
        let c = ModelRegistry.Entry(model: try Model.load(path: TestModels.write(wide), name: "m"), version: 3)
        #expect(a.readsInput(like: b) && b.readsInput(like: a) && !a.readsInput(like: c))
    }

    final class Events: ModelHostEvents {
        let events = Locked([String]())
        var seen: [String] { events.withLock { $0 } }
        func modelEvent(_ event: ModelHostEvent) {
            switch event {
            case let .unloaded(name, version): events.withLock { $0.append("unloaded \(name) \(version)") }
            case .installing: events.withLock { $0.append("installing") }
            default: break
            }
        }
    }

    @Test func aVersionLeftOutOfTheNextSnapshotRetiresUntilNothingHoldsIt() throws {
        let events = Events()
        let host = ModelHost(defaultModel: "", events: events)
        var first: ModelRegistry? = try ModelRegistry(models: [try Self.model(seed: 1)])
        host.install(first!)
        var held: ModelRegistry.Entry? = first!["m"]
        let fingerprint = held!.fingerprint
        first = nil
        host.install(try ModelRegistry(models: [try Self.model(seed: 3)]))
        #expect(host.retiringVersions().map { $0 === held } == [true])
        // a stored session finds the version it ran on by its files, retiring or served
        #expect(host.loadedVersion("m", 1, fingerprint) === held)
        #expect(host.loadedVersion("m", 1, host.registry!["m"]!.fingerprint) === host.registry!["m"])
        held = nil
        #expect(host.retiringVersions().isEmpty)
        #expect(events.seen == ["installing", "installing", "unloaded m 1"])
    }
}
