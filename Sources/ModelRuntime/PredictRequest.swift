import RecurrentCore

/// A validated predict call: windows in the model's raw units, with the options (return every
/// timestep's answer, return the state, start from a given state). Each protocol reads its own
/// wire format into it.
public struct PredictRequest: Sendable {
    /// (batchSize, sequenceLength, inputSize) in the model's raw units.
    public var inputs: [Float]
    public var batchSize: Int
    public var sequenceLength: Int
    /// True for `windows` (answer is a list), false for `window`.
    public var isBatch: Bool
    public var returnSequences = false
    public var returnState = false
    /// Applied to every window of the batch.
    public var initialState: StateInput?

    public init(inputs: [Float], batchSize: Int, sequenceLength: Int, isBatch: Bool) {
        self.inputs = inputs
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.isBatch = isBatch
    }
}
