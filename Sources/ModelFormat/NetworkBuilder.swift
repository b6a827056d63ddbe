import RecurrentCore

/// Builds a `Pipeline` from PyTorch-named tensors (`<prefix>weight_ih_l{k}[_reverse]`,
/// `weight_hh`, `bias_ih`, `bias_hh`, `weight_hr`; head `head.weight` or `head.{i}.weight`),
/// inferring the architecture from names and shapes and taking the rest from the config.
/// Every tensor must be used: an unknown one is an error, not silently ignored.
struct NetworkBuilder {
    let file: SafeTensors
    let config: ModelConfig
    var used: Set<String> = []

    init(file: SafeTensors, config: ModelConfig) {
        self.file = file
        self.config = config
    }

    mutating func build() throws(ModelError) -> Pipeline {
        if let specs = config.layers { return try build(specs) }
        let prefix = try recurrentPrefix()
        var layers: [RecurrentLayer] = []
        var previousWidth: Int?
        var k = 0
        while file.tensors["\(prefix)weight_ih_l\(k)"] != nil {
            let bidirectional = file.tensors["\(prefix)weight_ih_l\(k)_reverse"] != nil
            if let first = layers.first, first.isBidirectional != bidirectional {
                throw .inconsistent("layer \(k) is \(bidirectional ? "" : "not ")bidirectional but layer 0 is\(first.isBidirectional ? "" : " not")")
            }
            var directions: [CellWeights] = []
            for suffix in bidirectional ? ["_l\(k)", "_l\(k)_reverse"] : ["_l\(k)"] {
                directions.append(try cell(prefix, suffix, layer: k, inputWidth: previousWidth))
            }
            let layer = RecurrentLayer(directions: directions)
            previousWidth = layer.outputWidth
            layers.append(layer)
            k += 1
        }
        guard !layers.isEmpty else { throw .noRecurrentLayers }
        let (head, headNames) = try denseHead(inputWidth: previousWidth!)
        for name in file.tensors.keys.sorted() where !used.contains(name) {
            throw .unexpectedTensor(name)
        }
        // Every recurrent layer hands on its sequence and the head reads the last timestep:
        // PyTorch's `output[:, -1, :]`, which for a bidirectional layer is the reverse
        // direction after one step, not its final state.
        let pipeline: [Layer] = layers.map { .recurrent($0) } + [.lastTimestep] + head.map { .dense($0) }
        let module = prefix.hasSuffix(".") ? String(prefix.dropLast()) + " " : prefix
        let names = layers.indices.map { "\(module)layer \($0)" } + ["last timestep"] + headNames
        do {
            return try Pipeline(layers: pipeline, names: names, input: .sequence(layers[0].inputSize, length: config.windowLength))
        } catch { throw .inconsistent(error.description) }
    }

    /// The text before `weight_ih_l0` ("rnn.", "lstm.", "" ...); exactly one may exist.
    private func recurrentPrefix() throws(ModelError) -> String {
        var prefixes: Set<String> = []
        for name in file.tensors.keys {
            guard let r = name.range(of: "weight_ih_l") else { continue }
            prefixes.insert(String(name[..<r.lowerBound]))
        }
        guard prefixes.count <= 1 else {
            throw .inconsistent("more than one recurrent module: prefixes \(prefixes.sorted())")
        }
        guard let prefix = prefixes.first else { throw cellWithoutLayers() ?? .noRecurrentLayers }
        return prefix
    }

