import Foundation
@testable import RecurrentCore
import Testing

/// The layers around the recurrent ones, and the recurrent options Keras has: checked against
/// simple references built from the same cells.
@Suite struct PipelineLayerTests {
    typealias Random = PipelineTests.Random

    static func lstm(_ input: Int, _ hidden: Int, _ r: inout Random, activation: Activation? = nil, recurrent: Activation = .sigmoid) -> CellWeights {
        CellWeights(kind: .lstm, inputSize: input, hiddenSize: hidden, weightIH: r.array(4 * hidden * input),
                    weightHH: r.array(4 * hidden * hidden), biasIH: r.array(4 * hidden), biasHH: nil,
                    activation: activation, recurrentActivation: recurrent)
    }

    static func dense(_ input: Int, _ output: Int, _ r: inout Random, _ activation: Activation = .linear) -> DenseLayer {
        DenseLayer(inputSize: input, outputSize: output, weight: r.array(input * output), bias: r.array(output), activation: activation)
    }

    static func run(_ p: Pipeline, _ x: [Float], _ T: Int, batch: Int = 1, sequences: Bool = false) -> ForwardResult {
        p.forward(x, sequenceLength: T, returnSequences: sequences, workspace: Workspace(pipeline: p, batchSize: batch))
    }

    @Test(arguments: [RecurrentLayer.Merge.sum, .mul, .ave])
    func bidirectionalMergeModesJoinTheConcatenatedHalves(merge: RecurrentLayer.Merge) throws {
        var r = Random(state: 5)
        let (T, H) = (6, 7)
        let f = Self.lstm(3, H, &r), b = Self.lstm(3, H, &r)
        let x = r.array(2 * T * 3, 2)
        for returnSequences in [true, false] {
            let concat = try Pipeline(layers: [.recurrent(RecurrentLayer(directions: [f, b], returnSequences: returnSequences))], input: .sequence(3))
            let merged = try Pipeline(layers: [.recurrent(RecurrentLayer(directions: [f, b], returnSequences: returnSequences, merge: merge))], input: .sequence(3))
            let a = Self.run(concat, x, T, batch: 2), m = Self.run(merged, x, T, batch: 2)
            let rows = a.output.count / (2 * H)
            #expect(m.output.count == rows * H)
            for row in 0..<rows {
                for k in 0..<H {
                    let (u, v) = (a.output[row * 2 * H + k], a.output[row * 2 * H + H + k])
                    let want: Float = merge == .sum ? u + v : merge == .mul ? u * v : (u + v) / 2
                    #expect(m.output[row * H + k] == want)
                }
            }
        }
    }

    @Test func aBidirectionalLayerWithoutSequencesJoinsBothFinalStates() throws {
        var r = Random(state: 6)
        let f = Self.lstm(2, 5, &r), b = Self.lstm(2, 5, &r)
        let p = try Pipeline(layers: [.recurrent(RecurrentLayer(directions: [f, b], returnSequences: false))], input: .sequence(2))
        let result = Self.run(p, r.array(4 * 2), 4)
        // Keras: [forward after x[T-1], backward after x[0]], which are h_n of both directions
        #expect(result.output == result.state.hidden(slot: 0) + result.state.hidden(slot: 1))
    }

    @Test func goBackwardsReadsTheWindowFromItsEndAndKeepsThatOrder() throws {
        var r = Random(state: 8)
        let cell = Self.lstm(3, 4, &r)
        let T = 5
        let x = r.array(T * 3, 2)
        var reversed: [Float] = []
        for t in (0..<T).reversed() { reversed += x[t * 3..<(t + 1) * 3] }
        let backwards = try Pipeline(layers: [.recurrent(RecurrentLayer(directions: [cell], goBackwards: true))], input: .sequence(3))
        let plain = try Pipeline(layers: [.recurrent(RecurrentLayer(directions: [cell]))], input: .sequence(3))
        #expect(Self.run(backwards, x, T).output == Self.run(plain, reversed, T).output)
        #expect(backwards.firstNonCausalLayer?.index == 0)
    }

