import JSON
import RecurrentCore

/// What the weights cannot say: names, units, normalization, activations. Read from
/// `config.json` beside the weights and/or the safetensors `__metadata__` (the file wins).
/// The JSON Schema is `config/model-config.schema.json`.
public struct ModelConfig: Sendable, Equatable {
    public struct Feature: Sendable, Equatable {
        public var name: String
        public var unit: String?
        /// A feature the server computes from another field of the row, e.g. the day of year
        /// from `date`; users never send it.
        public var derived: Derivation?
    }

    public enum Derivation: String, Sendable, Equatable, CaseIterable {
        /// sin(2π · (day of year − 1) / 365.25) of the row's ISO 8601 `date`.
        case dayOfYearSin = "day_of_year_sin"
        /// cos(2π · (day of year − 1) / 365.25) of the row's ISO 8601 `date`.
        case dayOfYearCos = "day_of_year_cos"
    }

    public struct Output: Sendable, Equatable {
        public var name: String
        public var unit: String?
        /// The network forecasts this output as a change from the window's last value of the
        /// input feature named here (an observed one); the server adds that value back.
        public var residualOf: String?

        public init(name: String, unit: String? = nil, residualOf: String? = nil) {
            self.name = name
            self.unit = unit
            self.residualOf = residualOf
        }
    }

    /// An additive prediction interval: the forecast plus per-output residual quantiles.
    public struct Interval: Sendable, Equatable {
        public var level: Double
        public var lower: [Float]
        public var upper: [Float]
    }

    public var name: String?
    public var description: String?
    /// "lstm", "gru", "rnn_tanh" or "rnn_relu"; inferred from the gate count when absent.
    public var cell: String?
    /// RNN nonlinearity when `cell` is absent: "tanh" (default) or "relu".
    public var nonlinearity: String?
    /// GRU form: true (PyTorch, default) or false (Keras reset_after=False).
    public var gruResetAfter: Bool = true
    /// Tensor name prefix of the head's Linear layers ("head" → `head.weight` or `head.0.weight`).
    public var headPrefix: String = "head"
    /// One per head layer; "linear" when absent.
    public var headActivations: [Activation] = []
    /// Expected window length, or nil for any length.
    public var windowLength: Int?
    /// The shape of one row when it is not a plain vector (a frame: height, width, channels).
    public var rowShape: [Int]?
    public var features: [Feature] = []
    public var outputs: [Output] = []
    /// x' = (x - mean) / std per input feature before the network.
    public var inputMean: [Float]?
    public var inputStd: [Float]?
    /// y = y' · std + mean per output after the head.
    public var outputMean: [Float]?
    public var outputStd: [Float]?
    public var interval: Interval?
    /// A classifier's class names, one per output, in order.
    public var labels: [String]?
    /// Free-form provenance (framework, exporter, training data).
    public var source: [String: String] = [:]
    /// The layers in order, when the weights alone cannot say (see `LayerSpec`). Without it
    /// the model is its recurrent layers (`*weight_ih_l{k}`), the last timestep, then the
    /// Linear layers under `head_prefix`.
    public var layers: [LayerSpec]?

    public init() {}
}

