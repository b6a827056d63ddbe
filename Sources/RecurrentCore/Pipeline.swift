/// One step of a pipeline.
public enum Layer: Sendable {
    case recurrent(RecurrentLayer)
    /// On the last axis of every row (Keras Dense and TimeDistributed(Dense), PyTorch Linear).
    case dense(DenseLayer)
    /// Elementwise, or softmax over the last axis.
    case activation(Activation)
    /// The sequence's last row (PyTorch's `output[:, -1, :]`).
    case lastTimestep
    /// A sequence of fixed length L to one value of L · width (PyTorch's flatten of (B, T, F)).
    case flattenSequence
    /// One value repeated as a sequence of `count` rows (Keras RepeatVector).
    case repeatVector(count: Int)

    /// The kind, as messages name it.
    public var kindName: String {
        switch self {
        case let .recurrent(r): return r.isBidirectional ? "bidirectional \(r.kind)" : "\(r.kind)"
        case .dense: return "dense"
        case let .activation(a): return "activation \(a)"
        case .lastTimestep: return "last timestep"
        case .flattenSequence: return "flatten over time"
        case .repeatVector: return "repeat vector"
        }
    }

    public var parameterCount: Int {
        switch self {
        case let .recurrent(r): return r.parameterCount
        case let .dense(d): return d.parameterCount
        case .activation, .lastTimestep, .flattenSequence, .repeatVector: return 0
        }
    }

    /// Whether its output at time t needs no input after t, so a session can step it.
    public var isCausal: Bool {
        switch self {
        case let .recurrent(r): return r.isCausal
        case .dense, .activation, .lastTimestep: return true
        case .flattenSequence, .repeatVector: return false
        }
    }
}

/// A shape that does not fit, or a layer where it cannot be: thrown when a pipeline is built.
public struct PipelineError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
}

/// A model's layers in order, each shape checked against the next at construction.
public struct Pipeline: Sendable {
    public let layers: [Layer]
    /// The user's name for each layer (the Keras layer or PyTorch module), for messages.
    public let names: [String]
    public let inputShape: Shape
    /// The shape after each layer.
    public let shapes: [Shape]
    /// The recurrent layers in order: the state's slots follow them.
    public let recurrentLayers: [RecurrentLayer]
    /// Index in `layers` of the last recurrent layer: `return_sequences` answers with its
    /// every-timestep output.
    public let sequenceTap: Int?
    /// Values per input row.
    public let inputSize: Int
    /// Values per sample in the answer (per row when the pipeline ends in a sequence).
    public let outputWidth: Int
    /// Whether sessions may step it (stored: `step` checks it every time).
    public let isStreamable: Bool

    public init(layers: [Layer], names: [String]? = nil, input: Shape) throws(PipelineError) {
        let names = names ?? layers.enumerated().map { "layer \($0.offset)" }
        precondition(names.count == layers.count, "one name per layer")
        guard input.isSequence else { throw PipelineError(description: "the input must be a sequence of rows") }
        var shape = input
        var shapes: [Shape] = []
        func label(_ k: Int) -> String { "\(names[k]) (\(layers[k].kindName))" }
        func misfit(_ k: Int, _ wants: String) -> PipelineError {
            let from = k == 0 ? "the input gives" : "\(label(k - 1)) gives"
            return PipelineError(description: "\(label(k)) takes \(wants) but \(from) \(shape)")
        }
        for (k, layer) in layers.enumerated() {
            switch layer {
            case let .recurrent(r):
                guard shape.isSequence, shape.dims == [r.inputSize] else { throw misfit(k, "(T, \(r.inputSize))") }
                shape = r.returnSequences ? Shape(dims: [r.outputWidth], isSequence: true, length: shape.length) : .vector(r.outputWidth)
            case let .dense(d):
                guard shape.dims.last == d.inputSize else { throw misfit(k, "rows of \(d.inputSize) values") }
                shape.dims[shape.dims.count - 1] = d.outputSize
            case .activation:
                break
            case .lastTimestep:
                guard shape.isSequence else { throw misfit(k, "a sequence") }
                shape = Shape(dims: shape.dims, isSequence: false)
            case .flattenSequence:
                guard shape.isSequence, let length = shape.length else { throw misfit(k, "a sequence of fixed length (the config's inputs.window)") }
                shape = .vector(length * shape.width)
            case let .repeatVector(count):
                guard !shape.isSequence, count > 0 else { throw misfit(k, "one value, not a sequence") }
                shape = Shape(dims: shape.dims, isSequence: true, length: count)
            }
            shapes.append(shape)
        }
        self.layers = layers
        self.names = names
        inputShape = input
        self.shapes = shapes
        recurrentLayers = layers.compactMap { if case let .recurrent(r) = $0 { return r } else { return nil } }
        sequenceTap = layers.lastIndex { if case .recurrent = $0 { return true } else { return false } }
        inputSize = input.width
        outputWidth = (shapes.last ?? input).width
        isStreamable = layers.allSatisfy(\.isCausal)
    }

    public var outputShape: Shape { shapes.last ?? inputShape }
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.parameterCount } }
    public var isBidirectional: Bool { recurrentLayers.contains(where: \.isBidirectional) }
    /// Width of the tapped layer's per-timestep output.
    public var sequenceWidth: Int { sequenceTap.map { shapes[$0].isSequence ? shapes[$0].width : layerWidth($0) } ?? 0 }

    private func layerWidth(_ k: Int) -> Int {
        if case let .recurrent(r) = layers[k] { return r.outputWidth }
        return shapes[k].width
    }

    /// The first layer that needs the whole window, with its name: sessions are refused then.
    public var firstNonCausalLayer: (index: Int, name: String, kind: String)? {
        guard let k = layers.firstIndex(where: { !$0.isCausal }) else { return nil }
        return (k, names[k], layers[k].kindName)
    }

    /// A zero state for `batchSize` windows.
    public func makeState(batchSize: Int) -> RecurrentState {
        RecurrentState(layers: recurrentLayers, batchSize: batchSize)
    }
}
