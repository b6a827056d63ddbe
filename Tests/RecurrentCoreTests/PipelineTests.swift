import Foundation
@testable import RecurrentCore
import Testing

/// Properties that need no reference framework.
@Suite struct PipelineTests {
    /// Deterministic uniform values in [-scale, scale).
    struct Random {
        var state: UInt64
        mutating func next(_ scale: Float = 0.5) -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
        mutating func array(_ n: Int, _ scale: Float = 0.5) -> [Float] { (0..<n).map { _ in next(scale) } }
    }

    static func cell(_ kind: CellKind, input: Int, hidden: Int, _ r: inout Random) -> CellWeights {
        let g = kind.gateCount * hidden
        return CellWeights(kind: kind, inputSize: input, hiddenSize: hidden,
                           weightIH: r.array(g * input), weightHH: r.array(g * hidden),
                           biasIH: r.array(g), biasHH: r.array(g))
    }

    /// Recurrent layers handing on their sequences, the last timestep, then dense layers.
    static func net(_ layers: [RecurrentLayer], head: [DenseLayer] = []) -> Pipeline {
        try! Pipeline(layers: layers.map { .recurrent($0) } + [.lastTimestep] + head.map { .dense($0) },
                      input: .sequence(layers[0].inputSize))
    }

    static let kinds: [CellKind] = [.lstm, .gru(resetAfter: true), .gru(resetAfter: false), .rnn(.tanh), .rnn(.relu)]

    @Test(arguments: kinds)
    func aZeroLengthWindowReturnsTheInitialState(kind: CellKind) {
        var r = Random(state: 1)
        let net = Self.net([RecurrentLayer(directions: [Self.cell(kind, input: 3, hidden: 5, &r)])])
        var initial = net.makeState(batchSize: 2)
        initial.setHidden(slot: 0, r.array(10))
        if kind.hasCellState { initial.setCell(slot: 0, r.array(10)) }
        let result = net.forward([], sequenceLength: 0, initialState: initial, workspace: Workspace(pipeline: net, batchSize: 2))
        #expect(result.state == initial)
        #expect(result.sequence.isEmpty && result.output.isEmpty)
    }

    @Test(arguments: kinds)
    func aWorkspaceRunAgainStartsFromZeroAndLeavesHeldResultsAlone(kind: CellKind) {
        // forward reuses the workspace's last state buffers: a result still held must keep its
        // state, and every pass from zero must give the same bits as one on a fresh workspace
        var r = Random(state: 11)
        let net = Self.net([RecurrentLayer(directions: [Self.cell(kind, input: 3, hidden: 6, &r)]),
                                            RecurrentLayer(directions: [Self.cell(kind, input: 6, hidden: 4, &r)])])
        let (x1, x2) = (r.array(2 * 5 * 3, 2), r.array(2 * 5 * 3, 2))
        let fresh1 = net.forward(x1, sequenceLength: 5, workspace: Workspace(pipeline: net, batchSize: 2))
        let fresh2 = net.forward(x2, sequenceLength: 5, workspace: Workspace(pipeline: net, batchSize: 2))
        let ws = Workspace(pipeline: net, batchSize: 2)
        let held = net.forward(x1, sequenceLength: 5, workspace: ws)
        for _ in 0..<3 {
            #expect(net.forward(x2, sequenceLength: 5, workspace: ws).state == fresh2.state)  // dropped at once
        }
        #expect(held.state == fresh1.state && held.output == fresh1.output)
        #expect(net.forward(x1, sequenceLength: 5, workspace: ws).state == fresh1.state)
        #expect(fresh1.state != fresh2.state)
    }

