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
    /// Per row: Conv2D and pooling over a frame (height, width, channels).
    case conv2d(Conv2DLayer)
    case pool2d(Pool2DLayer)
    /// Per row: the row's values as one vector (Keras Flatten under TimeDistributed, or of a value).
    case flatten
    /// Per row: the same values in another shape.
    case reshape([Int])
    /// Per row: the axes in another order.
    case permute(PermuteLayer)
    /// Per row, on the last axis: BatchNormalization (inference) and LayerNormalization.
    case batchNorm(ScaleShiftLayer)
    case layerNorm(LayerNormLayer)
    /// Per row: an integer id to its vector.
    case embedding(EmbeddingLayer)
    /// Over time.
    case conv1d(Conv1DLayer)
    case pool1d(Pool1D)
    /// The sequence to one row: its maximum or mean.
    case globalPool1d(max: Bool)

    /// The kind, as messages name it.
    public var kindName: String {
        switch self {
        case let .recurrent(r): return r.isBidirectional ? "bidirectional \(r.kind)" : "\(r.kind)"
        case .dense: return "dense"
        case let .activation(a): return "activation \(a)"
        case .lastTimestep: return "last timestep"
        case .flattenSequence: return "flatten over time"
        case .repeatVector: return "repeat vector"
        case .conv2d: return "conv2d"
        case let .pool2d(p): return p.isMax ? "max pooling 2d" : "average pooling 2d"
        case .flatten: return "flatten"
        case .reshape: return "reshape"
        case .permute: return "permute"
        case .batchNorm: return "batch normalization"
        case .layerNorm: return "layer normalization"
        case .embedding: return "embedding"
        case let .conv1d(c): return "conv1d (\(c.padding.rawValue))"
        case let .pool1d(p): return p.isMax ? "max pooling 1d" : "average pooling 1d"
        case let .globalPool1d(isMax): return isMax ? "global max pooling 1d" : "global average pooling 1d"
        }
    }

    public var parameterCount: Int {
        switch self {
        case let .recurrent(r): return r.parameterCount
        case let .dense(d): return d.parameterCount
        case let .conv2d(c): return c.parameterCount
        case let .batchNorm(b): return b.parameterCount
        case let .layerNorm(l): return l.parameterCount
        case let .embedding(e): return e.parameterCount
        case let .conv1d(c): return c.parameterCount
        case .activation, .lastTimestep, .flattenSequence, .repeatVector, .pool2d, .flatten, .reshape, .permute, .pool1d, .globalPool1d: return 0
        }
    }

    /// Whether its output at time t needs no input after t, so a session can step it.
    public var isCausal: Bool {
        switch self {
        case let .recurrent(r): return r.isCausal
        case .dense, .activation, .lastTimestep, .conv2d, .pool2d, .flatten, .reshape, .permute, .batchNorm, .layerNorm, .embedding: return true
        case let .conv1d(c): return c.padding == .causal
        case .flattenSequence, .repeatVector, .pool1d, .globalPool1d: return false
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
            case let .conv2d(c):
                let i = c.input, o = c.output
                guard shape.dims == [i.height, i.width, i.channels] else { throw misfit(k, "frames (\(i.height), \(i.width), \(i.channels))") }
                guard o.height > 0, o.width > 0 else { throw misfit(k, "frames larger than its kernel") }
                shape.dims = [o.height, o.width, o.channels]
            case let .pool2d(p):
                let i = p.input, o = p.output
                guard shape.dims == [i.height, i.width, i.channels] else { throw misfit(k, "frames (\(i.height), \(i.width), \(i.channels))") }
                guard o.height > 0, o.width > 0 else { throw misfit(k, "frames larger than its pool") }
                shape.dims = [o.height, o.width, o.channels]
            case .flatten:
                shape.dims = [shape.width]
            case let .reshape(dims):
                guard dims.reduce(1, *) == shape.width, dims.allSatisfy({ $0 > 0 }) else { throw misfit(k, "\(dims.reduce(1, *)) values per row") }
                shape.dims = dims
            case let .permute(p):
                guard shape.dims == p.input else { throw misfit(k, "rows of shape \(p.input)") }
                shape.dims = p.output
            case let .batchNorm(b):
                guard shape.dims.last == b.channels else { throw misfit(k, "rows of \(b.channels) channels") }
            case let .layerNorm(l):
                guard shape.dims.last == l.channels else { throw misfit(k, "rows of \(l.channels) values") }
            case let .embedding(e):
                guard shape.width == 1 else { throw misfit(k, "one integer id per row") }
                shape.dims = [e.dimension]
            case let .conv1d(c):
                guard shape.isSequence, shape.dims == [c.inputChannels] else { throw misfit(k, "(T, \(c.inputChannels))") }
                if let n = shape.length, c.outputLength(n) <= 0 { throw misfit(k, "at least \((c.kernel - 1) * c.dilation + 1) timesteps") }
                shape = Shape(dims: [c.outputChannels], isSequence: true, length: shape.length.map(c.outputLength))
            case let .pool1d(p):
                guard shape.isSequence else { throw misfit(k, "a sequence") }
                if let n = shape.length, p.outputLength(n) <= 0 { throw misfit(k, "at least \(p.pool) timesteps") }
                shape.length = shape.length.map(p.outputLength)
            case .globalPool1d:
                guard shape.isSequence else { throw misfit(k, "a sequence") }
                shape = Shape(dims: shape.dims, isSequence: false)
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
        histories = layers.compactMap { layer -> Int? in
            guard case let .conv1d(c) = layer, c.historyRows > 0 else { return nil }
            return c.historyRows * c.inputChannels
        }
        oneSample = RecurrentState(layers: recurrentLayers, histories: histories, batchSize: 1)
    }

    /// The zero state of one sample, which every session's state starts as a copy of: the
    /// copies share its slot tables (and its value buffers until their first step), so an
    /// idle session holds little more than its values.
    private let oneSample: RecurrentState

    /// Per causal Conv1D, the state it keeps per sample (rows · channels).
    public let histories: [Int]

    /// Why a window of T timesteps cannot run (a layer over time would be left with no rows),
    /// or nil.
    public func refusal(sequenceLength T: Int) -> String? {
        var length: Int? = T
        for (k, layer) in layers.enumerated() {
            guard let n = length else { return nil }
            switch layer {
            case let .conv1d(c):
                guard c.outputLength(n) > 0 else { return "\(names[k]) (\(layer.kindName)) needs at least \((c.kernel - 1) * c.dilation + 1) timesteps, got \(n)" }
                length = c.outputLength(n)
            case let .pool1d(p):
                guard p.outputLength(n) > 0 else { return "\(names[k]) (\(layer.kindName)) needs at least \(p.pool) timesteps, got \(n)" }
                length = p.outputLength(n)
            case .recurrent(let r) where !r.returnSequences: length = nil
            case .lastTimestep, .flattenSequence, .globalPool1d: length = nil
            case let .repeatVector(count): length = count
            default: break
            }
        }
        return nil
    }

    /// The embedding the rows' ids go through, when the first layer is one.
    public var inputEmbedding: EmbeddingLayer? {
        if case let .embedding(e)? = layers.first { return e }
        return nil
    }

    public var outputShape: Shape { shapes.last ?? inputShape }
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.parameterCount } }
    public var isBidirectional: Bool { recurrentLayers.contains(where: \.isBidirectional) }
    /// Width of the tapped layer's per-timestep output.
    public var sequenceWidth: Int { sequenceTap.map { shapes[$0].width } ?? 0 }

    /// The first layer that needs the whole window, with its name: sessions are refused then.
    public var firstNonCausalLayer: (index: Int, name: String, kind: String)? {
        guard let k = layers.firstIndex(where: { !$0.isCausal }) else { return nil }
        return (k, names[k], layers[k].kindName)
    }

    /// A zero state for `batchSize` windows.
    public func makeState(batchSize: Int) -> RecurrentState {
        batchSize == 1 ? oneSample : RecurrentState(layers: recurrentLayers, histories: histories, batchSize: batchSize)
    }
}
