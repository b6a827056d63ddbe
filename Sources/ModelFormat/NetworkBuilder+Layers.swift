import RecurrentCore

extension NetworkBuilder {
    /// The pipeline config.json's `layers` describes, each layer's tensors found under its
    /// prefix; a tensor no layer places is an error that says which entry would place it.
    mutating func build(_ specs: [LayerSpec]) throws(ModelError) -> Pipeline {
        var layers: [Layer] = [], names: [String] = []
        // a row's shape as it leaves each layer; nil until a layer's weights or inputs.shape say
        var dims: [Int]? = config.rowShape
        var input: [Int]? = config.rowShape
        func place(_ layer: Layer, _ name: String, _ out: [Int]?) {
            layers.append(layer)
            names.append(name)
            dims = out
        }
        for (k, spec) in specs.enumerated() {
            let name = spec.name ?? spec.weights ?? "layers[\(k)]"
            let base = String(spec.prefix.dropLast())
            func frame() throws(ModelError) -> (height: Int, width: Int, channels: Int) {
                guard let d = dims, d.count == 3 else {
                    throw .invalidConfig("\(name) (\(spec.kind.rawValue)) takes frames (height, width, channels): set inputs.shape, e.g. [50, 50, 1]")
                }
                return (d[0], d[1], d[2])
            }
            switch spec.kind {
            case .lstm, .gru, .rnn:
                for l in 0..<spec.numLayers {
                    let layer = try recurrent(spec, stacked: l, inputWidth: dims.map { $0.reduce(1, *) })
                    input = input ?? [layer.inputSize]
                    place(.recurrent(layer), spec.numLayers > 1 ? "\(name) layer \(l)" : name, [layer.outputWidth])
                }
            case .dense:
                let d = try dense(base, inputWidth: nil, activation: spec.activation ?? .linear)
                input = input ?? [d.inputSize]
                place(.dense(d), name, (dims ?? [d.inputSize]).dropLast() + [d.outputSize])
            case .activation:
                place(.activation(spec.activation!), name, dims)
            case .dropout:
                continue  // identity at inference
            case .lastTimestep:
                place(.lastTimestep, name, dims)
            case .flattenSequence:
                place(.flattenSequence, name, dims.map { d in [d.reduce(1, *) * (config.windowLength ?? 1)] })
            case .repeatVector:
                place(.repeatVector(count: spec.count), name, dims)
            case .conv2d:
                let f = try frame()
                let w = try required("\(base).weight")
                guard w.shape.count == 4, w.shape[1] == f.channels else {
                    throw .shapeMismatch(tensor: "\(base).weight", expected: "[out, \(f.channels), kh, kw]", actual: w.shape)
                }
                let b = try optionalBias(base, w.shape[0])
                let s = spec.strides ?? [1, 1]
                let c = Conv2DLayer(input: f, outputChannels: w.shape[0], kernel: (w.shape[2], w.shape[3]), strides: (s[0], s[1]),
                                    padding: spec.padding, weight: w.values, bias: b, activation: spec.activation ?? .linear)
                place(.conv2d(c), name, [c.output.height, c.output.width, c.output.channels])
            case .maxPooling2d, .averagePooling2d:
                let f = try frame(), p = spec.poolSize, s = spec.strides ?? p
                let pool = Pool2DLayer(max: spec.kind == .maxPooling2d, input: f, pool: (p[0], p[1]), strides: (s[0], s[1]), padding: spec.padding)
                place(.pool2d(pool), name, [pool.output.height, pool.output.width, pool.output.channels])
            case .flatten:
                place(.flatten, name, dims.map { [$0.reduce(1, *)] })
            case .reshape:
                place(.reshape(spec.targetShape), name, spec.targetShape)
            case .permute:
                guard let d = dims, let p = PermuteLayer(input: d, order: spec.dims.map { $0 - 1 }) else {
                    throw .invalidConfig("\(name) (permute) has dims \(spec.dims) but its rows have shape \(dims.map { "\($0)" } ?? "unknown (set inputs.shape)")")
                }
                place(.permute(p), name, p.output)
            case .batchNormalization:
                let mean = try required("\(base).running_mean"), variance = try required("\(base).running_var")
                let gamma = try tensor("\(base).weight"), beta = try tensor("\(base).bias")
                // a training counter (int64 in PyTorch's state_dict): placed, never read
                if file.tensors["\(base).num_batches_tracked"] != nil { used.insert("\(base).num_batches_tracked") }
                for t in [variance] + [gamma, beta].compactMap({ $0 }) where t.shape != mean.shape || mean.shape.count != 1 {
                    throw .shapeMismatch(tensor: "\(base).running_var", expected: "\(mean.shape)", actual: t.shape)
                }
                let layer = ScaleShiftLayer(mean: mean.values, variance: variance.values, gamma: gamma?.values, beta: beta?.values,
                                            epsilon: spec.epsilon ?? 1e-3)
                input = input ?? [layer.channels]
                place(.batchNorm(layer), name, dims ?? [layer.channels])
            case .layerNormalization:
                let gamma = try tensor("\(base).weight"), beta = try tensor("\(base).bias")
                guard let n = gamma?.shape.first ?? beta?.shape.first ?? dims?.last else {
                    throw .invalidConfig("\(name) (layer_normalization) has no \(base).weight or \(base).bias to size it")
                }
                let layer = LayerNormLayer(channels: n, gamma: gamma?.values, beta: beta?.values, epsilon: spec.epsilon ?? 1e-3)
                input = input ?? [n]
                place(.layerNorm(layer), name, dims ?? [n])
            case .embedding:
                let t = try required("\(base).weight")
                guard t.shape.count == 2, t.shape[0] > 0, t.shape[1] > 0 else {
                    throw .shapeMismatch(tensor: "\(base).weight", expected: "[count, dimension]", actual: t.shape)
                }
                input = input ?? [1]
                place(.embedding(EmbeddingLayer(table: t.values, count: t.shape[0], dimension: t.shape[1])), name, [t.shape[1]])
            case .conv1d:
                let w = try required("\(base).weight")
                guard w.shape.count == 3, w.shape.allSatisfy({ $0 > 0 }), dims.map({ $0 == [w.shape[1]] }) ?? true else {
                    throw .shapeMismatch(tensor: "\(base).weight", expected: "[out, \(dims.map { "\($0.reduce(1, *))" } ?? "in"), kernel]", actual: w.shape)
                }
                let b = try optionalBias(base, w.shape[0])
                let c = Conv1DLayer(inputChannels: w.shape[1], outputChannels: w.shape[0], kernel: w.shape[2], stride: spec.strides?[0] ?? 1,
                                    dilation: spec.dilation, padding: spec.padding, weight: w.values, bias: b, activation: spec.activation ?? .linear)
                input = input ?? [c.inputChannels]
                place(.conv1d(c), name, [c.outputChannels])
            case .maxPooling1d, .averagePooling1d:
                let pool = Pool1D(max: spec.kind == .maxPooling1d, pool: spec.poolSize[0], stride: spec.strides?[0] ?? spec.poolSize[0], padding: spec.padding)
                place(.pool1d(pool), name, dims)
            case .globalMaxPooling1d, .globalAveragePooling1d:
                place(.globalPool1d(max: spec.kind == .globalMaxPooling1d), name, dims)
            }
        }
        guard let input else { throw .invalidConfig("nothing says how wide a row is: add a weighted layer or inputs.shape") }
        for tensor in file.tensors.keys.sorted() where !used.contains(tensor) {
            throw .inconsistent("tensor '\(tensor)' is placed by no entry of config.json's layers; \(Self.placement(of: tensor))")
        }
        do {
            return try Pipeline(layers: layers, names: names, input: Shape(dims: input, isSequence: true, length: config.windowLength))
        } catch { throw .inconsistent(error.description) }
    }

    private mutating func optionalBias(_ base: String, _ count: Int) throws(ModelError) -> [Float]? {
        guard let b = try tensor("\(base).bias") else { return nil }
        guard b.shape == [count] else { throw .shapeMismatch(tensor: "\(base).bias", expected: "[\(count)]", actual: b.shape) }
        return b.values
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
            directions.append(try cell(p, s, layer: l, inputWidth: inputWidth, kind: kind,
                                       activation: spec.activation, recurrentActivation: spec.recurrentActivation ?? .sigmoid))
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
        for end in [".running_mean", ".running_var", ".num_batches_tracked"] where tensor.hasSuffix(end) {
            return "a BatchNorm: add {\"type\": \"batch_normalization\", \"weights\": \"\(tensor.dropLast(end.count))\"}"
        }
        for end in [".weight", ".bias"] where tensor.hasSuffix(end) {
            return "a Linear layer: add {\"type\": \"dense\", \"weights\": \"\(tensor.dropLast(end.count))\"} (or conv1d, conv2d, embedding, layer_normalization)"
        }
        return "no layer kind has a tensor named like it"
    }
}
