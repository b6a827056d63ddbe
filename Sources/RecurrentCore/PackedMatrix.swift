/// A weight matrix W (outputCount, inputCount) stored for `out += W x` at batch 1.
///
/// Columns of Wᵀ are cut into panels 128 wide (the last one narrower, padded to 16); each panel
/// stores all inputCount rows contiguously, so the kernel keeps a panel's 128 outputs in
/// registers while it streams the panel's weights linearly through memory.
struct PackedMatrix: Sendable {
    static let panelWidth = 128
    let outputCount: Int
    let inputCount: Int
    /// Per panel: (offset into `values`, padded width, real width).
    let panels: [(offset: Int, width: Int, count: Int)]
    /// Panel p, row j, column c at `panels[p].offset + j · panels[p].width + c`.
    let values: [Float]

    /// - Parameter weight: (outputCount, inputCount) row-major, PyTorch's layout.
    init(_ weight: [Float], outputCount: Int, inputCount: Int) {
        precondition(weight.count == outputCount * inputCount, "weight shape")
        self.outputCount = outputCount
        self.inputCount = inputCount
        var panels: [(Int, Int, Int)] = []
        var total = 0
        var start = 0
        while start < outputCount {
            let count = min(Self.panelWidth, outputCount - start)
            let width = (count + 15) / 16 * 16
            panels.append((total, width, count))
            total += width * inputCount
            start += count
        }
        var values = [Float](repeating: 0, count: total)
        for (p, panel) in panels.enumerated() {
            for j in 0..<inputCount {
                for c in 0..<panel.2 {
                    values[panel.0 + j * panel.1 + c] = weight[(p * Self.panelWidth + c) * inputCount + j]
                }
            }
        }
        self.panels = panels
        self.values = values
    }

    /// out[0..<outputCount] += W x, summing the inputs in order for every output.
    @inline(__always)
    func accumulate(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>) {
        values.withUnsafeBufferPointer { w in
            for p in 0..<panels.count {
                let panel = panels[p]
                let o = out + p * Self.panelWidth
                let base = w.baseAddress! + panel.offset
                if panel.width == Self.panelWidth {
                    accumulatePanel128(o, x, inputCount, base, nil, 0, nil)
                } else {
                    accumulateProduct(o, panel.count, x, inputCount, base, panel.width)
                }
            }
        }
    }

    /// out += W x + V h in one pass over the panels (W, V with the same outputCount); the
    /// same order of additions as `accumulate(x)` then `accumulate(h)`.
    @inline(__always)
    static func accumulate(_ out: UnsafeMutablePointer<Float>, _ W: PackedMatrix, _ x: UnsafePointer<Float>,
                           _ V: PackedMatrix, _ h: UnsafePointer<Float>) {
        W.values.withUnsafeBufferPointer { w in
        V.values.withUnsafeBufferPointer { v in
            for p in 0..<W.panels.count {
                let panel = W.panels[p]
                let o = out + p * panelWidth
                let wBase = w.baseAddress! + panel.offset, vBase = v.baseAddress! + V.panels[p].offset
                if panel.width == panelWidth {
                    accumulatePanel128(o, x, W.inputCount, wBase, h, V.inputCount, vBase)
                } else {
                    accumulateProduct(o, panel.count, x, W.inputCount, wBase, panel.width)
                    accumulateProduct(o, panel.count, h, V.inputCount, vBase, panel.width)
                }
            }
        }}
    }

    /// `accumulate(out, W, x, V, h)` for two samples at once, bit for bit the same.
    @inline(__always)
    static func accumulate2(
        _ out0: UnsafeMutablePointer<Float>, _ out1: UnsafeMutablePointer<Float>, _ W: PackedMatrix,
        _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ V: PackedMatrix,
        _ h0: UnsafePointer<Float>, _ h1: UnsafePointer<Float>
    ) {
        W.values.withUnsafeBufferPointer { w in
        V.values.withUnsafeBufferPointer { v in
            for p in 0..<W.panels.count {
                let panel = W.panels[p]
                let wBase = w.baseAddress! + panel.offset, vBase = v.baseAddress! + V.panels[p].offset
                let o0 = out0 + p * panelWidth, o1 = out1 + p * panelWidth
                if panel.width == panelWidth {
                    accumulatePanel128x2(o0, o1, x0, x1, W.inputCount, wBase, h0, h1, V.inputCount, vBase)
                } else {
                    accumulateProduct(o0, panel.count, x0, W.inputCount, wBase, panel.width)
                    accumulateProduct(o0, panel.count, h0, V.inputCount, vBase, panel.width)
                    accumulateProduct(o1, panel.count, x1, W.inputCount, wBase, panel.width)
                    accumulateProduct(o1, panel.count, h1, V.inputCount, vBase, panel.width)
                }
            }
        }}
    }
}
