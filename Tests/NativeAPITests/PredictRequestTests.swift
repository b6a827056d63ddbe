import Foundation
import JSON
import ModelFormat
@testable import ModelRuntime
import NativeAPI
import RecurrentCore
import TestSupport
import Testing

/// Decoding predict bodies: every kind of bad input is a 422 that says what was expected.
@Suite struct PredictRequestTests {
    /// onnx_lstm (4 inputs, 2 outputs) with names, units, a window of 3 and normalization.
    static let model: Model = {
        let dir = NSTemporaryDirectory() + "lstm-serve-predict-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try! FileManager.default.copyItem(atPath: Fixtures.path("models/onnx_lstm/model.safetensors"), toPath: dir + "/model.safetensors")
        // the fixture's layers (the graph's), then this test's names, units and normalization
        let fixture = try! JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("models/onnx_lstm/config.json")))) as! [String: Any]
        let layers = String(decoding: try! JSONSerialization.data(withJSONObject: fixture["layers"]!), as: UTF8.self)
        let config = """
        {"name": "weather", "layers": \(layers), "inputs": {"window": 3, "features": [
            {"name": "temp", "unit": "°C"}, {"name": "wind", "unit": "m/s"},
            {"name": "doy_sin", "derived": "day_of_year_sin"}, {"name": "doy_cos", "derived": "day_of_year_cos"}]},
         "outputs": [{"name": "a", "unit": "°C"}, {"name": "b", "unit": "°C"}],
         "normalization": {"input_mean": [10, 3, 0, 0], "input_std": [5, 2, 1, 1], "output_mean": [10, 5], "output_std": [4, 2]}}
        """
        try! Data(config.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        return try! Model.load(path: dir)
    }()

    func decode(_ text: String) throws -> PredictRequest {
        try PredictRequest.decode(try JSONDocument(text: text).value, model: Self.model)
    }

    func message(_ text: String) -> String? {
        do { _ = try decode(text); return nil } catch let e as RuntimeError { guard case let .invalidInput(message) = e else { return "\(e)" }; return message } catch { return "\(error)" }
    }

    static let row1 = #"{"date": "2015-03-01", "temp": 11.1, "wind": 2.1}"#
    static let row2 = #"{"date": "2015-03-02", "temp": 12.2, "wind": 3.0}"#
    static let row3 = #"{"date": "2015-03-03", "temp": 9.0, "wind": 1.5}"#

    @Test func namedRowsGetTheirCalendarFeaturesFromTheDate() throws {
        let r = try decode(#"{"window": [\#(Self.row1), \#(Self.row2), \#(Self.row3)]}"#)
        #expect(r.batchSize == 1 && r.sequenceLength == 3)
        let angle = 2 * Double.pi * 59 / 365.25  // 1 March 2015 is day 60
        #expect(r.inputs[0...1] == [11.1, 2.1])
        #expect(abs(r.inputs[2] - Float(sin(angle))) < 1e-7 && abs(r.inputs[3] - Float(cos(angle))) < 1e-7)
    }

    @Test func badWindowsSayWhatWasExpected() {
        #expect(message(#"{"window": [\#(Self.row1), \#(Self.row2)]}"#) == "window has 2 rows, model 'weather' expects 3")
        #expect(message(#"{"window": [[1,2,3,4],[1,2,3,4],[1,2,3,4]]}"#)?.hasPrefix("window[0]: model 'weather' derives doy_sin, doy_cos from each row's date") == true)
        #expect(message(#"{"window": [{"temp": 1, "wind": 2}, \#(Self.row2), \#(Self.row3)]}"#)?.hasPrefix("window[0] has no 'date'") == true)
        #expect(message(#"{"window": [{"date": "2015-02-30", "temp": 1, "wind": 2}, \#(Self.row2), \#(Self.row3)]}"#) == "window[0].date '2015-02-30' is not an ISO 8601 date (YYYY-MM-DD)")
        #expect(message(#"{"window": [{"date": "2015-03-01", "temp": 1}, \#(Self.row2), \#(Self.row3)]}"#) == "window[0] is missing feature 'wind'; expected temp, wind")
        #expect(message(#"{"window": [{"date": "2015-03-01", "temp": "hot", "wind": 1}, \#(Self.row2), \#(Self.row3)]}"#) == "window[0].temp is a string, expected a number")
        #expect(message(#"{"window": [{"date": "2015-03-01", "temp": 1e39, "wind": 1}, \#(Self.row2), \#(Self.row3)]}"#) == "window[0].temp is not a finite number")
        #expect(message(#"{"window": [{"date": "2015-03-01", "temp": 1, "wind": 1, "rain": 0}, \#(Self.row2), \#(Self.row3)]}"#) == "window[0] has unknown feature 'rain'; expected temp, wind")
        #expect(message(#"{"windows": [[\#(Self.row1), \#(Self.row2), \#(Self.row3)], [\#(Self.row1)]]}"#) == "windows[1] has 1 rows, model 'weather' expects 3")
        #expect(message(#"{"rows": []}"#) == "unknown field 'rows'; expected one of return_sequences, return_state, state, window, windows")
        #expect(message(#"{}"#) == "missing 'window' (an array of rows) or 'windows' (an array of windows)")
        #expect(message(#"[1]"#) == "request body must be an object like {\"window\": [[...], ...]}, got an array")
        #expect(message(#"{"window": 5}"#) == "window must be an array of rows, got a number")
    }

    @Test func anInitialStateMustHaveTheModelsShape() {
        let w = #""window": [\#(Self.row1), \#(Self.row2), \#(Self.row3)]"#
        #expect(message(#"{\#(w), "state": {"h": [[0]]}}"#) == "state.h must be an array of 2 arrays (one per layer and direction)")
        #expect(message(#"{\#(w), "state": {"h": [[0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0]]}}"#) == "state.c is missing; expected 2 arrays (one per layer and direction)")
    }

    @Test func answersAreInRealUnitsWithNamesUnitsAndTheSameNumbersAsTheCore() throws {
        let request = try decode(#"{"window": [\#(Self.row1), \#(Self.row2), \#(Self.row3)], "return_state": true}"#)
        let predictor = Predictor(model: Self.model)
        let result = predictor.run(request, workspace: Workspace(pipeline: Self.model.pipeline, batchSize: 1))
        // by hand: normalize, run the core, scale back
        var x = request.inputs
        for k in x.indices { x[k] = (x[k] - [10, 3, 0, 0][k % 4]) / [5, 2, 1, 1][k % 4] }
        let raw = Self.model.pipeline.forward(x, sequenceLength: 3, workspace: Workspace(pipeline: Self.model.pipeline, batchSize: 1))
        let expected = [raw.output[0] * 4 + 10, raw.output[1] * 2 + 5]
        #expect(predictor.outputs(of: result, request: request) == expected)
        let json = try NativeAnswers(predictor).response(to: request, result: result).serialized()
        #expect(json.hasPrefix(#"{"model":"weather","forecast":{"a":\#(JSON.float(expected[0]).serializedOrEmpty),"b":"#))
        #expect(json.contains(#""units":{"a":"°C","b":"°C"}"#))
        #expect(json.contains(#""state":{"layers":{"lstm layer 0":{"h":["#))
    }
}

extension JSON {
    var serializedOrEmpty: String { (try? serialized()) ?? "" }
}
