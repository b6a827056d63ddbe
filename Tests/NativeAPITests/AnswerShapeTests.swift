import Foundation
import JSON
import ModelFormat
@testable import ModelRuntime
import NativeAPI
import RecurrentCore
import TestSupport
import Testing

/// Rows of any shape in, and answers of any shape out, through the runtime the protocols share,
/// on the whole-model golden cases (Tests/Fixtures/pipelines): the answer equals the framework's.
@Suite struct AnswerShapeTests {
    struct Served {
        let model: Model
        let predictor: Predictor
        let json: JSONValue

        init(_ name: String, labels: [String]? = nil) throws {
            json = try Fixtures.json("pipelines/\(name)/case.json").value
            var path = Fixtures.path("models/\(name)")
            if let labels {
                // a copy whose config names the classes
                let dir = NSTemporaryDirectory() + "lstm-serve-labels-\(UUID().uuidString)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: path + "/model.safetensors", toPath: dir + "/model.safetensors")
                var config = try String(contentsOfFile: path + "/config.json", encoding: .utf8)
                config = String(config.dropLast(2)) + ",\n  \"labels\": [\(labels.map { "\"\($0)\"" }.joined(separator: ", "))]\n}\n"
                try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
                path = dir
            }
            model = try Model.load(path: path)
            predictor = Predictor(model: model)
        }

        /// The answer to `{"window": sample b of the case's x}`, as JSON text parsed back.
        func answer(sample b: Int) throws -> JSONDocument {
            let window = try JSON.object([("window", Self.json(json["x"]![b]!))]).serialized()
            let request = try PredictRequest.decode(try JSONDocument(text: window).value, model: model)
            let result = predictor.run(request, workspace: Workspace(pipeline: model.pipeline, batchSize: 1))
            return try JSONDocument(text: try NativeAnswers(predictor).response(to: request, result: result).serialized())
        }

        func expected(_ b: Int) -> [Float] { flatten(json["expected"]![b]!) }

        static func json(_ v: JSONValue) -> JSON {
            guard v.kind == .array else { return .double(v.double!) }
            let leaves = v.elements.allSatisfy { $0.kind != .array }
            return leaves ? .floats(v.elements.map { Float($0.double!) }) : .array(v.elements.map(json))
        }

        func refusal(_ body: String) -> String? {
            do { _ = try PredictRequest.decode(try JSONDocument(text: body).value, model: model); return nil } catch {
                return "\(error)"
            }
        }
    }

    static func close(_ a: [Float], _ b: [Float]) -> Bool { firstMismatch(a, b, tolerance: 1e-5) == nil }

    @Test func aClassifierAnswersItsProbabilitiesAndTopClassWithItsLabel() throws {
        let s = try Served("keras_echo_classifier", labels: (0..<10).map { "digit \($0)" })
        for b in 0..<s.json["x"]!.count {
            let a = try s.answer(sample: b).value
            let p = a["probabilities"]!
            #expect(p.keys == (0..<10).map { "digit \($0)" })
            let values = p.keys.map { Float(p[$0]!.double!) }
            #expect(Self.close(values, s.expected(b)))
            let top = values.indices.max { values[$0] < values[$1] }!
            #expect(a["class"]?.int == top && a["label"]?.string == "digit \(top)")
            #expect(a["forecast"] == nil)
        }
        #expect(throws: ModelError.invalidConfig("labels names 2 classes but the model gives 10 outputs")) { try Served("keras_echo_classifier", labels: ["a", "b"]) }
    }

    @Test func framesAreNestedArraysCheckedAgainstTheRowShape() throws {
        let s = try Served("keras_cnn_lstm")
        let a = try s.answer(sample: 1).value
        #expect(Self.close([Float(a["forecast"]!["y0"]!.double!)], s.expected(1)))
        let frame = JSON.array((0..<50).map { _ in .array((0..<50).map { _ in .floats([0.5]) }) })
        var short = frame
        if case var .array(rows) = short { rows[3] = .array((0..<49).map { _ in .floats([0.5]) }); short = .array(rows) }
        let body = try JSON.object([("window", .array([frame, short, frame, frame]))]).serialized()
        #expect(s.refusal(body) == "window[1][3] must be an array of 50; got 49 values")
        #expect(s.refusal(#"{"window": [[1, 2], [3], [4], [5]]}"#) == "window[0] must be a 50×50×1 nested array; got 2 values")
    }

    @Test func tokenIdsAreIntegersInTheVocabulary() throws {
        let s = try Served("keras_embedding_norm")
        let a = try s.answer(sample: 0).value
        let p = a["probabilities"]!
        #expect(Self.close(p.keys.map { Float(p[$0]!.double!) }, s.expected(0)))
        #expect(s.refusal(#"{"window": [1, 2, 3, 4, 5, 2.5]}"#) == "window[5] is 2.5; model 'keras_embedding_norm' takes token ids, integers from 0 to 19")
        #expect(s.refusal(#"{"window": [1, 2, 3, 4, 5, 20]}"#) == "window[5] is 20.0; model 'keras_embedding_norm' takes token ids, integers from 0 to 19")
    }

    @Test func aModelEndingInASequenceAnswersEveryTimestep() throws {
        let s = try Served("keras_encoder_decoder")
        let a = try s.answer(sample: 1).value
        let steps = a["forecasts"]!.elements
        #expect(steps.count == 3)
        let values = steps.flatMap { step in ["y0", "y1"].map { Float(step["forecast"]![$0]!.double!) } }
        #expect(Self.close(values, s.expected(1)))
        #expect(a["forecast"]!["y1"]!.double == steps[2]["forecast"]!["y1"]!.double)
    }

    @Test func aWindowTooShortForALayerOverTimeIsRefusedNamingIt() throws {
        let p = try Served("keras_conv1d_pooling").model.pipeline
        #expect(p.refusal(sequenceLength: 1) == "max_pooling1d (max pooling 1d) needs at least 2 timesteps, got 1")
        #expect(p.refusal(sequenceLength: 12) == nil)
    }
}

