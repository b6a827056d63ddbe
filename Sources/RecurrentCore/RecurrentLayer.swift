/// One recurrent layer: a forward direction and, when bidirectional, a reverse one.
public struct RecurrentLayer: Sendable {
    /// How a bidirectional layer joins its directions' outputs (Keras `merge_mode`; PyTorch
    /// concatenates, forward first).
    public enum Merge: String, Sendable, CaseIterable { case concat, sum, mul, ave }

    public let directions: [CellWeights]
    /// Every timestep's output goes on; otherwise only the final one (Keras
    /// `return_sequences`; a bidirectional layer then joins both directions' final states).
    public let returnSequences: Bool
    /// Keras `go_backwards`: reads the window from its end, and its sequence comes out in that order.
    public let goBackwards: Bool
    public let merge: Merge

    public init(directions: [CellWeights], returnSequences: Bool = true, goBackwards: Bool = false, merge: Merge = .concat) {
        precondition(directions.count == 1 || directions.count == 2, "one or two directions")
        if directions.count == 2 {
            precondition(directions[0].inputSize == directions[1].inputSize
                && directions[0].outputSize == directions[1].outputSize
                && directions[0].kind == directions[1].kind, "directions must agree")
        }
        precondition(!(goBackwards && directions.count == 2), "go_backwards on a bidirectional layer")
        self.directions = directions
        self.returnSequences = returnSequences
        self.goBackwards = goBackwards
        self.merge = merge
    }

    public var isBidirectional: Bool { directions.count == 2 }
    public var kind: CellKind { directions[0].kind }
    public var inputSize: Int { directions[0].inputSize }
    public var hiddenSize: Int { directions[0].hiddenSize }
    public var projectionSize: Int { directions[0].projectionSize }
    /// Width of one timestep's output: D · outputSize concatenated, else one direction's.
    public var outputWidth: Int { merge == .concat ? directions.count * directions[0].outputSize : directions[0].outputSize }
    public var parameterCount: Int { directions.reduce(0) { $0 + $1.parameterCount } }
    /// Whether it can be stepped one timestep at a time.
    public var isCausal: Bool { !isBidirectional && !goBackwards }
}