    @Test(arguments: kinds)
    func bidirectionalIsForwardPlusTheReversedBackwardPass(kind: CellKind) {
        var r = Random(state: 7)
        let (B, T, I, H) = (2, 6, 3, 20)
        let fwd = Self.cell(kind, input: I, hidden: H, &r), bwd = Self.cell(kind, input: I, hidden: H, &r)
        let bi = Self.net([RecurrentLayer(directions: [fwd, bwd])])
        let onlyForward = Self.net([RecurrentLayer(directions: [fwd])])
        let onlyBackward = Self.net([RecurrentLayer(directions: [bwd])])
        let x = r.array(B * T * I, 2)
        var reversed = x
        for b in 0..<B { for t in 0..<T { for i in 0..<I { reversed[(b * T + t) * I + i] = x[(b * T + T - 1 - t) * I + i] } } }
        let both = bi.forward(x, sequenceLength: T, returnSequences: true, workspace: Workspace(pipeline: bi, batchSize: B))
        let f = onlyForward.forward(x, sequenceLength: T, returnSequences: true, workspace: Workspace(pipeline: onlyForward, batchSize: B))
        let g = onlyBackward.forward(reversed, sequenceLength: T, returnSequences: true, workspace: Workspace(pipeline: onlyBackward, batchSize: B))
        for b in 0..<B {
            for t in 0..<T {
                let row = Array(both.sequence[(b * T + t) * 2 * H..<(b * T + t + 1) * 2 * H])
                #expect(Array(row[0..<H]) == Array(f.sequence[(b * T + t) * H..<(b * T + t + 1) * H]))
                #expect(Array(row[H...]) == Array(g.sequence[(b * T + T - 1 - t) * H..<(b * T + T - t) * H]))
            }
        }
        #expect(both.state.hidden(slot: 1) == g.state.hidden(slot: 0))
    }

    @Test(arguments: kinds)
    func everySampleOfABatchIsComputedAsIfAlone(kind: CellKind) {
        var r = Random(state: 11)
        let (B, T, I) = (3, 5, 4)
        let net = Self.net(
            [RecurrentLayer(directions: [Self.cell(kind, input: I, hidden: 17, &r)]),
                     RecurrentLayer(directions: [Self.cell(kind, input: 17, hidden: 33, &r)])],
            head: [DenseLayer(inputSize: 33, outputSize: 2, weight: r.array(66), bias: r.array(2), activation: .softmax)])
        let x = r.array(B * T * I, 1.5)
        let batch = net.forward(x, sequenceLength: T, workspace: Workspace(pipeline: net, batchSize: B))
        for b in 0..<B {
            let alone = net.forward(Array(x[b * T * I..<(b + 1) * T * I]), sequenceLength: T, workspace: Workspace(pipeline: net, batchSize: 1))
            #expect(alone.output == Array(batch.output[2 * b..<2 * b + 2]))
        }
        // softmax rows sum to one
        #expect(abs(batch.output[0] + batch.output[1] - 1) < 1e-6)
    }

    @Test func activationsMatchDoublePrecisionLibm() {
        var worst: (exp: Double, sigmoid: Double, tanh: Double) = (0, 0, 0)
        var x: Float = -30
        while x <= 30 {
            let v = Vec(repeating: x)
            let e = Double(exp(v)[0]), ref = Foundation.exp(Double(x))
            worst.exp = max(worst.exp, abs(e - ref) / ref)
            worst.sigmoid = max(worst.sigmoid, abs(Double(sigmoid(v)[0]) - 1 / (1 + Foundation.exp(-Double(x)))))
            worst.tanh = max(worst.tanh, abs(Double(tanh(v)[0]) - Foundation.tanh(Double(x))))
            x += 0.001953125
        }
        #expect(worst.exp < 3e-7)        // relative: about 2 ulp
        #expect(worst.sigmoid < 1.5e-7)  // absolute
        #expect(worst.tanh < 1.5e-7)
        // saturation: finite and exact at the ends
        #expect(sigmoid(Vec(repeating: -1000))[0] < 1e-37 && sigmoid(Vec(repeating: 1000))[0] == 1)
        #expect(tanh(Vec(repeating: -1000))[0] == -1 && tanh(Vec(repeating: 1000))[0] == 1)
        #expect(tanh(Vec(repeating: -0.0))[0].sign == .minus)
    }

    @Test func aProjectedLSTMHasOutputsOfTheProjectionWidth() {
        var r = Random(state: 3)
        let cell = CellWeights(kind: .lstm, inputSize: 2, hiddenSize: 8, weightIH: r.array(64), weightHH: r.array(32 * 3),
                               biasIH: nil, biasHH: nil, weightHR: r.array(24))
        #expect(cell.outputSize == 3 && cell.parameterCount == 64 + 96 + 24)
        let net = Self.net([RecurrentLayer(directions: [cell])])
        let result = net.forward(r.array(8), sequenceLength: 4, workspace: Workspace(pipeline: net, batchSize: 1))
        #expect(result.output.count == 3 && result.state.c.count == 8)
    }
}
