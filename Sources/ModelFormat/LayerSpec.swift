import JSON
import RecurrentCore

/// One entry of config.json's `layers`: what a layer is and where its weights are. The tensors
/// keep PyTorch's names under the prefix `weights`: `<weights>.weight_ih_l0` (or `.weight_ih`
/// for a `*Cell`), `<weights>.weight`.
public struct LayerSpec: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case lstm, gru, rnn, dense, activation, dropout
        case lastTimestep = "last_timestep"
        case flattenSequence = "flatten_sequence"
        case repeatVector = "repeat_vector"
        case conv2d
        case maxPooling2d = "max_pooling2d", averagePooling2d = "average_pooling2d"
        case flatten, reshape, permute
        case batchNormalization = "batch_normalization", layerNormalization = "layer_normalization"
        case embedding, conv1d
        case maxPooling1d = "max_pooling1d", averagePooling1d = "average_pooling1d"
        case globalMaxPooling1d = "global_max_pooling1d", globalAveragePooling1d = "global_average_pooling1d"

        var isRecurrent: Bool { self == .lstm || self == .gru || self == .rnn }
        var hasWeights: Bool { [.dense, .conv2d, .batchNormalization, .layerNormalization, .embedding, .conv1d].contains(self) }
    }

    public var kind: Kind
    /// The user's name for it (Keras layer name, PyTorch attribute), for messages.
    public var name: String?
    /// Tensor name prefix; defaults to `name`.
    public var weights: String?
    public var activation: Activation?
    public var recurrentActivation: Activation?
    /// Recurrent: Keras `return_sequences` (default true: PyTorch modules hand on the sequence).
    public var returnSequences = true
    public var goBackwards = false
    public var bidirectional = false
    public var mergeMode: RecurrentLayer.Merge = .concat
    /// PyTorch `num_layers`: stacked layers `_l0`, `_l1`, … under one prefix.
    public var numLayers = 1
    /// GRU: PyTorch's form (true, the Keras default) or Keras `reset_after=False`.
    public var resetAfter = true
    /// repeat_vector: how many timesteps.
    public var count = 0
    /// Convolution and pooling: strides (default: 1, or the pool size), padding, dilation,
    /// pool size; reshape: the shape of a row; normalization: epsilon.
    public var strides: [Int]?
    public var padding: Padding = .valid
    public var dilation = 1
    public var poolSize: [Int] = []
    public var targetShape: [Int] = []
    /// permute: Keras `dims`, 1-based over a row's axes (output axis k is input axis dims[k]).
    public var dims: [Int] = []
    public var epsilon: Float?

    static let keys: [Kind: Set<String>] = {
        let recurrent: Set = ["activation", "recurrent_activation", "return_sequences", "go_backwards", "bidirectional", "merge_mode", "num_layers"]
        let pool: Set = ["pool_size", "strides", "padding"]
        return [.lstm: recurrent, .gru: recurrent.union(["reset_after"]), .rnn: recurrent, .dense: ["activation"],
                .activation: ["activation"], .dropout: ["rate"], .lastTimestep: [], .flattenSequence: [], .repeatVector: ["n"],
                .conv2d: ["activation", "strides", "padding"], .maxPooling2d: pool, .averagePooling2d: pool, .flatten: [],
                .reshape: ["target_shape"], .permute: ["dims"], .batchNormalization: ["epsilon"], .layerNormalization: ["epsilon"], .embedding: [],
                .conv1d: ["activation", "strides", "padding", "dilation_rate"], .maxPooling1d: pool, .averagePooling1d: pool,
                .globalMaxPooling1d: [], .globalAveragePooling1d: []]
    }()

    init(json: JSONValue, index: Int) throws(ModelError) {
        let at = "layers[\(index)]"
        guard json.kind == .object else { throw .invalidConfig("\(at) must be an object") }
        guard let type = json["type"]?.string else { throw .invalidConfig("\(at) needs a string 'type'") }
        guard let kind = Kind(rawValue: type) else {
            throw .invalidConfig("\(at): type '\(type)' is not one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.kind = kind
        let allowed = Self.keys[kind]!.union(["type", "name", "weights"])
        for key in json.keys where !allowed.contains(key) {
            throw .invalidConfig("\(at) (\(type)): unknown key '\(key)' (known: \(allowed.sorted().joined(separator: ", ")))")
        }
        func text(_ key: String) throws(ModelError) -> String? {
            guard let v = json[key] else { return nil }
            guard let s = v.string else { throw .invalidConfig("\(at).\(key) must be a string") }
            return s
        }
        func flag(_ key: String) throws(ModelError) -> Bool? {
            guard let v = json[key] else { return nil }
            guard let b = v.bool else { throw .invalidConfig("\(at).\(key) must be a boolean") }
            return b
        }
        func activationNamed(_ key: String) throws(ModelError) -> Activation? {
            guard let s = try text(key) else { return nil }
            guard let a = Activation(name: s) else {
                throw .invalidConfig("\(at).\(key) '\(s)' is not one of \(Activation.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if kind.isRecurrent, !a.isElementwise { throw .invalidConfig("\(at).\(key): a recurrent cell's activation must be elementwise, not \(a)") }
            return a
        }
        name = try text("name")
        weights = try text("weights")
        activation = try activationNamed("activation")
        recurrentActivation = try activationNamed("recurrent_activation")
        returnSequences = try flag("return_sequences") ?? true
        goBackwards = try flag("go_backwards") ?? false
        bidirectional = try flag("bidirectional") ?? false
        resetAfter = try flag("reset_after") ?? true
        if let m = try text("merge_mode") {
            guard let merge = RecurrentLayer.Merge(rawValue: m) else {
                throw .invalidConfig("\(at).merge_mode '\(m)' is not one of concat, sum, mul, ave")
            }
            mergeMode = merge
        }
        if let v = json["num_layers"] {
            guard let n = v.int, n >= 1, n <= 64 else { throw .invalidConfig("\(at).num_layers must be an integer from 1 to 64") }
            numLayers = n
        }
        func ints(_ key: String, count: Int...) throws(ModelError) -> [Int]? {
            guard let v = json[key] else { return nil }
            let values = v.kind == .array ? v.elements.map(\.int) : [v.int]
            guard count.contains(values.count), values.allSatisfy({ ($0 ?? 0) >= 1 && $0! <= 1 << 16 }) else {
                throw .invalidConfig("\(at).\(key) must be \(count.map(String.init).joined(separator: " or ")) positive integer(s)")
            }
            return values.map { $0! }
        }
        let spatial = kind == .conv2d || kind == .maxPooling2d || kind == .averagePooling2d
        strides = try ints("strides", count: spatial ? 2 : 1)
        poolSize = try ints("pool_size", count: spatial ? 2 : 1) ?? (spatial ? [2, 2] : [2])
        dilation = try ints("dilation_rate", count: 1)?[0] ?? 1
        if let p = try text("padding") {
            guard let value = Padding(rawValue: p), value != .causal || kind == .conv1d else {
                throw .invalidConfig("\(at).padding '\(p)' is not one of valid, same\(kind == .conv1d ? ", causal" : "")")
            }
            padding = value
        }
        if padding == .causal, strides.map({ $0 != [1] }) ?? false { throw .invalidConfig("\(at): a causal conv1d has strides 1") }
        if kind == .reshape {
            guard let shape = json["target_shape"], shape.kind == .array, shape.count > 0,
                  shape.elements.allSatisfy({ ($0.int ?? 0) > 0 }) else { throw .invalidConfig("\(at) (reshape) needs 'target_shape', an array of positive integers") }
            targetShape = shape.elements.map { $0.int! }
        }
        if kind == .permute {
            guard let d = json["dims"], d.kind == .array, d.count > 0,
                  d.elements.compactMap(\.int).sorted() == Array(1...d.count) else {
                throw .invalidConfig("\(at) (permute) needs 'dims', the row's axes 1...n in their new order, e.g. [2, 3, 1]")
            }
            dims = d.elements.map { $0.int! }
        }
        if let v = json["epsilon"] {
            guard let e = v.double, e > 0, e < 1 else { throw .invalidConfig("\(at).epsilon must be a number in (0, 1)") }
            epsilon = Float(e)
        }
        if kind == .repeatVector {
            guard let n = json["n"]?.int, n >= 1, n <= 1 << 20 else { throw .invalidConfig("\(at) (repeat_vector) needs 'n', an integer from 1 to 1048576") }
            count = n
        }
        if goBackwards && bidirectional { throw .invalidConfig("\(at): go_backwards with bidirectional is not supported") }
        if kind == .activation && activation == nil { throw .invalidConfig("\(at) (activation) needs 'activation'") }
        if kind.isRecurrent || kind.hasWeights, weights == nil, name == nil {
            throw .invalidConfig("\(at) (\(type)) needs 'weights', the tensor name prefix (e.g. \"lstm\" for lstm.weight_ih_l0)")
        }
    }

    /// The tensor prefix with its dot ("lstm." for "lstm"; "" for "").
    var prefix: String {
        let p = weights ?? name ?? ""
        return p.isEmpty ? "" : p + "."
    }
}
