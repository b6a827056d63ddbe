extension RecurrentNetwork {
    /// Advances every layer one timestep: the primitive that `forward` and streaming sessions
    /// share. `input` is (batchSize, inputSize); afterwards `workspace.output` holds the top
    /// layer's output (batchSize, outputWidth). Unidirectional networks only.
    public func step(_ input: [Float], state: inout RecurrentState, workspace: Workspace) {
        precondition(input.count == workspace.batchSize * inputSize, "step input shape")
        input.withUnsafeBufferPointer { x in
            workspace.stepInput.update(from: x.baseAddress!, count: x.count)
        }
        stepFromWorkspace(state: &state, workspace: workspace)
    }

    /// `step` on the input already in `workspace.stepInput`.
    func stepFromWorkspace(state: inout RecurrentState, workspace ws: Workspace) {
        precondition(!isBidirectional, "a bidirectional network cannot be stepped")
        precondition(state.batchSize == ws.batchSize, "state batch size")
        let batch = ws.batchSize
        let hSlots = state.hSlots, cSlots = state.cSlots
        // Borrow the layers through a buffer pointer: no copies (and retains) of the weights.
        layers.withUnsafeBufferPointer { layers in
        state.h.withUnsafeMutableBufferPointer { hAll in
        state.c.withUnsafeMutableBufferPointer { cAll in
            for l in 0..<layers.count {
                let inWidth = l == 0 ? inputSize : layers[l - 1].outputWidth
                let input = l == 0 ? ws.stepInput : ws.layerOutputs[l - 1]
                let out = ws.layerOutputs[l]
                let hw = layers[l].directions[0].outputSize, cw = cSlots[l].width
                layers[l].directions.withUnsafeBufferPointer { cell in
                    var b = 0
                    // Pairs of samples share weight loads (same bits as one at a time).
                    if cell[0].canStepPairs {
                        while b + 1 < batch {
                            let h = hAll.baseAddress! + hSlots[l].offset + b * hw
                            let c = cAll.baseAddress! + cSlots[l].offset + b * cw
                            cell[0].step2(input + b * inWidth, input + (b + 1) * inWidth, h, h + hw, c, c + cw, ws)
                            (out + b * hw).update(from: h, count: 2 * hw)
                            b += 2
                        }
                    }
                    while b < batch {
                        let h = hAll.baseAddress! + hSlots[l].offset + b * hw
                        let c = cw > 0 ? cAll.baseAddress! + cSlots[l].offset + b * cw : nil
                        cell[0].step(input + b * inWidth, h, c, ws)
                        (out + b * hw).update(from: h, count: hw)
                        b += 1
                    }
                }
            }
        }}}
    }

    /// Runs the head on the top layer's latest output into `workspace.head`.
    public func applyHead(workspace ws: Workspace) {
        applyHead(ws.layerOutputs[layers.count - 1], workspace: ws)
    }

    /// Runs the head on `last` (batchSize, outputWidth) into `workspace.headOutput`.
    func applyHead(_ last: UnsafePointer<Float>, workspace ws: Workspace) {
        guard let outSize = headOutputSize else { return }
        for b in 0..<ws.batchSize {
            var x = UnsafePointer(last + b * outputWidth)
            var target = ws.headA
            for dense in head {
                // y = act(W x + b)
                dense.bias.withUnsafeBufferPointer { target.update(from: $0.baseAddress!, count: dense.outputSize) }
                dense.weights.accumulate(target, x)
                activate(target, dense.outputSize, dense.activation)
                x = UnsafePointer(target)
                target = target == ws.headA ? ws.headB : ws.headA
            }
            (ws.headOutput + b * outSize).update(from: x, count: outSize)
        }
    }
}
