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

        var isRecurrent: Bool { self == .lstm || self == .gru || self == .rnn }
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

    static let keys: [Kind: Set<String>] = {
        let recurrent: Set = ["activation", "recurrent_activation", "return_sequences", "go_backwards", "bidirectional", "merge_mode", "num_layers"]
        return [.lstm: recurrent, .gru: recurrent.union(["reset_after"]), .rnn: recurrent, .dense: ["activation"],
                .activation: ["activation"], .dropout: ["rate"], .lastTimestep: [], .flattenSequence: [], .repeatVector: ["n"]]
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
        if kind == .repeatVector {
            guard let n = json["n"]?.int, n >= 1, n <= 1 << 20 else { throw .invalidConfig("\(at) (repeat_vector) needs 'n', an integer from 1 to 1048576") }
            count = n
        }
        if goBackwards && bidirectional { throw .invalidConfig("\(at): go_backwards with bidirectional is not supported") }
        if kind == .activation && activation == nil { throw .invalidConfig("\(at) (activation) needs 'activation'") }
        if kind.isRecurrent || kind == .dense, weights == nil, name == nil {
            throw .invalidConfig("\(at) (\(type)) needs 'weights', the tensor name prefix (e.g. \"lstm\" for lstm.weight_ih_l0)")
        }
    }

    /// The tensor prefix with its dot ("lstm." for "lstm"; "" for "").
    var prefix: String {
        let p = weights ?? name ?? ""
        return p.isEmpty ? "" : p + "."
    }
}