    @Test func steppingEqualsTheWholeWindowThroughEveryCausalLayer() throws {
        var r = Random(state: 9)
        let (B, T) = (3, 6)
        // per-timestep dense + activation, an LSTM with relu (no pair kernel), an LSTM handing
        // on its last output, and a dense head with softmax
        let layers: [Layer] = [
            .dense(Self.dense(4, 6, &r, .tanh)), .activation(.elu),
            .recurrent(RecurrentLayer(directions: [Self.lstm(6, 8, &r, activation: .relu, recurrent: .hardSigmoid)])),
            .recurrent(RecurrentLayer(directions: [Self.lstm(8, 5, &r)], returnSequences: false)),
            .dense(Self.dense(5, 3, &r, .softmax)),
        ]
        let p = try Pipeline(layers: layers, input: .sequence(4))
        #expect(p.isStreamable && p.outputShape == .vector(3))
        let x = r.array(B * T * 4, 1.5)
        let whole = Self.run(p, x, T, batch: B, sequences: true)
        let ws = Workspace(pipeline: p, batchSize: B)
        var state = p.makeState(batchSize: B)
        var tapped = [Float](repeating: 0, count: B * T * 5)
        for t in 0..<T {
            var row: [Float] = []
            for b in 0..<B { row += x[(b * T + t) * 4..<(b * T + t + 1) * 4] }
            p.step(row, state: &state, workspace: ws)
            let tap = ws.tapOutput
            for b in 0..<B { for k in 0..<5 { tapped[(b * T + t) * 5 + k] = tap[b * 5 + k] } }
        }
        #expect(ws.output == whole.output)
        #expect(state == whole.state)
        #expect(tapped == whole.sequence)
        #expect(abs(whole.output[0] + whole.output[1] + whole.output[2] - 1) < 1e-6)
    }

    @Test func aPipelineEndingInASequenceAnswersEveryTimestep() throws {
        var r = Random(state: 10)
        let T = 4
        let p = try Pipeline(layers: [.recurrent(RecurrentLayer(directions: [Self.lstm(2, 3, &r)])), .dense(Self.dense(3, 2, &r))],
                             input: .sequence(2))
        let x = r.array(T * 2)
        let whole = Self.run(p, x, T)
        #expect(whole.outputLength == T && whole.output.count == T * 2)
        let ws = Workspace(pipeline: p, batchSize: 1)
        var state = p.makeState(batchSize: 1)
        var stepped: [Float] = []
        for t in 0..<T {
            p.step(Array(x[t * 2..<(t + 1) * 2]), state: &state, workspace: ws)
            stepped += ws.output
        }
        #expect(stepped == whole.output)
        let lastRow: [Float] = Array(whole.output[(T - 1) * 2..<T * 2])
        #expect(whole.lastRows == lastRow)
    }

    @Test func flattenRepeatAndLastTimestepMoveTheValuesTheyShould() throws {
        var r = Random(state: 12)
        let lstm = RecurrentLayer(directions: [Self.lstm(2, 3, &r)])
        let x = r.array(2 * 4 * 2)
        let seq = Self.run(try Pipeline(layers: [.recurrent(lstm)], input: .sequence(2)), x, 4, batch: 2).output
        let flat = Self.run(try Pipeline(layers: [.recurrent(lstm), .flattenSequence], input: .sequence(2, length: 4)), x, 4, batch: 2)
        #expect(flat.output == seq && flat.outputLength == nil)
        let last = Self.run(try Pipeline(layers: [.recurrent(lstm), .lastTimestep], input: .sequence(2)), x, 4, batch: 2).output
        #expect(last == Array(seq[9..<12]) + Array(seq[21..<24]))
        let repeated = Self.run(try Pipeline(layers: [.recurrent(lstm), .lastTimestep, .repeatVector(count: 3)], input: .sequence(2)), x, 4, batch: 2)
        let first: [Float] = Array(seq[9..<12]), second: [Float] = Array(seq[21..<24])
        var expected: [Float] = []
        for row in [first, first, first, second, second, second] { expected += row }
        #expect(repeated.outputLength == 3)
        #expect(repeated.output == expected)
    }

