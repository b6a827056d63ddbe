/// One model version's session states in one shard: fixed-width rows of Floats (a state's h,
/// c and history, in the model's order), in chunks of about 256 KB. A session holds
/// its row number instead of a state of its own, which saves the two arrays (their headers
/// and their heap blocks) every state would carry, so an idle session costs little more than
/// its state's bytes. A step hands the row to its version's stepper, which copies it into a
/// scratch state, steps that, and copies it back only when the step is kept.
///
/// Used inside its shard's actor only.
final class StateBlock {
    let width: Int
    let rowsPerChunk: Int
    private var chunks: [UnsafeMutablePointer<Float>] = []
    private var free: [Int32] = []
    private var handedOut = 0
    /// Rows in use.
    private(set) var live = 0

    init(width: Int) {
        self.width = width
        rowsPerChunk = max(1, (256 * 1024 / 4) / max(1, width))
    }

    deinit { for c in chunks { c.deallocate() } }

    var capacity: Int { chunks.count * rowsPerChunk }

    /// A row for a new session (its values are whatever was there: store into it first).
    func allocate() -> Int32 {
        live += 1
        if let row = free.popLast() { return row }
        if handedOut == capacity {
            let chunk = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerChunk * width)
            chunk.initialize(repeating: 0, count: rowsPerChunk * width)
            chunks.append(chunk)
        }
        handedOut += 1
        return Int32(handedOut - 1)
    }

    func release(_ row: Int32) {
        live -= 1
        free.append(row)
    }

    func pointer(_ row: Int32) -> UnsafeMutablePointer<Float> {
        let r = Int(row)
        return chunks[r / rowsPerChunk] + (r % rowsPerChunk) * width
    }

    /// The row's values as bytes (what the durable store keeps).
    func bytes(_ row: Int32) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: pointer(row), count: 4 * width))
    }

    /// Whether most of the block is free (after a mass expiry): then worth building anew.
    var isSparse: Bool { capacity > 4 * rowsPerChunk && live * 4 < capacity }
}
