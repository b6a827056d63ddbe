import RecurrentCore

/// One sample's state as clients send and receive it: per layer·direction slot its h and c,
/// and per causal Conv1D its history (the native API's JSON form is `StateInput+JSON`).
public struct StateInput: Sendable, Equatable {
    /// Per layer·direction slot, in the state's order.
    public var h: [[Float]]
    /// Per slot; empty for a slot without a cell state.
    public var c: [[Float]]
    /// Per causal Conv1D, its rows flattened (oldest first).
    public var history: [[Float]]

    /// This state repeated for `batchSize` samples.
    public func state(for network: Pipeline, batchSize: Int) -> RecurrentState {
        var state = network.makeState(batchSize: batchSize)
        func repeated(_ v: [Float]) -> [Float] { Array((0..<batchSize).map { _ in v }.joined()) }
        for s in 0..<h.count {
            state.setHidden(slot: s, repeated(h[s]))
            if s < c.count, !c[s].isEmpty { state.setCell(slot: s, repeated(c[s])) }
        }
        for k in 0..<history.count { state.setHistory(slot: k, repeated(history[k])) }
        return state
    }

    /// Sample `b` of a batched state.
    public init(_ state: RecurrentState, sample b: Int) {
        func sample(_ all: [Float], _ w: Int) -> [Float] { Array(all[b * w..<(b + 1) * w]) }
        h = (0..<state.slotCount).map { sample(state.hidden(slot: $0), state.hiddenWidth(slot: $0)) }
        c = (0..<state.slotCount).map { s in state.cellWidth(slot: s) == 0 ? [] : sample(state.cell(slot: s), state.cellWidth(slot: s)) }
        history = (0..<state.historyCount).map { sample(state.history(slot: $0), state.historyWidth(slot: $0)) }
    }

    public init(h: [[Float]], c: [[Float]], history: [[Float]]) {
        self.h = h
        self.c = c
        self.history = history
    }
}