    @Test func permuteMovesEveryValueToItsTransposedPlace() throws {
        // rows of shape (2, 3, 4), value at (a, b, c) = 100a + 10b + c; order [2, 0, 1] gives (4, 2, 3)
        let p = try #require(PermuteLayer(input: [2, 3, 4], order: [2, 0, 1]))
        #expect(p.output == [4, 2, 3])
        var row: [Float] = []
        for a in 0..<2 { for b in 0..<3 { for c in 0..<4 { row.append(Float(100 * a + 10 * b + c)) } } }
        var expected: [Float] = []
        for c in 0..<4 { for a in 0..<2 { for b in 0..<3 { expected.append(Float(100 * a + 10 * b + c)) } } }
        let pipeline = try Pipeline(layers: [.permute(p), .flatten], input: Shape(dims: [2, 3, 4], isSequence: true))
        let y = Self.run(pipeline, row + row.map { -$0 }, 2).output
        #expect(y == expected + expected.map { -$0 })
        let back = try #require(PermuteLayer(input: [4, 2, 3], order: [1, 2, 0]))
        #expect(Self.run(try Pipeline(layers: [.permute(p), .permute(back)], input: Shape(dims: [2, 3, 4], isSequence: true)), row, 1).output == row)
        #expect(PermuteLayer(input: [2, 3], order: [0, 0]) == nil)
        #expect(PermuteLayer(input: [2, 3], order: [1, 0, 2]) == nil)
        #expect(throws: PipelineError(description: "layer 0 (permute) takes rows of shape [2, 3, 4] but the input gives (T, 24)")) {
            try Pipeline(layers: [.permute(p)], input: .sequence(24))
        }
    }

    @Test func aShapeThatDoesNotFitNamesBothLayers() {
        var r = Random(state: 13)
        let layers: [Layer] = [.recurrent(RecurrentLayer(directions: [Self.lstm(2, 3, &r)], returnSequences: false)), .dense(Self.dense(4, 1, &r))]
        #expect(throws: PipelineError(description: "dense_1 (dense) takes rows of 4 values but lstm (lstm) gives (3)")) {
            try Pipeline(layers: layers, names: ["lstm", "dense_1"], input: .sequence(2))
        }
        #expect(throws: PipelineError(description: "lstm (lstm) takes (T, 2) but the input gives (T, 3)")) {
            try Pipeline(layers: Array(layers.prefix(1)), names: ["lstm"], input: .sequence(3))
        }
        #expect(throws: PipelineError(description: "flat (flatten over time) takes a sequence of fixed length (the config's inputs.window) but the input gives (T, 2)")) {
            try Pipeline(layers: [.flattenSequence], names: ["flat"], input: .sequence(2))
        }
    }

    @Test func elementwiseActivationsMatchTheirDefinitions() {
        let refs: [(Activation, (Double) -> Double)] = [
            (.hardSigmoid, { min(max($0 + 3, 0), 6) / 6 }), (.elu, { $0 > 0 ? $0 : Foundation.exp($0) - 1 }),
            (.softsign, { $0 / (1 + abs($0)) }), (.softplus, { Foundation.log1p(Foundation.exp($0)) }),
            (.silu, { $0 / (1 + Foundation.exp(-$0)) }), (.relu, { max($0, 0) }), (.linear, { $0 }),
        ]
        for (a, ref) in refs {
            var worst = 0.0
            var x: Float = -12
            while x <= 12 {
                worst = max(worst, abs(Double(a.apply(Vec(repeating: x))[0]) - ref(Double(x))))
                x += 0.01
            }
            #expect(worst < 2e-6, "\(a): \(worst)")
        }
        #expect(Activation(name: "swish") == .silu && Activation(name: "None") == .linear && Activation(name: "gelu") == nil)
    }
}
