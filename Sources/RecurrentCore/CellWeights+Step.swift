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
        inputWeights.withUnsafeBufferPointer { wx in
        recurrentWeights.withUnsafeBufferPointer { wh in
        inputBias.withUnsafeBufferPointer { bx in
            // gates = b (+ b_hh for LSTM/RNN, pre-summed)
            gates.update(from: bx.baseAddress!, count: n)
            // gates += W_ih x
            accumulateProduct(gates, n, x, inputSize, wx.baseAddress!, stride)
            switch kind {
            case .lstm:
                // gates += W_hh h
                accumulateProduct(gates, n, h, outputSize, wh.baseAddress!, stride)
                if projectionSize == 0 {
                    lstmPointwise(gates, c!, h, hiddenSize)
                } else {
                    // h = W_hr (σ(o)·tanh(c'))
                    lstmPointwise(gates, c!, ws.scratch, hiddenSize)
                    projection.withUnsafeBufferPointer { wr in
                        h.update(repeating: 0, count: projectionSize)
                        accumulateProduct(h, projectionSize, ws.scratch, hiddenSize, wr.baseAddress!, projectionStride)
                    }
                }
            case .rnn(let act):
                accumulateProduct(gates, n, h, outputSize, wh.baseAddress!, stride)
                activate(gates, hiddenSize, act == .tanh ? .tanh : .relu)
                h.update(from: gates, count: hiddenSize)
            case .gru(let resetAfter):
                let gh = ws.gatesHidden
                recurrentBias.withUnsafeBufferPointer { bh in gh.update(from: bh.baseAddress!, count: n) }
                if resetAfter {
                    // gh = W_hh h + b_hh, then the PyTorch update
                    accumulateProduct(gh, n, h, outputSize, wh.baseAddress!, stride)
                    gruPointwise(gates, gh, h, hiddenSize)
                } else {
                    gruResetBefore(gates, gh, h, wh.baseAddress!, ws.scratch)
                }
            }
        }}}
    }

    /// GRU with the reset gate applied before the recurrent product (Keras reset_after=False):
    /// r, z from W_h{r,z} h; n = tanh(xn + W_hn (r·h) + b_hn); h' = (1 - z)·n + z·h.
    private func gruResetBefore(
        _ gx: UnsafeMutablePointer<Float>, _ gh: UnsafeMutablePointer<Float>,
        _ h: UnsafeMutablePointer<Float>, _ wh: UnsafePointer<Float>, _ rh: UnsafeMutablePointer<Float>
    ) {
        let H = hiddenSize
        // gh[0..<2H] += W_h{r,z} h
        accumulateProduct(gh, 2 * H, h, H, wh, stride)
        var k = 0
        while k < H {
            let m = H - k
            let r = sigmoid(load(gx + k, m) + load(gh + k, m))
            store(r * load(h + k, m), rh + k, m)
            k += 16
        }
        // gh[2H..<3H] += W_hn (r·h)
        accumulateProduct(gh + 2 * H, H, rh, H, wh + 2 * H, stride)
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
