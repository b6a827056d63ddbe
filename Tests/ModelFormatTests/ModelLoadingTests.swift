import Foundation
import ModelFormat
import RecurrentCore
import TestSupport
import Testing

/// Weight files whose tensors are each valid but do not make a model: each gets its own error.
@Suite struct ModelLoadingTests {
    static func write(_ tensors: [String: ([Int], [Float])], metadata: [String: String] = [:], config: String? = nil) throws -> String {
        try TestModels.write(tensors, metadata: metadata, config: config)
    }

    static func lstm(_ prefix: String = "rnn.", layer: Int = 0, input: Int = 2, hidden: Int = 3) -> [String: ([Int], [Float])] {
        TestModels.lstm(prefix, layer: layer, input: input, hidden: hidden)
    }

    func loadError(_ dir: String) -> ModelError? {
        do { _ = try Model.load(path: dir); return nil } catch { return error }
    }

    @Test func aPlainStateDictLoadsWithItsArchitectureInferred() throws {
        var t = Self.lstm()
        t.merge(Self.lstm(layer: 1, input: 3, hidden: 3)) { a, _ in a }
        t["head.weight"] = ([1, 3], [1, 1, 1])
        t["head.bias"] = ([1], [0.5])
        let m = try Model.load(path: try Self.write(t))
        #expect(m.pipeline.recurrentLayers.count == 2)
        #expect(m.pipeline.recurrentLayers[0].kind == .lstm)
        #expect(m.pipeline.recurrentLayers[1].inputSize == 3)
        #expect(m.pipeline.outputWidth == 1)
        #expect(m.pipeline.parameterCount == (12 * 2 + 12 * 3 + 24) + (12 * 3 + 12 * 3 + 24) + 4)
    }

    @Test func missingTensorsAreNamed() throws {
        var t = Self.lstm()
        t["rnn.weight_hh_l0"] = nil
        #expect(loadError(try Self.write(t)) == .missingTensor("rnn.weight_hh_l0"))
    }

