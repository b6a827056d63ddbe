/// What a forward pass over a batch of windows returns.
public struct ForwardResult: Sendable {
    /// The pipeline's answer: (batchSize, outputWidth), or (batchSize, outputLength, outputWidth)
    /// when it ends in a sequence.
    public var output: [Float]
    /// Timesteps in `output` when the pipeline ends in a sequence, else nil.
    public var outputLength: Int?
    /// (batchSize, sequenceLength, sequenceWidth): the last recurrent layer's every-timestep
    /// output, when asked for; else empty.
    public var sequence: [Float]
    /// Timesteps in `sequence`: the window's length as that layer saw it, after any
    /// convolution or pooling over time in front of it.
    public var sequenceLength: Int = 0
    /// The state after the window.
    public var state: RecurrentState

    /// The answer's last row per sample, (batchSize, outputWidth).
    public var lastRows: [Float] {
        guard let T = outputLength, T > 0 else { return output }
        let batch = state.batchSize, w = output.count / (batch * T)
        var rows: [Float] = []
        rows.reserveCapacity(batch * w)
        for b in 0..<batch { rows += output[(b * T + T - 1) * w..<(b * T + T) * w] }
        return rows
    }
}

extension Pipeline {
    /// Runs a batch of windows, layer by layer. `x` is (batchSize, sequenceLength, inputSize)
    /// row-major. Every layer computes each row the way `step` does, so stepping a session
    /// through the same window gives the same bits.
    public func forward(
        _ x: [Float], sequenceLength: Int, initialState: RecurrentState? = nil,
        returnSequences: Bool = false, workspace ws: Workspace
    ) -> ForwardResult {
        let batch = ws.batchSize
        precondition(x.count == batch * sequenceLength * inputSize, "window shape")
        var state = initialState ?? ws.zeroState()
        precondition(state.batchSize == batch, "state batch size")
        defer { ws.lastState = state }
        guard sequenceLength > 0 else { return ForwardResult(output: [], outputLength: nil, sequence: [], state: state) }
        let longest = layers.reduce(sequenceLength) { if case let .repeatVector(n) = $1 { return max($0, n) } else { return $0 } }
        ws.reserveSequence(batch * longest * ws.widestRow)
        var tapped: [Float] = []
        var tappedLength = 0
        var result: (values: [Float], length: Int?) = ([], nil)
        x.withUnsafeBufferPointer { xs in
            var cur = xs.baseAddress!
            var T: Int? = sequenceLength  // nil once the sequence is gone
            var width = inputSize
            var slot = 0, historySlot = 0
            // the buffer the next layer writes: never the one it reads
            func next() -> UnsafeMutablePointer<Float> { cur == UnsafePointer(ws.sequenceA!) ? ws.sequenceB! : ws.sequenceA! }
            for (k, layer) in layers.enumerated() {
                let rows = batch * (T ?? 1)
                switch layer {
                case let .recurrent(r):
                    let out = next()
                    let keep = r.returnSequences || (returnSequences && k == sequenceTap)
                    state.withLayer(slot: slot, directions: r.directions.count) { f, b in
                        r.forward(cur, T!, batch, out, keep, f, b, ws)
                    }
                    slot += r.directions.count
                    if keep, returnSequences, k == sequenceTap {
                        tapped = Array(UnsafeBufferPointer(start: out, count: batch * T! * r.outputWidth))
                        tappedLength = T!
                    }
                    if !r.returnSequences {
                        // the final states, joined; `out` is free again
                        state.withLayer(slot: slot - r.directions.count, directions: r.directions.count) { f, back in
                            for b in 0..<batch { r.join(f, back, b, out + b * r.outputWidth) }
                        }
                        T = nil
                    }
                    cur = UnsafePointer(out)
                    width = r.outputWidth
                case .dense, .activation:
                    let out = next()
                    width = applyRowwise(k, cur, out, rows: rows, width: width)
                    cur = UnsafePointer(out)
                case .lastTimestep:
                    let out = next()
                    let t = T!
                    for b in 0..<batch { (out + b * width).update(from: cur + (b * t + t - 1) * width, count: width) }
                    T = nil
                    cur = UnsafePointer(out)
                case .flattenSequence:
                    width *= T!  // (B, T, w) is already (B, T·w) in memory
                    T = nil
                case let .repeatVector(count):
                    let out = next()
                    for b in 0..<batch {
                        for t in 0..<count { (out + (b * count + t) * width).update(from: cur + b * width, count: width) }
                    }
                    T = count
                    cur = UnsafePointer(out)
                case .conv2d, .pool2d, .permute, .batchNorm, .layerNorm, .embedding:
                    let out = next()
                    width = applyRowwise(k, cur, out, rows: rows, width: width)
                    cur = UnsafePointer(out)
                case .flatten, .reshape:
                    break  // the same values in the same order
                case let .conv1d(c):
                    let out = next(), t = T!
                    if c.historyRows > 0 {
                        state.withHistory(slot: historySlot) { c.forward(cur, t, batch, out, history: $0) }
                        historySlot += 1
                    } else {
                        c.forward(cur, t, batch, out, history: nil)
                    }
                    T = c.outputLength(t)
                    width = c.outputChannels
                    cur = UnsafePointer(out)
                case let .pool1d(p):
                    let out = next(), t = T!
                    p.forward(cur, t, batch, width, out)
                    T = p.outputLength(t)
                    cur = UnsafePointer(out)
                case let .globalPool1d(isMax):
                    let out = next()
                    globalPool(isMax, cur, T!, batch, width, out)
                    T = nil
                    cur = UnsafePointer(out)
                }
            }
            result = (Array(UnsafeBufferPointer(start: cur, count: batch * (T ?? 1) * width)), T)
        }
        return ForwardResult(output: result.values, outputLength: result.length, sequence: tapped, sequenceLength: tappedLength, state: state)
    }