    mutating func tensor(_ name: String) throws(ModelError) -> (values: [Float], shape: [Int])? {
        guard let info = file.tensors[name] else { return nil }
        used.insert(name)
        let values: [Float]
        do { values = try file.floatTensor(name) } catch { throw .safeTensors(path: "weights", error) }
        if let k = values.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteWeight(tensor: name, index: k, value: values[k]) }
        return (values, info.shape)
    }

    mutating func required(_ name: String) throws(ModelError) -> (values: [Float], shape: [Int]) {
        guard let t = try tensor(name) else { throw .missingTensor(name) }
        return t
    }

    /// One direction's weights; `kind` nil infers it from the gate count and the config's `cell`.
    mutating func cell(_ prefix: String, _ suffix: String, layer: Int, inputWidth: Int?, kind chosen: CellKind? = nil,
                       activation: Activation? = nil, recurrentActivation: Activation = .sigmoid) throws(ModelError) -> CellWeights {
        let ihName = "\(prefix)weight_ih\(suffix)", hhName = "\(prefix)weight_hh\(suffix)"
        let ih = try required(ihName), hh = try required(hhName)
        let hr = try tensor("\(prefix)weight_hr\(suffix)")
        guard ih.shape.count == 2, ih.shape[0] > 0, ih.shape[1] > 0 else {
            throw .shapeMismatch(tensor: ihName, expected: "(gates·hidden, input)", actual: ih.shape)
        }
        guard hh.shape.count == 2, hh.shape[1] > 0 else {
            throw .shapeMismatch(tensor: hhName, expected: "(gates·hidden, hidden)", actual: hh.shape)
        }
        let rows = ih.shape[0]
        let hidden: Int
        if let hr {
            guard hr.shape.count == 2, hr.shape[0] > 0, hr.shape[1] > 0 else {
                throw .shapeMismatch(tensor: "\(prefix)weight_hr\(suffix)", expected: "(proj_size, hidden)", actual: hr.shape)
            }
            hidden = hr.shape[1]
        } else {
            hidden = hh.shape[1]
        }
        let kind: CellKind
        if let chosen { kind = chosen } else { kind = try cellKind(gateRows: rows, hidden: hidden, tensor: ihName) }
        guard rows == kind.gateCount * hidden else {
            throw .shapeMismatch(tensor: ihName, expected: "\(kind.gateCount) × hidden size \(hidden) rows for \(kind)", actual: ih.shape)
        }
        if hr != nil, kind != .lstm { throw .inconsistent("\(prefix)weight_hr\(suffix): projection is only defined for LSTM") }
        let outputSize = hr?.shape[0] ?? hidden
        guard hh.shape == [rows, outputSize] else {
            throw .shapeMismatch(tensor: hhName, expected: "[\(rows), \(outputSize)]", actual: hh.shape)
        }
        if let inputWidth, ih.shape[1] != inputWidth {
            throw .shapeMismatch(tensor: ihName, expected: "[\(rows), \(inputWidth)] (\(layer > 0 ? "layer \(layer - 1)" : "the layer before") outputs \(inputWidth) values)", actual: ih.shape)
        }
        var biases: [[Float]?] = []
        for name in ["\(prefix)bias_ih\(suffix)", "\(prefix)bias_hh\(suffix)"] {
            let b = try tensor(name)
            if let b, b.shape != [rows] { throw .shapeMismatch(tensor: name, expected: "[\(rows)]", actual: b.shape) }
            biases.append(b?.values)
        }
        return CellWeights(kind: kind, inputSize: ih.shape[1], hiddenSize: hidden,
                           weightIH: ih.values, weightHH: hh.values,
                           biasIH: biases[0], biasHH: biases[1], weightHR: hr?.values,
                           activation: activation, recurrentActivation: recurrentActivation)
    }

    private func cellKind(gateRows: Int, hidden: Int, tensor: String) throws(ModelError) -> CellKind {
        guard gateRows % hidden == 0, [1, 3, 4].contains(gateRows / hidden) else {
            throw .shapeMismatch(tensor: tensor, expected: "4, 3 or 1 × hidden size \(hidden) rows", actual: [gateRows])
        }
        let gates = gateRows / hidden
        let kind: CellKind
        switch config.cell {
        case "lstm": kind = .lstm
        case "gru": kind = .gru(resetAfter: config.gruResetAfter)
        case "rnn_tanh": kind = .rnn(.tanh)
        case "rnn_relu": kind = .rnn(.relu)
        default:
            switch gates {
            case 4: kind = .lstm
            case 3: kind = .gru(resetAfter: config.gruResetAfter)
            default: kind = .rnn(config.nonlinearity == "relu" ? .relu : .tanh)
            }
        }
        guard kind.gateCount == gates else {
            throw .inconsistent("config says cell '\(config.cell ?? "")' (\(kind.gateCount) gates) but \(tensor) has \(gates)·hidden rows")
        }
        return kind
    }

    /// A Linear layer `<base>.weight` (out, in) and optional `<base>.bias`.
    mutating func dense(_ base: String, inputWidth: Int?, activation: Activation) throws(ModelError) -> DenseLayer {
        let w = try required("\(base).weight")
        guard w.shape.count == 2, w.shape[0] > 0, w.shape[1] > 0, inputWidth.map({ w.shape[1] == $0 }) ?? true else {
            throw .shapeMismatch(tensor: "\(base).weight", expected: "[out, \(inputWidth.map(String.init) ?? "in")]", actual: w.shape)
        }
        let b = try tensor("\(base).bias")
        if let b, b.shape != [w.shape[0]] {
            throw .shapeMismatch(tensor: "\(base).bias", expected: "[\(w.shape[0])]", actual: b.shape)
        }
        return DenseLayer(inputSize: w.shape[1], outputSize: w.shape[0], weight: w.values, bias: b?.values, activation: activation)
    }

    /// The head's Linear layers and their module names: `<head_prefix>` alone, or numbered
    /// `<head_prefix>.0`, `.1`, ... with no gap, since a gap is a layer without parameters
    /// (an activation) that the names cannot say.
    private mutating func denseHead(inputWidth: Int) throws(ModelError) -> ([DenseLayer], [String]) {
        let p = config.headPrefix
        var names: [String] = []
        if file.tensors["\(p).weight"] != nil {
            names = ["\(p)"]
        } else {
            let indexed = file.tensors.keys.compactMap { name -> Int? in
                guard name.hasPrefix("\(p)."), name.hasSuffix(".weight") else { return nil }
                return Int(name.dropFirst(p.count + 1).dropLast(".weight".count))
            }.sorted()
            names = indexed.map { "\(p).\($0)" }
            if let gap = (0..<(indexed.last.map { $0 + 1 } ?? 0)).first(where: { !indexed.contains($0) }) {
                throw .inconsistent("the head \(names.joined(separator: ", ")) skips \(p).\(gap): a layer without parameters "
                    + "(an activation such as nn.ReLU, or nn.Dropout) sat there, and the tensor names cannot say which; "
                    + "describe the model with a 'layers' list in config.json (tools/export_model.py suggests one)")
            }
        }
        if !config.headActivations.isEmpty, config.headActivations.count != names.count {
            throw .invalidConfig("head_activations has \(config.headActivations.count) entries but the head has \(names.count) layers")
        }
        var width = inputWidth
        var head: [DenseLayer] = []
        for (k, base) in names.enumerated() {
            let activation = config.headActivations.isEmpty ? .linear : config.headActivations[k]
            head.append(try dense(base, inputWidth: width, activation: activation))
            width = head[k].outputSize
        }
        return (head, names)
    }

    /// A `*Cell`'s weights (`cell.weight_ih`, no layer index) and no `layers` list: how the
    /// module loops the cell is in its code, so the config has to say it.
    private func cellWithoutLayers() -> ModelError? {
        guard let name = file.tensors.keys.sorted().first(where: { $0.hasSuffix("weight_ih") }) else { return nil }
        let module = String(name.dropLast("weight_ih".count).dropLast())
        let shape = file.tensors[module + ".weight_hh"]?.shape ?? []
        let gates = shape.count == 2 && shape[1] > 0 ? shape[0] / shape[1] : 0
        let kind = [4: "lstm", 3: "gru", 1: "rnn"][gates] ?? "lstm"
        return .inconsistent("'\(name)' is a cell (nn.LSTMCell, nn.GRUCell or nn.RNNCell) without a layer index: describe "
            + "how the model loops it with a 'layers' list in config.json, e.g. [{\"type\": \"\(kind)\", \"weights\": \"\(module)\", "
            + "\"return_sequences\": false}, {\"type\": \"dense\", \"weights\": \"linear\"}] (tools/export_model.py suggests one)")
    }
}
