import SessionStore

/// One session as Redis holds it: a single binary value with the fields the SQLite store's
/// row has (model, version, fingerprint, step, times, layout, state), after a revision that
/// every change raises. The step script compares the revision a replica computed from with
/// the stored one (as text, at a fixed place, so the script need not parse the rest):
///
///     "LSR1" | revision: 20 decimal digits | step: u64 | created, lastUsed: f64 |
///     model, version, fingerprint, layout: u16 length + UTF-8 | state: u32 count + f32 each
///
/// Integers and floats are little-endian.
struct SessionRecord: Equatable {
    static let magic: [UInt8] = Array("LSR1".utf8)
    /// Where the revision's digits are (1-based, as Lua's `string.sub` counts): 5 to 24.
    static let revisionRange = 5...24

    var revision: UInt64
    var step: Int
    var created: Double
    var lastUsed: Double
    var model: String
    var version: String
    var fingerprint: String
    var layout: String
    var state: [Float]

    /// The revision as the value writes it (20 digits, zero-padded).
    static func revisionText(_ r: UInt64) -> [UInt8] {
        let digits = Array(String(r).utf8)
        return [UInt8](repeating: UInt8(ascii: "0"), count: 20 - digits.count) + digits
    }

    func encoded() -> [UInt8] {
        var out = Self.magic
        out.reserveCapacity(80 + model.utf8.count + version.utf8.count + fingerprint.utf8.count + layout.utf8.count + state.count * 4)
        out += Self.revisionText(revision)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        put(UInt64(step))
        put(created.bitPattern)
        put(lastUsed.bitPattern)
        for text in [model, version, fingerprint, layout] {
            let bytes = Array(text.utf8.prefix(Int(UInt16.max)))
            put(UInt16(bytes.count))
            out += bytes
        }
        put(UInt32(state.count))
        for f in state { put(f.bitPattern) }
        return out
    }

    fileprivate struct Reader {
        let bytes: [UInt8]
        var at = 0

        var atEnd: Bool { at == bytes.count }

        mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
            guard n >= 0, bytes.count - at >= n else { return nil }
            defer { at += n }
            return bytes[at..<(at + n)]
        }

        mutating func integer<T: FixedWidthInteger>() -> T? {
            guard let b = take(MemoryLayout<T>.size) else { return nil }
            return b.reversed().reduce(T(0)) { $0 << 8 | T($1) }
        }

        mutating func text() -> String? {
            guard let n: UInt16 = integer(), let b = take(Int(n)) else { return nil }
            return String(validating: b, as: UTF8.self)
        }
    }
}

extension SessionRecord {
    /// Reads a stored value; nil when it is not one this store wrote whole (damaged, cut
    /// short, or another program's key), which callers answer as a corrupt session.
    init?(_ bytes: [UInt8]) {
        var r = Reader(bytes: bytes)
        guard let magic = r.take(4), Array(magic) == Self.magic, let rev = r.take(20), rev.allSatisfy({ (48...57).contains($0) }),
              let revision = UInt64(String(decoding: rev, as: UTF8.self)),
              let step: UInt64 = r.integer(), step <= UInt64(maxSessionStep),
              let created: UInt64 = r.integer(), let lastUsed: UInt64 = r.integer(),
              let model = r.text(), let version = r.text(), let fingerprint = r.text(), let layout = r.text(),
              let count: UInt32 = r.integer(), let raw = r.take(Int(count) * 4), r.atEnd else { return nil }
        self.revision = revision
        self.step = Int(step)
        self.created = Double(bitPattern: created)
        self.lastUsed = Double(bitPattern: lastUsed)
        (self.model, self.version, self.fingerprint, self.layout) = (model, version, fingerprint, layout)
        let b = Array(raw)
        state = (0..<Int(count)).map { k in
            Float(bitPattern: UInt32(b[4 * k]) | UInt32(b[4 * k + 1]) << 8 | UInt32(b[4 * k + 2]) << 16 | UInt32(b[4 * k + 3]) << 24)
        }
        // what the store writes is finite: anything else was damaged on the way
        guard self.created.isFinite, self.lastUsed.isFinite, state.allSatisfy(\.isFinite) else { return nil }
    }

    init(revision: UInt64, step: Int, created: Double, lastUsed: Double, model: any SessionModel, state: [Float]) {
        (self.revision, self.step, self.created, self.lastUsed) = (revision, step, created, lastUsed)
        (self.model, self.version, self.fingerprint, self.layout) = (model.name, String(model.version), model.fingerprint, model.stateLayout)
        self.state = state
    }
}
