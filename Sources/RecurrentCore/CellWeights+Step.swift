extension CellWeights {
    /// One timestep of one sample: reads x (inputSize) and h, c; writes the new h (outputSize)
    /// and c (hiddenSize) in place. This is the only place a recurrence is computed.
    @inline(__always)
    func step(
        _ x: UnsafePointer<Float>,
        _ h: UnsafeMutablePointer<Float>,
        _ c: UnsafeMutablePointer<Float>?,
        _ ws: Workspace
    ) {
        let gates = ws.gates
        let n = kind.gateCount * hiddenSize
        // gates = b (+ b_hh for LSTM/RNN, pre-summed)
        inputBias.withUnsafeBufferPointer { gates.update(from: $0.baseAddress!, count: n) }
        switch kind {
        case .lstm:
            // gates += W_ih x + W_hh h
            PackedMatrix.accumulate(gates, inputWeights, x, recurrentWeights, h)
            // h = W_hr (σ(o)·tanh(c')) with a projection
            let out = projection == nil ? h : ws.scratch
            if usesDefaultActivations {
                lstmPointwise(gates, c!, out, hiddenSize, DefaultActivations())
            } else {
                lstmPointwise(gates, c!, out, hiddenSize, chosen)
            }
            if let projection {
                h.update(repeating: 0, count: projectionSize)
                projection.accumulate(h, ws.scratch)
            }
        case .rnn:
            PackedMatrix.accumulate(gates, inputWeights, x, recurrentWeights, h)
            activate(gates, hiddenSize, activation)
            h.update(from: gates, count: hiddenSize)
        case .gru(let resetAfter):
            inputWeights.accumulate(gates, x)
            let gh = ws.gatesHidden
            recurrentBias.withUnsafeBufferPointer { gh.update(from: $0.baseAddress!, count: n) }
            if resetAfter {
                // gh = W_hh h + b_hh, then the PyTorch update
                recurrentWeights.accumulate(gh, h)
                if usesDefaultActivations {
                    gruPointwise(gates, gh, h, hiddenSize, DefaultActivations())
                } else {
                    gruPointwise(gates, gh, h, hiddenSize, chosen)
                }
            } else {
                gruResetBefore(gates, gh, h, ws.scratch)
            }
        }
    }

    var chosen: ChosenActivations { ChosenActivations(activation: activation, recurrent: recurrentActivation) }

    /// Whether `step2` applies (LSTM without projection): two samples share each weight load.
    var canStepPairs: Bool { kind == .lstm && projection == nil && usesDefaultActivations }

    /// `step` for two samples at once, with the same bits as two `step` calls.
    @inline(__always)
    func step2(
        _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>,
        _ h0: UnsafeMutablePointer<Float>, _ h1: UnsafeMutablePointer<Float>,
        _ c0: UnsafeMutablePointer<Float>, _ c1: UnsafeMutablePointer<Float>,
        _ ws: Workspace
    ) {
        let g0 = ws.gates, g1 = ws.gatesHidden
        let n = 4 * hiddenSize
        inputBias.withUnsafeBufferPointer {
            g0.update(from: $0.baseAddress!, count: n)
            g1.update(from: $0.baseAddress!, count: n)
        }
        PackedMatrix.accumulate2(g0, g1, inputWeights, x0, x1, recurrentWeights, h0, h1)
        lstmPointwise(g0, c0, h0, hiddenSize, DefaultActivations())
        lstmPointwise(g1, c1, h1, hiddenSize, DefaultActivations())
    }

    /// GRU with the reset gate applied before the recurrent product (Keras reset_after=False):
    /// r, z from W_h{r,z} h; n = tanh(xn + W_hn (r·h) + b_hn); h' = (1 - z)·n + z·h.
    private func gruResetBefore(
        _ gx: UnsafeMutablePointer<Float>, _ gh: UnsafeMutablePointer<Float>,
        _ h: UnsafeMutablePointer<Float>, _ rh: UnsafeMutablePointer<Float>
    ) {
        let H = hiddenSize
        // gh[0..<2H] += W_h{r,z} h
        recurrentWeights.accumulate(gh, h)
        var k = 0
        while k < H {
            let m = H - k
            let r = recurrentActivation.apply(load(gx + k, m) + load(gh + k, m))
            store(r * load(h + k, m), rh + k, m)
            k += 16
        }
        // gh[2H..<3H] += W_hn (r·h)
        recurrentWeightsN!.accumulate(gh + 2 * H, rh)
        k = 0
        while k < H {
            let m = H - k
            let z = recurrentActivation.apply(load(gx + H + k, m) + load(gh + H + k, m))
            let n = activation.apply(load(gx + 2 * H + k, m) + load(gh + 2 * H + k, m))
            store((1 - z) * n + z * load(h + k, m), h + k, m)
            k += 16
        }
    }
}
