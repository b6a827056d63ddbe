/// The state of a batch between timesteps: h (and c for LSTM) for every recurrent layer and
/// direction, and the last input rows of every causal Conv1D.
///
/// Slots are indexed `layer · D + direction` (0 forward, 1 reverse), PyTorch's `h_n` order.
/// Each slot holds (batchSize, width) row-major.
public struct RecurrentState: Sendable, Equatable {
    public let batchSize: Int
    /// Concatenated slots, each (batchSize, outputSize of its layer).
    public internal(set) var h: [Float]
    /// Concatenated slots, each (batchSize, hiddenSize); empty for GRU and RNN.
    public internal(set) var c: [Float]
    /// Per causal Conv1D, (batchSize, rows, channels): its last input rows, oldest first.
    public internal(set) var history: [Float]
    /// Per causal Conv1D: (offset into history, rows · channels per sample).
    let historySlots: [(offset: Int, width: Int)]
    /// Per slot: (offset into h, width), (offset into c, width).
    let hSlots: [(offset: Int, width: Int)]
    let cSlots: [(offset: Int, width: Int)]

    public static func == (a: RecurrentState, b: RecurrentState) -> Bool {
        a.batchSize == b.batchSize && a.h == b.h && a.c == b.c && a.history == b.history
    }

    init(layers: [RecurrentLayer], histories: [Int] = [], batchSize: Int) {
        self.batchSize = batchSize
        var hs: [(Int, Int)] = [], cs: [(Int, Int)] = []
        var hTotal = 0, cTotal = 0
        for layer in layers {
            for cell in layer.directions {
                hs.append((hTotal, cell.outputSize))
                hTotal += batchSize * cell.outputSize
                let cw = cell.kind.hasCellState ? cell.hiddenSize : 0
                cs.append((cTotal, cw))
                cTotal += batchSize * cw
            }
        }
        hSlots = hs
        cSlots = cs
        h = [Float](repeating: 0, count: hTotal)
        c = [Float](repeating: 0, count: cTotal)
        var offset = 0
        historySlots = histories.map { width in
            defer { offset += batchSize * width }
            return (offset, width)
        }
        history = [Float](repeating: 0, count: offset)
    }