    /// A dense or activation layer on `rows` rows of `width` values, cur → out; returns the new width.
    @inline(__always)
    func applyRowwise(_ k: Int, _ cur: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows: Int, width: Int) -> Int {
        switch layers[k] {
        case let .dense(d):
            d.apply(cur, out, rows: rows * (width / d.inputSize))
            return width / d.inputSize * d.outputSize
        case let .activation(a):
            out.update(from: cur, count: rows * width)
            Pipeline.activate(out, rows * width, last: shapes[k].dims.last!, a)
            return width
        case let .conv2d(c):
            c.apply(cur, out, frames: rows)
            return shapes[k].width
        case let .pool2d(p):
            p.apply(cur, out, frames: rows)
            return shapes[k].width
        case let .batchNorm(b):
            b.apply(cur, out, rows: rows * (width / b.channels))
            return width
        case let .layerNorm(l):
            l.apply(cur, out, rows: rows * (width / l.channels))
            return width
        case let .embedding(e):
            e.apply(cur, out, rows: rows)
            return e.dimension
        case let .permute(p):
            p.apply(cur, out, rows: rows)
            return width
        default:
            preconditionFailure("not a row-wise layer")
        }
    }

    /// Applies `a` to n values; softmax goes over each run of `last` values (the last axis).
    static func activate(_ v: UnsafeMutablePointer<Float>, _ n: Int, last: Int, _ a: Activation) {
        if a == .softmax {
            for r in 0..<n / last { RecurrentCore.activate(v + r * last, last, a) }
        } else {
            RecurrentCore.activate(v, n, a)
        }
    }
}

extension RecurrentLayer {
    /// Runs every direction over the window: x (batch, T, inputSize) → out (batch, T, D·hw)
    /// when `keep` (joined afterwards), leaving the final states in h, c.
    func forward(
        _ x: UnsafePointer<Float>, _ T: Int, _ batch: Int, _ out: UnsafeMutablePointer<Float>, _ keep: Bool,
        _ forwardState: SlotPointers, _ reverseState: SlotPointers?, _ ws: Workspace
    ) {
        let inWidth = inputSize, hw = directions[0].outputSize, rowWidth = directions.count * hw
        for d in 0..<directions.count {
            let cell = directions[d]
            let slot = d == 0 ? forwardState : reverseState!
            let reversed = d == 1 || goBackwards
            let cw = cell.kind.hasCellState ? cell.hiddenSize : 0
            // where timestep t's output goes: aligned with t, except go_backwards (processing order)
            func put(_ b: Int, _ s: Int, _ t: Int, _ hb: UnsafeMutablePointer<Float>) {
                guard keep else { return }
                (out + (b * T + (goBackwards ? s : t)) * rowWidth + d * hw).update(from: hb, count: hw)
            }
            var b = 0
            if cell.canStepPairs {
                while b + 1 < batch {
                    let h0 = slot.h + b * hw, h1 = h0 + hw, c0 = slot.c! + b * cw, c1 = c0 + cw
                    for s in 0..<T {
                        let t = reversed ? T - 1 - s : s
                        cell.step2(x + (b * T + t) * inWidth, x + ((b + 1) * T + t) * inWidth, h0, h1, c0, c1, ws)
                        put(b, s, t, h0)
                        put(b + 1, s, t, h1)
                    }
                    b += 2
                }
            }
            while b < batch {
                let hb = slot.h + b * hw, cb = slot.c.map { $0 + b * cw }
                for s in 0..<T {
                    let t = reversed ? T - 1 - s : s
                    cell.step(x + (b * T + t) * inWidth, hb, cb, ws)
                    put(b, s, t, hb)
                }
                b += 1
            }
        }
        guard keep, directions.count == 2, merge != .concat else { return }
        // join in place, row by row: row r's joined values never overwrite an unread one
        for r in 0..<batch * T { joinRow(out + r * rowWidth, out + r * hw, hw) }
    }

    /// Sample b's final states joined into `out`.
    func join(_ f: SlotPointers, _ r: SlotPointers?, _ b: Int, _ out: UnsafeMutablePointer<Float>) {
        let hw = directions[0].outputSize
        guard let r else { out.update(from: f.h + b * hw, count: hw); return }
        switch merge {
        case .concat:
            out.update(from: f.h + b * hw, count: hw)
            (out + hw).update(from: r.h + b * hw, count: hw)
        default:
            for k in 0..<hw { out[k] = combine(f.h[b * hw + k], r.h[b * hw + k]) }
        }
    }

    /// Joins one row (forward hw values, then backward hw) into `out` (hw values).
    @inline(__always)
    func joinRow(_ row: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ hw: Int) {
        for k in 0..<hw { out[k] = combine(row[k], row[hw + k]) }
    }

    @inline(__always)
    func combine(_ a: Float, _ b: Float) -> Float {
        switch merge {
        case .concat, .sum: return a + b
        case .mul: return a * b
        case .ave: return (a + b) / 2
        }
    }
}
