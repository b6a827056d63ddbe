/// One stacked layer: a forward direction and, when bidirectional, a reverse one.
/// Its output at each timestep is the directions' h concatenated (forward first).
public struct RecurrentLayer: Sendable {
    public let directions: [CellWeights]

    public init(directions: [CellWeights]) {
        precondition(directions.count == 1 || directions.count == 2, "one or two directions")
        if directions.count == 2 {
            precondition(directions[0].inputSize == directions[1].inputSize
                && directions[0].outputSize == directions[1].outputSize
                && directions[0].kind == directions[1].kind, "directions must agree")
        }
        self.directions = directions
    }

    public var isBidirectional: Bool { directions.count == 2 }
    public var kind: CellKind { directions[0].kind }
    public var inputSize: Int { directions[0].inputSize }
    public var hiddenSize: Int { directions[0].hiddenSize }
    public var projectionSize: Int { directions[0].projectionSize }
    /// D · outputSize.
    public var outputWidth: Int { directions.count * directions[0].outputSize }
    public var parameterCount: Int { directions.reduce(0) { $0 + $1.parameterCount } }
}
