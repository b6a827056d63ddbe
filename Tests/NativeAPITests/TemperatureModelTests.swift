import JSON
import ModelFormat
@testable import ModelRuntime
import NativeAPI
import RecurrentCore
import TestSupport
import Testing

/// The shipped model, served through the Swift core from raw named rows (dates and all),
/// reproduces PyTorch's own predictions on every 2015 window.
@Suite struct TemperatureModelTests {
    static let modelPath = Fixtures.root + "/../../models/temperature"

    @Test func theServedModelReproducesPyTorchOn2015WithinATenThousandthOfADegree() throws {
        let model = try Model.load(path: Self.modelPath)
        let predictor = Predictor(model: model)
        let cases = try Fixtures.json("temperature_2015.json").value["cases"]!
        #expect(cases.count == 365)
        let ws = Workspace(pipeline: model.pipeline, batchSize: 1)
        var worst: Float = 0
        for c in cases.elements {
            // the case holds target_date and pytorch beside window: decode just the window
            let body = try JSONDocument(text: #"{"window": "# + (try rowsJSON(c["window"]!)) + "}")
            let request = try PredictRequest.decode(body.value, model: model)
            let y = predictor.outputs(of: predictor.run(request, workspace: ws), request: request)
            var expected: [Float] = []
            _ = c["pytorch"]!.appendNumbers(to: &expected)
            worst = max(worst, maxAbsDiff(y, expected))
        }
        #expect(worst <= 1e-4, "max |swift − pytorch| = \(worst) °C")
    }

    /// The answers written through reusable templates (one window; one step) are byte for
    /// byte those the general path builds, on every 2015 window.
    @Test func templateAnswersAreTheGeneralAnswers() throws {
        let model = try Model.load(path: Self.modelPath)
        let predictor = Predictor(model: model)
        let cases = try Fixtures.json("temperature_2015.json").value["cases"]!
        let ws = Workspace(pipeline: model.pipeline, batchSize: 1)
        var checked = 0
        for c in cases.elements.prefix(100) {
            let body = try JSONDocument(text: #"{"window": "# + (try rowsJSON(c["window"]!)) + "}")
            let request = try PredictRequest.decode(body.value, model: model)
            let result = predictor.run(request, workspace: ws)
            let fast = try #require(try NativeAnswers(predictor).answerBytes(to: request, result: result))
            #expect(fast == (try NativeAnswers(predictor).response(to: request, result: result).serializedBytes()))
            let y = predictor.outputs(of: result, request: request)
            let step = try #require(try NativeAnswers(predictor).stepAnswerBytes(id: "s\(checked)", step: checked, y: y))
            let general = JSON.object([("session_id", .string("s\(checked)")), ("model", .string(model.name)), ("step", .int(checked))]
                                      + NativeAnswers(predictor).forecast(y[...]))
            #expect(step == (try general.serializedBytes()))
            checked += 1
        }
        #expect(checked == 100)
    }

    func rowsJSON(_ rows: JSONValue) throws -> String {
        try JSON.array(rows.elements.map { row in
            .object(row.keys.sorted().map { k in (k, row[k]!.string.map { JSON.string($0) } ?? .double(row[k]!.double!)) })
        }).serialized()
    }

    @Test func theModelNeedsDatesAndSaysSo() throws {
        let model = try Model.load(path: Self.modelPath)
        #expect(model.config.features.map(\.name) == ["temp_max", "temp_min", "precipitation", "wind", "doy_sin", "doy_cos"])
        #expect(model.config.windowLength == 7)
        let rows = JSON.array((0..<7).map { _ in .floats([10, 5, 0, 3]) })
        let doc = try JSONDocument(text: try JSON.object([("window", rows)]).serialized())
        #expect(throws: RuntimeError.self) { try PredictRequest.decode(doc.value, model: model) }
    }
}
