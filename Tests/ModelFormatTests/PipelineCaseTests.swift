import Foundation
import JSON
import ModelFormat
import RecurrentCore
import TestSupport
import Testing

/// Whole models built with the real frameworks (Tests/Fixtures/pipelines), exported from the
/// user's own file: the served answer equals the framework's at the README tolerance, and where
/// the model is causal, stepping equals the whole window bit for bit.
@Suite struct PipelineCaseTests {
    struct Case {
        let name: String
        let json: JSONValue
        let model: Model
        var x: [Float] { flatten(json["x"]!) }
        var batch: Int { json["x"]!.count }
        var length: Int { json["x"]![0]!.count }

        init(_ name: String) throws {
            self.name = name
            json = try Fixtures.json("pipelines/\(name)/case.json").value
            model = try Model.load(path: Fixtures.path("models/\(name)"))
        }

        /// PyTorch's (h0, c0), (L·D, B, H), as a state; zeros when the case has none.
        func initialState() -> RecurrentState {
            var state = model.pipeline.makeState(batchSize: batch)
            for (key, isCell) in [("h0", false), ("c0", true)] {
                guard let v = json[key] else { continue }
                for slot in 0..<v.count {
                    if isCell { state.setCell(slot: slot, flatten(v[slot]!)) } else { state.setHidden(slot: slot, flatten(v[slot]!)) }
                }
            }
            return state
        }
    }

    @Test(arguments: Fixtures.pipelineCases)
    func theAnswerIsTheFrameworks(name: String) throws {
        let c = try Case(name)
        let p = c.model.pipeline
        let result = p.forward(c.x, sequenceLength: c.length, initialState: c.initialState(),
                               workspace: Workspace(pipeline: p, batchSize: c.batch))
        let tol: Float = 1e-5 * max(1, Float(c.length) / 100)
        #expect(firstMismatch(result.output, flatten(c.json["expected"]!), tolerance: tol) == nil)
        if let hn = c.json["h_n"] {
            #expect(firstMismatch(result.state.h, flatten(hn), tolerance: tol) == nil)
        }
        if let cn = c.json["c_n"] {
            #expect(firstMismatch(result.state.c, flatten(cn), tolerance: tol) == nil)
        }
        #expect(p.parameterCount == c.json["parameters"]!.int!)
    }

    @Test(arguments: Fixtures.pipelineCases)
    func steppingEqualsTheWholeWindowWhereTheModelIsCausal(name: String) throws {
        let c = try Case(name)
        let p = c.model.pipeline
        #expect(p.isStreamable == c.json["streamable"]!.bool!)
        guard p.isStreamable else { return }
        let (B, T, I) = (c.batch, c.length, p.inputSize)
        let x = c.x
        let ws = Workspace(pipeline: p, batchSize: B)
        var state = c.initialState()
        for t in 0..<T {
            var row: [Float] = []
            for b in 0..<B { row += x[(b * T + t) * I..<(b * T + t + 1) * I] }
            p.step(row, state: &state, workspace: ws)
        }
        let whole = p.forward(x, sequenceLength: T, initialState: c.initialState(), workspace: Workspace(pipeline: p, batchSize: B))
        #expect(ws.output == whole.lastRows)
        #expect(state == whole.state)
    }
}