    /// Sets h and c to zero, in place when their buffers are not shared.
    mutating func zero() {
        h.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        c.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        history.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// A copy of a state's values kept aside (its buffers reused from one save to the next).
    public struct Saved: Sendable {
        var h: [Float] = [], c: [Float] = [], history: [Float] = []
        public init() {}
    }

    /// Copies the values into `saved` (no allocation once it has the capacity), for `restore`.
    public func save(_ saved: inout Saved) {
        saved.h.removeAll(keepingCapacity: true)
        saved.h.append(contentsOf: h)
        saved.c.removeAll(keepingCapacity: true)
        saved.c.append(contentsOf: c)
        saved.history.removeAll(keepingCapacity: true)
        saved.history.append(contentsOf: history)
    }

    /// Puts back what `save` copied, in place.
    public mutating func restore(_ saved: Saved) {
        precondition(saved.h.count == h.count && saved.c.count == c.count && saved.history.count == history.count, "state shape")
        h.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: saved.h) }
        c.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: saved.c) }
        history.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: saved.history) }
    }

    /// The slots' widths, as text ("h 64 64; c 64 64; history 12"): two states can take each
    /// other's values when their layouts are equal.
    public var layout: String {
        "h \(hSlots.map { String($0.width) }.joined(separator: " ")); c \(cSlots.map { String($0.width) }.joined(separator: " ")); history \(historySlots.map { String($0.width) }.joined(separator: " ")); batch \(batchSize)"
    }

    /// The values as bytes: h, then c, then history, each Float in the machine's byte order.
    public var serializedBytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 4 * (h.count + c.count + history.count)) { buffer, count in
            let bytes = UnsafeMutableRawBufferPointer(buffer)
            func put(_ part: [Float]) {
                part.withUnsafeBytes { raw in
                    UnsafeMutableRawBufferPointer(rebasing: bytes[count..<count + raw.count]).copyMemory(from: raw)
                    count += raw.count
                }
            }
            put(h)
            put(c)
            put(history)
        }
    }

    /// Takes the values `serializedBytes` holds for a state of this layout; false (and
    /// nothing changed) when the byte count does not fit it.
    public mutating func load(serialized bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == 4 * (h.count + c.count + history.count) else { return false }
        var offset = 0
        func fill(_ part: inout [Float]) {
            part.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + $0.count])) }
            offset += 4 * part.count
        }
        fill(&h)
        fill(&c)
        fill(&history)
        return true
    }

    /// Floats in h, c and history together: the width of a state stored as one row.
    public var valueCount: Int { h.count + c.count + history.count }

    /// Copies the values, h then c then history (`serializedBytes`' order), to `row`.
    public func store(into row: UnsafeMutablePointer<Float>) {
        h.withUnsafeBufferPointer { if let base = $0.baseAddress { row.update(from: base, count: $0.count) } }
        c.withUnsafeBufferPointer { if let base = $0.baseAddress { (row + h.count).update(from: base, count: $0.count) } }
        history.withUnsafeBufferPointer { if let base = $0.baseAddress { (row + h.count + c.count).update(from: base, count: $0.count) } }
    }

    /// Takes the values `store` wrote to `row`, in place.
    public mutating func take(from row: UnsafePointer<Float>) {
        let (hn, cn) = (h.count, c.count)
        h.withUnsafeMutableBufferPointer { if let base = $0.baseAddress { base.update(from: row, count: hn) } }
        c.withUnsafeMutableBufferPointer { if let base = $0.baseAddress { base.update(from: row + hn, count: cn) } }
        history.withUnsafeMutableBufferPointer { if let base = $0.baseAddress { base.update(from: row + hn + cn, count: $0.count) } }
    }

    /// Whether every value is finite.
    public var isFinite: Bool { h.allSatisfy(\.isFinite) && c.allSatisfy(\.isFinite) && history.allSatisfy(\.isFinite) }

    /// Number of causal Conv1D slots.
    public var historyCount: Int { historySlots.count }
    /// Values per sample in history slot k (rows · channels).
    public func historyWidth(slot k: Int) -> Int { historySlots[k].width }

    /// History slot k, (batchSize, rows, channels).
    public func history(slot k: Int) -> [Float] {
        let s = historySlots[k]
        return Array(history[s.offset..<s.offset + batchSize * s.width])
    }

    /// Replaces history slot k; `values` must be (batchSize, rows, channels).
    public mutating func setHistory(slot k: Int, _ values: [Float]) {
        let s = historySlots[k]
        precondition(values.count == batchSize * s.width, "state shape")
        history.replaceSubrange(s.offset..<s.offset + values.count, with: values)
    }

    /// History slot k's storage, for the layer that owns it.
    mutating func withHistory<R>(slot k: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        let offset = historySlots[k].offset
        return history.withUnsafeMutableBufferPointer { body($0.baseAddress! + offset) }
    }

    /// Number of layer·direction slots.
    public var slotCount: Int { hSlots.count }
    /// Width of h in `slot`.
    public func hiddenWidth(slot: Int) -> Int { hSlots[slot].width }
    /// Width of c in `slot` (0 without a cell state).
    public func cellWidth(slot: Int) -> Int { cSlots[slot].width }

    /// h of one slot, (batchSize, width).
    public func hidden(slot: Int) -> [Float] {
        let s = hSlots[slot]
        return Array(h[s.offset..<s.offset + batchSize * s.width])
    }

    /// c of one slot, (batchSize, width).
    public func cell(slot: Int) -> [Float] {
        let s = cSlots[slot]
        return Array(c[s.offset..<s.offset + batchSize * s.width])
    }

    /// Replaces h of one slot; `values` must be (batchSize, width).
    public mutating func setHidden(slot: Int, _ values: [Float]) {
        let s = hSlots[slot]
        precondition(values.count == batchSize * s.width, "state shape")
        h.replaceSubrange(s.offset..<s.offset + values.count, with: values)
    }

    /// Replaces c of one slot; `values` must be (batchSize, width).
    public mutating func setCell(slot: Int, _ values: [Float]) {
        let s = cSlots[slot]
        precondition(values.count == batchSize * s.width, "state shape")
        c.replaceSubrange(s.offset..<s.offset + values.count, with: values)
    }

    /// The h and c of one layer's directions (slots `slot`, `slot + 1`), each (batchSize, width).
    mutating func withLayer<R>(slot: Int, directions: Int, _ body: (SlotPointers, SlotPointers?) -> R) -> R {
        let hSlots = hSlots, cSlots = cSlots
        return h.withUnsafeMutableBufferPointer { hAll in
            c.withUnsafeMutableBufferPointer { cAll in
                func pointers(_ k: Int) -> SlotPointers {
                    SlotPointers(h: hAll.baseAddress! + hSlots[k].offset,
                                 c: cSlots[k].width > 0 ? cAll.baseAddress! + cSlots[k].offset : nil)
                }
                return body(pointers(slot), directions == 2 ? pointers(slot + 1) : nil)
            }
        }
    }
}

/// Where one direction's h and c live inside a `RecurrentState`.
struct SlotPointers {
    let h: UnsafeMutablePointer<Float>
    let c: UnsafeMutablePointer<Float>?
}
