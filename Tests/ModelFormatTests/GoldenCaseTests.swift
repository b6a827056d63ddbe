import JSON
import ModelFormat
import RecurrentCore
import TestSupport
import Testing

/// Every shared golden case, exported to a model directory by tools/export_model.py (Keras from
/// .keras, ONNX from .onnx, PyTorch from its state_dict), against the frameworks' own numbers.
@Suite struct GoldenCaseTests {
    struct Case: CustomTestStringConvertible {
        let name: String
        let json: JSONValue
        var testDescription: String { name }
        var batch: Int { json["batch"]!.int! }
        var sequenceLength: Int { json["seq_len"]!.int! }
        /// README: 1e-5 up to T = 100, 1e-5 · T / 100 beyond.
        var tolerance: Float { 1e-5 * max(1, Float(sequenceLength) / 100) }

        init(_ name: String) throws {
            self.name = name
            json = try Fixtures.json("golden/\(name)/case.json").value
        }

        func model() throws -> Model { try Model.load(path: Fixtures.path("models/\(name)")) }

        /// h0/c0 (L·D, B, width) into a state, or zeros.
        func initialState(_ network: Pipeline) -> RecurrentState {
            var state = network.makeState(batchSize: batch)
            for (key, isCell) in [("h0", false), ("c0", true)] {
                guard let v = json[key], !v.isNull else { continue }
                for slot in 0..<v.count {
                    let values = flatten(v[slot]!)
                    if isCell { state.setCell(slot: slot, values) } else { state.setHidden(slot: slot, values) }
                }
            }
            return state
        }

        /// h_n / c_n as one flat array over slots (ragged widths allowed).
        func expectedStates(_ key: String, in section: String = "expected") -> [Float]? {
            guard let v = json[section]?[key], !v.isNull else { return nil }
            return flatten(v)
        }
    }

    static let cases = Fixtures.goldenCases

    @Test(arguments: cases)
    func wholeWindowMatchesTheFramework(name: String) throws {
        let c = try Case(name)
        let model = try c.model()
        let net = model.pipeline
        let ws = Workspace(pipeline: net, batchSize: c.batch)
        let result = net.forward(flatten(c.json["x"]!), sequenceLength: c.sequenceLength,
                                 initialState: c.initialState(net), returnSequences: true, workspace: ws)
        let tol = c.tolerance
        #expect(firstMismatch(result.sequence, flatten(c.json["expected"]!["output"]!), tolerance: tol) == nil)
        if let hn = c.expectedStates("h_n") {
            #expect(firstMismatch(result.state.h, hn, tolerance: tol) == nil)
        }
        if let cn = c.expectedStates("c_n") {
            #expect(firstMismatch(result.state.c, cn, tolerance: tol) == nil)
        }
        if let head = c.json["expected"]?["head"], !head.isNull {
            #expect(firstMismatch(result.output, flatten(head), tolerance: tol) == nil)
        }
    }

    @Test(arguments: cases)
    func steppingMatchesTheFrameworkAndOurWholeWindowBitForBit(name: String) throws {
        let c = try Case(name)
        guard let step = c.json["step"], step.kind == .object, step.count > 0 else {
            // Bidirectional: the reverse direction needs the whole window; nothing to stream.
            #expect(try !c.model().pipeline.isStreamable)
            return
        }
        let net = try c.model().pipeline
        let (B, T, I, W) = (c.batch, c.sequenceLength, net.inputSize, net.sequenceWidth)
        let x = flatten(c.json["x"]!)
        let ws = Workspace(pipeline: net, batchSize: B)
        var state = c.initialState(net)
        var outputs = [Float](repeating: 0, count: B * T * W)
        for t in 0..<T {
            var xt: [Float] = []
            for b in 0..<B { xt += x[(b * T + t) * I..<(b * T + t + 1) * I] }
            net.step(xt, state: &state, workspace: ws)
            let out = ws.tapOutput
            for b in 0..<B {
                for k in 0..<W { outputs[(b * T + t) * W + k] = out[b * W + k] }
            }
        }
        let tol = c.tolerance
        #expect(firstMismatch(outputs, flatten(step["outputs"]!), tolerance: tol) == nil)
        #expect(firstMismatch(state.h, c.expectedStates("h_n", in: "step")!, tolerance: tol) == nil)
        if let cn = c.expectedStates("c_n", in: "step") {
            #expect(firstMismatch(state.c, cn, tolerance: tol) == nil)
        }
        if let head = step["head"], !head.isNull {
            #expect(firstMismatch(ws.output, flatten(head), tolerance: tol) == nil)
        }
        // Our step and whole-window paths share one cell step: identical bits.
        let whole = net.forward(x, sequenceLength: T, initialState: c.initialState(net), returnSequences: true,
                                workspace: Workspace(pipeline: net, batchSize: B))
        #expect(whole.sequence == outputs)
        #expect(whole.state == state)
        #expect(whole.output == ws.output)
    }

    @Test(arguments: cases)
    func parameterCountsMatchTheFramework(name: String) throws {
        let c = try Case(name)
        let net = try c.model().pipeline
        let counts = c.json["param_count"]!
        #expect(net.recurrentLayers.map(\.parameterCount) == counts["per_layer"]!.elements.map { $0.int! })
        let recurrent = net.recurrentLayers.reduce(0) { $0 + $1.parameterCount }
        #expect(recurrent == counts["rnn_total"]!.int!)
        #expect(net.parameterCount - recurrent == (counts["head"]?.int ?? 0))
        #expect(net.parameterCount == counts["total"]!.int!)
    }
}
