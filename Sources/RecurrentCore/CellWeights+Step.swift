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
            if let projection {
                // h = W_hr (σ(o)·tanh(c'))
                lstmPointwise(gates, c!, ws.scratch, hiddenSize)
                h.update(repeating: 0, count: projectionSize)
                projection.accumulate(h, ws.scratch)
            } else {
                lstmPointwise(gates, c!, h, hiddenSize)
            }
        case .rnn(let act):
            PackedMatrix.accumulate(gates, inputWeights, x, recurrentWeights, h)
            activate(gates, hiddenSize, act == .tanh ? .tanh : .relu)
            h.update(from: gates, count: hiddenSize)
        case .gru(let resetAfter):
            inputWeights.accumulate(gates, x)
            let gh = ws.gatesHidden
            recurrentBias.withUnsafeBufferPointer { gh.update(from: $0.baseAddress!, count: n) }
            if resetAfter {
                // gh = W_hh h + b_hh, then the PyTorch update
                recurrentWeights.accumulate(gh, h)
                gruPointwise(gates, gh, h, hiddenSize)
            } else {
                gruResetBefore(gates, gh, h, ws.scratch)
            }
        }
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
            let r = sigmoid(load(gx + k, m) + load(gh + k, m))
            store(r * load(h + k, m), rh + k, m)
            k += 16
        }
        // gh[2H..<3H] += W_hn (r·h)
        recurrentWeightsN!.accumulate(gh + 2 * H, rh)
        k = 0
        while k < H {
            let m = H - k
            let z = sigmoid(load(gx + H + k, m) + load(gh + H + k, m))
            let n = tanh(load(gx + 2 * H + k, m) + load(gh + 2 * H + k, m))
            store((1 - z) * n + z * load(h + k, m), h + k, m)
            k += 16
        }
    }
}