/// The exported state names every stateful layer, and carries a causal Conv1D's history.
@Suite struct NamedStateTests {
    @Test func aSessionOfAConvModelMovesThroughItsExportedStateUnchanged() throws {
        let model = try Model.load(path: Fixtures.path("models/keras_conv1d_causal"))
        let p = model.pipeline
        let x = flatten(try Fixtures.json("pipelines/keras_conv1d_causal/case.json").value["x"]![0]!)
        let I = p.inputSize, T = x.count / I
        let ws = Workspace(pipeline: p, batchSize: 1)
        var straight = p.makeState(batchSize: 1)
        for t in 0..<T { p.step(Array(x[t * I..<(t + 1) * I]), state: &straight, workspace: ws) }
        let expected = ws.output
        // half the window, out through the JSON form, back in, the other half
        var first = p.makeState(batchSize: 1)
        for t in 0..<4 { p.step(Array(x[t * I..<(t + 1) * I]), state: &first, workspace: ws) }
        let text = try StateInput(first, sample: 0).json(for: p).serialized()
        #expect(text.hasPrefix(#"{"layers":{"conv1d":{"history":[["#) && text.contains(#""lstm_11":{"h":["#))
        var moved = try StateInput.decode(try JSONDocument(text: text).value, pipeline: p, label: "state").state(for: p, batchSize: 1)
        #expect(moved == first)
        for t in 4..<T { p.step(Array(x[t * I..<(t + 1) * I]), state: &moved, workspace: ws) }
        #expect(ws.output == expected)
        // the slot form cannot carry the history, so it is refused for this model
        #expect(throws: RuntimeError.invalidInput("state needs 'layers': layer conv1d keeps a history that the h/c form cannot carry")) {
            _ = try StateInput.decode(try JSONDocument(text: #"{"h": [[0]]}"#).value, pipeline: p, label: "state")
        }
    }
}
