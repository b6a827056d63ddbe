/// A stack of recurrent layers and an optional dense head: the whole model the server runs.
public struct RecurrentNetwork: Sendable {
    public let layers: [RecurrentLayer]
    public let head: [DenseLayer]

    public init(layers: [RecurrentLayer], head: [DenseLayer]) {
        precondition(!layers.isEmpty, "at least one recurrent layer")
        for k in 1..<layers.count {
            precondition(layers[k].inputSize == layers[k - 1].outputWidth, "layer \(k) input size")
        }
        var width = layers[layers.count - 1].outputWidth
        for dense in head {
            precondition(dense.inputSize == width, "head input size")
            width = dense.outputSize
        }
        self.layers = layers
        self.head = head
    }

    public var inputSize: Int { layers[0].inputSize }
    /// Width of the top layer's output per timestep, D · outputSize.
    public var outputWidth: Int { layers[layers.count - 1].outputWidth }
    /// Width of the head's answer, or nil without a head.
    public var headOutputSize: Int? { head.last?.outputSize }
    public var isBidirectional: Bool { layers.contains(where: \.isBidirectional) }
    public var recurrentParameterCount: Int { layers.reduce(0) { $0 + $1.parameterCount } }
    public var headParameterCount: Int { head.reduce(0) { $0 + $1.parameterCount } }
    public var parameterCount: Int { recurrentParameterCount + headParameterCount }

    /// A zero state for `batchSize` windows.
    public func makeState(batchSize: Int) -> RecurrentState {
        RecurrentState(network: self, batchSize: batchSize)
    }
}
