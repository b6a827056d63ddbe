import RecurrentCore

extension NetworkBuilder {
    /// The pipeline config.json's `layers` describes, each layer's tensors found under its
    /// prefix; a tensor no layer places is an error that says which entry would place it.
    mutating func build(_ specs: [LayerSpec]) throws(ModelError) -> Pipeline {
        var layers: [Layer] = [], names: [String] = []
        var width: Int?
        var inputWidth: Int?
        for (k, spec) in specs.enumerated() {
            let name = spec.name ?? spec.weights ?? "layers[\(k)]"
            switch spec.kind {
            case .lstm, .gru, .rnn:
                for l in 0..<spec.numLayers {
                    let layer = try recurrent(spec, stacked: l, inputWidth: width)
                    inputWidth = inputWidth ?? layer.inputSize
                    width = layer.outputWidth
                    layers.append(.recurrent(layer))
                    names.append(spec.numLayers > 1 ? "\(name) layer \(l)" : name)
                }
            case .dense:
                let d = try dense(String(spec.prefix.dropLast()), inputWidth: nil, activation: spec.activation ?? .linear)
                inputWidth = inputWidth ?? d.inputSize
                width = width.map { $0 / d.inputSize * d.outputSize } ?? d.outputSize
                layers.append(.dense(d))
                names.append(name)
            case .activation:
                layers.append(.activation(spec.activation!))
                names.append(name)
            case .dropout:
                continue  // identity at inference
            case .lastTimestep:
                layers.append(.lastTimestep)
                names.append(name)
            case .flattenSequence:
                layers.append(.flattenSequence)
                names.append(name)
                if let w = width, let T = config.windowLength { width = w * T }
            case .repeatVector:
                layers.append(.repeatVector(count: spec.count))
                names.append(name)
            }
        }
        guard let inputWidth else { throw .invalidConfig("layers has no recurrent or dense layer: nothing says how wide a row is") }
        for tensor in file.tensors.keys.sorted() where !used.contains(tensor) {
            throw .inconsistent("tensor '\(tensor)' is placed by no entry of config.json's layers; \(Self.placement(of: tensor))")
        }
        do {
            return try Pipeline(layers: layers, names: names, input: .sequence(inputWidth, length: config.windowLength))
        } catch { throw .inconsistent(error.description) }
    }

    /// One stacked layer of a recurrent entry: `<prefix>weight_ih_l{k}` (and `_reverse`), or
    /// a `*Cell`'s `<prefix>weight_ih`.
    private mutating func recurrent(_ spec: LayerSpec, stacked l: Int, inputWidth: Int?) throws(ModelError) -> RecurrentLayer {
        let p = spec.prefix
        var suffix = "_l\(l)"
        if file.tensors["\(p)weight_ih\(suffix)"] == nil, spec.numLayers == 1, !spec.bidirectional, file.tensors["\(p)weight_ih"] != nil {
            suffix = ""  // nn.LSTMCell / GRUCell / RNNCell
        }
        guard file.tensors["\(p)weight_ih\(suffix)"] != nil else { throw .missingTensor("\(p)weight_ih\(suffix)") }
        let kind: CellKind
        switch spec.kind {
        case .lstm: kind = .lstm
        case .gru: kind = .gru(resetAfter: spec.resetAfter)
        default: kind = .rnn(spec.activation == .relu ? .relu : .tanh)
        }
        var directions: [CellWeights] = []
        for s in spec.bidirectional ? [suffix, suffix + "_reverse"] : [suffix] {
            directions.append(try cell(p, s, layer: l, inputWidth: l == 0 ? inputWidth : nil,
                                       kind: kind, activation: spec.activation, recurrentActivation: spec.recurrentActivation ?? .sigmoid))
        }
        let last = l == spec.numLayers - 1
        return RecurrentLayer(directions: directions, returnSequences: last ? spec.returnSequences : true,
                              goBackwards: spec.goBackwards, merge: spec.mergeMode)
    }

    /// The `layers` entry that would place a tensor of this name.
    static func placement(of tensor: String) -> String {
        if let r = tensor.range(of: "weight_ih") ?? tensor.range(of: "weight_hh") ?? tensor.range(of: "bias_ih") ?? tensor.range(of: "bias_hh") {
            let prefix = String(tensor[..<r.lowerBound].dropLast())
            return "a recurrent module: add {\"type\": \"lstm\" (or gru, rnn), \"weights\": \"\(prefix)\"}"
        }
        for end in [".weight", ".bias"] where tensor.hasSuffix(end) {
            return "a Linear layer: add {\"type\": \"dense\", \"weights\": \"\(tensor.dropLast(end.count))\"}"
        }
        return "no layer kind has a tensor named like it"
    }
}
