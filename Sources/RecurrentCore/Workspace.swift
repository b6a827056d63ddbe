/// Scratch memory for running a pipeline on a batch, allocated once and reused for every pass,
/// so the hot path allocates nothing. Not shareable between threads: one per worker or session.
public final class Workspace {
    public let batchSize: Int
    let pipeline: Pipeline
    /// (maxStride) gate pre-activations of one sample.
    let gates: UnsafeMutablePointer<Float>
    /// (maxStride) GRU recurrent pre-activations.
    let gatesHidden: UnsafeMutablePointer<Float>
    /// (maxHidden) un-projected h, or r·h for a reset-before GRU.
    let scratch: UnsafeMutablePointer<Float>
    /// (batchSize, inputSize) the timestep being fed to `step`.
    let stepInput: UnsafeMutablePointer<Float>
    /// Two (batchSize, widest row) buffers that a step's layers ping-pong between.
    let rowA: UnsafeMutablePointer<Float>, rowB: UnsafeMutablePointer<Float>
    /// Where the last `step` left its answer: rowA or rowB, (batchSize, outputWidth).
    var stepOutput: UnsafeMutablePointer<Float>
    /// Where the last `step` left the tapped recurrent layer's output (see `Pipeline.sequenceTap`).
    var stepTap: UnsafeMutablePointer<Float>
    /// Widest row anywhere in the pipeline (a recurrent layer's directions side by side included).
    let widestRow: Int
    /// Sequence buffers for forward passes, grown on demand.
    var sequenceCapacity = 0
    var sequenceA: UnsafeMutablePointer<Float>?, sequenceB: UnsafeMutablePointer<Float>?
    /// The state the last forward pass ended in (its caller may still hold it): the next pass
    /// from zero reuses its buffers once nobody else does.
    var lastState: RecurrentState?

    public init(pipeline: Pipeline, batchSize: Int) {
        precondition(batchSize > 0, "batch size")
        self.pipeline = pipeline
        self.batchSize = batchSize
        let cells = pipeline.recurrentLayers.flatMap(\.directions)
        let maxStride = cells.map(\.stride).max() ?? 16
        let maxHidden = cells.map { max($0.hiddenSize, $0.outputSize) }.max() ?? 1
        let recurrentWidths = pipeline.recurrentLayers.map { $0.directions.count * $0.directions[0].outputSize }
        widestRow = ([pipeline.inputSize] + pipeline.shapes.map(\.width) + recurrentWidths).max()!
        func make(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
            p.initialize(repeating: 0, count: max(n, 1))
            return p
        }
        gates = make(maxStride)
        gatesHidden = make(maxStride)
        scratch = make(maxHidden)
        stepInput = make(batchSize * pipeline.inputSize)
        rowA = make(batchSize * widestRow)
        rowB = make(batchSize * widestRow)
        stepOutput = rowA
        stepTap = rowA
    }

    deinit {
        for p in [gates, gatesHidden, scratch, stepInput, rowA, rowB] { p.deallocate() }
        sequenceA?.deallocate()
        sequenceB?.deallocate()
    }

    /// A zero state for this batch size: in the buffers of the last one this workspace handed
    /// out when nobody holds that any more (no allocation), in new ones otherwise.
    func zeroState() -> RecurrentState {
        guard var state = lastState.take() else { return pipeline.makeState(batchSize: batchSize) }
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

    /// The last `step`'s output of the last recurrent layer, (batchSize, sequenceWidth): the
    /// row that `forward` puts in its `sequence`. Read it before the next step.
    public var tapOutput: [Float] {
        Array(UnsafeBufferPointer(start: stepTap, count: batchSize * pipeline.sequenceWidth))
    }

    /// The last `step`'s answer, (batchSize, outputWidth).
    public var output: [Float] {
        Array(UnsafeBufferPointer(start: stepOutput, count: batchSize * pipeline.outputWidth))
    }
}
