extension Pipeline {
    /// Advances every layer one timestep: `input` is (batchSize, inputSize); afterwards
    /// `workspace.output` holds the answer for the window so far. Causal pipelines only.
    public func step(_ input: [Float], state: inout RecurrentState, workspace: Workspace) {
        precondition(input.count == workspace.batchSize * inputSize, "step input shape")
        input.withUnsafeBufferPointer { x in
            workspace.stepInput.update(from: x.baseAddress!, count: x.count)
        }
        stepFromWorkspace(state: &state, workspace: workspace)
    }

    /// `step` on the input already in `workspace.stepInput`.
    func stepFromWorkspace(state: inout RecurrentState, workspace ws: Workspace) {
        precondition(isStreamable, "a pipeline with a layer that needs the whole window cannot be stepped")
        precondition(state.batchSize == ws.batchSize, "state batch size")
        let batch = ws.batchSize
        var cur = UnsafePointer(ws.stepInput)
        var width = inputSize
        var slot = 0, historySlot = 0
        func next() -> UnsafeMutablePointer<Float> { cur == UnsafePointer(ws.rowA) ? ws.rowB : ws.rowA }
        // Borrow the layers through a buffer pointer: no copies (and retains) of the weights.
        layers.withUnsafeBufferPointer { layers in
            for k in 0..<layers.count {
                switch layers[k] {
                case let .recurrent(r):
                    let out = next()
                    state.withLayer(slot: slot, directions: 1) { f, _ in r.step(cur, batch, out, f, ws) }
                    slot += 1
                    if k == sequenceTap { ws.stepTap = out }
                    width = r.outputWidth
                    cur = UnsafePointer(out)
                case .dense, .activation, .conv2d, .pool2d, .permute, .batchNorm, .layerNorm, .embedding:
                    let out = next()
                    width = applyRowwise(k, cur, out, rows: batch, width: width)
                    cur = UnsafePointer(out)
                case .flatten, .reshape:
                    break
                case let .conv1d(c):
                    let out = next()
                    if c.historyRows > 0 {
                        state.withHistory(slot: historySlot) { c.step(cur, batch, out, history: $0) }
                        historySlot += 1
                    } else {
                        c.step(cur, batch, out, history: ws.scratch)  // a kernel of 1 keeps nothing
                    }
                    width = c.outputChannels
                    cur = UnsafePointer(out)
                case .lastTimestep:
                    break  // the row just stepped is the last one
                case .flattenSequence, .repeatVector, .pool1d, .globalPool1d:
                    preconditionFailure("not causal")
                }
            }
        }
        ws.stepOutput = UnsafeMutablePointer(mutating: cur)
    }
}

extension RecurrentLayer {
    /// One timestep of a forward-only layer for the whole batch: x (batch, inputSize) → out
    /// (batch, outputSize), the same cell calls `forward` makes.
    @inline(__always)
    func step(_ x: UnsafePointer<Float>, _ batch: Int, _ out: UnsafeMutablePointer<Float>, _ slot: SlotPointers, _ ws: Workspace) {
        let cell = directions[0]
        let inWidth = inputSize, hw = cell.outputSize, cw = cell.kind.hasCellState ? cell.hiddenSize : 0
        var b = 0
        // Pairs of samples share weight loads (same bits as one at a time).
        if cell.canStepPairs {
            while b + 1 < batch {
                let h = slot.h + b * hw, c = slot.c! + b * cw
                cell.step2(x + b * inWidth, x + (b + 1) * inWidth, h, h + hw, c, c + cw, ws)
                (out + b * hw).update(from: h, count: 2 * hw)
                b += 2
            }
        }
        while b < batch {
            let h = slot.h + b * hw
            cell.step(x + b * inWidth, h, slot.c.map { $0 + b * cw }, ws)
            (out + b * hw).update(from: h, count: hw)
            b += 1
        }
    }
}
