/// Scratch memory for running a network on a batch, allocated once and reused for every step,
/// so the hot path allocates nothing. Not shareable between threads: one per worker or session.
public final class Workspace {
    public let batchSize: Int
    let network: RecurrentNetwork
    /// (maxStride) gate pre-activations of one sample.
    let gates: UnsafeMutablePointer<Float>
    /// (maxStride) GRU recurrent pre-activations.
    let gatesHidden: UnsafeMutablePointer<Float>
    /// (maxHidden) un-projected h, or r·h for a reset-before GRU.
    let scratch: UnsafeMutablePointer<Float>
    /// (batchSize, inputSize) the timestep being fed.
    let stepInput: UnsafeMutablePointer<Float>
    /// Per layer, (batchSize, outputWidth): that layer's output at the latest step.
    let layerOutputs: [UnsafeMutablePointer<Float>]
    /// Two (maxHeadStride) buffers the head ping-pongs between.
    let headA: UnsafeMutablePointer<Float>, headB: UnsafeMutablePointer<Float>
    /// (batchSize, headOutputSize) the head's answer after `applyHead`.
    let headOutput: UnsafeMutablePointer<Float>
    /// Layer-wise sequence buffers for bidirectional forward passes, grown on demand.
    var sequenceCapacity = 0
    var sequenceA: UnsafeMutablePointer<Float>?, sequenceB: UnsafeMutablePointer<Float>?
    /// The state the last forward pass ended in (its caller may still hold it): the next pass
    /// from zero reuses its buffers once nobody else does.
    var lastState: RecurrentState?


    public init(network: RecurrentNetwork, batchSize: Int) {
        precondition(batchSize > 0, "batch size")
        self.network = network
        self.batchSize = batchSize
        let cells = network.layers.flatMap(\.directions)
        let maxStride = cells.map(\.stride).max() ?? 16
        let maxHidden = cells.map { max($0.hiddenSize, $0.outputSize) }.max() ?? 1
        let maxHead = network.head.map(\.stride).max() ?? 16
        func make(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            p.initialize(repeating: 0, count: max(n, 1))
            return p
        }
        gates = make(maxStride)
        gatesHidden = make(maxStride)
        scratch = make(maxHidden)
        stepInput = make(batchSize * network.inputSize)
        layerOutputs = network.layers.map { make(batchSize * $0.outputWidth) }
        headA = make(maxHead)
        headB = make(maxHead)
        headOutput = make(batchSize * (network.headOutputSize ?? 0))
    }

    deinit {
        for p in [gates, gatesHidden, scratch, stepInput, headA, headB, headOutput] + layerOutputs {
            p.deallocate()
        }
        sequenceA?.deallocate()
        sequenceB?.deallocate()
    }

    /// A zero state for this batch size: in the buffers of the last one this workspace handed
    /// out when nobody holds that any more (no allocation), in new ones otherwise.
    func zeroState() -> RecurrentState {
        guard var state = lastState.take() else { return network.makeState(batchSize: batchSize) }
        state.zero()
        return state
    }

    /// Makes both sequence buffers hold at least `count` floats.
    func reserveSequence(_ count: Int) {
        guard count > sequenceCapacity else { return }
        sequenceA?.deallocate()
        sequenceB?.deallocate()
        sequenceA = .allocate(capacity: count)
        sequenceB = .allocate(capacity: count)
        sequenceCapacity = count
    }

    /// The top layer's output at the latest step, (batchSize, outputWidth).
    public var output: [Float] {
        Array(UnsafeBufferPointer(start: layerOutputs[layerOutputs.count - 1],
                                  count: batchSize * network.outputWidth))
    }

    /// The head's answer after `applyHead`, (batchSize, headOutputSize).
    public var head: [Float] {
        Array(UnsafeBufferPointer(start: headOutput, count: batchSize * (network.headOutputSize ?? 0)))
    }
}