extension ModelConfig {
    /// Overlays the keys present in `json` onto `self`.
    public mutating func merge(_ json: JSONValue) throws(ModelError) {
        guard json.kind == .object else { throw .invalidConfig("expected an object, got \(json.kindName)") }
        let known: Set = ["name", "description", "cell", "nonlinearity", "gru_reset_after", "head_prefix",
                          "head_activations", "inputs", "outputs", "normalization", "interval", "source", "layers", "labels", "$schema"]
        for key in json.keys where !known.contains(key) {
            throw .invalidConfig("unknown key '\(key)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        if let v = json["name"] { name = try string(v, "name") }
        if let v = json["description"] { description = try string(v, "description") }
        if let v = json["cell"] {
            let s = try string(v, "cell")
            guard ["lstm", "gru", "rnn_tanh", "rnn_relu"].contains(s) else {
                throw .invalidConfig("cell '\(s)' is not one of lstm, gru, rnn_tanh, rnn_relu")
            }
            cell = s
        }
        if let v = json["nonlinearity"] {
            let s = try string(v, "nonlinearity")
            guard s == "tanh" || s == "relu" else { throw .invalidConfig("nonlinearity '\(s)' is not tanh or relu") }
            nonlinearity = s
        }
        if let v = json["gru_reset_after"] {
            guard let b = v.bool else { throw .invalidConfig("gru_reset_after must be a boolean") }
            gruResetAfter = b
        }
        if let v = json["head_prefix"] { headPrefix = try string(v, "head_prefix") }
        if let v = json["head_activations"] {
            guard v.kind == .array else { throw .invalidConfig("head_activations must be an array of strings") }
            headActivations = try v.elements.map { (e) throws(ModelError) in
                let s = try string(e, "head_activations[]")
                guard let a = Activation(rawValue: s == "none" ? "linear" : s) else {
                    throw .invalidConfig("head activation '\(s)' is not one of linear, relu, sigmoid, tanh, softmax")
                }
                return a
            }
        }
        if let v = json["layers"] {
            guard v.kind == .array, v.count > 0 else { throw .invalidConfig("layers must be a non-empty array of objects") }
            var specs: [LayerSpec] = []
            for (k, e) in v.elements.enumerated() { specs.append(try LayerSpec(json: e, index: k)) }
            layers = specs
        }
        if let v = json["inputs"] { try mergeInputs(v) }
        if let v = json["outputs"] {
            guard v.kind == .array else { throw .invalidConfig("outputs must be an array") }
            outputs = try v.elements.map { (e) throws(ModelError) in
                guard let n = e["name"]?.string else { throw .invalidConfig("every output needs a string 'name'") }
                var residualOf: String?
                if let r = e["residual_of"] { residualOf = try string(r, "outputs[].residual_of") }
                return Output(name: n, unit: e["unit"]?.string, residualOf: residualOf)
            }
        }
        if let v = json["normalization"] {
            guard v.kind == .object else { throw .invalidConfig("normalization must be an object") }
            inputMean = try floats(v["input_mean"], "normalization.input_mean") ?? inputMean
            inputStd = try floats(v["input_std"], "normalization.input_std") ?? inputStd
            outputMean = try floats(v["output_mean"], "normalization.output_mean") ?? outputMean
            outputStd = try floats(v["output_std"], "normalization.output_std") ?? outputStd
            for (key, values) in [("input_std", inputStd), ("output_std", outputStd)] {
                if let values, values.contains(where: { $0 == 0 }) {
                    throw .invalidConfig("normalization.\(key) has a zero; the scale must be non-zero")
                }
            }
        }
        if let v = json["interval"] {
            guard let level = v["level"]?.double, level > 0, level < 1,
                  let lower = try floats(v["lower"], "interval.lower"),
                  let upper = try floats(v["upper"], "interval.upper")
            else { throw .invalidConfig("interval needs 'level' in (0, 1) and 'lower', 'upper' arrays") }
            interval = Interval(level: level, lower: lower, upper: upper)
        }
        if let v = json["labels"] {
            guard v.kind == .array, v.count > 0, v.elements.allSatisfy({ $0.string != nil }) else {
                throw .invalidConfig("labels must be a non-empty array of strings (one class name per output)")
            }
            labels = v.elements.map { $0.string! }
        }
        if let v = json["source"] {
            guard v.kind == .object else { throw .invalidConfig("source must be an object") }
            for (key, value) in v.members {
                source[key] = value.string ?? value.double.map { "\($0)" } ?? value.bool.map { "\($0)" } ?? value.kindName
            }
        }
    }

    private mutating func mergeInputs(_ v: JSONValue) throws(ModelError) {
        guard v.kind == .object else { throw .invalidConfig("inputs must be an object") }
        if let w = v["window"] {
            guard let n = w.int, n > 0 else { throw .invalidConfig("inputs.window must be a positive integer") }
            windowLength = n
        }
        if let shape = v["shape"] {
            guard shape.kind == .array, shape.count > 0, shape.count <= 4, shape.elements.allSatisfy({ ($0.int ?? 0) > 0 && $0.int! <= 1 << 16 }) else {
                throw .invalidConfig("inputs.shape must be an array of one to four positive integers (a row's shape)")
            }
            rowShape = shape.elements.map { $0.int! }
        }
        if let f = v["features"] {
            guard f.kind == .array else { throw .invalidConfig("inputs.features must be an array") }
            features = try f.elements.map { (e) throws(ModelError) in
                guard let n = e["name"]?.string else { throw .invalidConfig("every input feature needs a string 'name'") }
                var derived: Derivation?
                if let d = e["derived"] {
                    guard let s = d.string, let k = Derivation(rawValue: s) else {
                        throw .invalidConfig("feature '\(n)': derived must be one of \(Derivation.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    derived = k
                }
                return Feature(name: n, unit: e["unit"]?.string, derived: derived)
            }
        }
    }

    private func string(_ v: JSONValue, _ key: String) throws(ModelError) -> String {
        guard let s = v.string else { throw .invalidConfig("\(key) must be a string, got \(v.kindName)") }
        return s
    }

    private func floats(_ v: JSONValue?, _ key: String) throws(ModelError) -> [Float]? {
        guard let v else { return nil }
        var out: [Float] = []
        guard v.kind == .array, v.appendNumbers(to: &out) == nil, out.allSatisfy(\.isFinite) else {
            throw .invalidConfig("\(key) must be an array of finite numbers")
        }
        return out
    }
}