    @Test func layersWhoseShapesDoNotFitTogetherAreRejected() throws {
        var t = Self.lstm()
        t.merge(Self.lstm(layer: 1, input: 5, hidden: 3)) { a, _ in a }
        #expect(loadError(try Self.write(t)) == .shapeMismatch(
            tensor: "rnn.weight_ih_l1", expected: "[12, 3] (layer 0 outputs 3 values)", actual: [12, 5]))
    }

    @Test func aGateCountThatIsNotFourThreeOrOneIsRejected() throws {
        var t = Self.lstm()
        t["rnn.weight_ih_l0"] = ([6, 2], .init(repeating: 0, count: 12))
        t["rnn.weight_hh_l0"] = ([6, 3], .init(repeating: 0, count: 18))
        t["rnn.bias_ih_l0"] = nil
        t["rnn.bias_hh_l0"] = nil
        #expect(loadError(try Self.write(t)) == .shapeMismatch(tensor: "rnn.weight_ih_l0", expected: "4, 3 or 1 × hidden size 3 rows", actual: [6]))
    }

    @Test func aHeadThatDoesNotFitTheTopLayerIsRejected() throws {
        var t = Self.lstm()
        t["head.weight"] = ([1, 4], [1, 1, 1, 1])
        #expect(loadError(try Self.write(t)) == .shapeMismatch(tensor: "head.weight", expected: "[out, 3]", actual: [1, 4]))
    }

    @Test func unknownTensorsAreRejectedNotIgnored() throws {
        var t = Self.lstm()
        t["embedding.weight"] = ([2, 2], [1, 2, 3, 4])
        #expect(loadError(try Self.write(t)) == .unexpectedTensor("embedding.weight"))
    }

    @Test func aNumberedHeadWithAGapIsRefusedNotServedWithoutTheMissingLayer() throws {
        // nn.Sequential(Linear, ReLU, Linear): the ReLU has no tensors, so head.1 is missing
        var t = Self.lstm()
        t["head.0.weight"] = ([2, 3], [1, 1, 1, 1, 1, 1])
        t["head.2.weight"] = ([1, 2], [1, 1])
        guard case .inconsistent(let m)? = loadError(try Self.write(t)) else { Issue.record("expected a refusal"); return }
        #expect(m.hasPrefix("the head head.0, head.2 skips head.1: a layer without parameters"))
        #expect(m.contains("'layers' list"))
        t["head.1.weight"] = ([2, 2], [1, 0, 0, 1])
        let m3 = try Model.load(path: try Self.write(t))
        #expect(m3.pipeline.names.suffix(3) == ["head.0", "head.1", "head.2"])
    }

    @Test func aHeadUnderAnotherNameIsNamedWithTheFix() throws {
        var t = Self.lstm()
        t["fc.weight"] = ([1, 3], [1, 1, 1])
        let message = loadError(try Self.write(t))?.description ?? ""
        #expect(message.hasPrefix("unexpected tensor 'fc.weight'") && message.contains("head_prefix"))
        let m = try Model.load(path: try Self.write(t, config: #"{"head_prefix": "fc"}"#))
        #expect(m.pipeline.names.last == "fc")
    }

    @Test func aCellWithoutALayersListIsRefusedWithTheEntryToWrite() throws {
        let t: [String: ([Int], [Float])] = ["cell.weight_ih": ([9, 2], .init(repeating: 0.1, count: 18)),
                                             "cell.weight_hh": ([9, 3], .init(repeating: 0.1, count: 27))]
        guard case .inconsistent(let m)? = loadError(try Self.write(t)) else { Issue.record("expected a refusal"); return }
        #expect(m.contains(#"{"type": "gru", "weights": "cell", "return_sequences": false}"#))
    }

    @Test func aFileWithNoRecurrentLayerIsRejected() throws {
        #expect(loadError(try Self.write(["head.weight": ([1, 1], [1])])) == .noRecurrentLayers)
    }

    @Test func aConfigThatContradictsTheWeightsIsRejected() throws {
        let dir = try Self.write(Self.lstm(), config: #"{"cell": "gru"}"#)
        #expect(loadError(dir) == .inconsistent("config says cell 'gru' (3 gates) but rnn.weight_ih_l0 has 4·hidden rows"))
        let dir2 = try Self.write(Self.lstm(), config: #"{"inputs": {"features": [{"name": "a"}]}}"#)
        #expect(loadError(dir2) == .invalidConfig("inputs.features names 1 features but the model takes 2"))
        let dir3 = try Self.write(Self.lstm(), config: #"{"colour": "red"}"#)
        guard case .invalidConfig(let m)? = loadError(dir3) else { Issue.record("expected invalidConfig"); return }
        #expect(m.hasPrefix("unknown key 'colour'"))
    }

    @Test func aResidualOutputMustNameAnObservedInput() throws {
        let features = #""inputs": {"features": [{"name": "a"}, {"name": "d", "derived": "day_of_year_sin"}]}"#
        func outputs(_ base: String) -> String {
            #""outputs": [{"name": "x", "residual_of": "\#(base)"}, {"name": "y"}, {"name": "z"}]"#
        }
        let ok = try Model.load(path: try Self.write(Self.lstm(), config: "{\(features), \(outputs("a"))}"))
        #expect(ok.config.outputs.map(\.residualOf) == ["a", nil, nil])
        #expect(loadError(try Self.write(Self.lstm(), config: "{\(features), \(outputs("d"))}"))
            == .invalidConfig("output 'x': residual_of 'd' is not an observed input feature (inputs.features)"))
        #expect(loadError(try Self.write(Self.lstm(), config: "{\(features), \(outputs("q"))}"))
            == .invalidConfig("output 'x': residual_of 'q' is not an observed input feature (inputs.features)"))
    }

    @Test func metadataCanCarryTheConfigOfABareFile() throws {
        let t: [String: ([Int], [Float])] = [
            "rnn.weight_ih_l0": ([3, 2], .init(repeating: 0.1, count: 6)),
            "rnn.weight_hh_l0": ([3, 3], .init(repeating: 0.1, count: 9)),
        ]
        let dir = try Self.write(t, metadata: ["nonlinearity": "relu"])
        let m = try Model.load(path: dir + "/model.safetensors")
        #expect(m.pipeline.recurrentLayers[0].kind == .rnn(.relu))
    }

    @Test func aWeightThatIsNotFiniteIsRefusedNamingTheTensor() throws {
        for bad in [Float.nan, .infinity, -.infinity] {
            var t = Self.lstm()
            t["rnn.weight_hh_l0"]!.1[5] = bad
            #expect(loadError(try Self.write(t)) == .nonFiniteWeight(tensor: "rnn.weight_hh_l0", index: 5, value: bad) || bad.isNaN)
            #expect(loadError(try Self.write(t))?.description == "tensor 'rnn.weight_hh_l0' holds \(bad) at element 5; weights must be finite")
        }
    }

    @Test func hostileFilesGiveAnErrorNamingTheFile() throws {
        let dir = try Self.write(Self.lstm())
        let path = dir + "/model.safetensors"
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        bytes.removeLast(5)  // truncated
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        guard case let .safeTensors(p, inner)? = loadError(dir) else { Issue.record("expected a safetensors error"); return }
        #expect(p == path)
        #expect(inner == .invalidOffset(name: "rnn.weight_ih_l0") || inner == .invalidOffset(name: "rnn.weight_hh_l0"))
        #expect(loadError(dir + "/nope") == .unreadable(path: dir + "/nope", reason: "no such file or directory"))
    }
}
