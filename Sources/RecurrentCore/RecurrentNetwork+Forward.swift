/// What a forward pass over a batch of windows returns.
public struct ForwardResult: Sendable {
    /// (batchSize, sequenceLength, outputWidth) when sequences were asked for, else empty.
    public var sequence: [Float]
    /// (batchSize, outputWidth): the top layer's output at the last timestep (empty when T = 0).
    public var lastOutput: [Float]
    /// The state after the window.
    public var state: RecurrentState
    /// (batchSize, headOutputSize), empty without a head or when T = 0.
    public var head: [Float]
}

extension RecurrentNetwork {
    /// Runs a batch of windows. `x` is (batchSize, sequenceLength, inputSize) row-major.
    ///
    /// Unidirectional networks loop over `step`, so stepping a session through the same window
    /// gives the same bits. Bidirectional networks run layer by layer (the reverse direction
    /// needs the whole window), with the same cell step.
    public func forward(
        _ x: [Float], sequenceLength: Int, initialState: RecurrentState? = nil,
        returnSequences: Bool = false, workspace ws: Workspace
    ) -> ForwardResult {
        let batch = ws.batchSize, T = sequenceLength, W = outputWidth
        precondition(x.count == batch * T * inputSize, "window shape")
        var state = initialState ?? ws.zeroState()
        precondition(state.batchSize == batch, "state batch size")
        defer { ws.lastState = state }
        guard T > 0 else { return ForwardResult(sequence: [], lastOutput: [], state: state, head: []) }
        var sequence = returnSequences ? [Float](repeating: 0, count: batch * T * W) : []

        if isBidirectional {
            x.withUnsafeBufferPointer { xs in
                forwardLayerwise(xs.baseAddress!, T, &state, ws, returnSequences, &sequence)
            }
        } else {
            x.withUnsafeBufferPointer { xs in
                for t in 0..<T {
                    // gather x[:, t, :] into the step input
                    for b in 0..<batch {
                        (ws.stepInput + b * inputSize).update(
                            from: xs.baseAddress! + (b * T + t) * inputSize, count: inputSize)
                    }
                    stepFromWorkspace(state: &state, workspace: ws)
                    if returnSequences {
                        sequence.withUnsafeMutableBufferPointer { seq in
                            let top = ws.layerOutputs[layers.count - 1]
                            for b in 0..<batch {
                                (seq.baseAddress! + (b * T + t) * W).update(from: top + b * W, count: W)
                            }
                        }
                    }
                }
            }
        }
        let top = ws.layerOutputs[layers.count - 1]
        var head: [Float] = []
        if headOutputSize != nil {
            applyHead(top, workspace: ws)
            head = ws.head
        }
        // The state joins the result only now: held by it earlier, the first step would have
        // had to copy h and c.
        return ForwardResult(sequence: sequence, lastOutput: Array(UnsafeBufferPointer(start: top, count: batch * W)),
                             state: state, head: head)
    }

    /// Layer by layer over the whole window; leaves the last timestep's top output in
    /// `ws.layerOutputs.last`.
    private func forwardLayerwise(
        _ x: UnsafePointer<Float>, _ T: Int, _ state: inout RecurrentState, _ ws: Workspace,
        _ returnSequences: Bool, _ sequence: inout [Float]
    ) {
        let batch = ws.batchSize
        let widest = max(inputSize, layers.map(\.outputWidth).max()!)
        ws.reserveSequence(batch * T * widest)
        var input = UnsafePointer(x)
        var output = ws.sequenceA!
        let hSlots = state.hSlots, cSlots = state.cSlots
        state.h.withUnsafeMutableBufferPointer { hAll in
        state.c.withUnsafeMutableBufferPointer { cAll in
            for (l, layer) in layers.enumerated() {
                let inWidth = layer.inputSize, W = layer.outputWidth
                for (d, cell) in layer.directions.enumerated() {
                    let slot = l * layer.directions.count + d
                    let hw = cell.outputSize, cw = cSlots[slot].width
                    for b in 0..<batch {
                        let h = hAll.baseAddress! + hSlots[slot].offset + b * hw
                        let c = cw > 0 ? cAll.baseAddress! + cSlots[slot].offset + b * cw : nil
                        // forward runs t = 0 ..< T, reverse t = T-1 ... 0; output[t] is the
                        // state after consuming x[t]
                        for s in 0..<T {
                            let t = d == 0 ? s : T - 1 - s
                            cell.step(input + (b * T + t) * inWidth, h, c, ws)
                            (output + (b * T + t) * W + d * hw).update(from: h, count: hw)
                        }
                    }
                }
                input = UnsafePointer(output)
                output = output == ws.sequenceA! ? ws.sequenceB! : ws.sequenceA!
            }
        }}
        // input now points at the top layer's sequence (batch, T, W)
        let W = outputWidth
        let top = ws.layerOutputs[layers.count - 1]
        for b in 0..<batch {
            (top + b * W).update(from: input + (b * T + T - 1) * W, count: W)
        }
        if returnSequences {
            sequence.withUnsafeMutableBufferPointer {
                $0.baseAddress!.update(from: input, count: batch * T * W)
            }
        }
    }
}
